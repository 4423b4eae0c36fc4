//! Chaos with real processes: redis-server (append-only), start-coordinator and start-worker
//! binaries on the default model, talking over loopback sockets. Workers are killed with -9,
//! frozen with SIGSTOP past their lease, drained with SIGTERM; the coordinator is killed and
//! restarted; Redis is killed and restarted. The job must complete and the manifest must hold
//! every trajectory exactly once.

use crate::common::{
    check_dataset, coordinator_bin, math_problems, model, spec, wait_for, Client, Proc, Tail,
};
use start_schemas::proto;
use start_tests::redis::{free_port, RedisServer};
use start_tests::server::TestServer;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Cluster {
    dir: tempfile::TempDir,
    redis: RedisServer,
    port: u16,
    procs: Vec<String>,
    /// The dataset store on S3 instead of the temp directory.
    s3: Option<start_tests::s3::S3Server>,
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
            s3: None,
        }
    }

    /// A cluster whose dataset store is a bucket on an S3 server on loopback.
    fn on_s3() -> Self {
        Self {
            s3: Some(start_tests::s3::S3Server::start("start-cluster")),
            ..Self::new()
        }
    }

    /// What `--store-root` says: the temp directory, or the bucket.
    fn store_root(&self) -> String {
        match &self.s3 {
            Some(s3) => s3.url(""),
            None => self.root().display().to_string(),
        }
    }

    /// The environment the store needs (S3's credentials and endpoint).
    fn store_env(&self) -> Vec<(&'static str, String)> {
        self.s3.as_ref().map(|s| s.env()).unwrap_or_default()
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The jobs' dataset (`spec` writes to `data` under the store root).
    fn dataset(&self) -> start_dataset::DatasetLocation {
        if let Some(s3) = &self.s3 {
            s3.export_env();
        }
        start_dataset::StoreRoot::parse(&self.store_root())
            .and_then(|r| r.dataset("data"))
            .unwrap()
    }

    fn spawn(&mut self, name: &str, mut cmd: Command) -> Proc {
        let log = self.root().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        cmd.stdout(Stdio::null()).stderr(file);
        if !cmd.get_envs().any(|(k, _)| k == "RUST_LOG") {
            cmd.env("RUST_LOG", "info");
        }
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
        let port = self.port;
        self.coordinator_at(name, store, ttl_ms, port)
    }

    /// A coordinator listening on `port` (a second one beside the first, on the same store).
    fn coordinator_at(&mut self, name: &str, store: &str, ttl_ms: u32, port: u16) -> Proc {
        let mut cmd = Command::new(coordinator_bin());
        cmd.args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--metrics-listen", "", "--redis", store])
            .args(["--lease-ttl-ms", &ttl_ms.to_string()])
            .arg("--store-root")
            .arg(self.store_root())
            .envs(self.store_env());
        self.spawn(name, cmd)
    }

    fn worker(&mut self, name: &str) -> Proc {
        self.worker_draining_within(name, 60)
    }

    /// A worker that gives back what it has not finished `drain_s` seconds after SIGTERM.
    fn worker_draining_within(&mut self, name: &str, drain_s: u32) -> Proc {
        let cmd = self.worker_cmd(name, drain_s);
        self.spawn(name, cmd)
    }

    fn worker_cmd(&self, name: &str, drain_s: u32) -> Command {
        self.worker_cmd_to(name, drain_s, &self.url())
    }

    /// A worker of the coordinator at `url`.
    fn worker_cmd_to(&self, name: &str, drain_s: u32, url: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_start-worker"));
        // One thread: tests and their workers run side by side, and llama.cpp's threads spin
        // at every operation's barrier, so workers each on every core slow each other down
        // many times over: three 16-trajectory runs at once on two cores took 167 s on two
        // threads each, 11 s on one; a unit of 48 six-token trajectories once ran past 300 s.
        cmd.args(["--coordinator", url, "--slots", "2", "--ctx", "1024"])
            .args(["--threads", "1"])
            .args([
                "--sandbox",
                "process",
                "--sandbox-pool",
                "1",
                "--metrics-listen",
                "",
                "--drain-timeout-s",
                &drain_s.to_string(),
            ])
            .arg("--model")
            .arg(model())
            .arg("--store-root")
            .arg(self.store_root())
            .envs(self.store_env())
            .env("HOSTNAME", name);
        cmd
    }
}

/// A log of JSON lines, each parsed (a line that is not JSON fails the test).
fn json_lines(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: not a JSON line ({e}): {l}", log.display()))
        })
        .collect()
}

/// The events whose enclosing spans include a span `name` with `field` equal to `value`.
fn under<'a>(
    lines: &'a [serde_json::Value],
    name: &str,
    field: &str,
    value: &str,
) -> Vec<&'a serde_json::Value> {
    lines
        .iter()
        .filter(|l| {
            l["spans"].as_array().is_some_and(|spans| {
                spans
                    .iter()
                    .any(|s| s["name"] == name && s[field].as_str() == Some(value))
            })
        })
        .collect()
}

fn message(l: &serde_json::Value) -> &str {
    l["fields"]["message"].as_str().unwrap_or("")
}

fn has_span(l: &serde_json::Value, name: &str) -> bool {
    l["spans"]
        .as_array()
        .is_some_and(|spans| spans.iter().any(|s| s["name"] == name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_follow_one_lease_through_coordinator_and_worker() {
    let mut c = Cluster::new();
    let client = Client::new(&c.url(), None);
    let mut cmd = Command::new(coordinator_bin());
    cmd.args(["--listen", &format!("127.0.0.1:{}", c.port)])
        .args(["--metrics-listen", "", "--redis", "memory"])
        .args(["--log-format", "json"])
        .arg("--store-root")
        .arg(c.root());
    let coordinator = c.spawn("coordinator", cmd);
    let problems = math_problems(2);
    let job_id = client
        .submit(
            spec("traced", proto::GenerationMode::HintInfer, 160, 2),
            problems,
        )
        .await;
    let mut cmd = c.worker_cmd("traced", 60);
    cmd.args(["--log-format", "json"])
        .env("RUST_LOG", "info,start_engine=debug,start_worker=debug");
    let w = c.spawn("traced", cmd);
    client
        .wait_succeeded(&job_id, Duration::from_secs(300), &[&coordinator, &w])
        .await;
    let counters = client.job(&job_id).await.unwrap().counters.unwrap();
    let (coordinator_log, worker_log) = (coordinator.log.clone(), w.log.clone());
    // The worker logs the coordinator's answer to its report, which the coordinator sends
    // after logging the report: once the worker has, both logs are complete.
    wait_for(
        "the worker to log the recorded report",
        Duration::from_secs(30),
        &[&coordinator, &w],
        || async {
            std::fs::read_to_string(&worker_log)
                .unwrap_or_default()
                .contains("unit recorded")
        },
    )
    .await;
    drop(w);
    drop(coordinator);
    let (coordinator, worker) = (json_lines(&coordinator_log), json_lines(&worker_log));
    // The coordinator names the lease it handed out...
    let leased = coordinator
        .iter()
        .find(|l| message(l) == "unit leased")
        .expect("a `unit leased` line");
    let lease = leased["fields"]["lease"].as_str().unwrap();
    assert_eq!(leased["fields"]["job"].as_str(), Some(job_id.as_str()));
    // ...and records its report under the same lease.
    let recorded = under(&coordinator, "report", "lease", lease);
    assert!(
        recorded.iter().any(|l| message(l) == "shard recorded"),
        "{coordinator:?}"
    );
    // The worker's lines of that unit all carry the lease: its start, every trajectory, every
    // tool call (inside its trajectory), the shard staged for the coordinator's commit, and the end.
    let mine = under(&worker, "unit", "lease", lease);
    let said = |m: &str| mine.iter().filter(|l| message(l) == m).count();
    assert_eq!(said("unit started"), 1, "{mine:?}");
    assert_eq!(said("trajectory graded"), 2, "{mine:?}");
    assert_eq!(
        said("trajectory generated"),
        2,
        "the engine's lines too: {mine:?}"
    );
    assert_eq!(said("shard staged"), 1, "{mine:?}");
    assert_eq!(said("unit done"), 1, "{mine:?}");
    assert!(mine
        .iter()
        .filter(|l| message(l) == "trajectory graded")
        .all(|l| has_span(l, "trajectory")));
    let tool_lines = mine
        .iter()
        .filter(|l| message(l).starts_with("tool call"))
        .filter(|l| has_span(l, "trajectory") && has_span(l, "tool_call"))
        .count() as u64;
    assert_eq!(
        tool_lines, counters.tool_calls,
        "one line per tool call, inside its trajectory: {mine:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_survives_killed_frozen_and_restarted_processes() {
    let mut c = Cluster::new();
    let client = Client::new(&c.url(), None);
    let mut coordinator = c.coordinator("coordinator-1");
    let problems = math_problems(12);
    let job_id = client
        .submit(
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
        || async { client.leases_of("w1").await >= 1 },
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
        || async { client.leases_of("w2").await >= 1 },
    )
    .await;
    w2.signal("STOP");
    let w3 = c.worker("w3");
    tokio::time::sleep(Duration::from_secs(5)).await;
    w2.signal("CONT");
    client
        .wait_succeeded(&job_id, Duration::from_secs(600), &[&coordinator, &w2, &w3])
        .await;
    let j = client.job(&job_id).await.unwrap();
    let counters = j.counters.unwrap();
    assert!(
        counters.lease_expirations >= 2,
        "w1's and w2's leases expired: {counters:?}"
    );
    assert_eq!(counters.trajectories, 12);
    check_dataset(&c.dataset(), &problems, counters.units_total).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_a_worker_without_losing_its_unit() {
    let mut c = Cluster::new();
    let client = Client::new(&c.url(), None);
    let coordinator = c.coordinator("coordinator");
    let problems = math_problems(4);
    let job_id = client
        .submit(
            spec("chaos", proto::GenerationMode::Plain, 64, 2),
            problems.clone(),
        )
        .await;
    // The drain must finish the unit in hand, however loaded the machine is (the other cluster
    // tests run beside this one): a deadline far beyond the unit's work.
    let mut w = c.worker_draining_within("drainer", 400);
    wait_for(
        "the worker to lease",
        Duration::from_secs(120),
        &[&w, &coordinator],
        || async { client.leases_of("drainer").await >= 1 },
    )
    .await;
    w.signal("TERM");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = w.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(480),
            "drain did not end\n{}",
            w.tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        status.success(),
        "drained worker exits 0, not {status}\n{}",
        w.tail()
    );
    let j = client.job(&job_id).await.unwrap();
    let c1 = j.counters.unwrap();
    assert_eq!(c1.units_leased, 0, "a drained worker holds nothing: {c1:?}");
    assert!(
        c1.units_done >= 1,
        "the unit in progress was finished and recorded: {c1:?}"
    );
    assert_eq!(c1.lease_expirations, 0);
    // Another worker finishes the rest.
    let w2 = c.worker("finisher");
    client
        .wait_succeeded(&job_id, Duration::from_secs(300), &[&coordinator, &w2])
        .await;
    let units = client
        .job(&job_id)
        .await
        .unwrap()
        .counters
        .unwrap()
        .units_total;
    check_dataset(&c.dataset(), &problems, units).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_unit_keeps_its_short_lease_alive() {
    // One unit of 48 short trajectories under a 1.5 s lease: finished trajectories wake the
    // worker loop far more often than its heartbeat period, and must not postpone it.
    let mut c = Cluster::new();
    let done = c.rft_on_one_worker("long-unit", 12, 4, 12, 6).await;
    let (client, job_id, w) = (&done.client, &done.job_id, &done.worker);
    let counters = client.job(job_id).await.unwrap().counters.unwrap();
    assert_eq!(counters.trajectories, 48);
    assert_eq!(
        counters.lease_expirations,
        0,
        "the lease lapsed while the unit ran\n{}",
        w.tail()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_leases_its_next_unit_before_the_current_one_drains() {
    // Two units of four trajectories on a worker of two slots (a backlog of four): once the
    // first unit's trajectories left to run fall below the backlog, the worker asks for more
    // and the next unit's trajectories queue behind them, so no slot waits at the unit's end
    // for its slowest trajectory.
    let mut c = Cluster::new();
    let done = c.rft_on_one_worker("two-units", 4, 2, 2, 48).await;
    let (job_id, w) = (&done.job_id, &done.worker);
    let log = std::fs::read_to_string(&w.log).unwrap();
    let line = |what: &str, unit: &str| {
        log.lines()
            .position(|l| l.contains(what) && l.contains(&format!("{job_id}.{unit}")))
            .unwrap_or_else(|| panic!("no {what:?} line of {unit}\n{}", w.tail()))
    };
    let (first_done, second_leased) = (
        line("shard staged", "u00000"),
        line("unit leased", "u00001"),
    );
    assert!(
        second_leased < first_done,
        "the second unit was leased only after the first one had finished\n{}",
        w.tail()
    );
}

/// A job run to success on one worker (see [`Cluster::rft_on_one_worker`]).
struct Done {
    client: Client,
    job_id: String,
    worker: Proc,
    _coordinator: Proc,
}

impl Cluster {
    /// An RFT job without tools, `problems` x `samples` trajectories of `max_new_tokens` in
    /// units of `unit_size` problems, on one worker under 1.5 s leases (a coordinator on the
    /// in-process store), run until it succeeds.
    async fn rft_on_one_worker(
        &mut self,
        name: &str,
        problems: usize,
        samples: u32,
        unit_size: u32,
        max_new_tokens: u32,
    ) -> Done {
        let client = Client::new(&self.url(), None);
        let coordinator = self.coordinator_on("coordinator", "memory", 1500);
        let mut job = spec(name, proto::GenerationMode::Rft, max_new_tokens, unit_size);
        let params = job.params.as_mut().unwrap();
        params.samples = samples;
        params.max_tool_calls = 0;
        let job_id = client.submit(job, math_problems(problems)).await;
        let worker = self.worker(name);
        client
            .wait_succeeded(&job_id, Duration::from_secs(300), &[&coordinator, &worker])
            .await;
        Done {
            client,
            job_id,
            worker,
            _coordinator: coordinator,
        }
    }

    /// A worker on the OpenAI-compatible backend at `endpoint`, waiting `outage_s` seconds for
    /// a failed server before its units fail.
    fn openai_worker(&mut self, name: &str, endpoint: &str, outage_s: u32) -> Proc {
        let mut cmd = self.worker_cmd(name, 60);
        cmd.args(["--engine", "openai", "--endpoint", endpoint])
            .args(["--endpoint-outage-s", &outage_s.to_string()]);
        self.spawn(name, cmd)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_on_an_openai_server_outlives_the_server_being_killed_mid_job() {
    // llama.cpp's own llama-server on loopback, the worker driving it through /v1/completions.
    let server = start_tests::llama_server::LlamaServer::start(2, 1024);
    workers_outlive_their_server_being_killed(server, &["remote"], 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_vllm_server_serve_a_job_pinned_to_it_through_its_restart() {
    // A real vLLM (its CPU build) with two workers on it, as a fleet deployment has: both
    // record the server's one identity, so a job pinned to it runs on both.
    let server = start_tests::vllm::VllmServer::start(4, 2048);
    // A unit a problem, so that both workers have units when the server dies.
    workers_outlive_their_server_being_killed(server, &["fleet-a", "fleet-b"], 1).await;
}

/// Workers drive `server`; the job is pinned to the server's identity (its `model_sha256`, as
/// a first connection reads it: every worker must register the same one to get units). The
/// server is killed -9 while units run and stays away longer than the workers wait: the units
/// in flight fail and come back, no worker takes one while the server is down, and once it is
/// back the job completes with every trajectory exactly once, every row naming the server.
async fn workers_outlive_their_server_being_killed(
    mut server: impl TestServer,
    names: &[&str],
    unit_size: u32,
) {
    let identity = {
        let mut config = start_engine::OpenAiConfig::new(server.url());
        config.attempts = 2;
        start_engine::OpenAiEngine::start(config, None)
            .await
            .expect("the server answers")
            .identity
            .clone()
    };
    let mut c = Cluster::new();
    let client = Client::new(&c.url(), None);
    let coordinator = c.coordinator("coordinator");
    let problems = math_problems(8);
    // Long enough trajectories that the server dies while units run (at 128 tokens a
    // llama-server unit could end between the lease seen and the kill).
    let mut pinned = spec("openai", proto::GenerationMode::HintInfer, 384, unit_size);
    pinned.model_sha256 = identity.sha256.clone();
    let job_id = client.submit(pinned, problems.clone()).await;
    let workers: Vec<Proc> = names
        .iter()
        .map(|name| c.openai_worker(name, &server.url(), 3))
        .collect();
    let mut watched: Vec<&dyn Tail> = workers.iter().map(|w| w as &dyn Tail).collect();
    watched.push(&coordinator);
    for name in names {
        wait_for(
            &format!("{name} to lease a unit"),
            Duration::from_secs(300),
            &watched,
            || async { client.leases_of(name).await >= 1 },
        )
        .await;
    }
    server.kill();
    // The server stays away until a unit has failed over the outage (a trajectory that was
    // in the sandbox, or between requests, sees the outage only at its next request, after
    // the client's own retries): a fixed pause raced that, and under load the server could
    // come back first.
    let logs = || {
        workers
            .iter()
            .map(|w| std::fs::read_to_string(&w.log).unwrap_or_default())
            .collect::<String>()
    };
    wait_for(
        "a unit to fail over the outage",
        Duration::from_secs(120),
        &watched,
        || async { logs().contains("unit failed") },
    )
    .await;
    server.restart();
    client
        .wait_succeeded(&job_id, Duration::from_secs(900), &watched)
        .await;
    let counters = client.job(&job_id).await.unwrap().counters.unwrap();
    assert_eq!(counters.trajectories, 8);
    // A job is shown `succeeded` only once its dataset is committed: no wait for the
    // manifest to follow (check_dataset reads it at once).
    check_dataset(&c.dataset(), &problems, counters.units_total).await;
    // A unit in flight when the server died waited for it, failed past the outage, and was
    // done again once the server was back (the dataset check above: nothing lost or doubled).
    let logs: String = workers
        .iter()
        .map(|w| std::fs::read_to_string(&w.log).unwrap())
        .collect();
    assert!(
        logs.contains("the inference server failed") && logs.contains("unit failed"),
        "the outage was seen and a unit failed over it: {}",
        workers
            .iter()
            .map(|w| w.tail())
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Every row says where it came from: the backend, the served model and the server's
    // identity (whose sha256 is the row's model_sha256, the one the job pinned), token ids as
    // the server sampled them; and every worker wrote some.
    let dir = c.root().join("data");
    let ds = start_dataset::Dataset::open(start_dataset::DatasetLocation::local(&dir).unwrap())
        .await
        .unwrap();
    let mut rows = 0;
    let mut by_worker = std::collections::BTreeMap::<String, u32>::new();
    for shard in &ds.manifest.shards {
        for batch in ds.read_shard(shard, 64).await.unwrap() {
            for t in batch.unwrap() {
                assert_eq!(t.backend, "openai");
                assert_eq!(t.token_ids_source, "server");
                assert_ne!(
                    t.finish_reason,
                    start_schemas::trajectory::FinishReason::Error
                );
                let row_identity = t.model_identity.as_deref().expect("the server's identity");
                assert_eq!(row_identity, identity.description);
                assert_eq!(t.model_sha256, identity.sha256);
                assert_eq!(
                    t.model_sha256,
                    format!(
                        "{:x}",
                        <sha2::Sha256 as sha2::Digest>::digest(row_identity.as_bytes())
                    )
                );
                assert!(row_identity.contains(&t.model_name), "{row_identity}");
                assert_eq!(t.prompt_tokens as usize, t.prompt_token_ids.len());
                // Hints and tool calls on this backend are the engine tests' (`*::openai`,
                // `*::vllm`).
                assert_eq!(t.mode, start_schemas::trajectory::Mode::HintInfer);
                assert!(t.hint_settings.is_some());
                *by_worker.entry(t.worker_id.clone()).or_default() += 1;
                rows += 1;
            }
        }
    }
    assert_eq!(rows, 8);
    for name in names {
        assert!(by_worker.contains_key(*name), "{by_worker:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_endpoint_stops_the_worker_at_start_up_naming_it() {
    let mut c = Cluster::new();
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let mut w = c.openai_worker("nowhere", &endpoint, 1);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = w.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "still running: {}", w.tail());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!status.success());
    let log = std::fs::read_to_string(&w.log).unwrap();
    assert!(
        log.contains(&endpoint) && log.contains("health"),
        "the error names the endpoint and what failed: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_base_placeholder_token_stops_coordinator_and_worker_at_start_up() {
    // The token the base's Secret is generated with is readable by anyone in this repository:
    // a cluster applied as is must not come up open to all.
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../k8s/base/kustomization.yaml"),
    )
    .unwrap();
    let placeholder = start_schemas::client::PLACEHOLDER_TOKEN;
    assert!(
        base.contains(&format!("token={placeholder}")),
        "the base's placeholder is not the one refused:\n{base}"
    );
    let mut c = Cluster::new();
    // As the base mounts it: a Secret's file, read with its trailing newline.
    let token_file = c.root().join("token");
    std::fs::write(&token_file, format!("{placeholder}\n")).unwrap();
    let mut coordinator = Command::new(coordinator_bin());
    coordinator
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--metrics-listen", "", "--redis", "memory"])
        .arg("--store-root")
        .arg(c.store_root())
        .arg("--token-file")
        .arg(&token_file);
    let mut worker = c.worker_cmd("w", 60);
    worker.args(["--token", placeholder]);
    for (name, cmd) in [("coordinator", coordinator), ("worker", worker)] {
        let mut p = c.spawn(name, cmd);
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = p.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "{name} still running: {}",
                p.tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(!status.success(), "{name}");
        let log = std::fs::read_to_string(&p.log).unwrap();
        assert!(
            log.contains("placeholder") && log.contains("create secret generic start-token"),
            "{name} says why and what to do: {log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_on_s3_survives_a_killed_worker_with_two_coordinators_committing() {
    // Two coordinators on one Redis and one bucket, each with its own worker; one worker is
    // killed -9 while it holds a unit (mid-generation or mid-upload), so its unit is redone
    // by the other. Both coordinators commit the same dataset on S3: nothing lost, nothing
    // doubled, and data/ holds exactly the committed shards.
    let mut c = Cluster::on_s3();
    let redis = c.redis.url();
    let other = free_port();
    let a = c.coordinator("coordinator-a");
    let b = c.coordinator_at("coordinator-b", &redis, 3000, other);
    let client = Client::new(&c.url(), None);
    let problems = math_problems(10);
    let job_id = client
        .submit(
            spec("on-s3", proto::GenerationMode::Plain, 48, 2),
            problems.clone(),
        )
        .await;
    let mut w1 = c.worker("w1");
    let w2_cmd = c.worker_cmd_to("w2", 60, &format!("http://127.0.0.1:{other}"));
    let w2 = c.spawn("w2", w2_cmd);
    wait_for(
        "w1 to lease a unit",
        Duration::from_secs(120),
        &[&w1, &a],
        || async { client.leases_of("w1").await >= 1 },
    )
    .await;
    w1.kill9();
    client
        .wait_succeeded(&job_id, Duration::from_secs(600), &[&a, &b, &w2])
        .await;
    let counters = client.job(&job_id).await.unwrap().counters.unwrap();
    assert!(counters.lease_expirations >= 1, "{counters:?}");
    assert_eq!(counters.trajectories, 10);
    let b_log = std::fs::read_to_string(&b.log).unwrap();
    assert!(
        b_log.contains("shard recorded"),
        "coordinator b committed too: {}",
        b.tail()
    );
    check_dataset(&c.dataset(), &problems, counters.units_total).await;
}

/// A worker killed -9 at several points of one unit (a preempted GPU node, three times over):
/// the trajectories each had finished are staged as they finish, and the next attempt
/// restores them instead of generating them again. The dataset holds each (problem, sample)
/// once, and every row staged before a kill is in it exactly as first generated (its worker,
/// wall time and creation time included): nothing finished is redone. Prints the tokens each
/// kill would have cost before (every finished trajectory of the unit) and costs now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preempted_worker_loses_no_finished_trajectory() {
    let mut c = Cluster::new();
    let client = Client::new(&c.url(), None);
    let coordinator = c.coordinator("coordinator");
    let problems = math_problems(8);
    // One unit of eight trajectories.
    let job_id = client
        .submit(
            spec("preempted", proto::GenerationMode::Plain, 160, 8),
            problems.clone(),
        )
        .await;
    let unit = start_schemas::UnitId::new(&job_id, 0);
    let pieces_dir = start_dataset::pieces::unit_dir(unit.as_str());
    let dataset = c.dataset();
    let mut staged_before_kills: Vec<start_schemas::trajectory::Trajectory> = Vec::new();
    let mut table = Vec::new();
    let mut logs = Vec::new();
    for (n, at_least) in [1usize, 3, 5].into_iter().enumerate() {
        let name = format!("preempted-{n}");
        let mut cmd = c.worker_cmd(&name, 60);
        cmd.args(["--log-format", "json"]);
        let mut w = c.spawn(&name, cmd);
        let count = || async {
            dataset
                .list(&pieces_dir)
                .await
                .map_or(0, |names| names.len())
        };
        wait_for(
            &format!("{name} to stage {at_least} trajectories"),
            Duration::from_secs(300),
            &[&w, &coordinator],
            || async { count().await >= at_least },
        )
        .await;
        w.kill9();
        logs.push(w.log.clone());
        let staged = start_dataset::pieces::restore(&dataset, unit.as_str())
            .await
            .unwrap();
        assert!(staged.skipped.is_empty(), "{:?}", staged.skipped);
        assert!(
            staged.rows.len() < problems.len(),
            "the unit ended before kill {n}: the test needs longer trajectories"
        );
        let finished_tokens: u64 = staged
            .rows
            .iter()
            .map(|t| u64::from(t.completion_tokens))
            .sum();
        let new_here = staged
            .rows
            .iter()
            .filter(|t| !staged_before_kills.contains(t))
            .count();
        table.push((n, staged.rows.len(), new_here, finished_tokens));
        staged_before_kills = staged.rows;
    }
    let last = c.worker("finisher");
    client
        .wait_succeeded(&job_id, Duration::from_secs(600), &[&coordinator, &last])
        .await;
    let counters = client.job(&job_id).await.unwrap().counters.unwrap();
    assert!(counters.lease_expirations >= 3, "{counters:?}");
    check_dataset(&dataset, &problems, counters.units_total).await;
    let ds = start_dataset::Dataset::open(dataset.clone()).await.unwrap();
    let mut rows = Vec::new();
    ds.for_each_row(|_, t| rows.push(t)).await.unwrap();
    for staged in &staged_before_kills {
        assert!(
            rows.contains(staged),
            "{} sample {} was staged before a kill but is not in the dataset as it was first \
             generated (redone?)",
            staged.problem_id,
            staged.sample_index
        );
    }
    // Each attempt after the first started from what the killed ones had staged.
    for (n, log) in logs.iter().enumerate().skip(1) {
        let started = json_lines(log)
            .into_iter()
            .find(|l| message(l) == "unit started")
            .unwrap_or_else(|| panic!("attempt {n} logged no start"));
        let restored = started["fields"]["restored"].as_u64().unwrap() as usize;
        assert!(
            restored >= table[n - 1].1,
            "attempt {n} restored {restored}, fewer than the {} staged before kill {}",
            table[n - 1].1,
            n - 1
        );
    }
    // Committed: the unit's staged trajectories are deleted.
    wait_for(
        "the committed unit's pieces to be deleted",
        Duration::from_secs(30),
        &[&last],
        || async { dataset.list(&pieces_dir).await.unwrap().is_empty() },
    )
    .await;
    // Without staging a kill loses every finished trajectory of the unit; with it, none. The
    // trajectories in flight (at most --slots of them) are redone either way.
    eprintln!("kill | finished at the kill | new since the last kill | finished tokens redone without staging | with staging");
    for (n, staged, new_here, tokens) in &table {
        eprintln!("{n} | {staged} | {new_here} | {tokens} | 0");
    }
}

/// Judge prompts for the first code blocks of real rows (the grader's rule fixture, a run of
/// the bundled problems on the default model), each short enough for a 1024-token slot.
fn judge_problems(n: usize) -> Vec<proto::Problem> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let path = crate::common::workspace().join("grader/tests/fixtures/rule_rows.parquet");
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let template = start_grader::judge::Template::builtin();
    let mut out: Vec<proto::Problem> = Vec::new();
    for batch in reader {
        for t in start_schemas::trajectory::from_record_batch(&batch.unwrap()).unwrap() {
            for item in start_grader::judge::items(&t, &template) {
                if item.prompt.len() < 2400 && out.iter().all(|p| p.id != item.id) {
                    out.push(proto::Problem {
                        id: item.id,
                        source: "judge".into(),
                        kind: proto::ProblemKind::Judge as i32,
                        question: item.prompt,
                        ..Default::default()
                    });
                }
            }
        }
    }
    assert!(out.len() >= n, "only {} short judge prompts", out.len());
    out.truncate(n);
    out
}

/// A judge job of `problems` x 2 votes through the coordinator and `worker`: every row is a
/// verdict request answered with the tools off, parsed or sampled again up to the retry limit
/// (the row's seed says which attempt it is), and the rows read back as votes by block. Judge
/// prompts in another mode, and solvable problems in a judge job, are refused by name.
async fn judge_job(c: &mut Cluster, worker: impl FnOnce(&mut Cluster) -> Proc, backend: &str) {
    use start_grader::judge::{parse_item_id, Verdict, Votes};
    use start_schemas::trajectory::{FinishReason, Mode, SegmentKind};
    let client = Client::new(&c.url(), None);
    let coordinator = c.coordinator_on("coordinator", "memory", 3000);
    let problems = judge_problems(3);
    let refused = client
        .try_submit(
            spec("judged-as-math", proto::GenerationMode::HintInfer, 64, 2),
            problems.clone(),
        )
        .await
        .unwrap_err();
    assert!(
        refused
            .message()
            .contains("is a judge prompt: submit it with mode judge"),
        "{refused}"
    );
    let refused = client
        .try_submit(
            spec("math-as-judged", proto::GenerationMode::Judge, 64, 2),
            math_problems(2),
        )
        .await
        .unwrap_err();
    assert!(
        refused
            .message()
            .contains("a judge job takes judge prompts only"),
        "{refused}"
    );
    let mut job = spec("judge", proto::GenerationMode::Judge, 48, 2);
    job.params.as_mut().unwrap().samples = 2;
    let job_id = client.submit(job, problems.clone()).await;
    let worker = worker(c);
    client
        .wait_succeeded(&job_id, Duration::from_secs(600), &[&coordinator, &worker])
        .await;
    let ds = start_dataset::Dataset::open(c.dataset()).await.unwrap();
    let mut votes = Votes::default();
    let (mut rows, mut parsed, mut retried) = (0, 0, 0);
    for shard in &ds.manifest.shards {
        for batch in ds.read_shard(shard, 64).await.unwrap() {
            for t in batch.unwrap() {
                rows += 1;
                assert_eq!(t.backend, backend);
                assert_eq!(t.mode, Mode::Judge);
                assert_eq!(t.kind, start_schemas::problem::ProblemKind::Judge);
                assert_ne!(
                    t.finish_reason,
                    FinishReason::Error,
                    "{:?}",
                    t.finish_detail
                );
                // The prompt verbatim, no tools, no hints, never graded.
                let question = &problems
                    .iter()
                    .find(|p| p.id == t.problem_id)
                    .unwrap()
                    .question;
                assert_eq!(&t.user_message, question);
                assert_eq!(t.params.max_tool_calls, 0);
                assert!(t.tool_calls.is_empty());
                assert!(t.segments.iter().all(|s| s.kind != SegmentKind::Hint));
                assert_eq!(t.correct, None);
                assert!(parse_item_id(&t.problem_id).is_some(), "{}", t.problem_id);
                let detail: serde_json::Value =
                    serde_json::from_str(t.grading_detail.as_deref().unwrap()).unwrap();
                let attempts = detail["attempts"].as_u64().unwrap();
                assert!((1..=3).contains(&attempts), "{detail}");
                // The verdict is the parse of the text kept; a row without one used every try.
                let reparsed = start_grader::judge::parse(&t.full_text).map(|v| v.to_string());
                assert_eq!(t.final_answer, reparsed);
                match &t.final_answer {
                    Some(v) => {
                        assert!(Verdict::from_answer(v).is_some());
                        parsed += 1;
                    }
                    None => assert_eq!(attempts, 3, "{detail}"),
                }
                // A retry samples with a seed of its own, recorded on the row.
                let first = start_worker::pipeline::trajectory_seed(
                    7,
                    "judge",
                    &t.problem_id,
                    t.sample_index,
                );
                assert_eq!(t.seed == first, attempts == 1, "{detail}");
                retried += u32::from(attempts > 1);
                assert!(votes.add(&t.problem_id, t.final_answer.as_deref()));
            }
        }
    }
    assert_eq!(rows, problems.len() * 2);
    let judged: std::collections::HashSet<&str> = problems
        .iter()
        .map(|p| parse_item_id(&p.id).unwrap().0)
        .collect();
    assert_eq!(votes.rows(), judged.len());
    eprintln!("judge job on {backend}: {rows} rows, {parsed} verdicts parsed, {retried} retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_judge_job_runs_through_the_coordinator_on_the_engine() {
    let mut c = Cluster::new();
    judge_job(&mut c, |c| c.worker("judge-engine"), "llama.cpp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_judge_job_runs_through_the_coordinator_on_llama_server() {
    let server = start_tests::llama_server::LlamaServer::start(2, 1024);
    let mut c = Cluster::new();
    let url = server.url();
    judge_job(
        &mut c,
        |c| c.openai_worker("judge-server", &url, 3),
        "openai",
    )
    .await;
}
