//! Python: START's tool. A ```python block runs as a script in a clean interpreter (forked
//! from a runner that preloaded the usual modules), sees the problem's attached files in its
//! working directory, and brings back the figures it draws.

use super::{Cut, Tool};
use start_sandbox::Language;
use start_schemas::tool::ToolName;

/// The Python tool.
pub(super) static TOOL: Tool = Tool {
    name: ToolName::Python,
    tags: &["python", "py", "python3"],
    language: Language::Python,
    output_fence: "output",
    cut: Cut::HeadAndTail,
};
