//! A node's side of the bucket: it ships its raw blocks (cut from the head, or compacted)
//! and reads its own history back from the bucket where the local data directory no
//! longer has it (local retention, a lost disk, a new machine with the same external
//! labels).
//!
//! - What was uploaded is recorded in `shipper.json` in the data directory (Thanos's
//!   `thanos.shipper.json`: `{"version":1,"uploaded":[ULID…]}`), so each block is uploaded
//!   once; a block not uploaded yet is never removed by local retention.
//! - The node's view of the bucket is refreshed every sync interval: its own blocks (the
//!   same external labels), not marked for deletion, not superseded. Only those whose
//!   compaction sources are not all in local blocks are opened and read: the local copy
//!   is the cache of recent blocks, bounded by the local retention flags.
//! - Downsampled blocks stay local. A deletion (`delete_series`) is written to the bucket
//!   as well: the tombstones of every live bucket block it touches, so a block read back
//!   after local retention keeps it, and the compactor's merges leave the samples out.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use super::{Bucket, BucketSpec, block_labels, live};
use crate::block::Block;
use crate::block::meta::ThanosMeta;
use crate::db::Db;
use crate::error::{Result, StorageError};

/// How a node uses its bucket.
#[derive(Debug, Clone)]
pub struct BucketOptions {
    pub spec: BucketSpec,
    /// The Thanos config's `prefix`.
    pub prefix: String,
    /// The node's `global.external_labels`: its blocks' identity in the bucket.
    pub external_labels: BTreeMap<String, String>,
    /// Bound of the page cache of bucket reads.
    pub cache_bytes: u64,
    /// How often the node lists the bucket.
    pub sync_interval: Duration,
    /// Read every block of the bucket, not only the node's own (a store / querier over
    /// the history of all nodes): other nodes' series get their external labels.
    pub read_all: bool,
}

/// The node's bucket state.
pub(crate) struct NodeBucket {
    pub(crate) bucket: Bucket,
    labels: BTreeMap<String, String>,
    shipped: Mutex<BTreeSet<String>>,
    shipped_file: PathBuf,
    view: RwLock<Vec<Arc<Block>>>,
    last_sync: Mutex<Option<Instant>>,
    sync_interval: Duration,
    /// Blocks retention would have removed but that are not uploaded yet (warned once).
    held: Mutex<HashSet<String>>,
    read_all: bool,
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct ShipperFile {
    version: u32,
    uploaded: Vec<String>,
}

impl NodeBucket {
    /// The raw, unmarked blocks of `metas` this node reads: its own, or every node's with
    /// `read_all`.
    fn own<'a>(
        &self,
        metas: &'a [(crate::block::BlockMeta, bool)],
    ) -> Vec<&'a crate::block::BlockMeta> {
        metas
            .iter()
            .filter(|(m, marked)| {
                !marked
                    && m.resolution == 0
                    && m.thanos
                        .as_ref()
                        .is_none_or(|t| t.downsample.resolution == 0)
                    && (self.read_all || block_labels(m) == self.labels)
            })
            .map(|(m, _)| m)
            .collect()
    }

    /// Connects (no request yet) and reads `shipper.json` from `dir`.
    pub(crate) fn open(o: &BucketOptions, dir: &std::path::Path) -> Result<NodeBucket> {
        let bucket = Bucket::open(&o.spec, &o.prefix, o.cache_bytes)?;
        let shipped_file = dir.join("shipper.json");
        let shipped = match std::fs::read(&shipped_file) {
            Ok(b) => {
                serde_json::from_slice::<ShipperFile>(&b)
                    .map_err(|e| StorageError::Json {
                        file: shipped_file.display().to_string(),
                        source: e,
                    })?
                    .uploaded
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(StorageError::io("read", &shipped_file, e)),
        };
        tracing::info!(bucket = ?bucket, labels = ?o.external_labels, "blocks are shipped to object storage");
        Ok(NodeBucket {
            bucket,
            labels: o.external_labels.clone(),
            shipped: Mutex::new(shipped.into_iter().collect()),
            shipped_file,
            view: RwLock::new(Vec::new()),
            last_sync: Mutex::new(None),
            sync_interval: o.sync_interval,
            held: Mutex::new(HashSet::new()),
            read_all: o.read_all,
        })
    }

    fn persist(&self) -> Result<()> {
        let f = ShipperFile {
            version: 1,
            uploaded: self.shipped.lock().iter().cloned().collect(),
        };
        let bytes = serde_json::to_vec(&f).map_err(|e| StorageError::Json {
            file: self.shipped_file.display().to_string(),
            source: e,
        })?;
        crate::durable::write_atomic(&self.shipped_file, &bytes)
            .map_err(|e| StorageError::io("write", &self.shipped_file, e))
    }
}

impl Db {
    /// Uploads the local raw blocks not shipped yet, oldest first.
    pub(crate) async fn ship(&self) -> Result<usize> {
        let Some(nb) = &self.bucket else {
            return Ok(0);
        };
        let blocks = self.blocks();
        let pending: Vec<Arc<Block>> = {
            let s = nb.shipped.lock();
            blocks
                .iter()
                .filter(|b| !s.contains(&b.meta.ulid))
                .cloned()
                .collect()
        };
        let mut n = 0;
        for b in &pending {
            let thanos = ThanosMeta {
                labels: nb.labels.clone(),
                source: "sidecar".into(),
                ..Default::default()
            };
            nb.bucket
                .upload(&self.opts.dir, b.dir(), &b.meta, thanos)
                .await?;
            tracing::info!(block = %b.meta.ulid, bucket = ?nb.bucket, "block uploaded");
            nb.shipped.lock().insert(b.meta.ulid.clone());
            self.metrics
                .blocks_uploaded
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            n += 1;
        }
        // Forget blocks that are gone locally (compacted, removed): the file stays small.
        let had = nb.shipped.lock().len();
        nb.shipped
            .lock()
            .retain(|u| blocks.iter().any(|b| &b.meta.ulid == u));
        if n > 0 || nb.shipped.lock().len() != had {
            tokio::task::block_in_place(|| nb.persist())?;
        }
        Ok(n)
    }

    /// Whether retention may remove local block `b`: always without a bucket, else once
    /// it is uploaded.
    pub(crate) fn may_remove(&self, b: &Block) -> bool {
        let Some(nb) = &self.bucket else {
            return true;
        };
        if nb.shipped.lock().contains(&b.meta.ulid) {
            return true;
        }
        if nb.held.lock().insert(b.meta.ulid.clone()) {
            tracing::warn!(block = %b.meta.ulid, "block past retention kept: it is not uploaded to the bucket yet");
        }
        false
    }

    /// Refreshes the view of the node's own bucket blocks (at most once per sync interval
    /// unless `force`).
    pub async fn sync_bucket(&self, force: bool) -> Result<()> {
        let Some(nb) = &self.bucket else {
            return Ok(());
        };
        {
            let mut last = nb.last_sync.lock();
            if !force && last.is_some_and(|t| t.elapsed() < nb.sync_interval) {
                return Ok(());
            }
            *last = Some(Instant::now());
        }
        let metas = nb.bucket.metas().await?;
        let own = nb.own(&metas);
        let local_sources = self.local_sources();
        let current = nb.view.read().clone();
        let mut next = Vec::new();
        for i in live(&own) {
            let m = own[i];
            if block_labels(m) == nb.labels
                && m.compaction
                    .sources
                    .iter()
                    .all(|s| local_sources.contains(s.as_str()))
            {
                continue;
            }
            if let Some(b) = current.iter().find(|b| b.meta.ulid == m.ulid) {
                next.push(b.clone());
                continue;
            }
            match self.open_bucket_block(nb, m).await {
                Ok(b) => next.push(Arc::new(b)),
                Err(e) => {
                    tracing::warn!(block = %m.ulid, error = %e, "cannot open bucket block; skipped");
                }
            }
        }
        next.sort_by_key(|b| (b.meta.min_time, b.meta.max_time));
        *nb.view.write() = next;
        Ok(())
    }

    /// Opens the bucket block of `m`, its series carrying its node's external labels when
    /// they are not this node's.
    async fn open_bucket_block(
        &self,
        nb: &NodeBucket,
        m: &crate::block::BlockMeta,
    ) -> Result<Block> {
        let b = nb.bucket.open_block(&m.ulid, self.pool()).await?;
        let labels = block_labels(m);
        Ok(if labels == nb.labels {
            b
        } else {
            b.with_external_labels(&labels, self.pool())
        })
    }

    /// Records a deletion in the bucket: every live raw block of the node's (every node's
    /// with `read_all`) overlapping `[mint, maxt]` gets tombstones for the series `matchers`
    /// select, in its `tombstones.json` — the blocks reads see now, and those hidden
    /// behind local copies (the shipped copies and their compactions), which reads see once
    /// local retention removes those copies. Blocks the compactor makes later from them
    /// leave the deleted samples out.
    pub(crate) async fn delete_in_bucket(
        &self,
        matchers: &[crate::matcher::Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<()> {
        let Some(nb) = &self.bucket else {
            return Ok(());
        };
        let metas = nb.bucket.metas().await?;
        let own = nb.own(&metas);
        let view = nb.view.read().clone();
        for i in live(&own) {
            let m = own[i];
            if !(m.min_time <= maxt && mint < m.max_time) {
                continue;
            }
            let b = match view.iter().find(|b| b.meta.ulid == m.ulid) {
                Some(b) => b.clone(),
                None => Arc::new(self.open_bucket_block(nb, m).await?),
            };
            let t: Vec<crate::block::meta::Tombstone> = b
                .select(matchers)
                .iter()
                .map(|id| crate::block::meta::Tombstone {
                    series_id: id,
                    min_time: mint,
                    max_time: maxt,
                })
                .collect();
            b.add_tombstones(t).await?;
        }
        Ok(())
    }

    /// Compaction sources of the local raw blocks.
    fn local_sources(&self) -> HashSet<String> {
        self.blocks()
            .iter()
            .flat_map(|b| b.meta.compaction.sources.iter().cloned())
            .collect()
    }

    /// The bucket blocks a read includes (made by [`Db::sync_bucket`]): the node's own, or
    /// every node's with `read_all`, whose data no local block holds.
    pub fn bucket_blocks(&self) -> Vec<Arc<Block>> {
        let Some(nb) = &self.bucket else {
            return Vec::new();
        };
        // Blocks held locally were left out when the view was made, and a block that
        // leaves the local directory (retention) brings a new view at once.
        nb.view.read().clone()
    }

    /// The bucket, when one is configured.
    pub fn bucket(&self) -> Option<&Bucket> {
        self.bucket.as_ref().map(|nb| &nb.bucket)
    }

    /// Local and bucket raw blocks: what reads see.
    pub(crate) fn readable_blocks(&self) -> Vec<Arc<Block>> {
        let mut v = self.blocks();
        v.extend(self.bucket_blocks());
        v
    }
}
