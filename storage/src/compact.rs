//! Compaction: merges overlapping blocks, then adjacent blocks into larger aligned ranges
//! (2h → 6h → 18h → … up to the maximum block range), applying tombstones. Merging streams
//! series in label order in batches, so memory stays bounded by the batch, not the blocks.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use roaring::RoaringBitmap;

use object_store::ObjectStore;
use object_store::path::Path;

use crate::block::histograms::HistSample;
use crate::block::meta::ThanosMeta;
use crate::block::{Block, BlockWriter};
use crate::db::Db;
use crate::error::{Result, StorageError};
use crate::labels::{LabelPool, Labels};

/// Series merged per batch.
const MERGE_BATCH: usize = 512;

impl Db {
    /// Runs compaction until nothing is left to merge.
    pub(crate) async fn compact(&self) -> Result<()> {
        while let Some(group) = self.plan() {
            if let Err(e) = self.merge(&group).await {
                self.metrics
                    .compaction_failures
                    .fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(())
    }

    /// The next set of blocks to merge, if any.
    fn plan(&self) -> Option<Vec<Arc<Block>>> {
        let newest = self.head.max_time().saturating_add(1);
        plan(
            &self.blocks(),
            self.opts.block_range_ms,
            self.opts.max_block_range_ms(),
            newest,
        )
    }

    /// Merges `group` into one block (or none, when tombstones removed everything) and
    /// replaces the group by it.
    pub(crate) async fn merge(&self, group: &[Arc<Block>]) -> Result<()> {
        let out = Output {
            store: self.store.clone(),
            root: self.blocks_root.clone(),
            local: Some(self.opts.dir.clone()),
            thanos: None,
        };
        let new = merge_blocks(group, &out, self.pool()).await?;
        let new: Vec<Arc<Block>> = new.into_iter().map(Arc::new).collect();
        tracing::info!(sources = group.len(), new = ?new.iter().map(|b| &b.meta.ulid).collect::<Vec<_>>(), "compacted blocks");
        self.publish(new, group);
        for b in group {
            b.delete().await?;
        }
        self.metrics.compactions.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Rewrites every block that has tombstones, dropping the deleted samples.
    pub async fn clean_tombstones(&self) -> Result<()> {
        let _m = self.maintenance.lock().await;
        for b in self.blocks() {
            if !b.tombstones().is_empty() {
                self.merge(std::slice::from_ref(&b)).await?;
            }
        }
        Ok(())
    }
}

/// Where a merge writes its block.
pub(crate) struct Output {
    pub(crate) store: Arc<dyn ObjectStore>,
    /// The directory blocks live under (`blocks` locally, the bucket's root remotely).
    pub(crate) root: Path,
    /// The data directory `store` is rooted at, when it is the local filesystem (the new
    /// block is then fsynced and read from its file).
    pub(crate) local: Option<std::path::PathBuf>,
    /// The `thanos` section of the new block's `meta.json` (bucket blocks).
    pub(crate) thanos: Option<ThanosMeta>,
}

/// The next set of `blocks` (sorted by time) to merge, if any: a run of overlapping
/// blocks first, then the blocks inside one aligned window of the next range (2h → 6h →
/// 18h … up to `max_range`) once data newer than the window exists (`newest`, exclusive,
/// beside the blocks' own ends).
pub(crate) fn plan(
    blocks: &[Arc<Block>],
    block_range: i64,
    max_range: i64,
    newest: i64,
) -> Option<Vec<Arc<Block>>> {
    if blocks.len() < 2 {
        return None;
    }
    // Overlapping blocks first (out-of-order data, replays): merge each overlap run.
    let mut run: Vec<Arc<Block>> = vec![blocks[0].clone()];
    let mut run_max = blocks[0].meta.max_time;
    for b in &blocks[1..] {
        if b.meta.min_time < run_max {
            run.push(b.clone());
            run_max = run_max.max(b.meta.max_time);
        } else {
            if run.len() > 1 {
                return Some(run);
            }
            run = vec![b.clone()];
            run_max = b.meta.max_time;
        }
    }
    if run.len() > 1 {
        return Some(run);
    }
    // Then level by level: blocks inside one aligned window of the next range.
    let newest = blocks
        .iter()
        .map(|b| b.meta.max_time)
        .chain(std::iter::once(newest))
        .max()?;
    let mut range = block_range.saturating_mul(3);
    while range <= max_range {
        let mut windows: BTreeMap<i64, Vec<Arc<Block>>> = BTreeMap::new();
        for b in blocks {
            let w = b.meta.min_time.div_euclid(range);
            if (b.meta.max_time - 1).div_euclid(range) == w {
                windows.entry(w).or_default().push(b.clone());
            }
        }
        for (w, group) in windows {
            let end = w.saturating_add(1).saturating_mul(range);
            // Only windows that newer data has already passed.
            if group.len() > 1 && end <= newest {
                return Some(group);
            }
        }
        range = range.saturating_mul(3);
    }
    None
}

/// Merges `group` into one block written to `out` (none when tombstones removed
/// everything). Series stream in label order in batches; on a timestamp held by several
/// blocks the oldest write (lowest ULID) wins.
pub(crate) async fn merge_blocks(
    group: &[Arc<Block>],
    out: &Output,
    pool: &LabelPool,
) -> Result<Option<Block>> {
    // Older blocks (by ULID: write order) take precedence on equal timestamps.
    let mut order: Vec<usize> = (0..group.len()).collect();
    order.sort_by(|a, b| group[*a].meta.ulid.cmp(&group[*b].meta.ulid));
    // Union of series in label order → per source block, its local id.
    let mut all: BTreeMap<Labels, Vec<(usize, u32)>> = BTreeMap::new();
    for &bi in &order {
        let b = &group[bi];
        for (id, s) in b.series().iter().enumerate() {
            all.entry(s.labels.clone())
                .or_default()
                .push((bi, id as u32));
        }
    }
    let entries: Vec<(Labels, Vec<(usize, u32)>)> = all.into_iter().collect();
    let mut writer = BlockWriter::new()?;
    for batch in entries.chunks(MERGE_BATCH) {
        let mut per_block: Vec<RoaringBitmap> = vec![RoaringBitmap::new(); group.len()];
        for (_, srcs) in batch {
            for (bi, id) in srcs {
                per_block[*bi].insert(*id);
            }
        }
        let mut read: Vec<std::collections::HashMap<u32, Vec<(i64, f64)>>> = Vec::new();
        let mut read_h: Vec<std::collections::HashMap<u32, Vec<HistSample>>> = Vec::new();
        for (bi, ids) in per_block.iter().enumerate() {
            let v = group[bi].read(ids, i64::MIN, i64::MAX).await?;
            read.push(v.into_iter().collect());
            let h = group[bi]
                .read_histograms(ids, i64::MIN, i64::MAX, &crate::read::Unbounded)
                .await?;
            read_h.push(h.into_iter().collect());
        }
        let batch = batch.to_vec();
        writer = tokio::task::spawn_blocking(move || -> Result<BlockWriter> {
            for (labels, srcs) in batch {
                // Sources in write order (ULID): the first sample of a time wins,
                // of either kind.
                let mut runs = Vec::new();
                let mut hruns = Vec::new();
                for (seq, (bi, id)) in srcs.iter().enumerate() {
                    if let Some(s) = read[*bi].remove(id) {
                        runs.push((seq as u32, s));
                    }
                    if let Some(h) = read_h[*bi].remove(id) {
                        hruns.push((seq as u32, h));
                    }
                }
                let (samples, hists) = crate::read::merge_kinds(runs, hruns);
                writer.add_series(labels, &samples, &hists)?;
            }
            Ok(writer)
        })
        .await
        .map_err(|e| StorageError::Task(e.to_string()))??;
    }
    let level = group
        .iter()
        .map(|b| b.meta.compaction.level)
        .max()
        .unwrap_or(1)
        + 1;
    let mut sources: Vec<String> = group
        .iter()
        .flat_map(|b| b.meta.compaction.sources.iter().cloned())
        .collect();
    sources.sort();
    sources.dedup();
    let encoded = tokio::task::spawn_blocking(move || writer.finish(level, sources))
        .await
        .map_err(|e| StorageError::Task(e.to_string()))??;
    let Some(mut enc) = encoded else {
        return Ok(None);
    };
    enc.meta.thanos = out.thanos.clone();
    let b = Block::write(
        out.store.clone(),
        &out.root,
        enc,
        pool,
        out.local.as_deref(),
    )
    .await?;
    if let Some(dir) = &out.local {
        // Durable before its sources are deleted.
        tokio::task::block_in_place(|| b.fsync_local(dir))?;
    }
    Ok(Some(b))
}
