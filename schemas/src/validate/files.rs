//! The files a row attaches: paths and names, hashes and sizes, formats, SQL table names.

use super::*;

/// The files a row attaches: `[{path, name, sha256, size}]`, each with a path (relative to the
/// problem file) or a name or both, a sha256, and optionally its size; names plain, unique, of
/// a format start reads, and distinct as SQL tables.
pub(super) fn check_files(c: &mut RowCheck, obj: &Map<String, Value>) -> Option<Vec<Attachment>> {
    let items = match RowCheck::get(obj, "files") {
        None => return Some(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            c.error(
                "files",
                format!(
                    "expected a list of {{path, sha256}} objects, got {}",
                    json_type_name(other)
                ),
            );
            return None;
        }
    };
    if items.len() > attachment::MAX_FILES {
        c.error(
            "files",
            format!(
                "has {} files; a problem attaches at most {}",
                items.len(),
                attachment::MAX_FILES
            ),
        );
        return None;
    }
    let before = c.errors.len();
    let mut files: Vec<Attachment> = Vec::with_capacity(items.len());
    let mut declared = 0u64;
    for (i, item) in items.iter().enumerate() {
        let field = format!("files[{i}]");
        let Some(f) = item.as_object() else {
            c.error(
                &field,
                format!("expected an object, got {}", json_type_name(item)),
            );
            continue;
        };
        c.unknown_fields(f, &["path", "name", "sha256", "size"], &format!("{field}."));
        let path = RowCheck::get(f, "path").and_then(|v| {
            let p = c.string(v, &format!("{field}.path"), true)?;
            match attachment::check_path(&p) {
                Ok(()) => Some(p),
                Err(e) => {
                    c.error(&format!("{field}.path"), e);
                    None
                }
            }
        });
        let named =
            RowCheck::get(f, "name").and_then(|v| c.string(v, &format!("{field}.name"), true));
        let name = match (named, &path) {
            (Some(n), _) => Some(n),
            (None, Some(p)) => p.rsplit('/').next().map(str::to_string),
            (None, None) => {
                if RowCheck::get(f, "path").is_none() {
                    c.error(
                        &format!("{field}.path"),
                        "missing; give the file's path relative to the problem file",
                    );
                }
                None
            }
        };
        let name = name.and_then(|n| match attachment::check_name(&n) {
            Ok(()) => Some(n),
            Err(e) => {
                c.error(&format!("{field}.name"), e);
                None
            }
        });
        let sha256 = match RowCheck::get(f, "sha256") {
            None => {
                c.error(
                    &format!("{field}.sha256"),
                    "missing; the file's hex sha256 (sha256sum prints it)",
                );
                None
            }
            Some(v) => c.string(v, &format!("{field}.sha256"), true).and_then(|h| {
                let h = h.to_ascii_lowercase();
                if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Some(h)
                } else {
                    c.error(
                        &format!("{field}.sha256"),
                        format!("{h:?} is not 64 hex digits"),
                    );
                    None
                }
            }),
        };
        let size = match RowCheck::get(f, "size") {
            None => Some(None),
            Some(v) => match v.as_u64() {
                Some(n) if n <= attachment::MAX_FILE_BYTES => {
                    declared += n;
                    Some(Some(n))
                }
                _ => {
                    c.error(
                        &format!("{field}.size"),
                        format!(
                            "expected bytes from 0 to {} ({} MiB), got {v}",
                            attachment::MAX_FILE_BYTES,
                            attachment::MAX_FILE_BYTES >> 20
                        ),
                    );
                    None
                }
            },
        };
        let (Some(name), Some(sha256), Some(size)) = (name, sha256, size) else {
            continue;
        };
        if let Some(j) = files.iter().position(|o| o.name == name) {
            c.error(
                &format!("{field}.name"),
                format!("{name:?} is attached already, as files[{j}]"),
            );
            continue;
        }
        let table = attachment::sql_table_name(&name);
        if let Some(j) = files
            .iter()
            .position(|o| attachment::sql_table_name(&o.name) == table)
        {
            c.error(
                &format!("{field}.name"),
                format!(
                    "{name:?} would be SQL table {table:?}, as {:?} (files[{j}]) is: rename one",
                    files[j].name
                ),
            );
            continue;
        }
        files.push(Attachment {
            name,
            path,
            sha256,
            size,
            content: None,
        });
    }
    if declared > attachment::MAX_PROBLEM_BYTES {
        c.error(
            "files",
            format!(
                "the files hold {declared} bytes, over the {} MiB a problem may attach",
                attachment::MAX_PROBLEM_BYTES >> 20
            ),
        );
    }
    (c.errors.len() == before).then_some(files)
}
