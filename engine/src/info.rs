//! What a backend reports, in process or on a server: the model it serves and its progress
//! counters.

/// Facts about the loaded model.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    /// File name.
    pub name: String,
    /// Training context length.
    pub n_ctx_train: u32,
    /// Hex sha256 of the hint library in use.
    pub hint_library_sha256: String,
    /// The hint library's trigger probability, for jobs that give none.
    pub default_trigger_probability: f64,
}

/// Counters for progress and benchmarks.
#[derive(Default, Debug)]
pub struct Stats {
    /// Tokens sampled by the model.
    pub generated: std::sync::atomic::AtomicU64,
    /// Tokens prefilled (prompts, hints, tool outputs).
    pub prefilled: std::sync::atomic::AtomicU64,
    /// Decode calls.
    pub decodes: std::sync::atomic::AtomicU64,
    /// Prompt tokens not prefilled because another sample's cache was copied.
    pub shared: std::sync::atomic::AtomicU64,
    /// Prompt tokens actually prefilled.
    pub prompt_fed: std::sync::atomic::AtomicU64,
    /// Nanoseconds spent inside llama.cpp's decode.
    pub decode_nanos: std::sync::atomic::AtomicU64,
    /// Trajectories dropped because their caller stopped waiting.
    pub abandoned: std::sync::atomic::AtomicU64,
    /// Throwaway tokens fed to fill gaps between slots (see [`crate::EngineConfig::pad_gaps`]).
    pub padded: std::sync::atomic::AtomicU64,
    /// Slot time in use, nanoseconds summed over slots: in process, each decode step's time
    /// for every slot it fed; on a server, requests streaming (a trajectory running its block
    /// holds no slot). Over slots x wall time, the occupancy.
    pub slot_busy_nanos: std::sync::atomic::AtomicU64,
}
