//! The start-worker binary: loads the model, starts the sandbox, then runs the poll loop.

use anyhow::Context;
use clap::Parser;
use start_sandbox::{BackendKind, Sandbox, SandboxConfig};
use start_telemetry::Registry;
use start_worker::{EngineArgs, Pipeline, PipelineOptions, WorkerConfig};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Sandbox choice.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Backend {
    /// Docker when a daemon answers, else processes.
    Auto,
    /// Docker containers.
    Docker,
    /// Child processes in namespaces (weaker isolation).
    Process,
}

/// start-worker: generates, grades and commits the trajectories of leased work units.
#[derive(Parser)]
#[command(name = "start-worker", version, about)]
struct Args {
    /// Coordinator URL.
    #[arg(
        long,
        env = "START_COORDINATOR",
        default_value = "http://127.0.0.1:50051"
    )]
    coordinator: String,
    /// Bearer token.
    #[arg(long, env = "START_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// File holding the bearer token; wins over --token.
    #[arg(long, env = "START_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// PEM CA certificate for a TLS coordinator (use an https:// URL).
    #[arg(long, env = "START_TLS_CA")]
    tls_ca: Option<PathBuf>,
    #[command(flatten)]
    engine: EngineArgs,
    /// Engine slots (trajectories in flight at an OpenAI-compatible server: match its
    /// `--parallel` or `max_num_seqs`).
    #[arg(long, env = "START_SLOTS", default_value_t = 4)]
    slots: u32,
    /// Context per slot, tokens.
    #[arg(long, env = "START_CTX", default_value_t = 4096)]
    ctx: u32,
    /// Text that opens the assistant's thinking (QwQ: "<think>\n").
    #[arg(long, env = "START_THINK_PREFIX", default_value = "")]
    think_prefix: String,
    /// Text that ends thinking (QwQ: "</think>"); empty for models without.
    #[arg(long, env = "START_THINK_END", default_value = "")]
    think_end: String,
    /// Sandbox backend.
    #[arg(long, env = "START_SANDBOX", value_enum, default_value_t = Backend::Auto)]
    sandbox: Backend,
    /// Warm sandbox runners.
    #[arg(long, env = "START_SANDBOX_POOL", default_value_t = 4)]
    sandbox_pool: usize,
    /// The Docker daemon of the sandbox: `tcp://127.0.0.1:2375` for a pod's Docker-in-Docker
    /// sidecar, `unix:///…` for a socket; the local socket when unset.
    #[arg(long, env = "DOCKER_HOST")]
    docker_host: Option<String>,
    /// A `docker save` archive of the sandbox image, loaded when the Docker daemon lacks the
    /// image (a Docker-in-Docker sidecar starts empty). The worker image carries one.
    #[arg(long, env = "START_SANDBOX_IMAGE_ARCHIVE")]
    sandbox_image_archive: Option<PathBuf>,
    /// The shared dataset store: a directory (a mounted volume) or an object-store URL
    /// (`s3://bucket/prefix`, `gs://...`, `az://...`; credentials from the cloud's standard
    /// environment variables).
    #[arg(long, env = "START_STORE_ROOT", default_value = ".")]
    store_root: String,
    /// Seconds a SIGTERM drain may take before the remaining leases are given back.
    #[arg(long, env = "START_DRAIN_TIMEOUT_S", default_value_t = 120)]
    drain_timeout_s: u64,
    /// Metrics and probes address; empty disables.
    #[arg(long, env = "START_METRICS_LISTEN", default_value = "0.0.0.0:9091")]
    metrics_listen: String,
    /// Log format: `text`, or `json` (one object per line, with the spans' ids on each).
    #[arg(long, env = "START_LOG_FORMAT", default_value = "text")]
    log_format: start_telemetry::LogFormat,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    start_telemetry::init_logs(args.log_format, "info");
    let engine = args.engine.choice()?;
    let sandbox = match Sandbox::start(SandboxConfig {
        backend: match args.sandbox {
            Backend::Auto => BackendKind::Auto,
            Backend::Docker => BackendKind::Docker,
            Backend::Process => BackendKind::Process,
        },
        pool_size: args.sandbox_pool.max(1),
        image_archive: args.sandbox_image_archive.clone(),
        docker_host: args.docker_host.clone().filter(|h| !h.is_empty()),
        ..SandboxConfig::default()
    })
    .await
    {
        Ok(s) => Some(Arc::new(s)),
        Err(e) if matches!(args.sandbox, Backend::Auto) => {
            tracing::error!(error = %e, "no sandbox: code blocks get an error as output");
            None
        }
        Err(e) => return Err(e).context("starting the sandbox"),
    };
    let registry = Registry::default();
    let hostname = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into());
    let options = PipelineOptions {
        engine,
        slots: args.slots.max(1) as usize,
        ctx_per_slot: args.ctx,
        think_prefix: args.think_prefix.clone(),
        think_end: args.think_end.clone(),
        worker_id: hostname.clone(),
    };
    let pipeline = Arc::new(
        Pipeline::start(&options, sandbox.clone(), &registry)
            .await
            .with_context(|| format!("starting the engine on {}", args.engine.describe()))?,
    );
    let token =
        start_schemas::client::serving_token(args.token.as_deref(), args.token_file.as_deref())?;
    let tls_ca = match &args.tls_ca {
        Some(p) => {
            Some(std::fs::read(p).with_context(|| format!("CA certificate {}", p.display()))?)
        }
        None => None,
    };
    let ready = Arc::new(AtomicBool::new(false));
    if !args.metrics_listen.is_empty() {
        let listener = tokio::net::TcpListener::bind(&args.metrics_listen)
            .await
            .with_context(|| format!("binding metrics on {}", args.metrics_listen))?;
        let r = ready.clone();
        let p = pipeline.clone();
        let readiness: start_telemetry::Readiness = Arc::new(move || {
            let ok = r.load(Ordering::Relaxed);
            // A worker whose inference server stopped answering takes no new work.
            let engine_ok = p.engine.healthy();
            Box::pin(async move {
                if !engine_ok {
                    Err("the inference server does not answer /health".to_string())
                } else if ok {
                    Ok(())
                } else {
                    Err("not registered, or draining".to_string())
                }
            })
        });
        tokio::spawn(start_telemetry::serve(
            listener,
            registry.clone(),
            readiness,
            std::future::pending(),
        ));
    }
    let config = WorkerConfig {
        token,
        tls_ca,
        hostname,
        slots: args.slots.max(1),
        sandbox_capacity: args.sandbox_pool as u32,
        drain_timeout: Duration::from_secs(args.drain_timeout_s),
        store_root: start_dataset::StoreRoot::parse(&args.store_root)?,
        ..WorkerConfig::new(args.coordinator)
    };
    let summary = start_worker::run(
        config,
        pipeline.clone(),
        registry,
        ready,
        start_telemetry::shutdown_signal(),
    )
    .await?;
    tracing::info!(?summary, "start-worker stopped");
    // Units given back at a drain deadline leave trajectories in the engine: stop it (they end
    // at its next step) before the sandbox, which its last tool calls still use, and before
    // exit, which must not find llama.cpp inside a decode.
    tokio::task::spawn_blocking(move || pipeline.engine.shutdown())
        .await
        .context("stopping the engine")?;
    if let Some(s) = sandbox {
        s.shutdown().await;
    }
    Ok(())
}
