//! NuminaMath, in both layouts: CoT (`source`, `problem`, `solution`, `messages`) and 1.5
//! (`problem`, `solution`, `answer`, `problem_type`, `question_type`, `source`, `uuid`, model
//! `generations` with their correctness columns). Only problems with one final answer a grader
//! can check are kept; proofs, multiple-part questions, multiple choice with its options inside
//! the text, and answers given as `proof` or `notfound` are skipped, each counted by reason.
//! The row's `source` is Numina's own (`olympiads`, `cn_k12`, `amc_aime`, ...) under a `numina-`
//! prefix, so a mix can weigh Numina's parts and tell its AMC/AIME problems from an AIME import.

use super::{id_with, source_tag, Mapped, Source};
use serde_json::json;
use start_schemas::answer::last_boxed;

/// Columns of model outputs and their labels that 1.5 ships beside each problem: not part of
/// the problem, and large, so they are not carried into metadata.
const BULKY: [&str; 7] = [
    "messages",
    "generations",
    "correctness_math_verify",
    "correctness_llama",
    "finish_reasons",
    "correctness_count",
    "is_reasoning_complete",
];

/// Whether a question asks several things: enumerated parts such as "(1) … (2)", "(I) …
/// (II)", "(Ⅰ) … (Ⅱ)" or "(a) … (b)".
fn has_parts(question: &str) -> bool {
    const PAIRS: [(&str, &str); 5] = [
        ("(1)", "(2)"),
        ("(I)", "(II)"),
        ("(Ⅰ)", "(Ⅱ)"),
        ("（1）", "（2）"),
        ("(a)", "(b)"),
    ];
    PAIRS.iter().any(|(a, b)| {
        question
            .find(a)
            .is_some_and(|i| question[i + a.len()..].contains(b))
    })
}

pub(super) fn map(src: &mut Source) -> Option<Mapped> {
    src.discard(&BULKY);
    let uuid = src.text(&["uuid"]);
    let raw_source = src.text(&["source"]).unwrap_or_default();
    let question = src.required(&["problem"])?;
    let solution = src.text(&["solution"]);
    let question_type = src.text(&["question_type"]).unwrap_or_default();
    let given = src.text(&["answer"]);
    if question_type.eq_ignore_ascii_case("proof") {
        return Some(Mapped::Skipped("proof"));
    }
    if question_type.eq_ignore_ascii_case("mcq") {
        return Some(Mapped::Skipped(
            "multiple choice with its options in the text",
        ));
    }
    if has_parts(&question) {
        return Some(Mapped::Skipped("multiple-part question"));
    }
    let answer = match given {
        Some(a) => a,
        // CoT rows have no answer column: the solution's last box, when it has exactly one
        // (several boxes answer several parts).
        None => match solution.as_deref() {
            Some(s) if s.matches("\\boxed").count() > 1 => {
                return Some(Mapped::Skipped("multiple-part question"))
            }
            Some(s) => last_boxed(s).unwrap_or_default(),
            None => String::new(),
        },
    };
    match answer.trim().to_ascii_lowercase().as_str() {
        "proof" => return Some(Mapped::Skipped("proof")),
        "notfound" => return Some(Mapped::Skipped("answer not found (notfound)")),
        "" => return Some(Mapped::Skipped("no final answer")),
        _ => {}
    }
    let mut out = json!({
        "source": source_tag("numina", &raw_source),
        "kind": "math",
        "question": question,
        "answer": answer.trim(),
    });
    if let Some(id) = uuid {
        out["id"] = json!(id_with("numina", &id));
    }
    if let Some(s) = solution {
        out["solution"] = json!(s);
    }
    Some(Mapped::Problem(out))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{failed, import, skipped};
    use super::super::ImportFormat;
    use serde_json::json;

    #[test]
    fn the_1_5_layout_keeps_numinas_source_and_drops_generations() {
        let p = import(
            ImportFormat::Numina,
            json!({"problem": "Find $x$ if $2x = 6$.", "solution": "$x = \\boxed{3}$", "answer": "3",
                "problem_type": "Algebra", "question_type": "math-word-problem", "source": "cn_k12",
                "uuid": "0b3c-11", "is_reasoning_complete": [true], "generations": ["long"],
                "correctness_math_verify": [true], "correctness_llama": null, "finish_reasons": null,
                "correctness_count": 1, "messages": [], "synthetic": false}),
        );
        assert_eq!(p.source, "numina-cn_k12");
        assert_eq!(p.id.as_str(), "numina-0b3c-11");
        let meta = p.metadata.unwrap();
        assert_eq!(meta["problem_type"], "Algebra");
        assert!(meta.get("generations").is_none() && meta.get("messages").is_none());
    }

    #[test]
    fn the_cot_layout_takes_the_single_boxed_answer() {
        let p = import(
            ImportFormat::Numina,
            json!({"source": "olympiads", "problem": "Compute 2+2.", "solution": "So \\boxed{4}.",
                "messages": [{"role": "user", "content": "Compute 2+2."}]}),
        );
        assert_eq!(p.to_row()["answer"], "4");
    }

    #[test]
    fn rows_without_one_checkable_answer_are_skipped_with_their_reason() {
        let row = |extra: serde_json::Value| {
            let mut r =
                json!({"source": "olympiads", "problem": "Show that it holds.", "solution": "..."});
            r.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            r
        };
        let numina = ImportFormat::Numina;
        assert_eq!(
            skipped(
                numina,
                row(json!({"question_type": "proof", "answer": "proof"}))
            ),
            "proof"
        );
        assert_eq!(skipped(numina, row(json!({"answer": "proof"}))), "proof");
        assert_eq!(
            skipped(numina, row(json!({"answer": "notfound"}))),
            "answer not found (notfound)"
        );
        assert_eq!(
            skipped(numina, row(json!({"answer": " "}))),
            "no final answer"
        );
        assert_eq!(skipped(numina, row(json!({}))), "no final answer");
        assert_eq!(
            skipped(
                numina,
                row(json!({"problem": "(1) Find a. (2) Find b.", "answer": "1"}))
            ),
            "multiple-part question"
        );
        assert_eq!(
            skipped(
                numina,
                row(json!({"solution": "\\boxed{1} and \\boxed{2}"}))
            ),
            "multiple-part question"
        );
        assert_eq!(
            skipped(numina, row(json!({"question_type": "MCQ", "answer": "C"}))),
            "multiple choice with its options in the text"
        );
        assert_eq!(
            failed(numina, json!({"source": "olympiads", "solution": "x"})),
            ["problem"]
        );
    }
}
