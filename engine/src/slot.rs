//! A sequence slot: one trajectory in flight, its state (idle, feeding, waiting on the
//! sandbox), its place in the KV cache, its limits and hint budget, and how it ends.

use crate::hints::{HintContext, SampleTests};
use crate::llama::Ctx;
use crate::request::{GenOutput, Reply};
use crate::trajectory::TrajectoryBuilder;
use llama_cpp_2::sampling::LlamaSampler;
use start_sandbox::SandboxFile;
use start_schemas::problem::splitmix64;
use start_schemas::tool::{ToolName, ToolSet};
use start_schemas::trajectory::{Figure, FinishReason, HintSettings, Mode, SegmentKind, ToolCall};
use std::collections::VecDeque;
use std::time::Instant;

/// A slot's state.
pub(crate) enum State {
    /// Free.
    Idle,
    /// Tokens to feed (prompt, sampled token, hint, tool output); logits wanted after the last.
    Feed(VecDeque<(i32, SegmentKind)>),
    /// Waiting for the sandbox to run a block of this tool.
    Tool(ToolName),
}

/// A tool's block the model is inside.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OpenFence {
    /// Whether it runs when it closes; a block past the tool limit, or in the final answer,
    /// stays text, its tokens keeping the surrounding kind.
    pub run: bool,
    /// Where its body starts in the current segment's bytes.
    pub body_start: usize,
    /// The tool that runs it.
    pub tool: ToolName,
}

pub(crate) struct Slot {
    pub state: State,
    pub mode: Mode,
    pub code_tests: Option<SampleTests>,
    pub hints: HintSettings,
    /// The tools the job enabled.
    pub tools: ToolSet,
    /// The problem's attached files, sent with every block.
    pub files: Vec<SandboxFile>,
    pub max_new_tokens: u32,
    pub max_tool_calls: u32,
    pub reply: Option<Reply>,
    pub sampler: Option<LlamaSampler>,
    pub builder: TrajectoryBuilder,
    pub prompt: String,
    pub prompt_tokens: u32,
    /// How many of the prompt's last tokens are the think prefix's.
    pub prefix_tokens: u32,
    /// The prompt's tokens, to let later samples of the same prompt copy this cache.
    pub prompt_ids: Vec<i32>,
    /// An idle slot's last prompt, still whole in its cache.
    pub cached_prompt: Vec<i32>,
    pub pos: i32,
    pub generated: u32,
    pub end_hints_used: u32,
    pub trigger_hints_used: u32,
    /// The block being written, if any.
    pub fence: Option<OpenFence>,
    pub tool_calls: Vec<ToolCall>,
    /// Figures the blocks drew, on their code segments.
    pub figures: Vec<Figure>,
    pub tool_limit_reached: bool,
    pub end_of_turn: Option<(i32, String)>,
    /// Tokens still to "sample" from a test script (the `scripted` feature's engine only).
    pub forced: VecDeque<i32>,
    /// The token that closed a code block, fed together with the block's output.
    pub pending_after_tool: Option<i32>,
    pub rng: u64,
    pub started: Instant,
    pub thinking_done: bool,
    /// The KV cache could not be set back after a pad: the stream no longer matches the
    /// trajectory, which ends (`error`) when its tool call is back.
    pub kv_lost: bool,
    /// Why the trajectory ends with `error`, when it is not the KV cache: the sandbox could
    /// not run a block ([`start_sandbox::SandboxError::Infrastructure`]).
    pub error_detail: Option<String>,
    /// Index in the last batch of this slot's logits.
    pub logits_at: Option<i32>,
    /// The caller's span: the parent of this trajectory's engine events.
    pub span: tracing::Span,
}

impl Slot {
    pub fn idle() -> Self {
        Self {
            state: State::Idle,
            mode: Mode::Plain,
            code_tests: None,
            hints: HintSettings::from_proto(None, 0.0).for_mode(Mode::Plain),
            tools: ToolSet::PYTHON,
            files: Vec::new(),
            max_new_tokens: 0,
            max_tool_calls: 0,
            reply: None,
            sampler: None,
            builder: TrajectoryBuilder::default(),
            prompt: String::new(),
            prompt_tokens: 0,
            prefix_tokens: 0,
            prompt_ids: Vec::new(),
            cached_prompt: Vec::new(),
            pos: 0,
            generated: 0,
            end_hints_used: 0,
            trigger_hints_used: 0,
            fence: None,
            tool_calls: Vec::new(),
            figures: Vec::new(),
            tool_limit_reached: false,
            end_of_turn: None,
            pending_after_tool: None,
            forced: VecDeque::new(),
            span: tracing::Span::none(),
            rng: 0,
            started: Instant::now(),
            thinking_done: false,
            kv_lost: false,
            error_detail: None,
            logits_at: None,
        }
    }

    pub fn random(&mut self) -> f64 {
        draw(&mut self.rng)
    }

    /// Tool calls still allowed.
    pub fn tool_calls_left(&self) -> u32 {
        self.max_tool_calls
            .saturating_sub(self.tool_calls.len() as u32)
    }

    /// What a hint for this slot is picked by.
    pub fn hint_context(&self) -> HintContext<'_> {
        HintContext {
            tests: self.code_tests.as_ref(),
            data: !self.files.is_empty(),
            tools: self.tools,
        }
    }

    /// The kind the next generated token belongs to.
    pub fn kind_now(&self) -> SegmentKind {
        kind_now(self.fence, self.thinking_done)
    }
    /// Whether `n` inserted tokens, after `queued` tokens still to feed, fit the room left in
    /// the slot's context, with a token to sample after them. Each insertion is checked before
    /// it is recorded: the trajectory holds exactly what the model was fed, and a slot never
    /// asks for KV cells its stream does not have (a failed decode would stall every slot of
    /// the batch).
    pub fn fits(&self, ctx_per_slot: u32, queued: usize, n: usize) -> bool {
        self.pos as usize + queued + n + 2 <= ctx_per_slot as usize
    }
}

/// The state of a trajectory's hint dice, from its seed: hints are reproducible. Both backends
/// start from it.
pub(crate) fn hint_rng(seed: u64) -> u64 {
    seed ^ 0x5eed_0f41_6e75
}

/// The next draw in [0, 1) of the hint dice.
pub(crate) fn draw(rng: &mut u64) -> f64 {
    (splitmix64(rng) >> 11) as f64 / (1u64 << 53) as f64
}

/// The kind the next generated token belongs to: code inside a block that runs, else answer
/// once thinking is done, else reasoning.
pub(crate) fn kind_now(fence: Option<OpenFence>, thinking_done: bool) -> SegmentKind {
    if fence.is_some_and(|f| f.run) {
        SegmentKind::Code
    } else if thinking_done {
        SegmentKind::Answer
    } else {
        SegmentKind::Reasoning
    }
}

/// Ends a slot's trajectory with `reason` and answers its caller. The slot's cache is kept
/// until the slot is reused: its prompt can still be copied by later samples of the same
/// prompt.
pub(crate) fn finish(e: &Ctx, slot: &mut Slot, reason: FinishReason) {
    let mut done = std::mem::replace(slot, Slot::idle());
    let prompt_token_ids = std::mem::take(&mut done.prompt_ids);
    slot.cached_prompt = prompt_token_ids.clone();
    let Some(reply) = done.reply else { return };
    let span = std::mem::replace(&mut done.span, tracing::Span::none());
    let mut builder = done.builder;
    if e.config.think_end.is_none() {
        builder.relabel_last(SegmentKind::Reasoning, SegmentKind::Answer);
    }
    let completion_tokens = builder.completion_tokens;
    let (mut tool_calls, mut figures) = (done.tool_calls, done.figures);
    let segments = builder.finish(&mut tool_calls, &mut figures);
    // Entered (not named as parent) so that the event carries the whole chain of spans.
    span.in_scope(|| {
        tracing::debug!(
            finish = ?reason,
            completion_tokens,
            tool_calls = tool_calls.len(),
            "trajectory generated"
        )
    });
    let _ = reply.send(Ok(GenOutput {
        prompt: done.prompt,
        generation_prefix: e.config.think_prefix.clone(),
        prompt_tokens: done.prompt_tokens,
        prompt_token_ids,
        generation_prefix_tokens: done.prefix_tokens,
        end_of_turn: done.end_of_turn,
        thinking_ended: e.config.think_end.as_ref().map(|_| done.thinking_done),
        tool_limit_reached: done.tool_limit_reached,
        segments,
        tool_calls,
        figures,
        finish_reason: reason,
        completion_tokens,
        wall_time_s: done.started.elapsed().as_secs_f64(),
        token_ids_source: "engine",
        finish_detail: (reason == FinishReason::Error).then(|| {
            done.error_detail
                .unwrap_or_else(|| "the KV cache refused an operation".to_string())
        }),
    }));
}
