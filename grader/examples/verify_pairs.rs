//! The math grader's pure-Rust verdict on gold/response pairs, for working on the grader:
//! reads JSON lines with `gold` and `response` on standard input and writes each line back
//! with `start` (`equal`, `different`, `unknown`: unknown goes to sympy in a real grading),
//! the method, and the cleaned gold and prediction.
//!
//!     cargo run -q -p start-grader --example verify_pairs < pairs.jsonl

use serde_json::Value;
use start_grader::math::{verify, Cmp};
use std::io::{BufRead, Write};

fn main() {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("standard input is readable");
        if line.trim().is_empty() {
            continue;
        }
        let mut row: Value = serde_json::from_str(&line).expect("each line is JSON");
        let (gold, response) = (
            row["gold"].as_str().unwrap_or_default().to_string(),
            row["response"].as_str().unwrap_or_default().to_string(),
        );
        let v = verify(&gold, &response);
        let (outcome, method) = match v.outcome {
            Cmp::Equal(m) => ("equal", m.to_string()),
            Cmp::Different => ("different", String::new()),
            Cmp::Unknown => ("unknown", String::new()),
        };
        row["start"] = outcome.into();
        row["method"] = method.into();
        row["gold_clean"] = v.gold.into();
        row["pred_clean"] = v.pred.into();
        writeln!(out, "{row}").expect("standard output is writable");
    }
}
