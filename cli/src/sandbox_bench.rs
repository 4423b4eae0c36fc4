//! `startctl sandbox bench`: warm pool round trips beside a cold `docker run` per execution,
//! measured in the same command, printed as a table.

use crate::sandbox::{measure, BenchArgs};
use crate::Outcome;
use anyhow::Context;
use start_sandbox::{BackendKind, ExecRequest, Sandbox};
use std::sync::Arc;

/// The workloads: (name, code, expected stdout).
const WORKLOADS: [(&str, &str, &str); 3] = [
    ("print(1+1)", "print(1+1)", "2\n"),
    (
        "sympy simplify",
        "import sympy as sp\nx = sp.symbols('x')\nprint(sp.simplify(sp.sin(x)**2 + sp.cos(x)**2))",
        "1\n",
    ),
    (
        "numpy sum 1e6",
        "import numpy as np\nprint(int(np.arange(1_000_000).sum()))",
        "499999500000\n",
    ),
];

/// Runs the benchmark.
pub async fn bench(args: BenchArgs) -> anyhow::Result<Outcome> {
    let config = args.config();
    let image = config.image.clone();
    let sandbox = Arc::new(Sandbox::start(config.clone()).await?);
    let backend = match sandbox.backend() {
        BackendKind::Docker => "docker",
        _ => "process",
    };
    println!(
        "sandbox bench: warm {backend} pool of {}, {} runs a cell; cold: `docker run --rm` of {image}, {} runs a level",
        config.pool_size,
        args.runs(),
        args.cold_runs()
    );
    // One untimed round per workload, so imports are in the page cache for both paths.
    for (_, code, _) in WORKLOADS {
        sandbox.execute(ExecRequest::new(code)).await?;
    }
    println!(
        "\n{:<16} {:>7} | {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} | {:>8}",
        "workload",
        "callers",
        "warm p50",
        "warm p99",
        "warm /s",
        "cold p50",
        "cold p99",
        "cold /s",
        "speed-up"
    );
    println!("{}", "-".repeat(104));
    for (name, code, expected) in WORKLOADS {
        for &callers in args.callers() {
            let sb = sandbox.clone();
            let mut warm = measure(args.runs(), callers, move || {
                let sb = sb.clone();
                async move {
                    let r = sb.execute(ExecRequest::new(code)).await?;
                    anyhow::ensure!(r.stdout == expected, "warm run answered {r:?}");
                    Ok(())
                }
            })
            .await?;
            let cold = if args.cold_runs() > 0 && backend == "docker" {
                let image = image.clone();
                Some(
                    measure(args.cold_runs(), callers, move || {
                        let image = image.clone();
                        async move { cold_run(&image, code, expected).await }
                    })
                    .await?,
                )
            } else {
                None
            };
            let (c50, c99, cps, speedup) = match cold {
                Some(mut c) => (
                    format!("{:.1}", c.quantile_ms(0.5)),
                    format!("{:.1}", c.quantile_ms(0.99)),
                    format!("{:.1}", c.per_second()),
                    format!("{:.1}x", warm.per_second() / c.per_second()),
                ),
                None => ("-".into(), "-".into(), "-".into(), "-".into()),
            };
            println!(
                "{name:<16} {callers:>7} | {:>9.1} {:>9.1} {:>9.1} | {c50:>9} {c99:>9} {cps:>9} | {speedup:>8}",
                warm.quantile_ms(0.5),
                warm.quantile_ms(0.99),
                warm.per_second()
            );
        }
    }
    let stats = sandbox.stats();
    println!(
        "\npool: {} executions, {} runners recycled, {} failed starts (latencies in ms)",
        stats.executions, stats.recycled, stats.spawn_failures
    );
    sandbox.shutdown().await;
    Ok(Outcome::Ok)
}

/// One cold execution: a new locked-down container per run, as a naive sandbox would do.
async fn cold_run(image: &str, code: &str, expected: &str) -> anyhow::Result<()> {
    let out = tokio::process::Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "--read-only",
            "--tmpfs",
            "/tmp:rw,size=64m",
            "--memory",
            "1g",
            "--memory-swap",
            "1g",
            "--pids-limit",
            "128",
            "--cpus",
            "1",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--user",
            "10001:10001",
            "-e",
            "OPENBLAS_NUM_THREADS=1",
            image,
            "python3",
            "-I",
            "-c",
            code,
        ])
        .output()
        .await
        .context("running docker")?;
    anyhow::ensure!(
        out.status.success() && out.stdout == expected.as_bytes(),
        "cold run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
