//! The Redis store: every state change is one Lua script, so it is atomic under any number of
//! coordinators and workers; the connection manager reconnects after a Redis restart, and the
//! scripts are reloaded by hash when a restarted server has forgotten them.
//!
//! Keys (all under a prefix, `start:` by default): `jobs` (sorted set by creation time),
//! `job:{id}` (hash: spec, state, counters), `job:{id}:shards` (hash: unit -> ShardInfo, the
//! job's manifest), `unit:{id}` (hash: problems, lease state), `pending` (list of unit ids),
//! `leases` (sorted set of leased units by expiry), `workers` (set) and `worker:{id}` (hash).
//!
//! Every time stamp the scripts write or compare is the server's `TIME`, read inside the
//! script: the lease clock of [`crate::lease`].

use crate::lease::{LeaseRequest, Nonces};
use crate::store::{state, NewJob, Store, StoreError, StorePolicy};
use prost::Message;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use start_schemas::proto;
use std::collections::HashMap;
use std::time::Duration;

macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(include_str!("lua/common.lua"), include_str!($file)))
    };
}

struct Scripts {
    create: Script,
    lease: Script,
    extend: Script,
    release: Script,
    report: Script,
    cancel: Script,
}

/// The Redis store.
pub struct RedisStore {
    con: ConnectionManager,
    prefix: String,
    scripts: Scripts,
    policy: StorePolicy,
    nonces: Nonces,
}

fn backend(e: redis::RedisError) -> StoreError {
    StoreError::Backend {
        backend: "redis",
        message: e.to_string(),
    }
}

fn corrupt(key: &str, message: impl ToString) -> StoreError {
    StoreError::Corrupt {
        key: key.to_string(),
        message: message.to_string(),
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db`); keys go under `prefix`. Fails when the server
    /// does not answer now; later outages are retried by the connection manager.
    pub async fn connect(url: &str, prefix: &str, policy: StorePolicy) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(backend)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(10)))
            .set_number_of_retries(3);
        let con = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(backend)?;
        Ok(Self {
            con,
            prefix: prefix.to_string(),
            scripts: Scripts {
                create: script!("lua/create.lua"),
                lease: script!("lua/lease.lua"),
                extend: script!("lua/extend.lua"),
                release: script!("lua/release.lua"),
                report: script!("lua/report.lua"),
                cancel: script!("lua/cancel.lua"),
            },
            policy,
            nonces: Nonces::random(),
        })
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    /// The server's clock, Unix ms: the time stamps written outside scripts use it too.
    async fn server_ms(&self) -> Result<i64, StoreError> {
        let mut con = self.con.clone();
        let (secs, micros): (i64, i64) = redis::cmd("TIME")
            .query_async(&mut con)
            .await
            .map_err(backend)?;
        Ok(secs * 1000 + micros / 1000)
    }

    fn job_from_hash(
        &self,
        job_id: &str,
        h: HashMap<String, Vec<u8>>,
    ) -> Result<proto::Job, StoreError> {
        let key = self.key(&format!("job:{job_id}"));
        let text = |f: &str| -> String {
            h.get(f)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        let num = |f: &str| -> u64 { text(f).parse::<i64>().unwrap_or(0).max(0) as u64 };
        let spec = proto::JobSpec::decode(h.get("spec").map_or(&[][..], |v| v.as_slice()))
            .map_err(|e| corrupt(&key, e))?;
        Ok(proto::Job {
            job_id: job_id.to_string(),
            spec: Some(spec),
            state: state::parse(&text("state")) as i32,
            counters: Some(proto::JobCounters {
                problems: num("problems"),
                units_total: num("units_total"),
                units_done: num("units_done"),
                units_leased: num("units_leased"),
                trajectories: num("trajectories"),
                correct: num("correct"),
                completion_tokens: num("completion_tokens"),
                tool_calls: num("tool_calls"),
                lease_expirations: num("lease_expirations"),
                errored: num("errored"),
            }),
            message: text("message"),
            created_at_ms: num("created_at_ms") as i64,
            updated_at_ms: num("updated_at_ms") as i64,
        })
    }
}

/// The replies of a read pipeline. An empty one (no jobs, no workers yet) is not sent: Redis
/// clients refuse an empty command, and the answer is known.
async fn replies<T: redis::FromRedisValue>(
    pipe: &redis::Pipeline,
    con: &mut ConnectionManager,
) -> Result<Vec<T>, StoreError> {
    if pipe.is_empty() {
        return Ok(Vec::new());
    }
    pipe.query_async(con).await.map_err(backend)
}

#[async_trait::async_trait]
impl Store for RedisStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut con = self.con.clone();
        let _: String = redis::cmd("PING")
            .query_async(&mut con)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn create_job(&self, job: NewJob) -> Result<(), StoreError> {
        let mut con = self.con.clone();
        let problems = job.problems();
        // Unit bodies first, in pipelined chunks; the job only becomes visible (and its units
        // queued) in the atomic script at the end, so a crash halfway leaves no half job.
        let mut ids = Vec::with_capacity(job.units.len());
        for chunk in job.units.chunks(512).enumerate() {
            let (c, units) = chunk;
            let mut pipe = redis::pipe();
            for (k, batch) in units.iter().enumerate() {
                let id = job.unit_id(c * 512 + k).to_string();
                pipe.hset_multiple(
                    self.key(&format!("unit:{id}")),
                    &[
                        ("job", job.job_id.as_bytes().to_vec()),
                        ("problems", batch.encode_to_vec()),
                        ("state", b"pending".to_vec()),
                        ("leases", b"0".to_vec()),
                        ("failures", b"0".to_vec()),
                    ],
                )
                .ignore();
                ids.push(id);
            }
            pipe.query_async::<()>(&mut con).await.map_err(backend)?;
        }
        let spec = job.spec.encode_to_vec();
        let mut inv = self.scripts.create.prepare_invoke();
        inv.arg(&self.prefix)
            .arg(&job.job_id)
            .arg(job.created_at_ms)
            .arg(spec)
            .arg(&job.spec.model_sha256)
            .arg(problems);
        for id in &ids {
            inv.arg(id);
        }
        match inv.invoke_async::<i64>(&mut con).await {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("JOB_EXISTS") => {
                Err(StoreError::JobExists(job.job_id))
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn get_job(&self, job_id: &str) -> Result<Option<proto::Job>, StoreError> {
        let mut con = self.con.clone();
        let h: HashMap<String, Vec<u8>> = con
            .hgetall(self.key(&format!("job:{job_id}")))
            .await
            .map_err(backend)?;
        if h.is_empty() {
            return Ok(None);
        }
        self.job_from_hash(job_id, h).map(Some)
    }

    async fn list_jobs(&self, limit: usize) -> Result<Vec<proto::Job>, StoreError> {
        let mut con = self.con.clone();
        let ids: Vec<String> = con
            .zrevrange(self.key("jobs"), 0, limit.max(1) as isize - 1)
            .await
            .map_err(backend)?;
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(self.key(&format!("job:{id}")));
        }
        let hashes: Vec<HashMap<String, Vec<u8>>> = replies(&pipe, &mut con).await?;
        ids.iter()
            .zip(hashes)
            .filter(|(_, h)| !h.is_empty())
            .map(|(id, h)| self.job_from_hash(id, h))
            .collect()
    }

    async fn cancel_job(&self, job_id: &str, reason: &str) -> Result<proto::Job, StoreError> {
        let mut con = self.con.clone();
        let found: i64 = self
            .scripts
            .cancel
            .arg(&self.prefix)
            .arg(job_id)
            .arg(reason)
            .invoke_async(&mut con)
            .await
            .map_err(backend)?;
        if found == 0 {
            return Err(StoreError::UnknownJob(job_id.to_string()));
        }
        self.get_job(job_id)
            .await?
            .ok_or_else(|| StoreError::UnknownJob(job_id.to_string()))
    }

    async fn register_worker(
        &self,
        worker_id: &str,
        registration: &proto::RegisterWorkerRequest,
    ) -> Result<(), StoreError> {
        let now_ms = self.server_ms().await?;
        let mut con = self.con.clone();
        let key = self.key(&format!("worker:{worker_id}"));
        redis::pipe()
            .atomic()
            .hset_multiple(
                &key,
                &[
                    ("registration", registration.encode_to_vec()),
                    (
                        "model_sha256",
                        registration.model_sha256.as_bytes().to_vec(),
                    ),
                    ("registered_at_ms", now_ms.to_string().into_bytes()),
                    ("last_seen_ms", now_ms.to_string().into_bytes()),
                ],
            )
            .ignore()
            .pexpire(&key, 86_400_000)
            .ignore()
            .sadd(self.key("workers"), worker_id)
            .ignore()
            .query_async::<()>(&mut con)
            .await
            .map_err(backend)
    }

    async fn list_workers(&self) -> Result<Vec<proto::WorkerInfo>, StoreError> {
        let mut con = self.con.clone();
        let ids: Vec<String> = con.smembers(self.key("workers")).await.map_err(backend)?;
        let leased: Vec<String> = con
            .zrange(self.key("leases"), 0, -1)
            .await
            .map_err(backend)?;
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(self.key(&format!("worker:{id}")));
        }
        for unit in &leased {
            pipe.hget(self.key(&format!("unit:{unit}")), "worker");
        }
        let values: Vec<redis::Value> = replies(&pipe, &mut con).await?;
        let (workers, holders) = values.split_at(ids.len());
        let mut counts: HashMap<String, u32> = HashMap::new();
        for h in holders {
            if let Ok(Some(w)) = redis::from_redis_value_ref::<Option<String>>(h) {
                *counts.entry(w).or_default() += 1;
            }
        }
        let mut out = Vec::new();
        for (id, value) in ids.iter().zip(workers) {
            let h: HashMap<String, Vec<u8>> = redis::from_redis_value_ref(value)
                .map_err(|e| corrupt(&format!("worker:{id}"), e))?;
            if h.is_empty() {
                // Expired after a day of silence.
                let _: () = con.srem(self.key("workers"), id).await.map_err(backend)?;
                continue;
            }
            let num = |f: &str| -> i64 {
                h.get(f)
                    .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
                    .unwrap_or(0)
            };
            let registration = proto::RegisterWorkerRequest::decode(
                h.get("registration").map_or(&[][..], |v| v.as_slice()),
            )
            .map_err(|e| corrupt(&format!("worker:{id}"), e))?;
            out.push(proto::WorkerInfo {
                worker_id: id.clone(),
                registration: Some(registration),
                registered_at_ms: num("registered_at_ms"),
                last_seen_ms: num("last_seen_ms"),
                leases: counts.get(id).copied().unwrap_or(0),
            });
        }
        out.sort_by_key(|w| std::cmp::Reverse(w.last_seen_ms));
        Ok(out)
    }

    async fn lease(&self, r: &LeaseRequest) -> Result<Vec<proto::WorkUnit>, StoreError> {
        type Row = (String, String, String, i64, i64, Vec<u8>, Vec<u8>);
        let mut con = self.con.clone();
        let rows: Vec<Row> = self
            .scripts
            .lease
            .arg(&self.prefix)
            .arg(&r.worker_id)
            .arg(r.ttl.as_millis() as u64)
            .arg(r.max_units)
            .arg(self.nonces.next_hex())
            .invoke_async(&mut con)
            .await
            .map_err(|e| {
                if e.to_string().contains("UNKNOWN_WORKER") {
                    StoreError::UnknownWorker(r.worker_id.clone())
                } else {
                    backend(e)
                }
            })?;
        rows.into_iter()
            .map(|(unit, job, lease, expires, attempt, problems, spec)| {
                let batch = proto::ProblemBatch::decode(problems.as_slice())
                    .map_err(|e| corrupt(&format!("unit:{unit}"), e))?;
                let spec = proto::JobSpec::decode(spec.as_slice())
                    .map_err(|e| corrupt(&format!("job:{job}"), e))?;
                Ok(proto::WorkUnit {
                    unit_id: unit,
                    job_id: job,
                    lease_id: lease,
                    lease_expires_at_ms: expires,
                    spec: Some(spec),
                    problems: batch.problems,
                    attempt: attempt as u32,
                })
            })
            .collect()
    }

    async fn extend(
        &self,
        worker_id: &str,
        lease_ids: &[String],
        ttl: Duration,
    ) -> Result<Vec<String>, StoreError> {
        let mut con = self.con.clone();
        let mut inv = self.scripts.extend.prepare_invoke();
        inv.arg(&self.prefix)
            .arg(worker_id)
            .arg(ttl.as_millis() as u64);
        for l in lease_ids {
            inv.arg(l);
        }
        inv.invoke_async(&mut con).await.map_err(backend)
    }

    async fn release(&self, worker_id: &str, lease_ids: &[String]) -> Result<(), StoreError> {
        let mut con = self.con.clone();
        let mut inv = self.scripts.release.prepare_invoke();
        inv.arg(&self.prefix).arg(worker_id);
        for l in lease_ids {
            inv.arg(l);
        }
        inv.invoke_async::<i64>(&mut con).await.map_err(backend)?;
        Ok(())
    }

    async fn report(
        &self,
        worker_id: &str,
        report: &proto::UnitReport,
    ) -> Result<proto::ReportOutcome, StoreError> {
        let mut con = self.con.clone();
        let (shard, rows) = match (&report.shard, report.error.is_empty()) {
            (Some(s), true) => (s.encode_to_vec(), s.rows),
            _ => (Vec::new(), 0),
        };
        let (accepted, reason): (i64, String) = self
            .scripts
            .report
            .arg(&self.prefix)
            .arg(worker_id)
            .arg(&report.unit_id)
            .arg(&report.lease_id)
            .arg(shard)
            .arg(&report.error)
            .arg(rows)
            .arg(report.correct)
            .arg(report.completion_tokens)
            .arg(report.tool_calls)
            .arg(self.policy.max_unit_failures)
            .arg(report.errored)
            .invoke_async(&mut con)
            .await
            .map_err(backend)?;
        Ok(proto::ReportOutcome {
            unit_id: report.unit_id.clone(),
            accepted: accepted == 1,
            reason,
        })
    }

    async fn job_shards(&self, job_id: &str) -> Result<Vec<proto::ShardInfo>, StoreError> {
        let mut con = self.con.clone();
        let exists: bool = con
            .exists(self.key(&format!("job:{job_id}")))
            .await
            .map_err(backend)?;
        if !exists {
            return Err(StoreError::UnknownJob(job_id.to_string()));
        }
        let key = self.key(&format!("job:{job_id}:shards"));
        let h: HashMap<String, Vec<u8>> = con.hgetall(&key).await.map_err(backend)?;
        let mut units: Vec<(String, Vec<u8>)> = h.into_iter().collect();
        units.sort();
        units
            .into_iter()
            .map(|(unit, bytes)| {
                proto::ShardInfo::decode(bytes.as_slice())
                    .map_err(|e| corrupt(&format!("{key}/{unit}"), e))
            })
            .collect()
    }
}
