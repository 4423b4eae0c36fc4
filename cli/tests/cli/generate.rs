//! Generation: run (on the embedded problems, to S3 on the local test server), generate with
//! its options and provenance, and grade.

use super::*;

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
    // No thread count of 0, by flag or by the environment: refused by name before anything runs.
    for (args, env) in [
        (vec!["--threads", "0"], Vec::new()),
        (Vec::new(), vec![("START_THREADS", "0".to_string())]),
    ] {
        let mut all = vec!["generate", "--problems", &b, "--out", &o];
        all.extend(args);
        let run = startctl_with(&all, env);
        let s = text(&run);
        assert_eq!(run.status.code(), Some(2), "{s}");
        assert!(s.contains("--threads") && s.contains("'0'"), "{s}");
        assert!(!dir.path().join("out").exists());
    }
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
        "--show-calls-left",
        "--max-tool-calls",
        "3",
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
                h.run_answer_code,
                h.show_calls_left
            ),
            (2, 3, 0.5, true, true)
        );
        // The budget is stated in the user turn the model was shown.
        assert!(
            t.user_message.ends_with(
                "You may run code at most 3 times; each output ends with the number of runs left."
            ),
            "{}",
            t.user_message
        );
        assert!(t.prompt.contains("at most 3 times"));
        // Every output block ends with what is left.
        for (k, s) in t
            .segments
            .iter()
            .filter(|s| s.kind == start_schemas::trajectory::SegmentKind::Output)
            .enumerate()
        {
            let left = 3 - (k + 1);
            assert!(
                s.text.contains(&format!(
                    "code execution{} left]",
                    if left == 1 { "" } else { "s" }
                )),
                "{}",
                s.text
            );
        }
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
        if command == "generate" {
            // The slot's time in use: with the three trajectories queued from the start, the
            // one slot waits only between a trajectory's end and the next one's admission.
            let s = text(&o);
            let figures: Vec<f64> = s
                .split("slot occupancy ")
                .nth(1)
                .and_then(|rest| rest.split(" -> ").next())
                .map(|f| {
                    f.split(|c: char| !(c.is_ascii_digit() || c == '.'))
                        .filter_map(|n| n.parse().ok())
                        .collect()
                })
                .unwrap_or_default();
            assert!(
                figures.len() == 2 && figures.iter().all(|&f| f > 50.0 && f <= 100.5),
                "slot occupancy and occupancy before the drain: {figures:?}\n{s}"
            );
        }
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
