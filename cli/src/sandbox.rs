//! `startctl sandbox`: run a file in the sandbox, or benchmark it.

use crate::Outcome;
use anyhow::Context;
use start_sandbox::{BackendKind, ExecRequest, Language, Sandbox, SandboxConfig, SandboxFile};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `startctl sandbox` subcommands.
#[derive(clap::Subcommand)]
pub enum SandboxCommand {
    /// Run a Python (or SQL) file, with attached data files, and print the reply as JSON.
    Run(RunArgs),
    /// Benchmark warm runs against a cold `docker run` per execution.
    Bench(BenchArgs),
}

/// Backend choice on the command line.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Backend {
    /// Docker when a daemon answers, else processes.
    Auto,
    /// Docker containers.
    Docker,
    /// Child processes (weaker isolation).
    Process,
}

impl From<Backend> for BackendKind {
    fn from(b: Backend) -> Self {
        match b {
            Backend::Auto => BackendKind::Auto,
            Backend::Docker => BackendKind::Docker,
            Backend::Process => BackendKind::Process,
        }
    }
}

/// Arguments of `startctl sandbox run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The Python file.
    file: PathBuf,
    /// Wall-clock limit in seconds.
    #[arg(long, default_value_t = 10.0)]
    timeout_s: f64,
    /// Memory limit in MiB.
    #[arg(long, default_value_t = 512)]
    memory_mb: u32,
    /// Backend.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    backend: Backend,
    /// A file whose contents go to the program's standard input.
    #[arg(long)]
    stdin: Option<PathBuf>,
    /// What the file is: python, or sql (run against the attached files).
    #[arg(long, value_enum, default_value_t = LanguageArg::Python)]
    language: LanguageArg,
    /// A data file the code sees in its working directory, read-only, under its own name
    /// (CSV, Parquet or SQLite for SQL); repeatable.
    #[arg(long)]
    attach: Vec<PathBuf>,
}

/// The language of `startctl sandbox run`'s file.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum LanguageArg {
    /// A Python script.
    Python,
    /// SQL against the attached files.
    Sql,
}

/// Arguments of `startctl sandbox bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Backend for the warm runs.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    backend: Backend,
    /// Warm runs per (workload, callers) cell.
    #[arg(long, default_value_t = 64)]
    runs: usize,
    /// Cold `docker run` executions per cell as a third column (0 skips the cold path).
    #[arg(long, default_value_t = 0)]
    cold_runs: usize,
    /// Caller counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    callers: Vec<usize>,
    /// Warm pool size; the default follows the cores.
    #[arg(long)]
    pool_size: Option<usize>,
}

/// Starts a sandbox, or warns (saying what `consequence` follows) and goes on without one.
pub async fn start_or_warn(backend: Backend, consequence: &str) -> Option<std::sync::Arc<Sandbox>> {
    match Sandbox::start(SandboxConfig {
        backend: backend.into(),
        ..SandboxConfig::default()
    })
    .await
    {
        Ok(sb) => Some(std::sync::Arc::new(sb)),
        Err(e) => {
            eprintln!("startctl: WARNING: no sandbox ({e}): {consequence}");
            None
        }
    }
}

/// A multi-threaded runtime for the async subcommands.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Runs `startctl sandbox`.
pub fn run(command: SandboxCommand) -> anyhow::Result<Outcome> {
    match command {
        SandboxCommand::Run(args) => runtime()?.block_on(run_file(args)),
        SandboxCommand::Bench(args) => runtime()?.block_on(crate::sandbox_bench::bench(args)),
    }
}

async fn run_file(args: RunArgs) -> anyhow::Result<Outcome> {
    let code = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let stdin = match &args.stdin {
        Some(p) => {
            Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)
        }
        None => None,
    };
    let config = SandboxConfig {
        backend: args.backend.into(),
        pool_size: 1,
        ..SandboxConfig::default()
    };
    let mut files = Vec::new();
    for path in &args.attach {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{}: no file name", path.display()))?
            .to_string();
        start_schemas::attachment::check_name(&name)
            .map_err(|e| anyhow::anyhow!("--attach {}: {e}", path.display()))?;
        files.push(SandboxFile::new(name, bytes));
    }
    let sandbox = Sandbox::start(config).await?;
    let request = ExecRequest {
        timeout: Duration::from_secs_f64(args.timeout_s.max(0.001)),
        memory_mb: args.memory_mb,
        stdin,
        language: match args.language {
            LanguageArg::Python => Language::Python,
            LanguageArg::Sql => Language::Sql,
        },
        files,
        ..ExecRequest::new(code)
    };
    let result = sandbox.execute(request).await;
    sandbox.shutdown().await;
    let result = result?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(Outcome::Ok)
}

impl BenchArgs {
    /// The sandbox configuration of both pools (the bench sets the mode).
    pub fn config(&self) -> SandboxConfig {
        let mut config = SandboxConfig {
            backend: self.backend.into(),
            ..SandboxConfig::default()
        };
        if let Some(n) = self.pool_size {
            config.pool_size = n;
        }
        config
    }

    /// Warm runs per cell.
    pub fn runs(&self) -> usize {
        self.runs
    }

    /// Cold runs per callers level.
    pub fn cold_runs(&self) -> usize {
        self.cold_runs
    }

    /// Caller counts.
    pub fn callers(&self) -> &[usize] {
        &self.callers
    }
}

/// Latency samples of one cell.
pub struct Samples {
    /// Each execution's round trip.
    pub latencies: Vec<Duration>,
    /// Wall time of the whole cell.
    pub wall: Duration,
}

impl Samples {
    /// The q-quantile in milliseconds.
    pub fn quantile_ms(&mut self, q: f64) -> f64 {
        self.latencies.sort_unstable();
        let i = ((self.latencies.len().saturating_sub(1)) as f64 * q).round() as usize;
        self.latencies
            .get(i)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    }

    /// Executions per second over the cell.
    pub fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }
}

/// Runs `total` calls of `call` with `callers` concurrent callers and times each.
pub async fn measure<F, Fut>(total: usize, callers: usize, call: F) -> anyhow::Result<Samples>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let call = std::sync::Arc::new(call);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..callers.max(1) {
        let call = call.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total {
                let t = Instant::now();
                call().await?;
                mine.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(mine)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for t in tasks {
        latencies.extend(t.await??);
    }
    Ok(Samples {
        latencies,
        wall: start.elapsed(),
    })
}
