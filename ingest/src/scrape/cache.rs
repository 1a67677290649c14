//! The scrape cache of one target: the series text as exposed (`name{labels}`) → head
//! series id, so a series seen before costs one hash lookup; label parsing, target-label
//! merging, metric relabeling and series lookup happen once per series. It also records
//! in which scrape each series was last seen, which is how staleness is detected.
//!
//! The key is the 128-bit XXH3 of the series text rather than the text itself: 16 bytes
//! inline instead of a ~80-byte heap string per series and target (a third of the per-series
//! memory of scraping). Two different series texts of one target would have to collide on
//! 128 bits to be confused (about 10⁻²⁷ for a million series).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The key of a series text.
pub(crate) fn key(series: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(series)
}

/// The key already is a hash: use its low bits.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

/// Marks a series that `metric_relabel_configs` dropped.
pub(crate) const DROPPED: u32 = u32::MAX;

/// Scrapes a series stays cached after it was last seen.
const KEEP_ITERATIONS: u32 = 10;

#[derive(Clone, Copy, Debug)]
pub(crate) struct CacheEntry {
    /// Head series id, or [`DROPPED`].
    pub(crate) id: u32,
    /// The scrape iteration that last saw it.
    pub(crate) seen: u32,
    /// The value of `seen` before it (restored when a scrape fails half-way).
    pub(crate) prev_seen: u32,
    /// Whether its last sample carried an explicit timestamp (no staleness then).
    pub(crate) explicit_ts: bool,
}

#[derive(Default)]
pub(crate) struct ScrapeCache {
    pub(crate) entries: HashMap<u128, CacheEntry, BuildHasherDefault<KeyHasher>>,
    /// Entries the last completed scrape saw.
    pub(crate) last_seen: usize,
    /// Entries the current scrape saw so far.
    pub(crate) seen_now: usize,
    /// Of those, the ones the last completed scrape saw too.
    pub(crate) carried: usize,
}

impl ScrapeCache {
    /// Series seen in `prev` but not in `cur` (with their ids), to be marked stale. When
    /// every entry the previous scrape saw was seen again (the usual case) nothing
    /// vanished and the entries are not walked.
    pub(crate) fn vanished(&mut self, prev: u32, cur: u32, out: &mut Vec<u32>) {
        let all_carried = self.carried == self.last_seen;
        self.last_seen = self.seen_now;
        self.seen_now = 0;
        self.carried = 0;
        if all_carried {
            return;
        }
        for e in self.entries.values() {
            if e.seen == prev && e.seen != cur && e.id != DROPPED && !e.explicit_ts {
                out.push(e.id);
            }
        }
    }

    /// Every live series seen in scrape `iter` (for end-of-run staleness).
    pub(crate) fn seen_in(&self, iter: u32, out: &mut Vec<u32>) {
        for e in self.entries.values() {
            if e.seen == iter && e.id != DROPPED && !e.explicit_ts {
                out.push(e.id);
            }
        }
    }

    /// Undoes what a failed scrape `iter` recorded: its series count as not seen.
    pub(crate) fn revert(&mut self, iter: u32) {
        self.seen_now = 0;
        self.carried = 0;
        for e in self.entries.values_mut() {
            if e.seen == iter {
                e.seen = e.prev_seen;
            }
        }
    }

    /// Forgets series not seen for a while.
    pub(crate) fn sweep(&mut self, cur: u32) {
        self.entries
            .retain(|_, e| cur.saturating_sub(e.seen) <= KEEP_ITERATIONS);
    }
}
