//! The engine thread's loop: take requests, drop the ones whose callers went away, admit
//! queued requests into free slots, take tool results back, plan and decode one batch, and
//! step every slot that got logits. Continuous batching: a slot is refilled as soon as its
//! trajectory ends, and a slot waiting on the sandbox costs the others nothing.

use crate::batch::{self, Load};
use crate::info::ModelInfo;
use crate::info::Stats;
use crate::llama::{Ctx, Llama};
use crate::request::{Command, EngineError};
use crate::sharing::{admit, donor, pending, Donor, Pending};
use crate::slot::{stop, Slot, State};
use crate::step::{resume_after_tool, step};
use crate::tools::{ToolDone, Tools};
use crate::EngineConfig;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;
use start_sandbox::Sandbox;
use start_schemas::trajectory::FinishReason;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The token fed to fill a gap. Its cell is removed right after the decode, and no logits
/// are taken from it, so which token it is does not matter.
const PAD_TOKEN: i32 = 0;

/// Loads the model, says it is ready, and runs the loop until the handle is dropped and the
/// work in flight is done.
pub(crate) fn run(
    config: EngineConfig,
    #[cfg(feature = "scripted")] script: Option<crate::script::Script>,
    sandbox: Option<Arc<Sandbox>>,
    runtime: tokio::runtime::Handle,
    rx: mpsc::Receiver<Command>,
    ready: &mpsc::Sender<Result<ModelInfo, EngineError>>,
    stats: Arc<Stats>,
) -> Result<(), EngineError> {
    let model = crate::llama::load_model(&config)?;
    let llama = Llama::new(&model, &config)?;
    let info = ModelInfo {
        name: config
            .model_path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        n_ctx_train: model.n_ctx_train(),
        hint_library_sha256: config.tir.hints.sha256.clone(),
        default_trigger_probability: config.tir.hints.trigger_probability,
    };
    let _ = ready.send(Ok(info));
    let slots = config.slots.max(1);
    let (tool_tx, tool_rx) = mpsc::channel::<ToolDone>();
    let mut s = Scheduler {
        batch: LlamaBatch::new(config.n_batch as usize, slots as i32),
        e: Ctx {
            llama,
            tir: Arc::new(config.tir.clone()),
            config,
            #[cfg(feature = "scripted")]
            script,
        },
        slots: (0..slots).map(|_| Slot::idle()).collect(),
        queue: VecDeque::new(),
        tools: Tools {
            sandbox,
            runtime,
            tx: tool_tx,
        },
        tool_rx,
        rx,
        open: true,
        stats,
    };
    while s.take_requests() {
        s.drop_abandoned();
        s.admit_queued();
        s.take_tool_results();
        if !s.decode_step()? {
            s.wait_for_tools();
        }
    }
    Ok(())
}

/// The loop's state.
struct Scheduler<'m> {
    /// llama.cpp and the settings.
    e: Ctx<'m>,
    /// The sequence slots, by sequence id.
    slots: Vec<Slot>,
    /// Requests waiting for a slot, in arrival order.
    queue: VecDeque<Pending>,
    /// The sandbox, the runtime tool calls run on, and where they send their results.
    tools: Tools,
    /// Tool results.
    tool_rx: mpsc::Receiver<ToolDone>,
    /// The batch, reused every step.
    batch: LlamaBatch<'static>,
    /// New requests.
    rx: mpsc::Receiver<Command>,
    /// Whether the handle can still send requests.
    open: bool,
    stats: Arc<Stats>,
}

impl Scheduler<'_> {
    fn busy(&self) -> bool {
        self.slots.iter().any(|s| !matches!(s.state, State::Idle))
    }

    /// Takes every request waiting on the channel, blocking only when nothing at all is in
    /// flight. `false` once the handle is gone and the last work is done.
    fn take_requests(&mut self) -> bool {
        while self.open {
            let next = if self.busy() || !self.queue.is_empty() {
                match self.rx.try_recv() {
                    Ok(c) => Some(c),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => None,
                }
            } else {
                self.rx.recv().ok()
            };
            match next {
                Some(Command::Generate(req, reply, span)) => {
                    if let Some(p) = pending(&self.e, req, reply, span) {
                        self.queue.push_back(p);
                    }
                }
                None => self.open = false,
            }
        }
        self.open || self.busy() || !self.queue.is_empty()
    }

    /// A caller that went away (its unit's lease was revoked, its job cancelled) stops costing
    /// tokens: queued requests are dropped and generating slots freed. Slots waiting on the
    /// sandbox are left to finish the call, whose result would otherwise land on a reused slot.
    fn drop_abandoned(&mut self) {
        self.queue.retain(|p| !p.reply.is_closed());
        for slot in self.slots.iter_mut() {
            let abandoned = slot.reply.as_ref().is_some_and(|r| r.is_closed());
            if abandoned && matches!(slot.state, State::Feed(_)) {
                self.stats.abandoned.fetch_add(1, Ordering::Relaxed);
                stop(slot, FinishReason::Error, "the caller stopped waiting");
            }
        }
    }

    /// Admits queued requests into idle slots. A request whose prompt another slot is still
    /// prefilling waits for it, then copies its cache instead of prefilling again; an idle
    /// slot whose cache already holds the prompt takes the request itself.
    fn admit_queued(&mut self) {
        while let Some(i) = self
            .slots
            .iter()
            .position(|s| matches!(s.state, State::Idle))
        {
            let mut chosen = None;
            for (k, p) in self.queue.iter().enumerate() {
                match donor(&self.slots, &p.tokens, self.e.config.share_prompts) {
                    Donor::Prefilling => continue,
                    Donor::Ready(d) => chosen = Some((k, Some(d))),
                    Donor::None => chosen = Some((k, None)),
                }
                break;
            }
            let Some((k, from)) = chosen else { break };
            let target = match from {
                Some(d) if matches!(self.slots[d].state, State::Idle) => d,
                _ => i,
            };
            let p = self.queue.remove(k).expect("index from the scan");
            admit(
                &mut self.e,
                target,
                &mut self.slots[target],
                p,
                from,
                &self.stats,
            );
        }
    }

    fn take_tool_results(&mut self) {
        while let Ok((i, result, ms)) = self.tool_rx.try_recv() {
            let slot = &mut self.slots[i];
            resume_after_tool(&mut self.e, i, slot, (&result, ms), &self.tools);
        }
    }

    /// With nothing to decode: wait a little for a tool result, if any is coming.
    fn wait_for_tools(&mut self) {
        if self.slots.iter().any(|s| matches!(s.state, State::Tool)) {
            if let Ok((i, result, ms)) = self.tool_rx.recv_timeout(Duration::from_millis(50)) {
                let slot = &mut self.slots[i];
                resume_after_tool(&mut self.e, i, slot, (&result, ms), &self.tools);
            }
        }
    }

    /// Whether slot `g` can take a throwaway token: room in its stream for it (an idle slot's
    /// stream is first cut back to the prompt it keeps).
    fn can_pad(&self, g: usize) -> bool {
        let s = &self.slots[g];
        let next = match s.state {
            State::Idle => s.cached_prompt.len() as u32,
            State::Tool => s.pos as u32,
            State::Feed(_) => return false,
        };
        next + 2 <= self.e.tir.ctx_per_slot
    }

    /// Plans, fills and decodes one batch, then steps every slot that got logits. `false`
    /// when no slot had anything to feed.
    fn decode_step(&mut self) -> Result<bool, EngineError> {
        let step_started = Instant::now();
        let loads: Vec<Load> = (0..self.slots.len())
            .map(|i| Load {
                queued: match &self.slots[i].state {
                    State::Feed(q) => q.len(),
                    _ => 0,
                },
                can_pad: self.can_pad(i),
            })
            .collect();
        let plan = batch::plan(
            &loads,
            self.e.config.n_batch as usize,
            self.e.config.pad_gaps,
        );
        if plan.fed() == 0 {
            return Ok(false);
        }
        // Pads go after the last position of their stream, as llama.cpp requires; an idle
        // slot's stream is cut back to its cached prompt first, so that a stale trajectory does
        // not lengthen the step's attention.
        let mut pads: Vec<(usize, i32)> = Vec::with_capacity(plan.pads.len());
        for &g in &plan.pads {
            if matches!(self.slots[g].state, State::Idle) {
                let keep = self.slots[g].cached_prompt.len() as u32;
                if self.e.llama.kv_remove(g, Some(keep)).is_err() {
                    // The slot's cache is no longer its prompt: never share it, never pad it.
                    self.slots[g].cached_prompt.clear();
                    continue;
                }
            }
            pads.push((g, self.e.llama.kv_pos_max(g) + 1));
        }
        self.stats
            .padded
            .fetch_add(pads.len() as u64, Ordering::Relaxed);
        // The batch in slot (sequence id) order; what each slot put in is remembered, to undo
        // a failed decode.
        self.batch.clear();
        let mut taken: Vec<(usize, Vec<i32>)> = Vec::new();
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            slot.logits_at = None;
            if let Some(&(_, at)) = pads.iter().find(|&&(g, _)| g == i) {
                self.batch
                    .add(LlamaToken(PAD_TOKEN), at, &[i as i32], false)
                    .map_err(|e| EngineError::Llama(e.to_string()))?;
                continue;
            }
            let take = plan.takes[i];
            let State::Feed(queue) = &mut slot.state else {
                continue;
            };
            if take == 0 {
                continue;
            }
            let chunk: Vec<i32> = queue.drain(..take).collect();
            for (k, &tok) in chunk.iter().enumerate() {
                let last = k + 1 == take && queue.is_empty();
                self.batch
                    .add(LlamaToken(tok), slot.pos + k as i32, &[i as i32], last)
                    .map_err(|e| EngineError::Llama(e.to_string()))?;
                if last {
                    slot.logits_at = Some(self.batch.n_tokens() - 1);
                }
            }
            taken.push((i, chunk));
        }
        self.stats.decodes.fetch_add(1, Ordering::Relaxed);
        let decode_started = Instant::now();
        let decoded = self.e.llama.decode(&mut self.batch);
        self.stats.decode_nanos.fetch_add(
            decode_started.elapsed().as_nanos() as u64,
            Ordering::Relaxed,
        );
        self.remove_pads(&pads);
        if let Err(err) = decoded {
            // Every feed was checked against its slot's room and every sampled token against
            // the context limit, so a slot running out of context never gets here. This is the
            // defence against what cannot be foreseen (the backend refusing a batch): put the
            // tokens back, end the longest trajectory cleanly (finish reason `context`) and go
            // on with the rest.
            tracing::warn!(error = %err, "decode failed; ending the longest trajectory");
            for (i, chunk) in taken {
                if let State::Feed(q) = &mut self.slots[i].state {
                    for item in chunk.into_iter().rev() {
                        q.push_front(item);
                    }
                }
                self.slots[i].logits_at = None;
            }
            let victim = (0..self.slots.len())
                .filter(|&i| !matches!(self.slots[i].state, State::Idle))
                .max_by_key(|&i| self.slots[i].pos)
                .expect("a slot was feeding");
            stop(
                &mut self.slots[victim],
                FinishReason::Context,
                "the batch could not be decoded",
            );
            return Ok(true);
        }
        for (i, chunk) in &taken {
            self.slots[*i].pos += chunk.len() as i32;
        }
        let fed_slots = taken.len() as u64;
        self.stats
            .prefilled
            .fetch_add(plan.fed() as u64, Ordering::Relaxed);
        for (i, _) in taken {
            let Some(at) = self.slots[i].logits_at.take() else {
                continue;
            };
            step(
                &mut self.e,
                i,
                &mut self.slots[i],
                at,
                &self.tools,
                &self.stats,
            );
        }
        // The slots this step fed were busy for the whole step (planning, decode, sampling).
        self.stats.slot_busy_nanos.fetch_add(
            fed_slots * step_started.elapsed().as_nanos() as u64,
            Ordering::Relaxed,
        );
        Ok(true)
    }

    /// Frees the pads' cells, so that each padded slot's next token takes the same cell and
    /// its numbers are those of a step without the pad. A stream that keeps a pad no longer
    /// matches its trajectory: an idle slot forgets its cached prompt, and a slot waiting on
    /// the sandbox ends with `error` once its call is back.
    fn remove_pads(&mut self, pads: &[(usize, i32)]) {
        for &(g, at) in pads {
            if let Err(err) = self.e.llama.kv_remove(g, Some(at as u32)) {
                tracing::warn!(slot = g, error = %err, "a pad could not be removed");
                let slot = &mut self.slots[g];
                slot.cached_prompt.clear();
                slot.kv_lost = true;
            }
        }
    }
}
