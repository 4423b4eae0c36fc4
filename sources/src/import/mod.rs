//! Maps the public layouts of the problem sets START drew on onto start's problem row.
//!
//! Each mapper takes one source row (already read by [`start_schemas::rows`], so JSONL, gzip,
//! Parquet, CSV and JSON documents all work) and returns a problem row, a skip with its reason,
//! or the row's errors at its place. The caller checks a returned row with
//! [`start_schemas::validate`] like any input, so an importer can never emit a row that
//! `startctl validate` would refuse. Fields a mapper does not use are kept under `metadata`,
//! apart from bulky model outputs a source ships beside its problems. Where the source dates its
//! problems, `metadata.date` holds the day (`YYYY-MM-DD`) so that a cut-off can be applied.
//! schemas/README.md documents every mapping.

mod aime;
mod aops;
mod apps;
mod codecontests;
mod codeforces;
mod gpqa;
mod humaneval;
mod livecodebench;
mod math;
mod numina;
mod python;
mod source;

/// The original APPS release's problem folders (`train/2404/question.txt`, …), read as rows.
pub(crate) mod apps_folder {
    pub(crate) use super::apps::{folder_row as row, is_problem_folder};
}

use serde_json::Value;
use source::Source;
use start_schemas::rows::{json_type_name, Diagnostic, Location};
use std::fmt;
use std::str::FromStr;

/// A public layout `startctl import` understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportFormat {
    /// AIME sets (`problem`/`Problem`/`Question`, `answer`/`Answer`, optional `id`/`ID`, `Year`).
    Aime,
    /// Hendrycks MATH and MATH-500 (`problem`, `solution`, optional `answer`, `level`, `type`).
    Math,
    /// NuminaMath-CoT and NuminaMath-1.5 (`source`, `problem`, `solution`, 1.5's `answer`,
    /// `problem_type`, `question_type`).
    Numina,
    /// The GPQA CSV (`Question`, `Correct Answer`, `Incorrect Answer 1..3`, `Record ID`).
    GpqaCsv,
    /// OpenAI HumanEval (`task_id`, `prompt`, `canonical_solution`, `test`, `entry_point`).
    Humaneval,
    /// LiveCodeBench code generation (`question_id`, `question_content`, `public_test_cases`,
    /// `private_test_cases`, `contest_date`, ...).
    Livecodebench,
    /// DeepMind CodeContests (`name`, `description`, `public_tests`, `private_tests`,
    /// `generated_tests`, `solutions`, `time_limit`, `memory_limit_bytes`, ...).
    Codecontests,
    /// open-r1's Codeforces (`id`, `title`, `description`, `examples`, `official_tests`,
    /// `generated_checker`, `contest_start`, ...).
    Codeforces,
    /// APPS and TACO (`question`, `input_output` as JSON text, `solutions`, `starter_code`).
    Apps,
}

impl ImportFormat {
    /// Every format with its command-line name.
    pub const ALL: [(&'static str, ImportFormat); 9] = [
        ("aime", Self::Aime),
        ("math", Self::Math),
        ("numina", Self::Numina),
        ("gpqa-csv", Self::GpqaCsv),
        ("humaneval", Self::Humaneval),
        ("livecodebench", Self::Livecodebench),
        ("codecontests", Self::Codecontests),
        ("codeforces", Self::Codeforces),
        ("apps", Self::Apps),
    ];
}

impl FromStr for ImportFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|(n, _)| *n).collect();
                format!("unknown format {s:?}; expected one of {}", names.join(", "))
            })
    }
}

impl fmt::Display for ImportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Self::ALL.iter().find(|(_, x)| x == self).map(|(n, _)| *n);
        f.write_str(name.unwrap_or("?"))
    }
}

/// What one source row becomes.
#[derive(Clone, Debug, PartialEq)]
pub enum Mapped {
    /// A problem row, to be checked like any input.
    Problem(Value),
    /// A row that start cannot use as a problem (a proof, an interactive task, a choice
    /// problem whose options repeat), counted by reason in the import summary and listed with
    /// its place in the import report.
    Skipped(Skip),
}

/// Why a row was skipped.
#[derive(Clone, Debug, PartialEq)]
pub struct Skip {
    /// The reason, one of a fixed set per format, so that the summary counts by it.
    pub reason: &'static str,
    /// What in this row made it so (which options repeat), for the report.
    pub detail: Option<String>,
}

impl Mapped {
    /// A skip for `reason`.
    pub fn skip(reason: &'static str) -> Self {
        Self::Skipped(Skip {
            reason,
            detail: None,
        })
    }

    /// A skip for `reason`, with what in the row made it so.
    pub fn skip_with(reason: &'static str, detail: impl Into<String>) -> Self {
        Self::Skipped(Skip {
            reason,
            detail: Some(detail.into()),
        })
    }
}

/// Maps one source row of `format`.
pub fn map_row(
    format: ImportFormat,
    row: &Value,
    location: &Location,
) -> Result<Mapped, Vec<Diagnostic>> {
    let Some(obj) = row.as_object() else {
        return Err(vec![Diagnostic::new(
            location.clone(),
            "(row)",
            format!("expected an object, got {}", json_type_name(row)),
        )]);
    };
    let mut src = Source::new(obj, location);
    let out = match format {
        ImportFormat::Aime => aime::map(&mut src),
        ImportFormat::Math => math::map(&mut src),
        ImportFormat::Numina => numina::map(&mut src),
        ImportFormat::GpqaCsv => gpqa::map(&mut src),
        ImportFormat::Humaneval => humaneval::map(&mut src),
        ImportFormat::Livecodebench => livecodebench::map(&mut src),
        ImportFormat::Codecontests => codecontests::map(&mut src),
        ImportFormat::Codeforces => codeforces::map(&mut src),
        ImportFormat::Apps => apps::map(&mut src),
    };
    match out {
        Some(Mapped::Skipped(skip)) if src.errors.is_empty() => Ok(Mapped::Skipped(skip)),
        Some(Mapped::Problem(mut out)) if src.errors.is_empty() => {
            let rest = src.rest();
            if !rest.is_empty() {
                let meta = out
                    .as_object_mut()
                    .expect("mappers build objects")
                    .entry("metadata")
                    .or_insert_with(|| Value::Object(Default::default()));
                let meta = meta.as_object_mut().expect("metadata is an object");
                for (k, v) in rest {
                    meta.entry(k).or_insert(v);
                }
            }
            Ok(Mapped::Problem(out))
        }
        _ => Err(src.errors),
    }
}

/// The day a mapped problem is dated, from `metadata.date`.
pub fn date_of(problem: &Value) -> Option<&str> {
    problem.get("metadata")?.get("date")?.as_str()
}

/// Sets `metadata.date` of a mapped row.
pub(crate) fn set_date(out: &mut Value, day: chrono::NaiveDate) {
    out["metadata"]["date"] = Value::String(day.format("%Y-%m-%d").to_string());
}

/// The day of a timestamp as sources write them: RFC 3339 or ISO with or without a time
/// (`2023-08-21T00:00:00`), a bare day, or Unix seconds.
pub(crate) fn parse_day(v: &Value) -> Option<chrono::NaiveDate> {
    match v {
        Value::Number(n) => {
            chrono::DateTime::from_timestamp(n.as_i64()?, 0).map(|t| t.date_naive())
        }
        Value::String(s) => {
            let s = s.trim();
            let day = s.get(..10).unwrap_or(s);
            chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()
        }
        _ => None,
    }
}

/// A source tag made of lower-case letters, digits, '_', '-' and '.', as the problem row needs.
pub(crate) fn source_tag(prefix: &str, raw: &str) -> String {
    let raw: String = raw
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if raw.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}-{raw}")
    }
}

/// An id made safe for the problem row (no whitespace), with its source's prefix.
pub(crate) fn id_with(prefix: &str, raw: &str) -> String {
    format!(
        "{prefix}-{}",
        raw.trim().replace(|c: char| c.is_whitespace(), "_")
    )
}

/// The note every stdin/stdout problem ends with, so the model knows how it is run.
pub(crate) const STDIO_NOTE: &str =
    "\n\nRead the input from standard input and write the answer to standard output.";

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use start_schemas::problem::Problem;
    use start_schemas::rows::Position;
    use start_schemas::validate::check_row;

    pub(crate) fn loc() -> Location {
        Location {
            file: "in.jsonl".into(),
            at: Position::Line(3),
        }
    }

    /// Maps and validates a row that must become a problem.
    pub(crate) fn import(format: ImportFormat, row: Value) -> Problem {
        match map_row(format, &row, &loc()).expect("maps") {
            Mapped::Problem(v) => check_row(&v, &loc()).expect("valid problem"),
            Mapped::Skipped(r) => panic!("skipped: {r:?}"),
        }
    }

    /// Maps a row that must be skipped, returning the reason.
    pub(crate) fn skipped(format: ImportFormat, row: Value) -> &'static str {
        match map_row(format, &row, &loc()).expect("maps") {
            Mapped::Skipped(r) => r.reason,
            Mapped::Problem(v) => panic!("not skipped: {v}"),
        }
    }

    /// Maps a row that must fail, returning the fields named.
    pub(crate) fn failed(format: ImportFormat, row: Value) -> Vec<String> {
        map_row(format, &row, &loc())
            .expect_err("must fail")
            .into_iter()
            .map(|d| d.field)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn days_are_read_from_each_form_sources_use() {
        let day = |v: Value| parse_day(&v).map(|d| d.to_string());
        assert_eq!(day(json!("2023-08-21T00:00:00")).unwrap(), "2023-08-21");
        assert_eq!(day(json!("2024-02-01")).unwrap(), "2024-02-01");
        assert_eq!(day(json!(1_334_934_300)).unwrap(), "2012-04-20");
        assert_eq!(day(json!("August")), None);
    }

    #[test]
    fn source_tags_are_made_valid() {
        assert_eq!(source_tag("numina", "cn_k12"), "numina-cn_k12");
        assert_eq!(
            source_tag("numina", "Olympiads Ref"),
            "numina-olympiads_ref"
        );
        assert_eq!(source_tag("numina", ""), "numina");
    }
}
