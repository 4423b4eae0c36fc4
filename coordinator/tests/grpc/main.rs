//! The coordinator over real gRPC sockets, driven by a protocol-level client that plays the
//! worker's part without inference (it writes fixture shards with the real shard writer). The
//! full worker with the model is exercised in tests/tests/cluster.rs.
//!
//! One protocol-level client and one server harness (here) serve every case of the wire
//! contract: units and shards exactly once ([`units`]), and what the coordinator refuses and
//! how it is reached and watched ([`service`]).

use start_coordinator::{
    serve, MemoryStore, RedisStore, ServerConfig, ServiceConfig, Store, StorePolicy,
};
use start_dataset::{DatasetLocation, Manifest, ShardOptions, ShardWriter, StoreRoot};
use start_schemas::client::NotFound;
use start_schemas::proto::{
    self, job_service_client::JobServiceClient, worker_service_client::WorkerServiceClient,
};
use start_schemas::PROTOCOL_VERSION;
use start_tests::redis::RedisServer;
use start_tests::server::TestServer;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;
use tonic::{Code, Request};

const SHA: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

struct Running {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let _ = self.task.await;
    }
}

async fn start(store: Arc<dyn Store>, root: &Path, ttl_ms: u64, token: Option<&str>) -> Running {
    let root = StoreRoot::parse(root.to_str().unwrap()).unwrap();
    start_on(store, root, ttl_ms, token).await
}

/// A coordinator on `store` whose dataset store is `root`.
async fn start_on(
    store: Arc<dyn Store>,
    root: StoreRoot,
    ttl_ms: u64,
    token: Option<&str>,
) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let config = ServerConfig {
        service: ServiceConfig {
            lease_ttl: Duration::from_millis(ttl_ms),
            store_root: root,
            watch_interval: Duration::from_millis(50),
            ..ServiceConfig::default()
        },
        token: token.map(str::to_string),
        tls: None,
    };
    let task = tokio::spawn(async move {
        serve(config, store, listener, None, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Running {
        url,
        stop: Some(tx),
        task,
    }
}

/// A channel to a coordinator this test started.
async fn channel(url: &str) -> Channel {
    start_tests::grpc::connect(url, Duration::from_secs(2)).await
}

fn spec(out: &str, unit_size: u32) -> proto::JobSpec {
    proto::JobSpec {
        name: "grpc-test".into(),
        mode: proto::GenerationMode::Rft as i32,
        params: Some(proto::GenerationParams {
            temperature: 0.6,
            top_p: 0.95,
            repeat_penalty: 1.0,
            max_new_tokens: 64,
            max_tool_calls: 6,
            samples: 1,
            ..Default::default()
        }),
        unit_size,
        output_uri: out.into(),
        ..Default::default()
    }
}

fn problem(i: usize) -> proto::Problem {
    proto::Problem {
        id: format!("p{i}"),
        source: "math".into(),
        kind: proto::ProblemKind::Math as i32,
        question: format!("What is {i} + 1?"),
        answer: format!("{}", i + 1),
        ..Default::default()
    }
}

fn submission(spec: proto::JobSpec, problems: Vec<proto::Problem>) -> Vec<proto::SubmitJobRequest> {
    use proto::submit_job_request::Item;
    vec![
        proto::SubmitJobRequest {
            item: Some(Item::Spec(spec)),
        },
        proto::SubmitJobRequest {
            item: Some(Item::Problems(proto::ProblemBatch { problems })),
        },
    ]
}

async fn register(w: &mut WorkerServiceClient<Channel>) -> String {
    w.register_worker(proto::RegisterWorkerRequest {
        protocol_version: PROTOCOL_VERSION,
        hostname: "test".into(),
        model_name: "m.gguf".into(),
        model_sha256: SHA.into(),
        slots: 1,
        sandbox_capacity: 1,
        version: "t".into(),
    })
    .await
    .unwrap()
    .into_inner()
    .worker_id
}

async fn poll(
    w: &mut WorkerServiceClient<Channel>,
    id: &str,
    free: u32,
    held: Vec<String>,
    reports: Vec<proto::UnitReport>,
) -> proto::LeaseWorkResponse {
    w.lease_work(proto::LeaseWorkRequest {
        protocol_version: PROTOCOL_VERSION,
        worker_id: id.into(),
        free_slots: free,
        held_lease_ids: held,
        reports,
        draining: false,
        released_lease_ids: vec![],
    })
    .await
    .unwrap()
    .into_inner()
}

/// Writes and stages a unit's shard the way a worker does (fixture rows) and returns its
/// report.
async fn write_unit(dataset: &Path, unit: &proto::WorkUnit) -> proto::UnitReport {
    let rows: Vec<_> = unit
        .problems
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut t = start_tests::trajectory(i as u32);
            t.problem_id = p.id.clone();
            t.job_id = unit.job_id.clone();
            t
        })
        .collect();
    let mut w = ShardWriter::create(
        &format!("{}.a{}", unit.unit_id, unit.attempt),
        &ShardOptions::default(),
    )
    .unwrap();
    w.write(&rows).unwrap();
    let loc = DatasetLocation::local(dataset).unwrap();
    let e = w.finish().unwrap().stage(&loc).await.unwrap();
    proto::UnitReport {
        unit_id: unit.unit_id.clone(),
        lease_id: unit.lease_id.clone(),
        shard: Some(proto::ShardInfo {
            path: e.path,
            rows: e.rows,
            sha256: e.sha256,
            bytes: e.bytes,
            schema_version: e.schema_version,
        }),
        correct: 1,
        completion_tokens: 10,
        tool_calls: 0,
        errored: 0,
        error: String::new(),
    }
}

mod service;
mod units;
