use super::*;

fn h(schema: i32, pos: &[(i32, f64)]) -> FloatHistogram {
    FloatHistogram {
        schema,
        count: pos.iter().map(|b| b.1).sum(),
        positive: pos.to_vec(),
        ..FloatHistogram::default()
    }
}

#[test]
fn bounds_of_schema_zero_and_custom() {
    assert_eq!(bound(0, 0, &[]), 1.0);
    assert_eq!(bound(1, 0, &[]), 2.0);
    assert_eq!(bound(-1, 0, &[]), 0.5);
    assert!((bound(1, 1, &[]) - 2f64.sqrt()).abs() < 1e-15);
    assert_eq!(bound(1, -1, &[]), 4.0);
    let cv = [1.0, 5.0];
    assert_eq!(bound(-1, CUSTOM_BUCKETS_SCHEMA, &cv), f64::NEG_INFINITY);
    assert_eq!(bound(1, CUSTOM_BUCKETS_SCHEMA, &cv), 5.0);
    assert_eq!(bound(2, CUSTOM_BUCKETS_SCHEMA, &cv), f64::INFINITY);
}

#[test]
fn spans_round_trip() {
    let b = vec![(-2, 1.0), (-1, 2.0), (3, 4.0), (10, 1.0)];
    let (spans, counts) = FloatHistogram::spans(&b);
    let back = FloatHistogram::buckets_from_spans(&spans, &counts);
    let populated: Vec<_> = back.into_iter().filter(|x| x.1 != 0.0).collect();
    assert_eq!(populated, b);
    let deltas = FloatHistogram::buckets_from_deltas(
        &[
            Span {
                offset: 0,
                length: 2,
            },
            Span {
                offset: 1,
                length: 1,
            },
        ],
        &[2, -1, 3],
    );
    assert_eq!(deltas, vec![(0, 2.0), (1, 1.0), (3, 4.0)]);
}

#[test]
fn codec_round_trip_and_rejects_garbage() {
    let mut x = h(3, &[(-5, 1.5), (0, 2.0), (7, 3.0)]);
    x.negative = vec![(2, 1.0)];
    x.zero_threshold = 0.001;
    x.zero_count = 4.0;
    x.sum = -12.5;
    x.hint = CounterResetHint::Gauge;
    assert_eq!(FloatHistogram::decode(&x.encode()).expect("valid"), x);
    let mut c = h(CUSTOM_BUCKETS_SCHEMA, &[(0, 1.0), (2, 3.0)]);
    c.custom_values = Arc::from(vec![1.0, 2.0]);
    assert_eq!(FloatHistogram::decode(&c.encode()).expect("valid"), c);
    let enc = x.encode();
    for cut in 0..enc.len() {
        assert!(FloatHistogram::decode(&enc[..cut]).is_err());
    }
    assert!(FloatHistogram::decode(&[4, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
}

#[test]
fn add_reduces_schema_and_sub_inverts() {
    let mut a = h(1, &[(1, 1.0), (2, 2.0)]);
    let b = h(0, &[(1, 3.0)]);
    a.add(&b).expect("valid");
    assert_eq!(a.schema, 0);
    assert_eq!(a.positive, vec![(1, 6.0)]);
    assert_eq!(a.count, 6.0);
    a.sub(&b).expect("valid");
    assert_eq!(a.positive, vec![(1, 3.0)]);
}

#[test]
fn add_widens_zero_bucket() {
    let mut a = h(0, &[(0, 1.0), (2, 1.0)]);
    let mut b = h(0, &[(3, 1.0)]);
    b.zero_threshold = 1.0;
    b.zero_count = 2.0;
    a.add(&b).expect("valid");
    assert_eq!(a.zero_threshold, 1.0);
    assert_eq!(a.zero_count, 3.0);
    assert_eq!(a.positive, vec![(2, 1.0), (3, 1.0)]);
}

#[test]
fn custom_and_exponential_do_not_mix() {
    let mut a = h(0, &[(1, 1.0)]);
    let b = h(CUSTOM_BUCKETS_SCHEMA, &[(0, 1.0)]);
    assert_eq!(a.add(&b), Err(Incompatible));
}

#[test]
fn mismatched_custom_bounds_intersect() {
    let mut a = h(CUSTOM_BUCKETS_SCHEMA, &[(0, 1.0), (1, 1.0), (2, 1.0)]);
    a.custom_values = Arc::from(vec![1.0, 2.0]);
    let mut b = h(CUSTOM_BUCKETS_SCHEMA, &[(0, 1.0), (1, 1.0)]);
    b.custom_values = Arc::from(vec![2.0]);
    let r = a.add(&b).expect("valid");
    assert!(r.nhcb_bounds_reconciled);
    assert_eq!(&*a.custom_values, &[2.0]);
    assert_eq!(a.positive, vec![(0, 3.0), (1, 2.0)]);
}

#[test]
fn resets() {
    let prev = h(0, &[(1, 2.0), (2, 2.0)]);
    let mut cur = h(0, &[(1, 2.0), (2, 3.0)]);
    assert!(!cur.detect_reset(&prev));
    cur.positive = vec![(1, 1.0), (2, 4.0)];
    assert!(cur.detect_reset(&prev));
    // A higher schema is a reset; a lower one is compared after reduction.
    let finer = h(1, &[(1, 10.0)]);
    assert!(finer.detect_reset(&prev));
    let coarser = h(-1, &[(1, 4.0)]);
    assert!(!coarser.detect_reset(&prev));
    let mut hinted = prev.clone();
    hinted.hint = CounterResetHint::Reset;
    assert!(hinted.detect_reset(&prev));
}

#[test]
fn all_buckets_in_order_with_zero_bucket() {
    let mut x = h(0, &[(1, 1.0), (2, 2.0)]);
    x.negative = vec![(1, 3.0), (2, 1.0)];
    x.zero_count = 5.0;
    x.zero_threshold = 0.5;
    let b = x.all_buckets();
    let bounds: Vec<(f64, f64, u8)> = b
        .iter()
        .map(|b| (b.lower, b.upper, b.boundary_rule()))
        .collect();
    assert_eq!(
        bounds,
        vec![
            (-4.0, -2.0, 1),
            (-2.0, -1.0, 1),
            (-0.5, 0.5, 3),
            (1.0, 2.0, 0),
            (2.0, 4.0, 0)
        ]
    );
}

/// A count drawn from what clients send (whole numbers) and from what they do not.
fn any_count() -> impl proptest::strategy::Strategy<Value = f64> {
    use proptest::prelude::*;
    prop_oneof![
        6 => (0u64..1_000_000).prop_map(|c| c as f64),
        1 => Just(9_007_199_254_740_992.0),
        1 => Just(9_007_199_254_740_994.0),
        1 => Just(-0.0),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => any::<f64>(),
        1 => 0.0f64..1e6,
    ]
}

proptest::proptest! {
    #[test]
    fn codec_round_trips_bit_for_bit(
        counts in proptest::collection::vec(any_count(), 0..40),
        neg in proptest::collection::vec(any_count(), 0..5),
        zero in any_count(),
        count in any_count(),
        sum in proptest::prelude::any::<f64>(),
        schema in -4i32..=8,
        hint in 0u8..4,
    ) {
        let mut x = h(schema, &counts.iter().enumerate().map(|(i, c)| (i as i32 * 2 - 30, *c)).collect::<Vec<_>>());
        x.negative = neg.iter().enumerate().map(|(i, c)| (i as i32, *c)).collect();
        x.zero_count = zero;
        x.count = count;
        x.sum = sum;
        x.hint = CounterResetHint::from_u8(hint);
        let enc = x.encode();
        let y = FloatHistogram::decode(&enc).expect("valid");
        let bits = |h: &FloatHistogram| {
            let mut v = vec![h.schema as u64, h.hint as u64, h.zero_threshold.to_bits(), h.zero_count.to_bits(), h.count.to_bits(), h.sum.to_bits()];
            for b in h.positive.iter().chain(h.negative.iter()) {
                v.push(b.0 as u64);
                v.push(b.1.to_bits());
            }
            v
        };
        proptest::prop_assert_eq!(bits(&x), bits(&y));
        let whole = |c: f64| c >= 0.0 && c.fract() == 0.0 && c <= 9_007_199_254_740_992.0 && c.to_bits() != (-0.0f64).to_bits();
        if whole(zero) && whole(count) && counts.iter().chain(neg.iter()).all(|c| whole(*c)) {
            // The integer form: at most 1 + 3 bytes per bucket for counts below 2^21.
            proptest::prop_assert_eq!(enc[0] >> 2, 2);
        }
    }
}

#[test]
fn integer_form_is_small() {
    let x = h(
        3,
        &(0..90)
            .map(|i| (i - 40, f64::from(1000 + i * 3)))
            .collect::<Vec<_>>(),
    );
    let mut x = x;
    x.count = 100_000.0;
    let enc = x.encode();
    assert!(enc.len() < 3 * 90 + 40, "{} bytes", enc.len());
    assert_eq!(FloatHistogram::decode(&enc).expect("valid"), x);
}
