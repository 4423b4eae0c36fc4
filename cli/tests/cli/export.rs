//! Export's filters, selection and seed-data rule, and the sandbox subcommand, on datasets of
//! shaped rows; bad inputs named.

use super::*;

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
        t.tool_calls = vec![python_call(0, exit)];
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
    let removed = |reason: &str, n: u64| format!("{reason:<58} {n:>8}");
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

    // A published rule by name: p0's samples 0 and 7 ran code, sample 2 and p1's sample 0 did
    // not, so `--filter no-code` drops those two, counted under the rule's name.
    let rules_out = dir.path().join("rules").display().to_string();
    let run = startctl(&[
        "export", "--from", &data_s, "--out", &rules_out, "--filter", "no-code", "--format",
        "jsonl",
    ]);
    let s = text(&run);
    assert_eq!(run.status.code(), Some(0), "{s}");
    assert!(s.contains(&removed("no code (no-code)", 2)), "{s}");
    assert!(s.contains("kept 2 of 9 trajectories"), "{s}");
    // Without it, the summary says what the rule would drop of the rows kept.
    let plain = startctl(&[
        "export", "--from", &data_s, "--out", &rules_out, "--format", "jsonl",
    ]);
    let s = text(&plain);
    assert!(
        s.contains("of the kept, a rule not applied would drop"),
        "{s}"
    );
    assert!(s.contains(&removed("no code (no-code)", 1)), "{s}");
    // An unknown rule is refused by name, with the known ones listed.
    let bad = startctl(&[
        "export", "--from", &data_s, "--out", &rules_out, "--filter", "no-kode",
    ]);
    let s = text(&bad);
    assert_eq!(bad.status.code(), Some(2), "{s}");
    assert!(
        s.contains("no-kode") && s.contains("void-turn") && s.contains("nemo-skills"),
        "{s}"
    );
}

#[test]
fn export_keeps_seed_data_the_way_start_does() {
    use start_schemas::trajectory::Mode;
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
        t.tool_calls = vec![python_call(0, exit)];
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
    let removed = |reason: &str, n: u64| format!("{reason:<58} {n:>8}");
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

/// A row of `problem` whose text runs `blocks` code blocks, each with its output, then answers.
fn with_blocks(problem: &str, blocks: usize) -> start_schemas::trajectory::Trajectory {
    use start_schemas::trajectory::{Segment, SegmentKind, Trajectory};
    let mut t = shaped(problem, 0, "", Some(true));
    t.segments.clear();
    t.tool_calls.clear();
    for b in 0..blocks {
        t.segments.push(Segment::new(
            SegmentKind::Reasoning,
            format!("Step {b} of {problem}: let me compute it.\n"),
            vec![1],
        ));
        t.tool_calls.push(python_call(t.segments.len() as u32, 0));
        t.segments.push(Segment::new(
            SegmentKind::Code,
            format!("```python\nprint({b} * 7)\n```\n"),
            vec![2],
        ));
        t.segments.push(Segment::new(
            SegmentKind::Output,
            format!("```output\n{}\n```\n", b * 7),
            vec![3],
        ));
    }
    t.segments.push(Segment::new(
        SegmentKind::Answer,
        "So the answer is \\boxed{7}.",
        vec![4],
    ));
    t.full_text = t.segments.iter().map(|s| s.text.as_str()).collect();
    t.trajectory_sha256 = Trajectory::compute_sha256(&t.full_text);
    t
}

#[test]
fn judge_prompts_cover_every_block_and_their_verdicts_decide_the_judge_rule() {
    use start_schemas::trajectory::Mode;
    let dir = tempfile::tempdir().unwrap();
    // a: one block; b: two; c: three; d: none (never judged).
    // e: a's block, then another answer: its prompt reads as a's, and is written under its
    // own id all the same.
    let mut e = with_blocks("a", 1);
    e.segments.last_mut().unwrap().text = "So it is \\boxed{8}.".into();
    e.full_text = e.segments.iter().map(|s| s.text.as_str()).collect();
    e.trajectory_sha256 = start_schemas::trajectory::Trajectory::compute_sha256(&e.full_text);
    e.problem_id = "e".into();
    let rows = vec![
        with_blocks("a", 1),
        with_blocks("b", 2),
        with_blocks("c", 3),
        with_blocks("d", 0),
        e,
    ];
    let data = dir.path().join("data");
    write_dataset(&data, &rows);
    let data_s = data.display().to_string();
    let prompts = dir.path().join("judge.jsonl");
    let run = startctl(&[
        "judge",
        "--from",
        &data_s,
        "--out",
        &prompts.display().to_string(),
    ]);
    let s = text(&run);
    assert_eq!(run.status.code(), Some(0), "{s}");
    assert!(
        s.contains("7 judge prompts from 4 rows with code (5 rows read"),
        "{s}"
    );
    // The prompts are a problem file like any other: validate reads it (two prompts that read
    // the same are two rows' own, not a duplicate).
    let run = startctl(&["validate", &prompts.display().to_string()]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&prompts)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["question"], lines[6]["question"]);
    let ids: Vec<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
    let id = |row: usize, b: usize| format!("{}.b{b}", rows[row].trajectory_sha256);
    assert_eq!(
        ids,
        [
            id(0, 0),
            id(1, 0),
            id(1, 1),
            id(2, 0),
            id(2, 1),
            id(2, 2),
            id(4, 0)
        ]
    );
    assert!(lines.iter().all(|l| l["kind"] == "judge"));
    // Each prompt shows its own block, its output and the solution before it, not after.
    let third = lines[5]["question"].as_str().unwrap();
    assert!(
        third.contains("print(2 * 7)") && third.contains("```\n14\n```"),
        "{third}"
    );
    assert!(
        third.contains("Step 1 of c") && !third.contains("\\boxed{7}"),
        "{third}"
    );

    // The judge job's dataset (its real path is the worker's judge test): votes per block.
    // a: its block novel and significant by both votes -> kept.
    // b: block 0 novel moderate, block 1 a check -> half the blocks novel, moderate -> kept.
    // c: one novel moderate block of three, one vote unparsed -> dropped.
    let verdict = |item: String, sample: u32, answer: Option<&str>| {
        let mut t = shaped(&item, sample, "Novelty: ...", None);
        t.mode = Mode::Judge;
        t.kind = start_schemas::problem::ProblemKind::Judge;
        t.final_answer = answer.map(str::to_string);
        t
    };
    let votes = vec![
        verdict(id(0, 0), 0, Some("novel significant")),
        verdict(id(0, 0), 1, Some("novel significant")),
        verdict(id(1, 0), 0, Some("novel moderate")),
        verdict(id(1, 1), 0, Some("verification significant")),
        verdict(id(2, 0), 0, Some("novel moderate")),
        verdict(id(2, 1), 0, None),
        verdict(id(2, 2), 0, Some("novel trivial")),
    ];
    let judged = dir.path().join("judged");
    write_dataset(&judged, &votes);
    let judged_s = judged.display().to_string();
    let out = dir.path().join("sft").display().to_string();
    let removed = |reason: &str, n: u64| format!("{reason:<58} {n:>8}");
    let rule = "no novel significant block by the judge (judge)";
    let run = startctl(&[
        "export", "--from", &data_s, "--out", &out, "--judge", &judged_s, "--filter", "judge",
        "--format", "jsonl",
    ]);
    let s = text(&run);
    assert_eq!(run.status.code(), Some(0), "{s}");
    // c by its votes, d for having no block to judge, e for having no votes.
    assert!(s.contains(&removed(rule, 3)), "{s}");
    assert!(s.contains("kept 2 of 5 trajectories"), "{s}");
    let kept: Vec<String> = std::fs::read_to_string(Path::new(&out).join("sft.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["problem_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kept, ["a", "b"]);
    // Read but not applied, the summary says what it would drop.
    let run = startctl(&[
        "export", "--from", &data_s, "--out", &out, "--judge", &judged_s, "--format", "jsonl",
    ]);
    let s = text(&run);
    assert!(
        s.contains("kept 5 of 5") && s.contains(&removed(rule, 3)),
        "{s}"
    );
    // The rule without verdicts, and verdicts that are another job's rows, are refused.
    let run = startctl(&[
        "export", "--from", &data_s, "--out", &out, "--filter", "judge",
    ]);
    let s = text(&run);
    assert_ne!(run.status.code(), Some(0), "{s}");
    assert!(s.contains("--judge DATASET"), "{s}");
    let run = startctl(&[
        "export", "--from", &data_s, "--out", &out, "--judge", &data_s, "--filter", "judge",
    ]);
    let s = text(&run);
    assert_ne!(run.status.code(), Some(0), "{s}");
    assert!(
        s.contains("5 of 5 rows are not a judge job's verdicts"),
        "{s}"
    );
}
