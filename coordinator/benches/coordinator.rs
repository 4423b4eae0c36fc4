//! Coordinator benchmark, printed as tables (`cargo bench -p start-coordinator`).
//!
//! 1. Lease + report throughput with 64 concurrent simulated workers against a real Redis: the
//!    store alone, then through gRPC on loopback (each poll carries the previous unit's report
//!    and leases the next). The simulated workers are a load generator that skips inference and
//!    reports shard records without files (shard verification off), named as such. A raw
//!    Redis PING loop at the same concurrency runs in the same command as the ceiling.
//! 2. Time to submit a 50,000-problem job over gRPC (streamed, validated, split, stored).
//! 3. Resident memory of a real start-coordinator process as jobs accumulate in Redis.
//! 4. START's production size: a Hint-RFT job of 50,000 problems × 16 samples (800,000
//!    trajectories, 6,250 units of 8 problems) submitted, leased, reported and committed
//!    through a real start-coordinator process, on the in-process store and on Redis: time,
//!    the process's peak memory, Redis's memory and the manifest's size. The simulated workers
//!    stage one small real shard per unit (a fixture row; its sha256 checked by the
//!    coordinator as any shard's) and report 128 rows for it: the coordinator reads no shard's
//!    rows but the first one's model, so what it stores and commits is what a real run's 800k
//!    trajectories make it store and commit.

use start_coordinator::store::{LeaseRequest, NewJob, Store};
use start_coordinator::{serve, MemoryStore, RedisStore, ServerConfig, ServiceConfig, StorePolicy};
use start_schemas::proto::{
    self, job_service_client::JobServiceClient, worker_service_client::WorkerServiceClient,
};
use start_schemas::PROTOCOL_VERSION;
use start_tests::redis::{free_port, RedisServer};
use start_tests::server::TestServer;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Simulated workers (START_BENCH_WORKERS overrides the 64 of the goal).
fn workers() -> usize {
    std::env::var("START_BENCH_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

const SHA: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

fn problem(i: usize) -> proto::Problem {
    proto::Problem {
        id: format!("p{i}"),
        source: "bench".into(),
        kind: proto::ProblemKind::Math as i32,
        question: format!("What is {i} times {}? Give the exact integer.", i + 7),
        answer: format!("{}", i * (i + 7)),
        ..Default::default()
    }
}

fn spec(unit_size: u32) -> proto::JobSpec {
    proto::JobSpec {
        name: "bench".into(),
        mode: proto::GenerationMode::Rft as i32,
        params: Some(proto::GenerationParams {
            temperature: 0.6,
            top_p: 0.95,
            repeat_penalty: 1.0,
            max_new_tokens: 1024,
            max_tool_calls: 6,
            samples: 1,
            ..Default::default()
        }),
        unit_size,
        output_uri: "bench-out".into(),
        ..Default::default()
    }
}

/// A job's submission stream: its spec, then its problems in batches of 500 (as `startctl
/// submit` streams them).
fn submission(spec: proto::JobSpec, problems: &[proto::Problem]) -> Vec<proto::SubmitJobRequest> {
    use proto::submit_job_request::Item;
    std::iter::once(Item::Spec(spec))
        .chain(problems.chunks(500).map(|chunk| {
            Item::Problems(proto::ProblemBatch {
                problems: chunk.to_vec(),
            })
        }))
        .map(|item| proto::SubmitJobRequest { item: Some(item) })
        .collect()
}

fn units(n: usize) -> Vec<proto::ProblemBatch> {
    (0..n)
        .map(|u| proto::ProblemBatch {
            problems: vec![problem(u)],
        })
        .collect()
}

fn report_for(u: &proto::WorkUnit) -> proto::UnitReport {
    proto::UnitReport {
        unit_id: u.unit_id.clone(),
        lease_id: u.lease_id.clone(),
        shard: Some(proto::ShardInfo {
            path: format!("data/{}.a{}.parquet", u.unit_id, u.attempt),
            rows: 1,
            sha256: "0".repeat(64),
            bytes: 1,
            schema_version: 1,
        }),
        correct: 1,
        completion_tokens: 100,
        ..Default::default()
    }
}

/// Lease+report pairs per second over `store`, 64 simulated workers.
async fn store_rate(store: Arc<dyn Store>, total: usize) -> f64 {
    store
        .create_job(NewJob {
            job_id: format!("bench{}", total),
            spec: spec(1),
            units: units(total),
            created_at_ms: 0,
        })
        .await
        .unwrap();
    let reg = proto::RegisterWorkerRequest {
        model_sha256: SHA.into(),
        slots: 1,
        ..Default::default()
    };
    for w in 0..workers() {
        store
            .register_worker(&format!("sim{w}"), &reg)
            .await
            .unwrap();
    }
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers() {
        let (store, done) = (store.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let id = format!("sim{w}");
            loop {
                let got = store
                    .lease(&LeaseRequest {
                        worker_id: id.clone(),
                        max_units: 1,
                        ttl: Duration::from_secs(60),
                    })
                    .await
                    .unwrap();
                let Some(u) = got.into_iter().next() else {
                    break;
                };
                assert!(store.report(&id, &report_for(&u)).await.unwrap().accepted);
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(done.load(Ordering::Relaxed) as usize, total);
    total as f64 / started.elapsed().as_secs_f64()
}

/// Raw PINGs per second at the same concurrency: what one Redis round trip costs here.
async fn ping_rate(url: &str, total: usize) -> f64 {
    let client = redis::Client::open(url).unwrap();
    let con = client.get_multiplexed_async_connection().await.unwrap();
    let left = Arc::new(AtomicU64::new(total as u64));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers() {
        let (mut con, left) = (con.clone(), left.clone());
        tasks.push(tokio::spawn(async move {
            while left.fetch_sub(1, Ordering::Relaxed) as i64 > 0 {
                let _: String = redis::cmd("PING").query_async(&mut con).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

async fn start_server(
    store: Arc<dyn Store>,
    root: &std::path::Path,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    std::fs::create_dir_all(root.join("bench-out")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let config = ServerConfig {
        service: ServiceConfig {
            verify_shards: false,
            lease_ttl: Duration::from_secs(60),
            store_root: start_dataset::StoreRoot::parse(root.to_str().expect("a UTF-8 temp path"))
                .expect("a local store root"),
            ..ServiceConfig::default()
        },
        token: None,
        tls: None,
    };
    tokio::spawn(serve(config, store, listener, None, async {
        let _ = rx.await;
    }));
    tokio::time::sleep(Duration::from_millis(100)).await;
    (url, tx)
}

/// Polls per second through gRPC, each carrying one report and leasing one unit.
async fn grpc_rate(store: Arc<dyn Store>, total: usize, root: &std::path::Path) -> f64 {
    let (url, stop) = start_server(store, root).await;
    let channel = tonic::transport::Channel::from_shared(url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut jobs = JobServiceClient::new(channel.clone());
    use proto::submit_job_request::Item;
    let messages = vec![
        proto::SubmitJobRequest {
            item: Some(Item::Spec(spec(1))),
        },
        proto::SubmitJobRequest {
            item: Some(Item::Problems(proto::ProblemBatch {
                problems: (0..total).map(problem).collect(),
            })),
        },
    ];
    jobs.submit_job(futures_util::stream::iter(messages))
        .await
        .unwrap();
    let polls = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers() {
        // Each simulated worker has its own connection, as real workers do.
        let channel = tonic::transport::Channel::from_shared(url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let polls = polls.clone();
        tasks.push(tokio::spawn(async move {
            let n = simulated_worker(channel, w, |units| {
                let reports = units.iter().map(report_for).collect();
                async move { reports }
            })
            .await;
            polls.fetch_add(n, Ordering::Relaxed);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let _ = stop.send(());
    // Polls include each worker's last, empty one.
    (polls.load(Ordering::Relaxed) as f64 - workers() as f64) / secs
}

/// One simulated worker over gRPC: registers as `sim{w}`, then polls for one unit at a time
/// until none is left, each poll carrying the reports `finish` made of the previous poll's
/// units (every one must be accepted). Returns its polls, the last, empty one included.
async fn simulated_worker<F, Fut>(
    channel: tonic::transport::Channel,
    w: usize,
    mut finish: F,
) -> u64
where
    F: FnMut(Vec<proto::WorkUnit>) -> Fut,
    Fut: std::future::Future<Output = Vec<proto::UnitReport>>,
{
    let mut c = WorkerServiceClient::new(channel);
    let id = c
        .register_worker(proto::RegisterWorkerRequest {
            protocol_version: PROTOCOL_VERSION,
            hostname: format!("sim{w}"),
            model_sha256: SHA.into(),
            slots: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .worker_id;
    let (mut reports, mut polls) = (Vec::new(), 0);
    loop {
        let r = c
            .lease_work(proto::LeaseWorkRequest {
                protocol_version: PROTOCOL_VERSION,
                worker_id: id.clone(),
                free_slots: 1,
                reports: std::mem::take(&mut reports),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        polls += 1;
        assert!(r.report_outcomes.iter().all(|o| o.accepted));
        if r.units.is_empty() {
            return polls;
        }
        reports = finish(r.units).await;
    }
}

fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// A `/proc/PID/status` line in KiB (`VmRSS:` now, `VmHWM:` the peak so far).
fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

/// Redis's `used_memory` in bytes.
async fn redis_used_memory(url: &str) -> u64 {
    let client = redis::Client::open(url).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut con)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// A start-coordinator process on a free loopback port, and a channel to it; the caller kills
/// and waits for it.
#[allow(clippy::zombie_processes)]
async fn coordinator_process(
    redis: &str,
    prefix: &str,
    store_root: &std::path::Path,
) -> (std::process::Child, tonic::transport::Channel) {
    let port = free_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_start-coordinator"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics-listen",
            "",
            "--redis",
            redis,
            "--redis-prefix",
            prefix,
            "--lease-ttl-ms",
            "120000",
            "--store-root",
        ])
        .arg(store_root)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    loop {
        if let Ok(c) = tonic::transport::Channel::from_shared(url.clone())
            .unwrap()
            .connect()
            .await
        {
            return (child, c);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An AIME-length problem (about 400 characters).
fn rft_problem(i: usize) -> proto::Problem {
    proto::Problem {
        question: format!(
            "Problem {i}. Let $S$ be the set of ordered pairs $(a, b)$ of positive integers with \
             $a + b \\le {}$ such that $a$ divides $b^2 + 1$ and $b$ divides $a^2 + 1$. Find the \
             remainder when the sum of $a \\cdot b$ over all pairs in $S$ is divided by $1000$. \
             Reason step by step, and put your final answer within \\boxed{{}}.",
            100 + i % 900
        ),
        ..problem(i)
    }
}

/// One production-size job through a real coordinator process (section 4).
struct RftRun {
    submit_s: f64,
    run_s: f64,
    units: u64,
    trajectories: u64,
    peak_rss_mib: f64,
    manifest_bytes: u64,
    /// Redis's memory growth (bytes) once the job is stored, and once it ended; `None` on
    /// the in-process store.
    redis_growth: Option<(u64, u64)>,
}

/// Runs the job on `store` (`memory`, or the Redis at that URL).
async fn rft_job(store: &str, root: &std::path::Path, problems: usize) -> RftRun {
    let redis_url = (store != "memory").then_some(store);
    let redis_before = match redis_url {
        Some(url) => redis_used_memory(url).await,
        None => 0,
    };
    let (mut child, channel) = coordinator_process(store, "b5:", root).await;
    let mut jobs = JobServiceClient::new(channel.clone());
    let spec = proto::JobSpec {
        params: Some(proto::GenerationParams {
            samples: 16,
            max_new_tokens: 16_384,
            ..spec(8).params.unwrap()
        }),
        output_uri: "rft".into(),
        // Pinned, as production jobs pin their model (the coordinator still reads the first
        // shard's first row once, for the card's model name).
        model_sha256: SHA.into(),
        ..spec(8)
    };
    let all: Vec<_> = (0..problems).map(rft_problem).collect();
    let messages = submission(spec, &all);
    let started = Instant::now();
    let submitted = jobs
        .submit_job(futures_util::stream::iter(messages))
        .await
        .unwrap()
        .into_inner();
    let submit_s = started.elapsed().as_secs_f64();
    let redis_submitted = match redis_url {
        Some(url) => redis_used_memory(url).await,
        None => 0,
    };
    let dataset = root.join("rft");
    std::fs::create_dir_all(dataset.join(start_dataset::layout::STAGING_DIR)).unwrap();
    // The one shard every simulated unit stages: a real Parquet file of one fixture row.
    let body = {
        let mut w = start_dataset::ShardWriter::create("placeholder", &Default::default()).unwrap();
        w.write(&[start_tests::trajectory(0)]).unwrap();
        Arc::new(w.finish().unwrap().to_bytes().unwrap())
    };
    let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body.as_slice()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers() {
        let (channel, dataset) = (channel.clone(), dataset.clone());
        let (body, sha256) = (body.clone(), sha256.clone());
        tasks.push(tokio::spawn(simulated_worker(channel, w, move |units| {
            let (dataset, body, sha256) = (dataset.clone(), body.clone(), sha256.clone());
            async move {
                let mut reports = Vec::new();
                for u in &units {
                    // The coordinator hashes the staged shard as it would a real unit's.
                    let stem = format!("{}.a{}", u.unit_id, u.attempt);
                    let staged = dataset.join(start_dataset::layout::staged_path(&stem));
                    tokio::fs::write(&staged, body.as_slice()).await.unwrap();
                    let rows = u.problems.len() as u64 * 16;
                    reports.push(proto::UnitReport {
                        unit_id: u.unit_id.clone(),
                        lease_id: u.lease_id.clone(),
                        shard: Some(proto::ShardInfo {
                            path: start_dataset::layout::data_path(&stem),
                            rows,
                            sha256: sha256.clone(),
                            bytes: body.len() as u64,
                            schema_version: start_schemas::trajectory::SCHEMA_VERSION,
                        }),
                        correct: rows / 2,
                        completion_tokens: rows * 4_500,
                        ..Default::default()
                    });
                }
                reports
            }
        })));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Ended once its dataset is committed: the last flush included.
    let job = loop {
        let job = jobs
            .get_job(proto::GetJobRequest {
                job_id: submitted.job_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if job.state != proto::JobState::Running as i32
            && job.state != proto::JobState::Queued as i32
        {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let run_s = started.elapsed().as_secs_f64();
    assert_eq!(
        job.state,
        proto::JobState::Succeeded as i32,
        "{}",
        job.message
    );
    let peak_rss_mib = status_kib(child.id(), "VmHWM:") as f64 / 1024.0;
    let manifest_path = dataset.join(start_dataset::layout::MANIFEST);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let shards = manifest["shards"].as_array().unwrap();
    let rows: u64 = shards.iter().map(|s| s["rows"].as_u64().unwrap()).sum();
    assert_eq!(shards.len() as u64, submitted.units);
    assert_eq!(rows, problems as u64 * 16);
    let counters = job.counters.unwrap_or_default();
    assert_eq!(counters.trajectories, rows);
    let redis_growth = match redis_url {
        Some(url) => Some((
            redis_submitted.saturating_sub(redis_before),
            redis_used_memory(url).await.saturating_sub(redis_before),
        )),
        None => None,
    };
    let _ = child.kill();
    let _ = child.wait();
    RftRun {
        redis_growth,
        submit_s,
        run_s,
        units: submitted.units,
        trajectories: rows,
        peak_rss_mib,
        manifest_bytes: std::fs::metadata(&manifest_path).unwrap().len(),
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: a quick smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let n = std::env::var("START_BENCH_UNITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 20_000 } else { 500 });
    let dir = tempfile::tempdir().unwrap();
    let redis =
        RedisServer::start(dir.path(), false).expect("redis-server (scripts/setup installs it)");

    println!("## Lease + report, {} concurrent simulated workers (load generator, no inference), {n} units\n", workers());
    println!("| path | lease+report pairs/s | operations/s | vs Redis PING ceiling |");
    println!("| --- | ---: | ---: | ---: |");
    let ping = ping_rate(&redis.url(), n * 2).await;
    println!(
        "| reference: raw Redis PING, same concurrency | {:.0} | {ping:.0} | 1.00 |",
        ping / 2.0
    );
    let redis_store = |p: &'static str| {
        let url = redis.url();
        async move {
            Arc::new(
                RedisStore::connect(&url, p, StorePolicy::default())
                    .await
                    .unwrap(),
            ) as Arc<dyn Store>
        }
    };
    let r = store_rate(redis_store("b1:").await, n).await;
    println!(
        "| Redis store (Lua scripts) | {r:.0} | {:.0} | {:.2} |",
        r * 2.0,
        r * 2.0 / ping
    );
    let m = store_rate(Arc::new(MemoryStore::new(StorePolicy::default())), n).await;
    println!(
        "| in-process store | {m:.0} | {:.0} | {:.2} |",
        m * 2.0,
        m * 2.0 / ping
    );
    let g = grpc_rate(redis_store("b2:").await, n, dir.path()).await;
    println!(
        "| gRPC LeaseWork polls on Redis (report + lease per poll) | {g:.0} | {:.0} | {:.2} |",
        g * 2.0,
        g * 2.0 / ping
    );

    let gm = grpc_rate(
        Arc::new(MemoryStore::new(StorePolicy::default())),
        n,
        dir.path(),
    )
    .await;
    println!(
        "| gRPC LeaseWork polls on the in-process store | {gm:.0} | {:.0} | {:.2} |",
        gm * 2.0,
        gm * 2.0 / ping
    );

    let big = if full { 50_000 } else { 2_000 };
    println!("\n## Submitting a {big}-problem job over gRPC (Redis store)\n");
    let (url, stop) = start_server(redis_store("b3:").await, dir.path()).await;
    let channel = tonic::transport::Channel::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut jobs = JobServiceClient::new(channel.clone());
    let problems: Vec<_> = (0..big).map(problem).collect();
    let started = Instant::now();
    let messages = submission(spec(8), &problems);
    let answer = jobs
        .submit_job(futures_util::stream::iter(messages))
        .await
        .unwrap()
        .into_inner();
    let secs = started.elapsed().as_secs_f64();
    println!("| problems | units | seconds | problems/s |");
    println!("| ---: | ---: | ---: | ---: |");
    println!(
        "| {} | {} | {secs:.2} | {:.0} |",
        answer.problems,
        answer.units,
        answer.problems as f64 / secs
    );
    let _ = stop.send(());

    println!("\n## start-coordinator resident memory as jobs accumulate (5,000 problems each, Redis store)\n");
    let (mut child, channel) = coordinator_process(&redis.url(), "b4:", dir.path()).await;
    let mut jobs = JobServiceClient::new(channel);
    let baseline = rss_kib(child.id());
    println!("| jobs stored | problems stored | RSS MiB | vs first job |");
    println!("| ---: | ---: | ---: | ---: |");
    let rounds = if full {
        [1usize, 5, 10, 20]
    } else {
        [1, 2, 3, 4]
    };
    let mut stored = 0;
    let mut first = 0.0;
    for target in rounds {
        while stored < target {
            let ps: Vec<_> = (0..5_000).map(|i| problem(i + stored * 5_000)).collect();
            let messages = submission(spec(8), &ps);
            jobs.submit_job(futures_util::stream::iter(messages))
                .await
                .unwrap();
            stored += 1;
        }
        // Let the metrics refresher (which lists jobs) run too.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let mib = rss_kib(child.id()) as f64 / 1024.0;
        if target == rounds[0] {
            first = mib;
        }
        println!(
            "| {stored} | {} | {mib:.1} | {:.2} |",
            stored * 5_000,
            mib / first
        );
    }
    println!(
        "\n(idle process before any job: {:.1} MiB)",
        baseline as f64 / 1024.0
    );
    let _ = child.kill();
    let _ = child.wait();

    let problems = if full { 50_000 } else { 200 };
    println!(
        "\n## A Hint-RFT job at START's size: {problems} problems × 16 samples, units of 8, {} simulated workers, through a start-coordinator process\n",
        workers()
    );
    println!("| store | units | trajectories | submit (s) | lease→commit (s) | units/s | coordinator peak RSS (MiB) | Redis growth, submitted / ended (MiB) | manifest (MiB) | manifest bytes a unit |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let url = redis.url();
    for (label, store) in [("in-process", "memory"), ("Redis", url.as_str())] {
        let root = dir.path().join(format!("rft-{label}"));
        let run = rft_job(store, &root, problems).await;
        let redis_mib = match run.redis_growth {
            None => "-".to_string(),
            Some((submitted, ended)) => format!(
                "{:.1} / {:.1}",
                submitted as f64 / 1048576.0,
                ended as f64 / 1048576.0
            ),
        };
        println!(
            "| {label} | {} | {} | {:.1} | {:.1} | {:.0} | {:.0} | {redis_mib} | {:.2} | {} |",
            run.units,
            run.trajectories,
            run.submit_s,
            run.run_s,
            run.units as f64 / run.run_s,
            run.peak_rss_mib,
            run.manifest_bytes as f64 / 1048576.0,
            run.manifest_bytes / run.units.max(1)
        );
    }
}
