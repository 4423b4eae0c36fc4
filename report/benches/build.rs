//! Report build time and file size on a large dataset, against reading the same rows
//! without a report (the floor any report has to pay), in one run:
//!
//!     cargo bench -p start-report --bench build [-- ROWS REASONING_CHARS]
//!
//! Defaults: 50,000 rows in 50 shards, each row with about 4,000 characters of reasoning
//! (the fixture's segments, hints, code and tool calls padded out). The rows are synthetic
//! on purpose: the figures measure the report, not a model.

use start_dataset::{commit, DatasetLocation, ShardOptions, ShardWriter};
use start_schemas::trajectory::{SegmentKind, Trajectory};
use std::time::Instant;

fn row(i: u32, pad: usize) -> Trajectory {
    let mut t = start_tests::trajectory(i);
    t.problem_id = format!("problem-{}", i / 8);
    t.sample_index = i % 8;
    t.correct = Some(i.is_multiple_of(3));
    let filler = "Let me check this again carefully, term by term. ";
    let seg = t
        .segments
        .iter_mut()
        .find(|s| s.kind == SegmentKind::Reasoning)
        .expect("a reasoning segment");
    while seg.text.len() < pad {
        seg.text.push_str(filler);
        seg.tokens.extend([7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
    }
    t.full_text = t.segments.iter().map(|s| s.text.as_str()).collect();
    t.trajectory_sha256 = Trajectory::compute_sha256(&t.full_text);
    t.completion_tokens = t.segments.iter().map(|s| s.tokens.len() as u32).sum();
    t
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    // `cargo bench` passes --bench; `cargo test --benches` (CI) passes nothing: a smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let rows: u32 = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(if full { 50_000 } else { 300 });
    let pad: usize =
        args.get(1)
            .and_then(|a| a.parse().ok())
            .unwrap_or(if full { 4_000 } else { 400 });
    let shards = 50u32.min(rows.max(1));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let loc = DatasetLocation::local(dir.path()).unwrap();
        let t = Instant::now();
        let per = rows.div_ceil(shards);
        let mut entries = Vec::new();
        for s in 0..shards {
            let mut w = ShardWriter::create(&format!("s{s:03}"), &ShardOptions::default()).unwrap();
            let lo = s * per;
            let hi = ((s + 1) * per).min(rows);
            let batch: Vec<_> = (lo..hi).map(|i| row(i, pad)).collect();
            w.write(&batch).unwrap();
            entries.push(w.finish().unwrap().stage(&loc).await.unwrap());
        }
        commit(&loc, entries, None).await.unwrap();
        let bytes: u64 = std::fs::read_dir(dir.path().join("data"))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        eprintln!(
            "wrote {rows} rows ({:.1} MiB of Parquet) in {:.1} s",
            bytes as f64 / 1048576.0,
            t.elapsed().as_secs_f64()
        );

        let dataset = start_dataset::Dataset::open(loc).await.unwrap();
        // Reference: fetch, check and decode every row, and nothing else.
        let t = Instant::now();
        let mut n = 0u64;
        dataset.for_each_row(|_, _| n += 1).await.unwrap();
        let read = t.elapsed().as_secs_f64();
        assert_eq!(n, u64::from(rows));

        let t = Instant::now();
        let report = start_report::build(&dataset, &start_report::Options::default())
            .await
            .unwrap();
        let build = t.elapsed().as_secs_f64();
        assert_eq!(report.rows, u64::from(rows));

        println!(
            "| rows | read only (s) | report (s) | report / read | HTML (KiB) | viewer rows | Parquet (MiB) |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|");
        println!(
            "| {rows} | {read:.2} | {build:.2} | {:.2} | {} | {} | {:.1} |",
            build / read,
            report.html.len() / 1024,
            report.sampled,
            bytes as f64 / 1048576.0
        );
    });
}
