//! A unit's finished trajectories, staged one by one as they finish, so that a worker killed
//! without notice (a preempted GPU node) loses only the trajectories it was still generating.
//!
//! A unit's shard is written when the unit ends, and only a committed shard is in the dataset.
//! Before that, each finished trajectory is put alone as a one-row Parquet file (a *piece*)
//! under `_pieces/<unit>/`, named for its problem and sample. A unit leased again (its lease
//! expired, or the worker drained) first restores the pieces any earlier attempt left and
//! generates only the rest; its shard is the restored rows and the new ones in the same order
//! as always, so each (problem, sample) is in the dataset exactly once. The rows restored are
//! the rows first generated, byte for byte after the round trip (their worker, wall time and
//! creation time included): nothing of them is redone.
//!
//! Pieces are never read by a dataset reader (the `_` prefix and the `.piece` suffix), and are
//! deleted once the unit's shard is committed. A piece that cannot be read (a partial object
//! of a store without atomic puts, a file of another version) is skipped, named, and its
//! trajectory generated again.

use crate::layout::{PIECES_DIR, PIECE_SUFFIX};
use crate::shard::{ShardOptions, ShardWriter};
use crate::{DatasetError, DatasetLocation};
use sha2::{Digest, Sha256};
use start_schemas::trajectory::Trajectory;

/// The directory of unit `unit_id`'s pieces, relative to the dataset.
pub fn unit_dir(unit_id: &str) -> String {
    format!("{PIECES_DIR}/{unit_id}")
}

/// Where the piece of (`problem_id`, `sample`) of unit `unit_id` lives. Problem ids are any
/// text; the name holds a hash of it.
pub fn piece_path(unit_id: &str, problem_id: &str, sample: u32) -> String {
    let problem = hex::encode(&Sha256::digest(problem_id.as_bytes())[..16]);
    format!("{}/{problem}-s{sample}{PIECE_SUFFIX}", unit_dir(unit_id))
}

/// Puts one finished trajectory of unit `unit_id` as its piece (replacing one of an earlier
/// attempt: the same problem and sample).
pub async fn stage(
    loc: &DatasetLocation,
    unit_id: &str,
    row: &Trajectory,
) -> Result<(), DatasetError> {
    let rel = piece_path(unit_id, &row.problem_id, row.sample_index);
    let one = row.clone();
    let bytes = tokio::task::spawn_blocking(move || {
        let mut w = ShardWriter::create("piece", &ShardOptions::default())?;
        w.write(std::slice::from_ref(&one))?;
        w.finish()?.to_bytes()
    })
    .await
    .map_err(|e| DatasetError::io(&rel, std::io::Error::other(e.to_string())))??;
    loc.put(&rel, bytes).await
}

/// What an earlier attempt of a unit left.
#[derive(Debug, Default)]
pub struct Restored {
    /// The trajectories, one per (problem, sample), in no particular order.
    pub rows: Vec<Trajectory>,
    /// Pieces that could not be used, each with why (`name: reason`).
    pub skipped: Vec<String>,
}

/// Reads every piece of unit `unit_id`. A piece that does not decode to exactly one row named
/// for its own problem and sample is skipped (listed in [`Restored::skipped`]), never fatal;
/// only a store that cannot be listed is an error.
pub async fn restore(loc: &DatasetLocation, unit_id: &str) -> Result<Restored, DatasetError> {
    let mut restored = Restored::default();
    for name in loc.list(&unit_dir(unit_id)).await? {
        if !name.ends_with(PIECE_SUFFIX) {
            continue;
        }
        let bytes = match loc.get_opt(&name).await {
            Ok(Some(b)) => b,
            // Deleted since the listing: the unit was committed meanwhile.
            Ok(None) => continue,
            Err(e) => {
                restored.skipped.push(format!("{name}: {e}"));
                continue;
            }
        };
        let decoded = tokio::task::spawn_blocking({
            let name = name.clone();
            move || -> Result<Vec<Trajectory>, DatasetError> {
                let mut rows = Vec::new();
                for batch in crate::reader::batches(name, bytes, 2)? {
                    rows.extend(batch?);
                }
                Ok(rows)
            }
        })
        .await
        .map_err(|e| DatasetError::io(&name, std::io::Error::other(e.to_string())))?;
        match decoded {
            Ok(mut rows) if rows.len() == 1 => {
                let row = rows.remove(0);
                if piece_path(unit_id, &row.problem_id, row.sample_index) == name {
                    restored.rows.push(row);
                } else {
                    restored.skipped.push(format!(
                        "{name}: holds problem {:?} sample {}, whose piece has another name",
                        row.problem_id, row.sample_index
                    ));
                }
            }
            Ok(rows) => restored
                .skipped
                .push(format!("{name}: {} rows where a piece has one", rows.len())),
            Err(e) => restored.skipped.push(format!("{name}: {e}")),
        }
    }
    Ok(restored)
}

/// Deletes every piece of unit `unit_id` (its shard is committed). Returns how many.
pub async fn clear(loc: &DatasetLocation, unit_id: &str) -> Result<usize, DatasetError> {
    let names = loc.list(&unit_dir(unit_id)).await?;
    for name in &names {
        loc.delete(name).await?;
    }
    Ok(names.len())
}
