//! The engine thread: one llama context, S slots, continuous batching, the tool loop.

use crate::fence;
use crate::hints::{Hint, HintLibrary, SampleTests};
use crate::slot::Builder;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use start_sandbox::{ExecRequest, ExecResult, Sandbox};
use start_schemas::problem::splitmix64;
use start_schemas::trajectory::{
    FinishReason, GenerationParams, HintOrigin, HintSettings, HintTrigger, Mode, Segment,
    SegmentKind, ToolCall,
};
use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The GGUF model.
    pub model_path: PathBuf,
    /// Sequence slots decoded together.
    pub slots: usize,
    /// Context budget of each slot, in tokens (prompt + completion).
    pub ctx_per_slot: u32,
    /// Most tokens in one decode call.
    pub n_batch: u32,
    /// CPU threads.
    pub threads: i32,
    /// Layers offloaded to the GPU (with the `cuda` feature).
    pub gpu_layers: u32,
    /// Text opening the assistant's thinking (QwQ: "<think>\n"; empty for models without).
    pub think_prefix: String,
    /// Text that ends thinking ("</think>"); `None` for models without thinking tags.
    pub think_end: Option<String>,
    /// Most characters of tool output inserted (head and tail kept).
    pub max_output_chars: usize,
    /// Wall-clock limit of one code execution.
    pub tool_timeout: Duration,
    /// Memory limit of one code execution, MiB.
    pub tool_memory_mb: u32,
    /// The hint library.
    pub hints: HintLibrary,
    /// Samples of the same prompt share its KV cache: prefill once, copy the sequence.
    pub share_prompts: bool,
    /// The widest run of slots with nothing to feed (waiting on the sandbox, idle) between
    /// slots that have, that a decode step fills with throwaway tokens rather than letting
    /// llama.cpp split the step around it. A throwaway token costs one token's compute; a
    /// split costs another pass over the weights. On two CPU cores one split costs about two
    /// tokens, so the default pads single gaps; on a GPU a pass over the weights costs far
    /// more than a token.
    pub pad_gaps: usize,
}

impl EngineConfig {
    /// Defaults for `model_path`.
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        Self {
            model_path: model_path.into(),
            slots: 4,
            ctx_per_slot: 2048,
            n_batch: 512,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get() as i32),
            gpu_layers: 0,
            think_prefix: String::new(),
            think_end: None,
            max_output_chars: 2048,
            tool_timeout: Duration::from_secs(10),
            tool_memory_mb: 512,
            hints: HintLibrary::builtin(),
            share_prompts: true,
            pad_gaps: 1,
        }
    }
}

/// One trajectory to generate.
#[derive(Clone, Debug)]
pub struct GenRequest {
    /// The user message (the question with its instructions).
    pub user_message: String,
    /// For a code problem, the tests it shows (picks code hints and fills the debug hint);
    /// `None` for math and choice problems.
    pub code_tests: Option<SampleTests>,
    /// Generation mode.
    pub mode: Mode,
    /// Sampling parameters and limits.
    pub params: GenerationParams,
    /// This trajectory's seed.
    pub seed: u64,
    /// Where and how often hints go in (hint-infer mode only), and whether code in the final
    /// answer runs (every mode).
    pub hints: HintSettings,
    /// Text the model is made to "generate" first: its tokens go through exactly the path of
    /// sampled tokens (fences, triggers, limits), which tests and demos use to force a code
    /// block or a trigger word.
    pub forced_prefix: String,
}

/// A generated trajectory, before grading.
#[derive(Clone, Debug)]
pub struct GenOutput {
    /// The rendered prompt: the chat template's text, then the think prefix.
    pub prompt: String,
    /// The think prefix the prompt ends with (empty for models without one).
    pub generation_prefix: String,
    /// Prompt length in tokens.
    pub prompt_tokens: u32,
    /// The prompt's token ids.
    pub prompt_token_ids: Vec<i32>,
    /// How many of the last prompt tokens are the think prefix's.
    pub generation_prefix_tokens: u32,
    /// The end-of-turn token that ended the trajectory, with its text; `None` when a limit
    /// or an error ended it.
    pub end_of_turn: Option<(i32, String)>,
    /// Whether the model's thinking ended (it wrote the end-of-thinking text); `None` for
    /// models without thinking tags, where the whole turn is one.
    pub thinking_ended: Option<bool>,
    /// The tool-call limit was reached: later code blocks stayed text.
    pub tool_limit_reached: bool,
    /// The trajectory.
    pub segments: Vec<Segment>,
    /// Code executions.
    pub tool_calls: Vec<ToolCall>,
    /// Why it stopped.
    pub finish_reason: FinishReason,
    /// Tokens after the prompt.
    pub completion_tokens: u32,
    /// Seconds from admission to the last token.
    pub wall_time_s: f64,
}

/// What can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The model could not be loaded.
    #[error("cannot load model {path}: {message}")]
    Load {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The prompt is longer than a slot's context.
    #[error("prompt of {tokens} tokens does not fit a slot's context of {ctx}")]
    PromptTooLong {
        /// Prompt tokens.
        tokens: usize,
        /// Context per slot.
        ctx: u32,
    },
    /// llama.cpp failed.
    #[error("llama.cpp: {0}")]
    Llama(String),
    /// The engine thread is gone.
    #[error("the engine stopped")]
    Stopped,
}

type Reply = tokio::sync::oneshot::Sender<Result<GenOutput, EngineError>>;

enum Command {
    Generate(Box<GenRequest>, Reply),
}

/// Facts about the loaded model.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    /// File name.
    pub name: String,
    /// Training context length.
    pub n_ctx_train: u32,
    /// Hex sha256 of the hint library in use.
    pub hint_library_sha256: String,
    /// The hint library's trigger probability, for jobs that give none.
    pub default_trigger_probability: f64,
}

/// Handle to the engine thread.
pub struct Engine {
    /// `None` once shut down: later requests are answered with [`EngineError::Stopped`].
    tx: std::sync::Mutex<Option<mpsc::Sender<Command>>>,
    /// The loaded model.
    pub info: ModelInfo,
    stats: Arc<Stats>,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Counters for progress and benchmarks.
#[derive(Default, Debug)]
pub struct Stats {
    /// Tokens sampled by the model.
    pub generated: std::sync::atomic::AtomicU64,
    /// Tokens prefilled (prompts, hints, tool outputs).
    pub prefilled: std::sync::atomic::AtomicU64,
    /// Decode calls.
    pub decodes: std::sync::atomic::AtomicU64,
    /// Prompt tokens not prefilled because another sample's cache was copied.
    pub shared: std::sync::atomic::AtomicU64,
    /// Prompt tokens actually prefilled.
    pub prompt_fed: std::sync::atomic::AtomicU64,
    /// Nanoseconds spent inside llama.cpp's decode.
    pub decode_nanos: std::sync::atomic::AtomicU64,
    /// Trajectories dropped because their caller stopped waiting.
    pub abandoned: std::sync::atomic::AtomicU64,
    /// Throwaway tokens fed to fill gaps between slots (see [`EngineConfig::pad_gaps`]).
    pub padded: std::sync::atomic::AtomicU64,
}

impl Engine {
    /// Loads the model on a new thread and starts the batch loop. Tool calls run on `sandbox`
    /// through `runtime`; without a sandbox, code blocks get an error as their output.
    pub fn start(
        config: EngineConfig,
        sandbox: Option<Arc<Sandbox>>,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, EngineError> {
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let stats = Arc::new(Stats::default());
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("start-engine".into())
            .spawn(move || {
                if let Err(e) = run(config, sandbox, runtime, rx, &ready_tx, thread_stats) {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| EngineError::Llama(e.to_string()))?;
        let info = ready_rx.recv().map_err(|_| EngineError::Stopped)??;
        Ok(Self {
            tx: std::sync::Mutex::new(Some(tx)),
            info,
            stats,
            thread: std::sync::Mutex::new(Some(thread)),
        })
    }

    /// Takes no more requests, lets those in flight end, and waits until the engine thread
    /// has exited: its context, model and (on a GPU) memory are freed, and so is llama.cpp's
    /// OpenMP team. A process must not exit while that thread is inside a decode, whose
    /// threads the exit's C++ destructors would pull away. Requests whose callers stopped
    /// waiting end at the next step, and a tool call within its time-out. Blocks the calling
    /// thread; later calls return at once.
    pub fn shutdown(&self) {
        drop(self.tx.lock().expect("engine sender lock").take());
        let thread = self.thread.lock().expect("engine thread lock").take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    /// Queues a trajectory; the receiver gets it when it is done.
    pub fn submit(
        &self,
        request: GenRequest,
    ) -> tokio::sync::oneshot::Receiver<Result<GenOutput, EngineError>> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let command = Command::Generate(Box::new(request), reply);
        let refused = match self.tx.lock().expect("engine sender lock").as_ref() {
            Some(tx) => tx.send(command).err().map(|mpsc::SendError(c)| c),
            None => Some(command),
        };
        if let Some(Command::Generate(_, reply)) = refused {
            let _ = reply.send(Err(EngineError::Stopped));
        }
        rx
    }

    /// Progress counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

/// A slot's state.
enum State {
    /// Free.
    Idle,
    /// Tokens to feed (prompt, sampled token, hint, tool output); logits wanted after the last.
    Feed(VecDeque<(i32, SegmentKind)>),
    /// Waiting for the sandbox.
    Tool,
}

/// A python block the model is inside.
#[derive(Clone, Copy, Debug)]
struct OpenFence {
    /// Whether it runs when it closes; a block past the tool limit, or in the final answer,
    /// stays text, its tokens keeping the surrounding kind.
    run: bool,
    /// Where its body starts in the current segment's bytes.
    body_start: usize,
}

struct Slot {
    state: State,
    mode: Mode,
    code_tests: Option<SampleTests>,
    hints: HintSettings,
    max_new_tokens: u32,
    max_tool_calls: u32,
    reply: Option<Reply>,
    sampler: Option<LlamaSampler>,
    builder: Builder,
    prompt: String,
    prompt_tokens: u32,
    /// How many of the prompt's last tokens are the think prefix's.
    prefix_tokens: u32,
    /// The prompt's tokens, to let later samples of the same prompt copy this cache.
    prompt_ids: Vec<i32>,
    /// An idle slot's last prompt, still whole in its cache.
    cached_prompt: Vec<i32>,
    pos: i32,
    generated: u32,
    end_hints_used: u32,
    trigger_hints_used: u32,
    /// The python block being written, if any.
    fence: Option<OpenFence>,
    tool_calls: Vec<ToolCall>,
    tool_limit_reached: bool,
    end_of_turn: Option<(i32, String)>,
    /// Forced tokens still to "sample" (see [`GenRequest::forced_prefix`]).
    forced: VecDeque<i32>,
    /// The token that closed a code block, fed together with the block's output.
    pending_after_tool: Option<i32>,
    rng: u64,
    started: Instant,
    thinking_done: bool,
    /// Index in the last batch of this slot's logits.
    logits_at: Option<i32>,
}

impl Slot {
    fn idle() -> Self {
        Self {
            state: State::Idle,
            mode: Mode::Plain,
            code_tests: None,
            hints: HintSettings::from_proto(None, 0.0).for_mode(Mode::Plain),
            max_new_tokens: 0,
            max_tool_calls: 0,
            reply: None,
            sampler: None,
            builder: Builder::default(),
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
            tool_limit_reached: false,
            end_of_turn: None,
            pending_after_tool: None,
            forced: VecDeque::new(),
            rng: 0,
            started: Instant::now(),
            thinking_done: false,
            logits_at: None,
        }
    }

    fn random(&mut self) -> f64 {
        // Seeded from the trajectory seed: hints are reproducible.
        (splitmix64(&mut self.rng) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Tool calls still allowed.
    fn tool_calls_left(&self) -> u32 {
        self.max_tool_calls
            .saturating_sub(self.tool_calls.len() as u32)
    }

    /// The kind the next generated token belongs to.
    fn kind_now(&self) -> SegmentKind {
        if self.fence.is_some_and(|f| f.run) {
            SegmentKind::Code
        } else if self.thinking_done {
            SegmentKind::Answer
        } else {
            SegmentKind::Reasoning
        }
    }
}

fn sampler_for(params: &GenerationParams, seed: u64, n_vocab: i32) -> LlamaSampler {
    let mut chain = Vec::new();
    if params.repeat_penalty != 1.0 {
        chain.push(LlamaSampler::penalties(
            n_vocab,
            64,
            params.repeat_penalty,
            0.0,
            0.0,
        ));
    }
    if params.temperature <= 0.0 {
        chain.push(LlamaSampler::greedy());
        return LlamaSampler::chain_simple(chain);
    }
    if params.top_k > 0 {
        chain.push(LlamaSampler::top_k(params.top_k as i32));
    }
    if params.top_p < 1.0 {
        chain.push(LlamaSampler::top_p(params.top_p, 1));
    }
    if params.min_p > 0.0 {
        chain.push(LlamaSampler::min_p(params.min_p, 1));
    }
    chain.push(LlamaSampler::temp(params.temperature));
    chain.push(LlamaSampler::dist((seed ^ (seed >> 32)) as u32));
    LlamaSampler::chain_simple(chain)
}

struct Ctx<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    config: EngineConfig,
}

impl Ctx<'_> {
    fn piece(&self, token: i32) -> Vec<u8> {
        self.model
            .vocab()
            .token_to_piece(LlamaToken(token), true, None)
    }

    fn tokenize(&self, text: &str, add_bos: bool) -> Vec<i32> {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), add_bos, true)
            .into_iter()
            .map(|t| t.0)
            .collect()
    }

    /// The chat template applied to the user message, with the generation prompt; the think
    /// prefix is not part of it.
    fn render(&self, user: &str) -> Result<String, EngineError> {
        let template = self
            .model
            .chat_template(None)
            .map_err(|e| EngineError::Llama(format!("chat template: {e}")))?;
        let msg = LlamaChatMessage::new("user".into(), user.into())
            .map_err(|e| EngineError::Llama(e.to_string()))?;
        let prompt = self
            .model
            .apply_chat_template(&template, &[msg], true)
            .map_err(|e| EngineError::Llama(format!("chat template: {e}")))?;
        Ok(prompt)
    }
}

/// llama.cpp's backend, initialised once per process (with its logs silenced) and shared by
/// every engine and by anything else in the process that loads models.
pub fn backend() -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: std::sync::OnceLock<Result<LlamaBackend, String>> = std::sync::OnceLock::new();
    BACKEND
        .get_or_init(|| {
            LlamaBackend::init()
                .map(|mut b| {
                    b.void_logs();
                    b
                })
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| EngineError::Llama(e.clone()))
}

fn run(
    config: EngineConfig,
    sandbox: Option<Arc<Sandbox>>,
    runtime: tokio::runtime::Handle,
    rx: mpsc::Receiver<Command>,
    ready: &mpsc::Sender<Result<ModelInfo, EngineError>>,
    stats: Arc<Stats>,
) -> Result<(), EngineError> {
    let backend = backend()?;
    let load_err = |message: String| EngineError::Load {
        path: config.model_path.display().to_string(),
        message,
    };
    let model_params = LlamaModelParams::default().with_n_gpu_layers(config.gpu_layers);
    let model = LlamaModel::load_from_file(backend, &config.model_path, &model_params)
        .map_err(|e| load_err(e.to_string()))?;
    let slots = config.slots.max(1);
    let n_ctx = config.ctx_per_slot.saturating_mul(slots as u32).max(64);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(config.n_batch)
        .with_n_ubatch(config.n_batch)
        .with_n_seq_max(slots as u32)
        // One KV stream per slot: attention then never sums over another sequence's cells, so a
        // trajectory's numbers (and tokens) do not depend on what else shares the batch.
        .with_kv_unified(false)
        .with_n_threads(config.threads)
        .with_n_threads_batch(config.threads);
    let ctx = model
        .new_context(backend, params)
        .map_err(|e| load_err(e.to_string()))?;
    let info = ModelInfo {
        name: config
            .model_path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        n_ctx_train: model.n_ctx_train(),
        hint_library_sha256: config.hints.sha256.clone(),
        default_trigger_probability: config.hints.trigger_probability,
    };
    let _ = ready.send(Ok(info));
    let mut e = Ctx {
        model: &model,
        ctx,
        config,
    };
    let mut slots: Vec<Slot> = (0..slots).map(|_| Slot::idle()).collect();
    let mut queue: VecDeque<Pending> = VecDeque::new();
    let (tool_tx, tool_rx) = mpsc::channel::<(usize, ExecResult, f64)>();
    let mut batch = LlamaBatch::new(e.config.n_batch as usize, slots.len() as i32);
    let mut open = true;
    loop {
        // Take new requests; block only when nothing at all is in flight.
        let busy = slots.iter().any(|s| !matches!(s.state, State::Idle));
        if open {
            let next = if busy || !queue.is_empty() {
                rx.try_recv()
                    .map_err(|e| matches!(e, mpsc::TryRecvError::Disconnected))
            } else {
                rx.recv().map_err(|_| true)
            };
            match next {
                Ok(Command::Generate(req, reply)) => {
                    if let Some(p) = pending(&e, req, reply) {
                        queue.push_back(p);
                    }
                    continue;
                }
                Err(true) => open = false,
                Err(false) => {}
            }
        }
        if !open && !busy && queue.is_empty() {
            return Ok(());
        }
        // A caller that went away (its unit's lease was revoked, its job cancelled) stops
        // costing tokens: queued requests are dropped and generating slots freed. Slots waiting
        // on the sandbox are left to finish the call, whose result would otherwise land on a
        // reused slot.
        queue.retain(|p| !p.reply.is_closed());
        for slot in slots.iter_mut() {
            let abandoned = slot.reply.as_ref().is_some_and(|r| r.is_closed());
            if abandoned && matches!(slot.state, State::Feed(_)) {
                stats
                    .abandoned
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                finish(&e, slot, FinishReason::Error);
            }
        }
        // Admit queued requests into idle slots. A request whose prompt another slot is still
        // prefilling waits for it, then copies its cache instead of prefilling again.
        while let Some(i) = slots.iter().position(|s| matches!(s.state, State::Idle)) {
            let mut chosen = None;
            for (k, p) in queue.iter().enumerate() {
                match donor(&slots, &p.tokens, e.config.share_prompts) {
                    Donor::Prefilling => continue,
                    Donor::Ready(d) => chosen = Some((k, Some(d))),
                    Donor::None => chosen = Some((k, None)),
                }
                break;
            }
            let Some((k, from)) = chosen else { break };
            // An idle slot whose cache already holds the prompt takes the request itself.
            let target = match from {
                Some(d) if matches!(slots[d].state, State::Idle) => d,
                _ => i,
            };
            let p = queue.remove(k).expect("index from the scan");
            admit(&mut e, target, &mut slots[target], p, from, &stats);
        }
        // Tool results.
        while let Ok((i, result, ms)) = tool_rx.try_recv() {
            resume_after_tool(&e, &mut slots[i], &result, ms);
        }
        // Build one batch: every feeding slot contributes up to its share of n_batch.
        batch.clear();
        let feeding: Vec<usize> = (0..slots.len())
            .filter(|&i| matches!(slots[i].state, State::Feed(_)))
            .collect();
        if feeding.is_empty() {
            if slots.iter().any(|s| matches!(s.state, State::Tool)) {
                if let Ok((i, result, ms)) = tool_rx.recv_timeout(Duration::from_millis(50)) {
                    resume_after_tool(&e, &mut slots[i], &result, ms);
                }
            }
            continue;
        }
        let budget = e.config.n_batch as usize;
        // Slots with the least to feed (generating slots: one token) get their share of
        // n_batch first; prefill chunks share what is left.
        let mut order = feeding.clone();
        order.sort_by_key(|&i| match &slots[i].state {
            State::Feed(q) => q.len(),
            _ => usize::MAX,
        });
        let mut takes = vec![0usize; slots.len()];
        let mut used = 0usize;
        for &i in &order {
            let State::Feed(queue) = &slots[i].state else {
                continue;
            };
            takes[i] = queue.len().min(budget - used);
            used += takes[i];
        }
        // The batch is laid out in slot (sequence id) order. With one KV stream per slot,
        // llama.cpp splits a batch into ubatches of consecutive sequence ids, each a full pass
        // over the weights: a slot out of order, or one with nothing to feed between two that
        // have, starts another ubatch. Such gaps (slots waiting on the sandbox, idle slots) are
        // filled with a throwaway token where that is cheaper (`pad_gaps`), removed again
        // right after the decode. What each slot put in is remembered, to undo a failed
        // decode.
        let pads = gap_pads(&mut e, &slots, &takes, budget - used);
        stats
            .padded
            .fetch_add(pads.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let mut taken: Vec<(usize, Vec<(i32, SegmentKind)>)> = Vec::new();
        for i in 0..slots.len() {
            let slot = &mut slots[i];
            slot.logits_at = None;
            if let Some(&(_, at)) = pads.iter().find(|&&(g, _)| g == i) {
                batch
                    .add(LlamaToken(PAD_TOKEN), at, &[i as i32], false)
                    .map_err(|e| EngineError::Llama(e.to_string()))?;
                continue;
            }
            let take = takes[i];
            let State::Feed(queue) = &mut slot.state else {
                continue;
            };
            if take == 0 {
                continue;
            }
            let chunk: Vec<(i32, SegmentKind)> = queue.drain(..take).collect();
            for (k, &(tok, _)) in chunk.iter().enumerate() {
                let last = k + 1 == take && queue.is_empty();
                batch
                    .add(LlamaToken(tok), slot.pos + k as i32, &[i as i32], last)
                    .map_err(|e| EngineError::Llama(e.to_string()))?;
                if last {
                    slot.logits_at = Some(batch.n_tokens() - 1);
                }
            }
            taken.push((i, chunk));
        }
        stats
            .decodes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let decode_started = Instant::now();
        let decoded = e.ctx.decode(&mut batch);
        stats.decode_nanos.fetch_add(
            decode_started.elapsed().as_nanos() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        for &(g, at) in &pads {
            let _ = e
                .ctx
                .clear_kv_cache_seq(Some(g as u32), Some(at as u32), None);
        }
        if let Err(err) = decoded {
            // Every feed was checked against its slot's room (`fits`) and every sampled token
            // against the context limit, so a slot running out of context never gets here.
            // This is the defence against what cannot be foreseen (the backend refusing a
            // batch): put the tokens back, end the longest trajectory cleanly (finish reason
            // `context`) and go on with the rest.
            tracing::warn!(error = %err, "decode failed; ending the longest trajectory");
            for (i, chunk) in taken {
                if let State::Feed(q) = &mut slots[i].state {
                    for item in chunk.into_iter().rev() {
                        q.push_front(item);
                    }
                }
                slots[i].logits_at = None;
            }
            let victim = (0..slots.len())
                .filter(|&i| !matches!(slots[i].state, State::Idle))
                .max_by_key(|&i| slots[i].pos)
                .expect("a slot was feeding");
            finish(&e, &mut slots[victim], FinishReason::Context);
            continue;
        }
        for (i, chunk) in &taken {
            slots[*i].pos += chunk.len() as i32;
        }
        stats
            .prefilled
            .fetch_add(used as u64, std::sync::atomic::Ordering::Relaxed);
        for &i in &feeding {
            let Some(at) = slots[i].logits_at.take() else {
                continue;
            };
            step(
                &mut e,
                i,
                &mut slots[i],
                at,
                &sandbox,
                &runtime,
                &tool_tx,
                &stats,
            );
        }
    }
}

/// A request rendered and tokenized, waiting for a slot.
struct Pending {
    req: Box<GenRequest>,
    reply: Reply,
    prompt: String,
    tokens: Vec<i32>,
    /// How many of the last `tokens` are the think prefix's.
    prefix_tokens: u32,
}

/// Renders and tokenizes a request; answers it with an error when that fails.
fn pending(e: &Ctx, req: Box<GenRequest>, reply: Reply) -> Option<Pending> {
    let template = match e.render(&req.user_message) {
        Ok(p) => p,
        Err(err) => {
            let _ = reply.send(Err(err));
            return None;
        }
    };
    // The think prefix is tokenised on its own, so that the tokens an SFT export marks as the
    // assistant's (from the prefix on) are exactly those fed.
    let mut tokens = e.tokenize(&template, true);
    let prefix = e.tokenize(&e.config.think_prefix, false);
    let prefix_tokens = prefix.len() as u32;
    tokens.extend(prefix);
    let prompt = template + &e.config.think_prefix;
    if tokens.len() as u32 + 16 > e.config.ctx_per_slot {
        let _ = reply.send(Err(EngineError::PromptTooLong {
            tokens: tokens.len(),
            ctx: e.config.ctx_per_slot,
        }));
        return None;
    }
    Some(Pending {
        req,
        reply,
        prompt,
        tokens,
        prefix_tokens,
    })
}

/// Whether a live slot holds the same prompt.
enum Donor {
    /// None does.
    None,
    /// One is still prefilling it: wait.
    Prefilling,
    /// This slot's cache holds it whole.
    Ready(usize),
}

fn donor(slots: &[Slot], tokens: &[i32], share: bool) -> Donor {
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
        if s.prompt_ids != tokens {
            continue;
        }
        if s.pos as usize >= tokens.len() {
            return Donor::Ready(d);
        }
        found = Donor::Prefilling;
    }
    found
}

fn admit(e: &mut Ctx, i: usize, slot: &mut Slot, p: Pending, from: Option<usize>, stats: &Stats) {
    let Pending {
        req,
        reply,
        prompt,
        tokens,
        prefix_tokens,
    } = p;
    let n = tokens.len();
    let mut feed: VecDeque<(i32, SegmentKind)> = tokens
        .iter()
        .map(|&t| (t, SegmentKind::Reasoning))
        .collect();
    // Reuse a cache holding this prompt: the slot's own (kept since its last trajectory) or
    // another slot's, copied whole (streams are copied whole). Everything from the prompt's
    // last position on is then removed, and that token is fed again for logits of this
    // slot's own.
    let reused = from.is_some_and(|d| {
        let copied = d == i
            || e.ctx
                .copy_kv_cache_seq(d as i32, i as i32, None, None)
                .is_ok();
        copied
            && e.ctx
                .clear_kv_cache_seq(Some(i as u32), Some((n - 1) as u32), None)
                .unwrap_or(false)
    });
    if !reused {
        let _ = e.ctx.clear_kv_cache_seq(Some(i as u32), None, None);
    }
    *slot = Slot::idle();
    if reused {
        feed.drain(..n - 1);
        slot.pos = (n - 1) as i32;
        stats
            .shared
            .fetch_add((n - 1) as u64, std::sync::atomic::Ordering::Relaxed);
    }
    stats
        .prompt_fed
        .fetch_add(feed.len() as u64, std::sync::atomic::Ordering::Relaxed);
    slot.rng = req.seed ^ 0x5eed_0f41_6e75;
    slot.sampler = Some(sampler_for(&req.params, req.seed, e.model.n_vocab()));
    slot.prompt_tokens = n as u32;
    slot.prefix_tokens = prefix_tokens;
    slot.prompt_ids = tokens;
    slot.prompt = prompt;
    slot.state = State::Feed(feed);
    slot.forced = e.tokenize(&req.forced_prefix, false).into();
    slot.mode = req.mode;
    slot.code_tests = req.code_tests.clone();
    slot.hints = req.hints.for_mode(req.mode);
    slot.max_new_tokens = req.params.max_new_tokens;
    slot.max_tool_calls = req.params.max_tool_calls;
    slot.reply = Some(reply);
    slot.started = Instant::now();
}

/// After a decode: sample this slot's next token and decide what happens next.
#[allow(clippy::too_many_arguments)]
fn step(
    e: &mut Ctx,
    i: usize,
    slot: &mut Slot,
    logits_at: i32,
    sandbox: &Option<Arc<Sandbox>>,
    runtime: &tokio::runtime::Handle,
    tool_tx: &mpsc::Sender<(usize, ExecResult, f64)>,
    stats: &Stats,
) {
    let sampler = slot.sampler.as_mut().expect("active slot has a sampler");
    let token = match slot.forced.pop_front() {
        Some(t) => {
            sampler.accept(LlamaToken(t));
            LlamaToken(t)
        }
        None => sampler.sample(&e.ctx, logits_at),
    };
    stats
        .generated
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    slot.generated += 1;
    let piece = e.piece(token.0);
    if e.model.vocab().is_eog(token) {
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
        slot.end_of_turn = Some((token.0, String::from_utf8_lossy(&piece).into_owned()));
        finish(e, slot, FinishReason::Stop);
        return;
    }
    slot.builder.push(slot.kind_now(), token.0, &piece);
    if let Some(open) = slot.fence {
        let body = &slot.builder.current_bytes()[open.body_start..];
        if let Some(close) = fence::closing(body) {
            let code = fence::code_of(body, close);
            slot.fence = None;
            if open.run {
                run_tool(e, i, slot, token.0, code, sandbox, runtime, tool_tx);
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
                let kept = slot.builder.kept_before(cut, |t| e.piece(t));
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
            let opened = fence::opened_by_last(bytes, piece.len());
            let before = &bytes[..bytes.len() - piece.len()];
            let trigger = match opened {
                None => e.config.hints.trigger_before(before, &piece).map(str::len),
                Some(_) => None,
            };
            (bytes.len(), opened, trigger)
        };
        if let Some((at, body_start)) = opened {
            // The model opens a python block. It runs when it closes, unless the tool limit
            // is reached (the model goes on, the block stays text) or it is part of the final
            // answer (a program run without its input only writes a traceback).
            let limit = slot.tool_calls_left() == 0;
            let answer = slot.thinking_done && !slot.hints.run_answer_code;
            slot.tool_limit_reached |= limit && !answer;
            let run = !limit && !answer;
            let body_start = if run {
                let e2 = &*e;
                let moved_from = slot
                    .builder
                    .split_at_text(at, SegmentKind::Code, |t| e2.piece(t));
                body_start - moved_from
            } else {
                body_start
            };
            slot.fence = Some(OpenFence { run, body_start });
        } else if let Some(word_len) = trigger {
            if trigger_hint_allowed(e, slot) && slot.random() < slot.hints.trigger_probability {
                // A trigger word, and the dice say a hint: the word (with the token that
                // ended it) leaves the trajectory and the KV cache, and the hint starts where
                // the word did.
                let r = slot.random();
                let hint = e.config.hints.pick(slot.code_tests.as_ref(), r);
                let cut = seg_len - piece.len() - word_len;
                let kept = slot.builder.kept_before(cut, |t| e.piece(t));
                let text = format!("{}{}", String::from_utf8_lossy(&kept), hint_body(&hint));
                let tokens = e.tokenize(&text, false);
                // A hint is a nudge: without room for it, generation goes on without.
                if fits(e, slot, 0, tokens.len()) {
                    slot.trigger_hints_used += 1;
                    if let Some(removed) = roll_back(e, i, slot, cut) {
                        insert_hint(e, slot, hint, tokens, HintTrigger::Word, removed);
                    }
                    return;
                }
            }
        }
    }
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
    slot.state = State::Feed(VecDeque::from([(token.0, kind)]));
}

/// Whether `needle` ends within the last `new_len` bytes of `hay`: found once, at the token
/// that completes it.
fn ends_in_last_piece(hay: &[u8], needle: &str, new_len: usize) -> bool {
    let n = needle.as_bytes();
    let from = hay.len().saturating_sub(new_len + n.len() - 1);
    hay[from..].windows(n.len()).any(|w| w == n)
}

fn find_last(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// Whether a trigger word may be replaced by a hint now: hint-infer mode, still thinking,
/// outside any code block, under the per-trajectory cap, with enough tool calls left for the
/// code the hint asks for and enough room left to finish.
fn trigger_hint_allowed(e: &Ctx, slot: &Slot) -> bool {
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
fn end_hint(e: &Ctx, slot: &mut Slot, kept: &[u8], line_start: bool) -> Option<(Hint, Vec<i32>)> {
    if slot.mode != Mode::HintInfer
        || slot.end_hints_used >= slot.hints.end_hints
        || slot.fence.is_some()
    {
        return None;
    }
    let r = slot.random();
    let hint = e.config.hints.pick(slot.code_tests.as_ref(), r);
    if hint.opens_code() && slot.tool_calls_left() == 0 {
        return None;
    }
    let sep = if line_start { "" } else { "\n\n" };
    let text = format!("{}{sep}{}", String::from_utf8_lossy(kept), hint_body(&hint));
    let tokens = e.tokenize(&text, false);
    // Without room for the hint, the model's own end stands.
    if !fits(e, slot, 0, tokens.len()) {
        return None;
    }
    slot.end_hints_used += 1;
    Some((hint, tokens))
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

/// Takes the current segment's text from byte `cut` on back out of the trajectory and the
/// slot's KV cache; returns that text. The last token (just sampled) was never fed; the others
/// were. A KV cache that refuses the removal ends the trajectory (`error`), since what the
/// model would attend to no longer matches what the row would record.
fn roll_back(e: &mut Ctx, i: usize, slot: &mut Slot, cut: usize) -> Option<String> {
    let cut_back = {
        let e2 = &*e;
        slot.builder.cut_back(cut, |t| e2.piece(t))
    };
    slot.pos -= cut_back.dropped.saturating_sub(1) as i32;
    match e
        .ctx
        .clear_kv_cache_seq(Some(i as u32), Some(slot.pos as u32), None)
    {
        Ok(true) => Some(cut_back.removed),
        outcome => {
            tracing::warn!(
                slot = i,
                ?outcome,
                "the KV cache refused a rollback; ending the trajectory"
            );
            finish(e, slot, FinishReason::Error);
            None
        }
    }
}

/// Records a hint as its own segment with its provenance, queues its tokens, and opens a code
/// block when the hint ends with an opening fence.
fn insert_hint(
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
    if hint.opens_code() {
        // The next tokens are the block's body, in a code segment of their own.
        slot.fence = Some(OpenFence {
            run: true,
            body_start: 0,
        });
    }
    slot.state = State::Feed(feed);
}

/// Sends a closed block to the sandbox; the slot waits for its output.
#[allow(clippy::too_many_arguments)]
fn run_tool(
    e: &Ctx,
    i: usize,
    slot: &mut Slot,
    closing_token: i32,
    code: String,
    sandbox: &Option<Arc<Sandbox>>,
    runtime: &tokio::runtime::Handle,
    tool_tx: &mpsc::Sender<(usize, ExecResult, f64)>,
) {
    slot.state = State::Tool;
    // The closing token still has to be fed; it goes first when the output comes back.
    slot.pending_after_tool = Some(closing_token);
    slot.tool_calls.push(ToolCall {
        segment: (slot.builder.segments.len() - 1) as u32,
        exit_code: None,
        timed_out: false,
        memory_exceeded: false,
        truncated: false,
        duration_ms: 0.0,
        error: None,
    });
    let tx = tool_tx.clone();
    let sandbox = sandbox.clone();
    let request = ExecRequest {
        timeout: e.config.tool_timeout,
        memory_mb: e.config.tool_memory_mb,
        max_output_bytes: e.config.max_output_chars,
        ..ExecRequest::new(code)
    };
    runtime.spawn(async move {
        let started = Instant::now();
        let result = match sandbox {
            Some(sb) => sb.execute(request).await.unwrap_or_else(|err| ExecResult {
                error: Some(err.to_string()),
                ..ExecResult::default()
            }),
            None => ExecResult {
                error: Some("no sandbox is configured".into()),
                ..ExecResult::default()
            },
        };
        let _ = tx.send((i, result, started.elapsed().as_secs_f64() * 1000.0));
    });
}

/// Whether `n` inserted tokens, after `queued` tokens still to feed, fit the room left in the
/// slot's context, with a token to sample after them. Each insertion is checked before it is
/// recorded: the trajectory holds exactly what the model was fed, and a slot never asks for
/// KV cells its stream does not have (a failed decode would stall every slot of the batch).
fn fits(e: &Ctx, slot: &Slot, queued: usize, n: usize) -> bool {
    slot.pos as usize + queued + n + 2 <= e.config.ctx_per_slot as usize
}

/// The token fed to fill a gap. Its cell is removed right after the decode, and no logits
/// are taken from it, so which token it is does not matter.
const PAD_TOKEN: i32 = 0;

/// The gaps to fill in this step: `(slot, position)` for each slot that gets a throwaway
/// token. A gap is a run of slots feeding nothing between two slots that feed; it is filled
/// when it is at most `pad_gaps` wide and the batch and every stream in it have room. The token
/// goes after the last position in the slot's stream, as llama.cpp requires, and leaves no
/// trace: its cell is freed after the decode, and the slot's next token takes that cell again,
/// so the slot's numbers are those of a step without it. An idle slot's stream is first cut
/// back to the prompt it keeps for sharing, so that a stale trajectory does not lengthen
/// the step's attention.
fn gap_pads(e: &mut Ctx, slots: &[Slot], takes: &[usize], room: usize) -> Vec<(usize, i32)> {
    let mut pads = Vec::new();
    let feeds = |&take: &usize| take > 0;
    let (Some(lo), Some(hi)) = (takes.iter().position(feeds), takes.iter().rposition(feeds)) else {
        return pads;
    };
    let mut run: Vec<usize> = Vec::new();
    for (i, &take) in takes.iter().enumerate().take(hi + 1).skip(lo) {
        if take == 0 {
            run.push(i);
            continue;
        }
        if !run.is_empty() && run.len() <= e.config.pad_gaps && pads.len() + run.len() <= room {
            let mut at = Vec::with_capacity(run.len());
            for &g in &run {
                if matches!(slots[g].state, State::Idle) {
                    let keep = slots[g].cached_prompt.len() as u32;
                    let _ = e.ctx.clear_kv_cache_seq(Some(g as u32), Some(keep), None);
                }
                let next = e.ctx.kv_cache_seq_pos_max(g as i32).max(-1) + 1;
                if next as u32 + 2 > e.config.ctx_per_slot {
                    break;
                }
                at.push((g, next));
            }
            if at.len() == run.len() {
                pads.extend(at);
            }
        }
        run.clear();
    }
    pads
}

/// Records inserted `tokens` as a segment of `kind` (and in the sampler's repetition window),
/// and returns them to feed.
fn record_insertion(
    e: &Ctx,
    slot: &mut Slot,
    tokens: Vec<i32>,
    kind: SegmentKind,
) -> VecDeque<(i32, SegmentKind)> {
    slot.builder.split(kind);
    for &t in &tokens {
        slot.builder.push(kind, t, &e.piece(t));
        if let Some(s) = slot.sampler.as_mut() {
            s.accept(LlamaToken(t));
        }
    }
    tokens.into_iter().map(|t| (t, kind)).collect()
}

/// Appends a tool call's result to its slot as an output block and resumes the slot; ends the
/// trajectory with `context` when the block does not fit the room left.
fn resume_after_tool(e: &Ctx, slot: &mut Slot, result: &ExecResult, ms: f64) {
    let Some(call) = slot.tool_calls.last_mut() else {
        return;
    };
    call.exit_code = result.exit_code;
    call.timed_out = result.timed_out;
    call.memory_exceeded = result.memory_exceeded;
    call.truncated = result.truncated;
    call.duration_ms = ms;
    call.error = result.error.clone();
    let mut out = String::new();
    out.push_str(&result.stdout);
    if !result.stderr.is_empty() {
        out.push_str(&result.stderr);
    }
    if result.timed_out {
        out.push_str(&format!(
            "\n[timed out after {:.0} s]",
            e.config.tool_timeout.as_secs_f64()
        ));
    }
    if result.memory_exceeded {
        out.push_str("\n[memory limit exceeded]");
    }
    if let Some(err) = &result.error {
        out.push_str(&format!("\n[sandbox error: {err}]"));
    }
    let max = e.config.max_output_chars;
    if out.chars().count() > max {
        let head: String = out.chars().take(max / 2).collect();
        let tail: String = out
            .chars()
            .rev()
            .take(max / 2)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        out = format!("{head}\n...[truncated]...\n{tail}");
        if let Some(c) = slot.tool_calls.last_mut() {
            c.truncated = true;
        }
    }
    let tokens = e.tokenize(&format!("```output\n{}\n```\n", out.trim_end()), false);
    let mut feed: VecDeque<(i32, SegmentKind)> = slot
        .pending_after_tool
        .take()
        .map(|t| (t, SegmentKind::Code))
        .into_iter()
        .collect();
    if !fits(e, slot, feed.len(), tokens.len()) {
        finish(e, slot, FinishReason::Context);
        return;
    }
    feed.extend(record_insertion(e, slot, tokens, SegmentKind::Output));
    slot.state = State::Feed(feed);
}

fn finish(e: &Ctx, slot: &mut Slot, reason: FinishReason) {
    // The slot's cache is kept until the slot is reused: its prompt can still be copied by
    // later samples of the same prompt.
    let mut done = std::mem::replace(slot, Slot::idle());
    let prompt_token_ids = std::mem::take(&mut done.prompt_ids);
    slot.cached_prompt = prompt_token_ids.clone();
    let Some(reply) = done.reply else { return };
    let mut builder = done.builder;
    if e.config.think_end.is_none() {
        builder.relabel_last(SegmentKind::Reasoning, SegmentKind::Answer);
    }
    let completion_tokens = builder.completion_tokens;
    let (segments, new_index) = builder.finish();
    let mut tool_calls = done.tool_calls;
    for call in &mut tool_calls {
        call.segment = new_index[call.segment as usize] as u32;
    }
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
        finish_reason: reason,
        completion_tokens,
        wall_time_s: done.started.elapsed().as_secs_f64(),
    }));
}
