//! The XOR codec against chunks Prometheus's own encoder wrote (the expectations of
//! `storage/remote/read_handler_test.go`, `TestStreamReadEndpoint`) and round trips of
//! arbitrary series.

use proptest::prelude::*;

use super::{ChunkError, MAX_SAMPLE_BYTES, XorEncoder, decode};

/// 120 samples, one a minute from 0, values 0, 100, … 11900 (`0+100x119`).
const GO_FIRST_120: &str = concat!(
    "0078000000000000000000e0d403c27c059400c1ac7de97a32d04fedb46e5b07ce94a36d64f9d0fd1a506d0a539d0e51",
    "ad0650bda8bfca815a032833a05287da05280fa0d281da3d2813a032835a072877a032815a0f2813b597f4501b40a507",
    "f40a501b43a502741e502b40651ef40e506b406502743a503b41a501f40a53fb40a5067406502b43e502f406506b40e5",
    "1e740a501b41a503f43a501b40a506740e5a4aff5c85cb88d7b80fe52b465bc8e74529ed14a1f6e27d28768d284e8329",
    "d68728de832856da57f2827434a06d0528ff414a06d0d28274fca0ad03286f41ca3ad032",
);

/// One sample: 7200000 ms, 12000.
const GO_ONE_AT_2H: &str = "000180f4ee0640c7700000000000";

/// 120 samples, one a minute from 7200000 ms, values 12000, 12100, … 23900.
const GO_SECOND_120: &str = concat!(
    "007880f4ee0640c7700000000000e0d403e03e94edb0bfd280fa05283da052873a032815a0f2817a0328f5a072833a05",
    "280da1d281fa0d280da0529f3a072835a032817a1f2815a032833a0528fda05280fa0d281da1d2813a032835a072d667",
    "f4b98b9721ab711fca4ee0474a1b4529fd14a1b6f27d284e8f28568329de8728d683284edc57d283b434a07d0528fb41",
    "4a19d03282b4fca0bd03286b41ca39d05281b434a0fdb4bfd280da052833a072875a032817a0f2815a0328f3a05283da",
    "05280fa1d281da0d2813a0329f5a072837a032815a1f2813a0d280da0528ffa05280da0d20",
);

/// One sample: 14400000 ms, 24000.
const GO_ONE_AT_4H: &str = "000180e8dd0d40d7700000000000";

/// The stale marker Prometheus writes when a series disappears.
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
    let mut e = XorEncoder::new();
    for &(t, v) in samples {
        e.append(t, v).expect("append");
    }
    e.finish()
}

/// `count` samples a minute apart from `t0`, values from `v0` up by 100.
fn minutely(t0: i64, v0: f64, count: usize) -> Vec<(i64, f64)> {
    (0..count)
        .map(|i| (t0 + i as i64 * 60_000, v0 + i as f64 * 100.0))
        .collect()
}

#[test]
fn encodes_byte_for_byte_as_prometheus() {
    let cases = [
        (GO_FIRST_120, minutely(0, 0.0, 120)),
        (GO_ONE_AT_2H, minutely(7_200_000, 12_000.0, 1)),
        (GO_SECOND_120, minutely(7_200_000, 12_000.0, 120)),
        (GO_ONE_AT_4H, minutely(14_400_000, 24_000.0, 1)),
    ];
    for (go, samples) in cases {
        assert_eq!(encode(&samples), hex(go), "{samples:?}");
        assert_eq!(decode(&hex(go)).expect("decode"), samples);
    }
}

#[test]
fn every_delta_of_delta_bucket_and_value_case_round_trips() {
    // Deltas of delta 0, ±14-bit, ±17-bit, ±20-bit and 64-bit, at the bucket edges.
    let deltas = [
        1_000,
        1_000,
        9_192,
        1_001,
        66_536,
        1_000,
        525_288,
        1_000,
        1 << 40,
        1,
        8_193,
        1,
    ];
    let mut t = -5_000i64;
    let mut samples = Vec::new();
    let values = [
        1.0,
        1.0,
        f64::from_bits(STALE_NAN),
        f64::NAN,
        -0.0,
        0.0,
        f64::INFINITY,
        f64::MIN_POSITIVE,
        1e300,
        f64::from_bits(1),
        2.0,
        2.5,
        3.0,
    ];
    for (i, v) in values.iter().enumerate() {
        samples.push((t, *v));
        t += deltas.get(i).copied().unwrap_or(15_000);
    }
    let got = decode(&encode(&samples)).expect("decode");
    assert_eq!(got.len(), samples.len());
    for (g, w) in got.iter().zip(&samples) {
        assert_eq!((g.0, g.1.to_bits()), (w.0, w.1.to_bits()));
    }
}

#[test]
fn broken_chunks_are_errors() {
    assert_eq!(decode(&[]), Err(ChunkError::Truncated));
    assert_eq!(decode(&[0]), Err(ChunkError::Truncated));
    assert_eq!(decode(&[0, 0]), Ok(vec![]));
    let mut good = hex(GO_FIRST_120);
    good.truncate(good.len() - 10);
    assert_eq!(decode(&good), Err(ChunkError::Truncated));
    // A count larger than the samples the bits hold.
    let mut more = hex(GO_ONE_AT_2H);
    more[1] = 2;
    assert_eq!(decode(&more), Err(ChunkError::Truncated));
    // Eleven varint continuation bytes.
    assert!(
        decode(&[
            0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f
        ])
        .is_err()
    );
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>().prop_map(f64::from_bits),
        Just(f64::from_bits(STALE_NAN)),
        Just(f64::NAN),
        (-1000i32..1000).prop_map(f64::from),
        (0u32..64).prop_map(|s| f64::from_bits(1u64 << s)),
    ]
}

fn step() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(15_000i64),
        1i64..20_000,
        1i64..2_000_000,
        1i64..(1i64 << 50),
    ]
}

proptest! {
    #[test]
    fn increasing_series_round_trip(
        t0 in -(1i64 << 50)..(1i64 << 50),
        points in prop::collection::vec((step(), value()), 0..300),
    ) {
        let mut t = t0;
        let mut samples = Vec::with_capacity(points.len());
        for (dt, v) in points {
            samples.push((t, v));
            t = t.saturating_add(dt);
        }
        let mut e = XorEncoder::new();
        for &(t, v) in &samples {
            let before = e.len();
            e.append(t, v).expect("append");
            prop_assert!(e.len() - before <= MAX_SAMPLE_BYTES);
        }
        prop_assert_eq!(e.num_samples(), samples.len());
        let got = decode(&e.finish()).expect("decode");
        prop_assert_eq!(got.len(), samples.len());
        for (g, w) in got.iter().zip(&samples) {
            prop_assert_eq!((g.0, g.1.to_bits()), (w.0, w.1.to_bits()));
        }
    }

    #[test]
    fn any_bytes_decode_without_panicking(data in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(&data);
    }
}
