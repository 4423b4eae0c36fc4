//! Helpers of the engine's tests on the real default model (run scripts/setup first).
#![allow(dead_code)]

use start_engine::{Engine, EngineConfig, GenOutput, GenRequest, HintLibrary};
use start_sandbox::{BackendKind, Sandbox, SandboxConfig};
use start_schemas::trajectory::{GenerationParams, HintSettings, Mode};
use std::path::Path;
use std::sync::Arc;

pub fn model() -> std::path::PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        p.is_file(),
        "the default model is missing: run scripts/setup"
    );
    p
}

pub fn params(max_new_tokens: u32) -> GenerationParams {
    GenerationParams {
        temperature: 0.6,
        top_k: 40,
        top_p: 0.95,
        min_p: 0.0,
        repeat_penalty: 1.0,
        max_new_tokens,
        max_tool_calls: 6,
        seed: 1,
    }
}

pub fn request(question: &str, forced: &str, mode: Mode, max_new: u32, seed: u64) -> GenRequest {
    GenRequest {
        user_message: question.into(),
        code_tests: None,
        mode,
        params: params(max_new),
        seed,
        hints: HintSettings {
            end_hints: 0,
            ..HintSettings::from_proto(None, HintLibrary::builtin().trigger_probability)
        },
        forced_prefix: forced.into(),
    }
}

pub async fn sandbox() -> Arc<Sandbox> {
    Arc::new(
        Sandbox::start(SandboxConfig {
            backend: BackendKind::Process,
            pool_size: 2,
            ..SandboxConfig::default()
        })
        .await
        .unwrap(),
    )
}

pub fn engine(config: EngineConfig, sb: Option<Arc<Sandbox>>) -> Engine {
    Engine::start(config, sb, tokio::runtime::Handle::current()).unwrap()
}

pub async fn run(engine: &Engine, req: GenRequest) -> GenOutput {
    engine.submit(req).await.unwrap().unwrap()
}

pub fn full_text(out: &GenOutput) -> String {
    out.segments.iter().map(|s| s.text.as_str()).collect()
}

/// Every token after the prompt, in order: what reproducibility is judged on.
pub fn tokens(out: &GenOutput) -> Vec<i32> {
    out.segments
        .iter()
        .flat_map(|s| s.tokens.iter().copied())
        .collect()
}

/// Asserts that two trajectories hold the same tokens, showing both texts when they do not.
pub fn assert_same_tokens(a: &GenOutput, b: &GenOutput) {
    assert_eq!(
        tokens(a),
        tokens(b),
        "{:?}\nvs\n{:?}",
        full_text(a),
        full_text(b)
    );
}
