//! What the coordinator refuses (tokens, versions, malformed specs), a restart carried on from
//! Redis, TLS, metrics and probes, readiness while Redis is down.

use super::*;

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
