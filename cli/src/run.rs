//! `startctl run`: the main job on embedded defaults.
//!
//! Today it runs what exists: it checks the problems (the bundled examples unless files are
//! given) and the default model file. Generation arrives with the worker engine; until then
//! this command says so plainly and produces no trajectories, never made-up ones.

use crate::examples;
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
    /// GGUF model; `models/SmolLM2-135M-Instruct.Q4_1.gguf` by default.
    #[arg(long, env = "START_MODEL")]
    model: Option<PathBuf>,
}

/// Runs `startctl run`.
pub fn run(args: RunArgs) -> anyhow::Result<Outcome> {
    let mut checker = Checker::default();
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
                    Ok(v) => checker.check_value(&v, &item.location, &mut report, &mut |_| {}),
                    Err(d) => {
                        checker.errors += 1;
                        report(&d);
                    }
                }
            }
        }
    } else {
        for file in &args.problems {
            checker.check_file(file, &mut report, &mut |_| {});
        }
    }
    print_counts(&mut std::io::stdout().lock(), &checker.counts)?;
    println!("{} problems, {} errors", checker.valid, checker.errors);
    if checker.errors > 0 {
        return Ok(Outcome::InvalidInput);
    }

    let model = args.model.unwrap_or_else(default_model_path);
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
    println!(
        "generation: not in this build yet. The llama.cpp engine, the sandbox and grading land \
         with the worker issues; no trajectories were produced."
    );
    Ok(Outcome::Ok)
}
