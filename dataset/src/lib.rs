//! The dataset store of start: Parquet shards of trajectories and the manifest that commits
//! them, on a local directory or object storage, behind one API (`object_store`).
//!
//! - [`location`]: where a dataset lives (local path, `s3://`, `gs://`, `az://`).
//! - [`layout`]: the names inside a dataset, chosen so that any Parquet reader reads exactly
//!   the committed rows.
//! - [`shard`]: encoding a shard and staging its upload.
//! - [`commit`]: the only way a staged shard enters the dataset (conditional manifest write).
//! - [`manifest`]: the manifest and its conditional update.
//! - [`reader`]: reading a dataset back.
//! - [`card`]: the `README.md` dataset card.
//! - [`inputs`]: the larger files its jobs' problems attach, kept by sha256 for the workers.
//! - [`pieces`]: a unit's finished trajectories staged one by one, so that a preempted
//!   worker's finished work survives it.
//! - [`migrate`]: datasets of the layout before object storage.

pub mod card;
pub mod commit;
mod error;
pub mod inputs;
pub mod layout;
pub mod location;
pub mod manifest;
pub mod migrate;
pub mod pieces;
pub mod reader;
pub mod shard;

pub use card::CardInfo;
pub use commit::{commit, discard, Committed};
pub use error::DatasetError;
pub use location::{DatasetLocation, StoreRoot};
pub use manifest::{Manifest, ShardEntry};
pub use reader::Dataset;
pub use shard::{EncodedShard, ShardOptions, ShardWriter};
