//! Streaming row sources: JSONL (plain or gzip), Parquet, CSV and single JSON documents.
//!
//! Every reader yields one [`RowItem`] per row with its exact [`Location`], and never holds more
//! than one row in memory: a 1 GB line is measured and skipped, not buffered, and a truncated
//! gzip stream ends the file with an error at the line where it broke. Callers decide what a row
//! means (a problem, an import layout); this module only turns bytes into JSON values.

use flate2::read::MultiGzDecoder;
use parquet::file::reader::SerializedFileReader;
use serde_json::Value;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// Where in a file a row or a problem with it sits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Position {
    /// The file as a whole (unreadable, empty, not the format it claims).
    File,
    /// A 1-based line of a text file (JSONL, CSV record start).
    Line(u64),
    /// A 0-based row index of a Parquet file.
    Row(u64),
}

/// A place in an input file, printed as `file:line`, `file:row N` or `file`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The path as the user gave it.
    pub file: String,
    /// Where in the file.
    pub at: Position,
}

impl Location {
    /// A location naming a whole file.
    pub fn file(file: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            at: Position::File,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Position::File => write!(f, "{}", self.file),
            Position::Line(n) => write!(f, "{}:{}", self.file, n),
            Position::Row(n) => write!(f, "{}:row {}", self.file, n),
        }
    }
}

/// One problem found in an input: where, which field, what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where the problem is.
    pub location: Location,
    /// The field path (`tests.cases[2].output`), `(row)` for the row as a whole and `(file)`
    /// for the file as a whole.
    pub field: String,
    /// What is wrong, phrased so that the fix is obvious.
    pub message: String,
}

impl Diagnostic {
    /// Builds a diagnostic.
    pub fn new(location: Location, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            location,
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.location, self.field, self.message)
    }
}

impl std::error::Error for Diagnostic {}

/// One row of an input file: its location and either its JSON value or why it is unreadable.
#[derive(Debug)]
pub struct RowItem {
    /// Where the row is.
    pub location: Location,
    /// The row as JSON, or the reason it could not be read.
    pub value: Result<Value, Diagnostic>,
}

/// How a file is read; chosen from its first bytes, then its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// One JSON object a line.
    Jsonl,
    /// JSONL compressed with gzip (`.jsonl.gz`).
    JsonlGz,
    /// Apache Parquet.
    Parquet,
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON document: an object (one row) or an array of objects.
    JsonDocument,
}

/// Limits that keep a hostile file from exhausting memory.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// Longest line accepted, in bytes; longer lines are reported and skipped without buffering.
    pub max_line_bytes: usize,
    /// Largest single JSON document accepted (read whole, so it needs a bound).
    pub max_document_bytes: u64,
    /// Read `.csv` files as CSV and `.json` files as one document, as public sets ship them.
    /// Off for problem files, which are JSONL or Parquet only: there a `.json` file is read
    /// line by line (many "JSON" exports are JSONL), so nothing is ever read whole.
    pub import_layouts: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            max_line_bytes: 16 << 20,
            max_document_bytes: 256 << 20,
            import_layouts: false,
        }
    }
}

/// Detects the format of `path` from its magic bytes, then its extension.
pub fn detect_format(path: &Path) -> io::Result<FileFormat> {
    let mut head = [0u8; 4];
    let mut file = File::open(path)?;
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    let head = &head[..filled];
    let name = path.to_string_lossy().to_ascii_lowercase();
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        FileFormat::JsonlGz
    } else if head == b"PAR1" || name.ends_with(".parquet") {
        FileFormat::Parquet
    } else if name.ends_with(".csv") {
        FileFormat::Csv
    } else if name.ends_with(".json") {
        FileFormat::JsonDocument
    } else {
        FileFormat::Jsonl
    })
}

/// Opens `path` as a stream of rows. A file that cannot be opened at all is an `Err`; anything
/// that goes wrong later is reported as a row item at the place it happened.
pub fn read_rows(
    path: &Path,
    opts: &ReadOptions,
) -> Result<Box<dyn Iterator<Item = RowItem> + Send>, Diagnostic> {
    let name = path.display().to_string();
    let file_err = |message: String| Diagnostic::new(Location::file(&name), "(file)", message);
    let meta = std::fs::metadata(path).map_err(|e| file_err(format!("cannot open: {e}")))?;
    if meta.is_dir() {
        return Err(file_err("is a directory, expected a file".into()));
    }
    if meta.len() == 0 {
        return Err(file_err(
            "the file is empty; expected at least one row".into(),
        ));
    }
    let format = match detect_format(path).map_err(|e| file_err(format!("cannot read: {e}")))? {
        FileFormat::Csv | FileFormat::JsonDocument if !opts.import_layouts => FileFormat::Jsonl,
        format => format,
    };
    let file = File::open(path).map_err(|e| file_err(format!("cannot open: {e}")))?;
    Ok(match format {
        FileFormat::Jsonl => Box::new(JsonlRows::new(
            name,
            BufReader::with_capacity(1 << 16, file),
            opts.max_line_bytes,
        )),
        FileFormat::JsonlGz => Box::new(JsonlRows::new(
            name,
            BufReader::with_capacity(1 << 16, MultiGzDecoder::new(BufReader::new(file))),
            opts.max_line_bytes,
        )),
        FileFormat::Parquet => parquet_rows(name, file)?,
        FileFormat::Csv => Box::new(CsvRows::new(name, file, File::open(path).ok())),
        FileFormat::JsonDocument => json_document_rows(name, file, meta.len(), opts)?,
    })
}

/// Reads JSONL rows from any buffered reader (embedded files, standard input), with the same
/// limits and locations as [`read_rows`].
pub fn read_jsonl<R: BufRead + Send + 'static>(
    name: impl Into<String>,
    reader: R,
    opts: &ReadOptions,
) -> impl Iterator<Item = RowItem> + Send {
    JsonlRows::new(name.into(), reader, opts.max_line_bytes)
}

/// Outcome of reading one line with a byte bound.
enum Line {
    /// The line's bytes, without the newline.
    Text(Vec<u8>),
    /// The line was longer than the bound; only its length was measured.
    TooLong(u64),
}

/// JSONL rows; blank lines are skipped, every other line must be one JSON object.
struct JsonlRows<R: BufRead> {
    name: String,
    reader: R,
    line_no: u64,
    max_line_bytes: usize,
    done: bool,
}

impl<R: BufRead> JsonlRows<R> {
    fn new(name: String, reader: R, max_line_bytes: usize) -> Self {
        Self {
            name,
            reader,
            line_no: 0,
            max_line_bytes,
            done: false,
        }
    }

    /// Reads one line, keeping at most `max_line_bytes` of it; `None` at end of input.
    fn read_line(&mut self) -> io::Result<Option<Line>> {
        let mut buf = Vec::new();
        let mut len: u64 = 0;
        let mut too_long = false;
        let mut saw_any = false;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                if !saw_any {
                    return Ok(None);
                }
                break;
            }
            saw_any = true;
            let (chunk, found) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (&available[..i], Some(i)),
                None => (available, None),
            };
            len += chunk.len() as u64;
            if !too_long {
                if buf.len() + chunk.len() > self.max_line_bytes {
                    too_long = true;
                    buf = Vec::new();
                } else {
                    buf.extend_from_slice(chunk);
                }
            }
            let consumed = found.map_or(chunk.len(), |i| i + 1);
            self.reader.consume(consumed);
            if found.is_some() {
                break;
            }
        }
        Ok(Some(if too_long {
            Line::TooLong(len)
        } else {
            Line::Text(buf)
        }))
    }
}

impl<R: BufRead> Iterator for JsonlRows<R> {
    type Item = RowItem;

    fn next(&mut self) -> Option<RowItem> {
        loop {
            if self.done {
                return None;
            }
            self.line_no += 1;
            let location = Location {
                file: self.name.clone(),
                at: Position::Line(self.line_no),
            };
            let diag = |message: String| Diagnostic::new(location.clone(), "(row)", message);
            let line = match self.read_line() {
                Ok(None) => return None,
                Ok(Some(line)) => line,
                Err(e) => {
                    self.done = true;
                    let what = if e.kind() == io::ErrorKind::UnexpectedEof {
                        "the compressed stream is truncated".to_string()
                    } else {
                        format!("read failed: {e}")
                    };
                    return Some(RowItem {
                        value: Err(diag(format!("{what}; the rest of the file is unreadable"))),
                        location,
                    });
                }
            };
            let bytes = match line {
                Line::TooLong(len) => {
                    return Some(RowItem {
                        value: Err(diag(format!(
                            "line is {len} bytes, longer than the limit of {} bytes",
                            self.max_line_bytes
                        ))),
                        location,
                    })
                }
                Line::Text(bytes) => bytes,
            };
            let text = match std::str::from_utf8(&bytes) {
                Ok(t) => t,
                Err(e) => {
                    return Some(RowItem {
                        value: Err(diag(format!(
                            "invalid UTF-8 at byte {} of the line",
                            e.valid_up_to() + 1
                        ))),
                        location,
                    })
                }
            };
            let text = text.trim_end_matches('\r');
            if text.trim().is_empty() {
                continue;
            }
            let value = serde_json::from_str::<Value>(text)
                .map_err(|e| {
                    let hint = if text.trim() == "[" {
                        " (this looks like a JSON array: problem files are JSONL, one object a \
                         line; `startctl import` reads JSON documents)"
                    } else {
                        ""
                    };
                    diag(format!("invalid JSON at column {}: {e}{hint}", e.column()))
                })
                .and_then(|v| {
                    if v.is_object() {
                        Ok(v)
                    } else {
                        Err(diag(format!(
                            "expected a JSON object, got {}",
                            json_type_name(&v)
                        )))
                    }
                });
            return Some(RowItem { location, value });
        }
    }
}

/// The JSON type of a value, as a user would name it.
pub fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn parquet_rows(
    name: String,
    file: File,
) -> Result<Box<dyn Iterator<Item = RowItem> + Send>, Diagnostic> {
    let reader = crate::file::parquet_guard(|| SerializedFileReader::new(file)).map_err(|e| {
        Diagnostic::new(
            Location::file(&name),
            "(file)",
            format!("not a readable Parquet file: {e}"),
        )
    })?;
    let mut rows = reader.into_iter();
    let mut index = 0u64;
    let mut failed = false;
    Ok(Box::new(std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let row = match crate::file::parquet_guard(|| Ok(rows.next())) {
            Ok(row) => row?,
            Err(e) => Err(e),
        };
        let location = Location {
            file: name.clone(),
            at: Position::Row(index),
        };
        index += 1;
        let value = match row {
            Ok(row) => Ok(row.to_json_value()),
            Err(e) => {
                failed = true;
                Err(Diagnostic::new(
                    location.clone(),
                    "(row)",
                    format!("corrupt Parquet data: {e}; the rest of the file is unreadable"),
                ))
            }
        };
        Some(RowItem { location, value })
    })))
}

/// CSV rows as objects keyed by the header; every value is a string.
struct CsvRows {
    name: String,
    records: csv::StringRecordsIntoIter<File>,
    headers: Option<Vec<String>>,
    header_error: Option<Diagnostic>,
    done: bool,
    lines: LineCounter,
}

/// Line numbers of CSV records from their byte offsets. The csv crate's own line count is one
/// short after every CRLF terminator (the `\n` of a `\r\n` is counted as the start of the next
/// record), and CRLF is what Python's csv module and Excel write; so the lines are counted
/// here, on a second handle that only moves forward.
struct LineCounter {
    file: Option<BufReader<File>>,
    at: u64,
    line: u64,
}

impl LineCounter {
    /// The 1-based line of the first byte of the record that starts at `offset` (or just
    /// after it, past line terminators); 0 when the file cannot be read a second time.
    fn line_of(&mut self, offset: u64) -> u64 {
        let Some(file) = self.file.as_mut() else {
            return 0;
        };
        let mut byte = [0u8; 1];
        loop {
            if self.at >= offset {
                // Past the offset only over terminators: the record starts after them.
                match file.fill_buf() {
                    Ok([b'\r' | b'\n', ..]) => {}
                    _ => return self.line,
                }
            }
            match file.read(&mut byte) {
                Ok(1) => {
                    self.at += 1;
                    if byte[0] == b'\n' {
                        self.line += 1;
                    }
                }
                _ => return self.line,
            }
        }
    }
}

impl CsvRows {
    fn new(name: String, file: File, second: Option<File>) -> Self {
        let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(file);
        let (headers, header_error) = match reader.headers() {
            Ok(h) => (Some(h.iter().map(|s| s.trim().to_string()).collect()), None),
            Err(e) => (
                None,
                Some(Diagnostic::new(
                    Location {
                        file: name.clone(),
                        at: Position::Line(1),
                    },
                    "(header)",
                    format!("unreadable CSV header: {e}"),
                )),
            ),
        };
        Self {
            name,
            records: reader.into_records(),
            headers,
            header_error,
            done: false,
            lines: LineCounter {
                file: second.map(BufReader::new),
                at: 0,
                line: 1,
            },
        }
    }
}

impl Iterator for CsvRows {
    type Item = RowItem;

    fn next(&mut self) -> Option<RowItem> {
        if self.done {
            return None;
        }
        if let Some(diag) = self.header_error.take() {
            self.done = true;
            return Some(RowItem {
                location: diag.location.clone(),
                value: Err(diag),
            });
        }
        let headers = self.headers.as_ref()?;
        let record = self.records.next()?;
        Some(match record {
            Ok(rec) => {
                let line = match rec.position() {
                    Some(p) => self.lines.line_of(p.byte()),
                    None => 0,
                };
                let mut obj = serde_json::Map::new();
                for (h, v) in headers.iter().zip(rec.iter()) {
                    obj.insert(h.clone(), Value::String(v.to_string()));
                }
                RowItem {
                    location: Location {
                        file: self.name.clone(),
                        at: Position::Line(line),
                    },
                    value: Ok(Value::Object(obj)),
                }
            }
            Err(e) => {
                let line = match e.position() {
                    Some(p) => self.lines.line_of(p.byte()),
                    None => 0,
                };
                let location = Location {
                    file: self.name.clone(),
                    at: Position::Line(line),
                };
                RowItem {
                    value: Err(Diagnostic::new(
                        location.clone(),
                        "(row)",
                        format!("invalid CSV record: {e}"),
                    )),
                    location,
                }
            }
        })
    }
}

fn json_document_rows(
    name: String,
    file: File,
    len: u64,
    opts: &ReadOptions,
) -> Result<Box<dyn Iterator<Item = RowItem> + Send>, Diagnostic> {
    let file_err = |message: String| Diagnostic::new(Location::file(&name), "(file)", message);
    if len > opts.max_document_bytes {
        return Err(file_err(format!(
            "a single JSON document of {len} bytes is over the {} byte limit; use JSONL",
            opts.max_document_bytes
        )));
    }
    let value: Value = serde_json::from_reader(BufReader::new(file)).map_err(|e| {
        file_err(format!(
            "invalid JSON at line {} column {}: {e}",
            e.line(),
            e.column()
        ))
    })?;
    let rows = match value {
        Value::Array(items) => items,
        obj @ Value::Object(_) => vec![obj],
        other => {
            return Err(file_err(format!(
                "expected an object or an array of objects, got {}",
                json_type_name(&other)
            )))
        }
    };
    Ok(Box::new(rows.into_iter().enumerate().map(move |(i, v)| {
        let location = Location {
            file: name.clone(),
            at: Position::Row(i as u64),
        };
        let value = if v.is_object() {
            Ok(v)
        } else {
            Err(Diagnostic::new(
                location.clone(),
                "(row)",
                format!("expected a JSON object, got {}", json_type_name(&v)),
            ))
        };
        RowItem { location, value }
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Result<Value, String>> {
        JsonlRows::new("t.jsonl".into(), input, max)
            .map(|r| r.value.map_err(|d| d.to_string()))
            .collect()
    }

    #[test]
    fn csv_records_are_located_at_their_line_with_lf_crlf_and_quoted_newlines() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&str, &[u8]); 3] = [
            ("lf.csv", b"a,b\n1,2\n3,4\n5,\n"),
            ("crlf.csv", b"a,b\r\n1,2\r\n3,4\r\n5,\r\n"),
            ("quoted.csv", b"a,b\r\n1,\"x\r\ny\"\r\n\r\n3,4\r\n5,6\r\n"),
        ];
        let opts = ReadOptions {
            import_layouts: true,
            ..ReadOptions::default()
        };
        for (name, text) in cases {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            let lines: Vec<Position> = read_rows(&p, &opts)
                .unwrap()
                .map(|r| r.location.at)
                .collect();
            let want: &[u64] = if name == "quoted.csv" {
                &[2, 5, 6]
            } else {
                &[2, 3, 4]
            };
            let want: Vec<Position> = want.iter().map(|&l| Position::Line(l)).collect();
            assert_eq!(lines, want, "{name}");
        }
    }

    #[test]
    fn long_lines_are_skipped_not_buffered_and_numbering_continues() {
        let mut input = b"{\"a\":1}\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 1000));
        input.extend(b"\n\n{\"b\":2}");
        let got = lines(&input, 100);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].as_ref().unwrap()["a"], 1);
        assert_eq!(
            got[1].as_ref().unwrap_err(),
            "t.jsonl:2: (row): line is 1000 bytes, longer than the limit of 100 bytes"
        );
        assert_eq!(got[2].as_ref().unwrap()["b"], 2);
    }

    #[test]
    fn crlf_and_blank_lines_are_tolerated() {
        let got = lines(b"{\"a\":1}\r\n   \r\n{\"a\":2}\r\n", 100);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].as_ref().unwrap()["a"], 2);
    }

    #[test]
    fn non_objects_and_bad_utf8_are_located() {
        let got = lines(b"[1,2]\n{\"a\":\"\xff\"}\n", 100);
        assert_eq!(
            got[0].as_ref().unwrap_err(),
            "t.jsonl:1: (row): expected a JSON object, got an array"
        );
        assert_eq!(
            got[1].as_ref().unwrap_err(),
            "t.jsonl:2: (row): invalid UTF-8 at byte 7 of the line"
        );
    }
}
