//! The published quality rules ([`start_grader::rft::rules`]) on real rows: trajectories the
//! default model wrote in a run of the bundled problems (`fixtures/rule_rows.parquet`, a shard's
//! rows kept as written). `fixtures/rule_rows.cases.jsonl` says, for each row, which rules it
//! breaks, as read off the rows by hand-written Python (`fixtures/rule_rows.py`), not by this
//! crate. Every rule must drop at least one real row and keep another.

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use start_grader::rft::rules::{Verdicts, ROW_RULES as RULES};
use start_grader::rft::{select, Features, Policy, Select};
use start_schemas::trajectory::from_record_batch;
use start_schemas::trajectory::Trajectory;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn rows() -> Vec<Trajectory> {
    let file = std::fs::File::open(fixture("rule_rows.parquet")).expect("the fixture opens");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("a Parquet file")
        .build()
        .expect("a reader");
    let mut rows = Vec::new();
    for batch in reader {
        rows.extend(from_record_batch(&batch.expect("a batch")).expect("trajectory rows"));
    }
    rows
}

/// (problem, sample) -> the rules the Python reading says the row breaks.
fn cases() -> HashMap<(String, u32), BTreeSet<String>> {
    std::fs::read_to_string(fixture("rule_rows.cases.jsonl"))
        .expect("the cases file")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            let key = (
                v["problem_id"].as_str().expect("problem_id").to_string(),
                v["sample_index"].as_u64().expect("sample_index") as u32,
            );
            let breaks = v["breaks"]
                .as_array()
                .expect("breaks")
                .iter()
                .map(|b| b.as_str().expect("a rule name").to_string())
                .collect();
            (key, breaks)
        })
        .collect()
}

#[test]
fn each_real_row_breaks_exactly_the_rules_read_off_it() {
    let rows = rows();
    let cases = cases();
    assert_eq!(rows.len(), cases.len(), "one case per fixture row");
    for t in &rows {
        let want = &cases[&(t.problem_id.clone(), t.sample_index)];
        let v = Verdicts::of(t);
        let got: BTreeSet<String> = RULES
            .iter()
            .filter(|&&r| v.breaks(r))
            .map(|r| r.name().to_string())
            .collect();
        assert_eq!(
            &got, want,
            "{} sample {}: rules broken differ",
            t.problem_id, t.sample_index
        );
    }
}

#[test]
fn every_rule_drops_a_real_row_and_keeps_another_and_export_counts_it() {
    let rows = rows();
    for &rule in RULES {
        let broken = rows.iter().filter(|t| Verdicts::of(t).breaks(rule)).count();
        assert!(broken > 0, "no real row breaks {}", rule.name());
        assert!(broken < rows.len(), "every real row breaks {}", rule.name());
        // The rule alone, over every row (Select::All lets wrong answers through to it): it
        // removes exactly the rows that break it, counted under its reason, and its count is
        // then no longer among what a rule not applied would drop.
        let features = rows
            .iter()
            .enumerate()
            .map(|(i, t)| Features::of_any(t, (0, i)))
            .collect();
        let policy = Policy {
            select: Select::All,
            near_duplicate: 1.1,
            max_repeat_ratio: 1.0,
            rules: vec![rule],
            ..Policy::default()
        };
        let selection = select(features, &policy);
        let finished_broken = rows
            .iter()
            .filter(|t| {
                t.finish_reason == start_schemas::trajectory::FinishReason::Stop
                    && Verdicts::of(t).breaks(rule)
            })
            .count() as u64;
        assert_eq!(
            selection.removed.get(rule.reason()).copied().unwrap_or(0),
            finished_broken,
            "{}",
            rule.name()
        );
        assert_eq!(
            selection.kept.len() as u64 + selection.removed.values().sum::<u64>(),
            rows.len() as u64
        );
        assert!(
            selection
                .kept
                .iter()
                .all(|at| !Verdicts::of(&rows[at.1]).breaks(rule)),
            "a kept row breaks {}",
            rule.name()
        );
        assert!(!selection.would_drop.contains_key(rule.reason()));
    }
}

#[test]
fn resample_on_correct_prefers_fewer_failed_calls_then_one_answer_tag() {
    let rows = rows();
    // Every row made correct, so the ranking alone decides; near duplicates let through.
    let features: Vec<Features> = rows
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut t = t.clone();
            t.correct = Some(true);
            t.finish_reason = start_schemas::trajectory::FinishReason::Stop;
            Features::of(&t, (0, i))
        })
        .collect();
    let by_problem = |fs: &[Features]| {
        let mut m: HashMap<String, Vec<Features>> = HashMap::new();
        for f in fs {
            m.entry(f.problem_id.clone()).or_default().push(f.clone());
        }
        m
    };
    let groups = by_problem(&features);
    let policy = Policy {
        select: Select::ResampleOnCorrect(1),
        near_duplicate: 1.1,
        max_repeat_ratio: 1.0,
        ..Policy::default()
    };
    let selection = select(features.clone(), &policy);
    let mut checked = 0;
    for at in &selection.kept {
        let kept = &features[at.1];
        for other in &groups[&kept.problem_id] {
            if other.text_hash == kept.text_hash && other.at != kept.at {
                continue;
            }
            let share = |f: &Features| f.tool_errors as f64 / f.tool_calls.max(1) as f64;
            assert!(
                share(kept) <= share(other),
                "{}: kept sample {} with a higher failed-call share than sample {}",
                kept.problem_id,
                kept.sample_index,
                other.sample_index
            );
            if share(kept) == share(other) {
                assert!(
                    kept.verdicts.answer_tags <= 1 || other.verdicts.answer_tags > 1,
                    "{}: a row with repeated answer tags was preferred",
                    kept.problem_id
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked > selection.kept.len(),
        "problems with several samples were ranked"
    );
}

#[test]
fn the_same_answer_boxed_twice_is_several_boxed_as_nemo_skills_drops_it() {
    use start_schemas::trajectory::SegmentKind;
    let rows = rows();
    let t = rows
        .iter()
        .find(|t| {
            !Verdicts::of(t).breaks(start_grader::rft::rules::Rule::SeveralBoxed)
                && t.segments.iter().any(|s| s.kind == SegmentKind::Reasoning)
        })
        .expect("a real row with one boxed answer at most");
    let mut twice = t.clone();
    let last = twice
        .segments
        .iter()
        .rposition(|s| s.kind == SegmentKind::Reasoning)
        .unwrap();
    twice.segments[last]
        .text
        .push_str("\nSo \\boxed{12}. Checking once more: \\boxed{12}.");
    let v = Verdicts::of(&twice);
    assert!(v.breaks(start_grader::rft::rules::Rule::SeveralBoxed));
    assert!(v.answer_tags >= 2);
}
