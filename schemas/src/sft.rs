//! The SFT export format: what Hint-RFT hands to a trainer.
//!
//! One row per kept trajectory, with `messages` (the user's question and the assistant's
//! trajectory exactly as generated, hints and tool outputs included) and the raw `prompt` and
//! `completion` text, so that a trainer can skip chat templates altogether.

use crate::dataset::DatasetError;
use crate::manifest::sync_dir;
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// One chat message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

/// One SFT row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SftRow {
    /// Problem id.
    pub problem_id: String,
    /// Sample index of the trajectory.
    pub sample_index: u32,
    /// Problem source.
    pub source: String,
    /// Problem kind.
    pub kind: String,
    /// Generation mode.
    pub mode: String,
    /// The conversation: the question, then the trajectory.
    pub messages: Vec<Message>,
    /// The rendered prompt, exactly as the model saw it.
    pub prompt: String,
    /// The trajectory text, exactly as generated and inserted.
    pub completion: String,
    /// sha256 of the completion, for provenance.
    pub trajectory_sha256: String,
    /// Completion length in tokens.
    pub completion_tokens: u32,
    /// Code executions in the trajectory.
    pub tool_calls: u32,
}

/// The Arrow schema of SFT rows.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let utf8 = |n: &str| Field::new(n, DataType::Utf8, false);
            let message = Fields::from(vec![utf8("role"), utf8("content")]);
            Arc::new(Schema::new(vec![
                utf8("problem_id"),
                Field::new("sample_index", DataType::UInt32, false),
                utf8("source"),
                utf8("kind"),
                utf8("mode"),
                Field::new(
                    "messages",
                    DataType::List(Arc::new(Field::new(
                        "item",
                        DataType::Struct(message),
                        false,
                    ))),
                    false,
                ),
                utf8("prompt"),
                utf8("completion"),
                utf8("trajectory_sha256"),
                Field::new("completion_tokens", DataType::UInt32, false),
                Field::new("tool_calls", DataType::UInt32, false),
            ]))
        })
        .clone()
}

/// Writes SFT rows to one zstd Parquet file, atomically (temp file, fsync, rename).
pub struct SftWriter {
    path: PathBuf,
    tmp: PathBuf,
    writer: Option<ArrowWriter<File>>,
    rows: u64,
}

impl SftWriter {
    /// Starts `path`.
    pub fn create(path: &Path) -> Result<Self, DatasetError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| DatasetError::io(dir, e))?;
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            path.file_name()
                .map_or("sft".into(), |n| n.to_string_lossy()),
            std::process::id()
        ));
        let file = File::create(&tmp).map_err(|e| DatasetError::io(&tmp, e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(512))
            .build();
        let writer = ArrowWriter::try_new(file, schema(), Some(props))
            .map_err(|e| DatasetError::parquet(&tmp, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            tmp,
            writer: Some(writer),
            rows: 0,
        })
    }

    /// Appends rows.
    pub fn write(&mut self, rows: &[SftRow]) -> Result<(), DatasetError> {
        if rows.is_empty() {
            return Ok(());
        }
        let arrow = |e| DatasetError::Arrow {
            path: self.tmp.display().to_string(),
            source: e,
        };
        let mut decoder = arrow_json::ReaderBuilder::new(schema())
            .with_batch_size(rows.len())
            .build_decoder()
            .map_err(arrow)?;
        decoder.serialize(rows).map_err(arrow)?;
        if let Some(batch) = decoder.flush().map_err(arrow)? {
            self.writer
                .as_mut()
                .expect("open until finish")
                .write(&batch)
                .map_err(|e| DatasetError::parquet(&self.tmp, e))?;
        }
        self.rows += rows.len() as u64;
        Ok(())
    }

    /// Closes, fsyncs and renames the file; returns the rows written.
    pub fn finish(mut self) -> Result<u64, DatasetError> {
        let writer = self.writer.take().expect("finish is called once");
        let file = writer
            .into_inner()
            .map_err(|e| DatasetError::parquet(&self.tmp, e))?;
        file.sync_all()
            .map_err(|e| DatasetError::io(&self.tmp, e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| DatasetError::io(&self.path, e))?;
        sync_dir(self.path.parent().unwrap_or(Path::new(".")))?;
        Ok(self.rows)
    }
}

impl Drop for SftWriter {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// The user turn of a ChatML prompt (`<|im_start|>user\n...<|im_end|>`), the last one.
pub fn chatml_user_turn(prompt: &str) -> Option<&str> {
    let start = prompt.rfind("<|im_start|>user\n")? + "<|im_start|>user\n".len();
    let end = prompt[start..].find("<|im_end|>")? + start;
    Some(&prompt[start..end])
}
