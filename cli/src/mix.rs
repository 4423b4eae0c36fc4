//! `startctl mix`: draws a problem set from imported files by counts or shares, and writes
//! the recipe that rebuilds it, through [`start_sources::mix`].

use crate::Outcome;
use anyhow::{bail, Context};
use start_schemas::validate::Checker;
use start_sources::mix::{Mixer, Recipe, RecipeInput, Take};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Arguments of `startctl mix`.
#[derive(clap::Args)]
pub struct MixArgs {
    /// Problem files to draw from (start's problem rows).
    #[arg(required_unless_present = "recipe")]
    inputs: Vec<PathBuf>,
    /// A part of the mix, SELECTOR=AMOUNT, in order of precedence: a kind (`math=40000`), a
    /// source (`source:aime=900`) or `all`, and a count or a share of --total (`code=20%`).
    #[arg(long = "take", required_unless_present = "recipe")]
    takes: Vec<Take>,
    /// The mix's size, for shares.
    #[arg(long)]
    total: Option<u64>,
    /// Seed of the draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Rebuild the mix a recipe describes, from the same inputs (their sha256 is checked).
    #[arg(long, conflicts_with_all = ["inputs", "takes", "total", "seed"])]
    recipe: Option<PathBuf>,
    /// The mix (JSONL); its recipe is written beside it as `<out>.recipe.json`.
    #[arg(long, short)]
    out: PathBuf,
}

fn sha256_file(path: &Path) -> anyhow::Result<String> {
    start_schemas::model::sha256_file(path)
        .with_context(|| format!("cannot read {}", path.display()))
}

/// Runs `startctl mix`.
pub fn run(args: MixArgs) -> anyhow::Result<Outcome> {
    let (inputs, takes, total, seed, expected) = match &args.recipe {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let recipe: Recipe = serde_json::from_str(&text)
                .with_context(|| format!("{}: not a mix recipe", path.display()))?;
            for input in &recipe.inputs {
                let got = sha256_file(Path::new(&input.path))?;
                if got != input.sha256 {
                    bail!(
                        "{} has changed since the recipe was written (sha256 {got}, the recipe says {})",
                        input.path,
                        input.sha256
                    );
                }
            }
            let inputs = recipe
                .inputs
                .iter()
                .map(|i| PathBuf::from(&i.path))
                .collect();
            (
                inputs,
                recipe.takes,
                recipe.total,
                recipe.seed,
                Some(recipe.output_sha256),
            )
        }
        None => (
            args.inputs.clone(),
            args.takes.clone(),
            args.total,
            args.seed,
            None,
        ),
    };
    let mut mixer = Mixer::new(&takes, total, seed)?;
    let mut checker = Checker::default();
    let mut recipe_inputs = Vec::new();
    for path in &inputs {
        recipe_inputs.push(RecipeInput {
            path: path.display().to_string(),
            sha256: sha256_file(path)?,
        });
        checker.check_file(path, &mut |d| eprintln!("{d}"), &mut |p| mixer.offer(p));
    }
    if checker.errors > 0 {
        eprintln!("{} errors in the inputs; no mix written", checker.errors);
        return Ok(Outcome::InvalidInput);
    }
    let (mix, outcomes) = match mixer.finish() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("startctl mix: {e}; no mix written");
            return Ok(Outcome::InvalidInput);
        }
    };
    let mut out = BufWriter::new(
        File::create(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?,
    );
    for p in &mix {
        serde_json::to_writer(&mut out, &p.to_row())?;
        out.write_all(b"\n")?;
    }
    out.into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .context("writing the mix")?;
    let output_sha256 = sha256_file(&args.out)?;
    if let Some(expected) = expected.filter(|e| *e != output_sha256) {
        bail!("the rebuilt mix differs from the recipe's (sha256 {output_sha256}, the recipe says {expected})");
    }
    let recipe = Recipe {
        start_version: env!("CARGO_PKG_VERSION").to_string(),
        seed,
        total,
        takes,
        inputs: recipe_inputs,
        outcomes,
        rows: mix.len() as u64,
        output_sha256,
    };
    let recipe_path = PathBuf::from(format!("{}.recipe.json", args.out.display()));
    std::fs::write(&recipe_path, serde_json::to_string_pretty(&recipe)? + "\n")
        .with_context(|| format!("cannot write {}", recipe_path.display()))?;
    for o in &recipe.outcomes {
        eprintln!(
            "  {:<32} {:>8} of {:>8}",
            o.select.to_string(),
            o.asked,
            o.available
        );
    }
    eprintln!(
        "mixed {} problems into {} (recipe: {})",
        mix.len(),
        args.out.display(),
        recipe_path.display()
    );
    Ok(Outcome::Ok)
}
