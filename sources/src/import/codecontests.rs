//! DeepMind CodeContests: `name`, `description`, `public_tests`, `private_tests` and
//! `generated_tests` (each `{input: [...], output: [...]}`), `solutions` and
//! `incorrect_solutions` (`{language: [...], solution: [...]}`, language 3 = Python 3),
//! `time_limit {seconds, nanos}`, `memory_limit_bytes`, `source` (an enum: 2 = Codeforces),
//! `difficulty`, `cf_*`, `input_file`/`output_file`. Public tests are shown; private and
//! generated ones are hidden; every one is graded.

use super::{id_with, Mapped, Source, STDIO_NOTE};
use serde_json::{json, Value};

/// CodeContests' `Language` enum value for Python 3.
const PYTHON3: i64 = 3;
/// Python 3 solutions kept beside the first (which becomes `solution`).
const MORE_SOLUTIONS: usize = 4;

/// CodeContests' `Source` enum, by value.
fn source_name(n: i64) -> &'static str {
    match n {
        1 => "codechef",
        2 => "codeforces",
        3 => "hackerearth",
        4 => "codejam",
        5 => "atcoder",
        6 => "aizu",
        _ => "unknown",
    }
}

/// The cases of a `{input: [...], output: [...]}` column.
fn tests(src: &mut Source, name: &str) -> Vec<(String, String)> {
    let Some((_, v)) = src.any(&[name]) else {
        return Vec::new();
    };
    let list = |k: &str| -> Option<Vec<String>> {
        v.get(k)?
            .as_array()?
            .iter()
            .map(|x| x.as_str().map(str::to_string))
            .collect()
    };
    match (list("input"), list("output")) {
        (Some(i), Some(o)) if i.len() == o.len() => i.into_iter().zip(o).collect(),
        (Some(i), Some(o)) => {
            src.error(
                name,
                format!("has {} inputs but {} outputs", i.len(), o.len()),
            );
            Vec::new()
        }
        _ => {
            src.error(name, "expected {input: [strings], output: [strings]}");
            Vec::new()
        }
    }
}

pub(super) fn map(src: &mut Source) -> Option<Mapped> {
    src.discard(&["incorrect_solutions", "untranslated_description"]);
    let name = src.required(&["name"]);
    let description = src.required(&["description"]);
    let public = tests(src, "public_tests");
    let mut hidden = tests(src, "private_tests");
    hidden.extend(tests(src, "generated_tests"));
    let time_limit = src.any(&["time_limit"]).and_then(|(_, v)| {
        let secs = v.get("seconds").and_then(Value::as_f64).unwrap_or(0.0);
        let nanos = v.get("nanos").and_then(Value::as_f64).unwrap_or(0.0);
        Some(secs + nanos / 1e9).filter(|t| *t > 0.0)
    });
    let memory = src
        .number(&["memory_limit_bytes"])
        .map(|b| (b / f64::from(1u32 << 20)).round() as u32)
        .filter(|m| *m > 0);
    let origin = src.number(&["source"]).map(|n| source_name(n as i64));
    let python: Vec<String> = src
        .any(&["solutions"])
        .map(|(_, v)| {
            let langs = v.get("language").and_then(Value::as_array);
            let code = v.get("solution").and_then(Value::as_array);
            match (langs, code) {
                (Some(l), Some(c)) => l
                    .iter()
                    .zip(c)
                    .filter(|(l, _)| l.as_i64() == Some(PYTHON3))
                    .filter_map(|(_, c)| c.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            }
        })
        .unwrap_or_default();
    let files = ["input_file", "output_file"]
        .iter()
        .any(|f| src.text(&[f]).is_some_and(|s| !s.trim().is_empty()));
    let (name, description) = (name?, description?);
    if files {
        return Some(Mapped::skip(
            "reads or writes named files, not stdin/stdout",
        ));
    }
    if public.is_empty() && hidden.is_empty() {
        return Some(Mapped::skip("no tests"));
    }
    let cases: Vec<Value> = public
        .iter()
        .map(|(i, o)| json!({"input": i, "output": o, "public": true}))
        .chain(hidden.iter().map(|(i, o)| json!({"input": i, "output": o})))
        .collect();
    let mut tests = json!({"type": "stdio", "cases": cases});
    if let Some(t) = time_limit {
        tests["time_limit_s"] = json!(t);
    }
    if let Some(m) = memory {
        tests["memory_limit_mb"] = json!(m);
    }
    let mut out = json!({
        "id": id_with("cc", &name),
        "source": "codecontests",
        "kind": "code",
        "question": format!("{}{STDIO_NOTE}", description.trim()),
        "tests": tests,
    });
    if let Some(first) = python.first() {
        out["solution"] = json!(first);
    }
    if python.len() > 1 {
        out["metadata"]["python_solutions"] =
            json!(python[1..].iter().take(MORE_SOLUTIONS).collect::<Vec<_>>());
    }
    if let Some(origin) = origin {
        out["metadata"]["origin"] = json!(origin);
    }
    Some(Mapped::Problem(out))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{failed, import, skipped};
    use super::super::ImportFormat;
    use serde_json::json;
    use start_schemas::problem::{Target, TestStyle};

    fn row() -> serde_json::Value {
        json!({"name": "1548_E. Gregor and the Two Painters", "description": "Print a+b.\n\nInput\n\nTwo integers.\n\nOutput\n\nTheir sum.",
            "public_tests": {"input": ["1 2\n"], "output": ["3\n"]},
            "private_tests": {"input": ["5 5\n"], "output": ["10\n"]},
            "generated_tests": {"input": ["0 0\n", "7 1\n"], "output": ["0\n", "8\n"]},
            "source": 2, "difficulty": 11,
            "solutions": {"language": [2, 3, 1, 3], "solution": ["int main(){}", "print(sum(map(int, input().split())))", "print sum(...)", "a, b = map(int, input().split()); print(a + b)"]},
            "incorrect_solutions": {"language": [3], "solution": ["print(0)"]},
            "cf_contest_id": 1548, "cf_index": "E", "cf_points": 2500.0, "cf_rating": 3400, "cf_tags": ["math"],
            "is_description_translated": false, "untranslated_description": "",
            "time_limit": {"seconds": 2, "nanos": 500000000}, "memory_limit_bytes": 268435456,
            "input_file": "", "output_file": ""})
    }

    #[test]
    fn public_tests_are_shown_the_rest_hidden_and_limits_mapped() {
        let p = import(ImportFormat::Codecontests, row());
        assert_eq!(p.id.as_str(), "cc-1548_E._Gregor_and_the_Two_Painters");
        let Target::Code { tests } = &p.target else {
            panic!("code")
        };
        let TestStyle::Stdio { cases } = &tests.style else {
            panic!("stdio")
        };
        assert_eq!(
            cases.iter().map(|c| c.public).collect::<Vec<_>>(),
            [true, false, false, false]
        );
        assert_eq!(tests.time_limit_s, Some(2.5));
        assert_eq!(tests.memory_limit_mb, Some(256));
        assert_eq!(
            p.solution.as_deref(),
            Some("print(sum(map(int, input().split())))")
        );
        let meta = p.metadata.unwrap();
        assert_eq!(
            meta["python_solutions"].as_array().unwrap().len(),
            1,
            "Python 2 is not kept"
        );
        assert_eq!(meta["origin"], "codeforces");
        assert_eq!(meta["cf_rating"], 3400);
        assert!(meta.get("incorrect_solutions").is_none());
    }

    #[test]
    fn file_io_and_testless_problems_are_skipped_and_bad_tests_located() {
        let mut r = row();
        r["input_file"] = json!("input.txt");
        assert_eq!(
            skipped(ImportFormat::Codecontests, r),
            "reads or writes named files, not stdin/stdout"
        );
        let mut r = row();
        for k in ["public_tests", "private_tests", "generated_tests"] {
            r[k] = json!({"input": [], "output": []});
        }
        assert_eq!(skipped(ImportFormat::Codecontests, r), "no tests");
        let mut r = row();
        r["private_tests"] = json!({"input": ["1"], "output": []});
        assert_eq!(failed(ImportFormat::Codecontests, r), ["private_tests"]);
    }
}
