//! start-engine: the Hint-infer tool loop, one core driven by two backends.
//!
//! [`machine`] is the core: one trajectory's mechanics (hints at trigger words and at the end
//! of thinking, code blocks and their tool calls, the limits) as a state machine without I/O.
//! Two drivers carry its actions out:
//! - in process: the llama context is not `Send`, so it lives on one dedicated thread
//!   ([`Engine`]) fed by a channel, which runs continuous batching over S sequence slots
//!   ([`scheduler`]). Each decode step carries one token for every generating slot plus prefill
//!   chunks for slots that are starting or resuming, within `n_batch` ([`batch`]); a slot whose
//!   block is in the sandbox waits while the others decode ([`tools`]); [`step`] samples a
//!   slot's token and carries out what its core decides on the KV stream.
//! - [`openai`]: an OpenAI-compatible server (vLLM, SGLang, llama-server), one streamed request
//!   per stretch of generation, resent from the row after every insertion.
//!
//! The whole trajectory is kept as the exact tokens fed and sampled, never re-rendered through
//! a chat template ([`trajectory`]).
//!
//! Modules, one concept each: [`config`] (settings: [`TirConfig`] for both backends),
//! [`request`] (what is asked and returned), [`info`] (what a backend reports), [`engine`] (the
//! handle), [`scheduler`] (the thread's loop), [`batch`] (planning a step), [`slot`] (a sequence
//! slot and its states), [`sharing`] (admission and prompt sharing), [`step`] (the in-process
//! driver), [`hints`] (the hint library), [`fence`] (finding code blocks), [`tool`] (the tool
//! registry: Python, SQL), [`tools`] (the in-process tool calls), [`trajectory`] (the row
//! builder), [`template`] (chat templates as Jinja), [`llama`] (the llama.cpp calls);
//! [`backend`] is what a caller holds: either of the two.

pub mod backend;
mod batch;
pub mod config;
pub mod engine;
pub mod fence;
pub mod hints;
pub mod info;
mod llama;
mod machine;
pub mod openai;
pub mod request;
mod scheduler;
#[cfg(feature = "scripted")]
pub mod script;
mod sharing;
mod slot;
mod step;
mod template;
pub mod tool;
mod tools;
mod trajectory;

pub use backend::Backend;
pub use config::{EngineConfig, TirConfig};
pub use engine::Engine;
pub use hints::{HintContext, HintLibrary};
pub use info::{ModelInfo, Stats};
pub use llama::backend;
pub use llama_cpp_2;
pub use openai::{OpenAiConfig, OpenAiEngine, ServerIdentity};
pub use request::{EngineError, GenOutput, GenRequest};
