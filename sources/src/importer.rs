//! The import of whole files: rows streamed from each input (never loaded whole), mapped by
//! their layout's mapper, checked as `startctl validate` checks them, filtered by a date
//! cut-off, and handed on one at a time. Every row ends in exactly one of three counts:
//! imported, skipped (by reason), or an error reported at its place, so a summary always
//! accounts for the whole input. `startctl import` and the import bench both run this.

use crate::import::{date_of, map_row, ImportFormat, Mapped};
use chrono::NaiveDate;
use start_schemas::problem::Problem;
use start_schemas::rows::{read_rows, Diagnostic, Location, ReadOptions};
use start_schemas::validate::check_row;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// What to import and how.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The inputs' layout.
    pub format: ImportFormat,
    /// Keep only problems dated strictly before this day; undated problems are skipped then,
    /// since nothing shows they predate the cut-off.
    pub before: Option<NaiveDate>,
}

/// What an import did, row by row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportSummary {
    /// Rows read, whatever became of them.
    pub rows: u64,
    /// Problems handed on.
    pub imported: u64,
    /// Rows skipped, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Diagnostics reported (a row may have several).
    pub errors: u64,
    /// Rows with at least one error.
    pub bad_rows: u64,
}

impl ImportSummary {
    fn skip(&mut self, reason: &str) {
        *self.skipped.entry(reason.to_string()).or_default() += 1;
    }

    /// Rows skipped, all reasons together.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
}

/// Skip reasons the importer adds to the mappers' own.
pub const UNDATED: &str = "undated (a --before cut-off needs a date)";
/// See [`UNDATED`].
pub const AFTER_CUTOFF: &str = "dated on or after the --before cut-off";
/// See [`UNDATED`].
pub const DUPLICATE: &str = "exact duplicate of an earlier row";

/// Streams rows into problems across several files; one per import, so that ids and
/// duplicates are checked across all its inputs.
pub struct Importer {
    options: ImportOptions,
    read: ReadOptions,
    /// Where each id was first given.
    ids: HashMap<String, Location>,
    /// Content hashes seen.
    contents: HashSet<[u8; 32]>,
    /// The counts so far.
    pub summary: ImportSummary,
}

impl Importer {
    /// An importer with nothing read yet.
    pub fn new(options: ImportOptions) -> Self {
        Self {
            options,
            read: ReadOptions {
                import_layouts: true,
                ..ReadOptions::default()
            },
            ids: HashMap::new(),
            contents: HashSet::new(),
            summary: ImportSummary::default(),
        }
    }

    /// Imports one file: every diagnostic goes to `report` as it is found, every problem to
    /// `accept`. A file that cannot be opened is one reported error.
    pub fn file(
        &mut self,
        path: &Path,
        report: &mut dyn FnMut(&Diagnostic),
        accept: &mut dyn FnMut(Problem),
    ) {
        let rows = match read_rows(path, &self.read) {
            Ok(rows) => rows,
            Err(diag) => {
                self.summary.errors += 1;
                report(&diag);
                return;
            }
        };
        for item in rows {
            self.summary.rows += 1;
            let result = item
                .value
                .map_err(|d| vec![d])
                .and_then(|v| map_row(self.options.format, &v, &item.location))
                .and_then(|mapped| self.admit(mapped, &item.location));
            match result {
                Ok(Some(problem)) => {
                    self.summary.imported += 1;
                    accept(problem);
                }
                Ok(None) => {}
                Err(diags) => {
                    self.summary.bad_rows += 1;
                    for diag in diags {
                        self.summary.errors += 1;
                        report(&diag);
                    }
                }
            }
        }
    }

    /// The cut-off, the check and the duplicate test for one mapped row.
    fn admit(
        &mut self,
        mapped: Mapped,
        location: &Location,
    ) -> Result<Option<Problem>, Vec<Diagnostic>> {
        let row = match mapped {
            Mapped::Skipped(reason) => {
                self.summary.skip(reason);
                return Ok(None);
            }
            Mapped::Problem(row) => row,
        };
        if let Some(before) = self.options.before {
            let day = date_of(&row).and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
            match day {
                None => {
                    self.summary.skip(UNDATED);
                    return Ok(None);
                }
                Some(day) if day >= before => {
                    self.summary.skip(AFTER_CUTOFF);
                    return Ok(None);
                }
                Some(_) => {}
            }
        }
        let problem = check_row(&row, location)?;
        let content = problem.content_sha256();
        if self.contents.contains(&content) {
            self.summary.skip(DUPLICATE);
            return Ok(None);
        }
        if let Some(first) = self.ids.get(problem.id.as_str()) {
            return Err(vec![Diagnostic::new(
                location.clone(),
                "id",
                format!(
                    "{:?} was first given to a different problem at {first}",
                    problem.id.as_str()
                ),
            )]);
        }
        self.ids
            .insert(problem.id.as_str().to_string(), location.clone());
        self.contents.insert(content);
        Ok(Some(problem))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(lines: &[&str]) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new()
            .suffix(".jsonl")
            .tempfile()
            .unwrap();
        for l in lines {
            writeln!(f, "{l}").unwrap();
        }
        f
    }

    fn run(
        options: ImportOptions,
        f: &tempfile::NamedTempFile,
    ) -> (ImportSummary, Vec<String>, Vec<Problem>) {
        let mut importer = Importer::new(options);
        let (mut diags, mut problems) = (Vec::new(), Vec::new());
        importer.file(f.path(), &mut |d| diags.push(d.to_string()), &mut |p| {
            problems.push(p)
        });
        (importer.summary, diags, problems)
    }

    #[test]
    fn every_row_is_imported_skipped_or_an_error_at_its_line() {
        let f = file(&[
            r#"{"question_id": "a", "question_content": "Q1", "contest_date": "2023-05-01T00:00:00", "public_test_cases": "[{\"input\": \"1\", \"output\": \"1\", \"testtype\": \"stdin\"}]"}"#,
            r#"{"question_id": "b", "question_content": "Q2", "contest_date": "2024-09-01T00:00:00", "public_test_cases": "[{\"input\": \"2\", \"output\": \"2\", \"testtype\": \"stdin\"}]"}"#,
            r#"{"question_id": "c", "question_content": "Q3", "public_test_cases": "[{\"input\": \"3\", \"output\": \"3\", \"testtype\": \"stdin\"}]"}"#,
            r#"{"question_id": "d", "question_content": "Q4", "public_test_cases": "not json"}"#,
            r#"{"question_id": "e", "question_content": "Q1", "contest_date": "2023-05-01T00:00:00", "public_test_cases": "[{\"input\": \"1\", \"output\": \"1\", \"testtype\": \"stdin\"}]"}"#,
            "{not json",
        ]);
        let options = ImportOptions {
            format: ImportFormat::Livecodebench,
            before: NaiveDate::from_ymd_opt(2024, 1, 1),
        };
        let (summary, diags, problems) = run(options, &f);
        assert_eq!(problems.len(), 1, "e repeats a's problem under another id");
        assert_eq!(summary.skipped[DUPLICATE], 1);
        assert_eq!(summary.rows, 6);
        assert_eq!(summary.skipped[AFTER_CUTOFF], 1);
        assert_eq!(summary.skipped[UNDATED], 1);
        assert_eq!(summary.bad_rows, 2);
        assert_eq!(
            summary.imported + summary.skipped_total() + summary.bad_rows,
            summary.rows
        );
        assert!(diags[0].contains(":4: public_test_cases:"), "{diags:?}");
        assert!(diags[1].contains(":6:"), "{diags:?}");
    }

    #[test]
    fn exact_duplicates_are_skipped_and_a_reused_id_is_an_error() {
        let row = r#"{"ID": "1983-1", "Question": "Q?", "Answer": "7"}"#;
        let other = r#"{"ID": "1983-1", "Question": "Another?", "Answer": "8"}"#;
        let f = file(&[row, row, other]);
        let options = ImportOptions {
            format: ImportFormat::Aime,
            before: None,
        };
        let (summary, diags, problems) = run(options, &f);
        assert_eq!(problems.len(), 1);
        assert_eq!(summary.skipped[DUPLICATE], 1);
        assert_eq!(diags.len(), 1);
        assert!(diags[0].contains(":3: id:"), "{diags:?}");
    }
}
