//! The notifier's alert: what Prometheus (or our rule manager) posts, identified by
//! Alertmanager's fingerprint of its labels (FNV-1a 64 over the sorted label pairs, as
//! `model.LabelSet.Fingerprint`), firing until its `endsAt` passes.

use std::collections::BTreeMap;

/// Label set.
pub type LabelSet = BTreeMap<String, String>;

/// One alert held by the notifier.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// Labels.
    pub labels: LabelSet,
    /// Annotations.
    pub annotations: LabelSet,
    /// Start (ms).
    pub starts_at: i64,
    /// End (ms); in the future while firing.
    pub ends_at: i64,
    /// Last update (ms).
    pub updated_at: i64,
    /// Link back to the source.
    pub generator_url: String,
    /// `endsAt` was not given and is the resolve timeout (Alertmanager's `Timeout`).
    pub timeout: bool,
}

impl Alert {
    /// Alertmanager's fingerprint of the labels.
    pub fn fingerprint(&self) -> u64 {
        fingerprint(&self.labels)
    }

    /// Resolved at `now` (ms)?
    pub fn resolved(&self, now: i64) -> bool {
        self.ends_at <= now
    }

    /// Merges another report of the same alert, as Alertmanager's `Alert.Merge`: the later
    /// update wins, with the earliest start; a firing update keeps an older explicit end
    /// that is later, and of two resolved reports the later end wins.
    pub fn merge(&mut self, other: Alert, now: i64) {
        let (older, newer) = if other.updated_at < self.updated_at {
            (other, self.clone())
        } else {
            (self.clone(), other)
        };
        let mut res = newer.clone();
        if older.starts_at < newer.starts_at {
            res.starts_at = older.starts_at;
        }
        if newer.resolved(now) {
            if older.resolved(now) && older.ends_at > newer.ends_at {
                res.ends_at = older.ends_at;
            }
        } else if older.ends_at > newer.ends_at && !older.timeout {
            res.ends_at = older.ends_at;
        }
        *self = res;
    }
}

/// `model.LabelSet.Before`: fewer labels first, then by the values of the sorted names.
pub fn labels_before(a: &LabelSet, b: &LabelSet) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    if a.len() != b.len() {
        return a.len().cmp(&b.len());
    }
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    for n in names {
        match (a.get(n), b.get(n)) {
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    Ordering::Equal
}

/// `model.LabelSet.Fingerprint`: FNV-1a 64 over `name 0xff value 0xff` in name order.
pub fn fingerprint(labels: &LabelSet) -> u64 {
    const OFFSET: u64 = 14_695_981_039_346_656_037;
    const PRIME: u64 = 1_099_511_628_211;
    let mut h = OFFSET;
    let mut add = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(PRIME);
    };
    for (k, v) in labels {
        k.bytes().for_each(&mut add);
        add(0xff);
        v.bytes().for_each(&mut add);
        add(0xff);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_matches_prometheus_model() {
        // model.LabelSet{}.Fingerprint() is the FNV offset basis.
        assert_eq!(fingerprint(&LabelSet::new()), 14_695_981_039_346_656_037);
        // Fingerprints the Debian prometheus-alertmanager 0.25 reported for these labels.
        let l = LabelSet::from([("alertname".to_owned(), "Down".to_owned())]);
        assert_eq!(format!("{:016x}", fingerprint(&l)), "6accfd3d0992a914");
        let l3 = LabelSet::from([
            ("alertname".to_owned(), "Down".to_owned()),
            ("instance".to_owned(), "a:80".to_owned()),
            ("job".to_owned(), "api".to_owned()),
        ]);
        assert_eq!(format!("{:016x}", fingerprint(&l3)), "e23aff840237732d");
        let other = LabelSet::from([("alertname".to_owned(), "Up".to_owned())]);
        assert_ne!(fingerprint(&l), fingerprint(&other));
    }

    #[test]
    fn merge_keeps_the_earliest_start() {
        let mut a = Alert {
            labels: LabelSet::new(),
            annotations: LabelSet::new(),
            starts_at: 1000,
            ends_at: 5000,
            updated_at: 1000,
            generator_url: String::new(),
            timeout: false,
        };
        let b = Alert {
            starts_at: 3000,
            ends_at: 2000,
            updated_at: 3000,
            ..a.clone()
        };
        a.merge(b, 2500);
        assert_eq!(a.starts_at, 1000);
        assert!(a.resolved(2500));
    }
}
