//! startctl as a user runs it: a real process, its output and its exit code.
//!
//! Why one file over 600 lines: every integration test file is its own binary that links the
//! whole CLI (llama.cpp included); one binary for all subcommands keeps the test build short.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn startctl(args: &[&str]) -> Output {
    startctl_with(args, Vec::new())
}

/// `startctl` with extra environment variables (an object store's credentials).
fn startctl_with(args: &[&str], env: Vec<(&'static str, String)>) -> Output {
    Command::new(env!("CARGO_BIN_EXE_startctl"))
        .args(args)
        .envs(env)
        .current_dir(workspace())
        .output()
        .expect("startctl runs")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

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

/// The README's second command: the same job, its coordinator and worker writing to an S3
/// bucket on the local test server (moto), then read back from S3 by inspect and export.
#[test]
fn run_writes_the_job_to_s3_on_the_local_test_server() {
    let server = start_tests::s3::S3Server::start("start-demo");
    let s3 = |args: &[&str]| startctl_with(args, server.env());
    let url = server.url("runs/one");
    let out = s3(&[
        "run",
        "--out",
        &url,
        "--max-new-tokens",
        "8",
        "--slots",
        "8",
        "--mode",
        "plain",
        "--backend",
        "process",
    ]);
    let s = text(&out);
    assert_eq!(out.status.code(), Some(0), "{s}");
    assert!(s.contains("44 trajectories"), "{s}");
    assert!(s.contains(&format!("dataset {url}: schema v")), "{s}");
    let inspect = s3(&["inspect", &url]);
    let s = text(&inspect);
    assert_eq!(inspect.status.code(), Some(0), "{s}");
    assert!(s.contains("44 rows") && !s.contains("FAILED"), "{s}");
    assert!(!s.contains("staged upload"), "nothing left staged: {s}");
    // The dataset card names the rows, the model that made them and where the data is.
    server.export_env();
    let loc = start_dataset::DatasetLocation::open(&url).unwrap();
    let card = block(loc.get("README.md")).unwrap();
    let card = String::from_utf8_lossy(&card);
    assert!(card.contains("| rows | 44 |"), "{card}");
    assert!(
        card.contains(start_schemas::model::DEFAULT_MODEL_SHA256),
        "{card}"
    );
    assert!(card.contains("path: data/*.parquet"), "{card}");
    // The report went into the bucket beside the dataset, and `run` named it.
    let report = block(loc.get("report.html")).unwrap();
    assert!(String::from_utf8_lossy(&report).contains("44 of the 44 rows"));
    assert!(
        text(&out).contains(&format!("report: {url}/report.html (44 rows")),
        "{}",
        text(&out)
    );
    let dir = tempfile::tempdir().unwrap();
    let sft = dir.path().join("sft").display().to_string();
    let export = s3(&[
        "export", "--from", &url, "--out", &sft, "--select", "correct",
    ]);
    assert_eq!(export.status.code(), Some(0), "{}", text(&export));
}

#[test]
fn run_generates_the_embedded_problems_into_a_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("run").display().to_string();
    // Short trajectories keep the test quick; the pipeline is the real one end to end.
    let out = startctl(&[
        "run",
        "--out",
        &data,
        "--max-new-tokens",
        "12",
        "--slots",
        "8",
        "--mode",
        "plain",
        "--backend",
        "process",
    ]);
    let s = text(&out);
    assert_eq!(out.status.code(), Some(0), "run scripts/setup first: {s}");
    assert!(s.contains("44 problems, 0 errors"), "{s}");
    assert!(s.contains("the default model"), "{s}");
    assert!(s.contains("tools: python,sql"), "{s}");
    assert!(s.contains("44 trajectories"), "{s}");
    // The data-analysis set's large file went through the dataset store, once.
    let sales_sha = {
        use sha2::Digest;
        let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data-analysis/sales.csv");
        hex::encode(sha2::Sha256::digest(std::fs::read(csv).unwrap()))
    };
    let kept: Vec<_> = std::fs::read_dir(Path::new(&data).join("_inputs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(kept, [sales_sha]);
    let inspect = startctl(&["inspect", &data]);
    let s = text(&inspect);
    assert_eq!(inspect.status.code(), Some(0), "{s}");
    assert!(s.contains("44 rows"), "{s}");
    assert!(s.contains("problems: 44"), "{s}");

    // Every row says what the model was shown and what made it.
    let rows = rows_of(Path::new(&data));
    let library = start_engine::HintLibrary::builtin();
    for t in &rows {
        assert!(t.prompt.contains(&t.user_message), "{t:?}");
        assert_eq!(t.prompt_token_ids.len() as u32, t.prompt_tokens);
        assert_eq!(t.hint_library_sha256, library.sha256);
        assert_eq!(t.sandbox, "process:python3");
        let settings = t
            .hint_settings
            .as_ref()
            .expect("hint settings on every row");
        assert_eq!(settings.end_hints, 0, "plain mode has no hints");
        assert_eq!(t.params.temperature, 0.0, "plain mode is greedy by default");
        assert_eq!(t.tools, ["python", "sql"]);
        assert_eq!(
            t.source == "data-analysis",
            t.user_message.starts_with(
                "Attached data (read-only, in the working directory of every code block):\n"
            ),
            "{}",
            t.user_message
        );
    }
    assert_eq!(
        rows.iter().filter(|t| t.source == "data-analysis").count(),
        9
    );
    // An export of the choice rows finds each row's options in its user turn. (Which rows
    // the grader judged right is not the point here: they are all marked kept.)
    let choices: Vec<_> = rows
        .iter()
        .filter(|t| t.kind == start_schemas::problem::ProblemKind::Choice)
        .map(|t| {
            let mut t = t.clone();
            t.correct = Some(true);
            t.finish_reason = start_schemas::trajectory::FinishReason::Stop;
            t
        })
        .collect();
    assert_eq!(choices.len(), 8);
    let marked = dir.path().join("choices");
    write_dataset(&marked, &choices);
    let sft = dir.path().join("sft");
    let export = startctl(&[
        "export",
        "--from",
        &marked.display().to_string(),
        "--out",
        &sft.display().to_string(),
        "--format",
        "jsonl",
    ]);
    assert_eq!(export.status.code(), Some(0), "{}", text(&export));
    let problems =
        std::fs::read_to_string(workspace().join("examples/problems/choice.jsonl")).unwrap();
    let options: std::collections::HashMap<String, Vec<String>> = problems
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let choices = v["choices"].as_array().unwrap().iter();
            (
                v["id"].as_str().unwrap().to_string(),
                choices.map(|c| c.as_str().unwrap().to_string()).collect(),
            )
        })
        .collect();
    let jsonl = std::fs::read_to_string(sft.join("sft.jsonl")).unwrap();
    let exported: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!exported.is_empty());
    for row in exported {
        let user = row["messages"][0]["content"].as_str().unwrap();
        for option in &options[row["problem_id"].as_str().unwrap()] {
            assert!(
                user.contains(&format!(". {option}\n")),
                "{option:?} not in {user:?}"
            );
        }
        assert!(user.contains("letter of the correct option"), "{user}");
    }

    let missing = Command::new(env!("CARGO_BIN_EXE_startctl"))
        .args(["run", "--model", "no/such/model.gguf"])
        .output()
        .unwrap();
    let s = text(&missing);
    assert_eq!(missing.status.code(), Some(1), "{s}");
    assert!(s.contains("model no/such/model.gguf: No such file"), "{s}");
}

/// Responses to the bundled examples: every math and choice problem answered right except the
/// first of each kind, every code problem with its reference solution; plus two bad rows.
#[test]
fn grade_reverifies_responses_and_names_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    let mut expected_correct = 0;
    for kind in ["math", "choice", "code"] {
        let text =
            std::fs::read_to_string(workspace().join(format!("examples/problems/{kind}.jsonl")))
                .unwrap();
        for (i, line) in text.lines().enumerate() {
            let p: serde_json::Value = serde_json::from_str(line).unwrap();
            let response = match kind {
                "math" if i == 0 => "\\boxed{0}".to_string(),
                "math" => format!(
                    "So the answer is \\boxed{{{}}}.",
                    p["answer"].as_str().unwrap()
                ),
                "choice" => {
                    let letter = match &p["answer"] {
                        serde_json::Value::String(s) => s.clone(),
                        v => ((b'A' + v.as_u64().unwrap() as u8) as char).to_string(),
                    };
                    if i == 0 {
                        "The answer is (Z).".to_string()
                    } else {
                        format!("The answer is ({letter}).")
                    }
                }
                _ => format!("```python\n{}```", p["solution"].as_str().unwrap()),
            };
            if i != 0 || kind == "code" {
                expected_correct += 1;
            }
            lines
                .push(serde_json::json!({"problem_id": p["id"], "response": response}).to_string());
        }
    }
    lines.push(r#"{"problem_id": "no-such-problem", "response": "42"}"#.into());
    lines.push(r#"{"problem_id": "ex-math-committee"}"#.into());
    let responses = dir.path().join("responses.jsonl");
    std::fs::write(&responses, lines.join("\n") + "\n").unwrap();
    let verdicts = dir.path().join("verdicts.jsonl");
    let (r, v) = (
        responses.display().to_string(),
        verdicts.display().to_string(),
    );
    let out = startctl(&[
        "grade",
        "--problems",
        "examples/problems/math.jsonl",
        "--problems",
        "examples/problems/choice.jsonl",
        "--problems",
        "examples/problems/code.jsonl",
        "--responses",
        &r,
        "--out",
        &v,
        "--backend",
        "docker",
    ]);
    let s = text(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "bad rows make the exit code 2: {s}"
    );
    assert!(
        s.contains(
            "responses.jsonl:36: problem_id: \"no-such-problem\" is in none of the problem files"
        ),
        "{s}"
    );
    assert!(s.contains("responses.jsonl:37: response: missing"), "{s}");
    assert!(
        s.contains("examples         math          17       16     94.1%"),
        "{s}"
    );
    assert!(
        s.contains("examples         choice         8        7     87.5%"),
        "{s}"
    );
    assert!(
        s.contains("examples         code          10       10    100.0%"),
        "{s}"
    );
    assert!(s.contains("35 responses graded, 2 errors"), "{s}");
    let verdict_lines = std::fs::read_to_string(&verdicts).unwrap();
    let rows: Vec<serde_json::Value> = verdict_lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 35);
    assert_eq!(
        rows.iter().filter(|r| r["correct"] == true).count(),
        expected_correct
    );
    assert_eq!(rows[0]["problem_id"], "ex-math-sum-divisors-360");
    assert_eq!(rows[0]["correct"], false);
    assert_eq!(rows[1]["correct"], true);
    assert_eq!(rows[1]["detail"]["method"], "same");
    assert_eq!(rows[1]["final_answer"], "130");
}

/// A trajectory of `problem` whose whole text is `text`, for export tests.
fn shaped(
    problem: &str,
    sample: u32,
    text: &str,
    correct: Option<bool>,
) -> start_schemas::trajectory::Trajectory {
    use start_schemas::trajectory::{Segment, SegmentKind, Trajectory};
    let mut t = start_tests::trajectory(0);
    t.problem_id = problem.into();
    t.sample_index = sample;
    t.segments = vec![Segment::new(
        SegmentKind::Answer,
        text,
        vec![1; text.split_whitespace().count()],
    )];
    t.full_text = text.into();
    t.trajectory_sha256 = Trajectory::compute_sha256(text);
    t.tool_calls.clear();
    t.tool_errors = 0;
    t.completion_tokens = text.split_whitespace().count() as u32;
    t.correct = correct;
    t.prompt =
        format!("<|im_start|>user\nSolve {problem}.<|im_end|>\n<|im_start|>assistant\n<think>\n");
    t.user_message = format!("Solve {problem}.");
    t
}

/// Every row of the dataset at `root`, in manifest order.
fn rows_of(root: &Path) -> Vec<start_schemas::trajectory::Trajectory> {
    block(async {
        let loc = start_dataset::DatasetLocation::local(root).unwrap();
        let dataset = start_dataset::Dataset::open(loc).await.unwrap();
        let mut rows = Vec::new();
        for shard in &dataset.manifest.shards {
            for batch in dataset.read_shard(shard, 64).await.unwrap() {
                rows.extend(batch.unwrap());
            }
        }
        rows
    })
}

/// Runs a future of the async dataset API to completion from a plain test.
fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn write_dataset(root: &Path, rows: &[start_schemas::trajectory::Trajectory]) {
    use start_dataset::{DatasetLocation, ShardOptions, ShardWriter};
    let mut w = ShardWriter::create("unit-0", &ShardOptions::default()).unwrap();
    w.write(rows).unwrap();
    let loc = DatasetLocation::local(root).unwrap();
    block(w.finish().unwrap().commit(&loc)).unwrap();
}

#[test]
fn export_filters_and_selects_with_a_table_of_reasons() {
    use start_schemas::trajectory::FinishReason;
    let words = |seed: &str, n: usize| -> String {
        (0..n).map(|i| format!("{seed}{i} ")).collect::<String>() + "so the answer is \\boxed{7}."
    };
    let best = words("step", 120);
    let mut rows = vec![
        shaped("p0", 0, &best, Some(true)),
        shaped("p0", 1, &best, Some(true)),
        shaped("p0", 2, &format!("{best} indeed"), Some(true)),
        shaped("p0", 3, &words("wrong", 50), Some(false)),
        shaped("p0", 4, &words("ungraded", 50), None),
        shaped("p0", 5, &words("cut", 50), Some(true)),
        shaped("p0", 6, &"wait let me check again ".repeat(60), Some(true)),
        shaped("p0", 7, &words("other", 80), Some(true)),
        shaped("p1", 0, &words("second", 60), Some(true)),
    ];
    rows[5].finish_reason = FinishReason::MaxNewTokens;
    // p0 sample 0 has a clean tool call; sample 7 a failed one: best-per-problem prefers 0.
    for (i, exit) in [(0usize, 0), (7, 1)] {
        let t = &mut rows[i];
        t.segments.insert(
            0,
            start_schemas::trajectory::Segment::new(
                start_schemas::trajectory::SegmentKind::Code,
                "```python\nprint(7)\n```\n",
                vec![5],
            ),
        );
        t.full_text = t.segments.iter().map(|s| s.text.as_str()).collect();
        t.trajectory_sha256 = start_schemas::trajectory::Trajectory::compute_sha256(&t.full_text);
        t.tool_calls = vec![start_schemas::trajectory::ToolCall {
            tool: "python".into(),
            segment: 0,
            exit_code: Some(exit),
            timed_out: false,
            memory_exceeded: false,
            truncated: false,
            duration_ms: 1.0,
            error: None,
        }];
        t.tool_errors = exit as u32;
    }
    // Sample 1 repeats sample 0 to the byte: an exact duplicate.
    rows[1] = rows[0].clone();
    rows[1].sample_index = 1;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_dataset(&data, &rows);
    let data_s = data.display().to_string();

    let out = dir.path().join("sft");
    let out_s = out.display().to_string();
    let run = startctl(&[
        "export", "--from", &data_s, "--out", &out_s, "--format", "both",
    ]);
    let s = text(&run);
    assert_eq!(run.status.code(), Some(0), "{s}");
    let removed = |reason: &str, n: u64| format!("{reason:<42} {n:>8}");
    for line in [
        removed("not graded", 1),
        removed("incorrect", 1),
        removed("unfinished (cut by a limit)", 1),
        removed("repetitive loop", 1),
        removed("exact duplicate", 1),
        removed("near duplicate", 1),
        "kept 3 of 9 trajectories".into(),
    ] {
        assert!(s.contains(&line), "missing {line:?} in:\n{s}");
    }
    let jsonl = std::fs::read_to_string(out.join("sft.jsonl")).unwrap();
    let kept: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<(String, u64)> = kept
        .iter()
        .map(|r| {
            (
                r["problem_id"].as_str().unwrap().to_string(),
                r["sample_index"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ids, [("p0".into(), 0), ("p0".into(), 7), ("p1".into(), 0)]);
    assert_eq!(kept[0]["messages"][0]["role"], "user");
    assert_eq!(kept[0]["messages"][0]["content"], "Solve p0.");
    assert_eq!(
        kept[0]["messages"][1]["content"],
        format!("<think>\n{}", rows[0].full_text)
    );
    assert_eq!(
        kept[0]["completion"],
        format!("<think>\n{}<|im_end|>", rows[0].full_text)
    );
    assert_eq!(
        kept[0]["text"],
        format!("{}{}<|im_end|>", rows[0].prompt, rows[0].full_text),
        "prompt and completion are the sequence the model saw, byte for byte"
    );
    // A real reader opens the Parquet export with the same rows.
    let check = std::process::Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
        .arg("-c")
        .arg(
            "import sys, pyarrow.parquet as pq\n\
             t = pq.read_table(sys.argv[1]).to_pylist()\n\
             assert [(r['problem_id'], r['sample_index']) for r in t] == [('p0', 0), ('p0', 7), ('p1', 0)], t\n\
             assert t[0]['messages'][0] == {'role': 'user', 'content': 'Solve p0.'}\n\
             assert t[2]['messages'][1]['content'] + t[2]['end_of_turn'] == t[2]['completion']\n\
             assert ''.join(s['text'] for s in t[2]['segments']) == t[2]['text']\n\
             assert len(t[2]['input_ids']) == len(t[2]['labels']) == len(t[2]['completion_mask'])\n\
             print('ok')",
        )
        .arg(out.join("sft.parquet"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&check.stdout).trim(),
        "ok",
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    let best_out = dir.path().join("best").display().to_string();
    let run = startctl(&[
        "export",
        "--from",
        &data_s,
        "--out",
        &best_out,
        "--select",
        "best-per-problem",
        "--format",
        "jsonl",
    ]);
    let s = text(&run);
    assert!(s.contains(&removed("not selected", 1)), "{s}");
    let jsonl = std::fs::read_to_string(Path::new(&best_out).join("sft.jsonl")).unwrap();
    let samples: Vec<u64> = jsonl
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["sample_index"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(samples, [0, 0], "the clean tool call wins for p0");
}

#[test]
fn export_keeps_seed_data_the_way_start_does() {
    use start_schemas::trajectory::{Mode, ToolCall};
    // START's D_seed: a hint-infer trajectory that is right, ran at least one tool call that
    // succeeded, on a problem the plain greedy baseline got wrong.
    let with_call = |problem: &str, sample: u32, exit: i32| {
        let mut t = shaped(
            problem,
            sample,
            &format!("{problem} reasoning {sample} \\boxed{{7}}"),
            Some(true),
        );
        t.mode = Mode::HintInfer;
        t.segments.insert(
            0,
            start_schemas::trajectory::Segment::new(
                start_schemas::trajectory::SegmentKind::Code,
                format!("```python\nprint({sample})\n```\n"),
                vec![5],
            ),
        );
        t.full_text = t.segments.iter().map(|s| s.text.as_str()).collect();
        t.trajectory_sha256 = start_schemas::trajectory::Trajectory::compute_sha256(&t.full_text);
        t.tool_calls = vec![ToolCall {
            tool: "python".into(),
            segment: 0,
            exit_code: Some(exit),
            timed_out: false,
            memory_exceeded: false,
            truncated: false,
            duration_ms: 1.0,
            error: None,
        }];
        t.tool_errors = u32::from(exit != 0);
        t
    };
    let mut no_call = shaped("p0", 2, "p0 no tools at all \\boxed{7}", Some(true));
    no_call.mode = Mode::HintInfer;
    let mut rft = with_call("p0", 3, 0);
    rft.mode = Mode::Rft;
    let rows = vec![
        with_call("p0", 0, 0),
        with_call("p0", 1, 1),
        no_call,
        rft,
        with_call("p1", 0, 0),
        with_call("p2", 0, 0),
    ];
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_dataset(&data, &rows);
    let greedy = |problem: &str, correct: bool| {
        let mut t = shaped(problem, 0, "plain", Some(correct));
        t.mode = Mode::Plain;
        t.params.temperature = 0.0;
        t
    };
    // The baseline missed p0, solved p1 and never saw p2.
    let plain = dir.path().join("plain");
    write_dataset(&plain, &[greedy("p0", false), greedy("p1", true)]);
    let (data_s, plain_s) = (data.display().to_string(), plain.display().to_string());
    let out = dir.path().join("seed").display().to_string();
    let args = [
        "export",
        "--from",
        &data_s,
        "--out",
        &out,
        "--seed-data-plain",
        &plain_s,
        "--format",
        "jsonl",
    ];
    let run = startctl(&args);
    let s = text(&run);
    assert_eq!(run.status.code(), Some(0), "{s}");
    let removed = |reason: &str, n: u64| format!("{reason:<42} {n:>8}");
    for line in [
        removed("no successful tool call (seed-data rule)", 2),
        removed("not hint-infer (seed-data rule)", 1),
        removed("solved by plain greedy (seed-data rule)", 1),
        removed("no plain baseline for the problem (seed-data rule)", 1),
        "kept 1 of 6".into(),
    ] {
        assert!(s.contains(&line), "missing {line:?} in:\n{s}");
    }
    let jsonl = std::fs::read_to_string(Path::new(&out).join("sft.jsonl")).unwrap();
    let kept: serde_json::Value = serde_json::from_str(jsonl.trim()).unwrap();
    assert_eq!(
        (kept["problem_id"].as_str(), kept["sample_index"].as_u64()),
        (Some("p0"), Some(0))
    );

    // A baseline that sampled is not START's greedy baseline.
    let sampled = dir.path().join("sampled");
    let mut row = greedy("p0", false);
    row.params.temperature = 0.6;
    write_dataset(&sampled, &[row]);
    let sampled_s = sampled.display().to_string();
    let mut refused = args;
    refused[6] = &sampled_s;
    let run = startctl(&refused);
    let s = text(&run);
    assert_eq!(run.status.code(), Some(1), "{s}");
    assert!(s.contains("must be plain greedy"), "{s}");
    let mut allowed = refused.to_vec();
    allowed.push("--allow-sampled-baseline");
    assert_eq!(startctl(&allowed).status.code(), Some(0));
}

#[test]
fn export_and_sandbox_name_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().display().to_string();
    let out = dir.path().join("out").display().to_string();
    let run = startctl(&["export", "--from", &empty, "--out", &out]);
    let s = text(&run);
    assert_eq!(run.status.code(), Some(1), "{s}");
    assert!(
        s.contains("_manifest.json: invalid manifest: not found; is this a start dataset?"),
        "{s}"
    );
    // `--select all` keeps incorrect rows; START's seed-data rule never does.
    let run = startctl(&[
        "export",
        "--from",
        &empty,
        "--out",
        &out,
        "--select",
        "all",
        "--seed-data-plain",
        &empty,
    ]);
    let s = text(&run);
    assert_eq!(run.status.code(), Some(1), "{s}");
    assert!(
        s.contains("--select all keeps incorrect trajectories; START's seed-data rule keeps correct ones only"),
        "{s}"
    );
    let run = startctl(&["sandbox", "run", "no/such/file.py", "--backend", "process"]);
    let s = text(&run);
    assert_eq!(run.status.code(), Some(1), "{s}");
    assert!(s.contains("reading no/such/file.py"), "{s}");
}

#[test]
fn sandbox_run_queries_attached_files_with_sql_and_names_a_bad_attachment() {
    let dir = tempfile::tempdir().unwrap();
    let query = dir.path().join("q.sql");
    std::fs::write(
        &query,
        "SELECT region, COUNT(*) AS stores FROM stores GROUP BY region ORDER BY region;\n",
    )
    .unwrap();
    let q = query.display().to_string();
    let out = startctl(&[
        "sandbox",
        "run",
        &q,
        "--language",
        "sql",
        "--attach",
        "examples/data-analysis/stores.sqlite",
        "--backend",
        "process",
    ]);
    let s = text(&out);
    assert_eq!(out.status.code(), Some(0), "{s}");
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        reply["stdout"],
        "region | stores\n-------+-------\nEast   | 3\nNorth  | 3\nSouth  | 2\nWest   | 2\n(4 rows)\n",
        "{s}"
    );
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "x").unwrap();
    let out = startctl(&[
        "sandbox",
        "run",
        &q,
        "--language",
        "sql",
        "--attach",
        &notes.display().to_string(),
        "--backend",
        "process",
    ]);
    let s = text(&out);
    assert_eq!(out.status.code(), Some(1), "{s}");
    assert!(
        s.contains(&format!(
            "--attach {}: \"notes.txt\" is not a data file start reads",
            notes.display()
        )),
        "{s}"
    );
}

#[test]
fn generate_refuses_invalid_problem_files_before_loading_anything() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"source\":\"math\",\"kind\":\"math\",\"question\":\"q\"}\n",
    )
    .unwrap();
    let (b, o) = (
        bad.display().to_string(),
        dir.path().join("out").display().to_string(),
    );
    let run = startctl(&[
        "generate",
        "--problems",
        &b,
        "--out",
        &o,
        "--model",
        "no/such.gguf",
    ]);
    let s = text(&run);
    assert_eq!(run.status.code(), Some(2), "{s}");
    assert!(
        s.contains("bad.jsonl:1: answer: missing; this field is required"),
        "{s}"
    );
    assert!(s.contains("nothing generated"), "{s}");
    assert!(!dir.path().join("out").exists());
}

#[test]
fn generate_records_the_jobs_hint_settings_and_provenance_on_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let problems = dir.path().join("p.jsonl");
    let math = std::fs::read_to_string(workspace().join("examples/problems/math.jsonl")).unwrap();
    let code = std::fs::read_to_string(workspace().join("examples/problems/code.jsonl")).unwrap();
    let pick: Vec<&str> = math.lines().take(1).chain(code.lines().take(1)).collect();
    std::fs::write(&problems, pick.join("\n") + "\n").unwrap();
    let out = dir.path().join("data");
    let run = startctl(&[
        "generate",
        "--problems",
        &problems.display().to_string(),
        "--out",
        &out.display().to_string(),
        "--max-new-tokens",
        "24",
        "--end-hints",
        "2",
        "--max-trigger-hints",
        "3",
        "--trigger-probability",
        "0.5",
        "--run-answer-code",
        "--backend",
        "process",
    ]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let rows = rows_of(&out);
    assert_eq!(rows.len(), 2);
    for t in &rows {
        let h = t.hint_settings.as_ref().unwrap();
        assert_eq!(
            (
                h.end_hints,
                h.max_trigger_hints,
                h.trigger_probability,
                h.run_answer_code
            ),
            (2, 3, 0.5, true)
        );
        assert_eq!(t.mode, start_schemas::trajectory::Mode::HintInfer);
        assert_eq!(t.params.temperature, 0.6);
        for s in t
            .segments
            .iter()
            .filter(|s| s.kind == start_schemas::trajectory::SegmentKind::Hint)
        {
            assert!(s.hint.is_some(), "{s:?}");
        }
    }
}

#[test]
fn generate_and_run_make_the_same_rows_from_the_same_options() {
    // One pipeline: `generate` runs its problems as units the way a worker runs leased ones,
    // so the same options (the think prefix included) give the same rows as `run`'s cluster.
    let dir = tempfile::tempdir().unwrap();
    let problems = dir.path().join("p.jsonl");
    let math = std::fs::read_to_string(workspace().join("examples/problems/math.jsonl")).unwrap();
    std::fs::write(
        &problems,
        math.lines().take(3).collect::<Vec<_>>().join("\n") + "\n",
    )
    .unwrap();
    let common = [
        "--problems",
        problems.to_str().unwrap(),
        "--mode",
        "plain",
        "--max-new-tokens",
        "24",
        "--slots",
        "1",
        "--job-id",
        "same",
        "--think-prefix",
        "<think>\n",
        "--backend",
        "process",
    ];
    let (local, cluster) = (dir.path().join("generate"), dir.path().join("run"));
    for (command, out) in [("generate", &local), ("run", &cluster)] {
        let mut args = vec![command, "--out", out.to_str().unwrap()];
        args.extend(common);
        let o = startctl(&args);
        assert_eq!(o.status.code(), Some(0), "{command}: {}", text(&o));
    }
    let sorted = |root: &Path| {
        let mut rows = rows_of(root);
        rows.sort_by(|a, b| a.problem_id.cmp(&b.problem_id));
        rows
    };
    let (a, b) = (sorted(&local), sorted(&cluster));
    assert_eq!(a.len(), 3);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.generation_prefix, "<think>\n", "{x:?}");
        assert!(x.prompt.ends_with("<think>\n"), "{x:?}");
        assert_eq!(
            (&x.problem_id, x.seed, &x.prompt, &x.full_text),
            (&y.problem_id, y.seed, &y.prompt, &y.full_text)
        );
        assert_eq!(x.hint_settings, y.hint_settings);
    }
    // Shards are named as a worker names them: unit, then attempt.
    let loc = start_dataset::DatasetLocation::local(&local).unwrap();
    let manifest = block(start_dataset::Manifest::load(&loc)).unwrap().unwrap();
    let names: Vec<&str> = manifest.shards.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(names, ["data/same.u00000.a0.parquet"]);
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

/// Where the screenshot goes: `$START_TEST_ARTIFACTS`, else this build's test scratch dir.
fn artifacts() -> PathBuf {
    let dir = std::env::var_os("START_TEST_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifacts"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The HTML report in a real browser: `startctl run` generates a small dataset with the
/// default model and names the report it wrote beside it; headless Chromium opens that file
/// (no server, no network), and the test checks that the plots rendered with bars of real
/// size, that the viewer's filters change what is shown, and that a trajectory opens into
/// its coloured segments. Screenshots are kept as the test's artifacts. (Here rather than in
/// a file of its own: each test file is a binary linking the whole CLI.)
#[test]
fn the_report_of_a_run_renders_its_plots_and_filters_its_viewer_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("run");
    let out = startctl(&[
        "run",
        "--out",
        &data.display().to_string(),
        "--max-new-tokens",
        "64",
        "--slots",
        "8",
        "--backend",
        "process",
    ]);
    let s = text(&out);
    assert_eq!(out.status.code(), Some(0), "run scripts/setup first: {s}");
    let report = data.join("report.html");
    assert!(
        s.contains(&format!("report: {} (44 rows", report.display())),
        "run names its report: {s}"
    );
    let html = std::fs::read_to_string(&report).unwrap();
    // Self-contained: nothing to fetch when it opens.
    for outside in ["<link", " src=", "@import", "url("] {
        assert!(!html.contains(outside), "the report references {outside:?}");
    }

    // `startctl report -o` writes the same document elsewhere.
    let copy = dir.path().join("copy.html");
    let again = startctl(&[
        "report",
        &data.display().to_string(),
        "-o",
        &copy.display().to_string(),
    ]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let a = std::fs::read_to_string(&copy).unwrap();
    // Only the build time may differ: the aggregates and the sample are the same.
    let strip = |h: &str| {
        let a = h.find(" · built ").expect("a build time");
        let b = a + h[a..].find("</p>").unwrap();
        format!("{}{}", &h[..a], &h[b..])
    };
    assert_eq!(strip(&a), strip(&html));

    let mut b = start_tests::chromium::Browser::start(1280, 1800);
    b.open(&report);
    // Every plot drew: an SVG of real size, with bars of real height where it has data.
    let plots = b.eval(
        "Array.from(document.querySelectorAll('figure.chart')).map(f => {
           const svg = f.querySelector('svg.plot');
           const r = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
           const bars = svg ? Array.from(svg.querySelectorAll('rect.bar'))
             .filter(b => b.getBoundingClientRect().height > 0).length : 0;
           return {title: f.querySelector('figcaption').textContent,
                   svg: !!svg, w: r.width, h: r.height, bars,
                   empty: f.querySelector('.empty') ? f.querySelector('.empty').textContent : null};
         })",
    );
    let plots = plots.as_array().unwrap();
    assert_eq!(plots.len(), 6, "{plots:?}");
    for p in plots {
        // The plot of a kind of row this run cannot have (RFT pass@k) says why instead.
        if p["empty"].is_string() {
            continue;
        }
        assert!(p["w"].as_f64().unwrap() > 300.0, "{p}");
        assert!(p["h"].as_f64().unwrap() > 150.0, "{p}");
        assert!(p["bars"].as_u64().unwrap() >= 1, "{p}");
    }
    let drawn = |title: &str| {
        plots.iter().any(|p| {
            p["title"].as_str().unwrap().starts_with(title) && p["bars"].as_u64() > Some(0)
        })
    };
    assert!(drawn("Accuracy by tool calls"), "{plots:?}");
    assert!(drawn("Completion length"), "{plots:?}");
    assert!(drawn("Problems by share"), "{plots:?}");

    // The viewer: all sampled rows listed (up to a page), then filtered by kind and problem.
    let cards = |b: &mut start_tests::chromium::Browser, attr: &str| -> Vec<String> {
        b.eval(&format!(
            "Array.from(document.querySelectorAll('#list details.row')).map(d => d.getAttribute('{attr}'))"
        ))
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
    };
    let all = cards(&mut b, "data-kind");
    assert_eq!(
        all.len(),
        44,
        "the 44 rows are all in the sample, on one page"
    );
    let shown = b.eval("document.getElementById('shown').textContent");
    assert_eq!(
        shown,
        serde_json::Value::from("44 of 44 sampled trajectories")
    );
    b.eval(
        "(() => { const f = document.getElementById('f-kind'); f.value = 'code';
         f.dispatchEvent(new Event('change')); return true; })()",
    );
    let code = cards(&mut b, "data-kind");
    assert!(!code.is_empty() && code.len() < all.len(), "{code:?}");
    assert!(code.iter().all(|k| k == "code"), "{code:?}");
    assert_eq!(
        code.len(),
        all.iter().filter(|k| *k == "code").count(),
        "the filter keeps exactly the code rows"
    );
    b.eval(
        "(() => { const f = document.getElementById('f-kind'); f.value = '';
         f.dispatchEvent(new Event('change'));
         const p = document.getElementById('f-problem');
         p.value = document.querySelector('#list details.row').getAttribute('data-problem');
         p.dispatchEvent(new Event('input')); return true; })()",
    );
    let one = cards(&mut b, "data-problem");
    let first = b.eval("document.getElementById('f-problem').value");
    let first = first.as_str().unwrap();
    assert!(!one.is_empty() && one.len() < all.len(), "{one:?}");
    assert!(one.iter().all(|p| p.contains(first)), "{first}: {one:?}");

    // The first row is open: its segments coloured by kind, the grader's verdict below.
    let opened = b.eval(
        "(() => { const d = document.querySelector('#list details.row');
         return {open: d.open, segs: Array.from(d.querySelectorAll('pre.seg')).map(p => p.className),
           verdict: !!d.querySelector('.body .badge'),
           bg: getComputedStyle(d.querySelector('pre.seg')).backgroundColor}; })()",
    );
    assert_eq!(opened["open"], serde_json::Value::Bool(true), "{opened}");
    let segs = opened["segs"].as_array().unwrap();
    assert!(!segs.is_empty(), "{opened}");
    assert!(
        segs.iter()
            .all(|c| c.as_str().unwrap().starts_with("seg seg-")),
        "{opened}"
    );
    assert_eq!(opened["verdict"], serde_json::Value::Bool(true), "{opened}");
    assert_ne!(
        opened["bg"],
        serde_json::Value::from("rgba(0, 0, 0, 0)"),
        "{opened}"
    );

    // Back to every row.
    b.eval(
        "(() => { const p = document.getElementById('f-problem'); p.value = '';
         p.dispatchEvent(new Event('input')); window.scrollTo(0, 0); return true; })()",
    );
    assert_eq!(cards(&mut b, "data-kind").len(), 44);
    // A row that ran code shows each run's outcome, exit status and time under its block.
    let tools = b.eval(
        "(() => { const d = document.querySelector('#list details.row:not([data-tools=\"0\"])');
         if (!d) return null;
         d.open = true;
         return new Promise(r => setTimeout(() => r(Array.from(d.querySelectorAll('.tool'))
           .map(t => t.textContent)), 50)); })()",
    );
    let ran = tools_in(&rows_of(&data));
    if ran > 0 {
        let lines = tools
            .as_array()
            .expect("a row with tool calls in the viewer");
        assert!(!lines.is_empty(), "{tools}");
        for l in lines {
            let l = l.as_str().unwrap();
            assert!(
                (l.starts_with("ran (python): ") || l.starts_with("ran (sql): "))
                    && l.contains(" · exit ")
                    && l.contains(" ms"),
                "{l}"
            );
        }
    }

    assert!(
        b.exceptions.is_empty(),
        "the page threw: {:?}",
        b.exceptions
    );
    for (name, scroll) in [
        ("report.png", "window.scrollTo(0, 0)"),
        (
            "report-viewer.png",
            "(document.querySelector('#list details.row[open]:not([data-tools=\"0\"])') \
             || document.getElementById('viewer')).scrollIntoView()",
        ),
    ] {
        b.eval(&format!("{scroll}; true"));
        let png = b.screenshot();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let shot = artifacts().join(name);
        std::fs::write(&shot, &png).unwrap();
        eprintln!("screenshot: {}", shot.display());
    }
}

fn tools_in(rows: &[start_schemas::trajectory::Trajectory]) -> usize {
    rows.iter().map(|t| t.tool_calls.len()).sum()
}
