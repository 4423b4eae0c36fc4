//! Checking a reported shard before the store records it: the path must be the one the lease
//! names (so a late or confused worker cannot point the dataset at another attempt's upload),
//! and, unless switched off, the staged upload must have the reported size and sha256 (so a
//! shard lost or torn on the way never enters a dataset).

use sha2::Digest;
use start_dataset::layout::{data_path, staged_path};
use start_dataset::DatasetLocation;
use start_schemas::{proto, LeaseId};

/// Checks `shard`, reported under `lease`, against its staged upload in `dataset`; `Err` says
/// why it is refused. `verify_contents` off checks only the path.
pub async fn verify(
    dataset: &DatasetLocation,
    lease: &LeaseId,
    shard: &proto::ShardInfo,
    verify_contents: bool,
) -> Result<(), String> {
    let stem = lease.unit().shard_stem(lease.attempt());
    let expected = data_path(&stem);
    if shard.path != expected {
        return Err(format!(
            "shard path {:?} is not the lease's {expected:?}",
            shard.path
        ));
    }
    if !verify_contents {
        return Ok(());
    }
    let staged = staged_path(&stem);
    let bytes = dataset.get(&staged).await.map_err(|e| e.to_string())?;
    if bytes.len() as u64 != shard.bytes {
        return Err(format!(
            "shard {} has {} bytes, the report says {}",
            dataset.name(&staged),
            bytes.len(),
            shard.bytes
        ));
    }
    if hex::encode(sha2::Sha256::digest(&bytes)) != shard.sha256 {
        return Err(format!(
            "shard {} does not match the reported sha256",
            dataset.name(&staged)
        ));
    }
    Ok(())
}
