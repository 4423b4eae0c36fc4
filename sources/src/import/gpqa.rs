//! The GPQA CSV: `Question`, `Correct Answer`, `Incorrect Answer 1..3`, `Record ID`. The
//! options are shuffled by a permutation drawn from the record id, so an import is
//! reproducible and the right option is not always first.

use super::{id_with, Mapped, Source};
use serde_json::json;
use sha2::{Digest, Sha256};
use start_schemas::problem::choice_letter;

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

pub(super) fn map(src: &mut Source) -> Option<Mapped> {
    let id = src.text(&["Record ID", "id"]);
    let question = src.required(&["Question"]);
    let correct = src.required(&["Correct Answer"]);
    let mut options = vec![correct?.trim().to_string()];
    for i in 1..=3 {
        let name = format!("Incorrect Answer {i}");
        if let Some(wrong) = src.required(&[name.as_str()]) {
            options.push(wrong.trim().to_string());
        }
    }
    if options.len() != 4 {
        return None;
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
    Some(Mapped::Problem(out))
}

#[cfg(test)]
mod tests {
    use super::super::testing::import;
    use super::super::ImportFormat;
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
}
