//! The Docker backend: warm, locked-down containers, each running the runner as PID 1.
//!
//! Every container gets: no network, a read-only root, a size-capped tmpfs at /tmp (and one at
//! /data for the attached files it is sent, read-only to its blocks), memory
//! equal to memory+swap (no swap), a pids limit, a CPU quota, every capability dropped,
//! no-new-privileges, an unprivileged user, and auto-remove. Because the runner is PID 1, it
//! can sweep away any process a run leaves behind.

use crate::pool::{BoxFuture, Runner, Spawner};
use crate::protocol::{Link, ReplySource};
use crate::{SandboxConfig, SandboxError};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, KillContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Label put on every sandbox container, so stray ones can be found and removed.
pub const LABEL: &str = "start.sandbox";

/// Numbers container names uniquely within this process, across every spawner.
static CONTAINERS: AtomicU64 = AtomicU64::new(0);

/// Where a container keeps its attached files (a tmpfs of its own).
const DATA_DIR: &str = "/data";

/// A client of the Docker daemon at `host` (`unix://…`, `tcp://…`), or else where
/// `DOCKER_HOST` says, or else at the local socket. A worker pod's Docker-in-Docker sidecar is
/// reached over TCP (`tcp://127.0.0.1:2375`), a node's engine through its socket.
pub fn connect(host: Option<&str>) -> Result<Docker, SandboxError> {
    Ok(match host {
        Some(h) => Docker::connect_with_host(h)?,
        None => Docker::connect_with_defaults()?,
    })
}

/// Whether the Docker daemon (see [`connect`]) answers a ping within two seconds.
pub async fn daemon_answers(host: Option<&str>) -> bool {
    let Ok(docker) = connect(host) else {
        return false;
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), docker.ping()).await,
        Ok(Ok(_))
    )
}

/// The prefix of this process's container names. Many workers may share one daemon (a
/// mounted socket, a node's engine), and in containers they all run with the same few PIDs, so
/// the host name and the start time go in beside the PID to keep names apart.
fn name_prefix(hostname: &str, pid: u32, started_nanos: u64) -> String {
    let host: String = hostname
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    format!(
        "start-sandbox-{host}-{pid}-{:x}",
        started_nanos & 0xffff_ffff
    )
}

/// Whether the daemon has `image`.
async fn has_image(docker: &Docker, image: &str) -> Result<bool, SandboxError> {
    match docker.inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(other) => Err(SandboxError::Docker(other)),
    }
}

/// Makes sure the daemon has `image`: when it does not and `archive` is given, the archive (a
/// `docker save` tar, gzip-compressed or not) is streamed into the daemon, which then must
/// have the image. This is how a Docker-in-Docker sidecar, which starts empty and may reach no
/// registry, gets the sandbox image.
pub async fn ensure_image(
    docker: &Docker,
    image: &str,
    archive: Option<&std::path::Path>,
) -> Result<(), SandboxError> {
    if has_image(docker, image).await? {
        return Ok(());
    }
    let Some(path) = archive else {
        return Err(SandboxError::ImageMissing(image.to_string()));
    };
    let fail = |message: String| SandboxError::ImageArchive {
        path: path.display().to_string(),
        message,
    };
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| fail(e.to_string()))?;
    tracing::info!(image, archive = %path.display(), "loading the sandbox image");
    let chunks = futures_util::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 1 << 20];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    let mut progress = docker.import_image_stream(
        bollard::query_parameters::ImportImageOptionsBuilder::default()
            .quiet(true)
            .build(),
        chunks,
        None,
    );
    while let Some(step) = progress.next().await {
        step.map_err(|e| fail(format!("the daemon refused it: {e}")))?;
    }
    if !has_image(docker, image).await? {
        return Err(fail(format!("it loaded, but holds no image {image}")));
    }
    Ok(())
}

/// Starts sandbox containers.
pub struct DockerSpawner {
    docker: Docker,
    body: ContainerCreateBody,
    prefix: String,
    memory_mb: u64,
    ready_timeout: Duration,
    /// The image's id (`sha256:…`) as the daemon reports it: which build ran the code.
    pub image_id: String,
}

impl DockerSpawner {
    /// Connects to the daemon and makes sure that the image exists (see [`ensure_image`]).
    pub async fn new(config: &SandboxConfig) -> Result<Self, SandboxError> {
        let docker = connect(config.docker_host.as_deref())?;
        ensure_image(&docker, &config.image, config.image_archive.as_deref()).await?;
        let image_id = docker
            .inspect_image(&config.image)
            .await?
            .id
            .unwrap_or_default();
        let memory = (config.container_memory_mb * 1024 * 1024) as i64;
        let host = HostConfig {
            network_mode: Some("none".into()),
            readonly_rootfs: Some(true),
            tmpfs: Some(HashMap::from([
                (
                    "/tmp".to_string(),
                    format!("rw,nosuid,nodev,size={}m,mode=1777", config.tmpfs_mb),
                ),
                // The runner's attached files: its own (uid 10001), and read-only to every
                // block, which may write only beneath /tmp (Landlock).
                (
                    DATA_DIR.to_string(),
                    format!(
                        "rw,nosuid,nodev,noexec,size={}m,uid=10001,gid=10001,mode=0700",
                        config.data_mb.max(1)
                    ),
                ),
            ])),
            memory: Some(memory),
            memory_swap: Some(memory),
            pids_limit: Some(config.pids_limit),
            nano_cpus: Some((config.cpus * 1e9) as i64),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            auto_remove: Some(true),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(config.image.clone()),
            user: Some("10001:10001".into()),
            open_stdin: Some(true),
            // When the worker goes away (even by kill -9), the attach connection closes, stdin
            // closes, the runner exits and auto-remove deletes the container: nothing leaks.
            stdin_once: Some(true),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            network_disabled: Some(true),
            env: Some(
                config
                    .runner_env()
                    .into_iter()
                    .chain([("START_SANDBOX_DATA".to_string(), DATA_DIR.to_string())])
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect(),
            ),
            labels: Some(HashMap::from([(LABEL.to_string(), "1".to_string())])),
            host_config: Some(host),
            ..Default::default()
        };
        Ok(Self {
            docker,
            body,
            image_id,
            memory_mb: config.container_memory_mb,
            ready_timeout: config.ready_timeout,
            prefix: name_prefix(
                &std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default(),
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64),
            ),
        })
    }

    async fn start_one(&self) -> Result<Runner, SandboxError> {
        let name = format!(
            "{}-{}",
            self.prefix,
            CONTAINERS.fetch_add(1, Ordering::Relaxed)
        );
        let created = self
            .docker
            .create_container(
                Some(CreateContainerOptionsBuilder::default().name(&name).build()),
                self.body.clone(),
            )
            .await?;
        let id = created.id;
        let kill = {
            let docker = self.docker.clone();
            let id = id.clone();
            move || -> BoxFuture<'static, ()> {
                Box::pin(async move {
                    let opts = KillContainerOptionsBuilder::default()
                        .signal("SIGKILL")
                        .build();
                    if let Err(e) = docker.kill_container(&id, Some(opts)).await {
                        tracing::debug!(error = %e, container = %id, "kill failed (already gone?)");
                    }
                    // auto-remove deletes it once it stops; a created-but-never-started one needs
                    // an explicit removal.
                    let _ = docker
                        .remove_container(
                            &id,
                            Some(
                                bollard::query_parameters::RemoveContainerOptionsBuilder::default()
                                    .force(true)
                                    .build(),
                            ),
                        )
                        .await;
                })
            }
        };
        let started = async {
            let attached = self
                .docker
                .attach_container(
                    &id,
                    Some(
                        AttachContainerOptionsBuilder::default()
                            .stdin(true)
                            .stdout(true)
                            .stderr(true)
                            .stream(true)
                            .build(),
                    ),
                )
                .await?;
            self.docker.start_container(&id, None).await?;
            let mut link = Link::new(attached.input, ReplySource::Docker(attached.output));
            let hello = tokio::time::timeout(self.ready_timeout, link.ready())
                .await
                .map_err(|_| SandboxError::Unresponsive(self.ready_timeout))??;
            Ok::<_, SandboxError>((link, hello))
        }
        .await;
        match started {
            Ok((link, hello)) => Ok(Runner::new(link, kill(), id.clone(), hello, self.memory_mb)),
            Err(e) => {
                kill().await;
                Err(e)
            }
        }
    }
}

impl Spawner for DockerSpawner {
    fn spawn(&self) -> BoxFuture<'_, Result<Runner, SandboxError>> {
        Box::pin(self.start_one())
    }

    /// The container's own cgroup is the block's: one block runs at a time in it, and the
    /// runner's preloaded pages, shared with the block's child, are charged once.
    fn set_memory<'a>(&'a self, id: &'a str, mb: u64) -> BoxFuture<'a, Result<bool, SandboxError>> {
        Box::pin(async move {
            let bytes = (mb * 1024 * 1024) as i64;
            self.docker
                .update_container(
                    id,
                    bollard::models::ContainerUpdateBody {
                        memory: Some(bytes),
                        memory_swap: Some(bytes),
                        ..Default::default()
                    },
                )
                .await?;
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::name_prefix;

    #[test]
    fn workers_with_the_same_pid_get_different_container_names() {
        // Two worker containers on one daemon: both run as PID 7 under tini.
        let a = name_prefix("w1\n", 7, 1_000);
        let b = name_prefix("w2\n", 7, 1_000);
        let c = name_prefix("w1\n", 7, 2_000);
        assert_ne!(a, b);
        assert_ne!(a, c);
        // Docker allows [a-zA-Z0-9][a-zA-Z0-9_.-]* in names.
        let odd = name_prefix("pod_name.with:odd/chars", 1, 0);
        assert!(odd
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-'));
    }
}
