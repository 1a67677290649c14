//! The read path: the series a set of matchers selects, with their samples in a time range,
//! merged from the head and the blocks and returned in label order.
//!
//! A selection can be cut into label ranges ([`SeriesRange`]) that are read independently
//! (and concurrently): the query engine splits a large selection into parts so that the
//! Parquet decoding and its kernels run on every core and only one part's raw samples are
//! in memory per core.

use std::sync::Arc;

/// A head series' labels, float samples and histogram samples, as read.
type HeadSeries = (Labels, Vec<(i64, f64)>, Vec<HistSample>);

use datafusion::common::HashMap;
use roaring::RoaringBitmap;

use crate::block::Block;
use crate::db::{Db, SeriesSamples};
use crate::error::{Result, StorageError};
use crate::labels::Labels;
use crate::matcher::Matcher;
use crate::series::HistSample;

/// A bound on what a read may decode, asked before each run of samples is kept (a run is
/// at most one Parquet batch or one head series), so a read over too much data stops
/// before it holds it. A refusal ends the read with [`StorageError::ReadRefused`].
pub trait ReadCharge: Sync {
    /// Room for `samples` more samples: whether the read may keep them.
    fn charge(&self, samples: usize) -> bool;
}

/// No bound: every sample is kept.
pub struct Unbounded;

impl ReadCharge for Unbounded {
    fn charge(&self, _samples: usize) -> bool {
        true
    }
}

/// A range of label sets in [`Labels`] order: after `after` (exclusive) up to `upto`
/// (inclusive); an absent bound is open. The ranges of one [`SeriesRange::split`] tile the
/// whole order, so a series that appears between the split and the read is in exactly one.
/// `keep`, when set, narrows the range to the series it accepts (a distributed query's
/// share of the series): such series are skipped before their samples are read.
#[derive(Clone, Debug, Default)]
pub struct SeriesRange {
    pub after: Option<Labels>,
    pub upto: Option<Labels>,
    pub keep: Option<SeriesFilter>,
}

/// A predicate on series labels (see [`SeriesRange::keep`]).
#[derive(Clone)]
pub struct SeriesFilter(pub std::sync::Arc<dyn Fn(&Labels) -> bool + Send + Sync>);

impl std::fmt::Debug for SeriesFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SeriesFilter")
    }
}

impl SeriesRange {
    /// Whether `l` lies in the range.
    pub fn contains(&self, l: &Labels) -> bool {
        self.in_bounds(l) && self.keeps(l)
    }

    /// Whether `l` lies between the bounds (whatever `keep` says).
    pub fn in_bounds(&self, l: &Labels) -> bool {
        self.after.as_ref().is_none_or(|a| l > a) && self.upto.as_ref().is_none_or(|u| l <= u)
    }

    /// Whether `keep` accepts `l` (or there is none).
    pub fn keeps(&self, l: &Labels) -> bool {
        self.keep.as_ref().is_none_or(|k| (k.0)(l))
    }

    /// Cuts the order into at most `parts` ranges holding about equal shares of `labels`
    /// (sorted).
    pub fn split(labels: &[Labels], parts: usize) -> Vec<SeriesRange> {
        let parts = parts.clamp(1, labels.len().max(1));
        let mut out: Vec<SeriesRange> = Vec::with_capacity(parts);
        for k in 0..parts {
            let (a, b) = (k * labels.len() / parts, (k + 1) * labels.len() / parts);
            if a == b {
                continue;
            }
            out.push(SeriesRange {
                after: out.last().and_then(|r| r.upto.clone()),
                upto: Some(labels[b - 1].clone()),
                keep: None,
            });
        }
        if let Some(last) = out.last_mut() {
            last.upto = None;
        }
        out
    }
}

impl Db {
    /// Series matching `matchers` with their samples in `[mint, maxt]`, from head and
    /// blocks merged (a timestamp present in several places is returned once, the value
    /// written first winning), sorted by labels.
    pub async fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<SeriesSamples>> {
        self.select_in(matchers, mint, maxt, None).await
    }

    /// As [`Db::select`], for the series whose labels lie in `range` only.
    pub async fn select_in(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        range: Option<&SeriesRange>,
    ) -> Result<Vec<SeriesSamples>> {
        self.select_charged(matchers, mint, maxt, range, &Unbounded)
            .await
    }

    /// As [`Db::select_in`], asking `charge` for room before keeping each run of samples;
    /// series of the external source (remote read), if any, merged in.
    pub async fn select_charged(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        range: Option<&SeriesRange>,
        charge: &dyn ReadCharge,
    ) -> Result<Vec<SeriesSamples>> {
        let mut out = self
            .select_local(matchers, mint, maxt, range, charge)
            .await?;
        if let Some(ext) = self.external() {
            let mut got = ext
                .select(matchers, mint, maxt, self.time_span().map(|s| s.0))
                .await;
            if self.replicas.active() {
                got.retain(|s| self.replicas.in_range(range, &s.labels));
                crate::external::merge(&mut out, got, None, charge)?;
            } else {
                crate::external::merge(&mut out, got, range, charge)?;
            }
        }
        Ok(self.replicas.merge(out))
    }

    /// The local part of [`Db::select_charged`]: head and blocks.
    async fn select_local(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        range: Option<&SeriesRange>,
        charge: &dyn ReadCharge,
    ) -> Result<Vec<SeriesSamples>> {
        // The head is read first: a cut running meanwhile moves samples from the head into
        // a block published before the head is truncated, so reading blocks second cannot
        // miss them. Precedence on equal timestamps is still blocks (oldest ULID first),
        // then head: the first sample of a timestamp wins.
        let mut head: Vec<HeadSeries> = Vec::new();
        for s in self.head.select(matchers) {
            if !self.replicas.in_range(range, &s.labels) {
                continue;
            }
            let mut v = Vec::new();
            let mut h = Vec::new();
            {
                let d = s.data.lock();
                d.samples(mint, maxt, &mut v);
                d.histograms(mint, maxt, &mut h);
            }
            // Charged once copied (exactly; one head series is at most a few hours of it).
            let n = v.len() + histogram_weight(&h);
            if n > 0 && !charge.charge(n) {
                return Err(StorageError::ReadRefused);
            }
            if !v.is_empty() || !h.is_empty() {
                head.push((s.labels.clone(), v, h));
            }
        }
        let mut parts = match self.read_blocks(matchers, mint, maxt, range, charge).await {
            // A compaction or retention removed a block under us: read the new list (what
            // the first try kept was charged and is dropped: the charge errs on the high side).
            Err(StorageError::ObjectStore(object_store::Error::NotFound { .. })) => {
                self.read_blocks(matchers, mint, maxt, range, charge)
                    .await?
            }
            other => other?,
        };
        if parts.is_empty() {
            // Only the head has samples here (a recent window): no merge needed.
            let mut out: Vec<SeriesSamples> = head
                .into_iter()
                .map(|(labels, samples, histograms)| SeriesSamples {
                    labels,
                    samples,
                    histograms,
                })
                .collect();
            out.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
            return Ok(out);
        }
        for (labels, v, h) in head {
            let e = parts.entry(labels).or_default();
            if !v.is_empty() {
                e.0.push((u32::MAX, v));
            }
            if !h.is_empty() {
                e.1.push((u32::MAX, h));
            }
        }
        // One allocation per series, however many blocks (and the head) it spans.
        let mut out: Vec<SeriesSamples> = parts
            .into_iter()
            .map(|(labels, (v, h))| {
                let (samples, histograms) = if h.is_empty() {
                    (
                        concat_sorted(v.into_iter().map(|r| r.1).collect()),
                        Vec::new(),
                    )
                } else {
                    merge_kinds(v, h)
                };
                SeriesSamples {
                    labels,
                    samples,
                    histograms,
                }
            })
            .filter(|s| !s.is_empty())
            .collect();
        out.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    /// The blocks to read for `[mint, maxt]`, in the order their samples are concatenated:
    /// by time when no two of them overlap (so a series' samples come out sorted and need
    /// no sort), else by ULID (the order that makes the oldest write win on a duplicate).
    fn blocks_for(&self, mint: i64, maxt: i64) -> Vec<Arc<Block>> {
        let mut blocks: Vec<Arc<Block>> = self
            .readable_blocks()
            .into_iter()
            .filter(|b| b.overlaps(mint, maxt))
            .collect();
        blocks.sort_by_key(|b| (b.meta.min_time, b.meta.max_time));
        let disjoint = blocks
            .windows(2)
            .all(|w| w[0].meta.max_time <= w[1].meta.min_time);
        if !disjoint {
            blocks.sort_by(|a, b| a.meta.ulid.cmp(&b.meta.ulid));
        }
        blocks
    }

    async fn read_blocks(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        range: Option<&SeriesRange>,
        charge: &dyn ReadCharge,
    ) -> Result<HashMap<Labels, BlockParts>> {
        let mut parts: HashMap<Labels, BlockParts> = HashMap::new();
        for (seq, b) in self.blocks_for(mint, maxt).into_iter().enumerate() {
            let seq = seq as u32;
            let mut ids = b.select(matchers);
            if let Some(r) = range {
                if self.replicas.active() {
                    // Ranges are of deduplicated labels: not contiguous in the block.
                    let s = b.series();
                    ids = ids
                        .iter()
                        .filter(|&i| self.replicas.in_range(Some(r), &s[i as usize].labels))
                        .collect();
                } else {
                    ids &= id_range(&b, r);
                    if r.keep.is_some() {
                        let s = b.series();
                        ids = ids
                            .iter()
                            .filter(|&i| r.keeps(&s[i as usize].labels))
                            .collect();
                    }
                }
            }
            for (id, v) in b.read_charged(&ids, mint, maxt, charge).await? {
                let labels = b.series()[id as usize].labels.clone();
                parts.entry(labels).or_default().0.push((seq, v));
            }
            for (id, h) in b.read_histograms(&ids, mint, maxt, charge).await? {
                let labels = b.series()[id as usize].labels.clone();
                parts.entry(labels).or_default().1.push((seq, h));
            }
        }
        Ok(parts)
    }

    /// Oldest and newest sample times held (head and blocks), or `None` when empty.
    pub fn time_span(&self) -> Option<(i64, i64)> {
        let blocks = self.readable_blocks();
        let mut lo = self.head.min_time();
        let mut hi = self.head.max_time();
        for b in &blocks {
            lo = lo.min(b.meta.min_time);
            hi = hi.max(b.meta.max_time.saturating_sub(1));
        }
        (lo <= hi).then_some((lo, hi))
    }

    /// Label sets of the series matching `matchers` that have samples in `[mint, maxt]`,
    /// raw or downsampled (head series count when the head overlaps the range).
    pub async fn series(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Labels>> {
        let mut v: Vec<Labels> = Vec::new();
        if self.head.min_time() <= maxt && mint <= self.head.max_time() {
            // A head series without samples (created by an append whose WAL write then
            // failed and was rolled back; removed at the next head GC) is not listed.
            v.extend(
                self.head
                    .select(matchers)
                    .iter()
                    .filter(|s| !s.data.lock().is_empty())
                    .map(|s| s.labels.clone()),
            );
        }
        // Downsampled blocks too: a series whose raw data retention removed is still
        // listed (series and label APIs, selections at a downsampled resolution).
        let ds = self.downsampled_blocks();
        for b in self
            .readable_blocks()
            .iter()
            .chain(ds.iter())
            .filter(|b| b.overlaps(mint, maxt))
        {
            v.extend(
                b.select(matchers)
                    .iter()
                    .map(|id| b.series()[id as usize].labels.clone()),
            );
        }
        if let Some(ext) = self.external() {
            let got = ext
                .select(matchers, mint, maxt, self.time_span().map(|s| s.0))
                .await;
            v.extend(crate::external::labels(&got));
        }
        if self.replicas.active() {
            for l in &mut v {
                *l = self.replicas.key(l);
            }
        }
        // Label sets are pooled, so a series in several places compares equal at once.
        v.sort_unstable();
        v.dedup();
        Ok(v)
    }
}

/// The runs of one series read from blocks (and the head): floats and histograms, each
/// with its source's precedence (lower wins on a shared timestamp).
type BlockParts = (Vec<(u32, Vec<(i64, f64)>)>, Vec<(u32, Vec<HistSample>)>);

/// Float samples a histogram sample counts as against a read's bound (its size over a
/// float sample's 16 bytes).
pub(crate) fn histogram_weight(h: &[HistSample]) -> usize {
    h.iter().map(|s| s.1.size_bytes().div_ceil(16)).sum()
}

/// Runs of one series concatenated into one time-sorted run; where runs overlap, the first
/// sample of a timestamp wins (runs come oldest write first).
fn concat_sorted<T>(mut v: Vec<Vec<(i64, T)>>) -> Vec<(i64, T)> {
    let mut samples = if v.len() == 1 {
        v.pop().unwrap_or_default()
    } else {
        let mut m = Vec::with_capacity(v.iter().map(Vec::len).sum());
        for p in v {
            m.extend(p);
        }
        m
    };
    if !samples.is_sorted_by(|a, b| a.0 < b.0) {
        samples.sort_by_key(|s| s.0);
        samples.dedup_by_key(|s| s.0);
    }
    samples
}

/// Runs of both kinds of one series merged: where a timestamp is held by several runs, of
/// either kind, the sample of the source with the lowest precedence number wins.
pub(crate) fn merge_kinds(
    v: Vec<(u32, Vec<(i64, f64)>)>,
    h: Vec<(u32, Vec<HistSample>)>,
) -> (Vec<(i64, f64)>, Vec<HistSample>) {
    // Per timestamp, the precedence of the float that holds it.
    let mut float_src: HashMap<i64, u32> = HashMap::new();
    for (seq, run) in &v {
        for s in run {
            float_src.entry(s.0).or_insert(*seq);
        }
    }
    let mut hist_src: HashMap<i64, u32> = HashMap::new();
    for (seq, run) in &h {
        for s in run {
            hist_src.entry(s.0).or_insert(*seq);
        }
    }
    let floats = concat_sorted(v.into_iter().map(|r| r.1).collect());
    let hists = concat_sorted(h.into_iter().map(|r| r.1).collect());
    if hist_src.is_empty() {
        return (floats, hists);
    }
    let floats = floats
        .into_iter()
        .filter(|s| hist_src.get(&s.0).is_none_or(|hs| float_src[&s.0] < *hs))
        .collect();
    let hists = hists
        .into_iter()
        .filter(|s| float_src.get(&s.0).is_none_or(|fs| hist_src[&s.0] < *fs))
        .collect();
    (floats, hists)
}

/// Block-local ids of the series in `r` (a block's series are sorted by labels).
fn id_range(b: &Block, r: &SeriesRange) -> RoaringBitmap {
    let s = b.series();
    if !b.labels_sorted() {
        return (0..s.len() as u32)
            .filter(|&i| r.contains(&s[i as usize].labels))
            .collect();
    }
    let lo = r
        .after
        .as_ref()
        .map_or(0, |a| s.partition_point(|x| x.labels <= *a));
    let hi = r
        .upto
        .as_ref()
        .map_or(s.len(), |u| s.partition_point(|x| x.labels <= *u));
    let mut bm = RoaringBitmap::new();
    if lo < hi {
        bm.insert_range(lo as u32..hi as u32);
    }
    bm
}
