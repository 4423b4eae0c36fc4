//! The Hint-infer core: one trajectory's mechanics as a state machine without I/O, which both
//! backends drive (the model is quinn-proto, QUIC without sockets, driven by quinn's tokio
//! layer).
//!
//! The [`Machine`] takes events — a sampled token with its bytes, the end of the turn, the
//! tokens of a text it asked to have tokenised, a tool call's result, a failure of the driver —
//! and answers each with one [`Action`]: sample the next token, resynchronise the model with a
//! row that was rolled back and added to, tokenise this text, run this block, or finish. Every
//! decision of the paper's mechanics is here and only here: the end of the turn (or an end hint
//! in its place), a code fence opening and closing and its tool call, the end of thinking rolled
//! back and replaced, a trigger word rolled out and its hint put in, the seeded hint dice, the
//! hint budget, the tool-call and context limits. It holds no llama or HTTP type.
//!
//! Its drivers only carry actions out: the in-process engine ([`crate::step`]) with batch
//! slots and the KV cache, the OpenAI-compatible backend ([`crate::openai`]) with requests and
//! streams. Both therefore write the same row for the same tokens.
//!
//! The row is the prompt (which the driver holds), then every completion token in order: a
//! rollback removes a tail of it, an insertion appends to it. A driver keeps the model in step
//! with it: after [`Action::Sample`] the row grew by the sampled token alone; after
//! [`Action::Resync`] the row is unchanged up to `keep` completion tokens and new after that.

mod calls;
#[cfg(test)]
mod tests;

pub(crate) use calls::{execute, ToolOutcome};

use crate::config::TirConfig;
use crate::fence;
use crate::hints::{Hint, HintContext, SampleTests};
use crate::request::{GenOutput, GenRequest};
use crate::trajectory::TrajectoryBuilder;
use start_sandbox::{ExecRequest, SandboxFile};
use start_schemas::problem::splitmix64;
use start_schemas::tool::{ToolName, ToolSet};
use start_schemas::trajectory::{
    Figure, FinishReason, HintOrigin, HintSettings, HintTrigger, Mode, SegmentKind, ToolCall,
};
use std::sync::Arc;

/// What the driver does next.
#[derive(Debug, PartialEq)]
pub(crate) enum Action {
    /// The sampled token stands: feed it (where the model has not seen it yet) and sample the
    /// next.
    Sample,
    /// The row changed after its first `keep` completion tokens (a rollback, an insertion):
    /// drop what the model holds past them, feed the rest of the row, sample.
    Resync {
        /// Completion tokens the model may keep.
        keep: usize,
    },
    /// Tokenise this text (special tokens parsed, none added) and give the tokens with their
    /// bytes to [`Machine::tokenized`].
    Tokenize(String),
    /// Run this block and give its outcome to [`Machine::tool_done`].
    RunTool(Box<ExecRequest>),
    /// The trajectory ends: [`Machine::into_output`] writes it.
    Finish(FinishReason),
}

/// A tool's block the model is inside.
#[derive(Clone, Copy, Debug)]
struct OpenFence {
    /// Whether it runs when it closes; a block past the tool limit, or in the final answer,
    /// stays text, its tokens keeping the surrounding kind.
    run: bool,
    /// Where its body starts in the current segment's bytes.
    body_start: usize,
    /// The tool that runs it.
    tool: ToolName,
}

/// Where an end hint goes.
#[derive(Debug)]
enum EndAt {
    /// In place of the end-of-turn token (never fed, so nothing to roll back).
    Turn {
        eog: Option<(i32, String)>,
        replaced: String,
    },
    /// In place of the end-of-thinking text, which is rolled back from byte `cut` of the
    /// current segment; `piece_len` is the last token's length, for the checks that follow
    /// when no hint goes in.
    Think { cut: usize, piece_len: usize },
}

/// What the machine waits for.
#[derive(Debug)]
enum Wait {
    /// A sampled token or the end of the turn.
    Token,
    /// The tokens of an end hint.
    EndHint(Hint, EndAt),
    /// The tokens of a trigger word's hint, which replaces the text from byte `cut` on.
    TriggerHint(Hint, usize),
    /// A tool call's result.
    Tool(ToolName),
    /// The tokens of a tool's output block.
    Output,
    /// Nothing: the trajectory ended.
    Done,
}

/// One trajectory's Hint-infer state.
pub(crate) struct Machine {
    cfg: Arc<TirConfig>,
    mode: Mode,
    code_tests: Option<SampleTests>,
    hints: HintSettings,
    tools: ToolSet,
    files: Vec<SandboxFile>,
    max_new_tokens: u32,
    max_tool_calls: u32,
    prompt_tokens: usize,
    builder: TrajectoryBuilder,
    /// Tokens sampled (rolled-back ones included; inserted ones not).
    generated: u32,
    fence: Option<OpenFence>,
    thinking_done: bool,
    end_hints_used: u32,
    trigger_hints_used: u32,
    tool_calls: Vec<ToolCall>,
    figures: Vec<Figure>,
    tool_limit_reached: bool,
    end_of_turn: Option<(i32, String)>,
    /// The hint dice, from the trajectory's seed: hints are reproducible.
    rng: u64,
    wait: Wait,
    finish: Option<FinishReason>,
    /// Why the trajectory ended with `error`.
    detail: Option<String>,
}

impl Machine {
    /// A trajectory of `req` after a prompt of `prompt_tokens` tokens.
    pub fn new(cfg: Arc<TirConfig>, req: &GenRequest, prompt_tokens: usize) -> Self {
        Self {
            cfg,
            mode: req.mode,
            code_tests: req.code_tests.clone(),
            hints: req.hints.for_mode(req.mode),
            tools: req.tools,
            files: req.files.clone(),
            max_new_tokens: req.params.max_new_tokens,
            max_tool_calls: req.params.max_tool_calls,
            prompt_tokens,
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
            rng: req.seed ^ 0x5eed_0f41_6e75,
            wait: Wait::Token,
            finish: None,
            detail: None,
        }
    }

    /// Completion tokens in the row.
    pub fn completion_len(&self) -> usize {
        self.builder.completion_tokens as usize
    }

    /// The row's completion token ids from the `from`th on.
    pub fn ids_from(&self, from: usize) -> Vec<i32> {
        self.builder.ids_from(from)
    }

    /// Tool calls made so far.
    pub fn tool_calls_made(&self) -> usize {
        self.tool_calls.len()
    }

    /// Tokens the model may sample before a limit ends the trajectory: what a server request
    /// asks for at most. At least 1 while the trajectory waits for a token.
    pub fn room(&self) -> u32 {
        let ctx = (self.cfg.ctx_per_slot as usize).saturating_sub(self.len() + 1);
        self.max_new_tokens
            .saturating_sub(self.generated)
            .min(ctx.min(u32::MAX as usize) as u32)
    }

    /// Whether the trajectory has ended.
    pub fn finished(&self) -> bool {
        self.finish.is_some()
    }

    /// Prompt and completion tokens.
    fn len(&self) -> usize {
        self.prompt_tokens + self.completion_len()
    }

    fn random(&mut self) -> f64 {
        (splitmix64(&mut self.rng) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn tool_calls_left(&self) -> u32 {
        self.max_tool_calls
            .saturating_sub(self.tool_calls.len() as u32)
    }

    fn hint_context(&self) -> HintContext<'_> {
        HintContext {
            tests: self.code_tests.as_ref(),
            data: !self.files.is_empty(),
            tools: self.tools,
        }
    }

    /// The kind the next generated token belongs to: code inside a block that runs, else
    /// answer once thinking is done, else reasoning.
    fn kind_now(&self) -> SegmentKind {
        if self.fence.is_some_and(|f| f.run) {
            SegmentKind::Code
        } else if self.thinking_done {
            SegmentKind::Answer
        } else {
            SegmentKind::Reasoning
        }
    }

    /// Whether `n` inserted tokens fit the context with a token to sample after them. Every
    /// insertion is checked before it is recorded (a rollback that frees room is not counted):
    /// the row holds exactly what the model was fed, and the engine never asks for KV cells
    /// its stream does not have.
    fn fits(&self, n: usize) -> bool {
        self.len() + n + 2 <= self.cfg.ctx_per_slot as usize
    }

    fn end(&mut self, reason: FinishReason) -> Action {
        self.wait = Wait::Done;
        self.finish = Some(reason);
        Action::Finish(reason)
    }

    /// A sampled token that is not an end of the turn: `id` with its `bytes`, and `extra` ids
    /// without bytes where a server streamed text that its tokenizer made several tokens of.
    pub fn sampled(&mut self, id: i32, bytes: &[u8], extra: &[i32]) -> Action {
        debug_assert!(matches!(self.wait, Wait::Token), "{:?}", self.wait);
        self.generated += 1;
        let kind = self.kind_now();
        self.builder.push(kind, id, bytes);
        for &more in extra {
            self.builder.push(kind, more, &[]);
        }
        let piece_len = bytes.len();
        if let Some(open) = self.fence {
            let body = &self.builder.current_bytes()[open.body_start..];
            if let Some(close) = fence::closing(body) {
                let code = fence::code_of(body, close);
                self.fence = None;
                if open.run {
                    return self.run_tool(open.tool, code);
                }
            }
            return self.keep_going();
        }
        if let Some(end) = self.cfg.think_end.as_deref() {
            let bytes = self.builder.current_bytes();
            if !self.thinking_done && ends_in_last_piece(bytes, end, piece_len) {
                // The model ends its thinking: the end text leaves the row (and the model's
                // cache) and an end hint takes its place, while end hints are left.
                let cut = find_last(bytes, end.as_bytes()).expect("just found");
                let line_start = cut == 0 || bytes[cut - 1] == b'\n';
                let kept = self.builder.kept_before(cut);
                let at = EndAt::Think { cut, piece_len };
                if let Some(action) = self.end_hint(&kept, line_start, at) {
                    return action;
                }
                self.thinking_done = true;
            }
        }
        self.after_thinking_check(piece_len)
    }

    /// The checks of a sampled token outside a block after the end of thinking: a fence
    /// opening, else a trigger word and the dice.
    fn after_thinking_check(&mut self, piece_len: usize) -> Action {
        let bytes = self.builder.current_bytes();
        let seg_len = bytes.len();
        let opened = fence::opened_by_last(bytes, piece_len, self.tools);
        if let Some((at, body_start, tool)) = opened {
            // The model opens a tool's block. It runs when it closes, unless the tool limit is
            // reached (the model goes on, the block stays text) or it is part of the final
            // answer (a program run without its input only writes a traceback).
            let limit = self.tool_calls_left() == 0;
            let answer = self.thinking_done && !self.hints.run_answer_code;
            self.tool_limit_reached |= limit && !answer;
            let run = !limit && !answer;
            let body_start = if run {
                body_start - self.builder.split_at_text(at, SegmentKind::Code)
            } else {
                body_start
            };
            self.fence = Some(OpenFence {
                run,
                body_start,
                tool,
            });
            return self.keep_going();
        }
        let before = &bytes[..seg_len - piece_len];
        let trigger = self
            .cfg
            .hints
            .trigger_before(before, &bytes[seg_len - piece_len..])
            .map(str::len);
        if let Some(word_len) = trigger {
            if self.trigger_hint_allowed() && self.random() < self.hints.trigger_probability {
                // A trigger word, and the dice say a hint: the word (with the token that ended
                // it) leaves the row, and the hint starts where the word did. No hint when none
                // opens an enabled tool.
                let r = self.random();
                if let Some(hint) = self.cfg.hints.pick(&self.hint_context(), r) {
                    let cut = seg_len - piece_len - word_len;
                    let kept = self.builder.kept_before(cut);
                    let text = format!("{}{}", String::from_utf8_lossy(&kept), hint_body(&hint));
                    self.wait = Wait::TriggerHint(hint, cut);
                    return Action::Tokenize(text);
                }
            }
        }
        self.keep_going()
    }

    /// The sampled token stands, unless a limit ends the trajectory on it.
    fn keep_going(&mut self) -> Action {
        self.wait = Wait::Token;
        if self.generated >= self.max_new_tokens {
            return self.end(FinishReason::MaxNewTokens);
        }
        if self.len() + 1 >= self.cfg.ctx_per_slot as usize {
            return self.end(FinishReason::Context);
        }
        Action::Sample
    }

    /// Whether a trigger word may be replaced by a hint now: hint-infer mode, still thinking,
    /// outside any code block, under the per-trajectory cap, with enough tool calls left for
    /// the code the hint asks for and enough room left to finish.
    fn trigger_hint_allowed(&self) -> bool {
        let h = &self.hints;
        let room = (self.cfg.ctx_per_slot as i64 - self.len() as i64)
            .min(i64::from(self.max_new_tokens) - i64::from(self.generated));
        self.mode == Mode::HintInfer
            && !self.thinking_done
            && self.fence.is_none()
            && self.trigger_hints_used < h.max_trigger_hints
            && self.tool_calls_left() >= h.min_tool_calls_left.max(1)
            && room >= i64::from(h.min_context_left)
    }

    /// The end of the turn: `eog` is the token and its text where the driver knows them, and
    /// `sampled` says whether a token was sampled for it. While the model is still thinking
    /// (a model without thinking tags thinks for its whole turn), an end hint may take its
    /// place.
    pub fn end_of_turn(&mut self, eog: Option<(i32, String)>, sampled: bool) -> Action {
        debug_assert!(matches!(self.wait, Wait::Token), "{:?}", self.wait);
        self.generated += u32::from(sampled);
        if !self.thinking_done {
            let before = self.builder.current_bytes();
            let line_start = before.is_empty() || before.ends_with(b"\n");
            let replaced = eog.as_ref().map(|e| e.1.clone()).unwrap_or_default();
            let at = EndAt::Turn { eog, replaced };
            return match self.end_hint(&[], line_start, at) {
                Some(action) => action,
                None => self.end(FinishReason::Stop),
            };
        }
        self.end_of_turn = eog;
        self.end(FinishReason::Stop)
    }

    /// Asks for an end hint's tokens when one may go in now: hint-infer mode, end hints left,
    /// outside any code block, a tool call left for the code it opens. Its text is `kept` (what
    /// the rollback takes that came before the end text), a blank line unless it starts a
    /// line, then the hint. `None` (with the end of the turn recorded) when none may.
    fn end_hint(&mut self, kept: &[u8], line_start: bool, at: EndAt) -> Option<Action> {
        let hint = if self.mode != Mode::HintInfer
            || self.end_hints_used >= self.hints.end_hints
            || self.fence.is_some()
        {
            None
        } else {
            let r = self.random();
            self.cfg
                .hints
                .pick(&self.hint_context(), r)
                .filter(|h| h.opens().is_none() || self.tool_calls_left() > 0)
        };
        let Some(hint) = hint else {
            if let EndAt::Turn { eog, .. } = at {
                self.end_of_turn = eog;
            }
            return None;
        };
        let sep = if line_start { "" } else { "\n\n" };
        let text = format!("{}{sep}{}", String::from_utf8_lossy(kept), hint_body(&hint));
        self.wait = Wait::EndHint(hint, at);
        Some(Action::Tokenize(text))
    }

    /// The tokens of the text last asked for ([`Action::Tokenize`]), with their bytes.
    pub fn tokenized(&mut self, tokens: Vec<(i32, Vec<u8>)>) -> Action {
        match std::mem::replace(&mut self.wait, Wait::Token) {
            Wait::EndHint(hint, at) => {
                if !self.fits(tokens.len()) {
                    // Without room for the hint, the model's own end stands.
                    return match at {
                        EndAt::Turn { eog, .. } => {
                            self.end_of_turn = eog;
                            self.end(FinishReason::Stop)
                        }
                        EndAt::Think { piece_len, .. } => {
                            self.thinking_done = true;
                            self.after_thinking_check(piece_len)
                        }
                    };
                }
                self.end_hints_used += 1;
                let replaced = match at {
                    EndAt::Turn { replaced, .. } => replaced,
                    EndAt::Think { cut, .. } => self.builder.cut_back(cut).removed,
                };
                self.insert_hint(hint, tokens, HintTrigger::EndOfThinking, replaced)
            }
            Wait::TriggerHint(hint, cut) => {
                // A hint is a nudge: without room for it, generation goes on without.
                if !self.fits(tokens.len()) {
                    return self.keep_going();
                }
                self.trigger_hints_used += 1;
                let replaced = self.builder.cut_back(cut).removed;
                self.insert_hint(hint, tokens, HintTrigger::Word, replaced)
            }
            Wait::Output => {
                if !self.fits(tokens.len()) {
                    return self.end(FinishReason::Context);
                }
                let keep = self.completion_len();
                self.insert(tokens, SegmentKind::Output);
                Action::Resync { keep }
            }
            other => {
                self.wait = other;
                debug_assert!(false, "tokens while waiting for {:?}", self.wait);
                Action::Sample
            }
        }
    }

    /// Appends inserted tokens as a segment of `kind`.
    fn insert(&mut self, tokens: Vec<(i32, Vec<u8>)>, kind: SegmentKind) {
        self.builder.split(kind);
        for (id, bytes) in tokens {
            self.builder.push(kind, id, &bytes);
        }
    }

    /// Records a hint as its own segment with its provenance and opens a code block when the
    /// hint ends with an opening fence. The row is kept up to where the rollback (if any) left
    /// it.
    fn insert_hint(
        &mut self,
        hint: Hint,
        tokens: Vec<(i32, Vec<u8>)>,
        trigger: HintTrigger,
        replaced: String,
    ) -> Action {
        let keep = self.completion_len();
        self.insert(tokens, SegmentKind::Hint);
        self.builder.mark_hint(HintOrigin {
            kind: hint.kind.clone(),
            trigger,
            replaced,
        });
        if let Some(tool) = hint.opens() {
            // The next tokens are the block's body, in a code segment of their own.
            self.fence = Some(OpenFence {
                run: true,
                body_start: 0,
                tool,
            });
        }
        self.wait = Wait::Token;
        Action::Resync { keep }
    }

    /// A closed block goes to the sandbox with the problem's files under the limits.
    fn run_tool(&mut self, tool: ToolName, code: String) -> Action {
        self.tool_calls
            .push(calls::pending(self.builder.segments.len() - 1, tool));
        self.wait = Wait::Tool(tool);
        Action::RunTool(Box::new(calls::request(tool, code, &self.files, &self.cfg)))
    }

    /// A tool call's outcome after `ms` milliseconds: its output block is asked to be
    /// tokenised; a block the sandbox could not run ends the trajectory with `error`.
    pub fn tool_done(&mut self, outcome: &ToolOutcome, ms: f64) -> Action {
        let Wait::Tool(tool) = self.wait else {
            debug_assert!(false, "a tool result while waiting for {:?}", self.wait);
            return Action::Sample;
        };
        let call = self.tool_calls.last_mut().expect("a call is pending");
        let result = match outcome {
            Ok(result) => result,
            Err(cause) => {
                self.detail = Some(calls::record_failure(call, cause, ms));
                return self.end(FinishReason::Error);
            }
        };
        calls::record_result(call, result, ms);
        let calls_left = self.hints.show_calls_left.then(|| {
            self.max_tool_calls
                .saturating_sub(self.tool_calls.len() as u32)
        });
        let call = self.tool_calls.last_mut().expect("a call is pending");
        let (block, truncated) = crate::tool::of(tool).output_block(
            result,
            self.cfg.tool_timeout,
            self.cfg.max_output_chars,
            calls_left,
        );
        call.truncated |= truncated;
        let segment = call.segment;
        self.figures.extend(calls::figures_of(result, segment));
        self.wait = Wait::Output;
        Action::Tokenize(block)
    }

    /// The driver ends the trajectory: a limit it found (a server whose own context is full),
    /// a failure (`error`, with why), a batch that could not be decoded.
    pub fn stop(&mut self, reason: FinishReason, detail: Option<String>) -> Action {
        if detail.is_some() {
            self.detail = detail;
        }
        self.end(reason)
    }

    /// The finished row. The driver adds what only it knows: the prompt, its ids and think
    /// prefix, the wall time and where the ids come from.
    pub fn into_output(self, prompt: Prompt, wall_time_s: f64, source: &'static str) -> GenOutput {
        let reason = self.finish.unwrap_or(FinishReason::Error);
        let mut builder = self.builder;
        if self.cfg.think_end.is_none() {
            builder.relabel_last(SegmentKind::Reasoning, SegmentKind::Answer);
        }
        let completion_tokens = builder.completion_tokens;
        let (mut tool_calls, mut figures) = (self.tool_calls, self.figures);
        let segments = builder.finish(&mut tool_calls, &mut figures);
        GenOutput {
            prompt: prompt.text,
            generation_prefix: self.cfg.think_prefix.clone(),
            prompt_tokens: prompt.ids.len() as u32,
            prompt_token_ids: prompt.ids,
            generation_prefix_tokens: prompt.prefix_tokens,
            end_of_turn: self.end_of_turn,
            thinking_ended: self.cfg.think_end.as_ref().map(|_| self.thinking_done),
            tool_limit_reached: self.tool_limit_reached,
            segments,
            tool_calls,
            figures,
            finish_reason: reason,
            completion_tokens,
            wall_time_s,
            token_ids_source: source,
            finish_detail: (reason == FinishReason::Error).then(|| {
                self.detail
                    .unwrap_or_else(|| "the generation was stopped".to_string())
            }),
        }
    }
}

/// A trajectory's prompt as the driver rendered and tokenised it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Prompt {
    /// The chat template's text, then the think prefix.
    pub text: String,
    /// Its token ids.
    pub ids: Vec<i32>,
    /// How many of the last ids are the think prefix's.
    pub prefix_tokens: u32,
}

/// Whether `needle` occurs in `hay` ending within its last `new_len` bytes: completed by the
/// token that brought them.
fn ends_in_last_piece(hay: &[u8], needle: &str, new_len: usize) -> bool {
    let n = needle.as_bytes();
    let from = hay.len().saturating_sub(new_len + n.len() - 1);
    hay[from..].windows(n.len()).any(|w| w == n)
}

fn find_last(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// A hint's text as inserted: as written when it ends a line or opens code, else followed by
/// a newline so that the model's continuation starts a line of its own.
fn hint_body(hint: &Hint) -> String {
    if hint.text.ends_with(char::is_whitespace) {
        hint.text.clone()
    } else {
        format!("{}\n", hint.text)
    }
}
