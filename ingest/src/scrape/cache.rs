//! The scrape cache of one target: the series text as exposed (`name{labels}`) → head
//! series id, so a series seen before costs one hash lookup; label parsing, target-label
//! merging, metric relabeling and series lookup happen once per series. It also records
//! in which scrape each series was last seen, which is how staleness is detected.

use std::collections::HashMap;

/// Marks a series that `metric_relabel_configs` dropped.
pub(crate) const DROPPED: u32 = u32::MAX;

/// Scrapes a series stays cached after it was last seen.
const KEEP_ITERATIONS: u64 = 10;

#[derive(Clone, Copy, Debug)]
pub(crate) struct CacheEntry {
    /// Head series id, or [`DROPPED`].
    pub(crate) id: u32,
    /// The scrape iteration that last saw it.
    pub(crate) seen: u64,
    /// The value of `seen` before it (restored when a scrape fails half-way).
    pub(crate) prev_seen: u64,
    /// Whether its last sample carried an explicit timestamp (no staleness then).
    pub(crate) explicit_ts: bool,
}

#[derive(Default)]
pub(crate) struct ScrapeCache {
    pub(crate) entries: HashMap<Box<[u8]>, CacheEntry, foldhash::fast::RandomState>,
}

impl ScrapeCache {
    /// Series seen in `prev` but not in `cur` (with their ids), to be marked stale.
    pub(crate) fn vanished(&self, prev: u64, cur: u64, out: &mut Vec<u32>) {
        for e in self.entries.values() {
            if e.seen == prev && e.seen != cur && e.id != DROPPED && !e.explicit_ts {
                out.push(e.id);
            }
        }
    }

    /// Every live series seen in scrape `iter` (for end-of-run staleness).
    pub(crate) fn seen_in(&self, iter: u64, out: &mut Vec<u32>) {
        for e in self.entries.values() {
            if e.seen == iter && e.id != DROPPED && !e.explicit_ts {
                out.push(e.id);
            }
        }
    }

    /// Undoes what a failed scrape `iter` recorded: its series count as not seen.
    pub(crate) fn revert(&mut self, iter: u64) {
        for e in self.entries.values_mut() {
            if e.seen == iter {
                e.seen = e.prev_seen;
            }
        }
    }

    /// Forgets series not seen for a while.
    pub(crate) fn sweep(&mut self, cur: u64) {
        self.entries
            .retain(|_, e| cur.saturating_sub(e.seen) <= KEEP_ITERATIONS);
    }
}
