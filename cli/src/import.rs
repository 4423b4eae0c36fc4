//! `startctl import`: public layouts to start's problem JSONL.

use crate::Outcome;
use anyhow::Context;
use start_schemas::import::{map_row, ImportFormat};
use start_schemas::rows::{read_rows, ReadOptions};
use start_schemas::validate::Checker;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// Arguments of `startctl import`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// Layout of the input: aime, math, gpqa-csv, humaneval or livecodebench.
    #[arg(long)]
    format: ImportFormat,
    /// Input files: JSONL (optionally gzipped), Parquet, CSV or a JSON document.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output JSONL file; standard output when absent.
    #[arg(long, short)]
    out: Option<PathBuf>,
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
    let mut checker = Checker::default();
    let mut write_error = None;
    for input in &args.inputs {
        let options = ReadOptions {
            import_layouts: true,
            ..ReadOptions::default()
        };
        let rows = match read_rows(input, &options) {
            Ok(rows) => rows,
            Err(diag) => {
                eprintln!("{diag}");
                checker.errors += 1;
                continue;
            }
        };
        for item in rows {
            checker.rows += 1;
            let mapped = item
                .value
                .map_err(|d| vec![d])
                .and_then(|v| map_row(args.format, &v, &item.location));
            match mapped {
                Ok(row) => checker.check_value(
                    &row,
                    &item.location,
                    &mut |diag| eprintln!("{diag}"),
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
                ),
                Err(diags) => {
                    for diag in diags {
                        checker.errors += 1;
                        eprintln!("{diag}");
                    }
                }
            }
        }
    }
    if let Some(e) = write_error {
        return Err(e).context("writing the output");
    }
    sink.flush().context("writing the output")?;
    eprintln!(
        "imported {} of {} rows as {} ({} errors)",
        checker.valid, checker.rows, args.format, checker.errors
    );
    Ok(if checker.errors == 0 {
        Outcome::Ok
    } else {
        Outcome::InvalidInput
    })
}
