//! `startctl mix`: draws a problem set from imported files by counts or shares, uniformly or
//! weighted by tool usefulness measured on a plain and a hinted run, and writes the recipe that
//! rebuilds it, through [`start_sources::mix`].

use crate::Outcome;
use anyhow::{bail, Context};
use start_dataset::Dataset;
use start_schemas::trajectory::{FinishReason, Mode};
use start_schemas::validate::Checker;
use start_sources::mix::usefulness::{Tally, Weights};
use start_sources::mix::{Mixer, Recipe, RecipeInput, RecipeRun, Take, UsefulnessRecipe};
use std::collections::HashMap;
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
    /// Weigh problems by tool usefulness: a run of the same problems without tools (`--mode
    /// plain --max-tool-calls 0`), as a dataset directory or URL. A problem's weight is pass@k
    /// with tools (the --hinted run) minus pass@k without, below 0 taken as 0, plus
    /// --usefulness-floor; each take then draws problems with probabilities proportional to
    /// their weights, and a problem either run lacks (or has fewer than k samples of) is never
    /// drawn.
    #[arg(long, requires = "hinted")]
    plain: Option<String>,
    /// The run of the same problems with tools (mode hint-infer or rft), for --plain.
    #[arg(long, requires = "plain")]
    hinted: Option<String>,
    /// The k of pass@k for the usefulness (each run needs at least k samples of a problem).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pass_k: u32,
    /// Added to every measured problem's weight: 0 draws only problems where tools help; a
    /// floor lets the others in at a lower rate.
    #[arg(long, default_value_t = 0.0)]
    usefulness_floor: f64,
    /// Rebuild the mix a recipe describes, from the same inputs (their sha256 is checked, and
    /// a weighted mix's runs by their content).
    #[arg(long, conflicts_with_all = ["inputs", "takes", "total", "seed", "plain", "hinted"])]
    recipe: Option<PathBuf>,
    /// The mix (JSONL); its recipe is written beside it as `<out>.recipe.json`.
    #[arg(long, short)]
    out: PathBuf,
}

fn sha256_file(path: &Path) -> anyhow::Result<String> {
    start_schemas::model::sha256_file(path)
        .with_context(|| format!("cannot read {}", path.display()))
}

/// A run's tallies by problem id, and its recipe entry. Rows of a mode the run is not meant to
/// be, and of a run `without_tools` rows that ran code, are refused with the count; rows that
/// ended in an infrastructure error are left out of the tallies (they say nothing of the
/// model) and counted.
fn tallies(
    path: &str,
    accept: &[Mode],
    without_tools: bool,
) -> anyhow::Result<(HashMap<String, Tally>, RecipeRun, u64)> {
    crate::runtime()?.block_on(async {
        let dataset = Dataset::open_at(path).await?;
        let mut tallies: HashMap<String, Tally> = HashMap::new();
        let (mut rows, mut wrong_mode, mut ran_code, mut errors) = (0u64, 0u64, 0u64, 0u64);
        dataset
            .for_each_row(|_, t| {
                rows += 1;
                if !accept.contains(&t.mode) {
                    wrong_mode += 1;
                } else if without_tools && !t.tool_calls.is_empty() {
                    ran_code += 1;
                } else if t.finish_reason == FinishReason::Error {
                    errors += 1;
                } else {
                    let tally = tallies.entry(t.problem_id).or_default();
                    tally.n += 1;
                    tally.correct += u32::from(t.correct == Some(true));
                }
            })
            .await?;
        anyhow::ensure!(
            wrong_mode == 0,
            "{path}: {wrong_mode} of {rows} rows are not of mode {}",
            accept
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(" or ")
        );
        anyhow::ensure!(
            ran_code == 0,
            "{path}: {ran_code} of {rows} rows ran code, but the plain run is the model without \
             tools (generate it with --mode plain --max-tool-calls 0)"
        );
        let run = RecipeRun {
            path: path.to_string(),
            content_sha256: dataset.manifest.content_sha256(),
            rows,
        };
        Ok((tallies, run, errors))
    })
}

/// The weights of a mix by tool usefulness, from the plain and the hinted run at the paths
/// given; with `pinned`, each run must hold what the recipe pinned.
fn usefulness_weights(
    plain: &str,
    hinted: &str,
    k: u32,
    floor: f64,
    pinned: Option<&UsefulnessRecipe>,
) -> anyhow::Result<(Weights, RecipeRun, RecipeRun)> {
    anyhow::ensure!(
        floor.is_finite() && floor >= 0.0,
        "--usefulness-floor must be 0 or more, not {floor}"
    );
    let (plain_tallies, plain_run, plain_errors) = tallies(plain, &[Mode::Plain], true)?;
    let (hinted_tallies, hinted_run, hinted_errors) =
        tallies(hinted, &[Mode::HintInfer, Mode::Rft], false)?;
    for (run, errors) in [(&plain_run, plain_errors), (&hinted_run, hinted_errors)] {
        if errors > 0 {
            eprintln!(
                "{}: {errors} rows ended in an infrastructure error and are left out of pass@{k}",
                run.path
            );
        }
    }
    if let Some(pinned) = pinned {
        for (got, want) in [(&plain_run, &pinned.plain), (&hinted_run, &pinned.hinted)] {
            if got.content_sha256 != want.content_sha256 {
                bail!(
                    "{} has changed since the recipe was written (content sha256 {}, the recipe says {})",
                    got.path,
                    got.content_sha256,
                    want.content_sha256
                );
            }
        }
    }
    Ok((
        Weights::new(plain_tallies, hinted_tallies, k, floor),
        plain_run,
        hinted_run,
    ))
}

/// Runs `startctl mix`.
pub fn run(args: MixArgs) -> anyhow::Result<Outcome> {
    let weighing = match &args.recipe {
        Some(_) => None,
        None => args
            .plain
            .clone()
            .zip(args.hinted.clone())
            .map(|(plain, hinted)| (plain, hinted, args.pass_k, args.usefulness_floor, None)),
    };
    let (inputs, takes, total, seed, expected, weighing) = match &args.recipe {
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
            let weighing = recipe.usefulness.map(|u| {
                (
                    u.plain.path.clone(),
                    u.hinted.path.clone(),
                    u.k,
                    u.floor,
                    Some(u),
                )
            });
            (
                inputs,
                recipe.takes,
                recipe.total,
                recipe.seed,
                Some(recipe.output_sha256),
                weighing,
            )
        }
        None => (
            args.inputs.clone(),
            args.takes.clone(),
            args.total,
            args.seed,
            None,
            weighing,
        ),
    };
    let mut weights = match &weighing {
        None => None,
        Some((plain, hinted, k, floor, pinned)) => Some(usefulness_weights(
            plain,
            hinted,
            *k,
            *floor,
            pinned.as_ref(),
        )?),
    };
    let mut mixer = Mixer::new(&takes, total, seed)?;
    let mut checker = Checker::default();
    let mut recipe_inputs = Vec::new();
    for path in &inputs {
        recipe_inputs.push(RecipeInput {
            path: path.display().to_string(),
            sha256: sha256_file(path)?,
        });
        checker.check_file(
            path,
            &mut |d| eprintln!("{d}"),
            &mut |p| match &mut weights {
                Some((w, _, _)) => {
                    let weight = w.weigh(p.id.as_str());
                    mixer.offer_weighted(p, weight)
                }
                None => mixer.offer(p),
            },
        );
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
    let usefulness =
        weights.zip(weighing).map(
            |((w, plain, hinted), (_, _, k, floor, _))| UsefulnessRecipe {
                plain,
                hinted,
                k,
                floor,
                summary: w.summary(),
            },
        );
    let recipe = Recipe {
        start_version: env!("CARGO_PKG_VERSION").to_string(),
        seed,
        total,
        takes,
        inputs: recipe_inputs,
        outcomes,
        usefulness,
        rows: mix.len() as u64,
        output_sha256,
    };
    let recipe_path = PathBuf::from(format!("{}.recipe.json", args.out.display()));
    std::fs::write(&recipe_path, serde_json::to_string_pretty(&recipe)? + "\n")
        .with_context(|| format!("cannot write {}", recipe_path.display()))?;
    if let Some(u) = &recipe.usefulness {
        let s = &u.summary;
        eprintln!(
            "tool usefulness (pass@{} with tools minus without): {} problems measured, tools \
             help on {}, hurt on {}, mean {:+.3}; {} not in both runs (never drawn)",
            u.k, s.measured, s.tools_help, s.tools_hurt, s.mean, s.unmeasured
        );
    }
    for o in &recipe.outcomes {
        let weightless = if o.weightless > 0 {
            format!(" ({} of weight 0)", o.weightless)
        } else {
            String::new()
        };
        eprintln!(
            "  {:<32} {:>8} of {:>8}{weightless}",
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
