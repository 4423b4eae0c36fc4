//! `startctl import`: public layouts to start's problem JSONL, through
//! [`start_sources::importer`].

use crate::Outcome;
use anyhow::Context;
use chrono::NaiveDate;
use serde_json::{json, Value};
use start_schemas::rows::Diagnostic;
use start_sources::import::ImportFormat;
use start_sources::importer::{ImportOptions, Importer};
use std::cell::RefCell;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// Arguments of `startctl import`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// Layout of the input: aime, math, numina, gpqa-csv, humaneval, livecodebench,
    /// codecontests, codeforces or apps (APPS and TACO).
    #[arg(long)]
    format: ImportFormat,
    /// Input files: JSONL (optionally gzipped), Parquet, CSV or a JSON document; or
    /// directories of them (MATH's one JSON file a problem), or of APPS problem folders
    /// (`APPS/train`).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output JSONL file; standard output when absent.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Keep only problems dated before this day (YYYY-MM-DD), e.g. a model's training
    /// cut-off; undated problems are skipped then.
    #[arg(long)]
    before: Option<NaiveDate>,
    /// Write every row not imported here (JSONL), with its place and reason: skipped rows
    /// (`reason`, `detail`) and invalid ones (`reason: "invalid"`, `errors`).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Exit 2 when any row is invalid. By default a quirk of some rows is counted, reported
    /// and skipped, and the import exits 0; it exits 2 only when an input cannot be read or
    /// no row at all could be imported from rows that are all invalid (the wrong --format).
    #[arg(long)]
    strict: bool,
}

/// The `--report` file: one JSON line a row not imported.
struct Report {
    out: Option<BufWriter<File>>,
    /// The invalid row being reported: its place and its errors so far (a row's diagnostics
    /// arrive one by one, the report holds one line a row).
    invalid: Option<(String, Vec<Value>)>,
    /// The first write error; later lines are not written.
    error: Option<std::io::Error>,
}

impl Report {
    fn line(&mut self, line: Value) {
        if let (Some(out), None) = (self.out.as_mut(), self.error.as_ref()) {
            if let Err(e) = serde_json::to_writer(&mut *out, &line)
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"))
            {
                self.error = Some(e);
            }
        }
    }

    fn invalid(&mut self, diag: &Diagnostic) {
        let place = diag.location.to_string();
        if self.invalid.as_ref().is_some_and(|(p, _)| *p != place) {
            self.flush_invalid();
        }
        self.invalid
            .get_or_insert_with(|| (place, Vec::new()))
            .1
            .push(json!({"field": diag.field, "message": diag.message}));
    }

    fn flush_invalid(&mut self) {
        if let Some((place, errors)) = self.invalid.take() {
            self.line(json!({"place": place, "reason": "invalid", "errors": errors}));
        }
    }

    fn finish(self) -> anyhow::Result<()> {
        if let Some(e) = self.error {
            return Err(e).context("writing the report");
        }
        if let Some(mut out) = self.out {
            out.flush().context("writing the report")?;
        }
        Ok(())
    }
}

/// Runs `startctl import`. Valid rows are written; every row that is not is counted by reason,
/// printed (invalid rows) and listed in `--report`. The exit code is 2 for an import that
/// failed (an unreadable input, or nothing but invalid rows) and, with `--strict`, for any
/// invalid row, so that a pipeline never mistakes a partial import for a full one.
pub fn run(args: ImportArgs) -> anyhow::Result<Outcome> {
    let mut sink: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let mut importer = Importer::new(ImportOptions {
        format: args.format,
        before: args.before,
    });
    let report = RefCell::new(Report {
        out: match &args.report {
            Some(path) => {
                Some(BufWriter::new(File::create(path).with_context(|| {
                    format!("cannot create the report {}", path.display())
                })?))
            }
            None => None,
        },
        invalid: None,
        error: None,
    });
    let mut write_error = None;
    for input in &args.inputs {
        importer.input(
            input,
            &mut |diag| {
                eprintln!("{diag}");
                report.borrow_mut().invalid(diag);
            },
            &mut |skip| {
                let mut r = report.borrow_mut();
                r.flush_invalid();
                r.line(
                    json!({"place": skip.location.to_string(), "reason": skip.reason,
                    "detail": skip.detail}),
                );
            },
            &mut |problem| {
                if write_error.is_none() {
                    if let Err(e) = serde_json::to_writer(&mut sink, &problem.to_row())
                        .map_err(std::io::Error::from)
                        .and_then(|()| sink.write_all(b"\n"))
                    {
                        write_error = Some(e);
                    }
                }
            },
        );
        report.borrow_mut().flush_invalid();
    }
    report.into_inner().finish()?;
    if let Some(e) = write_error {
        return Err(e).context("writing the output");
    }
    sink.flush().context("writing the output")?;

    let s = &importer.summary;
    eprintln!(
        "imported {} of {} rows as {}: {} skipped, {} with errors ({} errors)",
        s.imported,
        s.rows,
        args.format,
        s.skipped_total(),
        s.bad_rows,
        s.errors
    );
    for (reason, n) in &s.skipped {
        eprintln!("  skipped {n:>8}  {reason}");
    }
    if s.failed() {
        eprintln!("the import failed: an input could not be read, or no row of it is valid (is --format {} right?)", args.format);
    } else if args.strict && s.bad_rows > 0 {
        eprintln!("--strict: {} invalid rows", s.bad_rows);
    }
    Ok(if s.failed() || (args.strict && s.bad_rows > 0) {
        Outcome::InvalidInput
    } else {
        Outcome::Ok
    })
}
