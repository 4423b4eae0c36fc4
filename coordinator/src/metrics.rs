//! The coordinator's Prometheus series. Queue depth and lease gauges are refreshed from the
//! store by a background task, because the store (not this process) holds the truth.

use crate::store::{state, Store};
use start_schemas::proto::JobState;
use start_telemetry::{Counter, Gauge, Registry};
use std::sync::Arc;
use std::time::Duration;

/// Handles to every coordinator series.
#[derive(Clone)]
pub struct CoordinatorMetrics {
    /// Where the series live.
    pub registry: Registry,
    /// Jobs accepted.
    pub jobs_submitted: Counter,
    /// Units handed out.
    pub leases: Counter,
    /// Trajectories in accepted shards.
    pub trajectories: Counter,
    /// Correct trajectories in accepted shards.
    pub correct: Counter,
    /// Completion tokens in accepted shards (rate() gives cluster tokens/s).
    pub tokens: Counter,
    /// Code executions in accepted shards.
    pub tool_calls: Counter,
    /// Trajectories in accepted shards that ended with `finish_reason = error`.
    pub errored: Counter,
    /// Units waiting for a worker, over active jobs.
    pub queue_depth: Gauge,
    /// Units leased now, over active jobs.
    pub leased: Gauge,
    /// Lease expirations over the listed jobs.
    pub expirations: Gauge,
    /// Active (queued or running) jobs.
    pub active_jobs: Gauge,
    /// Committed-trajectory accuracy over active and recent jobs, in per mille.
    pub accuracy_permille: Gauge,
    /// Units of the active jobs (with `units_done`, their progress; with the rate of
    /// accepted reports, an ETA).
    pub units_total: Gauge,
    /// Of which done.
    pub units_done: Gauge,
}

/// Outcomes of a unit report; each is registered at start so a rate reads 0 before the
/// first report of its kind.
pub const REPORT_OUTCOMES: [&str; 3] = ["accepted", "refused", "failed"];

/// Types of [`crate::store::StoreError::error_type`], registered at start like the outcomes.
pub const STORE_ERROR_TYPES: [&str; 5] = [
    "backend",
    "unknown_worker",
    "unknown_job",
    "job_exists",
    "corrupt",
];

impl CoordinatorMetrics {
    /// Registers the series in `registry`.
    pub fn new(registry: Registry) -> Self {
        let r = &registry;
        let m = Self {
            jobs_submitted: r.counter("start_jobs_submitted_total", "Jobs accepted."),
            leases: r.counter(
                "start_leases_granted_total",
                "Work units handed to workers.",
            ),
            trajectories: r.counter(
                "start_trajectories_committed_total",
                "Trajectories in accepted shards.",
            ),
            correct: r.counter(
                "start_trajectories_correct_total",
                "Correct trajectories in accepted shards.",
            ),
            tokens: r.counter(
                "start_completion_tokens_total",
                "Completion tokens in accepted shards.",
            ),
            tool_calls: r.counter(
                "start_tool_calls_total",
                "Code executions in accepted shards.",
            ),
            errored: r.counter(
                "start_trajectories_errored_total",
                "Trajectories in accepted shards cut short by the infrastructure \
                 (finish_reason = error); not graded, never exported.",
            ),
            queue_depth: r.gauge("start_queue_depth_units", "Units waiting for a worker."),
            leased: r.gauge("start_units_leased", "Units leased now."),
            expirations: r.gauge(
                "start_lease_expirations",
                "Lease expirations over recent jobs.",
            ),
            active_jobs: r.gauge("start_jobs_active", "Queued or running jobs."),
            accuracy_permille: r.gauge(
                "start_accuracy_permille",
                "Accuracy of committed trajectories over recent jobs, per mille.",
            ),
            units_total: r.gauge(
                "start_job_units",
                "Work units of the queued and running jobs.",
            ),
            units_done: r.gauge(
                "start_job_units_done",
                "Of which done (their shards accepted).",
            ),
            registry,
        };
        for outcome in REPORT_OUTCOMES {
            m.report_counter(outcome);
        }
        for error_type in STORE_ERROR_TYPES {
            m.store_error_counter(error_type);
        }
        m
    }

    /// Counts a report by outcome (`accepted`, `refused`, `failed`).
    pub fn report(&self, outcome: &str) {
        self.report_counter(outcome).inc();
    }

    fn report_counter(&self, outcome: &str) -> Counter {
        self.registry.counter_with(
            "start_reports_total",
            "Unit reports by outcome.",
            Some(("outcome", outcome)),
        )
    }

    /// Counts a store error by type.
    pub fn store_error(&self, error_type: &str) {
        self.store_error_counter(error_type).inc();
    }

    fn store_error_counter(&self, error_type: &str) -> Counter {
        self.registry.counter_with(
            "start_store_errors_total",
            "Store errors by type.",
            Some(("type", error_type)),
        )
    }

    /// Refreshes the gauges from the store every `every` until the task is dropped.
    pub async fn refresh(self, store: Arc<dyn Store>, every: Duration) {
        loop {
            if let Ok(jobs) = store.list_jobs(200).await {
                let (mut queued, mut leased, mut expired, mut active, mut n, mut ok) =
                    (0i64, 0i64, 0i64, 0i64, 0u64, 0u64);
                let (mut units, mut done) = (0i64, 0i64);
                for j in &jobs {
                    let c = j.counters.unwrap_or_default();
                    expired += c.lease_expirations as i64;
                    n += c.trajectories;
                    ok += c.correct;
                    if !state::is_terminal(JobState::try_from(j.state).unwrap_or_default()) {
                        active += 1;
                        units += c.units_total as i64;
                        done += c.units_done.min(c.units_total) as i64;
                        leased += c.units_leased as i64;
                        queued += (c.units_total - c.units_done.min(c.units_total)) as i64
                            - c.units_leased as i64;
                    }
                }
                self.queue_depth.set(queued.max(0));
                self.leased.set(leased);
                self.expirations.set(expired);
                self.active_jobs.set(active);
                self.units_total.set(units);
                self.units_done.set(done);
                if let Some(permille) = (ok * 1000).checked_div(n) {
                    self.accuracy_permille.set(permille as i64);
                }
            }
            tokio::time::sleep(every).await;
        }
    }
}
