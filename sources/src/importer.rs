//! The import of whole files: rows streamed from each input (never loaded whole), mapped by
//! their layout's mapper, checked as `startctl validate` checks them, filtered by a date
//! cut-off, and handed on one at a time. Every row ends in exactly one of three counts:
//! imported, skipped (by reason), or an error reported at its place, so a summary always
//! accounts for the whole input. A quirk of one source row (a malformed field, an answer no
//! grader can read) is that row's error, never the import's: the caller decides whether any
//! invalid row fails the whole import (`startctl import --strict`). `startctl import` and the
//! import bench both run this.
//!
//! An input may be a directory: its files are imported in natural order (`2.json` before
//! `10.json`), as MATH's release ships one JSON file a problem; for the APPS format, each
//! problem folder of the original release (`train/2404/question.txt`, …) is one row.

use crate::import::{apps_folder, date_of, map_row, ImportFormat, Mapped, Skip};
use chrono::NaiveDate;
use start_schemas::problem::Problem;
use start_schemas::rows::{read_rows, Diagnostic, Location, ReadOptions};
use start_schemas::validate::check_row;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

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
    /// Inputs that could not be read at all (missing, empty, not the format they claim).
    pub unreadable: u64,
}

impl ImportSummary {
    fn skip(&mut self, reason: &str) {
        *self.skipped.entry(reason.to_string()).or_default() += 1;
    }

    /// Whether nothing came of a non-empty input: every row invalid, as when the input is
    /// not the format named, or an input unreadable. Such an import failed, whatever the
    /// rows' own quirks.
    pub fn failed(&self) -> bool {
        self.unreadable > 0 || (self.imported == 0 && self.bad_rows > 0)
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

/// A row that was read but not imported, for the import report.
#[derive(Clone, Debug, PartialEq)]
pub struct SkippedRow<'a> {
    /// Where the row is.
    pub location: &'a Location,
    /// The reason it is counted under.
    pub reason: &'a str,
    /// What in this row made it so, when the reason alone does not say.
    pub detail: Option<&'a str>,
}

/// Streams rows into problems across several files; one per import, so that ids and
/// duplicates are checked across all its inputs.
pub struct Importer {
    options: ImportOptions,
    read: ReadOptions,
    /// Where each id was first given.
    ids: HashMap<String, Location>,
    /// Content hashes seen, with where each was first.
    contents: HashMap<[u8; 32], Location>,
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
            contents: HashMap::new(),
            summary: ImportSummary::default(),
        }
    }

    /// Imports one input: every diagnostic goes to `report` as it is found, every problem to
    /// `accept`. An input that cannot be opened is one reported error.
    pub fn file(
        &mut self,
        path: &Path,
        report: &mut dyn FnMut(&Diagnostic),
        accept: &mut dyn FnMut(Problem),
    ) {
        self.input(path, report, &mut |_| {}, accept);
    }

    /// Imports one input (a file, or a directory of them), as [`Importer::file`], and hands
    /// every skipped row with its place and reason to `skipped`.
    pub fn input(
        &mut self,
        path: &Path,
        report: &mut dyn FnMut(&Diagnostic),
        skipped: &mut dyn FnMut(&SkippedRow),
        accept: &mut dyn FnMut(Problem),
    ) {
        if !path.is_dir() {
            return self.one_file(path, false, report, skipped, accept);
        }
        let mut found = false;
        for entry in walk(path, self.options.format == ImportFormat::Apps) {
            found = true;
            match entry {
                Entry::File(file) => self.one_file(&file, true, report, skipped, accept),
                Entry::AppsFolder(dir) => {
                    self.summary.rows += 1;
                    let location = Location::file(dir.display().to_string());
                    let row = apps_folder::row(&dir)
                        .map_err(|m| vec![Diagnostic::new(location.clone(), "(folder)", m)]);
                    self.row(row, &location, report, skipped, accept);
                }
            }
        }
        if !found {
            self.summary.unreadable += 1;
            self.summary.errors += 1;
            report(&Diagnostic::new(
                Location::file(path.display().to_string()),
                "(file)",
                "is a directory with no file start can import (JSONL, JSONL.gz, Parquet, CSV, JSON)",
            ));
        }
    }

    /// One file's rows. A file of a directory input that cannot be read is that directory's
    /// quirk, an invalid row (MATH ships a problem a file); a file named on its own that
    /// cannot be read fails the import.
    fn one_file(
        &mut self,
        path: &Path,
        in_directory: bool,
        report: &mut dyn FnMut(&Diagnostic),
        skipped: &mut dyn FnMut(&SkippedRow),
        accept: &mut dyn FnMut(Problem),
    ) {
        let rows = match read_rows(path, &self.read) {
            Ok(rows) => rows,
            Err(diag) => {
                if in_directory {
                    self.summary.rows += 1;
                    self.summary.bad_rows += 1;
                } else {
                    self.summary.unreadable += 1;
                }
                self.summary.errors += 1;
                report(&diag);
                return;
            }
        };
        for item in rows {
            self.summary.rows += 1;
            self.row(
                item.value.map_err(|d| vec![d]),
                &item.location,
                report,
                skipped,
                accept,
            );
        }
    }

    /// One row read (or that could not be read), to its one count.
    fn row(
        &mut self,
        value: Result<serde_json::Value, Vec<Diagnostic>>,
        location: &Location,
        report: &mut dyn FnMut(&Diagnostic),
        skipped: &mut dyn FnMut(&SkippedRow),
        accept: &mut dyn FnMut(Problem),
    ) {
        let result = value
            .and_then(|v| map_row(self.options.format, &v, location))
            .and_then(|mapped| self.admit(mapped, location));
        match result {
            Ok(Admitted::Problem(problem)) => {
                self.summary.imported += 1;
                accept(*problem);
            }
            Ok(Admitted::Skipped(skip)) => {
                self.summary.skip(skip.reason);
                skipped(&SkippedRow {
                    location,
                    reason: skip.reason,
                    detail: skip.detail.as_deref(),
                });
            }
            Err(diags) => {
                self.summary.bad_rows += 1;
                for diag in diags {
                    self.summary.errors += 1;
                    report(&diag);
                }
            }
        }
    }

    /// The cut-off, the check and the duplicate test for one mapped row.
    fn admit(&mut self, mapped: Mapped, location: &Location) -> Result<Admitted, Vec<Diagnostic>> {
        let skip = |reason: &'static str| {
            Ok(Admitted::Skipped(Skip {
                reason,
                detail: None,
            }))
        };
        let row = match mapped {
            Mapped::Skipped(skip) => return Ok(Admitted::Skipped(skip)),
            Mapped::Problem(row) => row,
        };
        if let Some(before) = self.options.before {
            let day = date_of(&row).and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
            match day {
                None => return skip(UNDATED),
                Some(day) if day >= before => return skip(AFTER_CUTOFF),
                Some(_) => {}
            }
        }
        let problem = check_row(&row, location)?;
        let content = problem.content_sha256();
        if let Some(first) = self.contents.get(&content) {
            return Ok(Admitted::Skipped(Skip {
                reason: DUPLICATE,
                detail: Some(format!("repeats the row at {first}")),
            }));
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
        self.contents.insert(content, location.clone());
        Ok(Admitted::Problem(Box::new(problem)))
    }
}

/// What a mapped row became after the cut-off, the check and the duplicate test.
enum Admitted {
    Problem(Box<Problem>),
    Skipped(Skip),
}

/// One thing a directory input holds.
enum Entry {
    /// A file of rows.
    File(PathBuf),
    /// A problem folder of the original APPS release.
    AppsFolder(PathBuf),
}

/// How deep a directory input is searched (APPS: `APPS/train/0001/`).
const MAX_DEPTH: usize = 4;

/// The importable files under `dir` in natural order; with `apps`, problem folders as
/// single entries (their own files are not rows).
fn walk(dir: &Path, apps: bool) -> Vec<Entry> {
    fn visit(dir: &Path, apps: bool, depth: usize, out: &mut Vec<Entry>) {
        if apps && apps_folder::is_problem_folder(dir) {
            out.push(Entry::AppsFolder(dir.to_path_buf()));
            return;
        }
        let Ok(read) = std::fs::read_dir(dir) else {
            return;
        };
        let mut children: Vec<PathBuf> = read.filter_map(|e| e.ok().map(|e| e.path())).collect();
        children.sort_by_cached_key(|p| natural_key(p));
        for child in children {
            if child.is_dir() {
                if depth < MAX_DEPTH {
                    visit(&child, apps, depth + 1, out);
                }
            } else if !apps && importable(&child) {
                out.push(Entry::File(child));
            }
        }
    }
    let mut out = Vec::new();
    visit(dir, apps, 0, &mut out);
    out
}

/// Whether a file's name says it holds rows start reads.
fn importable(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    [
        ".jsonl",
        ".jsonl.gz",
        ".json",
        ".json.gz",
        ".parquet",
        ".csv",
        ".ndjson",
    ]
    .iter()
    .any(|ext| name.ends_with(ext))
}

/// A name split into text and numbers, so that `2.json` sorts before `10.json`.
fn natural_key(path: &Path) -> Vec<(String, u64)> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut text = String::new();
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            let mut digits = c.to_string();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(*d);
                chars.next();
            }
            out.push((
                std::mem::take(&mut text),
                digits.parse().unwrap_or(u64::MAX),
            ));
        } else {
            text.push(c);
        }
    }
    out.push((text, 0));
    out
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
    fn a_broken_file_in_a_directory_is_an_invalid_row_not_a_failed_import() {
        let dir = tempfile::tempdir().unwrap();
        let good = r#"{"problem": "Q", "solution": "so \\boxed{2}."}"#;
        std::fs::write(dir.path().join("2.json"), good).unwrap();
        std::fs::write(dir.path().join("10.json"), "").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a row").unwrap();
        let mut importer = Importer::new(ImportOptions {
            format: ImportFormat::Math,
            before: None,
        });
        let (mut diags, mut problems) = (Vec::new(), Vec::new());
        importer.file(dir.path(), &mut |d| diags.push(d.to_string()), &mut |p| {
            problems.push(p)
        });
        let s = &importer.summary;
        assert_eq!((s.rows, s.imported, s.bad_rows, s.unreadable), (2, 1, 1, 0));
        assert!(!s.failed());
        assert!(diags[0].contains("10.json"), "{diags:?}");
        let empty = tempfile::tempdir().unwrap();
        let mut importer = Importer::new(ImportOptions {
            format: ImportFormat::Math,
            before: None,
        });
        importer.file(empty.path(), &mut |_| {}, &mut |_| {});
        assert!(
            importer.summary.failed(),
            "a directory with nothing to import"
        );
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
