//! The process backend: the same runner as a child process, for machines without Docker.
//!
//! Isolation is weaker than a container's, and the backend says so at start-up. Each run
//! still gets rlimits (address space, CPU, file size). Where the kernel allows unprivileged
//! namespaces, the runner also gets a network namespace with no interfaces, and a PID namespace
//! in which it is PID 1. So it can sweep away a run's leftover processes, and killing it kills
//! them all.

use crate::pool::{BoxFuture, Runner, Spawner};
use crate::protocol::{Link, ReplySource};
use crate::{SandboxConfig, SandboxError, RUNNER_PY};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::process::Command;

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const UNSHARE: [&str; 6] = [
    "--user",
    "--map-root-user",
    "--net",
    "--pid",
    "--fork",
    "--kill-child",
];

/// Starts runner processes.
pub struct ProcessSpawner {
    python: String,
    dir: PathBuf,
    namespaces: bool,
    counter: AtomicU64,
}

impl ProcessSpawner {
    /// Writes the runner to a private directory and probes for namespaces.
    pub fn new(config: &SandboxConfig) -> Result<Self, SandboxError> {
        let dir = std::env::temp_dir().join(format!(
            "start-sandbox-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).map_err(SandboxError::Spawn)?;
        std::fs::write(dir.join("runner.py"), RUNNER_PY).map_err(SandboxError::Spawn)?;
        let namespaces = std::process::Command::new("unshare")
            .args(UNSHARE)
            .arg("--mount-proc")
            .arg("true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        Ok(Self {
            python: config.python.clone(),
            dir,
            namespaces,
            counter: AtomicU64::new(0),
        })
    }

    /// Whether runners get their own network and PID namespaces.
    pub fn namespaces(&self) -> bool {
        self.namespaces
    }

    async fn start_one(&self) -> Result<Runner, SandboxError> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let scratch = self.dir.join(format!("tmp-{n}"));
        std::fs::create_dir_all(&scratch).map_err(SandboxError::Spawn)?;
        let runner = self.dir.join("runner.py");
        let mut cmd = if self.namespaces {
            let mut c = Command::new("unshare");
            c.args(UNSHARE)
                .arg("--mount-proc")
                .arg("--")
                .arg(&self.python);
            c
        } else {
            Command::new(&self.python)
        };
        cmd.arg(&runner)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("START_SANDBOX_TMP", &scratch)
            .stderr(Stdio::null())
            .kill_on_drop(true);
        // The runner talks over a socket, not pipes: a socket cannot be reopened through
        // /proc/<runner>/fd, so code running as the same user cannot inject frames into it.
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(SandboxError::Spawn)?;
        let theirs_out = theirs.try_clone().map_err(SandboxError::Spawn)?;
        cmd.stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::from(OwnedFd::from(theirs_out)));
        let mut child = cmd.spawn().map_err(SandboxError::Spawn)?;
        drop(cmd);
        ours.set_nonblocking(true).map_err(SandboxError::Spawn)?;
        let ours = tokio::net::UnixStream::from_std(ours).map_err(SandboxError::Spawn)?;
        let (read, write) = ours.into_split();
        let mut link = Link::new(Box::pin(write), ReplySource::Pipe(Box::pin(read)));
        let ready = tokio::time::timeout(READY_TIMEOUT, link.ready()).await;
        let retire: BoxFuture<'static, ()> = Box::pin(async move {
            let _ = child.kill().await;
            let _ = tokio::fs::remove_dir_all(&scratch).await;
        });
        match ready {
            Ok(Ok(())) => Ok(Runner {
                link,
                runs: 0,
                retire,
            }),
            Ok(Err(e)) => {
                retire.await;
                Err(e)
            }
            Err(_) => {
                retire.await;
                Err(SandboxError::Unresponsive(READY_TIMEOUT))
            }
        }
    }
}

impl Spawner for ProcessSpawner {
    fn spawn(&self) -> BoxFuture<'_, Result<Runner, SandboxError>> {
        Box::pin(self.start_one())
    }

    fn warning(&self) -> Option<String> {
        Some(if self.namespaces {
            "process sandbox: isolation is weaker than Docker's (rlimits, and network and PID \
             namespaces, but the host's file system and user); use Docker for untrusted code"
                .into()
        } else {
            "process sandbox: isolation is weak (rlimits only: no network or PID namespace was \
             available, and code shares the host's file system, user and network); use Docker \
             for untrusted code"
                .into()
        })
    }
}

impl Drop for ProcessSpawner {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
