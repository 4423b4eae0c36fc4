//! The in-process store: the same semantics as Redis in one mutex, for `startctl run` and tests.
//! It dies with its process, so it is not for clusters; everything else matches the Redis store
//! (both pass `tests/store.rs`). Its lease clock is its process's clock: it has no other
//! coordinator to disagree with.

use crate::lease::{wall_clock_ms, LeaseRequest, Nonces};
use crate::store::{state, NewJob, Store, StoreError, StorePolicy};
use start_schemas::proto::{self, JobState};
use start_schemas::LeaseId;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq)]
enum UnitState {
    Pending,
    Leased,
    Done,
    Dropped,
}

struct Unit {
    job_id: String,
    problems: proto::ProblemBatch,
    state: UnitState,
    lease_id: String,
    worker: String,
    expires_ms: i64,
    /// Leases handed out so far; the next lease's attempt number.
    leases: u32,
    failures: u32,
    done_lease: String,
}

#[derive(Default)]
struct State {
    jobs: HashMap<String, proto::Job>,
    /// (created ms, job id), for newest-first listing.
    order: BTreeSet<(i64, String)>,
    units: HashMap<String, Unit>,
    pending: VecDeque<String>,
    /// (expiry ms, unit id) of every leased unit.
    leases: BTreeSet<(i64, String)>,
    workers: HashMap<String, proto::WorkerInfo>,
    shards: HashMap<String, BTreeMap<String, proto::ShardInfo>>,
}

/// The in-process store.
pub struct MemoryStore {
    state: Mutex<State>,
    policy: StorePolicy,
    nonces: Nonces,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(StorePolicy::default())
    }
}

impl MemoryStore {
    /// An empty store with `policy`.
    pub fn new(policy: StorePolicy) -> Self {
        Self {
            state: Mutex::new(State::default()),
            policy,
            nonces: Nonces::random(),
        }
    }
}

fn counters(job: &mut proto::Job) -> &mut proto::JobCounters {
    job.counters.get_or_insert_with(Default::default)
}

fn job_state(job: &proto::Job) -> JobState {
    JobState::try_from(job.state).unwrap_or_default()
}

impl State {
    fn lock_job(&mut self, job_id: &str) -> Option<&mut proto::Job> {
        self.jobs.get_mut(job_id)
    }

    /// Returns an expired (or otherwise ended) lease's unit to the queue.
    fn expire(&mut self, unit_id: &str, now_ms: i64) {
        let Some(unit) = self.units.get_mut(unit_id) else {
            return;
        };
        if unit.state != UnitState::Leased {
            return;
        }
        self.leases.remove(&(unit.expires_ms, unit_id.to_string()));
        unit.state = UnitState::Pending;
        unit.lease_id.clear();
        unit.worker.clear();
        let job_id = unit.job_id.clone();
        if let Some(job) = self.jobs.get_mut(&job_id) {
            let c = counters(job);
            c.units_leased = c.units_leased.saturating_sub(1);
            c.lease_expirations += 1;
            job.updated_at_ms = now_ms;
            if !state::is_terminal(job_state(job)) {
                self.pending.push_front(unit_id.to_string());
            }
        }
    }

    fn sweep(&mut self, now_ms: i64) {
        let expired: Vec<String> = self
            .leases
            .iter()
            .take_while(|(at, _)| *at <= now_ms)
            .map(|(_, u)| u.clone())
            .collect();
        for unit in expired {
            self.expire(&unit, now_ms);
        }
    }

    /// The unit of `lease_id` if `worker` holds that lease now.
    fn held(&self, worker: &str, lease_id: &str) -> Option<String> {
        let lease = LeaseId::parse(lease_id).ok()?;
        let unit_id = lease.unit().as_str();
        let unit = self.units.get(unit_id)?;
        (unit.state == UnitState::Leased && unit.lease_id == lease_id && unit.worker == worker)
            .then(|| unit_id.to_string())
    }

    fn drop_lease(&mut self, unit_id: &str, to: UnitState, now_ms: i64) {
        let unit = self.units.get_mut(unit_id).expect("held unit exists");
        self.leases.remove(&(unit.expires_ms, unit_id.to_string()));
        unit.state = to;
        let job_id = unit.job_id.clone();
        if let Some(job) = self.jobs.get_mut(&job_id) {
            let c = counters(job);
            c.units_leased = c.units_leased.saturating_sub(1);
            job.updated_at_ms = now_ms;
        }
    }
}

fn outcome(unit_id: &str, accepted: bool, reason: impl Into<String>) -> proto::ReportOutcome {
    proto::ReportOutcome {
        unit_id: unit_id.to_string(),
        accepted,
        reason: reason.into(),
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn create_job(&self, new: NewJob) -> Result<(), StoreError> {
        let mut s = self.state.lock().expect("store lock");
        if s.jobs.contains_key(&new.job_id) {
            return Err(StoreError::JobExists(new.job_id));
        }
        let problems = new.problems();
        let job = proto::Job {
            job_id: new.job_id.clone(),
            spec: Some(new.spec),
            state: JobState::Queued as i32,
            counters: Some(proto::JobCounters {
                problems,
                units_total: new.units.len() as u64,
                ..Default::default()
            }),
            message: String::new(),
            created_at_ms: new.created_at_ms,
            updated_at_ms: new.created_at_ms,
        };
        for (i, batch) in new.units.into_iter().enumerate() {
            let id = start_schemas::UnitId::new(&new.job_id, i).to_string();
            s.units.insert(
                id.clone(),
                Unit {
                    job_id: new.job_id.clone(),
                    problems: batch,
                    state: UnitState::Pending,
                    lease_id: String::new(),
                    worker: String::new(),
                    expires_ms: 0,
                    leases: 0,
                    failures: 0,
                    done_lease: String::new(),
                },
            );
            s.pending.push_back(id);
        }
        if job.counters.as_ref().is_some_and(|c| c.units_total == 0) {
            // Nothing to do is done.
            let mut job = job;
            job.state = JobState::Succeeded as i32;
            s.order.insert((new.created_at_ms, new.job_id.clone()));
            s.jobs.insert(new.job_id, job);
            return Ok(());
        }
        s.order.insert((new.created_at_ms, new.job_id.clone()));
        s.jobs.insert(new.job_id, job);
        Ok(())
    }

    async fn get_job(&self, job_id: &str) -> Result<Option<proto::Job>, StoreError> {
        Ok(self
            .state
            .lock()
            .expect("store lock")
            .jobs
            .get(job_id)
            .cloned())
    }

    async fn list_jobs(&self, limit: usize) -> Result<Vec<proto::Job>, StoreError> {
        let s = self.state.lock().expect("store lock");
        Ok(s.order
            .iter()
            .rev()
            .take(limit)
            .filter_map(|(_, id)| s.jobs.get(id).cloned())
            .collect())
    }

    async fn cancel_job(&self, job_id: &str, reason: &str) -> Result<proto::Job, StoreError> {
        let now_ms = wall_clock_ms();
        let mut s = self.state.lock().expect("store lock");
        let job = s
            .lock_job(job_id)
            .ok_or_else(|| StoreError::UnknownJob(job_id.to_string()))?;
        if !state::is_terminal(job_state(job)) {
            job.state = JobState::Cancelled as i32;
            job.message = reason.to_string();
            job.updated_at_ms = now_ms;
        }
        Ok(job.clone())
    }

    async fn register_worker(
        &self,
        worker_id: &str,
        registration: &proto::RegisterWorkerRequest,
    ) -> Result<(), StoreError> {
        let now_ms = wall_clock_ms();
        let mut s = self.state.lock().expect("store lock");
        s.workers.insert(
            worker_id.to_string(),
            proto::WorkerInfo {
                worker_id: worker_id.to_string(),
                registration: Some(registration.clone()),
                registered_at_ms: now_ms,
                last_seen_ms: now_ms,
                leases: 0,
            },
        );
        Ok(())
    }

    async fn list_workers(&self) -> Result<Vec<proto::WorkerInfo>, StoreError> {
        let s = self.state.lock().expect("store lock");
        let mut out: Vec<proto::WorkerInfo> = s.workers.values().cloned().collect();
        for w in &mut out {
            w.leases = s
                .units
                .values()
                .filter(|u| u.state == UnitState::Leased && u.worker == w.worker_id)
                .count() as u32;
        }
        out.sort_by_key(|w| std::cmp::Reverse(w.last_seen_ms));
        Ok(out)
    }

    async fn lease(&self, r: &LeaseRequest) -> Result<Vec<proto::WorkUnit>, StoreError> {
        let now_ms = wall_clock_ms();
        let mut guard = self.state.lock().expect("store lock");
        let s = &mut *guard;
        let worker_sha = match s.workers.get_mut(&r.worker_id) {
            Some(w) => {
                w.last_seen_ms = now_ms;
                w.registration
                    .as_ref()
                    .map(|g| g.model_sha256.clone())
                    .unwrap_or_default()
            }
            None => return Err(StoreError::UnknownWorker(r.worker_id.clone())),
        };
        s.sweep(now_ms);
        let mut out = Vec::new();
        let mut skipped = Vec::new();
        let scan_limit = r.max_units as usize * 8 + 16;
        let mut scanned = 0;
        while out.len() < r.max_units as usize && scanned < scan_limit {
            let Some(unit_id) = s.pending.pop_front() else {
                break;
            };
            scanned += 1;
            let Some(unit) = s.units.get_mut(&unit_id) else {
                continue;
            };
            let Some(job) = s.jobs.get_mut(&unit.job_id) else {
                continue;
            };
            let js = job_state(job);
            if state::is_terminal(js) || unit.state != UnitState::Pending {
                continue;
            }
            let spec = job.spec.clone().unwrap_or_default();
            if !spec.model_sha256.is_empty() && spec.model_sha256 != worker_sha {
                skipped.push(unit_id);
                continue;
            }
            let attempt = unit.leases;
            unit.leases += 1;
            let lease_id = self
                .nonces
                .lease(
                    start_schemas::UnitId::parse(&unit_id).map_err(|e| StoreError::Corrupt {
                        key: format!("unit {unit_id}"),
                        message: e.to_string(),
                    })?,
                    attempt,
                )
                .to_string();
            let expires = now_ms + r.ttl.as_millis() as i64;
            unit.state = UnitState::Leased;
            unit.lease_id = lease_id.clone();
            unit.worker = r.worker_id.clone();
            unit.expires_ms = expires;
            if js == JobState::Queued {
                job.state = JobState::Running as i32;
            }
            job.updated_at_ms = now_ms;
            counters(job).units_leased += 1;
            out.push(proto::WorkUnit {
                unit_id: unit_id.clone(),
                job_id: unit.job_id.clone(),
                lease_id,
                lease_expires_at_ms: expires,
                spec: Some(spec),
                problems: unit.problems.problems.clone(),
                attempt,
            });
            s.leases.insert((expires, unit_id));
        }
        s.pending.extend(skipped);
        Ok(out)
    }

    async fn extend(
        &self,
        worker_id: &str,
        lease_ids: &[String],
        ttl: Duration,
    ) -> Result<Vec<String>, StoreError> {
        let now_ms = wall_clock_ms();
        let mut guard = self.state.lock().expect("store lock");
        let s = &mut *guard;
        if let Some(w) = s.workers.get_mut(worker_id) {
            w.last_seen_ms = now_ms;
        }
        let mut revoked = Vec::new();
        for lease_id in lease_ids {
            let Some(unit_id) = s.held(worker_id, lease_id) else {
                revoked.push(lease_id.clone());
                continue;
            };
            let unit = &s.units[&unit_id];
            let live = s
                .jobs
                .get(&unit.job_id)
                .is_some_and(|j| !state::is_terminal(job_state(j)));
            if unit.expires_ms <= now_ms {
                s.expire(&unit_id, now_ms);
                revoked.push(lease_id.clone());
            } else if !live {
                s.drop_lease(&unit_id, UnitState::Dropped, now_ms);
                revoked.push(lease_id.clone());
            } else {
                let unit = s.units.get_mut(&unit_id).expect("held unit");
                s.leases.remove(&(unit.expires_ms, unit_id.clone()));
                unit.expires_ms = now_ms + ttl.as_millis() as i64;
                s.leases.insert((unit.expires_ms, unit_id));
            }
        }
        Ok(revoked)
    }

    async fn release(&self, worker_id: &str, lease_ids: &[String]) -> Result<(), StoreError> {
        let now_ms = wall_clock_ms();
        let mut s = self.state.lock().expect("store lock");
        for lease_id in lease_ids {
            if let Some(unit_id) = s.held(worker_id, lease_id) {
                s.drop_lease(&unit_id, UnitState::Pending, now_ms);
                s.pending.push_front(unit_id);
            }
        }
        Ok(())
    }

    async fn report(
        &self,
        worker_id: &str,
        report: &proto::UnitReport,
    ) -> Result<proto::ReportOutcome, StoreError> {
        let now_ms = wall_clock_ms();
        let mut guard = self.state.lock().expect("store lock");
        let s = &mut *guard;
        let unit_id = report.unit_id.as_str();
        let Some(unit) = s.units.get(unit_id) else {
            return Ok(outcome(unit_id, false, "unknown unit"));
        };
        if unit.state == UnitState::Done {
            return Ok(if unit.done_lease == report.lease_id {
                outcome(unit_id, true, "already recorded")
            } else {
                outcome(unit_id, false, "the unit was done under another lease")
            });
        }
        if s.held(worker_id, &report.lease_id).as_deref() != Some(unit_id) {
            return Ok(outcome(
                unit_id,
                false,
                "lease not held: it expired or was given back, and the unit was queued again",
            ));
        }
        if unit.expires_ms <= now_ms {
            s.expire(unit_id, now_ms);
            return Ok(outcome(
                unit_id,
                false,
                "the lease expired before the report",
            ));
        }
        let job_id = unit.job_id.clone();
        let js = s.jobs.get(&job_id).map(job_state).unwrap_or_default();
        if state::is_terminal(js) {
            s.drop_lease(unit_id, UnitState::Dropped, now_ms);
            return Ok(outcome(
                unit_id,
                false,
                format!("the job is {}", state::name(js)),
            ));
        }
        if !report.error.is_empty() || report.shard.is_none() {
            s.drop_lease(unit_id, UnitState::Pending, now_ms);
            let unit = s.units.get_mut(unit_id).expect("held unit");
            unit.failures += 1;
            if unit.failures >= self.policy.max_unit_failures {
                let failures = unit.failures;
                let job = s.jobs.get_mut(&job_id).expect("job of unit");
                job.state = JobState::Failed as i32;
                job.message = format!(
                    "unit {unit_id} failed {failures} times; last error: {}",
                    report.error
                );
            } else {
                s.pending.push_front(unit_id.to_string());
            }
            return Ok(outcome(
                unit_id,
                true,
                "failure recorded; the unit is queued again",
            ));
        }
        s.drop_lease(unit_id, UnitState::Done, now_ms);
        let unit = s.units.get_mut(unit_id).expect("held unit");
        unit.done_lease = report.lease_id.clone();
        let shard = report.shard.clone().expect("checked above");
        let rows = shard.rows;
        s.shards
            .entry(job_id.clone())
            .or_default()
            .insert(unit_id.to_string(), shard);
        let job = s.jobs.get_mut(&job_id).expect("job of unit");
        let c = counters(job);
        c.units_done += 1;
        c.trajectories += rows;
        c.correct += report.correct;
        c.completion_tokens += report.completion_tokens;
        c.tool_calls += report.tool_calls;
        c.errored += report.errored;
        if c.units_done >= c.units_total {
            job.state = JobState::Succeeded as i32;
        }
        job.updated_at_ms = now_ms;
        Ok(outcome(unit_id, true, ""))
    }

    async fn job_shards(&self, job_id: &str) -> Result<Vec<proto::ShardInfo>, StoreError> {
        let s = self.state.lock().expect("store lock");
        if !s.jobs.contains_key(job_id) {
            return Err(StoreError::UnknownJob(job_id.to_string()));
        }
        Ok(s.shards
            .get(job_id)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }
}
