//! The errors of reading and writing one Parquet file, each naming the file (a local path or an
//! object's URL): shared by the SFT export here and the dataset store (`start-dataset`), so
//! that both name a bad file the same way.

use std::fmt::Display;

/// What can go wrong with one file, naming it.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// A file-system call failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Parquet encoding or decoding failed.
    #[error("{path}: Parquet: {source}")]
    Parquet {
        /// The file.
        path: String,
        /// The Parquet error.
        source: parquet::errors::ParquetError,
    },
    /// Arrow conversion failed.
    #[error("{path}: Arrow: {source}")]
    Arrow {
        /// The file.
        path: String,
        /// The Arrow error.
        source: arrow_schema::ArrowError,
    },
}

impl FileError {
    /// An I/O error at `path`.
    pub fn io(path: impl Display, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_string(),
            source,
        }
    }

    /// A Parquet error at `path`.
    pub fn parquet(path: impl Display, source: parquet::errors::ParquetError) -> Self {
        Self::Parquet {
            path: path.to_string(),
            source,
        }
    }

    /// An Arrow error at `path`.
    pub fn arrow(path: impl Display, source: arrow_schema::ArrowError) -> Self {
        Self::Arrow {
            path: path.to_string(),
            source,
        }
    }
}

/// Runs `decode` (a call into the `parquet` crate on bytes nobody here wrote) and turns a panic
/// inside it into a [`parquet::errors::ParquetError`]. The crate panics on some malformed files
/// instead of returning an error ("column start and length should not be negative", an index
/// out of range, a dictionary page missing: found by start's fuzz campaign, `fuzz/`); a bad
/// problem file or shard must be an error naming the file, not a crashed worker.
pub fn parquet_guard<T>(
    decode: impl FnOnce() -> Result<T, parquet::errors::ParquetError>,
) -> Result<T, parquet::errors::ParquetError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode)).unwrap_or_else(|payload| {
        Err(parquet::errors::ParquetError::General(format!(
            "malformed file, the decoder failed: {}",
            panic_message(payload.as_ref())
        )))
    })
}

/// The message a caught panic carried (`panic!` with a format gives a `String`, with a literal
/// a `&str`); "no message" for any other payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("no message")
}
