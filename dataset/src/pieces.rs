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
    use futures_util::StreamExt;
    let names: Vec<String> = loc
        .list(&unit_dir(unit_id))
        .await?
        .into_iter()
        .filter(|n| n.ends_with(PIECE_SUFFIX))
        .collect();
    // Sixteen at a time: a unit of 64 problems × 16 samples is 1,024 objects, and one GET
    // after another on object storage would take most of a minute.
    let mut read = futures_util::stream::iter(names)
        .map(|name| async move {
            let got = read_piece(loc, unit_id, &name).await;
            (name, got)
        })
        .buffer_unordered(16);
    let mut restored = Restored::default();
    while let Some((name, got)) = read.next().await {
        match got {
            Ok(Some(row)) => restored.rows.push(row),
            // Deleted since the listing: the unit was committed meanwhile.
            Ok(None) => {}
            Err(why) => restored.skipped.push(format!("{name}: {why}")),
        }
    }
    Ok(restored)
}

/// One piece's row; `None` if it is gone; why it cannot be used otherwise.
async fn read_piece(
    loc: &DatasetLocation,
    unit_id: &str,
    name: &str,
) -> Result<Option<Trajectory>, String> {
    let Some(bytes) = loc.get_opt(name).await.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let owned = name.to_string();
    let mut rows = tokio::task::spawn_blocking(move || -> Result<Vec<Trajectory>, DatasetError> {
        let mut rows = Vec::new();
        for batch in crate::reader::batches(owned, bytes, 2)? {
            rows.extend(batch?);
        }
        Ok(rows)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    if rows.len() != 1 {
        return Err(format!("{} rows where a piece has one", rows.len()));
    }
    let row = rows.remove(0);
    if piece_path(unit_id, &row.problem_id, row.sample_index) != name {
        return Err(format!(
            "holds problem {:?} sample {}, whose piece has another name",
            row.problem_id, row.sample_index
        ));
    }
    Ok(Some(row))
}

/// Deletes every piece of unit `unit_id` (its shard is committed). Returns how many.
pub async fn clear(loc: &DatasetLocation, unit_id: &str) -> Result<usize, DatasetError> {
    let names = loc.list(&unit_dir(unit_id)).await?;
    for name in &names {
        loc.delete(name).await?;
    }
    Ok(names.len())
}
