//! The coordinator's state, behind one trait so that Redis and the in-process map pass the same
//! suite (`tests/store.rs`).
//!
//! Every operation is atomic on its own: a lease, an extension, a report or a cancellation
//! either happens whole or not at all, whatever other coordinators and workers do at the same
//! time. The coordinator itself keeps nothing between calls, so it can be killed at any moment.
//!
//! Time is the store's too: no operation takes a "now" from its caller. Lease expiry is judged
//! on the store's clock ([`crate::lease`]), so coordinators with skewed clocks agree.

pub use crate::lease::LeaseRequest;
pub use crate::unit::NewJob;
use start_schemas::proto;
use std::time::Duration;

/// What can go wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backing service failed or could not be reached.
    #[error("store backend ({backend}): {message}")]
    Backend {
        /// Which store.
        backend: &'static str,
        /// What it said.
        message: String,
    },
    /// A worker called without being registered (for example after the store was wiped).
    #[error("worker {0} is not registered; register again")]
    UnknownWorker(String),
    /// A job id that the store does not hold.
    #[error("job {0} not found")]
    UnknownJob(String),
    /// A job id that is already taken.
    #[error("job {0} already exists")]
    JobExists(String),
    /// Stored bytes that do not decode: a bug or a foreign writer under the same key prefix.
    #[error("corrupt record {key}: {message}")]
    Corrupt {
        /// The key or field.
        key: String,
        /// What failed.
        message: String,
    },
}

impl StoreError {
    /// A stable label per variant, for metrics.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Backend { .. } => "backend",
            Self::UnknownWorker(_) => "unknown_worker",
            Self::UnknownJob(_) => "unknown_job",
            Self::JobExists(_) => "job_exists",
            Self::Corrupt { .. } => "corrupt",
        }
    }
}

/// Tunables that the store applies inside its atomic operations.
#[derive(Clone, Debug)]
pub struct StorePolicy {
    /// Failed attempts of one unit (reported errors) before its job fails.
    pub max_unit_failures: u32,
}

impl Default for StorePolicy {
    fn default() -> Self {
        Self {
            max_unit_failures: 3,
        }
    }
}

/// The state behind a coordinator.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// A short name for logs and errors (`redis`, `memory`).
    fn backend(&self) -> &'static str;

    /// Answers when the store can serve (readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Stores a job and queues its units.
    async fn create_job(&self, job: NewJob) -> Result<(), StoreError>;

    /// One job.
    async fn get_job(&self, job_id: &str) -> Result<Option<proto::Job>, StoreError>;

    /// The newest `limit` jobs, newest first.
    async fn list_jobs(&self, limit: usize) -> Result<Vec<proto::Job>, StoreError>;

    /// Cancels a job that has not ended; returns it as it is afterwards.
    async fn cancel_job(&self, job_id: &str, reason: &str) -> Result<proto::Job, StoreError>;

    /// Records a worker (a new id each time).
    async fn register_worker(
        &self,
        worker_id: &str,
        registration: &proto::RegisterWorkerRequest,
    ) -> Result<(), StoreError>;

    /// The worker registry, most recently seen first.
    async fn list_workers(&self) -> Result<Vec<proto::WorkerInfo>, StoreError>;

    /// Returns expired leases to the queue, then hands out up to `max_units` units whose job
    /// wants the caller's model.
    async fn lease(&self, request: &LeaseRequest) -> Result<Vec<proto::WorkUnit>, StoreError>;

    /// Extends the caller's leases; returns those that are no longer valid.
    async fn extend(
        &self,
        worker_id: &str,
        lease_ids: &[String],
        ttl: Duration,
    ) -> Result<Vec<String>, StoreError>;

    /// Gives leases back unfinished; their units are queued again at once.
    async fn release(&self, worker_id: &str, lease_ids: &[String]) -> Result<(), StoreError>;

    /// Records a finished (or failed) unit if the caller holds its lease. A repeat of an
    /// accepted report under the same lease is accepted again and changes nothing.
    async fn report(
        &self,
        worker_id: &str,
        report: &proto::UnitReport,
    ) -> Result<proto::ReportOutcome, StoreError>;

    /// The job's manifest as the store holds it: one shard per done unit, in unit order.
    async fn job_shards(&self, job_id: &str) -> Result<Vec<proto::ShardInfo>, StoreError>;
}

/// Job states as stored.
pub mod state {
    use start_schemas::proto::JobState;

    /// The stored name of a state.
    pub fn name(s: JobState) -> &'static str {
        match s {
            JobState::Unspecified => "unspecified",
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// The state of a stored name.
    pub fn parse(s: &str) -> JobState {
        match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            _ => JobState::Unspecified,
        }
    }

    /// Whether a job in state `s` has ended.
    pub fn is_terminal(s: JobState) -> bool {
        matches!(
            s,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}
