//! `startctl inspect`: what a dataset holds, and its trajectories shown readably.

use crate::Outcome;
use anyhow::Context;
use start_dataset::layout::{shard_id_of, DATA_DIR, STAGING_DIR};
use start_dataset::Dataset;
use start_engine::HintLibrary;
use start_schemas::trajectory::{SegmentKind, Trajectory};
use std::collections::{BTreeMap, HashSet};
use std::io::{IsTerminal, Write};

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

/// Accuracy counters of one (source, kind).
#[derive(Default)]
struct Tally {
    rows: u64,
    graded: u64,
    correct: u64,
}

/// Everything `inspect` prints, gathered in one pass over the shards.
#[derive(Default)]
struct Stats {
    by_group: BTreeMap<(String, String), Tally>,
    tool_calls: BTreeMap<usize, u64>,
    tool_errors: u64,
    /// Tool calls by tool (`python`, `sql`).
    by_tool: BTreeMap<String, u64>,
    /// Figures kept on the rows.
    figures: u64,
    finish: BTreeMap<String, u64>,
    prompt_tokens: Vec<u32>,
    completion_tokens: Vec<u32>,
    problems: HashSet<String>,
    hints: Hints,
}

/// Where hints went and what followed them.
#[derive(Default)]
struct Hints {
    /// Hints per trajectory.
    per_row: Vec<u32>,
    /// By what triggered them (`word`, `end_of_thinking`, `unknown` for schema-1 rows).
    by_trigger: BTreeMap<&'static str, u64>,
    /// Hints right after text that ends with a trigger word ("Wait Wait").
    doubled: u64,
    /// Code blocks that ran.
    code_blocks: u64,
    /// Of which directly after a hint (the hint opened them).
    after_hint: u64,
    /// Rows that reached the tool-call limit.
    at_tool_limit: u64,
}

impl Hints {
    fn add(&mut self, t: &Trajectory, library: &HintLibrary) {
        let mut n = 0;
        let mut before = String::new();
        for (i, s) in t.segments.iter().enumerate() {
            if s.kind == SegmentKind::Hint {
                n += 1;
                let by = s.hint.as_ref().map_or("unknown", |h| h.trigger.as_str());
                *self.by_trigger.entry(by).or_default() += 1;
                self.doubled += u64::from(library.ends_with_trigger(&before).is_some());
            }
            if s.kind == SegmentKind::Code {
                self.code_blocks += 1;
                self.after_hint += u64::from(i > 0 && t.segments[i - 1].kind == SegmentKind::Hint);
            }
            before.push_str(&s.text);
        }
        self.per_row.push(n);
        self.at_tool_limit += u64::from(
            t.tool_limit_reached
                || t.finish_reason == start_schemas::trajectory::FinishReason::ToolLimit,
        );
    }
}

impl Stats {
    fn add(&mut self, t: &Trajectory, library: &HintLibrary) {
        let tally = self
            .by_group
            .entry((t.source.clone(), t.kind.to_string()))
            .or_default();
        tally.rows += 1;
        if let Some(correct) = t.correct {
            tally.graded += 1;
            tally.correct += u64::from(correct);
        }
        *self.tool_calls.entry(t.tool_calls.len()).or_default() += 1;
        self.tool_errors += u64::from(t.tool_errors);
        for call in &t.tool_calls {
            *self.by_tool.entry(call.tool.clone()).or_default() += 1;
        }
        self.figures += t.figures.len() as u64;
        *self
            .finish
            .entry(t.finish_reason.as_str().to_string())
            .or_default() += 1;
        self.prompt_tokens.push(t.prompt_tokens);
        self.completion_tokens.push(t.completion_tokens);
        self.problems.insert(t.problem_id.clone());
        self.hints.add(t, library);
    }
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

/// Prints a dataset's summary (what `startctl inspect DIR` prints), for `startctl run`.
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

async fn inspect(args: InspectArgs) -> anyhow::Result<Outcome> {
    let dataset = Dataset::open_at(&args.dataset).await?;
    let color = match args.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stdout().is_terminal(),
    };
    let mut out = std::io::stdout().lock();
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
    let mut damaged = 0;
    let mut stats = Stats::default();
    // The built-in library's trigger words: a hint must not be left right after one.
    let library = HintLibrary::builtin();
    let mut shown = 0usize;
    writeln!(
        out,
        "\n{:<40} {:>8} {:>12}  sha256        check",
        "shard", "rows", "bytes"
    )?;
    for shard in &manifest.shards {
        let check = if args.no_verify {
            "skipped".to_string()
        } else {
            match dataset.verify(shard).await {
                Ok(()) => "ok".to_string(),
                Err(e) => {
                    damaged += 1;
                    format!("FAILED: {e}")
                }
            }
        };
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
    if manifest.layout < start_dataset::layout::LAYOUT {
        writeln!(
            out,
            "note: layout {} (manifest.json, shards/); the next commit migrates it",
            manifest.layout
        )?;
    }
    let mut rows_text = Vec::new();
    for shard in &manifest.shards {
        let batches = dataset
            .read_shard(shard, 256)
            .await
            .with_context(|| format!("reading shard {}", shard.shard_id))?;
        for batch in batches {
            for t in batch? {
                if shown < args.rows {
                    render(&mut rows_text, &t, color)?;
                    shown += 1;
                }
                stats.add(&t, &library);
            }
        }
    }
    print_stats(&mut out, &mut stats)?;
    out.write_all(&rows_text)?;
    if damaged > 0 {
        writeln!(out, "\n{damaged} shard(s) failed their checksum")?;
        return Ok(Outcome::InvalidInput);
    }
    Ok(Outcome::Ok)
}

fn print_stats(out: &mut impl Write, stats: &mut Stats) -> std::io::Result<()> {
    writeln!(out, "\nproblems: {}", stats.problems.len())?;
    writeln!(
        out,
        "\n{:<16} {:<7} {:>8} {:>8} {:>8} {:>9}",
        "source", "kind", "rows", "graded", "correct", "accuracy"
    )?;
    for ((source, kind), t) in &stats.by_group {
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
    let most = stats.tool_calls.values().copied().max().unwrap_or(1).max(1);
    for (calls, n) in &stats.tool_calls {
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
    let by: Vec<String> = h
        .by_trigger
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
    writeln!(out, "  prompt      {}", summary(&mut stats.prompt_tokens))?;
    writeln!(
        out,
        "  completion  {}",
        summary(&mut stats.completion_tokens)
    )?;
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
