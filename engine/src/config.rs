//! The settings: [`TirConfig`], what shapes a trajectory on either backend (its context, the
//! thinking tags, the tool limits, the hint library), and [`EngineConfig`], the in-process
//! engine's (the model, its slots, threads and GPU layers, prompt sharing and gap padding).
//! The OpenAI-compatible backend's own settings are [`crate::OpenAiConfig`].

use crate::hints::HintLibrary;
use std::path::PathBuf;
use std::time::Duration;

/// What shapes a trajectory, the same on both backends: the limits and thinking tags the
/// Hint-infer core ([`crate::machine`]) applies and the hints it inserts.
#[derive(Clone, Debug)]
pub struct TirConfig {
    /// Context budget of each trajectory, in tokens (prompt + completion): a slot's KV stream
    /// in process, at most the server's per-sequence context on a server.
    pub ctx_per_slot: u32,
    /// Text opening the assistant's thinking (QwQ: "<think>\n"; empty for models without).
    pub think_prefix: String,
    /// Text that ends thinking ("</think>"); `None` for models without thinking tags.
    pub think_end: Option<String>,
    /// Most characters of tool output inserted (head and tail kept).
    pub max_output_chars: usize,
    /// Wall-clock limit of one code execution.
    pub tool_timeout: Duration,
    /// Memory limit of one code execution, MiB.
    pub tool_memory_mb: u32,
    /// The hint library.
    pub hints: HintLibrary,
}

impl Default for TirConfig {
    fn default() -> Self {
        Self {
            ctx_per_slot: 2048,
            think_prefix: String::new(),
            think_end: None,
            max_output_chars: 2048,
            tool_timeout: Duration::from_secs(10),
            tool_memory_mb: 512,
            hints: HintLibrary::builtin(),
        }
    }
}

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The GGUF model.
    pub model_path: PathBuf,
    /// Sequence slots decoded together.
    pub slots: usize,
    /// What shapes each trajectory (its context is a slot's KV stream).
    pub tir: TirConfig,
    /// Most tokens in one decode call.
    pub n_batch: u32,
    /// CPU threads.
    pub threads: i32,
    /// Layers offloaded to the GPU (with the `cuda` feature).
    pub gpu_layers: u32,
    /// Samples of the same prompt share its KV cache: prefill once, copy the sequence.
    pub share_prompts: bool,
    /// The widest run of slots with nothing to feed (waiting on the sandbox, idle) between
    /// slots that have, that a decode step fills with throwaway tokens rather than letting
    /// llama.cpp split the step around it. A throwaway token costs one token's compute; a
    /// split costs another pass over the weights. On two CPU cores one split costs about two
    /// tokens, so the default pads single gaps; on a GPU a pass over the weights costs far
    /// more than a token.
    pub pad_gaps: usize,
}

impl EngineConfig {
    /// Defaults for `model_path`.
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        Self {
            model_path: model_path.into(),
            slots: 4,
            tir: TirConfig::default(),
            n_batch: 512,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get() as i32),
            gpu_layers: 0,
            share_prompts: true,
            pad_gaps: 1,
        }
    }
}
