//! One trajectory, end to end: prompt, engine (with its sandbox tool loop), grading, the row.
//! Shared by the cluster worker and `startctl generate`, so that both produce identical rows.

use sha2::{Digest, Sha256};
use start_engine::{Engine, GenRequest};
use start_grader::Grader;
use start_schemas::problem::{
    choice_letter, choice_permutation, Problem, ProblemKind, Target, TestStyle,
};
use start_schemas::trajectory::{GenerationParams, Mode, SegmentKind, Trajectory};
use start_telemetry::{Counter, Histogram, Registry};
use std::sync::Arc;

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
    /// End-of-thinking hints in hint-infer mode.
    pub end_hints: u32,
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
        }
    }
}

/// Engine, grader and the facts recorded on every row.
pub struct Pipeline {
    /// The engine.
    pub engine: Engine,
    /// The grader (with the same sandbox as the engine).
    pub grader: Grader,
    /// Model file name, recorded on rows.
    pub model_name: String,
    /// Model sha256, recorded on rows.
    pub model_sha256: String,
    /// Worker name recorded on rows.
    pub worker_id: String,
    /// Series.
    pub metrics: PipelineMetrics,
}

/// Why a trajectory could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] start_engine::EngineError),
}

impl Pipeline {
    /// Generates and grades sample `sample` of `problem`.
    pub async fn trajectory(
        self: &Arc<Self>,
        problem: Arc<Problem>,
        sample: u32,
        job: &JobParams,
    ) -> Result<Trajectory, PipelineError> {
        let seed = trajectory_seed(job.params.seed, &job.seed_key, problem.id.as_str(), sample);
        let permutation = match &problem.target {
            Target::Choice { choices, .. } => Some(choice_permutation(seed, choices.len())),
            _ => None,
        };
        let request = GenRequest {
            user_message: user_message(&problem, permutation.as_deref()),
            code_problem: problem.kind() == ProblemKind::Code,
            mode: job.mode,
            params: job.params.clone(),
            seed,
            end_hints: if job.mode == Mode::HintInfer {
                job.end_hints
            } else {
                0
            },
            forced_prefix: String::new(),
        };
        let out = self
            .engine
            .submit(request)
            .await
            .map_err(|_| start_engine::EngineError::Stopped)??;
        let full_text: String = out.segments.iter().map(|s| s.text.as_str()).collect();
        let answer_text: String = out
            .segments
            .iter()
            .filter(|s| s.kind != SegmentKind::Output)
            .map(|s| s.text.as_str())
            .collect();
        let grade = self
            .grader
            .grade(&problem, &answer_text, permutation.as_deref())
            .await;
        let tool_errors = out.tool_calls.iter().filter(|c| c.failed()).count() as u32;
        let m = &self.metrics;
        m.trajectories.inc();
        m.correct.add(u64::from(grade.correct));
        m.tokens.add(u64::from(out.completion_tokens));
        m.tool_calls.add(out.tool_calls.len() as u64);
        for c in &out.tool_calls {
            m.sandbox_latency.observe(c.duration_ms / 1000.0);
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
            params: job.params.clone(),
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
            worker_id: self.worker_id.clone(),
            created_at: chrono::Utc::now(),
        })
    }
}
