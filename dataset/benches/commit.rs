//! Shard commit latency and throughput: a local directory against an S3 server on loopback
//! (moto, the tests' server), in one run, so the ratio compares like with like on this machine.
//!
//!     cargo bench -p start-dataset --bench commit [-- SHARDS ROWS_PER_SHARD]
//!
//! For each store: stage (encode + upload) then commit N shards one commit each, the
//! coordinator's per-report path when the flush tick is short; then N shards in one batched
//! commit, its path when many units report within a tick; then 4 committers racing on one
//! manifest (conditional-write retries). moto is a Python server, so its absolute figures are
//! far below a real S3 endpoint's; the ratios show the cost of each round trip start makes.

use start_dataset::{commit, DatasetLocation, ShardEntry, ShardOptions, ShardWriter};
use start_tests::s3::S3Server;
use std::time::{Duration, Instant};

struct Row {
    store: &'static str,
    stage: Duration,
    commit_each: Vec<Duration>,
    batched: Duration,
    racing: Duration,
    bytes: u64,
}

async fn staged(loc: &DatasetLocation, id: &str, rows: u32) -> ShardEntry {
    let mut w = ShardWriter::create(id, &ShardOptions::default()).unwrap();
    w.write(&(0..rows).map(start_tests::trajectory).collect::<Vec<_>>())
        .unwrap();
    w.finish().unwrap().stage(loc).await.unwrap()
}

async fn measure(
    store: &'static str,
    make: impl Fn(&str) -> DatasetLocation,
    n: usize,
    rows: u32,
) -> Row {
    // One at a time.
    let loc = make("each");
    let mut stage = Duration::ZERO;
    let mut commit_each = Vec::new();
    let mut bytes = 0;
    for k in 0..n {
        let t = Instant::now();
        let e = staged(&loc, &format!("s{k:04}"), rows).await;
        stage += t.elapsed();
        bytes += e.bytes;
        let t = Instant::now();
        commit(&loc, vec![e], None).await.unwrap();
        commit_each.push(t.elapsed());
    }
    // One batched commit.
    let loc = make("batched");
    let mut entries = Vec::new();
    for k in 0..n {
        entries.push(staged(&loc, &format!("s{k:04}"), rows).await);
    }
    let t = Instant::now();
    assert_eq!(commit(&loc, entries, None).await.unwrap().added, n);
    let batched = t.elapsed();
    // Four committers racing, each committing n/4 shards one at a time.
    let loc = make("racing");
    let mut sets = vec![Vec::new(); 4];
    for k in 0..n {
        sets[k % 4].push(staged(&loc, &format!("s{k:04}"), rows).await);
    }
    let t = Instant::now();
    let tasks: Vec<_> = sets
        .into_iter()
        .map(|set| {
            let loc = loc.clone();
            tokio::spawn(async move {
                for e in set {
                    commit(&loc, vec![e], None).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let racing = t.elapsed();
    let listed = start_dataset::Manifest::load(&loc).await.unwrap().unwrap();
    assert_eq!(listed.shards.len(), n, "racing committers lost an entry");
    commit_each.sort();
    Row {
        store,
        stage,
        commit_each,
        batched,
        racing,
        bytes,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    // `cargo bench` passes --bench; `cargo test --benches` (CI) passes nothing: a smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let n: usize = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(if full { 40 } else { 4 });
    let rows: u32 = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(if full { 64 } else { 8 });
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start("start-bench");
    server.export_env();
    let local = measure(
        "local directory",
        |p| DatasetLocation::local(&dir.path().join(p)).unwrap(),
        n,
        rows,
    )
    .await;
    let s3 = measure(
        "S3 (moto, loopback)",
        |p| DatasetLocation::open(&server.url(p)).unwrap(),
        n,
        rows,
    )
    .await;
    println!(
        "## Shard commit, {n} shards of {rows} rows ({:.1} KiB each)\n",
        local.bytes as f64 / n as f64 / 1024.0
    );
    println!("| store | stage ms/shard | commit p50 ms | commit p90 ms | commits/s (one each) | batched commit of {n} ms | 4 racing committers shards/s | MB/s staged |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in [&local, &s3] {
        let p = |q: f64| ms(r.commit_each[((r.commit_each.len() - 1) as f64 * q).round() as usize]);
        let total: Duration = r.commit_each.iter().sum();
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.0} | {:.1} | {:.0} | {:.1} |",
            r.store,
            ms(r.stage) / n as f64,
            p(0.5),
            p(0.9),
            n as f64 / total.as_secs_f64(),
            ms(r.batched),
            n as f64 / r.racing.as_secs_f64(),
            r.bytes as f64 / 1e6 / r.stage.as_secs_f64()
        );
    }
    let median = |r: &Row| ms(r.commit_each[r.commit_each.len() / 2]);
    println!(
        "\nS3 / local: commit p50 x{:.1}, stage x{:.1}, batched commit x{:.1}",
        median(&s3) / median(&local),
        ms(s3.stage) / ms(local.stage),
        ms(s3.batched) / ms(local.batched)
    );
}
