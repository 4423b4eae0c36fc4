//! A dataset's `_manifest.json`: the list of committed shards, the only thing start's readers
//! trust, and its conditional update.
//!
//! The manifest is replaced whole by a conditional write: put-if-absent for the first commit,
//! put-if-match (the version read) afterwards, so two committers can never both win from the
//! same version; the loser reads again and retries. Object stores do that natively (S3
//! `If-None-Match`/`If-Match`, GCS generations, Azure ETags). A local directory has no
//! compare-and-swap in `object_store`, so there the same check runs under an exclusive lock
//! on `_manifest.lock` with an atomic rename, as it always did.

use crate::layout::{self, LEGACY_MANIFEST, MANIFEST};
use crate::{DatasetError, DatasetLocation};
use chrono::{DateTime, Utc};
use object_store::{PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use start_schemas::trajectory::SCHEMA_VERSION;
use std::fs::{File, OpenOptions};
use std::io::Write;

/// Value of the manifest's `format` field.
pub const MANIFEST_FORMAT: &str = "start.dataset";
const LOCK_FILE: &str = "_manifest.lock";

/// One committed shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// Shard id (the file stem), unique in the dataset.
    pub shard_id: String,
    /// Path relative to the dataset root (`data/<id>.parquet`; `shards/<id>.parquet` in
    /// layout 1).
    pub path: String,
    /// Trajectory rows in the shard.
    pub rows: u64,
    /// Hex sha256 of the object's bytes.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Trajectory schema version it was written with.
    pub schema_version: u32,
    /// When it was committed.
    pub committed_at: DateTime<Utc>,
}

impl ShardEntry {
    /// The entry of a shard a worker reported (committed now).
    pub fn reported(s: &start_schemas::proto::ShardInfo) -> Self {
        let shard_id = layout::shard_id_of(&s.path)
            .map(str::to_string)
            .unwrap_or_else(|| s.path.clone());
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

    /// What a worker reports for this shard.
    pub fn info(&self) -> start_schemas::proto::ShardInfo {
        start_schemas::proto::ShardInfo {
            path: self.path.clone(),
            rows: self.rows,
            sha256: self.sha256.clone(),
            bytes: self.bytes,
            schema_version: self.schema_version,
        }
    }
}

fn layout_1() -> u32 {
    1
}

/// The manifest as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`]; lets tools refuse a random JSON file.
    pub format: String,
    /// Dataset layout ([`layout::LAYOUT`]); manifests without it are layout 1.
    #[serde(default = "layout_1")]
    pub layout: u32,
    /// Trajectory schema version of the dataset.
    pub schema_version: u32,
    /// Committed shards in commit order.
    pub shards: Vec<ShardEntry>,
}

impl Default for Manifest {
    fn default() -> Self {
        Self {
            format: MANIFEST_FORMAT.into(),
            layout: layout::LAYOUT,
            schema_version: SCHEMA_VERSION,
            shards: Vec::new(),
        }
    }
}

/// The version of the manifest a commit read, for its conditional write.
#[derive(Clone, Debug, PartialEq)]
pub enum Version {
    /// There was none: the write must create it.
    Absent,
    /// An object store's ETag / version.
    Object(UpdateVersion),
    /// A local file's sha256 (checked under the lock).
    Local(String),
}

impl Manifest {
    /// Parses manifest bytes read from `name`.
    pub fn parse(bytes: &[u8], name: &str) -> Result<Self, DatasetError> {
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| DatasetError::Manifest {
                path: name.to_string(),
                message: e.to_string(),
            })?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(DatasetError::Manifest {
                path: name.to_string(),
                message: format!(
                    "format is {:?}, expected {MANIFEST_FORMAT:?}",
                    manifest.format
                ),
            });
        }
        Ok(manifest)
    }

    /// Reads the manifest of `loc`: layout 2's `_manifest.json`, else layout 1's
    /// `manifest.json`; `None` when there is neither (an empty dataset).
    pub async fn load(loc: &DatasetLocation) -> Result<Option<Self>, DatasetError> {
        for name in [MANIFEST, LEGACY_MANIFEST] {
            if let Some(bytes) = loc.get_opt(name).await? {
                let mut m = Self::parse(&bytes, &loc.name(name))?;
                if name == LEGACY_MANIFEST {
                    m.layout = 1;
                }
                return Ok(Some(m));
            }
        }
        Ok(None)
    }

    /// Reads `_manifest.json` and the version a conditional write must match.
    pub async fn load_versioned(loc: &DatasetLocation) -> Result<(Self, Version), DatasetError> {
        let path = loc.path(MANIFEST);
        match loc.store().get(&path).await {
            Ok(got) => {
                let version = UpdateVersion {
                    e_tag: got.meta.e_tag.clone(),
                    version: got.meta.version.clone(),
                };
                let bytes = got
                    .bytes()
                    .await
                    .map_err(|e| DatasetError::store(loc.name(MANIFEST), e))?;
                let manifest = Self::parse(&bytes, &loc.name(MANIFEST))?;
                let version = if loc.local_dir().is_some() {
                    Version::Local(hex::encode(Sha256::digest(&bytes)))
                } else {
                    Version::Object(version)
                };
                Ok((manifest, version))
            }
            Err(object_store::Error::NotFound { .. }) => Ok((Self::default(), Version::Absent)),
            Err(e) => Err(DatasetError::store(loc.name(MANIFEST), e)),
        }
    }

    /// Total rows over every shard (saturating: the counts are what the manifest says).
    pub fn rows(&self) -> u64 {
        self.shards
            .iter()
            .fold(0u64, |n, s| n.saturating_add(s.rows))
    }

    /// A hash of what the dataset holds: hex sha256 over its shards' paths and sha256s in
    /// path order. Two datasets with the same shards hash the same whatever their commit order
    /// or times; any changed, added or removed shard changes it. What a recipe pins a dataset
    /// by (reading the rows checks each shard against its manifest sha256).
    pub fn content_sha256(&self) -> String {
        let mut shards: Vec<&ShardEntry> = self.shards.iter().collect();
        shards.sort_by(|a, b| a.path.cmp(&b.path));
        let mut h = Sha256::new();
        for s in shards {
            h.update(s.path.as_bytes());
            h.update(b"\0");
            h.update(s.sha256.as_bytes());
            h.update(b"\n");
        }
        hex::encode(h.finalize())
    }

    /// Writes this manifest if the stored one is still at `read`; `Ok(false)` when another
    /// committer got there first (read again and retry).
    pub async fn put_if(
        &self,
        loc: &DatasetLocation,
        read: &Version,
    ) -> Result<bool, DatasetError> {
        let bytes = serde_json::to_vec_pretty(self).expect("manifest serialises");
        if let Some(dir) = loc.local_dir() {
            let dir = dir.to_path_buf();
            let read = read.clone();
            return tokio::task::spawn_blocking(move || put_local(&dir, &bytes, &read))
                .await
                .map_err(|e| DatasetError::io(MANIFEST, std::io::Error::other(e)))?;
        }
        let mode = match read {
            Version::Absent => PutMode::Create,
            Version::Object(v) => PutMode::Update(v.clone()),
            Version::Local(_) => unreachable!("local versions only come from local datasets"),
        };
        let put = loc
            .store()
            .put_opts(
                &loc.path(MANIFEST),
                PutPayload::from(bytes),
                PutOptions::from(mode),
            )
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(object_store::Error::Precondition { .. })
            | Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(DatasetError::store(loc.name(MANIFEST), e)),
        }
    }
}

/// The local compare-and-swap: under the lock, write only if the file still hashes to `read`.
fn put_local(dir: &std::path::Path, bytes: &[u8], read: &Version) -> Result<bool, DatasetError> {
    let lock_path = dir.join(LOCK_FILE);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| DatasetError::io(lock_path.display(), e))?;
    lock.lock()
        .map_err(|e| DatasetError::io(lock_path.display(), e))?;
    let target = dir.join(MANIFEST);
    let now = match std::fs::read(&target) {
        Ok(b) => Version::Local(hex::encode(Sha256::digest(&b))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Version::Absent,
        Err(e) => return Err(DatasetError::io(target.display(), e)),
    };
    if now != *read {
        return Ok(false);
    }
    let tmp = dir.join(format!(".{MANIFEST}.{}.tmp", std::process::id()));
    let mut file = File::create(&tmp).map_err(|e| DatasetError::io(tmp.display(), e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| DatasetError::io(tmp.display(), e))?;
    drop(file);
    std::fs::rename(&tmp, &target).map_err(|e| DatasetError::io(target.display(), e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| DatasetError::io(dir.display(), e))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, sha: &str, at: i64) -> ShardEntry {
        ShardEntry {
            shard_id: id.into(),
            path: format!("data/{id}.parquet"),
            rows: 4,
            sha256: sha.into(),
            bytes: 100,
            schema_version: SCHEMA_VERSION,
            committed_at: DateTime::from_timestamp(at, 0).unwrap(),
        }
    }

    #[test]
    fn the_content_hash_names_the_shards_not_their_order_or_times() {
        let a = Manifest {
            shards: vec![entry("u0", "aa", 1), entry("u1", "bb", 2)],
            ..Manifest::default()
        };
        let b = Manifest {
            shards: vec![entry("u1", "bb", 9), entry("u0", "aa", 8)],
            ..Manifest::default()
        };
        assert_eq!(a.content_sha256(), b.content_sha256());
        assert_eq!(a.content_sha256().len(), 64);
        let changed = Manifest {
            shards: vec![entry("u0", "aa", 1), entry("u1", "cc", 2)],
            ..Manifest::default()
        };
        assert_ne!(a.content_sha256(), changed.content_sha256());
        let fewer = Manifest {
            shards: vec![entry("u0", "aa", 1)],
            ..Manifest::default()
        };
        assert_ne!(a.content_sha256(), fewer.content_sha256());
    }
}
