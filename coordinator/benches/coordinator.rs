//! Coordinator benchmark, printed as tables (`cargo bench -p start-coordinator`).
//!
//! 1. Lease + report throughput with 64 concurrent simulated workers against a real Redis: the
//!    store alone, then through gRPC on loopback (each poll carries the previous unit's report
//!    and leases the next). The simulated workers are a load generator that skips inference and
//!    reports shard records without files (shard verification off), named as such. A raw
//!    Redis PING loop at the same concurrency runs in the same command as the ceiling.
//! 2. Time to submit a 50,000-problem job over gRPC (streamed, validated, split, stored).
//! 3. Resident memory of a real start-coordinator process as jobs accumulate in Redis.

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
            let mut reports = Vec::new();
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
                polls.fetch_add(1, Ordering::Relaxed);
                assert!(r.report_outcomes.iter().all(|o| o.accepted));
                if r.units.is_empty() {
                    break;
                }
                reports = r.units.iter().map(report_for).collect();
            }
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

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
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
    use proto::submit_job_request::Item;
    let mut messages = vec![proto::SubmitJobRequest {
        item: Some(Item::Spec(spec(8))),
    }];
    for chunk in problems.chunks(500) {
        messages.push(proto::SubmitJobRequest {
            item: Some(Item::Problems(proto::ProblemBatch {
                problems: chunk.to_vec(),
            })),
        });
    }
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
    let port = free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_start-coordinator"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics-listen",
            "",
            "--redis",
            &redis.url(),
            "--redis-prefix",
            "b4:",
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let channel = loop {
        if let Ok(c) = tonic::transport::Channel::from_shared(url.clone())
            .unwrap()
            .connect()
            .await
        {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
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
            let mut messages = vec![proto::SubmitJobRequest {
                item: Some(Item::Spec(spec(8))),
            }];
            let ps: Vec<_> = (0..5_000).map(|i| problem(i + stored * 5_000)).collect();
            for chunk in ps.chunks(500) {
                messages.push(proto::SubmitJobRequest {
                    item: Some(Item::Problems(proto::ProblemBatch {
                        problems: chunk.to_vec(),
                    })),
                });
            }
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
}
