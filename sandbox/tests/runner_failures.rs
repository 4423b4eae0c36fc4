//! Runner failures are retried once on another runner and then reported as infrastructure
//! errors, never as the code's own output. Failures are made the hard way: the runner's
//! container or process is killed while it runs a block, or the runner is replaced by one that
//! breaks the protocol. Alone in this binary, so that the killer meets only its own pool.

mod common;

use common::{one_runner, req, still_works};
use start_sandbox::{BackendKind, ExecRequest, Sandbox, SandboxConfig, SandboxError};
use std::collections::HashSet;
use std::time::Duration;

/// The runners alive now: container ids of this test process (Docker) or runner process ids
/// (process backend), found from outside the pool, the way an operator would.
fn runners(backend: BackendKind) -> Vec<String> {
    match backend {
        BackendKind::Docker => {
            let out = std::process::Command::new("docker")
                .args([
                    "ps",
                    "-q",
                    "--filter",
                    "label=start.sandbox",
                    "--filter",
                    &format!("name=-{}-", std::process::id()),
                ])
                .output()
                .expect("docker ps");
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect()
        }
        _ => {
            let me = std::process::id().to_string();
            let mut found = Vec::new();
            for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                let pid = entry.file_name().to_string_lossy().into_owned();
                if !pid.chars().all(|c| c.is_ascii_digit()) {
                    continue;
                }
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let ppid = stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .unwrap_or("");
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                if ppid == me && String::from_utf8_lossy(&cmdline).contains("runner.py") {
                    found.push(pid);
                }
            }
            found
        }
    }
}

/// The pids whose parent is `ppid`.
fn children(ppid: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .unwrap_or("");
        if parent == ppid {
            found.push(pid);
        }
    }
    found
}

/// Whether `runner` is running a block now (its interpreter has a child), not starting up.
fn busy(backend: BackendKind, runner: &str) -> bool {
    match backend {
        BackendKind::Docker => {
            let out = std::process::Command::new("docker")
                .args(["top", runner, "-o", "pid"])
                .output()
                .expect("docker top");
            // A header line, the runner, and the block's child.
            String::from_utf8_lossy(&out.stdout).lines().count() >= 3
        }
        // unshare -> the runner (PID 1 of its namespace) -> the block.
        _ => children(runner)
            .iter()
            .any(|interpreter| !children(interpreter).is_empty()),
    }
}

fn kill(backend: BackendKind, runner: &str) {
    match backend {
        BackendKind::Docker => {
            let _ = std::process::Command::new("docker")
                .args(["kill", runner])
                .output();
        }
        _ => {
            let _ = std::process::Command::new("kill")
                .args(["-9", runner])
                .status();
        }
    }
}

/// Kills each runner that serves `code` while it runs, `times` times; returns the outcome.
async fn kill_mid_call(
    sb: &std::sync::Arc<Sandbox>,
    backend: BackendKind,
    times: usize,
) -> Result<start_sandbox::ExecResult, SandboxError> {
    let call = {
        let sb = sb.clone();
        tokio::spawn(async move {
            let mut r =
                req("import time\nprint('started', flush=True)\ntime.sleep(2)\nprint('done')");
            r.timeout = Duration::from_secs(10);
            sb.execute(r).await
        })
    };
    let mut killed = HashSet::new();
    while killed.len() < times && !call.is_finished() {
        tokio::time::sleep(Duration::from_millis(300)).await;
        for runner in runners(backend) {
            if killed.len() < times && !killed.contains(&runner) && busy(backend, &runner) {
                kill(backend, &runner);
                killed.insert(runner);
            }
        }
    }
    call.await.unwrap()
}

async fn runner_failures_are_retried_then_reported(backend: BackendKind) {
    let sb = std::sync::Arc::new(one_runner(backend).await);
    still_works(&sb).await;
    // Killed once mid-call: the block runs again on the replacement and answers in full.
    let r = kill_mid_call(&sb, backend, 1)
        .await
        .expect("the retry answers");
    assert_eq!(r.stdout, "started\ndone\n", "{r:?}");
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    let s = sb.stats();
    assert_eq!(
        (s.infrastructure_failures, s.infrastructure_errors),
        (1, 0),
        "{s:?}"
    );
    // Killed on both attempts: an infrastructure error, not a result the model would read.
    let err = kill_mid_call(&sb, backend, 2)
        .await
        .expect_err("two failures are an error");
    match &err {
        SandboxError::Infrastructure { attempts, cause } => {
            assert_eq!(*attempts, 2, "{err}");
            assert!(cause.contains("then"), "both causes are named: {err}");
        }
        other => panic!("expected an infrastructure error, got {other}"),
    }
    let s = sb.stats();
    assert_eq!(
        (s.infrastructure_failures, s.infrastructure_errors),
        (3, 1),
        "{s:?}"
    );
    still_works(&sb).await;
    sb.shutdown().await;
}

/// One test for every case: the killer finds runners by this process's id, so no other pool
/// of this process may run at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_failures_are_retried_once_then_infrastructure_errors() {
    runner_failures_are_retried_then_reported(BackendKind::Process).await;
    runner_failures_are_retried_then_reported(BackendKind::Docker).await;
    a_runner_that_breaks_the_protocol_is_an_infrastructure_error().await;
}

/// A test double of the runner, named as such: it answers `ready` like the real one, then
/// breaks the protocol in the way `START_BROKEN_RUNNER` says. The process backend runs it in
/// place of the interpreter (`python` = this script), so everything else is the real pool.
const BROKEN_RUNNER: &str = r#"#!/usr/bin/env python3
import json, os, struct, sys
def send(obj):
    body = json.dumps(obj).encode()
    sys.stdout.buffer.write(struct.pack(">I", len(body)) + body)
    sys.stdout.buffer.flush()
send({"id": 0, "ready": True, "pid": os.getpid(), "mode": "fork", "rss_mb": 1})
head = sys.stdin.buffer.read(4)
req = json.loads(sys.stdin.buffer.read(struct.unpack(">I", head)[0]))
how = os.environ.get("MODE_OF_BREAKAGE", "garbage")
if how == "garbage":
    sys.stdout.buffer.write(b"\x00\x00\x00\x05not json")
elif how == "wrong id":
    send({"id": req["id"] + 7, "stdout": "forged", "stderr": "", "exit_code": 0})
elif how == "refusal":
    send({"id": req["id"], "stdout": "", "stderr": "", "exit_code": None, "timed_out": False,
          "memory_exceeded": False, "truncated": False, "duration_ms": 0.1,
          "error": "could not start the interpreter: [Errno 11] Resource temporarily unavailable"})
sys.stdout.buffer.flush()
os._exit(0)
"#;

async fn a_runner_that_breaks_the_protocol_is_an_infrastructure_error() {
    let dir = tempfile::tempdir().unwrap();
    for how in ["garbage", "wrong id", "exit", "refusal"] {
        let script = dir
            .path()
            .join(format!("broken-{}.sh", how.replace(' ', "-")));
        // The pool starts `<python> runner.py`; this stand-in ignores the runner and plays
        // the broken one.
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nexport MODE_OF_BREAKAGE='{how}'\nexec python3 -c '{}'\n",
                BROKEN_RUNNER.replace('\'', "'\\''")
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let sb = Sandbox::start(SandboxConfig {
            backend: BackendKind::Process,
            pool_size: 2,
            python: script.display().to_string(),
            ..SandboxConfig::default()
        })
        .await
        .unwrap();
        let err = sb
            .execute(ExecRequest::new("print(1)"))
            .await
            .expect_err(how);
        assert!(
            matches!(err, SandboxError::Infrastructure { attempts: 2, .. }),
            "{how}: {err}"
        );
        let text = err.to_string();
        match how {
            "garbage" => assert!(text.contains("bad reply"), "{text}"),
            "wrong id" => assert!(text.contains("does not answer request"), "{text}"),
            "exit" => assert!(text.contains("exited"), "{text}"),
            _ => assert!(text.contains("could not start the interpreter"), "{text}"),
        }
        let s = sb.stats();
        assert_eq!(
            (s.infrastructure_failures, s.infrastructure_errors),
            (2, 1),
            "{how}: {s:?}"
        );
        sb.shutdown().await;
    }
}
