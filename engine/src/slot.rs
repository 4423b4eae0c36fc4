//! A sequence slot: one trajectory in flight (its Hint-infer core, [`Machine`]), its state
//! (idle, feeding, waiting on the sandbox), its place in the KV cache, its sampler, and how it
//! ends.

use crate::machine::{Machine, Prompt};
use crate::request::Reply;
use llama_cpp_2::sampling::LlamaSampler;
use start_schemas::trajectory::FinishReason;
use std::collections::VecDeque;
use std::time::Instant;

/// A slot's state.
pub(crate) enum State {
    /// Free.
    Idle,
    /// Tokens to feed (prompt, sampled token, hint, tool output); logits wanted after the last.
    Feed(VecDeque<i32>),
    /// Waiting for the sandbox to run a block.
    Tool,
}

pub(crate) struct Slot {
    pub state: State,
    /// The trajectory's core; `None` while idle.
    pub machine: Option<Machine>,
    pub reply: Option<Reply>,
    pub sampler: Option<LlamaSampler>,
    /// The prompt: its text, ids (which later samples of the same prompt may copy from this
    /// cache) and think prefix.
    pub prompt: Prompt,
    /// An idle slot's last prompt, still whole in its cache.
    pub cached_prompt: Vec<i32>,
    /// Tokens in the slot's KV stream: the prompt, then the row's completion tokens fed so far.
    pub pos: i32,
    /// Tokens still to "sample" from a test script (the `scripted` feature's engine only).
    pub forced: VecDeque<i32>,
    pub started: Instant,
    /// The KV cache could not be set back after a pad: the stream no longer matches the
    /// trajectory, which ends (`error`) when its tool call is back.
    pub kv_lost: bool,
    /// Index in the last batch of this slot's logits.
    pub logits_at: Option<i32>,
    /// The caller's span: the parent of this trajectory's engine events.
    pub span: tracing::Span,
}

impl Slot {
    pub fn idle() -> Self {
        Self {
            state: State::Idle,
            machine: None,
            reply: None,
            sampler: None,
            prompt: Prompt::default(),
            cached_prompt: Vec::new(),
            pos: 0,
            forced: VecDeque::new(),
            started: Instant::now(),
            kv_lost: false,
            logits_at: None,
            span: tracing::Span::none(),
        }
    }

    /// Completion tokens of the row already in the KV stream.
    pub fn fed(&self) -> usize {
        (self.pos as usize).saturating_sub(self.prompt.ids.len())
    }
}

/// The driver ends a slot's trajectory itself (`reason`, and why for `error`): the caller went
/// away, the KV cache refused an operation, a batch could not be decoded.
pub(crate) fn stop(slot: &mut Slot, reason: FinishReason, detail: &str) {
    if let Some(m) = slot.machine.as_mut() {
        m.stop(reason, Some(detail.to_string()));
    }
    finish(slot);
}

/// Answers the slot's caller with its finished trajectory and frees the slot. Its cache is
/// kept until the slot is reused: its prompt can still be copied by later samples of the same
/// prompt.
pub(crate) fn finish(slot: &mut Slot) {
    let mut done = std::mem::replace(slot, Slot::idle());
    slot.cached_prompt = done.prompt.ids.clone();
    let (Some(reply), Some(m)) = (done.reply, done.machine) else {
        return;
    };
    let span = std::mem::replace(&mut done.span, tracing::Span::none());
    let out = m.into_output(done.prompt, done.started.elapsed().as_secs_f64(), "engine");
    // Entered (not named as parent) so that the event carries the whole chain of spans.
    span.in_scope(|| {
        tracing::debug!(
            finish = ?out.finish_reason,
            completion_tokens = out.completion_tokens,
            tool_calls = out.tool_calls.len(),
            "trajectory generated"
        )
    });
    let _ = reply.send(Ok(out));
}
