//! The float histogram encoder: Prometheus's bytes for Prometheus's chunk, and random
//! series (growing counts, new and vanishing empty buckets, resets, stale markers, schema
//! and zero-threshold changes, gauges, custom buckets) read back by the decoder.

use std::sync::Arc;

use crate::histogram_proto::Histogram;
use proptest::prelude::*;
use strata_vocab::{CounterResetHint, FloatHistogram};

use super::super::tests::{GO_FLOAT_HISTOGRAMS, hex};
use super::super::{Kind, STALE_NAN, counter_reset_header, decode};
use super::{BucketIter, FloatHistogramEncoder, Insert, expand_spans_both_ways};
use crate::histogram_proto::BucketSpan;

#[test]
fn prometheus_chunk_is_encoded_to_the_same_bytes() {
    let golden = hex(GO_FLOAT_HISTOGRAMS);
    let hs = decode(Kind::Float, &golden).expect("decode");
    let mut enc = FloatHistogramEncoder::new();
    for h in &hs {
        assert!(enc.append(None, h.timestamp, h).expect("append").is_none());
    }
    assert_eq!(enc.time_range(), Some((0, 24 * 60_000)));
    assert_eq!(enc.counter_reset_header(), CounterResetHint::Unknown);
    assert_eq!(enc.finish(), golden);
}

fn span(offset: i32, length: u32) -> BucketSpan {
    BucketSpan { offset, length }
}

#[test]
fn bucket_iterator_and_both_way_expansion_are_prometheus() {
    // The example of `expandSpansAndBuckets`' doc comment.
    let a = [span(0, 2), span(2, 1), span(3, 2), span(3, 1), span(1, 1)];
    let b = [span(0, 3), span(1, 1), span(1, 4), span(3, 3)];
    assert_eq!(
        BucketIter::new(&a).collect::<Vec<_>>(),
        vec![0, 1, 4, 8, 9, 13, 15]
    );
    assert_eq!(
        BucketIter::new(&b).collect::<Vec<_>>(),
        vec![0, 1, 2, 4, 6, 7, 8, 9, 13, 14, 15]
    );
    let (forward, backward, merged) = expand_spans_both_ways(&a, &b);
    let ins = |pos, num, bucket_idx| Insert {
        pos,
        num,
        bucket_idx,
    };
    assert_eq!(forward, vec![ins(2, 1, 0), ins(3, 2, 0), ins(6, 1, 0)]);
    assert!(backward.is_empty());
    assert_eq!(merged, vec![span(0, 3), span(1, 1), span(1, 4), span(3, 3)]);
}

/// A small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn quarter(&mut self, max: u64) -> f64 {
        self.below(max * 4 + 1) as f64 / 4.0
    }
    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.unit().max(1e-12), self.unit());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// What the encoder should do with a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Append,
    /// A new chunk with this header.
    Cut(CounterResetHint),
}

struct Generated {
    t: i64,
    message: Histogram,
    /// The histogram (all buckets, the empty ones too) or `None` for a stale marker.
    want: Option<FloatHistogram>,
    expect: Expect,
}

const CUSTOM_BOUNDS: [f64; 7] = [0.1, 0.25, 0.5, 1.0, 2.5, 1.0 / 3.0, 10.0];

fn series(seed: u64, n: usize, gauge: bool, schema: i32) -> Vec<Generated> {
    let mut rng = Rng(seed);
    let custom = schema == -53;
    let mut bounds: Vec<f64> = CUSTOM_BOUNDS.to_vec();
    bounds.sort_by(f64::total_cmp);
    let thresholds = [0.0, 2f64.powi(-128), 0.001, 1.0];
    let mut h = FloatHistogram {
        hint: if gauge {
            CounterResetHint::Gauge
        } else {
            CounterResetHint::Unknown
        },
        schema,
        zero_threshold: if custom { 0.0 } else { 2f64.powi(-128) },
        custom_values: if custom {
            Arc::from(bounds.clone())
        } else {
            Arc::from(Vec::new())
        },
        ..FloatHistogram::default()
    };
    let (lo, hi) = if custom {
        (0, bounds.len() as i32)
    } else {
        (-12, 12)
    };
    let add_bucket = |rng: &mut Rng, h: &mut FloatHistogram, positive: bool, count: f64| {
        let idx = lo + rng.below((hi - lo + 1) as u64) as i32;
        let side = if positive || custom {
            &mut h.positive
        } else {
            &mut h.negative
        };
        if let Err(at) = side.binary_search_by_key(&idx, |b| b.0) {
            side.insert(at, (idx, count));
        }
    };
    for _ in 0..3 {
        let c = rng.quarter(5);
        add_bucket(&mut rng, &mut h, true, c);
        let c = rng.quarter(5);
        add_bucket(&mut rng, &mut h, false, c);
    }
    let mut t = 1_700_000_000_000i64 + rng.below(1000) as i64;
    let mut prev_stale = false;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        t += 15_000
            + if rng.chance(0.2) {
                rng.below(3000) as i64
            } else {
                0
            };
        let mut expect = Expect::Append;
        let mut hint_reset = false;
        let stale = rng.chance(0.04);
        if gauge {
            for b in h.positive.iter_mut().chain(h.negative.iter_mut()) {
                b.1 = rng.quarter(8);
            }
            if rng.chance(0.2) {
                let c = rng.quarter(8);
                let positive = rng.chance(0.5);
                add_bucket(&mut rng, &mut h, positive, c);
            }
            if rng.chance(0.1) && h.positive.len() > 1 {
                let at = rng.below(h.positive.len() as u64) as usize;
                h.positive.remove(at);
            }
            if !custom {
                h.zero_count = rng.quarter(3);
            }
            h.sum = rng.unit() * 100.0 - 20.0;
            if !custom && rng.chance(0.03) {
                h.schema = -4 + rng.below(13) as i32;
            }
            if !custom && rng.chance(0.03) {
                h.zero_threshold = thresholds[rng.below(4) as usize];
            }
        } else {
            let old_count = h.count;
            let (old_schema, old_zt) = (h.schema, h.zero_threshold);
            if i > 0 && rng.chance(0.05) && old_count >= 4.0 {
                // A counter reset: fewer observations than before.
                h.positive.clear();
                h.negative.clear();
                h.zero_count = 0.0;
                h.sum = 0.0;
                add_bucket(&mut rng, &mut h, true, 1.0);
            } else if !custom && rng.chance(0.03) {
                h.schema = -4 + rng.below(13) as i32;
            } else if !custom && rng.chance(0.03) {
                h.zero_threshold = thresholds[rng.below(4) as usize];
            } else {
                if rng.chance(0.15) {
                    // A new bucket, empty or not.
                    let c = if rng.chance(0.5) { 0.0 } else { rng.quarter(3) };
                    let positive = rng.chance(0.7);
                    add_bucket(&mut rng, &mut h, positive, c);
                }
                for b in h.positive.iter_mut().chain(h.negative.iter_mut()) {
                    if rng.chance(0.6) {
                        b.1 += rng.quarter(4);
                    }
                }
                if !custom && rng.chance(0.3) {
                    h.zero_count += rng.quarter(2);
                }
                h.sum += rng.unit() * 10.0;
            }
            hint_reset = i > 0 && rng.chance(0.02);
            h.count = h.zero_count
                + h.positive
                    .iter()
                    .chain(h.negative.iter())
                    .map(|b| b.1)
                    .sum::<f64>();
            if i > 0 && !stale {
                expect = if hint_reset {
                    Expect::Cut(CounterResetHint::Reset)
                } else if prev_stale {
                    Expect::Cut(CounterResetHint::Unknown)
                } else if h.count < old_count {
                    Expect::Cut(CounterResetHint::Reset)
                } else if h.schema != old_schema || h.zero_threshold != old_zt {
                    Expect::Cut(CounterResetHint::Unknown)
                } else {
                    Expect::Append
                };
            } else if i > 0 && hint_reset {
                expect = Expect::Cut(CounterResetHint::Reset);
            }
        }
        if gauge && i > 0 && !stale {
            let prev = out.last().map(|g: &Generated| g.message.clone());
            let changed = prev.is_some_and(|p: Histogram| {
                p.schema != h.schema || p.zero_threshold != h.zero_threshold
            });
            if prev_stale || changed {
                expect = Expect::Cut(CounterResetHint::Gauge);
            }
        }
        // The message leaves out some empty buckets (the chunk may hold them).
        let mut sent = h.clone();
        for side in [&mut sent.positive, &mut sent.negative] {
            side.retain(|b| b.1 != 0.0 || rng.chance(0.5));
        }
        if hint_reset {
            sent.hint = CounterResetHint::Reset;
        }
        let mut message = Histogram::from_float(t, &sent);
        if stale {
            message.sum = f64::from_bits(STALE_NAN);
        }
        out.push(Generated {
            t,
            message,
            want: (!stale).then(|| h.clone()),
            expect,
        });
        prev_stale = stale;
    }
    out
}

/// `samples` with every count four times as large: the generator's counts are quarters,
/// so these are whole (and compare as before: same resets, same appends).
fn whole_counts(mut samples: Vec<Generated>) -> Vec<Generated> {
    use crate::histogram_proto::{Count, ZeroCount};
    for g in &mut samples {
        let m = &mut g.message;
        if let Some(Count::CountFloat(c)) = &mut m.count {
            *c *= 4.0;
        }
        if let Some(ZeroCount::ZeroCountFloat(c)) = &mut m.zero_count {
            *c *= 4.0;
        }
        for c in m
            .positive_counts
            .iter_mut()
            .chain(m.negative_counts.iter_mut())
        {
            *c *= 4.0;
        }
        if let Some(w) = &mut g.want {
            w.count *= 4.0;
            w.zero_count *= 4.0;
            for b in w.positive.iter_mut().chain(w.negative.iter_mut()) {
                b.1 *= 4.0;
            }
        }
    }
    samples
}

/// The chunks of `samples` (cut only where the encoder says), with their encodings;
/// `best`: each chunk in the encoding that holds its first sample best.
fn encode_all(samples: &[Generated], best: bool) -> Vec<(Kind, Vec<u8>, Vec<usize>)> {
    let mut chunks = Vec::new();
    let mut enc = if best {
        FloatHistogramEncoder::best()
    } else {
        FloatHistogramEncoder::new()
    };
    let mut members = Vec::new();
    for (i, g) in samples.iter().enumerate() {
        match enc.append(None, g.t, &g.message).expect("append") {
            None => {
                assert!(
                    i == 0 || g.expect == Expect::Append,
                    "sample {i}: appended, expected {:?}",
                    g.expect
                );
                members.push(i);
            }
            Some(next) => {
                let Expect::Cut(header) = g.expect else {
                    panic!("sample {i}: a new chunk where none was expected");
                };
                assert_eq!(next.counter_reset_header(), header, "sample {i}");
                let done = std::mem::replace(&mut enc, next);
                chunks.push((done.kind(), done.finish(), std::mem::take(&mut members)));
                members.push(i);
            }
        }
    }
    chunks.push((enc.kind(), enc.finish(), members));
    chunks
}

fn populated(v: &[(i32, f64)]) -> Vec<(i32, u64)> {
    v.iter()
        .filter(|b| b.1 != 0.0)
        .map(|b| (b.0, b.1.to_bits()))
        .collect()
}

fn check_round_trip(samples: &[Generated], gauge: bool, best: bool) -> Result<(), TestCaseError> {
    for (kind, bytes, members) in encode_all(samples, best) {
        let got = decode(kind, &bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(got.len(), members.len());
        let header = counter_reset_header(&bytes);
        if gauge {
            prop_assert_eq!(header, Some(CounterResetHint::Gauge));
        }
        for (k, (m, &i)) in got.iter().zip(&members).enumerate() {
            let g = &samples[i];
            prop_assert_eq!(m.timestamp, g.t);
            let Some(want) = &g.want else {
                prop_assert_eq!(m.sum.to_bits(), STALE_NAN);
                continue;
            };
            let hint = if gauge {
                CounterResetHint::Gauge
            } else if k == 0 {
                CounterResetHint::Unknown
            } else {
                CounterResetHint::NotReset
            };
            prop_assert_eq!(m.reset_hint, hint as i32, "sample {}", i);
            let (_, h) = m
                .to_float()
                .map_err(|e| TestCaseError::fail(format!("sample {i}: {e}")))?;
            prop_assert_eq!(h.schema, want.schema, "sample {}", i);
            prop_assert_eq!(h.zero_threshold.to_bits(), want.zero_threshold.to_bits());
            prop_assert_eq!(h.count.to_bits(), want.count.to_bits(), "sample {}", i);
            prop_assert_eq!(h.zero_count.to_bits(), want.zero_count.to_bits());
            prop_assert_eq!(h.sum.to_bits(), want.sum.to_bits(), "sample {}", i);
            prop_assert_eq!(&h.custom_values[..], &want.custom_values[..]);
            prop_assert_eq!(
                populated(&h.positive),
                populated(&want.positive),
                "sample {}",
                i
            );
            prop_assert_eq!(populated(&h.negative), populated(&want.negative));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_series_round_trip(
        seed in any::<u64>(),
        n in 1usize..160,
        gauge in any::<bool>(),
        schema in prop_oneof![-4i32..=8, Just(-53)],
    ) {
        let samples = series(seed, n, gauge, schema);
        check_round_trip(&samples, gauge, false)?;
    }

    #[test]
    fn random_whole_count_series_round_trip_through_integer_chunks(
        seed in any::<u64>(),
        n in 1usize..160,
        gauge in any::<bool>(),
        schema in prop_oneof![-4i32..=8, Just(-53)],
    ) {
        let samples = whole_counts(series(seed, n, gauge, schema));
        let chunks = encode_all(&samples, true);
        prop_assert!(chunks.iter().all(|c| c.0 == Kind::Integer));
        check_round_trip(&samples, gauge, true)?;
    }
}

#[test]
fn a_chunk_after_a_cut_takes_its_header_from_the_previous_one() {
    let samples = series(7, 6, false, 3);
    let mut first = FloatHistogramEncoder::new();
    for g in &samples[..3] {
        assert!(
            first
                .append(None, g.t, &g.message)
                .expect("append")
                .is_none()
        );
    }
    let mut next = FloatHistogramEncoder::new();
    let g = &samples[3];
    assert!(
        next.append(Some(&first), g.t, &g.message)
            .expect("append")
            .is_none()
    );
    assert_eq!(next.counter_reset_header(), CounterResetHint::NotReset);
    // A histogram with fewer observations than the previous chunk's last.
    let mut reset = samples[0].message.clone();
    reset.count = Some(crate::histogram_proto::Count::CountFloat(0.0));
    let mut next = FloatHistogramEncoder::new();
    assert!(next.append(Some(&first), g.t, &reset).is_ok());
    assert_eq!(next.counter_reset_header(), CounterResetHint::Reset);
}

#[test]
fn buckets_that_do_not_match_their_spans_are_refused() {
    let mut m = series(1, 1, false, 0).remove(0).message;
    m.positive_counts.push(1.0);
    assert!(FloatHistogramEncoder::new().append(None, 0, &m).is_err());
}

/// A latency histogram as a busy service exports it: schema 3, observations lognormal
/// (about 40 buckets in use), scraped every 15 s, 120 samples to a chunk.
pub(crate) fn realistic_series(n: usize) -> Vec<(i64, Histogram)> {
    let mut rng = Rng(42);
    let mut h = FloatHistogram {
        schema: 3,
        zero_threshold: 2f64.powi(-128),
        ..FloatHistogram::default()
    };
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        for _ in 0..200 {
            // Median 50 ms, σ 0.45 (e-folds).
            let v = (0.05f64.ln() + 0.45 * rng.normal()).exp();
            let idx = (v.log2() * 8.0).ceil() as i32;
            match h.positive.binary_search_by_key(&idx, |b| b.0) {
                Ok(at) => h.positive[at].1 += 1.0,
                Err(at) => h.positive.insert(at, (idx, 1.0)),
            }
            h.count += 1.0;
            h.sum += v;
        }
        let t = 1_700_000_000_000 + i as i64 * 15_000;
        out.push((t, Histogram::from_float(t, &h)));
    }
    out
}

#[test]
fn bytes_per_sample_of_a_realistic_series() {
    let series = realistic_series(480);
    let mut total = 0usize;
    let mut buckets = 0usize;
    for chunk in series.chunks(120) {
        let mut enc = FloatHistogramEncoder::new();
        for (t, h) in chunk {
            let mut e = enc.append(None, *t, h).expect("append");
            assert!(e.take().is_none(), "one chunk for 120 samples");
        }
        total += enc.len();
        buckets = chunk[chunk.len() - 1].1.positive_counts.len();
        let back = decode(Kind::Float, &enc.finish()).expect("decode");
        assert_eq!(back.len(), 120);
    }
    let per_sample = total as f64 / series.len() as f64;
    eprintln!(
        "FLOAT_HISTOGRAM: {per_sample:.1} bytes per sample ({buckets} buckets, 120 samples a chunk)"
    );
    assert!((30..=60).contains(&buckets), "{buckets} buckets");
    assert!(per_sample < 8.0 * (3.0 + buckets as f64), "{per_sample}");
}

#[test]
fn the_sparse_form_encodes_as_its_message() {
    let mut by_message = FloatHistogramEncoder::new();
    let mut by_float = FloatHistogramEncoder::new();
    for k in 0..50i32 {
        let h = FloatHistogram {
            schema: 1,
            count: f64::from(10 * k),
            sum: f64::from(k) * 0.5,
            zero_threshold: 0.001,
            zero_count: f64::from(k),
            positive: (0..(k % 7 + 1))
                .map(|i| (i * 2 - 3, f64::from(k + i)))
                .collect(),
            negative: vec![(1, f64::from(k))],
            ..FloatHistogram::default()
        };
        let t = i64::from(k) * 15_000;
        let a = by_message
            .append(None, t, &Histogram::from_float(t, &h))
            .expect("message");
        let b = by_float.append_float(None, t, &h).expect("float");
        assert_eq!(a.is_some(), b.is_some());
        if let (Some(a), Some(b)) = (a, b) {
            by_message = a;
            by_float = b;
        }
        assert_eq!(by_message.bytes(), by_float.bytes(), "k={k}");
    }
}

#[test]
fn counts_that_are_not_whole_start_a_float_chunk() {
    let h = |t: i64, c: f64| {
        Histogram::from_float(
            t,
            &FloatHistogram {
                schema: 0,
                count: c,
                sum: c,
                positive: vec![(1, c)],
                ..FloatHistogram::default()
            },
        )
    };
    let mut enc = FloatHistogramEncoder::best();
    assert!(enc.append(None, 0, &h(0, 1.0)).expect("append").is_none());
    assert!(enc.append(None, 1, &h(1, 2.0)).expect("append").is_none());
    assert_eq!(enc.kind(), Kind::Integer);
    let mut next = enc
        .append(None, 2, &h(2, 2.5))
        .expect("append")
        .expect("a new chunk");
    assert_eq!(next.kind(), Kind::Float);
    assert_eq!(next.counter_reset_header(), CounterResetHint::Unknown);
    // A float chunk takes whole counts too.
    assert!(next.append(None, 3, &h(3, 3.0)).expect("append").is_none());
    let got = decode(Kind::Float, next.bytes()).expect("decode");
    assert_eq!(got.len(), 2);
    let ints = decode(Kind::Integer, enc.bytes()).expect("decode");
    assert_eq!(ints.len(), 2);
    assert_eq!(ints[1].positive_counts, vec![2.0]);
}
