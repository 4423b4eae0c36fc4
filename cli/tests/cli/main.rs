//! startctl as a user runs it: a real process, its output and its exit code.
//!
//! One binary for all subcommands (every integration test file is its own binary that links the
//! whole CLI, llama.cpp included), a module per stage: [`inputs`], [`generate`], [`export`],
//! [`mix`], [`report`]; the helpers they share are here.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod export;
mod generate;
mod inputs;
mod mix;
mod report;

fn startctl(args: &[&str]) -> Output {
    startctl_with(args, Vec::new())
}

/// `startctl` with extra environment variables (an object store's credentials).
fn startctl_with(args: &[&str], env: Vec<(&'static str, String)>) -> Output {
    Command::new(env!("CARGO_BIN_EXE_startctl"))
        .args(args)
        // Tests run side by side: llama.cpp's threads spin at every operation's barrier, and
        // two engines each on every core slow each other down many times over.
        .env("START_THREADS", "1")
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
        dataset.for_each_row(|_, t| rows.push(t)).await.unwrap();
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

/// Where the screenshot goes: `$START_TEST_ARTIFACTS`, else this build's test scratch dir.
fn artifacts() -> PathBuf {
    let dir = std::env::var_os("START_TEST_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifacts"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A Python call that ran the block at `segment` and exited with `exit` in a millisecond.
fn python_call(segment: u32, exit: i32) -> start_schemas::trajectory::ToolCall {
    start_schemas::trajectory::ToolCall {
        tool: "python".into(),
        segment,
        exit_code: Some(exit),
        timed_out: false,
        memory_exceeded: false,
        truncated: false,
        duration_ms: 1.0,
        error: None,
    }
}

fn tools_in(rows: &[start_schemas::trajectory::Trajectory]) -> usize {
    rows.iter().map(|t| t.tool_calls.len()).sum()
}

/// `sandbox bench --workload` takes the bench's own workload names, and refuses another
/// before it starts any sandbox, listing them.
#[test]
fn the_sandbox_bench_refuses_a_workload_it_does_not_have() {
    let out = startctl(&[
        "sandbox",
        "bench",
        "--workload",
        "sympy",
        "--workload",
        "tensorflow",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("no workload \"tensorflow\"") && stderr.contains("numpy+sympy"),
        "{stderr}"
    );
}
