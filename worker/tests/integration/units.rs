//! The poll loop against an in-process coordinator with a unit that panics: the guard turns the
//! panic into a failed-unit report carrying its message, the coordinator retries the unit and
//! fails the job, and nothing hangs (before the guard, the task's handle was never awaited,
//! its lease was extended forever and the job never ended).

use futures_util::future::{BoxFuture, FutureExt};
use start_coordinator::{MemoryStore, ServerConfig, ServiceConfig, StorePolicy};
use start_schemas::proto;
use start_worker::unit::ProgressTx;
use start_worker::{run_units, Units, WorkerConfig};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Test double of [`Units`] (the real one is `start_worker::unit::PipelineUnits`, which the
/// cluster tests run): every unit panics.
struct PanickingUnits {
    runs: AtomicU32,
}

impl Units for PanickingUnits {
    fn model(&self) -> (String, String) {
        ("panics.gguf".into(), "0".repeat(64))
    }

    fn run(
        &self,
        unit: proto::WorkUnit,
        _progress: ProgressTx,
    ) -> BoxFuture<'static, proto::UnitReport> {
        self.runs.fetch_add(1, Ordering::Relaxed);
        async move {
            if !unit.unit_id.is_empty() {
                panic!("the grader fell over on {}", unit.unit_id);
            }
            proto::UnitReport::default()
        }
        .boxed()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_that_panics_is_reported_and_its_job_fails_instead_of_hanging() {
    let store_root = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let config = ServerConfig {
        service: ServiceConfig {
            lease_ttl: Duration::from_secs(5),
            store_root: start_dataset::StoreRoot::parse(store_root.path().to_str().unwrap())
                .unwrap(),
            ..ServiceConfig::default()
        },
        token: None,
        tls: None,
    };
    let store = Arc::new(MemoryStore::new(StorePolicy {
        max_unit_failures: 2,
    }));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let coordinator = tokio::spawn(start_coordinator::serve(
        config,
        store,
        listener,
        None,
        async {
            let _ = stopped.await;
        },
    ));
    let units = Arc::new(PanickingUnits {
        runs: AtomicU32::new(0),
    });
    let (stop_worker, worker_stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(run_units(
        WorkerConfig {
            store_root: start_dataset::StoreRoot::parse(store_root.path().to_str().unwrap())
                .unwrap(),
            ..WorkerConfig::new(url.clone())
        },
        units.clone(),
        start_telemetry::Registry::default(),
        Arc::new(AtomicBool::new(false)),
        async {
            let _ = worker_stopped.await;
        },
    ));
    let client = crate::common::Client::new(&url, None);
    client.wait_serving(Duration::from_secs(20), &[]).await;
    let job_id = client
        .submit(
            crate::common::spec("panics", proto::GenerationMode::Plain, 8, 1),
            crate::common::math_problems(1),
        )
        .await;
    crate::common::wait_for("the job to end", Duration::from_secs(60), &[], || {
        let (client, id) = (client.clone(), job_id.clone());
        async move {
            let j = client.job(&id).await;
            j.is_some_and(|j| j.state == proto::JobState::Failed as i32)
        }
    })
    .await;
    let job = client.job(&job_id).await.unwrap();
    assert!(
        job.message
            .contains("the unit panicked: the grader fell over on"),
        "{}",
        job.message
    );
    assert_eq!(
        units.runs.load(Ordering::Relaxed),
        2,
        "retried once, then the job failed"
    );
    let _ = stop_worker.send(());
    worker.await.unwrap().unwrap();
    let _ = stop.send(());
    coordinator.await.unwrap().unwrap();
}
