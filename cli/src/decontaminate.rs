//! `startctl decontaminate`: removes problems that overlap evaluation sets and collapses
//! near-duplicates, through [`start_sources::decontaminate`].

use crate::Outcome;
use anyhow::Context;
use start_schemas::validate::Checker;
use start_sources::decontaminate::{Decontaminator, EvalIndex, Options};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// Arguments of `startctl decontaminate`.
#[derive(clap::Args)]
pub struct DecontaminateArgs {
    /// Problem files to clean (start's problem rows, e.g. from `startctl import`); earlier
    /// files win when problems are near-duplicates.
    #[arg(long, required = true, num_args = 1..)]
    problems: Vec<PathBuf>,
    /// Evaluation sets, as problem files (import them first): AIME 2024/2025, AMC23,
    /// MATH-500, GPQA, recent LiveCodeBench.
    #[arg(long, required = true, num_args = 1..)]
    against: Vec<PathBuf>,
    /// The clean problem set (JSONL).
    #[arg(long, short)]
    out: PathBuf,
    /// Every removed problem with what it matched (JSONL); `<out>.removed.jsonl` by default.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Words per n-gram.
    #[arg(long, default_value_t = 13)]
    ngram: usize,
    /// Share of a problem's n-grams an earlier problem must hold for a near-duplicate; above
    /// 1 keeps near-duplicates.
    #[arg(long, default_value_t = 0.5)]
    duplicate_overlap: f64,
}

/// Runs `startctl decontaminate`. Unreadable rows are reported and make the exit code 2.
pub fn run(args: DecontaminateArgs) -> anyhow::Result<Outcome> {
    anyhow::ensure!(args.ngram > 0, "--ngram must be at least 1");
    let options = Options {
        ngram: args.ngram,
        duplicate_overlap: args.duplicate_overlap,
    };
    let mut errors = 0u64;
    let mut eval = EvalIndex::new(options);
    let mut checker = Checker::default();
    for path in &args.against {
        checker.check_file(path, &mut |d| eprintln!("{d}"), &mut |p| eval.add(&p));
    }
    errors += checker.errors;
    let eval_items = eval.len();
    let report_path = args
        .report
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.removed.jsonl", args.out.display())));
    let create = |p: &PathBuf| {
        File::create(p)
            .map(BufWriter::new)
            .with_context(|| format!("cannot create {}", p.display()))
    };
    let (mut out, mut report) = (create(&args.out)?, create(&report_path)?);
    let mut d = Decontaminator::new(eval);
    let mut checker = Checker::default();
    let (mut kept, mut removed) = (0u64, BTreeMap::<&'static str, u64>::new());
    let mut write_error: Option<std::io::Error> = None;
    for path in &args.problems {
        checker.check_file(path, &mut |diag| eprintln!("{diag}"), &mut |p| {
            if write_error.is_some() {
                return;
            }
            let written = match d.check(&p) {
                None => {
                    kept += 1;
                    serde_json::to_writer(&mut out, &p.to_row())
                        .map_err(std::io::Error::from)
                        .and_then(|()| out.write_all(b"\n"))
                }
                Some(r) => {
                    *removed.entry(r.reason).or_default() += 1;
                    serde_json::to_writer(&mut report, &r)
                        .map_err(std::io::Error::from)
                        .and_then(|()| report.write_all(b"\n"))
                }
            };
            write_error = written.err();
        });
    }
    if let Some(e) = write_error {
        return Err(e).context("writing the output");
    }
    out.flush().context("writing the output")?;
    report.flush().context("writing the report")?;
    errors += checker.errors;
    eprintln!(
        "kept {kept} of {} problems against {eval_items} evaluation items: {} contaminated, {} near-duplicates (listed in {})",
        checker.rows,
        removed.get("contaminated").unwrap_or(&0),
        removed.get("duplicate").unwrap_or(&0),
        report_path.display()
    );
    Ok(if errors == 0 {
        Outcome::Ok
    } else {
        Outcome::InvalidInput
    })
}
