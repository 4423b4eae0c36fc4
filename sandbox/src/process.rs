//! The process backend: the same runner as a child process, for machines without Docker.
//!
//! Isolation is weaker than a container's, and the backend says so at start-up. Each run
//! still gets rlimits (CPU, file size) and a memory limit: a cgroup per runner where the host
//! lets this process make one ([`crate::cgroup`]), else an address-space limit per block.
//! Where the kernel allows unprivileged namespaces, the runner also gets a network namespace
//! with no interfaces, and a PID namespace in which it is PID 1. So it can sweep away a run's
//! leftover processes, and killing it kills them all.

use crate::cgroup::CgroupGroup;
use crate::pool::{BoxFuture, Runner, Spawner};
use crate::protocol::{Link, ReplySource};
use crate::{SandboxConfig, SandboxError};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::process::Command;

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
    env: Vec<(String, String)>,
    cgroups: Option<CgroupGroup>,
    memory_mb: u64,
    ready_timeout: Duration,
    /// The directory of every process pool's files on this host (this pool's is `dir`): no
    /// block reads in it but its own scratch directory, its own attached files and the runner.
    private: PathBuf,
}

impl ProcessSpawner {
    /// Writes the runner to a private directory and probes for namespaces.
    pub fn new(config: &SandboxConfig) -> Result<Self, SandboxError> {
        let name = format!(
            "start-sandbox-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        // Every pool of this host beneath one directory, which blocks cannot read (Landlock):
        // a block of one worker's pool reads no other pool's attached files or scratch.
        let private = std::env::temp_dir().join("start-sandbox");
        let dir = private.join(&name);
        std::fs::create_dir_all(dir.join("runner")).map_err(SandboxError::Spawn)?;
        crate::install_runner(&dir.join("runner")).map_err(SandboxError::Spawn)?;
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
            env: config.runner_env(),
            cgroups: CgroupGroup::create(&name),
            memory_mb: config.container_memory_mb,
            ready_timeout: config.ready_timeout,
            private,
        })
    }

    /// Whether runners get a memory cgroup each (else an address-space limit per block).
    pub fn cgroups(&self) -> bool {
        self.cgroups.is_some()
    }

    /// Whether runners get their own network and PID namespaces.
    pub fn namespaces(&self) -> bool {
        self.namespaces
    }

    async fn start_one(&self) -> Result<Runner, SandboxError> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let scratch = self.dir.join(format!("tmp-{n}"));
        std::fs::create_dir_all(&scratch).map_err(SandboxError::Spawn)?;
        // Attached files live beside the scratch directory, not in it: blocks may write only
        // beneath their scratch directory (Landlock), so these stay as they were sent.
        let data = self.dir.join(format!("data-{n}"));
        std::fs::create_dir_all(&data).map_err(SandboxError::Spawn)?;
        let runner = self.dir.join("runner").join(crate::RUNNER_FILES[0].0);
        let cgroup = match &self.cgroups {
            Some(group) => {
                let dir = group
                    .runner(&format!("runner-{n}"))
                    .map_err(SandboxError::Spawn)?;
                group
                    .set_limit(&dir, self.memory_mb)
                    .map_err(SandboxError::Spawn)?;
                Some(dir)
            }
            None => None,
        };
        let mut argv: Vec<std::ffi::OsString> = Vec::new();
        if self.namespaces {
            argv.push("unshare".into());
            argv.extend(UNSHARE.iter().map(Into::into));
            argv.push("--mount-proc".into());
            argv.push("--".into());
        }
        argv.push(self.python.clone().into());
        argv.push(runner.into_os_string());
        let mut cmd = match &cgroup {
            // The shell joins the cgroup, then becomes the runner: everything the runner
            // starts is in the cgroup from its first instruction.
            Some(dir) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(r#"echo $$ > "$0/cgroup.procs" && exec "$@""#)
                    .arg(dir)
                    .args(&argv);
                c
            }
            None => {
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
        };
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("START_SANDBOX_TMP", &scratch)
            .env("START_SANDBOX_DATA", &data)
            .env("START_SANDBOX_PRIVATE", &self.private)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stderr(Stdio::null())
            .kill_on_drop(true);
        match &cgroup {
            Some(dir) => cmd.env("START_SANDBOX_CGROUP", dir),
            None => cmd.env("START_SANDBOX_RLIMIT_AS", "1"),
        };
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
        let ready = tokio::time::timeout(self.ready_timeout, link.ready()).await;
        let id = cgroup.as_ref().map_or_else(
            || format!("pid:{}", child.id().unwrap_or(0)),
            |d| d.display().to_string(),
        );
        let retire: BoxFuture<'static, ()> = Box::pin(async move {
            let _ = child.kill().await;
            let _ = tokio::fs::remove_dir_all(&scratch).await;
            let _ = tokio::fs::remove_dir_all(&data).await;
            if let Some(dir) = cgroup {
                CgroupGroup::remove_runner(dir).await;
            }
        });
        match ready {
            Ok(Ok(hello)) => Ok(Runner::new(link, retire, id, hello, self.memory_mb)),
            Ok(Err(e)) => {
                retire.await;
                Err(e)
            }
            Err(_) => {
                retire.await;
                Err(SandboxError::Unresponsive(self.ready_timeout))
            }
        }
    }
}

impl Spawner for ProcessSpawner {
    fn spawn(&self) -> BoxFuture<'_, Result<Runner, SandboxError>> {
        Box::pin(self.start_one())
    }

    fn set_memory<'a>(&'a self, id: &'a str, mb: u64) -> BoxFuture<'a, Result<bool, SandboxError>> {
        Box::pin(async move {
            match &self.cgroups {
                Some(group) => {
                    group
                        .set_limit(std::path::Path::new(id), mb)
                        .map_err(SandboxError::Spawn)?;
                    Ok(true)
                }
                None => Ok(false),
            }
        })
    }

    fn warning(&self) -> Option<String> {
        let memory = if self.cgroups.is_some() {
            "a memory cgroup per runner"
        } else {
            "no memory cgroup could be made, so memory is an address-space limit per block, \
             which numpy's and OpenBLAS's start-up may exceed"
        };
        Some(if self.namespaces {
            format!(
                "process sandbox: isolation is weaker than Docker's (rlimits, {memory}, and \
                 network and PID namespaces, but the host's file system and user); use Docker \
                 for untrusted code"
            )
        } else {
            format!(
                "process sandbox: isolation is weak (rlimits, {memory}; no network or PID \
                 namespace was available, and code shares the host's file system, user and \
                 network); use Docker for untrusted code"
            )
        })
    }
}

impl Drop for ProcessSpawner {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
