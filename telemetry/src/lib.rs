//! Metrics, health, logs and shutdown for start's services.
//!
//! A deliberately small Prometheus registry (counters, gauges, histograms with fixed buckets,
//! each optionally split by one label) and a tiny HTTP endpoint serving `/metrics`, `/healthz`
//! (the process answers) and `/readyz` (it can do its job: the store answers, the model is
//! loaded). Kept in-house because the services need a dozen series, not a metrics framework.

mod http;
mod registry;

pub use http::{serve, Readiness};
pub use registry::{Counter, Gauge, Histogram, Registry};

/// Installs the tracing subscriber: human-readable lines by default, one JSON object per line
/// with `json` (for log shippers). The filter comes from `RUST_LOG`, else `default_filter`.
pub fn init_logs(json: bool, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests that start several services in one process) keeps the first.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Resolves on SIGTERM (what Kubernetes sends) or Ctrl-C: the services' shutdown trigger.
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}
