//! The deployment, as containers on this machine's Docker Engine: the images `images/build`
//! makes (from this build's binaries), Redis, one coordinator and two workers, each its own
//! container on a private network, the way the Kubernetes manifests wire them (service names,
//! a token file, a shared dataset store, the model read-only). A job runs on the default model
//! end to end while one worker container is killed, the coordinator container restarted, and
//! the other worker cut off the network past its lease and reconnected. The job must succeed
//! and the manifest's shards must hold every trajectory exactly once.
//!
//! The two workers are deployed the two ways the guide describes. w1 runs as on a single
//! Docker host: its sandboxes run on the host's engine through the mounted socket (whoever
//! holds the socket is root on the host). w2 runs as in its Kubernetes pod: a start-dind
//! sidecar owns the pod's network namespace, and the worker shares it and starts its
//! sandboxes on the sidecar over TCP, after loading the sandbox image into it from the archive
//! its own image carries. Cutting w2 off cuts the sidecar, as the pod's network. Needs a
//! Docker daemon, like the sandbox's Docker tests; scripts/setup builds the sandbox image.

use crate::common::{
    bin_dir, check_dataset, math_problems, spec, wait_for, workspace, Client, Tail,
};
use start_schemas::proto;
use start_tests::redis::free_port;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Image tag for this build's coordinator and worker.
const TAG: &str = "test";
/// Lease length: short, so that the cut-off worker loses its unit quickly.
const LEASE_TTL_MS: &str = "3000";

/// Runs `docker ARGS`, returning stdout; panics with stderr when it fails.
fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker is installed");
    assert!(
        out.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The daemon's unix socket, which the workers get for their sandboxes.
fn docker_socket() -> PathBuf {
    let path = match std::env::var("DOCKER_HOST") {
        Ok(h) if !h.is_empty() => PathBuf::from(h.strip_prefix("unix://").unwrap_or_else(|| {
            panic!("DOCKER_HOST={h}: the container test needs the daemon's unix socket")
        })),
        _ => PathBuf::from("/var/run/docker.sock"),
    };
    assert!(
        path.exists(),
        "{} is missing: the container test needs a Docker daemon (scripts/setup)",
        path.display()
    );
    path
}

/// A directory that the containers' users (uid 10001, Redis 999) can write.
fn shared_dir(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// One container of the deployment.
struct Container {
    name: String,
}

impl Tail for Container {
    fn tail(&self) -> String {
        let out = Command::new("docker")
            .args(["logs", "--tail", "25", &self.name])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout).into_owned()
                    + &String::from_utf8_lossy(&o.stderr)
            })
            .unwrap_or_default();
        format!("--- container {} ---\n{out}", self.name)
    }
}

/// The deployment: its network, its containers and the host directories they mount; all
/// removed on drop, even when the test fails.
struct Deployment {
    prefix: String,
    network: String,
    dir: tempfile::TempDir,
    /// The coordinator's gRPC port, published on 127.0.0.1 only.
    port: u16,
    token: String,
    containers: Vec<String>,
}

impl Deployment {
    fn new() -> Self {
        let prefix = format!(
            "start-ct-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_micros()
        );
        let network = format!("{prefix}-net");
        docker(&["network", "create", "--driver", "bridge", &network]);
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        // The bearer token as the Kubernetes Secret provides it: a file in a read-only mount.
        let token = format!("ct-{prefix}");
        let secret = shared_dir(dir.path(), "secret");
        std::fs::write(secret.join("token"), &token).unwrap();
        shared_dir(dir.path(), "store");
        shared_dir(dir.path(), "redis");
        Self {
            prefix,
            network,
            dir,
            port: free_port(),
            token,
            containers: Vec::new(),
        }
    }

    fn name(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn mount(&self, sub: &str, at: &str, ro: bool) -> String {
        let host = self.dir.path().join(sub);
        format!("{}:{at}{}", host.display(), if ro { ":ro" } else { "" })
    }

    /// `docker run -d` a container of the deployment: on its network under `alias`, or with
    /// `Net::Of` in another container's network namespace, as the containers of a pod share
    /// one.
    fn run(
        &mut self,
        role: &str,
        net: Net,
        args: &[String],
        image: &str,
        command: &[&str],
    ) -> Container {
        let name = self.name(role);
        let mut all: Vec<String> = vec!["run".into(), "-d".into(), "--name".into(), name.clone()];
        match net {
            Net::Alias(alias) => all.extend([
                "--network".into(),
                self.network.clone(),
                "--network-alias".into(),
                alias.into(),
            ]),
            Net::Of(owner) => all.extend(["--network".into(), format!("container:{owner}")]),
        }
        all.extend_from_slice(args);
        all.push(image.to_string());
        all.extend(strings(command));
        docker(&all.iter().map(String::as_str).collect::<Vec<_>>());
        self.containers.push(name.clone());
        Container { name }
    }

    fn redis(&mut self) -> Container {
        let args = vec!["-v".to_string(), self.mount("redis", "/data", false)];
        let redis = self.run(
            "redis",
            Net::Alias("redis"),
            &args,
            "start-redis:0.1.0",
            &[],
        );
        let n = redis.name.clone();
        poll("redis to answer", &redis, || {
            Command::new("docker")
                .args(["exec", &n, "redis-cli", "ping"])
                .output()
                .is_ok_and(|o| o.stdout.starts_with(b"PONG"))
        });
        redis
    }

    fn coordinator(&mut self) -> Container {
        let args = strings(&[
            "-p",
            &format!("127.0.0.1:{}:50051", self.port),
            "-v",
            &self.mount("store", "/data", false),
            "-v",
            &self.mount("secret", "/run/start", true),
            "-e",
            "START_REDIS_URL=redis://redis:6379/0",
            "-e",
            "START_TOKEN_FILE=/run/start/token",
            "-e",
            &format!("START_LEASE_TTL_MS={LEASE_TTL_MS}"),
        ]);
        self.run(
            "coordinator",
            Net::Alias("start-coordinator"),
            &args,
            &format!("start-coordinator:{TAG}"),
            &[],
        )
    }

    /// What every worker gets, as the Deployment gives it.
    fn worker_args(&self, host: &str) -> Vec<String> {
        let models = workspace().join("models");
        strings(&[
            "-v",
            &self.mount("store", "/data", false),
            "-v",
            &self.mount("secret", "/run/start", true),
            "-v",
            &format!("{}:/models:ro", models.canonicalize().unwrap().display()),
            "-e",
            "START_COORDINATOR=http://start-coordinator:50051",
            "-e",
            "START_TOKEN_FILE=/run/start/token",
            "-e",
            "START_SLOTS=2",
            "-e",
            // Side by side on the host's cores: see the process cluster's workers.
            "START_THREADS=1",
            "-e",
            "START_CTX=1024",
            "-e",
            "START_SANDBOX=docker",
            "-e",
            "START_SANDBOX_POOL=1",
            "-e",
            "START_DRAIN_TIMEOUT_S=30",
            "-e",
            &format!("HOSTNAME={host}"),
        ])
    }

    /// A worker as on a single Docker host: its sandboxes run on the host's engine, through
    /// the mounted socket.
    fn host_worker(&mut self, host: &str) -> Container {
        let socket = docker_socket();
        let gid = std::fs::metadata(&socket).unwrap().gid();
        let mut args = self.worker_args(host);
        args.extend(strings(&[
            "-v",
            &format!("{}:/var/run/docker.sock", socket.display()),
            "--group-add",
            &gid.to_string(),
        ]));
        self.run(
            host,
            Net::Alias(host),
            &args,
            &format!("start-worker:{TAG}"),
            &[],
        )
    }

    /// A worker as in its Kubernetes pod: a start-dind sidecar owns the pod's network
    /// namespace, and the worker, in the same namespace, starts its sandboxes on it over
    /// `tcp://127.0.0.1:2375`, after loading the sandbox image from the archive in its own
    /// image (the sidecar starts with none). Returns the sidecar (the pod's network) and the
    /// worker.
    fn pod_worker(&mut self, host: &str) -> (Container, Container) {
        let mut args = dind_privileges();
        args.extend(strings(&["-v", "/var/lib/docker"]));
        let sidecar = self.run(
            &format!("{host}-dind"),
            Net::Alias(host),
            &args,
            "start-dind:0.1.0",
            &["--host=tcp://127.0.0.1:2375", "--tls=false"],
        );
        let n = sidecar.name.clone();
        // The startup probe of the Kubernetes sidecar: dockerd answers.
        poll("the DinD sidecar to answer", &sidecar, || {
            Command::new("docker")
                .args(["exec", &n, "docker", "-H", "tcp://127.0.0.1:2375", "info"])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        let mut args = self.worker_args(host);
        args.extend(strings(&["-e", "DOCKER_HOST=tcp://127.0.0.1:2375"]));
        let worker = self.run(
            host,
            Net::Of(&sidecar.name),
            &args,
            &format!("start-worker:{TAG}"),
            &[],
        );
        (sidecar, worker)
    }
}

/// Where a container's network comes from.
enum Net<'a> {
    /// The deployment's network, under this name.
    Alias(&'a str),
    /// The network namespace of this container.
    Of(&'a str),
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Polls `check` every 100 ms for up to two minutes (a container starting).
fn poll(what: &str, logs: &Container, mut check: impl FnMut() -> bool) {
    for _ in 0..1200 {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}\n{}", logs.tail());
}

/// The DinD sidecar's privileges. On Kubernetes it is `privileged: true`, and so here when the
/// daemon can grant that. Some daemons cannot (their own bounding set lacks a capability,
/// CAP_SYS_RESOURCE on some CI machines): then every capability they have, and everything
/// else `--privileged` gives (devices, unconfined seccomp and AppArmor, writable cgroups).
fn dind_privileges() -> Vec<String> {
    let privileged_works = Command::new("docker")
        .args(["run", "--rm", "--privileged", "start-base:0.1.0", "true"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if privileged_works {
        return strings(&["--privileged"]);
    }
    let daemon_caps = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:").map(|v| v.trim().to_string()))
        })
        .and_then(|hex| u64::from_str_radix(&hex, 16).ok())
        .unwrap_or(u64::MAX);
    let mut args = strings(&["--cap-add", "ALL"]);
    // CAP_SYS_RESOURCE is bit 24; drop it when this machine's bounding set lacks it.
    if daemon_caps & (1 << 24) == 0 {
        args.extend(strings(&["--cap-drop", "SYS_RESOURCE"]));
    }
    args.extend(strings(&[
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "apparmor=unconfined",
        "--security-opt",
        "systempaths=unconfined",
        "--device-cgroup-rule",
        "a *:* rwm",
        "-v",
        "/sys/fs/cgroup:/sys/fs/cgroup",
    ]));
    args
}

impl Drop for Deployment {
    fn drop(&mut self) {
        // -v: the DinD sidecar's /var/lib/docker is an anonymous volume.
        let mut rm = vec!["rm", "-f", "-v"];
        rm.extend(self.containers.iter().map(String::as_str));
        let _ = Command::new("docker").args(&rm).output();
        let _ = Command::new("docker")
            .args(["network", "rm", &self.network])
            .output();
        // Files the containers wrote belong to their users; let the temp dir go away whole.
        let _ = Command::new("chmod")
            .arg("-R")
            .arg("a+rwX")
            .arg(self.dir.path())
            .output();
    }
}

/// Builds this build's images with the deployment's own script.
fn build_images() {
    let out = Command::new(workspace().join("images/build"))
        .arg("--bin-dir")
        .arg(bin_dir())
        .args(["--tag", TAG])
        .output()
        .expect("images/build runs");
    assert!(
        out.status.success(),
        "images/build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids = String::from_utf8_lossy(&out.stdout);
    for image in [
        "start-coordinator:test",
        "start-worker:test",
        "start-redis:",
    ] {
        assert!(
            ids.lines()
                .any(|l| l.starts_with(image) && l.contains("sha256:")),
            "images/build printed no id for {image}:\n{ids}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_survives_a_killed_worker_a_partition_and_a_restarted_coordinator() {
    if std::env::var_os("START_SKIP_DOCKER_TESTS").is_some() {
        panic!("START_SKIP_DOCKER_TESTS is set: run these tests with --skip containers");
    }
    build_images();
    let mut d = Deployment::new();
    let redis = d.redis();
    let coordinator = d.coordinator();
    let client = Client::new(&format!("http://127.0.0.1:{}", d.port), Some(&d.token));
    client
        .wait_serving(Duration::from_secs(60), &[&coordinator, &redis])
        .await;
    let problems = math_problems(12);
    let job_id = client
        .submit(
            spec("containers", proto::GenerationMode::Plain, 96, 2),
            problems.clone(),
        )
        .await;
    // w1 as on a single Docker host, w2 as in its Kubernetes pod (with a DinD sidecar).
    let w1 = d.host_worker("w1");
    let (w2_pod, w2) = d.pod_worker("w2");
    let logs: [&dyn Tail; 5] = [&coordinator, &w1, &w2, &w2_pod, &redis];

    // Kill a worker container that holds a lease: its unit comes back when the lease expires.
    wait_for(
        "w1 to lease a unit",
        Duration::from_secs(180),
        &logs,
        || async { client.leases_of("w1").await >= 1 },
    )
    .await;
    docker(&["kill", &w1.name]);
    wait_for(
        "w1's lease to expire",
        Duration::from_secs(180),
        &logs,
        || async { client.lease_expirations(&job_id).await >= 1 },
    )
    .await;

    // Restart the coordinator container: its state is in Redis, the workers keep polling.
    docker(&["restart", "--time", "10", &coordinator.name]);

    // The killed worker comes back (as a Deployment's pod would); then cut w2 off the network
    // while it holds a lease, until the coordinator has expired that lease too.
    docker(&["start", &w1.name]);
    wait_for(
        "w2 to lease a unit",
        Duration::from_secs(180),
        &logs,
        || async { client.leases_of("w2").await >= 1 },
    )
    .await;
    // Read strictly: a zero from a coordinator that did not answer would end the wait below
    // at once, on w1's expiry.
    let before = client
        .job(&job_id)
        .await
        .and_then(|j| j.counters)
        .expect("the coordinator answers")
        .lease_expirations;
    // The pod's network belongs to its sidecar: cut that.
    docker(&["network", "disconnect", &d.network, &w2_pod.name]);
    wait_for(
        "w2's lease to expire while it is cut off",
        Duration::from_secs(180),
        &logs,
        || async { client.lease_expirations(&job_id).await > before },
    )
    .await;
    docker(&[
        "network",
        "connect",
        "--alias",
        "w2",
        &d.network,
        &w2_pod.name,
    ]);

    client
        .wait_succeeded(&job_id, Duration::from_secs(600), &logs)
        .await;
    let counters = client.job(&job_id).await.unwrap().counters.unwrap();
    assert!(
        counters.lease_expirations >= 2,
        "w1's and w2's leases expired: {counters:?}"
    );
    assert_eq!(counters.trajectories, 12);
    let dataset = start_dataset::DatasetLocation::local(&d.store().join("data")).unwrap();
    check_dataset(&dataset, &problems, counters.units_total).await;
    // Both workers are still up, and came through on the Docker sandbox.
    for w in [&w1, &w2] {
        let state = docker(&["inspect", "-f", "{{.State.Running}}", &w.name]);
        assert_eq!(state, "true", "{} stopped\n{}", w.name, w.tail());
    }
}
