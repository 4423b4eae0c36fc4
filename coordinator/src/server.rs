//! Running the coordinator: gRPC (job and worker services, health, reflection) on one listener,
//! metrics and probes on another, graceful shutdown on a future.

use crate::auth::BearerAuth;
use crate::metrics::CoordinatorMetrics;
use crate::service::{Coordinator, ServiceConfig};
use crate::store::Store;
use start_schemas::proto::job_service_server::JobServiceServer;
use start_schemas::proto::worker_service_server::WorkerServiceServer;
use start_telemetry::Registry;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Everything `serve` needs besides the store and the listeners.
#[derive(Clone, Default)]
pub struct ServerConfig {
    /// The services' settings.
    pub service: ServiceConfig,
    /// Required bearer token; `None` accepts every caller.
    pub token: Option<String>,
    /// PEM certificate and key for TLS; plain HTTP/2 when `None`.
    pub tls: Option<(Vec<u8>, Vec<u8>)>,
}

/// What can stop the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The transport failed.
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Reflection could not be built from the descriptor set.
    #[error("reflection: {0}")]
    Reflection(String),
}

/// Serves until `shutdown` resolves, then finishes in-flight calls and returns.
pub async fn serve(
    config: ServerConfig,
    store: Arc<dyn Store>,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let registry = Registry::default();
    let metrics = CoordinatorMetrics::new(registry.clone());
    let coordinator = Coordinator::new(store.clone(), config.service.clone(), metrics.clone());
    if let Err(e) = coordinator.manifests().sync_recent(100).await {
        tracing::warn!(error = %e, "manifest repair at start-up skipped");
    }
    let refresher = tokio::spawn(metrics.refresh(store.clone(), Duration::from_secs(2)));
    let flusher = tokio::spawn(
        coordinator
            .manifests()
            .clone()
            .flush_every(Duration::from_secs(1)),
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let metrics_task = metrics_listener.map(|l| {
        let store = store.clone();
        let mut rx = stop_rx.clone();
        let ready: start_telemetry::Readiness = Arc::new(move || {
            let store = store.clone();
            Box::pin(async move { store.ping().await.map_err(|e| format!("store: {e}")) })
        });
        tokio::spawn(start_telemetry::serve(l, registry, ready, async move {
            let _ = rx.changed().await;
        }))
    });
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<JobServiceServer<Coordinator>>().await;
    health
        .set_serving::<WorkerServiceServer<Coordinator>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(start_schemas::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    let auth = BearerAuth::new(config.token.clone());
    let mut builder = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(20)))
        .tcp_nodelay(true);
    if let Some((cert, key)) = &config.tls {
        let identity = tonic::transport::Identity::from_pem(cert, key);
        builder =
            builder.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))?;
    }
    let router = builder
        .add_service(health_service)
        .add_service(tonic::service::interceptor::InterceptedService::new(
            reflection,
            auth.clone(),
        ))
        .add_service(JobServiceServer::with_interceptor(
            coordinator.clone(),
            auth.clone(),
        ))
        .add_service(WorkerServiceServer::with_interceptor(
            coordinator.clone(),
            auth,
        ));
    let result = router
        .serve_with_incoming_shutdown(incoming(listener), shutdown)
        .await;
    let _ = stop_tx.send(true);
    refresher.abort();
    flusher.abort();
    coordinator.manifests().flush_once().await;
    if let Some(t) = metrics_task {
        let _ = t.await;
    }
    result.map_err(Into::into)
}

/// Accepted connections with Nagle off. The builder's `tcp_nodelay` only applies to listeners
/// tonic binds itself; without this, every small reply waits for the peer's delayed ACK
/// (about 40 ms on Linux), which capped a poll loop at 25 calls per second per worker.
fn incoming(
    listener: TcpListener,
) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use futures_util::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|conn| {
        conn.inspect(|s| {
            if let Err(e) = s.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY");
            }
        })
    })
}
