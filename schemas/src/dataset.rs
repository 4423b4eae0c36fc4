//! Reading a dataset back: the manifest, then each listed shard in record batches.

use crate::manifest::{Manifest, ShardEntry};
use crate::trajectory::{
    from_record_batch, Trajectory, READABLE_SCHEMA_VERSIONS, SCHEMA_VERSION, SCHEMA_VERSION_KEY,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::fs::File;
use std::path::{Path, PathBuf};

/// What can go wrong with a dataset, each naming the file involved.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
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
        /// The shard.
        path: String,
        /// The Parquet error.
        source: parquet::errors::ParquetError,
    },
    /// Arrow conversion failed.
    #[error("{path}: Arrow: {source}")]
    Arrow {
        /// The shard.
        path: String,
        /// The Arrow error.
        source: arrow_schema::ArrowError,
    },
    /// The manifest is unreadable or not a start manifest.
    #[error("{path}: invalid manifest: {message}")]
    Manifest {
        /// The manifest file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A row failed [`Trajectory::check`]; nothing of the batch was written.
    #[error("row {index} (problem {problem_id}): {message}")]
    InvalidRow {
        /// Index of the row in the shard.
        index: u64,
        /// Its problem id.
        problem_id: String,
        /// What is inconsistent.
        message: String,
    },
    /// A shard id that is not a safe file stem.
    #[error("invalid shard id {0:?}: use letters, digits, '-', '_' or '.', not starting with '.'")]
    InvalidShardId(String),
    /// The shard file already exists; shards are never overwritten.
    #[error("{0}: shard already exists; shards are written once")]
    ShardExists(String),
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
    /// A shard's bytes do not match the manifest.
    #[error(
        "{path}: sha256 is {actual}, the manifest says {expected}: the file was changed or damaged"
    )]
    ChecksumMismatch {
        /// The shard.
        path: String,
        /// The manifest's hash.
        expected: String,
        /// The file's hash.
        actual: String,
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
    /// An I/O error at `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// A Parquet error at `path`.
    pub fn parquet(path: &Path, source: parquet::errors::ParquetError) -> Self {
        Self::Parquet {
            path: path.display().to_string(),
            source,
        }
    }
}

/// A dataset directory opened for reading.
pub struct Dataset {
    root: PathBuf,
    /// Its manifest as loaded.
    pub manifest: Manifest,
}

impl Dataset {
    /// Opens `root`; it must hold a manifest.
    pub fn open(root: &Path) -> Result<Self, DatasetError> {
        let path = root.join(crate::manifest::MANIFEST_FILE);
        if !path.is_file() {
            return Err(DatasetError::Manifest {
                path: path.display().to_string(),
                message: "not found; is this a start dataset directory?".into(),
            });
        }
        Ok(Self {
            root: root.to_path_buf(),
            manifest: Manifest::load(root)?,
        })
    }

    /// The dataset's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Absolute path of a shard.
    pub fn shard_path(&self, shard: &ShardEntry) -> PathBuf {
        self.root.join(&shard.path)
    }

    /// Streams the file's sha256 and compares it with the manifest.
    pub fn verify(&self, shard: &ShardEntry) -> Result<(), DatasetError> {
        let path = self.shard_path(shard);
        let actual = crate::model::sha256_file(&path).map_err(|e| DatasetError::io(&path, e))?;
        if actual == shard.sha256 {
            Ok(())
        } else {
            Err(DatasetError::ChecksumMismatch {
                path: path.display().to_string(),
                expected: shard.sha256.clone(),
                actual,
            })
        }
    }

    /// Reads a shard in batches of at most `batch_rows` trajectories.
    pub fn read_shard(
        &self,
        shard: &ShardEntry,
        batch_rows: usize,
    ) -> Result<impl Iterator<Item = Result<Vec<Trajectory>, DatasetError>>, DatasetError> {
        let path = self.shard_path(shard);
        let file = File::open(&path).map_err(|e| DatasetError::io(&path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| DatasetError::parquet(&path, e))?;
        let version = builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|k| k.key == SCHEMA_VERSION_KEY))
            .and_then(|k| k.value.clone())
            .unwrap_or_default();
        if !READABLE_SCHEMA_VERSIONS
            .iter()
            .any(|v| v.to_string() == version)
        {
            return Err(DatasetError::SchemaVersion {
                path: path.display().to_string(),
                found: version,
            });
        }
        let reader = builder
            .with_batch_size(batch_rows.max(1))
            .build()
            .map_err(|e| DatasetError::parquet(&path, e))?;
        let name = path.display().to_string();
        Ok(reader.map(move |batch| {
            let batch = batch.map_err(|e| DatasetError::Arrow {
                path: name.clone(),
                source: e,
            })?;
            from_record_batch(&batch).map_err(|e| DatasetError::Arrow {
                path: name.clone(),
                source: e,
            })
        }))
    }
}
