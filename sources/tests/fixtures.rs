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
    let mut importer = Importer::new(ImportOptions {
        format,
        before: None,
    });
    let (mut diags, mut problems) = (Vec::new(), Vec::new());
    importer.file(file, &mut |d| diags.push(d.to_string()), &mut |p| {
        problems.push(p)
    });
    let s = importer.summary;
    assert_eq!(
        s.imported + s.skipped_total() + s.bad_rows,
        s.rows,
        "every row is accounted for: {s:?}"
    );
    (s, diags, problems)
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
            ("multiple-part question", 1),
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
        [("multiple-part question", 1), ("no final answer", 1)]
    );
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
    assert_eq!(problems.len(), 2);
    assert_eq!(problems[1].id.as_str(), "aime-2024-II-1");
    assert_eq!(problems[1].to_row()["answer"], "73");
    assert_eq!(problems[1].metadata.as_ref().unwrap()["date"], "2024-12-31");
    assert_eq!(diags.len(), 2, "{diags:?}");
    assert!(
        diags[0].contains("aime-1983-2024.csv:4: question: must not be empty"),
        "{diags:?}"
    );
}
