//! `startctl`: the command line of start.
//!
//! Thin by design: each subcommand parses its arguments into the library's types and prints
//! what the library returns. Exit codes: 0 success, 2 invalid input (every problem reported),
//! 3 the job failed, 4 the job was cancelled, 1 any other failure.

mod cluster;
mod decontaminate;
mod examples;
mod export;
mod generate;
mod grade;
mod import;
mod inspect;
mod judge;
mod mix;
mod report;
mod run;
mod sandbox;
mod sandbox_arg;
mod sandbox_bench;
mod validate;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// start's command line: check problem files, import public sets, read datasets, run jobs.
#[derive(Parser)]
#[command(name = "startctl", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the main job on embedded defaults: the bundled examples on an in-process cluster.
    Run(run::RunArgs),
    /// Submit a job to a coordinator; with --wait, exit 0 only when it succeeds.
    Submit(cluster::SubmitArgs),
    /// Follow a job's progress until it ends.
    Watch(cluster::WatchArgs),
    /// Show recent jobs and the workers, or one job.
    Status(cluster::StatusArgs),
    /// Cancel a job.
    Cancel(cluster::CancelArgs),
    /// Check problem files (JSONL, JSONL.gz, Parquet) and report every error with its place.
    Validate(validate::ValidateArgs),
    /// Convert a public problem set (AIME, MATH, NuminaMath, GPQA CSV, HumanEval,
    /// LiveCodeBench, CodeContests, Codeforces, APPS/TACO) to problem JSONL.
    Import(import::ImportArgs),
    /// Remove problems that overlap evaluation sets, and near-duplicates across sources.
    Decontaminate(decontaminate::DecontaminateArgs),
    /// Draw a problem set from several files by counts or shares, with a recipe to rebuild it.
    Mix(mix::MixArgs),
    /// Summarise a trajectory dataset: shards, accuracy, tool calls, tokens; show rows.
    Inspect(inspect::InspectArgs),
    /// Write a dataset's HTML report: summary, plots and a trajectory viewer in one file.
    Report(report::ReportArgs),
    /// Generate trajectories locally: engine, sandbox and grading, into a Parquet dataset.
    Generate(generate::GenerateArgs),
    /// Grade responses produced anywhere against their problems; accuracy by source and kind.
    Grade(grade::GradeArgs),
    /// Hint-RFT: select correct, de-duplicated, non-repetitive trajectories as SFT data, with
    /// token ids and loss masks that leave prompts and tool outputs untrained.
    Export(export::ExportArgs),
    /// Write a judge prompt for every code block of a dataset's rows, for a judge job
    /// (`submit --mode judge`); `export --judge` reads its verdicts.
    Judge(judge::JudgeArgs),
    /// Run Python in the sandbox, or benchmark it.
    #[command(subcommand)]
    Sandbox(sandbox::SandboxCommand),
}

/// How a subcommand ended, mapped to the process exit code.
pub enum Outcome {
    /// Everything was fine.
    Ok,
    /// The input had errors; they were reported.
    InvalidInput,
    /// The job failed (exit 3).
    Failed,
    /// The job was cancelled (exit 4).
    Cancelled,
}

/// A multi-threaded runtime for the async subcommands.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("starting the async runtime: {e}"))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("START_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Submit(args) => runtime().and_then(|rt| rt.block_on(cluster::submit(args))),
        Command::Watch(args) => runtime().and_then(|rt| rt.block_on(cluster::watch(args))),
        Command::Status(args) => runtime().and_then(|rt| rt.block_on(cluster::status(args))),
        Command::Cancel(args) => runtime().and_then(|rt| rt.block_on(cluster::cancel(args))),
        Command::Validate(args) => validate::run(args),
        Command::Import(args) => import::run(args),
        Command::Decontaminate(args) => decontaminate::run(args),
        Command::Mix(args) => mix::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Report(args) => report::run(args),
        Command::Sandbox(command) => sandbox::run(command),
        Command::Grade(args) => grade::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Export(args) => export::run(args),
        Command::Judge(args) => judge::run(args),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::InvalidInput) => ExitCode::from(2),
        Ok(Outcome::Failed) => ExitCode::from(3),
        Ok(Outcome::Cancelled) => ExitCode::from(4),
        Err(e) => {
            eprintln!("startctl: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
