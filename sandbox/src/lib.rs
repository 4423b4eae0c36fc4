//! start-sandbox: runs model-written Python safely and fast.
//!
//! Two backends with one API ([`Sandbox::execute`]): a warm pool of locked-down Docker
//! containers ([`docker`]), chosen whenever a daemon answers, and child processes under
//! rlimits and, where the kernel allows, their own network and PID namespaces ([`process`]),
//! for a laptop with no Docker. Both speak to the same runner (`sandbox-image/runner.py`) over
//! length-prefixed JSON frames ([`protocol`]), and both share the pool logic ([`pool`]):
//! backpressure when every runner is busy, recycling after N runs and after any time-out,
//! memory kill or crash, and replacement in the background.
//!
//! **Default mode: a fresh interpreter per code block.** The worker sends each block of a
//! trajectory on its own (`session: None`). Any runner can serve any block, so a few warm
//! containers serve many generating slots. A block's output depends on nothing but its code, so
//! a trajectory can be re-run and re-graded. And no interpreter state can be lost between
//! blocks and silently replayed. Sessions (`session: Some(..)`) keep one live interpreter per
//! trajectory, so later blocks see earlier variables, Jupyter style. A session pins one runner
//! until it is closed, and a session whose interpreter dies is reported lost, never replayed.

pub mod docker;
pub mod pool;
pub mod process;
pub mod protocol;

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The runner script, embedded so that the process backend needs no checkout.
pub const RUNNER_PY: &str = include_str!("../../sandbox-image/runner.py");

/// The sandbox image built by `sandbox-image/build`.
pub const DEFAULT_IMAGE: &str = concat!(
    "start-sandbox:",
    include_str!("../../sandbox-image/VERSION")
);

/// One execution.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecRequest {
    /// Python source.
    pub code: String,
    /// Session key: blocks with the same key share one live interpreter; `None` runs fresh.
    pub session: Option<String>,
    /// Wall-clock limit of this run.
    pub timeout: Duration,
    /// Address-space limit of the interpreter, in MiB.
    pub memory_mb: u32,
    /// Most bytes kept of stdout and of stderr each (head and tail).
    pub max_output_bytes: usize,
    /// Written to the program's standard input (fresh runs only).
    pub stdin: Option<String>,
}

impl ExecRequest {
    /// A fresh run of `code` with the default limits.
    pub fn new(code: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            session: None,
            timeout: Duration::from_secs(10),
            memory_mb: 512,
            max_output_bytes: 16 * 1024,
            stdin: None,
        }
    }
}

/// The outcome of one execution.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecResult {
    /// Captured standard output (head and tail when truncated).
    pub stdout: String,
    /// Captured standard error (head and tail when truncated).
    pub stderr: String,
    /// Exit status; 128 + N when killed by signal N; `None` when it never finished.
    pub exit_code: Option<i32>,
    /// The wall-clock limit stopped it.
    pub timed_out: bool,
    /// It ran out of memory (MemoryError, or killed by the kernel's OOM killer).
    pub memory_exceeded: bool,
    /// stdout or stderr was cut to `max_output_bytes`.
    pub truncated: bool,
    /// Time the runner spent on it, in milliseconds.
    pub duration_ms: f64,
    /// The session's interpreter is gone; later blocks of the session are refused.
    #[serde(default)]
    pub session_lost: bool,
    /// Why the code could not run (not the code's own error).
    pub error: Option<String>,
}

impl ExecResult {
    /// Whether the run failed in a way that makes its runner unfit for reuse.
    pub fn poisons_runner(&self) -> bool {
        self.timed_out || self.memory_exceeded || self.exit_code.is_some_and(|c| c > 128)
    }
}

/// What can go wrong outside the user's code.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The Docker daemon refused or failed a call.
    #[error("docker: {0}")]
    Docker(#[from] bollard::errors::Error),
    /// The sandbox image is not there.
    #[error(
        "sandbox image {0} not found: run sandbox-image/build (scripts/setup does), or give a \
         `docker save` archive of it (--sandbox-image-archive)"
    )]
    ImageMissing(String),
    /// The archive meant to provide the sandbox image could not be loaded.
    #[error("sandbox image archive {path}: {message}")]
    ImageArchive {
        /// The archive.
        path: String,
        /// Why.
        message: String,
    },
    /// Starting a runner process failed.
    #[error("cannot start the runner: {0}")]
    Spawn(std::io::Error),
    /// The runner broke the protocol or went away.
    #[error("runner: {0}")]
    Protocol(String),
    /// The runner did not answer within the run's time-out plus a grace period.
    #[error("runner did not answer within {0:?}")]
    Unresponsive(Duration),
    /// The pool is shut down.
    #[error("the sandbox pool is shut down")]
    Closed,
}

impl SandboxError {
    /// A stable label per variant, for metrics.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Docker(_) => "docker",
            Self::ImageMissing(_) => "image_missing",
            Self::ImageArchive { .. } => "image_archive",
            Self::Spawn(_) => "spawn",
            Self::Protocol(_) => "protocol",
            Self::Unresponsive(_) => "unresponsive",
            Self::Closed => "closed",
        }
    }
}

/// Which backend to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// Docker when a daemon answers, else processes.
    Auto,
    /// Docker containers.
    Docker,
    /// Child processes.
    Process,
}

/// Sandbox settings.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Backend choice.
    pub backend: BackendKind,
    /// Warm runners kept (containers or processes).
    pub pool_size: usize,
    /// A runner is replaced after this many runs.
    pub max_runs_per_runner: u32,
    /// Image for the Docker backend.
    pub image: String,
    /// The Docker daemon (`unix://…`, `tcp://…`); `None` means `DOCKER_HOST`, else the local
    /// socket.
    pub docker_host: Option<String>,
    /// A `docker save` archive (tar, or gzip-compressed tar) holding `image`, loaded into the
    /// daemon when it lacks the image: a Docker-in-Docker sidecar starts with no images, and
    /// no registry may be reachable from it.
    pub image_archive: Option<std::path::PathBuf>,
    /// Container memory (and swap) limit in MiB; the per-run limit is applied inside too.
    pub container_memory_mb: u64,
    /// Container pids limit.
    pub pids_limit: i64,
    /// CPUs each container may use.
    pub cpus: f64,
    /// Size of the container's /tmp tmpfs in MiB.
    pub tmpfs_mb: u64,
    /// Python interpreter for the process backend.
    pub python: String,
    /// Extra time the host waits beyond a run's time-out before it declares the runner hung.
    pub grace: Duration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            backend: BackendKind::Auto,
            pool_size: (cores * 2).clamp(2, 32),
            max_runs_per_runner: 200,
            image: DEFAULT_IMAGE.trim().to_string(),
            image_archive: None,
            docker_host: None,
            container_memory_mb: 1024,
            pids_limit: 128,
            cpus: 1.0,
            tmpfs_mb: 64,
            python: "python3".into(),
            grace: Duration::from_secs(5),
        }
    }
}

/// A sandbox: a pool of runners of one backend.
pub struct Sandbox {
    pool: pool::Pool,
    kind: BackendKind,
    identity: String,
}

impl Sandbox {
    /// Starts the pool, choosing Docker whenever a daemon answers (for `Auto`).
    pub async fn start(config: SandboxConfig) -> Result<Self, SandboxError> {
        let kind = match config.backend {
            BackendKind::Auto => {
                if docker::daemon_answers(config.docker_host.as_deref()).await {
                    BackendKind::Docker
                } else {
                    BackendKind::Process
                }
            }
            other => other,
        };
        let (spawner, identity): (std::sync::Arc<dyn pool::Spawner>, String) = match kind {
            BackendKind::Docker => {
                let spawner = docker::DockerSpawner::new(&config).await?;
                let identity = format!("docker:{}@{}", config.image, spawner.image_id);
                (std::sync::Arc::new(spawner), identity)
            }
            _ => (
                std::sync::Arc::new(process::ProcessSpawner::new(&config)?),
                format!("process:{}", config.python),
            ),
        };
        let pool = pool::Pool::start(spawner, &config).await?;
        Ok(Self {
            pool,
            kind,
            identity,
        })
    }

    /// Which sandbox this is, recorded on every trajectory row: `docker:<image>@<image id>`,
    /// or `process:<interpreter>` for the process backend.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The backend in use.
    pub fn backend(&self) -> BackendKind {
        self.kind
    }

    /// Runs one request; waits while every runner is busy.
    pub async fn execute(&self, request: ExecRequest) -> Result<ExecResult, SandboxError> {
        self.pool.execute(request).await
    }

    /// Ends a session and frees its runner.
    pub async fn close_session(&self, session: &str) -> Result<(), SandboxError> {
        self.pool.close_session(session).await
    }

    /// Pool counters.
    pub fn stats(&self) -> pool::PoolStats {
        self.pool.stats()
    }

    /// Stops every runner.
    pub async fn shutdown(&self) {
        self.pool.shutdown().await;
    }
}
