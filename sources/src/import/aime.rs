//! AIME sets: the AoPS-derived 1983–2024 CSV (`ID`, `Year`, `Problem Number`, `Part`,
//! `Question`, `Answer`) and the per-year sets (`id`, `problem`, `answer`, `solution`, `year`).

use super::{id_with, set_date, Mapped, Source};
use serde_json::json;

pub(super) fn map(src: &mut Source) -> Option<Mapped> {
    let id = src.text(&["id", "ID", "problem_id"]);
    let question = src.required(&["problem", "Problem", "Question", "question"]);
    let answer = src.required(&["answer", "Answer"]);
    let solution = src.text(&["solution", "Solution"]);
    let year = src.number(&["Year", "year"]);
    let (question, answer) = (question?, answer?);
    // AIME answers are printed with leading zeros (e.g. "033"); the value is the integer.
    let answer = match answer.trim().parse::<u32>() {
        Ok(n) => n.to_string(),
        Err(_) => answer,
    };
    let mut out = json!({"source": "aime", "kind": "math", "question": question, "answer": answer});
    if let Some(id) = id {
        out["id"] = json!(id_with("aime", &id));
    }
    if let Some(s) = solution {
        out["solution"] = json!(s);
    }
    // Only the year is known: the last day of it, so that a cut-off never lets a contest of
    // that year through by assuming it was earlier than it was.
    if let Some(day) = year.and_then(|y| chrono::NaiveDate::from_ymd_opt(y as i32, 12, 31)) {
        set_date(&mut out, day);
    }
    Some(Mapped::Problem(out))
}

#[cfg(test)]
mod tests {
    use super::super::testing::import;
    use super::super::ImportFormat;
    use serde_json::json;

    #[test]
    fn answers_lose_leading_zeros_and_extra_fields_are_kept() {
        let p = import(
            ImportFormat::Aime,
            json!({"ID": "2024-I-1", "Problem": "Q?", "Answer": "033", "url": "u"}),
        );
        assert_eq!(p.id.as_str(), "aime-2024-I-1");
        assert_eq!(p.to_row()["answer"], "33");
        assert_eq!(p.metadata.unwrap()["url"], "u");
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
}
