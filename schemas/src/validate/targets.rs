//! The targets of math, multiple-choice and judge rows: answers, accepted alternatives, choices.

use super::*;

pub(super) fn check_math(
    c: &mut RowCheck,
    obj: &Map<String, Value>,
    source: Option<&str>,
) -> Option<Target> {
    c.forbid(obj, "choices", ProblemKind::Math);
    c.forbid(obj, "tests", ProblemKind::Math);
    let answer = c.required_string(obj, "answer")?;
    let also_accepted = match RowCheck::get(obj, ALSO_ACCEPTED) {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            // (index in the row, answer) of each accepted so far.
            let mut seen: Vec<(usize, String)> = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let field = format!("{ALSO_ACCEPTED}[{i}]");
                let Some(s) = c.string(item, &field, true) else {
                    continue;
                };
                let norm = normalise_whitespace(&s);
                if norm == normalise_whitespace(&answer) {
                    c.error(&field, "repeats the answer");
                } else if let Some((first, _)) =
                    seen.iter().find(|(_, o)| normalise_whitespace(o) == norm)
                {
                    c.error(&field, format!("repeats {ALSO_ACCEPTED}[{first}]"));
                } else {
                    seen.push((i, s));
                }
            }
            let out: Vec<String> = seen.into_iter().map(|(_, s)| s).collect();
            if items.len() > MAX_ALSO_ACCEPTED {
                c.error(
                    ALSO_ACCEPTED,
                    format!(
                        "has {} answers; at most {MAX_ALSO_ACCEPTED} are accepted besides the answer",
                        items.len()
                    ),
                );
            }
            out
        }
        Some(other) => {
            c.error(
                ALSO_ACCEPTED,
                format!(
                    "expected an array of strings, got {}",
                    json_type_name(other)
                ),
            );
            Vec::new()
        }
    };
    if source.is_some_and(|s| s == "aime" || s.starts_with("aime-") || s.starts_with("aime_")) {
        let aime = |t: &str| {
            let t = t.trim();
            !t.is_empty() && t.len() <= 3 && t.bytes().all(|b| b.is_ascii_digit())
        };
        if !aime(&answer) {
            c.error(
                "answer",
                format!("AIME answers are integers from 0 to 999, got {answer:?}"),
            );
            return None;
        }
        for (i, a) in also_accepted.iter().enumerate() {
            if !aime(a) {
                c.error(
                    &format!("{ALSO_ACCEPTED}[{i}]"),
                    format!("AIME answers are integers from 0 to 999, got {a:?}"),
                );
                return None;
            }
        }
    }
    Some(Target::Math {
        answer,
        also_accepted,
    })
}

pub(super) fn check_choice(c: &mut RowCheck, obj: &Map<String, Value>) -> Option<Target> {
    c.forbid(obj, "tests", ProblemKind::Choice);
    c.forbid(obj, ALSO_ACCEPTED, ProblemKind::Choice);
    let choices = match RowCheck::get(obj, "choices") {
        None => {
            c.error("choices", "missing; choice problems need 2 to 10 options");
            None
        }
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                if let Some(s) = c.string(item, &format!("choices[{i}]"), true) {
                    if let Some(first) = out
                        .iter()
                        .position(|o: &String| normalise_whitespace(o) == normalise_whitespace(&s))
                    {
                        c.error(
                            &format!("choices[{i}]"),
                            format!("repeats choices[{first}]"),
                        );
                    }
                    out.push(s);
                }
            }
            if !(MIN_CHOICES..=MAX_CHOICES).contains(&items.len()) {
                c.error(
                    "choices",
                    format!(
                        "has {} options; expected {MIN_CHOICES} to {MAX_CHOICES}",
                        items.len()
                    ),
                );
                None
            } else if out.len() == items.len() {
                Some(out)
            } else {
                None
            }
        }
        Some(other) => {
            c.error(
                "choices",
                format!(
                    "expected an array of strings, got {}",
                    json_type_name(other)
                ),
            );
            None
        }
    };
    let n = choices.as_ref().map(Vec::len);
    let answer_index = match RowCheck::get(obj, "answer") {
        None => {
            c.error(
                "answer",
                "missing; give the letter (\"B\") or the zero-based index",
            );
            None
        }
        Some(Value::String(s)) => {
            let t = s.trim().trim_start_matches('(').trim_end_matches(')');
            let mut chars = t.chars();
            match (chars.next(), chars.next()) {
                (Some(ch), None) if ch.is_ascii_alphabetic() => {
                    Some((ch.to_ascii_uppercase() as u8 - b'A') as usize)
                }
                _ => {
                    c.error(
                        "answer",
                        format!("{s:?} is not an option letter; expected A to J"),
                    );
                    None
                }
            }
        }
        Some(Value::Number(num)) => match num.as_u64() {
            Some(i) => Some(i as usize),
            None => {
                c.error(
                    "answer",
                    format!("{num} is not an option index; expected a whole number from 0"),
                );
                None
            }
        },
        Some(other) => {
            c.error(
                "answer",
                format!(
                    "expected a letter or an index, got {}",
                    json_type_name(other)
                ),
            );
            None
        }
    };
    if let (Some(i), Some(n)) = (answer_index, n) {
        if i >= n {
            c.error(
                "answer",
                format!(
                    "points at option {} ({}), but there are only {n} choices",
                    crate::problem::choice_letter(i.min(25)),
                    i
                ),
            );
            return None;
        }
    }
    Some(Target::Choice {
        choices: choices?,
        answer_index: answer_index?,
    })
}

/// A judge prompt has no target: its question is the whole prompt and its response a verdict.
pub(super) fn check_judge(c: &mut RowCheck, obj: &Map<String, Value>) -> Option<Target> {
    for key in ["answer", "choices", "tests", ALSO_ACCEPTED, "files"] {
        c.forbid(obj, key, ProblemKind::Judge);
    }
    Some(Target::Judge)
}
