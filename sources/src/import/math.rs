//! Hendrycks MATH and MATH-500: `problem`, `solution`, optional `answer`, `level`, `type`,
//! `unique_id`. Without an `answer` field the answer is the solution's last `\boxed{}`.

use super::{id_with, Mapped, Source};
use serde_json::json;
use start_schemas::answer::last_boxed;

pub(super) fn map(src: &mut Source) -> Option<Mapped> {
    let id = src.text(&["unique_id", "id"]);
    let question = src.required(&["problem", "question"]);
    let solution = src.text(&["solution"]);
    let answer = src
        .text(&["answer"])
        .or_else(|| solution.as_deref().and_then(last_boxed));
    if answer.is_none() {
        src.error(
            "answer",
            "missing, and the solution has no \\boxed{...} to take it from",
        );
    }
    let mut out =
        json!({"source": "math", "kind": "math", "question": question?, "answer": answer?});
    if let Some(id) = id {
        out["id"] = json!(id_with("math", &id));
    }
    if let Some(s) = solution {
        out["solution"] = json!(s);
    }
    Some(Mapped::Problem(out))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{failed, import};
    use super::super::ImportFormat;
    use serde_json::json;

    #[test]
    fn the_boxed_answer_is_taken_when_there_is_no_answer_field() {
        let p = import(
            ImportFormat::Math,
            json!({"problem": "Q", "solution": "so \\boxed{\\frac{1}{2}}.", "level": "Level 2"}),
        );
        assert_eq!(p.to_row()["answer"], "\\frac{1}{2}");
        let fields = failed(
            ImportFormat::Math,
            json!({"problem": "Q", "solution": "none"}),
        );
        assert_eq!(fields, ["answer"]);
    }
}
