//! LiveCodeBench's code generation rows (`code_generation_lite`): `question_id`,
//! `question_title`, `question_content`, `starter_code`, `contest_date`, `public_test_cases`
//! (JSON text) and `private_test_cases`, JSON text in early releases and base64 of zlib of a
//! pickle of that JSON text in later ones. The pickle is read by [`crate::pickle`], which
//! accepts plain data only: Python's `pickle.loads` would run whatever the blob asks.

use super::python::{functional_check, functional_example};
use super::{parse_day, set_date, Mapped, Source, STDIO_NOTE};
use base64::Engine as _;
use serde_json::{json, Value};
use std::io::Read;

/// Largest decompressed private-test blob accepted: the biggest LiveCodeBench rows hold tens
/// of megabytes of tests; a zlib bomb is refused instead of filling memory.
const MAX_PRIVATE_BYTES: u64 = 256 << 20;

/// One test as LiveCodeBench writes it.
struct Case {
    input: String,
    output: String,
    functional: bool,
}

/// Decodes a compressed private-test blob to its JSON text (or list).
fn decode_private(blob: &str) -> Result<Value, String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(blob.trim().as_bytes())
        .map_err(|e| format!("is neither JSON nor base64: {e}"))?;
    let mut pickled = Vec::new();
    flate2::read::ZlibDecoder::new(raw.as_slice())
        .take(MAX_PRIVATE_BYTES + 1)
        .read_to_end(&mut pickled)
        .map_err(|e| format!("is base64 but not zlib data: {e}"))?;
    if pickled.len() as u64 > MAX_PRIVATE_BYTES {
        return Err(format!(
            "decompresses to over {MAX_PRIVATE_BYTES} bytes; refused"
        ));
    }
    // Some re-exports compress the JSON text itself, without the pickle.
    if let Some(b'[' | b'{') = pickled.first() {
        return serde_json::from_slice(&pickled)
            .map_err(|e| format!("decompresses to text that is not JSON: {e}"));
    }
    let value =
        crate::pickle::loads(&pickled).map_err(|e| format!("holds a pickle start refuses: {e}"))?;
    match value {
        Value::String(text) => serde_json::from_str(&text)
            .map_err(|e| format!("holds a pickled string that is not JSON: {e}")),
        other => Ok(other),
    }
}

/// The cases of `name`, JSON text or (private tests) a compressed pickle.
fn cases(src: &mut Source, name: &str) -> Option<Vec<Case>> {
    let (_, v) = src.any(&[name])?;
    let parsed = match v {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(v) => v,
            Err(_) if name == "private_test_cases" => match decode_private(s) {
                Ok(v) => v,
                Err(e) => {
                    src.error(name, e);
                    return None;
                }
            },
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
            (Some(input), Some(output)) => cases.push(Case {
                input,
                output,
                functional: get("testtype").as_deref() == Some("functional"),
            }),
            _ => src.error(&format!("{name}[{i}]"), "expected {input, output} strings"),
        }
    }
    Some(cases)
}

pub(super) fn map(src: &mut Source) -> Option<Mapped> {
    let id = src.required(&["question_id"]);
    let title = src.text(&["question_title"]);
    let content = src.required(&["question_content"]);
    let starter = src.text(&["starter_code"]).unwrap_or_default();
    let date = src.any(&["contest_date"]).and_then(|(_, v)| parse_day(v));
    let mut all = cases(src, "public_test_cases").unwrap_or_default();
    // The public cases are the statement's examples: shown to the model, and graded with the
    // private ones.
    let public = all.len();
    all.extend(cases(src, "private_test_cases").unwrap_or_default());
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
    if all.is_empty() && src.errors.is_empty() {
        src.error("public_test_cases", "no usable test cases");
        return None;
    }
    let functional = all.iter().any(|c| c.functional);
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
        let examples: Vec<Value> = all[..public]
            .iter()
            .filter_map(|c| functional_example(&format!("Solution().{func}"), &c.input, &c.output))
            .collect();
        let pairs: Vec<(String, String)> = all
            .iter()
            .map(|c| (c.input.clone(), c.output.clone()))
            .collect();
        json!({"type": "check", "prompt": starter, "test": functional_check(&pairs),
               "entry_point": format!("Solution().{func}"), "examples": examples})
    } else {
        question.push_str(STDIO_NOTE);
        let cases: Vec<Value> = all
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let mut case = json!({"input": c.input, "output": c.output});
                if k < public {
                    case["public"] = json!(true);
                }
                case
            })
            .collect();
        json!({"type": "stdio", "cases": cases})
    };
    let mut out = json!({
        "id": format!("lcb-{}", id?.trim()),
        "source": "livecodebench",
        "kind": "code",
        "question": question,
        "tests": tests,
    });
    if let Some(day) = date {
        set_date(&mut out, day);
    }
    Some(Mapped::Problem(out))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{failed, import};
    use super::super::ImportFormat;
    use serde_json::json;

    /// A private-test blob made the way LiveCodeBench makes it, by the real Python.
    fn python_blob(expr: &str) -> String {
        let out = crate::testing::python(&format!(
            "import base64, json, pickle, zlib\nprint(base64.b64encode(zlib.compress(pickle.dumps({expr}))).decode())"
        ));
        String::from_utf8(out).unwrap().trim().to_string()
    }

    #[test]
    fn functional_tests_become_a_check_program_with_the_public_ones_shown() {
        let p = import(
            ImportFormat::Livecodebench,
            json!({"question_id": "42", "question_title": "Sum", "question_content": "Add.",
                "starter_code": "class Solution:\n    def add(self, a, b):\n",
                "public_test_cases": "[{\"input\": \"1\\n2\", \"output\": \"3\", \"testtype\": \"functional\"}]",
                "private_test_cases": "[]",
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
        );
    }

    #[test]
    fn compressed_private_tests_are_read_and_hidden_and_the_contest_date_kept() {
        let private = python_blob(
            "json.dumps([{'input': '2\\n', 'output': '2\\n', 'testtype': 'stdin'}, {'input': '30\\n', 'output': '30\\n', 'testtype': 'stdin'}])",
        );
        let p = import(
            ImportFormat::Livecodebench,
            json!({"question_id": "abc301_a", "question_content": "Echo.", "platform": "atcoder",
                "contest_date": "2023-05-13T00:00:00",
                "public_test_cases": "[{\"input\": \"1\\n\", \"output\": \"1\\n\", \"testtype\": \"stdin\"}]",
                "private_test_cases": private}),
        );
        let row = p.to_row();
        let cases = row["tests"]["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 3);
        assert_eq!(cases[0]["public"], true);
        assert!(cases[1].get("public").is_none());
        assert_eq!(cases[2]["input"], "30\n");
        assert_eq!(row["metadata"]["date"], "2023-05-13");
        assert_eq!(row["metadata"]["platform"], "atcoder");
    }

    #[test]
    fn a_pickle_that_would_run_code_is_an_error_at_its_field() {
        // os.system pickles as a GLOBAL and a REDUCE: refused, never run.
        let hostile = python_blob("__import__('os').system");
        let fields = failed(
            ImportFormat::Livecodebench,
            json!({"question_id": "1", "question_content": "Q",
                "public_test_cases": "[{\"input\": \"1\", \"output\": \"1\", \"testtype\": \"stdin\"}]",
                "private_test_cases": hostile}),
        );
        assert_eq!(fields, ["private_test_cases"]);
        let fields = failed(
            ImportFormat::Livecodebench,
            json!({"question_id": "1", "question_content": "Q",
                "public_test_cases": "[{\"input\": \"1\", \"output\": \"1\", \"testtype\": \"stdin\"}]",
                "private_test_cases": "not base64 at all!"}),
        );
        assert_eq!(fields, ["private_test_cases"]);
    }
}
