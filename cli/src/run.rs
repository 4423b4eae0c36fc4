//! `startctl run`: the main job on embedded defaults.
//!
//! Checks the problems (the bundled examples unless files are given) and the model, then
//! generates with the engine, the best sandbox available and grading, into a new dataset under
//! `out/`, and ends with the dataset's summary. The coordinator's in-process mode replaces the
//! local loop when it lands; the command stays the same.

use crate::examples;
use crate::generate::{generate, GenOptions};
use crate::sandbox::runtime;
use crate::validate::print_counts;
use crate::Outcome;
use start_schemas::model::{default_model_path, sha256_file, DEFAULT_MODEL_SHA256};
use start_schemas::rows::{read_jsonl, ReadOptions};
use start_schemas::validate::Checker;
use std::path::PathBuf;

/// Arguments of `startctl run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Problem files; the bundled examples when absent.
    #[arg(long)]
    problems: Vec<PathBuf>,
    /// Output dataset; `out/run-<UTC time>` when absent.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    options: GenOptions,
}

/// Runs `startctl run`.
pub fn run(args: RunArgs) -> anyhow::Result<Outcome> {
    let mut checker = Checker::default();
    let mut problems = Vec::new();
    let mut report = |d: &start_schemas::rows::Diagnostic| println!("{d}");
    if args.problems.is_empty() {
        println!(
            "problems: the bundled examples ({} files)",
            examples::FILES.len()
        );
        for (name, text) in examples::FILES {
            for item in read_jsonl(name, text.as_bytes(), &ReadOptions::default()) {
                checker.rows += 1;
                match item.value {
                    Ok(v) => checker
                        .check_value(&v, &item.location, &mut report, &mut |p| problems.push(p)),
                    Err(d) => {
                        checker.errors += 1;
                        report(&d);
                    }
                }
            }
        }
    } else {
        for file in &args.problems {
            checker.check_file(file, &mut report, &mut |p| problems.push(p));
        }
    }
    print_counts(&mut std::io::stdout().lock(), &checker.counts)?;
    println!("{} problems, {} errors", checker.valid, checker.errors);
    if checker.errors > 0 {
        return Ok(Outcome::InvalidInput);
    }
    let model = args
        .options
        .model
        .clone()
        .unwrap_or_else(default_model_path);
    match sha256_file(&model) {
        Ok(sha) if sha == DEFAULT_MODEL_SHA256 => {
            println!(
                "model: {} (sha256 {}, the default model)",
                model.display(),
                &sha[..12]
            )
        }
        Ok(sha) => println!("model: {} (sha256 {})", model.display(), &sha[..12]),
        Err(e) => anyhow::bail!(
            "model {}: {e}; run scripts/setup to fetch the default model",
            model.display()
        ),
    }
    let out = args.out.unwrap_or_else(|| {
        PathBuf::from("out").join(format!(
            "run-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ))
    });
    let mut options = args.options;
    options.model = Some(model);
    runtime()?.block_on(generate(problems, &out, &options))?;
    println!("read it with: startctl inspect {} --rows 3", out.display());
    Ok(Outcome::Ok)
}
