//! `startctl generate`: engine, sandbox and grader on one machine, writing trajectory shards.

use crate::runtime;
use crate::sandbox_arg::{start_or_warn, Backend};
use crate::Outcome;
use anyhow::Context;
use futures_util::stream::{FuturesUnordered, StreamExt};
use start_dataset::{CardInfo, ShardEntry, StoreRoot};
use start_schemas::problem::Problem;
use start_schemas::tool::{ToolName, ToolSet};
use start_schemas::trajectory::{hint_defaults, GenerationParams, Mode};
use start_schemas::validate::Checker;
use start_schemas::{proto, LeaseId, UnitId};
use start_worker::{Pipeline, PipelineOptions, PipelineUnits, Units};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// Generation mode on the command line.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ModeArg {
    /// Hints at trigger words and at the end of thinking.
    HintInfer,
    /// Several samples, no hints.
    Rft,
    /// The model alone.
    Plain,
    /// Judge prompts (`startctl judge`): tools off, each response parsed as a verdict, the
    /// samples being the votes.
    Judge,
}

/// What every trajectory of a job is generated with; shared by `generate`, `run` and `submit`.
#[derive(clap::Args, Clone)]
pub struct SamplingArgs {
    /// Generation mode.
    #[arg(long, value_enum, default_value_t = ModeArg::HintInfer)]
    pub mode: ModeArg,
    /// Samples per problem (the paper's RFT uses 16).
    #[arg(long, default_value_t = 1)]
    pub samples: u32,
    /// Most new tokens per trajectory.
    #[arg(long, default_value_t = 1024)]
    pub max_new_tokens: u32,
    /// Temperature; 0 is greedy. Default: 0 in plain mode (START's baseline is greedy), else
    /// 0.6 (the paper's RFT).
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Top-p (the paper's RFT: 0.95).
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// Top-k; 0 disables.
    #[arg(long, default_value_t = 0)]
    pub top_k: u32,
    /// Min-p; 0 disables.
    #[arg(long, default_value_t = 0.0)]
    pub min_p: f32,
    /// Repetition penalty; 1 disables.
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// Most code executions per trajectory (the paper: 6).
    #[arg(long, default_value_t = 6)]
    pub max_tool_calls: u32,
    /// Job seed; with the job id, it fixes every trajectory's seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// End-of-thinking hints per trajectory in hint-infer mode (the paper's sequential
    /// test-time scaling rounds).
    #[arg(long, default_value_t = hint_defaults::END_HINTS)]
    pub end_hints: u32,
    /// Trigger-word hints per trajectory at most, in hint-infer mode.
    #[arg(long, default_value_t = hint_defaults::MAX_TRIGGER_HINTS)]
    pub max_trigger_hints: u32,
    /// Chance of a hint at each trigger word; the hint library's when absent.
    #[arg(long)]
    pub trigger_probability: Option<f64>,
    /// A trigger hint needs at least this many tool calls left.
    #[arg(long, default_value_t = hint_defaults::MIN_TOOL_CALLS_LEFT)]
    pub min_tool_calls_left: u32,
    /// A trigger hint needs at least this many tokens left (context and new-token budget).
    #[arg(long, default_value_t = hint_defaults::MIN_CONTEXT_LEFT)]
    pub min_context_left: u32,
    /// Execute code written after the end of thinking (in the final answer).
    #[arg(long)]
    pub run_answer_code: bool,
    /// State the code-execution budget (--max-tool-calls) in the user turn and end each
    /// output block with the executions left, as NeMo-Skills' prompts do.
    #[arg(long)]
    pub show_calls_left: bool,
    /// Tools the model may call, by the fence's language (python, sql); a block in another
    /// language stays text. Default: python (`startctl run`: python,sql, for its bundled
    /// data-analysis problems).
    #[arg(long, value_delimiter = ',', value_parser = parse_tool)]
    pub tools: Vec<ToolName>,
}

fn parse_tool(s: &str) -> Result<ToolName, String> {
    s.parse()
}

impl SamplingArgs {
    /// The trajectory-level mode.
    pub fn mode(&self) -> Mode {
        match self.mode {
            ModeArg::HintInfer => Mode::HintInfer,
            ModeArg::Rft => Mode::Rft,
            ModeArg::Plain => Mode::Plain,
            ModeArg::Judge => Mode::Judge,
        }
    }

    /// The row-level parameters.
    pub fn params(&self) -> GenerationParams {
        GenerationParams {
            temperature: self.temperature.unwrap_or(match self.mode {
                ModeArg::Plain => 0.0,
                ModeArg::HintInfer | ModeArg::Rft | ModeArg::Judge => 0.6,
            }),
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            max_new_tokens: self.max_new_tokens,
            max_tool_calls: self.max_tool_calls,
            seed: self.seed,
        }
    }

    /// The hint settings, wire form (absent values take the coordinator-side defaults).
    pub fn hints_proto(&self) -> start_schemas::proto::HintSettings {
        start_schemas::proto::HintSettings {
            trigger_probability: self.trigger_probability,
            max_trigger_hints: Some(self.max_trigger_hints),
            end_hints: Some(self.end_hints),
            min_tool_calls_left: Some(self.min_tool_calls_left),
            min_context_left: Some(self.min_context_left),
            run_answer_code: self.run_answer_code,
            show_calls_left: self.show_calls_left,
        }
    }

    /// The tools enabled: those given, else Python alone.
    pub fn tool_set(&self) -> ToolSet {
        if self.tools.is_empty() {
            ToolSet::PYTHON
        } else {
            ToolSet::of(self.tools.iter().copied())
        }
    }

    /// The job spec these arguments ask for, to be completed with where it goes.
    pub fn spec(&self) -> start_schemas::proto::JobSpec {
        start_schemas::proto::JobSpec {
            mode: start_schemas::proto::GenerationMode::from(self.mode()) as i32,
            params: Some(self.params().to_proto(self.samples.max(1))),
            hints: Some(self.hints_proto()),
            tools: self.tool_set().names(),
            ..Default::default()
        }
    }
}

/// Arguments shared by `startctl generate` and `startctl run`: sampling plus the local engine.
#[derive(clap::Args, Clone)]
pub struct GenOptions {
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Sequence slots decoded together.
    #[arg(long, default_value_t = 4)]
    pub slots: usize,
    #[command(flatten)]
    pub engine: start_worker::EngineArgs,
    /// Context per slot, in tokens.
    #[arg(long, default_value_t = 2048)]
    pub ctx: u32,
    /// Text that opens the assistant's thinking (QwQ: "<think>\n").
    #[arg(long, env = "START_THINK_PREFIX", default_value = "")]
    pub think_prefix: String,
    /// Text that ends thinking (QwQ: "</think>"); empty for models without.
    #[arg(long, env = "START_THINK_END", default_value = "")]
    pub think_end: String,
    /// Job id recorded on every row (a re-run with the same id and seed repeats the tokens).
    #[arg(long, default_value = "local")]
    pub job_id: String,
    /// Sandbox for tool calls and code grading.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,
}

/// Arguments of `startctl generate`.
#[derive(clap::Args)]
pub struct GenerateArgs {
    /// Problem files.
    #[arg(long, required = true)]
    problems: Vec<PathBuf>,
    /// Output dataset: a directory, or an object-store URL (`s3://bucket/prefix`, ...).
    #[arg(long)]
    out: String,
    #[command(flatten)]
    options: GenOptions,
}

/// Runs `startctl generate`.
pub fn run(args: GenerateArgs) -> anyhow::Result<Outcome> {
    let mut checker = Checker::default();
    let mut problems = Vec::new();
    for f in &args.problems {
        checker.check_file(f, &mut |d| eprintln!("{d}"), &mut |p| problems.push(p));
    }
    if checker.errors > 0 {
        eprintln!(
            "{} errors in the problem files; nothing generated",
            checker.errors
        );
        return Ok(Outcome::InvalidInput);
    }
    let mode = start_schemas::proto::GenerationMode::from(args.options.sampling.mode());
    if let Err(e) = start_coordinator::spec::check_mode_kinds(mode, &problems) {
        eprintln!("{e}; nothing generated");
        return Ok(Outcome::InvalidInput);
    }
    runtime()?.block_on(generate(problems, &args.out, &args.options))?;
    Ok(Outcome::Ok)
}

/// Problems per unit (and so per shard) in local generation.
const UNIT_SIZE: usize = 64;

/// Loads the model and starts engine, sandbox and grader for local generation: the worker's
/// pipeline, built from the same [`PipelineOptions`].
pub async fn local_pipeline(
    o: &GenOptions,
    registry: &start_telemetry::Registry,
) -> anyhow::Result<(Arc<Pipeline>, Option<Arc<start_sandbox::Sandbox>>)> {
    let engine = o.engine.choice()?;
    if let start_worker::EngineChoice::Llama { model, .. } = &engine {
        if !model.is_file() {
            anyhow::bail!(
                "model {}: no such file (run scripts/setup for the default one)",
                model.display()
            );
        }
    }
    let sandbox = start_or_warn(
        o.backend,
        "code blocks get an error as their output and code problems are graded wrong",
    )
    .await;
    let options = PipelineOptions {
        engine,
        slots: o.slots.max(1),
        ctx_per_slot: o.ctx,
        think_prefix: o.think_prefix.clone(),
        think_end: o.think_end.clone(),
        worker_id: std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into()),
    };
    let pipeline = Pipeline::start(&options, sandbox.clone(), registry)
        .await
        .with_context(|| format!("starting the engine on {}", o.engine.describe()))?;
    Ok((Arc::new(pipeline), sandbox))
}

/// Generates every sample of every problem into the dataset at `out`: the problems are cut
/// into units and each runs exactly as a leased unit runs on a worker (same checks, same
/// pipeline, one shard per unit named `{job}.u{index}.a0`); this command only records the
/// shards in the manifest, which the coordinator does in a cluster.
pub async fn generate(problems: Vec<Problem>, out: &str, o: &GenOptions) -> anyhow::Result<()> {
    let registry = start_telemetry::Registry::default();
    let (pipeline, sandbox) = local_pipeline(o, &registry).await?;
    let spec = proto::JobSpec {
        name: o.job_id.clone(),
        unit_size: UNIT_SIZE as u32,
        ..o.sampling.spec()
    };
    let samples = o.sampling.samples.max(1);
    let total = problems.len() as u64 * u64::from(samples);
    eprintln!(
        "generating {total} trajectories ({} problems x {samples} samples, {:?} mode) with {} on {} slots -> {}",
        problems.len(),
        o.sampling.mode(),
        pipeline.model_name,
        o.slots,
        out
    );
    // One client for the units' uploads and this command's commits.
    let store_root = StoreRoot::parse(out)?;
    let dataset = store_root.dataset("")?;
    let card = CardInfo {
        title: o.job_id.clone(),
        spec_text: Some(format!("{spec:#?}")),
        model: Some((pipeline.model_name.clone(), pipeline.model_sha256.clone())),
        counts: Vec::new(),
    };
    let units = PipelineUnits {
        pipeline: pipeline.clone(),
        store_root,
    };
    let (progress, mut progressed) = tokio::sync::mpsc::unbounded_channel();
    let mut pending = FuturesUnordered::new();
    for (index, chunk) in problems.chunks(UNIT_SIZE).enumerate() {
        let unit_id = UnitId::new(&o.job_id, index);
        pending.push(units.run(
            proto::WorkUnit {
                unit_id: unit_id.to_string(),
                job_id: o.job_id.clone(),
                lease_id: LeaseId::new(unit_id, 0, 0).to_string(),
                lease_expires_at_ms: 0,
                spec: Some(spec.clone()),
                problems: chunk.iter().map(proto::Problem::from).collect(),
                attempt: 0,
            },
            progress.clone(),
        ));
    }
    drop(progress);
    let started = Instant::now();
    let metrics = &pipeline.metrics;
    let mut done = 0u64;
    let mut failed = None;
    let busy_secs = || {
        pipeline
            .engine
            .stats()
            .slot_busy_nanos
            .load(Ordering::Relaxed) as f64
            / 1e9
    };
    // When fewer trajectories were left than slots: from then on slots idle for want of work
    // (the drain), which no scheduling can help; the occupancy until then is the scheduler's.
    let mut drain_began: Option<(f64, f64)> = None;
    while !pending.is_empty() {
        tokio::select! {
            Some(_) = progressed.recv() => {
                done += 1;
                let secs = started.elapsed().as_secs_f64();
                if drain_began.is_none() && total - done < o.slots as u64 {
                    drain_began = Some((secs, busy_secs()));
                }
                let graded = metrics.trajectories.get().max(1);
                eprint!(
                    "\r[{done}/{total}] {:.1} tok/s, {} tool calls, accuracy {:.1}%, ETA {:.0}s   ",
                    metrics.tokens.get() as f64 / secs,
                    metrics.tool_calls.get(),
                    100.0 * metrics.correct.get() as f64 / graded as f64,
                    secs / done as f64 * total.saturating_sub(done) as f64
                );
                let _ = std::io::stderr().flush();
            }
            Some(report) = pending.next() => {
                match (&report.shard, report.error.is_empty()) {
                    (Some(shard), true) => {
                        start_dataset::commit(&dataset, vec![ShardEntry::reported(shard)], Some(&card))
                            .await
                            .with_context(|| format!("committing {} to {dataset}", shard.path))?;
                    }
                    _ => {
                        failed.get_or_insert(format!("unit {}: {}", report.unit_id, report.error));
                    }
                }
            }
        }
    }
    eprintln!();
    if let Some(sb) = &sandbox {
        sb.shutdown().await;
    }
    if let Some(error) = failed {
        anyhow::bail!("{error}; the shards of the other units are in {}", out);
    }
    let secs = started.elapsed().as_secs_f64();
    // Slot time in use over the slots' time since the first unit started (model loading left
    // out; the first prefill and the last trajectories' drain counted), and the same until the
    // drain began.
    let slots = o.slots.max(1) as f64;
    let occupancy = 100.0 * busy_secs() / (slots * secs);
    let (until, busy_until) = drain_began.unwrap_or((secs, busy_secs()));
    let before_drain = 100.0 * busy_until / (slots * until.max(1e-9));
    crate::inspect::summarise(out).await?;
    println!(
        "{} trajectories, {} tokens in {:.1}s ({:.1} tok/s), {} tool calls, {} errored ({} by the sandbox), slot occupancy {occupancy:.1}% ({before_drain:.1}% before the drain) -> {}",
        metrics.trajectories.get(),
        metrics.tokens.get(),
        secs,
        metrics.tokens.get() as f64 / secs,
        metrics.tool_calls.get(),
        metrics.errored.get(),
        metrics.sandbox_errors.get(),
        out
    );
    Ok(())
}
