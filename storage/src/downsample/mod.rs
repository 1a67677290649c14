//! Downsampling (issue #27): once a raw block's newest sample is older than
//! `storage.tsdb.downsample.after` (relative to the newest data), it gains 5-minute and
//! 1-hour resolutions: blocks under `downsampled/5m/<ULID>/` and `downsampled/1h/<ULID>/`,
//! plain Parquet like raw blocks (`series.parquet` identical, `samples.parquet` one row per
//! series and window with its [`Aggregate`]s, see [`writer`]), each covering the raw
//! samples of the blocks it lists in `compaction.sources`.
//!
//! - **Made once.** A raw block is downsampled at a resolution unless every one of its
//!   sources is already covered there (a compaction of downsampled blocks is not
//!   downsampled again). A block that covers more (it merged out-of-order data into
//!   downsampled ones) replaces the downsampled blocks of its sources.
//! - **Read** ([`Db::select_aggregates`]): a window's aggregates come from the downsampled
//!   blocks where they cover the time, and are made from the raw samples (head and raw
//!   blocks) elsewhere; a window cut by a block boundary is folded back together. The
//!   engine reads aggregates for `rate`, `increase`, `count/sum/min/max_over_time` over
//!   ranges made of whole windows ([`Fold`]).
//! - **Histograms** are not downsampled: a read whose downsampled blocks were made from
//!   blocks holding histograms, or whose raw part meets a histogram, says so (`None`) and
//!   the engine reads raw data.
//! - **Retention**: each resolution has its own (`retention_5m`, `retention_1h`; by
//!   default the raw retention), and retention rules per series (see
//!   [`crate::options::RetentionRule`]) apply to raw and downsampled blocks alike.
//!
//! Deletions (`delete_series`) tombstone the downsampled windows that held a deleted
//! sample. Size-based retention counts and removes raw blocks only.

mod aggr;
pub mod compact;
pub mod retention;
pub mod writer;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use object_store::path::Path;
use roaring::RoaringBitmap;

pub use aggr::{Aggregate, Fold, aggregate, merge_runs, window_end};
pub use writer::{AggregateWriter, aggregates_schema};

use crate::block::Block;
use crate::db::Db;
use crate::error::{Result, StorageError};
use crate::labels::Labels;
use crate::matcher::Matcher;
use crate::read::{ReadCharge, SeriesRange};

/// Five minutes (ms).
pub const RES_5M: i64 = 300_000;
/// One hour (ms).
pub const RES_1H: i64 = 3_600_000;
/// The resolutions, finest first.
pub const RESOLUTIONS: [i64; 2] = [RES_5M, RES_1H];

/// Series listed per downsampling batch.
pub(crate) const BATCH: usize = 512;

/// The directory name of a resolution.
pub fn resolution_name(res: i64) -> &'static str {
    if res == RES_1H { "1h" } else { "5m" }
}

/// The object-store prefix of a resolution's blocks.
pub(crate) fn root(res: i64) -> Path {
    Path::from(format!("downsampled/{}", resolution_name(res)))
}

/// One series' aggregates at a resolution, as read.
#[derive(Debug, Clone)]
pub struct SeriesAggregates {
    /// The series.
    pub labels: Labels,
    /// Its windows, by end.
    pub windows: Vec<Aggregate>,
}

impl Db {
    /// The downsampled blocks, by resolution then time.
    pub fn downsampled_blocks(&self) -> Vec<Arc<Block>> {
        self.downsampled.read().clone()
    }

    /// The downsampled blocks of `res` overlapping `[mint, maxt]`.
    fn downsampled_at(&self, res: i64, mint: i64, maxt: i64) -> Vec<Arc<Block>> {
        self.downsampled
            .read()
            .iter()
            .filter(|b| b.meta.resolution == res && b.overlaps(mint, maxt))
            .cloned()
            .collect()
    }

    /// Whether downsampled blocks of `res` hold any of `[mint, maxt]`.
    pub fn has_downsampled(&self, res: i64, mint: i64, maxt: i64) -> bool {
        // Downsampled windows of replicas cannot be merged as raw samples are: raw reads.
        !self.replicas.active() && !self.downsampled_at(res, mint, maxt).is_empty()
    }

    /// The window ends at `res` of all data, raw and downsampled at `res`.
    pub fn time_span_at(&self, res: i64) -> Option<(i64, i64)> {
        let mut span = self.time_span();
        for b in self
            .downsampled
            .read()
            .iter()
            .filter(|b| b.meta.resolution == res)
        {
            let (lo, hi) = (b.meta.min_time, b.meta.max_time - 1);
            span = Some(span.map_or((lo, hi), |(a, z)| (a.min(lo), z.max(hi))));
        }
        span.map(|(lo, hi)| (window_end(lo, res), window_end(hi, res)))
    }

    /// The aggregates at resolution `res` of the series matching `matchers` (in `range`)
    /// for the windows ending in `[first_end, last_end]` (multiples of `res`), sorted by
    /// labels: from the downsampled blocks where they cover the time, from raw samples
    /// elsewhere. `None` when histograms are involved (the caller reads raw data), unless
    /// `skip_histograms`: then histogram samples are left out.
    pub async fn select_aggregates(
        &self,
        matchers: &[Matcher],
        (first_end, last_end): (i64, i64),
        res: i64,
        range: Option<&SeriesRange>,
        charge: &dyn ReadCharge,
        skip_histograms: bool,
    ) -> Result<Option<Vec<SeriesAggregates>>> {
        // The raw samples these windows hold.
        let (lo, hi) = (first_end.saturating_sub(res).saturating_add(1), last_end);
        let blocks = self.downsampled_at(res, lo, hi);
        if !skip_histograms && blocks.iter().any(|b| b.meta.stats.num_histograms > 0) {
            return Ok(None);
        }
        let mut runs: BTreeMap<Labels, Vec<Vec<Aggregate>>> = BTreeMap::new();
        let mut covered: Vec<(i64, i64)> = Vec::new();
        for b in &blocks {
            covered.push((b.meta.min_time, b.meta.max_time - 1));
            let mut ids = b.select(matchers);
            if let Some(r) = range {
                ids = ids
                    .iter()
                    .filter(|id| r.contains(&b.series()[*id as usize].labels))
                    .collect::<RoaringBitmap>();
            }
            for (id, w) in b.read_aggregates(&ids, first_end, last_end, charge).await? {
                runs.entry(b.series()[id as usize].labels.clone())
                    .or_default()
                    .push(w);
            }
        }
        for (a, z) in uncovered(lo, hi, &mut covered) {
            for s in self.select_charged(matchers, a, z, range, charge).await? {
                if !s.histograms.is_empty() && !skip_histograms {
                    return Ok(None);
                }
                let w = aggregate(&s.samples, res);
                if !w.is_empty() {
                    runs.entry(s.labels).or_default().push(w);
                }
            }
        }
        Ok(Some(
            runs.into_iter()
                .map(|(labels, rs)| SeriesAggregates {
                    labels,
                    windows: rs.into_iter().fold(Vec::new(), merge_runs),
                })
                .collect(),
        ))
    }

    /// Whether downsampling still owes `b` a downsampled block: downsampling is on, `b` is
    /// old enough and some resolution does not cover all its sources yet. Retention keeps
    /// such a block until it is downsampled.
    pub(crate) fn awaits_downsampling(&self, b: &Block, reference: i64) -> bool {
        match &self.opts.downsample {
            // Not old enough yet: raw retention shorter than `after` is warned about at
            // start; such blocks go by retention undownsampled.
            Some(opts) if b.meta.max_time <= reference.saturating_sub(opts.after_ms) => {
                !self.uncovered_at(b).is_empty()
            }
            _ => false,
        }
    }

    /// The resolutions whose downsampled blocks do not cover all of `b`'s sources yet.
    fn uncovered_at(&self, b: &Block) -> Vec<i64> {
        let ds = self.downsampled.read();
        RESOLUTIONS
            .into_iter()
            .filter(|&res| {
                let done: BTreeSet<&str> = ds
                    .iter()
                    .filter(|d| d.meta.resolution == res)
                    .flat_map(|d| d.meta.compaction.sources.iter().map(String::as_str))
                    .collect();
                !b.meta
                    .compaction
                    .sources
                    .iter()
                    .all(|s| done.contains(s.as_str()))
            })
            .collect()
    }

    /// Downsamples every raw block old enough that is not yet covered at each resolution,
    /// then merges the downsampled blocks of complete windows ([`compact`]).
    pub(crate) async fn downsample(&self) -> Result<()> {
        let Some(opts) = self.opts.downsample.clone() else {
            return Ok(());
        };
        self.downsample_blocks(&opts).await?;
        self.compact_downsampled(opts.after_ms).await
    }

    async fn downsample_blocks(&self, opts: &crate::options::DownsampleOptions) -> Result<()> {
        let reference = self.retention_reference();
        for b in self.blocks() {
            if b.meta.max_time > reference.saturating_sub(opts.after_ms) {
                continue;
            }
            let sources: BTreeSet<&str> = b
                .meta
                .compaction
                .sources
                .iter()
                .map(String::as_str)
                .collect();
            for res in self.uncovered_at(&b) {
                let made = self.downsample_block(&b, res).await?;
                // Blocks of this block's sources are superseded by the new one.
                let old: Vec<Arc<Block>> = self
                    .downsampled
                    .read()
                    .iter()
                    .filter(|d| {
                        d.meta.resolution == res
                            && d.meta
                                .compaction
                                .sources
                                .iter()
                                .all(|s| sources.contains(s.as_str()))
                    })
                    .cloned()
                    .collect();
                self.publish_downsampled(made.into_iter().collect(), &old);
                for d in &old {
                    d.delete().await?;
                }
            }
        }
        Ok(())
    }

    /// Writes the downsampled block of `b` at `res`.
    async fn downsample_block(&self, b: &Arc<Block>, res: i64) -> Result<Option<Arc<Block>>> {
        let mut w = AggregateWriter::new()?;
        let n = b.series().len() as u32;
        let mut start = 0u32;
        while start < n {
            let end = (start + BATCH as u32).min(n);
            let ids: RoaringBitmap = (start..end).collect();
            let read = b.read(&ids, i64::MIN, i64::MAX).await?;
            w = tokio::task::spawn_blocking({
                let b = b.clone();
                move || -> Result<AggregateWriter> {
                    for (id, samples) in read {
                        let labels = b.series()[id as usize].labels.clone();
                        w.add(labels, &aggregate(&samples, res))?;
                    }
                    Ok(w)
                }
            })
            .await
            .map_err(|e| StorageError::Task(e.to_string()))??;
            start = end;
        }
        let range = (b.meta.min_time, b.meta.max_time);
        let sources = b.meta.compaction.sources.clone();
        let hists = b.meta.stats.num_histograms;
        let enc = tokio::task::spawn_blocking(move || w.finish(res, range, sources))
            .await
            .map_err(|e| StorageError::Task(e.to_string()))??;
        let Some(mut enc) = enc else {
            return Ok(None);
        };
        // Marks what was left out, so reads of this time go to raw data for histograms.
        enc.meta.stats.num_histograms = hists;
        let d = self.write_downsampled(enc).await?;
        tracing::info!(block = %b.meta.ulid, downsampled = %d.meta.ulid, resolution = resolution_name(res), "downsampled block");
        self.metrics
            .downsampled_blocks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Some(d))
    }

    /// Writes an encoded downsampled block (resolution from its meta) and opens it,
    /// durable before it is published.
    pub(crate) async fn write_downsampled(
        &self,
        enc: crate::block::EncodedBlock,
    ) -> Result<Arc<Block>> {
        let res = enc.meta.resolution;
        let d = Block::write(
            self.store.clone(),
            &root(res),
            enc,
            self.pool(),
            Some(&self.opts.dir),
        )
        .await?;
        tokio::task::block_in_place(|| d.fsync_local(&self.opts.dir))?;
        Ok(Arc::new(d))
    }

    /// Replaces `old` downsampled blocks by `new` ones.
    pub(crate) fn publish_downsampled(&self, new: Vec<Arc<Block>>, old: &[Arc<Block>]) {
        let mut d = self.downsampled.write();
        d.retain(|x| !old.iter().any(|o| Arc::ptr_eq(o, x)));
        d.extend(new);
        d.sort_by_key(|x| (x.meta.resolution, x.meta.min_time, x.meta.max_time));
    }
}

/// The parts of `[lo, hi]` outside the `covered` intervals (inclusive bounds).
fn uncovered(lo: i64, hi: i64, covered: &mut [(i64, i64)]) -> Vec<(i64, i64)> {
    covered.sort_unstable();
    let mut out = Vec::new();
    let mut at = lo;
    for &(a, z) in covered.iter() {
        if z < at {
            continue;
        }
        if a > hi {
            break;
        }
        if a > at {
            out.push((at, a - 1));
        }
        at = at.max(z.saturating_add(1));
        if at > hi {
            return out;
        }
    }
    if at <= hi {
        out.push((at, hi));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn uncovered_parts() {
        assert_eq!(uncovered(0, 100, &mut []), vec![(0, 100)]);
        assert_eq!(
            uncovered(0, 100, &mut [(50, 60), (10, 20)]),
            vec![(0, 9), (21, 49), (61, 100)]
        );
        assert_eq!(uncovered(0, 100, &mut [(-5, 200)]), vec![]);
        assert_eq!(uncovered(0, 100, &mut [(0, 40), (41, 100)]), vec![]);
    }
}
