//! The gRPC services over a [`Store`]: the job API for clients and the worker API.
//!
//! The coordinator holds no state of its own: every call reads and writes the store, so any
//! number of coordinators can serve the same store and any of them can be killed at any time.
//! The one side effect outside the store is the dataset's `manifest.json` ([`crate::manifest`]);
//! reported shards are checked by [`crate::shard`] before the store records them.

use crate::lease::{wall_clock_ms, LeaseRequest};
use crate::manifest::Manifests;
use crate::metrics::CoordinatorMetrics;
use crate::spec::{check_spec, new_job_id, ProblemIntake};
use crate::store::{state, NewJob, Store, StoreError};
use crate::unit::split_units;
use futures_util::StreamExt;
use start_schemas::client::NotFound;
use start_schemas::proto::{
    self, job_service_server::JobService, worker_service_server::WorkerService,
};
use start_schemas::{LeaseId, PROTOCOL_VERSION};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

/// Settings of the services.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Lease length; workers extend at a third of it.
    pub lease_ttl: Duration,
    /// Check each reported shard's size and sha256 before the manifest records it.
    pub verify_shards: bool,
    /// Most units handed out in one poll.
    pub max_units_per_poll: u32,
    /// How often `WatchJob` looks at the store.
    pub watch_interval: Duration,
    /// The shared dataset store that `output_uri` and `problems_uri` values are resolved
    /// against: a directory (a mounted volume) or an object-store URL.
    pub store_root: start_dataset::StoreRoot,
    /// Refuse absolute `output_uri` and `problems_uri`, so that clients can only read and
    /// write under `store_root`. Off only for `startctl run`, whose client is its own process.
    pub confine_paths: bool,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            lease_ttl: Duration::from_secs(30),
            verify_shards: true,
            max_units_per_poll: 16,
            watch_interval: Duration::from_millis(250),
            store_root: start_dataset::StoreRoot::parse(".").expect("'.' is a store root"),
            confine_paths: true,
        }
    }
}

/// The coordinator's services, cheap to clone.
#[derive(Clone)]
pub struct Coordinator {
    store: Arc<dyn Store>,
    manifests: Manifests,
    config: Arc<ServiceConfig>,
    metrics: CoordinatorMetrics,
}

/// Maps store errors to gRPC codes once, for every call.
pub fn status(e: StoreError) -> Status {
    match e {
        StoreError::Backend { .. } => Status::unavailable(e.to_string()),
        // Told apart on the wire: a worker re-registers only when it is the one forgotten.
        StoreError::UnknownWorker(_) => NotFound::Worker.status(e.to_string()),
        StoreError::UnknownJob(_) => NotFound::Job.status(e.to_string()),
        StoreError::JobExists(_) => Status::already_exists(e.to_string()),
        StoreError::Corrupt { .. } => Status::internal(e.to_string()),
    }
}

fn check_version(v: u32) -> Result<(), Status> {
    if v == PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(Status::failed_precondition(format!(
            "protocol version {v} is not this coordinator's {PROTOCOL_VERSION}; upgrade the worker and coordinator together"
        )))
    }
}

impl Coordinator {
    /// Services over `store`.
    pub fn new(store: Arc<dyn Store>, config: ServiceConfig, metrics: CoordinatorMetrics) -> Self {
        Self {
            manifests: Manifests::new(store.clone(), config.store_root.clone()),
            store,
            config: Arc::new(config),
            metrics,
        }
    }

    /// `job` once its dataset is committed, if it has ended: a client never sees a job ended
    /// before every shard the store recorded is readable in the dataset.
    async fn settled(&self, job: proto::Job) -> Result<proto::Job, Status> {
        self.manifests.settle(&job).await.map_err(|e| {
            Status::unavailable(format!(
                "job {} has ended but its dataset is not committed yet (retry): {e}",
                job.job_id
            ))
        })?;
        Ok(job)
    }

    /// The store, for readiness checks.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The job manifests this coordinator keeps in step with the store.
    pub fn manifests(&self) -> &Manifests {
        &self.manifests
    }

    fn observe<T>(&self, r: Result<T, StoreError>) -> Result<T, Status> {
        r.map_err(|e| {
            self.metrics.store_error(e.error_type());
            status(e)
        })
    }

    /// Records one report: checks the shard, then the store, then the manifest.
    #[tracing::instrument(
        name = "report",
        skip_all,
        fields(worker = worker_id, unit = %report.unit_id, lease = %report.lease_id)
    )]
    async fn record_report(
        &self,
        worker_id: &str,
        report: &proto::UnitReport,
    ) -> Result<proto::ReportOutcome, Status> {
        let refuse = |reason: String| proto::ReportOutcome {
            unit_id: report.unit_id.clone(),
            accepted: false,
            reason,
        };
        let lease = match LeaseId::parse(&report.lease_id) {
            Ok(l) if l.unit().as_str() == report.unit_id => l,
            _ => {
                self.metrics.report("refused");
                return Ok(refuse(format!(
                    "lease {:?} is not a lease of unit {}",
                    report.lease_id, report.unit_id
                )));
            }
        };
        let job_id = lease.unit().job_id();
        let Some(job) = self.observe(self.store.get_job(job_id).await)? else {
            self.metrics.report("refused");
            return Ok(refuse(format!("job {job_id} not found")));
        };
        if let (Some(shard), true) = (&report.shard, report.error.is_empty()) {
            let dataset = match self
                .manifests
                .dataset(job.spec.as_ref().unwrap_or(&Default::default()))
            {
                Ok(d) => d,
                Err(e) => {
                    self.metrics.report("refused");
                    return Ok(refuse(e.to_string()));
                }
            };
            if let Err(reason) =
                crate::shard::verify(&dataset, &lease, shard, self.config.verify_shards).await
            {
                self.metrics.report("refused");
                return Ok(refuse(reason));
            }
        }
        let outcome = self.observe(self.store.report(worker_id, report).await)?;
        if !outcome.accepted {
            self.metrics.report("refused");
            tracing::info!(reason = %outcome.reason, "report refused");
            return Ok(outcome);
        }
        if let (Some(shard), true) = (&report.shard, report.error.is_empty()) {
            tracing::info!(shard = %shard.path, rows = shard.rows, "shard recorded");
            self.metrics.report("accepted");
            self.metrics.trajectories.add(shard.rows);
            self.metrics.correct.add(report.correct);
            self.metrics.tokens.add(report.completion_tokens);
            self.metrics.tool_calls.add(report.tool_calls);
            self.metrics.errored.add(report.errored);
            // The store has the shard now; the dataset commit follows within a flush
            // interval, and at once when the job ends.
            self.manifests.mark(job_id);
            if let Some(after) = self.observe(self.store.get_job(job_id).await)? {
                // The report is recorded whatever happens here; a failed commit is retried by
                // the flush, by the next GetJob/WatchJob of the ended job, and at start-up.
                if let Err(e) = self.manifests.settle(&after).await {
                    tracing::error!(job = %job_id, error = %e, "dataset commit at job end failed");
                    self.manifests.mark(job_id);
                }
            }
        } else {
            self.metrics.report("failed");
            tracing::warn!(error = %report.error, "unit failed");
        }
        Ok(outcome)
    }

    /// One worker poll: its reports, given-back leases and heartbeat, then new units.
    async fn poll(&self, r: proto::LeaseWorkRequest) -> Result<proto::LeaseWorkResponse, Status> {
        check_version(r.protocol_version)?;
        let mut report_outcomes = Vec::with_capacity(r.reports.len());
        for report in &r.reports {
            report_outcomes.push(self.record_report(&r.worker_id, report).await?);
        }
        if !r.released_lease_ids.is_empty() {
            self.observe(
                self.store
                    .release(&r.worker_id, &r.released_lease_ids)
                    .await,
            )?;
        }
        let revoked_lease_ids = if r.held_lease_ids.is_empty() {
            Vec::new()
        } else {
            self.observe(
                self.store
                    .extend(&r.worker_id, &r.held_lease_ids, self.config.lease_ttl)
                    .await,
            )?
        };
        let mut units = Vec::new();
        if !r.draining && r.free_slots > 0 {
            // Units until their trajectories fill the free slots: one store call per unit keeps
            // each call short, and units differ in size and samples.
            let mut trajectories = 0u64;
            while trajectories < u64::from(r.free_slots)
                && (units.len() as u32) < self.config.max_units_per_poll
            {
                let got = self.observe(
                    self.store
                        .lease(&LeaseRequest {
                            worker_id: r.worker_id.clone(),
                            max_units: 1,
                            ttl: self.config.lease_ttl,
                        })
                        .await,
                )?;
                if got.is_empty() {
                    break;
                }
                for u in got {
                    let samples = u
                        .spec
                        .as_ref()
                        .and_then(|s| s.params.as_ref())
                        .map_or(1, |p| p.samples.max(1));
                    trajectories += u.problems.len() as u64 * u64::from(samples);
                    units.push(u);
                }
            }
        } else if !r.draining {
            // Still sweep expired leases so that a cluster of busy workers recovers dead ones' work.
            self.observe(
                self.store
                    .lease(&LeaseRequest {
                        worker_id: r.worker_id.clone(),
                        max_units: 0,
                        ttl: self.config.lease_ttl,
                    })
                    .await,
            )?;
        }
        for u in &units {
            tracing::info!(job = %u.job_id, unit = %u.unit_id, lease = %u.lease_id, attempt = u.attempt, "unit leased");
        }
        self.metrics.leases.add(units.len() as u64);
        let retry_after_ms = if units.is_empty() { 500 } else { 0 };
        Ok(proto::LeaseWorkResponse {
            units,
            revoked_lease_ids,
            report_outcomes,
            retry_after_ms,
        })
    }

    /// Accepts a spec and its problems (already collected) as a new job.
    pub async fn submit(
        &self,
        spec: proto::JobSpec,
        mut intake: ProblemIntake,
    ) -> Result<proto::SubmitJobResponse, Status> {
        let mut errors = check_spec(&spec);
        if self.config.confine_paths {
            for (field, uri) in [
                ("output_uri", &spec.output_uri),
                ("problems_uri", &spec.problems_uri),
            ] {
                if Path::new(uri).is_absolute() {
                    errors.push(format!(
                        "spec.{field}: {uri:?} is absolute; give a path relative to the dataset store"
                    ));
                }
            }
        }
        if errors.is_empty() {
            // A job whose dataset cannot be addressed (a `.` component in an object-store
            // path, a local directory that cannot be created) would run and then never be
            // shown ended: refuse it now.
            if let Err(e) = self.manifests.dataset(&spec) {
                errors.push(format!("spec.output_uri: {e}"));
            }
        }
        if !errors.is_empty() {
            return Err(Status::invalid_argument(errors.join("\n")));
        }
        if !spec.problems_uri.is_empty() {
            let root = &self.config.store_root;
            // A problems file in an object store is fetched into a temp file of the same name
            // (the name's extension says its format); a local one is read in place, with its
            // attached files beside it. A fetched one's files must be kept in the dataset
            // already (`inputs::settle` checks).
            let fetched = match root.local_dir() {
                Some(dir) => Ok((dir.join(&spec.problems_uri), None)),
                None => fetch_problems(root, &spec.problems_uri).await,
            };
            let (path, keep) =
                fetched.map_err(|e| Status::invalid_argument(format!("spec.problems_uri: {e}")))?;
            let beside = keep.is_none();
            intake = tokio::task::spawn_blocking(move || {
                intake.add_file(&path, beside);
                intake
            })
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        }
        // Hashing every received file (up to the submission's limit) is CPU work: off the
        // async threads, which serve every other RPC meanwhile.
        let mut problems = tokio::task::spawn_blocking(move || intake.finish())
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(Status::invalid_argument)?;
        if problems.is_empty() {
            return Err(Status::invalid_argument(
                "the job has no problems: stream some or name problems_uri",
            ));
        }
        crate::spec::check_mode_kinds(spec.mode(), &problems).map_err(Status::invalid_argument)?;
        if problems.iter().any(|p| !p.files.is_empty()) {
            let dataset = self
                .manifests
                .dataset(&spec)
                .map_err(|e| Status::invalid_argument(format!("spec.output_uri: {e}")))?;
            crate::inputs::settle(&dataset, &mut problems)
                .await
                .map_err(Status::invalid_argument)?;
        }
        let units = split_units(&problems, spec.unit_size);
        let job_id = new_job_id();
        let response = proto::SubmitJobResponse {
            job_id: job_id.clone(),
            problems: problems.len() as u64,
            units: units.len() as u64,
        };
        self.observe(
            self.store
                .create_job(NewJob {
                    job_id: job_id.clone(),
                    spec,
                    units,
                    created_at_ms: wall_clock_ms(),
                })
                .await,
        )?;
        self.metrics.jobs_submitted.inc();
        tracing::info!(job = %job_id, problems = response.problems, units = response.units, "job submitted");
        Ok(response)
    }
}

type EventStream =
    Pin<Box<dyn futures_util::Stream<Item = Result<proto::JobEvent, Status>> + Send>>;

#[tonic::async_trait]
impl JobService for Coordinator {
    async fn submit_job(
        &self,
        request: Request<Streaming<proto::SubmitJobRequest>>,
    ) -> Result<Response<proto::SubmitJobResponse>, Status> {
        let mut stream = request.into_inner();
        let mut spec = None;
        let mut intake = ProblemIntake::new();
        while let Some(message) = stream.next().await {
            match message?.item {
                Some(proto::submit_job_request::Item::Spec(s)) => {
                    if spec.is_some() {
                        return Err(Status::invalid_argument("submit: the spec was sent twice"));
                    }
                    spec = Some(s);
                }
                Some(proto::submit_job_request::Item::Problems(batch)) => {
                    if spec.is_none() {
                        return Err(Status::invalid_argument(
                            "submit: the first message must be the spec",
                        ));
                    }
                    // Checking rows and hashing their inline files is CPU work too.
                    intake = tokio::task::spawn_blocking(move || {
                        intake.add_batch(&batch);
                        intake
                    })
                    .await
                    .map_err(|e| Status::internal(e.to_string()))?;
                }
                Some(proto::submit_job_request::Item::File(chunk)) => {
                    if spec.is_none() {
                        return Err(Status::invalid_argument(
                            "submit: the first message must be the spec",
                        ));
                    }
                    intake.add_chunk(&chunk).map_err(Status::invalid_argument)?;
                }
                None => return Err(Status::invalid_argument("submit: empty message")),
            }
        }
        let spec = spec.ok_or_else(|| Status::invalid_argument("submit: no spec was sent"))?;
        self.submit(spec, intake).await.map(Response::new)
    }

    async fn get_job(
        &self,
        request: Request<proto::GetJobRequest>,
    ) -> Result<Response<proto::Job>, Status> {
        let id = request.into_inner().job_id;
        let job = self
            .observe(self.store.get_job(&id).await)?
            .ok_or_else(|| NotFound::Job.status(format!("job {id} not found")))?;
        self.settled(job).await.map(Response::new)
    }

    type WatchJobStream = EventStream;

    async fn watch_job(
        &self,
        request: Request<proto::WatchJobRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let id = request.into_inner().job_id;
        let first = self
            .observe(self.store.get_job(&id).await)?
            .ok_or_else(|| NotFound::Job.status(format!("job {id} not found")))?;
        let first = self.settled(first).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let me = self.clone();
        tokio::spawn(async move {
            let mut last = first.clone();
            if tx
                .send(Ok(proto::JobEvent { job: Some(first) }))
                .await
                .is_err()
            {
                return;
            }
            loop {
                if state::is_terminal(proto::JobState::try_from(last.state).unwrap_or_default()) {
                    return;
                }
                tokio::time::sleep(me.config.watch_interval).await;
                let now = match me.store.get_job(&id).await {
                    Ok(Some(j)) => j,
                    Ok(None) => {
                        let _ = tx
                            .send(Err(Status::not_found(format!("job {id} disappeared"))))
                            .await;
                        return;
                    }
                    // A store outage is waited out; the client sees no event meanwhile.
                    Err(e) => {
                        tracing::warn!(error = %e, "watch: store");
                        continue;
                    }
                };
                // An ended job is shown once its dataset is committed; until then (an object
                // store outage, say) the client keeps seeing it running.
                let now = match me.settled(now).await {
                    Ok(j) => j,
                    Err(e) => {
                        tracing::warn!(error = %e.message(), "watch: dataset commit");
                        continue;
                    }
                };
                if now != last {
                    last = now.clone();
                    if tx
                        .send(Ok(proto::JobEvent { job: Some(now) }))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn cancel_job(
        &self,
        request: Request<proto::CancelJobRequest>,
    ) -> Result<Response<proto::Job>, Status> {
        let r = request.into_inner();
        let reason = if r.reason.is_empty() {
            "cancelled by a client".to_string()
        } else {
            r.reason
        };
        let job = self.observe(self.store.cancel_job(&r.job_id, &reason).await)?;
        tracing::info!(job = %r.job_id, %reason, "job cancelled");
        Ok(Response::new(job))
    }

    async fn list_jobs(
        &self,
        request: Request<proto::ListJobsRequest>,
    ) -> Result<Response<proto::ListJobsResponse>, Status> {
        let limit = match request.into_inner().limit {
            0 => 50,
            n => n.min(10_000) as usize,
        };
        let jobs = self.observe(self.store.list_jobs(limit).await)?;
        Ok(Response::new(proto::ListJobsResponse { jobs }))
    }
}

#[tonic::async_trait]
impl WorkerService for Coordinator {
    async fn register_worker(
        &self,
        request: Request<proto::RegisterWorkerRequest>,
    ) -> Result<Response<proto::RegisterWorkerResponse>, Status> {
        let r = request.into_inner();
        check_version(r.protocol_version)?;
        if r.model_sha256.len() != 64 || !r.model_sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Status::invalid_argument(
                "register: model_sha256 must be 64 hex digits",
            ));
        }
        if r.slots == 0 {
            return Err(Status::invalid_argument(
                "register: slots must be at least 1",
            ));
        }
        let host: String = r
            .hostname
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(40)
            .collect();
        let mut seed = wall_clock_ms() as u64 ^ (u64::from(std::process::id()) << 20);
        let worker_id = format!(
            "w-{host}-{:06x}",
            start_schemas::problem::splitmix64(&mut seed) & 0xff_ffff
        );
        self.observe(self.store.register_worker(&worker_id, &r).await)?;
        tracing::info!(worker = %worker_id, model = %r.model_name, slots = r.slots, "worker registered");
        Ok(Response::new(proto::RegisterWorkerResponse {
            worker_id,
            lease_ttl_ms: self.config.lease_ttl.as_millis() as u64,
        }))
    }

    async fn lease_work(
        &self,
        request: Request<proto::LeaseWorkRequest>,
    ) -> Result<Response<proto::LeaseWorkResponse>, Status> {
        let r = request.into_inner();
        let span = tracing::info_span!("poll", worker = %r.worker_id);
        self.poll(r).instrument(span).await.map(Response::new)
    }

    async fn list_workers(
        &self,
        _: Request<proto::ListWorkersRequest>,
    ) -> Result<Response<proto::ListWorkersResponse>, Status> {
        let workers = self.observe(self.store.list_workers().await)?;
        Ok(Response::new(proto::ListWorkersResponse { workers }))
    }
}

/// Fetches `rel` from an object-store root into a temp file of the same name; the temp
/// directory lives as long as the returned guard.
async fn fetch_problems(
    root: &start_dataset::StoreRoot,
    rel: &str,
) -> Result<(PathBuf, Option<tempfile::TempDir>), String> {
    let bytes = root.read(rel).await.map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let name = Path::new(rel)
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "problems.jsonl".into());
    let path = dir.path().join(name);
    tokio::fs::write(&path, &bytes)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((path, Some(dir)))
}
