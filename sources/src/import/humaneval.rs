//! OpenAI HumanEval: `task_id`, `prompt`, `canonical_solution`, `test`, `entry_point`. The
//! docstring's `>>>` examples are shown; the check program is hidden.

use super::{Mapped, Source};
use serde_json::{json, Value};

pub(super) fn map(src: &mut Source) -> Option<Mapped> {
    let id = src.required(&["task_id"]);
    let prompt = src.required(&["prompt"]);
    let test = src.required(&["test"]);
    let entry_point = src.required(&["entry_point"]);
    let canonical = src.text(&["canonical_solution"]);
    let prompt = prompt?;
    let question = format!(
        "Complete the following Python function. Give the whole function in one python code block.\n\n```python\n{}\n```",
        prompt.trim_end()
    );
    let examples: Vec<Value> = doctest_examples(&prompt)
        .into_iter()
        .map(|(call, expected)| json!({"call": call, "expected": expected}))
        .collect();
    let mut out = json!({
        "id": id?.trim(),
        "source": "humaneval",
        "kind": "code",
        "question": question,
        "tests": {"type": "check", "prompt": prompt, "test": test?, "entry_point": entry_point?.trim(),
                  "examples": examples},
    });
    if let Some(c) = canonical {
        out["solution"] = json!(format!("{prompt}{c}"));
    }
    Some(Mapped::Problem(out))
}

/// The examples of a docstring: each `>>> call` line with the lines after it up to a blank
/// line or the next `>>>` as its expected value (HumanEval writes its examples so).
fn doctest_examples(prompt: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = prompt.lines().map(str::trim).peekable();
    while let Some(line) = lines.next() {
        let Some(call) = line.strip_prefix(">>> ") else {
            continue;
        };
        let mut expected = Vec::new();
        while let Some(next) = lines.peek() {
            if next.is_empty() || next.starts_with(">>>") || next.starts_with("\"\"\"") {
                break;
            }
            expected.push(*next);
            lines.next();
        }
        if !expected.is_empty() {
            out.push((call.trim().to_string(), expected.join("\n")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::{failed, import};
    use super::super::ImportFormat;
    use serde_json::json;

    #[test]
    fn doctests_become_shown_examples() {
        let p = import(
            ImportFormat::Humaneval,
            json!({"task_id": "HumanEval/0", "entry_point": "f", "test": "def check(c): pass",
                "prompt": "def f(xs, t):\n    \"\"\" Close?\n    >>> f([1.0, 2.0], 0.5)\n    False\n    >>> f([1.0, 1.1], 0.3)\n    True\n    \"\"\"\n"}),
        );
        assert_eq!(
            p.to_row()["tests"]["examples"],
            json!([{"call": "f([1.0, 2.0], 0.5)", "expected": "False"},
                   {"call": "f([1.0, 1.1], 0.3)", "expected": "True"}])
        );
    }

    #[test]
    fn missing_fields_are_named() {
        let fields = failed(ImportFormat::Humaneval, json!({"task_id": "HumanEval/0"}));
        assert_eq!(fields, ["prompt", "test", "entry_point"]);
    }
}
