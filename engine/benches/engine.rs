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
//!
//! The machine's speed drifts by ±10% from run to run, so each slot count is measured in
//! START_BENCH_ROUNDS rounds (default 3) of plain loop, engine, engine + tools, back to back;
//! figures are medians, ratios the median of each round's ratio, with their range. Every round
//! starts a fresh engine and shuts it down before the next plain loop, so no idle OpenMP team
//! of another thread slows the one measured.
//!
//! Run: `cargo bench -p start-engine` (after scripts/setup). START_BENCH_TOKENS sets the tokens
//! per sequence (default 128), START_BENCH_SLOTS the slot counts (default 1,4,16),
//! START_BENCH_PAD_GAPS the engine's `pad_gaps` (default: the engine's default), to tune it
//! for a machine.

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use start_engine::{Engine, EngineConfig, GenRequest};
use start_sandbox::{BackendKind, Sandbox, SandboxConfig};
use start_schemas::trajectory::{GenerationParams, Mode};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

const PROMPT: &str = "<|im_start|>user\nWrite a long story about a lighthouse keeper.<|im_end|>\n<|im_start|>assistant\n";

fn model_path() -> PathBuf {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/SmolLM2-135M-Instruct.Q4_1.gguf");
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

/// The ceiling: the binding's batched decode with nothing around it (greedy argmax, no EOG).
/// Returns generated tokens per second of the decode steps (the prompts are prefilled first,
/// untimed).
fn plain_loop(backend: &LlamaBackend, model: &LlamaModel, slots: usize, tokens: usize) -> f64 {
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
    let started = Instant::now();
    for pos in (prompt.len() as i32..).take(tokens) {
        batch.clear();
        for (s, t) in last.iter().enumerate() {
            batch.add(*t, pos, &[s as i32], true).unwrap();
        }
        ctx.decode(&mut batch).unwrap();
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
    generated as f64 / started.elapsed().as_secs_f64()
}

fn request(tokens: u32, forced: &str, seed: u64) -> GenRequest {
    GenRequest {
        user_message: "Write a long story about a lighthouse keeper.".into(),
        code_problem: false,
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
        end_hints: 0,
        forced_prefix: forced.into(),
    }
}

/// One engine run: generated tokens/s in the steady state and over the whole run, and the
/// tool calls made.
struct EngineRun {
    steady: f64,
    full: f64,
    calls: u64,
}

/// The engine: 4 x `slots` trajectories of up to `tokens`, each opening with `forced`
/// (after a staggered amount of thinking) when it is not empty.
async fn engine_run(engine: &Engine, slots: usize, tokens: u32, forced: &str) -> EngineRun {
    let requests = slots * 4;
    let generated = || engine.stats().generated.load(Ordering::Relaxed);
    let before = generated();
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
        pending.spawn(engine.submit(request(tokens, &prefix, 1000 + k as u64)));
    }
    let mut done = 0;
    let mut calls = 0;
    let mut steady = 0.0;
    while let Some(out) = pending.join_next().await {
        let out = out.expect("task").expect("engine").expect("generation");
        calls += out.tool_calls.len() as u64;
        done += 1;
        // This completion's slot takes the last queued request: up to here every slot had
        // work.
        if done == requests - slots {
            steady = (generated() - before) as f64 / started.elapsed().as_secs_f64();
        }
    }
    EngineRun {
        steady,
        full: (generated() - before) as f64 / started.elapsed().as_secs_f64(),
        calls,
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
    let tokens: usize = env_num("START_BENCH_TOKENS", 128);
    let rounds: usize = env_num("START_BENCH_ROUNDS", 3).max(1);
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
         (medians; ratios against the plain loop of the same round, with their range)",
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
    let model = LlamaModel::load_from_file(backend, model_path(), &LlamaModelParams::default())
        .expect("model");
    let slot_counts: Vec<usize> = std::env::var("START_BENCH_SLOTS")
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 4, 16]);
    let forced = "```python\nprint(sum(range(10)))\n```\n";
    for slots in slot_counts {
        let (mut plain, mut eng, mut tools, mut full) = (vec![], vec![], vec![], vec![]);
        let (mut eng_r, mut tools_r, mut full_r) = (vec![], vec![], vec![]);
        let mut calls = 0;
        for _ in 0..rounds {
            // On its own thread, which exits afterwards: OpenMP frees that thread's worker
            // team, so the engine measured next is not throttled by an idle team (libgomp
            // spins less when it manages more threads than there are cores).
            let p = std::thread::scope(|s| {
                s.spawn(|| plain_loop(backend, &model, slots, tokens))
                    .join()
                    .unwrap()
            });
            let mut config = EngineConfig::new(model_path());
            config.slots = slots;
            config.ctx_per_slot = (tokens as u32 + 160).max(256);
            config.n_batch = 512;
            config.pad_gaps = env_num("START_BENCH_PAD_GAPS", config.pad_gaps);
            let engine =
                Engine::start(config, Some(sandbox.clone()), rt.handle().clone()).expect("engine");
            let e = rt.block_on(engine_run(&engine, slots, tokens as u32, ""));
            let t = rt.block_on(engine_run(&engine, slots, tokens as u32, forced));
            engine.shutdown();
            plain.push(p);
            eng.push(e.steady);
            tools.push(t.steady);
            full.push(t.full);
            eng_r.push(e.steady / p);
            tools_r.push(t.steady / p);
            full_r.push(t.full / p);
            calls = t.calls;
        }
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
    // Prompt sharing: N samples of one long prompt, with and without copying the cache.
    let n = 8u64;
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
        config.slots = n as usize;
        config.ctx_per_slot = 1024;
        config.share_prompts = share;
        let engine = Engine::start(config, None, rt.handle().clone()).expect("engine");
        let started = Instant::now();
        let rxs: Vec<_> = (0..n)
            .map(|k| {
                let mut r = request(1, "", 7 + k);
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
