//! The worker loop: register, then poll. Each poll carries free capacity, the leases held (which
//! extends them) and the reports of finished units; it returns new units, revoked leases and the
//! outcome of each report. Units run as tasks under a guard that always reports
//! ([`crate::unit`]); they write and atomically commit their shard, and the coordinator records
//! it in the manifest only if the lease is still held. The loop's state is one struct with a
//! method per step (wait, register, poll, apply, spawn), in the manner of mini-redis's listener.

use crate::pipeline::Pipeline;
use crate::unit::{guarded, PipelineUnits, Progress, ProgressTx, Units};
use start_schemas::client::{Bearer, NotFound};
use start_schemas::proto::{self, worker_service_client::WorkerServiceClient};
use start_schemas::PROTOCOL_VERSION;
use start_telemetry::{Counter, Gauge, Registry};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// Worker settings.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Coordinator URL (`http://host:50051`, or `https://` with TLS).
    pub coordinator: String,
    /// Bearer token for every call.
    pub token: Option<String>,
    /// PEM CA certificate that signed the coordinator's TLS certificate.
    pub tls_ca: Option<Vec<u8>>,
    /// Host or pod name, for humans.
    pub hostname: String,
    /// Engine slots (reported at registration; sizes the backlog).
    pub slots: u32,
    /// Concurrent sandbox executions (reported at registration).
    pub sandbox_capacity: u32,
    /// Trajectories kept queued or running per slot: above 1 so slots never idle between units.
    pub backlog_per_slot: u32,
    /// How long a draining worker may finish its units before giving the rest back.
    pub drain_timeout: Duration,
    /// The shared dataset store (a directory or an object-store URL); output paths resolve
    /// under it.
    pub store_root: start_dataset::StoreRoot,
}

impl WorkerConfig {
    /// Defaults for a coordinator at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            coordinator: url.into(),
            token: None,
            tls_ca: None,
            hostname: std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into()),
            slots: 4,
            sandbox_capacity: 4,
            backlog_per_slot: 2,
            drain_timeout: Duration::from_secs(120),
            store_root: start_dataset::StoreRoot::parse(".").expect("'.' is a store root"),
        }
    }
}

/// What ends a worker with an error.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The coordinator URL or TLS settings are unusable.
    #[error(transparent)]
    Endpoint(#[from] start_schemas::client::EndpointError),
    /// The coordinator refused this worker for good (wrong token, protocol version, bad model).
    #[error("the coordinator refused this worker: {0}")]
    Refused(Status),
}

/// What a worker did, returned when it stops.
#[derive(Clone, Debug, Default)]
pub struct WorkerSummary {
    /// Units whose shard was recorded.
    pub units_accepted: u64,
    /// Reports the coordinator refused (lease lost).
    pub units_refused: u64,
    /// Units abandoned because their lease was revoked.
    pub units_revoked: u64,
    /// Leases given back unfinished when the drain ran out of time.
    pub units_released: u64,
}

/// A worker-API client with the token attached.
pub type Client = WorkerServiceClient<InterceptedService<Channel, Bearer>>;

/// A client for the worker API (also used by tests and the load generator).
pub fn connect(config: &WorkerConfig) -> Result<Client, WorkerError> {
    let (channel, bearer) = start_schemas::client::channel(
        &config.coordinator,
        config.tls_ca.as_deref(),
        config.token.as_deref(),
        Some(Duration::from_secs(60)),
    )?;
    Ok(WorkerServiceClient::with_interceptor(channel, bearer))
}

/// Series of the worker loop.
#[derive(Clone)]
struct LoopMetrics {
    units_done: Counter,
    units_refused: Counter,
    units_revoked: Counter,
    units_running: Gauge,
    poll_errors: Counter,
}

impl LoopMetrics {
    fn new(r: &Registry) -> Self {
        Self {
            units_done: r.counter(
                "start_worker_units_accepted_total",
                "Units whose shard was recorded.",
            ),
            units_refused: r.counter(
                "start_worker_units_refused_total",
                "Reports refused (lease lost).",
            ),
            units_revoked: r.counter(
                "start_worker_units_revoked_total",
                "Units abandoned on a revoked lease.",
            ),
            units_running: r.gauge("start_worker_units_running", "Units in progress."),
            poll_errors: r.counter(
                "start_worker_poll_errors_total",
                "Polls that failed (coordinator unreachable).",
            ),
        }
    }
}

/// A unit in progress.
struct Running {
    unit_id: String,
    trajectories: u64,
    done: u64,
    handle: JoinHandle<()>,
}

/// Runs the worker until `shutdown` resolves and the drain ends: units generated by `pipeline`.
pub async fn run(
    config: WorkerConfig,
    pipeline: Arc<Pipeline>,
    registry: Registry,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()>,
) -> Result<WorkerSummary, WorkerError> {
    let units = Arc::new(PipelineUnits {
        pipeline,
        store_root: config.store_root.clone(),
    });
    run_units(config, units, registry, ready, shutdown).await
}

/// Runs the worker with any [`Units`].
pub async fn run_units(
    config: WorkerConfig,
    units: Arc<dyn Units>,
    registry: Registry,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()>,
) -> Result<WorkerSummary, WorkerError> {
    let (done_tx, done_rx) = tokio::sync::mpsc::unbounded_channel();
    let (progress_tx, progress_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut w = PollLoop {
        client: connect(&config)?,
        metrics: LoopMetrics::new(&registry),
        config,
        units,
        ready,
        summary: WorkerSummary::default(),
        running: HashMap::new(),
        reports: Vec::new(),
        datasets: HashMap::new(),
        registered: None,
        draining: None,
        backoff: Duration::from_millis(200),
        next_poll: Instant::now(),
        done_tx,
        done_rx,
        progress_tx,
        progress_rx,
    };
    tokio::pin!(shutdown);
    loop {
        w.wait(&mut shutdown).await;
        match w.step().await? {
            Next::Poll => {}
            Next::Stop => break,
        }
    }
    for (_, unit) in w.running.drain() {
        unit.handle.abort();
    }
    w.ready.store(false, Ordering::Relaxed);
    Ok(w.summary)
}

/// What the loop does after a step.
enum Next {
    /// Wait for the next poll.
    Poll,
    /// The drain is over, or the coordinator is gone for good while draining.
    Stop,
}

/// The poll loop's state.
struct PollLoop {
    config: WorkerConfig,
    client: Client,
    /// What runs the units.
    units: Arc<dyn Units>,
    metrics: LoopMetrics,
    /// Whether `/readyz` says ready: registered and not draining.
    ready: Arc<AtomicBool>,
    summary: WorkerSummary,
    /// Units in progress, by lease id.
    running: HashMap<String, Running>,
    /// Finished units' reports not yet acknowledged; sent again until they are.
    reports: Vec<proto::UnitReport>,
    /// Each running or reported lease's dataset directory, to remove a refused report's shard.
    datasets: HashMap<String, start_dataset::DatasetLocation>,
    /// This worker's id and lease TTL, once registered (again after a coordinator whose store
    /// forgot it).
    registered: Option<(String, Duration)>,
    /// When a drain must give the remaining leases back.
    draining: Option<Instant>,
    backoff: Duration,
    /// When the next poll is due. A deadline, not a duration: progress messages wake the loop
    /// often, and a sleep restarted on each would postpone the heartbeat past the lease.
    next_poll: Instant,
    done_tx: tokio::sync::mpsc::UnboundedSender<proto::UnitReport>,
    done_rx: tokio::sync::mpsc::UnboundedReceiver<proto::UnitReport>,
    progress_tx: ProgressTx,
    progress_rx: tokio::sync::mpsc::UnboundedReceiver<Progress>,
}

impl PollLoop {
    /// Waits until a poll is due or a unit finished; starts the drain on `shutdown`.
    async fn wait(&mut self, shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>) {
        loop {
            let due = tokio::time::sleep_until(self.next_poll.into());
            if self.draining.is_none() {
                tokio::select! {
                    biased;
                    _ = shutdown.as_mut() => {
                        tracing::info!(units = self.running.len(), "draining: finishing units, leasing nothing new");
                        self.draining = Some(Instant::now() + self.config.drain_timeout);
                        self.ready.store(false, Ordering::Relaxed);
                        return;
                    }
                    Some(r) = self.done_rx.recv() => { self.reports.push(r); return; }
                    Some(Progress(lease)) = self.progress_rx.recv() => self.progressed(&lease),
                    _ = due => return,
                }
            } else {
                tokio::select! {
                    Some(r) = self.done_rx.recv() => { self.reports.push(r); return; }
                    Some(Progress(lease)) = self.progress_rx.recv() => self.progressed(&lease),
                    _ = due => return,
                }
            }
        }
    }

    fn progressed(&mut self, lease: &str) {
        if let Some(u) = self.running.get_mut(lease) {
            u.done += 1;
        }
    }

    /// One round: collect finished units, register if needed, give back what a drain cannot
    /// finish, poll, apply the answer, start the new units.
    async fn step(&mut self) -> Result<Next, WorkerError> {
        while let Ok(r) = self.done_rx.try_recv() {
            self.reports.push(r);
        }
        for r in &self.reports {
            self.running.remove(&r.lease_id);
        }
        self.metrics.units_running.set(self.running.len() as i64);
        let Some((worker_id, ttl)) = self.register().await? else {
            return Ok(if self.draining.is_some() {
                Next::Stop
            } else {
                Next::Poll
            });
        };
        if self.draining.is_some() && self.running.is_empty() && self.reports.is_empty() {
            return Ok(Next::Stop);
        }
        let released = self.release_at_deadline();
        let response = match self.poll(&worker_id, &released).await {
            Ok(r) => r,
            Err(PollFailed::Forgotten) => return Ok(Next::Poll),
            Err(PollFailed::Fatal(e)) => return Err(WorkerError::Refused(e)),
            Err(PollFailed::Retry) => {
                if let Some(deadline) = self.draining {
                    if !released.is_empty() || Instant::now() >= deadline + Duration::from_secs(30)
                    {
                        return Ok(Next::Stop);
                    }
                }
                return Ok(Next::Poll);
            }
        };
        if !released.is_empty() {
            return Ok(Next::Stop);
        }
        let got = response.units.len();
        let retry_after = response.retry_after_ms;
        self.apply(&response);
        self.spawn(response.units);
        // Poll again at once after news, else within a third of the lease to keep it alive.
        self.next_poll = Instant::now()
            + if got > 0 || !self.reports.is_empty() {
                Duration::ZERO
            } else {
                Duration::from_millis(retry_after.max(50)).min(ttl / 3)
            };
        Ok(Next::Poll)
    }

    /// This worker's registration, registering when it has none; `None` when the
    /// coordinator cannot be reached now (retried with backoff).
    async fn register(&mut self) -> Result<Option<(String, Duration)>, WorkerError> {
        if let Some(r) = &self.registered {
            return Ok(Some(r.clone()));
        }
        let (model_name, model_sha256) = self.units.model();
        let request = proto::RegisterWorkerRequest {
            protocol_version: PROTOCOL_VERSION,
            hostname: self.config.hostname.clone(),
            model_name,
            model_sha256,
            slots: self.config.slots,
            sandbox_capacity: self.config.sandbox_capacity,
            version: env!("CARGO_PKG_VERSION").to_string(),
        };
        match self.client.register_worker(request).await {
            Ok(r) => {
                let r = r.into_inner();
                let w = (r.worker_id, Duration::from_millis(r.lease_ttl_ms.max(300)));
                tracing::info!(worker = %w.0, ttl_ms = w.1.as_millis() as u64, "registered");
                self.ready.store(self.draining.is_none(), Ordering::Relaxed);
                self.registered = Some(w.clone());
                Ok(Some(w))
            }
            Err(e) if fatal(&e) => Err(WorkerError::Refused(e)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot register; retrying");
                self.metrics.poll_errors.inc();
                self.retry_later();
                Ok(None)
            }
        }
    }

    fn retry_later(&mut self) {
        self.next_poll = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(Duration::from_secs(5));
    }

    /// At the drain's deadline, the units still running are aborted and their leases given
    /// back, so that another worker takes them at once.
    fn release_at_deadline(&mut self) -> Vec<String> {
        let mut released = Vec::new();
        if let Some(deadline) = self.draining {
            if Instant::now() >= deadline && !self.running.is_empty() {
                for (lease, unit) in self.running.drain() {
                    unit.handle.abort();
                    released.push(lease);
                }
                self.summary.units_released += released.len() as u64;
            }
        }
        released
    }

    /// One poll: free capacity, held leases (extended), reports, released leases.
    async fn poll(
        &mut self,
        worker_id: &str,
        released: &[String],
    ) -> Result<proto::LeaseWorkResponse, PollFailed> {
        let backlog: u64 = self
            .running
            .values()
            .map(|u| u.trajectories - u.done.min(u.trajectories))
            .sum();
        let capacity = u64::from(self.config.slots * self.config.backlog_per_slot.max(1));
        let request = proto::LeaseWorkRequest {
            protocol_version: PROTOCOL_VERSION,
            worker_id: worker_id.to_string(),
            free_slots: if self.units.ready() {
                capacity.saturating_sub(backlog) as u32
            } else {
                0
            },
            held_lease_ids: self.running.keys().cloned().collect(),
            reports: self.reports.clone(),
            draining: self.draining.is_some(),
            released_lease_ids: released.to_vec(),
        };
        match self.client.lease_work(request).await {
            Ok(r) => {
                self.backoff = Duration::from_millis(200);
                Ok(r.into_inner())
            }
            // Only "this worker is unknown" costs the running units; a NOT_FOUND about
            // anything else is retried like any other failed poll.
            Err(e) if NotFound::of(&e) == Some(NotFound::Worker) => {
                tracing::warn!(error = %e.message(), "the coordinator forgot this worker; registering again");
                for (_, unit) in self.running.drain() {
                    unit.handle.abort();
                }
                self.reports.clear();
                self.registered = None;
                self.next_poll = Instant::now();
                Err(PollFailed::Forgotten)
            }
            Err(e) if fatal(&e) => Err(PollFailed::Fatal(e)),
            Err(e) => {
                self.metrics.poll_errors.inc();
                tracing::warn!(code = ?e.code(), error = %e.message(), "poll failed; retrying with the same reports");
                self.retry_later();
                Err(PollFailed::Retry)
            }
        }
    }

    /// What the answer says about reports (recorded or refused) and leases (revoked).
    fn apply(&mut self, response: &proto::LeaseWorkResponse) {
        for outcome in &response.report_outcomes {
            let Some(i) = self
                .reports
                .iter()
                .position(|r| r.unit_id == outcome.unit_id)
            else {
                continue;
            };
            let report = self.reports.remove(i);
            if outcome.accepted && report.error.is_empty() {
                self.summary.units_accepted += 1;
                self.metrics.units_done.inc();
                tracing::info!(unit = %report.unit_id, rows = report.shard.as_ref().map_or(0, |s| s.rows), "unit recorded");
                // Its shard is committed: the trajectories staged one by one are not needed.
                if let Some(dataset) = self.datasets.get(&report.lease_id) {
                    let (dataset, unit) = (dataset.clone(), report.unit_id.clone());
                    tokio::spawn(async move {
                        if let Err(e) = start_dataset::pieces::clear(&dataset, &unit).await {
                            tracing::warn!(error = %e, unit = %unit, "cannot delete a committed unit's staged trajectories");
                        }
                    });
                }
            } else if !outcome.accepted {
                self.summary.units_refused += 1;
                self.metrics.units_refused.inc();
                tracing::warn!(unit = %report.unit_id, reason = %outcome.reason, "report refused");
                // Never committed, so nobody reads it: remove the staged upload.
                if let (Some(shard), Some(dataset)) =
                    (&report.shard, self.datasets.get(&report.lease_id))
                {
                    if let Some(id) = start_dataset::layout::shard_id_of(&shard.path) {
                        let (dataset, id) = (dataset.clone(), id.to_string());
                        tokio::spawn(async move {
                            if let Err(e) = start_dataset::discard(&dataset, &id).await {
                                tracing::warn!(error = %e, "cannot delete a refused shard");
                            }
                        });
                    }
                }
            }
            self.datasets.remove(&report.lease_id);
        }
        for lease in &response.revoked_lease_ids {
            self.datasets.remove(lease);
            if let Some(unit) = self.running.remove(lease) {
                unit.handle.abort();
                self.summary.units_revoked += 1;
                self.metrics.units_revoked.inc();
                tracing::warn!(unit = %unit.unit_id, "lease revoked; unit abandoned");
            }
        }
    }

    /// Starts newly leased units, each under the guard that always reports.
    fn spawn(&mut self, units: Vec<proto::WorkUnit>) {
        for unit in units {
            let samples = unit
                .spec
                .as_ref()
                .and_then(|s| s.params.as_ref())
                .map_or(1, |p| p.samples.max(1));
            let trajectories = unit.problems.len() as u64 * u64::from(samples);
            let lease = unit.lease_id.clone();
            let unit_id = unit.unit_id.clone();
            tracing::info!(unit = %unit_id, attempt = unit.attempt, trajectories, "unit leased");
            if let Some(dataset) = unit
                .spec
                .as_ref()
                .and_then(|spec| self.config.store_root.dataset(&spec.output_uri).ok())
            {
                self.datasets.insert(lease.clone(), dataset);
            }
            let work = self.units.run(unit.clone(), self.progress_tx.clone());
            let done = self.done_tx.clone();
            let handle = tokio::spawn(async move {
                let _ = done.send(guarded(&unit, work).await);
            });
            self.running.insert(
                lease,
                Running {
                    unit_id,
                    trajectories,
                    done: 0,
                    handle,
                },
            );
        }
    }
}

/// Why a poll did not get an answer.
enum PollFailed {
    /// The coordinator no longer knows this worker: register again.
    Forgotten,
    /// Refused for good.
    Fatal(Status),
    /// Unreachable now: retry with the same reports.
    Retry,
}

fn fatal(e: &Status) -> bool {
    matches!(
        e.code(),
        Code::Unauthenticated
            | Code::FailedPrecondition
            | Code::InvalidArgument
            | Code::PermissionDenied
    )
}
