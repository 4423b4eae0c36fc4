//! Units leased, reported and committed exactly once, in memory and on Redis; attached files
//! reaching the units; datasets that cannot be addressed refused at submit.

use super::*;

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
