//! Exemplars: Prometheus's circular exemplar storage (`tsdb/exemplar.go`), ported.
//!
//! One ring buffer of `storage.exemplars.max_exemplars` entries holds the newest exemplars
//! of all series; each series' exemplars form a doubly linked list through the ring, in time
//! order, so a query walks only the series it selects. A full ring overwrites its oldest
//! entry (in order of ingestion). The rules are Prometheus's: an exemplar's label set is at
//! most 128 UTF-8 characters (names plus values), the same exemplar as a series' newest is
//! a no-op, and one older than the newest by more than the out-of-order window is refused.
//! Exemplars without their own timestamp (scraped ones) compare equal regardless of the
//! scrape time they were given, so a scrape repeating one does not store it again.
//!
//! The buffer is in memory; the WAL logs what enters it and checkpoints rewrite what is in
//! it (see `wal::record`), so exemplars survive restarts as Prometheus's do.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

use crate::labels::Labels;
use crate::matcher::Matcher;

/// OpenMetrics: "The combined length of the label names and values of an Exemplar's
/// LabelSet MUST NOT exceed 128 UTF-8 characters."
pub const MAX_LABEL_SET_CHARS: usize = 128;

/// One exemplar: labels (usually `trace_id`, `span_id`), a value and a time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Exemplar {
    pub labels: Labels,
    pub value: f64,
    /// Milliseconds since the epoch.
    pub ts: i64,
    /// Whether the source gave the timestamp (a scraped exemplar without one carries the
    /// scrape's time and compares equal to itself at any later scrape).
    pub has_ts: bool,
}

impl Exemplar {
    /// Prometheus's `Exemplar.Equals`: labels and value equal, timestamps too unless
    /// neither exemplar carried its own.
    pub fn same_as(&self, o: &Exemplar) -> bool {
        if self.labels != o.labels {
            return false;
        }
        if (self.has_ts || o.has_ts) && self.ts != o.ts {
            return false;
        }
        self.value.to_bits() == o.value.to_bits() || self.value == o.value
    }
}

/// The exemplars of one series, as a query returns them.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesExemplars {
    pub series: Labels,
    pub exemplars: Vec<Exemplar>,
}

/// Why an exemplar was not stored (a duplicate is not an error: it is simply not stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExemplarError {
    #[error("exemplar storage is disabled or max exemplars is less than or equal to 0")]
    Disabled,
    #[error("label set of exemplar exceeds max length of {MAX_LABEL_SET_CHARS} UTF-8 characters")]
    LabelLength,
    #[error("out of order exemplar")]
    OutOfOrder,
}

/// Counters and gauges of the storage (Prometheus's `prometheus_tsdb_exemplar_*`).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct ExemplarStats {
    pub appended_total: u64,
    pub out_of_order_total: u64,
    pub in_storage: u64,
    pub series_in_storage: u64,
    /// Time of the oldest stored exemplar, in seconds (0 when empty).
    pub oldest_ts_seconds: f64,
    pub max_exemplars: u64,
}

const NONE: usize = usize::MAX;

#[derive(Debug, Clone)]
struct Entry {
    ex: Exemplar,
    prev: usize,
    next: usize,
    /// The series this slot belongs to; `None` for a free slot.
    series: Option<Labels>,
}

impl Default for Entry {
    fn default() -> Self {
        Entry {
            ex: Exemplar::default(),
            prev: NONE,
            next: NONE,
            series: None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct IndexEntry {
    oldest: usize,
    newest: usize,
}

#[derive(Debug, Default)]
struct Ring {
    buf: Vec<Entry>,
    next: usize,
    index: HashMap<Labels, IndexEntry>,
    ooo_window_ms: i64,
}

/// The circular exemplar storage.
#[derive(Debug, Default)]
pub struct ExemplarStore {
    ring: RwLock<Ring>,
    appended: AtomicU64,
    out_of_order: AtomicU64,
}

fn label_chars(l: &Labels) -> usize {
    l.iter()
        .map(|l| l.name.chars().count() + l.value.chars().count())
        .sum()
}

impl ExemplarStore {
    /// A storage of `max` exemplars (0 or less: disabled until resized), refusing exemplars
    /// older than a series' newest by the out-of-order window or more.
    pub fn new(max: i64, ooo_window_ms: i64) -> Self {
        let len = usize::try_from(max.max(0)).unwrap_or(0);
        ExemplarStore {
            ring: RwLock::new(Ring {
                buf: vec![Entry::default(); len],
                next: 0,
                index: HashMap::new(),
                ooo_window_ms: ooo_window_ms.max(0),
            }),
            appended: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
        }
    }

    /// Whether exemplars are kept at all.
    pub fn enabled(&self) -> bool {
        !self.ring.read().buf.is_empty()
    }

    /// Checks an exemplar without storing it (what an appender does before logging it):
    /// `Ok(false)` for a duplicate of the series' newest, which is not stored. A refusal
    /// as out of order is counted.
    pub fn validate(&self, series: &Labels, e: &Exemplar) -> Result<bool, ExemplarError> {
        let r = self.ring.read();
        let res = validate(&r, r.index.get(series), e);
        if res == Err(ExemplarError::OutOfOrder) {
            self.out_of_order.fetch_add(1, Ordering::Relaxed);
        }
        res
    }

    /// Adds an exemplar of a series. `Ok(false)`: a duplicate, not stored.
    pub fn add(&self, series: &Labels, e: Exemplar) -> Result<bool, ExemplarError> {
        let mut r = self.ring.write();
        let res = add(&mut r, series, e);
        match res {
            Ok(true) => {
                self.appended.fetch_add(1, Ordering::Relaxed);
            }
            Err(ExemplarError::OutOfOrder) => {
                self.out_of_order.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        res
    }

    /// Changes the number of exemplars kept, keeping the newest (in order of ingestion).
    /// Returns how many exemplars were kept.
    pub fn resize(&self, max: i64) -> usize {
        let len = usize::try_from(max.max(0)).unwrap_or(0);
        let mut r = self.ring.write();
        if len == r.buf.len() {
            return r.buf.iter().filter(|e| e.series.is_some()).count();
        }
        // Re-add the kept ones, oldest first, into a fresh ring: simpler than Prometheus's
        // range copy, and the same result (the newest `len` in ingestion order survive).
        let old = std::mem::take(&mut r.buf);
        let n = old.len();
        let start = r.next;
        let mut live: Vec<(Labels, Exemplar)> = (0..n)
            .map(|i| (start + i) % n.max(1))
            .filter_map(|i| {
                let e = &old[i];
                e.series.clone().map(|s| (s, e.ex.clone()))
            })
            .collect();
        if live.len() > len {
            live.drain(..live.len() - len);
        }
        r.buf = vec![Entry::default(); len];
        r.next = 0;
        r.index.clear();
        let kept = live.len();
        for (s, e) in live {
            let _ = add(&mut r, &s, e);
        }
        kept
    }

    /// Sets the out-of-order window (the TSDB's `out_of_order_time_window`).
    pub fn set_ooo_window(&self, ms: i64) {
        self.ring.write().ooo_window_ms = ms.max(0);
    }

    /// Exemplars within `[start, end]` of the series matching any of the matcher sets,
    /// sorted by series labels, each series' exemplars in time order.
    pub fn select(&self, start: i64, end: i64, sets: &[Vec<Matcher>]) -> Vec<SeriesExemplars> {
        let r = self.ring.read();
        let mut out = Vec::new();
        if r.buf.is_empty() {
            return out;
        }
        for (series, idx) in &r.index {
            if r.buf[idx.oldest].ex.ts > end || r.buf[idx.newest].ex.ts < start {
                continue;
            }
            let matches = sets.iter().any(|ms| {
                ms.iter()
                    .all(|m| m.matches(series.get(&m.name).unwrap_or("")))
            });
            if !matches {
                continue;
            }
            let mut exemplars = Vec::new();
            let mut i = idx.oldest;
            while i != NONE {
                let e = &r.buf[i];
                if e.ex.ts > end {
                    break;
                }
                if e.ex.ts >= start {
                    exemplars.push(e.ex.clone());
                }
                i = e.next;
            }
            if !exemplars.is_empty() {
                out.push(SeriesExemplars {
                    series: series.clone(),
                    exemplars,
                });
            }
        }
        out.sort_by(|a, b| a.series.cmp(&b.series));
        out
    }

    /// Every stored exemplar with its series, oldest ingested first (checkpoints).
    pub fn all(&self) -> Vec<(Labels, Exemplar)> {
        let r = self.ring.read();
        let n = r.buf.len();
        (0..n)
            .map(|i| (r.next + i) % n)
            .filter_map(|i| {
                let e = &r.buf[i];
                e.series.clone().map(|s| (s, e.ex.clone()))
            })
            .collect()
    }

    /// The storage's counters and gauges.
    pub fn stats(&self) -> ExemplarStats {
        let r = self.ring.read();
        let mut st = ExemplarStats {
            appended_total: self.appended.load(Ordering::Relaxed),
            out_of_order_total: self.out_of_order.load(Ordering::Relaxed),
            series_in_storage: r.index.len() as u64,
            max_exemplars: r.buf.len() as u64,
            ..Default::default()
        };
        if r.buf.is_empty() {
            return st;
        }
        let oldest = if r.buf[r.next].series.is_some() {
            st.in_storage = r.buf.len() as u64;
            Some(&r.buf[r.next])
        } else {
            st.in_storage = r.next as u64;
            r.buf.first().filter(|e| e.series.is_some())
        };
        st.oldest_ts_seconds = oldest.map_or(0.0, |e| e.ex.ts as f64 / 1000.0);
        st
    }
}

fn validate(r: &Ring, idx: Option<&IndexEntry>, e: &Exemplar) -> Result<bool, ExemplarError> {
    if r.buf.is_empty() {
        return Err(ExemplarError::Disabled);
    }
    if label_chars(&e.labels) > MAX_LABEL_SET_CHARS {
        return Err(ExemplarError::LabelLength);
    }
    let Some(idx) = idx else {
        return Ok(true);
    };
    let newest = &r.buf[idx.newest].ex;
    if newest.same_as(e) {
        return Ok(false);
    }
    // Equal timestamps are ordered by value, then label hash, so a repeat is caught without
    // walking the list (native histograms carry several exemplars per timestamp).
    let older = e.ts < newest.ts && e.ts <= newest.ts.saturating_sub(r.ooo_window_ms);
    let same_ts_lower = e.ts == newest.ts
        && (e.value < newest.value
            || (e.value == newest.value && e.labels.stable_hash() < newest.labels.stable_hash()));
    if older || same_ts_lower {
        return Err(ExemplarError::OutOfOrder);
    }
    Ok(true)
}

/// Walks back from the newest to the last exemplar not after `e`.
fn insertion_index(r: &Ring, e: &Exemplar, idx: IndexEntry) -> usize {
    let mut i = idx.newest;
    while i != NONE {
        if r.buf[i].ex.ts <= e.ts {
            return i;
        }
        i = r.buf[i].prev;
    }
    idx.oldest
}

/// Unlinks a slot from its series' list; true when the list is now empty.
fn remove_slot(r: &mut Ring, slot: usize) -> bool {
    let Some(series) = r.buf[slot].series.take() else {
        return false;
    };
    let (prev, next) = (r.buf[slot].prev, r.buf[slot].next);
    let Some(idx) = r.index.get_mut(&series) else {
        return false;
    };
    if prev != NONE {
        r.buf[prev].next = next;
    } else {
        idx.oldest = next;
    }
    if next != NONE {
        r.buf[next].prev = prev;
    } else {
        idx.newest = prev;
    }
    idx.oldest == NONE && idx.newest == NONE
}

fn add(r: &mut Ring, series: &Labels, e: Exemplar) -> Result<bool, ExemplarError> {
    let existing = r.index.get(series).copied();
    if !validate(r, existing.as_ref(), &e)? {
        return Ok(false);
    }
    let mut insertion = NONE;
    let mut out_of_order = false;
    if let Some(idx) = existing {
        out_of_order = e.ts >= r.buf[idx.oldest].ex.ts && e.ts < r.buf[idx.newest].ex.ts;
        if out_of_order {
            insertion = insertion_index(r, &e, idx);
            if r.buf[insertion].ex.ts == e.ts {
                // Assumed a duplicate (as Prometheus: comparing all would be too costly).
                return Ok(false);
            }
        }
    }
    let slot = r.next;
    // A full ring: the slot's current exemplar goes.
    if let Some(prev_series) = r.buf[slot].series.clone() {
        let emptied = remove_slot(r, slot);
        let same = prev_series == *series;
        if emptied {
            r.index.remove(&prev_series);
        } else if out_of_order && insertion == slot && same {
            let idx = r.index[series];
            insertion = insertion_index(r, &e, idx);
        }
    }
    let ts = e.ts;
    r.buf[slot].ex = e;
    r.buf[slot].series = Some(series.clone());
    match r.index.get(series).copied() {
        None => {
            r.buf[slot].prev = NONE;
            r.buf[slot].next = NONE;
            r.index.insert(
                series.clone(),
                IndexEntry {
                    oldest: slot,
                    newest: slot,
                },
            );
        }
        Some(idx) if ts >= r.buf[idx.newest].ex.ts => {
            r.buf[idx.newest].next = slot;
            r.buf[slot].prev = idx.newest;
            r.buf[slot].next = NONE;
            if let Some(i) = r.index.get_mut(series) {
                i.newest = slot;
            }
        }
        Some(idx) if ts < r.buf[idx.oldest].ex.ts => {
            r.buf[idx.oldest].prev = slot;
            r.buf[slot].prev = NONE;
            r.buf[slot].next = idx.oldest;
            if let Some(i) = r.index.get_mut(series) {
                i.oldest = slot;
            }
        }
        Some(_) => {
            let after = r.buf[insertion].next;
            r.buf[slot].prev = insertion;
            r.buf[slot].next = after;
            r.buf[insertion].next = slot;
            if after != NONE {
                r.buf[after].prev = slot;
            }
        }
    }
    r.next = (slot + 1) % r.buf.len();
    Ok(true)
}

#[cfg(test)]
mod tests;
