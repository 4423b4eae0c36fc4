//! Checking a reported shard before the store records it: the path must be the one the lease
//! names (so a late or confused worker cannot point the manifest at another attempt's file),
//! and, unless switched off, the file on the shared store must have the reported size and
//! sha256 (so a shard lost or torn on the way never enters a dataset).

use start_schemas::{proto, LeaseId};
use std::path::Path;

/// Checks `shard`, reported under `lease`, in the dataset at `dataset`; `Err` says why it is
/// refused. `verify_contents` off checks only the path.
pub async fn verify(
    dataset: &Path,
    lease: &LeaseId,
    shard: &proto::ShardInfo,
    verify_contents: bool,
) -> Result<(), String> {
    let expected = format!(
        "{}/{}.parquet",
        start_schemas::shard::SHARDS_DIR,
        lease.unit().shard_stem(lease.attempt())
    );
    if shard.path != expected {
        return Err(format!(
            "shard path {:?} is not the lease's {expected:?}",
            shard.path
        ));
    }
    if !verify_contents {
        return Ok(());
    }
    let path = dataset.join(&shard.path);
    let (bytes, sha) = tokio::task::spawn_blocking(move || {
        let bytes = std::fs::metadata(&path).map(|m| m.len());
        let sha = start_schemas::model::sha256_file(&path);
        (
            bytes.map_err(|e| format!("{}: {e}", path.display())),
            sha.map_err(|e| format!("{}: {e}", path.display())),
        )
    })
    .await
    .map_err(|e| e.to_string())?;
    let bytes = bytes?;
    if bytes != shard.bytes {
        return Err(format!(
            "shard {} has {bytes} bytes, the report says {}",
            shard.path, shard.bytes
        ));
    }
    if sha? != shard.sha256 {
        return Err(format!(
            "shard {} does not match the reported sha256",
            shard.path
        ));
    }
    Ok(())
}
