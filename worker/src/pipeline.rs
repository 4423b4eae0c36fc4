//! One trajectory, end to end: prompt, engine (with its sandbox tool loop), grading, the row.
//! Shared by the cluster worker and `startctl generate`, so that both produce identical rows.

use sha2::{Digest, Sha256};
use start_engine::hints::SampleTests;
use start_engine::{
    Backend, Engine, EngineConfig, GenOutput, GenRequest, OpenAiConfig, OpenAiEngine, TirConfig,
};
use start_grader::Grader;
use start_schemas::attachment::sql_table_name;
use start_schemas::problem::{
    choice_letter, choice_permutation, Problem, ShownTests, Target, TestStyle,
};
use start_schemas::tool::{ToolName, ToolSet};
use start_schemas::trajectory::{
    FinishReason, GenerationParams, HintSettings, Mode, SegmentKind, ToolOutcome, Trajectory,
};
use start_telemetry::{Counter, Gauge, Histogram, Registry};
use std::path::PathBuf;
use std::sync::Arc;
use tracing::Instrument;

/// The user message for a problem, with the option order for choice problems and, for a
/// problem with attached files, what they are and how the enabled tools reach them.
pub fn user_message(problem: &Problem, permutation: Option<&[u32]>, tools: ToolSet) -> String {
    let message = task_message(problem, permutation);
    match data_note(problem, tools) {
        Some(note) => format!("{note}\n\n{message}"),
        None => message,
    }
}

/// What a problem's attached files are, said before its question: each file's name, format and
/// size, that code finds them in its working directory (read-only), and, with the SQL tool,
/// the table each file is queried as. `None` for a problem without files.
fn data_note(problem: &Problem, tools: ToolSet) -> Option<String> {
    if problem.files.is_empty() {
        return None;
    }
    let mut note =
        String::from("Attached data (read-only, in the working directory of every code block):");
    for f in &problem.files {
        note.push_str(&format!(
            "\n- {} ({}, {} bytes)",
            f.name,
            f.format().as_str(),
            f.size.unwrap_or(0)
        ));
        if tools.contains(ToolName::Sql) {
            note.push_str(&format!("; in ```sql blocks: {}", sql_table_name(&f.name)));
        }
    }
    Some(note)
}

/// The question with what the answer must look like.
fn task_message(problem: &Problem, permutation: Option<&[u32]>) -> String {
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
        // A judge prompt is rendered whole by `startctl judge`, its format request included.
        Target::Judge => problem.question.clone(),
    }
}

/// What the user turn says of the code-execution budget when the job shows the executions
/// left (`HintSettings::show_calls_left`); each output block then ends with the count.
pub fn budget_note(max_tool_calls: u32) -> String {
    let runs = if max_tool_calls == 1 { "once" } else { "times" };
    let n = if max_tool_calls == 1 {
        String::new()
    } else {
        format!("{max_tool_calls} ")
    };
    format!(
        "\n\nYou may run code at most {n}{runs}; each output ends with the number of runs left."
    )
}

/// How many times a judge prompt is sampled again when its response holds no verdict, each
/// time with a seed of its own (derived from the trajectory's and the attempt).
pub const JUDGE_RETRIES: u32 = 2;

/// A trajectory's seed from (job seed, job, problem, sample): independent of scheduling, so a
/// unit redone by another worker after a lease expiry repeats the same tokens.
pub fn trajectory_seed(job_seed: u64, job_id: &str, problem_id: &str, sample: u32) -> u64 {
    let mut h = Sha256::new();
    h.update(job_seed.to_le_bytes());
    h.update(job_id.as_bytes());
    h.update([0]);
    h.update(problem_id.as_bytes());
    h.update(sample.to_le_bytes());
    u64::from_le_bytes(h.finalize()[..8].try_into().expect("8 bytes"))
}

/// What one job asks of every trajectory.
#[derive(Clone, Debug)]
pub struct JobParams {
    /// Recorded on every row.
    pub job_id: String,
    /// Part of every trajectory's seed: the job's name when it has one, so that resubmitting
    /// the same spec (a new job id) repeats the same tokens; else the job id.
    pub seed_key: String,
    /// Generation mode.
    pub mode: Mode,
    /// Sampling and limits.
    pub params: GenerationParams,
    /// Hint placement (hint-infer mode) and whether answer code runs.
    pub hints: HintSettings,
    /// The tools the model may call.
    pub tools: ToolSet,
}

/// The tests a code problem shows the model, for the debug hint; `None` for other kinds.
pub fn sample_tests(problem: &Problem) -> Option<SampleTests> {
    let Target::Code { tests } = &problem.target else {
        return None;
    };
    Some(match tests.style.shown() {
        ShownTests::Stdio(cases) => SampleTests::Stdio(
            cases
                .iter()
                .map(|c| (c.input.clone(), c.output.clone()))
                .collect(),
        ),
        ShownTests::Function(examples) => SampleTests::Function(
            examples
                .iter()
                .map(|e| (e.call.clone(), e.expected.clone()))
                .collect(),
        ),
    })
}

/// The text a response is graded on. Math and choice: everything the model and the hints
/// wrote (tool outputs left out), whose last answer counts. Code: the final answer only when
/// the model has thinking tags (the text after its thinking ended, nothing when it never
/// ended), so that a debug block written while thinking is never graded as the program.
pub fn graded_text(problem: &Problem, out: &GenOutput) -> String {
    let from = match (&problem.target, out.thinking_ended) {
        (Target::Code { .. }, Some(true)) => out
            .segments
            .iter()
            .position(|s| s.kind == SegmentKind::Answer)
            .unwrap_or(out.segments.len()),
        (Target::Code { .. }, Some(false)) => out.segments.len(),
        _ => 0,
    };
    out.segments[from..]
        .iter()
        .filter(|s| s.kind != SegmentKind::Output)
        .map(|s| s.text.as_str())
        .collect()
}

/// Series a pipeline updates.
#[derive(Clone)]
pub struct PipelineMetrics {
    /// Trajectories finished.
    pub trajectories: Counter,
    /// Of which graded correct.
    pub correct: Counter,
    /// Completion tokens (rate() gives tokens/s).
    pub tokens: Counter,
    /// Code executions.
    pub tool_calls: Counter,
    /// Round trip of each code execution, seconds.
    pub sandbox_latency: Histogram,
    /// Trajectories that ended with `finish_reason = error` (infrastructure, not the model).
    pub errored: Counter,
    /// Of which because the sandbox could not run a block (its runners failed twice).
    pub sandbox_errors: Counter,
    /// Code executions that failed, by outcome (`error`, `timeout`, `memory`, `sandbox`);
    /// every label is registered at start, so a rate reads 0 before the first failure.
    pub tool_failures: Vec<(ToolOutcome, Counter)>,
}

impl PipelineMetrics {
    /// Registers the series.
    pub fn new(r: &Registry) -> Self {
        Self {
            trajectories: r.counter(
                "start_worker_trajectories_total",
                "Trajectories generated and graded.",
            ),
            correct: r.counter("start_worker_correct_total", "Trajectories graded correct."),
            tokens: r.counter(
                "start_worker_completion_tokens_total",
                "Completion tokens generated.",
            ),
            tool_calls: r.counter("start_worker_tool_calls_total", "Code executions."),
            sandbox_latency: r.histogram(
                "start_worker_sandbox_seconds",
                "Round trip of one code execution.",
                &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
            ),
            errored: r.counter(
                "start_worker_errored_total",
                "Trajectories that ended with finish_reason = error (infrastructure, not the \
                 model); not graded, never exported.",
            ),
            sandbox_errors: r.counter(
                "start_worker_sandbox_errors_total",
                "Trajectories ended because the sandbox could not run a block after a retry.",
            ),
            tool_failures: ToolOutcome::ALL[1..]
                .iter()
                .map(|o| {
                    let c = r.counter_with(
                        "start_worker_tool_call_failures_total",
                        "Code executions that failed, by outcome: the program's error, the \
                         time or memory limit, or the sandbox itself.",
                        Some(("outcome", o.as_str())),
                    );
                    (*o, c)
                })
                .collect(),
        }
    }
}

/// The sandbox pool's health as series, copied from its counters every few seconds (the
/// pool keeps plain atomics; the registry is the worker's).
struct SandboxSeries {
    runners: Gauge,
    idle: Gauge,
    executions: Counter,
    recycled: Counter,
    spawn_failures: Counter,
    runner_failures: Counter,
}

impl SandboxSeries {
    fn new(r: &Registry) -> Self {
        Self {
            runners: r.gauge(
                "start_worker_sandbox_runners",
                "Sandbox runners the pool keeps (0: no sandbox).",
            ),
            idle: r.gauge(
                "start_worker_sandbox_runners_idle",
                "Sandbox runners idle now.",
            ),
            executions: r.counter(
                "start_worker_sandbox_executions_total",
                "Executions the sandbox pool answered.",
            ),
            recycled: r.counter(
                "start_worker_sandbox_runners_recycled_total",
                "Sandbox runners retired and replaced.",
            ),
            spawn_failures: r.counter(
                "start_worker_sandbox_spawn_failures_total",
                "Failed attempts to start a sandbox runner.",
            ),
            runner_failures: r.counter(
                "start_worker_sandbox_runner_failures_total",
                "Runs whose runner failed (retried once on another runner).",
            ),
        }
    }

    /// Follows `sandbox` until it is dropped.
    fn watch(self, sandbox: std::sync::Weak<start_sandbox::Sandbox>) {
        tokio::spawn(async move {
            let mut last = start_sandbox::pool::PoolStats::default();
            loop {
                let Some(sb) = sandbox.upgrade() else { return };
                let now = sb.stats();
                drop(sb);
                self.runners.set(now.size as i64);
                self.idle.set(now.idle as i64);
                self.executions
                    .add(now.executions.saturating_sub(last.executions));
                self.recycled
                    .add(now.recycled.saturating_sub(last.recycled));
                self.spawn_failures
                    .add(now.spawn_failures.saturating_sub(last.spawn_failures));
                self.runner_failures.add(
                    now.infrastructure_failures
                        .saturating_sub(last.infrastructure_failures),
                );
                last = now;
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            }
        });
    }
}

/// Engine, grader and the facts recorded on every row.
pub struct Pipeline {
    /// The engine: in process, or an OpenAI-compatible server.
    pub engine: Backend,
    /// The grader (with the same sandbox as the engine).
    pub grader: Grader,
    /// Model file name (the served model's name on a server), recorded on rows.
    pub model_name: String,
    /// Model sha256 (of the server's identity on a server), recorded on rows and sent at
    /// registration, where a job spec's `model_sha256` pins it.
    pub model_sha256: String,
    /// What the server said it is, recorded on rows (`openai` backend only).
    pub model_identity: Option<String>,
    /// Which sandbox runs the code (`Sandbox::identity`, or `none`), recorded on rows.
    pub sandbox: String,
    /// Worker name recorded on rows.
    pub worker_id: String,
    /// Series.
    pub metrics: PipelineMetrics,
}

/// Why a pipeline could not start or a trajectory could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The model file could not be read.
    #[error("model {path}: {source}")]
    Model {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] start_engine::EngineError),
    /// The engine flags do not make an engine.
    #[error("{0}")]
    Options(String),
}

/// What a pipeline is built from. The worker's flags and `startctl generate`/`run` both fill
/// this, so the think markers and every engine setting reach both the same way (a `generate`
/// that forgot `think_end` would never insert an end-of-thinking hint on QwQ).
#[derive(Clone, Debug)]
pub struct PipelineOptions {
    /// What generates.
    pub engine: EngineChoice,
    /// Sequences decoded together (trajectories in flight at a server).
    pub slots: usize,
    /// Context per slot, tokens.
    pub ctx_per_slot: u32,
    /// Text that opens the assistant's thinking (QwQ: "<think>\n").
    pub think_prefix: String,
    /// Text that ends thinking (QwQ: "</think>"); empty for models without.
    pub think_end: String,
    /// Name recorded on every row as its worker.
    pub worker_id: String,
}

/// What generates: the in-process engine on a GGUF file, or an OpenAI-compatible server.
#[derive(Clone, Debug)]
pub enum EngineChoice {
    /// llama.cpp in this process.
    Llama {
        /// The GGUF model.
        model: PathBuf,
        /// Layers offloaded to the GPU (builds with the `cuda` feature).
        gpu_layers: u32,
        /// CPU threads (`None`: every core this process may use).
        threads: Option<u32>,
    },
    /// An OpenAI-compatible server (vLLM, SGLang, llama.cpp's `llama-server`).
    OpenAi {
        /// Its URL.
        endpoint: String,
        /// Bearer token.
        api_key: Option<String>,
        /// The model to ask for; the server's first when absent.
        served_model: Option<String>,
        /// How long a trajectory waits for a failed server to come back.
        outage_timeout: std::time::Duration,
        /// Trajectories under way at once (`None`: twice the slots).
        in_flight: Option<usize>,
    },
}

impl Pipeline {
    /// Starts the engine on `sandbox`: hashes and loads the model, or connects to the server
    /// (a wrong endpoint or model name fails here, naming it).
    pub async fn start(
        options: &PipelineOptions,
        sandbox: Option<Arc<start_sandbox::Sandbox>>,
        registry: &Registry,
    ) -> Result<Self, PipelineError> {
        let think_end = Some(options.think_end.clone()).filter(|s| !s.is_empty());
        // What shapes a trajectory is the same on both backends.
        let tir = TirConfig {
            ctx_per_slot: options.ctx_per_slot,
            think_prefix: options.think_prefix.clone(),
            think_end,
            ..TirConfig::default()
        };
        let (engine, model_sha256, model_identity) = match &options.engine {
            EngineChoice::Llama {
                model,
                gpu_layers,
                threads,
            } => {
                let sha = start_schemas::model::sha256_file(model).map_err(|source| {
                    PipelineError::Model {
                        path: model.clone(),
                        source,
                    }
                })?;
                let mut config = EngineConfig::new(model);
                config.slots = options.slots.max(1);
                config.tir = tir;
                config.gpu_layers = *gpu_layers;
                if let Some(n) = threads {
                    config.threads = *n as i32;
                }
                let engine =
                    Engine::start(config, sandbox.clone(), tokio::runtime::Handle::current())?;
                (Backend::Llama(engine), sha, None)
            }
            EngineChoice::OpenAi {
                endpoint,
                api_key,
                served_model,
                outage_timeout,
                in_flight,
            } => {
                let mut config = OpenAiConfig::new(endpoint.clone());
                config.in_flight = *in_flight;
                config.outage_timeout = *outage_timeout;
                config.api_key = api_key.clone();
                config.served_model = served_model.clone();
                config.slots = options.slots.max(1);
                config.tir = tir;
                let engine = OpenAiEngine::start(config, sandbox.clone()).await?;
                let identity = engine.identity.clone();
                tracing::info!(
                    endpoint = %endpoint,
                    model = %identity.model,
                    model_sha256 = %identity.sha256,
                    "generating on an OpenAI-compatible server; a job spec pins it by this model_sha256"
                );
                (
                    Backend::OpenAi(engine),
                    identity.sha256,
                    Some(identity.description),
                )
            }
        };
        let series = SandboxSeries::new(registry);
        if let Some(sb) = &sandbox {
            series.watch(Arc::downgrade(sb));
        }
        Ok(Self {
            model_name: engine.info().name.clone(),
            engine,
            grader: Grader::new(sandbox.clone()),
            model_sha256,
            model_identity,
            sandbox: sandbox
                .as_ref()
                .map_or_else(|| "none".to_string(), |s| s.identity().to_string()),
            worker_id: options.worker_id.clone(),
            metrics: PipelineMetrics::new(registry),
        })
    }

    /// Generates and grades sample `sample` of `problem`, in a span named by the problem,
    /// sample and seed (the parent of the engine's tool-call spans).
    pub async fn trajectory(
        self: &Arc<Self>,
        problem: Arc<Problem>,
        sample: u32,
        job: &JobParams,
    ) -> Result<Trajectory, PipelineError> {
        let seed = trajectory_seed(job.params.seed, &job.seed_key, problem.id.as_str(), sample);
        let span = tracing::info_span!(
            "trajectory",
            problem = %problem.id,
            sample,
            seed
        );
        self.make(problem, sample, seed, job).instrument(span).await
    }

    async fn make(
        self: &Arc<Self>,
        problem: Arc<Problem>,
        sample: u32,
        seed: u64,
        job: &JobParams,
    ) -> Result<Trajectory, PipelineError> {
        let permutation = match &problem.target {
            Target::Choice { choices, .. } => Some(choice_permutation(seed, choices.len())),
            _ => None,
        };
        let mut user_message = user_message(&problem, permutation.as_deref(), job.tools);
        let hints = job.hints.for_mode(job.mode);
        let judge = job.mode == Mode::Judge;
        if hints.show_calls_left && job.params.max_tool_calls > 0 && !judge {
            user_message.push_str(&budget_note(job.params.max_tool_calls));
        }
        let mut params = job.params.clone();
        if judge {
            // A judge reads code; it never runs any.
            params.max_tool_calls = 0;
        }
        let mut attempt = 0;
        let mut seed = seed;
        let (out, grade) = loop {
            let request = GenRequest {
                user_message: user_message.clone(),
                code_tests: sample_tests(&problem),
                mode: job.mode,
                params: params.clone(),
                seed,
                hints: hints.clone(),
                tools: job.tools,
                files: start_grader::sandbox_files(&problem),
            };
            let (out, mut grade) = self
                .generate(&problem, request, permutation.as_deref())
                .await?;
            let unparsed =
                judge && out.finish_reason != FinishReason::Error && grade.final_answer.is_none();
            if !unparsed || attempt == JUDGE_RETRIES {
                if judge {
                    grade.detail["attempts"] = serde_json::json!(attempt + 1);
                }
                break (out, grade);
            }
            attempt += 1;
            tracing::debug!(attempt, "judge response holds no verdict; sampling again");
            seed = trajectory_seed(seed, "judge-retry", problem.id.as_str(), attempt);
        };
        let full_text: String = out.segments.iter().map(|s| s.text.as_str()).collect();
        let tool_errors = out.tool_calls.iter().filter(|c| c.failed()).count() as u32;
        tracing::debug!(
            correct = ?grade.correct,
            finish = ?out.finish_reason,
            completion_tokens = out.completion_tokens,
            tool_calls = out.tool_calls.len(),
            tool_errors,
            "trajectory graded"
        );
        let m = &self.metrics;
        m.trajectories.inc();
        m.correct.add(u64::from(grade.correct == Some(true)));
        m.tokens.add(u64::from(out.completion_tokens));
        m.tool_calls.add(out.tool_calls.len() as u64);
        for c in &out.tool_calls {
            m.sandbox_latency.observe(c.duration_ms / 1000.0);
            let outcome = c.outcome();
            if let Some((_, n)) = m.tool_failures.iter().find(|(o, _)| *o == outcome) {
                n.inc();
            }
        }
        Ok(Trajectory {
            job_id: job.job_id.clone(),
            problem_id: problem.id.to_string(),
            sample_index: sample,
            source: problem.source.clone(),
            kind: problem.kind(),
            mode: job.mode,
            model_name: self.model_name.clone(),
            model_sha256: self.model_sha256.clone(),
            backend: self.engine.name().to_string(),
            model_identity: self.model_identity.clone(),
            token_ids_source: out.token_ids_source.to_string(),
            params,
            seed,
            prompt: out.prompt,
            prompt_token_ids: out.prompt_token_ids,
            generation_prefix_tokens: out.generation_prefix_tokens,
            user_message,
            generation_prefix: out.generation_prefix,
            trajectory_sha256: Trajectory::compute_sha256(&full_text),
            full_text,
            segments: out.segments,
            tool_calls: out.tool_calls,
            tools: job.tools.names(),
            figures: out.figures,
            tool_errors,
            finish_reason: out.finish_reason,
            finish_detail: out.finish_detail,
            end_of_turn_token: out.end_of_turn.as_ref().map(|(t, _)| *t),
            end_of_turn: out.end_of_turn.map(|(_, text)| text),
            tool_limit_reached: out.tool_limit_reached,
            hint_settings: Some(hints),
            hint_library_sha256: self.engine.info().hint_library_sha256.clone(),
            sandbox: self.sandbox.clone(),
            final_answer: grade.final_answer,
            correct: grade.correct,
            score: Some(grade.score),
            grading_detail: Some(grade.detail.to_string()),
            choice_permutation: permutation,
            prompt_tokens: out.prompt_tokens,
            completion_tokens: out.completion_tokens,
            wall_time_s: out.wall_time_s,
            worker_id: self.worker_id.clone(),
            created_at: chrono::Utc::now(),
        })
    }

    /// One generation of `request` and its grade.
    async fn generate(
        &self,
        problem: &Problem,
        request: GenRequest,
        permutation: Option<&[u32]>,
    ) -> Result<(GenOutput, start_grader::Grade), PipelineError> {
        let out = self
            .engine
            .submit(request)
            .await
            .map_err(|_| start_engine::EngineError::Stopped)??;
        let grade = if out.finish_reason == FinishReason::Error {
            // Cut short by the infrastructure (a sandbox that failed twice, a KV cache, a
            // server's refusal), not by the model: not graded, so it counts as neither right
            // nor wrong anywhere (D_seed's baseline included), and export leaves it out.
            m_errored(&self.metrics, &out);
            start_grader::Grade {
                correct: None,
                score: 0.0,
                final_answer: None,
                detail: serde_json::json!({
                    "method": "not graded",
                    "reason": "the trajectory ended with finish_reason = error",
                    "cause": out.finish_detail,
                }),
            }
        } else {
            self.grader
                .grade(problem, &graded_text(problem, &out), permutation)
                .await
        };
        Ok((out, grade))
    }
}

/// Counts a trajectory that ended with `error`, and whether the sandbox was the cause (its last
/// tool call then carries the failure and never got an exit code).
fn m_errored(m: &PipelineMetrics, out: &GenOutput) {
    m.errored.inc();
    if out
        .tool_calls
        .last()
        .is_some_and(|c| c.error.is_some() && c.exit_code.is_none() && !c.timed_out)
    {
        m.sandbox_errors.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use start_schemas::trajectory::Segment;

    fn out(segments: Vec<Segment>, thinking_ended: Option<bool>) -> GenOutput {
        GenOutput {
            prompt: String::new(),
            generation_prefix: String::new(),
            prompt_tokens: 0,
            prompt_token_ids: Vec::new(),
            generation_prefix_tokens: 0,
            end_of_turn: None,
            thinking_ended,
            tool_limit_reached: false,
            segments,
            tool_calls: Vec::new(),
            figures: Vec::new(),
            finish_reason: FinishReason::Stop,
            completion_tokens: 0,
            wall_time_s: 0.0,
            token_ids_source: "engine",
            finish_detail: None,
        }
    }

    fn problem(row: serde_json::Value) -> Problem {
        start_schemas::validate::check_row(&row, &start_schemas::rows::Location::file("t")).unwrap()
    }

    #[test]
    fn code_is_graded_on_the_final_answer_never_on_a_debug_block() {
        let code = problem(
            serde_json::json!({"source": "t", "kind": "code", "question": "q",
            "tests": {"type": "stdio", "cases": [{"input": "1\n", "output": "1\n", "public": true}]}}),
        );
        let segments = vec![
            Segment::new(SegmentKind::Reasoning, "Let me test.\n", vec![1]),
            Segment::new(
                SegmentKind::Code,
                "```python\nprint('debug')\n```\n",
                vec![2],
            ),
            Segment::new(SegmentKind::Output, "```output\ndebug\n```\n", vec![3]),
            Segment::new(
                SegmentKind::Answer,
                "Final:\n```python\nprint(input())\n```",
                vec![4],
            ),
        ];
        let text = graded_text(&code, &out(segments.clone(), Some(true)));
        assert_eq!(text, "Final:\n```python\nprint(input())\n```");
        assert_eq!(
            graded_text(&code, &out(segments[..3].to_vec(), Some(false))),
            ""
        );
        // Without thinking tags the whole turn counts; its last block is the program.
        let all = graded_text(&code, &out(segments.clone(), None));
        assert!(all.starts_with("Let me test.") && !all.contains("```output"));
        let math = problem(
            serde_json::json!({"source": "t", "kind": "math", "question": "q", "answer": "1"}),
        );
        assert!(graded_text(&math, &out(segments, Some(true))).starts_with("Let me test."));
        assert_eq!(
            sample_tests(&code),
            Some(SampleTests::Stdio(vec![("1\n".into(), "1\n".into())]))
        );
    }
}
