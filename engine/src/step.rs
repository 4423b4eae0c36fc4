//! One step of a slot after a decode: sample its next token and decide what happens next —
//! the end of its turn (or an end hint in its place), a code block opening or closing (and the
//! tool call), the end of thinking, a trigger word and its hint, or a limit.

use crate::fence;
use crate::insertion::{
    end_hint, ends_in_last_piece, find_last, hint_body, insert_hint, roll_back,
    trigger_hint_allowed,
};
use crate::llama::Ctx;
use crate::slot::{finish, OpenFence, Slot, State};
use crate::tools::{run_tool, ToolDone};
use crate::Stats;
use llama_cpp_2::token::LlamaToken;
use start_sandbox::Sandbox;
use start_schemas::trajectory::{FinishReason, HintTrigger, SegmentKind};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;

/// After a decode: sample this slot's next token and decide what happens next.
#[allow(clippy::too_many_arguments)]
pub(crate) fn step(
    e: &mut Ctx,
    i: usize,
    slot: &mut Slot,
    logits_at: i32,
    sandbox: &Option<Arc<Sandbox>>,
    runtime: &tokio::runtime::Handle,
    tool_tx: &mpsc::Sender<ToolDone>,
    stats: &Stats,
) {
    let sampler = slot.sampler.as_mut().expect("active slot has a sampler");
    // A scripted opening (tests only) goes through exactly the path of sampled tokens.
    let token = match slot.forced.pop_front() {
        Some(t) => {
            sampler.accept(LlamaToken(t));
            t
        }
        None => e.llama.sample(sampler, logits_at),
    };
    stats.generated.fetch_add(1, Ordering::Relaxed);
    slot.generated += 1;
    let piece = e.llama.piece(token);
    if e.llama.is_eog(token) {
        // The end of the turn. While the model is still thinking (a model without thinking
        // tags thinks for its whole turn), an end hint may replace it: the end token is never
        // fed, so there is nothing to roll back.
        if !slot.thinking_done {
            let replaced = String::from_utf8_lossy(&piece).into_owned();
            let before = slot.builder.current_bytes();
            let line_start = before.is_empty() || before.ends_with(b"\n");
            if let Some((hint, tokens)) = end_hint(e, slot, &[], line_start) {
                insert_hint(e, slot, hint, tokens, HintTrigger::EndOfThinking, replaced);
                return;
            }
        }
        slot.end_of_turn = Some((token, String::from_utf8_lossy(&piece).into_owned()));
        finish(e, slot, FinishReason::Stop);
        return;
    }
    slot.builder.push(slot.kind_now(), token, &piece);
    if let Some(open) = slot.fence {
        let body = &slot.builder.current_bytes()[open.body_start..];
        if let Some(close) = fence::closing(body) {
            let code = fence::code_of(body, close);
            slot.fence = None;
            if open.run {
                run_tool(
                    e, i, slot, token, open.tool, code, sandbox, runtime, tool_tx,
                );
                return;
            }
        }
    } else {
        if let Some(end) = e.config.think_end.clone() {
            let bytes = slot.builder.current_bytes();
            if !slot.thinking_done && ends_in_last_piece(bytes, &end, piece.len()) {
                // The model ends its thinking: take the end text back out of the trajectory
                // and the KV cache and put a hint in its place, while end hints are left.
                // The rollback only frees room: a hint that fits now fits after it.
                let cut = find_last(bytes, end.as_bytes()).expect("just found");
                let line_start = cut == 0 || bytes[cut - 1] == b'\n';
                let kept = slot.builder.kept_before(cut, |t| e.llama.piece(t));
                if let Some((hint, tokens)) = end_hint(e, slot, &kept, line_start) {
                    if let Some(removed) = roll_back(e, i, slot, cut) {
                        insert_hint(e, slot, hint, tokens, HintTrigger::EndOfThinking, removed);
                    }
                    return;
                }
                slot.thinking_done = true;
            }
        }
        let (seg_len, opened, trigger) = {
            let bytes = slot.builder.current_bytes();
            let opened = fence::opened_by_last(bytes, piece.len(), slot.tools);
            let before = &bytes[..bytes.len() - piece.len()];
            let trigger = match opened {
                None => e.config.hints.trigger_before(before, &piece).map(str::len),
                Some(_) => None,
            };
            (bytes.len(), opened, trigger)
        };
        if let Some((at, body_start, tool)) = opened {
            // The model opens a tool's block. It runs when it closes, unless the tool limit
            // is reached (the model goes on, the block stays text) or it is part of the final
            // answer (a program run without its input only writes a traceback).
            let limit = slot.tool_calls_left() == 0;
            let answer = slot.thinking_done && !slot.hints.run_answer_code;
            slot.tool_limit_reached |= limit && !answer;
            let run = !limit && !answer;
            let body_start = if run {
                let llama = &e.llama;
                let moved_from = slot
                    .builder
                    .split_at_text(at, SegmentKind::Code, |t| llama.piece(t));
                body_start - moved_from
            } else {
                body_start
            };
            slot.fence = Some(OpenFence {
                run,
                body_start,
                tool,
            });
        } else if let Some(word_len) = trigger {
            if trigger_hint_allowed(e, slot) && slot.random() < slot.hints.trigger_probability {
                // A trigger word, and the dice say a hint: the word (with the token that
                // ended it) leaves the trajectory and the KV cache, and the hint starts where
                // the word did. No hint when none opens an enabled tool.
                let r = slot.random();
                let Some(hint) = e.config.hints.pick(&slot.hint_context(), r) else {
                    return keep_going(e, slot, token);
                };
                let cut = seg_len - piece.len() - word_len;
                let kept = slot.builder.kept_before(cut, |t| e.llama.piece(t));
                let text = format!("{}{}", String::from_utf8_lossy(&kept), hint_body(&hint));
                let tokens = e.llama.tokenize(&text, false);
                // A hint is a nudge: without room for it, generation goes on without.
                if slot.fits(e.config.ctx_per_slot, 0, tokens.len()) {
                    slot.trigger_hints_used += 1;
                    if let Some(removed) = roll_back(e, i, slot, cut) {
                        insert_hint(e, slot, hint, tokens, HintTrigger::Word, removed);
                    }
                    return;
                }
            }
        }
    }
    keep_going(e, slot, token);
}

/// The sampled `token` is fed next, unless a limit ends the trajectory here.
fn keep_going(e: &Ctx, slot: &mut Slot, token: i32) {
    if slot.generated >= slot.max_new_tokens {
        finish(e, slot, FinishReason::MaxNewTokens);
        return;
    }
    if slot.pos as u32 + 2 >= e.config.ctx_per_slot {
        finish(e, slot, FinishReason::Context);
        return;
    }
    let kind = slot
        .builder
        .segments
        .last()
        .map_or(SegmentKind::Reasoning, |s| s.kind);
    slot.state = State::Feed(VecDeque::from([(token, kind)]));
}
