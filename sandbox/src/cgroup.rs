//! Memory cgroups for the process backend's runners, where the host lets this process make
//! them (root, or a delegated cgroup v2 subtree).
//!
//! A container is its own cgroup, so the Docker backend needs none of this. A process runner
//! gets a cgroup of its own under a group this process makes next to itself, and the pool sets
//! its limit per block like a container's. Where no cgroup can be made (an unprivileged user on
//! a host that delegates nothing), the runner falls back to an address-space limit per block,
//! and the backend's start-up warning says so.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Which cgroup hierarchy holds the memory controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    /// `/sys/fs/cgroup/memory/…`: `memory.limit_in_bytes`, `memory.memsw.limit_in_bytes`.
    V1,
    /// The unified hierarchy: `memory.max`, `memory.swap.max`.
    V2,
}

/// A group this process made for its runners' cgroups; removed (with them) when dropped.
#[derive(Debug)]
pub struct CgroupGroup {
    dir: PathBuf,
    version: Version,
}

/// This process's memory cgroup and its hierarchy, from `/proc/self/cgroup`.
fn own_memory_cgroup() -> Option<(PathBuf, Version)> {
    let table = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in table.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == "memory") {
            let dir = Path::new("/sys/fs/cgroup/memory").join(rel);
            if dir.join("memory.limit_in_bytes").exists() {
                return Some((dir, Version::V1));
            }
        }
    }
    for line in table.lines() {
        if let Some(path) = line.strip_prefix("0::") {
            let dir = Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
            let controllers = std::fs::read_to_string(dir.join("cgroup.controllers")).ok()?;
            if controllers.split_whitespace().any(|c| c == "memory") {
                return Some((dir, Version::V2));
            }
        }
    }
    None
}

impl CgroupGroup {
    /// Makes the group `name` beside this process's cgroup; `None` where the host does not
    /// allow it (the reason is logged at debug level).
    pub fn create(name: &str) -> Option<Self> {
        let (parent, version) = own_memory_cgroup()?;
        let dir = parent.join(name);
        if let Err(e) = std::fs::create_dir(&dir) {
            tracing::debug!(dir = %dir.display(), error = %e, "no memory cgroup for runners");
            return None;
        }
        let group = Self { dir, version };
        if version == Version::V2 {
            // Children of the group get the memory controller; the group itself holds no
            // process, as cgroup v2 requires of a parent with controllers enabled.
            if let Err(e) = std::fs::write(group.dir.join("cgroup.subtree_control"), "+memory") {
                tracing::debug!(error = %e, "cgroup v2: cannot delegate memory to runners");
                return None;
            }
        }
        // A limit must take, or the group is of no use.
        let probe = group.runner("probe").ok()?;
        let works = group.set_limit(&probe, 64).is_ok();
        remove_dir(&probe);
        works.then_some(group)
    }

    /// Makes the cgroup of runner `name`.
    pub fn runner(&self, name: &str) -> io::Result<PathBuf> {
        let dir = self.dir.join(name);
        std::fs::create_dir(&dir)?;
        Ok(dir)
    }

    /// Sets the memory limit of `runner` to `mb` MiB, with no swap beyond it.
    pub fn set_limit(&self, runner: &Path, mb: u64) -> io::Result<()> {
        let bytes = (mb * 1024 * 1024).to_string();
        match self.version {
            Version::V2 => {
                std::fs::write(runner.join("memory.max"), &bytes)?;
                // Absent where swap accounting is off: then there is no swap to limit.
                let _ = std::fs::write(runner.join("memory.swap.max"), "0");
                Ok(())
            }
            Version::V1 => {
                // memory.limit_in_bytes may not exceed memory.memsw.limit_in_bytes: raising
                // goes memsw first, lowering limit first. Try one order, then the other.
                let limit = runner.join("memory.limit_in_bytes");
                let memsw = runner.join("memory.memsw.limit_in_bytes");
                if !memsw.exists() {
                    return std::fs::write(limit, &bytes);
                }
                if std::fs::write(&limit, &bytes).is_ok() {
                    return std::fs::write(&memsw, &bytes);
                }
                std::fs::write(&memsw, &bytes)?;
                std::fs::write(&limit, &bytes)
            }
        }
    }

    /// Removes a runner's cgroup once its processes are gone (they are being killed).
    pub async fn remove_runner(runner: PathBuf) {
        for _ in 0..50 {
            if std::fs::remove_dir(&runner).is_ok() || !runner.exists() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::warn!(cgroup = %runner.display(), "a runner's cgroup is still busy; left behind");
    }
}

fn remove_dir(dir: &Path) {
    let _ = std::fs::remove_dir(dir);
}

impl Drop for CgroupGroup {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    remove_dir(&entry.path());
                }
            }
        }
        remove_dir(&self.dir);
    }
}
