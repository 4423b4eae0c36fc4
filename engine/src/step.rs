//! The in-process engine's driver of the Hint-infer core ([`crate::machine`]): after a decode,
//! a slot samples its next token and hands it to its core; the core's actions are carried out
//! on the slot — the KV stream set back and fed what the row holds, a text tokenised, a block
//! sent to the sandbox ([`crate::tools`]), the trajectory ended.

use crate::info::Stats;
use crate::llama::Ctx;
use crate::machine::Action;
use crate::machine::ToolOutcome;
use crate::slot::{finish, stop, Slot, State};
use crate::tools::{run_tool, Tools};
use llama_cpp_2::token::LlamaToken;
use start_schemas::trajectory::FinishReason;
use std::sync::atomic::Ordering;

/// After a decode: sample this slot's next token and carry out what its core decides.
pub(crate) fn step(
    e: &mut Ctx,
    i: usize,
    slot: &mut Slot,
    logits_at: i32,
    tools: &Tools,
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
    let piece = e.llama.piece(token);
    let m = slot.machine.as_mut().expect("active slot has a trajectory");
    let action = if e.llama.is_eog(token) {
        m.end_of_turn(
            Some((token, String::from_utf8_lossy(&piece).into_owned())),
            true,
        )
    } else {
        m.sampled(token, &piece, &[])
    };
    act(e, i, slot, action, tools);
}

/// Carries out the core's actions until the slot has tokens to feed, waits on the sandbox,
/// or is free.
pub(crate) fn act(e: &mut Ctx, i: usize, slot: &mut Slot, mut action: Action, tools: &Tools) {
    loop {
        let m = slot.machine.as_mut().expect("active slot has a trajectory");
        action = match action {
            Action::Tokenize(text) => {
                let tokens = e
                    .llama
                    .tokenize(&text, false)
                    .into_iter()
                    .map(|t| (t, e.llama.piece(t)))
                    .collect();
                m.tokenized(tokens)
            }
            Action::RunTool(request) => {
                run_tool(i, slot, *request, tools);
                return;
            }
            Action::Sample => {
                let fed = slot.fed();
                let m = slot.machine.as_ref().expect("active slot has a trajectory");
                slot.state = State::Feed(m.ids_from(fed).into());
                return;
            }
            Action::Resync { keep } => {
                resync(e, i, slot, keep);
                return;
            }
            Action::Finish(_) => {
                finish(slot);
                return;
            }
        };
    }
}

/// The row changed after its first `keep` completion tokens: the KV stream is cut back to
/// them (the last sampled token was never fed, so a rollback of it alone costs nothing), the
/// inserted tokens join the sampler's repetition window, and the rest of the row is fed. A KV
/// cache that refuses the removal ends the trajectory (`error`): what the model would attend
/// to would no longer match what the row records.
fn resync(e: &mut Ctx, i: usize, slot: &mut Slot, keep: usize) {
    if keep < slot.fed() {
        let at = slot.prompt.ids.len() + keep;
        if let Err(err) = e.llama.kv_remove(i, Some(at as u32)) {
            tracing::warn!(slot = i, error = %err, "rollback refused; ending the trajectory");
            stop(slot, FinishReason::Error, "the KV cache refused a rollback");
            return;
        }
        slot.pos = at as i32;
    }
    let fed = slot.fed();
    let m = slot.machine.as_ref().expect("active slot has a trajectory");
    if let Some(sampler) = slot.sampler.as_mut() {
        for t in m.ids_from(keep) {
            sampler.accept(LlamaToken(t));
        }
    }
    slot.state = State::Feed(m.ids_from(fed).into());
}

/// Gives a tool call's result to slot `i`'s core and carries out what it decides.
pub(crate) fn resume_after_tool(
    e: &mut Ctx,
    i: usize,
    slot: &mut Slot,
    (outcome, ms): (&ToolOutcome, f64),
    tools: &Tools,
) {
    if !matches!(slot.state, State::Tool) {
        return;
    }
    if slot.kv_lost {
        stop(
            slot,
            FinishReason::Error,
            "the KV cache could not be set back after a pad",
        );
        return;
    }
    let Some(m) = slot.machine.as_mut() else {
        return;
    };
    let action = m.tool_done(outcome, ms);
    act(e, i, slot, action, tools);
}
