//! What a caller asks of the engine (one trajectory) and what it gets back, and what can go
//! wrong.

use crate::hints::SampleTests;
use start_sandbox::SandboxFile;
use start_schemas::tool::ToolSet;
use start_schemas::trajectory::{
    Figure, FinishReason, GenerationParams, HintSettings, Mode, Segment, ToolCall,
};

/// One trajectory to generate.
#[derive(Clone, Debug)]
pub struct GenRequest {
    /// The user message (the question with its instructions).
    pub user_message: String,
    /// For a code problem, the tests it shows (picks code hints and fills the debug hint);
    /// `None` for math and choice problems.
    pub code_tests: Option<SampleTests>,
    /// Generation mode.
    pub mode: Mode,
    /// Sampling parameters and limits.
    pub params: GenerationParams,
    /// This trajectory's seed.
    pub seed: u64,
    /// Where and how often hints go in (hint-infer mode only), and whether code in the final
    /// answer runs (every mode).
    pub hints: HintSettings,
    /// The tools the job enabled: a block in another language stays text.
    pub tools: ToolSet,
    /// The problem's attached files, which every code block sees (and which make the data
    /// hints apply).
    pub files: Vec<SandboxFile>,
}

/// A generated trajectory, before grading.
#[derive(Clone, Debug)]
pub struct GenOutput {
    /// The rendered prompt: the chat template's text, then the think prefix.
    pub prompt: String,
    /// The think prefix the prompt ends with (empty for models without one).
    pub generation_prefix: String,
    /// Prompt length in tokens.
    pub prompt_tokens: u32,
    /// The prompt's token ids.
    pub prompt_token_ids: Vec<i32>,
    /// How many of the last prompt tokens are the think prefix's.
    pub generation_prefix_tokens: u32,
    /// The end-of-turn token that ended the trajectory, with its text; `None` when a limit
    /// or an error ended it.
    pub end_of_turn: Option<(i32, String)>,
    /// Whether the model's thinking ended (it wrote the end-of-thinking text); `None` for
    /// models without thinking tags, where the whole turn is one.
    pub thinking_ended: Option<bool>,
    /// The tool-call limit was reached: later code blocks stayed text.
    pub tool_limit_reached: bool,
    /// The trajectory.
    pub segments: Vec<Segment>,
    /// Code executions.
    pub tool_calls: Vec<ToolCall>,
    /// Figures the code drew, each on the segment of the block that drew it.
    pub figures: Vec<Figure>,
    /// Why it stopped.
    pub finish_reason: FinishReason,
    /// Tokens after the prompt.
    pub completion_tokens: u32,
    /// Seconds from admission to the last token.
    pub wall_time_s: f64,
    /// Where the token ids come from: `engine` (fed and sampled in process), `server` (the
    /// ids an OpenAI-compatible server sampled and tokenised), `server-tokenizer` (a server
    /// that streams text only: its `/tokenize` of that text).
    pub token_ids_source: &'static str,
    /// Why a trajectory ended with `error`, when the backend knows.
    pub finish_detail: Option<String>,
}

/// What can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The model could not be loaded.
    #[error("cannot load model {path}: {message}")]
    Load {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The prompt is longer than a slot's context.
    #[error("prompt of {tokens} tokens does not fit a slot's context of {ctx}")]
    PromptTooLong {
        /// Prompt tokens.
        tokens: usize,
        /// Context per slot.
        ctx: u32,
    },
    /// llama.cpp failed.
    #[error("llama.cpp: {0}")]
    Llama(String),
    /// A KV-cache operation was refused: what the model attends to would no longer match what
    /// the trajectory records.
    #[error("KV cache of sequence {seq}: {op} refused")]
    Kv {
        /// The sequence (slot).
        seq: usize,
        /// What was asked.
        op: &'static str,
    },
    /// The engine thread is gone.
    #[error("the engine stopped")]
    Stopped,
    /// The inference server could not be reached or kept failing through the retries.
    #[error("inference server: {0}")]
    Backend(String),
}

/// Where a trajectory's result goes.
pub(crate) type Reply = tokio::sync::oneshot::Sender<Result<GenOutput, EngineError>>;

/// What the handle sends the engine thread.
pub(crate) enum Command {
    /// Generate one trajectory, under the caller's span (the parent of its tool-call spans,
    /// so one trajectory can be followed through the logs across the engine thread).
    Generate(Box<GenRequest>, Reply, tracing::Span),
}
