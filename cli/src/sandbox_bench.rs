//! `startctl sandbox bench`: the fork server's round trips beside a fresh interpreter per block
//! (and, when asked, a cold `docker run` per block), measured in the same command, printed as a
//! table.

use crate::sandbox_arg::Backend;
use crate::Outcome;
use anyhow::Context;
use start_sandbox::{
    BackendKind, ExecRequest, Language, RunnerMode, Sandbox, SandboxConfig, SandboxFile,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One workload: what runs, with the bundled sales table attached or not, and the stdout it
/// must give.
struct Workload {
    name: &'static str,
    language: Language,
    code: &'static str,
    sales: bool,
    expected: &'static str,
    /// The block's memory limit, MiB.
    memory_mb: u32,
}

const fn python(name: &'static str, code: &'static str, expected: &'static str) -> Workload {
    Workload {
        name,
        language: Language::Python,
        code,
        sales: false,
        expected,
        memory_mb: start_sandbox::DEFAULT_BLOCK_MEMORY_MB,
    }
}

/// The workloads. TIR code is mostly sympy and numpy; a data-analysis problem's blocks query
/// its attached table with SQL, read it with pandas, or plot it.
const WORKLOADS: [Workload; 7] = [
    python("print(1+1)", "print(1+1)", "2\n"),
    python(
        "sympy",
        "import sympy as sp\nx = sp.symbols('x')\nprint(sp.simplify(sp.sin(x)**2 + sp.cos(x)**2))",
        "1\n",
    ),
    python(
        "numpy",
        "import numpy as np\nprint(int(np.arange(1_000_000).sum()))",
        "499999500000\n",
    ),
    python(
        "numpy+sympy",
        "import numpy as np\nimport sympy as sp\nx = sp.symbols('x')\nr = sp.solve(x**2 - 5*x + 6, x)\nprint(int(np.prod(np.array(r, dtype=np.int64))))",
        "6\n",
    ),
    Workload {
        name: "sql+csv",
        language: Language::Sql,
        code: "SELECT SUM(revenue) AS revenue FROM sales WHERE date LIKE '2024-11%';",
        sales: true,
        expected: "revenue\n-------\n243109\n(1 row)\n",
        memory_mb: start_sandbox::DEFAULT_BLOCK_MEMORY_MB,
    },
    Workload {
        name: "pandas+csv",
        language: Language::Python,
        code: "import pandas as pd\ndf = pd.read_csv('sales.csv')\nprint(df[df.date.str.startswith('2024-11')].revenue.sum())",
        sales: true,
        expected: "243109\n",
        memory_mb: start_sandbox::DEFAULT_BLOCK_MEMORY_MB,
    },
    Workload {
        name: "plot+csv",
        language: Language::Python,
        code: "import pandas as pd\nimport matplotlib.pyplot as plt\ndf = pd.read_csv('sales.csv')\ndf.groupby(df.date.str[:7]).revenue.sum().plot()\nplt.show()\nprint('drawn')",
        sales: true,
        expected: "drawn\n",
        // A fresh interpreter's memory limit is an address-space limit, which pandas, pyarrow
        // and matplotlib together fill past 512 MiB with reservations (OpenBLAS then spins in
        // its first allocation): the plot gets 1 GiB, in both pools alike.
        memory_mb: 1024,
    },
];

impl Workload {
    fn request(&self) -> ExecRequest {
        ExecRequest {
            language: self.language,
            files: if self.sales {
                vec![sales()]
            } else {
                Vec::new()
            },
            memory_mb: self.memory_mb,
            ..ExecRequest::new(self.code)
        }
    }
}

/// The bundled data-analysis set's sales table (138 KB).
fn sales() -> SandboxFile {
    let (name, bytes) = crate::examples::ATTACHMENTS[0];
    SandboxFile::new(name, bytes)
}

/// Runs the benchmark: the fork server against an interpreter per block (the runner before
/// it), same backend, same pool size, same workloads, in one command.
pub async fn bench(args: BenchArgs) -> anyhow::Result<Outcome> {
    args.check()?;
    let fork_config = SandboxConfig {
        mode: RunnerMode::Fork,
        ..args.config()
    };
    let fresh_config = SandboxConfig {
        mode: RunnerMode::Fresh,
        ..args.config()
    };
    let image = fork_config.image.clone();
    let fork = Arc::new(Sandbox::start(fork_config.clone()).await?);
    let fresh = Arc::new(Sandbox::start(fresh_config).await?);
    let backend = match fork.backend() {
        BackendKind::Docker => "docker",
        _ => "process",
    };
    println!(
        "sandbox bench: {backend} pools of {} runners each, fork server vs a fresh interpreter per block, {} runs a cell{}",
        fork_config.pool_size,
        args.runs(),
        if args.cold_runs() > 0 && backend == "docker" {
            format!("; cold: `docker run --rm` of {image}, {} runs a cell", args.cold_runs())
        } else {
            String::new()
        }
    );
    // Untimed rounds until every runner of both pools is up and has run each workload once.
    for _ in 0..fork_config.pool_size {
        for w in &WORKLOADS {
            fork.execute(w.request()).await?;
            fresh.execute(w.request()).await?;
        }
    }
    println!(
        "\n{:<12} {:>7} | {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} | {:>10} | {:>9}",
        "workload",
        "callers",
        "fork p50",
        "fork p99",
        "fork /s",
        "fresh p50",
        "fresh p99",
        "fresh /s",
        "throughput",
        "cold p50",
    );
    println!("{}", "-".repeat(112));
    for w in WORKLOADS.iter().filter(|w| args.measures(w.name)) {
        let name = w.name;
        for &callers in args.callers() {
            let mut f = cell(&fork, args.runs(), callers, w).await?;
            let mut o = cell(&fresh, args.runs(), callers, w).await?;
            let (code, expected) = (w.code, w.expected);
            let cold = if args.cold_runs() > 0 && backend == "docker" && !w.sales {
                let image = image.clone();
                let mut c = measure(args.cold_runs(), callers, move || {
                    let image = image.clone();
                    async move { cold_run(&image, code, expected).await }
                })
                .await?;
                format!("{:.1}", c.quantile_ms(0.5))
            } else {
                "-".into()
            };
            println!(
                "{name:<12} {callers:>7} | {:>9.1} {:>9.1} {:>9.1} | {:>9.1} {:>9.1} {:>9.1} | {:>9.1}x | {cold:>9}",
                f.quantile_ms(0.5),
                f.quantile_ms(0.99),
                f.per_second(),
                o.quantile_ms(0.5),
                o.quantile_ms(0.99),
                o.per_second(),
                f.per_second() / o.per_second(),
            );
        }
    }
    for (label, sb) in [("fork", &fork), ("fresh", &fresh)] {
        let stats = sb.stats();
        println!(
            "{label} pool: {} executions, {} runners recycled, {} failed starts, {} infrastructure failures (latencies in ms; throughput = fork /s over fresh /s)",
            stats.executions, stats.recycled, stats.spawn_failures, stats.infrastructure_failures
        );
    }
    fork.shutdown().await;
    fresh.shutdown().await;
    Ok(Outcome::Ok)
}

/// One (pool, workload, callers) cell; every answer is checked.
async fn cell(
    sb: &Arc<Sandbox>,
    runs: usize,
    callers: usize,
    w: &'static Workload,
) -> anyhow::Result<Samples> {
    let sb = sb.clone();
    measure(runs, callers, move || {
        let sb = sb.clone();
        async move {
            let r = sb.execute(w.request()).await?;
            anyhow::ensure!(
                r.stdout == w.expected,
                "{}: the sandbox answered {r:?}",
                w.name
            );
            Ok(())
        }
    })
    .await
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
    /// Measure only these workloads (repeatable: `--workload sympy`); all by default. Every
    /// workload still warms every runner first.
    #[arg(long = "workload")]
    workloads: Vec<String>,
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

    /// Whether workload `name` is measured.
    pub fn measures(&self, name: &str) -> bool {
        self.workloads.is_empty() || self.workloads.iter().any(|w| w == name)
    }

    /// Refuses a workload name the bench does not have.
    pub fn check(&self) -> anyhow::Result<()> {
        for w in &self.workloads {
            anyhow::ensure!(
                WORKLOADS.iter().any(|k| k.name == w),
                "no workload {w:?}; the workloads: {}",
                WORKLOADS
                    .iter()
                    .map(|k| k.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(())
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
