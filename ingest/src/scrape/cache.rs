//! The scrape cache of one target: the series text as exposed (`name{labels}`) → head
//! series id, so a series seen before costs one lookup; label parsing, target-label
//! merging, metric relabeling and series lookup happen once per series. It also records
//! in which scrape each series was last seen, which is how staleness is detected.
//!
//! The key is the 128-bit XXH3 of the series text rather than the text itself: 16 bytes
//! inline instead of a ~80-byte heap string per series and target (a third of the per-series
//! memory of scraping). Two different series texts of one target would have to collide on
//! 128 bits to be confused (about 10⁻²⁷ for a million series).
//!
//! Entries are kept in the order the target exposes its series, and a scrape walks them
//! with a cursor: exporters write their series in the same order every time, so the entry
//! of the next sample is the one after the last, read sequentially. Looking each sample up
//! in a hash table instead cost a cache miss per sample (the tables of fifty targets do
//! not stay in cache between two scrapes of one: 17% of the scraping CPU). An index (hash of
//! the key → position) finds the entries the cursor misses; after a scrape that met series
//! out of place (new series, a changed order) the entries are laid out again in that
//! scrape's order, unless most of the scrape was out of place (an exporter without a
//! stable order), where it would not help.

use hashbrown::HashTable;

/// The key of a series text.
pub(crate) fn key(series: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(series)
}

/// The key of a native histogram series text: kept apart from a float series of the same
/// text (which an exposition with a duplicate family could hold).
pub(crate) fn histogram_key(series: &[u8]) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(b"\xffnative\xff");
    h.update(series);
    h.digest128()
}

/// The index hash of a key: the key already is a hash.
fn hash(key: u128) -> u64 {
    key as u64
}

/// Marks a series that `metric_relabel_configs` dropped.
pub(crate) const DROPPED: u32 = u32::MAX;

/// Scrapes that keep the layout after a target was found to have no stable order.
const UNORDERED_SKIP: u32 = 16;

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

#[derive(Clone, Copy, Debug)]
struct Slot {
    key: u128,
    entry: CacheEntry,
}

#[derive(Default)]
pub(crate) struct ScrapeCache {
    /// The entries, in the order the target last exposed them.
    slots: Vec<Slot>,
    /// Positions in `slots`, by [`hash`] of their key.
    index: HashTable<u32>,
    /// Where the current scrape expects its next series.
    cursor: usize,
    /// Series of the current scrape found away from the cursor.
    out_of_place: usize,
    /// The positions the current scrape visited, in its order, once one was out of place
    /// (until then they are `0..cursor`).
    order: Option<Vec<u32>>,
    /// Whether the last scrape laid the entries out again.
    relaid: bool,
    /// Scrapes to come that leave the layout as it is.
    skip_layouts: u32,
    /// Entries the last completed scrape saw.
    last_seen: usize,
    /// Entries the current scrape saw so far.
    seen_now: usize,
    /// Of those, the ones the last completed scrape saw too.
    carried: usize,
}

impl ScrapeCache {
    /// The number of cached series.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    fn position(&self, key: u128) -> Option<usize> {
        let slots = &self.slots;
        self.index
            .find(hash(key), |&i| slots[i as usize].key == key)
            .map(|&i| i as usize)
    }

    /// Records that the current scrape met the entry at `pos`.
    fn visit(&mut self, pos: usize) {
        match &mut self.order {
            None if pos == self.cursor => {}
            None => {
                self.out_of_place += 1;
                let mut order: Vec<u32> = (0..self.cursor as u32).collect();
                order.push(pos as u32);
                self.order = Some(order);
            }
            Some(order) => {
                if pos != self.cursor {
                    self.out_of_place += 1;
                }
                order.push(pos as u32);
            }
        }
        self.cursor = pos + 1;
    }

    /// The id of a cached series met by scrape `iter` (`prev_iter` is the scrape before),
    /// marking it seen; `None` when the series is not cached.
    pub(crate) fn observe(
        &mut self,
        key: u128,
        iter: u32,
        prev_iter: u32,
        explicit_ts: bool,
    ) -> Option<u32> {
        let pos = match self.slots.get(self.cursor) {
            Some(s) if s.key == key => self.cursor,
            _ => self.position(key)?,
        };
        self.visit(pos);
        let e = &mut self.slots[pos].entry;
        if e.seen != iter {
            self.seen_now += 1;
            if e.seen == prev_iter {
                self.carried += 1;
            }
            e.prev_seen = e.seen;
        }
        e.seen = iter;
        e.explicit_ts = explicit_ts;
        Some(e.id)
    }

    /// Caches a series first met by scrape `iter`.
    pub(crate) fn insert(&mut self, key: u128, id: u32, iter: u32, explicit_ts: bool) {
        let pos = self.slots.len();
        self.slots.push(Slot {
            key,
            entry: CacheEntry {
                id,
                seen: iter,
                prev_seen: 0,
                explicit_ts,
            },
        });
        let slots = &self.slots;
        self.index
            .insert_unique(hash(key), pos as u32, |&i| hash(slots[i as usize].key));
        self.seen_now += 1;
        self.visit(pos);
    }

    /// The entry of a cached series.
    pub(crate) fn get(&self, key: u128) -> Option<&CacheEntry> {
        self.position(key).map(|p| &self.slots[p].entry)
    }

    /// The entry of a cached series, to change.
    pub(crate) fn get_mut(&mut self, key: u128) -> Option<&mut CacheEntry> {
        self.position(key).map(|p| &mut self.slots[p].entry)
    }

    /// The ids of every cached series ([`DROPPED`] included).
    pub(crate) fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots.iter().map(|s| s.entry.id)
    }

    /// Keeps the entries `keep` accepts.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&CacheEntry) -> bool) {
        let before = self.slots.len();
        self.slots.retain(|s| keep(&s.entry));
        if self.slots.len() != before {
            self.reindex();
        }
    }

    fn reindex(&mut self) {
        self.index.clear();
        self.index.reserve(self.slots.len(), |_| 0);
        let slots = &self.slots;
        for (i, s) in slots.iter().enumerate() {
            self.index
                .insert_unique(hash(s.key), i as u32, |&j| hash(slots[j as usize].key));
        }
    }

    /// Ends the parsing of a scrape: when series were met out of place the entries are laid
    /// out in this scrape's order (entries it did not meet go last, in their order). When
    /// the scrape right after such a layout is again mostly out of place the target has no
    /// stable order, and the next [`UNORDERED_SKIP`] scrapes leave the layout as it is.
    pub(crate) fn end_scrape(&mut self) {
        let out_of_place = std::mem::take(&mut self.out_of_place);
        self.cursor = 0;
        let relaid = std::mem::take(&mut self.relaid);
        let Some(order) = self.order.take() else {
            return;
        };
        if self.skip_layouts > 0 {
            self.skip_layouts -= 1;
            return;
        }
        if relaid && out_of_place * 2 > order.len() {
            self.skip_layouts = UNORDERED_SKIP;
            return;
        }
        let n = self.slots.len();
        let mut placed = vec![false; n];
        let mut slots = Vec::with_capacity(n);
        for &p in &order {
            let p = p as usize;
            if !std::mem::replace(&mut placed[p], true) {
                slots.push(self.slots[p]);
            }
        }
        for (p, s) in self.slots.iter().enumerate() {
            if !placed[p] {
                slots.push(*s);
            }
        }
        self.slots = slots;
        self.reindex();
        self.relaid = true;
    }

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
        for s in &self.slots {
            let e = &s.entry;
            if e.seen == prev && e.seen != cur && e.id != DROPPED && !e.explicit_ts {
                out.push(e.id);
            }
        }
    }

    /// Every live series seen in scrape `iter` (for end-of-run staleness).
    pub(crate) fn seen_in(&self, iter: u32, out: &mut Vec<u32>) {
        for s in &self.slots {
            let e = &s.entry;
            if e.seen == iter && e.id != DROPPED && !e.explicit_ts {
                out.push(e.id);
            }
        }
    }

    /// Undoes what a failed scrape `iter` recorded: its series count as not seen.
    pub(crate) fn revert(&mut self, iter: u32) {
        self.seen_now = 0;
        self.carried = 0;
        self.cursor = 0;
        self.out_of_place = 0;
        self.order = None;
        self.relaid = false;
        for s in &mut self.slots {
            if s.entry.seen == iter {
                s.entry.seen = s.entry.prev_seen;
            }
        }
    }

    /// Forgets series not seen for a while.
    pub(crate) fn sweep(&mut self, cur: u32) {
        self.retain(|e| cur.saturating_sub(e.seen) <= KEEP_ITERATIONS);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn scrape(c: &mut ScrapeCache, iter: u32, series: &[&str]) -> Vec<u32> {
        let ids = series
            .iter()
            .map(|s| {
                let k = key(s.as_bytes());
                match c.observe(k, iter, iter - 1, false) {
                    Some(id) => id,
                    None => {
                        let id = s.trim_start_matches('s').parse().unwrap_or(0);
                        c.insert(k, id, iter, false);
                        id
                    }
                }
            })
            .collect();
        c.end_scrape();
        let mut gone = Vec::new();
        c.vanished(iter - 1, iter, &mut gone);
        ids
    }

    fn layout(c: &ScrapeCache) -> Vec<u32> {
        c.slots.iter().map(|s| s.entry.id).collect()
    }

    #[test]
    fn entries_follow_the_exposed_order_and_every_series_keeps_its_id() {
        let mut c = ScrapeCache::default();
        assert_eq!(scrape(&mut c, 1, &["s1", "s2", "s3"]), vec![1, 2, 3]);
        assert_eq!(layout(&c), vec![1, 2, 3]);
        // A new series in the middle, one gone, and the order changed.
        assert_eq!(scrape(&mut c, 2, &["s3", "s4", "s1"]), vec![3, 4, 1]);
        assert_eq!(layout(&c), vec![3, 4, 1, 2]);
        assert_eq!(scrape(&mut c, 3, &["s3", "s4", "s1"]), vec![3, 4, 1]);
        assert_eq!(c.out_of_place, 0);
        for (i, s) in ["s1", "s2", "s3", "s4"].iter().enumerate() {
            assert_eq!(
                c.get(key(s.as_bytes())).map(|e| e.id),
                Some([1, 2, 3, 4][i])
            );
        }
        c.sweep(3 + KEEP_ITERATIONS);
        assert_eq!(layout(&c), vec![3, 4, 1]);
        assert!(c.get(key(b"s2")).is_none());
        assert_eq!(c.get(key(b"s4")).map(|e| e.id), Some(4));
    }

    #[test]
    fn an_exporter_without_a_stable_order_is_still_looked_up_right() {
        let mut c = ScrapeCache::default();
        let names: Vec<String> = (0..200).map(|i| format!("s{i}")).collect();
        let mut order: Vec<&str> = names.iter().map(String::as_str).collect();
        scrape(&mut c, 1, &order);
        for iter in 2..6u32 {
            // A different permutation every scrape.
            let n = order.len();
            for i in 0..n {
                order.swap(i, (i * 7919 + iter as usize * 31) % n);
            }
            let ids = scrape(&mut c, iter, &order);
            let want: Vec<u32> = order.iter().map(|s| s[1..].parse().unwrap()).collect();
            assert_eq!(ids, want);
            assert_eq!(c.len(), 200);
        }
        // Laid out after scrape 2, found unordered in scrape 3: left alone since.
        assert!(c.skip_layouts > 0);
    }

    #[test]
    fn a_failed_scrape_leaves_no_order_behind() {
        let mut c = ScrapeCache::default();
        scrape(&mut c, 1, &["s1", "s2"]);
        let k = key(b"s2");
        assert_eq!(c.observe(k, 2, 1, false), Some(2));
        c.revert(2);
        assert_eq!(c.get(k).map(|e| e.seen), Some(1));
        assert_eq!(scrape(&mut c, 3, &["s1", "s2"]), vec![1, 2]);
        assert_eq!(layout(&c), vec![1, 2]);
    }
}
