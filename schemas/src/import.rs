//! Maps the public layouts of common problem sets onto start's problem row.
//!
//! Each mapper takes one source row (already read by [`crate::rows`]) and returns a problem
//! row; the caller then checks it with [`crate::validate::check_row`] like any input, so an
//! importer can never emit a row that `startctl validate` would refuse. Fields a mapper does not
//! use are kept under `metadata`. schemas/README.md documents every mapping.

use crate::answer::last_boxed;
use crate::problem::choice_letter;
use crate::rows::{json_type_name, Diagnostic, Location};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// A public layout `startctl import` understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportFormat {
    /// AIME sets (`problem`/`Problem`, `answer`/`Answer`, optional `id`, `solution`).
    Aime,
    /// Hendrycks MATH and MATH-500 (`problem`, `solution`, optional `answer`, `level`, `type`).
    Math,
    /// The GPQA CSV (`Question`, `Correct Answer`, `Incorrect Answer 1..3`, `Record ID`).
    GpqaCsv,
    /// OpenAI HumanEval (`task_id`, `prompt`, `canonical_solution`, `test`, `entry_point`).
    Humaneval,
    /// LiveCodeBench code generation (`question_id`, `question_content`, `public_test_cases`, ...).
    Livecodebench,
}

impl ImportFormat {
    /// Every format with its command-line name.
    pub const ALL: [(&'static str, ImportFormat); 5] = [
        ("aime", Self::Aime),
        ("math", Self::Math),
        ("gpqa-csv", Self::GpqaCsv),
        ("humaneval", Self::Humaneval),
        ("livecodebench", Self::Livecodebench),
    ];
}

impl FromStr for ImportFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|(n, _)| *n).collect();
                format!("unknown format {s:?}; expected one of {}", names.join(", "))
            })
    }
}

impl fmt::Display for ImportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Self::ALL.iter().find(|(_, x)| x == self).map(|(n, _)| *n);
        f.write_str(name.unwrap_or("?"))
    }
}

/// Reads fields from a source row, remembering which were used so that the rest can go to
/// `metadata`.
struct Source<'a> {
    row: &'a Map<String, Value>,
    used: Vec<String>,
    location: &'a Location,
    errors: Vec<Diagnostic>,
}

impl<'a> Source<'a> {
    /// The first present, non-null field among `names`.
    fn any(&mut self, names: &[&str]) -> Option<(&'a str, &'a Value)> {
        for name in names {
            if let Some((k, v)) = self.row.get_key_value(*name) {
                if !v.is_null() {
                    self.used.push(k.clone());
                    return Some((k.as_str(), v));
                }
            }
        }
        None
    }

    /// A field as text: strings as they are, numbers printed.
    fn text(&mut self, names: &[&str]) -> Option<String> {
        let (name, v) = self.any(names)?;
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            other => {
                self.error(
                    name,
                    format!("expected text, got {}", json_type_name(other)),
                );
                None
            }
        }
    }

    fn required(&mut self, names: &[&str]) -> Option<String> {
        let found = self.text(names);
        if found.is_none()
            && !self
                .errors
                .iter()
                .any(|d| names.contains(&d.field.as_str()))
        {
            let message = match names {
                [_] => "missing; this layout needs it".to_string(),
                _ => format!("missing; this layout needs one of: {}", names.join(", ")),
            };
            self.error(names[0], message);
        }
        found
    }

    fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors
            .push(Diagnostic::new(self.location.clone(), field, message));
    }

    /// Every field not used, for `metadata`.
    fn rest(&self) -> Map<String, Value> {
        self.row
            .iter()
            .filter(|(k, v)| !self.used.contains(k) && !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Maps one source row of `format` to a problem row.
pub fn map_row(
    format: ImportFormat,
    row: &Value,
    location: &Location,
) -> Result<Value, Vec<Diagnostic>> {
    let Some(obj) = row.as_object() else {
        return Err(vec![Diagnostic::new(
            location.clone(),
            "(row)",
            format!("expected an object, got {}", json_type_name(row)),
        )]);
    };
    let mut src = Source {
        row: obj,
        used: Vec::new(),
        location,
        errors: Vec::new(),
    };
    let out = match format {
        ImportFormat::Aime => aime(&mut src),
        ImportFormat::Math => math(&mut src),
        ImportFormat::GpqaCsv => gpqa(&mut src),
        ImportFormat::Humaneval => humaneval(&mut src),
        ImportFormat::Livecodebench => livecodebench(&mut src),
    };
    match out {
        Some(mut out) if src.errors.is_empty() => {
            let rest = src.rest();
            if !rest.is_empty() {
                out["metadata"] = Value::Object(rest);
            }
            Ok(out)
        }
        _ => Err(src.errors),
    }
}

fn aime(src: &mut Source) -> Option<Value> {
    let id = src.text(&["id", "ID", "problem_id"]);
    let question = src.required(&["problem", "Problem", "question"]);
    let answer = src.required(&["answer", "Answer"]);
    let solution = src.text(&["solution", "Solution"]);
    let (question, answer) = (question?, answer?);
    // AIME answers are printed with leading zeros (e.g. "033"); the value is the integer.
    let answer = match answer.trim().parse::<u32>() {
        Ok(n) => n.to_string(),
        Err(_) => answer,
    };
    let mut out = json!({"source": "aime", "kind": "math", "question": question, "answer": answer});
    if let Some(id) = id {
        out["id"] = json!(format!("aime-{}", id.trim()));
    }
    if let Some(s) = solution {
        out["solution"] = json!(s);
    }
    Some(out)
}

fn math(src: &mut Source) -> Option<Value> {
    let id = src.text(&["unique_id", "id"]);
    let question = src.required(&["problem", "question"]);
    let solution = src.text(&["solution"]);
    let answer = src
        .text(&["answer"])
        .or_else(|| solution.as_deref().and_then(last_boxed));
    if answer.is_none() {
        src.error(
            "answer",
            "missing, and the solution has no \\boxed{...} to take it from",
        );
    }
    let mut out =
        json!({"source": "math", "kind": "math", "question": question?, "answer": answer?});
    if let Some(id) = id {
        out["id"] = json!(format!(
            "math-{}",
            id.trim().replace(char::is_whitespace, "_")
        ));
    }
    if let Some(s) = solution {
        out["solution"] = json!(s);
    }
    Some(out)
}

/// A permutation of `0..n` drawn from `key`, so that an import is reproducible and the right
/// option is not always first.
fn permutation(key: &str, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut state = Sha256::digest(key.as_bytes()).to_vec();
    for i in (1..n).rev() {
        state = Sha256::digest(&state).to_vec();
        let r = u64::from_le_bytes(state[..8].try_into().expect("8 bytes"));
        order.swap(i, (r % (i as u64 + 1)) as usize);
    }
    order
}

fn gpqa(src: &mut Source) -> Option<Value> {
    let id = src.text(&["Record ID", "id"]);
    let question = src.required(&["Question"]);
    let correct = src.required(&["Correct Answer"]);
    let mut options = vec![correct?.trim().to_string()];
    for i in 1..=3 {
        let name = format!("Incorrect Answer {i}");
        if let Some(wrong) = src.required(&[name.as_str()]) {
            options.push(wrong.trim().to_string());
        }
    }
    if options.len() != 4 {
        return None;
    }
    let key = id
        .clone()
        .unwrap_or_else(|| question.clone().unwrap_or_default());
    let order = permutation(&key, options.len());
    let choices: Vec<&String> = order.iter().map(|&i| &options[i]).collect();
    let answer = order
        .iter()
        .position(|&i| i == 0)
        .expect("0 is in the permutation");
    let mut out = json!({
        "source": "gpqa",
        "kind": "choice",
        "question": question?.trim(),
        "choices": choices,
        "answer": choice_letter(answer).to_string(),
    });
    if let Some(id) = id {
        out["id"] = json!(format!("gpqa-{}", id.trim()));
    }
    Some(out)
}

fn humaneval(src: &mut Source) -> Option<Value> {
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
    Some(out)
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

/// A JSON value written as a Python literal (`true` → `True`, `null` → `None`).
fn py_literal(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => serde_json::to_string(s).expect("a string serialises"),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(py_literal).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!(
                    "{}: {}",
                    py_literal(&Value::String(k.clone())),
                    py_literal(v)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A functional test case as a call of `func` and its expected value, each input line one JSON
/// argument; `None` when a line is not JSON.
fn functional_example(func: &str, input: &str, output: &str) -> Option<Value> {
    let args: Option<Vec<String>> = input
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .map(|v| py_literal(&v))
        })
        .collect();
    let expected = serde_json::from_str::<Value>(output).ok()?;
    Some(
        json!({"call": format!("{func}({})", args?.join(", ")), "expected": py_literal(&expected)}),
    )
}

/// LiveCodeBench stores test lists as JSON text; private ones may be a compressed blob.
fn lcb_cases(src: &mut Source, name: &str) -> Option<Vec<(String, String, String)>> {
    let (_, v) = src.any(&[name])?;
    let parsed = match v {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(v) => v,
            Err(_) if name == "private_test_cases" => return None,
            Err(e) => {
                src.error(name, format!("is not a JSON list of tests: {e}"));
                return None;
            }
        },
        other => other.clone(),
    };
    let Value::Array(items) = parsed else {
        src.error(name, "expected a list of {input, output, testtype}");
        return None;
    };
    let mut cases = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let get = |k: &str| item.get(k).and_then(Value::as_str).map(str::to_string);
        match (get("input"), get("output")) {
            (Some(input), Some(output)) => {
                cases.push((input, output, get("testtype").unwrap_or("stdin".into())))
            }
            _ => src.error(&format!("{name}[{i}]"), "expected {input, output} strings"),
        }
    }
    Some(cases)
}

/// A check program for LeetCode-style (functional) tests: each input line is one JSON argument.
fn functional_check(cases: &[(String, String, String)]) -> String {
    let pairs: Vec<[&str; 2]> = cases
        .iter()
        .map(|(i, o, _)| [i.as_str(), o.as_str()])
        .collect();
    let literal = serde_json::to_string(&serde_json::to_string(&pairs).expect("serialises"))
        .expect("serialises");
    format!(
        "import json\n\n_CASES = json.loads({literal})\n\n\ndef check(candidate):\n    for i, (inp, out) in enumerate(_CASES):\n        args = [json.loads(line) for line in inp.split(\"\\n\") if line.strip()]\n        got = candidate(*args)\n        want = json.loads(out)\n        assert got == want, f\"case {{i}}: expected {{want!r}}, got {{got!r}}\"\n"
    )
}

fn livecodebench(src: &mut Source) -> Option<Value> {
    let id = src.required(&["question_id"]);
    let title = src.text(&["question_title"]);
    let content = src.required(&["question_content"]);
    let starter = src.text(&["starter_code"]).unwrap_or_default();
    let mut cases = lcb_cases(src, "public_test_cases").unwrap_or_default();
    // The public cases are the statement's examples: shown to the model, and graded with the
    // private ones.
    let public = cases.len();
    cases.extend(lcb_cases(src, "private_test_cases").unwrap_or_default());
    let meta_func = src
        .any(&["metadata"])
        .and_then(|(_, v)| match v {
            Value::String(s) => serde_json::from_str::<Value>(s).ok(),
            other => Some(other.clone()),
        })
        .and_then(|m| {
            m.get("func_name")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    if cases.is_empty() {
        src.error("public_test_cases", "no usable test cases");
        return None;
    }
    let functional = cases.iter().any(|(_, _, t)| t == "functional");
    let mut question = String::new();
    if let Some(t) = title.filter(|t| !t.trim().is_empty()) {
        question.push_str(t.trim());
        question.push_str("\n\n");
    }
    question.push_str(content?.trim());
    let tests = if functional {
        let Some(func) = meta_func else {
            src.error("metadata", "functional tests need metadata.func_name");
            return None;
        };
        if !starter.trim().is_empty() {
            question.push_str(&format!(
                "\n\nStart from:\n```python\n{}\n```",
                starter.trim_end()
            ));
        }
        let examples: Vec<Value> = cases[..public]
            .iter()
            .filter_map(|(i, o, _)| functional_example(&format!("Solution().{func}"), i, o))
            .collect();
        json!({"type": "check", "prompt": starter, "test": functional_check(&cases),
               "entry_point": format!("Solution().{func}"), "examples": examples})
    } else {
        question.push_str(
            "\n\nRead the input from standard input and write the answer to standard output.",
        );
        let cases: Vec<Value> = cases
            .iter()
            .enumerate()
            .map(|(k, (i, o, _))| {
                let mut case = json!({"input": i, "output": o});
                if k < public {
                    case["public"] = json!(true);
                }
                case
            })
            .collect();
        json!({"type": "stdio", "cases": cases})
    };
    Some(json!({
        "id": format!("lcb-{}", id?.trim()),
        "source": "livecodebench",
        "kind": "code",
        "question": question,
        "tests": tests,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::Position;
    use crate::validate::check_row;

    fn loc() -> Location {
        Location {
            file: "in.jsonl".into(),
            at: Position::Line(3),
        }
    }

    fn import(format: ImportFormat, row: Value) -> crate::problem::Problem {
        let mapped = map_row(format, &row, &loc()).expect("maps");
        check_row(&mapped, &loc()).expect("valid problem")
    }

    #[test]
    fn aime_answers_lose_leading_zeros_and_keep_extra_fields() {
        let p = import(
            ImportFormat::Aime,
            json!({"ID": "2024-I-1", "Problem": "Q?", "Answer": "033", "url": "u"}),
        );
        assert_eq!(p.id.as_str(), "aime-2024-I-1");
        assert_eq!(p.to_row()["answer"], "33");
        assert_eq!(p.metadata.unwrap()["url"], "u");
    }

    #[test]
    fn math_takes_the_boxed_answer_when_there_is_no_answer_field() {
        let p = import(
            ImportFormat::Math,
            json!({"problem": "Q", "solution": "so \\boxed{\\frac{1}{2}}.", "level": "Level 2"}),
        );
        assert_eq!(p.to_row()["answer"], "\\frac{1}{2}");
        let err = map_row(
            ImportFormat::Math,
            &json!({"problem": "Q", "solution": "none"}),
            &loc(),
        )
        .unwrap_err();
        assert_eq!(err[0].field, "answer");
    }

    #[test]
    fn gpqa_shuffles_reproducibly_and_tracks_the_right_option() {
        let row = json!({"Record ID": "rec1", "Question": "Q", "Correct Answer": "right",
            "Incorrect Answer 1": "w1", "Incorrect Answer 2": "w2", "Incorrect Answer 3": "w3"});
        let a = import(ImportFormat::GpqaCsv, row.clone());
        assert_eq!(a, import(ImportFormat::GpqaCsv, row));
        let crate::problem::Target::Choice {
            choices,
            answer_index,
        } = a.target
        else {
            panic!("choice expected")
        };
        assert_eq!(choices[answer_index], "right");
    }

    #[test]
    fn livecodebench_functional_tests_become_a_check_program() {
        let p = import(
            ImportFormat::Livecodebench,
            json!({"question_id": "42", "question_title": "Sum", "question_content": "Add.",
                "starter_code": "class Solution:\n    def add(self, a, b):\n",
                "public_test_cases": "[{\"input\": \"1\\n2\", \"output\": \"3\", \"testtype\": \"functional\"}]",
                "private_test_cases": "eJzLSM3JyQcABiwCFQ==",
                "metadata": "{\"func_name\": \"add\"}"}),
        );
        let row = p.to_row();
        assert_eq!(row["tests"]["entry_point"], "Solution().add");
        assert!(row["tests"]["test"]
            .as_str()
            .unwrap()
            .contains("def check(candidate)"));
        assert_eq!(
            row["tests"]["examples"],
            json!([{"call": "Solution().add(1, 2)", "expected": "3"}]),
            "the public cases are shown to the model"
        );
    }

    #[test]
    fn livecodebench_public_stdin_cases_are_shown_and_humaneval_doctests_become_examples() {
        let p = import(
            ImportFormat::Livecodebench,
            json!({"question_id": "7", "question_content": "Echo.",
                "public_test_cases": "[{\"input\": \"1\\n\", \"output\": \"1\\n\", \"testtype\": \"stdin\"}]",
                "private_test_cases": "[{\"input\": \"2\\n\", \"output\": \"2\\n\", \"testtype\": \"stdin\"}]"}),
        );
        let row = p.to_row();
        assert_eq!(row["tests"]["cases"][0]["public"], true);
        assert!(row["tests"]["cases"][1].get("public").is_none());
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
        let err = map_row(
            ImportFormat::Humaneval,
            &json!({"task_id": "HumanEval/0"}),
            &loc(),
        )
        .unwrap_err();
        let fields: Vec<_> = err.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["prompt", "test", "entry_point"]);
    }
}
