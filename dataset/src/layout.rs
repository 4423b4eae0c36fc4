//! Where things live inside a dataset, chosen so that readers that never heard of start read
//! exactly the committed rows:
//!
//! ```text
//! DATASET/
//!   README.md                          dataset card (Hugging Face YAML `configs` -> data/*.parquet)
//!   data/<shard>.parquet               committed shards, and nothing else
//!   _manifest.json                     start's manifest: the committed shards, sha256, rows
//!   _staging/<shard>.parquet.staged    uploads awaiting commit; moved to data/ or deleted
//!   _pieces/<unit>/<problem>-s<n>.piece  finished trajectories of a unit not yet committed,
//!                                      one each, so a preempted worker's are not redone
//! ```
//!
//! Hive/Spark readers skip names starting with `_` or `.`, and a staged object does not end in
//! `.parquet`, so neither `pyarrow.dataset.dataset("DATASET/data")` nor a
//! `DATASET/**/*.parquet` glob (DuckDB, polars) can see an upload that was never committed.
//! Datasets of layout 1 (`manifest.json`, `shards/`) are still read and are migrated on their
//! next commit (see [`crate::migrate`]).

/// Committed shards.
pub const DATA_DIR: &str = "data";
/// Uploads awaiting commit.
pub const STAGING_DIR: &str = "_staging";
/// A unit's finished trajectories awaiting its shard ([`crate::pieces`]).
pub const PIECES_DIR: &str = "_pieces";
/// Suffix of a piece: not `.parquet`, so globs over `**/*.parquet` skip it.
pub const PIECE_SUFFIX: &str = ".piece";
/// Suffix of a staged upload: not `.parquet`, so globs over `**/*.parquet` skip it.
pub const STAGED_SUFFIX: &str = ".parquet.staged";
/// The manifest.
pub const MANIFEST: &str = "_manifest.json";
/// The dataset card.
pub const CARD: &str = "README.md";
/// Layout 1's manifest (start before object storage).
pub const LEGACY_MANIFEST: &str = "manifest.json";
/// Layout 1's shard directory.
pub const LEGACY_SHARDS_DIR: &str = "shards";
/// The layout this build writes.
pub const LAYOUT: u32 = 2;

/// Path of a committed shard, relative to the dataset.
pub fn data_path(shard_id: &str) -> String {
    format!("{DATA_DIR}/{shard_id}.parquet")
}

/// Path of a staged shard, relative to the dataset.
pub fn staged_path(shard_id: &str) -> String {
    format!("{STAGING_DIR}/{shard_id}{STAGED_SUFFIX}")
}

/// The shard id of a dataset-relative shard path of either layout (`data/x.parquet`,
/// `shards/x.parquet`); `None` for anything else.
pub fn shard_id_of(path: &str) -> Option<&str> {
    let (dir, file) = path.split_once('/')?;
    if dir != DATA_DIR && dir != LEGACY_SHARDS_DIR {
        return None;
    }
    file.strip_suffix(".parquet")
        .filter(|s| !s.is_empty() && !s.contains('/'))
}

/// Checks that a shard id is a safe object name that no reader skips or misreads.
pub fn check_shard_id(id: &str) -> Result<(), crate::DatasetError> {
    let ok = !id.is_empty()
        && id.len() <= 200
        && !id.starts_with('.')
        && !id.starts_with('_')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(crate::DatasetError::InvalidShardId(id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_paths_round_trip_and_staged_names_escape_parquet_globs() {
        assert_eq!(shard_id_of(&data_path("j.u3.a1")), Some("j.u3.a1"));
        assert_eq!(shard_id_of("shards/unit-0.parquet"), Some("unit-0"));
        assert_eq!(shard_id_of(&staged_path("x")), None);
        assert_eq!(shard_id_of("data/a/b.parquet"), None);
        assert!(!staged_path("x").ends_with(".parquet"));
        assert!(check_shard_id("_x").is_err() && check_shard_id(".x").is_err());
        assert!(check_shard_id("a/b").is_err() && check_shard_id("j.u3.a1").is_ok());
    }
}
