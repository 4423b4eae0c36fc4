//! Engine benchmark (not a test), printed as a table: decode tokens/s with S = 1, 4, 16 slots
//! on the default model, with and without tool calls in flight, beside a plain llama-cpp-2
//! batched decode loop (the ceiling of the binding) in the same command; and what sharing one
//! prompt's KV cache across N samples saves in prefill.
//!
//! What is measured, and why:
//! - plain loop: S sequences decoded together by the binding alone (greedy argmax). Its figure
//!   is the decode rate once the prompts are in, as llama-batched-bench reports generation:
//!   the strictest ceiling.
//! - engine: 4S trajectories through S slots. The figure is the steady-state rate, generated
//!   tokens over the time until the queue runs dry (the completion that admits the last
//!   request): every slot has work, as in a worker with a backlog. Prompt prefill, refills and
//!   tool output all count against it.
//! - engine + tools: the same, every trajectory opening with a code block that the sandbox
//!   runs while the other slots decode. The last column adds the final drain, in which
//!   finished slots idle wherever they are (see engine/README.md for why scattered idle slots
//!   cost more per token with one KV stream per slot).
//! - where the time goes: a second table splits each engine ratio into its factors, which
//!   multiply to it in each round (all over the steady state): the tokens the model computes for each
//!   one sampled (sampled tokens fed back, tool output, hints, prompts, gap pads; the plain loop
//!   computes exactly what it samples), the decode speed per computed token against the plain
//!   loop's, and the share of wall time spent inside llama.cpp's decode against the plain
//!   loop's (the rest is sampling, fence detection and bookkeeping).
//!
//! The machine's speed drifts by ±10% from run to run, so each slot count is measured in
//! START_BENCH_ROUNDS rounds (default 3) of plain loop, engine, engine + tools, plain loop
//! again, back to back; the round's reference is the mean of its two plain loops, so drift
//! within the round cancels. Figures are medians, ratios the median of each round's ratio,
//! with their range. Every round starts a fresh engine and shuts it down before the second
//! plain loop, so no idle OpenMP team of another thread slows the one measured.
//!
//! Run: `cargo bench -p start-engine` (after scripts/setup). START_BENCH_TOKENS sets the tokens
//! per sequence (default 128), START_BENCH_SLOTS the slot counts (default 1,4,16),
//! START_BENCH_PAD_GAPS the engine's `pad_gaps` (default: the engine's default), to tune it
//! for a machine, START_BENCH_GPU_LAYERS the layers offloaded to a GPU (builds with the `cuda`
//! feature; default 0), for the plain loop and the engine alike (scripts/gpu-check).

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use start_engine::script::Script;
use start_engine::{Engine, EngineConfig, GenRequest};
use start_sandbox::{BackendKind, Sandbox, SandboxConfig};
use start_schemas::trajectory::{GenerationParams, HintSettings, Mode, SegmentKind};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// The prompt the plain loop decodes: exactly what the engine renders for its requests (the
/// model's template, with SmolLM2's default system message), checked on every engine
/// trajectory, so that both decode over the same context lengths.
const PROMPT: &str = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWrite a long story about a lighthouse keeper.<|im_end|>\n<|im_start|>assistant\n";

/// START_BENCH_GPU_LAYERS: layers offloaded (a `cuda` build), the same for every way measured.
fn gpu_layers() -> u32 {
    std::env::var("START_BENCH_GPU_LAYERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// START_BENCH_MODEL: the GGUF, for a bench binary run away from its checkout (scripts/gpu-check
/// packs one for a GPU machine without cargo); else the default model in the checkout.
fn model_path() -> PathBuf {
    let p = std::env::var_os("START_BENCH_MODEL").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../models/SmolLM2-135M-Instruct.Q4_1.gguf")
        },
        PathBuf::from,
    );
    assert!(
        p.is_file(),
        "run scripts/setup first: {} is missing",
        p.display()
    );
    p
}

fn threads() -> i32 {
    std::thread::available_parallelism().map_or(2, |n| n.get() as i32)
}

/// A plain loop's figures.
struct PlainRun {
    /// Generated tokens per second of the decode steps.
    rate: f64,
    /// Share of that time spent inside llama.cpp's decode.
    decode_share: f64,
}

impl PlainRun {
    fn mean(&self, other: &PlainRun) -> PlainRun {
        PlainRun {
            rate: (self.rate + other.rate) / 2.0,
            decode_share: (self.decode_share + other.decode_share) / 2.0,
        }
    }
}

/// The ceiling: the binding's batched decode with nothing around it (greedy argmax, no EOG).
/// Measured over the decode steps (the prompts are prefilled first, untimed).
fn plain_loop(backend: &LlamaBackend, model: &LlamaModel, slots: usize, tokens: usize) -> PlainRun {
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new((slots * (tokens + 64)) as u32))
        .with_n_batch(512)
        .with_n_ubatch(512)
        .with_n_seq_max(slots as u32)
        .with_kv_unified(false)
        .with_n_threads(threads())
        .with_n_threads_batch(threads());
    let mut ctx = model.new_context(backend, params).expect("context");
    let prompt = model.vocab().tokenize(PROMPT.as_bytes(), true, true);
    let mut batch = LlamaBatch::new(512, slots as i32);
    for s in 0..slots {
        batch.clear();
        for (i, t) in prompt.iter().enumerate() {
            batch
                .add(*t, i as i32, &[s as i32], i + 1 == prompt.len())
                .unwrap();
        }
        ctx.decode(&mut batch).unwrap();
    }
    let mut last: Vec<LlamaToken> = vec![prompt[prompt.len() - 1]; slots];
    let mut generated = 0;
    let mut decoding = 0.0;
    let started = Instant::now();
    for pos in (prompt.len() as i32..).take(tokens) {
        batch.clear();
        for (s, t) in last.iter().enumerate() {
            batch.add(*t, pos, &[s as i32], true).unwrap();
        }
        let step = Instant::now();
        ctx.decode(&mut batch).unwrap();
        decoding += step.elapsed().as_secs_f64();
        for (s, t) in last.iter_mut().enumerate() {
            let logits = ctx.get_logits_ith(s as i32);
            let best = logits
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i);
            *t = LlamaToken(best as i32);
            generated += 1;
        }
    }
    let wall = started.elapsed().as_secs_f64();
    PlainRun {
        rate: generated as f64 / wall,
        decode_share: decoding / wall,
    }
}

fn request(tokens: u32, seed: u64) -> GenRequest {
    GenRequest {
        user_message: "Write a long story about a lighthouse keeper.".into(),
        code_tests: None,
        mode: Mode::Plain,
        params: GenerationParams {
            temperature: std::env::var("START_BENCH_TEMPERATURE")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.8),
            top_k: 40,
            top_p: 0.95,
            min_p: 0.0,
            repeat_penalty: 1.0,
            max_new_tokens: tokens,
            max_tool_calls: 6,
            seed,
        },
        seed,
        hints: HintSettings::from_proto(None, 0.0).for_mode(Mode::Plain),
        tools: start_schemas::tool::ToolSet::PYTHON,
        files: Vec::new(),
    }
}

/// One engine run: generated tokens/s in the steady state and over the whole run, the tool
/// calls made, and where the steady state's time went.
struct EngineRun {
    steady: f64,
    full: f64,
    calls: u64,
    /// Tokens the model computed (fed, including gap pads) per token sampled.
    computed_per_sampled: f64,
    /// Tool output tokens per token sampled, over the whole run (outputs are counted from the
    /// trajectories, which come back whole).
    output_per_sampled: f64,
    /// Gap pads per token sampled.
    pads_per_sampled: f64,
    /// Computed tokens per second inside llama.cpp's decode.
    decode_rate: f64,
    /// Share of wall time spent inside llama.cpp's decode.
    decode_share: f64,
}

/// The engine's counters at one moment.
#[derive(Clone, Copy, Default)]
struct Counters {
    sampled: u64,
    computed: u64,
    padded: u64,
    decode_s: f64,
}

impl Counters {
    fn read(engine: &Engine) -> Self {
        let s = engine.stats();
        let padded = s.padded.load(Ordering::Relaxed);
        Counters {
            sampled: s.generated.load(Ordering::Relaxed),
            computed: s.prefilled.load(Ordering::Relaxed) + padded,
            padded,
            decode_s: s.decode_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }

    fn since(self, before: Counters) -> Counters {
        Counters {
            sampled: self.sampled - before.sampled,
            computed: self.computed - before.computed,
            padded: self.padded - before.padded,
            decode_s: self.decode_s - before.decode_s,
        }
    }
}

/// The engine: 4 x `slots` trajectories of up to `tokens`, each opening with `forced`
/// (after a staggered amount of thinking) when it is not empty; the engine is scripted
/// (`Engine::start_scripted`), so the code block goes through the path of sampled tokens.
async fn engine_run(
    engine: &Engine,
    script: &Script,
    slots: usize,
    tokens: u32,
    forced: &str,
) -> EngineRun {
    let requests = slots * 4;
    let before = Counters::read(engine);
    let started = Instant::now();
    let mut pending = tokio::task::JoinSet::new();
    for k in 0..requests {
        // Tool calls are staggered the way real trajectories stagger them: each request thinks
        // a different number of words before its code block.
        let prefix = if forced.is_empty() {
            String::new()
        } else {
            format!("{}{forced}", "Let me think. ".repeat(k % 8))
        };
        let seed = 1000 + k as u64;
        if !prefix.is_empty() {
            script.open(seed, &prefix);
        }
        pending.spawn(engine.submit(request(tokens, seed)));
    }
    let mut done = 0;
    let mut calls = 0;
    let mut output_tokens = 0;
    let mut steady = (Counters::default(), 0.0);
    while let Some(out) = pending.join_next().await {
        let out = out.expect("task").expect("engine").expect("generation");
        assert!(
            std::env::var_os("START_BENCH_MODEL").is_some() || out.prompt == PROMPT,
            "the plain loop's prompt is not the engine's: {:?}",
            out.prompt
        );
        calls += out.tool_calls.len() as u64;
        output_tokens += out
            .segments
            .iter()
            .filter(|s| s.kind == SegmentKind::Output)
            .map(|s| s.tokens.len())
            .sum::<usize>();
        done += 1;
        // This completion's slot takes the last queued request: up to here every slot had
        // work.
        if done == requests - slots {
            steady = (
                Counters::read(engine).since(before),
                started.elapsed().as_secs_f64(),
            );
        }
    }
    let whole = Counters::read(engine).since(before);
    let (c, wall) = steady;
    let sampled = c.sampled.max(1) as f64;
    EngineRun {
        steady: c.sampled as f64 / wall,
        full: whole.sampled as f64 / started.elapsed().as_secs_f64(),
        calls,
        computed_per_sampled: c.computed as f64 / sampled,
        output_per_sampled: output_tokens as f64 / whole.sampled.max(1) as f64,
        pads_per_sampled: c.padded as f64 / sampled,
        decode_rate: c.computed as f64 / c.decode_s,
        decode_share: c.decode_s / wall,
    }
}

/// Medians of one engine configuration's accounting over the rounds.
#[derive(Default)]
struct Accounting {
    computed: Vec<f64>,
    output: Vec<f64>,
    pads: Vec<f64>,
    speed: Vec<f64>,
    share: Vec<f64>,
}

impl Accounting {
    fn push(&mut self, run: &EngineRun, plain: &PlainRun) {
        self.computed.push(run.computed_per_sampled);
        self.output.push(run.output_per_sampled);
        self.pads.push(run.pads_per_sampled);
        // The plain loop computes exactly the tokens it samples.
        self.speed
            .push(run.decode_rate / (plain.rate / plain.decode_share));
        self.share.push(run.decode_share / plain.decode_share);
    }

    fn row(&self, slots: usize, what: &str) -> String {
        format!(
            "{slots:>5} | {what:<13} | {:>17.3} {:>8.1}% {:>6.1}% | {:>21} | {:>18}",
            median(self.computed.clone()),
            100.0 * median(self.output.clone()),
            100.0 * median(self.pads.clone()),
            ratio(&self.speed),
            ratio(&self.share),
        )
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// "median% (min-max)" of per-round ratios.
fn ratio(v: &[f64]) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(0.0, f64::max);
    format!(
        "{:.0}% ({:.0}-{:.0})",
        100.0 * median(v.to_vec()),
        100.0 * lo,
        100.0 * hi
    )
}

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` (CI) passes nothing: a smoke run of
    // every way at a size that takes seconds, so the bench cannot rot.
    let full = std::env::args().any(|a| a == "--bench");
    let tokens: usize = env_num("START_BENCH_TOKENS", if full { 128 } else { 32 });
    let rounds: usize = env_num("START_BENCH_ROUNDS", if full { 3 } else { 1 }).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let sandbox = rt.block_on(async {
        Arc::new(
            Sandbox::start(SandboxConfig {
                backend: BackendKind::Process,
                pool_size: 8,
                ..SandboxConfig::default()
            })
            .await
            .expect("sandbox"),
        )
    });
    println!(
        "engine bench: default model, {tokens} tokens a sequence, {} threads, {rounds} rounds \
         (medians; ratios against the mean of the round's two plain loops, with their range)",
        threads()
    );
    println!(
        "\n{:>5} | {:>10} | {:>10} {:>15} | {:>12} {:>15} | {:>13} {:>15} | {:>5}",
        "slots",
        "plain t/s",
        "engine t/s",
        "ratio",
        "+tools t/s",
        "ratio",
        "+drain t/s",
        "ratio",
        "calls"
    );
    println!("{}", "-".repeat(122));
    let backend = start_engine::backend().expect("backend");
    let model = LlamaModel::load_from_file(
        backend,
        model_path(),
        &LlamaModelParams::default().with_n_gpu_layers(gpu_layers()),
    )
    .expect("model");
    let slot_counts: Vec<usize> = std::env::var("START_BENCH_SLOTS")
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| if full { vec![1, 4, 16] } else { vec![2] });
    let forced = "```python\nprint(sum(range(10)))\n```\n";
    let mut accounting = Vec::new();
    for slots in slot_counts {
        let (mut plain, mut eng, mut tools, mut full) = (vec![], vec![], vec![], vec![]);
        let (mut eng_r, mut tools_r, mut full_r) = (vec![], vec![], vec![]);
        let mut calls = 0;
        let (mut eng_a, mut tools_a) = (Accounting::default(), Accounting::default());
        for _ in 0..rounds {
            // On its own thread, which exits afterwards: OpenMP frees that thread's worker
            // team, so the engine measured next is not throttled by an idle team (libgomp
            // spins less when it manages more threads than there are cores).
            let plain_run = || {
                std::thread::scope(|s| {
                    s.spawn(|| plain_loop(backend, &model, slots, tokens))
                        .join()
                        .unwrap()
                })
            };
            let before = plain_run();
            let mut config = EngineConfig::new(model_path());
            config.gpu_layers = gpu_layers();
            config.slots = slots;
            config.tir.ctx_per_slot = (tokens as u32 + 160).max(256);
            config.n_batch = 512;
            config.pad_gaps = env_num("START_BENCH_PAD_GAPS", config.pad_gaps);
            let script = Script::default();
            let engine = Engine::start_scripted(
                config,
                script.clone(),
                Some(sandbox.clone()),
                rt.handle().clone(),
            )
            .expect("engine");
            let e = rt.block_on(engine_run(&engine, &script, slots, tokens as u32, ""));
            let t = rt.block_on(engine_run(&engine, &script, slots, tokens as u32, forced));
            engine.shutdown();
            // The reference brackets the engine runs, so drift within the round cancels.
            let p = before.mean(&plain_run());
            eng_a.push(&e, &p);
            tools_a.push(&t, &p);
            plain.push(p.rate);
            eng.push(e.steady);
            tools.push(t.steady);
            full.push(t.full);
            eng_r.push(e.steady / p.rate);
            tools_r.push(t.steady / p.rate);
            full_r.push(t.full / p.rate);
            calls = t.calls;
        }
        accounting.push(eng_a.row(slots, "engine"));
        accounting.push(tools_a.row(slots, "engine+tools"));
        println!(
            "{slots:>5} | {:>10.1} | {:>10.1} {:>15} | {:>12.1} {:>15} | {:>13.1} {:>15} | {calls:>5}",
            median(plain),
            median(eng),
            ratio(&eng_r),
            median(tools),
            ratio(&tools_r),
            median(full),
            ratio(&full_r),
        );
    }
    // Where the time goes: the factors of each engine ratio (steady state).
    println!(
        "\nwhere the time goes (steady state): ratio to the plain loop = speed x time x 1 / computed"
    );
    println!(
        "{:>5} | {:<13} | {:>17} {:>9} {:>7} | {:>21} | {:>18}",
        "slots",
        "run",
        "computed/sampled",
        "output",
        "pads",
        "speed per computed",
        "time in decode"
    );
    println!("{}", "-".repeat(100));
    for row in accounting {
        println!("{row}");
    }
    // Prompt sharing: N samples of one long prompt, with and without copying the cache.
    let n = if full { 8u64 } else { 2 };
    println!("\nprompt sharing: {n} samples of one prompt, 1 new token each");
    println!(
        "{:>8} | {:>18} {:>10}",
        "sharing", "prompt tokens fed", "seconds"
    );
    let long_question: String =
        "Consider the sequence of prime numbers and their gaps. ".repeat(40);
    let mut fed = Vec::new();
    for share in [false, true] {
        let mut config = EngineConfig::new(model_path());
        config.gpu_layers = gpu_layers();
        config.slots = n as usize;
        config.tir.ctx_per_slot = 1024;
        config.share_prompts = share;
        let engine = Engine::start(config, None, rt.handle().clone()).expect("engine");
        let started = Instant::now();
        let rxs: Vec<_> = (0..n)
            .map(|k| {
                let mut r = request(1, 7 + k);
                r.user_message = long_question.clone();
                engine.submit(r)
            })
            .collect();
        rt.block_on(async {
            for rx in rxs {
                rx.await.unwrap().unwrap();
            }
        });
        let f = engine.stats().prompt_fed.load(Ordering::Relaxed);
        println!(
            "{:>8} | {f:>18} {:>10.2}",
            if share { "on" } else { "off" },
            started.elapsed().as_secs_f64()
        );
        fed.push(f as f64);
        engine.shutdown();
    }
    println!(
        "prefill is {:.1}x cheaper with sharing (N = {n})",
        fed[0] / fed[1]
    );
    rt.block_on(sandbox.shutdown());
}
