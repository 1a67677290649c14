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

    /// Merges a newer report of the same alert, as Alertmanager's `Alert.Merge`: the
    /// earliest start, the latest information; a resolved report ends it.
    pub fn merge(&mut self, newer: Alert) {
        let starts_at = self.starts_at.min(newer.starts_at);
        *self = Alert { starts_at, ..newer };
    }
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
        };
        let b = Alert {
            starts_at: 3000,
            ends_at: 2000,
            updated_at: 3000,
            ..a.clone()
        };
        a.merge(b);
        assert_eq!(a.starts_at, 1000);
        assert!(a.resolved(2000));
    }
}
