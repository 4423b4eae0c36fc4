//! How clients reach a coordinator: a lazily connected channel (TLS when a CA is given), an
//! interceptor that puts the bearer token on every call, and what a submission streams. Shared
//! by workers and startctl.

use std::path::Path;
use std::time::Duration;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

/// The coordinator address or its TLS settings are unusable.
#[derive(Debug, thiserror::Error)]
#[error("coordinator endpoint {url}: {message}")]
pub struct EndpointError {
    /// The URL.
    pub url: String,
    /// Why.
    pub message: String,
}

/// Adds `authorization: Bearer <token>` to every call (nothing without a token).
#[derive(Clone, Default)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut r: Request<()>) -> Result<Request<()>, Status> {
        if let Some(t) = &self.0 {
            r.metadata_mut().insert("authorization", t.clone());
        }
        Ok(r)
    }
}

/// A channel to `url` (connected on first use) and the token interceptor for it.
/// `request_timeout` bounds each unary call; leave it `None` for clients that hold streams.
pub fn channel(
    url: &str,
    tls_ca_pem: Option<&[u8]>,
    token: Option<&str>,
    request_timeout: Option<Duration>,
) -> Result<(Channel, Bearer), EndpointError> {
    let bad = |message: String| EndpointError {
        url: url.to_string(),
        message,
    };
    let mut endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| bad(e.to_string()))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    if let Some(t) = request_timeout {
        endpoint = endpoint.timeout(t);
    }
    if let Some(ca) = tls_ca_pem {
        endpoint = endpoint
            .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)))
            .map_err(|e| bad(e.to_string()))?;
    }
    let header = match token {
        Some(t) => Some(
            format!("Bearer {t}")
                .parse()
                .map_err(|_| bad("the token is not valid header text".into()))?,
        ),
        None => None,
    };
    Ok((endpoint.connect_lazy(), Bearer(header)))
}

/// The bearer token from a file (a mounted Secret, which wins) or a value (flag or
/// environment); surrounding whitespace is dropped and an empty token means none.
pub fn read_token(token: Option<&str>, file: Option<&Path>) -> std::io::Result<Option<String>> {
    let raw = match file {
        Some(f) => Some(std::fs::read_to_string(f).map_err(|e| {
            std::io::Error::new(e.kind(), format!("token file {}: {e}", f.display()))
        })?),
        None => token.map(str::to_string),
    };
    Ok(raw.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()))
}

/// The token the Kubernetes base's `start-token` Secret is generated with, so that a fresh
/// render is self-contained. Anyone can read it in start's repository: a server holding it is
/// open to all, so the coordinator and the worker refuse it ([`serving_token`]).
pub const PLACEHOLDER_TOKEN: &str = "change-me-before-deploying";

/// [`read_token`] for a process that serves or joins a cluster: the placeholder of the
/// Kubernetes base ([`PLACEHOLDER_TOKEN`]) is refused with what to do instead.
pub fn serving_token(token: Option<&str>, file: Option<&Path>) -> std::io::Result<Option<String>> {
    let token = read_token(token, file)?;
    if token.as_deref() == Some(PLACEHOLDER_TOKEN) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "the bearer token is the Kubernetes base's placeholder {PLACEHOLDER_TOKEN:?}, \
                 which anyone can read in start's repository; make a real one (`openssl rand -hex 32 \
                 > token.txt`, then `kubectl -n start create secret generic start-token \
                 --from-file=token=token.txt`, or an overlay's secretGenerator: k8s/README.md)"
            ),
        ));
    }
    Ok(token)
}

/// The gRPC metadata key that says what a `NOT_FOUND` is about. A worker must tell "the
/// coordinator forgot me" (register again, its leases are gone) from "that job is gone" (one
/// report refused, the other units carry on); the code alone cannot.
pub const NOT_FOUND_KIND: &str = "start-not-found";

/// What a `NOT_FOUND` names, carried under [`NOT_FOUND_KIND`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotFound {
    /// The calling worker is not registered (the store was wiped or it expired).
    Worker,
    /// The job named is not in the store.
    Job,
}

impl NotFound {
    /// The metadata value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Worker => "worker",
            Self::Job => "job",
        }
    }

    /// A `NOT_FOUND` status that says which.
    pub fn status(self, message: impl Into<String>) -> Status {
        let mut s = Status::not_found(message);
        s.metadata_mut()
            .insert(NOT_FOUND_KIND, MetadataValue::from_static(self.as_str()));
        s
    }

    /// Which thing a status says is missing; `None` for any other status, and for a
    /// `NOT_FOUND` that does not say (from a proxy, or an older coordinator).
    pub fn of(status: &Status) -> Option<Self> {
        if status.code() != tonic::Code::NotFound {
            return None;
        }
        match status.metadata().get(NOT_FOUND_KIND)?.to_str().ok()? {
            "worker" => Some(Self::Worker),
            "job" => Some(Self::Job),
            _ => None,
        }
    }
}

/// Bytes of an attached file per submit message (tonic accepts 4 MiB messages by default).
pub const FILE_CHUNK: usize = 1 << 20;

/// What a client streams to submit a job: the spec, each attached file once, in order, in
/// pieces of [`FILE_CHUNK`] bytes, then the problems in batches of 500, without their files'
/// bytes (the coordinator decides how those reach the workers). Files whose bytes were never
/// read are named only: the job's dataset must keep them already.
pub fn submission(
    spec: crate::proto::JobSpec,
    problems: &[crate::problem::Problem],
) -> Vec<crate::proto::SubmitJobRequest> {
    use crate::proto::{self, submit_job_request::Item};
    let mut messages = vec![proto::SubmitJobRequest {
        item: Some(Item::Spec(spec)),
    }];
    let mut sent = std::collections::HashSet::new();
    for file in problems.iter().flat_map(|p| &p.files) {
        let Some(bytes) = &file.content else { continue };
        if !sent.insert(file.sha256.clone()) {
            continue;
        }
        for at in (0..bytes.len()).step_by(FILE_CHUNK) {
            messages.push(proto::SubmitJobRequest {
                item: Some(Item::File(proto::FileChunk {
                    sha256: file.sha256.clone(),
                    offset: at as u64,
                    data: bytes.slice(at..(at + FILE_CHUNK).min(bytes.len())),
                    size: bytes.len() as u64,
                })),
            });
        }
    }
    for chunk in problems.chunks(500) {
        let problems = chunk
            .iter()
            .map(|p| {
                let mut wire = proto::Problem::from(p);
                for f in &mut wire.files {
                    f.content = Default::default();
                }
                wire
            })
            .collect();
        messages.push(proto::SubmitJobRequest {
            item: Some(Item::Problems(proto::ProblemBatch { problems })),
        });
    }
    messages
}

#[cfg(test)]
mod not_found_tests {
    use super::*;

    #[test]
    fn the_kind_survives_the_status_and_nothing_else_claims_it() {
        let s = NotFound::Worker.status("worker w1 is not registered");
        assert_eq!(NotFound::of(&s), Some(NotFound::Worker));
        assert_eq!(
            NotFound::of(&NotFound::Job.status("job j not found")),
            Some(NotFound::Job)
        );
        assert_eq!(NotFound::of(&Status::not_found("a proxy")), None);
        assert_eq!(NotFound::of(&Status::unavailable("down")), None);
    }
}
