//! Helpers shared by the cluster tests: the one over processes (`cluster.rs`) and the one over
//! containers (`containers.rs`). Both submit a job of the bundled math problems, wait on
//! predicates (never fixed sleeps), and check the dataset the same way.

#![allow(dead_code)] // each test binary uses its own subset

use start_dataset::{Dataset, DatasetLocation};
use start_schemas::client::Bearer;
use start_schemas::proto::{
    self, job_service_client::JobServiceClient, worker_service_client::WorkerServiceClient,
};
use start_schemas::rows::{read_jsonl, ReadOptions};
use start_schemas::validate::check_row;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The default model, which scripts/setup fetches.
pub fn model() -> PathBuf {
    let m = workspace().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        m.is_file(),
        "the default model is missing: run scripts/setup"
    );
    m
}

/// The directory of this build's binaries: `cargo test --workspace` builds every binary of a
/// package with integration tests beside the test executables' parent.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// The coordinator binary of this build (the coordinator crate has integration tests of its
/// own, so `cargo test --workspace` builds it).
pub fn coordinator_bin() -> PathBuf {
    let bin = bin_dir().join("start-coordinator");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo test --workspace` (or build it)",
        bin.display()
    );
    bin
}

/// Something whose recent log explains a failed wait: a process, a container.
pub trait Tail {
    /// The last lines of its log, headed by its name.
    fn tail(&self) -> String;
}

/// Polls `check` until it holds; panics after `timeout` with the logs' tails.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, logs: &[&dyn Tail], mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        if Instant::now() > deadline {
            let tails: Vec<String> = logs.iter().map(|p| p.tail()).collect();
            panic!("timed out waiting for {what}\n{}", tails.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The bundled math problems (quick to grade), the first `n`.
pub fn math_problems(n: usize) -> Vec<proto::Problem> {
    let text = std::fs::read_to_string(workspace().join("examples/problems/math.jsonl")).unwrap();
    read_jsonl(
        "math.jsonl",
        std::io::Cursor::new(text.into_bytes()),
        &ReadOptions::default(),
    )
    .take(n)
    .map(|item| proto::Problem::from(&check_row(&item.value.unwrap(), &item.location).unwrap()))
    .collect()
}

/// A job writing the dataset `data` under the store root, one sample per problem.
pub fn spec(
    name: &str,
    mode: proto::GenerationMode,
    max_new_tokens: u32,
    unit_size: u32,
) -> proto::JobSpec {
    proto::JobSpec {
        name: name.into(),
        mode: mode as i32,
        params: Some(proto::GenerationParams {
            temperature: 0.6,
            top_p: 0.95,
            repeat_penalty: 1.0,
            max_new_tokens,
            max_tool_calls: 2,
            seed: 7,
            samples: 1,
            ..Default::default()
        }),
        unit_size,
        output_uri: "data".into(),
        ..Default::default()
    }
}

/// A client of one coordinator, with its bearer token if it needs one.
#[derive(Clone)]
pub struct Client {
    channel: Channel,
    bearer: Bearer,
}

impl Client {
    /// A lazily connected client of `url`.
    pub fn new(url: &str, token: Option<&str>) -> Self {
        let (channel, bearer) =
            start_schemas::client::channel(url, None, token, Some(Duration::from_secs(10)))
                .unwrap();
        Self { channel, bearer }
    }

    fn jobs(&self) -> JobServiceClient<InterceptedService<Channel, Bearer>> {
        JobServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    /// Waits until the coordinator's gRPC health check says its job service is serving (what
    /// a readiness probe asks); a published container port accepts connections earlier.
    pub async fn wait_serving(&self, timeout: Duration, logs: &[&dyn Tail]) {
        use tonic_health::pb::{health_check_response::ServingStatus, health_client::HealthClient};
        wait_for("the coordinator to serve", timeout, logs, || async {
            let mut health = HealthClient::new(self.channel.clone());
            health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: "start.v1.JobService".into(),
                })
                .await
                .is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32)
        })
        .await;
    }

    /// Submits, retrying while the coordinator is still starting; returns the job id.
    pub async fn submit(&self, spec: proto::JobSpec, problems: Vec<proto::Problem>) -> String {
        self.try_submit(spec, problems)
            .await
            .unwrap_or_else(|e| panic!("submit: {e}"))
    }

    /// Submits, retrying while the coordinator is still starting; the job id, or the
    /// coordinator's refusal.
    pub async fn try_submit(
        &self,
        spec: proto::JobSpec,
        problems: Vec<proto::Problem>,
    ) -> Result<String, tonic::Status> {
        use proto::submit_job_request::Item;
        let messages = vec![
            proto::SubmitJobRequest {
                item: Some(Item::Spec(spec)),
            },
            proto::SubmitJobRequest {
                item: Some(Item::Problems(proto::ProblemBatch { problems })),
            },
        ];
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self
                .jobs()
                .submit_job(futures_util::stream::iter(messages.clone()))
                .await
            {
                Ok(r) => return Ok(r.into_inner().job_id),
                Err(e) if e.code() == tonic::Code::Unavailable && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The job, or `None` while the coordinator does not answer.
    pub async fn job(&self, id: &str) -> Option<proto::Job> {
        self.jobs()
            .get_job(proto::GetJobRequest { job_id: id.into() })
            .await
            .ok()
            .map(|r| r.into_inner())
    }

    /// Whether the job has succeeded.
    pub async fn succeeded(&self, id: &str) -> bool {
        self.job(id)
            .await
            .is_some_and(|j| j.state == proto::JobState::Succeeded as i32)
    }

    /// Waits up to `timeout` for job `id` to succeed; a time-out panics with the tails of
    /// `logs`.
    pub async fn wait_succeeded(&self, id: &str, timeout: Duration, logs: &[&dyn Tail]) {
        wait_for("the job to succeed", timeout, logs, || self.succeeded(id)).await
    }

    /// How many of the job's leases have expired so far (0 while the coordinator is away).
    pub async fn lease_expirations(&self, id: &str) -> u64 {
        self.job(id)
            .await
            .and_then(|j| j.counters)
            .map_or(0, |c| c.lease_expirations)
    }

    /// Leases held by the worker registered as `host` (0 while the coordinator is away).
    pub async fn leases_of(&self, host: &str) -> u32 {
        let mut workers =
            WorkerServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone());
        let Ok(r) = workers.list_workers(proto::ListWorkersRequest {}).await else {
            return 0;
        };
        r.into_inner()
            .workers
            .iter()
            .filter(|w| w.registration.as_ref().is_some_and(|r| r.hostname == host))
            .map(|w| w.leases)
            .sum()
    }
}

/// Every trajectory of the job exactly once among the manifest's shards (one shard per unit),
/// every shard's sha256 verified and every row readable, and the data path holding exactly
/// the listed shards.
pub async fn check_dataset(loc: &DatasetLocation, problems: &[proto::Problem], units: u64) {
    let ds = Dataset::open(loc.clone()).await.unwrap();
    let manifest = ds.manifest.clone();
    let mut listed: Vec<String> = manifest.shards.iter().map(|s| s.path.clone()).collect();
    listed.sort();
    assert_eq!(
        loc.list("data").await.unwrap(),
        listed,
        "data/ holds exactly the listed shards"
    );
    assert_eq!(
        manifest.shards.len() as u64,
        units,
        "one shard per unit: {:?}",
        manifest.shards
    );
    let mut seen = HashSet::new();
    for shard in &manifest.shards {
        ds.verify(shard).await.unwrap();
        for batch in ds.read_shard(shard, 64).await.unwrap() {
            for t in batch.unwrap() {
                assert!(
                    seen.insert((t.problem_id.clone(), t.sample_index)),
                    "duplicate row {}",
                    t.problem_id
                );
            }
        }
    }
    let want: HashSet<_> = problems.iter().map(|p| (p.id.clone(), 0u32)).collect();
    assert_eq!(seen, want);
}

/// A service process of a test, its stderr in `log`; killed on drop.
pub struct Proc {
    /// Its name in failure messages.
    pub name: String,
    /// The process.
    pub child: Child,
    /// Its log file.
    pub log: PathBuf,
}

impl Proc {
    /// Sends `sig` (`TERM`, `STOP`, ...).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success(), "kill -{sig} {}", self.name);
    }

    /// Kills it with SIGKILL and reaps it.
    pub fn kill9(&mut self) {
        self.signal("KILL");
        let _ = self.child.wait();
    }
}

impl Tail for Proc {
    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "--- {} ---\n{}",
            self.name,
            lines[lines.len().saturating_sub(25)..].join("\n")
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
