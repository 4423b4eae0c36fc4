//! Helpers shared by the sandbox's integration tests.
// Each test binary uses its own subset of these.
#![allow(dead_code)]

use start_sandbox::{BackendKind, ExecRequest, ExecResult, Sandbox, SandboxConfig};
use std::time::Duration;

/// A sandbox with one runner, so that every request lands on the same runner (or its
/// replacement) and leftovers of one run would be seen by the next.
pub async fn one_runner(backend: BackendKind) -> Sandbox {
    if backend == BackendKind::Docker && std::env::var_os("START_SKIP_DOCKER_TESTS").is_some() {
        panic!("START_SKIP_DOCKER_TESTS is set: run these tests with --skip docker");
    }
    let config = SandboxConfig {
        backend,
        pool_size: 1,
        ..SandboxConfig::default()
    };
    Sandbox::start(config)
        .await
        .unwrap_or_else(|e| panic!("cannot start the {backend:?} sandbox (run scripts/setup): {e}"))
}

/// A fresh run with a short time-out.
pub fn req(code: &str) -> ExecRequest {
    ExecRequest {
        timeout: Duration::from_secs(3),
        memory_mb: 256,
        max_output_bytes: 4096,
        ..ExecRequest::new(code)
    }
}

/// Runs `code` and returns the result, failing the test on a pool error.
pub async fn run(sb: &Sandbox, code: &str) -> ExecResult {
    sb.execute(req(code)).await.expect("the pool answers")
}

/// The runner (or its replacement) still answers correctly.
pub async fn still_works(sb: &Sandbox) {
    let r = run(sb, "print(1+1)").await;
    assert_eq!(r.stdout, "2\n", "the next request failed: {r:?}");
    assert_eq!(r.exit_code, Some(0), "{r:?}");
}
