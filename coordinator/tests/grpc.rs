//! The coordinator over real gRPC sockets, driven by a protocol-level client that plays the
//! worker's part without inference (it writes fixture shards with the real shard writer). The
//! full worker with the model is exercised in tests/tests/cluster.rs.
//!
//! Why one file over 600 lines: one protocol-level client and one server harness serve every
//! case of the wire contract; the cases read best beside the helpers they share.

use start_coordinator::{
    serve, MemoryStore, RedisStore, ServerConfig, ServiceConfig, Store, StorePolicy,
};
use start_dataset::{DatasetLocation, Manifest, ShardOptions, ShardWriter, StoreRoot};
use start_schemas::client::NotFound;
use start_schemas::proto::{
    self, job_service_client::JobServiceClient, worker_service_client::WorkerServiceClient,
};
use start_schemas::PROTOCOL_VERSION;
use start_tests::redis::RedisServer;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;
use tonic::{Code, Request};

const SHA: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

struct Running {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let _ = self.task.await;
    }
}

async fn start(store: Arc<dyn Store>, root: &Path, ttl_ms: u64, token: Option<&str>) -> Running {
    let root = StoreRoot::parse(root.to_str().unwrap()).unwrap();
    start_on(store, root, ttl_ms, token).await
}

/// A coordinator on `store` whose dataset store is `root`.
async fn start_on(
    store: Arc<dyn Store>,
    root: StoreRoot,
    ttl_ms: u64,
    token: Option<&str>,
) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let config = ServerConfig {
        service: ServiceConfig {
            lease_ttl: Duration::from_millis(ttl_ms),
            store_root: root,
            watch_interval: Duration::from_millis(50),
            ..ServiceConfig::default()
        },
        token: token.map(str::to_string),
        tls: None,
    };
    let task = tokio::spawn(async move {
        serve(config, store, listener, None, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Running {
        url,
        stop: Some(tx),
        task,
    }
}

/// A channel to a coordinator this test started.
async fn channel(url: &str) -> Channel {
    start_tests::grpc::connect(url, Duration::from_secs(2)).await
}

fn spec(out: &str, unit_size: u32) -> proto::JobSpec {
    proto::JobSpec {
        name: "grpc-test".into(),
        mode: proto::GenerationMode::Rft as i32,
        params: Some(proto::GenerationParams {
            temperature: 0.6,
            top_p: 0.95,
            repeat_penalty: 1.0,
            max_new_tokens: 64,
            max_tool_calls: 6,
            samples: 1,
            ..Default::default()
        }),
        unit_size,
        output_uri: out.into(),
        ..Default::default()
    }
}

fn problem(i: usize) -> proto::Problem {
    proto::Problem {
        id: format!("p{i}"),
        source: "math".into(),
        kind: proto::ProblemKind::Math as i32,
        question: format!("What is {i} + 1?"),
        answer: format!("{}", i + 1),
        ..Default::default()
    }
}

fn submission(spec: proto::JobSpec, problems: Vec<proto::Problem>) -> Vec<proto::SubmitJobRequest> {
    use proto::submit_job_request::Item;
    vec![
        proto::SubmitJobRequest {
            item: Some(Item::Spec(spec)),
        },
        proto::SubmitJobRequest {
            item: Some(Item::Problems(proto::ProblemBatch { problems })),
        },
    ]
}

async fn register(w: &mut WorkerServiceClient<Channel>) -> String {
    w.register_worker(proto::RegisterWorkerRequest {
        protocol_version: PROTOCOL_VERSION,
        hostname: "test".into(),
        model_name: "m.gguf".into(),
        model_sha256: SHA.into(),
        slots: 1,
        sandbox_capacity: 1,
        version: "t".into(),
    })
    .await
    .unwrap()
    .into_inner()
    .worker_id
}

async fn poll(
    w: &mut WorkerServiceClient<Channel>,
    id: &str,
    free: u32,
    held: Vec<String>,
    reports: Vec<proto::UnitReport>,
) -> proto::LeaseWorkResponse {
    w.lease_work(proto::LeaseWorkRequest {
        protocol_version: PROTOCOL_VERSION,
        worker_id: id.into(),
        free_slots: free,
        held_lease_ids: held,
        reports,
        draining: false,
        released_lease_ids: vec![],
    })
    .await
    .unwrap()
    .into_inner()
}

/// Writes and stages a unit's shard the way a worker does (fixture rows) and returns its
/// report.
async fn write_unit(dataset: &Path, unit: &proto::WorkUnit) -> proto::UnitReport {
    let rows: Vec<_> = unit
        .problems
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut t = start_tests::trajectory(i as u32);
            t.problem_id = p.id.clone();
            t.job_id = unit.job_id.clone();
            t
        })
        .collect();
    let mut w = ShardWriter::create(
        &format!("{}.a{}", unit.unit_id, unit.attempt),
        &ShardOptions::default(),
    )
    .unwrap();
    w.write(&rows).unwrap();
    let loc = DatasetLocation::local(dataset).unwrap();
    let e = w.finish().unwrap().stage(&loc).await.unwrap();
    proto::UnitReport {
        unit_id: unit.unit_id.clone(),
        lease_id: unit.lease_id.clone(),
        shard: Some(proto::ShardInfo {
            path: e.path,
            rows: e.rows,
            sha256: e.sha256,
            bytes: e.bytes,
            schema_version: e.schema_version,
        }),
        correct: 1,
        completion_tokens: 10,
        tool_calls: 0,
        errored: 0,
        error: String::new(),
    }
}

async fn exactly_once(store: Arc<dyn Store>) {
    let root = tempfile::tempdir().unwrap();
    let server = start(store, root.path(), 300, None).await;
    let ch = channel(&server.url).await;
    let mut jobs = JobServiceClient::new(ch.clone());
    let job = jobs
        .submit_job(futures_util::stream::iter(submission(
            spec("data", 2),
            (0..5).map(problem).collect(),
        )))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((job.problems, job.units), (5, 3));
    let dataset: PathBuf = root.path().join("data");
    let mut a = WorkerServiceClient::new(ch.clone());
    let mut b = WorkerServiceClient::new(ch.clone());
    let (wa, wb) = (register(&mut a).await, register(&mut b).await);
    // A leases one unit (free_slots 2 = one unit of 2 problems), writes it, then goes silent.
    let first = poll(&mut a, &wa, 2, vec![], vec![]).await.units;
    assert_eq!(first.len(), 1);
    let stale = write_unit(&dataset, &first[0]).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    // B takes the expired unit (attempt 1) and everything else.
    let mut b_units = poll(&mut b, &wb, 100, vec![], vec![]).await.units;
    assert_eq!(b_units.len(), 3);
    assert_eq!(b_units[0].unit_id, first[0].unit_id);
    assert_eq!(b_units[0].attempt, 1);
    // A corrupted report (sha256 that does not match the file) is refused and changes nothing.
    let mut forged = write_unit(&dataset, &b_units[0]).await;
    let good = forged.clone();
    forged.shard.as_mut().unwrap().sha256 = "0".repeat(64);
    let r = poll(&mut b, &wb, 0, vec![], vec![forged]).await;
    assert!(
        !r.report_outcomes[0].accepted && r.report_outcomes[0].reason.contains("sha256"),
        "{:?}",
        r.report_outcomes
    );
    let r = poll(&mut b, &wb, 0, vec![], vec![good.clone()]).await;
    assert!(r.report_outcomes[0].accepted, "{:?}", r.report_outcomes);
    // A wakes up: its lease is revoked and its late report refused.
    let r = poll(&mut a, &wa, 0, vec![first[0].lease_id.clone()], vec![stale]).await;
    assert_eq!(r.revoked_lease_ids, vec![first[0].lease_id.clone()]);
    assert!(!r.report_outcomes[0].accepted, "{:?}", r.report_outcomes);
    // B reports the same unit again (a retry after a lost answer): accepted, recorded once.
    let r = poll(&mut b, &wb, 0, vec![], vec![good]).await;
    assert!(r.report_outcomes[0].accepted);
    let mut rest = Vec::new();
    for u in b_units.drain(1..) {
        rest.push(write_unit(&dataset, &u).await);
    }
    let r = poll(&mut b, &wb, 0, vec![], rest).await;
    assert!(
        r.report_outcomes.iter().all(|o| o.accepted),
        "{:?}",
        r.report_outcomes
    );
    let done = jobs
        .get_job(proto::GetJobRequest {
            job_id: job.job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.state, proto::JobState::Succeeded as i32);
    let c = done.counters.unwrap();
    assert_eq!((c.trajectories, c.lease_expirations), (5, 1));
    let loc = DatasetLocation::local(&dataset).unwrap();
    let manifest = Manifest::load(&loc).await.unwrap().unwrap();
    assert_eq!(manifest.shards.len(), 3);
    assert_eq!(manifest.rows(), 5);
    assert!(manifest
        .shards
        .iter()
        .all(|s| !s.path.ends_with(".a0.parquet") || !s.path.contains(".u00000.")));
    // The stale attempt's upload stays staged (its worker deletes it on the refusal), out of
    // the data path: no reader sees it. Every committed shard is in data/, staged no more.
    let staged: Vec<String> = loc.list("_staging").await.unwrap();
    assert_eq!(
        staged,
        vec![format!("_staging/{}.a0.parquet.staged", first[0].unit_id)]
    );
    let data: Vec<String> = loc.list("data").await.unwrap();
    let listed: Vec<String> = manifest.shards.iter().map(|s| s.path.clone()).collect();
    assert_eq!(data, {
        let mut l = listed.clone();
        l.sort();
        l
    });
    let ds = start_dataset::Dataset::open(loc).await.unwrap();
    assert_eq!(ds.manifest.rows(), 5);
    // Watch of an ended job yields its final state and ends.
    let mut events = jobs
        .watch_job(proto::WatchJobRequest {
            job_id: job.job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let e = events.message().await.unwrap().unwrap();
    assert_eq!(e.job.unwrap().state, proto::JobState::Succeeded as i32);
    assert!(events.message().await.unwrap().is_none());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_dataset_cannot_be_addressed_is_refused_at_submit() {
    // An object-store root (its client is built without a request). `..` is refused by the
    // spec check already; a `.` component has no object name, so the dataset cannot be
    // addressed and the job is refused before it runs, instead of never being shown ended.
    let root = StoreRoot::parse("s3://start-unreachable/jobs").unwrap();
    let server = start_on(
        Arc::new(MemoryStore::new(StorePolicy::default())),
        root,
        300,
        None,
    )
    .await;
    let mut jobs = JobServiceClient::new(channel(&server.url).await);
    let e = jobs
        .submit_job(futures_util::stream::iter(submission(
            spec("runs/./elsewhere", 2),
            vec![problem(1)],
        )))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("spec.output_uri:")
            && e.message()
                .contains("s3://start-unreachable/jobs/runs/./elsewhere"),
        "{}",
        e.message()
    );
    server.stop().await;
}

/// The bundled data-analysis set as `startctl validate` reads it: files loaded and checked.
fn data_problems() -> Vec<start_schemas::problem::Problem> {
    let mut problems = Vec::new();
    start_schemas::validate::Checker::default().check_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data-analysis/problems.jsonl"),
        &mut |d| panic!("{d}"),
        &mut |p| problems.push(p),
    );
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attached_files_reach_the_units_inline_or_through_the_dataset_store() {
    let root = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new(StorePolicy::default()));
    let server = start(store, root.path(), 30_000, None).await;
    let ch = channel(&server.url).await;
    let mut jobs = JobServiceClient::new(ch.clone());
    let problems = data_problems();
    let file = |name: &str| {
        problems
            .iter()
            .flat_map(|p| &p.files)
            .find(|f| f.name == name)
            .unwrap()
            .clone()
    };
    let (sales, stores) = (file("sales.csv"), file("stores.sqlite"));
    let mut data_spec = spec("data/a", 4);
    data_spec.tools = vec!["python".into(), "sql".into()];
    let messages = start_schemas::client::submission(data_spec.clone(), &problems);
    // The spec, each file once (sales.csv's 138 KB in one 1 MiB piece), the problems.
    assert_eq!(messages.len(), 1 + 3 + 1);
    jobs.submit_job(futures_util::stream::iter(messages))
        .await
        .unwrap();
    // The large file is kept once in the job's dataset; the small ones travel in the units.
    let kept = root.path().join("data/a/_inputs");
    let names: Vec<String> = std::fs::read_dir(&kept)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, std::slice::from_ref(&sales.sha256));
    assert_eq!(
        std::fs::read(kept.join(&sales.sha256)).unwrap(),
        sales.content.as_deref().unwrap()
    );
    let mut w = WorkerServiceClient::new(ch.clone());
    let worker = register(&mut w).await;
    let mut leased: Vec<proto::WorkUnit> = Vec::new();
    for _ in 0..10 {
        let held = leased.iter().map(|u| u.lease_id.clone()).collect();
        leased.extend(poll(&mut w, &worker, 8, held, vec![]).await.units);
        if leased.len() == 3 {
            break;
        }
    }
    assert_eq!(leased.len(), 3, "9 problems in units of 4");
    let wire: Vec<&proto::DataFile> = leased
        .iter()
        .flat_map(|u| &u.problems)
        .flat_map(|p| &p.files)
        .collect();
    assert_eq!(wire.len(), 9);
    for f in wire {
        assert_eq!(f.size, file(&f.name).size.unwrap(), "{}", f.name);
        if f.name == "sales.csv" {
            assert!(
                f.content.is_empty(),
                "the large file is fetched from the store"
            );
        } else {
            assert_eq!(
                Some(&f.content),
                file(&f.name).content.as_ref(),
                "{}",
                f.name
            );
        }
    }
    assert!(leased
        .iter()
        .all(|u| u.spec.as_ref().unwrap().tools == ["python", "sql"]));

    let renamed = |p: &start_schemas::problem::Problem, id: &str| {
        let mut p = p.clone();
        p.id = start_schemas::ProblemId::new(id);
        p
    };
    let refused = |r: Result<tonic::Response<proto::SubmitJobResponse>, tonic::Status>| {
        let e = r.expect_err("refused");
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        e.message().to_string()
    };
    // A later job of the same dataset may name the kept file without sending it again.
    let mut named_only = renamed(&problems[0], "again");
    named_only.files[0].content = None;
    jobs.submit_job(futures_util::stream::iter(
        start_schemas::client::submission(data_spec.clone(), &[named_only.clone()]),
    ))
    .await
    .unwrap();
    // In another dataset nothing keeps it: refused, naming the problem and the file.
    let mut elsewhere = data_spec.clone();
    elsewhere.output_uri = "data/b".into();
    let e = refused(
        jobs.submit_job(futures_util::stream::iter(
            start_schemas::client::submission(elsewhere.clone(), &[named_only]),
        ))
        .await,
    );
    assert!(
        e.contains("problem \"again\": files[0]: sales.csv")
            && e.contains("its bytes were not sent with the job"),
        "{e}"
    );
    // Bytes that are not the file the problem names: refused, naming the problem and file.
    let forged = renamed(&problems[8], "forged");
    let mut messages = start_schemas::client::submission(elsewhere.clone(), &[forged]);
    let other = bytes::Bytes::from([b"SQLite format 3\0".as_slice(), &[0u8; 100]].concat());
    if let Some(proto::submit_job_request::Item::File(c)) = &mut messages[1].item {
        assert_eq!(c.sha256, stores.sha256);
        c.size = other.len() as u64;
        c.data = other;
    }
    let e = refused(jobs.submit_job(futures_util::stream::iter(messages)).await);
    assert!(
        e.contains(
            "files[0]: problem \"forged\": file stores.sqlite: is 116 bytes, but the row says 8192"
        ),
        "{e}"
    );
    // Pieces out of order, and past the file's size: refused, naming the file.
    let big = renamed(&problems[0], "big");
    let mut messages = start_schemas::client::submission(elsewhere.clone(), &[big]);
    if let Some(proto::submit_job_request::Item::File(c)) = &mut messages[1].item {
        c.offset = 5;
    }
    let e = refused(
        jobs.submit_job(futures_util::stream::iter(messages.clone()))
            .await,
    );
    assert!(
        e.contains(&format!(
            "submit: file {}: its first piece is at offset 5",
            sales.sha256
        )),
        "{e}"
    );
    if let Some(proto::submit_job_request::Item::File(c)) = &mut messages[1].item {
        c.offset = 0;
        c.size = 10;
    }
    let e = refused(jobs.submit_job(futures_util::stream::iter(messages)).await);
    assert!(e.contains("more bytes than the 10 the file has"), "{e}");
    // A tool no registry has.
    let mut bad_tools = elsewhere;
    bad_tools.tools = vec!["bash".into()];
    let e = refused(
        jobs.submit_job(futures_util::stream::iter(submission(
            bad_tools,
            vec![problem(1)],
        )))
        .await,
    );
    assert!(
        e.contains("spec.tools: unknown tool \"bash\"; expected one of: python, sql"),
        "{e}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_are_recorded_exactly_once_in_memory() {
    exactly_once(Arc::new(MemoryStore::new(StorePolicy::default()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_are_recorded_exactly_once_on_redis() {
    let dir = tempfile::tempdir().unwrap();
    let redis =
        RedisServer::start(dir.path(), false).expect("redis-server (scripts/setup installs it)");
    let store = RedisStore::connect(&redis.url(), "g:", StorePolicy::default())
        .await
        .unwrap();
    exactly_once(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_versions_and_malformed_specs_are_refused_with_reasons() {
    let root = tempfile::tempdir().unwrap();
    let server = start(
        Arc::new(MemoryStore::default()),
        root.path(),
        30_000,
        Some("s3cret"),
    )
    .await;
    let ch = channel(&server.url).await;
    // Health answers without a token (kubelet probes carry none).
    let mut health = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    let h = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "start.v1.JobService".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        h.into_inner().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let mut jobs = JobServiceClient::new(ch.clone());
    let e = jobs
        .list_jobs(proto::ListJobsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let with = |token: &str| {
        let mut r = Request::new(proto::ListJobsRequest::default());
        r.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        r
    };
    assert_eq!(
        jobs.list_jobs(with("wrong")).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert!(jobs.list_jobs(with("s3cret")).await.is_ok());
    // Authenticated from here on.
    let token: tonic::metadata::MetadataValue<_> = "Bearer s3cret".parse().unwrap();
    let auth = move |mut r: Request<()>| {
        r.metadata_mut().insert("authorization", token.clone());
        Ok(r)
    };
    let mut jobs = JobServiceClient::with_interceptor(ch.clone(), auth.clone());
    let mut workers = WorkerServiceClient::with_interceptor(ch.clone(), auth);
    let e = workers
        .register_worker(proto::RegisterWorkerRequest {
            protocol_version: 999,
            model_sha256: SHA.into(),
            slots: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().contains("protocol version 999"),
        "{}",
        e.message()
    );
    let e = workers
        .lease_work(proto::LeaseWorkRequest {
            protocol_version: PROTOCOL_VERSION,
            worker_id: "nobody".into(),
            free_slots: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // The trailers say which thing is unknown: only this one makes a worker register again.
    assert_eq!(NotFound::of(&e), Some(NotFound::Worker), "{e:?}");
    let e = jobs
        .get_job(proto::GetJobRequest {
            job_id: "no-such-job".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(NotFound::of(&e), Some(NotFound::Job), "{e:?}");
    // Malformed submissions: every bad field is named, nothing is stored.
    let mut bad = spec("", 0);
    bad.params.as_mut().unwrap().top_p = 2.0;
    let e = jobs
        .submit_job(futures_util::stream::iter(submission(
            bad,
            vec![problem(1)],
        )))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    for field in ["spec.params.top_p", "spec.unit_size", "spec.output_uri"] {
        assert!(e.message().contains(field), "{field}: {}", e.message());
    }
    let e = jobs
        .submit_job(futures_util::stream::iter(submission(
            spec("/etc/start", 4),
            vec![problem(1)],
        )))
        .await
        .unwrap_err();
    assert!(
        e.message()
            .contains("spec.output_uri: \"/etc/start\" is absolute"),
        "{}",
        e.message()
    );
    let mut rows = vec![problem(1), problem(1)];
    rows.push(proto::Problem {
        id: "x".into(),
        source: "math".into(),
        kind: 0,
        question: "q".into(),
        ..Default::default()
    });
    let e = jobs
        .submit_job(futures_util::stream::iter(submission(spec("d", 4), rows)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message()
            .contains("submit:message 1 problem:row 1: id: duplicate id"),
        "{}",
        e.message()
    );
    assert!(
        e.message().contains("submit:message 1 problem:row 2: kind"),
        "{}",
        e.message()
    );
    let only_problems = vec![submission(spec("d", 4), vec![problem(1)]).remove(1)];
    let e = jobs
        .submit_job(futures_util::stream::iter(only_problems))
        .await
        .unwrap_err();
    assert!(
        e.message().contains("the first message must be the spec"),
        "{}",
        e.message()
    );
    let e = jobs
        .submit_job(futures_util::stream::iter(submission(spec("d", 4), vec![])))
        .await
        .unwrap_err();
    assert!(e.message().contains("no problems"), "{}", e.message());
    assert!(jobs
        .list_jobs(proto::ListJobsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .jobs
        .is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_coordinator_carries_on_from_redis() {
    let root = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path(), false).expect("redis-server");
    let connect = || async {
        Arc::new(
            RedisStore::connect(&redis.url(), "r:", StorePolicy::default())
                .await
                .unwrap(),
        ) as Arc<dyn Store>
    };
    let first = start(connect().await, root.path(), 30_000, None).await;
    let ch = channel(&first.url).await;
    let job = JobServiceClient::new(ch.clone())
        .submit_job(futures_util::stream::iter(submission(
            spec("data", 1),
            (0..2).map(problem).collect(),
        )))
        .await
        .unwrap()
        .into_inner();
    let mut w = WorkerServiceClient::new(ch);
    let id = register(&mut w).await;
    let units = poll(&mut w, &id, 1, vec![], vec![]).await.units;
    let report = write_unit(&root.path().join("data"), &units[0]).await;
    first.stop().await;
    // A second coordinator (a restart, or a replica) on the same store knows the job, the
    // worker and its lease.
    let second = start(connect().await, root.path(), 30_000, None).await;
    let ch = channel(&second.url).await;
    let mut w = WorkerServiceClient::new(ch.clone());
    let r = poll(&mut w, &id, 0, vec![units[0].lease_id.clone()], vec![]).await;
    assert!(
        r.revoked_lease_ids.is_empty(),
        "the lease survived the restart"
    );
    let r = poll(&mut w, &id, 1, vec![], vec![report]).await;
    assert!(r.report_outcomes[0].accepted, "{:?}", r.report_outcomes);
    assert_eq!(r.units.len(), 1);
    let got = JobServiceClient::new(ch)
        .get_job(proto::GetJobRequest { job_id: job.job_id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.counters.unwrap().units_done, 1);
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_verified_clients_and_metrics_and_probes_answer() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ca, cert, key) = (d.join("ca.pem"), d.join("cert.pem"), d.join("key.pem"));
    std::fs::write(
        d.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    // A throw-away CA and a server certificate for 127.0.0.1 (openssl ships with Debian).
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let steps: [Vec<&str>; 3] = [
        [
            &["req", "-x509"][..],
            &ec,
            &[
                "-days",
                "1",
                "-subj",
                "/CN=start-test-ca",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        ]
        .concat(),
        [
            &["req"][..],
            &ec,
            &[
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "key.pem",
                "-out",
                "leaf.csr",
            ],
        ]
        .concat(),
        vec![
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "leaf.ext",
            "-out",
            "cert.pem",
        ],
    ];
    for args in steps {
        let ok = std::process::Command::new("openssl")
            .args(&args)
            .current_dir(d)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl");
        assert!(ok.success(), "openssl {args:?}");
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = metrics.local_addr().unwrap();
    let config = ServerConfig {
        service: ServiceConfig::default(),
        token: None,
        tls: Some((std::fs::read(&cert).unwrap(), std::fs::read(&key).unwrap())),
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        config,
        Arc::new(MemoryStore::default()),
        listener,
        Some(metrics),
        async {
            let _ = rx.await;
        },
    ));
    let tls = tonic::transport::ClientTlsConfig::new().ca_certificate(
        tonic::transport::Certificate::from_pem(std::fs::read(&ca).unwrap()),
    );
    let ch = Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let jobs = JobServiceClient::new(ch)
        .list_jobs(proto::ListJobsRequest::default())
        .await
        .unwrap();
    assert!(jobs.into_inner().jobs.is_empty());
    // Plain HTTP/2 to a TLS port fails instead of talking in clear.
    let plain = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await;
    if let Ok(ch) = plain {
        assert!(JobServiceClient::new(ch)
            .list_jobs(proto::ListJobsRequest::default())
            .await
            .is_err());
    }
    // Metrics and probes.
    let get = |path: &'static str| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(metrics_addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    };
    let m = get("/metrics").await;
    assert!(m.starts_with("HTTP/1.1 200"), "{m}");
    for series in [
        "start_queue_depth_units",
        "start_leases_granted_total",
        "start_jobs_active",
    ] {
        assert!(m.contains(&format!("# TYPE {series}")), "{series} in {m}");
    }
    assert!(get("/healthz").await.starts_with("HTTP/1.1 200"));
    assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
    assert!(get("/nope").await.starts_with("HTTP/1.1 404"));
    let _ = tx.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_redis_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = RedisServer::start(dir.path(), false).expect("redis-server");
    let store = Arc::new(
        RedisStore::connect(&redis.url(), "h:", StorePolicy::default())
            .await
            .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = metrics.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        ServerConfig::default(),
        store,
        listener,
        Some(metrics),
        async {
            let _ = rx.await;
        },
    ));
    let ready = || async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(metrics_addr).await.unwrap();
        s.write_all(b"GET /readyz HTTP/1.1\r\n\r\n").await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    };
    assert!(ready().await.starts_with("HTTP/1.1 200"));
    redis.kill();
    let down = ready().await;
    assert!(
        down.starts_with("HTTP/1.1 503") && down.contains("store"),
        "{down}"
    );
    let _ = tx.send(());
    task.await.unwrap().unwrap();
}
