//! `strata compact`: the bucket's compactor. One pass, under the bucket's lease:
//!
//! 1. deletes the blocks whose deletion mark is older than the delete delay;
//! 2. marks for deletion the blocks another block supersedes (see [`super::live`]);
//! 3. applies the raw retention: blocks whose newest sample is older than it are marked;
//! 4. per external label set, merges overlapping blocks, then the blocks inside one
//!    aligned window of the next range (2h → 6h → … up to [`MAX_BLOCK_RANGE_MS`]) with the
//!    same merge as a node's own compaction, uploads the result (`meta.json` last) and
//!    marks its sources for deletion.
//!
//! Marks, not deletions: nodes reading a replaced block keep reading it until their next
//! sync, as Thanos's store gateways do. The lease is renewed in the background; once it is
//! lost, nothing more is marked or merged.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use object_store::path::Path;

use super::lease::Lease;
use super::{Bucket, block_labels, live};
use crate::block::Block;
use crate::block::meta::{BlockMeta, Downsample, ThanosMeta};
use crate::compact::{Output, merge_blocks, plan};
use crate::db::now_ms;
use crate::error::{Result, StorageError};
use crate::labels::LabelPool;
use crate::options::DEFAULT_BLOCK_RANGE_MS;

/// The largest block the compactor makes: 2h × 3^5 = 486h (about 20 days).
pub const MAX_BLOCK_RANGE_MS: i64 = DEFAULT_BLOCK_RANGE_MS * 243;

/// What a pass does.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// `--retention.resolution-raw` (`None`: keep everything).
    pub retention_raw_ms: Option<i64>,
    /// `--delete-delay`: how long a marked block stays readable.
    pub delete_delay_ms: i64,
    /// How long the lease lasts without renewal.
    pub lease_duration: Duration,
    /// Who this compactor is (in the lease).
    pub holder: String,
}

/// What a pass did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct CompactReport {
    /// Merges done, and the blocks they wrote.
    pub compactions: usize,
    pub blocks_written: Vec<String>,
    /// Blocks marked for deletion: superseded, replaced by a merge, past retention.
    pub marked_superseded: usize,
    pub marked_compacted: usize,
    pub marked_retention: usize,
    /// Blocks deleted (marked longer than the delete delay).
    pub deleted: usize,
}

/// One compaction pass over `bucket`; fails with [`StorageError::LeaseHeld`] when another
/// compactor holds the lease.
pub async fn run_once(bucket: &Bucket, opts: &CompactOptions) -> Result<CompactReport> {
    let lease = Lease::acquire(bucket.store.clone(), &opts.holder, opts.lease_duration).await?;
    tracing::info!(holder = %opts.holder, bucket = ?bucket, "compactor lease taken");
    let lease = Arc::new(tokio::sync::Mutex::new(lease));
    let lost = Arc::new(AtomicBool::new(false));
    let renewer = {
        let (lease, lost) = (lease.clone(), lost.clone());
        let every = opts.lease_duration / 3;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = lease.lock().await.renew().await {
                    tracing::error!(error = %e, "renewing the compactor lease failed");
                    if matches!(e, StorageError::LeaseLost) {
                        lost.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            }
        })
    };
    let res = pass(bucket, opts, &lost).await;
    renewer.abort();
    let _ = renewer.await;
    match Arc::try_unwrap(lease) {
        Ok(l) => {
            if let Err(e) = l.into_inner().release().await {
                tracing::warn!(error = %e, "releasing the compactor lease failed (it expires by itself)");
            }
        }
        Err(_) => tracing::warn!("compactor lease still shared; it expires by itself"),
    }
    res
}

fn check(lost: &AtomicBool) -> Result<()> {
    if lost.load(Ordering::SeqCst) {
        Err(StorageError::LeaseLost)
    } else {
        Ok(())
    }
}

async fn pass(bucket: &Bucket, opts: &CompactOptions, lost: &AtomicBool) -> Result<CompactReport> {
    let mut report = CompactReport::default();
    let now = now_ms();
    let metas = bucket.metas().await?;
    // 1. Deletions past the delay.
    for (m, marked) in &metas {
        if !marked {
            continue;
        }
        check(lost)?;
        if let Some(t) = bucket.deletion_time(&m.ulid).await?
            && now.saturating_sub(t) >= opts.delete_delay_ms
        {
            bucket.delete_block(&m.ulid).await?;
            tracing::info!(block = %m.ulid, "deleted marked block");
            report.deleted += 1;
        }
    }
    let unmarked: Vec<&BlockMeta> = metas.iter().filter(|(_, m)| !m).map(|(m, _)| m).collect();
    // 2. Superseded blocks.
    let keep = live(&unmarked);
    for (i, m) in unmarked.iter().enumerate() {
        if !keep.contains(&i) {
            check(lost)?;
            bucket.mark_for_deletion(&m.ulid, now).await?;
            tracing::info!(block = %m.ulid, "marked superseded block for deletion");
            report.marked_superseded += 1;
        }
    }
    // 3. Retention.
    let mut live_metas: Vec<&BlockMeta> = Vec::new();
    for i in keep {
        let m = unmarked[i];
        if let Some(r) = opts.retention_raw_ms
            && m.max_time <= now.saturating_sub(r)
        {
            check(lost)?;
            bucket.mark_for_deletion(&m.ulid, now).await?;
            tracing::info!(block = %m.ulid, "marked block past retention for deletion");
            report.marked_retention += 1;
            continue;
        }
        live_metas.push(m);
    }
    // 4. Merges, per external label set (raw blocks; downsampled ones are a node's).
    let mut groups: BTreeMap<BTreeMap<String, String>, Vec<&BlockMeta>> = BTreeMap::new();
    for m in live_metas {
        if m.resolution == 0
            && m.thanos
                .as_ref()
                .is_none_or(|t| t.downsample.resolution == 0)
        {
            groups.entry(block_labels(m)).or_default().push(m);
        }
    }
    let pool = LabelPool::default();
    for (labels, metas) in groups {
        let mut blocks: Vec<Arc<Block>> = Vec::new();
        for m in metas {
            blocks.push(Arc::new(bucket.open_block(&m.ulid, &pool).await?));
        }
        blocks.sort_by_key(|b| (b.meta.min_time, b.meta.max_time));
        let out = Output {
            store: bucket.store.clone(),
            root: Path::from(""),
            local: None,
            thanos: Some(ThanosMeta {
                labels: labels.clone(),
                downsample: Downsample::default(),
                source: "compactor".into(),
            }),
        };
        while let Some(group) = plan(
            &blocks,
            DEFAULT_BLOCK_RANGE_MS,
            MAX_BLOCK_RANGE_MS,
            i64::MIN,
        ) {
            check(lost)?;
            let new = merge_blocks(&group, &out, &pool).await?;
            // The merge is in the bucket (meta.json last); a lost lease from here on
            // leaves both it and its sources, which the next pass sorts out.
            check(lost)?;
            for b in &group {
                bucket.mark_for_deletion(&b.meta.ulid, now_ms()).await?;
                report.marked_compacted += 1;
            }
            tracing::info!(labels = ?labels, sources = ?group.iter().map(|b| &b.meta.ulid).collect::<Vec<_>>(),
                new = ?new.as_ref().map(|b| &b.meta.ulid), "compacted bucket blocks");
            report.compactions += 1;
            blocks.retain(|b| !group.iter().any(|g| Arc::ptr_eq(g, b)));
            if let Some(b) = new {
                report.blocks_written.push(b.meta.ulid.clone());
                blocks.push(Arc::new(b.with_cache(bucket.cache.clone())));
            }
            blocks.sort_by_key(|b| (b.meta.min_time, b.meta.max_time));
        }
    }
    Ok(report)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::block::BlockWriter;
    use crate::labels::Labels;

    async fn put_block(bucket: &Bucket, pool: &LabelPool, t0: i64, replica: &str) -> String {
        let mut w = BlockWriter::new().unwrap();
        for s in 0..3 {
            let labels = Labels::from_pairs([("__name__", "up"), ("s", &s.to_string())]);
            let samples: Vec<(i64, f64)> = (0..240)
                .map(|i| (t0 + i * 30_000, (i + s) as f64))
                .collect();
            w.add_series(labels, &samples, &[]).unwrap();
        }
        let mut enc = w.finish(1, Vec::new()).unwrap().unwrap();
        enc.meta.thanos = Some(ThanosMeta {
            labels: [("replica".to_owned(), replica.to_owned())].into(),
            source: "sidecar".into(),
            ..Default::default()
        });
        let b = Block::write(bucket.store.clone(), &Path::from(""), enc, pool, None)
            .await
            .unwrap();
        b.meta.ulid.clone()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn merges_per_label_set_marks_sources_and_deletes_after_the_delay() {
        let dir = tempfile::tempdir().unwrap();
        let bucket = Bucket::open(
            &super::super::BucketSpec::Filesystem {
                directory: dir.path().to_path_buf(),
            },
            "",
            1 << 20,
        )
        .unwrap();
        let pool = LabelPool::default();
        let h2 = DEFAULT_BLOCK_RANGE_MS;
        // Three 2h blocks of replica a (a full 6h window), one of replica b.
        let a: Vec<String> =
            futures::future::join_all((0..3).map(|k| put_block(&bucket, &pool, k * h2, "a"))).await;
        let b = put_block(&bucket, &pool, 0, "b").await;
        // And a 2h block after the window, so the window is closed.
        put_block(&bucket, &pool, 3 * h2, "a").await;
        let opts = CompactOptions {
            retention_raw_ms: None,
            delete_delay_ms: 3_600_000,
            lease_duration: Duration::from_secs(30),
            holder: "test".into(),
        };
        let r = run_once(&bucket, &opts).await.unwrap();
        assert_eq!(r.compactions, 1, "{r:?}");
        assert_eq!(r.marked_compacted, 3);
        let metas = bucket.metas().await.unwrap();
        let new = metas
            .iter()
            .find(|(m, _)| m.ulid == r.blocks_written[0])
            .unwrap();
        let mut want = a.clone();
        want.sort();
        assert_eq!(new.0.compaction.sources, want);
        assert_eq!(new.0.stats.num_samples, 3 * 3 * 240);
        assert_eq!(block_labels(&new.0)["replica"], "a");
        for (m, marked) in &metas {
            assert_eq!(*marked, a.contains(&m.ulid), "{}", m.ulid);
        }
        assert!(metas.iter().any(|(m, marked)| m.ulid == b && !marked));
        // Nothing more to do; with no delay the marked blocks go.
        let r2 = run_once(&bucket, &opts).await.unwrap();
        assert_eq!((r2.compactions, r2.deleted), (0, 0));
        let now = CompactOptions {
            delete_delay_ms: 0,
            ..opts.clone()
        };
        let r3 = run_once(&bucket, &now).await.unwrap();
        assert_eq!(r3.deleted, 3);
        assert_eq!(bucket.metas().await.unwrap().len(), 3);
        // The merged block reads back every sample.
        let m = Arc::new(
            bucket
                .open_block(&r.blocks_written[0], &pool)
                .await
                .unwrap(),
        );
        let all: roaring::RoaringBitmap = (0..3).collect();
        let got = m.read(&all, i64::MIN, i64::MAX).await.unwrap();
        assert_eq!(got.iter().map(|(_, v)| v.len()).sum::<usize>(), 3 * 3 * 240);
    }
}
