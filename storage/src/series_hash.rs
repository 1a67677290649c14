//! Head series ids by the stable hash of their label sets, for the lookup of a series by
//! its labels. Nearly every hash names one series: that id is stored inline in the map
//! (16 bytes an entry); the ids of label sets whose hash collides with an earlier one go
//! to a side map. A map of hash → `Vec` of ids cost an allocation and 32 bytes an entry,
//! per series, for collisions that essentially never happen.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hasher};

/// The key already is a hash (xxh3 of the label set): used as is.
#[derive(Default)]
pub(crate) struct PrehashedKey(u64);

impl Hasher for PrehashedKey {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

#[derive(Default, Debug)]
pub(crate) struct SeriesHashes {
    first: HashMap<u64, u32, BuildHasherDefault<PrehashedKey>>,
    /// Further ids of a hash, after the one in `first`.
    more: HashMap<u64, Vec<u32>>,
}

impl SeriesHashes {
    /// The ids of the series whose labels hash to `hash`.
    pub(crate) fn ids(&self, hash: u64) -> impl Iterator<Item = u32> + '_ {
        self.first
            .get(&hash)
            .copied()
            .into_iter()
            .chain(self.more.get(&hash).into_iter().flatten().copied())
    }

    pub(crate) fn insert(&mut self, hash: u64, id: u32) {
        match self.first.entry(hash) {
            Entry::Vacant(e) => {
                e.insert(id);
            }
            Entry::Occupied(_) => self.more.entry(hash).or_default().push(id),
        }
    }

    pub(crate) fn remove(&mut self, hash: u64, id: u32) {
        if self.first.get(&hash) == Some(&id) {
            let next = self.more.get_mut(&hash).and_then(Vec::pop);
            match next {
                Some(n) => {
                    self.first.insert(hash, n);
                }
                None => {
                    self.first.remove(&hash);
                }
            }
        } else if let Some(v) = self.more.get_mut(&hash) {
            v.retain(|x| *x != id);
        }
        if self.more.get(&hash).is_some_and(Vec::is_empty) {
            self.more.remove(&hash);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(h: &SeriesHashes, hash: u64) -> Vec<u32> {
        let mut v: Vec<u32> = h.ids(hash).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn colliding_hashes_keep_every_id_through_removals() {
        let mut h = SeriesHashes::default();
        h.insert(7, 1);
        h.insert(7, 2);
        h.insert(7, 3);
        h.insert(9, 4);
        assert_eq!(ids(&h, 7), vec![1, 2, 3]);
        h.remove(7, 1);
        assert_eq!(ids(&h, 7), vec![2, 3]);
        h.remove(7, 3);
        assert_eq!(ids(&h, 7), vec![2]);
        assert!(h.more.is_empty());
        h.remove(7, 5); // not there: nothing changes
        assert_eq!(ids(&h, 7), vec![2]);
        h.remove(7, 2);
        assert!(ids(&h, 7).is_empty());
        assert_eq!(ids(&h, 9), vec![4]);
        assert_eq!(h.first.len(), 1);
    }
}
