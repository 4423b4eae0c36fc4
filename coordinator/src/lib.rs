//! start-coordinator: the gRPC coordinator: jobs and leases in Redis, shards recorded exactly once.
//!
//! Not built yet: this crate holds its place in the workspace so that the contracts in
//! `start-schemas` are compiled against every member from the start. Its service arrives with
//! its own issue; until then the binary says so and exits with status 2, never pretending to run.

/// The message the binary prints until the service exists.
pub const NOT_BUILT: &str =
    "start-coordinator is not built yet: it arrives with its own issue (see README.md, \"Status\")";
