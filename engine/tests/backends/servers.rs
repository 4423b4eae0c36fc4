//! The OpenAI-compatible backend against the servers its users run: llama.cpp's own
//! `llama-server` and a real vLLM (PyPI's CPU build, `scripts/setup-vllm`). Each test runs on
//! both (`name::openai` on llama-server, `name::vllm`), and checks one of the places where the
//! two servers answer differently and start must come out the same:
//!
//! - the identity recorded on rows (vLLM's `/v1/models` holds a fresh `created` time and fresh
//!   permission ids on every call);
//! - the prompt (vLLM has no `/apply-template`: the messages are tokenised by the server and
//!   written back as text), which must be the same text and ids on both;
//! - token ids (llama.cpp sends one id and its bytes per event; vLLM sends `token_ids` with text
//!   that cannot be assigned to them, a multi-byte character's text arriving with a later id,
//!   and the end-of-sequence id with empty text): every segment's ids must write out its text;
//! - sampling fields (`repeat_penalty` for llama.cpp, `repetition_penalty` for vLLM; both
//!   ignore the other's) and `max_tokens` (vLLM's default is 16).

use crate::common::*;
use serde_json::{json, Value};
use start_engine::{EngineConfig, OpenAiConfig, OpenAiEngine};
use start_schemas::trajectory::{FinishReason, Mode, SegmentKind};
use std::time::Duration;

/// Runs a test body on llama-server and on vLLM.
macro_rules! on_both_servers {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn openai() {
                super::$name(crate::common::Kind::OpenAi).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn vllm() {
                super::$name(crate::common::Kind::Vllm).await
            }
        }
    )+};
}

/// `ids` written out by the server's own `/detokenize` (llama.cpp answers `content`, vLLM
/// `prompt`).
async fn detokenize(url: &str, ids: &[i32]) -> String {
    let v: Value = reqwest::Client::new()
        .post(format!("{url}/detokenize"))
        .json(&json!({"tokens": ids}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    v.get("content")
        .or_else(|| v.get("prompt"))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no text in {v}"))
        .to_string()
}

async fn the_identity_is_the_same_on_every_connection(kind: Kind) {
    let e = engine_on(kind, EngineConfig::new(model()), None).await;
    let connect = || async {
        let mut c = OpenAiConfig::new(e.url.clone());
        c.attempts = 2;
        OpenAiEngine::start(c, None).await.unwrap().identity.clone()
    };
    let first = connect().await;
    // vLLM's `created` has a resolution of a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = connect().await;
    assert_eq!(
        first.sha256, second.sha256,
        "{}\n{}",
        first.description, second.description
    );
    assert_eq!(first.description, second.description);
    let d: Value = serde_json::from_str(&first.description).unwrap();
    assert_eq!(d["model"]["id"], json!(first.model), "{d}");
    let text = first.description.as_str();
    assert!(
        !text.contains("created") && !text.contains("permission"),
        "{text}"
    );
    match kind {
        // vLLM says its release and the model's length; llama.cpp its build and file.
        Kind::Vllm => {
            assert_eq!(
                d["server_version"],
                json!(start_tests::vllm::VERSION),
                "{d}"
            );
            assert_eq!(d["model"]["max_model_len"], json!(4096), "{d}");
        }
        _ => {
            assert!(
                d["build_info"].as_str().is_some_and(|b| !b.is_empty()),
                "{d}"
            );
            assert!(
                d["model_path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(".gguf")),
                "{d}"
            );
        }
    }
}

async fn prompt_on(kind: Kind) -> (start_engine::GenOutput, String) {
    let e = engine_on(kind, EngineConfig::new(model()), None).await;
    let mut req = request("What is 6 times 7?", "", Mode::Plain, 4, 3);
    req.params.temperature = 0.0;
    let out = run(&e, req).await;
    // The server's ids write out the prompt's text.
    assert_eq!(
        detokenize(&e.url, &out.prompt_token_ids).await,
        out.prompt,
        "{kind:?}"
    );
    assert_eq!(out.prompt_tokens as usize, out.prompt_token_ids.len());
    (out, e.url.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prompt_is_the_same_text_and_ids_on_both_servers() {
    // llama.cpp renders the model's template at /apply-template; vLLM has none, so start asks
    // it to tokenise the messages and writes the ids back as text. Both must give the model's
    // own template (SmolLM2's: ChatML with its default system message, from the GGUF on one
    // side and from the converted tokenizer's chat_template.jinja on the other).
    let (llama, _) = prompt_on(Kind::OpenAi).await;
    let (vllm, _) = prompt_on(Kind::Vllm).await;
    assert_eq!(
        llama.prompt,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging \
         Face<|im_end|>\n<|im_start|>user\nWhat is 6 times 7?<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(vllm.prompt, llama.prompt);
    assert_eq!(vllm.prompt_token_ids, llama.prompt_token_ids);
}

async fn every_segments_ids_write_out_its_text(kind: Kind) {
    let sb = sandbox().await;
    let e = engine_on(kind, EngineConfig::new(model()), Some(sb)).await;
    // A block the model is made to open, multi-byte text around it (a character's bytes may
    // arrive with a later token on vLLM), then the model's own continuation.
    let opening = "Let me check with Python — it's exact: π ≈ 3.14159.\n```python\nprint(sum(range(1, 11)), 'é')\n```\n";
    let mut req = request("What is 1 + 2 + ... + 10?", opening, Mode::Plain, 120, 11);
    req.params.temperature = 0.0;
    let out = run(&e, req).await;
    assert_eq!(out.token_ids_source, "server");
    assert_eq!(out.tool_calls.len(), 1, "{:?}", out.segments);
    assert!(
        out.segments
            .iter()
            .any(|s| s.kind == SegmentKind::Output && s.text.contains("55 é")),
        "{:?}",
        out.segments
    );
    for (i, s) in out.segments.iter().enumerate() {
        assert_eq!(
            detokenize(&e.url, &s.tokens).await,
            s.text,
            "segment {i} ({:?}) {:?}",
            s.kind,
            s.tokens
        );
    }
    let n: usize = out.segments.iter().map(|s| s.tokens.len()).sum();
    assert_eq!(n as u32, out.completion_tokens);
    // vLLM's default max_tokens is 16: start always says how many it wants.
    let generated: usize = out
        .segments
        .iter()
        .filter(|s| s.kind != SegmentKind::Output)
        .map(|s| s.tokens.len())
        .sum();
    assert!(generated > 16, "{generated} tokens: {:?}", out.segments);
    // The model ended its turn: the end-of-sequence id (sent with empty text by vLLM) is the
    // turn's end, named, not text of the answer.
    if out.finish_reason == FinishReason::Stop {
        let (id, text) = out.end_of_turn.clone().expect("the end-of-turn token");
        assert_eq!(text, "<|im_end|>");
        assert_eq!(detokenize(&e.url, &[id]).await, text);
        assert!(
            !full_text(&out).contains("<|im_end|>"),
            "{}",
            full_text(&out)
        );
    }
}

async fn the_repetition_penalty_reaches_the_server(kind: Kind) {
    let e = engine_on(kind, EngineConfig::new(model()), None).await;
    let go = |penalty: f32| {
        let mut req = request(
            "Write the word 'apple' fifty times, separated by spaces.",
            "",
            Mode::Plain,
            48,
            5,
        );
        req.params.temperature = 0.0;
        req.params.repeat_penalty = penalty;
        run(&e, req)
    };
    let plain = go(1.0).await;
    let again = go(1.0).await;
    let penalised = go(1.8).await;
    // Greedy is greedy: the same request twice gives the same text.
    assert_eq!(full_text(&plain), full_text(&again));
    // A penalty the server did not read would change nothing.
    assert_ne!(
        full_text(&plain),
        full_text(&penalised),
        "the penalty changed nothing: {:?}",
        full_text(&plain)
    );
}

/// More trajectories are under way than the server has slots: while one runs a block in the
/// sandbox, holding no slot, another streams on the server's one slot and ends first. With as
/// many under way as slots, the second would wait for the first trajectory's end.
async fn a_trajectory_in_the_sandbox_leaves_the_servers_slot_to_another(kind: Kind) {
    let mut config = EngineConfig::new(model());
    config.slots = 1;
    let e = engine_on(kind, config, Some(sandbox().await)).await;
    let sleeper = request(
        "What is 2 + 2?",
        "```python\nimport time\ntime.sleep(4)\nprint(4)\n```\n",
        Mode::Plain,
        24,
        1,
    );
    let quick = request("What is 3 + 3?", "", Mode::Plain, 8, 2);
    let sleeper = e.submit(sleeper);
    // The sleeper is in the sandbox before the quick one is submitted.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let quick = e.submit(quick);
    let (sleeper, quick) = (
        tokio::spawn(async move { (sleeper.await, std::time::Instant::now()) }),
        tokio::spawn(async move { (quick.await, std::time::Instant::now()) }),
    );
    let ((slow_out, slow_done), (quick_out, quick_done)) =
        (sleeper.await.unwrap(), quick.await.unwrap());
    let slow_out = slow_out.unwrap().unwrap();
    quick_out.unwrap().unwrap();
    assert_eq!(slow_out.tool_calls.len(), 1, "{}", full_text(&slow_out));
    assert!(
        quick_done < slow_done,
        "the quick trajectory waited for the one in the sandbox"
    );
}

on_both_servers!(
    the_identity_is_the_same_on_every_connection,
    every_segments_ids_write_out_its_text,
    the_repetition_penalty_reaches_the_server,
    a_trajectory_in_the_sandbox_leaves_the_servers_slot_to_another,
);
