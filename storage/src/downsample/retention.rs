//! Time retention of raw and downsampled blocks, with the per-series retention rules
//! (`storage.tsdb.retention_rules`, first match wins).
//!
//! Retention is block-granular, as Prometheus's: a series' samples in a block go when the
//! series' cutoff at that resolution (newest data − its retention) has passed the block's
//! newest sample. Per block and resolution the series fall into the groups of the rules
//! (and the default group); a block whose every group has expired is deleted, a block
//! where some groups expired is rewritten once without those series (what is kept is
//! copied as it is, and the block keeps its sources, so it is not downsampled again), and
//! a block where none expired is left alone.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use roaring::RoaringBitmap;

use super::AggregateWriter;
use crate::block::{Block, Tombstone};
use crate::db::Db;
use crate::error::{Result, StorageError};

/// What retention does to one block.
#[derive(Debug, PartialEq)]
pub(crate) enum Verdict {
    /// Nothing expired.
    Keep,
    /// Everything expired.
    Drop,
    /// These series expired.
    Without(RoaringBitmap),
}

impl Db {
    /// What the time retention and the rules make of `b` (resolution `res`, 0 raw) with
    /// newest data at `reference`.
    pub(crate) fn verdict(&self, b: &Block, res: i64, reference: i64) -> Verdict {
        let cutoff = |ret: Option<i64>| ret.map_or(i64::MIN, |r| reference.saturating_sub(r));
        let expired = |c: i64| b.meta.max_time <= c;
        let default = cutoff(self.opts.retention_at(res));
        if self.opts.retention_rules.is_empty() {
            return if expired(default) {
                Verdict::Drop
            } else {
                Verdict::Keep
            };
        }
        let all: RoaringBitmap = (0..b.series().len() as u32).collect();
        let mut rest = all.clone();
        let mut gone = RoaringBitmap::new();
        for rule in &self.opts.retention_rules {
            let mut ids = RoaringBitmap::new();
            for sel in &rule.selectors {
                ids |= b.select(sel);
            }
            ids &= &rest;
            if ids.is_empty() {
                continue;
            }
            rest -= &ids;
            let ret = rule.at(res).or(self.opts.retention_at(res));
            if expired(cutoff(ret)) {
                gone |= ids;
            }
        }
        if !rest.is_empty() && expired(default) {
            gone |= rest;
        }
        if gone.is_empty() {
            Verdict::Keep
        } else if gone.len() == all.len() {
            Verdict::Drop
        } else {
            Verdict::Without(gone)
        }
    }

    /// Applies the time retention and the rules to raw and downsampled blocks.
    pub(crate) async fn apply_time_retention(&self) -> Result<()> {
        let reference = self.retention_reference();
        let mut drop: Vec<Arc<Block>> = Vec::new();
        for b in self.blocks() {
            // Not before it is downsampled (the newest data may have moved since the
            // downsampling pass of this maintenance).
            if self.awaits_downsampling(&b, reference) {
                continue;
            }
            match self.verdict(&b, 0, reference) {
                Verdict::Keep => {}
                Verdict::Drop => drop.push(b),
                Verdict::Without(ids) => {
                    let t: Vec<Tombstone> = ids
                        .iter()
                        .map(|id| Tombstone {
                            series_id: id,
                            min_time: i64::MIN,
                            max_time: i64::MAX,
                        })
                        .collect();
                    tracing::info!(block = %b.meta.ulid, series = ids.len(), "removing series past their retention rule");
                    b.add_tombstones(t).await?;
                    self.merge(std::slice::from_ref(&b)).await?;
                    self.metrics
                        .retention_rule_rewrites
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.drop_blocks(&drop).await?;
        let mut drop: Vec<Arc<Block>> = Vec::new();
        for b in self.downsampled_blocks() {
            match self.verdict(&b, b.meta.resolution, reference) {
                Verdict::Keep => {}
                Verdict::Drop => drop.push(b),
                Verdict::Without(ids) => {
                    self.rewrite_downsampled(&b, &ids).await?;
                    self.metrics
                        .retention_rule_rewrites
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.publish_downsampled(Vec::new(), &drop);
        for b in &drop {
            tracing::info!(block = %b.meta.ulid, resolution = super::resolution_name(b.meta.resolution), "downsampled block removed by retention");
            b.delete().await?;
            self.metrics
                .blocks_removed_by_retention
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Removes raw blocks (retention).
    pub(crate) async fn drop_blocks(&self, drop: &[Arc<Block>]) -> Result<()> {
        // Not before they are in the bucket, when there is one.
        let drop: Vec<Arc<Block>> = drop
            .iter()
            .filter(|b| self.may_remove(b))
            .cloned()
            .collect();
        if drop.is_empty() {
            return Ok(());
        }
        self.publish(Vec::new(), &drop);
        for b in &drop {
            tracing::info!(block = %b.meta.ulid, "block removed by retention");
            b.delete().await?;
            self.metrics
                .blocks_removed_by_retention
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Rewrites a downsampled block without the series `gone`.
    async fn rewrite_downsampled(&self, b: &Arc<Block>, gone: &RoaringBitmap) -> Result<()> {
        let keep: RoaringBitmap = (0..b.series().len() as u32)
            .filter(|id| !gone.contains(*id))
            .collect();
        let read = b
            .read_aggregates(&keep, i64::MIN, i64::MAX, &crate::read::Unbounded)
            .await?;
        let (res, range) = (b.meta.resolution, (b.meta.min_time, b.meta.max_time));
        let (sources, hists) = (
            b.meta.compaction.sources.clone(),
            b.meta.stats.num_histograms,
        );
        let series = b.clone();
        let enc = tokio::task::spawn_blocking(move || {
            let mut w = AggregateWriter::new()?;
            for (id, aggs) in read {
                w.add(series.series()[id as usize].labels.clone(), &aggs)?;
            }
            w.finish(res, range, sources)
        })
        .await
        .map_err(|e| StorageError::Task(e.to_string()))??;
        let new = match enc {
            Some(mut enc) => {
                enc.meta.stats.num_histograms = hists;
                vec![self.write_downsampled(enc).await?]
            }
            None => Vec::new(),
        };
        tracing::info!(block = %b.meta.ulid, series = gone.len(), "removed series past their retention rule from a downsampled block");
        self.publish_downsampled(new, std::slice::from_ref(b));
        b.delete().await
    }
}
