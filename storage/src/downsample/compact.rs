//! Compaction of downsampled blocks: a downsampled block is made per raw block, and with
//! a short raw retention raw blocks stay small (2–6 hours), so the 1h resolution would be
//! hundreds of blocks of two windows per series. Blocks of one resolution whose raw time
//! lies in one aligned window ([`span`]: 1 day at 5m, 10 days at 1h) are merged into one
//! once that window is wholly older than `downsample.after` (no more downsampled blocks
//! can join it), streaming 512 series at a time; a window cut by two blocks folds back
//! together ([`merge_runs`]). The merged block lists every source, so coverage is kept.

use std::collections::BTreeMap;
use std::sync::Arc;

use roaring::RoaringBitmap;

use super::{Aggregate, AggregateWriter, BATCH, RES_1H, merge_runs, resolution_name};
use crate::block::Block;
use crate::db::Db;
use crate::error::{Result, StorageError};
use crate::labels::Labels;

/// The aligned window downsampled blocks of `res` are merged within.
pub fn span(res: i64) -> i64 {
    if res == RES_1H {
        10 * 86_400_000
    } else {
        86_400_000
    }
}

impl Db {
    /// Merges the downsampled blocks of each complete aligned window.
    pub(crate) async fn compact_downsampled(&self, after_ms: i64) -> Result<()> {
        let horizon = self.retention_reference().saturating_sub(after_ms);
        loop {
            let blocks = self.downsampled_blocks();
            let mut groups: BTreeMap<(i64, i64), Vec<Arc<Block>>> = BTreeMap::new();
            for b in blocks {
                let w = span(b.meta.resolution);
                let k = b.meta.min_time.div_euclid(w);
                if (b.meta.max_time - 1).div_euclid(w) == k {
                    groups.entry((b.meta.resolution, k)).or_default().push(b);
                }
            }
            let next = groups
                .into_iter()
                .find(|((res, k), g)| g.len() > 1 && (k + 1).saturating_mul(span(*res)) <= horizon);
            let Some(((res, _), group)) = next else {
                return Ok(());
            };
            self.merge_downsampled(res, &group).await?;
        }
    }

    /// Merges `group` (one resolution) into one block.
    async fn merge_downsampled(&self, res: i64, group: &[Arc<Block>]) -> Result<()> {
        let mut all: BTreeMap<Labels, Vec<(usize, u32)>> = BTreeMap::new();
        for (bi, b) in group.iter().enumerate() {
            for (id, s) in b.series().iter().enumerate() {
                all.entry(s.labels.clone())
                    .or_default()
                    .push((bi, id as u32));
            }
        }
        let entries: Vec<(Labels, Vec<(usize, u32)>)> = all.into_iter().collect();
        let mut w = AggregateWriter::new()?;
        for batch in entries.chunks(BATCH) {
            let mut per_block = vec![RoaringBitmap::new(); group.len()];
            for (_, srcs) in batch {
                for (bi, id) in srcs {
                    per_block[*bi].insert(*id);
                }
            }
            let mut read: Vec<std::collections::HashMap<u32, Vec<Aggregate>>> = Vec::new();
            for (bi, ids) in per_block.iter().enumerate() {
                let r = group[bi]
                    .read_aggregates(ids, i64::MIN, i64::MAX, &crate::read::Unbounded)
                    .await?;
                read.push(r.into_iter().collect());
            }
            let batch = batch.to_vec();
            w = tokio::task::spawn_blocking(move || -> Result<AggregateWriter> {
                for (labels, srcs) in batch {
                    let mut windows = Vec::new();
                    for (bi, id) in srcs {
                        if let Some(x) = read[bi].remove(&id) {
                            windows = merge_runs(windows, x);
                        }
                    }
                    w.add(labels, &windows)?;
                }
                Ok(w)
            })
            .await
            .map_err(|e| StorageError::Task(e.to_string()))??;
        }
        let range = (
            group.iter().map(|b| b.meta.min_time).min().unwrap_or(0),
            group.iter().map(|b| b.meta.max_time).max().unwrap_or(0),
        );
        let mut sources: Vec<String> = group
            .iter()
            .flat_map(|b| b.meta.compaction.sources.iter().cloned())
            .collect();
        sources.sort();
        sources.dedup();
        let hists: u64 = group.iter().map(|b| b.meta.stats.num_histograms).sum();
        let enc = tokio::task::spawn_blocking(move || w.finish(res, range, sources))
            .await
            .map_err(|e| StorageError::Task(e.to_string()))??;
        let new = match enc {
            Some(mut enc) => {
                enc.meta.stats.num_histograms = hists;
                enc.meta.compaction.level = group
                    .iter()
                    .map(|b| b.meta.compaction.level)
                    .max()
                    .unwrap_or(1)
                    + 1;
                vec![self.write_downsampled(enc).await?]
            }
            None => Vec::new(),
        };
        tracing::info!(sources = group.len(), resolution = resolution_name(res), new = ?new.iter().map(|b| &b.meta.ulid).collect::<Vec<_>>(), "compacted downsampled blocks");
        self.publish_downsampled(new, group);
        for b in group {
            b.delete().await?;
        }
        Ok(())
    }
}
