//! The head's histogram chunks against a plain sorted map of what was inserted: every
//! sample comes back equal (Prometheus's `Equals`: empty buckets aside), in time order,
//! with Prometheus's hints, and in far fewer bytes than decoded histograms take.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use strata_vocab::histogram::{CounterResetHint, FloatHistogram};

use super::HistChunks;

const RANGE: i64 = 7_200_000;

/// A counter histogram of schema 3 whose bucket `i` (of `first..first+n`) holds `base + i`.
fn counter(base: f64, first: i32, n: i32) -> FloatHistogram {
    let positive: Vec<(i32, f64)> = (0..n).map(|i| (first + i, base + f64::from(i))).collect();
    let count = positive.iter().map(|b| b.1).sum::<f64>() + base;
    FloatHistogram {
        schema: 3,
        zero_threshold: 1e-128,
        zero_count: base,
        count,
        sum: count * 1.5,
        positive,
        ..FloatHistogram::default()
    }
}

fn all(c: &HistChunks) -> Vec<(i64, Arc<FloatHistogram>)> {
    let mut out = Vec::new();
    c.range(i64::MIN, i64::MAX, &mut out);
    out
}

fn assert_same(got: &[(i64, Arc<FloatHistogram>)], want: &BTreeMap<i64, FloatHistogram>) {
    let ts: Vec<i64> = got.iter().map(|s| s.0).collect();
    let want_ts: Vec<i64> = want.keys().copied().collect();
    assert_eq!(ts, want_ts);
    for (t, h) in got {
        assert!(h.equals(&want[t]), "t={t}: {h:?} != {:?}", want[t]);
    }
}

#[test]
fn in_order_counters_round_trip_with_prometheus_hints() {
    let mut c = HistChunks::default();
    let mut want = BTreeMap::new();
    for k in 0..100i64 {
        // Buckets appear over time (recoding), and a reset at k = 60.
        let base = if k < 60 { k as f64 } else { (k - 60) as f64 };
        let h = counter(base, -2, 3 + (k as i32 % 40));
        c.insert(k * 15_000, Arc::new(h.clone()), RANGE);
        want.insert(k * 15_000, h);
    }
    let got = all(&c);
    assert_same(&got, &want);
    assert_eq!(c.len(), 100);
    assert_eq!(got[0].1.hint, CounterResetHint::Unknown);
    assert_eq!(got[1].1.hint, CounterResetHint::NotReset);
    // A new chunk after the reset: its first sample's hint is unknown, as Prometheus's.
    assert_eq!(got[60].1.hint, CounterResetHint::Unknown);
    assert_eq!(got[61].1.hint, CounterResetHint::NotReset);
    assert!(!c.sealed.is_empty());
    assert_eq!(c.min_time(), Some(0));
    assert_eq!(c.max_time(), Some(99 * 15_000));
    let mut part = Vec::new();
    c.range(30_000, 60_000, &mut part);
    assert_eq!(
        part.iter().map(|s| s.0).collect::<Vec<_>>(),
        [30_000, 45_000, 60_000]
    );
    assert!(c.at(45_000).is_some_and(|h| h.equals(&want[&45_000])));
    assert!(c.at(45_001).is_none());
}

#[test]
fn gauges_read_back_as_gauges() {
    let mut c = HistChunks::default();
    for k in 0..20i64 {
        let mut h = counter(((k * 7) % 5) as f64, 0, 4);
        h.hint = CounterResetHint::Gauge;
        c.insert(k, Arc::new(h), RANGE);
    }
    assert!(all(&c).iter().all(|s| s.1.hint == CounterResetHint::Gauge));
}

#[test]
fn chunks_never_span_two_block_ranges() {
    let mut c = HistChunks::default();
    for k in 0..40i64 {
        c.insert(k * 600_000, Arc::new(counter(k as f64, 0, 5)), RANGE);
    }
    assert!(c.sealed.iter().all(|s| s.min_t / RANGE == s.max_t / RANGE));
    c.truncate_before(2 * RANGE);
    let got = all(&c);
    assert_eq!(got.first().map(|s| s.0), Some(2 * RANGE));
    assert_eq!(got.len(), 40 - 24);
}

#[test]
fn compressed_far_below_decoded() {
    // 90 buckets, 20 observations a step spread over them: a client_golang-like series.
    let mut c = HistChunks::default();
    let mut counts = vec![0.0f64; 90];
    let mut decoded = 0usize;
    let mut seed = 7u64;
    for k in 0..1_000i64 {
        for _ in 0..20 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            counts[((seed >> 33) % 90) as usize] += 1.0;
        }
        let positive: Vec<(i32, f64)> = counts
            .iter()
            .enumerate()
            .map(|(i, c)| (i as i32 - 40, *c))
            .collect();
        let count = counts.iter().sum();
        let h = FloatHistogram {
            schema: 3,
            count,
            sum: count * 0.25,
            positive,
            ..FloatHistogram::default()
        };
        decoded += h.size_bytes();
        c.insert(k * 15_000, Arc::new(h), RANGE);
    }
    let per_sample = c.heap_bytes() as f64 / 1_000.0;
    eprintln!("{per_sample} bytes per sample, {} decoded", decoded / 1_000);
    // Integer chunks (whole counts): about 42 bytes a sample here.
    assert!(per_sample < 50.0, "{per_sample} bytes per histogram sample");
    assert!(
        c.heap_bytes() * 10 < decoded,
        "{} vs {decoded} decoded",
        c.heap_bytes()
    );
}

#[derive(Debug, Clone)]
enum Op {
    Insert {
        t: i64,
        base: u8,
        buckets: u8,
        gauge: bool,
    },
    Delete {
        from: i64,
        to: i64,
    },
    Truncate(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0i64..400, 0u8..20, 1u8..12, prop::bool::weighted(0.1))
            .prop_map(|(t, base, buckets, gauge)| Op::Insert { t: t * 1000, base, buckets, gauge }),
        1 => (0i64..400, 0i64..40).prop_map(|(f, n)| Op::Delete { from: f * 1000, to: (f + n) * 1000 }),
        1 => (0i64..200).prop_map(|t| Op::Truncate(t * 1000)),
    ]
}

proptest! {
    #[test]
    fn matches_a_sorted_map(ops in prop::collection::vec(op(), 1..120)) {
        let mut c = HistChunks::default();
        let mut want: BTreeMap<i64, FloatHistogram> = BTreeMap::new();
        for o in ops {
            match o {
                Op::Insert { t, base, buckets, gauge } => {
                    if want.contains_key(&t) {
                        continue;
                    }
                    let mut h = counter(f64::from(base), i32::from(base % 3) - 1, i32::from(buckets));
                    if gauge {
                        h.hint = CounterResetHint::Gauge;
                    }
                    c.insert(t, Arc::new(h.clone()), 100_000);
                    want.insert(t, h);
                }
                Op::Delete { from, to } => {
                    c.retain(|t| t < from || t > to);
                    want.retain(|t, _| *t < from || *t > to);
                }
                Op::Truncate(t) => {
                    c.truncate_before(t);
                    want.retain(|k, _| *k >= t);
                }
            }
            prop_assert_eq!(c.len(), want.len());
            prop_assert_eq!(c.min_time(), want.keys().next().copied());
            prop_assert_eq!(c.max_time(), want.keys().next_back().copied());
        }
        assert_same(&all(&c), &want);
        for (t, h) in &want {
            prop_assert!(c.at(*t).is_some_and(|g| g.equals(h)));
        }
    }
}
