//! The HTTP side of the OpenAI-compatible backend: one client per endpoint, retries with
//! backoff on what a busy or restarting server answers (connection refused or reset, 429, 5xx),
//! the server's own extras that every engine the peers drive also has (`/tokenize`, `/health`,
//! llama.cpp's `/apply-template`), and `/v1/completions` streamed as server-sent events, one
//! event per sampled token.

use super::sse::EventStream;
use serde_json::{json, Value};
use std::time::Duration;

/// Why a call to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer: refused, reset, timed out.
    #[error("{url}: {message}")]
    Transport {
        /// What was asked.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// An answer with an error status.
    #[error("{url}: HTTP {status}: {body}")]
    Status {
        /// What was asked.
        url: String,
        /// The status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// An answer that is not what the OpenAI API (or the server's extras) says.
    #[error("{url}: {message}")]
    Protocol {
        /// What was asked.
        url: String,
        /// What is wrong with it.
        message: String,
    },
}

impl ClientError {
    /// Whether asking again later may work: the server is down, restarting, overloaded or
    /// failed inside; a refused request (4xx other than 429) or a malformed answer will not.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Status { status, .. } => *status == 429 || *status >= 500,
            Self::Protocol { .. } => false,
        }
    }
}

/// One endpoint.
#[derive(Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    /// The server's root (`http://host:port`), without the API's `/v1`.
    root: String,
    api_key: Option<String>,
    /// Attempts of one call before it fails.
    attempts: u32,
    /// First wait between attempts; doubled each time, at most 8 s.
    backoff: Duration,
}

impl Client {
    /// A client for `endpoint` (`http://host:port` or `http://host:port/v1`).
    pub fn new(
        endpoint: &str,
        api_key: Option<String>,
        attempts: u32,
        backoff: Duration,
        request_timeout: Duration,
    ) -> Result<Self, ClientError> {
        let root = endpoint
            .trim_end_matches('/')
            .trim_end_matches("/v1")
            .to_string();
        if !(root.starts_with("http://") || root.starts_with("https://")) {
            return Err(ClientError::Protocol {
                url: endpoint.to_string(),
                message: "the endpoint must be an http:// or https:// URL".into(),
            });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            // Between two events of a stream, and for a whole non-streamed answer.
            .read_timeout(request_timeout)
            .build()
            .map_err(|e| ClientError::Transport {
                url: root.clone(),
                message: e.to_string(),
            })?;
        Ok(Self {
            http,
            root,
            api_key,
            attempts: attempts.max(1),
            backoff,
        })
    }

    /// The server's root URL.
    pub fn root(&self) -> &str {
        &self.root
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.root));
        match &self.api_key {
            Some(k) => r.bearer_auth(k),
            None => r,
        }
    }

    /// One attempt: the response when its status is a success.
    async fn send_once(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, ClientError> {
        let url = format!("{}{path}", self.root);
        let mut r = self.request(method, path);
        if let Some(b) = body {
            r = r.json(b);
        }
        let response = r.send().await.map_err(|e| ClientError::Transport {
            url: url.clone(),
            message: error_chain(&e),
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        Err(ClientError::Status {
            url,
            status: status.as_u16(),
            body: text.chars().take(300).collect(),
        })
    }

    /// Sends with retries: a retryable failure is tried again after a growing wait, up to the
    /// client's attempts; the last failure is returned.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut wait = self.backoff;
        let mut attempt = 1;
        loop {
            match self.send_once(method.clone(), path, body).await {
                Ok(r) => return Ok(r),
                Err(e) if e.retryable() && attempt < self.attempts => {
                    tracing::debug!(error = %e, attempt, "retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(8));
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A JSON answer, with retries.
    pub async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let r = self.send(method, path, body).await?;
        self.body_json(path, r).await
    }

    /// One try of a JSON GET, without retries: for what a server may not have.
    pub async fn send_once_json(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> Result<Value, ClientError> {
        let r = self.send_once(method, path, None).await?;
        self.body_json(path, r).await
    }

    /// An answer's body as JSON.
    async fn body_json(&self, path: &str, r: reqwest::Response) -> Result<Value, ClientError> {
        r.json::<Value>().await.map_err(|e| ClientError::Protocol {
            url: format!("{}{path}", self.root),
            message: format!("not JSON: {}", error_chain(&e)),
        })
    }

    /// One try of `/health` (llama.cpp, vLLM and SGLang all answer it): fine when 200.
    pub async fn health(&self) -> Result<(), ClientError> {
        self.send_once(reqwest::Method::GET, "/health", None)
            .await
            .map(|_| ())
    }

    /// `text`'s tokens as the server's tokenizer makes them, special tokens parsed, with each
    /// token's bytes where the server gives them (llama.cpp's `with_pieces`; vLLM gives ids
    /// only, and then the first token carries all of `text`'s bytes).
    pub async fn tokenize(
        &self,
        text: &str,
        add_special: bool,
    ) -> Result<Vec<(i32, Vec<u8>)>, ClientError> {
        let url = format!("{}/tokenize", self.root);
        // llama.cpp reads `content`, vLLM `prompt`; each ignores the other's keys. llama.cpp
        // gives each token's piece (`with_pieces`); vLLM its vocabulary string
        // (`return_token_strs`), from which the piece is recovered (see `pieces_from_strs`).
        let body = json!({
            "content": text, "prompt": text,
            "add_special": add_special, "add_special_tokens": add_special,
            "parse_special": true, "with_pieces": true, "return_token_strs": true,
        });
        let v = self
            .json(reqwest::Method::POST, "/tokenize", Some(&body))
            .await?;
        let bad = |m: &str| ClientError::Protocol {
            url: url.clone(),
            message: m.to_string(),
        };
        let tokens = v
            .get("tokens")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no \"tokens\" array in the answer"))?;
        let mut out = Vec::with_capacity(tokens.len());
        let mut with_pieces = true;
        for t in tokens {
            match t {
                Value::Number(n) => {
                    with_pieces = false;
                    out.push((
                        as_id(n).ok_or_else(|| bad("a token id out of range"))?,
                        vec![],
                    ));
                }
                Value::Object(o) => {
                    let id = o
                        .get("id")
                        .and_then(Value::as_number)
                        .and_then(as_id)
                        .ok_or_else(|| bad("a token without an id"))?;
                    out.push((id, o.get("piece").map(piece_bytes).unwrap_or_default()));
                }
                _ => return Err(bad("a token that is neither an id nor an object")),
            }
        }
        if !with_pieces {
            let strs: Option<Vec<&str>> = v
                .get("token_strs")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect());
            match strs.and_then(|strs| pieces_from_strs(&strs, text.as_bytes())) {
                Some(pieces) if pieces.len() == out.len() => {
                    for (t, piece) in out.iter_mut().zip(pieces) {
                        t.1 = piece;
                    }
                }
                // No way to split the text among the ids: the first carries it all.
                _ => {
                    if let Some(first) = out.first_mut() {
                        first.1 = text.as_bytes().to_vec();
                    }
                }
            }
        }
        Ok(out)
    }

    /// The text of `ids` with special tokens written out.
    pub async fn detokenize(&self, ids: &[i32]) -> Result<String, ClientError> {
        let body = json!({"tokens": ids});
        let v = self
            .json(reqwest::Method::POST, "/detokenize", Some(&body))
            .await?;
        Ok(v.get("content")
            .or_else(|| v.get("prompt"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }

    /// The server's chat template applied to one user message, with the generation prompt:
    /// the model's own template, as the in-process engine applies it from the GGUF. llama.cpp
    /// answers `/apply-template`; a server without it (vLLM) is asked to tokenise the
    /// messages (`/tokenize` with `messages`) and to write those tokens back as text.
    pub async fn render(&self, user: &str) -> Result<String, ClientError> {
        let url = format!("{}/apply-template", self.root);
        let messages = json!([{"role": "user", "content": user}]);
        let body = json!({"messages": messages});
        match self
            .json(reqwest::Method::POST, "/apply-template", Some(&body))
            .await
        {
            Ok(v) => v
                .get("prompt")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| ClientError::Protocol {
                    url,
                    message: "no \"prompt\" in the answer".into(),
                }),
            Err(ClientError::Status { status: 404, .. }) => {
                let body = json!({"messages": messages, "add_generation_prompt": true,
                    "add_special_tokens": false});
                let v = self
                    .json(reqwest::Method::POST, "/tokenize", Some(&body))
                    .await?;
                let ids: Vec<i32> = v
                    .get("tokens")
                    .and_then(Value::as_array)
                    .map(|t| {
                        t.iter()
                            .filter_map(|i| i.as_number().and_then(as_id))
                            .collect()
                    })
                    .unwrap_or_default();
                if ids.is_empty() {
                    return Err(ClientError::Protocol {
                        url: format!("{}/tokenize", self.root),
                        message: "no /apply-template, and /tokenize of the messages gave no tokens"
                            .into(),
                    });
                }
                self.detokenize(&ids).await
            }
            Err(e) => Err(e),
        }
    }

    /// Starts a streamed `/v1/completions`, with retries until the answer's status. Dropping
    /// the stream closes the connection, which makes the server cancel the request.
    pub async fn stream(&self, body: &Value) -> Result<EventStream, ClientError> {
        let response = self
            .send(reqwest::Method::POST, "/v1/completions", Some(body))
            .await?;
        Ok(EventStream::new(
            format!("{}/v1/completions", self.root),
            Box::pin(response.bytes_stream()),
        ))
    }
}

/// Each token's bytes from its vocabulary string, as vLLM's `/tokenize` gives them
/// (`return_token_strs`: the tokenizer's `convert_ids_to_tokens`), when they add up to `text`
/// exactly. Two vocabularies are read: byte-level BPE (GPT-2, Qwen, SmolLM, Llama 3: every byte
/// written as one printable character, a space as `Ġ`) and SentencePiece (`▁` for a space,
/// `<0xNN>` for a raw byte). `None` when neither reading adds up to the text: the caller then
/// cannot split it among the ids.
fn pieces_from_strs(strs: &[&str], text: &[u8]) -> Option<Vec<Vec<u8>>> {
    type Reading = fn(&str) -> Option<Vec<u8>>;
    let readings: [Reading; 2] = [byte_level_bytes, sentencepiece_bytes];
    readings.iter().find_map(|read| {
        let pieces: Vec<Vec<u8>> = strs.iter().map(|s| read(s)).collect::<Option<_>>()?;
        (pieces.concat() == text).then_some(pieces)
    })
}

/// A byte-level BPE token's bytes: GPT-2's table maps the printable bytes (`!`..`~`, `¡`..`¬`,
/// `®`..`ÿ`) to the character of the same code, and the other 68 bytes, in order, to U+0100
/// onwards.
fn byte_level_bytes(s: &str) -> Option<Vec<u8>> {
    let printable = |b: u32| (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || b >= 0xae;
    s.chars()
        .map(|c| {
            let code = c as u32;
            if code < 0x100 && printable(code) {
                return Some(code as u8);
            }
            let n = code.checked_sub(0x100)?;
            (0u32..0x100)
                .filter(|&b| !printable(b))
                .nth(n as usize)
                .map(|b| b as u8)
        })
        .collect()
}

/// A SentencePiece token's bytes: `▁` is a space, `<0xNN>` a raw byte, the rest its UTF-8.
fn sentencepiece_bytes(s: &str) -> Option<Vec<u8>> {
    if let Some(hex) = s.strip_prefix("<0x").and_then(|h| h.strip_suffix('>')) {
        if hex.len() == 2 {
            return u8::from_str_radix(hex, 16).ok().map(|b| vec![b]);
        }
    }
    Some(s.replace('\u{2581}', " ").into_bytes())
}

pub(super) fn as_id(n: &serde_json::Number) -> Option<i32> {
    n.as_i64().and_then(|i| i32::try_from(i).ok())
}

/// A token's bytes: a string, or an array of byte values (llama.cpp writes a piece that is not
/// valid UTF-8 so).
pub(super) fn piece_bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Array(a) => a
            .iter()
            .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect(),
        _ => Vec::new(),
    }
}

/// An error with its causes ("error sending request: connection refused").
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn vocabulary_strings_give_each_tokens_bytes() {
        // Byte-level BPE (SmolLM2's and Qwen's vocabulary): "Ġ" a space, "Ċ" a newline, and a
        // character split over two tokens ("é" is C3 A9: "Ã" and "©").
        let strs = ["Let", "Ġme", "Ċ", "```", "python", "Ċ", "Ã", "©"];
        let text = "Let me\n```python\né";
        let pieces = pieces_from_strs(&strs, text.as_bytes()).unwrap();
        assert_eq!(pieces[1], b" me");
        assert_eq!(pieces[2], b"\n");
        assert_eq!(pieces[6], [0xc3]);
        assert_eq!(pieces[7], [0xa9]);
        // A special token is its own text.
        let strs = ["<|im_end|>", "Ċ"];
        assert!(pieces_from_strs(&strs, b"<|im_end|>\n").is_some());
        // SentencePiece: "▁" a space, byte tokens.
        let strs = ["\u{2581}Let", "\u{2581}me", "<0x0A>", "<0xC3>", "<0xA9>"];
        let pieces = pieces_from_strs(&strs, " Let me\né".as_bytes()).unwrap();
        assert_eq!(pieces[2], b"\n");
        // Strings that do not add up to the text are not used.
        assert!(pieces_from_strs(&["Let", "Ġyou"], b"Let me").is_none());
        // GPT-2's table at its edges: the 68 unprintable bytes take U+0100 onwards in order.
        for (c, b) in [
            ('\u{100}', 0x00),
            ('Ċ', 0x0a),
            ('Ġ', 0x20),
            ('!', 0x21),
            ('~', 0x7e),
            ('ġ', 0x7f),
            ('ł', 0xa0),
            ('¡', 0xa1),
            ('¬', 0xac),
            ('Ń', 0xad),
            ('®', 0xae),
            ('ÿ', 0xff),
        ] {
            assert_eq!(byte_level_bytes(&c.to_string()), Some(vec![b]), "{c}");
        }
        assert_eq!(byte_level_bytes("\u{144}"), None);
    }

    #[test]
    fn only_what_a_retry_can_fix_is_retried() {
        let status = |s| ClientError::Status {
            url: "u".into(),
            status: s,
            body: String::new(),
        };
        assert!(status(503).retryable() && status(429).retryable());
        assert!(!status(400).retryable() && !status(404).retryable());
        assert!(ClientError::Transport {
            url: "u".into(),
            message: "refused".into()
        }
        .retryable());
        assert!(Client::new("ftp://x", None, 1, Duration::ZERO, Duration::from_secs(1)).is_err());
        let c = Client::new(
            "http://127.0.0.1:1/v1/",
            None,
            1,
            Duration::ZERO,
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(c.root(), "http://127.0.0.1:1");
    }
}
