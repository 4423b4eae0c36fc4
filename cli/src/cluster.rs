//! The cluster commands: `submit`, `watch`, `status` and `cancel`, spoken to a coordinator.
//!
//! Exit codes for batch schedulers: `submit --wait` and `watch` exit 0 when the job succeeded,
//! 3 when it failed, 4 when it was cancelled, 2 when the input was refused, 1 on any other error.

use crate::generate::SamplingArgs;
use crate::Outcome;
use anyhow::Context;
use futures_util::StreamExt;
use serde_json::json;
use start_schemas::client::Bearer;
use start_schemas::proto::{
    self, job_service_client::JobServiceClient, worker_service_client::WorkerServiceClient,
    JobState,
};
use start_schemas::validate::Checker;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// How to reach the coordinator.
#[derive(clap::Args, Clone)]
pub struct Connection {
    /// Coordinator URL (https:// with TLS).
    #[arg(
        long,
        env = "START_COORDINATOR",
        default_value = "http://127.0.0.1:50051"
    )]
    pub coordinator: String,
    /// Bearer token.
    #[arg(long, env = "START_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the bearer token; wins over --token.
    #[arg(long, env = "START_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// PEM CA certificate of a TLS coordinator.
    #[arg(long, env = "START_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
}

/// Output format of `submit --wait`, `watch` and `status`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Lines for people.
    Text,
    /// One JSON document for programs.
    Json,
}

/// A job-API client.
pub type Client = JobServiceClient<InterceptedService<Channel, Bearer>>;

impl Connection {
    /// A channel (connected on first use: the first call reports an unreachable coordinator)
    /// with the token interceptor. No per-call time-out: `watch` holds a stream for hours.
    fn channel(&self) -> anyhow::Result<(Channel, Bearer)> {
        let ca = match &self.tls_ca {
            Some(p) => {
                Some(std::fs::read(p).with_context(|| format!("CA certificate {}", p.display()))?)
            }
            None => None,
        };
        let token =
            start_schemas::client::read_token(self.token.as_deref(), self.token_file.as_deref())?;
        Ok(start_schemas::client::channel(
            &self.coordinator,
            ca.as_deref(),
            token.as_deref(),
            None,
        )?)
    }

    /// A job-API client.
    pub fn client(&self) -> anyhow::Result<Client> {
        let (channel, bearer) = self.channel()?;
        Ok(JobServiceClient::with_interceptor(channel, bearer))
    }
}

/// Arguments of `startctl submit`.
#[derive(clap::Args)]
pub struct SubmitArgs {
    /// Problem files, checked here and streamed to the coordinator.
    files: Vec<PathBuf>,
    /// A problem file in the shared store, read by the coordinator instead of streaming.
    #[arg(long)]
    problems_uri: Option<String>,
    /// Dataset directory in the shared store (as the coordinator and workers see it).
    #[arg(long)]
    out: String,
    /// Job name; also the seed namespace, so resubmitting a spec repeats its tokens.
    #[arg(long, default_value = "")]
    name: String,
    /// Problems per work unit (one shard each).
    #[arg(long, default_value_t = 8)]
    unit_size: u32,
    /// Only workers serving this GGUF sha256 get the job's units.
    #[arg(long, default_value = "")]
    model_sha256: String,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Wait for the job to end; the exit code says how it ended.
    #[arg(long)]
    wait: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    output: Format,
    #[command(flatten)]
    connection: Connection,
}

/// Arguments of `startctl watch`.
#[derive(clap::Args)]
pub struct WatchArgs {
    /// The job.
    job_id: String,
    /// Output format of the final state.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    output: Format,
    #[command(flatten)]
    connection: Connection,
}

/// Arguments of `startctl status`.
#[derive(clap::Args)]
pub struct StatusArgs {
    /// One job; every recent job and the workers when absent.
    job_id: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    output: Format,
    #[command(flatten)]
    connection: Connection,
}

/// Arguments of `startctl cancel`.
#[derive(clap::Args)]
pub struct CancelArgs {
    /// The job.
    job_id: String,
    /// Why, recorded on the job.
    #[arg(long, default_value = "cancelled with startctl")]
    reason: String,
    #[command(flatten)]
    connection: Connection,
}

/// A job as JSON (for `--output json`).
pub fn job_json(j: &proto::Job) -> serde_json::Value {
    let c = j.counters.unwrap_or_default();
    let spec = j.spec.clone().unwrap_or_default();
    json!({
        "job_id": j.job_id,
        "name": spec.name,
        "state": state_name(j),
        "message": j.message,
        "output_uri": spec.output_uri,
        "problems": c.problems,
        "units_total": c.units_total,
        "units_done": c.units_done,
        "units_leased": c.units_leased,
        "trajectories": c.trajectories,
        "correct": c.correct,
        "completion_tokens": c.completion_tokens,
        "tool_calls": c.tool_calls,
        "errored": c.errored,
        "lease_expirations": c.lease_expirations,
        "created_at_ms": j.created_at_ms,
        "updated_at_ms": j.updated_at_ms,
    })
}

fn state_of(j: &proto::Job) -> JobState {
    JobState::try_from(j.state).unwrap_or_default()
}

fn state_name(j: &proto::Job) -> &'static str {
    start_coordinator::store::state::name(state_of(j))
}

/// The exit outcome of an ended job.
pub fn outcome_of(j: &proto::Job) -> Outcome {
    match state_of(j) {
        JobState::Succeeded => Outcome::Ok,
        JobState::Cancelled => Outcome::Cancelled,
        _ => Outcome::Failed,
    }
}

/// Committed accuracy as a percentage, `-` before the first trajectory; `n/a` for a judge job,
/// whose rows are verdicts (`final_answer`), never graded.
fn accuracy(j: &proto::Job) -> String {
    let c = j.counters.unwrap_or_default();
    let judge = j
        .spec
        .as_ref()
        .is_some_and(|s| s.mode == proto::GenerationMode::Judge as i32);
    if judge {
        "n/a".into()
    } else if c.trajectories > 0 {
        format!("{:.1}%", 100.0 * c.correct as f64 / c.trajectories as f64)
    } else {
        "-".into()
    }
}

fn progress_line(j: &proto::Job, started: Instant, first_done: u64) -> String {
    let c = j.counters.unwrap_or_default();
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    let rate = (c.units_done.saturating_sub(first_done)) as f64 / secs;
    let eta = if rate > 0.0 {
        format!("{:.0}s", (c.units_total - c.units_done) as f64 / rate)
    } else {
        "?".into()
    };
    let acc = accuracy(j);
    format!(
        "{} {:<9} units {}/{} ({} leased), {} trajectories, accuracy {acc}, {} tokens ({:.0} tok/s), {} tool calls, {} errored, {} lease expirations, ETA {eta}",
        j.job_id,
        state_name(j),
        c.units_done,
        c.units_total,
        c.units_leased,
        c.trajectories,
        c.completion_tokens,
        c.completion_tokens as f64 / secs,
        c.tool_calls,
        c.errored,
        c.lease_expirations,
    )
}

/// Follows a job to its end, drawing a progress line on stderr; returns the final state.
pub async fn follow(client: &mut Client, job_id: &str, quiet: bool) -> anyhow::Result<proto::Job> {
    let started = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut last: Option<proto::Job> = None;
    let mut first_done = None;
    let mut printed = Instant::now() - Duration::from_secs(60);
    // A dropped stream (coordinator restart) is resumed: the job lives in the store.
    for attempt in 0.. {
        let stream = client
            .watch_job(proto::WatchJobRequest {
                job_id: job_id.to_string(),
            })
            .await;
        let mut stream = match stream {
            Ok(s) => s.into_inner(),
            Err(e) if e.code() == tonic::Code::Unavailable && attempt < 120 => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => return Err(anyhow::anyhow!("watch {job_id}: {}", e.message())),
        };
        while let Some(event) = stream.next().await {
            let Ok(event) = event else { break };
            let Some(job) = event.job else { continue };
            let done = job.counters.as_ref().map_or(0, |c| c.units_done);
            let first = *first_done.get_or_insert(done);
            if !quiet
                && (tty
                    || printed.elapsed() >= Duration::from_secs(10)
                    || start_coordinator::store::state::is_terminal(state_of(&job)))
            {
                let line = progress_line(&job, started, first);
                if tty {
                    eprint!("\r{line}   ");
                } else {
                    eprintln!("{line}");
                }
                let _ = std::io::stderr().flush();
                printed = Instant::now();
            }
            let ended = start_coordinator::store::state::is_terminal(state_of(&job));
            last = Some(job);
            if ended {
                if tty && !quiet {
                    eprintln!();
                }
                return Ok(last.expect("set above"));
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    last.ok_or_else(|| anyhow::anyhow!("watch {job_id}: no event"))
}

/// Streams a checked spec, the files its problems attach, and the problems; returns the
/// submission's answer.
pub async fn submit_problems(
    client: &mut Client,
    spec: proto::JobSpec,
    problems: Vec<start_schemas::problem::Problem>,
) -> Result<proto::SubmitJobResponse, tonic::Status> {
    let messages = start_schemas::client::submission(spec, &problems);
    Ok(client
        .submit_job(futures_util::stream::iter(messages))
        .await?
        .into_inner())
}

fn refused(e: tonic::Status) -> anyhow::Result<Outcome> {
    if e.code() == tonic::Code::InvalidArgument {
        eprintln!("the coordinator refused the job:\n{}", e.message());
        Ok(Outcome::InvalidInput)
    } else {
        Err(anyhow::anyhow!("{:?}: {}", e.code(), e.message()))
    }
}

/// Runs `startctl submit`.
pub async fn submit(args: SubmitArgs) -> anyhow::Result<Outcome> {
    let mut checker = Checker::default();
    let mut problems = Vec::new();
    for f in &args.files {
        checker.check_file(f, &mut |d| eprintln!("{d}"), &mut |p| problems.push(p));
    }
    if checker.errors > 0 {
        eprintln!(
            "{} errors in the problem files; nothing submitted",
            checker.errors
        );
        return Ok(Outcome::InvalidInput);
    }
    if problems.is_empty() && args.problems_uri.is_none() {
        eprintln!("no problems: give problem files or --problems-uri");
        return Ok(Outcome::InvalidInput);
    }
    let spec = proto::JobSpec {
        name: args.name.clone(),
        unit_size: args.unit_size,
        output_uri: args.out.clone(),
        problems_uri: args.problems_uri.clone().unwrap_or_default(),
        model_sha256: args.model_sha256.clone(),
        ..args.sampling.spec()
    };
    let mut client = args.connection.client()?;
    let started = Instant::now();
    let answer = match submit_problems(&mut client, spec, problems).await {
        Ok(a) => a,
        Err(e) => return refused(e),
    };
    let json_out = args.output == Format::Json;
    if !json_out {
        println!(
            "submitted {}: {} problems in {} units ({:.2}s)",
            answer.job_id,
            answer.problems,
            answer.units,
            started.elapsed().as_secs_f64()
        );
    }
    if !args.wait {
        if json_out {
            println!(
                "{}",
                json!({"job_id": answer.job_id, "problems": answer.problems, "units": answer.units})
            );
        }
        return Ok(Outcome::Ok);
    }
    let job = follow(&mut client, &answer.job_id, json_out).await?;
    report_end(&job, args.output)
}

fn report_end(job: &proto::Job, format: Format) -> anyhow::Result<Outcome> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&job_json(job))?),
        Format::Text => {
            println!(
                "{}",
                progress_line(job, Instant::now(), 0)
                    .replace(", ETA ?", "")
                    .replace(", ETA 0s", "")
            );
            if !job.message.is_empty() {
                println!("message: {}", job.message);
            }
        }
    }
    Ok(outcome_of(job))
}

/// Runs `startctl watch`.
pub async fn watch(args: WatchArgs) -> anyhow::Result<Outcome> {
    let mut client = args.connection.client()?;
    let job = follow(&mut client, &args.job_id, args.output == Format::Json).await?;
    report_end(&job, args.output)
}

/// Runs `startctl status`.
pub async fn status(args: StatusArgs) -> anyhow::Result<Outcome> {
    let mut client = args.connection.client()?;
    if let Some(id) = &args.job_id {
        let job = client
            .get_job(proto::GetJobRequest { job_id: id.clone() })
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message()))?
            .into_inner();
        return match args.output {
            Format::Json => {
                println!("{}", serde_json::to_string_pretty(&job_json(&job))?);
                Ok(Outcome::Ok)
            }
            Format::Text => {
                println!("{}", progress_line(&job, Instant::now(), 0));
                if !job.message.is_empty() {
                    println!("message: {}", job.message);
                }
                Ok(Outcome::Ok)
            }
        };
    }
    let jobs = client
        .list_jobs(proto::ListJobsRequest { limit: 20 })
        .await
        .map_err(|e| anyhow::anyhow!("list jobs: {}", e.message()))?
        .into_inner()
        .jobs;
    let workers = workers(&args.connection).await?;
    if args.output == Format::Json {
        let ws: Vec<_> = workers
            .iter()
            .map(|w| {
                let r = w.registration.clone().unwrap_or_default();
                json!({"worker_id": w.worker_id, "hostname": r.hostname, "model": r.model_name, "slots": r.slots,
                       "leases": w.leases, "last_seen_ms": w.last_seen_ms})
            })
            .collect();
        let js: Vec<_> = jobs.iter().map(job_json).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"jobs": js, "workers": ws}))?
        );
        return Ok(Outcome::Ok);
    }
    println!(
        "{:<26} {:<16} {:<10} {:>11} {:>12} {:>9}",
        "job", "name", "state", "units", "trajectories", "accuracy"
    );
    for j in &jobs {
        let c = j.counters.unwrap_or_default();
        let acc = accuracy(j);
        println!(
            "{:<26} {:<16} {:<10} {:>11} {:>12} {:>9}",
            j.job_id,
            j.spec.as_ref().map_or("", |s| s.name.as_str()),
            state_name(j),
            format!("{}/{}", c.units_done, c.units_total),
            c.trajectories,
            acc
        );
    }
    let now = chrono::Utc::now().timestamp_millis();
    println!(
        "\n{:<32} {:<36} {:>5} {:>6} {:>10}",
        "worker", "model", "slots", "leases", "last seen"
    );
    for w in &workers {
        let r = w.registration.clone().unwrap_or_default();
        println!(
            "{:<32} {:<36} {:>5} {:>6} {:>9.1}s",
            w.worker_id,
            r.model_name,
            r.slots,
            w.leases,
            (now - w.last_seen_ms) as f64 / 1000.0
        );
    }
    Ok(Outcome::Ok)
}

async fn workers(c: &Connection) -> anyhow::Result<Vec<proto::WorkerInfo>> {
    // The registry is served by the worker API: same endpoint, same token.
    let (channel, bearer) = c.channel()?;
    Ok(WorkerServiceClient::with_interceptor(channel, bearer)
        .list_workers(proto::ListWorkersRequest {})
        .await
        .map_err(|e| anyhow::anyhow!("list workers: {}", e.message()))?
        .into_inner()
        .workers)
}

/// Runs `startctl cancel`.
pub async fn cancel(args: CancelArgs) -> anyhow::Result<Outcome> {
    let mut client = args.connection.client()?;
    let job = client
        .cancel_job(proto::CancelJobRequest {
            job_id: args.job_id.clone(),
            reason: args.reason,
        })
        .await
        .map_err(|e| anyhow::anyhow!("cancel {}: {}", args.job_id, e.message()))?
        .into_inner();
    println!("{} is {}", job.job_id, state_name(&job));
    Ok(Outcome::Ok)
}
