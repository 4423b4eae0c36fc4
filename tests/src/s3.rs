//! An S3-compatible server on loopback for tests: moto's threaded server (PyPI `moto[server]`,
//! installed by scripts/setup), started by `tests/python/s3_server.py`. moto because it is one
//! `pip install` from a registry this project reaches, starts in about a second, and implements
//! S3's conditional writes (`If-None-Match: *`, `If-Match`) that start's commit relies on.
//!
//! The server lives as long as its standard input is open: it dies with the test process.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running S3 server with one bucket.
pub struct S3Server {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The bucket it was started with.
    pub bucket: String,
}

impl S3Server {
    /// Starts the server with `bucket`; panics with what to install when it cannot.
    pub fn start(bucket: &str) -> Self {
        let port = crate::redis::free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/s3_server.py");
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let mut child = Command::new(&python)
            .arg(&script)
            .arg(port.to_string())
            .arg(bucket)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("the S3 server's first line");
        assert!(
            line.starts_with("ready"),
            "the S3 test server did not start (run scripts/setup to install moto[server]): {line:?}"
        );
        Self {
            child,
            port,
            bucket: bucket.to_string(),
        }
    }

    /// The environment an `object_store` S3 client needs to reach this server: the standard
    /// AWS variables, nothing start-specific.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
            (
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", self.port),
            ),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    /// Sets [`S3Server::env`] in this process (for clients built in the test itself). Every
    /// test of a binary shares one server, so the values never change once set.
    pub fn export_env(&self) {
        for (k, v) in self.env() {
            std::env::set_var(k, v);
        }
    }

    /// `s3://bucket/prefix`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}
