//! The trajectory record, start's output: one generated solution a row.
//!
//! The text is kept exactly as generated, token ids included, never re-rendered through a chat
//! template (QwQ's template strips earlier reasoning, so re-rendering would train on text the
//! model never produced). The Arrow schema is explicit, versioned and documented as a table in
//! schemas/README.md; rows move between Rust and Arrow through serde.
//!
//! Why one file over 600 lines: the row type, its Arrow schema and both conversions live
//! together, so that a new column is one edit here, checked by the round-trip tests below.

use crate::problem::ProblemKind;
use arrow_array::RecordBatch;
use arrow_schema::{ArrowError, DataType, Field, FieldRef, Fields, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// Version of the trajectory schema; bumped on any change of columns or meaning, recorded in
/// every shard's Parquet metadata and in the manifest. Version 2 added the hint provenance, the
/// exact user turn, the generation prefix, the end-of-turn token, the prompt's token ids, the
/// hint settings and the tool-limit flag (schemas/README.md, "Migration"). Version 3 added the
/// backend, the server's identity and where token ids come from; version 4 the enabled tools,
/// each tool call's tool and the figures code drew.
pub const SCHEMA_VERSION: u32 = 4;

/// Every schema version this build reads: a shard of an older version reads with the columns
/// it lacks at their defaults (empty, absent, false; tools: python).
pub const READABLE_SCHEMA_VERSIONS: [u32; 4] = [1, 2, 3, 4];

/// Time zone of `created_at`. An offset rather than the name "UTC" because arrow-rs parses
/// named zones only with chrono-tz compiled in; every reader (pyarrow, DuckDB, polars) reads it
/// as UTC all the same.
pub const UTC_TZ: &str = "+00:00";

/// Parquet key-value metadata key holding [`SCHEMA_VERSION`].
pub const SCHEMA_VERSION_KEY: &str = "start.schema_version";

/// How the trajectory was generated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Hints inserted at trigger words and at the end of thinking.
    HintInfer,
    /// No hints; one of several samples for rejection sampling.
    Rft,
    /// The model alone.
    Plain,
}

impl From<Mode> for crate::proto::GenerationMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::HintInfer => Self::HintInfer,
            Mode::Rft => Self::Rft,
            Mode::Plain => Self::Plain,
        }
    }
}

impl Mode {
    /// The mode of a wire value; `None` for UNSPECIFIED (which specs are refused for).
    pub fn from_proto(m: crate::proto::GenerationMode) -> Option<Self> {
        match m {
            crate::proto::GenerationMode::HintInfer => Some(Self::HintInfer),
            crate::proto::GenerationMode::Rft => Some(Self::Rft),
            crate::proto::GenerationMode::Plain => Some(Self::Plain),
            crate::proto::GenerationMode::Unspecified => None,
        }
    }

    /// The name used in files (`hint-infer`, `rft`, `plain`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HintInfer => "hint-infer",
            Self::Rft => "rft",
            Self::Plain => "plain",
        }
    }
}

/// What a stretch of the trajectory is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SegmentKind {
    /// Text the model generated while thinking.
    Reasoning,
    /// Text inserted by start (never generated), e.g. "Wait, maybe using Python here is a good idea."
    Hint,
    /// A fenced python block the model wrote and the sandbox ran.
    Code,
    /// The sandbox's output, inserted as a fenced output block.
    Output,
    /// The model's text after its thinking ended: the answer it gives.
    Answer,
}

impl SegmentKind {
    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reasoning => "reasoning",
            Self::Hint => "hint",
            Self::Code => "code",
            Self::Output => "output",
            Self::Answer => "answer",
        }
    }

    /// Whether the model generated this text (as opposed to start inserting it).
    pub fn is_generated(self) -> bool {
        matches!(self, Self::Reasoning | Self::Code | Self::Answer)
    }
}

/// A stretch of the trajectory with its exact token ids.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// What it is.
    pub kind: SegmentKind,
    /// Its text, byte for byte as decoded.
    pub text: String,
    /// Its token ids, as fed to or sampled by the model.
    pub tokens: Vec<i32>,
    /// Hint segments: which hint it is and what put it there; absent on other segments (and
    /// on every segment of a version-1 shard).
    #[serde(default)]
    pub hint: Option<HintOrigin>,
}

impl Segment {
    /// A segment that is not a hint.
    pub fn new(kind: SegmentKind, text: impl Into<String>, tokens: Vec<i32>) -> Self {
        Self {
            kind,
            text: text.into(),
            tokens,
            hint: None,
        }
    }
}

/// What inserted a hint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HintTrigger {
    /// A trigger word ("Wait", "Alternatively") while thinking: the hint replaced the word.
    Word,
    /// The model ended its thinking (the end-of-thinking text, or the end of its turn for a
    /// model without thinking tags): the hint replaced that end.
    EndOfThinking,
}

impl HintTrigger {
    /// The name used in files (`word`, `end_of_thinking`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Word => "word",
            Self::EndOfThinking => "end_of_thinking",
        }
    }
}

/// The provenance of one hint segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HintOrigin {
    /// Its kind in the hint library (`complex_calculation`, ..., `debug`).
    pub kind: String,
    /// What triggered it.
    pub trigger: HintTrigger,
    /// The generated text it replaced, rolled back out of the trajectory and the KV cache:
    /// the trigger word, the end-of-thinking text, or the end-of-turn token's text.
    pub replaced: String,
}

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model ended its answer (end-of-generation token).
    Stop,
    /// The new-token limit was reached.
    MaxNewTokens,
    /// The context window was full.
    Context,
    /// Version 1 only: the tool-call limit ended the trajectory. Since version 2 the limit
    /// leaves later code blocks as text and the model finishes (`tool_limit_reached`).
    ToolLimit,
    /// The inserted tool output reached its character limit.
    OutputLimit,
    /// The trajectory was cut by an error; `grading_detail` says which.
    Error,
}

impl FinishReason {
    /// The name used in files (`stop`, `max_new_tokens`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::MaxNewTokens => "max_new_tokens",
            Self::Context => "context",
            Self::ToolLimit => "tool_limit",
            Self::OutputLimit => "output_limit",
            Self::Error => "error",
        }
    }
}

/// Sampling parameters and limits a trajectory was generated with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenerationParams {
    /// Softmax temperature; 0 means greedy.
    pub temperature: f32,
    /// Top-k; 0 disables.
    pub top_k: u32,
    /// Nucleus threshold; 1 disables.
    pub top_p: f32,
    /// Min-p; 0 disables.
    pub min_p: f32,
    /// Repetition penalty; 1 disables.
    pub repeat_penalty: f32,
    /// New-token limit.
    pub max_new_tokens: u32,
    /// Tool-call limit.
    pub max_tool_calls: u32,
    /// The job-level seed.
    pub seed: u64,
}

impl From<&crate::proto::GenerationParams> for GenerationParams {
    fn from(p: &crate::proto::GenerationParams) -> Self {
        Self {
            temperature: p.temperature,
            top_k: p.top_k,
            top_p: p.top_p,
            min_p: p.min_p,
            repeat_penalty: p.repeat_penalty,
            max_new_tokens: p.max_new_tokens,
            max_tool_calls: p.max_tool_calls,
            seed: p.seed,
        }
    }
}

impl GenerationParams {
    /// The wire form, with the job's samples per problem (which rows do not record).
    pub fn to_proto(&self, samples: u32) -> crate::proto::GenerationParams {
        crate::proto::GenerationParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            max_new_tokens: self.max_new_tokens,
            max_tool_calls: self.max_tool_calls,
            seed: self.seed,
            samples,
        }
    }
}

/// Where and how often Hint-infer inserts hints; part of the job spec, recorded on every row as
/// it applied to that row (all zero for modes without hints).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HintSettings {
    /// Chance of a hint at each trigger word while every other condition holds.
    pub trigger_probability: f64,
    /// Trigger-word hints per trajectory at most. QwQ writes "Wait" hundreds of times on hard
    /// problems; a cap keeps those trajectories within the tool limit instead of dropping them.
    pub max_trigger_hints: u32,
    /// End-of-thinking hints per trajectory at most: the paper's sequential test-time scaling.
    pub end_hints: u32,
    /// A trigger hint only goes in while at least this many tool calls are left, so the code it
    /// asks for can run and the model can still act on its output.
    pub min_tool_calls_left: u32,
    /// A trigger hint only goes in while at least this many tokens are left (of the context and
    /// of the new-token budget), so the trajectory can still finish.
    pub min_context_left: u32,
    /// Whether code written after the end of thinking (in the final answer) is executed. Off by
    /// default: a final program run without its input writes a traceback into the answer.
    pub run_answer_code: bool,
}

/// Defaults of [`HintSettings`] where a job spec leaves a value out.
pub mod hint_defaults {
    /// Trigger hints per trajectory.
    pub const MAX_TRIGGER_HINTS: u32 = 1;
    /// End-of-thinking hints per trajectory.
    pub const END_HINTS: u32 = 1;
    /// Tool calls that must be left for a trigger hint.
    pub const MIN_TOOL_CALLS_LEFT: u32 = 2;
    /// Tokens that must be left for a trigger hint.
    pub const MIN_CONTEXT_LEFT: u32 = 512;
}

impl HintSettings {
    /// The settings a job spec asks for (`None`: every default), with the hint library's
    /// trigger probability where the spec gives none.
    pub fn from_proto(p: Option<&crate::proto::HintSettings>, library_probability: f64) -> Self {
        let p = p.cloned().unwrap_or_default();
        Self {
            trigger_probability: p.trigger_probability.unwrap_or(library_probability),
            max_trigger_hints: p
                .max_trigger_hints
                .unwrap_or(hint_defaults::MAX_TRIGGER_HINTS),
            end_hints: p.end_hints.unwrap_or(hint_defaults::END_HINTS),
            min_tool_calls_left: p
                .min_tool_calls_left
                .unwrap_or(hint_defaults::MIN_TOOL_CALLS_LEFT),
            min_context_left: p
                .min_context_left
                .unwrap_or(hint_defaults::MIN_CONTEXT_LEFT),
            run_answer_code: p.run_answer_code,
        }
    }

    /// The wire form, every value given.
    pub fn to_proto(&self) -> crate::proto::HintSettings {
        crate::proto::HintSettings {
            trigger_probability: Some(self.trigger_probability),
            max_trigger_hints: Some(self.max_trigger_hints),
            end_hints: Some(self.end_hints),
            min_tool_calls_left: Some(self.min_tool_calls_left),
            min_context_left: Some(self.min_context_left),
            run_answer_code: self.run_answer_code,
        }
    }

    /// The settings that applied to a trajectory of `mode`: hints only in hint-infer mode.
    pub fn for_mode(&self, mode: Mode) -> Self {
        if mode == Mode::HintInfer {
            return self.clone();
        }
        Self {
            trigger_probability: 0.0,
            max_trigger_hints: 0,
            end_hints: 0,
            ..self.clone()
        }
    }
}

/// One code execution of the trajectory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Index in `segments` of the code segment that was run.
    pub segment: u32,
    /// Which tool ran it (`python`, `sql`); version-1 to -3 shards read as `python`.
    #[serde(default = "default_tool")]
    pub tool: String,
    /// Exit code of the run; absent when it never finished.
    pub exit_code: Option<i32>,
    /// The wall-clock limit killed it.
    pub timed_out: bool,
    /// The memory limit killed it.
    pub memory_exceeded: bool,
    /// Its output was cut to the limit.
    pub truncated: bool,
    /// Round trip in milliseconds.
    pub duration_ms: f64,
    /// Why the sandbox could not run it (not the program's own error); absent when it ran.
    pub error: Option<String>,
}

impl ToolCall {
    /// Whether the call failed: a non-zero exit, a time-out, a memory kill or a sandbox error.
    pub fn failed(&self) -> bool {
        self.outcome() != ToolOutcome::Ok
    }

    /// How it ended; a sandbox failure first, since it says nothing of the program.
    pub fn outcome(&self) -> ToolOutcome {
        if self.error.is_some() {
            ToolOutcome::Sandbox
        } else if self.timed_out {
            ToolOutcome::Timeout
        } else if self.memory_exceeded {
            ToolOutcome::Memory
        } else if self.exit_code == Some(0) {
            ToolOutcome::Ok
        } else {
            ToolOutcome::Error
        }
    }
}

/// How one code execution ended: what the report plots and the workers' failure series are
/// labelled by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ToolOutcome {
    /// Exit code 0.
    Ok,
    /// The program failed: a non-zero exit, or none reported.
    Error,
    /// The wall-clock limit killed it.
    Timeout,
    /// The memory limit killed it.
    Memory,
    /// The sandbox could not run it (not the program's doing).
    Sandbox,
}

impl ToolOutcome {
    /// Every outcome, `Ok` first.
    pub const ALL: [ToolOutcome; 5] = [
        Self::Ok,
        Self::Error,
        Self::Timeout,
        Self::Memory,
        Self::Sandbox,
    ];

    /// Its name (`ok`, `error`, `timeout`, `memory`, `sandbox`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Timeout => "timeout",
            Self::Memory => "memory",
            Self::Sandbox => "sandbox",
        }
    }
}

/// One trajectory row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trajectory {
    /// The job that produced it.
    pub job_id: String,
    /// The problem it answers.
    pub problem_id: String,
    /// Which of the problem's samples it is (0-based).
    pub sample_index: u32,
    /// The problem's source.
    pub source: String,
    /// The problem's kind.
    pub kind: ProblemKind,
    /// How it was generated.
    pub mode: Mode,
    /// GGUF file name of the model; on the `openai` backend, the served model's name.
    pub model_name: String,
    /// Hex sha256 of the GGUF file; on the `openai` backend, of `model_identity`.
    pub model_sha256: String,
    /// What generated it: `llama.cpp` (in process) or `openai` (an OpenAI-compatible
    /// server); version-1 and -2 shards read as `llama.cpp`.
    #[serde(default = "default_backend")]
    pub backend: String,
    /// What the server reported about itself and its model (JSON), on the `openai` backend.
    #[serde(default)]
    pub model_identity: Option<String>,
    /// Where the token ids come from: `engine` (fed and sampled in process), `server` (as the
    /// server sampled them), `server-tokenizer` (the server's tokenisation of streamed text).
    #[serde(default = "default_token_ids_source")]
    pub token_ids_source: String,
    /// Sampling parameters and limits.
    pub params: GenerationParams,
    /// This trajectory's own seed, derived from (job seed, job, problem, sample).
    pub seed: u64,
    /// The rendered prompt, exactly as tokenised: the chat template's text, then
    /// `generation_prefix`.
    pub prompt: String,
    /// The prompt's token ids, as fed; empty in version-1 shards.
    #[serde(default)]
    pub prompt_token_ids: Vec<i32>,
    /// How many of the last `prompt_token_ids` are the generation prefix's (tokenised on its
    /// own, so that a trainer can put them under the loss with the assistant's turn).
    #[serde(default)]
    pub generation_prefix_tokens: u32,
    /// The user turn exactly as the model was shown it (question, options, instructions).
    #[serde(default)]
    pub user_message: String,
    /// The text the prompt ends with after the chat template, opening the assistant's turn
    /// (QwQ: `<think>\n`); empty for models without one. The assistant's turn is this text
    /// followed by `full_text`.
    #[serde(default)]
    pub generation_prefix: String,
    /// Everything after the prompt: the concatenation of the segments' texts.
    pub full_text: String,
    /// The trajectory cut by kind, with token ids.
    pub segments: Vec<Segment>,
    /// Code executions, in order.
    pub tool_calls: Vec<ToolCall>,
    /// The tools the job enabled (`python`, `sql`): a block in another language stayed text.
    /// Version-1 to -3 shards read as `["python"]`.
    #[serde(default = "default_tools")]
    pub tools: Vec<String>,
    /// Figures the code drew, in order.
    #[serde(default)]
    pub figures: Vec<Figure>,
    /// How many tool calls failed.
    pub tool_errors: u32,
    /// Why generation stopped.
    pub finish_reason: FinishReason,
    /// Why it ended with `error`, when known (the server's answer, the failed operation).
    #[serde(default)]
    pub finish_detail: Option<String>,
    /// The end-of-turn token's text when the model ended its turn with one (`<|im_end|>`);
    /// it is not part of `full_text`, and a trainer appends it to the assistant turn.
    #[serde(default)]
    pub end_of_turn: Option<String>,
    /// That token's id.
    #[serde(default)]
    pub end_of_turn_token: Option<i32>,
    /// The tool-call limit was reached: later code blocks stayed text and were not run.
    #[serde(default)]
    pub tool_limit_reached: bool,
    /// The hint settings as they applied to this trajectory; absent in version-1 shards.
    #[serde(default)]
    pub hint_settings: Option<HintSettings>,
    /// Hex sha256 of the hint library the trajectory was generated with.
    #[serde(default)]
    pub hint_library_sha256: String,
    /// Which sandbox ran its code: `docker:<image>@<image id>` or `process:<interpreter>`;
    /// `none` when no sandbox was configured.
    #[serde(default)]
    pub sandbox: String,
    /// The extracted final answer; absent when none was found.
    pub final_answer: Option<String>,
    /// Whether the answer is right; absent when not graded.
    pub correct: Option<bool>,
    /// Partial credit in [0, 1] (e.g. share of tests passed); absent when not graded.
    pub score: Option<f32>,
    /// The grader's detail as JSON text (per-test verdicts, normalised forms).
    pub grading_detail: Option<String>,
    /// Choice problems: the option order shown, as indices into the original choices.
    pub choice_permutation: Option<Vec<u32>>,
    /// Prompt length in tokens.
    pub prompt_tokens: u32,
    /// Tokens after the prompt, inserted ones included.
    pub completion_tokens: u32,
    /// Seconds from the first prefill to the last token.
    pub wall_time_s: f64,
    /// The worker that generated it.
    pub worker_id: String,
    /// Hex sha256 of `full_text`.
    pub trajectory_sha256: String,
    /// When it finished, UTC.
    pub created_at: DateTime<Utc>,
}

/// A figure a code block drew, kept as PNG so that a multimodal trainer or the report's viewer
/// can show it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// Index in `segments` of the code segment that drew it (its tool call's `segment`).
    pub segment: u32,
    /// Its place among that block's figures, from 0.
    pub index: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Size of the PNG in bytes.
    pub size: u64,
    /// The PNG file (a binary column).
    #[serde(with = "binary")]
    pub png: Vec<u8>,
}

impl std::fmt::Debug for Figure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Figure(segment {}, #{}, {}x{}, {} bytes)",
            self.segment, self.index, self.width, self.height, self.size
        )
    }
}

/// A binary column's bytes: written as bytes (Arrow's `Binary`; an array of numbers in JSON),
/// read back from bytes, a sequence of numbers, or hex text (what `arrow_json` wrote, for rows
/// serialised by an older version).
mod binary {
    use serde::de::{self, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    struct Bytes;

    impl<'de> Visitor<'de> for Bytes {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("bytes, a sequence of bytes, or hex text")
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
            hex::decode(v).map_err(E::custom)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
            while let Some(b) = seq.next_element::<u8>()? {
                out.push(b);
            }
            Ok(out)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(Bytes)
    }
}

fn default_tool() -> String {
    "python".into()
}

fn default_tools() -> Vec<String> {
    vec![default_tool()]
}

fn default_backend() -> String {
    "llama.cpp".into()
}

fn default_token_ids_source() -> String {
    "engine".into()
}

impl Trajectory {
    /// The sha256 that `trajectory_sha256` must hold.
    pub fn compute_sha256(full_text: &str) -> String {
        hex::encode(Sha256::digest(full_text.as_bytes()))
    }

    /// Checks the row's internal consistency; the shard writer refuses rows that fail, so a
    /// bug upstream cannot put a trajectory on disk whose text and segments disagree.
    pub fn check(&self) -> Result<(), String> {
        let joined_len: usize = self.segments.iter().map(|s| s.text.len()).sum();
        if joined_len != self.full_text.len()
            || self
                .segments
                .iter()
                .scan(0usize, |at, s| {
                    let start = *at;
                    *at += s.text.len();
                    Some(self.full_text.get(start..*at) == Some(s.text.as_str()))
                })
                .any(|ok| !ok)
        {
            return Err("full_text is not the concatenation of the segments' texts".into());
        }
        if self.trajectory_sha256 != Self::compute_sha256(&self.full_text) {
            return Err("trajectory_sha256 is not the sha256 of full_text".into());
        }
        for (i, call) in self.tool_calls.iter().enumerate() {
            match self.segments.get(call.segment as usize) {
                Some(s) if s.kind == SegmentKind::Code => {}
                _ => {
                    return Err(format!(
                        "tool_calls[{i}].segment = {} is not a code segment",
                        call.segment
                    ))
                }
            }
        }
        for (i, fig) in self.figures.iter().enumerate() {
            if !self.tool_calls.iter().any(|c| c.segment == fig.segment) {
                return Err(format!(
                    "figures[{i}].segment = {} is not the segment of a tool call",
                    fig.segment
                ));
            }
            if fig.size != fig.png.len() as u64 {
                return Err(format!("figures[{i}].size is not the PNG's size"));
            }
        }
        let failed = self.tool_calls.iter().filter(|c| c.failed()).count();
        if failed != self.tool_errors as usize {
            return Err(format!(
                "tool_errors = {} but {failed} tool calls failed",
                self.tool_errors
            ));
        }
        if self.score.is_some_and(|s| !(0.0..=1.0).contains(&s)) {
            return Err("score is outside [0, 1]".into());
        }
        if let Some(i) = self
            .segments
            .iter()
            .position(|s| s.hint.is_some() && s.kind != SegmentKind::Hint)
        {
            return Err(format!("segments[{i}] is not a hint but has a hint origin"));
        }
        if !self.prompt.ends_with(&self.generation_prefix) {
            return Err("the prompt does not end with generation_prefix".into());
        }
        if self.generation_prefix_tokens as usize > self.prompt_token_ids.len() {
            return Err("generation_prefix_tokens is more than the prompt's tokens".into());
        }
        Ok(())
    }

    /// The assistant's turn as the model produced it: the generation prefix it was given
    /// (QwQ's `<think>\n`), then everything after the prompt. The end-of-turn token, when the
    /// turn ended with one, follows it ([`Trajectory::end_of_turn`]).
    pub fn assistant_text(&self) -> String {
        format!("{}{}", self.generation_prefix, self.full_text)
    }

    /// The prompt without its generation prefix: the chat template's text alone.
    pub fn template_prompt(&self) -> &str {
        &self.prompt[..self.prompt.len() - self.generation_prefix.len()]
    }
}

fn list_of(field: Field) -> DataType {
    DataType::List(Arc::new(field))
}

/// The Arrow schema of a trajectory shard.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let utf8 = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
            let params = Fields::from(vec![
                Field::new("temperature", DataType::Float32, false),
                Field::new("top_k", DataType::UInt32, false),
                Field::new("top_p", DataType::Float32, false),
                Field::new("min_p", DataType::Float32, false),
                Field::new("repeat_penalty", DataType::Float32, false),
                Field::new("max_new_tokens", DataType::UInt32, false),
                Field::new("max_tool_calls", DataType::UInt32, false),
                Field::new("seed", DataType::UInt64, false),
            ]);
            let hint_origin = Fields::from(vec![
                utf8("kind", false),
                utf8("trigger", false),
                utf8("replaced", false),
            ]);
            let segment = Fields::from(vec![
                utf8("kind", false),
                utf8("text", false),
                Field::new(
                    "tokens",
                    list_of(Field::new("item", DataType::Int32, false)),
                    false,
                ),
                Field::new("hint", DataType::Struct(hint_origin), true),
            ]);
            let hint_settings = Fields::from(vec![
                Field::new("trigger_probability", DataType::Float64, false),
                Field::new("max_trigger_hints", DataType::UInt32, false),
                Field::new("end_hints", DataType::UInt32, false),
                Field::new("min_tool_calls_left", DataType::UInt32, false),
                Field::new("min_context_left", DataType::UInt32, false),
                Field::new("run_answer_code", DataType::Boolean, false),
            ]);
            let tool_call = Fields::from(vec![
                Field::new("segment", DataType::UInt32, false),
                utf8("tool", false),
                Field::new("exit_code", DataType::Int32, true),
                Field::new("timed_out", DataType::Boolean, false),
                Field::new("memory_exceeded", DataType::Boolean, false),
                Field::new("truncated", DataType::Boolean, false),
                Field::new("duration_ms", DataType::Float64, false),
                utf8("error", true),
            ]);
            let figure = Fields::from(vec![
                Field::new("segment", DataType::UInt32, false),
                Field::new("index", DataType::UInt32, false),
                Field::new("width", DataType::UInt32, false),
                Field::new("height", DataType::UInt32, false),
                Field::new("size", DataType::UInt64, false),
                Field::new("png", DataType::Binary, false),
            ]);
            let fields = vec![
                utf8("job_id", false),
                utf8("problem_id", false),
                Field::new("sample_index", DataType::UInt32, false),
                utf8("source", false),
                utf8("kind", false),
                utf8("mode", false),
                utf8("model_name", false),
                utf8("model_sha256", false),
                utf8("backend", false),
                utf8("model_identity", true),
                utf8("token_ids_source", false),
                Field::new("params", DataType::Struct(params), false),
                Field::new("seed", DataType::UInt64, false),
                utf8("prompt", false),
                Field::new(
                    "prompt_token_ids",
                    list_of(Field::new("item", DataType::Int32, false)),
                    false,
                ),
                Field::new("generation_prefix_tokens", DataType::UInt32, false),
                utf8("user_message", false),
                utf8("generation_prefix", false),
                utf8("full_text", false),
                Field::new(
                    "segments",
                    list_of(Field::new("item", DataType::Struct(segment), false)),
                    false,
                ),
                Field::new(
                    "tool_calls",
                    list_of(Field::new("item", DataType::Struct(tool_call), false)),
                    false,
                ),
                Field::new(
                    "tools",
                    list_of(Field::new("item", DataType::Utf8, false)),
                    false,
                ),
                Field::new(
                    "figures",
                    list_of(Field::new("item", DataType::Struct(figure), false)),
                    false,
                ),
                Field::new("tool_errors", DataType::UInt32, false),
                utf8("finish_reason", false),
                utf8("finish_detail", true),
                utf8("end_of_turn", true),
                Field::new("end_of_turn_token", DataType::Int32, true),
                Field::new("tool_limit_reached", DataType::Boolean, false),
                Field::new("hint_settings", DataType::Struct(hint_settings), true),
                utf8("hint_library_sha256", false),
                utf8("sandbox", false),
                utf8("final_answer", true),
                Field::new("correct", DataType::Boolean, true),
                Field::new("score", DataType::Float32, true),
                utf8("grading_detail", true),
                Field::new(
                    "choice_permutation",
                    list_of(Field::new("item", DataType::UInt32, false)),
                    true,
                ),
                Field::new("prompt_tokens", DataType::UInt32, false),
                Field::new("completion_tokens", DataType::UInt32, false),
                Field::new("wall_time_s", DataType::Float64, false),
                utf8("worker_id", false),
                utf8("trajectory_sha256", false),
                Field::new(
                    "created_at",
                    DataType::Timestamp(TimeUnit::Microsecond, Some(UTC_TZ.into())),
                    false,
                ),
            ];
            let metadata =
                HashMap::from([(SCHEMA_VERSION_KEY.to_string(), SCHEMA_VERSION.to_string())]);
            Arc::new(Schema::new_with_metadata(fields, metadata))
        })
        .clone()
}

/// Converts rows to one record batch of [`schema`]. The Arrow arrays are built from the rows'
/// fields directly (serde_arrow), so every value, a float's last bit included, lands as it is:
/// no text form on the way.
pub fn to_record_batch(rows: &[Trajectory]) -> Result<RecordBatch, ArrowError> {
    let schema = schema();
    if rows.is_empty() {
        return Ok(RecordBatch::new_empty(schema));
    }
    let fields: Vec<FieldRef> = schema.fields().iter().cloned().collect();
    let batch = serde_arrow::to_record_batch(&fields, &rows)
        .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
    // serde_arrow builds the fields' schema; the shard's carries the version too.
    batch.with_schema(schema)
}

/// Converts a record batch of [`schema`] (or of an older version's, whose missing columns take
/// their defaults) back to rows, value for value.
pub fn from_record_batch(batch: &RecordBatch) -> Result<Vec<Trajectory>, ArrowError> {
    if batch.num_rows() == 0 {
        return Ok(Vec::new());
    }
    serde_arrow::from_record_batch(batch).map_err(|e| ArrowError::ExternalError(Box::new(e)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample(i: u32) -> Trajectory {
        let segments = vec![
            Segment::new(SegmentKind::Reasoning, "Let me compute.\n", vec![1, 2, 3]),
            Segment {
                hint: Some(HintOrigin {
                    kind: "general".into(),
                    trigger: HintTrigger::Word,
                    replaced: "Wait".into(),
                }),
                ..Segment::new(
                    SegmentKind::Hint,
                    "Wait, maybe using Python here is a good idea.\n```python\n",
                    vec![4, 5],
                )
            },
            Segment::new(SegmentKind::Code, "print(2**10)\n```\n", vec![6, 7, 8]),
            Segment::new(SegmentKind::Output, "```output\n1024\n```\n", vec![9]),
            Segment::new(
                SegmentKind::Answer,
                format!("The answer is \\boxed{{{}}}.", 1024 + i),
                vec![10, 11],
            ),
        ];
        let full_text: String = segments.iter().map(|s| s.text.as_str()).collect();
        Trajectory {
            job_id: "job-1".into(),
            problem_id: format!("p{i}"),
            sample_index: i,
            source: "math".into(),
            kind: ProblemKind::Math,
            mode: Mode::HintInfer,
            model_name: "m.gguf".into(),
            model_sha256: "ab".repeat(32),
            backend: "llama.cpp".into(),
            model_identity: None,
            token_ids_source: "engine".into(),
            params: GenerationParams {
                temperature: 0.6,
                top_k: 0,
                top_p: 0.95,
                min_p: 0.0,
                repeat_penalty: 1.0,
                max_new_tokens: 4096,
                max_tool_calls: 6,
                seed: 7,
            },
            seed: 7_000 + u64::from(i),
            prompt: "<|im_start|>user\nWhat is 2^10?<|im_end|>\n<|im_start|>assistant\n<think>\n"
                .into(),
            prompt_token_ids: vec![1, 2, 3, 4],
            generation_prefix_tokens: 1,
            user_message: "What is 2^10?".into(),
            generation_prefix: "<think>\n".into(),
            trajectory_sha256: Trajectory::compute_sha256(&full_text),
            full_text,
            segments,
            tool_calls: vec![ToolCall {
                segment: 2,
                tool: "python".into(),
                exit_code: Some(0),
                timed_out: false,
                memory_exceeded: false,
                truncated: false,
                duration_ms: 12.5,
                error: None,
            }],
            tools: vec!["python".into(), "sql".into()],
            figures: vec![Figure {
                segment: 2,
                index: 0,
                width: 2,
                height: 1,
                size: 9,
                png: b"\x89PNG\r\n\x1a\n\x00".to_vec(),
            }],
            tool_errors: 0,
            finish_reason: FinishReason::Stop,
            finish_detail: None,
            end_of_turn: Some("<|im_end|>".into()),
            end_of_turn_token: Some(2),
            tool_limit_reached: false,
            hint_settings: Some(HintSettings::from_proto(None, 0.15)),
            hint_library_sha256: "cd".repeat(32),
            sandbox: "process:python3".into(),
            final_answer: Some("1024".into()),
            correct: i.is_multiple_of(2).then_some(true),
            score: Some(1.0),
            grading_detail: None,
            choice_permutation: None,
            prompt_tokens: 20,
            completion_tokens: 11,
            wall_time_s: 1.25,
            worker_id: "w-1".into(),
            created_at: DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap(),
        }
    }

    #[test]
    fn rows_survive_a_record_batch_round_trip() {
        let rows: Vec<_> = (0..3).map(sample).collect();
        let batch = to_record_batch(&rows).unwrap();
        assert_eq!(batch.num_rows(), 3);
        assert_eq!(batch.schema(), schema());
        assert_eq!(from_record_batch(&batch).unwrap(), rows);
    }

    /// Every float (and every other value) comes back from a record batch bit for bit: a tool
    /// call measured at 15.642812999999999 ms once came back as 15.642813 through a text
    /// form. Random values over the whole range, subnormals and extremes included.
    #[test]
    fn every_value_survives_a_record_batch_exactly() {
        let mut state = 0x5eed_u64;
        let mut next = || crate::problem::splitmix64(&mut state);
        let mut floats: Vec<f64> = vec![
            15.642812999999999,
            0.1 + 0.2,
            f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
            -0.0,
            1e300,
        ];
        floats.extend(
            (0..2000)
                .map(|_| f64::from_bits(next()))
                .filter(|f| f.is_finite()),
        );
        floats.extend((0..2000).map(|_| (next() % 1_000_000_000) as f64 / 1e6));
        let rows: Vec<Trajectory> = floats
            .chunks(3)
            .enumerate()
            .map(|(i, f)| {
                let mut row = sample(i as u32);
                row.tool_calls[0].duration_ms = f[0];
                row.wall_time_s = f[f.len() - 1];
                row.params.temperature = f32::from_bits(next() as u32 & 0x7f7f_ffff);
                row.score = Some(f32::from_bits(next() as u32) % 1.0).filter(|s| *s >= 0.0);
                row.seed = next();
                row.params.seed = u64::MAX - i as u64;
                row
            })
            .collect();
        let back = from_record_batch(&to_record_batch(&rows).unwrap()).unwrap();
        assert_eq!(back.len(), rows.len());
        for (a, b) in rows.iter().zip(&back) {
            assert_eq!(
                a.tool_calls[0].duration_ms.to_bits(),
                b.tool_calls[0].duration_ms.to_bits()
            );
            assert_eq!(a.wall_time_s.to_bits(), b.wall_time_s.to_bits());
            assert_eq!(
                a.params.temperature.to_bits(),
                b.params.temperature.to_bits()
            );
            assert_eq!(a, b);
        }
        assert!(from_record_batch(&to_record_batch(&[]).unwrap())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_figure_written_as_hex_text_by_an_older_version_reads_as_its_bytes() {
        let mut json = serde_json::to_value(sample(0)).unwrap();
        json["figures"][0]["png"] = serde_json::json!(hex::encode(b"\x89PNG\r\n\x1a\n\x00"));
        let row: Trajectory = serde_json::from_value(json).unwrap();
        assert_eq!(row.figures[0].png, b"\x89PNG\r\n\x1a\n\x00");
    }

    #[test]
    fn names_match_the_serialised_form() {
        for m in [Mode::HintInfer, Mode::Rft, Mode::Plain] {
            assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
        }
        for f in [
            FinishReason::Stop,
            FinishReason::MaxNewTokens,
            FinishReason::Context,
            FinishReason::ToolLimit,
            FinishReason::OutputLimit,
            FinishReason::Error,
        ] {
            assert_eq!(serde_json::to_value(f).unwrap(), f.as_str());
        }
    }

    #[test]
    fn check_catches_inconsistent_rows() {
        let ok = sample(0);
        assert_eq!(ok.check(), Ok(()));
        let mut bad = ok.clone();
        bad.full_text.push('x');
        assert!(bad.check().unwrap_err().contains("concatenation"));
        let mut bad = ok.clone();
        bad.tool_errors = 1;
        assert!(bad.check().unwrap_err().contains("tool_errors"));
        let mut bad = ok.clone();
        bad.tool_calls[0].segment = 0;
        assert!(bad.check().unwrap_err().contains("not a code segment"));
        let mut bad = ok.clone();
        bad.figures[0].segment = 4;
        assert!(bad
            .check()
            .unwrap_err()
            .contains("not the segment of a tool call"));
        let mut bad = ok;
        bad.figures[0].size = 1;
        assert!(bad.check().unwrap_err().contains("not the PNG's size"));
    }
}
