//! Two coordinator processes on one Redis, one with its wall clock an hour ahead (libfaketime,
//! installed by scripts/setup): a lease taken through the punctual one must survive every call
//! through the skewed one, because leases run on Redis's clock, not the coordinators'.
//!
//! Were the skewed coordinator's own clock the lease clock, its first poll would find every
//! lease an hour overdue, hand the unit to another worker and revoke the live lease.

use start_schemas::proto::{
    self, job_service_client::JobServiceClient, worker_service_client::WorkerServiceClient,
};
use start_schemas::PROTOCOL_VERSION;
use start_tests::redis::{free_port, RedisServer};
use start_tests::server::TestServer;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tonic::transport::Channel;

const SHA: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
const TTL_MS: u64 = 20_000;

/// A `start-coordinator` child process, killed on drop.
struct Coordinator {
    child: Child,
    url: String,
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a coordinator on `redis`; `offset` (libfaketime's `+1h`) shifts its wall clock.
fn coordinator(redis: &str, root: &std::path::Path, offset: Option<&str>) -> Coordinator {
    let port = free_port();
    let bin = env!("CARGO_BIN_EXE_start-coordinator");
    let mut cmd = Command::new(bin);
    if let Some(offset) = offset {
        // Preloaded into the coordinator itself (the `faketime` wrapper would put a process
        // between this test and the coordinator, which a kill would orphan). Only the wall
        // clock moves; timers (monotonic) stay honest.
        cmd.env("LD_PRELOAD", libfaketime())
            .env("FAKETIME", offset)
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    }
    let child = cmd
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--metrics-listen", "", "--redis", redis])
        .args(["--lease-ttl-ms", &TTL_MS.to_string()])
        .arg("--store-root")
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start-coordinator");
    Coordinator {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// libfaketime from Debian's `faketime` package.
fn libfaketime() -> std::path::PathBuf {
    let mut found = Vec::new();
    for lib in ["/usr/lib", "/usr/lib64"] {
        found.push(std::path::Path::new(lib).join("faketime/libfaketime.so.1"));
        if let Ok(dirs) = std::fs::read_dir(lib) {
            for d in dirs.flatten() {
                found.push(d.path().join("faketime/libfaketime.so.1"));
            }
        }
    }
    found
        .into_iter()
        .find(|p| p.is_file())
        .expect("libfaketime.so.1: install Debian's faketime package (scripts/setup does)")
}

/// A channel to a coordinator this test started.
async fn channel(url: &str) -> Channel {
    start_tests::grpc::connect(url, Duration::from_secs(10)).await
}

async fn register(w: &mut WorkerServiceClient<Channel>) -> String {
    w.register_worker(proto::RegisterWorkerRequest {
        protocol_version: PROTOCOL_VERSION,
        hostname: "clock-test".into(),
        model_sha256: SHA.into(),
        slots: 1,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .worker_id
}

async fn poll(
    w: &mut WorkerServiceClient<Channel>,
    worker_id: &str,
    free_slots: u32,
    held: &[String],
) -> proto::LeaseWorkResponse {
    w.lease_work(proto::LeaseWorkRequest {
        protocol_version: PROTOCOL_VERSION,
        worker_id: worker_id.into(),
        free_slots,
        held_lease_ids: held.to_vec(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_an_hour_ahead_revokes_no_live_lease() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path(), false).expect("redis-server");
    let punctual = coordinator(&redis.url(), dir.path(), None);
    let ahead = coordinator(&redis.url(), dir.path(), Some("+1h"));
    let (a, b) = (channel(&punctual.url).await, channel(&ahead.url).await);
    let mut jobs_b = JobServiceClient::new(b.clone());
    let mut workers_a = WorkerServiceClient::new(a);
    let mut workers_b = WorkerServiceClient::new(b);

    // The skew is real: the job submitted through the skewed coordinator is stamped an hour on.
    use proto::submit_job_request::Item;
    let spec = proto::JobSpec {
        name: "clock".into(),
        mode: proto::GenerationMode::Rft as i32,
        params: Some(proto::GenerationParams {
            temperature: 0.6,
            top_p: 0.95,
            repeat_penalty: 1.0,
            max_new_tokens: 16,
            samples: 1,
            ..Default::default()
        }),
        unit_size: 1,
        output_uri: "clock".into(),
        ..Default::default()
    };
    let problem = proto::Problem {
        id: "p0".into(),
        source: "math".into(),
        kind: proto::ProblemKind::Math as i32,
        question: "What is 1 + 1?".into(),
        answer: "2".into(),
        ..Default::default()
    };
    let submitted = jobs_b
        .submit_job(futures_util::stream::iter(vec![
            proto::SubmitJobRequest {
                item: Some(Item::Spec(spec)),
            },
            proto::SubmitJobRequest {
                item: Some(Item::Problems(proto::ProblemBatch {
                    problems: vec![problem],
                })),
            },
        ]))
        .await
        .unwrap()
        .into_inner();
    let job = jobs_b
        .get_job(proto::GetJobRequest {
            job_id: submitted.job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let skew_ms = job.created_at_ms - chrono::Utc::now().timestamp_millis();
    assert!(
        skew_ms > 50 * 60 * 1000,
        "libfaketime did not move the coordinator's clock (skew {skew_ms} ms)"
    );

    // Worker 1 leases the only unit through the punctual coordinator.
    let w1 = register(&mut workers_a).await;
    let got = poll(&mut workers_a, &w1, 1, &[]).await;
    assert_eq!(got.units.len(), 1, "{got:?}");
    let lease = got.units[0].lease_id.clone();

    // Worker 2 polls through the skewed one: its poll sweeps expired leases, and must find none.
    let w2 = register(&mut workers_b).await;
    let other = poll(&mut workers_b, &w2, 1, &[]).await;
    assert!(
        other.units.is_empty(),
        "the live lease was taken away: {other:?}"
    );
    // Worker 1's heartbeat through the skewed coordinator extends it.
    let beat = poll(&mut workers_b, &w1, 0, std::slice::from_ref(&lease)).await;
    assert!(beat.revoked_lease_ids.is_empty(), "{beat:?}");
    let job = jobs_b
        .get_job(proto::GetJobRequest {
            job_id: submitted.job_id,
        })
        .await
        .unwrap()
        .into_inner();
    let counters = job.counters.unwrap();
    assert_eq!(
        (counters.units_leased, counters.lease_expirations),
        (1, 0),
        "{counters:?}"
    );
}
