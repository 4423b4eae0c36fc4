//! AIME sets, in the layouts they are released in:
//!
//! - the AoPS-derived 1983–2024 CSV: `ID` (`2022-II-8`), `Year`, `Problem Number`, `Part`,
//!   `Question`, `Answer`; one row answers `080 or 081 (both were accepted)`;
//! - sets derived from it with `id` (`2025_AIME_II_5`), `problem`, `answer`, some answers
//!   written with a unit (`336^\circ`);
//! - the AI-MO-style per-year sets (`id` a row index, `problem`, `solution`, `answer`, `url`
//!   on the AoPS wiki: the only place the year, paper and number are written).
//!
//! Ids are `aime-<year>-<paper>-<number>` (`aime-2024-I-1`, `aime-1983-1`) whichever form the
//! set writes, so the same problem has the same id in every set; the set's own id is kept in
//! `metadata.source_id` when it differs. Problems are dated by the `Year` column, else by the
//! year the id or the URL names.

use super::aops::{self, ContestProblem};
use super::{id_with, set_date, Mapped, Source};
use serde_json::{json, Value};

/// An AIME answer as written, read as the integer it is: leading zeros dropped (`033`), a
/// float export's `.0`, a degree sign (`336^\circ`). `None` when it is not one integer from 0
/// to 999.
fn aime_integer(text: &str) -> Option<u32> {
    let mut t = text.trim();
    for unit in ["^{\\circ}", "^\\circ", "\\degree", "°"] {
        t = t.strip_suffix(unit).unwrap_or(t).trim_end();
    }
    let t = t.strip_suffix(".0").unwrap_or(t);
    let t = t.trim_matches('$').trim();
    (!t.is_empty() && t.len() <= 3 && t.bytes().all(|b| b.is_ascii_digit()))
        .then(|| t.parse().ok())
        .flatten()
}

/// Every answer an AIME row accepts: one integer, or several when the answer says the contest
/// accepted more than one (`080 or 081 (both were accepted)`, `80, 81`). `None` when any part
/// is not an AIME integer.
fn accepted_answers(text: &str) -> Option<Vec<u32>> {
    let mut t = text.trim();
    // A closing remark in parentheses, as the 1983–2024 CSV writes for 2022-II-8.
    if let Some(open) = t.rfind('(') {
        if t.ends_with(')') && open > 0 {
            t = t[..open].trim_end();
        }
    }
    let mut out = Vec::new();
    for part in t.split(" or ").flat_map(|p| p.split([',', '/'])) {
        let part = part.trim().trim_start_matches("and ").trim();
        let n = aime_integer(part)?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    (!out.is_empty()).then_some(out)
}

pub(super) fn map(src: &mut Source) -> Option<Mapped> {
    let raw_id = src.text(&["id", "ID", "problem_id"]);
    let question = src.required(&["problem", "Problem", "Question", "question"]);
    if let Some(q) = &question {
        // AI-MO-style sets repeat `problem` as `question`: not carried twice into metadata.
        if src.peek("question").and_then(Value::as_str) == Some(q.as_str()) {
            src.discard(&["question"]);
        }
    }
    let answer = src.required(&["answer", "Answer"]);
    let solution = src.text(&["solution", "Solution"]);
    let year = src.number(&["Year", "year"]);
    let url = src
        .any(&["url"])
        .and_then(|(_, v)| v.as_str())
        .map(str::to_string);
    let (question, answer) = (question?, answer?);
    let answers = if answer.trim().is_empty() {
        // Left for the row check, which names the empty field.
        vec![]
    } else if let Some(answers) = accepted_answers(&answer) {
        answers
    } else {
        return Some(Mapped::skip_with(
            "answer is not an AIME integer from 0 to 999",
            format!("answer {answer:?}"),
        ));
    };
    let named: Option<ContestProblem> =
        raw_id.as_deref().and_then(aops::aime_from_id).or_else(|| {
            url.as_deref()
                .and_then(aops::from_url)
                .filter(|p| p.contest == "AIME")
        });
    let mut out = json!({"source": "aime", "kind": "math", "question": question,
        "answer": answers.first().map(u32::to_string).unwrap_or_default()});
    if answers.len() > 1 {
        out["also_accepted"] = json!(answers[1..].iter().map(u32::to_string).collect::<Vec<_>>());
    }
    match (&named, &raw_id) {
        (Some(p), raw) => {
            let id = format!("aime-{}", p.aime_tail());
            if let Some(raw) = raw.as_deref().filter(|r| id_with("aime", r) != id) {
                out["metadata"]["source_id"] = Value::String(raw.to_string());
            }
            out["id"] = json!(id);
        }
        (None, Some(raw)) => out["id"] = json!(id_with("aime", raw)),
        (None, None) => {}
    }
    if let Some(s) = solution {
        out["solution"] = json!(s);
    }
    if let Some(url) = url {
        out["metadata"]["url"] = json!(url);
    }
    // Only the year is known: the last day of it, so that a cut-off never lets a contest of
    // that year through by assuming it was earlier than it was.
    let year = year
        .map(|y| y as i32)
        .or_else(|| named.as_ref().map(|p| p.year));
    if let Some(day) = year.and_then(|y| chrono::NaiveDate::from_ymd_opt(y, 12, 31)) {
        set_date(&mut out, day);
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
    fn answers_lose_leading_zeros_and_extra_fields_are_kept() {
        let p = import(
            ImportFormat::Aime,
            json!({"ID": "2024-I-1", "Problem": "Q?", "Answer": "033", "Part": "I"}),
        );
        assert_eq!(p.id.as_str(), "aime-2024-I-1");
        assert_eq!(p.to_row()["answer"], "33");
        assert_eq!(p.metadata.unwrap()["Part"], "I");
    }

    #[test]
    fn the_1983_2024_layout_is_dated_by_its_year() {
        let p = import(
            ImportFormat::Aime,
            json!({"ID": "1983-1", "Year": 1983, "Problem Number": 1, "Question": "Q?", "Answer": 60, "Part": null}),
        );
        assert_eq!(p.to_row()["answer"], "60");
        let meta = p.metadata.unwrap();
        assert_eq!(meta["date"], "1983-12-31");
        assert_eq!(meta["Problem Number"], 1);
    }

    #[test]
    fn a_row_whose_contest_accepted_two_answers_keeps_both() {
        let p = import(
            ImportFormat::Aime,
            json!({"ID": "2022-II-8", "Year": 2022, "Question": "Q?",
                   "Answer": "080 or 081 (both were accepted)", "Part": "II"}),
        );
        let row = p.to_row();
        assert_eq!(row["answer"], "80");
        assert_eq!(row["also_accepted"], json!(["81"]));
        assert_eq!(accepted_answers("80, 81"), Some(vec![80, 81]));
        assert_eq!(accepted_answers("80 or 80"), Some(vec![80]));
    }

    #[test]
    fn units_and_float_exports_are_read_as_the_integer() {
        assert_eq!(aime_integer("336^\\circ"), Some(336));
        assert_eq!(aime_integer("336^{\\circ}"), Some(336));
        assert_eq!(aime_integer("27.0"), Some(27));
        assert_eq!(aime_integer("1000"), None);
        assert_eq!(aime_integer("\\frac{1}{2}"), None);
        let p = import(
            ImportFormat::Aime,
            json!({"id": "2025_AIME_II_5", "problem": "Q?", "answer": "336^\\circ"}),
        );
        assert_eq!(p.id.as_str(), "aime-2025-II-5");
        assert_eq!(p.to_row()["answer"], "336");
        let meta = p.metadata.unwrap();
        assert_eq!(meta["source_id"], "2025_AIME_II_5");
        assert_eq!(meta["date"], "2025-12-31", "dated by the year its id names");
    }

    #[test]
    fn a_non_integer_answer_is_a_skip_with_its_reason() {
        assert_eq!(
            skipped(
                ImportFormat::Aime,
                json!({"ID": "1999-1", "Question": "Q?", "Answer": "\\frac{1}{2}"})
            ),
            "answer is not an AIME integer from 0 to 999"
        );
    }

    #[test]
    fn ai_mo_rows_take_year_paper_and_number_from_the_url() {
        let p = import(
            ImportFormat::Aime,
            json!({"id": 60, "problem": "Q?", "solution": "S", "answer": "204",
                "url": "https://artofproblemsolving.com/wiki/index.php/2024_AIME_I_Problems/Problem_1"}),
        );
        assert_eq!(p.id.as_str(), "aime-2024-I-1");
        let meta = p.metadata.unwrap();
        assert_eq!(meta["date"], "2024-12-31");
        assert_eq!(meta["source_id"], "60");
    }
}
