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
//! **Fork server.** Each runner imports the heavy modules once (numpy, sympy, …; see
//! [`SandboxConfig::preload`]) and forks a child per block, so a sympy block costs its own
//! work, not a second of imports, and still starts from a clean state: whatever a block
//! defines, patches, opens or starts dies with its child. A block's memory limit is a cgroup
//! limit (the container's, or one the process backend makes per runner), never an
//! address-space limit. [`RunnerMode::Fresh`] keeps an interpreter per block.
//!
//! **Infrastructure failures are not the model's.** A runner that dies, breaks the protocol,
//! stops answering or cannot start the block, and a Docker daemon that errors, are retried
//! once on another runner; a second failure is [`SandboxError::Infrastructure`], never an
//! [`ExecResult`], so it cannot be written into a trajectory as if the code had failed.
//!
//! **Languages and attached files.** A request says which language its code is
//! ([`Language`]: Python, or SQL run by the runner against the attached files with SQLite) and
//! which files it sees ([`SandboxFile`]: a problem's data). Each runner receives a file once,
//! checks its sha256 and keeps it read-only; a block finds it in its working directory under its
//! name, and may write nowhere but its scratch directory (Landlock). A Python block that draws
//! with matplotlib brings its figures back as PNG ([`Figure`]).
//!
//! **Default mode: a clean interpreter per code block.** The worker sends each block of a
//! trajectory on its own (`session: None`). Any runner can serve any block, so a few warm
//! containers serve many generating slots. A block's output depends on nothing but its code, so
//! a trajectory can be re-run and re-graded. And no interpreter state can be lost between
//! blocks and silently replayed. Sessions (`session: Some(..)`) keep one live interpreter per
//! trajectory, so later blocks see earlier variables, Jupyter style. A session pins one runner
//! until it is closed, and a session whose interpreter dies is reported lost, never replayed.

pub mod cgroup;
pub mod docker;
pub mod pool;
pub mod process;
pub mod protocol;

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The runner: its script and the modules beside it (`sandbox-image/`), embedded so that the
/// process backend needs no checkout. The script is the first.
pub const RUNNER_FILES: [(&str, &str); 7] = [
    ("runner.py", include_str!("../../sandbox-image/runner.py")),
    (
        "runner_config.py",
        include_str!("../../sandbox-image/runner_config.py"),
    ),
    (
        "runner_io.py",
        include_str!("../../sandbox-image/runner_io.py"),
    ),
    (
        "runner_confine.py",
        include_str!("../../sandbox-image/runner_confine.py"),
    ),
    (
        "runner_data.py",
        include_str!("../../sandbox-image/runner_data.py"),
    ),
    (
        "runner_figures.py",
        include_str!("../../sandbox-image/runner_figures.py"),
    ),
    (
        "runner_sql.py",
        include_str!("../../sandbox-image/runner_sql.py"),
    ),
];

/// Writes the runner's files into `dir`; returns the script's path.
pub fn install_runner(dir: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    for (name, text) in RUNNER_FILES {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(dir.join(RUNNER_FILES[0].0))
}

/// The sandbox image built by `sandbox-image/build`.
pub const DEFAULT_IMAGE: &str = concat!(
    "start-sandbox:",
    include_str!("../../sandbox-image/VERSION")
);

/// A block's memory limit unless its request says otherwise, in MiB.
pub const DEFAULT_BLOCK_MEMORY_MB: u32 = 512;

/// What a block's code is, and so how the runner runs it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Language {
    /// A Python script.
    #[default]
    Python,
    /// SQL statements against the attached files (SQLite from Python's standard library: CSV
    /// and Parquet files loaded as tables, SQLite files attached read-only), printed as text
    /// tables; statements that would reach outside that data are refused.
    Sql,
}

impl Language {
    /// The runner's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Python => "python",
            Self::Sql => "sql",
        }
    }
}

/// A file a block sees in its working directory, read-only: a problem's attached data.
#[derive(Clone, PartialEq, Eq)]
pub struct SandboxFile {
    /// Its name in the working directory (no directories).
    pub name: String,
    /// Hex sha256 of `content`: how runners keep and check it.
    pub sha256: String,
    /// The bytes; shared, so that every block of a problem holds one copy.
    pub content: bytes::Bytes,
}

impl SandboxFile {
    /// The file `name` holding `content`, its sha256 computed.
    pub fn new(name: impl Into<String>, content: impl Into<bytes::Bytes>) -> Self {
        use sha2::Digest;
        let content = content.into();
        Self {
            name: name.into(),
            sha256: hex::encode(sha2::Sha256::digest(&content)),
            content,
        }
    }
}

impl std::fmt::Debug for SandboxFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxFile")
            .field("name", &self.name)
            .field("sha256", &self.sha256)
            .field("bytes", &self.content.len())
            .finish()
    }
}

/// One execution.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecRequest {
    /// The source.
    pub code: String,
    /// What the source is.
    pub language: Language,
    /// Files the block sees in its working directory, read-only.
    pub files: Vec<SandboxFile>,
    /// Session key: blocks with the same key share one live interpreter; `None` runs fresh.
    pub session: Option<String>,
    /// Wall-clock limit of this run.
    pub timeout: Duration,
    /// Memory limit of the block, in MiB. Fork mode: the runner's cgroup is set to this plus
    /// the runner's own resident size. Fresh mode and sessions: an address-space limit.
    pub memory_mb: u32,
    /// Most bytes kept of stdout and of stderr each (head and tail).
    pub max_output_bytes: usize,
    /// Written to the program's standard input (fresh runs only).
    pub stdin: Option<String>,
}

impl ExecRequest {
    /// A fresh run of Python `code` with the default limits.
    pub fn new(code: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            language: Language::Python,
            files: Vec::new(),
            session: None,
            timeout: Duration::from_secs(10),
            memory_mb: DEFAULT_BLOCK_MEMORY_MB,
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
    /// Why the code could not run (not the code's own error): set only for a session that is
    /// lost. Any other failure of the sandbox is an [`SandboxError::Infrastructure`].
    pub error: Option<String>,
    /// Figures the block drew with matplotlib (fork mode), in the order shown.
    #[serde(default)]
    pub figures: Vec<Figure>,
    /// Figures left out: past the count limit, too large, or not PNG.
    #[serde(default)]
    pub figures_dropped: u32,
}

/// A figure a block drew, as PNG.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figure {
    /// The PNG file's bytes (base64 on the runner's wire).
    #[serde(with = "base64_bytes")]
    pub png: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl std::fmt::Debug for Figure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Figure({}x{}, {} bytes)",
            self.width,
            self.height,
            self.png.len()
        )
    }
}

/// Bytes as base64 text, the runner's form for binary data.
mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
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
    /// The runner refused to start: its kernel cannot confine blocks, and running them
    /// unconfined was not asked for.
    #[error("the runner refused to start: {0}")]
    Refused(String),
    /// The pool is shut down.
    #[error("the sandbox pool is shut down")]
    Closed,
    /// The block could not be run: its runner failed (died, broke the protocol, stopped
    /// answering, could not start the block, or its daemon erred) on every attempt.
    #[error("sandbox infrastructure failed {attempts} times: {cause}")]
    Infrastructure {
        /// Attempts made, each on another runner.
        attempts: u32,
        /// What went wrong on each.
        cause: String,
    },
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
            Self::Refused(_) => "refused",
            Self::Closed => "closed",
            Self::Infrastructure { .. } => "infrastructure",
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

/// How a runner runs a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunnerMode {
    /// A child forked from a runner that preloaded [`SandboxConfig::preload`].
    Fork,
    /// A new interpreter per block (the behaviour before the fork server).
    Fresh,
}

impl RunnerMode {
    /// The runner's name for it (`START_SANDBOX_MODE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fork => "fork",
            Self::Fresh => "fresh",
        }
    }
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
    /// Fork server or an interpreter per block.
    pub mode: RunnerMode,
    /// Modules the fork server imports (and warms up) once; `None` is the runner's list
    /// (numpy, sympy, scipy, mpmath, pandas, matplotlib and the standard modules TIR code
    /// uses). Modules the interpreter lacks are skipped.
    pub preload: Option<Vec<String>>,
    /// Attached files each runner keeps, in MiB (least recently used evicted past it); in a
    /// container also the size of its `/data` tmpfs. Counted into each block's cgroup limit.
    pub data_mb: u64,
    /// How long a new runner may take to say it is ready: its container's start and the fork
    /// server's preload, which on a node starting many runners at once (or a loaded test
    /// machine) takes far longer than the 2–5 s it takes alone.
    pub ready_timeout: Duration,
    /// Start runners even where the kernel cannot confine blocks (no Landlock, or a seccomp
    /// filter refusing it): blocks then write anywhere the runner may and read every problem's
    /// attached files. Off unless `START_SANDBOX_UNCONFINED=1`: a runner that cannot confine
    /// refuses to start ([`SandboxError::Refused`]).
    pub allow_unconfined: bool,
}

impl SandboxConfig {
    /// The environment a runner is started with, whichever backend starts it.
    pub(crate) fn runner_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            (
                "START_SANDBOX_MODE".to_string(),
                self.mode.as_str().to_string(),
            ),
            // Fixed before the interpreter starts, so every block hashes strings alike.
            ("PYTHONHASHSEED".to_string(), "0".to_string()),
            (
                "START_SANDBOX_DATA_MB".to_string(),
                self.data_mb.to_string(),
            ),
        ];
        if let Some(list) = &self.preload {
            env.push(("START_SANDBOX_PRELOAD".to_string(), list.join(",")));
        }
        if self.allow_unconfined {
            env.push(("START_SANDBOX_UNCONFINED".to_string(), "1".to_string()));
        }
        env
    }
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
            mode: RunnerMode::Fork,
            preload: None,
            data_mb: 256,
            ready_timeout: Duration::from_secs(180),
            allow_unconfined: std::env::var("START_SANDBOX_UNCONFINED").is_ok_and(|v| v == "1"),
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
