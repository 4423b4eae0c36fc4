//! The Docker sandbox reached over TCP, as a worker reaches its pod's Docker-in-Docker sidecar
//! (`DOCKER_HOST=tcp://127.0.0.1:2375`). A loopback proxy to this machine's daemon socket
//! stands in for the sidecar's port; the proxy counts its connections, so the test knows that
//! the sandbox went through it rather than to the local socket.

use start_sandbox::{BackendKind, ExecRequest, Sandbox, SandboxConfig};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn local_socket() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if h.starts_with("unix://") => h.trim_start_matches("unix://").to_string(),
        _ => "/var/run/docker.sock".to_string(),
    }
}

/// Forwards every connection to 127.0.0.1:<port> to the daemon's unix socket.
async fn proxy() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    let socket = local_socket();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::Relaxed);
            let socket = socket.clone();
            tokio::spawn(async move {
                if let Ok(mut unix) = tokio::net::UnixStream::connect(&socket).await {
                    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
                }
            });
        }
    });
    (port, connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docker_sandbox_runs_code_on_a_daemon_reached_over_tcp() {
    if std::env::var_os("START_SKIP_DOCKER_TESTS").is_some() {
        panic!("START_SKIP_DOCKER_TESTS is set: run these tests with --skip docker");
    }
    let (port, connections) = proxy().await;
    let sandbox = Sandbox::start(SandboxConfig {
        backend: BackendKind::Docker,
        pool_size: 1,
        docker_host: Some(format!("tcp://127.0.0.1:{port}")),
        ..SandboxConfig::default()
    })
    .await
    .expect("the Docker sandbox starts over TCP (scripts/setup builds its image)");
    let result = sandbox
        .execute(ExecRequest {
            timeout: Duration::from_secs(10),
            ..ExecRequest::new("print(6 * 7)")
        })
        .await
        .unwrap();
    assert_eq!(result.stdout, "42\n", "{result:?}");
    assert!(
        connections.load(Ordering::Relaxed) >= 2,
        "the image check and the container's attach went through the TCP address"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_daemon_is_an_error_not_a_hang() {
    // Nothing listens on a port just released: the start fails, saying it is Docker.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = tokio::time::timeout(
        Duration::from_secs(30),
        Sandbox::start(SandboxConfig {
            backend: BackendKind::Docker,
            pool_size: 1,
            docker_host: Some(format!("tcp://127.0.0.1:{port}")),
            ..SandboxConfig::default()
        }),
    )
    .await
    .expect("the start gives up by itself");
    let err = started.err().expect("no daemon there");
    assert!(err.to_string().starts_with("docker:"), "{err}");
}
