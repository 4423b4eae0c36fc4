//! APPS and TACO, which share a layout: `question`, `solutions` (JSON text: a list of
//! programs), `starter_code`, `input_output` (JSON text: `inputs`, `outputs`, and `fn_name` for
//! call tests), `difficulty`, `url`; APPS adds `problem_id`, TACO `source`, `date`, `tags`,
//! `skill_types`, `time_limit` ("2 seconds") and `memory_limit` ("256 megabytes"). Neither
//! marks which tests are the statement's examples, so none are shown; all are graded.

use super::python::apps_call_check;
use super::{id_with, parse_day, set_date, Mapped, Source, STDIO_NOTE};
use serde_json::{json, Value};

/// TACO's limits are text: the leading number of "2.0 seconds" or "256 megabytes".
fn leading_number(text: &str) -> Option<f64> {
    let end = text
        .trim()
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.trim().len());
    text.trim()[..end].parse().ok().filter(|n: &f64| *n > 0.0)
}

/// TACO's memory limit in MiB: "256 megabytes", "256.0 MB", or "50000 bytes".
fn memory_mib(text: &str) -> Option<f64> {
    let n = leading_number(text)?;
    let unit = text
        .trim()
        .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    let unit = unit.trim().to_ascii_lowercase();
    let mib = if unit.starts_with("kilobyte") || unit.starts_with("kb") {
        n / 1024.0
    } else if unit.starts_with("byte") || unit == "b" {
        n / f64::from(1u32 << 20)
    } else if unit.starts_with("gigabyte") || unit.starts_with("gb") {
        n * 1024.0
    } else {
        n
    };
    // CodeChef rows say "50000 bytes", their source-size limit, not memory: below what any
    // judge gives a program, such a value is no memory limit and is left out.
    Some(mib).filter(|m| *m >= 16.0)
}

/// A test's input or output: text, or a list of lines.
fn stdio_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(lines) => {
            let lines: Option<Vec<&str>> = lines.iter().map(Value::as_str).collect();
            Some(lines?.join("\n") + "\n")
        }
        _ => None,
    }
}

/// A column holding JSON as text (or, in some exports, already parsed).
fn json_text(src: &mut Source, name: &str) -> Option<Value> {
    let (_, v) = src.any(&[name])?;
    match v {
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => match serde_json::from_str(s) {
            Ok(v) => Some(v),
            Err(e) => {
                src.error(name, format!("is not JSON text: {e}"));
                None
            }
        },
        other => Some(other.clone()),
    }
}

/// Files of one problem folder in the original APPS release (`train/2404/`): each read as the
/// column of the same name in the Hugging Face layout.
const FOLDER_FILES: [(&str, &str); 4] = [
    ("question.txt", "question"),
    ("solutions.json", "solutions"),
    ("input_output.json", "input_output"),
    ("starter_code.py", "starter_code"),
];

/// Whether `dir` is one problem folder of the original APPS release.
pub(crate) fn is_problem_folder(dir: &std::path::Path) -> bool {
    dir.join("question.txt").is_file()
}

/// One problem folder of the original APPS release as the row the Hugging Face layout has:
/// `problem_id` the folder's name, the files' texts as columns, `metadata.json`'s fields
/// (`difficulty`, `url`) beside them. Files CodeRL adds (model generations and their scores)
/// are not read.
pub(crate) fn folder_row(dir: &std::path::Path) -> Result<Value, String> {
    let mut row = serde_json::Map::new();
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    row.insert("problem_id".into(), json!(name));
    for (file, column) in FOLDER_FILES {
        let path = dir.join(file);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let text =
                    String::from_utf8(bytes).map_err(|e| format!("{file}: not UTF-8 ({e})"))?;
                row.insert(column.into(), json!(text));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{file}: {e}")),
        }
    }
    match std::fs::read(dir.join("metadata.json")) {
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(meta)) => {
                for (k, v) in meta {
                    row.entry(k).or_insert(v);
                }
            }
            Ok(_) => return Err("metadata.json: expected an object".into()),
            Err(e) => return Err(format!("metadata.json: {e}")),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("metadata.json: {e}")),
    }
    Ok(Value::Object(row))
}

/// Why a function task tested through an unreleased driver is skipped.
pub(crate) const DRIVER_TESTS: &str =
    "function task whose tests are input to a driver program that is not released (GeeksforGeeks)";

pub(super) fn map(src: &mut Source) -> Option<Mapped> {
    let taco = src.has("skill_types") || src.has("raw_tags");
    let id = src.text(&["problem_id"]);
    let question = src.required(&["question"]);
    let starter = src.text(&["starter_code"]).unwrap_or_default();
    let solutions = json_text(src, "solutions");
    let io = json_text(src, "input_output");
    let time_limit = src.text(&["time_limit"]).and_then(|t| leading_number(&t));
    let memory = src.text(&["memory_limit"]).and_then(|m| memory_mib(&m));
    let date = src.any(&["date"]).and_then(|(_, v)| parse_day(v));
    let mut question = question?;
    let Some(io) = io else {
        return if src.errors.is_empty() {
            Some(Mapped::skip("no tests"))
        } else {
            None
        };
    };
    let inputs = io.get("inputs").and_then(Value::as_array);
    let outputs = io.get("outputs").and_then(Value::as_array);
    let (Some(inputs), Some(outputs)) = (inputs, outputs) else {
        src.error("input_output", "expected {inputs: [...], outputs: [...]}");
        return None;
    };
    if inputs.len() != outputs.len() {
        src.error(
            "input_output",
            format!("has {} inputs but {} outputs", inputs.len(), outputs.len()),
        );
        return None;
    }
    if inputs.is_empty() {
        return Some(Mapped::skip("no tests"));
    }
    let mut tests = match io.get("fn_name").and_then(Value::as_str) {
        Some(func) => {
            let entry = if starter.contains("class Solution") {
                format!("Solution().{func}")
            } else {
                func.to_string()
            };
            if !starter.trim().is_empty() {
                question.push_str(&format!(
                    "\n\nStart from:\n```python\n{}\n```",
                    starter.trim_end()
                ));
            }
            json!({"type": "check", "prompt": starter, "test": apps_call_check(inputs, outputs),
                   "entry_point": entry, "examples": []})
        }
        // A function to complete whose tests are a driver program's input (`n = 5\narr[] =
        // {…}`): TACO's GeeksforGeeks rows. The driver is not released, so a class-only answer
        // could never pass them as stdin cases.
        None if starter.contains("class Solution")
            || starter.contains("User function Template") =>
        {
            return Some(Mapped::skip_with(
                DRIVER_TESTS,
                format!(
                    "starter code {:?}",
                    starter
                        .lines()
                        .find(|l| l.contains("def "))
                        .unwrap_or("")
                        .trim()
                ),
            ));
        }
        None => {
            let mut cases = Vec::with_capacity(inputs.len());
            for (k, (i, o)) in inputs.iter().zip(outputs).enumerate() {
                match (stdio_text(i), stdio_text(o)) {
                    (Some(i), Some(o)) => cases.push(json!({"input": i, "output": o})),
                    _ => {
                        src.error(
                            &format!("input_output.inputs[{k}]"),
                            "expected text or a list of lines",
                        );
                        return None;
                    }
                }
            }
            question.push_str(STDIO_NOTE);
            json!({"type": "stdio", "cases": cases})
        }
    };
    if let Some(t) = time_limit {
        tests["time_limit_s"] = json!(t);
    }
    if let Some(m) = memory {
        tests["memory_limit_mb"] = json!(m.round() as u32);
    }
    let mut out = json!({
        "source": if taco { "taco" } else { "apps" },
        "kind": "code",
        "question": question.trim_start(),
        "tests": tests,
    });
    if let Some(id) = id.filter(|_| !taco) {
        out["id"] = json!(id_with("apps", &id));
    }
    if let Some(first) = solutions
        .as_ref()
        .and_then(Value::as_array)
        .and_then(|s| s.first())
        .and_then(Value::as_str)
    {
        out["solution"] = json!(first);
    }
    if let Some(day) = date {
        set_date(&mut out, day);
    }
    Some(Mapped::Problem(out))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{failed, import, skipped};
    use super::super::ImportFormat;
    use serde_json::json;
    use start_schemas::problem::{Target, TestStyle};

    #[test]
    fn apps_stdin_tests_with_lines_as_lists_become_cases() {
        let p = import(
            ImportFormat::Apps,
            json!({"problem_id": 4001, "question": "Sum two numbers.", "difficulty": "introductory",
                "url": "https://codeforces.com/problemset/problem/1/A", "starter_code": "",
                "solutions": "[\"print(sum(map(int, input().split())))\"]",
                "input_output": "{\"inputs\": [\"1 2\\n\", [\"3 4\"]], \"outputs\": [\"3\\n\", [\"7\"]]}"}),
        );
        assert_eq!(p.id.as_str(), "apps-4001");
        assert_eq!(p.source, "apps");
        let Target::Code { tests } = &p.target else {
            panic!("code")
        };
        let TestStyle::Stdio { cases } = &tests.style else {
            panic!("stdio")
        };
        assert_eq!(cases[1].input, "3 4\n");
        assert_eq!(cases[1].output, "7\n");
        assert!(p.solution.unwrap().starts_with("print"));
    }

    #[test]
    fn taco_call_tests_become_a_check_program_and_limits_are_read_from_text() {
        let p = import(
            ImportFormat::Apps,
            json!({"question": "Return the sum.", "starter_code": "def add(a, b):\n\t",
                "solutions": "[]", "input_output": "{\"fn_name\": \"add\", \"inputs\": [[1, 2]], \"outputs\": [[3]]}",
                "difficulty": "EASY", "raw_tags": "['Math']", "name": null, "source": "codewars",
                "tags": "['Mathematics']", "skill_types": "[]", "url": "u", "Expected Auxiliary Space": null,
                "time_limit": "2.0 seconds", "date": "2021-03-04", "picture_num": "0",
                "memory_limit": "256.0 megabytes", "Expected Time Complexity": null}),
        );
        assert_eq!(p.source, "taco");
        let row = p.to_row();
        assert_eq!(row["tests"]["entry_point"], "add");
        assert_eq!(row["tests"]["time_limit_s"], 2.0);
        assert_eq!(row["tests"]["memory_limit_mb"], 256);
        assert_eq!(row["metadata"]["date"], "2021-03-04");
        assert_eq!(row["metadata"]["source"], "codewars");
    }

    #[test]
    fn geeksforgeeks_function_tasks_with_driver_input_are_skipped_by_reason() {
        let reason = skipped(
            ImportFormat::Apps,
            json!({"question": "Find the kth missing number.", "source": "geeksforgeeks",
                "starter_code": "#User function Template for python3\n\nclass Solution:\n    def kthMissing(self, arr, n, k):\n        # code here",
                "input_output": "{\"inputs\": [\"n = 5\\nk = 3\\narr[] = {1, 2, 4, 5, 6}\"], \"outputs\": [\"7\"]}",
                "skill_types": "[]", "raw_tags": "[]", "solutions": "[]"}),
        );
        assert_eq!(reason, super::DRIVER_TESTS);
    }

    #[test]
    fn a_folder_of_the_original_release_reads_as_a_row() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("2404");
        std::fs::create_dir(&p).unwrap();
        std::fs::write(p.join("question.txt"), "Find it.").unwrap();
        std::fs::write(
            p.join("starter_code.py"),
            "class Solution:\n    def f(self, a: List[int]) -> int:\n        ",
        )
        .unwrap();
        std::fs::write(
            p.join("input_output.json"),
            r#"{"fn_name": "f", "inputs": [[[1]]], "outputs": [1]}"#,
        )
        .unwrap();
        std::fs::write(
            p.join("solutions.json"),
            r#"["class Solution:\n    def f(self, a):\n        return a[0]"]"#,
        )
        .unwrap();
        std::fs::write(
            p.join("metadata.json"),
            r#"{"difficulty": "introductory", "url": "https://leetcode.com/problems/x/"}"#,
        )
        .unwrap();
        std::fs::write(p.join("gen_solutions.json"), "[]").unwrap();
        assert!(super::is_problem_folder(&p));
        let row = super::folder_row(&p).unwrap();
        let problem = import(ImportFormat::Apps, row);
        assert_eq!(problem.id.as_str(), "apps-2404");
        let r = problem.to_row();
        assert_eq!(r["tests"]["entry_point"], "Solution().f");
        assert_eq!(r["metadata"]["difficulty"], "introductory");
        assert!(r["metadata"].get("gen_solutions").is_none());
    }

    #[test]
    fn rows_without_tests_are_skipped_and_broken_tests_located() {
        assert_eq!(
            skipped(
                ImportFormat::Apps,
                json!({"problem_id": 1, "question": "Q", "input_output": ""})
            ),
            "no tests"
        );
        assert_eq!(
            failed(
                ImportFormat::Apps,
                json!({"problem_id": 1, "question": "Q", "input_output": "{bad"})
            ),
            ["input_output"]
        );
        assert_eq!(
            failed(
                ImportFormat::Apps,
                json!({"problem_id": 1, "question": "Q",
                "input_output": "{\"inputs\": [\"1\"], \"outputs\": []}"})
            ),
            ["input_output"]
        );
    }
}
