//! START's production size: `startctl inspect`, `report` and `export` on the rows of a Hint-RFT
//! run (50,000 problems × 16 samples = 800,000 trajectories of QwQ length), each timed against
//! pyarrow reading the same Parquet files in the same command, with every command's peak
//! resident memory:
//!
//!     cargo bench -p start-cli --bench scale [-- ROWS...]
//!
//! Defaults: 100,000 then 800,000 rows (the second size is the goal; the first gives each
//! command's memory per row, the slope between the two sizes); `cargo test --benches` (CI)
//! runs 512 rows. START_BENCH_DIR names where the datasets are written (about 20 KiB of
//! Parquet a row: 15 GiB at 800,000, and export's output beside it, 7 GiB; each is deleted
//! once measured). The full run takes about 25 minutes on 2 cores.
//!
//! The rows are synthetic (`start_tests::synthetic`: lengths, vocabulary, verdicts and
//! duplicates shaped like a real run, written in units of 8 problems as the cluster does)
//! because no model here can write 800k QwQ-length traces; what is measured is the readers.
//! Every command runs as its own process under a small Python parent that reads its peak
//! resident set (`ru_maxrss` of its children) when it exits: the same measure for start's
//! commands and for pyarrow.

use start_dataset::{commit, DatasetLocation, ShardEntry, ShardOptions, ShardWriter};
use start_tests::synthetic::Shape;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Runs the command in argv[2:], its stdout to the file argv[1]; prints its exit code, wall
/// seconds and peak resident KiB.
const MEASURE: &str = r#"
import resource, subprocess, sys, time
with open(sys.argv[1], "wb") as out:
    t = time.monotonic()
    code = subprocess.run(sys.argv[2:], stdout=out).returncode
    secs = time.monotonic() - t
print(code, secs, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"#;

/// The reference: pyarrow reads every shard of the dataset, every column, one file at a time
/// (all its threads, as `pq.read_table` does by default), and counts the rows.
const PYARROW: &str = r#"
import glob, sys
import pyarrow.parquet as pq
rows = 0
for f in sorted(glob.glob(sys.argv[1] + "/data/*.parquet")):
    rows += pq.read_table(f).num_rows
print(rows)
"#;

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// What one measured command did.
struct Measured {
    secs: f64,
    peak_mib: f64,
    stdout: String,
}

fn measure(out_dir: &Path, name: &str, cmd: &[&str]) -> Measured {
    let stdout = out_dir.join(format!("{name}.stdout"));
    let result = Command::new(python())
        .args(["-c", MEASURE])
        .arg(&stdout)
        .args(cmd)
        .output()
        .expect("python3 runs (scripts/setup installs pyarrow)");
    let line = String::from_utf8_lossy(&result.stdout);
    let fields: Vec<&str> = line.split_whitespace().collect();
    let stdout = std::fs::read_to_string(&stdout).unwrap_or_default();
    assert!(
        fields.len() == 3 && fields[0] == "0",
        "{name} failed: {line}\n{}\n{stdout}",
        String::from_utf8_lossy(&result.stderr)
    );
    Measured {
        secs: fields[1].parse().expect("seconds"),
        peak_mib: fields[2].parse::<f64>().expect("KiB") / 1024.0,
        stdout,
    }
}

/// Writes `shape`'s rows into a dataset at `dir` the way the cluster does: one shard per unit,
/// staged, then committed. Units are encoded on every core.
fn generate(shape: Shape, dir: &Path) -> (u64, Vec<ShardEntry>) {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u32;
    let loc = DatasetLocation::local(dir).unwrap();
    let mut entries: Vec<ShardEntry> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let loc = loc.clone();
                scope.spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    let mut entries = Vec::new();
                    for unit in (t..shape.units()).step_by(threads as usize) {
                        let rows: Vec<_> = shape.unit(unit).collect();
                        let mut w = ShardWriter::create(
                            &format!("u{unit:06}.a0"),
                            &ShardOptions::default(),
                        )
                        .unwrap();
                        w.write(&rows).unwrap();
                        let encoded = w.finish().unwrap();
                        entries.push(rt.block_on(encoded.stage(&loc)).unwrap());
                    }
                    entries
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    entries.sort_by(|a, b| a.shard_id.cmp(&b.shard_id));
    let bytes = entries.iter().map(|e| e.bytes).sum();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let committed = rt.block_on(commit(&loc, entries, None)).unwrap();
    (bytes, committed.manifest.shards)
}

struct SizeRun {
    rows: u64,
    results: Vec<(&'static str, Measured)>,
}

fn run_size(rows: u64, root: &Path) -> SizeRun {
    let shape = Shape::rft_rows(rows);
    let work = tempfile::tempdir_in(root).unwrap();
    let dataset: PathBuf = work.path().join("dataset");
    let t = Instant::now();
    let (bytes, shards) = generate(shape, &dataset);
    let manifest = std::fs::metadata(dataset.join(start_dataset::layout::MANIFEST))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "\n## {} rows ({} problems × {} samples), {} shards of {} rows\n",
        shape.rows(),
        shape.problems,
        shape.samples,
        shards.len(),
        shape.unit_size * shape.samples
    );
    println!(
        "written in {:.0} s: {:.2} GiB of Parquet ({:.1} KiB a row), the manifest {:.2} MiB \
         ({} bytes a shard)\n",
        t.elapsed().as_secs_f64(),
        bytes as f64 / (1u64 << 30) as f64,
        bytes as f64 / 1024.0 / shape.rows() as f64,
        manifest as f64 / 1048576.0,
        manifest / shards.len().max(1) as u64
    );
    let d = dataset.to_str().expect("a UTF-8 temp path");
    let out = work.path();
    let startctl = env!("CARGO_BIN_EXE_startctl");
    let html = out.join("report.html");
    let export = out.join("export");
    let py = python();
    let reference = measure(out, "pyarrow", &[&py, "-c", PYARROW, d]);
    assert_eq!(
        reference.stdout.trim(),
        shape.rows().to_string(),
        "pyarrow's row count"
    );
    let inspect = measure(
        out,
        "inspect",
        &[startctl, "inspect", d, "--color", "never"],
    );
    let report = measure(
        out,
        "report",
        &[startctl, "report", d, "-o", html.to_str().unwrap()],
    );
    let export_all = measure(
        out,
        "export",
        &[
            startctl,
            "export",
            "--from",
            d,
            "--out",
            export.to_str().unwrap(),
            "--filter",
            "all-rules",
        ],
    );
    let kept = export_all
        .stdout
        .lines()
        .find(|l| l.starts_with("kept "))
        .unwrap_or("")
        .to_string();
    assert!(
        kept.contains(&format!(" of {} trajectories", shape.rows())),
        "export read every row: {kept}"
    );
    let sft = std::fs::metadata(export.join("sft.parquet")).map_or(0, |m| m.len());
    println!("| command | seconds | vs pyarrow | peak RSS (MiB) |");
    println!("|---|---:|---:|---:|");
    let results = vec![
        ("reference: pyarrow `read_table` of every shard", reference),
        ("`startctl inspect` (every shard checked)", inspect),
        ("`startctl report`", report),
        ("`startctl export --filter all-rules`", export_all),
    ];
    let base = results[0].1.secs;
    for (name, m) in &results {
        println!(
            "| {name} | {:.1} | {:.2} | {:.0} |",
            m.secs,
            m.secs / base,
            m.peak_mib
        );
    }
    println!(
        "\nexport: {} ({:.2} GiB of sft.parquet); report.html {:.1} MiB",
        kept,
        sft as f64 / (1u64 << 30) as f64,
        std::fs::metadata(&html).map_or(0, |m| m.len()) as f64 / 1048576.0
    );
    SizeRun {
        rows: shape.rows(),
        results,
    }
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.replace('_', "").parse().ok())
        .collect();
    // `cargo bench` passes --bench; `cargo test --benches` (CI) passes nothing: a smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if !args.is_empty() {
        args
    } else if full {
        vec![100_000, 800_000]
    } else {
        vec![512]
    };
    let root = std::env::var_os("START_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let runs: Vec<SizeRun> = sizes.iter().map(|&n| run_size(n, &root)).collect();
    if let [small, .., large] = runs.as_slice() {
        println!(
            "\n## Memory per row: peak RSS growth from {} to {} rows\n",
            small.rows, large.rows
        );
        println!(
            "| command | MiB at {} | MiB at {} | bytes a row |",
            small.rows, large.rows
        );
        println!("|---|---:|---:|---:|");
        for ((name, a), (_, b)) in small.results.iter().zip(&large.results) {
            println!(
                "| {name} | {:.0} | {:.0} | {:.0} |",
                a.peak_mib,
                b.peak_mib,
                (b.peak_mib - a.peak_mib) * 1048576.0 / (large.rows - small.rows) as f64
            );
        }
    }
}
