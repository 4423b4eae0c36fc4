//! The SFT mix's two levers from the 2026 recipe: `startctl mix` weighing problems by tool
//! usefulness (pass@k with tools minus without, from a plain and a hinted run), and `startctl
//! export --max-tool-share` capping the share of rows that ran code, over a hinted and a plain
//! run exported as one.

use super::*;
use start_schemas::trajectory::{Mode, Segment, SegmentKind, Trajectory};

/// A row of `problem`'s run in `mode`, `correct` or not, with one successful tool call when
/// `tools`; its text is its own (problem, sample, mode), so that no two rows are duplicates.
fn run_row(problem: &str, sample: u32, mode: Mode, correct: bool, tools: bool) -> Trajectory {
    let text = format!(
        "{problem} {} sample {sample} works it out {} \\boxed{{{}}}",
        mode.as_str(),
        if tools { "with code" } else { "by hand" },
        if correct { 7 } else { 8 }
    );
    let mut t = shaped(problem, sample, &text, Some(correct));
    t.mode = mode;
    if tools {
        // The code block the call ran, before the text.
        t.segments.insert(
            0,
            Segment::new(
                SegmentKind::Code,
                format!("```python\nprint({sample})\n```\n"),
                vec![5],
            ),
        );
        t.full_text = t.segments.iter().map(|s| s.text.as_str()).collect();
        t.trajectory_sha256 = Trajectory::compute_sha256(&t.full_text);
        t.tool_calls.push(python_call(0, 0));
    }
    t
}

/// Four samples of `problem` in `mode`, the first `correct` of them right.
fn samples(problem: &str, mode: Mode, correct: u32, tools: bool) -> Vec<Trajectory> {
    (0..4)
        .map(|s| run_row(problem, s, mode, s < correct, tools))
        .collect()
}

/// Commits one more shard, `id`, to the dataset at `root`.
fn add_shard(root: &Path, id: &str, rows: &[Trajectory]) {
    use start_dataset::{DatasetLocation, ShardOptions, ShardWriter};
    let mut w = ShardWriter::create(id, &ShardOptions::default()).unwrap();
    w.write(rows).unwrap();
    let loc = DatasetLocation::local(root).unwrap();
    block(w.finish().unwrap().commit(&loc)).unwrap();
}

fn ids_of(mix: &Path) -> Vec<String> {
    std::fs::read_to_string(mix)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["id"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn mix_draws_where_tools_help_and_pins_both_runs_in_its_recipe() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let s = |p: &Path| p.display().to_string();
    // 20 problems. Tools turn 0 of 4 into 4 of 4 on m0..m4 (usefulness 1), 2 into 3 on m5..m9
    // (0.25); they cost 2 on m10..m14 (-0.5) and change nothing on m15..m17. The plain run
    // never saw m18 and m19.
    let problems: String = (0..20)
        .map(|i| {
            format!(
                "{}\n",
                serde_json::json!({"id": format!("m{i}"), "source": "aime", "kind": "math",
                                   "question": format!("What is {i} + 7 - {i}?"), "answer": "7"})
            )
        })
        .collect();
    std::fs::write(path("problems.jsonl"), problems).unwrap();
    let (mut plain, mut hinted) = (Vec::new(), Vec::new());
    for i in 0..20 {
        let p = format!("m{i}");
        let (without, with) = match i {
            0..5 => (0, 4),
            5..10 => (2, 3),
            10..15 => (4, 2),
            _ => (1, 1),
        };
        if i < 18 {
            plain.extend(samples(&p, Mode::Plain, without, false));
        }
        hinted.extend(samples(&p, Mode::HintInfer, with, true));
    }
    write_dataset(&path("plain"), &plain);
    write_dataset(&path("hinted"), &hinted);
    let mix = |take: &str, floor: &str, out: &str| {
        startctl(&[
            "mix",
            &s(&path("problems.jsonl")),
            "--take",
            take,
            "--plain",
            &s(&path("plain")),
            "--hinted",
            &s(&path("hinted")),
            "--usefulness-floor",
            floor,
            "--seed",
            "3",
            "-o",
            &s(&path(out)),
        ])
    };

    // Without a floor only the ten problems where tools help can be drawn.
    let run = mix("math=8", "0", "mix.jsonl");
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    assert!(
        text(&run).contains(
            "18 problems measured, tools help on 10, hurt on 5, mean +0.208; 2 not in both runs"
        ),
        "{}",
        text(&run)
    );
    let ids = ids_of(&path("mix.jsonl"));
    assert_eq!(ids.len(), 8);
    assert!(
        ids.iter().all(|id| id[1..].parse::<u32>().unwrap() < 10),
        "{ids:?}"
    );
    let recipe: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path("mix.jsonl.recipe.json")).unwrap())
            .unwrap();
    let u = &recipe["usefulness"];
    assert_eq!((u["k"].as_u64(), u["floor"].as_f64()), (Some(1), Some(0.0)));
    assert_eq!(u["plain"]["rows"], 72);
    assert_eq!(u["hinted"]["rows"], 80);
    assert_eq!(
        u["plain"]["content_sha256"].as_str().map(str::len),
        Some(64)
    );
    assert_eq!(recipe["outcomes"][0]["available"], 10);
    assert_eq!(recipe["outcomes"][0]["weightless"], 10);

    // Asking for more than tools help on is an error that says why.
    let run = mix("math=11", "0", "short.jsonl");
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
    assert!(
        text(&run).contains("asks for 11 problems but the inputs hold 10 of weight above 0"),
        "{}",
        text(&run)
    );
    // A floor lets every measured problem in, never an unmeasured one.
    let run = mix("math=18", "0.1", "floor.jsonl");
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let ids = ids_of(&path("floor.jsonl"));
    assert_eq!(ids.len(), 18);
    assert!(!ids.iter().any(|id| id == "m18" || id == "m19"), "{ids:?}");

    // The recipe rebuilds the same bytes, and refuses a run that changed since.
    let rebuild = |out: &str| {
        startctl(&[
            "mix",
            "--recipe",
            &s(&path("mix.jsonl.recipe.json")),
            "-o",
            &s(&path(out)),
        ])
    };
    let run = rebuild("again.jsonl");
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    assert_eq!(
        std::fs::read(path("again.jsonl")).unwrap(),
        std::fs::read(path("mix.jsonl")).unwrap()
    );
    add_shard(
        &path("hinted"),
        "unit-1",
        &samples("m15", Mode::HintInfer, 4, true)[..1],
    );
    let run = rebuild("changed.jsonl");
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    assert!(
        text(&run).contains("hinted has changed since the recipe was written"),
        "{}",
        text(&run)
    );

    // The plain run is the model without tools: a row that ran code is refused, counted.
    let mut tooled = samples("m0", Mode::Plain, 0, false);
    tooled[1] = run_row("m0", 1, Mode::Plain, false, true);
    write_dataset(&path("plain-tools"), &tooled);
    let run = startctl(&[
        "mix",
        &s(&path("problems.jsonl")),
        "--take",
        "math=1",
        "--plain",
        &s(&path("plain-tools")),
        "--hinted",
        &s(&path("hinted")),
        "-o",
        &s(&path("refused.jsonl")),
    ]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    assert!(
        text(&run).contains("1 of 4 rows ran code"),
        "{}",
        text(&run)
    );
    assert!(!path("refused.jsonl").exists());
}

#[test]
fn export_caps_the_tool_share_over_a_hinted_and_a_plain_run_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    // Five problems: the hinted run has 3 correct tool rows of each (15), the plain run 1
    // correct text-only row of each (5).
    let (mut plain, mut hinted) = (Vec::new(), Vec::new());
    for i in 0..5 {
        let p = format!("q{i}");
        hinted.extend(samples(&p, Mode::HintInfer, 3, true));
        plain.extend(samples(&p, Mode::Plain, 1, false));
    }
    write_dataset(Path::new(&path("hinted")), &hinted);
    write_dataset(Path::new(&path("plain")), &plain);
    let export = |share: &str, out: &str| {
        let mut args = vec![
            "export".to_string(),
            "--from".into(),
            path("hinted"),
            "--from".into(),
            path("plain"),
            "--out".into(),
            path(out),
            "--format".into(),
            "jsonl".into(),
            // Rows of a problem differ by a word or two: not what this test is about.
            "--near-duplicate".into(),
            "1.1".into(),
        ];
        if !share.is_empty() {
            args.extend(["--max-tool-share".into(), share.into()]);
        }
        startctl(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let kept = |out: &str| -> Vec<(String, bool)> {
        std::fs::read_to_string(Path::new(&path(out)).join("sft.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let tools = v["completion"].as_str().unwrap().contains("with code");
                (v["problem_id"].as_str().unwrap().to_string(), tools)
            })
            .collect()
    };

    // Both runs as one: 20 correct rows, 15 of them tool rows (75%).
    let run = export("", "all");
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    assert!(text(&run).contains("kept 20 of 40"), "{}", text(&run));

    // At 50% the five text rows allow five tool rows: one of each problem's.
    let run = export("50%", "half");
    let out = text(&run);
    assert_eq!(run.status.code(), Some(0), "{out}");
    let removed = |reason: &str, n: u64| format!("{reason:<58} {n:>8}");
    assert!(
        out.contains(&removed(
            "tool-use share over the cap (--max-tool-share)",
            10
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{:<58} {:>7.1}%",
            "tool-use share of the kept (cap 50.0%)", 50.0
        )),
        "{out}"
    );
    let rows = kept("half");
    assert_eq!(rows.len(), 10);
    for i in 0..5 {
        let p = format!("q{i}");
        let of = |tools: bool| rows.iter().filter(|r| r.0 == p && r.1 == tools).count();
        assert_eq!((of(true), of(false)), (1, 1), "{p}: {rows:?}");
    }
    // The same cap keeps the same rows every time; 0.4 as a fraction is 40%: three tool rows.
    export("50%", "again");
    assert_eq!(kept("again"), rows);
    let run = export("0.4", "forty");
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    assert_eq!(kept("forty").iter().filter(|r| r.1).count(), 3);
    // A share over 100% is refused by name.
    let run = export("120%", "bad");
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
    assert!(text(&run).contains("between 0% and 100%"), "{}", text(&run));
}
