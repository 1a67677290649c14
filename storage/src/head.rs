//! The head: the in-memory series of the newest window, their index, and the time range
//! they cover. Series ids are head-local `u32`s, never reused within a process, and the
//! series record of a new series is logged to the WAL under the index lock, so it always
//! precedes the samples that use it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::RwLock;
use roaring::RoaringBitmap;

use crate::error::Result;
use crate::index::Postings;
use crate::labels::{LabelPool, Labels, Symbols};
use crate::matcher::Matcher;
use crate::series::MemSeries;
use crate::series_hash::SeriesHashes;
use crate::wal::{Wal, encode_series};

#[derive(Default)]
struct HeadIndex {
    by_hash: SeriesHashes,
    /// WAL ids that name a series already present under another id (a series removed
    /// and re-created between a WAL rotation and its checkpoint): replay maps them here.
    aliases: HashMap<u32, u32>,
    series: Vec<Option<Arc<MemSeries>>>,
    postings: Postings,
    symbols: Symbols,
}

/// Counters of the head.
#[derive(Default, Debug)]
pub struct HeadStats {
    pub samples_appended: AtomicU64,
    pub out_of_bounds: AtomicU64,
    pub duplicate_timestamp: AtomicU64,
    pub duplicates_ignored: AtomicU64,
    pub series_created: AtomicU64,
    pub series_removed: AtomicU64,
}

/// In-memory series of the newest window.
pub struct Head {
    index: RwLock<HeadIndex>,
    pool: Arc<LabelPool>,
    min_t: AtomicI64,
    max_t: AtomicI64,
    pub stats: HeadStats,
}

impl Head {
    /// An empty head whose label sets are shared through `pool`.
    pub(crate) fn new(pool: Arc<LabelPool>) -> Self {
        Head {
            index: RwLock::new(HeadIndex::default()),
            pool,
            min_t: AtomicI64::new(i64::MAX),
            max_t: AtomicI64::new(i64::MIN),
            stats: HeadStats::default(),
        }
    }

    /// The series with these labels, created (and logged to `wal`) if new.
    pub(crate) fn get_or_create(
        &self,
        labels: &Labels,
        wal: Option<&Wal>,
    ) -> Result<Arc<MemSeries>> {
        let hash = labels.stable_hash();
        {
            let idx = self.index.read();
            if let Some(s) = find(&idx, hash, labels) {
                return Ok(s);
            }
        }
        let mut idx = self.index.write();
        if let Some(s) = find(&idx, hash, labels) {
            return Ok(s);
        }
        let id = idx.series.len() as u32;
        if let Some(wal) = wal {
            let mut buf = Vec::new();
            encode_series(
                &mut buf,
                &[(id, labels.iter().map(|l| (&*l.name, &*l.value)).collect())],
            );
            wal.write(&buf)?;
        }
        self.stats.series_created.fetch_add(1, Ordering::Relaxed);
        Ok(insert(&mut idx, id, labels, hash, &self.pool))
    }

    /// Recreates a series from a WAL record with its logged id.
    pub(crate) fn create_with_id(&self, id: u32, labels: &Labels) {
        let mut idx = self.index.write();
        let hash = labels.stable_hash();
        if let Some(existing) = find(&idx, hash, labels) {
            if existing.id != id {
                idx.aliases.insert(id, existing.id);
            }
            return;
        }
        if idx.series.len() <= id as usize {
            idx.series.resize(id as usize + 1, None);
        }
        insert(&mut idx, id, labels, hash, &self.pool);
    }

    /// The series with this id.
    pub(crate) fn series(&self, id: u32) -> Option<Arc<MemSeries>> {
        let idx = self.index.read();
        let id = idx.aliases.get(&id).copied().unwrap_or(id);
        idx.series.get(id as usize).cloned().flatten()
    }

    /// A lookup from series id to series under one index read lock (series creation and
    /// garbage collection wait until it is dropped).
    pub(crate) fn lookup(&self) -> SeriesLookup<'_> {
        SeriesLookup(self.index.read())
    }

    /// Ids of the series the matchers select.
    pub(crate) fn select(&self, matchers: &[Matcher]) -> Vec<Arc<MemSeries>> {
        let idx = self.index.read();
        let ids: RoaringBitmap = idx.postings.select(matchers);
        ids.iter()
            .filter_map(|id| idx.series.get(id as usize).cloned().flatten())
            .collect()
    }

    /// All live series.
    pub(crate) fn all_series(&self) -> Vec<Arc<MemSeries>> {
        self.index.read().series.iter().flatten().cloned().collect()
    }

    /// Removes series that hold no sample. The caller must hold off appends.
    pub(crate) fn gc(&self) -> usize {
        let mut idx = self.index.write();
        let mut removed = 0;
        for i in 0..idx.series.len() {
            let empty = idx.series[i]
                .as_ref()
                .is_some_and(|s| s.data.lock().is_empty());
            if !empty {
                continue;
            }
            if let Some(s) = idx.series[i].take() {
                let hash = s.labels.stable_hash();
                idx.postings.remove(s.id, &s.labels);
                idx.by_hash.remove(hash, s.id);
                removed += 1;
            }
        }
        idx.symbols.gc();
        self.stats
            .series_removed
            .fetch_add(removed as u64, Ordering::Relaxed);
        removed
    }

    /// Widens the head's time range to include `[mint, maxt]`.
    pub(crate) fn observe(&self, mint: i64, maxt: i64) {
        self.min_t.fetch_min(mint, Ordering::AcqRel);
        self.max_t.fetch_max(maxt, Ordering::AcqRel);
    }

    /// Recomputes the time range from the samples held.
    pub(crate) fn recompute_range(&self) {
        let mut lo = i64::MAX;
        let mut hi = i64::MIN;
        for s in self.all_series() {
            if let Some((a, b)) = s.data.lock().time_range() {
                lo = lo.min(a);
                hi = hi.max(b);
            }
        }
        self.min_t.store(lo, Ordering::Release);
        // max_t only grows: it anchors the out-of-order window.
        self.max_t.fetch_max(hi, Ordering::AcqRel);
    }

    /// Oldest sample time (i64::MAX when empty).
    pub fn min_time(&self) -> i64 {
        self.min_t.load(Ordering::Acquire)
    }

    /// Newest sample time ever appended (i64::MIN when nothing was).
    pub fn max_time(&self) -> i64 {
        self.max_t.load(Ordering::Acquire)
    }

    /// Number of live series.
    pub fn num_series(&self) -> u64 {
        self.index.read().postings.len()
    }

    /// Label names and values with their series counts (for TSDB status).
    pub fn with_postings<R>(&self, f: impl FnOnce(&Postings) -> R) -> R {
        f(&self.index.read().postings)
    }

    /// Samples held and heap bytes used by sample data.
    pub fn sample_stats(&self) -> (u64, u64) {
        let mut n = 0u64;
        let mut bytes = 0u64;
        for s in self.all_series() {
            let d = s.data.lock();
            n += d.len() as u64;
            bytes += d.heap_bytes() as u64;
        }
        (n, bytes)
    }
}

/// Series by id, under the index read lock.
pub(crate) struct SeriesLookup<'a>(parking_lot::RwLockReadGuard<'a, HeadIndex>);

impl SeriesLookup<'_> {
    /// The live series with this id.
    pub(crate) fn get(&self, id: u32) -> Option<&MemSeries> {
        self.0.series.get(id as usize)?.as_deref()
    }
}

fn find(idx: &HeadIndex, hash: u64, labels: &Labels) -> Option<Arc<MemSeries>> {
    idx.by_hash.ids(hash).find_map(|id| {
        idx.series
            .get(id as usize)
            .cloned()
            .flatten()
            .filter(|s| &s.labels == labels)
    })
}

fn insert(
    idx: &mut HeadIndex,
    id: u32,
    labels: &Labels,
    hash: u64,
    pool: &LabelPool,
) -> Arc<MemSeries> {
    let labels = pool.intern(labels.intern(&mut idx.symbols));
    let s = Arc::new(MemSeries::new(id, labels));
    idx.postings.add(id, &s.labels);
    idx.by_hash.insert(hash, id);
    let slot = id as usize;
    if idx.series.len() <= slot {
        idx.series.resize(slot + 1, None);
    }
    idx.series[slot] = Some(s.clone());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replayed_series_under_a_second_id_is_an_alias() {
        // A series removed and re-created between a WAL rotation and its checkpoint is
        // logged twice under two ids; replay must route both ids to one series.
        let head = Head::new(Arc::new(LabelPool::default()));
        let x = Labels::from_pairs([("__name__", "x")]);
        head.create_with_id(3, &x);
        head.create_with_id(7, &x);
        let a = head.series(3).expect("id 3");
        let b = head.series(7).expect("id 7 aliases id 3");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(head.num_series(), 1);
    }
}
