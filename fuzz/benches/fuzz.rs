//! The fuzz campaign, printed as a table (`cargo bench -p start-fuzz -- --inputs 1000000`).
//!
//! Each target runs in a child process of this binary, under a virtual-memory limit (`ulimit
//! -v`, 2 GiB): an input that makes a parser allocate past it aborts the child, and so does a
//! stack overflow; either is a finding. The child reports every input that panics or takes
//! over a second, and a checkpoint every 1,024 inputs; when it dies or falls silent (a hang:
//! killed after 30 s, 120 s unoptimised), the inputs since the last checkpoint are run again
//! one at a time, each announced before it runs, which names the culprit; the campaign then
//! goes on after it. Every finding's input is written to `$START_FUZZ_FINDINGS` (default: the
//! build's `tmp/fuzz-findings`) as `<target>/<seed>-<index>.bin`; the fix keeps it in
//! `fuzz/regressions/<target>/`, which `tests/regressions.rs` replays.
//!
//! `cargo test --benches` (CI) passes no `--bench`: every target runs 300 inputs, a smoke run.
//! Options: `--inputs N` (100,000 under `cargo bench`), `--seed S` (the campaign; input i is a
//! function of S and i), `--target NAME` (repeatable). The exit code is 1 when anything was
//! found.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// An input slower than this is a finding: a second in an optimised build (the bound),
/// thirty in the unoptimised one CI's smoke run uses (its parsers run 10 to 50 times slower).
const SLOW: Duration = Duration::from_secs(if cfg!(debug_assertions) { 30 } else { 1 });
/// Silence after which a child is taken for hung and killed.
const WATCHDOG: Duration = Duration::from_secs(if cfg!(debug_assertions) { 120 } else { 30 });
/// A checkpoint every this many inputs.
const CHECKPOINT: u64 = 1024;
/// The child's address-space limit, KiB.
const MEMORY_LIMIT_KIB: u64 = 2 * 1024 * 1024;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--child") {
        child(&args);
        return;
    }
    let full = args.iter().any(|a| a == "--bench");
    let inputs: u64 = arg(&args, "--inputs")
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 100_000 } else { 300 });
    let campaign: u64 = arg(&args, "--seed")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let only: Vec<String> = args
        .windows(2)
        .filter(|w| w[0] == "--target")
        .map(|w| w[1].clone())
        .collect();
    let findings_dir = std::env::var_os("START_FUZZ_FINDINGS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-findings"));
    let targets = start_fuzz::all();
    for name in &only {
        assert!(targets.iter().any(|t| t.name == name), "no target {name:?}");
    }
    println!(
        "fuzz campaign {campaign}: {inputs} inputs a target, slow = over {} s, memory limit {} GiB",
        SLOW.as_secs(),
        MEMORY_LIMIT_KIB >> 20
    );
    println!(
        "| target | reads | inputs | inputs/s | panics | slow | died (abort, out of memory) | hung |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut all_findings = Vec::new();
    for target in targets
        .iter()
        .filter(|t| only.is_empty() || only.iter().any(|o| o == t.name))
    {
        let started = Instant::now();
        let findings = campaign_of(target.name, inputs, campaign);
        let secs = started.elapsed().as_secs_f64();
        let count = |kind: &str| findings.iter().filter(|f| f.kind == kind).count();
        println!(
            "| {} | {} | {inputs} | {:.0} | {} | {} | {} | {} |",
            target.name,
            target.what,
            inputs as f64 / secs,
            count("panic"),
            count("slow"),
            count("died"),
            count("hung"),
        );
        for f in findings {
            let input = start_fuzz::input(&target.seeds, &target.dict, campaign, f.index);
            let dir = findings_dir.join(target.name);
            std::fs::create_dir_all(&dir).expect("the findings directory");
            let path = dir.join(format!("{campaign}-{}.bin", f.index));
            std::fs::write(&path, &input).expect("a finding's input");
            all_findings.push(format!(
                "{} input {} ({} bytes): {} {} -> {}",
                target.name,
                f.index,
                input.len(),
                f.kind,
                f.detail,
                path.display()
            ));
        }
    }
    if all_findings.is_empty() {
        println!("no findings");
        return;
    }
    println!("findings:");
    for f in &all_findings {
        println!("  {f}");
    }
    std::process::exit(1);
}

/// One finding: which input and what happened.
struct Finding {
    index: u64,
    kind: &'static str,
    detail: String,
}

/// What a child said, or how it ended.
enum Said {
    Line(String),
    Ended,
}

/// A child running `target` on inputs `from..to`, announcing each one when `verbose`.
fn spawn(target: &str, from: u64, to: u64, campaign: u64, verbose: bool) -> Child {
    let exe = std::env::current_exe().expect("this binary");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "ulimit -v {MEMORY_LIMIT_KIB} && exec \"$0\" \"$@\""
        ))
        .arg(exe)
        .args(["--child", target])
        .args(["--from", &from.to_string(), "--to", &to.to_string()])
        .args(["--campaign", &campaign.to_string()]);
    if verbose {
        cmd.arg("--verbose");
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("a child")
}

/// The outcome of one child: the findings it reported, the last checkpoint (every input
/// before it ran), the last input announced, and how it ended.
struct Run {
    findings: Vec<Finding>,
    checkpoint: u64,
    announced: Option<u64>,
    ended: Ending,
}

enum Ending {
    Done,
    Died(String),
    Hung,
}

fn watch(mut child: Child, from: u64) -> Run {
    let stdout = child.stdout.take().expect("the child's stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(Said::Line(line)).is_err() {
                return;
            }
        }
        let _ = tx.send(Said::Ended);
    });
    let mut run = Run {
        findings: Vec::new(),
        checkpoint: from,
        announced: None,
        ended: Ending::Done,
    };
    loop {
        match rx.recv_timeout(WATCHDOG) {
            Ok(Said::Line(line)) => {
                let mut words = line.splitn(3, ' ');
                let (kind, index, rest) = (
                    words.next().unwrap_or(""),
                    words.next().and_then(|i| i.parse::<u64>().ok()),
                    words.next().unwrap_or("").to_string(),
                );
                match (kind, index) {
                    ("at", Some(i)) => run.checkpoint = i,
                    ("run", Some(i)) => run.announced = Some(i),
                    ("panic", Some(i)) => run.findings.push(Finding {
                        index: i,
                        kind: "panic",
                        detail: rest,
                    }),
                    ("slow", Some(i)) => run.findings.push(Finding {
                        index: i,
                        kind: "slow",
                        detail: rest,
                    }),
                    ("done", _) => {
                        let _ = child.wait();
                        return run;
                    }
                    _ => {}
                }
            }
            Ok(Said::Ended) => {
                let status = child.wait().expect("the child's status");
                run.ended = Ending::Died(format!("{status}"));
                return run;
            }
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                run.ended = Ending::Hung;
                return run;
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = child.wait().expect("the child's status");
                run.ended = Ending::Died(format!("{status}"));
                return run;
            }
        }
    }
}

/// Runs `inputs` inputs of `target`, children after children, and collects the findings.
fn campaign_of(target: &str, inputs: u64, campaign: u64) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut next = 0;
    while next < inputs {
        let run = watch(spawn(target, next, inputs, campaign, false), next);
        findings.extend(run.findings);
        if matches!(run.ended, Ending::Done) {
            break;
        }
        // Again one input at a time from the checkpoint, to name the one that kills.
        let from = run.checkpoint;
        let to = (from + CHECKPOINT + 1).min(inputs);
        let again = watch(spawn(target, from, to, campaign, true), from);
        // Panics and slow inputs since the checkpoint were reported by both runs.
        let new: Vec<Finding> = again
            .findings
            .into_iter()
            .filter(|f| {
                !findings
                    .iter()
                    .any(|g: &Finding| g.index == f.index && g.kind == f.kind)
            })
            .collect();
        findings.extend(new);
        match (again.ended, again.announced) {
            (Ending::Done, _) => {
                // It did not die the second time: count it where the first run was.
                findings.push(Finding {
                    index: from,
                    kind: "died",
                    detail: "once, not again when the inputs were rerun (not reproduced)".into(),
                });
                next = to;
            }
            (Ending::Died(status), Some(i)) => {
                findings.push(Finding {
                    index: i,
                    kind: "died",
                    detail: status,
                });
                next = i + 1;
            }
            (Ending::Hung, Some(i)) => {
                findings.push(Finding {
                    index: i,
                    kind: "hung",
                    detail: format!("silent for {} s, killed", WATCHDOG.as_secs()),
                });
                next = i + 1;
            }
            (_, None) => {
                // Died before its first input: the target itself cannot start.
                panic!("{target}: the child dies before running an input");
            }
        }
    }
    findings
}

/// The child: runs `--from..--to` of `--child`'s inputs and reports on stdout.
fn child(args: &[String]) {
    let name = arg(args, "--child").expect("--child NAME");
    let from: u64 = arg(args, "--from")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let to: u64 = arg(args, "--to").and_then(|v| v.parse().ok()).unwrap_or(0);
    let campaign: u64 = arg(args, "--campaign")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let verbose = args.iter().any(|a| a == "--verbose");
    let mut target = start_fuzz::all()
        .into_iter()
        .find(|t| t.name == name)
        .expect("a target of that name");
    // Panics are findings, reported as lines; their default report would flood stderr.
    std::panic::set_hook(Box::new(|_| {}));
    let out = std::io::stdout();
    let mut out = out.lock();
    for i in from..to {
        if verbose {
            writeln!(out, "run {i}").expect("stdout");
            out.flush().expect("stdout");
        }
        let input = start_fuzz::input(&target.seeds, &target.dict, campaign, i);
        let started = Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target.run(&input)));
        let took = started.elapsed();
        if let Err(payload) = result {
            let message = start_schemas::file::panic_message(payload.as_ref());
            writeln!(out, "panic {i} {}", message.replace('\n', " ")).expect("stdout");
        }
        if took > SLOW {
            writeln!(out, "slow {i} {} ms", took.as_millis()).expect("stdout");
        }
        if (i + 1) % CHECKPOINT == 0 {
            writeln!(out, "at {}", i + 1).expect("stdout");
            out.flush().expect("stdout");
        }
    }
    writeln!(out, "done").expect("stdout");
    out.flush().expect("stdout");
}
