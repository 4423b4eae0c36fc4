//! start-engine: batched llama.cpp generation with the Hint-infer tool loop.
//!
//! The llama context is not `Send`, so it lives on one dedicated thread ([`Engine`]) fed by a
//! channel. That thread runs continuous batching over S sequence slots. Each decode step
//! carries one token for every generating slot plus prefill chunks for slots that are
//! starting or resuming, within `n_batch`. A slot whose code block is running in the sandbox
//! is paused while the others keep decoding. The whole trajectory is kept as the exact tokens
//! fed and sampled, never re-rendered through a chat template.

pub mod engine;
pub mod fence;
pub mod hints;
mod slot;

pub use engine::{backend, Engine, EngineConfig, EngineError, GenOutput, GenRequest};
pub use hints::HintLibrary;
pub use llama_cpp_2;
