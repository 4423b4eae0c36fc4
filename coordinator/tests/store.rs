//! One suite, two stores: the Redis store (against a real redis-server) and the in-process one
//! must agree on every rule of leases, reports, expiry, cancellation and failure.
//!
//! Leases run on the store's clock (Redis's `TIME`), which no test can set, so expiry is
//! tested by letting real time pass: a short TTL and sleeps with wide margins either side.

use start_coordinator::store::{LeaseRequest, NewJob, Store, StoreError, StorePolicy};
use start_coordinator::{MemoryStore, RedisStore};
use start_schemas::proto::{self, JobState};
use start_schemas::{LeaseId, UnitId};
use start_tests::redis::RedisServer;
use start_tests::server::TestServer;
use std::sync::Arc;
use std::time::Duration;

const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const SHA_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const TTL: Duration = Duration::from_millis(1500);

/// Lets `fraction` of a TTL pass.
async fn wait(fraction: f64) {
    tokio::time::sleep(TTL.mul_f64(fraction)).await;
}

fn unit_id(job: &str, index: usize) -> String {
    UnitId::new(job, index).to_string()
}

fn job(id: &str, units: usize, model: &str) -> NewJob {
    NewJob {
        job_id: id.into(),
        spec: proto::JobSpec {
            name: id.into(),
            mode: proto::GenerationMode::Rft as i32,
            params: Some(proto::GenerationParams {
                samples: 2,
                ..Default::default()
            }),
            unit_size: 2,
            output_uri: "out".into(),
            model_sha256: model.into(),
            ..Default::default()
        },
        units: (0..units)
            .map(|u| proto::ProblemBatch {
                problems: (0..2)
                    .map(|p| proto::Problem {
                        id: format!("p{u}-{p}"),
                        ..Default::default()
                    })
                    .collect(),
            })
            .collect(),
        created_at_ms: 1,
    }
}

async fn worker(store: &dyn Store, id: &str, sha: &str) {
    let reg = proto::RegisterWorkerRequest {
        model_sha256: sha.into(),
        slots: 4,
        ..Default::default()
    };
    store.register_worker(id, &reg).await.unwrap();
}

async fn lease(store: &dyn Store, w: &str, n: u32) -> Vec<proto::WorkUnit> {
    store
        .lease(&LeaseRequest {
            worker_id: w.into(),
            max_units: n,
            ttl: TTL,
        })
        .await
        .unwrap()
}

fn done(u: &proto::WorkUnit, rows: u64) -> proto::UnitReport {
    proto::UnitReport {
        unit_id: u.unit_id.clone(),
        lease_id: u.lease_id.clone(),
        shard: Some(proto::ShardInfo {
            path: format!("shards/{}.a{}.parquet", u.unit_id, u.attempt),
            rows,
            sha256: format!("{:064}", u.attempt),
            bytes: 10,
            schema_version: 1,
        }),
        correct: 1,
        completion_tokens: 100,
        tool_calls: 2,
        errored: 1,
        ..Default::default()
    }
}

async fn get(store: &dyn Store, id: &str) -> proto::Job {
    store.get_job(id).await.unwrap().expect("job exists")
}

fn counters(j: &proto::Job) -> proto::JobCounters {
    j.counters.unwrap()
}

async fn empty_store(s: Arc<dyn Store>) {
    // A fresh deployment: `startctl status` and the coordinator's start-up manifest repair
    // list jobs and workers before there are any.
    assert!(s.list_jobs(100).await.unwrap().is_empty());
    assert!(s.list_workers().await.unwrap().is_empty());
}

async fn lifecycle(s: Arc<dyn Store>) {
    s.create_job(job("j1", 3, "")).await.unwrap();
    assert!(matches!(
        s.create_job(job("j1", 1, "")).await,
        Err(StoreError::JobExists(_))
    ));
    worker(&*s, "w1", SHA_A).await;
    let j = get(&*s, "j1").await;
    assert_eq!(j.state, JobState::Queued as i32);
    assert_eq!((counters(&j).problems, counters(&j).units_total), (6, 3));
    let units = lease(&*s, "w1", 2).await;
    assert_eq!(units.len(), 2);
    assert_eq!(units[0].unit_id, unit_id("j1", 0));
    assert_eq!(units[0].problems.len(), 2);
    assert_eq!(units[0].attempt, 0);
    // Both stores hand out lease ids of the one format, which names the unit and attempt.
    let parsed = LeaseId::parse(&units[0].lease_id).unwrap();
    assert_eq!(
        (parsed.unit().as_str(), parsed.attempt()),
        (units[0].unit_id.as_str(), 0)
    );
    assert_eq!(units[0].spec.as_ref().unwrap().name, "j1");
    let j = get(&*s, "j1").await;
    assert_eq!(j.state, JobState::Running as i32);
    assert_eq!(counters(&j).units_leased, 2);
    let o = s.report("w1", &done(&units[0], 4)).await.unwrap();
    assert!(o.accepted, "{o:?}");
    // The same report again (a retry after a lost answer) changes nothing.
    let o = s.report("w1", &done(&units[0], 4)).await.unwrap();
    assert!(o.accepted && o.reason == "already recorded", "{o:?}");
    let c = counters(&get(&*s, "j1").await);
    assert_eq!(
        (
            c.units_done,
            c.units_leased,
            c.trajectories,
            c.correct,
            c.completion_tokens,
            c.tool_calls,
            c.errored
        ),
        (1, 1, 4, 1, 100, 2, 1),
        "a repeated report counts nothing twice"
    );
    assert!(s.report("w1", &done(&units[1], 4)).await.unwrap().accepted);
    let last = lease(&*s, "w1", 5).await;
    assert_eq!(last.len(), 1);
    assert!(s.report("w1", &done(&last[0], 4)).await.unwrap().accepted);
    let j = get(&*s, "j1").await;
    assert_eq!(j.state, JobState::Succeeded as i32);
    assert_eq!(counters(&j).trajectories, 12);
    let shards = s.job_shards("j1").await.unwrap();
    assert_eq!(shards.len(), 3);
    assert_eq!(
        shards[0].path,
        format!("shards/{}.a0.parquet", unit_id("j1", 0))
    );
    assert!(lease(&*s, "w1", 5).await.is_empty());
}

async fn expiry(s: Arc<dyn Store>) {
    s.create_job(job("j2", 1, "")).await.unwrap();
    worker(&*s, "w1", SHA_A).await;
    worker(&*s, "w2", SHA_A).await;
    let first = lease(&*s, "w1", 1).await.remove(0);
    assert!(lease(&*s, "w2", 1).await.is_empty(), "not expired yet");
    wait(1.3).await;
    let second = lease(&*s, "w2", 1).await.remove(0);
    assert_eq!(second.unit_id, first.unit_id);
    assert_eq!(second.attempt, 1);
    assert_eq!(LeaseId::parse(&second.lease_id).unwrap().attempt(), 1);
    assert_ne!(second.lease_id, first.lease_id);
    assert_eq!(counters(&get(&*s, "j2").await).lease_expirations, 1);
    // The old holder wakes up: its heartbeat is revoked and its report refused.
    let revoked = s
        .extend("w1", std::slice::from_ref(&first.lease_id), TTL)
        .await
        .unwrap();
    assert_eq!(revoked, vec![first.lease_id.clone()]);
    let late = s.report("w1", &done(&first, 4)).await.unwrap();
    assert!(!late.accepted, "{late:?}");
    assert!(s.report("w2", &done(&second, 4)).await.unwrap().accepted);
    let late = s.report("w1", &done(&first, 4)).await.unwrap();
    assert!(
        !late.accepted && late.reason.contains("another lease"),
        "{late:?}"
    );
    let shards = s.job_shards("j2").await.unwrap();
    assert_eq!(shards.len(), 1);
    assert!(shards[0].path.ends_with(".a1.parquet"), "{shards:?}");
    assert_eq!(counters(&get(&*s, "j2").await).trajectories, 4);
}

async fn heartbeat_keeps_lease(s: Arc<dyn Store>) {
    s.create_job(job("j3", 1, "")).await.unwrap();
    worker(&*s, "w1", SHA_A).await;
    worker(&*s, "w2", SHA_A).await;
    let u = lease(&*s, "w1", 1).await.remove(0);
    wait(0.6).await;
    assert!(s
        .extend("w1", std::slice::from_ref(&u.lease_id), TTL)
        .await
        .unwrap()
        .is_empty());
    wait(0.6).await;
    // 1.2 TTLs after the lease, 0.6 after the extension.
    assert!(lease(&*s, "w2", 1).await.is_empty(), "the extension holds");
    // Another worker cannot extend (or report) a lease it does not hold.
    assert_eq!(
        s.extend("w2", std::slice::from_ref(&u.lease_id), TTL)
            .await
            .unwrap(),
        vec![u.lease_id.clone()]
    );
    assert!(!s.report("w2", &done(&u, 4)).await.unwrap().accepted);
    // A report after the lease ran out is refused even if nobody took the unit yet.
    wait(0.7).await;
    let o = s.report("w1", &done(&u, 4)).await.unwrap();
    assert!(!o.accepted && o.reason.contains("expired"), "{o:?}");
    assert_eq!(lease(&*s, "w2", 1).await.len(), 1);
}

async fn cancel(s: Arc<dyn Store>) {
    s.create_job(job("j4", 3, "")).await.unwrap();
    worker(&*s, "w1", SHA_A).await;
    let u = lease(&*s, "w1", 1).await.remove(0);
    let j = s.cancel_job("j4", "operator said so").await.unwrap();
    assert_eq!(j.state, JobState::Cancelled as i32);
    assert_eq!(j.message, "operator said so");
    assert_eq!(
        s.extend("w1", std::slice::from_ref(&u.lease_id), TTL)
            .await
            .unwrap(),
        vec![u.lease_id.clone()]
    );
    assert!(lease(&*s, "w1", 5).await.is_empty());
    assert!(!s.report("w1", &done(&u, 4)).await.unwrap().accepted);
    // Cancelling an ended job keeps its state and message.
    let again = s.cancel_job("j4", "twice").await.unwrap();
    assert_eq!(again.message, "operator said so");
    assert!(matches!(
        s.cancel_job("nope", "x").await,
        Err(StoreError::UnknownJob(_))
    ));
}

async fn failures(s: Arc<dyn Store>) {
    s.create_job(job("j5", 1, "")).await.unwrap();
    worker(&*s, "w1", SHA_A).await;
    for attempt in 0..3 {
        let u = lease(&*s, "w1", 1).await.remove(0);
        assert_eq!(u.attempt, attempt as u32);
        let report = proto::UnitReport {
            unit_id: u.unit_id.clone(),
            lease_id: u.lease_id.clone(),
            error: format!("boom {attempt}"),
            ..Default::default()
        };
        assert!(s.report("w1", &report).await.unwrap().accepted);
    }
    let j = get(&*s, "j5").await;
    assert_eq!(j.state, JobState::Failed as i32);
    assert!(
        j.message.contains("failed 3 times") && j.message.contains("boom 2"),
        "{}",
        j.message
    );
    assert!(lease(&*s, "w1", 1).await.is_empty());
}

async fn release_and_unknown_worker(s: Arc<dyn Store>) {
    s.create_job(job("j6", 1, "")).await.unwrap();
    assert!(matches!(
        s.lease(&LeaseRequest {
            worker_id: "ghost".into(),
            max_units: 1,
            ttl: TTL
        })
        .await,
        Err(StoreError::UnknownWorker(_))
    ));
    worker(&*s, "w1", SHA_A).await;
    worker(&*s, "w2", SHA_A).await;
    let u = lease(&*s, "w1", 1).await.remove(0);
    s.release("w1", std::slice::from_ref(&u.lease_id))
        .await
        .unwrap();
    let again = lease(&*s, "w2", 1).await.remove(0);
    assert_eq!(
        (again.unit_id.as_str(), again.attempt),
        (u.unit_id.as_str(), 1)
    );
    assert_eq!(counters(&get(&*s, "j6").await).lease_expirations, 0);
    let workers = s.list_workers().await.unwrap();
    let w2 = workers.iter().find(|w| w.worker_id == "w2").unwrap();
    assert_eq!(w2.leases, 1);
    assert_eq!(w2.registration.as_ref().unwrap().model_sha256, SHA_A);
}

async fn model_pinning(s: Arc<dyn Store>) {
    s.create_job(job("j7", 1, SHA_A)).await.unwrap();
    worker(&*s, "wb", SHA_B).await;
    worker(&*s, "wa", SHA_A).await;
    assert!(
        lease(&*s, "wb", 1).await.is_empty(),
        "another model's worker gets nothing"
    );
    assert_eq!(lease(&*s, "wa", 1).await.len(), 1);
    let mut older = job("j0", 1, "");
    older.created_at_ms = 0;
    s.create_job(older).await.unwrap();
    let ids: Vec<String> = s
        .list_jobs(10)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.job_id)
        .collect();
    assert_eq!(ids, ["j7", "j0"]);
}

async fn race(s: Arc<dyn Store>) {
    s.create_job(job("j8", 40, "")).await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("w{w}");
            worker(&*s, &id, SHA_A).await;
            let mut mine = Vec::new();
            loop {
                let got = lease(&*s, &id, 1).await;
                let Some(u) = got.into_iter().next() else {
                    break;
                };
                assert!(s.report(&id, &done(&u, 4)).await.unwrap().accepted);
                mine.push(u.unit_id);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!((before, all.len()), (40, 40), "every unit exactly once");
    let j = get(&*s, "j8").await;
    assert_eq!(j.state, JobState::Succeeded as i32);
    assert_eq!(counters(&j).units_leased, 0);
    assert_eq!(s.job_shards("j8").await.unwrap().len(), 40);
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(std::sync::Arc::new(super::MemoryStore::new(super::StorePolicy::default()))).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let server = super::RedisServer::start(dir.path(), false)
                        .expect("redis-server (scripts/setup installs it)");
                    let store = super::RedisStore::connect(&super::TestServer::url(&server), "t:", super::StorePolicy::default())
                        .await
                        .unwrap();
                    super::$name(std::sync::Arc::new(store)).await;
                }
            )*
        }
    };
}

suite!(
    empty_store,
    lifecycle,
    expiry,
    heartbeat_keeps_lease,
    cancel,
    failures,
    release_and_unknown_worker,
    model_pinning,
    race
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_with_append_only_keeps_every_acknowledged_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = RedisServer::start(dir.path(), true).expect("redis-server");
    let store = RedisStore::connect(&server.url(), "t:", StorePolicy::default())
        .await
        .unwrap();
    store.create_job(job("jr", 2, "")).await.unwrap();
    worker(&store, "w1", SHA_A).await;
    let u = lease(&store, "w1", 1).await.remove(0);
    assert!(store.report("w1", &done(&u, 4)).await.unwrap().accepted);
    server.restart();
    // The first call after the restart may meet the dead connection; the manager reconnects.
    let mut after = None;
    for _ in 0..50 {
        match store.get_job("jr").await {
            Ok(j) => {
                after = j;
                break;
            }
            Err(StoreError::Backend { .. }) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("{e}"),
        }
    }
    let j = after.expect("the job survived the restart");
    assert_eq!(counters(&j).units_done, 1);
    // Scripts are reloaded transparently; the rest of the job proceeds.
    let rest = lease(&store, "w1", 1).await.remove(0);
    assert!(store.report("w1", &done(&rest, 4)).await.unwrap().accepted);
    assert_eq!(get(&store, "jr").await.state, JobState::Succeeded as i32);
    assert_eq!(store.job_shards("jr").await.unwrap().len(), 2);
}
