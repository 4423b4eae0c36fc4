//! The SFT export format: what Hint-RFT hands to a trainer, in the shapes TRL, LLaMA-Factory
//! and axolotl read without conversion.
//!
//! One row per kept trajectory. The assistant's turn is exactly what the model produced: the
//! generation prefix it was given (QwQ's `<think>\n`), its text with the hints and tool
//! outputs, and the end-of-turn token; `prompt + completion` is byte for byte the text the
//! model saw and wrote, never re-rendered through a chat template. Tool output is text the
//! model did not write, so every row says where it is: as character spans, as labelled
//! segments, as sharegpt `observation` turns and as a token-level mask.
//! schemas/README.md ("SFT export") says which trainer reads which columns.

use crate::file::FileError;
use crate::trajectory::{SegmentKind, Trajectory};
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

/// One sharegpt turn (LLaMA-Factory's `conversations`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// `human` (the prompt), `gpt` (what the model and the hints wrote) or `observation` (a
    /// tool output, which LLaMA-Factory leaves out of the loss).
    pub from: String,
    /// The text.
    pub value: String,
}

/// A stretch of text and whether it is trained on (axolotl's `input_output` segments).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelledText {
    /// Whether the loss covers it.
    pub label: bool,
    /// The text; the segments of a row concatenate to `text`.
    pub text: String,
}

/// A character range `[start, end)` of `completion`, in Unicode code points (Python's `str`
/// indices).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// First character.
    pub start: u32,
    /// One past the last character.
    pub end: u32,
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
    /// The conversation for chat-template trainers: the user turn exactly as shown (question,
    /// options, instructions), then the assistant turn (generation prefix and trajectory).
    pub messages: Vec<Message>,
    /// The prompt as the chat template rendered it, up to the assistant's turn.
    pub prompt: String,
    /// The assistant's turn: generation prefix, trajectory, end-of-turn token.
    pub completion: String,
    /// `prompt + completion`: the whole sequence, for template-free trainers.
    pub text: String,
    /// The sequence as sharegpt turns: `human` (the prompt), then `gpt` and `observation`
    /// alternating; their values concatenate to `text` (LLaMA-Factory, `template: empty`).
    pub conversations: Vec<Turn>,
    /// The sequence as labelled stretches, tool output and prompt unlabelled; they
    /// concatenate to `text` (axolotl `type: input_output`).
    pub segments: Vec<LabelledText>,
    /// Where the tool outputs are in `completion`.
    pub output_spans: Vec<Span>,
    /// Where the inserted hints are in `completion` (trained on, as START does; mask them
    /// too if you want the model to learn only its own words).
    pub hint_spans: Vec<Span>,
    /// The exact token ids of the sequence (prompt, then completion, then the end-of-turn
    /// token); absent for rows of schema version 1, which did not keep the prompt's ids.
    pub input_ids: Option<Vec<i32>>,
    /// All ones, beside `input_ids`.
    pub attention_mask: Option<Vec<i32>>,
    /// `input_ids` with -100 wherever the loss does not apply (prompt, tool output).
    pub labels: Option<Vec<i32>>,
    /// 1 where the loss applies, 0 elsewhere (TRL's `completion_mask`).
    pub completion_mask: Option<Vec<i32>>,
    /// The end-of-turn token's text ending `completion` (empty when unknown: schema 1).
    pub end_of_turn: String,
    /// sha256 of the trajectory's `full_text`, for provenance.
    pub trajectory_sha256: String,
    /// Completion length in tokens (the end-of-turn token not counted).
    pub completion_tokens: u32,
    /// Code executions in the trajectory.
    pub tool_calls: u32,
}

/// Why a trajectory cannot become an SFT row.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SftError {
    /// A version-1 row whose prompt is not ChatML: the user turn cannot be recovered.
    #[error("no user turn: the row predates `user_message` and its prompt is not ChatML")]
    NoUserTurn,
}

impl SftRow {
    /// The SFT row of a trajectory.
    pub fn from_trajectory(t: &Trajectory) -> Result<Self, SftError> {
        let user = if t.user_message.is_empty() {
            chatml_user_turn(&t.prompt)
                .ok_or(SftError::NoUserTurn)?
                .to_string()
        } else {
            t.user_message.clone()
        };
        let eot = t.end_of_turn.clone().unwrap_or_default();
        let prompt = t.template_prompt().to_string();
        let completion = format!("{}{eot}", t.assistant_text());
        // The completion in pieces, each trained on or not.
        let mut pieces: Vec<(SegmentKind, &str)> = Vec::new();
        if !t.generation_prefix.is_empty() {
            pieces.push((SegmentKind::Reasoning, &t.generation_prefix));
        }
        pieces.extend(t.segments.iter().map(|s| (s.kind, s.text.as_str())));
        if !eot.is_empty() {
            pieces.push((SegmentKind::Answer, &eot));
        }
        let (mut output_spans, mut hint_spans) = (Vec::new(), Vec::new());
        let mut at = 0u32;
        for (kind, text) in &pieces {
            let n = text.chars().count() as u32;
            let span = Span {
                start: at,
                end: at + n,
            };
            match kind {
                SegmentKind::Output => output_spans.push(span),
                SegmentKind::Hint => hint_spans.push(span),
                _ => {}
            }
            at += n;
        }
        let mut conversations = vec![Turn {
            from: "human".into(),
            value: prompt.clone(),
        }];
        let mut segments = vec![LabelledText {
            label: false,
            text: prompt.clone(),
        }];
        for (kind, text) in &pieces {
            let (from, label) = if *kind == SegmentKind::Output {
                ("observation", false)
            } else {
                ("gpt", true)
            };
            match conversations.last_mut() {
                Some(turn) if turn.from == from => turn.value.push_str(text),
                _ => conversations.push(Turn {
                    from: from.into(),
                    value: text.to_string(),
                }),
            }
            match segments.last_mut() {
                Some(seg) if seg.label == label => seg.text.push_str(text),
                _ => segments.push(LabelledText {
                    label,
                    text: text.to_string(),
                }),
            }
        }
        if conversations.last().is_some_and(|t| t.from != "gpt") {
            // sharegpt pairs every human or observation turn with a gpt turn.
            conversations.push(Turn {
                from: "gpt".into(),
                value: String::new(),
            });
        }
        let tokens = token_columns(t);
        Ok(Self {
            problem_id: t.problem_id.clone(),
            sample_index: t.sample_index,
            source: t.source.clone(),
            kind: t.kind.to_string(),
            mode: t.mode.as_str().to_string(),
            messages: vec![
                Message {
                    role: "user".into(),
                    content: user,
                },
                Message {
                    role: "assistant".into(),
                    content: t.assistant_text(),
                },
            ],
            text: format!("{prompt}{completion}"),
            prompt,
            completion,
            conversations,
            segments,
            output_spans,
            hint_spans,
            input_ids: tokens.as_ref().map(|t| t.0.clone()),
            attention_mask: tokens.as_ref().map(|t| vec![1; t.0.len()]),
            labels: tokens.as_ref().map(|(ids, mask)| {
                ids.iter()
                    .zip(mask)
                    .map(|(&id, &m)| if m == 1 { id } else { -100 })
                    .collect()
            }),
            completion_mask: tokens.map(|t| t.1),
            end_of_turn: eot,
            trajectory_sha256: t.trajectory_sha256.clone(),
            completion_tokens: t.completion_tokens,
            tool_calls: t.tool_calls.len() as u32,
        })
    }
}

/// The sequence's token ids and loss mask: the prompt's template tokens out, the generation
/// prefix, every generated and hint token and the end-of-turn token in, tool output out.
/// `None` when the row has no prompt ids (schema version 1).
fn token_columns(t: &Trajectory) -> Option<(Vec<i32>, Vec<i32>)> {
    if t.prompt_token_ids.is_empty() {
        return None;
    }
    let mut ids = t.prompt_token_ids.clone();
    let template = ids.len() - t.generation_prefix_tokens as usize;
    let mut mask: Vec<i32> = (0..ids.len()).map(|i| i32::from(i >= template)).collect();
    for s in &t.segments {
        ids.extend(&s.tokens);
        let m = i32::from(s.kind != SegmentKind::Output);
        mask.extend(std::iter::repeat_n(m, s.tokens.len()));
    }
    if let Some(eot) = t.end_of_turn_token {
        ids.push(eot);
        mask.push(1);
    }
    Some((ids, mask))
}

/// The Arrow schema of SFT rows.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let utf8 = |n: &str| Field::new(n, DataType::Utf8, false);
            let list = |n: &str, item: DataType, nullable: bool| {
                Field::new(
                    n,
                    DataType::List(Arc::new(Field::new("item", item, false))),
                    nullable,
                )
            };
            let message = Fields::from(vec![utf8("role"), utf8("content")]);
            let turn = Fields::from(vec![utf8("from"), utf8("value")]);
            let labelled = Fields::from(vec![
                Field::new("label", DataType::Boolean, false),
                utf8("text"),
            ]);
            let span = Fields::from(vec![
                Field::new("start", DataType::UInt32, false),
                Field::new("end", DataType::UInt32, false),
            ]);
            Arc::new(Schema::new(vec![
                utf8("problem_id"),
                Field::new("sample_index", DataType::UInt32, false),
                utf8("source"),
                utf8("kind"),
                utf8("mode"),
                list("messages", DataType::Struct(message), false),
                utf8("prompt"),
                utf8("completion"),
                utf8("text"),
                list("conversations", DataType::Struct(turn), false),
                list("segments", DataType::Struct(labelled), false),
                list("output_spans", DataType::Struct(span.clone()), false),
                list("hint_spans", DataType::Struct(span), false),
                list("input_ids", DataType::Int32, true),
                list("attention_mask", DataType::Int32, true),
                list("labels", DataType::Int32, true),
                list("completion_mask", DataType::Int32, true),
                utf8("end_of_turn"),
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
    pub fn create(path: &Path) -> Result<Self, FileError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| FileError::io(dir.display(), e))?;
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            path.file_name()
                .map_or("sft".into(), |n| n.to_string_lossy()),
            std::process::id()
        ));
        let file = File::create(&tmp).map_err(|e| FileError::io(tmp.display(), e))?;
        // Row groups of 128 rows: the writer holds a whole row group's encoded pages until it
        // closes, and a QwQ-length SFT row is about 160 KB before compression (its text in five
        // shapes, four token-id columns), so 512 rows held most of a 300 MB export's memory.
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(128))
            .build();
        let writer = ArrowWriter::try_new(file, schema(), Some(props))
            .map_err(|e| FileError::parquet(tmp.display(), e))?;
        Ok(Self {
            path: path.to_path_buf(),
            tmp,
            writer: Some(writer),
            rows: 0,
        })
    }

    /// Appends rows.
    pub fn write(&mut self, rows: &[SftRow]) -> Result<(), FileError> {
        if rows.is_empty() {
            return Ok(());
        }
        let arrow = |e| FileError::Arrow {
            path: self.tmp.display().to_string(),
            source: e,
        };
        // The arrays are built from the rows' fields directly, as trajectory shards are.
        let fields: Vec<arrow_schema::FieldRef> = schema().fields().iter().cloned().collect();
        let batch = serde_arrow::to_record_batch(&fields, &rows)
            .map_err(|e| arrow(arrow_schema::ArrowError::ExternalError(Box::new(e))))
            .and_then(|b| b.with_schema(schema()).map_err(arrow))?;
        self.writer
            .as_mut()
            .expect("open until finish")
            .write(&batch)
            .map_err(|e| FileError::parquet(self.tmp.display(), e))?;
        self.rows += rows.len() as u64;
        Ok(())
    }

    /// Closes, fsyncs and renames the file; returns the rows written.
    pub fn finish(mut self) -> Result<u64, FileError> {
        let writer = self.writer.take().expect("finish is called once");
        let file = writer
            .into_inner()
            .map_err(|e| FileError::parquet(self.tmp.display(), e))?;
        file.sync_all()
            .map_err(|e| FileError::io(self.tmp.display(), e))?;
        std::fs::rename(&self.tmp, &self.path)
            .map_err(|e| FileError::io(self.path.display(), e))?;
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

/// fsyncs a directory so that a rename inside it survives a crash.
fn sync_dir(dir: &Path) -> Result<(), FileError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| FileError::io(dir.display(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_the_sequence_the_model_saw_with_its_tool_output_marked() {
        let t = crate::trajectory::tests::sample(1);
        let row = SftRow::from_trajectory(&t).unwrap();
        assert_eq!(row.messages[0].content, "What is 2^10?");
        assert!(row.messages[1].content.starts_with("<think>\n"));
        assert_eq!(row.text, format!("{}{}<|im_end|>", t.prompt, t.full_text));
        assert_eq!(format!("{}{}", row.prompt, row.completion), row.text);
        let joined: String = row.conversations.iter().map(|t| t.value.as_str()).collect();
        assert_eq!(joined, row.text);
        let from: Vec<&str> = row.conversations.iter().map(|t| t.from.as_str()).collect();
        assert_eq!(from, ["human", "gpt", "observation", "gpt"]);
        let joined: String = row.segments.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(joined, row.text);
        let chars: Vec<char> = row.completion.chars().collect();
        let cut = |s: &Span| {
            chars[s.start as usize..s.end as usize]
                .iter()
                .collect::<String>()
        };
        assert_eq!(cut(&row.output_spans[0]), "```output\n1024\n```\n");
        assert!(cut(&row.hint_spans[0]).starts_with("Wait, maybe using Python"));
        let (ids, labels) = (row.input_ids.unwrap(), row.labels.unwrap());
        assert_eq!(ids.len(), 4 + 11 + 1);
        // The template's tokens are out, the generation prefix and the model's are in, the
        // tool output (token 9) is out, the end-of-turn token is in.
        assert_eq!(labels[..4], [-100, -100, -100, 4]);
        assert_eq!(labels[4..7], [1, 2, 3]);
        assert_eq!(labels[12], -100);
        assert_eq!(ids[12], 9);
        assert_eq!(labels[15], 2);
    }

    #[test]
    fn a_version_1_row_falls_back_to_its_chatml_user_turn() {
        let mut t = crate::trajectory::tests::sample(1);
        t.user_message.clear();
        t.prompt_token_ids.clear();
        t.generation_prefix_tokens = 0;
        let row = SftRow::from_trajectory(&t).unwrap();
        assert_eq!(row.messages[0].content, "What is 2^10?");
        assert!(row.input_ids.is_none());
        t.prompt = "plain prompt".into();
        t.generation_prefix.clear();
        assert_eq!(SftRow::from_trajectory(&t), Err(SftError::NoUserTurn));
    }
}
