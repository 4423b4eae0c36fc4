//! llama.cpp's own `llama-server`, started on loopback with the default model, for the tests
//! of the OpenAI-compatible backend. `scripts/build-llama-server` builds it (CI's set-up does)
//! into a cache outside the clone; `START_LLAMA_SERVER` names another binary.

use crate::server::{ServerProcess, TestServer};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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
    process: ServerProcess,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl LlamaServer {
    /// Starts one with `slots` parallel sequences of `ctx_per_slot` tokens each on the default
    /// model, one thread, and waits until `/health` answers 200.
    pub fn start(slots: usize, ctx_per_slot: u32) -> Self {
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
        let port = crate::redis::free_port();
        let command = move || {
            let mut cmd = Command::new(&bin);
            cmd.arg("-m")
                .arg(&model)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--parallel", &slots.to_string()])
                .args(["-c", &(ctx_per_slot as usize * slots).to_string()])
                // One thread: tests run side by side, and llama.cpp's threads spin at every
                // operation's barrier, so servers and engines each on every core slow each
                // other down many times over.
                .args(["-t", "1", "--no-webui"]);
            cmd
        };
        let mut process = ServerProcess::new(
            format!("llama-server on port {port}"),
            Duration::from_secs(60),
            command,
            move || health(port),
        );
        process.restart();
        Self { process, port }
    }
}

impl TestServer for LlamaServer {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    fn process(&mut self) -> &mut ServerProcess {
        &mut self.process
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
