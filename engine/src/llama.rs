//! A thin wrapper over the llama.cpp calls the engine makes: loading, tokenising, the chat
//! template, decoding, sampling, and the KV-cache operations, each of which returns a `Result`
//! so that no caller can ignore a refused rollback or copy (a trajectory whose cache and text
//! disagree would be silently wrong).

use crate::config::EngineConfig;
use crate::request::EngineError;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use start_schemas::trajectory::GenerationParams;
use std::num::NonZeroU32;

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

/// Loads the model named by `config`.
pub(crate) fn load_model(config: &EngineConfig) -> Result<LlamaModel, EngineError> {
    let model_params = LlamaModelParams::default().with_n_gpu_layers(config.gpu_layers);
    LlamaModel::load_from_file(backend()?, &config.model_path, &model_params).map_err(|e| {
        EngineError::Load {
            path: config.model_path.display().to_string(),
            message: e.to_string(),
        }
    })
}

/// The model and its context, one KV stream per slot.
pub(crate) struct Llama<'m> {
    pub model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
}

impl<'m> Llama<'m> {
    /// A context for `config.slots` sequences of `config.ctx_per_slot` tokens each.
    pub fn new(model: &'m LlamaModel, config: &EngineConfig) -> Result<Self, EngineError> {
        let slots = config.slots.max(1);
        let n_ctx = config.tir.ctx_per_slot.saturating_mul(slots as u32).max(64);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(config.n_batch)
            .with_n_ubatch(config.n_batch)
            .with_n_seq_max(slots as u32)
            // One KV stream per slot: attention then never sums over another sequence's cells,
            // so a trajectory's numbers (and tokens) do not depend on what else shares the batch.
            .with_kv_unified(false)
            .with_n_threads(config.threads)
            .with_n_threads_batch(config.threads);
        let ctx = model
            .new_context(backend()?, params)
            .map_err(|e| EngineError::Load {
                path: config.model_path.display().to_string(),
                message: e.to_string(),
            })?;
        Ok(Self { model, ctx })
    }

    /// A token's bytes.
    pub fn piece(&self, token: i32) -> Vec<u8> {
        self.model
            .vocab()
            .token_to_piece(LlamaToken(token), true, None)
    }

    /// Text's tokens, special tokens parsed.
    pub fn tokenize(&self, text: &str, add_bos: bool) -> Vec<i32> {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), add_bos, true)
            .into_iter()
            .map(|t| t.0)
            .collect()
    }

    /// Whether a token ends generation.
    pub fn is_eog(&self, token: i32) -> bool {
        self.model.vocab().is_eog(LlamaToken(token))
    }

    /// The model's chat template applied to one user message, with the generation prompt,
    /// rendered as Jinja the way the servers do ([`crate::template`]); a template that Jinja
    /// rendering refuses falls back to llama.cpp's built-in rendering of its family, said in
    /// the log.
    pub fn render(&self, user: &str) -> Result<String, EngineError> {
        let template = self
            .model
            .chat_template(None)
            .map_err(|e| EngineError::Llama(format!("chat template: {e}")))?;
        if let Ok(source) = template.to_str() {
            let text = |t: LlamaToken| {
                String::from_utf8_lossy(&self.model.vocab().token_to_piece(t, true, None))
                    .into_owned()
            };
            let vocab = self.model.vocab();
            let (bos, eos) = (text(vocab.bos()), text(vocab.eos()));
            match crate::template::render(source, user, &bos, &eos) {
                Ok(rendered) => return Ok(rendered),
                Err(e) => tracing::warn!(
                    error = %e,
                    "the chat template did not render as Jinja; using llama.cpp's built-in rendering"
                ),
            }
        }
        let msg = LlamaChatMessage::new("user".into(), user.into())
            .map_err(|e| EngineError::Llama(e.to_string()))?;
        self.model
            .apply_chat_template(&template, &[msg], true)
            .map_err(|e| EngineError::Llama(format!("chat template: {e}")))
    }

    /// A sampler chain for `params`, seeded with `seed`.
    pub fn sampler(&self, params: &GenerationParams, seed: u64) -> LlamaSampler {
        let mut chain = Vec::new();
        if params.repeat_penalty != 1.0 {
            chain.push(LlamaSampler::penalties(
                self.model.n_vocab(),
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

    /// Samples a token from the logits at batch index `at`.
    pub fn sample(&self, sampler: &mut LlamaSampler, at: i32) -> i32 {
        sampler.sample(&self.ctx, at).0
    }

    /// Decodes a batch.
    pub fn decode(&mut self, batch: &mut LlamaBatch) -> Result<(), EngineError> {
        self.ctx
            .decode(batch)
            .map_err(|e| EngineError::Llama(e.to_string()))
    }

    /// Removes sequence `seq`'s cells from position `from` on (all of them for `None`).
    pub fn kv_remove(&mut self, seq: usize, from: Option<u32>) -> Result<(), EngineError> {
        match self.ctx.clear_kv_cache_seq(Some(seq as u32), from, None) {
            Ok(true) => Ok(()),
            _ => Err(EngineError::Kv {
                seq,
                op: "removing cells",
            }),
        }
    }

    /// Replaces sequence `dst`'s stream by a copy of `src`'s.
    pub fn kv_copy(&mut self, src: usize, dst: usize) -> Result<(), EngineError> {
        self.ctx
            .copy_kv_cache_seq(src as i32, dst as i32, None, None)
            .map_err(|_| EngineError::Kv {
                seq: dst,
                op: "copying a stream",
            })
    }

    /// The last position held by sequence `seq`, or -1 when it holds none.
    pub fn kv_pos_max(&self, seq: usize) -> i32 {
        self.ctx.kv_cache_seq_pos_max(seq as i32).max(-1)
    }
}

/// The engine thread's state shared by every concept that touches the model: llama.cpp and
/// the settings.
pub(crate) struct Ctx<'m> {
    pub llama: Llama<'m>,
    pub config: EngineConfig,
    /// `config.tir`, shared with every trajectory's core.
    pub tir: std::sync::Arc<crate::config::TirConfig>,
    /// Scripted openings of requests, tests only (see [`crate::script`]).
    #[cfg(feature = "scripted")]
    pub script: Option<crate::script::Script>,
}
