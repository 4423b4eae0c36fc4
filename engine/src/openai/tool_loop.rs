//! One trajectory on an OpenAI-compatible server: the driver of the Hint-infer core
//! ([`crate::machine`]) on a streamed completion.
//!
//! The prompt and everything after it are sent as token ids (the OpenAI API takes a list of
//! ids as `prompt`), so the server attends to exactly the tokens the row records, never to a
//! re-tokenisation of their text. Each streamed token goes to the core, which decides; this
//! driver carries its actions out over HTTP. Where the row changes other than by the streamed
//! token (a hint, a tool's output, a rollback) it drops the stream, which makes the server
//! cancel the request, and sends the continuation: the prompt and the row.
//!
//! No stop sequences are sent: llama.cpp's `/v1/completions` answers `finish_reason: "stop"`
//! both for an end-of-generation token and for a stop sequence, and cuts the sequence's text
//! out, so a closed code block could not be told from the end of the turn. Deciding on the
//! stream costs the tokens the server samples between the decision and the cancellation.

use super::client::ClientError;
use super::sse::{Event, Token};
use super::Shared;
use crate::machine::{execute, Action, Machine, Prompt};
use crate::request::{EngineError, GenOutput, GenRequest};
use serde_json::json;
use start_sandbox::ExecRequest;
use start_schemas::trajectory::FinishReason;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What a token leads to.
enum Next {
    /// Keep reading the stream.
    Read,
    /// The row changed: drop the stream, send the continuation.
    Resend,
    /// A block closed: drop the stream (the server cancels the request and its slot goes to
    /// another trajectory), run the block, then send the continuation.
    Tool(Box<ExecRequest>),
    /// The trajectory ends.
    Finish,
}

/// A trajectory in flight: the core ([`Machine`]) and what only the stream knows.
struct Run<'a> {
    s: &'a Shared,
    prompt: Prompt,
    m: Machine,
    /// A generated token came without an id and was tokenised by the server's `/tokenize`.
    retokenised: bool,
}

/// Generates one trajectory; `abandoned` says whether its caller stopped waiting (checked
/// at each event).
pub(crate) async fn generate(
    s: &Shared,
    req: GenRequest,
    abandoned: impl Fn() -> bool,
) -> Result<GenOutput, EngineError> {
    let started = Instant::now();
    let prefix_text = &s.tir.think_prefix;
    // The prompt's requests wait out a restarting server as the stream's do: a server killed
    // before a trajectory's first token costs a pause, not the unit.
    let template = patiently(s, || s.client.render(&req.user_message)).await?;
    // As in the engine: the template with its special tokens, then the think prefix on its
    // own, so that an SFT export marks exactly the fed prefix tokens as the assistant's.
    let mut ids: Vec<i32> = patiently(s, || s.client.tokenize(&template, true))
        .await?
        .into_iter()
        .map(|t| t.0)
        .collect();
    let prefix: Vec<i32> = if prefix_text.is_empty() {
        Vec::new()
    } else {
        patiently(s, || s.client.tokenize(prefix_text, false))
            .await?
            .into_iter()
            .map(|t| t.0)
            .collect()
    };
    let prefix_tokens = prefix.len() as u32;
    ids.extend(prefix);
    if ids.len() as u32 + 16 > s.tir.ctx_per_slot {
        return Err(EngineError::PromptTooLong {
            tokens: ids.len(),
            ctx: s.tir.ctx_per_slot,
        });
    }
    s.stats
        .prompt_fed
        .fetch_add(ids.len() as u64, Ordering::Relaxed);
    let mut run = Run {
        s,
        m: Machine::new(s.tir.clone(), &req, ids.len()),
        prompt: Prompt {
            text: template + prefix_text,
            ids,
            prefix_tokens,
        },
        retokenised: false,
    };
    #[cfg(feature = "scripted")]
    run.scripted(&req).await?;
    if !run.m.finished() {
        run.drive(&req, &abandoned).await?;
    }
    let source = if run.retokenised {
        "server-tokenizer"
    } else {
        "server"
    };
    Ok(run
        .m
        .into_output(run.prompt, started.elapsed().as_secs_f64(), source))
}

impl Run<'_> {
    /// The request that continues the trajectory from the row so far.
    fn body(&self, req: &GenRequest) -> serde_json::Value {
        let p = &req.params;
        let mut prompt = self.prompt.ids.clone();
        prompt.extend(self.m.ids_from(0));
        let mut body = json!({
            "prompt": prompt,
            "max_tokens": self.m.room(),
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

    /// Ends the trajectory with `error` and why.
    fn fail(&mut self, detail: String) {
        self.m.stop(FinishReason::Error, Some(detail));
    }

    /// Streams, decides and resends until the trajectory ends. A server that fails is waited
    /// for ([`wait_for_server`]); one that stays away past the outage limit is an
    /// [`EngineError::Backend`]: the caller's unit fails and comes back, rather than rows
    /// that record an outage as the model's doing. A request the server refuses (4xx) ends
    /// the trajectory with `error` and the server's answer as its detail.
    async fn drive(
        &mut self,
        req: &GenRequest,
        abandoned: &impl Fn() -> bool,
    ) -> Result<(), EngineError> {
        while !self.m.finished() {
            let body = self.body(req);
            // One of the server's sequences, held while the request streams: never more
            // requests at the server than it has slots, and a trajectory whose block runs
            // in the sandbox holds none.
            let Ok(slot) = self.s.server_slots.acquire().await else {
                return Err(EngineError::Stopped);
            };
            let mut busy = Instant::now();
            let mut stream = match self.s.client.stream(&body).await {
                Ok(s) => s,
                Err(e) if e.retryable() => {
                    wait_for_server(self.s, e).await?;
                    continue;
                }
                Err(e) => {
                    self.fail(e.to_string());
                    return Ok(());
                }
            };
            let mut sampled = false;
            // A token with no bytes yet (the first part of a character, or the end-of-turn
            // token, whose text servers leave out) waits for the next event to say which.
            let mut held: Option<Token> = None;
            let mut pending = Next::Resend;
            loop {
                if abandoned() {
                    return Err(EngineError::Stopped);
                }
                let event = stream.next().await;
                self.count_busy(&mut busy);
                let event = match event {
                    Ok(Some(e)) => e,
                    Ok(None) => {
                        self.fail(format!(
                            "{}/v1/completions: the stream ended without a finish reason",
                            self.s.client.root()
                        ));
                        return Ok(());
                    }
                    Err(e) if e.retryable() => {
                        // Cut off mid-stream (a server restarting): what arrived is kept and
                        // the continuation resent from it once the server is back.
                        wait_for_server(self.s, e).await?;
                        break;
                    }
                    Err(e) => {
                        self.fail(e.to_string());
                        return Ok(());
                    }
                };
                let next = match event {
                    Event::Tokens(mut tokens) => {
                        self.split_chunk_text(&mut tokens).await;
                        let mut next = Next::Read;
                        for t in tokens {
                            if let Some(h) = held.take() {
                                sampled = true;
                                next = self.token(h).await?;
                                if !matches!(next, Next::Read) {
                                    break;
                                }
                            }
                            if t.bytes.is_empty() && self.eog_text(&t).is_none() {
                                held = Some(t);
                                continue;
                            }
                            sampled = true;
                            next = self.token(t).await?;
                            if !matches!(next, Next::Read) {
                                break;
                            }
                        }
                        next
                    }
                    Event::Finished(reason) if reason == "length" => {
                        let mut next = Next::Resend;
                        if let Some(h) = held.take() {
                            sampled = true;
                            next = self.token(h).await?;
                        }
                        if !sampled {
                            // A length stop with nothing sampled: the server's own context
                            // is full (resending would ask again for nothing).
                            self.m.stop(FinishReason::Context, None);
                        }
                        // Else the max_tokens given: the core's limits decide.
                        match next {
                            Next::Read => Next::Resend,
                            other => other,
                        }
                    }
                    Event::Finished(_) => {
                        // No stop sequences were sent: the model ended its turn.
                        let was_held = held.is_some();
                        let eog = match held.take() {
                            Some(Token { id: Some(id), .. }) => {
                                let text = self.s.client.detokenize(&[id]).await.ok();
                                Some((id, text.unwrap_or_default()))
                            }
                            _ => None,
                        };
                        self.s
                            .stats
                            .generated
                            .fetch_add(u64::from(was_held), Ordering::Relaxed);
                        let action = self.m.end_of_turn(eog, was_held);
                        self.act(action).await?
                    }
                };
                if !matches!(next, Next::Read) {
                    pending = next;
                    break;
                }
            }
            drop(stream);
            drop(slot);
            self.count_busy(&mut busy);
            self.run_tools(pending).await?;
        }
        Ok(())
    }

    /// Adds the time since `since` to the slot time in use and moves `since` to now: counted
    /// at every event, so that a reading mid-run includes the streams under way.
    fn count_busy(&self, since: &mut Instant) {
        let now = Instant::now();
        self.s
            .stats
            .slot_busy_nanos
            .fetch_add((now - *since).as_nanos() as u64, Ordering::Relaxed);
        *since = now;
    }

    /// Runs the block the core asked for in the sandbox (if it asked for one) and carries out
    /// what the core makes of the outcome, until it wants something other than a block: the
    /// one place both the stream and a scripted opening run tools.
    async fn run_tools(&mut self, mut next: Next) -> Result<Next, EngineError> {
        while let Next::Tool(request) = next {
            let (outcome, ms) = execute(self.s.sandbox.as_deref(), *request).await;
            let action = self.m.tool_done(&outcome, ms);
            next = self.act(action).await?;
        }
        Ok(next)
    }

    /// A scripted opening (tests only): its tokens go through [`Run::token`] as streamed
    /// ones do; an insertion on the way is recorded and the opening goes on after it, as in
    /// the engine.
    #[cfg(feature = "scripted")]
    async fn scripted(&mut self, req: &GenRequest) -> Result<(), EngineError> {
        let Some(text) = self.s.script.as_ref().and_then(|s| s.take(req.seed)) else {
            return Ok(());
        };
        for (id, bytes) in self.tokenize(&text).await? {
            let token = Token {
                id: Some(id),
                bytes,
            };
            let next = self.token(token).await?;
            if let Next::Finish = self.run_tools(next).await? {
                break;
            }
        }
        Ok(())
    }

    /// Carries out the core's actions until it waits for a token or the trajectory ends.
    async fn act(&mut self, mut action: Action) -> Result<Next, EngineError> {
        loop {
            action = match action {
                Action::Sample => return Ok(Next::Read),
                Action::Resync { keep } => {
                    let inserted = self.m.completion_len().saturating_sub(keep);
                    self.s
                        .stats
                        .prefilled
                        .fetch_add(inserted as u64, Ordering::Relaxed);
                    return Ok(Next::Resend);
                }
                Action::Finish(_) => return Ok(Next::Finish),
                Action::Tokenize(text) => {
                    let tokens = self.tokenize(&text).await?;
                    self.m.tokenized(tokens)
                }
                Action::RunTool(request) => return Ok(Next::Tool(request)),
            };
        }
    }

    /// One sampled token, through the core.
    async fn token(&mut self, t: Token) -> Result<Next, EngineError> {
        self.s.stats.generated.fetch_add(1, Ordering::Relaxed);
        if let (Some(id), Some(text)) = (t.id, self.eog_text(&t)) {
            let action = self.m.end_of_turn(Some((id, text)), true);
            return self.act(action).await;
        }
        let action = match t.id {
            Some(id) => self.m.sampled(id, &t.bytes, &[]),
            None => {
                // A server that streams text only: the server's tokenizer gives the ids (the
                // row says so), the first carrying the text.
                self.retokenised = true;
                let text = String::from_utf8_lossy(&t.bytes).into_owned();
                let ids: Vec<i32> = self
                    .tokenize(&text)
                    .await?
                    .into_iter()
                    .map(|t| t.0)
                    .collect();
                let (first, rest) = ids.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
                self.m.sampled(first, &t.bytes, rest)
            }
        };
        self.act(action).await
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
