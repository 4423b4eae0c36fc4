//! `startctl export`: Hint-RFT selection of a dataset into SFT data.

use crate::Outcome;
use anyhow::Context;
use start_dataset::Dataset;
use start_grader::judge;
use start_grader::rft::rules::{self, Rule};
use start_grader::rft::{select, Features, Policy, SeedData, Select, REASONS};
use start_schemas::sft::{SftRow, SftWriter};
use start_schemas::trajectory::{Mode, Trajectory};
use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;

/// Which rows to keep.
#[derive(Clone, Copy, clap::ValueEnum)]
enum SelectArg {
    /// Every correct trajectory that passes the filters.
    Correct,
    /// The best trajectory per problem.
    BestPerProblem,
    /// The best K per problem (see --k).
    TopK,
    /// Every trajectory, correct or not, that the other filters keep (infrastructure errors,
    /// unfinished, over-long, repetitive and duplicates are still removed): to check a
    /// trainer's loader on a small model's run, or to keep failures. Not an SFT set.
    All,
    /// rStar2-Agent's Resample-on-Correct: of the correct trajectories, K per problem (see
    /// --k) with the lowest share of failed tool calls, then without repeated answer tags.
    ResampleOnCorrect,
}

/// Output formats.
#[derive(Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
enum Format {
    /// `sft.parquet` (zstd).
    Parquet,
    /// `sft.jsonl`.
    Jsonl,
    /// Both.
    Both,
}

/// Arguments of `startctl export`.
///
/// Each row is one kept trajectory, its text exactly as generated (never re-rendered through
/// a chat template), in the shapes trainers read as is: `messages`, `prompt` + `completion`,
/// `text`, sharegpt `conversations` with each tool output an `observation` turn (LLaMA-Factory),
/// and labelled `segments` (axolotl's input_output). The loss masks come with it: tool outputs
/// and the prompt are never trained on. `input_ids`, `attention_mask`, `labels` (-100 on the
/// prompt and on every tool-output token) and `completion_mask` are the row's own token ids, as
/// sampled and fed, with no token lost at a tool boundary; `output_spans` and `hint_spans` give
/// the same places in characters of `completion`. schemas/README.md ("SFT export") says which
/// trainer reads which columns.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// The dataset to select from: a directory or an object-store URL. Repeatable: several
    /// datasets are selected from as one (a hinted run and a plain run of the same problems,
    /// for an SFT mix with text-only rows under --max-tool-share).
    #[arg(long = "from", required = true)]
    from: Vec<String>,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Selection.
    #[arg(long, value_enum, default_value_t = SelectArg::Correct)]
    select: SelectArg,
    /// K for `--select top-k` and `--select resample-on-correct`.
    #[arg(long, default_value_t = 4)]
    k: usize,
    /// Near duplicates: estimated Jaccard similarity at or above this, within a problem.
    #[arg(long, default_value_t = 0.9)]
    near_duplicate: f32,
    /// Repetitive loops: share of repeated word 4-grams above this.
    #[arg(long, default_value_t = 0.5)]
    max_repeat_ratio: f32,
    /// Over-long: more completion tokens than this.
    #[arg(long)]
    max_completion_tokens: Option<u32>,
    /// START's seed-data rule (D_seed): the plain baseline's dataset of the same problems. A
    /// problem's hint-infer trajectory is kept only when it is correct, made at least one
    /// successful tool call, and the baseline on that problem was wrong.
    #[arg(long)]
    seed_data_plain: Option<String>,
    /// Accept a baseline that was sampled (temperature above 0). START's baseline is greedy:
    /// a sampled baseline can be wrong by chance on a problem the model solves, which would
    /// let that problem into D_seed.
    #[arg(long)]
    allow_sampled_baseline: bool,
    /// A published quality rule to apply, by name, or a preset of one source's rules
    /// (repeatable; none by default, START's own selection). Rules: no-code, unclosed-block,
    /// answer-before-code, no-final-answer, code-error, verification-only, matplotlib,
    /// several-boxed, majority, judge (NeMo-Skills' OpenMathReasoning; judge needs --judge),
    /// void-turn (SimpleTIR). Presets: nemo-skills (theirs but the judge), nemo-skills-judged,
    /// simpletir, all-rules (every rule but the judge). Each drop is counted by rule.
    #[arg(long = "filter", value_parser = parse_filter)]
    filters: Vec<Filter>,
    /// A judge job's dataset (`startctl judge`, then a job in mode judge) over this dataset's
    /// rows: its verdicts decide the judge rule, and without `--filter judge` the summary
    /// counts what the rule would drop.
    #[arg(long)]
    judge: Option<String>,
    /// Cap the share of kept rows that ran code (e.g. `30%` or `0.3`), so that the SFT mix
    /// keeps text-only reasoning: every text-only row the selection keeps stays, and tool rows
    /// over the cap are dropped spread over problems (each problem's best first kept).
    #[arg(long, value_parser = parse_share)]
    max_tool_share: Option<f64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Parquet)]
    format: Format,
}

/// A share: `30%`, or a fraction in [0, 1].
fn parse_share(s: &str) -> Result<f64, String> {
    let share = match s.trim().strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => s.trim().parse::<f64>(),
    }
    .map_err(|_| format!("{s:?} is not a share (30% or 0.3)"))?;
    if (0.0..=1.0).contains(&share) {
        Ok(share)
    } else {
        Err(format!("{s:?} is not a share between 0% and 100%"))
    }
}

/// One `--filter`: a rule, or a preset's rules.
#[derive(Clone, Debug)]
struct Filter(Vec<Rule>);

fn parse_filter(name: &str) -> Result<Filter, String> {
    rules::parse(name).map(Filter)
}

/// Runs `startctl export`.
pub fn run(args: ExportArgs) -> anyhow::Result<Outcome> {
    crate::runtime()?.block_on(export(args))
}

async fn export(args: ExportArgs) -> anyhow::Result<Outcome> {
    anyhow::ensure!(
        !(matches!(args.select, SelectArg::All) && args.seed_data_plain.is_some()),
        "--select all keeps incorrect trajectories; START's seed-data rule keeps correct ones only"
    );
    let mut datasets = Vec::new();
    for from in &args.from {
        datasets.push(Dataset::open_at(from).await?);
    }
    let seed_data = match &args.seed_data_plain {
        None => None,
        Some(path) => Some(baseline(path, args.allow_sampled_baseline).await?),
    };
    let rules: Vec<Rule> = args.filters.into_iter().flat_map(|f| f.0).collect();
    anyhow::ensure!(
        args.judge.is_some() || !rules.contains(&Rule::Judge),
        "--filter judge needs the judge job's dataset: --judge DATASET (startctl judge writes \
         its prompts)"
    );
    let votes = match &args.judge {
        None => None,
        Some(path) => Some(judge_votes(path).await?),
    };
    // Sized once from the manifests: a vector grown by doubling holds its old and new buffers
    // together, up to three times the features' size at the peak. A count no allocation can
    // meet (a damaged manifest's) is not reserved: the vector grows as it would.
    let mut features = Vec::new();
    let rows = datasets
        .iter()
        .fold(0usize, |n, d| n.saturating_add(d.manifest.rows() as usize));
    let _ = features.try_reserve_exact(rows);
    let all = matches!(args.select, SelectArg::All);
    for_each(&datasets, |at, t| {
        let mut f = if all {
            Features::of_any(t, at)
        } else {
            Features::of(t, at)
        };
        if let Some(votes) = &votes {
            f.verdicts.mark(Rule::Judge, !votes.keeps(t));
        }
        features.push(f);
    })
    .await?;
    let policy = Policy {
        select: match args.select {
            SelectArg::Correct => Select::Correct,
            SelectArg::BestPerProblem => Select::BestPerProblem,
            SelectArg::TopK => Select::TopK(args.k.max(1)),
            SelectArg::All => Select::All,
            SelectArg::ResampleOnCorrect => Select::ResampleOnCorrect(args.k.max(1)),
        },
        near_duplicate: args.near_duplicate,
        max_repeat_ratio: args.max_repeat_ratio,
        max_completion_tokens: args.max_completion_tokens,
        seed_data,
        rules,
        max_tool_share: args.max_tool_share,
    };
    let selection = select(features, &policy);
    let kept: HashSet<(usize, usize)> = selection.kept.iter().copied().collect();

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut parquet = match args.format {
        Format::Parquet | Format::Both => Some(SftWriter::create(&args.out.join("sft.parquet"))?),
        Format::Jsonl => None,
    };
    let jsonl_tmp = args.out.join(".sft.jsonl.tmp");
    let mut jsonl = match args.format {
        Format::Jsonl | Format::Both => Some(std::io::BufWriter::new(
            std::fs::File::create(&jsonl_tmp).context("creating sft.jsonl")?,
        )),
        Format::Parquet => None,
    };
    let mut missing_question = 0u64;
    let mut batch = Vec::new();
    let mut write_error = None;
    for_each(&datasets, |at, t| {
        if !kept.contains(&at) || write_error.is_some() {
            return;
        }
        match SftRow::from_trajectory(t) {
            Ok(row) => batch.push(row),
            Err(e) => {
                eprintln!("{} sample {}: {e}", t.problem_id, t.sample_index);
                missing_question += 1;
                return;
            }
        }
        if batch.len() >= WRITE_BATCH {
            if let Err(e) = flush(&mut batch, parquet.as_mut(), jsonl.as_mut()) {
                write_error = Some(e);
            }
        }
    })
    .await?;
    if let Some(e) = write_error {
        return Err(e);
    }
    flush(&mut batch, parquet.as_mut(), jsonl.as_mut())?;
    let mut written = 0;
    if let Some(w) = parquet {
        written = w.finish()?;
    }
    if let Some(mut w) = jsonl {
        w.flush()?;
        w.get_ref().sync_all()?;
        drop(w);
        std::fs::rename(&jsonl_tmp, args.out.join("sft.jsonl"))?;
        written = selection.kept.len() as u64 - missing_question;
    }

    println!("{:<58} {:>8}", "removed because", "rows");
    for reason in REASONS.iter().copied().chain(["not selected"]) {
        if let Some(n) = selection.removed.get(reason) {
            println!("{reason:<58} {n:>8}");
        }
    }
    if !selection.would_drop.is_empty() {
        println!(
            "{:<58} {:>8}",
            "of the kept, a rule not applied would drop", "rows"
        );
        for rule in rules::RULES {
            if let Some(n) = selection.would_drop.get(rule.reason()) {
                println!("{:<58} {n:>8}", rule.reason());
            }
        }
    }
    if missing_question > 0 {
        println!(
            "{:<58} {missing_question:>8}",
            "no user turn (schema-1 row, not ChatML)"
        );
    }
    if let Some(share) = args.max_tool_share {
        println!(
            "{:<58} {:>7.1}%",
            format!("tool-use share of the kept (cap {:.1}%)", share * 100.0),
            100.0 * selection.kept_with_tools as f64 / selection.kept.len().max(1) as f64
        );
    }
    println!(
        "kept {written} of {} trajectories -> {}",
        selection.total,
        args.out.display()
    );
    Ok(if missing_question > 0 {
        Outcome::InvalidInput
    } else {
        Outcome::Ok
    })
}

/// Rows converted and written at a time: an SFT row of QwQ length is about 160 KB before
/// compression (its text in five shapes, four token-id columns), so 64 of them are 10 MB.
const WRITE_BATCH: usize = 64;

fn flush(
    batch: &mut Vec<SftRow>,
    parquet: Option<&mut SftWriter>,
    jsonl: Option<&mut std::io::BufWriter<std::fs::File>>,
) -> anyhow::Result<()> {
    if let Some(w) = parquet {
        w.write(batch)?;
    }
    if let Some(w) = jsonl {
        for row in batch.iter() {
            serde_json::to_writer(&mut *w, row)?;
            w.write_all(b"\n")?;
        }
    }
    batch.clear();
    Ok(())
}

/// What the seed-data rule needs of the plain baseline at `path`: which problems it has and
/// which it solved. START's baseline is plain greedy; a baseline that sampled, or was not
/// generated in plain mode, is refused unless `allow_sampled`, since a lucky sample would
/// hide a problem the model does not solve.
async fn baseline(path: &str, allow_sampled: bool) -> anyhow::Result<SeedData> {
    let plain = Dataset::open_at(path).await?;
    let mut seed = SeedData::default();
    let (mut not_plain, mut sampled) = (0u64, 0u64);
    for_each(std::slice::from_ref(&plain), |_, t| {
        not_plain += u64::from(t.mode != Mode::Plain);
        sampled += u64::from(t.params.temperature > 0.0);
        seed.baseline.insert(t.problem_id.clone());
        if t.correct == Some(true) {
            seed.solved.insert(t.problem_id.clone());
        }
    })
    .await?;
    anyhow::ensure!(
        allow_sampled || (not_plain == 0 && sampled == 0),
        "{}: the seed-data baseline must be plain greedy (mode plain, temperature 0), but \
         {not_plain} rows are another mode and {sampled} were sampled; generate it with \
         `--mode plain` (greedy by default) or pass --allow-sampled-baseline",
        path
    );
    Ok(seed)
}

/// The votes of the judge job at `path`: every row of mode judge, by the block it judged. A
/// row that names no block (another job's) is counted and refused.
async fn judge_votes(path: &str) -> anyhow::Result<judge::Votes> {
    let dataset = Dataset::open_at(path).await?;
    let mut votes = judge::Votes::default();
    let (mut rows, mut foreign) = (0u64, 0u64);
    for_each(std::slice::from_ref(&dataset), |_, t| {
        rows += 1;
        let ok = t.mode == Mode::Judge && votes.add(&t.problem_id, t.final_answer.as_deref());
        foreign += u64::from(!ok);
    })
    .await?;
    anyhow::ensure!(
        foreign == 0,
        "{path}: {foreign} of {rows} rows are not a judge job's verdicts (mode judge, problem \
         id `<trajectory_sha256>.b<block>`)"
    );
    Ok(votes)
}

/// Calls `f` with every trajectory of the datasets and its (shard, row) position, each shard
/// checked against its manifest first ([`Dataset::for_each_row`]). The shards of each dataset
/// are numbered after the ones before it, so a position names one row of all of them.
async fn for_each(
    datasets: &[Dataset],
    mut f: impl FnMut((usize, usize), &Trajectory),
) -> anyhow::Result<()> {
    let mut offset = 0;
    for dataset in datasets {
        dataset
            .for_each_row(|(shard, row), t| f((offset + shard, row), &t))
            .await?;
        offset += dataset.manifest.shards.len();
    }
    Ok(())
}
