//! start-engine: batched llama.cpp generation with the Hint-infer tool loop.
//!
//! The llama context is not `Send`, so it lives on one dedicated thread ([`Engine`]) fed by a
//! channel. That thread runs continuous batching over S sequence slots ([`scheduler`]). Each
//! decode step carries one token for every generating slot plus prefill chunks for slots that
//! are starting or resuming, within `n_batch` ([`batch`]). A slot whose code block is running in
//! the sandbox is paused while the others keep decoding ([`tools`]). The whole trajectory is
//! kept as the exact tokens fed and sampled, never re-rendered through a chat template
//! ([`trajectory`]).
//!
//! Modules, one concept each: [`config`] (settings), [`request`] (what is asked and returned),
//! [`engine`] (the handle), [`scheduler`] (the thread's loop), [`batch`] (planning a step),
//! [`slot`] (a sequence slot and its states), [`sharing`] (admission and prompt sharing),
//! [`step`] (a slot's next token and what it means), [`insertion`] (where hints go and the
//! rollback they need), [`hints`] (the hint library), [`fence`] (finding code blocks),
//! [`tool`] (the tool registry: Python, SQL), [`tools`] (tool dispatch and resumption), [`trajectory`] (the trajectory builder),
//! [`llama`] (the llama.cpp calls); [`openai`] drives an OpenAI-compatible server with the same
//! loop, and [`backend`] is what a caller holds: either of the two.

pub mod backend;
mod batch;
pub mod config;
pub mod engine;
pub mod fence;
pub mod hints;
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
pub use engine::{Engine, ModelInfo, Stats};
pub use hints::{HintContext, HintLibrary};
pub use llama::backend;
pub use llama_cpp_2;
pub use openai::{OpenAiConfig, OpenAiEngine, ServerIdentity};
pub use request::{EngineError, GenOutput, GenRequest};
