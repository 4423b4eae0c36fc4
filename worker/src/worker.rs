//! The worker loop: register, then poll. Each poll carries free capacity, the leases held (which
//! extends them) and the reports of finished units; it returns new units, revoked leases and the
//! outcome of each report. Units run as tasks that write and atomically commit their shard; the
//! coordinator records the shard in the manifest only if the lease is still held.

use crate::pipeline::{JobParams, Pipeline};
use futures_util::stream::{FuturesUnordered, StreamExt};
use start_schemas::client::Bearer;
use start_schemas::proto::{self, worker_service_client::WorkerServiceClient};
use start_schemas::rows::{Location, Position};
use start_schemas::shard::{ShardOptions, ShardWriter};
use start_schemas::trajectory::{GenerationParams, HintSettings, Mode};
use start_schemas::PROTOCOL_VERSION;
use start_telemetry::{Counter, Gauge, Registry};
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
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
    /// Mount point of the shared dataset store; relative output paths resolve here.
    pub store_root: PathBuf,
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
            store_root: PathBuf::from("."),
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

struct Running {
    unit_id: String,
    trajectories: u64,
    done: u64,
    handle: JoinHandle<()>,
}

/// Converts a job spec into what the pipeline needs; hint settings the spec leaves out take
/// their defaults, the trigger probability the hint library's.
pub fn job_params(job_id: &str, spec: &proto::JobSpec, library_probability: f64) -> JobParams {
    let p = spec.params.unwrap_or_default();
    JobParams {
        job_id: job_id.to_string(),
        seed_key: if spec.name.is_empty() {
            job_id.to_string()
        } else {
            spec.name.clone()
        },
        // Specs are checked on submission, so an unspecified mode never gets here.
        mode: Mode::from_proto(spec.mode()).unwrap_or(Mode::HintInfer),
        params: GenerationParams::from(&p),
        hints: HintSettings::from_proto(spec.hints.as_ref(), library_probability),
    }
}

/// Generates a unit and commits its shard; the report says what happened.
async fn run_unit(
    pipeline: Arc<Pipeline>,
    unit: proto::WorkUnit,
    store_root: PathBuf,
    progress: tokio::sync::mpsc::UnboundedSender<Progress>,
) -> proto::UnitReport {
    let mut report = proto::UnitReport {
        unit_id: unit.unit_id.clone(),
        lease_id: unit.lease_id.clone(),
        ..Default::default()
    };
    let spec = unit.spec.clone().unwrap_or_default();
    let job = job_params(
        &unit.job_id,
        &spec,
        pipeline.engine.info.default_trigger_probability,
    );
    let samples = spec.params.as_ref().map_or(1, |p| p.samples.max(1));
    let mut problems = Vec::new();
    for (i, p) in unit.problems.iter().enumerate() {
        let location = Location {
            file: format!("unit {}", unit.unit_id),
            at: Position::Row(i as u64),
        };
        match start_schemas::validate::check_row(&p.to_row(), &location) {
            Ok(problem) => problems.push(Arc::new(problem)),
            Err(d) => {
                report.error = d
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                return report;
            }
        }
    }
    let mut pending = FuturesUnordered::new();
    for problem in &problems {
        for sample in 0..samples {
            let (pipeline, problem, job) = (pipeline.clone(), problem.clone(), job.clone());
            pending.push(async move { pipeline.trajectory(problem, sample, &job).await });
        }
    }
    let mut rows = Vec::new();
    while let Some(r) = pending.next().await {
        match r {
            Ok(t) => {
                let _ = progress.send(Progress(unit.lease_id.clone()));
                rows.push(t);
            }
            Err(e) => {
                report.error = format!("generation: {e}");
                return report;
            }
        }
    }
    rows.sort_by(|a, b| (&a.problem_id, a.sample_index).cmp(&(&b.problem_id, b.sample_index)));
    report.correct = rows.iter().filter(|t| t.correct == Some(true)).count() as u64;
    report.completion_tokens = rows.iter().map(|t| u64::from(t.completion_tokens)).sum();
    report.tool_calls = rows.iter().map(|t| t.tool_calls.len() as u64).sum();
    let dataset = store_root.join(&spec.output_uri);
    let shard = crate::shard_name(&unit.unit_id, unit.attempt);
    let written = tokio::task::spawn_blocking(move || {
        let mut w = ShardWriter::create(&dataset, &shard, &ShardOptions::default())?;
        w.write(&rows)?;
        w.finish()
    })
    .await;
    match written {
        Ok(Ok(entry)) => {
            report.shard = Some(proto::ShardInfo {
                path: entry.path,
                rows: entry.rows,
                sha256: entry.sha256,
                bytes: entry.bytes,
                schema_version: entry.schema_version,
            })
        }
        Ok(Err(e)) => report.error = format!("shard: {e}"),
        Err(e) => report.error = format!("shard writer: {e}"),
    }
    report
}

struct Progress(String);

/// Runs the worker until `shutdown` resolves and the drain ends.
pub async fn run(
    config: WorkerConfig,
    pipeline: Arc<Pipeline>,
    registry: Registry,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()>,
) -> Result<WorkerSummary, WorkerError> {
    let metrics = LoopMetrics::new(&registry);
    let mut client = connect(&config)?;
    let mut summary = WorkerSummary::default();
    tokio::pin!(shutdown);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<proto::UnitReport>();
    let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel::<Progress>();
    let mut running: HashMap<String, Running> = HashMap::new();
    let mut reports: Vec<proto::UnitReport> = Vec::new();
    // Each running or reported lease's dataset directory, to remove a refused report's shard.
    let mut datasets: HashMap<String, PathBuf> = HashMap::new();
    let mut worker: Option<(String, Duration)> = None;
    let mut draining: Option<Instant> = None;
    let mut backoff = Duration::from_millis(200);
    // When the next poll is due. A deadline, not a duration: progress messages wake the loop
    // often, and a sleep restarted on each would postpone the heartbeat past the lease.
    let mut next_poll = Instant::now();
    loop {
        if draining.is_none() {
            tokio::select! {
                biased;
                _ = &mut shutdown => {
                    tracing::info!(units = running.len(), "draining: finishing units, leasing nothing new");
                    draining = Some(Instant::now() + config.drain_timeout);
                    ready.store(false, Ordering::Relaxed);
                }
                Some(r) = done_rx.recv() => reports.push(r),
                Some(Progress(lease)) = progress_rx.recv() => {
                    if let Some(u) = running.get_mut(&lease) { u.done += 1; }
                    continue;
                }
                _ = tokio::time::sleep_until(next_poll.into()) => {}
            }
        } else {
            tokio::select! {
                Some(r) = done_rx.recv() => reports.push(r),
                Some(Progress(lease)) = progress_rx.recv() => {
                    if let Some(u) = running.get_mut(&lease) { u.done += 1; }
                    continue;
                }
                _ = tokio::time::sleep_until(next_poll.into()) => {}
            }
        }
        while let Ok(r) = done_rx.try_recv() {
            reports.push(r);
        }
        for r in &reports {
            running.remove(&r.lease_id);
        }
        metrics.units_running.set(running.len() as i64);
        // Registration, again after a coordinator whose store forgot us.
        let (worker_id, ttl) = match &worker {
            Some(w) => w.clone(),
            None => match register(&mut client, &config, &pipeline).await {
                Ok(w) => {
                    tracing::info!(worker = %w.0, ttl_ms = w.1.as_millis() as u64, "registered");
                    ready.store(draining.is_none(), Ordering::Relaxed);
                    worker = Some(w.clone());
                    w
                }
                Err(e) if fatal(&e) => return Err(WorkerError::Refused(e)),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot register; retrying");
                    metrics.poll_errors.inc();
                    if draining.is_some() {
                        break;
                    }
                    next_poll = Instant::now() + backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            },
        };
        let mut released = Vec::new();
        if let Some(deadline) = draining {
            if running.is_empty() && reports.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                for (lease, unit) in running.drain() {
                    unit.handle.abort();
                    released.push(lease);
                }
                summary.units_released += released.len() as u64;
            }
        }
        let backlog: u64 = running
            .values()
            .map(|u| u.trajectories - u.done.min(u.trajectories))
            .sum();
        let capacity = u64::from(config.slots * config.backlog_per_slot.max(1));
        let request = proto::LeaseWorkRequest {
            protocol_version: PROTOCOL_VERSION,
            worker_id: worker_id.clone(),
            free_slots: capacity.saturating_sub(backlog) as u32,
            held_lease_ids: running.keys().cloned().collect(),
            reports: reports.clone(),
            draining: draining.is_some(),
            released_lease_ids: released.clone(),
        };
        let response = match client.lease_work(request).await {
            Ok(r) => r.into_inner(),
            Err(e) if e.code() == Code::NotFound => {
                tracing::warn!(error = %e.message(), "the coordinator forgot this worker; registering again");
                for (_, unit) in running.drain() {
                    unit.handle.abort();
                }
                reports.clear();
                worker = None;
                next_poll = Instant::now();
                continue;
            }
            Err(e) if fatal(&e) => return Err(WorkerError::Refused(e)),
            Err(e) => {
                metrics.poll_errors.inc();
                tracing::warn!(code = ?e.code(), error = %e.message(), "poll failed; retrying with the same reports");
                if let Some(deadline) = draining {
                    if !released.is_empty() || Instant::now() >= deadline + Duration::from_secs(30)
                    {
                        break;
                    }
                }
                next_poll = Instant::now() + backoff;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(200);
        if !released.is_empty() {
            break;
        }
        for outcome in &response.report_outcomes {
            let Some(i) = reports.iter().position(|r| r.unit_id == outcome.unit_id) else {
                continue;
            };
            let report = reports.remove(i);
            if outcome.accepted && report.error.is_empty() {
                summary.units_accepted += 1;
                metrics.units_done.inc();
                tracing::info!(unit = %report.unit_id, rows = report.shard.as_ref().map_or(0, |s| s.rows), "unit recorded");
            } else if !outcome.accepted {
                summary.units_refused += 1;
                metrics.units_refused.inc();
                tracing::warn!(unit = %report.unit_id, reason = %outcome.reason, "report refused");
                // Never in the manifest, so nobody reads it: remove the orphan.
                if let (Some(shard), Some(dir)) = (&report.shard, datasets.get(&report.lease_id)) {
                    let _ = std::fs::remove_file(dir.join(&shard.path));
                }
            }
            datasets.remove(&report.lease_id);
        }
        for lease in &response.revoked_lease_ids {
            datasets.remove(lease);
            if let Some(unit) = running.remove(lease) {
                unit.handle.abort();
                summary.units_revoked += 1;
                metrics.units_revoked.inc();
                tracing::warn!(unit = %unit.unit_id, "lease revoked; unit abandoned");
            }
        }
        let got = response.units.len();
        for unit in response.units {
            let samples = unit
                .spec
                .as_ref()
                .and_then(|s| s.params.as_ref())
                .map_or(1, |p| p.samples.max(1));
            let trajectories = unit.problems.len() as u64 * u64::from(samples);
            let lease = unit.lease_id.clone();
            let unit_id = unit.unit_id.clone();
            tracing::info!(unit = %unit_id, attempt = unit.attempt, trajectories, "unit leased");
            let (p, root, tx, progress) = (
                pipeline.clone(),
                config.store_root.clone(),
                done_tx.clone(),
                progress_tx.clone(),
            );
            if let Some(spec) = &unit.spec {
                datasets.insert(lease.clone(), config.store_root.join(&spec.output_uri));
            }
            let handle = tokio::spawn(async move {
                let _ = tx.send(run_unit(p, unit, root, progress).await);
            });
            running.insert(
                lease,
                Running {
                    unit_id,
                    trajectories,
                    done: 0,
                    handle,
                },
            );
        }
        // Poll again at once after news, else within a third of the lease to keep it alive.
        next_poll = Instant::now()
            + if got > 0 || !reports.is_empty() {
                Duration::ZERO
            } else {
                Duration::from_millis(response.retry_after_ms.max(50)).min(ttl / 3)
            };
    }
    for (_, unit) in running.drain() {
        unit.handle.abort();
    }
    ready.store(false, Ordering::Relaxed);
    Ok(summary)
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

async fn register(
    client: &mut Client,
    config: &WorkerConfig,
    pipeline: &Pipeline,
) -> Result<(String, Duration), Status> {
    let r = client
        .register_worker(proto::RegisterWorkerRequest {
            protocol_version: PROTOCOL_VERSION,
            hostname: config.hostname.clone(),
            model_name: pipeline.model_name.clone(),
            model_sha256: pipeline.model_sha256.clone(),
            slots: config.slots,
            sandbox_capacity: config.sandbox_capacity,
            version: env!("CARGO_PKG_VERSION").to_string(),
        })
        .await?
        .into_inner();
    Ok((r.worker_id, Duration::from_millis(r.lease_ttl_ms.max(300))))
}
