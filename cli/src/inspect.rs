//! `startctl inspect`: what a dataset holds, and its trajectories shown readably.

use crate::Outcome;
use anyhow::Context;
use start_dataset::layout::{shard_id_of, DATA_DIR, PIECES_DIR, STAGING_DIR};
use start_dataset::Dataset;
use start_engine::HintLibrary;
use start_report::tally::{Tally, TriggerCheck};
use start_schemas::trajectory::{SegmentKind, Trajectory};
use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::sync::Arc;

/// When to colour segment kinds.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Color {
    /// When standard output is a terminal.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Arguments of `startctl inspect`.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// The dataset: a directory or an object-store URL (`s3://bucket/prefix`, ...).
    dataset: String,
    /// Also show this many trajectories, segment by segment.
    #[arg(long, default_value_t = 0)]
    rows: usize,
    /// Colour segment kinds.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
    /// Skip checking each shard's sha256 against the manifest.
    #[arg(long)]
    no_verify: bool,
}

/// Mean, p50, p90 and max of `values`, sorting them in place.
fn summary(values: &mut [u32]) -> String {
    if values.is_empty() {
        return "-".into();
    }
    values.sort_unstable();
    let pick = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64;
    format!(
        "mean {mean:.1}  p50 {}  p90 {}  max {}",
        pick(0.5),
        pick(0.9),
        values[values.len() - 1]
    )
}

/// The trigger-word rule of the built-in hint library, for the count of hints left right after
/// a trigger word ("Wait Wait").
pub fn trigger_check() -> TriggerCheck {
    let library = HintLibrary::builtin();
    Arc::new(move |text: &str| library.ends_with_trigger(text).is_some())
}

/// Prints a dataset's summary (what `startctl inspect DIR` prints) from a tally already made
/// (`startctl run` has its report's, made in the same pass over the rows); every shard was
/// checked on the way.
pub async fn print_summary(dataset: &Dataset, tally: &mut Tally) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let checks = vec!["ok".to_string(); dataset.manifest.shards.len()];
    print_shards(&mut out, dataset, &checks).await?;
    print_stats(&mut out, tally)?;
    Ok(())
}

/// Prints a dataset's summary (what `startctl inspect DIR` prints), for `startctl generate`.
pub async fn summarise(dataset: &str) -> anyhow::Result<Outcome> {
    inspect(InspectArgs {
        dataset: dataset.to_string(),
        rows: 0,
        color: Color::Never,
        no_verify: false,
    })
    .await
}

/// Runs `startctl inspect`.
pub fn run(args: InspectArgs) -> anyhow::Result<Outcome> {
    crate::runtime()?.block_on(inspect(args))
}

/// One pass over the shards: each fetched once and checked ([`Dataset::fetch_checked`]), its
/// rows tallied and the first `--rows` rendered (a damaged shard's rows are not read); then
/// the summary, then those rows.
async fn inspect(args: InspectArgs) -> anyhow::Result<Outcome> {
    let dataset = Dataset::open_at(&args.dataset).await?;
    let color = match args.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stdout().is_terminal(),
    };
    let mut damaged = 0;
    let mut tally = Tally::with_trigger_check(Some(trigger_check())).without_features();
    tally.reserve(dataset.manifest.rows() as usize);
    let mut checks = Vec::new();
    let mut rows_text = Vec::new();
    let mut shown = 0usize;
    for (si, shard) in dataset.manifest.shards.iter().enumerate() {
        let fetched = dataset
            .fetch_checked(shard)
            .await
            .with_context(|| format!("reading shard {}", shard.shard_id))?;
        match &fetched.check {
            _ if args.no_verify => checks.push("skipped".to_string()),
            Ok(()) => checks.push("ok".to_string()),
            Err(e) => {
                // A shard that is not what the manifest says is reported, its rows not read.
                damaged += 1;
                checks.push(format!("FAILED: {e}"));
                continue;
            }
        }
        let mut row = 0;
        let batches = fetched
            .rows(256)
            .with_context(|| format!("reading shard {}", shard.shard_id))?;
        for batch in batches {
            for t in batch? {
                if shown < args.rows {
                    render(&mut rows_text, &t, color)?;
                    shown += 1;
                }
                tally.add(&t, (si, row));
                row += 1;
            }
        }
    }
    let mut out = std::io::stdout().lock();
    print_shards(&mut out, &dataset, &checks).await?;
    print_stats(&mut out, &mut tally)?;
    out.write_all(&rows_text)?;
    if damaged > 0 {
        writeln!(out, "\n{damaged} shard(s) failed their checksum")?;
        return Ok(Outcome::InvalidInput);
    }
    Ok(Outcome::Ok)
}

/// The dataset's header, its shards with their checks, and notes on what is not committed.
async fn print_shards(
    out: &mut impl Write,
    dataset: &Dataset,
    checks: &[String],
) -> anyhow::Result<()> {
    let manifest = &dataset.manifest;
    let total_bytes: u64 = manifest.shards.iter().map(|s| s.bytes).sum();
    writeln!(
        out,
        "dataset {}: schema v{}, {} shards, {} rows, {} bytes",
        dataset.location(),
        manifest.schema_version,
        manifest.shards.len(),
        manifest.rows(),
        total_bytes
    )?;
    writeln!(
        out,
        "\n{:<40} {:>8} {:>12}  sha256        check",
        "shard", "rows", "bytes"
    )?;
    for (shard, check) in manifest.shards.iter().zip(checks) {
        writeln!(
            out,
            "{:<40} {:>8} {:>12}  {}  {check}",
            shard.shard_id,
            shard.rows,
            shard.bytes,
            &shard.sha256[..12.min(shard.sha256.len())]
        )?;
    }
    let listed: HashSet<_> = manifest.shards.iter().map(|s| s.path.clone()).collect();
    let loc = dataset.location();
    for rel in loc.list(DATA_DIR).await? {
        if shard_id_of(&rel).is_some() && !listed.contains(&rel) {
            writeln!(
                out,
                "note: {rel} is published but not in the manifest yet: the next commit lists it"
            )?;
        }
    }
    let staged = loc.list(STAGING_DIR).await?;
    if !staged.is_empty() {
        writeln!(
            out,
            "note: {} staged upload(s) in {STAGING_DIR}/ not committed; no reader sees them",
            staged.len()
        )?;
    }
    let pieces = loc.list(PIECES_DIR).await?;
    if !pieces.is_empty() {
        writeln!(
            out,
            "note: {} finished trajectories of units not committed yet in {PIECES_DIR}/ (a \
             unit leased again restores them; no reader sees them)",
            pieces.len()
        )?;
    }
    if manifest.layout < start_dataset::layout::LAYOUT {
        writeln!(
            out,
            "note: layout {} (manifest.json, shards/); the next commit migrates it",
            manifest.layout
        )?;
    }
    Ok(())
}

fn print_stats(out: &mut impl Write, stats: &mut Tally) -> std::io::Result<()> {
    writeln!(out, "\nproblems: {}", stats.problems.len())?;
    writeln!(
        out,
        "\n{:<16} {:<7} {:>8} {:>8} {:>8} {:>9}",
        "source", "kind", "rows", "graded", "correct", "accuracy"
    )?;
    for ((source, kind), group) in &stats.groups {
        let t = &group.accuracy;
        let acc = if t.graded == 0 {
            "-".to_string()
        } else {
            format!("{:.1}%", 100.0 * t.correct as f64 / t.graded as f64)
        };
        writeln!(
            out,
            "{source:<16} {kind:<7} {:>8} {:>8} {:>8} {acc:>9}",
            t.rows, t.graded, t.correct
        )?;
    }
    writeln!(out, "\ntool calls per trajectory:")?;
    let most = stats
        .tool_calls_per_row
        .values()
        .copied()
        .max()
        .unwrap_or(1)
        .max(1);
    for (calls, n) in &stats.tool_calls_per_row {
        let bar = "#".repeat(((n * 40).div_ceil(most)) as usize);
        writeln!(out, "  {calls:>3}  {n:>8}  {bar}")?;
    }
    writeln!(out, "  failed tool calls: {}", stats.tool_errors)?;
    if !stats.by_tool.is_empty() {
        let by: Vec<String> = stats
            .by_tool
            .iter()
            .map(|(tool, n)| format!("{tool} {n}"))
            .collect();
        writeln!(out, "  by tool: {}", by.join(", "))?;
    }
    writeln!(out, "  figures kept: {}", stats.figures)?;
    writeln!(out, "\nfinish reasons:")?;
    for (reason, n) in &stats.finish {
        writeln!(out, "  {reason:<16} {n:>8}")?;
    }
    let h = &mut stats.hints;
    writeln!(out, "\nhints:")?;
    writeln!(out, "  per trajectory   {}", summary(&mut h.per_row))?;
    let by: Vec<String> = stats
        .hint_triggers
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    writeln!(out, "  triggered by     {}", by.join(", "))?;
    writeln!(out, "  doubled trigger at a hint  {}", h.doubled)?;
    writeln!(
        out,
        "  code blocks run  {}, opened by a hint {} ({})",
        h.code_blocks,
        h.after_hint,
        if h.code_blocks == 0 {
            "-".to_string()
        } else {
            format!("{:.0}%", 100.0 * h.after_hint as f64 / h.code_blocks as f64)
        }
    )?;
    writeln!(out, "  rows at the tool-call limit  {}", h.at_tool_limit)?;
    writeln!(out, "\ntokens:")?;
    writeln!(out, "  prompt      {}", summary(&mut stats.prompt_lengths))?;
    writeln!(out, "  completion  {}", summary(&mut stats.lengths))?;
    Ok(())
}

/// ANSI colour of a segment kind.
fn ansi(kind: SegmentKind) -> &'static str {
    match kind {
        SegmentKind::Reasoning => "\x1b[0m",
        SegmentKind::Hint => "\x1b[1;33m",
        SegmentKind::Code => "\x1b[36m",
        SegmentKind::Output => "\x1b[32m",
        SegmentKind::Answer => "\x1b[1;35m",
    }
}

fn render(out: &mut impl Write, t: &Trajectory, color: bool) -> std::io::Result<()> {
    let verdict = match t.correct {
        Some(true) => "correct",
        Some(false) => "wrong",
        None => "ungraded",
    };
    writeln!(
        out,
        "\n=== {} sample {} [{} {} {}] {verdict}, answer {:?}, {} tool calls, {} tokens",
        t.problem_id,
        t.sample_index,
        t.source,
        t.kind,
        t.mode.as_str(),
        t.final_answer.as_deref().unwrap_or("-"),
        t.tool_calls.len(),
        t.completion_tokens
    )?;
    for segment in &t.segments {
        if color {
            write!(out, "{}{}\x1b[0m", ansi(segment.kind), segment.text)?;
        } else {
            write!(out, "[{}] {}", segment.kind.as_str(), segment.text)?;
            if !segment.text.ends_with('\n') {
                writeln!(out)?;
            }
        }
    }
    if color {
        writeln!(out)?;
    }
    Ok(())
}
