//! What can go wrong with a dataset, each error naming the object involved by its full URL-like
//! name (`s3://bucket/jobs/a/data/x.parquet`, or a local path), so an operator knows where to look.

use start_schemas::file::FileError;
use start_schemas::trajectory::SCHEMA_VERSION;

/// A dataset error.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The store location could not be understood or opened.
    #[error("dataset store {location:?}: {message}")]
    Location {
        /// What was given.
        location: String,
        /// What is wrong with it.
        message: String,
    },
    /// An object-store call failed.
    #[error("{path}: {source}")]
    Store {
        /// The object.
        path: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// A local file call, Parquet or Arrow failed on one file (a temp file, the local commit
    /// lock, a shard's bytes).
    #[error(transparent)]
    File(#[from] FileError),
    /// The manifest is unreadable or not a start manifest.
    #[error("{path}: invalid manifest: {message}")]
    Manifest {
        /// The manifest object.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A row failed `Trajectory::check`; nothing of the batch was written.
    #[error("row {index} (problem {problem_id}): {message}")]
    InvalidRow {
        /// Index of the row in the shard.
        index: u64,
        /// Its problem id.
        problem_id: String,
        /// What is inconsistent.
        message: String,
    },
    /// A shard id that is not a safe object name.
    #[error("invalid shard id {0:?}: use letters, digits, '-', '_' or '.', not starting with '.' or '_'")]
    InvalidShardId(String),
    /// The manifest already lists this shard id with other bytes.
    #[error("shard {shard_id} is already in the manifest with sha256 {existing}, not {new}")]
    ShardConflict {
        /// The shard id.
        shard_id: String,
        /// The recorded hash.
        existing: String,
        /// The hash offered now.
        new: String,
    },
    /// A shard's bytes do not match what was recorded or reported.
    #[error("{path}: sha256 is {actual}, expected {expected}: the object was changed or damaged")]
    ChecksumMismatch {
        /// The shard.
        path: String,
        /// The expected hash.
        expected: String,
        /// The object's hash.
        actual: String,
    },
    /// A shard to commit is neither staged nor published.
    #[error("{path}: the shard to commit is not staged (and not in the data path either)")]
    NotStaged {
        /// Its staging object.
        path: String,
    },
    /// The manifest kept changing under this commit.
    #[error("{path}: gave up after {attempts} conditional writes lost to other committers")]
    Contended {
        /// The manifest object.
        path: String,
        /// Attempts made.
        attempts: u32,
    },
    /// An attached file the dataset keeps for its jobs is missing its bytes or is not what its
    /// problem says.
    #[error("{path}: {message}")]
    Input {
        /// The object.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A shard written by a newer, unknown schema.
    #[error(
        "{path}: schema version {found:?} is not supported (this build reads 1 to {SCHEMA_VERSION})"
    )]
    SchemaVersion {
        /// The shard.
        path: String,
        /// The version it declares.
        found: String,
    },
}

impl DatasetError {
    /// An object-store error at `path`.
    pub fn store(path: impl std::fmt::Display, source: object_store::Error) -> Self {
        Self::Store {
            path: path.to_string(),
            source,
        }
    }

    /// A local I/O error at `path`.
    pub fn io(path: impl std::fmt::Display, source: std::io::Error) -> Self {
        Self::File(FileError::io(path, source))
    }

    /// A Parquet error at `path`.
    pub fn parquet(path: impl std::fmt::Display, source: parquet::errors::ParquetError) -> Self {
        Self::File(FileError::parquet(path, source))
    }

    /// An Arrow error at `path`.
    pub fn arrow(path: impl std::fmt::Display, source: arrow_schema::ArrowError) -> Self {
        Self::File(FileError::arrow(path, source))
    }
}
