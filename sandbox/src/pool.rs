//! The runner pool shared by both backends.
//!
//! A semaphore counts idle runners, so `execute` waits (backpressure) while every runner is busy
//! or being replaced. A runner that timed out, ran out of memory, was killed by a signal, broke
//! the protocol or served `max_runs_per_runner` runs is retired and replaced by a background
//! task. Callers never wait for a container to start. Whatever a runner does, the pool answers
//! with a result or an error, and it never panics.
//!
//! A fresh block whose runner fails (see [`SandboxError::Infrastructure`]) is run once more on
//! another runner: the block starts from a clean state either way, so the retry is exactly
//! the run that should have happened. A session's block is not retried: its state died with
//! the runner, and replaying it would be guessing.

use crate::protocol::Link;
use crate::{ExecRequest, ExecResult, SandboxConfig, SandboxError, SandboxFile};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// A boxed future, for the object-safe [`Spawner`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A started runner.
pub struct Runner {
    /// Its protocol connection.
    pub link: Link,
    /// Runs served so far.
    pub runs: u32,
    /// Stops it for good (kills the container or the process); awaited once on retirement.
    pub retire: BoxFuture<'static, ()>,
    /// Which runner this is for its spawner (a container id, a cgroup), for [`Spawner::set_memory`].
    pub id: String,
    /// What it said when it was ready.
    pub hello: crate::protocol::Hello,
    /// The memory limit its cgroup has now, in MiB; 0 until the pool sets one.
    pub memory_mb: u64,
    /// The attached files it holds (sha256 -> bytes), as its `put_file` replies said: sent
    /// once per runner, and counted into its blocks' cgroup limit (a container keeps them in
    /// a tmpfs, which the cgroup is charged for).
    pub files: HashMap<String, u64>,
}

impl Runner {
    /// A runner just started: no runs, no files.
    pub fn new(
        link: Link,
        retire: BoxFuture<'static, ()>,
        id: String,
        hello: crate::protocol::Hello,
        memory_mb: u64,
    ) -> Self {
        Self {
            link,
            runs: 0,
            retire,
            id,
            hello,
            memory_mb,
            files: HashMap::new(),
        }
    }

    /// MiB of attached files it holds, rounded up.
    fn files_mb(&self) -> u64 {
        self.files.values().sum::<u64>().div_ceil(1 << 20)
    }

    /// Gives it the request's files it does not hold yet, within [`FILES_TIMEOUT`].
    async fn sync_files(&mut self, files: &[SandboxFile]) -> Result<(), SandboxError> {
        let sync = async {
            for file in files {
                if self.files.contains_key(&file.sha256) {
                    continue;
                }
                for evicted in self.link.put_file(file).await? {
                    self.files.remove(&evicted);
                }
                self.files
                    .insert(file.sha256.clone(), file.content.len() as u64);
            }
            Ok(())
        };
        tokio::time::timeout(FILES_TIMEOUT, sync)
            .await
            .unwrap_or(Err(SandboxError::Unresponsive(FILES_TIMEOUT)))
    }
}

/// Starts runners of one backend.
pub trait Spawner: Send + Sync {
    /// Starts one runner and waits until it is ready.
    fn spawn(&self) -> BoxFuture<'_, Result<Runner, SandboxError>>;
    /// Sets the memory (and swap: none) limit of runner `id`'s cgroup to `mb` MiB; `false`
    /// where the backend has no cgroup for it (the runner then applies an address-space
    /// limit itself).
    fn set_memory<'a>(&'a self, id: &'a str, mb: u64) -> BoxFuture<'a, Result<bool, SandboxError>> {
        let _ = (id, mb);
        Box::pin(async { Ok(false) })
    }
    /// A warning to show once at start-up, if the backend's isolation is weak.
    fn warning(&self) -> Option<String> {
        None
    }
}

/// Pool counters, for benchmarks and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Runners the pool aims to keep.
    pub size: usize,
    /// Runners idle right now.
    pub idle: usize,
    /// Executions answered.
    pub executions: u64,
    /// Runners retired and replaced.
    pub recycled: u64,
    /// Failed attempts to start a runner.
    pub spawn_failures: u64,
    /// Runs whose runner failed (each attempt counts; the first failure of a block is
    /// retried on another runner).
    pub infrastructure_failures: u64,
    /// Blocks that failed on every attempt (each an [`SandboxError::Infrastructure`]).
    pub infrastructure_errors: u64,
}

struct Inner {
    spawner: Arc<dyn Spawner>,
    idle: Mutex<Vec<Runner>>,
    available: Semaphore,
    pinned: Mutex<HashMap<String, Runner>>,
    lost: Mutex<HashSet<String>>,
    closed: AtomicBool,
    size: usize,
    max_runs: u32,
    grace: Duration,
    ceiling_mb: u64,
    executions: AtomicU64,
    recycled: AtomicU64,
    spawn_failures: AtomicU64,
    infrastructure_failures: AtomicU64,
    infrastructure_errors: AtomicU64,
}

/// How many runners a fresh block may fail on before it is an infrastructure error.
const ATTEMPTS: u32 = 2;

/// How long giving a runner a request's attached files may take (tens of MiB over a Docker
/// attach stream, decoded and hashed by the runner).
const FILES_TIMEOUT: Duration = Duration::from_secs(60);

/// Headroom on a block's cgroup above the block's limit and the runner's resident size: the
/// runner's pipes, the captured output, a page cache that the kernel may not yet have
/// reclaimed.
const CGROUP_SLACK_MB: u64 = 32;

/// A pool of warm runners.
pub struct Pool {
    inner: Arc<Inner>,
}

impl Pool {
    /// Starts `config.pool_size` runners. Fails only if none could be started, so a broken
    /// set-up (no image, no python) is reported at once instead of on the first execution.
    pub async fn start(
        spawner: Arc<dyn Spawner>,
        config: &SandboxConfig,
    ) -> Result<Self, SandboxError> {
        if let Some(warning) = spawner.warning() {
            tracing::warn!("{warning}");
        }
        let size = config.pool_size.max(1);
        let inner = Arc::new(Inner {
            spawner,
            idle: Mutex::new(Vec::with_capacity(size)),
            available: Semaphore::new(0),
            pinned: Mutex::new(HashMap::new()),
            lost: Mutex::new(HashSet::new()),
            closed: AtomicBool::new(false),
            size,
            max_runs: config.max_runs_per_runner.max(1),
            grace: config.grace,
            ceiling_mb: config.container_memory_mb,
            executions: AtomicU64::new(0),
            recycled: AtomicU64::new(0),
            spawn_failures: AtomicU64::new(0),
            infrastructure_failures: AtomicU64::new(0),
            infrastructure_errors: AtomicU64::new(0),
        });
        let first = inner.spawn().await?;
        inner.release(first);
        for _ in 1..size {
            Inner::replace(inner.clone());
        }
        Ok(Self { inner })
    }

    /// Runs one request; see [`crate::Sandbox::execute`].
    pub async fn execute(&self, req: ExecRequest) -> Result<ExecResult, SandboxError> {
        if req.session.is_some() {
            return self.execute_in_session(req).await;
        }
        let inner = &self.inner;
        let mut causes = Vec::new();
        for attempt in 1..=ATTEMPTS {
            let runner = inner.acquire().await?;
            match inner.run_fresh(runner, &req).await {
                Ok(result) => return Ok(result),
                Err(cause) => {
                    inner
                        .infrastructure_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(attempt, %cause, "sandbox runner failed; it was replaced");
                    causes.push(cause);
                }
            }
        }
        inner.infrastructure_errors.fetch_add(1, Ordering::Relaxed);
        Err(SandboxError::Infrastructure {
            attempts: ATTEMPTS,
            cause: causes.join("; then "),
        })
    }

    async fn execute_in_session(&self, req: ExecRequest) -> Result<ExecResult, SandboxError> {
        let inner = &self.inner;
        let key = req.session.clone().expect("a session request");
        if inner.lost.lock().expect("lost lock").contains(&key) {
            return Ok(lost_result(&key, "an earlier block"));
        }
        let pinned = inner.pinned.lock().expect("pinned lock").remove(&key);
        let mut runner = match pinned {
            Some(r) => r,
            None => inner.acquire().await?,
        };
        let deadline = req.timeout + inner.grace;
        let outcome = match runner.sync_files(&req.files).await {
            Ok(()) => tokio::time::timeout(deadline, runner.link.execute(&req)).await,
            Err(e) => Ok(Err(e)),
        };
        inner.executions.fetch_add(1, Ordering::Relaxed);
        runner.runs += 1;
        let cause = match outcome {
            Ok(Ok(result)) => {
                if result.session_lost {
                    inner.lost.lock().expect("lost lock").insert(key);
                    inner.give_back(runner, false);
                } else {
                    inner
                        .pinned
                        .lock()
                        .expect("pinned lock")
                        .insert(key, runner);
                }
                return Ok(result);
            }
            Ok(Err(e)) => format!("the runner failed: {e}"),
            Err(_) => format!("the runner did not answer within {deadline:?}"),
        };
        inner.give_back(runner, false);
        self.mark_lost(&req);
        inner
            .infrastructure_failures
            .fetch_add(1, Ordering::Relaxed);
        inner.infrastructure_errors.fetch_add(1, Ordering::Relaxed);
        Err(SandboxError::Infrastructure {
            attempts: 1,
            cause: format!("{cause}; session {key:?} is lost and not replayed"),
        })
    }

    fn mark_lost(&self, req: &ExecRequest) {
        if let Some(key) = &req.session {
            self.inner
                .lost
                .lock()
                .expect("lost lock")
                .insert(key.clone());
        }
    }

    /// Ends a session: its runner goes back to the pool.
    pub async fn close_session(&self, session: &str) -> Result<(), SandboxError> {
        let inner = &self.inner;
        inner.lost.lock().expect("lost lock").remove(session);
        let runner = inner.pinned.lock().expect("pinned lock").remove(session);
        if let Some(mut runner) = runner {
            let closed =
                tokio::time::timeout(inner.grace, runner.link.close_session(session)).await;
            inner.give_back(runner, matches!(closed, Ok(Ok(()))));
        }
        Ok(())
    }

    /// Counters.
    pub fn stats(&self) -> PoolStats {
        let inner = &self.inner;
        PoolStats {
            size: inner.size,
            idle: inner.idle.lock().expect("idle lock").len(),
            executions: inner.executions.load(Ordering::Relaxed),
            recycled: inner.recycled.load(Ordering::Relaxed),
            spawn_failures: inner.spawn_failures.load(Ordering::Relaxed),
            infrastructure_failures: inner.infrastructure_failures.load(Ordering::Relaxed),
            infrastructure_errors: inner.infrastructure_errors.load(Ordering::Relaxed),
        }
    }

    /// Retires every runner; waiting and later callers get [`SandboxError::Closed`].
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.closed.store(true, Ordering::SeqCst);
        inner.available.close();
        let mut runners: Vec<Runner> = inner.idle.lock().expect("idle lock").drain(..).collect();
        runners.extend(
            inner
                .pinned
                .lock()
                .expect("pinned lock")
                .drain()
                .map(|(_, r)| r),
        );
        for runner in runners {
            runner.retire.await;
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Best effort for a pool dropped without shutdown: retire idle runners in the background.
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.available.close();
        let runners: Vec<Runner> = self
            .inner
            .idle
            .lock()
            .map(|mut v| v.drain(..).collect())
            .unwrap_or_default();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            for runner in runners {
                handle.spawn(runner.retire);
            }
        }
    }
}

/// The cgroup limit that gives a block `memory_mb` of its own on `runner` (beside the runner
/// itself and the attached files it keeps), within the configured ceiling per runner
/// ([`SandboxConfig::container_memory_mb`]).
fn block_cgroup_mb(memory_mb: u32, runner: &Runner, ceiling_mb: u64) -> u64 {
    (u64::from(memory_mb) + runner.hello.rss_mb + runner.files_mb() + CGROUP_SLACK_MB)
        .min(ceiling_mb)
}

fn lost_result(session: &str, when: &str) -> ExecResult {
    ExecResult {
        session_lost: true,
        error: Some(format!(
            "session {session:?} was lost at {when}; its state is gone and is not replayed"
        )),
        ..ExecResult::default()
    }
}

impl Inner {
    /// One attempt at a fresh block on `runner`: its result, or why the runner failed (the
    /// runner is then retired). A result the runner marks as its own failure (`error` set:
    /// it could not start the block) is a failure too.
    async fn run_fresh(
        self: &Arc<Self>,
        mut runner: Runner,
        req: &ExecRequest,
    ) -> Result<ExecResult, String> {
        if let Err(e) = runner.sync_files(&req.files).await {
            self.give_back(runner, false);
            return Err(format!("cannot give the runner the attached files: {e}"));
        }
        let wanted = block_cgroup_mb(req.memory_mb, &runner, self.ceiling_mb);
        if runner.memory_mb != wanted {
            match self.spawner.set_memory(&runner.id, wanted).await {
                Ok(_) => runner.memory_mb = wanted,
                Err(e) => {
                    self.give_back(runner, false);
                    return Err(format!("cannot set the runner's memory limit: {e}"));
                }
            }
        }
        let deadline = req.timeout + self.grace;
        let outcome = tokio::time::timeout(deadline, runner.link.execute(req)).await;
        self.executions.fetch_add(1, Ordering::Relaxed);
        runner.runs += 1;
        match outcome {
            Ok(Ok(result)) if result.error.is_none() => {
                let healthy = !result.poisons_runner();
                self.give_back(runner, healthy);
                Ok(result)
            }
            Ok(Ok(result)) => {
                self.give_back(runner, false);
                Err(format!(
                    "the runner could not run the block: {}",
                    result.error.unwrap_or_default()
                ))
            }
            Ok(Err(e)) => {
                self.give_back(runner, false);
                Err(format!("the runner failed during the run: {e}"))
            }
            Err(_) => {
                self.give_back(runner, false);
                Err(format!("the runner did not answer within {deadline:?}"))
            }
        }
    }

    /// Starts a runner with its cgroup already at the default block's limit, so that the
    /// common request pays no limit change on its way.
    async fn spawn(&self) -> Result<Runner, SandboxError> {
        let mut runner = self.spawner.spawn().await?;
        let wanted = block_cgroup_mb(crate::DEFAULT_BLOCK_MEMORY_MB, &runner, self.ceiling_mb);
        if let Err(e) = self.spawner.set_memory(&runner.id, wanted).await {
            runner.retire.await;
            return Err(e);
        }
        runner.memory_mb = wanted;
        Ok(runner)
    }

    async fn acquire(&self) -> Result<Runner, SandboxError> {
        loop {
            let permit = self
                .available
                .acquire()
                .await
                .map_err(|_| SandboxError::Closed)?;
            permit.forget();
            if let Some(runner) = self.idle.lock().expect("idle lock").pop() {
                return Ok(runner);
            }
        }
    }

    fn release(&self, runner: Runner) {
        if self.closed.load(Ordering::SeqCst) {
            tokio::spawn(runner.retire);
            return;
        }
        self.idle.lock().expect("idle lock").push(runner);
        self.available.add_permits(1);
    }

    /// Returns a runner after use: back to the pool when healthy and not worn out, else retired
    /// and replaced in the background.
    fn give_back(self: &Arc<Self>, runner: Runner, healthy: bool) {
        if healthy && runner.runs < self.max_runs {
            self.release(runner);
        } else {
            self.recycled.fetch_add(1, Ordering::Relaxed);
            let retire = runner.retire;
            let inner = self.clone();
            tokio::spawn(async move {
                retire.await;
                Inner::replace(inner);
            });
        }
    }

    /// Starts one runner in the background, retrying with backoff until it works or the pool
    /// closes.
    fn replace(inner: Arc<Self>) {
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            while !inner.closed.load(Ordering::SeqCst) {
                match inner.spawn().await {
                    Ok(runner) => {
                        inner.release(runner);
                        return;
                    }
                    Err(e) => {
                        inner.spawn_failures.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "cannot start a sandbox runner; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        });
    }
}
