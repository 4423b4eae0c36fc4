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

/// How a service writes its logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines; each event is prefixed by its spans and their fields.
    #[default]
    Text,
    /// One JSON object per line, for log shippers: the event's fields, its innermost span
    /// (`span`) and every enclosing span with its fields (`spans`), so a query on a unit or
    /// lease id finds every line of that unit's work.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("log format {other:?}: expected text or json")),
        }
    }
}

/// Installs the tracing subscriber in `format`. The filter comes from `RUST_LOG`, else
/// `default_filter` (`RUST_LOG=info,start_engine=debug,start_worker=debug` shows every
/// trajectory and tool call).
pub fn init_logs(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests that start several services in one process) keeps the first.
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
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

#[cfg(test)]
mod tests {
    use super::LogFormat;

    #[test]
    fn log_formats_parse_and_refuse_others() {
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("text".parse::<LogFormat>(), Ok(LogFormat::Text));
        assert!("yaml"
            .parse::<LogFormat>()
            .unwrap_err()
            .contains("text or json"));
    }
}
