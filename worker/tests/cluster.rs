//! Chaos with real processes: redis-server (append-only), start-coordinator and start-worker
//! binaries on the default model, talking over loopback sockets. Workers are killed with -9,
//! frozen with SIGSTOP past their lease, drained with SIGTERM; the coordinator is killed and
//! restarted; Redis is killed and restarted. The job must complete and the manifest must hold
//! every trajectory exactly once.

use start_schemas::dataset::Dataset;
use start_schemas::manifest::Manifest;
use start_schemas::proto::{
    self, job_service_client::JobServiceClient, worker_service_client::WorkerServiceClient,
};
use start_schemas::rows::{read_jsonl, ReadOptions};
use start_schemas::validate::check_row;
use start_tests::redis::{free_port, RedisServer};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The coordinator binary of this build: `cargo test --workspace` builds it beside this test
/// (the coordinator crate has integration tests of its own, so cargo builds its binary).
fn coordinator_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("start-coordinator");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo test --workspace` (or build it)",
        bin.display()
    );
    bin
}

fn model() -> PathBuf {
    let m = workspace().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        m.is_file(),
        "the default model is missing: run scripts/setup"
    );
    m
}

struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success(), "kill -{sig} {}", self.name);
    }

    fn kill9(&mut self) {
        self.signal("KILL");
        let _ = self.child.wait();
    }

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

struct Cluster {
    dir: tempfile::TempDir,
    redis: RedisServer,
    port: u16,
    procs: Vec<String>,
}

impl Cluster {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let redis_dir = dir.path().join("redis");
        std::fs::create_dir_all(&redis_dir).unwrap();
        let redis =
            RedisServer::start(&redis_dir, true).expect("redis-server (scripts/setup installs it)");
        Self {
            dir,
            redis,
            port: free_port(),
            procs: Vec::new(),
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self, name: &str, mut cmd: Command) -> Proc {
        let log = self.root().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        cmd.stdout(Stdio::null())
            .stderr(file)
            .env("RUST_LOG", "info");
        self.procs.push(name.to_string());
        Proc {
            name: name.into(),
            child: cmd.spawn().unwrap(),
            log,
        }
    }

    fn coordinator(&mut self, name: &str) -> Proc {
        let redis = self.redis.url();
        self.coordinator_on(name, &redis, 3000)
    }

    /// A coordinator on `store` (a Redis URL or `memory`) with leases of `ttl_ms`.
    fn coordinator_on(&mut self, name: &str, store: &str, ttl_ms: u32) -> Proc {
        let mut cmd = Command::new(coordinator_bin());
        cmd.args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .args(["--metrics-listen", "", "--redis", store])
            .args(["--lease-ttl-ms", &ttl_ms.to_string()])
            .arg("--store-root")
            .arg(self.root());
        self.spawn(name, cmd)
    }

    fn worker(&mut self, name: &str) -> Proc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_start-worker"));
        cmd.args([
            "--coordinator",
            &self.url(),
            "--slots",
            "2",
            "--ctx",
            "1024",
        ])
        .args([
            "--sandbox",
            "process",
            "--sandbox-pool",
            "1",
            "--metrics-listen",
            "",
            "--drain-timeout-s",
            "60",
        ])
        .arg("--model")
        .arg(model())
        .arg("--store-root")
        .arg(self.root())
        .env("HOSTNAME", name);
        self.spawn(name, cmd)
    }
}

async fn channel(url: &str) -> Channel {
    Channel::from_shared(url.to_string())
        .unwrap()
        .connect_lazy()
}

async fn wait_for<F, Fut>(what: &str, timeout: Duration, logs: &[&Proc], mut check: F)
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

/// The bundled math problems (quick to grade), as a job of units of two problems.
fn math_problems(n: usize) -> Vec<proto::Problem> {
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

/// A job over the dataset `data`, one sample per problem unless told otherwise.
fn spec(
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

/// Submits, retrying while the coordinator is still starting; returns the job id.
async fn submit(url: &str, spec: proto::JobSpec, problems: Vec<proto::Problem>) -> String {
    use proto::submit_job_request::Item;
    let messages = vec![
        proto::SubmitJobRequest {
            item: Some(Item::Spec(spec)),
        },
        proto::SubmitJobRequest {
            item: Some(Item::Problems(proto::ProblemBatch { problems })),
        },
    ];
    let mut client = JobServiceClient::new(channel(url).await);
    for _ in 0..100 {
        match client
            .submit_job(futures_util::stream::iter(messages.clone()))
            .await
        {
            Ok(r) => return r.into_inner().job_id,
            Err(e) if e.code() == tonic::Code::Unavailable => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("submit: {e}"),
        }
    }
    panic!("the coordinator never answered");
}

async fn job(url: &str, id: &str) -> Option<proto::Job> {
    JobServiceClient::new(channel(url).await)
        .get_job(proto::GetJobRequest { job_id: id.into() })
        .await
        .ok()
        .map(|r| r.into_inner())
}

async fn leases_of(url: &str, host: &str) -> u32 {
    let Ok(r) = WorkerServiceClient::new(channel(url).await)
        .list_workers(proto::ListWorkersRequest {})
        .await
    else {
        return 0;
    };
    r.into_inner()
        .workers
        .iter()
        .filter(|w| w.registration.as_ref().is_some_and(|r| r.hostname == host))
        .map(|w| w.leases)
        .sum()
}

/// Every trajectory of the job exactly once among the manifest's shards, all readable.
fn check_dataset(root: &Path, problems: &[proto::Problem], units: u64) {
    let dir = root.join("data");
    let manifest = Manifest::load(&dir).unwrap();
    assert_eq!(
        manifest.shards.len() as u64,
        units,
        "one shard per unit: {:?}",
        manifest.shards
    );
    let ds = Dataset::open(&dir).unwrap();
    let mut seen = HashSet::new();
    for shard in &manifest.shards {
        ds.verify(shard).unwrap();
        for batch in ds.read_shard(shard, 64).unwrap() {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_survives_killed_frozen_and_restarted_processes() {
    let mut c = Cluster::new();
    let url = c.url();
    let mut coordinator = c.coordinator("coordinator-1");
    let problems = math_problems(12);
    let job_id = submit(
        &url,
        spec("chaos", proto::GenerationMode::Plain, 96, 2),
        problems.clone(),
    )
    .await;
    let mut w1 = c.worker("w1");
    let w2 = c.worker("w2");
    // kill -9 a worker that holds a lease: its unit comes back after the lease expires.
    wait_for(
        "w1 to lease a unit",
        Duration::from_secs(120),
        &[&w1, &coordinator],
        || async { leases_of(&url, "w1").await >= 1 },
    )
    .await;
    w1.kill9();
    // kill -9 the coordinator and start another on the same port: workers keep polling.
    coordinator.kill9();
    let coordinator = c.coordinator("coordinator-2");
    // kill -9 Redis (append-only, fsync always) and bring it back.
    c.redis.restart();
    // Freeze w2 past its lease while w3 works, then let it go: its leases are revoked and any
    // late report refused.
    wait_for(
        "w2 to lease a unit",
        Duration::from_secs(120),
        &[&w2, &coordinator],
        || async { leases_of(&url, "w2").await >= 1 },
    )
    .await;
    w2.signal("STOP");
    let w3 = c.worker("w3");
    tokio::time::sleep(Duration::from_secs(5)).await;
    w2.signal("CONT");
    wait_for(
        "the job to succeed",
        Duration::from_secs(600),
        &[&coordinator, &w2, &w3],
        || async {
            job(&url, &job_id)
                .await
                .is_some_and(|j| j.state == proto::JobState::Succeeded as i32)
        },
    )
    .await;
    let j = job(&url, &job_id).await.unwrap();
    let counters = j.counters.unwrap();
    assert!(
        counters.lease_expirations >= 2,
        "w1's and w2's leases expired: {counters:?}"
    );
    assert_eq!(counters.trajectories, 12);
    check_dataset(c.root(), &problems, counters.units_total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_a_worker_without_losing_its_unit() {
    let mut c = Cluster::new();
    let url = c.url();
    let coordinator = c.coordinator("coordinator");
    let problems = math_problems(4);
    let job_id = submit(
        &url,
        spec("chaos", proto::GenerationMode::Plain, 64, 2),
        problems.clone(),
    )
    .await;
    let mut w = c.worker("drainer");
    wait_for(
        "the worker to lease",
        Duration::from_secs(120),
        &[&w, &coordinator],
        || async { leases_of(&url, "drainer").await >= 1 },
    )
    .await;
    w.signal("TERM");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = w.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "drain did not end\n{}",
            w.tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "drained worker exits 0\n{}", w.tail());
    let j = job(&url, &job_id).await.unwrap();
    let c1 = j.counters.unwrap();
    assert_eq!(c1.units_leased, 0, "a drained worker holds nothing: {c1:?}");
    assert!(
        c1.units_done >= 1,
        "the unit in progress was finished and recorded: {c1:?}"
    );
    assert_eq!(c1.lease_expirations, 0);
    // Another worker finishes the rest.
    let w2 = c.worker("finisher");
    wait_for(
        "the job to succeed",
        Duration::from_secs(300),
        &[&coordinator, &w2],
        || async {
            job(&url, &job_id)
                .await
                .is_some_and(|j| j.state == proto::JobState::Succeeded as i32)
        },
    )
    .await;
    let units = job(&url, &job_id)
        .await
        .unwrap()
        .counters
        .unwrap()
        .units_total;
    check_dataset(c.root(), &problems, units);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_unit_keeps_its_short_lease_alive() {
    // One unit of 48 short trajectories under a 1.5 s lease: finished trajectories wake the
    // worker loop far more often than its heartbeat period, and must not postpone it.
    let mut c = Cluster::new();
    let url = c.url();
    let coordinator = c.coordinator_on("coordinator", "memory", 1500);
    let mut long = spec("long-unit", proto::GenerationMode::Rft, 6, 12);
    let params = long.params.as_mut().unwrap();
    params.samples = 4;
    params.max_tool_calls = 0;
    let job_id = submit(&url, long, math_problems(12)).await;
    let w = c.worker("steady");
    wait_for(
        "the job to succeed",
        Duration::from_secs(300),
        &[&coordinator, &w],
        || async {
            job(&url, &job_id)
                .await
                .is_some_and(|j| j.state == proto::JobState::Succeeded as i32)
        },
    )
    .await;
    let counters = job(&url, &job_id).await.unwrap().counters.unwrap();
    assert_eq!(counters.trajectories, 48);
    assert_eq!(
        counters.lease_expirations,
        0,
        "the lease lapsed while the unit ran\n{}",
        w.tail()
    );
}
