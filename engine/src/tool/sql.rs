//! SQL: a ```sql block queries the problem's attached files as tables (SQLite in the sandbox:
//! CSV and Parquet files loaded as tables named after the file, SQLite files attached
//! read-only under that name), under the same time, memory and output limits as Python.
//! Statements that would reach outside the data are refused, and the refusal is the block's
//! error. Results are text tables, so a long one keeps its first rows.

use super::{Cut, Tool};
use start_sandbox::Language;
use start_schemas::tool::ToolName;

/// The SQL tool.
pub(super) static TOOL: Tool = Tool {
    name: ToolName::Sql,
    tags: &["sql", "sqlite"],
    language: Language::Sql,
    output_fence: "output",
    cut: Cut::Head,
};
