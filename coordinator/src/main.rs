//! The start-coordinator binary: configuration from flags and environment, then [`serve`].

use anyhow::Context;
use clap::Parser;
use start_coordinator::{
    serve, MemoryStore, RedisStore, ServerConfig, ServiceConfig, Store, StorePolicy,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// start-coordinator: keeps jobs in Redis and leases their units to workers over gRPC.
#[derive(Parser)]
#[command(name = "start-coordinator", version, about)]
struct Args {
    /// gRPC address.
    #[arg(long, env = "START_LISTEN", default_value = "0.0.0.0:50051")]
    listen: String,
    /// Metrics and probes address (/metrics, /healthz, /readyz); empty disables.
    #[arg(long, env = "START_METRICS_LISTEN", default_value = "0.0.0.0:9090")]
    metrics_listen: String,
    /// Redis URL; `memory` keeps state in this process (lost on exit; for development).
    #[arg(
        long,
        env = "START_REDIS_URL",
        default_value = "redis://127.0.0.1:6379/0"
    )]
    redis: String,
    /// Prefix of every Redis key, so that several deployments can share one server.
    #[arg(long, env = "START_REDIS_PREFIX", default_value = "start:")]
    redis_prefix: String,
    /// Bearer token required on every RPC.
    #[arg(long, env = "START_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// File holding the bearer token (a mounted Secret); wins over --token.
    #[arg(long, env = "START_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// PEM certificate for TLS (with --tls-key).
    #[arg(long, env = "START_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    #[arg(long, env = "START_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Lease length in milliseconds; a worker silent this long loses its units.
    #[arg(long, env = "START_LEASE_TTL_MS", default_value_t = 30_000)]
    lease_ttl_ms: u64,
    /// Failed attempts of one unit before its job fails.
    #[arg(long, env = "START_MAX_UNIT_FAILURES", default_value_t = 3)]
    max_unit_failures: u32,
    /// The shared dataset store that output and problem paths resolve against: a directory
    /// (a mounted volume) or an object-store URL (`s3://bucket/prefix`, `gs://...`,
    /// `az://...`; credentials from the cloud's standard environment variables).
    #[arg(long, env = "START_STORE_ROOT", default_value = ".")]
    store_root: String,
    /// Skip re-hashing reported shards (trust the workers' sha256).
    #[arg(long, env = "START_NO_VERIFY_SHARDS")]
    no_verify_shards: bool,
    /// Log format: `text`, or `json` (one object per line, with the spans' ids on each).
    #[arg(long, env = "START_LOG_FORMAT", default_value = "text")]
    log_format: start_telemetry::LogFormat,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    start_telemetry::init_logs(args.log_format, "info");
    let policy = StorePolicy {
        max_unit_failures: args.max_unit_failures.max(1),
    };
    let store: Arc<dyn Store> = if args.redis == "memory" {
        tracing::warn!("in-process store: state is lost when this process exits");
        Arc::new(MemoryStore::new(policy))
    } else {
        Arc::new(
            RedisStore::connect(&args.redis, &args.redis_prefix, policy)
                .await
                .with_context(|| format!("connecting to Redis at {}", args.redis))?,
        )
    };
    let token =
        start_schemas::client::serving_token(args.token.as_deref(), args.token_file.as_deref())?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some((
            std::fs::read(c).with_context(|| format!("TLS certificate {}", c.display()))?,
            std::fs::read(k).with_context(|| format!("TLS key {}", k.display()))?,
        )),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding gRPC on {}", args.listen))?;
    let metrics_listener = if args.metrics_listen.is_empty() {
        None
    } else {
        Some(
            tokio::net::TcpListener::bind(&args.metrics_listen)
                .await
                .with_context(|| format!("binding metrics on {}", args.metrics_listen))?,
        )
    };
    tracing::info!(
        grpc = %listener.local_addr()?,
        store = store.backend(),
        auth = token.is_some(),
        tls = tls.is_some(),
        "start-coordinator serving"
    );
    let config = ServerConfig {
        service: ServiceConfig {
            lease_ttl: Duration::from_millis(args.lease_ttl_ms.max(100)),
            verify_shards: !args.no_verify_shards,
            store_root: start_dataset::StoreRoot::parse(&args.store_root)?,
            ..ServiceConfig::default()
        },
        token,
        tls,
    };
    serve(
        config,
        store,
        listener,
        metrics_listener,
        start_telemetry::shutdown_signal(),
    )
    .await?;
    tracing::info!("start-coordinator stopped");
    Ok(())
}
