//! open-r1's Codeforces (`open-r1/codeforces`): `id`, `title`, `description`, `input_format`,
//! `output_format`, `interaction_format`, `note`, `examples` and `official_tests` (lists of
//! `{input, output}`), `time_limit` (seconds), `memory_limit` (MB), `contest_start` (Unix
//! seconds), `input_mode`, `generated_checker` (a Python checker for problems with several
//! right answers), `rating`, `tags`. The statement is assembled as Codeforces shows it; the
//! examples are shown, the official tests hidden; interactive problems are skipped, since a
//! stdin/stdout run cannot play the interactor.

use super::python::file_checker;
use super::{id_with, parse_day, set_date, Mapped, Source, STDIO_NOTE};
use serde_json::{json, Value};

/// A list of `{input, output}` objects.
fn cases(src: &mut Source, name: &str) -> Vec<(String, String)> {
    let Some((_, v)) = src.any(&[name]) else {
        return Vec::new();
    };
    let Some(items) = v.as_array() else {
        src.error(name, "expected a list of {input, output}");
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let get = |k: &str| item.get(k).and_then(Value::as_str).map(str::to_string);
        match (get("input"), get("output")) {
            (Some(input), Some(output)) => out.push((input, output)),
            _ => src.error(&format!("{name}[{i}]"), "expected {input, output} strings"),
        }
    }
    out
}

pub(super) fn map(src: &mut Source) -> Option<Mapped> {
    src.discard(&["editorial", "prompt"]);
    let id = src.required(&["id"]);
    let title = src.text(&["title"]).unwrap_or_default();
    let description = src.required(&["description"]);
    let input_format = src.text(&["input_format"]).unwrap_or_default();
    let output_format = src.text(&["output_format"]).unwrap_or_default();
    let interaction = src.text(&["interaction_format"]).unwrap_or_default();
    let note = src.text(&["note"]).unwrap_or_default();
    let examples = cases(src, "examples");
    let official = cases(src, "official_tests");
    let time_limit = src.number(&["time_limit"]).filter(|t| *t > 0.0);
    let memory = src.number(&["memory_limit"]).filter(|m| *m > 0.0);
    let date = src.any(&["contest_start"]).and_then(|(_, v)| parse_day(v));
    let input_mode = src.text(&["input_mode"]).unwrap_or_default();
    let checker = src
        .text(&["generated_checker"])
        .filter(|c| !c.trim().is_empty());
    let (id, description) = (id?, description?);
    if !interaction.trim().is_empty() {
        return Some(Mapped::skip("interactive"));
    }
    if input_mode == "file" {
        return Some(Mapped::skip(
            "reads or writes named files, not stdin/stdout",
        ));
    }
    if examples.is_empty() && official.is_empty() {
        return Some(Mapped::skip("no tests"));
    }
    let mut question = String::new();
    if !title.trim().is_empty() {
        question.push_str(&format!("{}\n\n", title.trim()));
    }
    question.push_str(description.trim());
    for (head, body) in [("Input", &input_format), ("Output", &output_format)] {
        if !body.trim().is_empty() {
            question.push_str(&format!("\n\n{head}\n\n{}", body.trim()));
        }
    }
    if !examples.is_empty() {
        question.push_str("\n\nExamples");
        for (i, o) in &examples {
            question.push_str(&format!(
                "\n\nInput\n```\n{}\n```\nOutput\n```\n{}\n```",
                i.trim_end(),
                o.trim_end()
            ));
        }
    }
    if !note.trim().is_empty() {
        question.push_str(&format!("\n\nNote\n\n{}", note.trim()));
    }
    question.push_str(STDIO_NOTE);
    let all: Vec<Value> = examples
        .iter()
        .map(|(i, o)| json!({"input": i, "output": o, "public": true}))
        .chain(
            official
                .iter()
                .map(|(i, o)| json!({"input": i, "output": o})),
        )
        .collect();
    let mut tests = json!({"type": "stdio", "cases": all});
    if let Some(t) = time_limit {
        tests["time_limit_s"] = json!(t);
    }
    if let Some(m) = memory {
        tests["memory_limit_mb"] = json!(m.round() as u32);
    }
    if let Some(program) = &checker {
        tests["checker"] = json!(file_checker(program));
    }
    let mut out = json!({
        "id": id_with("cf", &id),
        "source": "codeforces",
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
    use super::super::testing::{failed, import, skipped};
    use super::super::ImportFormat;
    use serde_json::json;
    use start_schemas::problem::{Judge, Target, TestStyle};

    pub(crate) fn row() -> serde_json::Value {
        json!({"id": "2063A", "aliases": null, "contest_id": "2063", "contest_name": "Codeforces Round 1000 (Div. 2)",
            "contest_type": "CF", "contest_start": 1737297300, "contest_start_year": 2025, "index": "A",
            "time_limit": 1.0, "memory_limit": 256.0, "title": "Minimal Coprime",
            "description": "Count the minimal coprime segments in [l, r].",
            "input_format": "Each test has l and r.", "output_format": "Print the count.",
            "interaction_format": null, "note": "In the first test ...",
            "examples": [{"input": "1\n1 2\n", "output": "1\n"}],
            "editorial": "Long editorial.", "rating": 800, "tags": ["math"], "testset_size": 3,
            "official_tests": [{"input": "1\n1 1\n", "output": "1\n"}, {"input": "1\n9 982\n", "output": "973\n"}],
            "official_tests_complete": true, "input_mode": "stdio", "generated_checker": null,
            "executable": true, "generated_tests": 0, "prompt": "You will be given ..."})
    }

    #[test]
    fn examples_are_shown_official_tests_hidden_and_the_contest_dated() {
        let p = import(ImportFormat::Codeforces, row());
        assert_eq!(p.id.as_str(), "cf-2063A");
        assert!(p.question.starts_with("Minimal Coprime\n\nCount"));
        assert!(p.question.contains("Examples\n\nInput\n```\n1\n1 2\n```"));
        let Target::Code { tests } = &p.target else {
            panic!("code")
        };
        let TestStyle::Stdio { cases } = &tests.style else {
            panic!("stdio")
        };
        assert_eq!(cases.iter().filter(|c| c.public).count(), 1);
        assert_eq!(cases.len(), 3);
        assert_eq!(tests.time_limit_s, Some(1.0));
        assert_eq!(tests.memory_limit_mb, Some(256));
        let meta = p.metadata.unwrap();
        assert_eq!(meta["date"], "2025-01-19");
        assert_eq!(meta["rating"], 800);
        assert!(meta.get("editorial").is_none() && meta.get("prompt").is_none());
    }

    #[test]
    fn a_generated_checker_becomes_the_judge() {
        let mut r = row();
        r["generated_checker"] = json!("import sys\nprint(1)\n");
        let p = import(ImportFormat::Codeforces, r);
        let Target::Code { tests } = &p.target else {
            panic!("code")
        };
        let Judge::Checker { program } = &tests.judge else {
            panic!("checker")
        };
        assert!(program.contains("def check(input, expected, output)"));
        assert!(program.contains("print(1)"));
    }

    #[test]
    fn interactive_and_file_problems_are_skipped_and_bad_tests_located() {
        let mut r = row();
        r["interaction_format"] = json!("Print queries as ? x.");
        assert_eq!(skipped(ImportFormat::Codeforces, r), "interactive");
        let mut r = row();
        r["input_mode"] = json!("file");
        assert_eq!(
            skipped(ImportFormat::Codeforces, r),
            "reads or writes named files, not stdin/stdout"
        );
        let mut r = row();
        r["examples"] = json!(null);
        r["official_tests"] = json!([]);
        assert_eq!(skipped(ImportFormat::Codeforces, r), "no tests");
        let mut r = row();
        r["official_tests"] = json!([{"input": "1"}]);
        assert_eq!(failed(ImportFormat::Codeforces, r), ["official_tests[0]"]);
    }
}
