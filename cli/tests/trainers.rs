//! Real trainers read the SFT export: a small hint-infer run of the default model (real
//! llama.cpp, real sandbox), `startctl export --format both`, then TRL's `SFTTrainer` trains on
//! it and the loaders of LLaMA-Factory and axolotl read it (`tests/trainers/check_export.py`),
//! each checked token by token against the trajectories as generated. The Python side is what
//! `scripts/setup-trainer` installs (on the torch and transformers of `scripts/setup-vllm`,
//! whose Hugging Face copy of the default model the trainer loads).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The Python with TRL and the two loaders (installed by `scripts/setup`; this only checks).
fn trainer_python() -> String {
    let out = run(&mut Command::new(workspace().join("scripts/setup-trainer")));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The checker's own tests (a mask or an id off by one must fail): plain Python, no torch.
#[test]
fn the_checker_catches_a_mask_or_an_id_off_by_one() {
    let out = run(
        Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
            .args(["-m", "unittest", "-v", "test_check_export"])
            .current_dir(workspace().join("tests/trainers")),
    );
    let log = String::from_utf8_lossy(&out.stderr);
    for name in [
        "test_a_mask_shifted_by_one_at_the_tool_output_fails",
        "test_a_token_dropped_at_a_tool_boundary_fails",
        "test_an_id_changed_under_a_right_mask_fails",
    ] {
        assert!(
            log.lines()
                .any(|l| l.starts_with(&format!("{name} ")) && l.ends_with("... ok")),
            "{name} did not pass:\n{log}"
        );
    }
}

#[test]
fn trl_llamafactory_and_axolotl_train_on_exactly_the_models_tokens() {
    let python = trainer_python();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let export = dir.path().join("sft");
    // Math problems, hint-infer: the hints open code blocks, so rows carry tool output.
    let problems = dir.path().join("p.jsonl");
    let math = std::fs::read_to_string(workspace().join("examples/problems/math.jsonl")).unwrap();
    std::fs::write(
        &problems,
        math.lines().take(8).collect::<Vec<_>>().join("\n") + "\n",
    )
    .unwrap();
    let s = |p: &Path| p.display().to_string();
    run(Command::new(env!("CARGO_BIN_EXE_startctl"))
        .current_dir(workspace())
        .args([
            "generate",
            "--problems",
            &s(&problems),
            "--out",
            &s(&data),
            "--temperature",
            "0.7",
            "--max-new-tokens",
            "640",
            "--slots",
            "8",
            "--backend",
            "process",
        ]));
    // `--select all`: the 135M model is seldom right, and the shape is what is checked here.
    let exported = run(Command::new(env!("CARGO_BIN_EXE_startctl")).args([
        "export",
        "--from",
        &s(&data),
        "--out",
        &s(&export),
        "--select",
        "all",
        "--max-repeat-ratio",
        "1",
        "--format",
        "both",
    ]));
    let summary = String::from_utf8_lossy(&exported.stdout);
    let report = dir.path().join("report.json");
    let checked = Command::new(&python)
        .arg(workspace().join("tests/trainers/check_export.py"))
        .args(["--dataset", &s(&data), "--export", &s(&export)])
        .args(["--model", &s(&start_tests::vllm::root().join("model"))])
        .args(["--report", &s(&report)])
        .output()
        .expect("the trainer's Python");
    let log = format!(
        "{}{}\nexport: {summary}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(checked.status.success(), "{log}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    // Something to check: rows, with tool output among them, all seen by TRL's loss.
    assert!(r["rows"].as_u64().unwrap() >= 2, "{log}");
    assert!(r["tool_outputs"].as_u64().unwrap() >= 1, "{log}");
    assert_eq!(r["trl"]["rows"], r["rows"], "{log}");
    assert!(r["trl"]["steps"].as_u64().unwrap() >= 1, "{log}");
    assert_eq!(r["llamafactory"]["rows"], r["rows"], "{log}");
    assert_eq!(r["axolotl"]["rows"], r["rows"], "{log}");
    assert_eq!(r["failures"].as_array().unwrap().len(), 0, "{log}");
    eprintln!("{log}");
}
