//! The GPQA CSV as released (main, extended, diamond: 78 columns): `Question`, `Correct
//! Answer`, `Incorrect Answer 1..3`, `Record ID`, `Explanation`, and the writers' and
//! validators' annotations. The options are shuffled by a permutation drawn from the record
//! id, so an import is reproducible and the right option is not always first.
//!
//! Kept: the question and options; `Explanation` as the problem's `solution` (never part of
//! the prompt, which is the question and the options only); in `metadata`, the columns in
//! [`KEPT`] under short names. Everything else (the pre-revision texts, each validator's
//! feedback, answers and time, the canary string: 7–8 KB a row) is dropped, since metadata is
//! carried into every trajectory row. A row whose options repeat (two rows of the diamond set
//! list one option twice) is skipped: a choice problem graded by letter needs distinct options.

use super::{id_with, Mapped, Source};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use start_schemas::problem::{choice_letter, normalise_whitespace};

/// The annotation columns kept in `metadata`, with their names there.
const KEPT: [(&str, &str); 6] = [
    ("High-level domain", "domain"),
    ("Subdomain", "subdomain"),
    ("Writer's Difficulty Estimate", "difficulty"),
    ("Expert Validator Accuracy", "expert_accuracy"),
    ("Non-Expert Validator Accuracy", "non_expert_accuracy"),
    (
        "Expert Validator Disagreement Category",
        "expert_disagreement",
    ),
];

/// Why a row with repeated options is skipped.
pub(crate) const REPEATED_OPTIONS: &str =
    "options repeat (a choice graded by letter needs distinct options)";

/// A permutation of `0..n` drawn from `key`.
fn permutation(key: &str, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut state = Sha256::digest(key.as_bytes()).to_vec();
    for i in (1..n).rev() {
        state = Sha256::digest(&state).to_vec();
        let r = u64::from_le_bytes(state[..8].try_into().expect("8 bytes"));
        order.swap(i, (r % (i as u64 + 1)) as usize);
    }
    order
}

/// A number column as a number where it is one (the CSV writes `1.0`), else as text.
fn annotation(v: &Value) -> Value {
    match v {
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => json!(n),
            _ => json!(s.trim()),
        },
        other => other.clone(),
    }
}

pub(super) fn map(src: &mut Source) -> Option<Mapped> {
    let id = src.text(&["Record ID", "id"]);
    let question = src.required(&["Question"]);
    let correct = src.required(&["Correct Answer"]);
    let explanation = src.text(&["Explanation"]);
    let mut metadata = Map::new();
    for (column, name) in KEPT {
        if let Some((_, v)) = src.any(&[column]) {
            let v = annotation(v);
            if v != json!("") {
                metadata.insert(name.to_string(), v);
            }
        }
    }
    let mut options = vec![correct?.trim().to_string()];
    for i in 1..=3 {
        let name = format!("Incorrect Answer {i}");
        if let Some(wrong) = src.required(&[name.as_str()]) {
            options.push(wrong.trim().to_string());
        }
    }
    src.discard_rest();
    if options.len() != 4 {
        return None;
    }
    for (i, o) in options.iter().enumerate() {
        if let Some(first) = options[..i]
            .iter()
            .position(|p| normalise_whitespace(p) == normalise_whitespace(o))
        {
            let name = |k: usize| match k {
                0 => "Correct Answer".to_string(),
                k => format!("Incorrect Answer {k}"),
            };
            return Some(Mapped::skip_with(
                REPEATED_OPTIONS,
                format!("{} repeats {}: {o:?}", name(i), name(first)),
            ));
        }
    }
    let key = id
        .clone()
        .unwrap_or_else(|| question.clone().unwrap_or_default());
    let order = permutation(&key, options.len());
    let choices: Vec<&String> = order.iter().map(|&i| &options[i]).collect();
    let answer = order
        .iter()
        .position(|&i| i == 0)
        .expect("0 is in the permutation");
    let mut out = json!({
        "source": "gpqa",
        "kind": "choice",
        "question": question?.trim(),
        "choices": choices,
        "answer": choice_letter(answer).to_string(),
    });
    if let Some(id) = id {
        out["id"] = json!(id_with("gpqa", &id));
    }
    if let Some(e) = explanation.filter(|e| !e.trim().is_empty()) {
        out["solution"] = json!(e);
    }
    if !metadata.is_empty() {
        out["metadata"] = Value::Object(metadata);
    }
    Some(Mapped::Problem(out))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{import, skipped};
    use super::super::ImportFormat;
    use super::*;
    use serde_json::json;

    #[test]
    fn options_are_shuffled_reproducibly_and_the_right_one_tracked() {
        let row = json!({"Record ID": "rec1", "Question": "Q", "Correct Answer": "right",
            "Incorrect Answer 1": "w1", "Incorrect Answer 2": "w2", "Incorrect Answer 3": "w3"});
        let a = import(ImportFormat::GpqaCsv, row.clone());
        assert_eq!(a, import(ImportFormat::GpqaCsv, row));
        let start_schemas::problem::Target::Choice {
            choices,
            answer_index,
        } = a.target
        else {
            panic!("choice expected")
        };
        assert_eq!(choices[answer_index], "right");
    }

    #[test]
    fn a_documented_subset_of_columns_is_kept_and_the_explanation_is_the_solution() {
        let row = json!({"Record ID": "rec2", "Question": "Q", "Correct Answer": "right\n",
            "Incorrect Answer 1": "w1", "Incorrect Answer 2": "w2", "Incorrect Answer 3": "w3",
            "Explanation": "Because.", "Subdomain": "Organic Chemistry", "High-level domain": "Chemistry",
            "Expert Validator Accuracy": "1.0", "Non-Expert Validator Accuracy": "0.33",
            "Pre-Revision Question": "old Q", "Feedback_EV_1": "fine", "Canary String": "canary",
            "Self-reported question-writing time (minutes)": "30.0"});
        let p = import(ImportFormat::GpqaCsv, row);
        assert_eq!(p.solution.as_deref(), Some("Because."));
        assert!(!p.question.contains("Because"));
        let meta = p.metadata.unwrap();
        assert_eq!(
            meta.keys().collect::<Vec<_>>(),
            [
                "domain",
                "expert_accuracy",
                "non_expert_accuracy",
                "subdomain"
            ]
        );
        assert_eq!(meta["expert_accuracy"], 1.0);
    }

    #[test]
    fn a_row_whose_options_repeat_is_skipped_by_reason() {
        let row = json!({"Record ID": "rec3", "Question": "Q", "Correct Answer": "a",
            "Incorrect Answer 1": "b", "Incorrect Answer 2": "c", "Incorrect Answer 3": "b "});
        assert_eq!(skipped(ImportFormat::GpqaCsv, row), REPEATED_OPTIONS);
    }
}
