//! The runner protocol: 4-byte big-endian length, then that many bytes of JSON, both ways.
//!
//! The runner's stdout carries only frames, so the host never parses user output as a reply;
//! replies also echo the request id, and a reply with another id is a protocol error.

use crate::{ExecRequest, ExecResult, SandboxError, SandboxFile};
use bollard::container::LogOutput;
use futures_util::{Stream, StreamExt};
use serde_json::{json, Value};
use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest reply accepted: outputs are capped by the runner, so anything bigger is a bug.
const MAX_FRAME: usize = 64 << 20;

/// Where replies come from.
pub enum ReplySource {
    /// A child's stdout.
    Pipe(Pin<Box<dyn AsyncRead + Send>>),
    /// A container's attached output; stdout chunks carry frames, stderr is the runner's log.
    Docker(Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>),
}

/// What a runner says when it is ready.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hello {
    /// Its resident size after the preload, in MiB: what a block's cgroup limit adds to the
    /// block's own (the preloaded pages are shared with each child and charged once).
    pub rss_mb: u64,
    /// `fork` (a child per block from the preloaded runner) or `fresh` (an interpreter per
    /// block).
    pub mode: String,
    /// The modules the fork server imported.
    pub preloaded: Vec<String>,
    /// The kernel's Landlock ABI the runner confines each block's writes and reads with; 0
    /// where it has none and the runner was allowed to start unconfined (each attached file is
    /// then re-hashed before every use).
    pub landlock: u32,
}

/// A connection to one runner.
pub struct Link {
    writer: Pin<Box<dyn AsyncWrite + Send>>,
    source: ReplySource,
    buf: Vec<u8>,
    next_id: u64,
}

impl Link {
    /// Wraps the two ends of a runner.
    pub fn new(writer: Pin<Box<dyn AsyncWrite + Send>>, source: ReplySource) -> Self {
        Self {
            writer,
            source,
            buf: Vec::new(),
            next_id: 1,
        }
    }

    /// Reads more bytes into the buffer; `false` at end of stream.
    async fn fill(&mut self) -> Result<bool, SandboxError> {
        match &mut self.source {
            ReplySource::Pipe(r) => {
                // Read straight into the heap buffer: a stack array held across the await would
                // make every future that awaits a reply as large as the array.
                self.buf.reserve(64 * 1024);
                let n = r
                    .read_buf(&mut self.buf)
                    .await
                    .map_err(|e| SandboxError::Protocol(format!("read failed: {e}")))?;
                Ok(n > 0)
            }
            ReplySource::Docker(stream) => loop {
                match stream.next().await {
                    None => return Ok(false),
                    Some(Err(e)) => return Err(SandboxError::Docker(e)),
                    Some(Ok(LogOutput::StdOut { message })) => {
                        self.buf.extend_from_slice(&message);
                        return Ok(true);
                    }
                    Some(Ok(LogOutput::StdErr { message })) => {
                        tracing::debug!(runner_log = %String::from_utf8_lossy(&message));
                    }
                    Some(Ok(_)) => {}
                }
            },
        }
    }

    /// Reads one frame.
    pub async fn read_frame(&mut self) -> Result<Value, SandboxError> {
        loop {
            if self.buf.len() >= 4 {
                let len = u32::from_be_bytes(self.buf[..4].try_into().expect("4 bytes")) as usize;
                if len > MAX_FRAME {
                    return Err(SandboxError::Protocol(format!(
                        "frame of {len} bytes is over the {MAX_FRAME} byte limit"
                    )));
                }
                if self.buf.len() >= 4 + len {
                    let body: Vec<u8> = self.buf.drain(..4 + len).skip(4).collect();
                    return serde_json::from_slice(&body)
                        .map_err(|e| SandboxError::Protocol(format!("bad reply: {e}")));
                }
            }
            if !self.fill().await? {
                return Err(SandboxError::Protocol("the runner exited".into()));
            }
        }
    }

    /// Writes one frame.
    pub async fn write_frame(&mut self, value: &Value) -> Result<(), SandboxError> {
        let body = serde_json::to_vec(value).expect("a Value serialises");
        let mut frame = Vec::with_capacity(4 + body.len());
        frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
        frame.extend_from_slice(&body);
        self.writer
            .write_all(&frame)
            .await
            .map_err(|e| SandboxError::Protocol(format!("write failed: {e}")))?;
        self.writer
            .flush()
            .await
            .map_err(|e| SandboxError::Protocol(format!("write failed: {e}")))
    }

    /// Waits for the runner's ready frame.
    pub async fn ready(&mut self) -> Result<Hello, SandboxError> {
        let hello = self.read_frame().await?;
        if hello.get("ready") == Some(&Value::Bool(true)) {
            Ok(Hello {
                rss_mb: hello.get("rss_mb").and_then(Value::as_u64).unwrap_or(0),
                mode: hello
                    .get("mode")
                    .and_then(Value::as_str)
                    .unwrap_or("fresh")
                    .to_string(),
                preloaded: hello
                    .get("preloaded")
                    .and_then(Value::as_array)
                    .map(|m| {
                        m.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
                landlock: hello.get("landlock").and_then(Value::as_u64).unwrap_or(0) as u32,
            })
        } else if let Some(why) = hello.get("refused").and_then(Value::as_str) {
            Err(SandboxError::Refused(why.to_string()))
        } else {
            Err(SandboxError::Protocol(format!(
                "expected a ready frame, got {hello}"
            )))
        }
    }

    /// Sends a request and reads the reply with the same id.
    async fn call(&mut self, mut request: Value) -> Result<Value, SandboxError> {
        let id = self.next_id;
        self.next_id += 1;
        request["id"] = json!(id);
        self.write_frame(&request).await?;
        let reply = self.read_frame().await?;
        if reply.get("id").and_then(Value::as_u64) != Some(id) {
            return Err(SandboxError::Protocol(format!(
                "reply {reply} does not answer request {id}"
            )));
        }
        Ok(reply)
    }

    /// Runs one execution request.
    pub async fn execute(&mut self, req: &ExecRequest) -> Result<ExecResult, SandboxError> {
        let reply = self
            .call(json!({
                "op": "exec",
                "code": req.code,
                "language": req.language.as_str(),
                "files": req
                    .files
                    .iter()
                    .map(|f| json!({"name": f.name, "sha256": f.sha256}))
                    .collect::<Vec<_>>(),
                "session": req.session,
                "timeout_s": req.timeout.as_secs_f64(),
                "memory_mb": req.memory_mb,
                "max_output_bytes": req.max_output_bytes,
                "stdin": req.stdin,
            }))
            .await?;
        if reply.get("stdout").is_none() {
            return Err(SandboxError::Protocol(format!(
                "runner refused the request: {}",
                reply.get("error").unwrap_or(&reply)
            )));
        }
        serde_json::from_value(reply).map_err(|e| SandboxError::Protocol(format!("bad reply: {e}")))
    }

    /// Gives the runner an attached file to keep; returns the files it evicted to make room
    /// (their sha256s).
    pub async fn put_file(&mut self, file: &SandboxFile) -> Result<Vec<String>, SandboxError> {
        use base64::Engine;
        let reply = self
            .call(json!({
                "op": "put_file",
                "sha256": file.sha256,
                "data": base64::engine::general_purpose::STANDARD.encode(&file.content),
            }))
            .await?;
        if reply.get("stored").and_then(Value::as_str) != Some(file.sha256.as_str()) {
            return Err(SandboxError::Protocol(format!(
                "the runner did not keep {} ({}): {}",
                file.name,
                file.sha256,
                reply.get("error").unwrap_or(&reply)
            )));
        }
        Ok(reply
            .get("evicted")
            .and_then(Value::as_array)
            .map(|v| {
                v.iter()
                    .filter_map(|e| e.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Closes a session in the runner.
    pub async fn close_session(&mut self, session: &str) -> Result<(), SandboxError> {
        self.call(json!({"op": "close", "session": session}))
            .await
            .map(|_| ())
    }
}
