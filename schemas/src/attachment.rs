//! Files attached to a problem: the data a question is about (a sales table as CSV, Parquet or
//! SQLite), which every code block of the problem sees, read-only, in its working directory,
//! and which SQL blocks query as tables.
//!
//! A problem row names its files by path, relative to the problem file, with their sha256
//! (`files: [{"path": "data/sales.csv", "sha256": "…"}]`). [`crate::validate`] checks the
//! declaration; [`AttachmentRoot`] reads and checks the bytes (present, within the limits,
//! the sha256 the row gives, the format its name says). A job carries them to the workers:
//! small files inside the job's units, larger ones through the dataset store under
//! [`STORE_PREFIX`], and a worker checks them again on arrival.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// Largest attached file.
pub const MAX_FILE_BYTES: u64 = 32 << 20;
/// Largest sum of one problem's attached files (a runner keeps them all at once).
pub const MAX_PROBLEM_BYTES: u64 = 64 << 20;
/// Most files attached to one problem.
pub const MAX_FILES: usize = 8;
/// Files up to this size travel inside the job's units (and so in the coordinator's store,
/// once per problem that names them); larger ones through the dataset store, once per job.
pub const INLINE_BYTES: u64 = 64 << 10;
/// Where a dataset keeps the large attached files of its jobs, by sha256, relative to its root
/// (`_`-prefixed and without an extension, so no Parquet reader of the dataset picks them up).
pub const STORE_PREFIX: &str = "_inputs";
/// Longest file name.
const MAX_NAME_BYTES: usize = 128;

/// What an attached file holds, from its name's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values, UTF-8, with a header row.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// A SQLite database.
    Sqlite,
}

impl Format {
    /// The format a file name's extension says (`.csv`; `.parquet`; `.sqlite`, `.sqlite3`,
    /// `.db`).
    pub fn of_name(name: &str) -> Option<Self> {
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Self::Csv),
            "parquet" => Some(Self::Parquet),
            "sqlite" | "sqlite3" | "db" => Some(Self::Sqlite),
            _ => None,
        }
    }

    /// Its name, as the user message says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "CSV",
            Self::Parquet => "Parquet",
            Self::Sqlite => "SQLite",
        }
    }

    /// Why `bytes` are not a file of this format, if they are not.
    fn check(self, bytes: &[u8]) -> Result<(), String> {
        match self {
            Self::Csv => {
                let text = std::str::from_utf8(bytes)
                    .map_err(|e| format!("is not UTF-8 text, as a CSV file must be ({e})"))?;
                if text.lines().next().is_none_or(|h| h.trim().is_empty()) {
                    return Err("has no header row; a CSV file starts with its column names".into());
                }
                Ok(())
            }
            Self::Parquet => {
                if bytes.len() >= 8 && bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1") {
                    Ok(())
                } else {
                    Err("is not a Parquet file (it does not begin and end with PAR1)".into())
                }
            }
            Self::Sqlite => {
                if bytes.starts_with(b"SQLite format 3\0") {
                    Ok(())
                } else {
                    Err("is not a SQLite database (no \"SQLite format 3\" header)".into())
                }
            }
        }
    }
}

/// The SQL table a file is queried as (for a SQLite file, the schema its tables are under):
/// its name without the extension, every character other than an ASCII letter, digit or `_`
/// made `_`, and `t_` before a leading digit. The sandbox's runner names tables the same way.
pub fn sql_table_name(file_name: &str) -> String {
    let stem = file_name.rsplit_once('.').map_or(file_name, |(s, _)| s);
    let name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("t_{name}")
    } else {
        name
    }
}

/// One attached file.
#[derive(Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The name a code block sees it under, in its working directory.
    pub name: String,
    /// The path a problem file gives, relative to that file; absent in rows received over
    /// gRPC, whose files travel with the job.
    pub path: Option<String>,
    /// Hex sha256 of the bytes, lower case.
    pub sha256: String,
    /// Size in bytes, where the row gives it or the bytes have been read.
    pub size: Option<u64>,
    /// The bytes, once read and checked.
    pub content: Option<Bytes>,
}

impl fmt::Debug for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attachment")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .field("size", &self.size)
            .field("loaded", &self.content.is_some())
            .finish()
    }
}

impl Attachment {
    /// Its format (a checked name always has one).
    pub fn format(&self) -> Format {
        Format::of_name(&self.name).unwrap_or(Format::Csv)
    }

    /// Where a dataset store keeps it: [`STORE_PREFIX`]`/<sha256>`.
    pub fn store_key(&self) -> String {
        format!("{STORE_PREFIX}/{}", self.sha256)
    }

    /// Whether it travels inside a job's units (else through the dataset store).
    pub fn inline(&self) -> bool {
        self.size.is_some_and(|s| s <= INLINE_BYTES)
    }

    /// Checks `bytes` as this file's content: within the size limit, the declared size, the
    /// sha256, the format its name says; then keeps them.
    pub fn load(&mut self, bytes: Bytes) -> Result<(), String> {
        self.check_size(&bytes)?;
        let sha = hex::encode(Sha256::digest(&bytes));
        self.load_with_sha256(bytes, &sha)
    }

    /// As [`Attachment::load`], with the bytes' sha256 already computed (by a [`FileCache`]
    /// that read them for another problem).
    fn load_with_sha256(&mut self, bytes: Bytes, sha: &str) -> Result<(), String> {
        self.check_size(&bytes)?;
        if sha != self.sha256 {
            return Err(format!(
                "has sha256 {sha}, but the row says {}",
                self.sha256
            ));
        }
        self.load_hashed(bytes)
    }

    /// As [`Attachment::load`], for bytes already found to have this file's sha256 (another
    /// problem's copy of the same file): a file many problems attach is hashed once.
    pub fn load_hashed(&mut self, bytes: Bytes) -> Result<(), String> {
        self.check_size(&bytes)?;
        self.format().check(&bytes)?;
        self.size = Some(bytes.len() as u64);
        self.content = Some(bytes);
        Ok(())
    }

    fn check_size(&self, bytes: &[u8]) -> Result<(), String> {
        let len = bytes.len() as u64;
        if len > MAX_FILE_BYTES {
            return Err(over_limit(len));
        }
        match self.size.filter(|&s| s != len) {
            Some(size) => Err(format!("is {len} bytes, but the row says {size}")),
            None => Ok(()),
        }
    }
}

fn over_limit(len: u64) -> String {
    format!(
        "is {len} bytes, over the {} MiB limit for an attached file",
        MAX_FILE_BYTES >> 20
    )
}

/// Why a file name is refused, if it is: a plain name a code block can open as it is.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(format!("must be 1 to {MAX_NAME_BYTES} bytes"));
    }
    if name.starts_with('.') || name.starts_with('-') {
        return Err(format!("{name:?} must not start with '.' or '-'"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(format!(
            "{name:?} may hold only ASCII letters, digits, '.', '_' and '-'"
        ));
    }
    if Format::of_name(name).is_none() {
        return Err(format!(
            "{name:?} is not a data file start reads: name it .csv, .parquet, .sqlite, .sqlite3 or .db"
        ));
    }
    Ok(())
}

/// Why a path is refused, if it is: relative, inside the problem file's directory.
pub fn check_path(path: &str) -> Result<(), String> {
    let p = Path::new(path);
    if path.is_empty() || p.is_absolute() {
        return Err(format!(
            "{path:?} must be a path relative to the problem file"
        ));
    }
    if p.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(format!(
            "{path:?} must stay below the problem file's directory (no '..' or '.')"
        ));
    }
    Ok(())
}

/// The attached files read so far, by full path, with their sha256: a file that many problems
/// attach is read and hashed once (a data-analysis set can attach one 32 MiB table to
/// thousands of problems).
#[derive(Debug, Default)]
pub struct FileCache {
    /// Bytes and hex sha256 by full path.
    files: HashMap<PathBuf, (Bytes, String)>,
    hits: u64,
}

impl FileCache {
    /// How many reads the cache answered (each one a file not read or hashed again).
    pub fn hits(&self) -> u64 {
        self.hits
    }
}

/// Where a problem file's attached files are read from.
pub enum AttachmentRoot {
    /// Beside the problem file: paths are relative to this directory.
    Dir(PathBuf),
    /// Files built into the binary (the bundled examples), by path.
    Embedded(&'static [(&'static str, &'static [u8])]),
}

impl AttachmentRoot {
    /// The directory of `problem_file`.
    pub fn beside(problem_file: &Path) -> Self {
        Self::Dir(
            problem_file
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        )
    }

    fn read(&self, path: &str, cache: &mut FileCache) -> Result<(Bytes, String), String> {
        let full = match self {
            Self::Embedded(_) => PathBuf::from(path),
            Self::Dir(dir) => dir.join(path),
        };
        if let Some(hit) = cache.files.get(&full) {
            cache.hits += 1;
            return Ok(hit.clone());
        }
        let bytes = self.read_uncached(path, &full)?;
        let sha = hex::encode(Sha256::digest(&bytes));
        cache.files.insert(full, (bytes.clone(), sha.clone()));
        Ok((bytes, sha))
    }

    fn read_uncached(&self, path: &str, full: &Path) -> Result<Bytes, String> {
        match self {
            Self::Embedded(files) => files
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, b)| Bytes::from_static(b))
                .ok_or_else(|| "is not among the bundled files".to_string()),
            Self::Dir(_) => {
                let shown = full.display();
                let meta =
                    std::fs::metadata(full).map_err(|e| format!("cannot open {shown}: {e}"))?;
                if !meta.is_file() {
                    return Err(format!("{shown} is not a regular file"));
                }
                // Measured before it is read: a huge file is refused, not loaded.
                if meta.len() > MAX_FILE_BYTES {
                    return Err(over_limit(meta.len()));
                }
                Ok(Bytes::from(
                    std::fs::read(full).map_err(|e| format!("cannot read {shown}: {e}"))?,
                ))
            }
        }
    }

    /// Reads and checks every file of problem `id` (its `files`), keeping their bytes; each
    /// error is the file's field and what is wrong, naming the problem and the file. A file
    /// shared by many problems is read and hashed once (`cache`, by path).
    pub fn load(
        &self,
        id: &str,
        files: &mut [Attachment],
        cache: &mut FileCache,
    ) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        let mut total = 0;
        for (i, file) in files.iter_mut().enumerate() {
            let path = file.path.clone().unwrap_or_else(|| file.name.clone());
            let loaded = self
                .read(&path, cache)
                .and_then(|(bytes, sha)| file.load_with_sha256(bytes, &sha));
            match loaded {
                Ok(()) => total += file.size.unwrap_or(0),
                Err(e) => errors.push((
                    format!("files[{i}]"),
                    format!("problem {id:?}: file {path}: {e}"),
                )),
            }
        }
        if errors.is_empty() && total > MAX_PROBLEM_BYTES {
            errors.push((
                "files".to_string(),
                format!(
                    "problem {id:?}: its files hold {total} bytes, over the {} MiB a problem may attach",
                    MAX_PROBLEM_BYTES >> 20
                ),
            ));
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths_are_plain_and_say_their_format() {
        assert!(check_name("sales.csv").is_ok());
        assert!(check_name("q4-sales_2024.parquet").is_ok());
        assert!(check_name("shop.DB").is_ok());
        for bad in [
            "",
            ".hidden.csv",
            "-x.csv",
            "a b.csv",
            "a/b.csv",
            "notes.txt",
            "noext",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_path("data/sales.csv").is_ok());
        for bad in ["/etc/passwd", "../x.csv", "a/../../x.csv", "./x.csv", ""] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Format::of_name("x.sqlite3"), Some(Format::Sqlite));
        assert_eq!(sql_table_name("q4-sales.2024.csv"), "q4_sales_2024");
        assert_eq!(sql_table_name("2024.csv"), "t_2024");
        assert_eq!(sql_table_name("shop.db"), "shop");
    }

    #[test]
    fn content_is_checked_against_size_hash_and_format() {
        let csv = Bytes::from_static(b"region,revenue\nNorth,10\n");
        let mut a = Attachment {
            name: "sales.csv".into(),
            path: None,
            sha256: hex::encode(Sha256::digest(&csv)),
            size: None,
            content: None,
        };
        a.clone().load(csv.clone()).unwrap();
        let e = a
            .clone()
            .load(Bytes::from_static(b"other,data\n1,2\n"))
            .unwrap_err();
        assert!(
            e.starts_with("has sha256 ") && e.contains("but the row says"),
            "{e}"
        );
        a.size = Some(3);
        assert!(a
            .clone()
            .load(csv.clone())
            .unwrap_err()
            .contains("the row says 3"));
        let bad = Bytes::from_static(b"\xff\xfe not text");
        let mut b = Attachment {
            sha256: hex::encode(Sha256::digest(&bad)),
            size: None,
            ..a.clone()
        };
        assert!(b.load(bad.clone()).unwrap_err().contains("not UTF-8"));
        b.name = "t.parquet".into();
        assert!(b
            .load(bad.clone())
            .unwrap_err()
            .contains("not a Parquet file"));
        b.name = "t.sqlite".into();
        assert!(b.load(bad).unwrap_err().contains("not a SQLite database"));
    }

    #[test]
    fn a_file_many_problems_attach_is_read_and_hashed_once_and_checked_for_each() {
        let dir = tempfile::tempdir().unwrap();
        let csv = b"region,revenue\nNorth,10\n";
        std::fs::write(dir.path().join("sales.csv"), csv).unwrap();
        let root = AttachmentRoot::Dir(dir.path().to_path_buf());
        let file = |sha256: String| Attachment {
            name: "sales.csv".into(),
            path: Some("sales.csv".into()),
            sha256,
            size: None,
            content: None,
        };
        let right = hex::encode(Sha256::digest(csv));
        let mut cache = FileCache::default();
        for id in ["p1", "p2", "p3"] {
            let mut files = [file(right.clone())];
            assert!(root.load(id, &mut files, &mut cache).is_empty());
            assert_eq!(files[0].content.as_deref(), Some(&csv[..]));
        }
        assert_eq!(cache.hits(), 2);
        // The cached hash still answers each problem's own claim.
        let mut wrong = [file("0".repeat(64))];
        let errors = root.load("p4", &mut wrong, &mut cache);
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].1.contains("problem \"p4\"") && errors[0].1.contains("but the row says"),
            "{errors:?}"
        );
        assert_eq!(cache.hits(), 3);
    }
}
