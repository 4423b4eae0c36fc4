//! The two ways a worker generates: the in-process llama.cpp engine ([`Engine`], the default
//! and the embedded path) or an OpenAI-compatible server ([`OpenAiEngine`]). Both take the
//! same requests and give the same trajectories; the pipeline only sees this.

use crate::engine::Engine;
use crate::info::{ModelInfo, Stats};
use crate::openai::OpenAiEngine;
use crate::request::{EngineError, GenOutput, GenRequest};

/// A backend.
pub enum Backend {
    /// llama.cpp in this process, on a GGUF file.
    Llama(Engine),
    /// An OpenAI-compatible server.
    OpenAi(OpenAiEngine),
}

impl Backend {
    /// Queues a trajectory; the receiver gets it when it is done.
    pub fn submit(
        &self,
        request: GenRequest,
    ) -> tokio::sync::oneshot::Receiver<Result<GenOutput, EngineError>> {
        match self {
            Self::Llama(e) => e.submit(request),
            Self::OpenAi(e) => e.submit(request),
        }
    }

    /// The model.
    pub fn info(&self) -> &ModelInfo {
        match self {
            Self::Llama(e) => &e.info,
            Self::OpenAi(e) => &e.info,
        }
    }

    /// Progress counters.
    pub fn stats(&self) -> &Stats {
        match self {
            Self::Llama(e) => e.stats(),
            Self::OpenAi(e) => e.stats(),
        }
    }

    /// The name recorded on rows: `llama.cpp` or `openai`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Llama(_) => "llama.cpp",
            Self::OpenAi(_) => "openai",
        }
    }

    /// Whether it can generate now: always for the in-process engine, the server's last
    /// health probe for a server.
    pub fn healthy(&self) -> bool {
        match self {
            Self::Llama(_) => true,
            Self::OpenAi(e) => e.healthy(),
        }
    }

    /// Stops taking requests and waits for those in flight (see each backend's `shutdown`).
    /// Blocks the calling thread.
    pub fn shutdown(&self) {
        match self {
            Self::Llama(e) => e.shutdown(),
            Self::OpenAi(e) => e.shutdown(),
        }
    }
}
