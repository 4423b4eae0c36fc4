//! One trajectory on an OpenAI-compatible server: the Hint-infer tool loop of the in-process
//! engine ([`crate::step`]), token by token on a streamed completion.
//!
//! The prompt and everything after it are sent as token ids (the OpenAI API takes a list of
//! ids as `prompt`), so the server attends to exactly the tokens the row records, never to a
//! re-tokenisation of their text. Each streamed token goes through the engine's decisions, in
//! the engine's order, with the engine's helpers: the end of the turn (or an end hint in its
//! place), a code block opening or closing, the end of thinking, a trigger word and its hint,
//! the limits. Where the loop inserts something (a hint, a tool's output) it drops the stream,
//! which makes the server cancel the request, and sends the continuation: the prompt, what was
//! generated, and the insertion.
//!
//! No stop sequences are sent: llama.cpp's `/v1/completions` answers `finish_reason: "stop"`
//! both for an end-of-generation token and for a stop sequence, and cuts the sequence's text
//! out, so a closed code block could not be told from the end of the turn. Deciding on the
//! stream costs the tokens the server samples between the decision and the cancellation.

use super::client::{ClientError, Event, Token};
use super::Shared;
use crate::fence;
use crate::hints::{Hint, HintContext, SampleTests};
use crate::insertion::{ends_in_last_piece, find_last, hint_body};
use crate::request::{EngineError, GenOutput, GenRequest};
use crate::slot::{draw, hint_rng, kind_now, OpenFence};
use crate::tool;
use crate::tools::{
    exec_request, execute, figures_of, pending_call, record_failure, record_result,
};
use crate::trajectory::TrajectoryBuilder;
use serde_json::json;
use start_sandbox::SandboxFile;
use start_schemas::tool::{ToolName, ToolSet};
use start_schemas::trajectory::{
    Figure, FinishReason, HintOrigin, HintSettings, HintTrigger, Mode, SegmentKind, ToolCall,
};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What a token leads to.
enum Next {
    /// Keep reading the stream.
    Read,
    /// Something was inserted: drop the stream, send the continuation.
    Resend,
    /// The trajectory ends.
    Finish(FinishReason),
}

/// A trajectory in flight. The builder's "tokens" are indices into `fed` and `pieces`, which
/// hold, in order, every token after the prompt (generated and inserted) and its bytes: a
/// rollback drops the same tail from all three.
struct Run<'a> {
    s: &'a Shared,
    mode: Mode,
    code_tests: Option<SampleTests>,
    hints: HintSettings,
    tools: ToolSet,
    files: Vec<SandboxFile>,
    max_new_tokens: u32,
    max_tool_calls: u32,
    prompt_ids: Vec<i32>,
    fed: Vec<i32>,
    pieces: Vec<Vec<u8>>,
    builder: TrajectoryBuilder,
    generated: u32,
    fence: Option<OpenFence>,
    thinking_done: bool,
    end_hints_used: u32,
    trigger_hints_used: u32,
    tool_calls: Vec<ToolCall>,
    figures: Vec<Figure>,
    tool_limit_reached: bool,
    end_of_turn: Option<(i32, String)>,
    rng: u64,
    /// A generated token came without an id and was tokenised by the server's `/tokenize`.
    retokenised: bool,
    /// Why the trajectory ended in an error.
    detail: Option<String>,
}

/// Generates one trajectory; `abandoned` says whether its caller stopped waiting (checked
/// at each event).
pub(crate) async fn generate(
    s: &Shared,
    req: GenRequest,
    abandoned: impl Fn() -> bool,
) -> Result<GenOutput, EngineError> {
    let started = Instant::now();
    // The prompt's requests wait out a restarting server as the stream's do: a server killed
    // before a trajectory's first token costs a pause, not the unit.
    let template = patiently(s, || s.client.render(&req.user_message)).await?;
    // As in the engine: the template with its special tokens, then the think prefix on its
    // own, so that an SFT export marks exactly the fed prefix tokens as the assistant's.
    let mut prompt_ids: Vec<i32> = patiently(s, || s.client.tokenize(&template, true))
        .await?
        .into_iter()
        .map(|t| t.0)
        .collect();
    let prefix: Vec<i32> = if s.config.think_prefix.is_empty() {
        Vec::new()
    } else {
        patiently(s, || s.client.tokenize(&s.config.think_prefix, false))
            .await?
            .into_iter()
            .map(|t| t.0)
            .collect()
    };
    let prefix_tokens = prefix.len() as u32;
    prompt_ids.extend(prefix);
    if prompt_ids.len() as u32 + 16 > s.config.ctx_per_slot {
        return Err(EngineError::PromptTooLong {
            tokens: prompt_ids.len(),
            ctx: s.config.ctx_per_slot,
        });
    }
    s.stats
        .prompt_fed
        .fetch_add(prompt_ids.len() as u64, Ordering::Relaxed);
    let mut run = Run {
        s,
        mode: req.mode,
        code_tests: req.code_tests.clone(),
        hints: req.hints.for_mode(req.mode),
        tools: req.tools,
        files: req.files.clone(),
        max_new_tokens: req.params.max_new_tokens,
        max_tool_calls: req.params.max_tool_calls,
        prompt_ids,
        fed: Vec::new(),
        pieces: Vec::new(),
        builder: TrajectoryBuilder::default(),
        generated: 0,
        fence: None,
        thinking_done: false,
        end_hints_used: 0,
        trigger_hints_used: 0,
        tool_calls: Vec::new(),
        figures: Vec::new(),
        tool_limit_reached: false,
        end_of_turn: None,
        rng: hint_rng(req.seed),
        retokenised: false,
        detail: None,
    };
    #[cfg(feature = "scripted")]
    if let Some(reason) = run.scripted(&req).await? {
        let prompt_tokens = run.prompt_ids.len() as u32;
        return Ok(run.finish(
            reason,
            template + &s.config.think_prefix,
            prompt_tokens,
            prefix_tokens,
            started,
        ));
    }
    let reason = run.drive(&req, &abandoned).await?;
    let prompt_tokens = run.prompt_ids.len() as u32;
    Ok(run.finish(
        reason,
        template + &s.config.think_prefix,
        prompt_tokens,
        prefix_tokens,
        started,
    ))
}

impl Run<'_> {
    fn pos(&self) -> usize {
        self.prompt_ids.len() + self.fed.len()
    }

    fn random(&mut self) -> f64 {
        draw(&mut self.rng)
    }

    fn tool_calls_left(&self) -> u32 {
        self.max_tool_calls
            .saturating_sub(self.tool_calls.len() as u32)
    }

    fn kind_now(&self) -> SegmentKind {
        kind_now(self.fence, self.thinking_done)
    }

    /// As [`crate::slot::Slot::hint_context`].
    fn hint_context(&self) -> HintContext<'_> {
        HintContext {
            tests: self.code_tests.as_ref(),
            data: !self.files.is_empty(),
            tools: self.tools,
        }
    }

    fn fits(&self, n: usize) -> bool {
        self.pos() + n + 2 <= self.s.config.ctx_per_slot as usize
    }

    fn piece_of(&self) -> impl Fn(i32) -> Vec<u8> + '_ {
        |t| self.pieces[t as usize].clone()
    }

    fn push(&mut self, kind: SegmentKind, id: i32, bytes: Vec<u8>) {
        let local = self.fed.len() as i32;
        self.builder.push(kind, local, &bytes);
        self.fed.push(id);
        self.pieces.push(bytes);
    }

    /// The request that continues the trajectory from everything fed so far.
    fn body(&self, req: &GenRequest, max_tokens: u32) -> serde_json::Value {
        let p = &req.params;
        let mut prompt = self.prompt_ids.clone();
        prompt.extend_from_slice(&self.fed);
        let mut body = json!({
            "prompt": prompt,
            "max_tokens": max_tokens,
            "stream": true,
            "temperature": p.temperature,
            "top_p": p.top_p,
            "top_k": p.top_k,
            "min_p": p.min_p,
            // llama.cpp's and vLLM's names; each ignores the other's.
            "repeat_penalty": p.repeat_penalty,
            "repeat_last_n": 64,
            "repetition_penalty": p.repeat_penalty,
            "seed": (req.seed ^ (req.seed >> 32)) as u32,
            // Token ids on the stream: llama.cpp through n_probs (post-sampling, so no sort of
            // the vocabulary per token), vLLM through return_token_ids.
            "n_probs": 1,
            "post_sampling_probs": true,
            "return_token_ids": true,
            "skip_special_tokens": false,
            "cache_prompt": true,
        });
        if let Some(m) = &self.s.served_model {
            body["model"] = json!(m);
        }
        body
    }

    /// Streams, decides and resends until the trajectory ends. A server that fails is waited
    /// for ([`Run::wait_for_server`]); one that stays away past the outage limit is an
    /// [`EngineError::Backend`]: the caller's unit fails and comes back, rather than rows
    /// that record an outage as the model's doing. A request the server refuses (4xx) ends
    /// the trajectory with `error` and the server's answer as its detail.
    async fn drive(
        &mut self,
        req: &GenRequest,
        abandoned: &impl Fn() -> bool,
    ) -> Result<FinishReason, EngineError> {
        loop {
            let generated_before = self.generated;
            let ctx = self.s.config.ctx_per_slot as usize;
            let room_new = self.max_new_tokens.saturating_sub(self.generated);
            let room_ctx = ctx.saturating_sub(self.pos() + 2) as u32;
            if room_new == 0 {
                return Ok(FinishReason::MaxNewTokens);
            }
            if room_ctx == 0 {
                return Ok(FinishReason::Context);
            }
            let body = self.body(req, room_new.min(room_ctx));
            let mut stream = match self.s.client.stream(&body).await {
                Ok(s) => s,
                Err(e) if e.retryable() => {
                    self.wait_for_server(e).await?;
                    continue;
                }
                Err(e) => {
                    self.detail = Some(e.to_string());
                    return Ok(FinishReason::Error);
                }
            };
            // A token with no bytes yet (the first part of a character, or the end-of-turn
            // token, whose text servers leave out) waits for the next event to say which.
            let mut held: Option<Token> = None;
            let next = loop {
                if abandoned() {
                    return Err(EngineError::Stopped);
                }
                let event = match stream.next().await {
                    Ok(Some(e)) => e,
                    Ok(None) => {
                        self.detail = Some(format!(
                            "{}/v1/completions: the stream ended without a finish reason",
                            self.s.client.root()
                        ));
                        return Ok(FinishReason::Error);
                    }
                    Err(e) if e.retryable() => {
                        // Cut off mid-stream (a server restarting): what arrived is kept and
                        // the continuation resent from it once the server is back.
                        self.wait_for_server(e).await?;
                        break Next::Resend;
                    }
                    Err(e) => {
                        self.detail = Some(e.to_string());
                        return Ok(FinishReason::Error);
                    }
                };
                match event {
                    Event::Tokens(mut tokens) => {
                        self.split_chunk_text(&mut tokens).await;
                        let mut next = Next::Read;
                        for t in tokens {
                            if let Some(h) = held.take() {
                                next = self.token(h).await?;
                                if !matches!(next, Next::Read) {
                                    break;
                                }
                            }
                            if t.bytes.is_empty() && self.eog_text(&t).is_none() {
                                held = Some(t);
                                continue;
                            }
                            next = self.token(t).await?;
                            if !matches!(next, Next::Read) {
                                break;
                            }
                        }
                        if !matches!(next, Next::Read) {
                            break next;
                        }
                    }
                    Event::Finished(reason) if reason == "length" => {
                        if let Some(h) = held.take() {
                            if let Next::Finish(r) = self.token(h).await? {
                                break Next::Finish(r);
                            }
                        }
                        if self.generated == generated_before {
                            // A length stop with nothing sampled: the server's own context
                            // is full (resending would ask again for nothing).
                            return Ok(FinishReason::Context);
                        }
                        // The max_tokens given: the loop's limits decide.
                        break Next::Resend;
                    }
                    Event::Finished(_) => {
                        // No stop sequences were sent: the model ended its turn.
                        self.generated += u32::from(held.is_some());
                        let eog = match held.take() {
                            Some(Token { id: Some(id), .. }) => {
                                let text = self.s.client.detokenize(&[id]).await.ok();
                                Some((id, text.unwrap_or_default()))
                            }
                            _ => None,
                        };
                        break self.end_of_turn(eog).await?;
                    }
                }
            };
            drop(stream);
            match next {
                Next::Finish(r) => return Ok(r),
                Next::Read | Next::Resend => {}
            }
        }
    }

    /// A scripted opening (tests only): its tokens go through [`Run::token`] as streamed
    /// ones do; an insertion on the way is recorded and the opening goes on after it, as in
    /// the engine. `Some` when the opening ended the trajectory.
    #[cfg(feature = "scripted")]
    async fn scripted(&mut self, req: &GenRequest) -> Result<Option<FinishReason>, EngineError> {
        let Some(text) = self.s.script.as_ref().and_then(|s| s.take(req.seed)) else {
            return Ok(None);
        };
        for (id, bytes) in self.tokenize(&text).await? {
            if let Next::Finish(r) = self
                .token(Token {
                    id: Some(id),
                    bytes,
                })
                .await?
            {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// After a request failed in a way a retry may fix (`e`): waits until the server's
    /// `/health` answers again, so that a restarting server costs a pause and not the work so
    /// far; past the configured outage, an [`EngineError::Backend`].
    async fn wait_for_server(&self, e: ClientError) -> Result<(), EngineError> {
        wait_for_server(self.s, e).await
    }

    /// The model ended its turn (`eog`: the token and its text, where the server sent it):
    /// while it is still thinking, an end hint may go in its place (the token is never fed).
    async fn end_of_turn(&mut self, eog: Option<(i32, String)>) -> Result<Next, EngineError> {
        if !self.thinking_done {
            let before = self.builder.current_bytes();
            let line_start = before.is_empty() || before.ends_with(b"\n");
            let replaced = eog.as_ref().map(|e| e.1.clone()).unwrap_or_default();
            if let Some((hint, tokens)) = self.end_hint(&[], line_start).await? {
                self.insert_hint(hint, tokens, HintTrigger::EndOfThinking, replaced);
                return Ok(Next::Resend);
            }
        }
        self.end_of_turn = eog;
        Ok(Next::Finish(FinishReason::Stop))
    }

    /// One sampled token: the engine's step ([`crate::step`]) on the stream.
    async fn token(&mut self, t: Token) -> Result<Next, EngineError> {
        self.generated += 1;
        self.s.stats.generated.fetch_add(1, Ordering::Relaxed);
        if let (Some(id), Some(text)) = (t.id, self.eog_text(&t)) {
            return self.end_of_turn(Some((id, text))).await;
        }
        let piece = t.bytes;
        let (id, extra) = match t.id {
            Some(id) => (id, Vec::new()),
            None => {
                // A server that streams text only: the server's tokenizer gives the ids (the
                // row says so), the first carrying the text.
                self.retokenised = true;
                let text = String::from_utf8_lossy(&piece).into_owned();
                let mut ids: Vec<i32> = self
                    .tokenize(&text)
                    .await?
                    .into_iter()
                    .map(|t| t.0)
                    .collect();
                if ids.is_empty() {
                    ids.push(0);
                }
                let first = ids.remove(0);
                (first, ids)
            }
        };
        let kind = self.kind_now();
        self.push(kind, id, piece.clone());
        for more in extra {
            self.push(kind, more, Vec::new());
        }
        if let Some(open) = self.fence {
            let body = &self.builder.current_bytes()[open.body_start..];
            if let Some(close) = fence::closing(body) {
                let code = fence::code_of(body, close);
                self.fence = None;
                if open.run {
                    return self.run_tool(open.tool, code).await;
                }
            }
        } else {
            if let Some(end) = self.s.config.think_end.clone() {
                let bytes = self.builder.current_bytes();
                if !self.thinking_done && ends_in_last_piece(bytes, &end, piece.len()) {
                    // The model ends its thinking: the end text leaves the trajectory and an
                    // end hint takes its place, while end hints are left.
                    let cut = find_last(bytes, end.as_bytes()).expect("just found");
                    let line_start = cut == 0 || bytes[cut - 1] == b'\n';
                    let kept = self.builder.kept_before(cut, self.piece_of());
                    if let Some((hint, tokens)) = self.end_hint(&kept, line_start).await? {
                        let removed = self.roll_back(cut);
                        self.insert_hint(hint, tokens, HintTrigger::EndOfThinking, removed);
                        return Ok(Next::Resend);
                    }
                    self.thinking_done = true;
                }
            }
            let (seg_len, opened, trigger) = {
                let bytes = self.builder.current_bytes();
                let opened = fence::opened_by_last(bytes, piece.len(), self.tools);
                let before = &bytes[..bytes.len() - piece.len()];
                let trigger = match opened {
                    None => self
                        .s
                        .config
                        .hints
                        .trigger_before(before, &piece)
                        .map(str::len),
                    Some(_) => None,
                };
                (bytes.len(), opened, trigger)
            };
            if let Some((at, body_start, tool)) = opened {
                let limit = self.tool_calls_left() == 0;
                let answer = self.thinking_done && !self.hints.run_answer_code;
                self.tool_limit_reached |= limit && !answer;
                let run = !limit && !answer;
                let body_start = if run {
                    let pieces = &self.pieces;
                    let moved_from = self
                        .builder
                        .split_at_text(at, SegmentKind::Code, |t| pieces[t as usize].clone());
                    body_start - moved_from
                } else {
                    body_start
                };
                self.fence = Some(OpenFence {
                    run,
                    body_start,
                    tool,
                });
            } else if let Some(word_len) = trigger {
                let hint = if self.trigger_hint_allowed()
                    && self.random() < self.hints.trigger_probability
                {
                    let r = self.random();
                    self.s.config.hints.pick(&self.hint_context(), r)
                } else {
                    None
                };
                if let Some(hint) = hint {
                    let cut = seg_len - piece.len() - word_len;
                    let kept = self.builder.kept_before(cut, self.piece_of());
                    let text = format!("{}{}", String::from_utf8_lossy(&kept), hint_body(&hint));
                    let tokens = self.tokenize(&text).await?;
                    // The rollback frees the word's tokens; the hint must fit without them
                    // counted, as in the engine.
                    if self.fits(tokens.len()) {
                        self.trigger_hints_used += 1;
                        let removed = self.roll_back(cut);
                        self.insert_hint(hint, tokens, HintTrigger::Word, removed);
                        return Ok(Next::Resend);
                    }
                }
            }
        }
        if self.generated >= self.max_new_tokens {
            return Ok(Next::Finish(FinishReason::MaxNewTokens));
        }
        if self.pos() + 2 >= self.s.config.ctx_per_slot as usize {
            return Ok(Next::Finish(FinishReason::Context));
        }
        Ok(Next::Read)
    }

    /// vLLM sends a chunk's text with its first id when a chunk holds several (text held back
    /// while a character's bytes were incomplete, or a stop string's): the server's own
    /// tokenisation of that text, when it gives the very same ids, says which bytes are
    /// whose, so that a segment boundary inside the chunk (a fence, a trigger word) falls
    /// between the right ids. Otherwise the first id keeps the text.
    async fn split_chunk_text(&self, tokens: &mut [Token]) {
        let [first, rest @ ..] = tokens else { return };
        if rest.is_empty()
            || first.bytes.is_empty()
            || rest.iter().any(|t| !t.bytes.is_empty() || t.id.is_none())
        {
            return;
        }
        let Ok(text) = std::str::from_utf8(&first.bytes) else {
            return;
        };
        let Ok(pieces) = self.s.client.tokenize(text, false).await else {
            return;
        };
        let same_ids = pieces.len() == tokens.len()
            && pieces
                .iter()
                .zip(tokens.iter())
                .all(|(p, t)| Some(p.0) == t.id);
        if same_ids {
            for (t, (_, bytes)) in tokens.iter_mut().zip(pieces) {
                t.bytes = bytes;
            }
        }
    }

    /// The text of an end-of-generation token, when `t` is one the server named.
    fn eog_text(&self, t: &Token) -> Option<String> {
        let id = t.id?;
        self.s
            .eog
            .iter()
            .find(|(e, _)| *e == id)
            .map(|(_, text)| text.clone())
    }

    /// Tokens of inserted text, with their bytes.
    async fn tokenize(&self, text: &str) -> Result<Vec<(i32, Vec<u8>)>, EngineError> {
        patiently(self.s, || self.s.client.tokenize(text, false)).await
    }

    /// As [`crate::insertion::trigger_hint_allowed`].
    fn trigger_hint_allowed(&self) -> bool {
        let h = &self.hints;
        let room = (self.s.config.ctx_per_slot as i64 - self.pos() as i64)
            .min(i64::from(self.max_new_tokens) - i64::from(self.generated));
        self.mode == Mode::HintInfer
            && !self.thinking_done
            && self.fence.is_none()
            && self.trigger_hints_used < h.max_trigger_hints
            && self.tool_calls_left() >= h.min_tool_calls_left.max(1)
            && room >= i64::from(h.min_context_left)
    }

    /// As [`crate::insertion::end_hint`].
    async fn end_hint(
        &mut self,
        kept: &[u8],
        line_start: bool,
    ) -> Result<Option<(Hint, Vec<(i32, Vec<u8>)>)>, EngineError> {
        if self.mode != Mode::HintInfer
            || self.end_hints_used >= self.hints.end_hints
            || self.fence.is_some()
        {
            return Ok(None);
        }
        let r = self.random();
        let Some(hint) = self.s.config.hints.pick(&self.hint_context(), r) else {
            return Ok(None);
        };
        if hint.opens().is_some() && self.tool_calls_left() == 0 {
            return Ok(None);
        }
        let sep = if line_start { "" } else { "\n\n" };
        let text = format!("{}{sep}{}", String::from_utf8_lossy(kept), hint_body(&hint));
        let tokens = self.tokenize(&text).await?;
        if !self.fits(tokens.len()) {
            return Ok(None);
        }
        self.end_hints_used += 1;
        Ok(Some((hint, tokens)))
    }

    /// Takes the current segment's text from byte `cut` on back out (token-aligned); returns
    /// that text. Nothing to undo on the server: the next request sends what is left.
    fn roll_back(&mut self, cut: usize) -> String {
        let pieces = &self.pieces;
        let back = self.builder.cut_back(cut, |t| pieces[t as usize].clone());
        let keep = self.fed.len() - back.dropped;
        self.fed.truncate(keep);
        self.pieces.truncate(keep);
        back.removed
    }

    /// Records inserted tokens as a segment of `kind`.
    fn record_insertion(&mut self, tokens: Vec<(i32, Vec<u8>)>, kind: SegmentKind) {
        self.builder.split(kind);
        self.s
            .stats
            .prefilled
            .fetch_add(tokens.len() as u64, Ordering::Relaxed);
        for (id, bytes) in tokens {
            self.push(kind, id, bytes);
        }
    }

    /// As [`crate::insertion::insert_hint`].
    fn insert_hint(
        &mut self,
        hint: Hint,
        tokens: Vec<(i32, Vec<u8>)>,
        trigger: HintTrigger,
        replaced: String,
    ) {
        self.record_insertion(tokens, SegmentKind::Hint);
        self.builder.mark_hint(HintOrigin {
            kind: hint.kind.clone(),
            trigger,
            replaced,
        });
        if let Some(tool) = hint.opens() {
            self.fence = Some(OpenFence {
                run: true,
                body_start: 0,
                tool,
            });
        }
    }

    /// Runs a closed block and inserts its output; the trajectory ends with `context` when
    /// the output does not fit, and with `error` when the sandbox could not run the block.
    async fn run_tool(&mut self, tool: ToolName, code: String) -> Result<Next, EngineError> {
        let cfg = &self.s.config;
        self.tool_calls
            .push(pending_call(self.builder.segments.len() - 1, tool));
        let request = exec_request(
            tool,
            code,
            &self.files,
            cfg.tool_timeout,
            cfg.tool_memory_mb,
            cfg.max_output_chars,
        );
        let (outcome, ms) = execute(self.s.sandbox.as_deref(), request).await;
        let call = self.tool_calls.last_mut().expect("just pushed");
        let result = match outcome {
            Ok(result) => result,
            Err(cause) => {
                self.detail = Some(record_failure(call, &cause, ms));
                return Ok(Next::Finish(FinishReason::Error));
            }
        };
        record_result(call, &result, ms);
        let (block, truncated) =
            tool::of(tool).output_block(&result, cfg.tool_timeout, cfg.max_output_chars);
        call.truncated |= truncated;
        let segment = call.segment;
        self.figures.extend(figures_of(&result, segment));
        let tokens = self.tokenize(&block).await?;
        if !self.fits(tokens.len()) {
            return Ok(Next::Finish(FinishReason::Context));
        }
        self.record_insertion(tokens, SegmentKind::Output);
        Ok(Next::Resend)
    }

    fn finish(
        self,
        reason: FinishReason,
        prompt: String,
        prompt_tokens: u32,
        prefix_tokens: u32,
        started: Instant,
    ) -> GenOutput {
        let mut builder = self.builder;
        if self.s.config.think_end.is_none() {
            builder.relabel_last(SegmentKind::Reasoning, SegmentKind::Answer);
        }
        let completion_tokens = builder.completion_tokens;
        let (mut tool_calls, mut figures) = (self.tool_calls, self.figures);
        let mut segments = builder.finish(&mut tool_calls, &mut figures);
        for seg in &mut segments {
            for t in &mut seg.tokens {
                *t = self.fed[*t as usize];
            }
        }
        let mut prompt_token_ids = self.prompt_ids;
        prompt_token_ids.shrink_to_fit();
        GenOutput {
            prompt,
            generation_prefix: self.s.config.think_prefix.clone(),
            prompt_tokens,
            prompt_token_ids,
            generation_prefix_tokens: prefix_tokens,
            end_of_turn: self.end_of_turn,
            thinking_ended: self.s.config.think_end.as_ref().map(|_| self.thinking_done),
            tool_limit_reached: self.tool_limit_reached,
            segments,
            tool_calls,
            figures,
            finish_reason: reason,
            completion_tokens,
            wall_time_s: started.elapsed().as_secs_f64(),
            token_ids_source: if self.retokenised {
                "server-tokenizer"
            } else {
                "server"
            },
            finish_detail: self.detail,
        }
    }
}

/// After a request failed in a way a retry may fix (`e`): waits until the server's `/health`
/// answers again; past the configured outage, an [`EngineError::Backend`].
async fn wait_for_server(s: &Shared, e: ClientError) -> Result<(), EngineError> {
    let since = Instant::now();
    tracing::warn!(error = %e, "the inference server failed; waiting for it");
    loop {
        if since.elapsed() >= s.config.outage_timeout {
            return Err(EngineError::Backend(format!(
                "{e} (and no answer to /health for {:.0} s)",
                s.config.outage_timeout.as_secs_f64()
            )));
        }
        tokio::time::sleep(s.backoff.max(Duration::from_millis(100))).await;
        if s.client.health().await.is_ok() {
            return Ok(());
        }
    }
}

/// `request`, sent again after each retryable failure once the server is back
/// ([`wait_for_server`]); a refusal (4xx) or an outage past the limit is an
/// [`EngineError::Backend`].
async fn patiently<T, F, Fut>(s: &Shared, mut request: F) -> Result<T, EngineError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    loop {
        match request().await {
            Ok(t) => return Ok(t),
            Err(e) if e.retryable() => wait_for_server(s, e).await?,
            Err(e) => return Err(EngineError::Backend(e.to_string())),
        }
    }
}
