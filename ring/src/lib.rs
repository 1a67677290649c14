//! # strata-ring
//!
//! The hash ring of a Strata cluster, shared by the two sides that must agree on it: the
//! front door (`strata-ingest`), which writes each series to its ingesters, and the
//! distributed querier (`strata-engine`), which reads each series from exactly one of
//! them. Each ingester holds [`TOKENS`] points of a 64-bit ring (hashes of its
//! URL and the point's number); a series belongs to the first `replication_factor`
//! distinct ingesters clockwise from its label hash. Adding or removing an ingester moves
//! only the series next to its points, and the points spread load evenly.

use xxhash_rust::xxh3::{Xxh3, xxh3_64};

/// The hash of a label set given as `(name, value)` pairs in any order: the pairs are
/// hashed sorted by name (byte order), each name and value followed by `0xff`.
pub fn labels_hash<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut v: Vec<(&str, &str)> = pairs.into_iter().collect();
    v.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut h = Xxh3::new();
    for (n, val) in v {
        h.update(n.as_bytes());
        h.update(&[0xff]);
        h.update(val.as_bytes());
        h.update(&[0xff]);
    }
    h.digest()
}

/// Points per ingester.
pub const TOKENS: usize = 128;

/// A ring over a fixed list of ingesters.
#[derive(Debug, Clone)]
pub struct Ring {
    tokens: Vec<(u64, usize)>,
    ingesters: usize,
    replication_factor: usize,
}

impl Ring {
    /// A ring of `ingesters` (their URLs), each series on `replication_factor` of them
    /// (at most all).
    pub fn new(ingesters: &[String], replication_factor: usize) -> Ring {
        let mut tokens: Vec<(u64, usize)> = ingesters
            .iter()
            .enumerate()
            .flat_map(|(i, url)| {
                (0..TOKENS).map(move |k| (xxh3_64(format!("{url}#{k}").as_bytes()), i))
            })
            .collect();
        tokens.sort_unstable();
        Ring {
            tokens,
            ingesters: ingesters.len(),
            replication_factor: replication_factor.clamp(1, ingesters.len().max(1)),
        }
    }

    /// Replicas per series.
    pub fn replication_factor(&self) -> usize {
        self.replication_factor
    }

    /// Acknowledgements a series needs: a majority of its replicas.
    pub fn quorum(&self) -> usize {
        self.replication_factor / 2 + 1
    }

    /// The number of ingesters.
    pub fn ingesters(&self) -> usize {
        self.ingesters
    }

    /// The first ingester of a series with label hash `h` (its primary); `None` on an
    /// empty ring.
    pub fn primary(&self, h: u64) -> Option<usize> {
        if self.tokens.is_empty() {
            return None;
        }
        let start = self.tokens.partition_point(|t| t.0 < h);
        Some(self.tokens[start % self.tokens.len()].1)
    }

    /// The ingesters of a series with label hash `h`, in ring order.
    pub fn owners(&self, h: u64, out: &mut Vec<usize>) {
        out.clear();
        if self.tokens.is_empty() {
            return;
        }
        let start = self.tokens.partition_point(|t| t.0 < h);
        for k in 0..self.tokens.len() {
            let i = self.tokens[(start + k) % self.tokens.len()].1;
            if !out.contains(&i) {
                out.push(i);
                if out.len() == self.replication_factor.min(self.ingesters) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_spread_evenly_on_distinct_replicas() {
        let urls: Vec<String> = (0..5).map(|i| format!("http://10.0.0.{i}:9090")).collect();
        let ring = Ring::new(&urls, 3);
        assert_eq!(ring.quorum(), 2);
        let mut load = [0usize; 5];
        let mut owners = Vec::new();
        for s in 0..20_000u64 {
            ring.owners(xxh3_64(&s.to_le_bytes()), &mut owners);
            assert_eq!(owners.len(), 3);
            let mut d = owners.clone();
            d.sort_unstable();
            d.dedup();
            assert_eq!(d.len(), 3, "replicas are distinct");
            for &o in &owners {
                load[o] += 1;
            }
        }
        // 60,000 placements over 5 ingesters: each within 20% of 12,000.
        for l in load {
            assert!((9_600..=14_400).contains(&l), "{load:?}");
        }
        // Removing an ingester moves only its series.
        let fewer = Ring::new(&urls[..4], 3);
        let mut moved = 0;
        let mut a = Vec::new();
        for s in 0..20_000u64 {
            let h = xxh3_64(&s.to_le_bytes());
            ring.owners(h, &mut owners);
            fewer.owners(h, &mut a);
            if !owners.contains(&4) && owners != a {
                moved += 1;
            }
        }
        assert_eq!(moved, 0);
        // Replication factor above the ingester count: every ingester.
        let two = Ring::new(&urls[..2], 3);
        two.owners(7, &mut owners);
        assert_eq!(owners.len(), 2);
        assert_eq!(two.quorum(), 2);
    }

    #[test]
    fn the_primary_is_the_first_owner_and_label_order_does_not_matter() {
        let urls: Vec<String> = (0..3).map(|i| format!("http://10.0.0.{i}:9090")).collect();
        let ring = Ring::new(&urls, 2);
        let mut owners = Vec::new();
        for s in 0..1000u64 {
            let h = xxh3_64(&s.to_le_bytes());
            ring.owners(h, &mut owners);
            assert_eq!(ring.primary(h), owners.first().copied());
        }
        let a = labels_hash([("__name__", "up"), ("job", "a"), ("Z", "1")]);
        let b = labels_hash([("job", "a"), ("Z", "1"), ("__name__", "up")]);
        assert_eq!(a, b);
        assert_ne!(
            a,
            labels_hash([("__name__", "up"), ("job", "b"), ("Z", "1")])
        );
        assert_eq!(Ring::new(&[], 1).primary(5), None);
    }
}
