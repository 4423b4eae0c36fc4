//! llama.cpp's own `llama-server`, started on loopback with the default model, for the tests
//! of the OpenAI-compatible backend. `scripts/build-llama-server` builds it (CI's set-up does)
//! into a cache outside the clone; `START_LLAMA_SERVER` names another binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The llama-cpp-python release whose vendored llama.cpp `scripts/build-llama-server` builds,
/// and the build's tag: its cache directory is `<version>-<tag>`.
pub const BUILD: &str = "0.3.36-avx2";

/// The binary: `START_LLAMA_SERVER`, else the build cache of `scripts/build-llama-server`.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("START_LLAMA_SERVER") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("START_LLAMA_SERVER_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/start-llama-server")
        });
    cache.join(BUILD).join("bin/llama-server")
}

/// The default model, from the workspace root.
pub fn default_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// A running `llama-server`; killed when dropped.
pub struct LlamaServer {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    slots: usize,
    ctx_per_slot: u32,
}

impl LlamaServer {
    /// Starts one with `slots` parallel sequences of `ctx_per_slot` tokens each on the default
    /// model, two threads, and waits until `/health` answers 200.
    pub fn start(slots: usize, ctx_per_slot: u32) -> Self {
        let port = crate::redis::free_port();
        let mut s = Self {
            child: None,
            port,
            slots,
            ctx_per_slot,
        };
        s.restart();
        s
    }

    /// The URL a backend is pointed at.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server (as a crash would: SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and waits until it is healthy.
    pub fn restart(&mut self) {
        self.kill();
        let bin = binary();
        assert!(
            bin.is_file(),
            "{} is missing: run scripts/build-llama-server (scripts/setup does)",
            bin.display()
        );
        let model = default_model();
        assert!(
            model.is_file(),
            "the default model is missing: run scripts/setup"
        );
        let child = Command::new(&bin)
            .arg("-m")
            .arg(&model)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--parallel", &self.slots.to_string()])
            .args(["-c", &(self.ctx_per_slot as usize * self.slots).to_string()])
            .args(["-t", "2", "--no-webui"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if health(self.port) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "llama-server on port {} was not healthy within 60 s",
            self.port
        );
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether `GET /health` on loopback `port` answers 200 (a plain HTTP/1.0 request, so that
/// the helper needs no HTTP client).
pub fn health(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok()
        && (head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200"))
}
