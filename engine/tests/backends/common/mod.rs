//! Helpers of the engine's tests on the real default model (run scripts/setup first).
//!
//! A test puts a code block or a trigger word where it needs one by giving its request an
//! opening: the engine is started with the test-only `Engine::start_scripted` (feature
//! `scripted`), and what the opening says takes exactly the path of sampled tokens; the tokens
//! after it are the model's own.
#![allow(dead_code)]

use start_engine::script::Script;
use start_engine::{
    Backend, Engine, EngineConfig, EngineError, GenOutput, GenRequest, HintLibrary, OpenAiConfig,
    OpenAiEngine,
};
use start_sandbox::{BackendKind, Sandbox, SandboxConfig};
use start_schemas::trajectory::{GenerationParams, HintSettings, Mode};
use start_tests::llama_server::LlamaServer;
use start_tests::server::TestServer;
use start_tests::vllm::VllmServer;
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

/// A request and the opening its model "writes" first.
#[derive(Clone, Debug)]
pub struct Req {
    pub gen: GenRequest,
    pub opening: String,
}

impl std::ops::Deref for Req {
    type Target = GenRequest;
    fn deref(&self) -> &GenRequest {
        &self.gen
    }
}

impl std::ops::DerefMut for Req {
    fn deref_mut(&mut self) -> &mut GenRequest {
        &mut self.gen
    }
}

pub fn request(question: &str, opening: &str, mode: Mode, max_new: u32, seed: u64) -> Req {
    Req {
        gen: GenRequest {
            user_message: question.into(),
            code_tests: None,
            mode,
            params: params(max_new),
            seed,
            hints: HintSettings {
                end_hints: 0,
                ..HintSettings::from_proto(None, HintLibrary::builtin().trigger_probability)
            },
            tools: start_schemas::tool::ToolSet::PYTHON,
            files: Vec::new(),
        },
        opening: opening.into(),
    }
}

/// A scripted engine: in process, or the OpenAI-compatible backend on a `llama-server` of its
/// own (started with the config's slots and context, killed on drop) or on the test process's
/// shared vLLM server.
pub struct TestEngine {
    pub engine: Backend,
    pub script: Script,
    pub server: Option<LlamaServer>,
    /// The server's URL (empty in process).
    pub url: String,
}

impl std::ops::Deref for TestEngine {
    type Target = Backend;
    fn deref(&self) -> &Backend {
        &self.engine
    }
}

/// Which backend a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The in-process engine.
    Llama,
    /// The OpenAI-compatible backend on llama.cpp's own server.
    OpenAi,
    /// The OpenAI-compatible backend on a real vLLM (its CPU build).
    Vllm,
}

impl Kind {
    /// Whether the model runs on a server (the OpenAI-compatible backend).
    pub fn on_a_server(self) -> bool {
        self != Kind::Llama
    }
}

/// Runs one test body on both backends, the OpenAI-compatible one on both servers:
/// `on_both_backends!(name);` makes the tests `name::llama`, `name::openai` (llama-server) and
/// `name::vllm` from `async fn name(kind: Kind)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn llama() {
                super::$name($crate::common::Kind::Llama).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn openai() {
                super::$name($crate::common::Kind::OpenAi).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn vllm() {
                super::$name($crate::common::Kind::Vllm).await
            }
        }
    )+};
}

/// A scripted engine of `kind`.
pub async fn engine_on(kind: Kind, config: EngineConfig, sb: Option<Arc<Sandbox>>) -> TestEngine {
    match kind {
        Kind::Llama => engine(config, sb),
        Kind::OpenAi | Kind::Vllm => {
            let (url, server) = if kind == Kind::Vllm {
                // Started once per test binary, off the runtime's threads (it blocks ~40 s).
                let shared = tokio::task::spawn_blocking(VllmServer::shared)
                    .await
                    .unwrap();
                (shared.url(), None)
            } else {
                let server = LlamaServer::start(config.slots, config.tir.ctx_per_slot);
                (server.url(), Some(server))
            };
            let mut c = OpenAiConfig::new(url.clone());
            c.slots = config.slots;
            c.tir = config.tir.clone();
            let script = Script::default();
            let engine = OpenAiEngine::start_scripted(c, script.clone(), sb)
                .await
                .unwrap();
            TestEngine {
                engine: Backend::OpenAi(engine),
                script,
                server,
                url,
            }
        }
    }
}

impl TestEngine {
    /// Queues `req`, its opening first.
    pub fn submit(
        &self,
        req: Req,
    ) -> tokio::sync::oneshot::Receiver<Result<GenOutput, EngineError>> {
        if !req.opening.is_empty() {
            self.script.open(req.gen.seed, &req.opening);
        }
        self.engine.submit(req.gen)
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

/// The Docker sandbox (the image has pandas, pyarrow and matplotlib, which the host's Python
/// the process backend runs need not). Two start at a time: a dozen tests start one each, and
/// a dozen fork servers preloading at once beside the servers' and engines' threads made a
/// loaded two-core CI machine miss the ready time-out (then 60 s; a few seconds each alone).
pub async fn docker_sandbox() -> Arc<Sandbox> {
    static STARTING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
    let _turn = STARTING.acquire().await.expect("never closed");
    Arc::new(
        Sandbox::start(SandboxConfig {
            backend: BackendKind::Docker,
            pool_size: 1,
            ..SandboxConfig::default()
        })
        .await
        .expect("the Docker sandbox (run scripts/setup)"),
    )
}

/// The in-process engine on one thread: tests run side by side, and llama.cpp's threads spin
/// at every operation's barrier, so engines each on every core slow each other down many
/// times over (three 16-trajectory runs at once on two cores: 167 s on two threads each, 11 s
/// on one).
pub fn engine(mut config: EngineConfig, sb: Option<Arc<Sandbox>>) -> TestEngine {
    config.threads = 1;
    let script = Script::default();
    let engine = Engine::start_scripted(
        config,
        script.clone(),
        sb,
        tokio::runtime::Handle::current(),
    )
    .unwrap();
    TestEngine {
        engine: Backend::Llama(engine),
        script,
        server: None,
        url: String::new(),
    }
}

pub async fn run(engine: &TestEngine, req: Req) -> GenOutput {
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
