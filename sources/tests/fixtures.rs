//! Each importer on a small file in its source's real layout (written for this project: the
//! column names and nesting of the public releases, no third-party data), with rows to keep,
//! rows to skip and malformed rows; and the CodeContests layout read from Parquet with the
//! nested types the Hugging Face release uses, written by pyarrow.

use start_schemas::problem::Problem;
use start_sources::import::ImportFormat;
use start_sources::importer::{ImportOptions, ImportSummary, Importer};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn import(format: ImportFormat, file: &Path) -> (ImportSummary, Vec<String>, Vec<Problem>) {
    let (s, diags, _, problems) = import_with(format, file, None);
    (s, diags, problems)
}

/// Imports a file or directory; also returns each skipped row as `place: reason (detail)`.
fn import_with(
    format: ImportFormat,
    file: &Path,
    before: Option<chrono::NaiveDate>,
) -> (ImportSummary, Vec<String>, Vec<String>, Vec<Problem>) {
    let mut importer = Importer::new(ImportOptions { format, before });
    let (mut diags, mut skips, mut problems) = (Vec::new(), Vec::new(), Vec::new());
    importer.input(
        file,
        &mut |d| diags.push(d.to_string()),
        &mut |skip| {
            skips.push(format!(
                "{}: {} ({})",
                skip.location,
                skip.reason,
                skip.detail.unwrap_or("")
            ))
        },
        &mut |p| problems.push(p),
    );
    let s = importer.summary;
    assert_eq!(
        s.imported + s.skipped_total() + s.bad_rows,
        s.rows,
        "every row is accounted for: {s:?}"
    );
    (s, diags, skips, problems)
}

fn skipped(s: &ImportSummary) -> Vec<(&str, u64)> {
    s.skipped.iter().map(|(k, v)| (k.as_str(), *v)).collect()
}

#[test]
fn numina_1_5_and_cot() {
    let (s, diags, problems) = import(ImportFormat::Numina, &fixture("numina-1.5.jsonl"));
    assert_eq!(problems.len(), 2);
    assert_eq!(problems[1].source, "numina-amc_aime");
    assert_eq!(
        skipped(&s),
        [
            ("answer not found (notfound)", 1),
            ("multiple choice with its options in the text", 1),
            ("multiple-part question (enumerated parts)", 1),
            ("proof", 1)
        ]
    );
    assert_eq!(diags.len(), 2, "{diags:?}");
    assert!(
        diags[0].contains("numina-1.5.jsonl:7: problem:"),
        "{diags:?}"
    );
    assert!(diags[1].contains("numina-1.5.jsonl:8:"), "{diags:?}");

    let (s, diags, problems) = import(ImportFormat::Numina, &fixture("numina-cot.jsonl"));
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(problems[0].to_row()["answer"], "1024");
    assert_eq!(problems[0].source, "numina-synthetic_math");
    assert_eq!(
        skipped(&s),
        [
            ("multiple-part question (enumerated parts)", 1),
            ("no final answer", 1),
            ("several different boxed answers", 1)
        ]
    );
    // `f(1)` and `f(2)` in one question are function values, not parts; one answer boxed
    // twice is one answer.
    let answers: Vec<String> = problems
        .iter()
        .map(|p| p.to_row()["answer"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(answers, ["1024", "10", "12"]);
}

#[test]
fn codecontests() {
    let (s, diags, problems) = import(ImportFormat::Codecontests, &fixture("codecontests.jsonl"));
    assert_eq!(problems.len(), 1);
    let row = problems[0].to_row();
    assert_eq!(row["tests"]["cases"].as_array().unwrap().len(), 4);
    assert_eq!(row["tests"]["time_limit_s"], 2.0);
    assert_eq!(
        skipped(&s),
        [("reads or writes named files, not stdin/stdout", 1)]
    );
    assert_eq!(diags.len(), 1);
    assert!(
        diags[0].contains("codecontests.jsonl:3: public_tests: has 2 inputs but 1 outputs"),
        "{diags:?}"
    );
}

#[test]
fn codecontests_from_parquet_with_the_release_nested_types() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("train-00000-of-00039.parquet");
    // The release's Arrow types: tests and solutions are structs of lists, time_limit a
    // struct of integers, the enums int64.
    let script = r#"
import json, sys
import pyarrow as pa, pyarrow.parquet as pq
rows = [json.loads(l) for l in open(sys.argv[1])][:2]
tests = pa.struct([("input", pa.list_(pa.string())), ("output", pa.list_(pa.string()))])
sols = pa.struct([("language", pa.list_(pa.int64())), ("solution", pa.list_(pa.string()))])
schema = pa.schema([("name", pa.string()), ("description", pa.string()), ("public_tests", tests),
    ("private_tests", tests), ("generated_tests", tests), ("source", pa.int64()), ("difficulty", pa.int64()),
    ("solutions", sols), ("incorrect_solutions", sols), ("cf_contest_id", pa.int64()), ("cf_index", pa.string()),
    ("cf_points", pa.float32()), ("cf_rating", pa.int32()), ("cf_tags", pa.list_(pa.string())),
    ("is_description_translated", pa.bool_()), ("untranslated_description", pa.string()),
    ("time_limit", pa.struct([("seconds", pa.int64()), ("nanos", pa.int64())])),
    ("memory_limit_bytes", pa.int64()), ("input_file", pa.string()), ("output_file", pa.string())])
pq.write_table(pa.Table.from_pylist(rows, schema=schema), sys.argv[2])
"#;
    let status = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(fixture("codecontests.jsonl"))
        .arg(&out)
        .status()
        .expect("python3 with pyarrow (scripts/setup installs it)");
    assert!(status.success());
    let (s, diags, problems) = import(ImportFormat::Codecontests, &out);
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(s.rows, 2);
    assert_eq!(problems.len(), 1);
    let row = problems[0].to_row();
    assert_eq!(row["tests"]["memory_limit_mb"], 256);
    assert_eq!(row["tests"]["cases"][0]["public"], true);
    assert!(problems[0]
        .solution
        .as_deref()
        .unwrap()
        .contains("print(a + b)"));
}

#[test]
fn codeforces() {
    let (s, diags, problems) = import(ImportFormat::Codeforces, &fixture("codeforces.jsonl"));
    assert_eq!(problems.len(), 2);
    let checker = problems[1].to_row()["tests"]["checker"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(checker.contains("sorted(out) == sorted(ans)"));
    assert_eq!(problems[0].metadata.as_ref().unwrap()["date"], "2025-01-19");
    assert_eq!(skipped(&s), [("interactive", 1)]);
    assert_eq!(diags.len(), 1);
    assert!(
        diags[0].contains("codeforces.jsonl:4: examples[0]:"),
        "{diags:?}"
    );
}

#[test]
fn apps_and_taco() {
    let (s, diags, problems) = import(ImportFormat::Apps, &fixture("apps.jsonl"));
    assert_eq!(problems.len(), 2);
    assert_eq!(problems[1].to_row()["tests"]["type"], "check");
    assert_eq!(skipped(&s), [("no tests", 1)]);
    assert_eq!(diags.len(), 1);
    assert!(
        diags[0].contains("apps.jsonl:4: input_output:"),
        "{diags:?}"
    );

    let (_, diags, problems) = import(ImportFormat::Apps, &fixture("taco.jsonl"));
    assert!(diags.is_empty(), "{diags:?}");
    let row = problems[0].to_row();
    assert_eq!(row["source"], "taco");
    assert!(
        row["tests"].get("memory_limit_mb").is_none(),
        "50000 bytes is CodeChef's source limit"
    );
    assert_eq!(row["tests"]["time_limit_s"], 1.0);
    assert_eq!(row["metadata"]["date"], "2021-05-08");
}

#[test]
fn livecodebench_with_compressed_private_tests_and_a_hostile_pickle() {
    let (_, diags, problems) = import(ImportFormat::Livecodebench, &fixture("livecodebench.jsonl"));
    assert_eq!(problems.len(), 2);
    assert_eq!(
        problems[0].to_row()["tests"]["cases"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert!(problems[1].to_row()["tests"]["test"]
        .as_str()
        .unwrap()
        .contains("[3, 3]"));
    assert_eq!(diags.len(), 1);
    assert!(
        diags[0].contains("livecodebench.jsonl:3: private_test_cases:")
            && diags[0].contains("GLOBAL"),
        "{diags:?}"
    );
}

#[test]
fn aime_1983_2024_csv() {
    let (_, diags, problems) = import(ImportFormat::Aime, &fixture("aime-1983-2024.csv"));
    assert_eq!(problems.len(), 3);
    let two = problems[2].to_row();
    assert_eq!(two["id"], "aime-2022-II-8");
    assert_eq!(two["answer"], "80");
    assert_eq!(two["also_accepted"], serde_json::json!(["81"]));
    assert_eq!(problems[1].id.as_str(), "aime-2024-II-1");
    assert_eq!(problems[1].to_row()["answer"], "73");
    assert_eq!(problems[1].metadata.as_ref().unwrap()["date"], "2024-12-31");
    assert_eq!(diags.len(), 2, "{diags:?}");
    assert!(
        diags[0].contains("aime-1983-2024.csv:4: question: must not be empty"),
        "{diags:?}"
    );
}

#[test]
fn aime_derived_csv_with_units_and_a_skip_by_reason() {
    let (s, diags, skips, problems) =
        import_with(ImportFormat::Aime, &fixture("aime-derived.csv"), None);
    assert!(diags.is_empty(), "{diags:?}");
    let ids: Vec<&str> = problems.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        ["aime-1983-1", "aime-2025-II-5"],
        "the same ids as the 1983-2024 CSV"
    );
    assert_eq!(problems[1].to_row()["answer"], "336");
    assert_eq!(
        skipped(&s),
        [("answer is not an AIME integer from 0 to 999", 1)]
    );
    assert!(
        skips[0].contains("aime-derived.csv:4: answer is not an AIME integer")
            && skips[0].contains(r#"answer "\\frac{1}{2}""#),
        "{skips:?}"
    );
}

#[test]
fn ai_mo_style_aime_is_named_and_dated_by_its_urls() {
    let cut = chrono::NaiveDate::from_ymd_opt(2025, 1, 1);
    let (s, diags, _, problems) =
        import_with(ImportFormat::Aime, &fixture("aime24-aimo.jsonl"), cut);
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(s.imported, 3, "none is undated under --before: {s:?}");
    let ids: Vec<&str> = problems.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["aime-2024-I-1", "aime-2024-I-10", "aime-2024-II-1"]);
    let row = problems[2].to_row();
    assert_eq!(row["answer"], "73");
    assert_eq!(row["metadata"]["source_id"], "75");
    assert!(row["metadata"].get("question").is_none());
    let cut = chrono::NaiveDate::from_ymd_opt(2024, 6, 1);
    let (s, ..) = import_with(ImportFormat::Aime, &fixture("aime24-aimo.jsonl"), cut);
    assert_eq!(s.skipped["dated on or after the --before cut-off"], 3);
}

#[test]
fn amc_float_answers_print_as_integers() {
    let (_, diags, problems) = import(ImportFormat::Math, &fixture("amc23-aimo.jsonl"));
    assert!(diags.is_empty(), "{diags:?}");
    let answers: Vec<String> = problems
        .iter()
        .map(|p| p.to_row()["answer"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(answers, ["27", "-1", "0.5"]);
    assert_eq!(problems[0].id.as_str(), "math-amc12a-2023-1");
    assert_eq!(problems[0].metadata.as_ref().unwrap()["date"], "2023-12-31");
}

#[test]
fn gpqa_diamond_keeps_a_documented_subset_and_skips_repeated_options() {
    let (s, diags, skips, problems) =
        import_with(ImportFormat::GpqaCsv, &fixture("gpqa_diamond.csv"), None);
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(problems.len(), 2);
    assert_eq!(
        skipped(&s),
        [(
            "options repeat (a choice graded by letter needs distinct options)",
            1
        )]
    );
    assert!(
        skips[0].contains("gpqa_diamond.csv:4:")
            && skips[0].contains("Incorrect Answer 3 repeats Incorrect Answer 1"),
        "{skips:?}"
    );
    let p = &problems[0];
    assert_eq!(p.id.as_str(), "gpqa-recFixture000001");
    let row = p.to_row().to_string();
    for dropped in ["canary", "Feedback", "Pre-Revision", "fixture-expert"] {
        assert!(!row.contains(dropped), "{dropped} is not carried: {row}");
    }
    assert!(p.solution.as_deref().unwrap().contains("432,000 J"));
    assert!(
        !p.question.contains("432,000"),
        "the explanation is not in the prompt"
    );
    let start_schemas::problem::Target::Choice { choices, .. } = &p.target else {
        panic!("choice")
    };
    assert!(
        choices.contains(&"7.2 kJ".to_string()),
        "options are trimmed: {choices:?}"
    );
    let meta = p.metadata.as_ref().unwrap();
    assert_eq!(meta["domain"], "Physics");
    assert_eq!(meta["non_expert_accuracy"], 0.3333333333333333);
}

#[test]
fn humaneval_release_ids_and_equality_examples() {
    let (_, diags, problems) = import(ImportFormat::Humaneval, &fixture("HumanEval.jsonl.gz"));
    assert!(diags.is_empty(), "{diags:?}");
    let ids: Vec<&str> = problems.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["humaneval-0", "humaneval-1", "humaneval-2"]);
    let row = problems[1].to_row();
    assert_eq!(row["metadata"]["task_id"], "HumanEval/1");
    assert_eq!(
        row["tests"]["examples"],
        serde_json::json!([
            {"call": "digit_sum_count([])", "expected": "0"},
            {"call": "digit_sum_count([-1, 11, -11])", "expected": "1"}
        ])
    );
    assert_eq!(
        problems[2].to_row()["tests"]["examples"][0]["expected"],
        "'xix'"
    );
}

#[test]
fn apps_original_release_folders() {
    let (s, diags, skips, problems) = import_with(ImportFormat::Apps, &fixture("APPS/train"), None);
    assert!(diags.is_empty(), "{diags:?}");
    let ids: Vec<&str> = problems.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["apps-0004", "apps-0007"]);
    assert_eq!(skipped(&s), [("no tests", 1)]);
    assert!(skips[0].contains("0012"), "{skips:?}");
    let row = problems[0].to_row();
    assert_eq!(row["tests"]["entry_point"], "Solution().kthMissing");
    assert_eq!(row["metadata"]["difficulty"], "introductory");
    assert!(row["solution"].as_str().unwrap().contains("List[int]"));
    assert_eq!(problems[1].to_row()["tests"]["type"], "stdio");
}

#[test]
fn math_release_directory_in_natural_order_with_the_graders_answers() {
    let (_, diags, problems) = import(ImportFormat::Math, &fixture("MATH/test"));
    assert!(diags.is_empty(), "{diags:?}");
    let answers: Vec<String> = problems
        .iter()
        .map(|p| p.to_row()["answer"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        answers,
        [
            r"\$15,\!000",
            "-2, 1",
            r"-\$0.50",
            "4:1",
            r"\overline{AC}",
            "5",
            "12",
            "10"
        ],
        "directories in order, number_theory/2 before 11, two boxes read together"
    );
}

#[test]
fn math_problems_through_the_numina_rules_are_not_taken_for_parts() {
    let (s, diags, problems) = import(ImportFormat::Numina, &fixture("MATH/test"));
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(problems.len(), 7, "{s:?}");
    assert_eq!(skipped(&s), [("several different boxed answers", 1)]);
}

#[test]
fn taco_geeksforgeeks_rows_are_skipped_by_reason() {
    let (s, diags, problems) = import(ImportFormat::Apps, &fixture("taco.jsonl"));
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(problems.len(), 1);
    assert_eq!(
        skipped(&s),
        [(
            "function task whose tests are input to a driver program that is not released (GeeksforGeeks)",
            1
        )]
    );
}
