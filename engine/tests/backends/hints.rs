//! Hint-infer on the real default model (run scripts/setup first): a hint replaces its trigger
//! word in the text and the KV cache, opens the code the model then writes, is capped per
//! trajectory, and never goes inside a code block; the tool limit and code in the final answer
//! leave blocks as text.

use crate::common::*;
use start_engine::{EngineConfig, GenOutput, HintLibrary};
use start_schemas::trajectory::{FinishReason, HintTrigger, Mode, Segment, SegmentKind};

/// A request whose hints may go in whenever a trigger word appears.
fn eager(question: &str, forced: &str, max_new: u32, seed: u64) -> Req {
    let mut req = request(question, forced, Mode::HintInfer, max_new, seed);
    req.hints.trigger_probability = 1.0;
    req.hints.min_context_left = 16;
    req
}

fn hints(out: &GenOutput) -> Vec<(usize, &Segment)> {
    out.segments
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind == SegmentKind::Hint)
        .collect()
}

/// The text before segment `at`, which a hint must not leave ending with a trigger word.
fn text_before(out: &GenOutput, at: usize) -> String {
    out.segments[..at].iter().map(|s| s.text.as_str()).collect()
}

/// Every segment's tokens are the ones fed: nothing rolled back is left in the row.
fn assert_tokens_add_up(out: &GenOutput) {
    let n: usize = out.segments.iter().map(|s| s.tokens.len()).sum();
    assert_eq!(n as u32, out.completion_tokens, "{:?}", out.segments);
}

/// A QwQ-style configuration: thinking opens with <think> and ends with </think>.
fn thinking_config() -> EngineConfig {
    let mut config = EngineConfig::new(model());
    config.tir.think_prefix = "<think>\n".into();
    config.tir.think_end = Some("</think>".into());
    config
}

/// A library whose one hint does not open code, for the placement rules alone.
fn plain_hint_library() -> HintLibrary {
    let text = start_engine::hints::BUILTIN.replace(
        "\"math\": {",
        "\"math\": {\"zz_test\": [\"Wait, let me think about it once more.\"],",
    );
    let mut lib = HintLibrary::parse(&text).unwrap();
    lib.math.retain(|k, _| k == "zz_test");
    lib
}

async fn a_hint_replaces_its_trigger_word_and_opens_the_code_the_model_writes(kind: Kind) {
    let sb = sandbox().await;
    let engine = engine_on(kind, EngineConfig::new(model()), Some(sb)).await;
    let mut req = eager("Is 91 prime?", "So 91 = 7 * 13. Wait,", 400, 7);
    req.params.temperature = 0.0;
    let out = run(&engine, req).await;
    let found = hints(&out);
    assert_eq!(found.len(), 1, "one trigger hint: {:?}", out.segments);
    let (at, hint) = found[0];
    let origin = hint.hint.as_ref().expect("a hint records its origin");
    assert_eq!(origin.trigger, HintTrigger::Word);
    assert_eq!(origin.replaced, "Wait,");
    let library = HintLibrary::builtin();
    assert!(
        library.math[&origin.kind]
            .iter()
            .any(|h| hint.text == format!(" {h}")),
        "the hint starts where the word did, with its space: {:?}",
        hint.text
    );
    let before = text_before(&out, at);
    assert_eq!(before, "So 91 = 7 * 13.", "the trigger word is gone");
    assert!(
        !full_text(&out).contains("Wait, Wait"),
        "{}",
        full_text(&out)
    );
    // The hint ended by opening a block: what the model wrote next is code, and it ran.
    let code = &out.segments[at + 1];
    assert_eq!(code.kind, SegmentKind::Code, "{:?}", out.segments);
    assert!(
        !out.tool_calls.is_empty() && out.tool_calls[0].segment as usize == at + 1,
        "the model's own block ran: {:?}",
        out.segments
    );
    assert_eq!(out.segments[at + 2].kind, SegmentKind::Output);
    assert_tokens_add_up(&out);

    // The KV cache holds what the row holds: forcing the same text (trigger word never
    // written) gives the same greedy continuation, token for token. In process only: on a
    // server the continuation is sent as the row's token ids by construction, and llama-server's
    // greedy tokens depend on how it splits the prefill (what its prompt cache reuses), so a
    // second run may part from the first at a near tie; that compares llama.cpp, not start.
    if kind.on_a_server() {
        return;
    }
    let shown: String = out.segments[..=at]
        .iter()
        .map(|s| s.text.as_str())
        .collect();
    let mut same = request("Is 91 prime?", &shown, Mode::Plain, 200, 7);
    same.params.temperature = 0.0;
    let again = run(&engine, same).await;
    let (a, b) = (tokens(&out), tokens(&again));
    let n = a.len().min(b.len());
    let shown_tokens: usize = out.segments[..=at].iter().map(|s| s.tokens.len()).sum();
    assert!(n > shown_tokens + 10, "both went on past the hint");
    assert_eq!(
        a[..n],
        b[..n],
        "{:?}\nvs\n{:?}",
        full_text(&out),
        full_text(&again)
    );
}

async fn no_sampled_trajectory_doubles_a_trigger_at_a_hint_boundary(kind: Kind) {
    // Triggers this model writes by itself, so that the hints land on sampled text, in the
    // middle of its sentences.
    let mut config = EngineConfig::new(model());
    config.slots = 4;
    let mut lib = HintLibrary::builtin();
    lib.triggers = vec!["So".into(), "The".into(), "Let".into(), "First".into()];
    config.tir.hints = lib.clone();
    let engine = engine_on(kind, config, None).await;
    let questions = [
        "What is 17 times 23?",
        "Find the sum of the first ten odd numbers.",
        "Is 221 a prime number?",
        "How many minutes are in a week?",
    ];
    let pending: Vec<_> = questions
        .iter()
        .enumerate()
        .map(|(k, q)| {
            let mut req = eager(q, "", 160, 40 + k as u64);
            req.hints.max_trigger_hints = 3;
            engine.submit(req)
        })
        .collect();
    let mut word_hints = 0;
    for rx in pending {
        let out = rx.await.unwrap().unwrap();
        assert_tokens_add_up(&out);
        for (at, hint) in hints(&out) {
            let origin = hint.hint.as_ref().unwrap();
            if origin.trigger != HintTrigger::Word {
                continue;
            }
            word_hints += 1;
            let before = text_before(&out, at);
            let doubled = lib.ends_with_trigger(&before);
            assert!(
                doubled.is_none(),
                "{doubled:?} before a hint: {:?}",
                out.segments
            );
            assert!(
                lib.triggers
                    .iter()
                    .any(|w| origin.replaced.starts_with(w.as_str())),
                "{origin:?}"
            );
        }
    }
    assert!(word_hints > 0, "the model wrote none of the trigger words");
}

async fn trigger_hints_are_capped_and_need_tool_calls_and_room_left(kind: Kind) {
    let mut config = EngineConfig::new(model());
    config.tir.hints = plain_hint_library();
    let engine = engine_on(kind, config, None).await;
    let forced = "A is 1. Wait, B is 2. Wait, C is 3. Wait, D is 4. Wait, so";
    let count = |out: &GenOutput| hints(out).len();
    let mut capped = eager("Count.", forced, 60, 3);
    capped.hints.max_trigger_hints = 2;
    let out = run(&engine, capped.clone()).await;
    assert_eq!(count(&out), 2, "{:?}", out.segments);
    assert_eq!(
        full_text(&out)
            .matches("Wait, let me think about it once more.")
            .count(),
        2
    );
    assert_tokens_add_up(&out);
    let mut one_call_left = capped.clone();
    one_call_left.params.max_tool_calls = 1;
    assert_eq!(count(&run(&engine, one_call_left).await), 0);
    let mut no_room = capped.clone();
    no_room.hints.min_context_left = 10_000;
    assert_eq!(count(&run(&engine, no_room).await), 0);
    let mut never = capped.clone();
    never.hints.trigger_probability = 0.0;
    assert_eq!(count(&run(&engine, never).await), 0);
    let mut plain = capped;
    plain.mode = Mode::Plain;
    assert_eq!(count(&run(&engine, plain).await), 0);
}

async fn an_end_hint_replaces_the_end_of_the_turn_but_never_inside_a_code_block(kind: Kind) {
    let engine = engine_on(kind, EngineConfig::new(model()), None).await;
    let mut req = request(
        "Say hello.",
        "Hello there!<|im_end|>",
        Mode::HintInfer,
        40,
        9,
    );
    req.hints.end_hints = 1;
    let out = run(&engine, req.clone()).await;
    let found = hints(&out);
    assert_eq!(found.len(), 1, "{:?}", out.segments);
    let (at, hint) = found[0];
    assert_eq!(out.segments[at - 1].text, "Hello there!");
    assert!(hint.text.starts_with("\n\nWait") || hint.text.starts_with("\n\nAlternatively"));
    let origin = hint.hint.as_ref().unwrap();
    assert_eq!(origin.trigger, HintTrigger::EndOfThinking);
    assert_eq!(origin.replaced, "<|im_end|>");
    assert!(
        !full_text(&out).contains("<|im_end|>"),
        "the end was not fed"
    );
    assert_eq!(
        out.segments[at + 1].kind,
        SegmentKind::Code,
        "{:?}",
        out.segments
    );
    assert_tokens_add_up(&out);

    // The model ends its turn inside a block it opened: the block stays open, no hint.
    let mut inside = request(
        "Say hello.",
        "```python\nprint('hi')<|im_end|>",
        Mode::HintInfer,
        40,
        9,
    );
    inside.hints.end_hints = 1;
    let out = run(&engine, inside).await;
    assert!(hints(&out).is_empty(), "{:?}", out.segments);
    assert_eq!(out.finish_reason, FinishReason::Stop);
    assert_eq!(
        out.end_of_turn.as_ref().map(|(_, t)| t.as_str()),
        Some("<|im_end|>")
    );

    // A trigger word inside a block is code, not a place for a hint.
    let mut code_word = eager(
        "Say hello.",
        "```python\n# Wait, check\nprint(1)\n```\n",
        40,
        9,
    );
    code_word.hints.end_hints = 0;
    let out = run(&engine, code_word).await;
    assert!(hints(&out).is_empty(), "{:?}", out.segments);

    // Plain mode ends at the same token.
    let mut plain = req;
    plain.mode = Mode::Plain;
    let out = run(&engine, plain).await;
    assert_eq!(out.finish_reason, FinishReason::Stop);
    assert!(hints(&out).is_empty());
}

async fn the_end_of_thinking_is_rolled_back_and_replaced_by_a_hint(kind: Kind) {
    let config = thinking_config();
    let engine = engine_on(kind, config, None).await;
    let mut req = request(
        "What is 2+2?",
        "2+2 is 4.\n</think>",
        Mode::HintInfer,
        24,
        21,
    );
    req.hints.end_hints = 1;
    let out = run(&engine, req).await;
    assert!(out.prompt.ends_with("<think>\n"), "{}", out.prompt);
    assert_eq!(out.generation_prefix, "<think>\n");
    let found = hints(&out);
    assert_eq!(found.len(), 1, "{:?}", out.segments);
    let (at, hint) = found[0];
    assert_eq!(text_before(&out, at), "2+2 is 4.\n");
    let origin = hint.hint.as_ref().unwrap();
    assert_eq!(origin.trigger, HintTrigger::EndOfThinking);
    assert_eq!(origin.replaced, "</think>");
    assert!(!full_text(&out)[..text_before(&out, at).len()].contains("</think>"));
    assert_eq!(out.thinking_ended, Some(false));
    assert_tokens_add_up(&out);
}

async fn the_tool_limit_leaves_later_blocks_as_text_and_the_model_finishes(kind: Kind) {
    let sb = sandbox().await;
    let engine = engine_on(kind, EngineConfig::new(model()), Some(sb)).await;
    let mut req = request(
        "Print two numbers.",
        "```python\nprint(1)\n```\nAnd again:\n```python\nprint(2)\n```\nDone.",
        Mode::Plain,
        80,
        5,
    );
    req.params.max_tool_calls = 1;
    let out = run(&engine, req).await;
    assert_eq!(out.tool_calls.len(), 1, "{:?}", out.segments);
    assert!(out.tool_limit_reached);
    assert_ne!(out.finish_reason, FinishReason::ToolLimit);
    let outputs = out
        .segments
        .iter()
        .filter(|s| s.kind == SegmentKind::Output)
        .count();
    assert_eq!(outputs, 1);
    let later = out
        .segments
        .iter()
        .find(|s| s.text.contains("print(2)"))
        .expect("the second block is in the text");
    assert_ne!(
        later.kind,
        SegmentKind::Code,
        "it stayed text: {:?}",
        out.segments
    );
    assert!(full_text(&out).contains("Done."));
}

async fn code_in_the_final_answer_runs_only_when_the_job_asks(kind: Kind) {
    let sb = sandbox().await;
    let config = thinking_config();
    let engine = engine_on(kind, config, Some(sb)).await;
    let forced = "It is 4.\n</think>\nThe program:\n```python\nprint(2+2)\n```\n";
    let req = request("Write a program printing 2+2.", forced, Mode::Plain, 40, 5);
    let out = run(&engine, req.clone()).await;
    assert_eq!(out.thinking_ended, Some(true));
    assert!(out.tool_calls.is_empty(), "{:?}", out.segments);
    assert!(!out.tool_limit_reached);
    let answer = out
        .segments
        .iter()
        .find(|s| s.text.contains("print(2+2)"))
        .unwrap();
    assert_eq!(answer.kind, SegmentKind::Answer);
    let mut run_it = req;
    run_it.hints.run_answer_code = true;
    let out = run(&engine, run_it).await;
    assert_eq!(out.tool_calls.len(), 1, "{:?}", out.segments);
    let output = out
        .segments
        .iter()
        .find(|s| s.kind == SegmentKind::Output)
        .unwrap();
    assert_eq!(output.text, "```output\n4\n```\n");
}

crate::on_both_backends!(
    a_hint_replaces_its_trigger_word_and_opens_the_code_the_model_writes,
    no_sampled_trajectory_doubles_a_trigger_at_a_hint_boundary,
    trigger_hints_are_capped_and_need_tool_calls_and_room_left,
    an_end_hint_replaces_the_end_of_the_turn_but_never_inside_a_code_block,
    the_end_of_thinking_is_rolled_back_and_replaced_by_a_hint,
    the_tool_limit_leaves_later_blocks_as_text_and_the_model_finishes,
    code_in_the_final_answer_runs_only_when_the_job_asks,
);
