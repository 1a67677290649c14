//! The histogram chunk decoder against a chunk Prometheus wrote (the float histogram
//! chunk expected by `storage/remote/read_handler_test.go`, `TestStreamReadEndpoint`) and
//! against integer histogram chunks written here as `HistogramAppender.appendHistogram`
//! writes them (layouts, stale markers, gauge header, custom buckets).

use crate::histogram_proto::{BucketSpan, Count, Histogram, ZeroCount};
use strata_vocab::CounterResetHint;

use super::super::bits::BitWriter;
use super::super::varbit::{write_int, write_uint};
use super::super::xor::write_value;
use super::{Kind, STALE_NAN, decode};

/// `tsdbutil.GenerateTestFloatHistograms(25)`, one a minute from 0, in a
/// `FLOAT_HISTOGRAM` chunk.
pub(super) const GO_FLOAT_HISTOGRAMS: &str = concat!(
    "001900ff3f50624dd2f1a9fc8ca4946524a24028000000000000400000000000000040326666666666663ff000000000",
    "000040000000000000003ff00000000000003ff00000000000003ff000000000000040000000000000003ff000000000",
    "00003ff0000000000000f8ea60d62f7603d21fc25fffd80f097fff097fff097fff603c25fffc25fff4bd617b349fffff",
    "fffffffd80f585ec07b01ec07ac2f603d80da48fbda0f5eb9ffffffffffffd617b41eb0bd617ac2f683d617ac2d0bec0",
    "b8acccccccccccdb41ec0bda0f683da0f605ed07b41a09999333333333333b02e7605ec0bd8173b02f605a38d427ea1f",
    "bcea13e667509f32dc24ee07bb29ffffffffffff509fb81ea13f509fa84fdc0f509fa84f6d17fb42f6e7b55555555555",
    "7703da17b81ee07b81ed0bdc0f7034999d99999999999ed0b9da17b42f685ced0bda16d8377b03fb32e4cccccccccce7",
    "607e667607e65131dd95aaaaaaaaaaabb03f1d81fd81fd81f8ec0fec0fa5e7b73cffffffffffff19c6319c62d44fc63a",
    "f5effffffffffffce339ce339a05eb13e0acccccccccccc7589f18c7589f18a0cef070c99999999999b589fbc1eb13f5",
    "89fac4fde0f589fac4f40fdc1707aaaaaaaaaaab783dc17bc1ef07bc1ee0bde0f78343998e7fffffffffffb82e7705ee",
    "0bdc173b82f705a05ed0fc16aaaaaaaaaaa9da1f999da1f994198c2d99999999999da1f8ed0fed0fed0fc7687f687d1d",
    "e73c99999999999a338c6338c5026305aaaaaaaaaaaa719ce719cd06f609f0cfffffffffffe3b04f8c63b04f8c502618",
    "3d55555555555b04f87609fb04fd827c3b04fd827a1fc71c99999999999a18e18618e184",
);

pub(super) fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn spans() -> Vec<BucketSpan> {
    vec![
        BucketSpan {
            offset: 0,
            length: 2,
        },
        BucketSpan {
            offset: 1,
            length: 2,
        },
    ]
}

#[test]
fn decodes_a_float_histogram_chunk_prometheus_wrote() {
    let got = decode(Kind::Float, &hex(GO_FLOAT_HISTOGRAMS)).expect("decode");
    assert_eq!(got.len(), 25);
    for (i, h) in got.iter().enumerate() {
        let f = i as f64;
        let buckets = vec![f + 1.0, f + 2.0, f + 1.0, f + 1.0];
        let hint = if i == 0 {
            CounterResetHint::Unknown
        } else {
            CounterResetHint::NotReset
        };
        let want = Histogram {
            count: Some(Count::CountFloat(12.0 + f * 9.0)),
            sum: 18.4 * (f + 1.0),
            schema: 1,
            zero_threshold: 0.001,
            zero_count: Some(ZeroCount::ZeroCountFloat(2.0 + f)),
            negative_spans: spans(),
            negative_deltas: vec![],
            negative_counts: buckets.clone(),
            positive_spans: spans(),
            positive_deltas: vec![],
            positive_counts: buckets,
            reset_hint: hint as i32,
            timestamp: i as i64 * 60_000,
            custom_values: vec![],
        };
        assert_eq!(*h, want, "sample {i}");
        assert!(h.to_float().is_ok());
    }
}

/// One integer histogram to write: count, zero count, sum, bucket counts as deltas.
struct IntHist {
    t: i64,
    count: u64,
    zero: u64,
    sum: f64,
    pos: Vec<i64>,
    neg: Vec<i64>,
}

/// A `HISTOGRAM` chunk of `hists`, written as Prometheus's appender does.
fn integer_chunk(
    gauge: bool,
    schema: i64,
    zero_threshold_byte: Option<u8>,
    pos: &[(u64, i64)],
    neg: &[(u64, i64)],
    custom: &[f64],
    hists: &[IntHist],
) -> Vec<u8> {
    let mut w = BitWriter::new(vec![0, 0, if gauge { 0b1100_0000 } else { 0 }]);
    match zero_threshold_byte {
        Some(b) => w.write_byte(b),
        None => {
            w.write_byte(255);
            w.write_bits(0.001f64.to_bits(), 64);
        }
    }
    write_int(&mut w, schema);
    for spans in [pos, neg] {
        write_uint(&mut w, spans.len() as u64);
        for (length, offset) in spans {
            write_uint(&mut w, *length);
            write_int(&mut w, *offset);
        }
    }
    if schema == -53 {
        write_uint(&mut w, custom.len() as u64);
        for c in custom {
            let scaled = c * 1000.0;
            if (0.0..=33_554_430.0).contains(&scaled) && scaled.fract() == 0.0 {
                write_uint(&mut w, scaled as u64 + 1);
            } else {
                w.write_bit(false);
                w.write_bits(c.to_bits(), 64);
            }
        }
    }
    let (mut t_delta, mut cnt_delta, mut zero_delta) = (0i64, 0i64, 0i64);
    let (mut leading, mut trailing) = (0xffu8, 0u8);
    // The last sample, and the last one that was not stale (Prometheus appends only stale
    // samples to a chunk after a stale one).
    let mut last: Option<&IntHist> = None;
    let mut counted: Option<&IntHist> = None;
    let mut bucket_delta = vec![0i64; hists[0].pos.len() + hists[0].neg.len()];
    for h in hists {
        let stale = h.sum.to_bits() == STALE_NAN;
        match (last, counted) {
            (Some(l), Some(p)) => {
                let td = h.t - l.t;
                write_int(&mut w, td - t_delta);
                t_delta = td;
                if stale {
                    // Prometheus writes zero deltas of delta for the counts of a stale
                    // sample, and no buckets.
                    write_int(&mut w, 0);
                    write_int(&mut w, 0);
                } else {
                    let cd = h.count as i64 - p.count as i64;
                    let zd = h.zero as i64 - p.zero as i64;
                    write_int(&mut w, cd - cnt_delta);
                    write_int(&mut w, zd - zero_delta);
                    cnt_delta = cd;
                    zero_delta = zd;
                }
                write_value(
                    &mut w,
                    h.sum.to_bits(),
                    l.sum.to_bits(),
                    &mut leading,
                    &mut trailing,
                );
                if !stale {
                    let before = p.pos.iter().chain(&p.neg);
                    for (i, (b, a)) in h.pos.iter().chain(&h.neg).zip(before).enumerate() {
                        let delta = b - a;
                        write_int(&mut w, delta - bucket_delta[i]);
                        bucket_delta[i] = delta;
                    }
                }
            }
            _ => {
                write_int(&mut w, h.t);
                write_uint(&mut w, h.count);
                write_uint(&mut w, h.zero);
                w.write_bits(h.sum.to_bits(), 64);
                for b in h.pos.iter().chain(&h.neg) {
                    write_int(&mut w, *b);
                }
            }
        }
        last = Some(h);
        if !stale {
            counted = Some(h);
        }
    }
    let mut bytes = w.into_bytes();
    bytes[..2].copy_from_slice(&(hists.len() as u16).to_be_bytes());
    bytes
}

#[test]
fn decodes_integer_histogram_chunks() {
    // Schema 0, zero threshold 2^-128 (byte 116), positive spans [0,2] [2,1], negative
    // [-1,1]; counts as bucket deltas.
    let hists = vec![
        IntHist {
            t: 1_000,
            count: 5,
            zero: 1,
            sum: 7.5,
            pos: vec![1, 1, -1],
            neg: vec![1],
        },
        IntHist {
            t: 16_000,
            count: 9,
            zero: 2,
            sum: 12.25,
            pos: vec![2, 1, -2],
            neg: vec![2],
        },
        IntHist {
            t: 31_000,
            count: 14,
            zero: 2,
            sum: 20.0,
            pos: vec![4, 0, -3],
            neg: vec![3],
        },
        IntHist {
            t: 47_000,
            count: 20,
            zero: 3,
            sum: 20.0,
            pos: vec![5, 2, -5],
            neg: vec![3],
        },
    ];
    let data = integer_chunk(
        false,
        0,
        Some(116),
        &[(2, 0), (1, 2)],
        &[(1, -1)],
        &[],
        &hists,
    );
    let got = decode(Kind::Integer, &data).expect("decode");
    assert_eq!(got.len(), hists.len());
    let zt = f64::powi(2.0, -128);
    for (i, (g, h)) in got.iter().zip(&hists).enumerate() {
        let absolute = |d: &[i64]| {
            d.iter()
                .scan(0i64, |acc, x| {
                    *acc += x;
                    Some(*acc as f64)
                })
                .collect::<Vec<f64>>()
        };
        assert_eq!(g.timestamp, h.t);
        assert_eq!(g.count, Some(Count::CountFloat(h.count as f64)));
        assert_eq!(g.zero_count, Some(ZeroCount::ZeroCountFloat(h.zero as f64)));
        assert_eq!(g.sum, h.sum);
        assert_eq!(g.zero_threshold, zt);
        assert_eq!(g.positive_counts, absolute(&h.pos), "sample {i}");
        assert_eq!(g.negative_counts, absolute(&h.neg), "sample {i}");
        assert_eq!(
            g.positive_spans[1],
            BucketSpan {
                offset: 2,
                length: 1
            }
        );
        assert_eq!(
            g.negative_spans,
            vec![BucketSpan {
                offset: -1,
                length: 1
            }]
        );
        let (_, f) = g.to_float().expect("valid");
        assert_eq!(
            f.positive,
            vec![
                (0, h.pos[0] as f64),
                (1, absolute(&h.pos)[1]),
                (4, absolute(&h.pos)[2])
            ]
        );
    }
    assert_eq!(
        reencoded(&got),
        data,
        "the encoder writes Prometheus's bytes"
    );
}

/// `samples` appended to an encoder that picks the best encoding: its only chunk's bytes.
fn reencoded(samples: &[Histogram]) -> Vec<u8> {
    let mut enc = super::FloatHistogramEncoder::best();
    for m in samples {
        assert!(enc.append(None, m.timestamp, m).expect("append").is_none());
    }
    assert_eq!(enc.kind(), Kind::Integer, "whole counts: an integer chunk");
    enc.finish()
}

#[test]
fn stale_samples_are_their_sum_only() {
    let stale = f64::from_bits(STALE_NAN);
    let hists = vec![
        IntHist {
            t: 0,
            count: 2,
            zero: 0,
            sum: 1.0,
            pos: vec![2],
            neg: vec![],
        },
        IntHist {
            t: 10,
            count: 3,
            zero: 0,
            sum: 2.0,
            pos: vec![3],
            neg: vec![],
        },
        IntHist {
            t: 20,
            count: 0,
            zero: 0,
            sum: stale,
            pos: vec![],
            neg: vec![],
        },
        IntHist {
            t: 35,
            count: 0,
            zero: 0,
            sum: stale,
            pos: vec![],
            neg: vec![],
        },
    ];
    let data = integer_chunk(true, 3, Some(0), &[(1, 5)], &[], &[], &hists);
    let got = decode(Kind::Integer, &data).expect("decode");
    assert_eq!(got.len(), 4);
    assert_eq!(got[1].positive_counts, vec![3.0]);
    assert_eq!(got[1].count, Some(Count::CountFloat(3.0)));
    for g in &got[2..] {
        assert_eq!(g.sum.to_bits(), STALE_NAN);
        assert!(g.positive_counts.is_empty() && g.positive_spans.is_empty());
    }
    assert_eq!((got[2].timestamp, got[3].timestamp), (20, 35));
    // A gauge chunk: every sample says so.
    assert!(
        got[..2]
            .iter()
            .all(|g| g.reset_hint == CounterResetHint::Gauge as i32)
    );
    assert_eq!(got[0].zero_threshold, 0.0);
    // Read back, a stale sample says nothing of its kind: written as the gauge's marker.
    let mut again = got.clone();
    for g in &mut again[2..] {
        g.reset_hint = CounterResetHint::Gauge as i32;
    }
    assert_eq!(
        reencoded(&again),
        data,
        "the encoder writes Prometheus's bytes"
    );
}

#[test]
fn custom_bucket_bounds_are_read() {
    let hists = vec![IntHist {
        t: 5,
        count: 3,
        zero: 0,
        sum: 0.7,
        pos: vec![1, 0, 0],
        neg: vec![],
    }];
    let bounds = [0.25, 1.0, -3.5, 123_456.789];
    let data = integer_chunk(false, -53, Some(0), &[(3, 0)], &[], &bounds, &hists);
    let got = decode(Kind::Integer, &data).expect("decode");
    assert_eq!(got[0].schema, -53);
    assert_eq!(got[0].custom_values, bounds.to_vec());
}

#[test]
fn broken_chunks_are_errors_not_panics() {
    assert!(decode(Kind::Float, &[]).is_err());
    assert_eq!(decode(Kind::Float, &[0, 0, 0]), Ok(vec![]));
    let mut gold = hex(GO_FLOAT_HISTOGRAMS);
    gold.truncate(gold.len() / 2);
    assert!(decode(Kind::Float, &gold).is_err());
    // A span count and bucket count far larger than the bits left.
    let mut w = BitWriter::new(vec![0, 1, 0]);
    w.write_byte(0);
    write_int(&mut w, 0);
    write_uint(&mut w, 1);
    write_uint(&mut w, u64::from(u32::MAX));
    write_int(&mut w, 0);
    write_uint(&mut w, 0);
    assert!(decode(Kind::Integer, &w.into_bytes()).is_err());
    for seed in 0u64..2000 {
        let bytes: Vec<u8> = (0..40)
            .map(|i| (seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(i) & 0xff) as u8)
            .collect();
        let _ = decode(Kind::Integer, &bytes);
        let _ = decode(Kind::Float, &bytes);
    }
}
