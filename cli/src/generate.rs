//! `startctl generate`: engine, sandbox and grader on one machine, writing trajectory shards.

use crate::sandbox::{runtime, start_or_warn, Backend};
use crate::Outcome;
use anyhow::Context;
use futures_util::stream::{FuturesUnordered, StreamExt};
use sha2::{Digest, Sha256};
use start_engine::{Engine, EngineConfig, GenRequest};
use start_grader::Grader;
use start_schemas::model::{default_model_path, sha256_file};
use start_schemas::problem::{
    choice_letter, choice_permutation, Problem, ProblemKind, Target, TestStyle,
};
use start_schemas::shard::{ShardOptions, ShardWriter};
use start_schemas::trajectory::{GenerationParams, Mode, Trajectory};
use start_schemas::validate::Checker;
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

/// Arguments shared by `startctl generate` and `startctl run`.
#[derive(clap::Args, Clone)]
pub struct GenOptions {
    /// Generation mode.
    #[arg(long, value_enum, default_value_t = ModeArg::HintInfer)]
    pub mode: ModeArg,
    /// Samples per problem (the paper's RFT uses 16).
    #[arg(long, default_value_t = 1)]
    pub samples: u32,
    /// Sequence slots decoded together.
    #[arg(long, default_value_t = 4)]
    pub slots: usize,
    /// GGUF model; the default model when absent.
    #[arg(long, env = "START_MODEL")]
    pub model: Option<PathBuf>,
    /// Most new tokens per trajectory.
    #[arg(long, default_value_t = 1024)]
    pub max_new_tokens: u32,
    /// Context per slot, in tokens.
    #[arg(long, default_value_t = 2048)]
    pub ctx: u32,
    /// Temperature (the paper's RFT: 0.6).
    #[arg(long, default_value_t = 0.6)]
    pub temperature: f32,
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
    /// End-of-thinking hints in hint-infer mode (sequential test-time scaling rounds).
    #[arg(long, default_value_t = 1)]
    pub end_hints: u32,
    /// Job seed; with the job id, it fixes every trajectory's seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
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

/// The user message for a problem, with the option order for choice problems.
pub fn user_message(problem: &Problem, permutation: Option<&[u32]>) -> String {
    match &problem.target {
        Target::Math { .. } => format!(
            "{}\n\nPlease reason step by step, and put your final answer within \\boxed{{}}.",
            problem.question
        ),
        Target::Choice { choices, .. } => {
            let order: Vec<usize> = permutation.map_or_else(
                || (0..choices.len()).collect(),
                |p| p.iter().map(|&i| i as usize).collect(),
            );
            let options: String = order
                .iter()
                .enumerate()
                .map(|(shown, &orig)| format!("{}. {}\n", choice_letter(shown), choices[orig]))
                .collect();
            format!(
                "{}\n\n{options}\nPlease reason step by step, and put the letter of the correct option within \\boxed{{}}.",
                problem.question
            )
        }
        Target::Code { tests } => {
            let how = match &tests.style {
                TestStyle::Stdio { .. } => {
                    "The program reads standard input and writes standard output."
                }
                TestStyle::Check { .. } => "Write the complete function.",
            };
            format!(
                "{}\n\n{how} Give the final program in one ```python code block.",
                problem.question
            )
        }
    }
}

/// A trajectory's seed from (job seed, job, problem, sample): independent of scheduling.
pub fn trajectory_seed(job_seed: u64, job_id: &str, problem_id: &str, sample: u32) -> u64 {
    let mut h = Sha256::new();
    h.update(job_seed.to_le_bytes());
    h.update(job_id.as_bytes());
    h.update([0]);
    h.update(problem_id.as_bytes());
    h.update(sample.to_le_bytes());
    u64::from_le_bytes(h.finalize()[..8].try_into().expect("8 bytes"))
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

/// Generates every sample of every problem into the dataset at `out`.
pub async fn generate(problems: Vec<Problem>, out: &Path, o: &GenOptions) -> anyhow::Result<()> {
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
    let engine = Engine::start(config, sandbox.clone(), tokio::runtime::Handle::current())?;
    let grader = Arc::new(Grader::new(sandbox.clone()));
    let mode = match o.mode {
        ModeArg::HintInfer => Mode::HintInfer,
        ModeArg::Rft => Mode::Rft,
        ModeArg::Plain => Mode::Plain,
    };
    let params = GenerationParams {
        temperature: o.temperature,
        top_k: o.top_k,
        top_p: o.top_p,
        min_p: o.min_p,
        repeat_penalty: o.repeat_penalty,
        max_new_tokens: o.max_new_tokens,
        max_tool_calls: o.max_tool_calls,
        seed: o.seed,
    };
    let worker_id = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
    let total = problems.len() as u64 * u64::from(o.samples.max(1));
    eprintln!(
        "generating {total} trajectories ({} problems x {} samples, {:?} mode) with {} on {} slots -> {}",
        problems.len(),
        o.samples.max(1),
        mode,
        engine.info.name,
        o.slots,
        out.display()
    );
    let started = Instant::now();
    let mut pending = FuturesUnordered::new();
    for problem in problems.into_iter().map(Arc::new) {
        for sample in 0..o.samples.max(1) {
            let seed = trajectory_seed(o.seed, &o.job_id, problem.id.as_str(), sample);
            let permutation = match &problem.target {
                Target::Choice { choices, .. } => Some(choice_permutation(seed, choices.len())),
                _ => None,
            };
            let request = GenRequest {
                user_message: user_message(&problem, permutation.as_deref()),
                code_problem: problem.kind() == ProblemKind::Code,
                mode,
                params: params.clone(),
                seed,
                end_hints: if mode == Mode::HintInfer {
                    o.end_hints
                } else {
                    0
                },
                forced_prefix: String::new(),
            };
            let rx = engine.submit(request);
            let grader = grader.clone();
            let params = params.clone();
            let problem = problem.clone();
            pending.push(async move {
                let out = rx
                    .await
                    .map_err(|_| anyhow::anyhow!("the engine stopped"))??;
                let full_text: String = out.segments.iter().map(|s| s.text.as_str()).collect();
                let answer_text: String = out
                    .segments
                    .iter()
                    .filter(|s| s.kind != start_schemas::trajectory::SegmentKind::Output)
                    .map(|s| s.text.as_str())
                    .collect();
                let grade = grader
                    .grade(&problem, &answer_text, permutation.as_deref())
                    .await;
                let tool_errors = out.tool_calls.iter().filter(|c| c.failed()).count() as u32;
                Ok::<_, anyhow::Error>(Trajectory {
                    job_id: String::new(),
                    problem_id: problem.id.to_string(),
                    sample_index: sample,
                    source: problem.source.clone(),
                    kind: problem.kind(),
                    mode,
                    model_name: String::new(),
                    model_sha256: String::new(),
                    params: params.clone(),
                    seed,
                    prompt: out.prompt,
                    trajectory_sha256: Trajectory::compute_sha256(&full_text),
                    full_text,
                    segments: out.segments,
                    tool_calls: out.tool_calls,
                    tool_errors,
                    finish_reason: out.finish_reason,
                    final_answer: grade.final_answer,
                    correct: Some(grade.correct),
                    score: Some(grade.score),
                    grading_detail: Some(grade.detail.to_string()),
                    choice_permutation: permutation,
                    prompt_tokens: out.prompt_tokens,
                    completion_tokens: out.completion_tokens,
                    wall_time_s: out.wall_time_s,
                    worker_id: String::new(),
                    created_at: chrono::Utc::now(),
                })
            });
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
        let mut t = t?;
        t.job_id = o.job_id.clone();
        t.model_name = engine.info.name.clone();
        t.model_sha256 = model_sha256.clone();
        t.worker_id = worker_id.clone();
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
