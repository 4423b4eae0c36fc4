//! Checks problem rows and files, reporting every error at its exact place.
//!
//! [`check_row`] turns one JSON row into a [`Problem`] or a list of [`Diagnostic`]s, one per
//! wrong field, so a user fixes a file in one pass instead of one error at a time. [`Checker`]
//! runs it over whole files as streams and adds what only a whole view shows: duplicate ids and
//! duplicate content across every file checked.
//!
//! Why one file over 600 lines: it holds one format's rules, a check per field of the problem
//! row and the file-level rules built on them; split by field, one format's rules would be
//! scattered over many files.

use crate::attachment::{self, Attachment, AttachmentRoot};
use crate::ids::ProblemId;
use crate::problem::{
    normalise_whitespace, CallExample, CodeTests, Judge, Problem, ProblemKind, StdioCase, Target,
    TestStyle, DEFAULT_FLOAT_TOLERANCE,
};
use crate::rows::{json_type_name, read_rows, Diagnostic, Location, ReadOptions};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

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

/// The files a row attaches: `[{path, name, sha256, size}]`, each with a path (relative to the
/// problem file) or a name or both, a sha256, and optionally its size; names plain, unique, of
/// a format start reads, and distinct as SQL tables.
fn check_files(c: &mut RowCheck, obj: &Map<String, Value>) -> Option<Vec<Attachment>> {
    let items = match RowCheck::get(obj, "files") {
        None => return Some(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            c.error(
                "files",
                format!(
                    "expected a list of {{path, sha256}} objects, got {}",
                    json_type_name(other)
                ),
            );
            return None;
        }
    };
    if items.len() > attachment::MAX_FILES {
        c.error(
            "files",
            format!(
                "has {} files; a problem attaches at most {}",
                items.len(),
                attachment::MAX_FILES
            ),
        );
        return None;
    }
    let before = c.errors.len();
    let mut files: Vec<Attachment> = Vec::with_capacity(items.len());
    let mut declared = 0u64;
    for (i, item) in items.iter().enumerate() {
        let field = format!("files[{i}]");
        let Some(f) = item.as_object() else {
            c.error(
                &field,
                format!("expected an object, got {}", json_type_name(item)),
            );
            continue;
        };
        c.unknown_fields(f, &["path", "name", "sha256", "size"], &format!("{field}."));
        let path = RowCheck::get(f, "path").and_then(|v| {
            let p = c.string(v, &format!("{field}.path"), true)?;
            match attachment::check_path(&p) {
                Ok(()) => Some(p),
                Err(e) => {
                    c.error(&format!("{field}.path"), e);
                    None
                }
            }
        });
        let named =
            RowCheck::get(f, "name").and_then(|v| c.string(v, &format!("{field}.name"), true));
        let name = match (named, &path) {
            (Some(n), _) => Some(n),
            (None, Some(p)) => p.rsplit('/').next().map(str::to_string),
            (None, None) => {
                if RowCheck::get(f, "path").is_none() {
                    c.error(
                        &format!("{field}.path"),
                        "missing; give the file's path relative to the problem file",
                    );
                }
                None
            }
        };
        let name = name.and_then(|n| match attachment::check_name(&n) {
            Ok(()) => Some(n),
            Err(e) => {
                c.error(&format!("{field}.name"), e);
                None
            }
        });
        let sha256 = match RowCheck::get(f, "sha256") {
            None => {
                c.error(
                    &format!("{field}.sha256"),
                    "missing; the file's hex sha256 (sha256sum prints it)",
                );
                None
            }
            Some(v) => c.string(v, &format!("{field}.sha256"), true).and_then(|h| {
                let h = h.to_ascii_lowercase();
                if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Some(h)
                } else {
                    c.error(
                        &format!("{field}.sha256"),
                        format!("{h:?} is not 64 hex digits"),
                    );
                    None
                }
            }),
        };
        let size = match RowCheck::get(f, "size") {
            None => Some(None),
            Some(v) => match v.as_u64() {
                Some(n) if n <= attachment::MAX_FILE_BYTES => {
                    declared += n;
                    Some(Some(n))
                }
                _ => {
                    c.error(
                        &format!("{field}.size"),
                        format!(
                            "expected bytes from 0 to {} ({} MiB), got {v}",
                            attachment::MAX_FILE_BYTES,
                            attachment::MAX_FILE_BYTES >> 20
                        ),
                    );
                    None
                }
            },
        };
        let (Some(name), Some(sha256), Some(size)) = (name, sha256, size) else {
            continue;
        };
        if let Some(j) = files.iter().position(|o| o.name == name) {
            c.error(
                &format!("{field}.name"),
                format!("{name:?} is attached already, as files[{j}]"),
            );
            continue;
        }
        let table = attachment::sql_table_name(&name);
        if let Some(j) = files
            .iter()
            .position(|o| attachment::sql_table_name(&o.name) == table)
        {
            c.error(
                &format!("{field}.name"),
                format!(
                    "{name:?} would be SQL table {table:?}, as {:?} (files[{j}]) is: rename one",
                    files[j].name
                ),
            );
            continue;
        }
        files.push(Attachment {
            name,
            path,
            sha256,
            size,
            content: None,
        });
    }
    if declared > attachment::MAX_PROBLEM_BYTES {
        c.error(
            "files",
            format!(
                "the files hold {declared} bytes, over the {} MiB a problem may attach",
                attachment::MAX_PROBLEM_BYTES >> 20
            ),
        );
    }
    (c.errors.len() == before).then_some(files)
}

fn check_math(c: &mut RowCheck, obj: &Map<String, Value>, source: Option<&str>) -> Option<Target> {
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

fn check_choice(c: &mut RowCheck, obj: &Map<String, Value>) -> Option<Target> {
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

fn check_code(c: &mut RowCheck, obj: &Map<String, Value>) -> Option<Target> {
    c.forbid(obj, "answer", ProblemKind::Code);
    c.forbid(obj, "choices", ProblemKind::Code);
    c.forbid(obj, ALSO_ACCEPTED, ProblemKind::Code);
    let tests = match RowCheck::get(obj, "tests") {
        None => {
            c.error(
                "tests",
                "missing; code problems need stdin/stdout cases or a check program",
            );
            return None;
        }
        Some(Value::Object(t)) => t,
        Some(other) => {
            c.error(
                "tests",
                format!("expected an object, got {}", json_type_name(other)),
            );
            return None;
        }
    };
    let time_limit_s = match RowCheck::get(tests, "time_limit_s") {
        None => None,
        Some(v) => match v.as_f64() {
            Some(s) if s > 0.0 && s <= MAX_TIME_LIMIT_S => Some(s),
            _ => {
                c.error(
                    "tests.time_limit_s",
                    format!("expected seconds in (0, {MAX_TIME_LIMIT_S}], got {v}"),
                );
                None
            }
        },
    };
    let memory_limit_mb = match RowCheck::get(tests, "memory_limit_mb") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(m) if MEMORY_LIMIT_MB.contains(&m) => Some(m as u32),
            _ => {
                c.error(
                    "tests.memory_limit_mb",
                    format!(
                        "expected whole MiB from {} to {}, got {v}",
                        MEMORY_LIMIT_MB.start(),
                        MEMORY_LIMIT_MB.end()
                    ),
                );
                None
            }
        },
    };
    let style = match RowCheck::get(tests, "type").and_then(Value::as_str) {
        Some("stdio") => {
            c.unknown_fields(
                tests,
                &[
                    "type",
                    "cases",
                    "time_limit_s",
                    "memory_limit_mb",
                    "compare",
                    "float_tolerance",
                    "checker",
                ],
                "tests.",
            );
            check_stdio_cases(c, tests)
        }
        Some("check") => {
            c.unknown_fields(
                tests,
                &[
                    "type",
                    "prompt",
                    "test",
                    "entry_point",
                    "examples",
                    "time_limit_s",
                    "memory_limit_mb",
                ],
                "tests.",
            );
            let prompt = RowCheck::get(tests, "prompt")
                .map_or(Some(String::new()), |v| c.string(v, "tests.prompt", false));
            let test = match RowCheck::get(tests, "test") {
                Some(v) => c.string(v, "tests.test", true),
                None => {
                    c.error(
                        "tests.test",
                        "missing; the program that defines check(candidate)",
                    );
                    None
                }
            };
            let entry_point = match RowCheck::get(tests, "entry_point") {
                Some(v) => c.string(v, "tests.entry_point", true),
                None => {
                    c.error(
                        "tests.entry_point",
                        "missing; the function check() is given",
                    );
                    None
                }
            };
            let examples = check_examples(c, tests);
            Some(TestStyle::Check {
                prompt: prompt?,
                test: test?,
                entry_point: entry_point?,
                examples: examples?,
            })
        }
        _ => {
            c.error(
                "tests.type",
                format!(
                    "expected \"stdio\" or \"check\", got {}",
                    tests
                        .get("type")
                        .map_or("nothing".to_string(), |v| v.to_string())
                ),
            );
            None
        }
    };
    let judge = check_judge(c, tests);
    Some(Target::Code {
        tests: CodeTests {
            style: style?,
            judge: judge?,
            time_limit_s,
            memory_limit_mb,
        },
    })
}

/// How a stdin/stdout case's output is judged: `compare` (`tokens`, the default, or
/// `lines`), `float_tolerance` (for tokens), or a `checker` program.
fn check_judge(c: &mut RowCheck, tests: &Map<String, Value>) -> Option<Judge> {
    let before = c.errors.len();
    let compare = match RowCheck::get(tests, "compare") {
        None => None,
        Some(Value::String(m)) if m == "tokens" || m == "lines" => Some(m.as_str()),
        Some(other) => {
            c.error(
                "tests.compare",
                format!("expected \"tokens\" or \"lines\", got {other}"),
            );
            None
        }
    };
    let tolerance = match RowCheck::get(tests, "float_tolerance") {
        None => None,
        Some(v) => match v.as_f64() {
            Some(t) if (0.0..=1.0).contains(&t) => Some(t),
            _ => {
                c.error(
                    "tests.float_tolerance",
                    format!("expected a number in [0, 1], got {v}"),
                );
                None
            }
        },
    };
    let checker = match RowCheck::get(tests, "checker") {
        None => None,
        Some(v) => c.string(v, "tests.checker", true),
    };
    if checker.as_deref().is_some_and(|p| !p.contains("def check")) {
        c.error(
            "tests.checker",
            "must define check(input, expected, output) returning True for an accepted output",
        );
    }
    if checker.is_some() && (compare.is_some() || tolerance.is_some()) {
        c.error(
            "tests.checker",
            "a checker decides alone: leave out compare and float_tolerance",
        );
    }
    if compare == Some("lines") && tolerance.is_some() {
        c.error(
            "tests.float_tolerance",
            "only applies to compare \"tokens\"",
        );
    }
    if c.errors.len() != before {
        return None;
    }
    Some(match (checker, compare) {
        (Some(program), _) => Judge::Checker { program },
        (None, Some("lines")) => Judge::Lines,
        _ => Judge::Tokens {
            float_tolerance: tolerance.unwrap_or(DEFAULT_FLOAT_TOLERANCE),
        },
    })
}

fn check_stdio_cases(c: &mut RowCheck, tests: &Map<String, Value>) -> Option<TestStyle> {
    let items = match RowCheck::get(tests, "cases") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) => {
            c.error("tests.cases", "is empty; give at least one case");
            return None;
        }
        Some(other) => {
            c.error(
                "tests.cases",
                format!("expected an array, got {}", json_type_name(other)),
            );
            return None;
        }
        None => {
            c.error("tests.cases", "missing; a list of {input, output} objects");
            return None;
        }
    };
    let mut cases = Vec::with_capacity(items.len());
    let before = c.errors.len();
    for (i, item) in items.iter().enumerate() {
        let field = format!("tests.cases[{i}]");
        let Some(case) = item.as_object() else {
            c.error(
                &field,
                format!("expected an object, got {}", json_type_name(item)),
            );
            continue;
        };
        c.unknown_fields(case, &["input", "output", "public"], &format!("{field}."));
        let public = match case.get("public") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                c.error(
                    &format!("{field}.public"),
                    format!(
                        "expected true or false (is the case shown to the model?), got {}",
                        json_type_name(other)
                    ),
                );
                false
            }
        };
        let mut part = |name: &str| match case.get(name) {
            Some(v) => c.string(v, &format!("{field}.{name}"), false),
            None => {
                c.error(&format!("{field}.{name}"), "missing");
                None
            }
        };
        if let (Some(input), Some(output)) = (part("input"), part("output")) {
            cases.push(StdioCase {
                input,
                output,
                public,
            });
        }
    }
    (c.errors.len() == before).then_some(TestStyle::Stdio { cases })
}

/// The shown examples of a check-style problem: `[{call, expected}]`, optional.
fn check_examples(c: &mut RowCheck, tests: &Map<String, Value>) -> Option<Vec<CallExample>> {
    let items = match RowCheck::get(tests, "examples") {
        None => return Some(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            c.error(
                "tests.examples",
                format!(
                    "expected a list of {{call, expected}} objects, got {}",
                    json_type_name(other)
                ),
            );
            return None;
        }
    };
    let before = c.errors.len();
    let mut examples = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = format!("tests.examples[{i}]");
        let Some(example) = item.as_object() else {
            c.error(
                &field,
                format!("expected an object, got {}", json_type_name(item)),
            );
            continue;
        };
        c.unknown_fields(example, &["call", "expected"], &format!("{field}."));
        let mut part = |name: &str| match example.get(name) {
            Some(v) => c.string(v, &format!("{field}.{name}"), true),
            None => {
                c.error(&format!("{field}.{name}"), "missing");
                None
            }
        };
        if let (Some(call), Some(expected)) = (part("call"), part("expected")) {
            examples.push(CallExample { call, expected });
        }
    }
    (c.errors.len() == before).then_some(examples)
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
    attachment_cache: HashMap<PathBuf, bytes::Bytes>,
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
        let errors = root.load(&mut problem, &mut self.attachment_cache);
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
        if let Some((first, first_id)) = self.contents.get(&hash) {
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
