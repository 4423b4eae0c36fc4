//! A dataset's `manifest.json`: the list of committed shards, the only thing readers trust.
//!
//! A shard file that is not in the manifest does not exist for readers (an orphan from a crashed
//! or out-lived writer). Updates take an exclusive lock on `.manifest.lock` and replace the file
//! atomically (temp file, fsync, rename, fsync of the directory), so concurrent committers on
//! one host never lose each other's entries and a crash leaves the old or the new manifest,
//! never half of one.

use crate::dataset::DatasetError;
use crate::trajectory::SCHEMA_VERSION;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// File name of the manifest inside a dataset directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Value of the manifest's `format` field.
pub const MANIFEST_FORMAT: &str = "start.dataset";
const LOCK_FILE: &str = ".manifest.lock";

/// One committed shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// Shard id (the file stem), unique in the dataset.
    pub shard_id: String,
    /// Path relative to the dataset root.
    pub path: String,
    /// Trajectory rows in the shard.
    pub rows: u64,
    /// Hex sha256 of the file's bytes.
    pub sha256: String,
    /// File size in bytes.
    pub bytes: u64,
    /// Trajectory schema version it was written with.
    pub schema_version: u32,
    /// When it was committed.
    pub committed_at: DateTime<Utc>,
}

impl ShardEntry {
    /// The entry of a shard a worker reported (committed now).
    pub fn reported(s: &crate::proto::ShardInfo) -> Self {
        let shard_id = Path::new(&s.path)
            .file_stem()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self {
            shard_id,
            path: s.path.clone(),
            rows: s.rows,
            sha256: s.sha256.clone(),
            bytes: s.bytes,
            schema_version: s.schema_version,
            committed_at: Utc::now(),
        }
    }
}

/// The manifest as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`]; lets tools refuse a random JSON file.
    pub format: String,
    /// Trajectory schema version of the dataset.
    pub schema_version: u32,
    /// Committed shards in commit order.
    pub shards: Vec<ShardEntry>,
}

impl Default for Manifest {
    fn default() -> Self {
        Self {
            format: MANIFEST_FORMAT.into(),
            schema_version: SCHEMA_VERSION,
            shards: Vec::new(),
        }
    }
}

impl Manifest {
    /// Reads the manifest of `dir`; an absent one is an empty dataset.
    pub fn load(dir: &Path) -> Result<Self, DatasetError> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(DatasetError::io(&path, e)),
        };
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| DatasetError::Manifest {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(DatasetError::Manifest {
                path: path.display().to_string(),
                message: format!(
                    "format is {:?}, expected {MANIFEST_FORMAT:?}",
                    manifest.format
                ),
            });
        }
        Ok(manifest)
    }

    /// Total rows over every shard.
    pub fn rows(&self) -> u64 {
        self.shards.iter().map(|s| s.rows).sum()
    }

    /// Adds `entry` under the dataset's lock. Recording the same shard twice with the same
    /// bytes is a no-op (returns `false`), so a retried commit is safe; the same id with other
    /// bytes is refused, so two writers can never silently replace each other's data.
    pub fn record(dir: &Path, entry: ShardEntry) -> Result<bool, DatasetError> {
        Self::record_many(dir, vec![entry]).map(|added| added > 0)
    }

    /// Adds every entry not yet present under one lock and one rewrite: the coordinator's
    /// batched path, which keeps a job of thousands of shards from rewriting the file per shard.
    /// Returns how many were added; a conflicting entry refuses the whole call.
    pub fn record_many(dir: &Path, entries: Vec<ShardEntry>) -> Result<usize, DatasetError> {
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| DatasetError::io(&lock_path, e))?;
        lock.lock().map_err(|e| DatasetError::io(&lock_path, e))?;
        let mut manifest = Self::load(dir)?;
        let mut known: std::collections::HashMap<String, String> = manifest
            .shards
            .iter()
            .map(|s| (s.shard_id.clone(), s.sha256.clone()))
            .collect();
        let mut added = 0;
        for entry in entries {
            match known.get(&entry.shard_id) {
                Some(sha) if *sha == entry.sha256 => {}
                Some(sha) => {
                    return Err(DatasetError::ShardConflict {
                        shard_id: entry.shard_id,
                        existing: sha.clone(),
                        new: entry.sha256,
                    })
                }
                None => {
                    known.insert(entry.shard_id.clone(), entry.sha256.clone());
                    manifest.shards.push(entry);
                    added += 1;
                }
            }
        }
        if added > 0 {
            let bytes = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
            write_atomic(dir, MANIFEST_FILE, &bytes)?;
        }
        Ok(added)
    }
}

/// Writes `name` in `dir` atomically: a temp file beside it, fsync, rename, fsync of `dir`.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), DatasetError> {
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let target = dir.join(name);
    let mut file = File::create(&tmp).map_err(|e| DatasetError::io(&tmp, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| DatasetError::io(&tmp, e))?;
    drop(file);
    std::fs::rename(&tmp, &target).map_err(|e| DatasetError::io(&target, e))?;
    sync_dir(dir)
}

/// fsyncs a directory so that a rename inside it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<(), DatasetError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| DatasetError::io(dir, e))
}
