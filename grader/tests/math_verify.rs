//! Differential test of the math grader against Hugging Face's Math-Verify (installed from
//! PyPI by scripts/setup): every gold/prediction pair of the dev split of
//! `scripts/math_pairs.py` (fixed seed) is graded by both, and the test fails on any pair
//! where they disagree that is not in the reviewed list of intended differences,
//! `tests/fixtures/math_verify_differences.jsonl`, each with its reason. The held-out split is
//! for `scripts/bench-math-agreement` only.

use serde_json::Value;
use start_grader::math::{verify, Cmp};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

fn run_python(args: &[&str]) -> String {
    let out = Command::new(python())
        .args(args)
        .current_dir(root())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{} {args:?} failed (run scripts/setup, which installs math-verify): {}",
        python(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect()
}

/// The outcome as the reviewed list writes it.
fn name(c: Cmp) -> &'static str {
    match c {
        Cmp::Equal(_) => "equal",
        Cmp::Different => "different",
        Cmp::Unknown => "unknown",
    }
}

#[test]
fn the_math_grader_agrees_with_math_verify_or_says_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let pairs_path = dir.path().join("pairs.jsonl");
    let pairs_text = run_python(&["scripts/math_pairs.py", "--split", "dev", "--seed", "1"]);
    std::fs::write(&pairs_path, &pairs_text).unwrap();
    let pairs = lines(&pairs_text);
    assert!(pairs.len() >= 1000, "{} pairs", pairs.len());
    let verdicts = lines(&run_python(&[
        "scripts/math_verify_verdicts.py",
        pairs_path.to_str().unwrap(),
    ]));
    assert_eq!(verdicts.len(), pairs.len());
    let reviewed: HashMap<(String, String), Value> =
        std::fs::read_to_string(root().join("grader/tests/fixtures/math_verify_differences.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("a reviewed difference is JSON");
                assert!(
                    v["reason"].as_str().is_some_and(|r| r.len() > 10),
                    "every reviewed difference gives its reason: {v}"
                );
                let key = (
                    v["gold"].as_str().unwrap().to_string(),
                    v["response"].as_str().unwrap().to_string(),
                );
                (key, v)
            })
            .collect();
    let mut agree = 0;
    let mut listed = 0;
    let mut unlisted = Vec::new();
    // For working on the grader: every pair with both verdicts, to study by family.
    let mut dump = std::env::var("START_MATH_VERIFY_DUMP")
        .ok()
        .map(|p| std::fs::File::create(p).unwrap());
    for (pair, mv) in pairs.iter().zip(&verdicts) {
        assert_eq!(pair["id"], mv["id"]);
        let (gold, response) = (
            pair["gold"].as_str().unwrap(),
            pair["response"].as_str().unwrap(),
        );
        let verdict = verify(gold, response);
        let ours = verdict.outcome;
        let theirs = mv["math_verify"].as_bool().unwrap();
        if let Some(f) = dump.as_mut() {
            use std::io::Write;
            let row = serde_json::json!({"pair": pair, "start": name(ours), "gold_clean": verdict.gold, "pred_clean": verdict.pred, "math_verify": theirs});
            writeln!(f, "{row}").unwrap();
        }
        if matches!(ours, Cmp::Equal(_)) == theirs && ours != Cmp::Unknown {
            agree += 1;
            continue;
        }
        match reviewed.get(&(gold.to_string(), response.to_string())) {
            Some(r) if r["start"] == name(ours) && r["math_verify"].as_bool() == Some(theirs) => listed += 1,
            _ => unlisted.push(format!(
                "{{\"gold\": {}, \"response\": {}, \"start\": \"{}\", \"math_verify\": {theirs}, \"family\": {}}}",
                serde_json::to_string(gold).unwrap(),
                serde_json::to_string(response).unwrap(),
                name(ours),
                pair["family"]
            )),
        }
    }
    let n = pairs.len();
    eprintln!(
        "{agree} of {n} pairs agree with Math-Verify ({:.1}%), {listed} differ as reviewed, {} differ unreviewed",
        100.0 * agree as f64 / n as f64,
        unlisted.len()
    );
    assert!(
        unlisted.is_empty(),
        "{} disagreements with Math-Verify are not in the reviewed list (fix them, or add them \
         with a reason to grader/tests/fixtures/math_verify_differences.jsonl):\n{}",
        unlisted.len(),
        unlisted
            .iter()
            .take(60)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
