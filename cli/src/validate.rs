//! `startctl validate`: every error of every row, then counts and duplicates.

use crate::Outcome;
use start_schemas::problem::ProblemKind;
use start_schemas::validate::Checker;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `startctl validate`.
#[derive(clap::Args)]
pub struct ValidateArgs {
    /// Problem files: .jsonl, .jsonl.gz or .parquet.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Longest line accepted, in bytes; longer lines are reported without being read into memory.
    #[arg(long, default_value_t = 16 << 20)]
    max_line_bytes: usize,
    /// Stop printing errors after this many (they are still counted); 0 prints all.
    #[arg(long, default_value_t = 0)]
    max_errors: u64,
}

/// Runs `startctl validate`.
pub fn run(args: ValidateArgs) -> anyhow::Result<Outcome> {
    let mut checker = Checker::default();
    checker.options.max_line_bytes = args.max_line_bytes;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut printed = 0u64;
    for file in &args.files {
        checker.check_file(
            file,
            &mut |diag| {
                if args.max_errors == 0 || printed < args.max_errors {
                    let _ = writeln!(out, "{diag}");
                }
                printed += 1;
            },
            &mut |_| {},
        );
    }
    if args.max_errors != 0 && printed > args.max_errors {
        writeln!(
            out,
            "... {} more errors not shown",
            printed - args.max_errors
        )?;
    }
    print_counts(&mut out, &checker.counts)?;
    writeln!(
        out,
        "{} rows, {} valid problems, {} errors in {} file(s)",
        checker.rows,
        checker.valid,
        checker.errors,
        args.files.len()
    )?;
    Ok(if checker.errors == 0 {
        Outcome::Ok
    } else {
        Outcome::InvalidInput
    })
}

/// Prints valid problems by source and kind.
pub fn print_counts(
    out: &mut impl Write,
    counts: &BTreeMap<(String, ProblemKind), u64>,
) -> std::io::Result<()> {
    if counts.is_empty() {
        return Ok(());
    }
    let width = counts
        .keys()
        .map(|(s, _)| s.len())
        .max()
        .unwrap_or(6)
        .max(6);
    writeln!(
        out,
        "{:<width$}  {:<6}  {:>8}",
        "source", "kind", "problems"
    )?;
    for ((source, kind), n) in counts {
        writeln!(out, "{source:<width$}  {kind:<6}  {n:>8}")?;
    }
    Ok(())
}
