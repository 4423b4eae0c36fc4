//! Reading a dataset back: the manifest, then each listed shard in record batches. Only listed
//! shards exist for this reader; anything else under the dataset (staged uploads, orphans of
//! layout 1) is ignored.
//!
//! [`Dataset::for_each_row`] is the one way every reader of whole datasets (the report, export,
//! inspect) goes over the rows: each shard fetched once, checked against its manifest entry
//! (sha256 and size) before any row of it is decoded, every row given with its (shard, row)
//! position.

use crate::manifest::{Manifest, ShardEntry};
use crate::{DatasetError, DatasetLocation};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaData;
use sha2::{Digest, Sha256};
use start_schemas::file::parquet_guard;
use start_schemas::trajectory::{
    from_record_batch, Trajectory, READABLE_SCHEMA_VERSIONS, SCHEMA_VERSION_KEY,
};

/// A dataset opened for reading.
pub struct Dataset {
    loc: DatasetLocation,
    /// Its manifest as loaded.
    pub manifest: Manifest,
}

impl Dataset {
    /// Opens the dataset at `loc`; it must have a manifest (of either layout).
    pub async fn open(loc: DatasetLocation) -> Result<Self, DatasetError> {
        match Manifest::load(&loc).await? {
            Some(manifest) => Ok(Self { loc, manifest }),
            None => Err(DatasetError::Manifest {
                path: loc.name(crate::layout::MANIFEST),
                message: "not found; is this a start dataset?".into(),
            }),
        }
    }

    /// The dataset at `loc` with a manifest already in hand (one a commit just wrote), without
    /// reading it again.
    pub fn with_manifest(loc: DatasetLocation, manifest: Manifest) -> Self {
        Self { loc, manifest }
    }

    /// Opens a dataset given as a local path or URL.
    pub async fn open_at(spec: &str) -> Result<Self, DatasetError> {
        Self::open(DatasetLocation::open(spec)?).await
    }

    /// Where it is.
    pub fn location(&self) -> &DatasetLocation {
        &self.loc
    }

    /// A shard's full name.
    pub fn shard_name(&self, shard: &ShardEntry) -> String {
        self.loc.name(&shard.path)
    }

    /// The model (file name, sha256) of the first row of the first shard: what made the
    /// dataset, for its card when the job did not pin one. `None` for an empty dataset.
    pub async fn model(&self) -> Result<Option<(String, String)>, DatasetError> {
        let Some(first) = self.manifest.shards.first() else {
            return Ok(None);
        };
        for batch in self.read_shard(first, 1).await? {
            if let Some(t) = batch?.into_iter().next() {
                return Ok(Some((t.model_name, t.model_sha256)));
            }
        }
        Ok(None)
    }

    /// Fetches a shard's bytes.
    pub async fn fetch(&self, shard: &ShardEntry) -> Result<bytes::Bytes, DatasetError> {
        self.loc.get(&shard.path).await
    }

    /// Fetches a shard and compares its sha256 and size with the manifest.
    pub async fn verify(&self, shard: &ShardEntry) -> Result<(), DatasetError> {
        let bytes = self.fetch(shard).await?;
        check(&self.shard_name(shard), shard, &bytes)
    }

    /// Fetches shard `shard` once and checks it against its manifest entry; the rows are read
    /// from the fetched bytes, whatever the check said (inspect shows a damaged shard's rows).
    pub async fn fetch_checked(&self, shard: &ShardEntry) -> Result<FetchedShard, DatasetError> {
        let bytes = self.fetch(shard).await?;
        let name = self.shard_name(shard);
        Ok(FetchedShard {
            check: check(&name, shard, &bytes),
            name,
            bytes,
        })
    }

    /// Calls `f` with every row of the dataset and its (shard index, row in shard) position,
    /// in manifest order; a shard that does not match its manifest entry is an error before
    /// any of its rows.
    pub async fn for_each_row(
        &self,
        mut f: impl FnMut((usize, usize), Trajectory),
    ) -> Result<(), DatasetError> {
        for (si, shard) in self.manifest.shards.iter().enumerate() {
            let FetchedShard { check, name, bytes } = self.fetch_checked(shard).await?;
            check?;
            let mut row = 0;
            for batch in batches(name, bytes, 512)? {
                for t in batch? {
                    f((si, row), t);
                    row += 1;
                }
            }
        }
        Ok(())
    }

    /// Reads a shard in batches of at most `batch_rows` trajectories.
    pub async fn read_shard(
        &self,
        shard: &ShardEntry,
        batch_rows: usize,
    ) -> Result<impl Iterator<Item = Result<Vec<Trajectory>, DatasetError>>, DatasetError> {
        let bytes = self.fetch(shard).await?;
        batches(self.shard_name(shard), bytes, batch_rows)
    }
}

/// A shard's bytes as fetched, and whether they match the manifest.
pub struct FetchedShard {
    /// The comparison with the manifest entry.
    pub check: Result<(), DatasetError>,
    name: String,
    bytes: bytes::Bytes,
}

impl FetchedShard {
    /// The shard's rows, in batches of at most `batch_rows`.
    pub fn rows(
        self,
        batch_rows: usize,
    ) -> Result<impl Iterator<Item = Result<Vec<Trajectory>, DatasetError>>, DatasetError> {
        batches(self.name, self.bytes, batch_rows)
    }
}

/// Compares bytes with their manifest entry.
pub fn check(name: &str, shard: &ShardEntry, bytes: &[u8]) -> Result<(), DatasetError> {
    let actual = hex::encode(Sha256::digest(bytes));
    if actual == shard.sha256 && bytes.len() as u64 == shard.bytes {
        Ok(())
    } else {
        Err(DatasetError::ChecksumMismatch {
            path: name.to_string(),
            expected: shard.sha256.clone(),
            actual,
        })
    }
}

/// Decodes a shard's bytes into batches of trajectories, refusing unknown schema versions.
pub fn batches(
    name: String,
    bytes: bytes::Bytes,
    batch_rows: usize,
) -> Result<impl Iterator<Item = Result<Vec<Trajectory>, DatasetError>>, DatasetError> {
    let bytes_len = bytes.len() as u64;
    // Every call into the decoder is guarded: it panics on some malformed files.
    let builder = parquet_guard(|| ParquetRecordBatchReaderBuilder::try_new(bytes))
        .map_err(|e| DatasetError::parquet(&name, e))?;
    check_column_chunks(builder.metadata(), bytes_len)
        .map_err(|message| DatasetError::parquet(&name, ParquetError::General(message)))?;
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
            path: name,
            found: version,
        });
    }
    let mut reader = parquet_guard(|| builder.with_batch_size(batch_rows.max(1)).build())
        .map_err(|e| DatasetError::parquet(&name, e))?;
    // After an error the decoder's state is not to be trusted: the rows end there.
    let mut failed = false;
    Ok(std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let rows = match parquet_guard(|| Ok(reader.next())) {
            Ok(batch) => batch?
                .map_err(|e| DatasetError::arrow(name.clone(), e))
                .and_then(|b| {
                    from_record_batch(&b).map_err(|e| DatasetError::arrow(name.clone(), e))
                }),
            Err(e) => Err(DatasetError::parquet(&name, e)),
        };
        failed = rows.is_err();
        Some(rows)
    }))
}

/// Refuses a file whose column chunks do not fit in it: each chunk's byte range must lie inside
/// the file, and together they can claim no more bytes than it has, as in every file a Parquet
/// writer makes (chunks never overlap). A damaged footer that points many columns at the same
/// bytes otherwise sends the decoder through hundreds of thousands of bogus pages, each with a
/// new zstd context: over a second on a 23 KB file (the fuzz campaign's shard input 58,004).
fn check_column_chunks(metadata: &ParquetMetaData, file_len: u64) -> Result<(), String> {
    let mut claimed = 0u64;
    for (g, group) in metadata.row_groups().iter().enumerate() {
        for (c, chunk) in group.columns().iter().enumerate() {
            let start = chunk
                .dictionary_page_offset()
                .unwrap_or(chunk.data_page_offset());
            let len = chunk.compressed_size();
            let inside = u64::try_from(start)
                .ok()
                .zip(u64::try_from(len).ok())
                .and_then(|(s, l)| s.checked_add(l))
                .is_some_and(|end| end <= file_len);
            if !inside {
                return Err(format!(
                    "row group {g}, column {c}: its chunk (offset {start}, {len} bytes) is not \
                     inside the {file_len}-byte file"
                ));
            }
            claimed += len as u64;
        }
    }
    if claimed > file_len {
        return Err(format!(
            "the column chunks claim {claimed} bytes of a {file_len}-byte file (they overlap): \
             a damaged footer"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_whose_column_chunks_overlap_is_refused_before_decoding() {
        // The fuzz campaign's input: 72 chunks claiming 35,619 bytes of a 23,423-byte file,
        // the 29th reaching past its end.
        let bytes = include_bytes!("../../fuzz/regressions/shard/overlapping-chunks-58004.bin");
        let started = std::time::Instant::now();
        let err = batches("s.parquet".into(), bytes::Bytes::from_static(bytes), 64)
            .err()
            .expect("refused");
        let message = err.to_string();
        assert!(message.contains("s.parquet"), "{message}");
        assert!(
            message.contains("column 28: its chunk (offset 21700, 8322 bytes) is not inside"),
            "{message}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
