//! Each job's `manifest.json`: the one side effect of the coordinator outside the store.
//!
//! The store is the truth (a shard counts once the store records it); the file follows. Jobs
//! with new shards are marked dirty and rewritten once per flush tick however many units
//! reported, at once when a job ends, and for the newest jobs at start-up: the repair path for
//! a coordinator that died between recording a shard and writing the file. Every rewrite is
//! idempotent, so two coordinators writing the same manifest agree.

use crate::store::{Store, StoreError};
use start_schemas::manifest::{Manifest, ShardEntry};
use start_schemas::proto;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why a manifest could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The store could not list the job's shards.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The file could not be written.
    #[error("manifest of {dir}: {message}")]
    Write {
        /// The dataset directory.
        dir: PathBuf,
        /// What failed.
        message: String,
    },
}

/// Keeps manifests in step with the store.
#[derive(Clone)]
pub struct Manifests {
    store: Arc<dyn Store>,
    root: PathBuf,
    /// Jobs whose manifest file is behind the store.
    dirty: Arc<Mutex<HashSet<String>>>,
}

impl Manifests {
    /// Manifests of datasets under `root` (the shared store's mount point).
    pub fn new(store: Arc<dyn Store>, root: PathBuf) -> Self {
        Self {
            store,
            root,
            dirty: Arc::default(),
        }
    }

    /// Where a job's dataset lives on this machine.
    pub fn dataset_dir(&self, spec: &proto::JobSpec) -> PathBuf {
        self.root.join(&spec.output_uri)
    }

    /// Notes that the store holds a shard the file does not list yet.
    pub fn mark(&self, job_id: &str) {
        self.dirty
            .lock()
            .expect("dirty set")
            .insert(job_id.to_string());
    }

    /// Rewrites the job's `manifest.json` from the store; returns the shards it lists.
    pub async fn sync(&self, job: &proto::Job) -> Result<usize, ManifestError> {
        let shards = self.store.job_shards(&job.job_id).await?;
        let dir = self.dataset_dir(job.spec.as_ref().unwrap_or(&Default::default()));
        let entries: Vec<ShardEntry> = shards.iter().map(ShardEntry::reported).collect();
        let at = dir.clone();
        tokio::task::spawn_blocking(move || Manifest::record_many(&dir, entries))
            .await
            .map_err(|e| ManifestError::Write {
                dir: at.clone(),
                message: e.to_string(),
            })?
            .map_err(|e| ManifestError::Write {
                dir: at,
                message: e.to_string(),
            })
    }

    /// Flushes every `every`, for ever.
    pub async fn flush_every(self, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            self.flush_once().await;
        }
    }

    /// Writes the manifests of jobs with new shards now; failures stay marked for the next try.
    pub async fn flush_once(&self) {
        let jobs: Vec<String> = self.dirty.lock().expect("dirty set").drain().collect();
        for id in jobs {
            let synced = match self.store.get_job(&id).await {
                Ok(Some(job)) => self.sync(&job).await.map(|_| ()),
                Ok(None) => Ok(()),
                Err(e) => Err(e.into()),
            };
            if let Err(e) = synced {
                tracing::warn!(job = %id, error = %e, "manifest flush failed; retrying");
                self.mark(&id);
            }
        }
    }

    /// Repairs the manifests of the newest `jobs` jobs; called at start-up.
    pub async fn sync_recent(&self, jobs: usize) -> Result<(), StoreError> {
        for job in self.store.list_jobs(jobs).await? {
            if let Err(e) = self.sync(&job).await {
                tracing::warn!(job = %job.job_id, error = %e, "cannot repair the manifest");
            }
        }
        Ok(())
    }
}
