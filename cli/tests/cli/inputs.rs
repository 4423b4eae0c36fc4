//! Problem files in: validate, import (every public layout, skips by place, decontamination
//! and mixing) and inspect.

use super::*;

#[test]
fn validate_accepts_the_bundled_examples() {
    let out = startctl(&[
        "validate",
        "examples/problems/math.jsonl",
        "examples/problems/choice.jsonl",
        "examples/problems/code.jsonl",
    ]);
    let s = text(&out);
    assert_eq!(out.status.code(), Some(0), "{s}");
    assert!(s.contains("examples  math          17"), "{s}");
    assert!(
        s.contains("35 rows, 35 valid problems, 0 errors in 3 file(s)"),
        "{s}"
    );
}

#[test]
fn validate_reports_every_error_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.jsonl");
    std::fs::write(
        &f,
        "{\"source\":\"math\",\"kind\":\"math\",\"question\":\"q\"}\nnot json\n",
    )
    .unwrap();
    let name = f.display().to_string();
    let out = startctl(&["validate", &name]);
    let s = text(&out);
    assert_eq!(out.status.code(), Some(2), "{s}");
    assert!(
        s.contains(&format!(
            "{name}:1: answer: missing; this field is required"
        )),
        "{s}"
    );
    assert!(
        s.contains(&format!("{name}:2: (row): invalid JSON at column 2")),
        "{s}"
    );
    assert!(s.contains("2 rows, 0 valid problems, 2 errors"), "{s}");
}

/// A 1 GiB line under a 512 MiB address-space limit: validate must report it, not load it.
#[test]
fn validate_survives_a_gigabyte_line_in_bounded_memory() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("huge.jsonl");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&f).unwrap());
    writeln!(
        w,
        r#"{{"id":"a","source":"math","kind":"math","question":"1+1","answer":"2"}}"#
    )
    .unwrap();
    w.write_all(b"{\"question\":\"").unwrap();
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..1024 {
        w.write_all(&chunk).unwrap();
    }
    w.write_all(b"\"}\n").unwrap();
    drop(w);
    let script = format!(
        "ulimit -v 524288 && exec '{}' validate '{}'",
        env!("CARGO_BIN_EXE_startctl"),
        f.display()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let s = text(&out);
    assert_eq!(out.status.code(), Some(2), "{s}");
    assert!(
        s.contains(":2: (row): line is 1073741839 bytes, longer than the limit of 16777216 bytes"),
        "{s}"
    );
    assert!(s.contains("2 rows, 1 valid problems, 1 errors"), "{s}");
}

#[test]
fn import_maps_every_public_layout_to_valid_problems() {
    let dir = tempfile::tempdir().unwrap();
    for (format, file, rows) in [
        ("aime", "aime.jsonl", 2),
        ("math", "math.json", 2),
        ("gpqa-csv", "gpqa.csv", 2),
        ("humaneval", "humaneval.jsonl", 1),
        ("livecodebench", "livecodebench.jsonl", 2),
    ] {
        let out_file = dir.path().join(format!("{format}.jsonl"));
        let out_name = out_file.display().to_string();
        let out = startctl(&[
            "import",
            "--format",
            format,
            &fixture(file),
            "-o",
            &out_name,
        ]);
        let s = text(&out);
        assert_eq!(out.status.code(), Some(0), "{format}: {s}");
        assert!(
            s.contains(&format!(
                "imported {rows} of {rows} rows as {format}: 0 skipped, 0 with errors (0 errors)"
            )),
            "{s}"
        );
        let check = startctl(&["validate", &out_name]);
        assert_eq!(check.status.code(), Some(0), "{format}: {}", text(&check));
    }
    let aime = std::fs::read_to_string(dir.path().join("aime.jsonl")).unwrap();
    assert!(aime.contains(r#""answer":"25""#), "{aime}");
    let math = std::fs::read_to_string(dir.path().join("math.jsonl")).unwrap();
    assert!(math.contains(r#""answer":"\\frac{5}{6}""#), "{math}");
}

#[test]
fn import_names_rows_it_cannot_map() {
    let out = startctl(&["import", "--format", "humaneval", &fixture("aime.jsonl")]);
    let s = text(&out);
    assert_eq!(out.status.code(), Some(2), "{s}");
    assert!(
        s.contains("aime.jsonl:2: entry_point: missing; this layout needs it"),
        "{s}"
    );
    assert!(
        s.contains("imported 0 of 2 rows as humaneval: 0 skipped, 2 with errors (8 errors)"),
        "{s}"
    );
}

/// A release's quirks are counted skips, listed with their place in `--report`; only
/// `--strict` turns an invalid row into exit 2. The AIME CSV is shaped like the 1983–2024
/// release (sources/tests/fixtures/README.md): a row whose contest accepted two answers, and
/// an empty row.
#[test]
fn import_reports_skips_by_place_and_fails_only_when_strict() {
    let dir = tempfile::tempdir().unwrap();
    let csv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../sources/tests/fixtures/aime-1983-2024.csv")
        .display()
        .to_string();
    let out_file = dir.path().join("aime.jsonl").display().to_string();
    let report = dir.path().join("report.jsonl");
    let out = startctl(&[
        "import",
        "--format",
        "aime",
        &csv,
        "-o",
        &out_file,
        "--report",
        report.to_str().unwrap(),
    ]);
    let s = text(&out);
    assert_eq!(out.status.code(), Some(0), "{s}");
    assert!(
        s.contains("imported 3 of 4 rows as aime: 0 skipped, 1 with errors (2 errors)"),
        "{s}"
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&report)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0]["place"]
        .as_str()
        .unwrap()
        .ends_with("aime-1983-2024.csv:4"));
    assert_eq!(lines[0]["reason"], "invalid");
    assert_eq!(lines[0]["errors"][0]["field"], "question");
    let rows = std::fs::read_to_string(&out_file).unwrap();
    assert!(rows.contains(r#""also_accepted":["81"]"#), "{rows}");
    assert_eq!(startctl(&["validate", &out_file]).status.code(), Some(0));

    let strict = startctl(&[
        "import", "--format", "aime", &csv, "-o", &out_file, "--strict",
    ]);
    assert_eq!(strict.status.code(), Some(2), "{}", text(&strict));
    assert!(text(&strict).contains("--strict: 1 invalid rows"));
}

#[test]
fn inspect_summarises_and_shows_rows() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<_> = (0..12).map(start_tests::trajectory).collect();
    write_dataset(dir.path(), &rows);
    std::fs::create_dir_all(dir.path().join("_staging")).unwrap();
    std::fs::write(dir.path().join("_staging/stray.parquet.staged"), b"orphan").unwrap();
    let root = dir.path().display().to_string();
    let out = startctl(&["inspect", &root, "--rows", "2", "--color", "never"]);
    let s = text(&out);
    assert_eq!(out.status.code(), Some(0), "{s}");
    assert!(s.contains("1 shards, 12 rows"), "{s}");
    assert!(s.contains("unit-0"), "{s}");
    assert!(
        s.contains("note: 1 staged upload(s) in _staging/ not committed; no reader sees them"),
        "{s}"
    );
    // Fixture i: source by i % 3; graded correct when i % 3 == 0, wrong when 1, else ungraded.
    assert!(
        s.contains("aime             math           4        4        4    100.0%"),
        "{s}"
    );
    assert!(
        s.contains("gpqa             choice         4        4        0      0.0%"),
        "{s}"
    );
    assert!(
        s.contains("livecodebench    code           4        0        0         -"),
        "{s}"
    );
    assert!(
        s.contains("[hint] Wait, maybe using Python here is a good idea."),
        "{s}"
    );
    assert!(s.contains("=== problem-0 sample 1"), "{s}");
    let colored = startctl(&["inspect", &root, "--rows", "1", "--color", "always"]);
    assert!(text(&colored).contains("\x1b[1;35mSo the answer is"));

    let shard = dir.path().join("data/unit-0.parquet");
    let mut bytes = std::fs::read(&shard).unwrap();
    bytes[10] ^= 0x55;
    std::fs::write(&shard, bytes).unwrap();
    let damaged = startctl(&["inspect", &root, "--no-verify"]);
    assert_ne!(damaged.status.code(), Some(0));
    let out = startctl(&["inspect", &root]);
    let s = text(&out);
    assert_ne!(out.status.code(), Some(0), "{s}");
    assert!(s.contains("FAILED:"), "{s}");
}

/// The documented path from public files to a problem set: import two layouts, decontaminate
/// against an evaluation set, mix, and rebuild the mix from its recipe.
#[test]
fn import_decontaminate_and_mix_from_public_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let sources = |name: &str| {
        workspace()
            .join("sources/tests/fixtures")
            .join(name)
            .display()
            .to_string()
    };
    let out = startctl(&[
        "import",
        "--format",
        "numina",
        &sources("numina-1.5.jsonl"),
        &sources("numina-cot.jsonl"),
        "-o",
        &path("numina.jsonl"),
    ]);
    let s = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the fixture's malformed rows are counted, not fatal: {s}"
    );
    assert!(
        s.contains("imported 5 of 14 rows as numina: 7 skipped, 2 with errors"),
        "{s}"
    );
    assert!(s.contains("skipped        1  proof"), "{s}");
    let out = startctl(&[
        "import",
        "--format",
        "aime",
        &sources("aime-1983-2024.csv"),
        "-o",
        &path("aime.jsonl"),
        "--before",
        "2024-01-01",
    ]);
    let s = text(&out);
    assert!(s.contains("imported 2 of 4 rows as aime: 1 skipped"), "{s}");
    assert!(s.contains("dated on or after the --before cut-off"), "{s}");

    // An evaluation set that quotes AIME 1983's first problem, reworded around a long span.
    let eval = r#"{"id": "eval-1", "source": "aime", "kind": "math", "question": "Suppose $x$, $y$ and $z$ all exceed $1$ and let $w$ be a positive number such that $\\log_xw=24$, $\\log_y w = 40$ and $\\log_{xyz}w=12$. What is $\\log_zw$?", "answer": "60"}"#;
    std::fs::write(path("eval.jsonl"), format!("{eval}\n")).unwrap();
    let out = startctl(&[
        "decontaminate",
        "--problems",
        &path("aime.jsonl"),
        &path("numina.jsonl"),
        "--against",
        &path("eval.jsonl"),
        "-o",
        &path("clean.jsonl"),
    ]);
    let s = text(&out);
    assert_eq!(out.status.code(), Some(0), "{s}");
    assert!(
        s.contains(
            "kept 6 of 7 problems against 1 evaluation items: 1 contaminated, 0 near-duplicates"
        ),
        "{s}"
    );
    let report = std::fs::read_to_string(path("clean.jsonl.removed.jsonl")).unwrap();
    let removed: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    assert_eq!(removed["id"], "aime-1983-1");
    assert_eq!(removed["matched_id"], "eval-1");
    assert_eq!(removed["reason"], "contaminated");

    let out = startctl(&[
        "mix",
        &path("clean.jsonl"),
        "--take",
        "math=2",
        "--seed",
        "5",
        "-o",
        &path("mix.jsonl"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mix = std::fs::read_to_string(path("mix.jsonl")).unwrap();
    assert_eq!(mix.lines().count(), 2);
    let recipe: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path("mix.jsonl.recipe.json")).unwrap())
            .unwrap();
    assert_eq!(recipe["outcomes"][0]["available"], 6);
    assert_eq!(recipe["seed"], 5);
    let out = startctl(&[
        "mix",
        "--recipe",
        &path("mix.jsonl.recipe.json"),
        "-o",
        &path("again.jsonl"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(path("again.jsonl")).unwrap(), mix);
    let out = startctl(&[
        "mix",
        &path("clean.jsonl"),
        "--take",
        "math=7",
        "-o",
        &path("short.jsonl"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("asks for 7 problems but the inputs hold 6"));
    std::fs::write(path("clean.jsonl"), "").unwrap();
    let out = startctl(&[
        "mix",
        "--recipe",
        &path("mix.jsonl.recipe.json"),
        "-o",
        &path("again.jsonl"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("has changed since the recipe was written"),
        "{}",
        text(&out)
    );
}
