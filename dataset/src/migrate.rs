//! Layout 1 -> layout 2. A dataset written before object storage has `manifest.json` and
//! `shards/<id>.parquet`; readers of start still read it as it is, and its next commit migrates
//! it: each listed shard is published to `data/`, `_manifest.json` is created (put-if-absent,
//! so two migrators cannot both write it), then the old manifest and listed shards are removed.
//! Unlisted `.parquet` files in `shards/` (orphans of crashed writers, which no start reader
//! ever counted) are moved to `_orphans/<name>.orphan`, out of every glob, not deleted.

use crate::layout::{data_path, LEGACY_MANIFEST, LEGACY_SHARDS_DIR};
use crate::manifest::{Manifest, Version};
use crate::{DatasetError, DatasetLocation};
use object_store::{PutMode, PutOptions, PutPayload};
use std::collections::HashSet;

/// Where orphans of layout 1 go.
pub const ORPHANS_DIR: &str = "_orphans";

/// Migrates `loc` if it is a layout-1 dataset; `Ok(true)` when it did.
pub async fn migrate(loc: &DatasetLocation) -> Result<bool, DatasetError> {
    let Some(bytes) = loc.get_opt(LEGACY_MANIFEST).await? else {
        return Ok(false);
    };
    let mut manifest = Manifest::parse(&bytes, &loc.name(LEGACY_MANIFEST))?;
    tracing::info!(dataset = %loc, shards = manifest.shards.len(), "migrating a layout-1 dataset");
    let listed: HashSet<String> = manifest.shards.iter().map(|s| s.path.clone()).collect();
    for entry in &mut manifest.shards {
        let data = data_path(&entry.shard_id);
        if entry.path != data {
            copy_once(loc, &entry.path, &data).await?;
            entry.path = data;
        }
    }
    manifest.layout = crate::layout::LAYOUT;
    // Created only if absent: a concurrent migrator (or a commit after it) wins, and then the
    // old files are removed by whichever of us gets there; both manifests list the same shards.
    let _ = manifest.put_if(loc, &Version::Absent).await?;
    for old in &listed {
        loc.delete(old).await?;
    }
    for name in loc.list(LEGACY_SHARDS_DIR).await? {
        let file = name.rsplit('/').next().unwrap_or(&name).to_string();
        if listed.contains(&name) || !file.ends_with(".parquet") {
            loc.delete(&name).await?;
            continue;
        }
        copy_once(loc, &name, &format!("{ORPHANS_DIR}/{file}.orphan")).await?;
        loc.delete(&name).await?;
    }
    loc.delete(LEGACY_MANIFEST).await?;
    loc.delete(".manifest.lock").await?;
    if let Some(dir) = loc.local_dir() {
        let _ = std::fs::remove_dir(dir.join(LEGACY_SHARDS_DIR));
    }
    Ok(true)
}

/// Copies `from` to `to` unless `to` exists (a retried migration).
async fn copy_once(loc: &DatasetLocation, from: &str, to: &str) -> Result<(), DatasetError> {
    match loc.store().head(&loc.path(to)).await {
        Ok(_) => return Ok(()),
        Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(DatasetError::store(loc.name(to), e)),
    }
    let bytes = loc.get(from).await?;
    match loc
        .store()
        .put_opts(
            &loc.path(to),
            PutPayload::from(bytes),
            PutOptions::from(PutMode::Create),
        )
        .await
    {
        Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(DatasetError::store(loc.name(to), e)),
    }
}
