//! start-worker: leases work units from the coordinator, generates their trajectories with the
//! engine (llama.cpp, Hint-infer tool loop, sandbox), grades them, commits one Parquet shard per
//! unit and reports it.
//!
//! - [`engine_args`]: the flags choosing the engine (in process or an OpenAI-compatible server).
//! - [`pipeline`]: one trajectory end to end; shared with `startctl generate`.
//! - [`unit`]: a leased unit's work, and the guard that always reports it.
//! - [`worker`]: the poll loop with leases, heartbeats, reports and the SIGTERM drain.

pub mod engine_args;
pub mod pipeline;
pub mod unit;
pub mod worker;

pub use engine_args::{EngineArgs, EngineKind};
pub use pipeline::{EngineChoice, JobParams, Pipeline, PipelineMetrics, PipelineOptions};
pub use unit::{job_params, PipelineUnits, Units};
pub use worker::{run, run_units, WorkerConfig, WorkerError, WorkerSummary};
