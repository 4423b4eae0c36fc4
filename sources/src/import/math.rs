//! Hendrycks MATH (one JSON file a problem in the original release), MATH-500, and the
//! AI-MO-style sets read the same way (AMC23: `id` a row index, `problem`, `answer` stored as
//! a float, `url` on the AoPS wiki): `problem`, `solution`, optional `answer`, `level`, `type`,
//! `unique_id`. Without an `answer` field the answer is the solution's final boxed answer, read
//! as the grader reads a response's (`\boxed{-2}` and `\boxed{1}` at the end are `-2, 1`). An
//! integral float answer (`27.0`) is the integer; a row with an AoPS wiki URL is dated by the
//! contest's year and named by it (`math-amc12a-2023-1`) rather than by its row index.

use super::aops;
use super::{id_with, set_date, Mapped, Source};
use serde_json::{json, Value};
use start_schemas::answer::final_boxed;

/// An answer as text: strings as written; numbers printed, an integral float as the integer
/// (sets exported through pandas store `27` as `27.0`).
fn answer_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => {
                format!("{}", f as i64)
            }
            _ => n.to_string(),
        }),
        _ => None,
    }
}

pub(super) fn map(src: &mut Source) -> Option<Mapped> {
    let id = src.text(&["unique_id", "id"]);
    let question = src.required(&["problem", "question"]);
    if let Some(q) = &question {
        // AI-MO-style sets repeat `problem` as `question`: not carried twice into metadata.
        if src.peek("question").and_then(Value::as_str) == Some(q.as_str()) {
            src.discard(&["question"]);
        }
    }
    let solution = src.text(&["solution"]);
    let given = match src.any(&["answer"]) {
        Some((name, v)) => {
            let text = answer_text(v);
            if text.is_none() {
                src.error(name, "expected text or a number");
            }
            text
        }
        None => None,
    };
    let url = src
        .any(&["url"])
        .and_then(|(_, v)| v.as_str())
        .map(str::to_string);
    let answer = given.or_else(|| solution.as_deref().and_then(final_boxed));
    if answer.is_none() && src.errors.is_empty() {
        src.error(
            "answer",
            "missing, and the solution has no \\boxed{...} to take it from",
        );
    }
    let mut out =
        json!({"source": "math", "kind": "math", "question": question?, "answer": answer?});
    let contest = url.as_deref().and_then(aops::from_url);
    match (&contest, id) {
        (Some(p), raw) => {
            out["id"] = json!(format!("math-{}", p.tail()));
            if let Some(raw) = raw {
                out["metadata"]["source_id"] = json!(raw);
            }
            if let Some(day) = chrono::NaiveDate::from_ymd_opt(p.year, 12, 31) {
                set_date(&mut out, day);
            }
        }
        (None, Some(raw)) => out["id"] = json!(id_with("math", &raw)),
        (None, None) => {}
    }
    if let Some(url) = url {
        out["metadata"]["url"] = json!(url);
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

    #[test]
    fn float_answers_that_are_integers_print_as_integers() {
        let row = |answer: serde_json::Value| {
            import(
                ImportFormat::Math,
                json!({"id": 0, "problem": "Q", "answer": answer}),
            )
            .to_row()["answer"]
                .clone()
        };
        assert_eq!(row(json!(27.0)), "27");
        assert_eq!(row(json!(-1.0)), "-1");
        assert_eq!(row(json!(0.5)), "0.5");
        assert_eq!(row(json!(3159)), "3159");
        assert_eq!(row(json!("27.0")), "27.0", "text is kept as written");
    }

    #[test]
    fn an_aops_url_names_and_dates_the_problem() {
        let p = import(
            ImportFormat::Math,
            json!({"id": 0, "problem": "Q", "answer": 27.0, "question": "Q",
                "url": "https://artofproblemsolving.com/wiki/index.php/2023_AMC_12A_Problems/Problem_1"}),
        );
        assert_eq!(p.id.as_str(), "math-amc12a-2023-1");
        let meta = p.metadata.unwrap();
        assert_eq!(meta["date"], "2023-12-31");
        assert_eq!(meta["source_id"], "0");
        assert!(
            meta.get("question").is_none(),
            "the copy of the problem is dropped"
        );
    }
}
