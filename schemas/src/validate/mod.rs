//! Checks problem rows and files, reporting every error at its exact place.
//!
//! [`check_row`] turns one JSON row into a [`Problem`] or a list of [`Diagnostic`]s, one per
//! wrong field, so a user fixes a file in one pass instead of one error at a time. [`Checker`]
//! runs it over whole files as streams and adds what only a whole view shows: duplicate ids and
//! duplicate content across every file checked.
//!
//! One format's rules, by part of the row: the row and its common fields here, the attached
//! files in [`files`], each kind's target (math, choice) in [`targets`], a code problem's tests
//! in [`code`]; the file-level rules ([`Checker`]) here.

use crate::attachment::{self, Attachment, AttachmentRoot};
use crate::ids::ProblemId;
use crate::problem::{
    normalise_whitespace, CallExample, CodeTests, Judge, Problem, ProblemKind, StdioCase, Target,
    TestStyle, DEFAULT_FLOAT_TOLERANCE,
};
use crate::rows::{json_type_name, read_rows, Diagnostic, Location, ReadOptions};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

mod code;
mod files;
mod targets;

use code::check_code;
use files::check_files;
use targets::{check_choice, check_judge, check_math};

/// Top-level fields a problem row may have.
pub const ROW_FIELDS: [&str; 10] = [
    "id",
    "source",
    "kind",
    "question",
    "answer",
    "also_accepted",
    "choices",
    "tests",
    "solution",
    "files",
];
const METADATA: &str = "metadata";
/// Math: other answers the source accepts as correct (an AIME problem whose contest accepted
/// two answers).
const ALSO_ACCEPTED: &str = "also_accepted";
/// At most this many answers besides the answer.
const MAX_ALSO_ACCEPTED: usize = 16;

/// Bounds that keep rows sane.
const MAX_ID_BYTES: usize = 256;
const MAX_SOURCE_BYTES: usize = 64;
const MIN_CHOICES: usize = 2;
const MAX_CHOICES: usize = 10;
const MAX_TIME_LIMIT_S: f64 = 600.0;
const MEMORY_LIMIT_MB: std::ops::RangeInclusive<u64> = 16..=65536;

/// Collects the diagnostics of one row.
struct RowCheck<'a> {
    location: &'a Location,
    errors: Vec<Diagnostic>,
}

impl RowCheck<'_> {
    fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors
            .push(Diagnostic::new(self.location.clone(), field, message));
    }

    /// A present, non-null field of the row; nulls count as absent (Parquet files with a
    /// union of columns hold nulls for the fields another kind uses).
    fn get<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
        obj.get(key).filter(|v| !v.is_null())
    }

    fn string(&mut self, v: &Value, field: &str, non_empty: bool) -> Option<String> {
        match v {
            Value::String(s) if non_empty && s.trim().is_empty() => {
                self.error(field, "must not be empty");
                None
            }
            Value::String(s) => Some(s.clone()),
            other => {
                self.error(
                    field,
                    format!("expected a string, got {}", json_type_name(other)),
                );
                None
            }
        }
    }

    fn required_string(&mut self, obj: &Map<String, Value>, key: &str) -> Option<String> {
        match Self::get(obj, key) {
            Some(v) => self.string(v, key, true),
            None => {
                self.error(key, "missing; this field is required");
                None
            }
        }
    }

    fn forbid(&mut self, obj: &Map<String, Value>, key: &str, kind: ProblemKind) {
        if Self::get(obj, key).is_some() {
            self.error(key, format!("not allowed for kind {kind}"));
        }
    }

    fn unknown_fields(&mut self, obj: &Map<String, Value>, allowed: &[&str], prefix: &str) {
        for key in obj.keys() {
            if !allowed.contains(&key.as_str()) {
                self.error(
                    &format!("{prefix}{key}"),
                    format!("unknown field; expected one of: {}", allowed.join(", ")),
                );
            }
        }
    }
}

/// Checks one row and builds the problem, or returns every error found in it.
pub fn check_row(value: &Value, location: &Location) -> Result<Problem, Vec<Diagnostic>> {
    let mut c = RowCheck {
        location,
        errors: Vec::new(),
    };
    let Some(obj) = value.as_object() else {
        c.error(
            "(row)",
            format!("expected a JSON object, got {}", json_type_name(value)),
        );
        return Err(c.errors);
    };
    let mut allowed = ROW_FIELDS.to_vec();
    allowed.push(METADATA);
    c.unknown_fields(obj, &allowed, "");

    let id = RowCheck::get(obj, "id").and_then(|v| {
        let id = c.string(v, "id", true)?;
        if id.len() > MAX_ID_BYTES {
            c.error("id", format!("is {} bytes, over {MAX_ID_BYTES}", id.len()));
            None
        } else if id.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
            c.error("id", "must not contain whitespace or control characters");
            None
        } else {
            Some(id)
        }
    });
    let source = c.required_string(obj, "source").and_then(|s| {
        let ok = s.len() <= MAX_SOURCE_BYTES
            && s.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
            && s.chars().all(|ch| {
                ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '_' | '-' | '.')
            });
        if ok {
            Some(s)
        } else {
            c.error(
                "source",
                format!(
                    "{s:?} is not a source name: use lower-case letters, digits, '_', '-' or '.', \
                     at most {MAX_SOURCE_BYTES} bytes (e.g. aime, math, gpqa, livecodebench)"
                ),
            );
            None
        }
    });
    let kind = c
        .required_string(obj, "kind")
        .and_then(|k| match k.parse::<ProblemKind>() {
            Ok(kind) => Some(kind),
            Err(e) => {
                c.error("kind", e);
                None
            }
        });
    let question = c.required_string(obj, "question");
    let solution = RowCheck::get(obj, "solution").and_then(|v| c.string(v, "solution", false));
    let metadata = match RowCheck::get(obj, METADATA) {
        None => None,
        Some(Value::Object(m)) => Some(m.clone()),
        Some(other) => {
            c.error(
                METADATA,
                format!("expected an object, got {}", json_type_name(other)),
            );
            None
        }
    };

    let files = check_files(&mut c, obj);
    let target = match kind {
        Some(ProblemKind::Math) => check_math(&mut c, obj, source.as_deref()),
        Some(ProblemKind::Choice) => check_choice(&mut c, obj),
        Some(ProblemKind::Code) => check_code(&mut c, obj),
        Some(ProblemKind::Judge) => check_judge(&mut c, obj),
        None => None,
    };

    match (source, question, target, files) {
        (Some(source), Some(question), Some(target), Some(files)) if c.errors.is_empty() => {
            let mut problem = Problem {
                id: ProblemId::new(""),
                source,
                question,
                target,
                solution,
                metadata,
                files,
            };
            problem.id =
                ProblemId::new(id.unwrap_or_else(|| hex::encode(problem.content_sha256())));
            Ok(problem)
        }
        _ => Err(c.errors),
    }
}

/// Counts and cross-row checks over any number of files.
#[derive(Default)]
pub struct Checker {
    /// Row-reading limits.
    pub options: ReadOptions,
    /// Where the attached files of the rows given to [`Checker::check_value`] are read from;
    /// `None` leaves them unread (rows received over gRPC, whose files travel with the job).
    /// [`Checker::check_file`] reads them beside the file it checks.
    pub attachments: Option<AttachmentRoot>,
    /// Attached files read so far, by path, so that a file many problems share is read once.
    attachment_cache: crate::attachment::FileCache,
    ids: HashMap<String, Location>,
    contents: HashMap<[u8; 32], (Location, String)>,
    /// Valid problems by (source, kind).
    pub counts: BTreeMap<(String, ProblemKind), u64>,
    /// Rows read, valid or not.
    pub rows: u64,
    /// Valid problems.
    pub valid: u64,
    /// Diagnostics reported.
    pub errors: u64,
}

impl Checker {
    /// Checks one file, handing every diagnostic to `report` as soon as it is found and every
    /// valid problem to `accept`; attached files are read beside it.
    pub fn check_file(
        &mut self,
        path: &Path,
        report: &mut dyn FnMut(&Diagnostic),
        accept: &mut dyn FnMut(Problem),
    ) {
        self.check_file_from(path, Some(AttachmentRoot::beside(path)), report, accept);
    }

    /// As [`Checker::check_file`], leaving attached files unread (a copy of a problem file
    /// fetched from elsewhere, whose files are not beside it).
    pub fn check_file_without_attachments(
        &mut self,
        path: &Path,
        report: &mut dyn FnMut(&Diagnostic),
        accept: &mut dyn FnMut(Problem),
    ) {
        self.check_file_from(path, None, report, accept);
    }

    fn check_file_from(
        &mut self,
        path: &Path,
        attachments: Option<AttachmentRoot>,
        report: &mut dyn FnMut(&Diagnostic),
        accept: &mut dyn FnMut(Problem),
    ) {
        let rows = match read_rows(path, &self.options) {
            Ok(rows) => rows,
            Err(diag) => {
                self.errors += 1;
                report(&diag);
                return;
            }
        };
        let outer = std::mem::replace(&mut self.attachments, attachments);
        for item in rows {
            self.rows += 1;
            let value = match item.value {
                Ok(v) => v,
                Err(diag) => {
                    self.errors += 1;
                    report(&diag);
                    continue;
                }
            };
            self.check_value(&value, &item.location, report, accept);
        }
        self.attachments = outer;
    }

    /// Checks one row already read: its fields, then duplicates against every row before it.
    pub fn check_value(
        &mut self,
        value: &Value,
        location: &Location,
        report: &mut dyn FnMut(&Diagnostic),
        accept: &mut dyn FnMut(Problem),
    ) {
        let result = check_row(value, location)
            .and_then(|problem| self.load_attachments(problem, location))
            .and_then(|problem| match self.duplicate(&problem, location) {
                Some(diag) => Err(vec![diag]),
                None => Ok(problem),
            });
        match result {
            Ok(problem) => {
                self.valid += 1;
                *self
                    .counts
                    .entry((problem.source.clone(), problem.kind()))
                    .or_default() += 1;
                accept(problem);
            }
            Err(diags) => {
                for diag in &diags {
                    self.errors += 1;
                    report(diag);
                }
            }
        }
    }

    /// Reads and checks the problem's attached files from [`Checker::attachments`], if set.
    fn load_attachments(
        &mut self,
        mut problem: Problem,
        location: &Location,
    ) -> Result<Problem, Vec<Diagnostic>> {
        let Some(root) = &self.attachments else {
            return Ok(problem);
        };
        let id = problem.id.to_string();
        let errors = root.load(&id, &mut problem.files, &mut self.attachment_cache);
        if errors.is_empty() {
            return Ok(problem);
        }
        Err(errors
            .into_iter()
            .map(|(field, message)| Diagnostic::new(location.clone(), field, message))
            .collect())
    }

    /// Records the problem's id and content; a diagnostic when either was seen before.
    fn duplicate(&mut self, problem: &Problem, location: &Location) -> Option<Diagnostic> {
        if let Some(first) = self.ids.get(problem.id.as_str()) {
            return Some(Diagnostic::new(
                location.clone(),
                "id",
                format!(
                    "duplicate id {:?}, first seen at {first}",
                    problem.id.as_str()
                ),
            ));
        }
        let hash = problem.content_sha256();
        // Two judge prompts may read the same: two samples that agree up to a block and on
        // the block itself. Each is its own row's, and its verdicts join on its own id.
        let judge = problem.kind() == crate::problem::ProblemKind::Judge;
        if let Some((first, first_id)) = self.contents.get(&hash).filter(|_| !judge) {
            return Some(Diagnostic::new(
                location.clone(),
                "(row)",
                format!("duplicate content: same problem as {first} (id {first_id:?})"),
            ));
        }
        self.ids.insert(problem.id.to_string(), location.clone());
        self.contents
            .insert(hash, (location.clone(), problem.id.to_string()));
        None
    }
}
