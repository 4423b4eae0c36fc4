//! start-worker: leases work units from the coordinator, generates their trajectories with the
//! engine (llama.cpp, Hint-infer tool loop, sandbox), grades them, commits one Parquet shard per
//! unit and reports it.
//!
//! - [`pipeline`]: one trajectory end to end; shared with `startctl generate`.
//! - [`worker`]: the poll loop with leases, heartbeats, reports and the SIGTERM drain.

pub mod pipeline;
pub mod worker;

pub use pipeline::{JobParams, Pipeline, PipelineMetrics};
pub use worker::{run, WorkerConfig, WorkerError, WorkerSummary};

/// The shard id of a unit's attempt; the coordinator expects exactly this name, so a late
/// worker's shard (another attempt) can never be mistaken for the recorded one.
pub fn shard_name(unit_id: &str, attempt: u32) -> String {
    format!("{unit_id}.a{attempt}")
}
