//! The Parquet shard writer: zstd, bounded row groups, staged upload.
//!
//! Rows are encoded into a local temp file, hashing the bytes as they are written (so nothing
//! is read back to commit). [`ShardWriter::stage`] uploads the file to
//! `_staging/<id>.parquet.staged` (a multipart upload for large shards, so a writer killed
//! mid-upload leaves nothing at all: an incomplete multipart upload is not an object). Only
//! the commit ([`crate::commit`]) moves a staged shard into `data/`.

use crate::layout::{check_shard_id, data_path, staged_path};
use crate::manifest::ShardEntry;
use crate::{DatasetError, DatasetLocation};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use sha2::{Digest, Sha256};
use start_schemas::trajectory::{
    schema, to_record_batch, Trajectory, SCHEMA_VERSION, SCHEMA_VERSION_KEY,
};
use std::io::{self, Write};
use tempfile::NamedTempFile;
use tokio::io::AsyncWriteExt;

/// Writer settings.
#[derive(Clone, Debug)]
pub struct ShardOptions {
    /// Rows per Parquet row group. Trajectories are large (tens of KB of text each), so a few
    /// hundred rows already make row groups of several MB: big enough for good compression and
    /// column pruning, small enough that a reader never needs much memory.
    pub row_group_rows: usize,
    /// zstd level; 3 is zstd's default trade-off.
    pub zstd_level: i32,
}

impl Default for ShardOptions {
    fn default() -> Self {
        Self {
            row_group_rows: 512,
            zstd_level: 3,
        }
    }
}

/// Counts bytes and hashes them on their way to the file.
struct HashingFile {
    file: NamedTempFile,
    hasher: Sha256,
    bytes: u64,
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Writes one shard; nothing is visible to any reader until it is staged and committed.
pub struct ShardWriter {
    shard_id: String,
    writer: Option<ArrowWriter<HashingFile>>,
    rows: u64,
}

/// An encoded shard, waiting in a local temp file to be staged.
pub struct EncodedShard {
    file: NamedTempFile,
    /// Its entry (path `data/<id>.parquet`, where the commit puts it).
    pub entry: ShardEntry,
}

impl ShardWriter {
    /// Starts shard `shard_id`, encoding into a temp file in the system temp directory.
    pub fn create(shard_id: &str, options: &ShardOptions) -> Result<Self, DatasetError> {
        check_shard_id(shard_id)?;
        let file = tempfile::Builder::new()
            .prefix(&format!("start-shard-{shard_id}."))
            .tempfile()
            .map_err(|e| DatasetError::io("temp dir", e))?;
        let level = ZstdLevel::try_new(options.zstd_level)
            .map_err(|e| DatasetError::parquet(shard_id, e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_max_row_group_row_count(Some(options.row_group_rows.max(1)))
            .set_created_by(format!("start {}", env!("CARGO_PKG_VERSION")))
            .set_key_value_metadata(Some(vec![KeyValue::new(
                SCHEMA_VERSION_KEY.to_string(),
                SCHEMA_VERSION.to_string(),
            )]))
            .build();
        let sink = HashingFile {
            file,
            hasher: Sha256::new(),
            bytes: 0,
        };
        let writer = ArrowWriter::try_new(sink, schema(), Some(props))
            .map_err(|e| DatasetError::parquet(shard_id, e))?;
        Ok(Self {
            shard_id: shard_id.to_string(),
            writer: Some(writer),
            rows: 0,
        })
    }

    /// Appends rows after checking each one ([`Trajectory::check`]); a bad row is refused with
    /// its index and nothing of the call is written.
    pub fn write(&mut self, rows: &[Trajectory]) -> Result<(), DatasetError> {
        for (i, row) in rows.iter().enumerate() {
            row.check().map_err(|message| DatasetError::InvalidRow {
                index: self.rows + i as u64,
                problem_id: row.problem_id.clone(),
                message,
            })?;
        }
        let batch =
            to_record_batch(rows).map_err(|e| DatasetError::arrow(self.shard_id.clone(), e))?;
        let writer = self
            .writer
            .as_mut()
            .expect("writer is present until finish");
        writer
            .write(&batch)
            .map_err(|e| DatasetError::parquet(&self.shard_id, e))?;
        self.rows += rows.len() as u64;
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Closes the Parquet file.
    pub fn finish(mut self) -> Result<EncodedShard, DatasetError> {
        let writer = self.writer.take().expect("finish is called once");
        let sink = writer
            .into_inner()
            .map_err(|e| DatasetError::parquet(&self.shard_id, e))?;
        Ok(EncodedShard {
            file: sink.file,
            entry: ShardEntry {
                shard_id: self.shard_id.clone(),
                path: data_path(&self.shard_id),
                rows: self.rows,
                sha256: hex::encode(sink.hasher.finalize()),
                bytes: sink.bytes,
                schema_version: SCHEMA_VERSION,
                committed_at: chrono::Utc::now(),
            },
        })
    }
}

impl EncodedShard {
    /// The encoded file's bytes (a small shard's: a piece of one row).
    pub fn to_bytes(&self) -> Result<Vec<u8>, DatasetError> {
        std::fs::read(self.file.path()).map_err(|e| DatasetError::io(self.file.path().display(), e))
    }

    /// Uploads the shard to the dataset's staging prefix and returns its entry. Uploading the
    /// same shard again (a retry by the lease's holder) replaces the staged object.
    pub async fn stage(self, loc: &DatasetLocation) -> Result<ShardEntry, DatasetError> {
        let rel = staged_path(&self.entry.shard_id);
        let name = loc.name(&rel);
        let mut file = tokio::fs::File::from_std(
            self.file
                .reopen()
                .map_err(|e| DatasetError::io(self.file.path().display(), e))?,
        );
        // 8 MiB parts: one PUT for ordinary shards, a multipart upload for big ones.
        let mut upload = object_store::buffered::BufWriter::with_capacity(
            loc.store().clone(),
            loc.path(&rel),
            8 << 20,
        );
        let copied = tokio::io::copy(&mut file, &mut upload).await;
        let done = match copied {
            Ok(n) if n == self.entry.bytes => upload.shutdown().await,
            Ok(n) => Err(io::Error::other(format!(
                "read {n} bytes of the encoded shard, expected {}",
                self.entry.bytes
            ))),
            Err(e) => Err(e),
        };
        if let Err(e) = done {
            let _ = upload.abort().await;
            return Err(DatasetError::io(name, e));
        }
        Ok(self.entry)
    }

    /// Stages the shard and commits it at once: the single-process path (tests, tools).
    pub async fn commit(self, loc: &DatasetLocation) -> Result<ShardEntry, DatasetError> {
        let entry = self.stage(loc).await?;
        crate::commit::commit(loc, vec![entry.clone()], None).await?;
        Ok(entry)
    }
}
