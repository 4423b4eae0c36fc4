//! The engine on the real default model (run scripts/setup first): tool calls, hints, limits,
//! and reproducibility.

use crate::common::*;
use start_engine::EngineConfig;
use start_schemas::trajectory::{FinishReason, Mode, SegmentKind};
use std::sync::Arc;
use std::time::Duration;

async fn a_forced_code_block_runs_and_its_output_is_the_next_segment(kind: Kind) {
    let sb = sandbox().await;
    let mut config = EngineConfig::new(model());
    config.slots = 2;
    let engine = engine_on(kind, config, Some(sb)).await;
    let out = run(
        &engine,
        request(
            "What is 6 times 7?",
            "Let me compute.\n```python\nprint(6*7)\n```",
            Mode::Plain,
            40,
            3,
        ),
    )
    .await;
    let code = out
        .segments
        .iter()
        .position(|s| s.kind == SegmentKind::Code)
        .expect("a code segment");
    assert!(
        out.segments[code].text.contains("print(6*7)"),
        "{:?}",
        out.segments
    );
    let output = &out.segments[code + 1];
    assert_eq!(output.kind, SegmentKind::Output, "{:?}", out.segments);
    assert_eq!(output.text, "```output\n42\n```\n");
    assert!(!out.tool_calls.is_empty());
    assert_eq!(out.tool_calls[0].exit_code, Some(0));
    assert_eq!(out.tool_calls[0].segment as usize, code);
    // Every segment's tokens decode to its text: the trajectory is what was fed and sampled.
    assert!(out.segments.iter().all(|s| !s.tokens.is_empty()));
    assert!(
        out.completion_tokens as usize
            >= out.segments.iter().map(|s| s.tokens.len()).sum::<usize>()
    );
}

/// A block the sandbox cannot run (here: there is none; in production, runners that failed
/// twice) is not the model's error: no output block is written, and the trajectory ends with
/// `error` and the cause.
async fn a_block_the_sandbox_cannot_run_ends_the_trajectory_with_error(kind: Kind) {
    let engine = engine_on(kind, EngineConfig::new(model()), None).await;
    let out = run(
        &engine,
        request(
            "What is 6 times 7?",
            "Let me compute.\n```python\nprint(6*7)\n```",
            Mode::Plain,
            40,
            3,
        ),
    )
    .await;
    assert_eq!(out.finish_reason, FinishReason::Error, "{:?}", out.segments);
    assert!(
        out.segments.iter().all(|s| s.kind != SegmentKind::Output),
        "no output block: {:?}",
        out.segments
    );
    assert_eq!(
        out.finish_detail.as_deref(),
        Some("sandbox: no sandbox is configured")
    );
    let call = out.tool_calls.last().expect("the call is recorded");
    assert_eq!(call.exit_code, None);
    assert_eq!(call.error.as_deref(), Some("no sandbox is configured"));
}

async fn syntax_errors_come_back_as_output_and_generation_goes_on(kind: Kind) {
    let sb = sandbox().await;
    let engine = engine_on(kind, EngineConfig::new(model()), Some(sb)).await;
    let out = run(
        &engine,
        request(
            "Compute 2+2.",
            "```python\nprint(2+\n```",
            Mode::Plain,
            48,
            5,
        ),
    )
    .await;
    let output = out
        .segments
        .iter()
        .find(|s| s.kind == SegmentKind::Output)
        .expect("output");
    assert!(output.text.contains("SyntaxError"), "{}", output.text);
    assert_ne!(out.tool_calls[0].exit_code, Some(0));
    let after = out
        .segments
        .iter()
        .position(|s| s.kind == SegmentKind::Output)
        .unwrap();
    assert!(
        out.segments.len() > after + 1 || out.finish_reason == FinishReason::Stop,
        "{:?}",
        out.segments
    );
}

async fn the_context_limit_ends_a_trajectory_cleanly(kind: Kind) {
    let mut config = EngineConfig::new(model());
    config.tir.ctx_per_slot = 96;
    let engine = engine_on(kind, config, None).await;
    let mut req = request(
        "Write a long story about a dragon.",
        "",
        Mode::Plain,
        1000,
        11,
    );
    req.params.temperature = 0.8;
    let out = run(&engine, req).await;
    assert!(
        matches!(
            out.finish_reason,
            FinishReason::Context | FinishReason::Stop
        ),
        "{:?}",
        out.finish_reason
    );
    assert!(out.prompt_tokens + out.completion_tokens <= 96);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_that_would_overflow_the_kv_cache_ends_only_its_own_trajectory() {
    // Running out of KV space: a tool output far longer than the room left in its slot. That
    // trajectory ends with `context`, holding only what the model was fed; the trajectory
    // beside it, longer and so the first suspect of a failed decode, carries on untouched.
    let sb = sandbox().await;
    let mut config = EngineConfig::new(model());
    config.slots = 2;
    config.tir.ctx_per_slot = 512;
    config.tir.max_output_chars = 20_000;
    let engine = engine(config, Some(sb));
    let question = format!(
        "{}How many words is that?",
        "The quick brown fox jumps over the lazy dog. ".repeat(25)
    );
    let bystander = || request(&question, "", Mode::Plain, 64, 5);
    let alone = run(&engine, bystander()).await;
    let beside = engine.submit(bystander());
    let flood = run(
        &engine,
        request(
            "Print many numbers.",
            "```python\nprint(' '.join(str(i) for i in range(3000)))\n```",
            Mode::Plain,
            64,
            9,
        ),
    )
    .await;
    let beside = beside.await.unwrap().unwrap();
    assert_eq!(
        flood.finish_reason,
        FinishReason::Context,
        "{:?}",
        flood.segments
    );
    assert!(flood.prompt_tokens + flood.completion_tokens <= 512);
    assert_eq!(flood.tool_calls.len(), 1);
    assert_eq!(flood.tool_calls[0].exit_code, Some(0));
    assert!(
        flood.segments.iter().all(|s| s.kind != SegmentKind::Output),
        "an output that was never fed is not in the trajectory: {:?}",
        flood.segments
    );
    assert_ne!(beside.finish_reason, FinishReason::Context);
    assert_same_tokens(&alone, &beside);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_abandoned_work_and_refuses_later_requests() {
    // A worker that gives its units back at a drain deadline drops their receivers and then
    // stops the engine before it exits.
    let engine = Arc::new(engine(EngineConfig::new(model()), None));
    let long = engine.submit(request("Write a long story.", "", Mode::Plain, 4000, 21));
    while engine
        .stats()
        .generated
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(long);
    let stopping = engine.clone();
    tokio::time::timeout(
        Duration::from_secs(120),
        tokio::task::spawn_blocking(move || stopping.shutdown()),
    )
    .await
    .expect("shutdown returns once the abandoned trajectory is dropped")
    .unwrap();
    assert_eq!(
        engine
            .stats()
            .abandoned
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let later = engine
        .submit(request("Hello?", "", Mode::Plain, 8, 1))
        .await
        .unwrap();
    assert!(
        matches!(later, Err(start_engine::EngineError::Stopped)),
        "{later:?}"
    );
    engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_tool_call_does_not_stall_the_other_slots() {
    let sb = sandbox().await;
    let mut config = EngineConfig::new(model());
    config.slots = 2;
    config.tir.tool_timeout = Duration::from_secs(3);
    let engine = engine(config, Some(sb));
    let slow = engine.submit(request(
        "Wait for it.",
        "```python\nimport time\ntime.sleep(30)\n```",
        Mode::Plain,
        64,
        13,
    ));
    let fast = engine.submit(request("Count to ten.", "", Mode::Plain, 40, 17));
    let fast = fast.await.unwrap().unwrap();
    let slow = slow.await.unwrap().unwrap();
    assert!(slow.tool_calls[0].timed_out, "{:?}", slow.tool_calls);
    let output = slow
        .segments
        .iter()
        .find(|s| s.kind == SegmentKind::Output)
        .unwrap();
    assert!(
        output.text.contains("[timed out after 3 s]"),
        "{}",
        output.text
    );
    assert!(
        fast.wall_time_s < slow.wall_time_s,
        "the other slot kept decoding: fast {:.2}s vs slow {:.2}s",
        fast.wall_time_s,
        slow.wall_time_s
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_gives_the_same_tokens_alone_and_in_a_busy_batch() {
    let mut config = EngineConfig::new(model());
    config.slots = 4;
    let engine = engine(config, None);
    let target = || request("Name three prime numbers.", "", Mode::Plain, 48, 424242);
    let alone = run(&engine, target()).await;
    let others: Vec<_> = (0..3)
        .map(|k| {
            engine.submit(request(
                "Tell me about the sea.",
                "",
                Mode::Plain,
                64,
                100 + k,
            ))
        })
        .collect();
    let in_batch = run(&engine, target()).await;
    for o in others {
        o.await.unwrap().unwrap();
    }
    assert_same_tokens(&alone, &in_batch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_of_one_prompt_share_its_cache_and_get_the_same_tokens() {
    let samples = |engine: &TestEngine| {
        (0..3u64)
            .map(|k| {
                engine.submit(request(
                    "List two even numbers.",
                    "",
                    Mode::Rft,
                    24,
                    900 + k,
                ))
            })
            .collect::<Vec<_>>()
    };
    let mut outs = Vec::new();
    for share in [true, false] {
        let mut config = EngineConfig::new(model());
        config.slots = 3;
        config.share_prompts = share;
        let engine = engine(config, None);
        let mut got = Vec::new();
        for rx in samples(&engine) {
            got.push(rx.await.unwrap().unwrap());
        }
        let shared = engine
            .stats()
            .shared
            .load(std::sync::atomic::Ordering::Relaxed);
        let p = u64::from(got[0].prompt_tokens);
        if share {
            assert_eq!(
                shared,
                2 * (p - 1),
                "two of three samples copied the prompt"
            );
        } else {
            assert_eq!(shared, 0);
        }
        outs.push(got.iter().map(tokens).collect::<Vec<_>>());
    }
    assert_eq!(
        outs[0], outs[1],
        "copying the cache changes nothing in what is sampled"
    );

    // A finished trajectory's slot keeps its prompt cached for the next sample of that prompt.
    let mut config = EngineConfig::new(model());
    config.slots = 2;
    let engine = engine(config, None);
    let first = run(
        &engine,
        request("List two even numbers.", "", Mode::Rft, 8, 1),
    )
    .await;
    let again = run(
        &engine,
        request("List two even numbers.", "", Mode::Rft, 8, 2),
    )
    .await;
    let shared = engine
        .stats()
        .shared
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(shared, u64::from(first.prompt_tokens) - 1, "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_stops_waiting_frees_its_slot() {
    // One slot: a long request whose caller goes away must not hold it for 4,000 tokens.
    let mut config = EngineConfig::new(model());
    config.slots = 1;
    config.tir.ctx_per_slot = 8192;
    let engine = engine(config, None);
    let mut long = request(
        "Count from 1 to 10000, one number per line.",
        "",
        Mode::Plain,
        4000,
        3,
    );
    long.params.temperature = 0.0;
    let abandoned = engine.submit(long);
    // Wait until it generates, then drop its receiver (what a revoked lease does).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while engine
        .stats()
        .generated
        .load(std::sync::atomic::Ordering::Relaxed)
        < 5
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the long request never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(abandoned);
    let short = run(&engine, request("Say hi.", "", Mode::Plain, 8, 4)).await;
    assert!(short.completion_tokens <= 8);
    assert_eq!(
        engine
            .stats()
            .abandoned
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let generated = engine
        .stats()
        .generated
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        generated < 4000,
        "the abandoned request ran on: {generated} tokens"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_padded_between_busy_neighbours_keep_their_exact_tokens() {
    // T waits on the sandbox between two slots that keep decoding, so its stream gets a
    // throwaway token in each of those steps; after it ends, its idle slot is padded while
    // they go on. Neither may leave a trace: T gives the same tokens as alone, and so does a
    // later sample that reuses the padded idle slot's cached prompt.
    let sb = sandbox().await;
    let code = "```python\nimport time\ntime.sleep(0.4)\nprint(6 * 7)\n```\n";
    let target = |seed| request("What is six times seven?", code, Mode::Plain, 40, seed);
    // The neighbours' forced thinking outlasts T's whole trajectory (at most 40 tokens and
    // the wait), so T's slot also idles between them.
    let busy = |seed| {
        let thinking = "Let me think. ".repeat(32);
        request("Tell me about the sea.", &thinking, Mode::Plain, 160, seed)
    };
    let mut config = EngineConfig::new(model());
    config.slots = 3;
    let alone_engine = engine(config.clone(), Some(sb.clone()));
    let alone = run(&alone_engine, target(31)).await;
    let alone_again = run(&alone_engine, target(32)).await;
    assert_eq!(
        alone_engine
            .stats()
            .padded
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "one slot at a time leaves no gap"
    );
    alone_engine.shutdown();

    let engine = engine(config, Some(sb));
    let a = engine.submit(busy(1));
    let in_batch = engine.submit(target(31));
    let b = engine.submit(busy(2));
    let padded = || {
        engine
            .stats()
            .padded
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let in_batch = in_batch.await.unwrap().unwrap();
    let padded_while_busy = padded();
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    assert!(padded_while_busy > 0, "the waiting slot was never padded");
    assert!(
        padded() > padded_while_busy,
        "the idle slot was never padded"
    );
    assert_eq!(in_batch.tool_calls.len(), 1, "{:?}", full_text(&in_batch));
    assert!(full_text(&in_batch).contains("```output\n42\n```"));
    assert_same_tokens(&alone, &in_batch);
    let shared_before = engine
        .stats()
        .shared
        .load(std::sync::atomic::Ordering::Relaxed);
    let again = run(&engine, target(32)).await;
    let shared = engine
        .stats()
        .shared
        .load(std::sync::atomic::Ordering::Relaxed)
        - shared_before;
    assert_eq!(
        shared,
        u64::from(again.prompt_tokens) - 1,
        "the sample reused the padded slot's cached prompt"
    );
    assert_same_tokens(&alone_again, &again);
}

crate::on_both_backends!(
    a_forced_code_block_runs_and_its_output_is_the_next_segment,
    a_block_the_sandbox_cannot_run_ends_the_trajectory_with_error,
    syntax_errors_come_back_as_output_and_generation_goes_on,
    the_context_limit_ends_a_trajectory_cleanly,
);
