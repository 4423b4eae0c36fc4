//! Agreement with Math-Verify and speed, on pairs the grader was not developed against.
//!
//! Run by `scripts/bench-math-agreement`, which generates the held-out pairs
//! (`scripts/math_pairs.py --split heldout`) and Math-Verify's verdicts with its per-pair time
//! (`scripts/math_verify_verdicts.py`, one core), then this: start grades every pair, timed on
//! one core over several rounds, and the table puts both side by side. Every remaining
//! difference is printed by kind, with start's and Math-Verify's verdicts.
//!
//!     START_BENCH_PAIRS=pairs.jsonl START_BENCH_VERDICTS=verdicts.jsonl cargo bench -p start-grader --bench math_agreement

use serde_json::Value;
use start_grader::math::{verify, Cmp};
use std::collections::BTreeMap;
use std::time::Instant;

fn lines(path: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e} (run scripts/bench-math-agreement)"))
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect()
}

fn main() {
    // Without its inputs the bench fails rather than pass having measured nothing: CI runs it
    // (`cargo test --benches` under scripts/bench-smoke, which makes a few pairs).
    let (Ok(pairs), Ok(verdicts)) = (
        std::env::var("START_BENCH_PAIRS"),
        std::env::var("START_BENCH_VERDICTS"),
    ) else {
        panic!(
            "set START_BENCH_PAIRS and START_BENCH_VERDICTS (scripts/bench-math-agreement does)"
        );
    };
    let pairs = lines(&pairs);
    let verdicts = lines(&verdicts);
    assert_eq!(pairs.len(), verdicts.len());
    let n = pairs.len();
    let input: Vec<(&str, &str)> = pairs
        .iter()
        .map(|p| (p["gold"].as_str().unwrap(), p["response"].as_str().unwrap()))
        .collect();
    // Warm up, then the median of rounds of grading every pair once.
    let outcomes: Vec<Cmp> = input.iter().map(|(g, r)| verify(g, r).outcome).collect();
    let mut rounds: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for (g, r) in &input {
                std::hint::black_box(verify(g, r));
            }
            t.elapsed().as_secs_f64()
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    let start_s = rounds[rounds.len() / 2];
    let mv_s: f64 = verdicts
        .iter()
        .map(|v| v["seconds"].as_f64().unwrap())
        .sum();
    let mut agree = 0;
    let mut unknown = 0;
    let mut kinds: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for ((pair, v), ours) in pairs.iter().zip(&verdicts).zip(&outcomes) {
        let theirs = v["math_verify"].as_bool().unwrap();
        let equal = matches!(ours, Cmp::Equal(_));
        unknown += usize::from(*ours == Cmp::Unknown);
        if equal == theirs && *ours != Cmp::Unknown {
            agree += 1;
            continue;
        }
        let family: Vec<&str> = pair["family"].as_str().unwrap().split(':').collect();
        let key = format!(
            "{} start={} math-verify={theirs}",
            family
                .get(1..3)
                .map_or(family[0].to_string(), |f| f.join(":")),
            match ours {
                Cmp::Equal(_) => "equal",
                Cmp::Different => "different",
                Cmp::Unknown => "unknown",
            }
        );
        let example = format!(
            "gold {:?} response {:?}",
            pair["gold"].as_str().unwrap(),
            pair["response"].as_str().unwrap()
        );
        let e = kinds.entry(key).or_insert((0, example));
        e.0 += 1;
    }
    println!("held-out pairs: {n} (scripts/math_pairs.py --split heldout), one core each side");
    println!();
    println!("| grader | agreement with Math-Verify | pairs/s | seconds | per pair |");
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| start | {agree} of {n} ({:.1}%), {unknown} unknown | {:.0} | {start_s:.3} | {:.1} µs |",
        100.0 * agree as f64 / n as f64,
        n as f64 / start_s,
        1e6 * start_s / n as f64
    );
    println!(
        "| Math-Verify 0.9.0 | (reference) | {:.0} | {mv_s:.3} | {:.1} µs |",
        n as f64 / mv_s,
        1e6 * mv_s / n as f64
    );
    println!();
    println!("start is {:.0}x faster per core", mv_s / start_s);
    println!();
    println!("differences by kind:");
    for (k, (count, example)) in &kinds {
        println!("  {count:4}  {k}\n        e.g. {example}");
    }
}
