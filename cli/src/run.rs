//! `startctl run`: the main job on embedded defaults.
//!
//! Checks the problems (the bundled examples unless files are given) and the model, then runs
//! the cluster in one process: a coordinator on the in-process store serving gRPC on a loopback
//! port, one worker (engine, the best sandbox available, grading) polling it over that socket,
//! and this command as the client that submits the job and follows it. The dataset lands in a
//! new directory under `out/`; the command ends with its summary. Same code paths as a cluster.

use crate::cluster::{follow, outcome_of, submit_problems, Connection};
use crate::examples;
use crate::generate::{local_pipeline, GenOptions};
use crate::runtime;
use crate::validate::print_counts;
use crate::Outcome;
use start_schemas::attachment::AttachmentRoot;
use start_schemas::model::{default_model_path, sha256_file, DEFAULT_MODEL_SHA256};
use start_schemas::rows::{read_jsonl, ReadOptions};
use start_schemas::tool::ToolSet;
use start_schemas::validate::Checker;
use std::path::PathBuf;

/// Arguments of `startctl run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Problem files; the bundled examples when absent.
    #[arg(long)]
    problems: Vec<PathBuf>,
    /// Output dataset: a directory or an object-store URL (`s3://bucket/prefix`, ...);
    /// `out/run-<UTC time>` when absent.
    #[arg(long)]
    out: Option<String>,
    #[command(flatten)]
    options: GenOptions,
}

/// Runs `startctl run`.
pub fn run(args: RunArgs) -> anyhow::Result<Outcome> {
    let mut checker = Checker::default();
    let mut problems = Vec::new();
    let mut report = |d: &start_schemas::rows::Diagnostic| println!("{d}");
    if args.problems.is_empty() {
        println!(
            "problems: the bundled examples ({} files)",
            examples::FILES.len()
        );
        checker.attachments = Some(AttachmentRoot::Embedded(examples::ATTACHMENTS));
        for (name, text) in examples::FILES {
            for item in read_jsonl(name, text.as_bytes(), &ReadOptions::default()) {
                checker.rows += 1;
                match item.value {
                    Ok(v) => checker
                        .check_value(&v, &item.location, &mut report, &mut |p| problems.push(p)),
                    Err(d) => {
                        checker.errors += 1;
                        report(&d);
                    }
                }
            }
        }
    } else {
        for file in &args.problems {
            checker.check_file(file, &mut report, &mut |p| problems.push(p));
        }
    }
    print_counts(&mut std::io::stdout().lock(), &checker.counts)?;
    println!("{} problems, {} errors", checker.valid, checker.errors);
    if checker.errors > 0 {
        return Ok(Outcome::InvalidInput);
    }
    if args.options.engine.engine == start_worker::EngineKind::Llama {
        let model = args
            .options
            .engine
            .model
            .clone()
            .unwrap_or_else(default_model_path);
        match sha256_file(&model) {
            Ok(sha) if sha == DEFAULT_MODEL_SHA256 => {
                println!(
                    "model: {} (sha256 {}, the default model)",
                    model.display(),
                    &sha[..12]
                )
            }
            Ok(sha) => println!("model: {} (sha256 {})", model.display(), &sha[..12]),
            Err(e) => anyhow::bail!(
                "model {}: {e}; run scripts/setup to fetch the default model",
                model.display()
            ),
        }
    } else {
        println!(
            "engine: OpenAI-compatible server at {}",
            args.options.engine.describe()
        );
    }
    let out = args
        .out
        .unwrap_or_else(|| format!("out/run-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ")));
    let mut options = args.options;
    if options.sampling.tools.is_empty() {
        // The bundled problems include the data-analysis set: SQL as well as Python.
        options.sampling.tools = ToolSet::all().iter().collect();
    }
    println!("tools: {}", options.sampling.tool_set());
    let rt = runtime()?;
    let job = rt.block_on(run_cluster(problems, &out, &options))?;
    let outcome = outcome_of(&job);
    if !job.message.is_empty() {
        println!("message: {}", job.message);
    }
    rt.block_on(crate::report::summary_and_report(&out))?;
    println!("read it with: startctl inspect {out} --rows 3");
    Ok(outcome)
}

/// The in-process cluster: coordinator, worker and client over a loopback socket.
async fn run_cluster(
    problems: Vec<start_schemas::problem::Problem>,
    out: &str,
    o: &GenOptions,
) -> anyhow::Result<start_schemas::proto::Job> {
    use start_coordinator::{MemoryStore, ServerConfig, ServiceConfig, StorePolicy};
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::Duration;
    // A URL's bucket is the store root and the rest the job's output_uri; a local --out is
    // used as given (relative to the working directory, or absolute).
    let (store_root, output_uri) = match out.split_once("://") {
        Some((scheme, rest)) => {
            let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
            (
                start_dataset::StoreRoot::parse(&format!("{scheme}://{bucket}"))?,
                path.to_string(),
            )
        }
        None => (start_dataset::StoreRoot::parse(".")?, out.to_string()),
    };
    let registry = start_telemetry::Registry::default();
    let (pipeline, sandbox) = local_pipeline(o, &registry).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop_coordinator, coordinator_stopped) = tokio::sync::oneshot::channel::<()>();
    let config = ServerConfig {
        service: ServiceConfig {
            // One process: nothing can die without the rest, so leases may be long.
            lease_ttl: Duration::from_secs(600),
            // The client is this process, and --out may be any directory.
            confine_paths: false,
            store_root: store_root.clone(),
            ..ServiceConfig::default()
        },
        token: None,
        tls: None,
    };
    let store = Arc::new(MemoryStore::new(StorePolicy::default()));
    let coordinator = tokio::spawn(start_coordinator::serve(
        config,
        store,
        listener,
        None,
        async {
            let _ = coordinator_stopped.await;
        },
    ));
    let (stop_worker, worker_stopped) = tokio::sync::oneshot::channel::<()>();
    let worker_config = start_worker::WorkerConfig {
        slots: o.slots.max(1) as u32,
        store_root,
        ..start_worker::WorkerConfig::new(url.clone())
    };
    let worker = tokio::spawn(start_worker::run(
        worker_config,
        pipeline,
        registry,
        Arc::new(AtomicBool::new(false)),
        async {
            let _ = worker_stopped.await;
        },
    ));
    let connection = Connection {
        coordinator: url,
        token: None,
        token_file: None,
        tls_ca: None,
    };
    let mut client = connection.client()?;
    let spec = start_schemas::proto::JobSpec {
        // The name seeds the trajectories: the same --job-id and --seed repeat the same tokens.
        name: o.job_id.clone(),
        unit_size: 4,
        output_uri,
        ..o.sampling.spec()
    };
    let answer = submit_problems(&mut client, spec, problems)
        .await
        .map_err(|e| anyhow::anyhow!("submit: {}", e.message()))?;
    println!(
        "job {}: {} problems x {} samples in {} units, {} slots -> {}",
        answer.job_id,
        answer.problems,
        o.sampling.samples.max(1),
        answer.units,
        o.slots,
        out
    );
    let job = follow(&mut client, &answer.job_id, false).await?;
    let _ = stop_worker.send(());
    let summary = worker.await??;
    tracing::info!(?summary, "in-process worker stopped");
    let _ = stop_coordinator.send(());
    coordinator.await??;
    if let Some(sb) = sandbox {
        sb.shutdown().await;
    }
    Ok(job)
}
