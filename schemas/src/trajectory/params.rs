//! What a trajectory was generated with: its sampling parameters and limits, and where and how
//! often Hint-infer put hints in.

use super::*;

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
    /// Whether the user turn states the code-execution budget and each output block ends with
    /// the executions left (NeMo-Skills' prompts do both). Off by default; applies in every
    /// mode with tools, and rows of schema version 4 and older read it as off.
    #[serde(default)]
    pub show_calls_left: bool,
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
            show_calls_left: p.show_calls_left,
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
            show_calls_left: self.show_calls_left,
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
