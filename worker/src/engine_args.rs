//! The flags that choose the engine, shared by `start-worker` and `startctl generate`/`run`
//! so that both reach the in-process engine and an OpenAI-compatible server the same way.

use crate::pipeline::{EngineChoice, PipelineError};
use start_schemas::model::default_model_path;
use std::path::PathBuf;

/// Which engine generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineKind {
    /// llama.cpp in this process, on `--model`.
    Llama,
    /// An OpenAI-compatible server (vLLM, SGLang, llama.cpp's llama-server) at `--endpoint`.
    Openai,
}

/// Engine flags.
#[derive(clap::Args, Clone, Debug)]
pub struct EngineArgs {
    /// Which engine generates.
    #[arg(long, env = "START_ENGINE", value_enum, default_value_t = EngineKind::Llama)]
    pub engine: EngineKind,
    /// GGUF model (`--engine llama`); the default model when absent.
    #[arg(long, env = "START_MODEL")]
    pub model: Option<PathBuf>,
    /// Layers offloaded to the GPU (`--engine llama`, builds with the `cuda` feature).
    #[arg(long, env = "START_GPU_LAYERS", default_value_t = 0)]
    pub gpu_layers: u32,
    /// CPU threads llama.cpp decodes with (`--engine llama`; default every core this process
    /// may use). Its threads wait for each other at every operation, so processes sharing
    /// cores must split them: two workers each on all cores of one node run far slower than
    /// either alone.
    #[arg(long, env = "START_THREADS", value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
    /// The server's URL (`--engine openai`), e.g. `http://127.0.0.1:8000`.
    #[arg(long, env = "START_ENDPOINT")]
    pub endpoint: Option<String>,
    /// File holding the server's API key (`--engine openai`), sent as a bearer token.
    #[arg(long, env = "START_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,
    /// The model name to ask the server for (`--engine openai`); its first model when absent.
    #[arg(long, env = "START_SERVED_MODEL")]
    pub served_model: Option<String>,
    /// Seconds a trajectory waits for a failed server to come back (`--engine openai`) before
    /// its unit fails and goes back to the coordinator.
    #[arg(long, env = "START_ENDPOINT_OUTAGE_S", default_value_t = 120)]
    pub endpoint_outage_s: u64,
    /// Trajectories under way at once (`--engine openai`; default twice `--slots`): those past
    /// the server's slots take the slot of one whose block runs in the sandbox, so the
    /// server's batch stays full.
    #[arg(long, env = "START_IN_FLIGHT")]
    pub in_flight: Option<usize>,
}

impl EngineArgs {
    /// The engine these flags choose; an `openai` engine without an endpoint, or an API key
    /// file that cannot be read, is an error naming the flag.
    pub fn choice(&self) -> Result<EngineChoice, PipelineError> {
        match self.engine {
            EngineKind::Llama => Ok(EngineChoice::Llama {
                model: self.model.clone().unwrap_or_else(default_model_path),
                gpu_layers: self.gpu_layers,
                threads: self.threads,
            }),
            EngineKind::Openai => {
                let endpoint =
                    self.endpoint
                        .clone()
                        .filter(|e| !e.is_empty())
                        .ok_or_else(|| {
                            PipelineError::Options("--engine openai needs --endpoint URL".into())
                        })?;
                let api_key = match &self.api_key_file {
                    Some(p) => Some(
                        std::fs::read_to_string(p)
                            .map_err(|e| {
                                PipelineError::Options(format!(
                                    "--api-key-file {}: {e}",
                                    p.display()
                                ))
                            })?
                            .trim()
                            .to_string(),
                    ),
                    None => None,
                };
                Ok(EngineChoice::OpenAi {
                    endpoint,
                    api_key,
                    served_model: self.served_model.clone(),
                    outage_timeout: std::time::Duration::from_secs(self.endpoint_outage_s),
                    in_flight: self.in_flight,
                })
            }
        }
    }

    /// What the engine is, for messages: the model file or the endpoint.
    pub fn describe(&self) -> String {
        match self.engine {
            EngineKind::Llama => self
                .model
                .clone()
                .unwrap_or_else(default_model_path)
                .display()
                .to_string(),
            EngineKind::Openai => self.endpoint.clone().unwrap_or_default(),
        }
    }
}
