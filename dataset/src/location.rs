//! Where a dataset lives: a local directory (the default, as before) or a prefix in an object
//! store (`s3://`, `gs://`, `az://`), behind one `object_store` API.
//!
//! Credentials come from each cloud's standard environment, read by `object_store`'s
//! `from_env` builders: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN` /
//! `AWS_REGION` / `AWS_ENDPOINT_URL` (and IRSA web identity or instance metadata when those are
//! unset); `GOOGLE_SERVICE_ACCOUNT` / `GOOGLE_APPLICATION_CREDENTIALS` (or the metadata server);
//! `AZURE_STORAGE_ACCOUNT_NAME` with `AZURE_STORAGE_ACCOUNT_KEY`, a SAS or workload identity.
//! Nothing start-specific to learn. S3 commits need conditional writes (`If-None-Match`,
//! `If-Match`), which AWS S3 has had since 2024; start turns them on for every S3 store.

use crate::DatasetError;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The root of a dataset store: every job's `output_uri` is a dataset under it. A remote
/// root builds its client once, so every dataset under it shares one connection pool.
#[derive(Clone, Debug)]
pub struct StoreRoot {
    spec: String,
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Local(PathBuf),
    /// Scheme and bucket/container (`s3://bucket`), the prefix inside it, and the client.
    Remote {
        base: String,
        prefix: String,
        store: Arc<dyn ObjectStore>,
    },
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Local(p) => write!(f, "Local({})", p.display()),
            Kind::Remote { base, prefix, .. } => write!(f, "Remote({base}/{prefix})"),
        }
    }
}

impl StoreRoot {
    /// Parses a local path, `file://` URL or `s3://`, `gs://`, `az://` / `abfs://` URL.
    pub fn parse(spec: &str) -> Result<Self, DatasetError> {
        let bad = |message: String| DatasetError::Location {
            location: spec.to_string(),
            message,
        };
        let kind = match spec.split_once("://") {
            None => Kind::Local(PathBuf::from(if spec.is_empty() { "." } else { spec })),
            Some(("file", rest)) => Kind::Local(PathBuf::from(rest)),
            Some((scheme @ ("s3" | "s3a" | "gs" | "az" | "abfs" | "abfss"), rest)) => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(bad("no bucket or container after the scheme".into()));
                }
                let base = format!("{scheme}://{bucket}");
                Kind::Remote {
                    store: client(&base).map_err(|e| bad(e.to_string()))?,
                    base,
                    prefix: prefix.trim_matches('/').to_string(),
                }
            }
            Some((scheme, _)) => {
                return Err(bad(format!(
                    "unknown scheme {scheme:?}: use a local path, file://, s3://, gs:// or az://"
                )))
            }
        };
        Ok(Self {
            spec: spec.to_string(),
            kind,
        })
    }

    /// True for a local directory.
    pub fn is_local(&self) -> bool {
        matches!(self.kind, Kind::Local(_))
    }

    /// The local directory, for a local store.
    pub fn local_dir(&self) -> Option<&Path> {
        match &self.kind {
            Kind::Local(p) => Some(p),
            Kind::Remote { .. } => None,
        }
    }

    /// The dataset at `rel` under this root (`rel` may be empty: the root itself). An absolute
    /// local `rel` is taken as is, as before object storage; `..` never leaves a remote root.
    pub fn dataset(&self, rel: &str) -> Result<DatasetLocation, DatasetError> {
        match &self.kind {
            // `join("")` would add a trailing `/` to every name built from it.
            Kind::Local(root) if rel.is_empty() => DatasetLocation::local(root),
            Kind::Local(root) => DatasetLocation::local(&root.join(rel)),
            Kind::Remote {
                base,
                prefix,
                store,
            } => {
                let rel = rel.trim_matches('/');
                if rel.split('/').any(|c| c == ".." || c == ".") {
                    return Err(DatasetError::Location {
                        location: format!("{}/{rel}", self.spec),
                        message: "'.' and '..' are not allowed in an object-store path".into(),
                    });
                }
                let joined = [prefix.as_str(), rel]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join("/");
                Ok(DatasetLocation {
                    store: store.clone(),
                    prefix: ObjectPath::from(joined.as_str()),
                    display: format!("{base}/{joined}").trim_end_matches('/').to_string(),
                    local: None,
                })
            }
        }
    }

    /// A file under the root (a problems file named by `problems_uri`), fetched whole.
    pub async fn read(&self, rel: &str) -> Result<bytes::Bytes, DatasetError> {
        match &self.kind {
            Kind::Local(root) => {
                let path = root.join(rel);
                tokio::fs::read(&path)
                    .await
                    .map(bytes::Bytes::from)
                    .map_err(|e| DatasetError::io(path.display(), e))
            }
            Kind::Remote { .. } => {
                let (dir, file) = rel.rsplit_once('/').unwrap_or(("", rel));
                let loc = self.dataset(dir)?;
                loc.get(file).await
            }
        }
    }
}

impl std::fmt::Display for StoreRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.spec)
    }
}

/// The client of a bucket or container (`s3://bucket`), from the cloud's standard environment.
fn client(base: &str) -> Result<Arc<dyn ObjectStore>, object_store::Error> {
    Ok(match base.split_once("://").map(|(s, _)| s) {
        Some("s3" | "s3a") => Arc::new(
            AmazonS3Builder::from_env()
                .with_url(base)
                .with_conditional_put(S3ConditionalPut::ETagMatch)
                .build()?,
        ),
        Some("gs") => Arc::new(
            GoogleCloudStorageBuilder::from_env()
                .with_url(base)
                .build()?,
        ),
        _ => Arc::new(MicrosoftAzureBuilder::from_env().with_url(base).build()?),
    })
}

/// One dataset: an object store and the prefix of the dataset in it.
#[derive(Clone)]
pub struct DatasetLocation {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    display: String,
    local: Option<PathBuf>,
}

impl std::fmt::Debug for DatasetLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

impl std::fmt::Display for DatasetLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

impl DatasetLocation {
    /// Opens a dataset given as a local path or a full URL (`s3://bucket/jobs/a`).
    pub fn open(spec: &str) -> Result<Self, DatasetError> {
        StoreRoot::parse(spec)?.dataset("")
    }

    /// A local dataset directory, created if absent.
    pub fn local(dir: &Path) -> Result<Self, DatasetError> {
        std::fs::create_dir_all(dir).map_err(|e| DatasetError::io(dir.display(), e))?;
        let store = LocalFileSystem::new_with_prefix(dir).map_err(|e| DatasetError::Location {
            location: dir.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(Self {
            store: Arc::new(store),
            prefix: ObjectPath::default(),
            display: dir.display().to_string(),
            local: Some(dir.to_path_buf()),
        })
    }

    /// The object store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The local directory, for a local dataset (its commit lock lives there).
    pub fn local_dir(&self) -> Option<&Path> {
        self.local.as_deref()
    }

    /// The object path of `rel` inside the dataset.
    pub fn path(&self, rel: &str) -> ObjectPath {
        rel.split('/')
            .filter(|p| !p.is_empty())
            .fold(self.prefix.clone(), |p, part| p.child(part))
    }

    /// `rel`'s full name for messages: `s3://bucket/job/data/x.parquet`, or a local path.
    pub fn name(&self, rel: &str) -> String {
        if rel.is_empty() {
            self.display.clone()
        } else {
            format!("{}/{rel}", self.display)
        }
    }

    /// Reads `rel` whole.
    pub async fn get(&self, rel: &str) -> Result<bytes::Bytes, DatasetError> {
        let got = self
            .store
            .get(&self.path(rel))
            .await
            .map_err(|e| DatasetError::store(self.name(rel), e))?;
        got.bytes()
            .await
            .map_err(|e| DatasetError::store(self.name(rel), e))
    }

    /// Writes `rel` whole, replacing what was there (the card, the report: files the
    /// manifest does not list, so a last writer wins).
    pub async fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<(), DatasetError> {
        self.store
            .put(&self.path(rel), object_store::PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| DatasetError::store(self.name(rel), e))
    }

    /// Reads `rel` whole, `None` if it does not exist.
    pub async fn get_opt(&self, rel: &str) -> Result<Option<bytes::Bytes>, DatasetError> {
        match self.get(rel).await {
            Ok(b) => Ok(Some(b)),
            Err(DatasetError::Store {
                source: object_store::Error::NotFound { .. },
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes `rel`; one that is already gone is fine.
    pub async fn delete(&self, rel: &str) -> Result<(), DatasetError> {
        match self.store.delete(&self.path(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(DatasetError::store(self.name(rel), e)),
        }
    }

    /// Names (relative to the dataset) of the objects under `dir`.
    pub async fn list(&self, dir: &str) -> Result<Vec<String>, DatasetError> {
        use futures_util::TryStreamExt;
        let base = self.path(dir);
        let metas: Vec<_> = self
            .store
            .list(Some(&base))
            .try_collect()
            .await
            .map_err(|e| DatasetError::store(self.name(dir), e))?;
        let strip = self.prefix.as_ref().len();
        let mut names: Vec<String> = metas
            .into_iter()
            .map(|m| {
                let full = m.location.as_ref();
                full[strip.min(full.len())..]
                    .trim_start_matches('/')
                    .to_string()
            })
            .collect();
        names.sort();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_roots_parse_or_say_what_is_wrong() {
        assert!(StoreRoot::parse("out/run").unwrap().is_local());
        assert!(StoreRoot::parse("file:///tmp/x").unwrap().is_local());
        assert!(!StoreRoot::parse("s3://bucket/jobs").unwrap().is_local());
        let err = StoreRoot::parse("ftp://host/x").unwrap_err().to_string();
        assert!(
            err.contains("\"ftp://host/x\"") && err.contains("unknown scheme"),
            "{err}"
        );
        let err = StoreRoot::parse("s3:///x").unwrap_err().to_string();
        assert!(err.contains("no bucket"), "{err}");
        let root = StoreRoot::parse("gs://bucket/base").unwrap();
        let err = root.dataset("a/../../b").unwrap_err().to_string();
        assert!(err.contains("gs://bucket/base/a/../../b"), "{err}");
    }

    #[test]
    fn local_datasets_name_their_objects_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let root = StoreRoot::parse(dir.path().to_str().unwrap()).unwrap();
        let loc = root.dataset("jobs/a").unwrap();
        assert!(dir.path().join("jobs/a").is_dir(), "created on open");
        assert_eq!(
            loc.name("data/x.parquet"),
            format!("{}/data/x.parquet", dir.path().join("jobs/a").display())
        );
        assert_eq!(loc.path("data/x.parquet").as_ref(), "data/x.parquet");
    }
}
