//! `startctl import`: public layouts to start's problem JSONL, through
//! [`start_sources::importer`].

use crate::Outcome;
use anyhow::Context;
use chrono::NaiveDate;
use start_sources::import::ImportFormat;
use start_sources::importer::{ImportOptions, Importer};
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
    /// Input files: JSONL (optionally gzipped), Parquet, CSV or a JSON document.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output JSONL file; standard output when absent.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Keep only problems dated before this day (YYYY-MM-DD), e.g. a model's training
    /// cut-off; undated problems are skipped then.
    #[arg(long)]
    before: Option<NaiveDate>,
}

/// Runs `startctl import`. Valid rows are written; every invalid one is reported, and any
/// error makes the exit code 2 so that a pipeline never mistakes a partial import for a full one.
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
    let mut write_error = None;
    for input in &args.inputs {
        importer.file(input, &mut |diag| eprintln!("{diag}"), &mut |problem| {
            if write_error.is_none() {
                if let Err(e) = serde_json::to_writer(&mut sink, &problem.to_row())
                    .map_err(std::io::Error::from)
                    .and_then(|()| sink.write_all(b"\n"))
                {
                    write_error = Some(e);
                }
            }
        });
    }
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
    Ok(if s.errors == 0 {
        Outcome::Ok
    } else {
        Outcome::InvalidInput
    })
}
