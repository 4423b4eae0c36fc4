//! The server-sent events of a streamed `/v1/completions`: each chunk's tokens (llama.cpp's
//! ids and bytes through `n_probs`, vLLM's `token_ids` with their text) and the finish, an error
//! event inside a successful stream included.

use super::client::{as_id, error_chain, piece_bytes, ClientError};
use futures_util::StreamExt;
use serde_json::Value;

/// One sampled token of a streamed completion.
#[derive(Debug)]
pub(crate) struct Token {
    /// Its id; `None` when the server reports text only.
    pub id: Option<i32>,
    /// Its bytes as the server sent them (a character split across tokens arrives with the
    /// token that completes it).
    pub bytes: Vec<u8>,
}

/// What a streamed completion delivers.
#[derive(Debug)]
pub(crate) enum Event {
    /// Sampled tokens.
    Tokens(Vec<Token>),
    /// The server ended the completion: `stop` (an end-of-generation token: start sends no
    /// stop sequences) or `length` (the `max_tokens` it was given).
    Finished(String),
}

/// Longest event line read: a server's chunk of one completion is a few hundred bytes (a
/// token's text and log-probabilities); a line past this is a broken server, not a bigger
/// buffer.
const MAX_LINE: usize = 16 << 20;

/// The events of one streamed completion.
pub(crate) struct EventStream {
    url: String,
    body: Body,
    buf: Vec<u8>,
    /// Bytes of `buf` already read as lines.
    read: usize,
    /// Bytes of `buf` known to hold no line end past `read`.
    scanned: usize,
    queued: std::collections::VecDeque<Event>,
    done: bool,
}

/// The bytes of a streamed answer.
pub(super) type Body =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

impl EventStream {
    /// The events of the answer to `url` whose bytes are `body`.
    pub(super) fn new(url: String, body: Body) -> Self {
        Self {
            url,
            body,
            buf: Vec::new(),
            read: 0,
            scanned: 0,
            queued: std::collections::VecDeque::new(),
            done: false,
        }
    }

    /// The next event; `None` after the completion finished. An answer cut off before its
    /// end is a [`ClientError::Transport`].
    pub async fn next(&mut self) -> Result<Option<Event>, ClientError> {
        loop {
            if let Some(e) = self.queued.pop_front() {
                if matches!(e, Event::Finished(_)) {
                    self.done = true;
                }
                return Ok(Some(e));
            }
            if self.done {
                return Ok(None);
            }
            // Lines are read in place, and the bytes before them dropped only when a chunk must
            // be appended; the search for a line's end starts where the last one stopped. A
            // chunk of many lines, or a line in many chunks, costs one pass (found by the fuzz
            // campaign: 60 kB in one chunk, or in 7-byte pieces, took seconds).
            let from = self.scanned.max(self.read);
            if let Some(end) = self.buf[from..].iter().position(|&b| b == b'\n') {
                let end = from + end;
                let line = String::from_utf8_lossy(&self.buf[self.read..=end]).into_owned();
                self.read = end + 1;
                self.scanned = self.read;
                self.line(&line)?;
                continue;
            }
            self.buf.drain(..self.read);
            self.read = 0;
            self.scanned = self.buf.len();
            if self.buf.len() > MAX_LINE {
                return Err(ClientError::Protocol {
                    url: self.url.clone(),
                    message: format!(
                        "an event line of more than {} MiB without its end",
                        MAX_LINE >> 20
                    ),
                });
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    return Err(ClientError::Transport {
                        url: self.url.clone(),
                        message: format!("stream cut off: {}", error_chain(&e)),
                    })
                }
                None => {
                    return Err(ClientError::Transport {
                        url: self.url.clone(),
                        message: "stream ended before the completion finished".into(),
                    })
                }
            }
        }
    }

    /// One line of server-sent events.
    fn line(&mut self, line: &str) -> Result<(), ClientError> {
        let line = line.trim();
        let Some(data) = line.strip_prefix("data:") else {
            if let Some(err) = line.strip_prefix("error:") {
                return Err(ClientError::Status {
                    url: self.url.clone(),
                    status: 500,
                    body: err.trim().chars().take(300).collect(),
                });
            }
            return Ok(());
        };
        let data = data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        let v: Value = serde_json::from_str(data).map_err(|e| ClientError::Protocol {
            url: self.url.clone(),
            message: format!("an event that is not JSON ({e}): {data:.200}"),
        })?;
        if let Some(err) = v.get("error") {
            return Err(ClientError::Status {
                url: self.url.clone(),
                status: err.get("code").and_then(Value::as_u64).unwrap_or(500) as u16,
                body: err.to_string().chars().take(300).collect(),
            });
        }
        self.queued.extend(events(&v));
        Ok(())
    }
}

/// The events in one streamed chunk: its tokens (ids from llama.cpp's `logprobs.content[].id`
/// when `n_probs` is asked, or vLLM's `token_ids`), then its finish reason.
pub(super) fn events(v: &Value) -> Vec<Event> {
    let Some(choice) = v.get("choices").and_then(|c| c.get(0)) else {
        return Vec::new();
    };
    let text = choice.get("text").and_then(Value::as_str).unwrap_or("");
    let mut tokens = Vec::new();
    let probs = choice
        .get("logprobs")
        .and_then(|l| l.get("content"))
        .and_then(Value::as_array);
    if let Some(probs) = probs.filter(|p| !p.is_empty()) {
        for p in probs {
            let id = p.get("id").and_then(Value::as_number).and_then(as_id);
            let bytes = p
                .get("bytes")
                .map(piece_bytes)
                .or_else(|| p.get("token").map(piece_bytes))
                .unwrap_or_default();
            tokens.push(Token { id, bytes });
        }
    } else if let Some(ids) = choice.get("token_ids").and_then(Value::as_array) {
        for (i, id) in ids.iter().enumerate() {
            tokens.push(Token {
                id: id.as_number().and_then(as_id),
                bytes: if i == 0 {
                    text.as_bytes().to_vec()
                } else {
                    Vec::new()
                },
            });
        }
    } else if !text.is_empty() {
        tokens.push(Token {
            id: None,
            bytes: text.as_bytes().to_vec(),
        });
    }
    let mut out = Vec::new();
    if !tokens.is_empty() {
        out.push(Event::Tokens(tokens));
    }
    if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
        out.push(Event::Finished(reason.to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chunks_of_llama_cpp_and_vllm_give_ids_bytes_and_the_finish() {
        // llama.cpp's /v1/completions with n_probs: one token per event, its id and bytes.
        let llama = json!({"choices": [{"text": "é", "finish_reason": null,
            "logprobs": {"content": [{"id": 42, "token": "é", "bytes": [195, 169], "prob": 1.0}]}}]});
        let ev = events(&llama);
        assert!(
            matches!(&ev[..], [Event::Tokens(t)] if t[0].id == Some(42) && t[0].bytes == [195, 169])
        );
        // vLLM's return_token_ids: several ids with their text, then the finish.
        let vllm =
            json!({"choices": [{"text": "ab", "token_ids": [7, 8], "finish_reason": "length"}]});
        let ev = events(&vllm);
        assert!(matches!(&ev[..], [Event::Tokens(t), Event::Finished(r)]
                if t.len() == 2 && t[0].bytes == b"ab" && t[1].bytes.is_empty() && r == "length"));
        // A server with text only.
        let plain = json!({"choices": [{"text": "x", "finish_reason": null}]});
        assert!(matches!(&events(&plain)[..], [Event::Tokens(t)] if t[0].id.is_none()));
        assert!(events(&json!({"choices": []})).is_empty());
        assert_eq!(piece_bytes(&json!([226, 130])), vec![226, 130]);
    }

    fn stream_of(lines: &'static str) -> EventStream {
        let chunks =
            futures_util::stream::iter(vec![Ok(bytes::Bytes::from_static(lines.as_bytes()))]);
        EventStream::new("http://127.0.0.1:1/v1/completions".into(), Box::pin(chunks))
    }

    #[tokio::test]
    async fn an_error_event_inside_a_successful_stream_is_an_error() {
        // vLLM answers 200 and streams, then reports a failure as an event of its own (the
        // shape its OpenAI server writes: an `error` object with a code).
        let mut s = stream_of(concat!(
            "data: {\"choices\":[{\"index\":0,\"text\":\"Hi\",\"token_ids\":[7],",
            "\"finish_reason\":null,\"stop_reason\":null}]}\n\n",
            "data: {\"error\": {\"object\": \"error\", \"message\": \"engine dead\", ",
            "\"type\": \"InternalServerError\", \"param\": null, \"code\": 500}}\n\n",
        ));
        assert!(matches!(s.next().await, Ok(Some(Event::Tokens(t))) if t[0].id == Some(7)));
        let err = s.next().await.unwrap_err();
        assert!(
            err.retryable() && err.to_string().contains("engine dead"),
            "{err}"
        );
        // A bad request reported so is not retried.
        let mut s = stream_of("data: {\"error\": {\"message\": \"too long\", \"code\": 400}}\n\n");
        assert!(!s.next().await.unwrap_err().retryable());
        // The end-of-sequence id comes with empty text and the finish after it.
        let mut s = stream_of(concat!(
            "data: {\"choices\":[{\"index\":0,\"text\":\"\",\"token_ids\":[2],",
            "\"finish_reason\":\"stop\",\"stop_reason\":null}]}\n\n",
            "data: [DONE]\n\n",
        ));
        assert!(
            matches!(s.next().await, Ok(Some(Event::Tokens(t))) if t[0].id == Some(2) && t[0].bytes.is_empty())
        );
        assert!(matches!(s.next().await, Ok(Some(Event::Finished(r))) if r == "stop"));
        assert!(matches!(s.next().await, Ok(None)));
    }
}
