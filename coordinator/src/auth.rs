//! Bearer-token authentication for every RPC of the job and worker services.

use tonic::{Request, Status};

/// Checks `authorization: Bearer <token>` when a token is configured; passes everything when
/// none is (loopback development, `startctl run`).
#[derive(Clone)]
pub struct BearerAuth {
    token: Option<std::sync::Arc<str>>,
}

impl BearerAuth {
    /// An interceptor requiring `token`, or nothing when `None` or empty.
    pub fn new(token: Option<String>) -> Self {
        Self {
            token: token.filter(|t| !t.is_empty()).map(Into::into),
        }
    }
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl tonic::service::Interceptor for BearerAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(token) = &self.token else {
            return Ok(request);
        };
        let given = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            Some(g) if same(g.as_bytes(), token.as_bytes()) => Ok(request),
            Some(_) => Err(Status::unauthenticated("wrong bearer token")),
            None => Err(Status::unauthenticated(
                "this coordinator needs a bearer token (START_TOKEN or --token-file)",
            )),
        }
    }
}

/// Reads a token from `--token` / `START_TOKEN` or a file (a Kubernetes Secret mount); the
/// file wins, and surrounding whitespace is dropped.
pub fn load_token(
    token: Option<String>,
    file: Option<&std::path::Path>,
) -> std::io::Result<Option<String>> {
    if let Some(f) = file {
        let t = std::fs::read_to_string(f).map_err(|e| {
            std::io::Error::new(e.kind(), format!("token file {}: {e}", f.display()))
        })?;
        return Ok(Some(t.trim().to_string()).filter(|t| !t.is_empty()));
    }
    Ok(token
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty()))
}
