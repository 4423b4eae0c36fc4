//! The tool registry: every tool the model can call by writing a fenced block, and what each
//! is to the engine. A tool declares the fence languages that open it, how the sandbox runs
//! its code ([`Language`]), and how its result is written back into the trajectory (the output
//! block's fence, and how output past the limit is cut). A job enables some of them
//! ([`ToolSet`]); a block in a language no enabled tool claims stays text.
//!
//! Adding a tool is one module here (its [`Tool`]) and one arm in [`of`], which every
//! [`ToolName`] must have; docs/architecture.md lists the sandbox side.

mod python;
mod sql;

use start_sandbox::{ExecResult, Language};
use start_schemas::tool::{ToolName, ToolSet};
use std::time::Duration;

/// What a tool is to the engine.
#[derive(Debug)]
pub struct Tool {
    /// Its name in job specs and rows.
    pub name: ToolName,
    /// Fence languages that open its blocks (` ```python `), lower case.
    pub tags: &'static [&'static str],
    /// How the sandbox runs its code.
    pub language: Language,
    /// The fence its result is written back in (` ```output `).
    pub output_fence: &'static str,
    /// How output past the character limit is cut.
    pub cut: Cut,
}

/// How a result longer than the limit is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Keep the head and the tail: a program's first lines and its last (the traceback, the
    /// final answer) both matter.
    HeadAndTail,
    /// Keep the head, cut at a line: a table read from the top stays whole rows.
    Head,
}

/// The tool registered under `name`.
pub fn of(name: ToolName) -> &'static Tool {
    match name {
        ToolName::Python => &python::TOOL,
        ToolName::Sql => &sql::TOOL,
    }
}

/// The registered tool a fence's language opens (enabled or not).
pub fn for_tag(lang: &str) -> Option<&'static Tool> {
    let lang = lang.trim().to_ascii_lowercase();
    ToolName::ALL
        .into_iter()
        .map(of)
        .find(|t| t.tags.contains(&lang.as_str()))
}

/// The enabled tool a fence's language opens.
pub fn enabled_for_tag(lang: &str, enabled: ToolSet) -> Option<&'static Tool> {
    for_tag(lang).filter(|t| enabled.contains(t.name))
}

impl Tool {
    /// The block a result becomes in the trajectory, and whether its output was cut: the
    /// program's stdout then stderr, cut to `max_chars` characters the tool's way; then, never
    /// cut, what stopped it (time-out, memory), a lost session, and the figures it drew.
    pub fn output_block(
        &self,
        result: &ExecResult,
        timeout: Duration,
        max_chars: usize,
        calls_left: Option<u32>,
    ) -> (String, bool) {
        let mut out = String::new();
        out.push_str(&result.stdout);
        if !result.stderr.is_empty() {
            out.push_str(&result.stderr);
        }
        let truncated = out.chars().count() > max_chars;
        if truncated {
            out = match self.cut {
                Cut::HeadAndTail => head_and_tail(&out, max_chars),
                Cut::Head => head(&out, max_chars),
            };
        }
        let mut notes = Vec::new();
        if result.timed_out {
            notes.push(format!("[timed out after {:.0} s]", timeout.as_secs_f64()));
        }
        if result.memory_exceeded {
            notes.push("[memory limit exceeded]".to_string());
        }
        if let Some(err) = &result.error {
            // Only a session that is lost: its state is gone, which the model should be told.
            notes.push(format!("[sandbox: {err}]"));
        }
        for (i, f) in result.figures.iter().enumerate() {
            notes.push(format!("[figure {}: {}x{} PNG]", i + 1, f.width, f.height));
        }
        if result.figures_dropped > 0 {
            let n = result.figures_dropped;
            let s = if n == 1 { "" } else { "s" };
            notes.push(format!("[{n} more figure{s} not kept]"));
        }
        // Last, where the model reads on: what is left of its budget.
        match calls_left {
            None => {}
            Some(0) => notes.push("[no code executions left]".to_string()),
            Some(1) => notes.push("[1 code execution left]".to_string()),
            Some(n) => notes.push(format!("[{n} code executions left]")),
        }
        let mut body = out.trim_end().to_string();
        for note in notes {
            if !body.is_empty() {
                body.push('\n');
            }
            body.push_str(&note);
        }
        (
            format!("```{}\n{}\n```\n", self.output_fence, body),
            truncated,
        )
    }
}

fn head_and_tail(out: &str, max_chars: usize) -> String {
    let head: String = out.chars().take(max_chars / 2).collect();
    let tail: String = out
        .chars()
        .rev()
        .take(max_chars / 2)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{head}\n...[truncated]...\n{tail}")
}

fn head(out: &str, max_chars: usize) -> String {
    let kept: String = out.chars().take(max_chars).collect();
    // Whole lines only, unless the first line alone is over the limit.
    let kept = match kept.rfind('\n') {
        Some(at) if at > 0 => kept[..at].to_string(),
        _ => kept,
    };
    let rest = out[kept.len()..].trim_start_matches('\n');
    format!(
        "{kept}\n...[truncated: {} more lines]",
        rest.lines().count()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use start_sandbox::Figure;

    #[test]
    fn each_tool_is_found_by_its_tags_and_only_when_enabled() {
        assert_eq!(for_tag("Python").map(|t| t.name), Some(ToolName::Python));
        assert_eq!(for_tag(" py ").map(|t| t.name), Some(ToolName::Python));
        assert_eq!(for_tag("sql").map(|t| t.name), Some(ToolName::Sql));
        assert_eq!(for_tag("sqlite").map(|t| t.name), Some(ToolName::Sql));
        assert!(for_tag("output").is_none() && for_tag("text").is_none());
        assert!(enabled_for_tag("sql", ToolSet::PYTHON).is_none());
        assert!(enabled_for_tag("sql", ToolSet::all()).is_some());
        for name in ToolName::ALL {
            assert_eq!(of(name).name, name);
            for tag in of(name).tags {
                assert_eq!(
                    for_tag(tag).map(|t| t.name),
                    Some(name),
                    "{tag} claimed twice"
                );
            }
        }
    }

    #[test]
    fn output_is_cut_the_tools_way_and_notes_are_never_cut() {
        let long: String = (0..200).map(|i| format!("row {i}\n")).collect();
        let result = ExecResult {
            stdout: long,
            timed_out: true,
            figures: vec![Figure {
                png: vec![1, 2],
                width: 640,
                height: 480,
            }],
            ..ExecResult::default()
        };
        let t = Duration::from_secs(10);
        let (py, cut) = of(ToolName::Python).output_block(&result, t, 100, None);
        assert!(cut);
        assert!(py.starts_with("```output\nrow 0\n"), "{py}");
        assert!(
            py.contains("...[truncated]...") && py.contains("row 199\n"),
            "{py}"
        );
        assert!(
            py.ends_with("[timed out after 10 s]\n[figure 1: 640x480 PNG]\n```\n"),
            "{py}"
        );
        let (sql, cut) = of(ToolName::Sql).output_block(&result, t, 100, None);
        assert!(cut);
        assert!(!sql.contains("row 199"), "{sql}");
        let kept = sql.lines().filter(|l| l.starts_with("row ")).count();
        assert!(
            sql.contains(&format!("...[truncated: {} more lines]", 200 - kept)),
            "{sql}"
        );
        assert!(sql.ends_with("[figure 1: 640x480 PNG]\n```\n"), "{sql}");
        let short = ExecResult {
            stdout: "42\n".into(),
            ..ExecResult::default()
        };
        assert_eq!(
            of(ToolName::Python).output_block(&short, t, 100, None),
            ("```output\n42\n```\n".to_string(), false)
        );
    }
}
