//! Blocks in object storage (S3 or a shared directory), in Thanos's bucket layout:
//!
//! ```text
//! <prefix>/<ULID>/meta.json              the block's meta.json, with a `thanos` section
//!                                        (the writer's external labels, `source`)
//! <prefix>/<ULID>/samples.parquet        the block's files, unchanged
//! <prefix>/<ULID>/series.parquet
//! <prefix>/<ULID>/histograms.parquet     (blocks with native histograms)
//! <prefix>/<ULID>/deletion-mark.json     set by the compactor: readers ignore the block,
//!                                        which is deleted after the delete delay
//! <prefix>/compactor-lease.json          who compacts the bucket, until when ([`lease`])
//! ```
//!
//! `meta.json` is uploaded last, so a block without one is an upload in progress (or an
//! interrupted one) and is not read. A block whose compaction sources are all among
//! another block's (same external labels) is superseded by it and not read either: a
//! node uploads its level-1 blocks and its compacted blocks, and the compactor merges
//! blocks, so for a while the bucket holds both the parts and the whole.
//!
//! Roles: a node ships its raw blocks and reads its own history back from the bucket
//! ([`node`]); `strata compact` compacts, applies retention to and garbage-collects the
//! bucket, one compactor at a time ([`compactor`], [`lease`]).

pub mod cache;
pub mod compactor;
pub mod lease;
pub mod node;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::io::AsyncWriteExt;

use crate::block::Block;
use crate::block::meta::BlockMeta;
use crate::error::{Result, StorageError};
use crate::labels::LabelPool;
use cache::RangeCache;

/// The marker of a block the compactor has replaced.
pub const DELETION_MARK: &str = "deletion-mark.json";

/// Which object store, and how to reach it (built from `--objstore.config-file`).
#[derive(Clone)]
pub enum BucketSpec {
    /// An S3-compatible service.
    S3 {
        bucket: String,
        /// `host[:port]`.
        endpoint: String,
        region: String,
        /// Empty: credentials from the environment.
        access_key: String,
        secret_key: String,
        session_token: String,
        /// Plain HTTP.
        insecure: bool,
        virtual_hosted: bool,
        max_retries: usize,
    },
    /// A local directory.
    Filesystem { directory: std::path::PathBuf },
}

impl std::fmt::Debug for BucketSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys.
        match self {
            BucketSpec::S3 {
                bucket, endpoint, ..
            } => write!(f, "s3://{bucket} at {endpoint}"),
            BucketSpec::Filesystem { directory } => write!(f, "{}", directory.display()),
        }
    }
}

/// A bucket: the object store and the page cache of the blocks read from it.
#[derive(Clone)]
pub struct Bucket {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) cache: Arc<RangeCache>,
    describe: String,
    /// `meta.json` of the blocks seen (immutable once uploaded), and whether each is
    /// marked for deletion (a mark is never taken back): a listing asks the store only
    /// for new blocks' metas and unmarked blocks' marks.
    known: Arc<parking_lot::Mutex<std::collections::HashMap<String, (BlockMeta, bool)>>>,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe)
    }
}

impl Bucket {
    /// Connects to the bucket of `spec` under `prefix` (no request is made yet); reads of
    /// its blocks are cached up to `cache_bytes`.
    pub fn open(spec: &BucketSpec, prefix: &str, cache_bytes: u64) -> Result<Bucket> {
        let store: Arc<dyn ObjectStore> = match spec {
            BucketSpec::S3 {
                bucket,
                endpoint,
                region,
                access_key,
                secret_key,
                session_token,
                insecure,
                virtual_hosted,
                max_retries,
            } => {
                let scheme = if *insecure { "http" } else { "https" };
                let mut b = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_endpoint(format!("{scheme}://{endpoint}"))
                    .with_allow_http(*insecure)
                    .with_virtual_hosted_style_request(*virtual_hosted)
                    .with_region(if region.is_empty() {
                        "us-east-1"
                    } else {
                        region
                    });
                if !access_key.is_empty() {
                    b = b
                        .with_access_key_id(access_key)
                        .with_secret_access_key(secret_key);
                }
                if !session_token.is_empty() {
                    b = b.with_token(session_token);
                }
                // Retries within 30 s (object_store's default is 3 min): a bucket that is
                // down must not hold maintenance, or a node's start, for long; what
                // failed is retried at the next maintenance.
                b = b.with_retry(object_store::RetryConfig {
                    max_retries: if *max_retries > 0 { *max_retries } else { 10 },
                    retry_timeout: std::time::Duration::from_secs(30),
                    ..Default::default()
                });
                Arc::new(b.build()?)
            }
            BucketSpec::Filesystem { directory } => {
                std::fs::create_dir_all(directory)
                    .map_err(|e| StorageError::io("create", directory, e))?;
                Arc::new(LocalFileSystem::new_with_prefix(directory)?.with_automatic_cleanup(true))
            }
        };
        let prefix = prefix.trim_matches('/');
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            store
        } else {
            Arc::new(PrefixStore::new(store, prefix))
        };
        Ok(Bucket {
            store,
            cache: Arc::new(RangeCache::new(cache_bytes)),
            describe: format!(
                "{spec:?}{}{prefix}",
                if prefix.is_empty() { "" } else { "/" }
            ),
            known: Default::default(),
        })
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The page cache.
    pub fn cache(&self) -> &Arc<RangeCache> {
        &self.cache
    }

    /// The `meta.json` of every complete block, with whether it is marked for deletion.
    pub async fn metas(&self) -> Result<Vec<(BlockMeta, bool)>> {
        let listing = self.store.list_with_delimiter(None).await?;
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for dir in listing.common_prefixes {
            let Some(name) = dir.filename() else { continue };
            if ulid::Ulid::from_string(name).is_err() {
                continue;
            }
            seen.insert(name.to_owned());
            let known = self.known.lock().get(name).cloned();
            let meta = match known {
                Some((meta, true)) => {
                    out.push((meta, true));
                    continue;
                }
                Some((meta, false)) => meta,
                None => {
                    let bytes = match self.store.get(&dir.clone().join("meta.json")).await {
                        Ok(r) => r.bytes().await?,
                        // Still being uploaded (or an interrupted upload).
                        Err(object_store::Error::NotFound { .. }) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    match serde_json::from_slice::<BlockMeta>(&bytes) {
                        Ok(m) => m,
                        Err(e) => {
                            tracing::warn!(block = %dir, error = %e, "bucket block with an unreadable meta.json; skipped");
                            continue;
                        }
                    }
                }
            };
            let marked = match self.store.head(&dir.clone().join(DELETION_MARK)).await {
                Ok(_) => true,
                Err(object_store::Error::NotFound { .. }) => false,
                Err(e) => return Err(e.into()),
            };
            self.known
                .lock()
                .insert(name.to_owned(), (meta.clone(), marked));
            out.push((meta, marked));
        }
        self.known.lock().retain(|k, _| seen.contains(k));
        out.sort_by_key(|(m, _)| (m.min_time, m.max_time));
        Ok(out)
    }

    /// Uploads the block in `dir` of `local` (files first, `meta.json` last, with `thanos`
    /// filled in). Files stream through multipart uploads: memory stays bounded whatever
    /// the block's size.
    pub async fn upload(
        &self,
        local_root: &std::path::Path,
        dir: &Path,
        meta: &BlockMeta,
        thanos: crate::block::meta::ThanosMeta,
    ) -> Result<()> {
        let to = Path::from(meta.ulid.as_str());
        let src = local_root.join(dir.as_ref());
        for f in [
            "samples.parquet",
            "series.parquet",
            crate::block::histograms::FILE,
            "tombstones.json",
        ] {
            let p = src.join(f);
            let mut file = match tokio::fs::File::open(&p).await {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StorageError::io("open", &p, e)),
            };
            let mut w =
                object_store::buffered::BufWriter::new(self.store.clone(), to.clone().join(f));
            if let Err(e) = tokio::io::copy(&mut file, &mut w).await {
                let _ = w.abort().await;
                return Err(StorageError::io("upload", &p, e));
            }
            w.shutdown()
                .await
                .map_err(|e| StorageError::io("upload", &p, e))?;
        }
        let mut meta = meta.clone();
        meta.thanos = Some(thanos);
        self.put_json(&to.join("meta.json"), &meta).await
    }

    /// Opens a bucket block for reading (its series table and Parquet footer are read
    /// now; samples are read by byte range through the cache).
    pub async fn open_block(&self, ulid: &str, pool: &LabelPool) -> Result<Block> {
        let b = Block::open(self.store.clone(), Path::from(ulid), pool, None).await?;
        Ok(b.with_cache(self.cache.clone()))
    }

    /// Marks a block for deletion (Thanos's `deletion-mark.json`).
    pub async fn mark_for_deletion(&self, ulid: &str, now_ms: i64) -> Result<()> {
        let mark = serde_json::json!({
            "id": ulid,
            "deletion_time": now_ms / 1000,
            "version": 1,
        });
        self.put_json(&Path::from(ulid).join(DELETION_MARK), &mark)
            .await
    }

    /// When `ulid`'s deletion mark was set (ms), if it has one.
    pub async fn deletion_time(&self, ulid: &str) -> Result<Option<i64>> {
        match self.store.get(&Path::from(ulid).join(DELETION_MARK)).await {
            Ok(r) => {
                let v: serde_json::Value =
                    serde_json::from_slice(&r.bytes().await?).map_err(|e| StorageError::Json {
                        file: format!("{ulid}/{DELETION_MARK}"),
                        source: e,
                    })?;
                Ok(Some(
                    v.get("deletion_time")
                        .and_then(serde_json::Value::as_i64)
                        .unwrap_or(0)
                        .saturating_mul(1000),
                ))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes every object of a block, `meta.json` first (a half-deleted block is then
    /// an incomplete one, which nothing reads).
    pub async fn delete_block(&self, ulid: &str) -> Result<()> {
        let dir = Path::from(ulid);
        match self.store.delete(&dir.clone().join("meta.json")).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let listing = self.store.list_with_delimiter(Some(&dir)).await?;
        for o in listing.objects {
            match self.store.delete(&o.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn put_json(&self, path: &Path, v: &impl serde::Serialize) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(v).map_err(|e| StorageError::Json {
            file: path.to_string(),
            source: e,
        })?;
        self.store.put(path, PutPayload::from(bytes)).await?;
        Ok(())
    }
}

/// The external labels of a bucket block (none for a block without a `thanos` section).
pub fn block_labels(m: &BlockMeta) -> BTreeMap<String, String> {
    m.thanos
        .as_ref()
        .map(|t| t.labels.clone())
        .unwrap_or_default()
}

/// The indices of `metas` that are not superseded: a block is superseded by another of
/// the same external labels and resolution whose compaction sources include all of its
/// own (on equal sources the later write, the greater ULID, stands).
pub fn live(metas: &[&BlockMeta]) -> Vec<usize> {
    let key = |m: &BlockMeta| {
        (
            block_labels(m),
            m.thanos.as_ref().map_or(0, |t| t.downsample.resolution),
        )
    };
    let sources: Vec<BTreeSet<&str>> = metas
        .iter()
        .map(|m| m.compaction.sources.iter().map(String::as_str).collect())
        .collect();
    let keys: Vec<_> = metas.iter().map(|m| key(m)).collect();
    (0..metas.len())
        .filter(|&i| {
            !(0..metas.len()).any(|j| {
                j != i
                    && keys[i] == keys[j]
                    && sources[i].is_subset(&sources[j])
                    && (sources[i].len() < sources[j].len() || metas[j].ulid > metas[i].ulid)
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::block::meta::{BlockStats, Compaction, ThanosMeta};

    fn meta(ulid: &str, sources: &[&str], replica: &str) -> BlockMeta {
        BlockMeta {
            ulid: ulid.into(),
            min_time: 0,
            max_time: 1,
            stats: BlockStats::default(),
            compaction: Compaction {
                level: 1,
                sources: sources.iter().map(|s| s.to_string()).collect(),
            },
            version: 2,
            resolution: 0,
            thanos: Some(ThanosMeta {
                labels: [("replica".to_owned(), replica.to_owned())].into(),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn superseded_blocks_are_not_live() {
        let a = meta("A", &["A"], "1");
        let b = meta("B", &["B"], "1");
        let c = meta("C", &["A", "B"], "1");
        // The same sources again (a rewrite, or node and compactor both merged A and B).
        let d = meta("D", &["A", "B"], "1");
        // Another replica's block with the same source names stays.
        let e = meta("E", &["A"], "2");
        // Partly overlapping sources: both stay (the read path deduplicates samples).
        let f = meta("F", &["B", "X"], "1");
        let all = [&a, &b, &c, &d, &e, &f];
        let got: Vec<&str> = live(&all)
            .into_iter()
            .map(|i| all[i].ulid.as_str())
            .collect();
        assert_eq!(got, vec!["D", "E", "F"]);
    }
}
