//! A real `redis-server` for tests: its own port, its own directory, killed on drop.

use crate::server::{ServerProcess, TestServer};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A running redis-server child process.
pub struct RedisServer {
    process: ServerProcess,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

/// A free loopback port (bound, then released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl RedisServer {
    /// Starts redis-server in `dir` on a free port; with `append_only`, every write is logged
    /// and fsynced (appendfsync always), so a restart keeps everything acknowledged.
    /// Returns `None` (after printing why) when redis-server is not installed.
    pub fn start(dir: &Path, append_only: bool) -> Option<Self> {
        let port = free_port();
        let dir: PathBuf = dir.to_path_buf();
        let command = move || {
            let mut cmd = Command::new("redis-server");
            cmd.arg("--port")
                .arg(port.to_string())
                .args(["--bind", "127.0.0.1", "--dir"])
                .arg(&dir)
                .args(["--save", "", "--protected-mode", "yes"]);
            if append_only {
                cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
            } else {
                cmd.args(["--appendonly", "no"]);
            }
            cmd
        };
        let mut process = ServerProcess::new(
            format!("redis-server on port {port}"),
            Duration::from_secs(10),
            command,
            move || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        );
        if let Err(e) = process.start() {
            eprintln!("{e}; run scripts/setup to install it");
            return None;
        }
        Some(Self { process, port })
    }
}

impl TestServer for RedisServer {
    /// `redis://127.0.0.1:PORT/0`.
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
    fn process(&mut self) -> &mut ServerProcess {
        &mut self.process
    }
}
