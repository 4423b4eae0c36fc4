//! The contracts of start, in one crate so that every binary speaks the same language.
//!
//! - [`proto`]: the gRPC messages and services of `proto/start/v1`, the wire contract between
//!   startctl, the coordinator and the workers.
//! - [`problem`] and [`validate`]: the input, one problem a row, read as a stream from JSONL
//!   (optionally gzipped) or Parquet, with every error located as `file:line: field: message`;
//!   [`attachment`]: the data files a problem may bring (CSV, Parquet, SQLite).
//! - [`tool`]: the names of the tools a model can call (`python`, `sql`), as jobs enable them.
//! - [`trajectory`]: the output, one trajectory a row, with its Arrow schema; [`sft`]: the rows
//!   export hands to a trainer. Shards, manifests and reading a dataset back are the
//!   `start-dataset` crate's (`dataset/`).
//! - [`answer`]: answer extraction shared by importers and graders; [`model`]: the default
//!   model; [`ids`]: typed identifiers; [`file`]: errors naming a Parquet file; [`rows`]:
//!   streaming row sources (JSONL, Parquet, CSV); [`client`]: how clients reach a coordinator.

pub mod answer;
pub mod attachment;
pub mod client;
pub mod file;
pub mod ids;
pub mod model;
pub mod problem;
pub mod proto;
pub mod rows;
pub mod sft;
pub mod tool;
pub mod trajectory;
pub mod validate;

pub use ids::{LeaseId, MalformedId, ProblemId, UnitId};

/// Version of the worker protocol; every worker call carries it and a mismatch is refused
/// with `FAILED_PRECONDITION`, so that a half-upgraded cluster fails loudly instead of
/// exchanging misread messages.
pub const PROTOCOL_VERSION: u32 = 1;
