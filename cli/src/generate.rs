//! `startctl generate`: engine, sandbox and grader on one machine, writing trajectory shards.

use crate::sandbox::{runtime, start_or_warn, Backend};
use crate::Outcome;
use anyhow::Context;
use futures_util::stream::{FuturesUnordered, StreamExt};
use start_engine::{Engine, EngineConfig};
use start_grader::Grader;
use start_schemas::model::{default_model_path, sha256_file};
use start_schemas::problem::Problem;
use start_schemas::proto;
use start_schemas::shard::{ShardOptions, ShardWriter};
use start_schemas::trajectory::{hint_defaults, GenerationParams, Mode, Trajectory};
use start_schemas::validate::Checker;
use start_worker::job_params;
use start_worker::Pipeline;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
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
}

impl SamplingArgs {
    /// The trajectory-level mode.
    pub fn mode(&self) -> Mode {
        match self.mode {
            ModeArg::HintInfer => Mode::HintInfer,
            ModeArg::Rft => Mode::Rft,
            ModeArg::Plain => Mode::Plain,
        }
    }

    /// The row-level parameters.
    pub fn params(&self) -> GenerationParams {
        GenerationParams {
            temperature: self.temperature.unwrap_or(match self.mode {
                ModeArg::Plain => 0.0,
                ModeArg::HintInfer | ModeArg::Rft => 0.6,
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
        }
    }

    /// The job spec these arguments ask for, to be completed with where it goes.
    pub fn spec(&self) -> start_schemas::proto::JobSpec {
        start_schemas::proto::JobSpec {
            mode: start_schemas::proto::GenerationMode::from(self.mode()) as i32,
            params: Some(self.params().to_proto(self.samples.max(1))),
            hints: Some(self.hints_proto()),
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
    /// GGUF model; the default model when absent.
    #[arg(long, env = "START_MODEL")]
    pub model: Option<PathBuf>,
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
    /// Output dataset directory.
    #[arg(long)]
    out: PathBuf,
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
    runtime()?.block_on(generate(problems, &args.out, &args.options))?;
    Ok(Outcome::Ok)
}

/// Running totals for the progress line and the summary.
#[derive(Default)]
struct Totals {
    done: u64,
    tokens: u64,
    tool_calls: u64,
    graded: u64,
    correct: u64,
    by_group: BTreeMap<(String, String), (u64, u64)>,
}

/// Loads the model and starts engine, sandbox and grader for local generation.
pub async fn local_pipeline(
    o: &GenOptions,
    registry: &start_telemetry::Registry,
) -> anyhow::Result<(Arc<Pipeline>, Option<Arc<start_sandbox::Sandbox>>)> {
    let model = o.model.clone().unwrap_or_else(default_model_path);
    let model_sha256 = sha256_file(&model).with_context(|| {
        format!(
            "model {} (run scripts/setup for the default one)",
            model.display()
        )
    })?;
    let sandbox = start_or_warn(
        o.backend,
        "code blocks get an error as their output and code problems are graded wrong",
    )
    .await;
    let mut config = EngineConfig::new(&model);
    config.slots = o.slots.max(1);
    config.ctx_per_slot = o.ctx;
    config.think_prefix = o.think_prefix.clone();
    config.think_end = Some(o.think_end.clone()).filter(|s| !s.is_empty());
    let engine = Engine::start(config, sandbox.clone(), tokio::runtime::Handle::current())?;
    let pipeline = Arc::new(Pipeline {
        model_name: engine.info.name.clone(),
        engine,
        grader: Grader::new(sandbox.clone()),
        model_sha256,
        sandbox: sandbox
            .as_ref()
            .map_or_else(|| "none".to_string(), |s| s.identity().to_string()),
        worker_id: std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into()),
        metrics: start_worker::PipelineMetrics::new(registry),
    });
    Ok((pipeline, sandbox))
}

/// Generates every sample of every problem into the dataset at `out`.
pub async fn generate(problems: Vec<Problem>, out: &Path, o: &GenOptions) -> anyhow::Result<()> {
    let (pipeline, sandbox) = local_pipeline(o, &start_telemetry::Registry::default()).await?;
    let spec = proto::JobSpec {
        name: o.job_id.clone(),
        ..o.sampling.spec()
    };
    let job = job_params(
        &o.job_id,
        &spec,
        pipeline.engine.info.default_trigger_probability,
    );
    let samples = o.sampling.samples.max(1);
    let total = problems.len() as u64 * u64::from(samples);
    eprintln!(
        "generating {total} trajectories ({} problems x {samples} samples, {:?} mode) with {} on {} slots -> {}",
        problems.len(),
        job.mode,
        pipeline.model_name,
        o.slots,
        out.display()
    );
    let started = Instant::now();
    let mut pending = FuturesUnordered::new();
    for problem in problems.into_iter().map(Arc::new) {
        for sample in 0..samples {
            let (pipeline, problem, job) = (pipeline.clone(), problem.clone(), job.clone());
            pending.push(async move { pipeline.trajectory(problem, sample, &job).await });
        }
    }
    let mut totals = Totals::default();
    let mut buffer: Vec<Trajectory> = Vec::new();
    let mut shard_no = 0;
    let flush = |buffer: &mut Vec<Trajectory>, shard_no: &mut usize| -> anyhow::Result<()> {
        if buffer.is_empty() {
            return Ok(());
        }
        // Rows go out in a stable order, whatever order they finished in.
        buffer
            .sort_by(|a, b| (&a.problem_id, a.sample_index).cmp(&(&b.problem_id, b.sample_index)));
        let mut w = ShardWriter::create(
            out,
            &format!("{}-{:05}", o.job_id, shard_no),
            &ShardOptions::default(),
        )?;
        w.write(buffer)?;
        w.commit()?;
        *shard_no += 1;
        buffer.clear();
        Ok(())
    };
    while let Some(t) = pending.next().await {
        let t = t?;
        totals.done += 1;
        totals.tokens += u64::from(t.completion_tokens);
        totals.tool_calls += t.tool_calls.len() as u64;
        totals.graded += 1;
        totals.correct += u64::from(t.correct == Some(true));
        let cell = totals
            .by_group
            .entry((t.source.clone(), t.kind.to_string()))
            .or_default();
        cell.0 += 1;
        cell.1 += u64::from(t.correct == Some(true));
        buffer.push(t);
        if buffer.len() >= 256 {
            flush(&mut buffer, &mut shard_no)?;
        }
        let secs = started.elapsed().as_secs_f64();
        let eta = secs / totals.done as f64 * (total - totals.done) as f64;
        eprint!(
            "\r[{}/{}] {:.1} tok/s, {} tool calls, accuracy {:.1}%, ETA {:.0}s   ",
            totals.done,
            total,
            totals.tokens as f64 / secs,
            totals.tool_calls,
            100.0 * totals.correct as f64 / totals.graded as f64,
            eta
        );
        let _ = std::io::stderr().flush();
    }
    flush(&mut buffer, &mut shard_no)?;
    eprintln!();
    if let Some(sb) = &sandbox {
        sb.shutdown().await;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{:<16} {:<7} {:>8} {:>8} {:>9}",
        "source", "kind", "samples", "correct", "accuracy"
    );
    for ((source, kind), (n, c)) in &totals.by_group {
        println!(
            "{source:<16} {kind:<7} {n:>8} {c:>8} {:>8.1}%",
            100.0 * *c as f64 / *n as f64
        );
    }
    println!(
        "{} trajectories, {} tokens in {:.1}s ({:.1} tok/s), {} tool calls -> {}",
        totals.done,
        totals.tokens,
        secs,
        totals.tokens as f64 / secs,
        totals.tool_calls,
        out.display()
    );
    Ok(())
}
