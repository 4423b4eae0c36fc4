//! NuminaMath, in both layouts: CoT (`source`, `problem`, `solution`, `messages`) and 1.5
//! (`problem`, `solution`, `answer`, `problem_type`, `question_type`, `source`, `uuid`, model
//! `generations` with their correctness columns). Only problems with one final answer a grader
//! can check are kept; proofs, multiple-part questions, multiple choice with its options inside
//! the text, and answers given as `proof` or `notfound` are skipped, each counted by reason.
//! The row's `source` is Numina's own (`olympiads`, `cn_k12`, `amc_aime`, ...) under a `numina-`
//! prefix, so a mix can weigh Numina's parts and tell its AMC/AIME problems from an AIME import.

use super::{id_with, source_tag, Mapped, Source};
use serde_json::json;
use start_schemas::answer::all_boxed;
use start_schemas::problem::normalise_whitespace;

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

/// Why a question with enumerated parts is skipped.
pub(crate) const MULTI_PART: &str = "multiple-part question (enumerated parts)";
/// Why a solution with several different boxed answers is skipped.
pub(crate) const SEVERAL_BOXES: &str = "several different boxed answers";

/// Part markers, first and second of a pair.
const PAIRS: [(&str, &str); 7] = [
    ("(1)", "(2)"),
    ("(I)", "(II)"),
    ("(Ⅰ)", "(Ⅱ)"),
    ("（1）", "（2）"),
    ("（Ⅰ）", "（Ⅱ）"),
    ("(a)", "(b)"),
    ("(i)", "(ii)"),
];

/// The question's prose with its math and figures set aside: every `$…$`, `$$…$$`, `\(…\)`
/// and `\[…\]` span becomes `M` (a word, so nothing before it looks like a sentence's end)
/// unless it holds only a part marker (`$(1)$`), which stays; `[asy]…[/asy]` figures go.
fn prose(question: &str) -> String {
    let mut out = String::with_capacity(question.len());
    let mut rest = question;
    while !rest.is_empty() {
        let opener = [
            ("[asy]", "[/asy]"),
            ("$$", "$$"),
            ("\\[", "\\]"),
            ("\\(", "\\)"),
            ("$", "$"),
        ]
        .into_iter()
        .find(|(open, _)| rest.starts_with(open));
        if let Some((open, close)) = opener {
            let body = &rest[open.len()..];
            let Some(end) = body.find(close) else {
                out.push_str(rest);
                break;
            };
            let inner = body[..end].trim();
            if PAIRS.iter().any(|(a, b)| inner == *a || inner == *b) {
                out.push_str(inner);
            } else if open != "[asy]" {
                out.push('M');
            }
            rest = &body[end + close.len()..];
            continue;
        }
        let ch = rest.chars().next().expect("not empty");
        out.push(ch);
        rest = &rest[ch.len_utf8()..];
    }
    out
}

/// Whether `text[..at]` ends where a part would begin: the start, a line break, or after a
/// sentence's or clause's punctuation, never right after a word (`f(1)`, `that (1)`).
fn part_position(text: &str, at: usize) -> bool {
    let before = text[..at].trim_end_matches([' ', '\t']);
    match before.chars().last() {
        None => true,
        Some(c) => matches!(
            c,
            '\n' | '.' | '?' | '!' | ':' | ';' | ',' | '。' | '；' | '：' | '，' | '？'
        ),
    }
}

/// Whether a question asks several things: a pair of enumerated part markers ("(1) … (2)",
/// "(I) … (II)", "(Ⅰ) … (Ⅱ)", "(a) … (b)"), each where a part begins. Markers inside
/// formulas and figures (`f(1)`, `$f(2)$`, Asymptote's `(1,2)`), in the middle of a sentence
/// ("such that (1) …"), or listing the statements of a "which of the following" question are
/// not parts, and neither is a list of conditions whose entries ask nothing (`(i) all sides
/// are drawn, (ii) no line lies inside`). MATH, whose every problem has one answer, was the
/// check: the old rule fired on 27 of its 5,000 test problems, this one on none.
fn has_parts(question: &str) -> bool {
    let lower = question.to_lowercase();
    if lower.contains("which of the following") || lower.contains("of the following statements") {
        return false;
    }
    let text = prose(question);
    PAIRS.iter().any(|(a, b)| {
        let first = text
            .match_indices(a)
            .find(|&(i, _)| part_position(&text, i))
            .map(|(i, _)| i + a.len());
        first.is_some_and(|from| {
            text[from..]
                .match_indices(b)
                .map(|(i, _)| from + i)
                .find(|&i| part_position(&text, i))
                .is_some_and(|i| asks(&text[i + b.len()..]))
        })
    })
}

/// Whether a part, up to the end of its line, asks for something: a question mark or a
/// request ("find", "prove", "求", …). A list of conditions ("(i) all four sides are …")
/// asks nothing; its question comes after the list.
fn asks(part: &str) -> bool {
    let line = part.split('\n').next().unwrap_or_default();
    if line.contains(['?', '？']) {
        return true;
    }
    const REQUESTS: [&str; 14] = [
        "find",
        "determine",
        "compute",
        "calculate",
        "evaluate",
        "prove",
        "show",
        "solve",
        "what",
        "how",
        "write",
        "express",
        "simplify",
        "give",
    ];
    let lower = line.to_lowercase();
    lower
        .split(|c: char| !c.is_alphabetic())
        .any(|w| REQUESTS.contains(&w))
        || ["求", "证明", "判断", "计算", "解", "试"]
            .iter()
            .any(|w| line.contains(w))
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
        return Some(Mapped::skip("proof"));
    }
    if question_type.eq_ignore_ascii_case("mcq") {
        return Some(Mapped::skip("multiple choice with its options in the text"));
    }
    if has_parts(&question) {
        return Some(Mapped::skip(MULTI_PART));
    }
    let answer = match given {
        Some(a) => a,
        // CoT rows have no answer column: the solution's box. Several boxes holding the same
        // answer (a solution that checks it a second way) are one answer; different ones
        // answer several parts.
        None => {
            let boxes = solution.as_deref().map(all_boxed).unwrap_or_default();
            let mut distinct: Vec<String> = Vec::new();
            for b in &boxes {
                let b = normalise_whitespace(b);
                if !distinct.contains(&b) {
                    distinct.push(b);
                }
            }
            if distinct.len() > 1 {
                return Some(Mapped::skip_with(
                    SEVERAL_BOXES,
                    format!("boxed: {}", distinct.join(" | ")),
                ));
            }
            boxes.into_iter().next_back().unwrap_or_default()
        }
    };
    match answer.trim().to_ascii_lowercase().as_str() {
        "proof" => return Some(Mapped::skip("proof")),
        "notfound" => return Some(Mapped::skip("answer not found (notfound)")),
        "" => return Some(Mapped::skip("no final answer")),
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
    use super::*;
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
            MULTI_PART
        );
        assert_eq!(
            skipped(
                numina,
                row(json!({"solution": "\\boxed{1} and \\boxed{2}"}))
            ),
            SEVERAL_BOXES
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

    #[test]
    fn parts_are_told_from_function_values_coordinates_and_lists() {
        for parts in [
            "Given $f(x)=x^2$.\n(1) Find $f(2)$;\n(2) Solve $f(x)=4$.",
            "已知函数，(Ⅰ)求单调区间；(Ⅱ)求最值。",
            "Let $a>0$. $(1)$ Find the minimum. $(2)$ Prove it is unique.",
            "(a) Show that $n$ is even. (b) Find $n$.",
        ] {
            assert!(has_parts(parts), "{parts}");
        }
        for single in [
            "If $f(1)=2$, $f(2) = 6$, and $f(3)=5$, then what is $f^{-1}(f^{-1}(6))$?",
            "Evaluate f(1) + f(2) where f(x) = x.",
            "[asy]\ndraw((1,0)--(2,0));\nlabel(\"(1)\", (1,0));\nlabel(\"(2)\", (2,0));\n[/asy]\nFind the area.",
            "Given $(a)$ x $(b) = a^2 + 2ab + b^2$, what is the value of $(a)$ x $(b)$?",
            "Set $R$ is a set of rectangles such that (1) only grid points are used, (2) all sides are vertical or horizontal. How many?",
            "Which of the following are true?\n\n(a) $2$ can be a divisor of $P$.\n(b) $2$ must be a divisor of $P$.",
            "A rectangle is basic if\n\n(i) all four sides are drawn, and\n(ii) no line lies inside it.\n\nFind the number of basic rectangles.",
        ] {
            assert!(!has_parts(single), "{single}");
        }
    }

    #[test]
    fn the_same_answer_boxed_twice_is_one_answer() {
        let p = import(
            ImportFormat::Numina,
            json!({"source": "synthetic_math", "problem": "Compute $3 \\times 4$.",
                "solution": "Directly, $\\boxed{12}$. Checking by addition: $4+4+4=\\boxed{ 12 }$."}),
        );
        assert_eq!(p.to_row()["answer"], "12");
    }
}
