//! The outside readers' checks in `tests/python/`: Python scripts that read what start wrote
//! with tools that never heard of start (pyarrow, DuckDB, polars, Hugging Face `datasets`).

use std::path::Path;
use std::process::Command;

/// Runs `tests/python/<script>` with `args` on `$PYTHON` (else `python3`) and returns its
/// standard output; a failure fails the test with both outputs.
pub fn reader(script: &str, args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(script);
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} (run scripts/setup): {e}"));
    assert!(
        out.status.success(),
        "{} failed (run scripts/setup if a reader is missing):\n{}{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
