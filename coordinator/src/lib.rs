//! start-coordinator: the gRPC coordinator. Jobs, work units, leases, the worker registry and
//! each job's shard manifest live in a [`store::Store`] (Redis in a cluster, an in-process map
//! for `startctl run`); the coordinator itself keeps nothing, so it can be killed and restarted
//! at any time and several can serve one store.
//!
//! - [`store`]: the state trait and its semantics; [`redis_store`] and [`memory`] implement it.
//! - [`spec`]: job specs and inline problems checked like files.
//! - [`unit`]: splitting a job into units; [`lease`]: leases, their nonces and their clock.
//! - [`service`]: the job and worker gRPC services; [`shard`] checks what they are told was
//!   written, [`manifest`] keeps each dataset's `manifest.json` in step with the store.
//! - [`server`]: gRPC with health and reflection, metrics and probes, graceful shutdown.

pub mod auth;
pub mod inputs;
pub mod lease;
pub mod manifest;
pub mod memory;
pub mod metrics;
pub mod redis_store;
pub mod server;
pub mod service;
pub mod shard;
pub mod spec;
pub mod store;
pub mod unit;

pub use memory::MemoryStore;
pub use redis_store::RedisStore;
pub use server::{serve, ServerConfig};
pub use service::ServiceConfig;
pub use store::{Store, StoreError, StorePolicy};
