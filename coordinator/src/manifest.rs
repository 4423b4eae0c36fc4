//! Each job's dataset manifest: the coordinator is its only committer in a cluster.
//!
//! The store is the truth (a shard counts once the store records it); the dataset follows:
//! jobs with new shards are marked dirty and committed ([`start_dataset::commit`]: staged
//! shard -> `data/`, conditional manifest write, dataset card) once per flush tick however
//! many units reported, at once when a job ends, and for the newest jobs at start-up: the
//! repair path for a coordinator that died between recording a shard and committing it. Every
//! commit is idempotent, and the manifest's conditional write means two coordinators
//! committing the same dataset never lose or double an entry.
//!
//! A job is only shown as ended once its dataset is committed ([`Manifests::settle`]), so a
//! client that sees `succeeded` can read every shard at once.

use crate::store::{Store, StoreError};
use start_dataset::{CardInfo, DatasetLocation, ShardEntry, StoreRoot};
use start_schemas::proto;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why a manifest could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The store could not list the job's shards.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The dataset could not be committed.
    #[error("dataset of job {job}: {source}")]
    Dataset {
        /// The job.
        job: String,
        /// What failed.
        source: start_dataset::DatasetError,
    },
}

/// Keeps datasets in step with the store.
#[derive(Clone)]
pub struct Manifests {
    store: Arc<dyn Store>,
    root: StoreRoot,
    /// Jobs whose dataset is behind the store.
    dirty: Arc<Mutex<HashSet<String>>>,
    /// Ended jobs whose dataset this process has committed in full.
    settled: Arc<Mutex<HashSet<String>>>,
    /// Each job's model (name, sha256) as its rows record it, read once for the card.
    models: Arc<Mutex<HashMap<String, (String, String)>>>,
}

impl Manifests {
    /// Manifests of datasets under `root` (the shared store).
    pub fn new(store: Arc<dyn Store>, root: StoreRoot) -> Self {
        Self {
            store,
            root,
            dirty: Arc::default(),
            settled: Arc::default(),
            models: Arc::default(),
        }
    }

    /// The store root.
    pub fn root(&self) -> &StoreRoot {
        &self.root
    }

    /// Where a job's dataset lives.
    pub fn dataset(
        &self,
        spec: &proto::JobSpec,
    ) -> Result<DatasetLocation, start_dataset::DatasetError> {
        self.root.dataset(&spec.output_uri)
    }

    /// Notes that the store holds a shard the dataset does not list yet.
    pub fn mark(&self, job_id: &str) {
        self.dirty
            .lock()
            .expect("dirty set")
            .insert(job_id.to_string());
        self.settled.lock().expect("settled set").remove(job_id);
    }

    /// Commits the job's recorded shards to its dataset; returns how many were added.
    pub async fn sync(&self, job: &proto::Job) -> Result<usize, ManifestError> {
        let shards = self.store.job_shards(&job.job_id).await?;
        let spec = job.spec.clone().unwrap_or_default();
        let failed = |source| ManifestError::Dataset {
            job: job.job_id.clone(),
            source,
        };
        let loc = self.dataset(&spec).map_err(failed)?;
        let entries: Vec<ShardEntry> = shards.iter().map(ShardEntry::reported).collect();
        let known = self
            .models
            .lock()
            .expect("models")
            .get(&job.job_id)
            .cloned();
        let mut card = card_info(job);
        card.model = card.model.or(known.clone());
        let committed = start_dataset::commit(&loc, entries, Some(&card))
            .await
            .map_err(failed)?;
        if known.is_none() && !committed.manifest.shards.is_empty() {
            // The first commit of a job: read the model off its first row, once, and put it
            // on the card (rows are the truth of what made them; workers may differ by file
            // name, never by sha256, which the lease checks when the job pins one).
            let dataset = start_dataset::Dataset::with_manifest(loc.clone(), committed.manifest);
            if let Some(model) = dataset.model().await.map_err(failed)? {
                self.models
                    .lock()
                    .expect("models")
                    .insert(job.job_id.clone(), model.clone());
                card.model = Some(model);
                start_dataset::card::write(&loc, &dataset.manifest, &card)
                    .await
                    .map_err(failed)?;
            }
        }
        Ok(committed.added)
    }

    /// For a job the store shows as ended: commits its dataset first (once per process), so
    /// the job is never reported ended before its data is readable. A job still running, or
    /// already settled here, costs nothing.
    pub async fn settle(&self, job: &proto::Job) -> Result<(), ManifestError> {
        let state = proto::JobState::try_from(job.state).unwrap_or_default();
        if !crate::store::state::is_terminal(state)
            || self
                .settled
                .lock()
                .expect("settled set")
                .contains(&job.job_id)
        {
            return Ok(());
        }
        self.sync(job).await?;
        self.dirty.lock().expect("dirty set").remove(&job.job_id);
        self.settled
            .lock()
            .expect("settled set")
            .insert(job.job_id.clone());
        Ok(())
    }

    /// Flushes every `every`, for ever.
    pub async fn flush_every(self, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            self.flush_once().await;
        }
    }

    /// Commits the datasets of jobs with new shards now; failures stay marked for the next try.
    pub async fn flush_once(&self) {
        let jobs: Vec<String> = self.dirty.lock().expect("dirty set").drain().collect();
        for id in jobs {
            let synced = match self.store.get_job(&id).await {
                Ok(Some(job)) => self.sync(&job).await.map(|_| ()),
                Ok(None) => Ok(()),
                Err(e) => Err(e.into()),
            };
            if let Err(e) = synced {
                tracing::warn!(job = %id, error = %e, "dataset commit failed; retrying");
                self.mark(&id);
            }
        }
    }

    /// Repairs the datasets of the newest `jobs` jobs; called at start-up.
    pub async fn sync_recent(&self, jobs: usize) -> Result<(), StoreError> {
        for job in self.store.list_jobs(jobs).await? {
            if let Err(e) = self.sync(&job).await {
                tracing::warn!(job = %job.job_id, error = %e, "cannot repair the dataset");
            }
        }
        Ok(())
    }
}

/// What the dataset card says about a job.
fn card_info(job: &proto::Job) -> CardInfo {
    let spec = job.spec.clone().unwrap_or_default();
    let c = job.counters.unwrap_or_default();
    CardInfo {
        title: if spec.name.is_empty() {
            job.job_id.clone()
        } else {
            format!("{} ({})", spec.name, job.job_id)
        },
        spec_text: Some(format!("{spec:#?}")),
        model: (!spec.model_sha256.is_empty())
            .then(|| ("(pinned by the job)".to_string(), spec.model_sha256.clone())),
        counts: vec![
            ("problems".into(), c.problems),
            ("units done".into(), c.units_done),
            ("correct".into(), c.correct),
            ("errored (infrastructure)".into(), c.errored),
            ("tool calls".into(), c.tool_calls),
            ("completion tokens".into(), c.completion_tokens),
        ],
    }
}
