//! Stress: 64 callers for a minute (`START_STRESS_SECS` to change it) against a small Docker
//! pool, with a mix of good, slow, memory-hungry and crashing blocks. Every call must come back
//! with its own answer (each block prints its call number), with the flags its kind implies,
//! and no container may outlive the pool.

mod common;

use common::{req, still_works};
use start_sandbox::{BackendKind, Sandbox, SandboxConfig};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn containers() -> usize {
    let out = std::process::Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            "label=start.sandbox",
            "--filter",
            &format!("name=-{}-", std::process::id()),
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_pool_under_64_callers_loses_and_mixes_up_nothing() {
    if std::env::var_os("START_SKIP_DOCKER_TESTS").is_some() {
        panic!("START_SKIP_DOCKER_TESTS is set: run these tests with --skip docker");
    }
    let secs: u64 = std::env::var("START_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    assert_eq!(containers(), 0, "containers left from before");
    let sb = Arc::new(
        Sandbox::start(SandboxConfig {
            backend: BackendKind::Docker,
            pool_size: 4,
            ..SandboxConfig::default()
        })
        .await
        .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(secs);
    let next = Arc::new(AtomicU64::new(0));
    let mut callers = Vec::new();
    for _ in 0..64 {
        let (sb, next) = (sb.clone(), next.clone());
        callers.push(tokio::spawn(async move {
            let mut kinds = [0u64; 4];
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let kind = (n % 10) as usize;
                let (code, kind) = match kind {
                    0..=5 => (
                        format!("import sympy as sp\nprint({n}, sp.factorint({n} + 2))"),
                        0,
                    ),
                    6 => (format!("import time\ntime.sleep(0.4)\nprint({n})"), 1),
                    7 => (
                        format!("print({n}, flush=True)\nx = bytearray(2 * 1024**3)"),
                        2,
                    ),
                    _ => (format!("import os\nprint({n}, flush=True)\nos.abort()"), 3),
                };
                let r = sb
                    .execute(req(&code))
                    .await
                    .unwrap_or_else(|e| panic!("call {n}: {e}"));
                let first = r.stdout.split_whitespace().next().unwrap_or("");
                assert_eq!(first, n.to_string(), "call {n} got another's answer: {r:?}");
                match kind {
                    0 => assert!(
                        r.exit_code == Some(0) && r.stdout.contains('{'),
                        "call {n}: {r:?}"
                    ),
                    1 => assert!(r.exit_code == Some(0) && !r.timed_out, "call {n}: {r:?}"),
                    2 => assert!(r.memory_exceeded, "call {n}: {r:?}"),
                    _ => assert_eq!(r.exit_code, Some(134), "call {n}: {r:?}"),
                }
                kinds[kind] += 1;
            }
            kinds
        }));
    }
    let mut totals = [0u64; 4];
    for c in callers {
        let k = c.await.expect("a caller panicked");
        for (t, v) in totals.iter_mut().zip(k) {
            *t += v;
        }
    }
    let issued = next.load(Ordering::Relaxed);
    let answered: u64 = totals.iter().sum();
    let stats = sb.stats();
    eprintln!(
        "stress: {answered} calls in {secs} s (good, slow, memory, crash) = {totals:?}; {stats:?}"
    );
    assert_eq!(answered, issued, "every issued call was answered");
    assert!(totals.iter().all(|&t| t > 0), "every kind ran: {totals:?}");
    assert_eq!(stats.infrastructure_errors, 0, "{stats:?}");
    still_works(&sb).await;
    sb.shutdown().await;
    // auto-remove deletes a killed container within moments.
    let gone = Instant::now() + Duration::from_secs(20);
    while containers() > 0 && Instant::now() < gone {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(containers(), 0, "containers leaked");
}
