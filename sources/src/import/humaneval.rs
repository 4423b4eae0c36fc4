//! OpenAI HumanEval: `task_id`, `prompt`, `canonical_solution`, `test`, `entry_point`. The
//! docstring's `>>>` examples are shown, written either as a call with its value on the next
//! line or as `>>> f(x) == y` (six prompts do so); the check program is hidden. Ids are
//! `humaneval-<N>` like every other source's; the release's `HumanEval/<N>` stays readable in
//! `metadata.task_id`.

use super::{id_with, Mapped, Source};
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
    let task_id = id?.trim().to_string();
    let number = task_id.rsplit('/').next().unwrap_or(&task_id);
    let mut out = json!({
        "id": id_with("humaneval", number),
        "metadata": {"task_id": task_id},
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
        } else if let Some((call, value)) = split_equality(call) {
            out.push((call.to_string(), value.to_string()));
        }
    }
    out
}

/// `f(x) == y` split at its `==`, when the `==` is the expression's own (outside brackets and
/// strings) and both sides are there.
fn split_equality(line: &str) -> Option<(&str, &str)> {
    let bytes = line.as_bytes();
    let (mut depth, mut quote) = (0i32, None::<u8>);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) => {
                if b == b'\\' {
                    i += 1;
                } else if b == q {
                    quote = None;
                }
            }
            None => match b {
                b'\'' | b'"' => quote = Some(b),
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth -= 1,
                b'=' if depth == 0 && bytes.get(i + 1) == Some(&b'=') => {
                    let (call, value) = (line[..i].trim(), line[i + 2..].trim());
                    return (!call.is_empty() && !value.is_empty()).then_some((call, value));
                }
                _ => {}
            },
        }
        i += 1;
    }
    None
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
    fn examples_written_as_equalities_are_shown() {
        let p = import(
            ImportFormat::Humaneval,
            json!({"task_id": "HumanEval/108", "entry_point": "count_nums", "test": "def check(c): pass",
                "prompt": "def count_nums(arr):\n    \"\"\"\n    Count.\n    >>> count_nums([]) == 0\n    >>> count_nums([-1, 11, -11]) == 1\n    >>> f('a == b') == 'x'\n    >>> sort_array([1, 0]) [0, 1]\n    \"\"\"\n"}),
        );
        let row = p.to_row();
        assert_eq!(
            row["tests"]["examples"],
            json!([{"call": "count_nums([])", "expected": "0"},
                   {"call": "count_nums([-1, 11, -11])", "expected": "1"},
                   {"call": "f('a == b')", "expected": "'x'"}]),
            "an example with no == and no value line is not shown"
        );
        assert_eq!(row["id"], "humaneval-108");
        assert_eq!(row["metadata"]["task_id"], "HumanEval/108");
    }

    #[test]
    fn missing_fields_are_named() {
        let fields = failed(ImportFormat::Humaneval, json!({"task_id": "HumanEval/0"}));
        assert_eq!(fields, ["prompt", "test", "entry_point"]);
    }
}
