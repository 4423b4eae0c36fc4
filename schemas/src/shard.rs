//! The Parquet shard writer: zstd, bounded row groups, atomic commit.
//!
//! Rows go to a hidden temp file in `shards/`; [`ShardWriter::commit`] closes it, fsyncs it,
//! renames it to its final name, fsyncs the directory and records it in the manifest. A writer
//! that dies before that leaves only a temp file that no reader looks at. The sha256 is computed
//! while the bytes are written, so committing never reads the file back.

use crate::dataset::DatasetError;
use crate::manifest::{sync_dir, Manifest, ShardEntry};
use crate::trajectory::{schema, to_record_batch, Trajectory, SCHEMA_VERSION, SCHEMA_VERSION_KEY};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Directory of shards inside a dataset.
pub const SHARDS_DIR: &str = "shards";

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
    file: File,
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

/// Writes one shard; nothing is visible to readers until [`ShardWriter::commit`].
pub struct ShardWriter {
    dataset: PathBuf,
    shard_id: String,
    tmp_path: PathBuf,
    writer: Option<ArrowWriter<HashingFile>>,
    rows: u64,
}

/// Checks that a shard id is a safe file stem.
fn check_shard_id(id: &str) -> Result<(), DatasetError> {
    let ok = !id.is_empty()
        && id.len() <= 200
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(DatasetError::InvalidShardId(id.to_string()))
    }
}

impl ShardWriter {
    /// Starts shard `shard_id` in dataset `dataset`, creating the directories as needed.
    pub fn create(
        dataset: &Path,
        shard_id: &str,
        options: &ShardOptions,
    ) -> Result<Self, DatasetError> {
        check_shard_id(shard_id)?;
        let dir = dataset.join(SHARDS_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| DatasetError::io(&dir, e))?;
        let tmp_path = dir.join(format!(".{shard_id}.{}.tmp", std::process::id()));
        let file = File::create(&tmp_path).map_err(|e| DatasetError::io(&tmp_path, e))?;
        let level = ZstdLevel::try_new(options.zstd_level)
            .map_err(|e| DatasetError::parquet(&tmp_path, e))?;
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
            .map_err(|e| DatasetError::parquet(&tmp_path, e))?;
        Ok(Self {
            dataset: dataset.to_path_buf(),
            shard_id: shard_id.to_string(),
            tmp_path,
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
        let batch = to_record_batch(rows).map_err(|e| DatasetError::Arrow {
            path: self.tmp_path.display().to_string(),
            source: e,
        })?;
        let writer = self
            .writer
            .as_mut()
            .expect("writer is present until commit");
        writer
            .write(&batch)
            .map_err(|e| DatasetError::parquet(&self.tmp_path, e))?;
        self.rows += rows.len() as u64;
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Closes, fsyncs and renames the file, then records it in the manifest.
    pub fn commit(mut self) -> Result<ShardEntry, DatasetError> {
        let entry = self.finish()?;
        Manifest::record(&self.dataset, entry.clone())?;
        Ok(entry)
    }

    /// Closes, fsyncs and renames the file without touching the manifest: for the cluster,
    /// where the coordinator records the shard once it has checked the worker's lease.
    pub fn finish(&mut self) -> Result<ShardEntry, DatasetError> {
        let writer = self.writer.take().expect("finish is called once");
        let sink = writer
            .into_inner()
            .map_err(|e| DatasetError::parquet(&self.tmp_path, e))?;
        sink.file
            .sync_all()
            .map_err(|e| DatasetError::io(&self.tmp_path, e))?;
        drop(sink.file);
        let rel = format!("{SHARDS_DIR}/{}.parquet", self.shard_id);
        let final_path = self.dataset.join(&rel);
        // A hard link is an atomic rename that refuses to replace an existing file, so two
        // writers given the same shard id cannot overwrite each other's committed bytes.
        let linked = std::fs::hard_link(&self.tmp_path, &final_path);
        let _ = std::fs::remove_file(&self.tmp_path);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(DatasetError::ShardExists(final_path.display().to_string()))
            }
            Err(e) => return Err(DatasetError::io(&final_path, e)),
        }
        sync_dir(&self.dataset.join(SHARDS_DIR))?;
        Ok(ShardEntry {
            shard_id: self.shard_id.clone(),
            path: rel,
            rows: self.rows,
            sha256: hex::encode(sink.hasher.finalize()),
            bytes: sink.bytes,
            schema_version: SCHEMA_VERSION,
            committed_at: chrono::Utc::now(),
        })
    }
}

impl Drop for ShardWriter {
    /// An abandoned writer removes its temp file; a crashed process leaves it, and readers
    /// ignore it because it is not in the manifest.
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}
