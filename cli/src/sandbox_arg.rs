//! The sandbox backend as a command-line choice, and starting it for a subcommand that can go
//! on without one.

use start_sandbox::{BackendKind, Sandbox, SandboxConfig};

/// Backend choice on the command line.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Backend {
    /// Docker when a daemon answers, else processes.
    Auto,
    /// Docker containers.
    Docker,
    /// Child processes (weaker isolation).
    Process,
}

impl From<Backend> for BackendKind {
    fn from(b: Backend) -> Self {
        match b {
            Backend::Auto => BackendKind::Auto,
            Backend::Docker => BackendKind::Docker,
            Backend::Process => BackendKind::Process,
        }
    }
}

/// Starts a sandbox, or warns (saying what `consequence` follows) and goes on without one.
pub async fn start_or_warn(backend: Backend, consequence: &str) -> Option<std::sync::Arc<Sandbox>> {
    match Sandbox::start(SandboxConfig {
        backend: backend.into(),
        ..SandboxConfig::default()
    })
    .await
    {
        Ok(sb) => Some(std::sync::Arc::new(sb)),
        Err(e) => {
            eprintln!("startctl: WARNING: no sandbox ({e}): {consequence}");
            None
        }
    }
}
