//! Putting hints in: where a hint may go (the per-trajectory budget, never inside a code
//! block), taking the generated text it replaces back out of the trajectory and the KV cache,
//! and recording the hint as a segment with its provenance. The hint library itself (what
//! hints say) is [`crate::hints`].

use crate::hints::Hint;
use crate::llama::Ctx;
use crate::slot::{finish, OpenFence, Slot, State};
use llama_cpp_2::token::LlamaToken;
use start_schemas::trajectory::{FinishReason, HintOrigin, HintTrigger, Mode, SegmentKind};
use std::collections::VecDeque;

/// that completes it.
pub(crate) fn ends_in_last_piece(hay: &[u8], needle: &str, new_len: usize) -> bool {
    let n = needle.as_bytes();
    let from = hay.len().saturating_sub(new_len + n.len() - 1);
    hay[from..].windows(n.len()).any(|w| w == n)
}

pub(crate) fn find_last(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// Whether a trigger word may be replaced by a hint now: hint-infer mode, still thinking,
/// outside any code block, under the per-trajectory cap, with enough tool calls left for the
/// code the hint asks for and enough room left to finish.
pub(crate) fn trigger_hint_allowed(e: &Ctx, slot: &Slot) -> bool {
    let h = &slot.hints;
    let room = (e.config.ctx_per_slot as i64 - i64::from(slot.pos))
        .min(i64::from(slot.max_new_tokens) - i64::from(slot.generated));
    slot.mode == Mode::HintInfer
        && !slot.thinking_done
        && slot.fence.is_none()
        && slot.trigger_hints_used < h.max_trigger_hints
        && slot.tool_calls_left() >= h.min_tool_calls_left.max(1)
        && room >= i64::from(h.min_context_left)
}

/// An end-of-thinking hint and its tokens, when one may go in now: hint-infer mode, end
/// hints left, outside any code block, a tool call left for the code it opens, and room for
/// it. Its text is `kept` (what the rollback takes that came before the end text), a blank
/// line unless it starts a line, then the hint. Counts it as used.
pub(crate) fn end_hint(
    e: &Ctx,
    slot: &mut Slot,
    kept: &[u8],
    line_start: bool,
) -> Option<(Hint, Vec<i32>)> {
    if slot.mode != Mode::HintInfer
        || slot.end_hints_used >= slot.hints.end_hints
        || slot.fence.is_some()
    {
        return None;
    }
    let r = slot.random();
    let hint = e.config.hints.pick(&slot.hint_context(), r)?;
    if hint.opens().is_some() && slot.tool_calls_left() == 0 {
        return None;
    }
    let sep = if line_start { "" } else { "\n\n" };
    let text = format!("{}{sep}{}", String::from_utf8_lossy(kept), hint_body(&hint));
    let tokens = e.llama.tokenize(&text, false);
    // Without room for the hint, the model's own end stands.
    if !slot.fits(e.config.ctx_per_slot, 0, tokens.len()) {
        return None;
    }
    slot.end_hints_used += 1;
    Some((hint, tokens))
}

/// A hint's text as inserted: as written when it ends a line or opens code, else followed by
/// a newline so that the model's continuation starts a line of its own.
pub(crate) fn hint_body(hint: &Hint) -> String {
    if hint.text.ends_with(char::is_whitespace) {
        hint.text.clone()
    } else {
        format!("{}\n", hint.text)
    }
}

/// Takes the current segment's text from byte `cut` on back out of the trajectory and the
/// slot's KV cache; returns that text. The last token (just sampled) was never fed; the others
/// were. A KV cache that refuses the removal ends the trajectory (`error`), since what the
/// model would attend to no longer matches what the row would record.
pub(crate) fn roll_back(e: &mut Ctx, i: usize, slot: &mut Slot, cut: usize) -> Option<String> {
    let cut_back = {
        let llama = &e.llama;
        slot.builder.cut_back(cut, |t| llama.piece(t))
    };
    slot.pos -= cut_back.dropped.saturating_sub(1) as i32;
    match e.llama.kv_remove(i, Some(slot.pos as u32)) {
        Ok(()) => Some(cut_back.removed),
        Err(err) => {
            tracing::warn!(slot = i, error = %err, "rollback refused; ending the trajectory");
            finish(e, slot, FinishReason::Error);
            None
        }
    }
}

/// Records a hint as its own segment with its provenance, queues its tokens, and opens a code
/// block when the hint ends with an opening fence.
pub(crate) fn insert_hint(
    e: &Ctx,
    slot: &mut Slot,
    hint: Hint,
    tokens: Vec<i32>,
    trigger: HintTrigger,
    replaced: String,
) {
    let feed = record_insertion(e, slot, tokens, SegmentKind::Hint);
    slot.builder.mark_hint(HintOrigin {
        kind: hint.kind.clone(),
        trigger,
        replaced,
    });
    if let Some(tool) = hint.opens() {
        // The next tokens are the block's body, in a code segment of their own.
        slot.fence = Some(OpenFence {
            run: true,
            body_start: 0,
            tool,
        });
    }
    slot.state = State::Feed(feed);
}

/// Records inserted `tokens` as a segment of `kind` (and in the sampler's repetition window),
/// and returns them to feed.
pub(crate) fn record_insertion(
    e: &Ctx,
    slot: &mut Slot,
    tokens: Vec<i32>,
    kind: SegmentKind,
) -> VecDeque<(i32, SegmentKind)> {
    slot.builder.split(kind);
    for &t in &tokens {
        slot.builder.push(kind, t, &e.llama.piece(t));
        if let Some(s) = slot.sampler.as_mut() {
            s.accept(LlamaToken(t));
        }
    }
    tokens.into_iter().map(|t| (t, kind)).collect()
}
