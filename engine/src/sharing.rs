//! Admission and prompt sharing: a request is rendered and tokenised once, waits for a free
//! slot, and takes over a cache that already holds its prompt (its own slot's, kept since its
//! last trajectory, or another slot's, copied) instead of prefilling it again. The samples of
//! one problem share one prefill.

use crate::info::Stats;
use crate::llama::Ctx;
use crate::machine::{Machine, Prompt};
use crate::request::{EngineError, GenRequest, Reply};
use crate::slot::{Slot, State};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// A request rendered and tokenized, waiting for a slot.
pub(crate) struct Pending {
    pub req: Box<GenRequest>,
    pub reply: Reply,
    pub prompt: String,
    pub tokens: Vec<i32>,
    /// How many of the last `tokens` are the think prefix's.
    pub prefix_tokens: u32,
    /// The caller's span.
    pub span: tracing::Span,
}

/// Renders and tokenizes a request; answers it with an error when that fails.
pub(crate) fn pending(
    e: &Ctx,
    req: Box<GenRequest>,
    reply: Reply,
    span: tracing::Span,
) -> Option<Pending> {
    let template = match e.llama.render(&req.user_message) {
        Ok(p) => p,
        Err(err) => {
            let _ = reply.send(Err(err));
            return None;
        }
    };
    // The think prefix is tokenised on its own, so that the tokens an SFT export marks as the
    // assistant's (from the prefix on) are exactly those fed.
    let mut tokens = e.llama.tokenize(&template, true);
    let prefix = e.llama.tokenize(&e.tir.think_prefix, false);
    let prefix_tokens = prefix.len() as u32;
    tokens.extend(prefix);
    let prompt = template + &e.tir.think_prefix;
    if tokens.len() as u32 + 16 > e.tir.ctx_per_slot {
        let _ = reply.send(Err(EngineError::PromptTooLong {
            tokens: tokens.len(),
            ctx: e.tir.ctx_per_slot,
        }));
        return None;
    }
    Some(Pending {
        req,
        reply,
        prompt,
        tokens,
        prefix_tokens,
        span,
    })
}

/// Whether a live slot holds the same prompt.
pub(crate) enum Donor {
    /// None does.
    None,
    /// One is still prefilling it: wait.
    Prefilling,
    /// This slot's cache holds it whole.
    Ready(usize),
}

/// The slot whose cache holds `tokens` whole, if any (or is still prefilling them).
pub(crate) fn donor(slots: &[Slot], tokens: &[i32], share: bool) -> Donor {
    if !share {
        return Donor::None;
    }
    let mut found = Donor::None;
    for (d, s) in slots.iter().enumerate() {
        if matches!(s.state, State::Idle) {
            if s.cached_prompt == tokens {
                return Donor::Ready(d);
            }
            continue;
        }
        if s.prompt.ids != tokens {
            continue;
        }
        if s.pos as usize >= tokens.len() {
            return Donor::Ready(d);
        }
        found = Donor::Prefilling;
    }
    found
}

/// Starts `p` in slot `i`, reusing the cache of `from` when it holds the prompt.
pub(crate) fn admit(
    e: &mut Ctx,
    i: usize,
    slot: &mut Slot,
    p: Pending,
    from: Option<usize>,
    stats: &Stats,
) {
    let Pending {
        req,
        reply,
        prompt,
        tokens,
        prefix_tokens,
        span,
    } = p;
    let n = tokens.len();
    let mut feed: VecDeque<i32> = tokens.iter().copied().collect();
    // Reuse a cache holding this prompt: the slot's own (kept since its last trajectory) or
    // another slot's, copied whole (streams are copied whole). Everything from the prompt's
    // last position on is then removed, and that token is fed again for logits of this
    // slot's own. A cache that cannot be reused is emptied and the prompt prefilled.
    let reused = from.is_some_and(|d| {
        (d == i || e.llama.kv_copy(d, i).is_ok())
            && e.llama.kv_remove(i, Some((n - 1) as u32)).is_ok()
    });
    *slot = Slot::idle();
    if !reused {
        if let Err(err) = e.llama.kv_remove(i, None) {
            let _ = reply.send(Err(err));
            return;
        }
    }
    if reused {
        feed.drain(..n - 1);
        slot.pos = (n - 1) as i32;
        stats.shared.fetch_add((n - 1) as u64, Ordering::Relaxed);
    }
    stats
        .prompt_fed
        .fetch_add(feed.len() as u64, Ordering::Relaxed);
    slot.sampler = Some(e.llama.sampler(&req.params, req.seed));
    slot.machine = Some(Machine::new(e.tir.clone(), &req, n));
    slot.prompt = Prompt {
        text: prompt,
        ids: tokens,
        prefix_tokens,
    };
    slot.state = State::Feed(feed);
    #[cfg(feature = "scripted")]
    if let Some(script) = &e.script {
        slot.forced = script
            .take(req.seed)
            .map_or_else(VecDeque::new, |text| e.llama.tokenize(&text, false).into());
    }
    slot.reply = Some(reply);
    slot.span = span;
    slot.started = Instant::now();
}
