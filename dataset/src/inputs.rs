//! A dataset's inputs: the larger files its jobs' problems attach, kept by sha256 under
//! [`start_schemas::attachment::STORE_PREFIX`] (`_inputs/<sha256>`), so that a job carries each to its workers once,
//! through the store they share, rather than inside every unit. Small files travel inside the
//! units ([`start_schemas::attachment::INLINE_BYTES`]).
//!
//! The names are content addresses: two jobs attaching the same file keep one object, and a
//! file is never replaced by other bytes. No reader of the dataset's rows sees them (the
//! directory starts with `_`, the objects have no extension).

use crate::{DatasetError, DatasetLocation};
use start_schemas::attachment::Attachment;

/// Keeps `file`, whose bytes are loaded, in `dataset` unless it is there already.
pub async fn keep(dataset: &DatasetLocation, file: &Attachment) -> Result<(), DatasetError> {
    let key = file.store_key();
    if holds(dataset, file).await? {
        return Ok(());
    }
    let Some(bytes) = file.content.clone() else {
        return Err(DatasetError::Input {
            path: dataset.name(&key),
            message: format!("{} has no bytes to keep", file.name),
        });
    };
    dataset
        .store()
        .put(&dataset.path(&key), object_store::PutPayload::from(bytes))
        .await
        .map(|_| ())
        .map_err(|e| DatasetError::store(dataset.name(&key), e))
}

/// Whether `dataset` keeps `file` (by its sha256).
pub async fn holds(dataset: &DatasetLocation, file: &Attachment) -> Result<bool, DatasetError> {
    let key = file.store_key();
    match dataset.store().head(&dataset.path(&key)).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(DatasetError::store(dataset.name(&key), e)),
    }
}

/// Reads `file` from `dataset` and checks it against what its problem says (size, sha256,
/// format), keeping the bytes in it.
pub async fn fetch(dataset: &DatasetLocation, file: &mut Attachment) -> Result<(), DatasetError> {
    let key = file.store_key();
    let bytes = dataset.get(&key).await?;
    file.load(bytes).map_err(|message| DatasetError::Input {
        path: dataset.name(&key),
        message: format!("{}: {message}", file.name),
    })
}
