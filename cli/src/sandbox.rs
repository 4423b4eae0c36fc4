//! `startctl sandbox`: run a file in the sandbox, or benchmark it.

use crate::sandbox_arg::Backend;
use crate::sandbox_bench::BenchArgs;
use crate::Outcome;
use anyhow::Context;
use start_sandbox::{ExecRequest, Language, Sandbox, SandboxConfig, SandboxFile};
use std::path::PathBuf;
use std::time::Duration;

/// `startctl sandbox` subcommands.
#[derive(clap::Subcommand)]
pub enum SandboxCommand {
    /// Run a Python (or SQL) file, with attached data files, and print the reply as JSON.
    Run(RunArgs),
    /// Benchmark warm runs against a cold `docker run` per execution.
    Bench(BenchArgs),
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

/// Runs `startctl sandbox`.
pub fn run(command: SandboxCommand) -> anyhow::Result<Outcome> {
    match command {
        SandboxCommand::Run(args) => crate::runtime()?.block_on(run_file(args)),
        SandboxCommand::Bench(args) => {
            crate::runtime()?.block_on(crate::sandbox_bench::bench(args))
        }
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
