//! The trajectory record, start's output: one generated solution a row.
//!
//! The text is kept exactly as generated, token ids included, never re-rendered through a chat
//! template (QwQ's template strips earlier reasoning, so re-rendering would train on text the
//! model never produced). The Arrow schema is explicit, versioned and documented as a table in
//! schemas/README.md; rows move between Rust and Arrow through serde.
//!
//! The row type is here; its sampling and hint settings in [`params`], its Arrow schema and
//! both conversions in [`arrow`], checked together by the round-trip tests, so that a new
//! column is one edit in each.

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
/// each tool call's tool and the figures code drew; version 5 the executions-left counter among
/// the hint settings.
pub const SCHEMA_VERSION: u32 = 5;

/// Every schema version this build reads: a shard of an older version reads with the columns
/// it lacks at their defaults (empty, absent, false; tools: python).
pub const READABLE_SCHEMA_VERSIONS: [u32; 5] = [1, 2, 3, 4, 5];

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
    /// Judge prompts (problems of kind `judge`): no hints, no tools, each response parsed as
    /// a verdict; a problem's samples are its votes.
    Judge,
}

impl From<Mode> for crate::proto::GenerationMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::HintInfer => Self::HintInfer,
            Mode::Rft => Self::Rft,
            Mode::Plain => Self::Plain,
            Mode::Judge => Self::Judge,
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
            crate::proto::GenerationMode::Judge => Some(Self::Judge),
            crate::proto::GenerationMode::Unspecified => None,
        }
    }

    /// The name used in files (`hint-infer`, `rft`, `plain`, `judge`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HintInfer => "hint-infer",
            Self::Rft => "rft",
            Self::Plain => "plain",
            Self::Judge => "judge",
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

mod arrow;
mod params;
#[cfg(test)]
pub(crate) mod tests;

pub use arrow::{from_record_batch, schema, to_record_batch};
pub use params::{hint_defaults, GenerationParams, HintSettings};
