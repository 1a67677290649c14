//! Tests of `stats.rs`, with inputs and expected values taken from Prometheus's own tests:
//! `promql/promqltest/testdata/native_histograms.test` (NH), `.../histograms.test` (NHCB
//! conversions of the classic test histograms, `load_with_nhcb`), and
//! `model/histogram/generic_test.go` / `float_histogram_test.go`. Histograms are written in
//! the promqltest `{{...}}` notation and parsed by [`nh`].
//!
//! Expected values are Prometheus's literals (some are close to `SQRT_2` or `PI`): kept
//! as written there.
#![allow(clippy::approx_constant, clippy::excessive_precision)]

use std::sync::Arc;

use super::stats::{
    QuantileNote, fraction, go_exp2, go_frexp, go_ldexp, go_log2, quantile, trim, variance,
};
use super::{Bucket, FloatHistogram};

/// Parses the promqltest histogram notation (`schema`, `count`, `sum`, `z_bucket`,
/// `z_bucket_w`, `offset`, `buckets`, `n_offset`, `n_buckets`, `custom_values`; other keys
/// ignored). Listed zero counts are kept as stored zero-count buckets, as Go's spans keep
/// them.
fn nh(s: &str) -> FloatHistogram {
    let s = s.trim();
    let mut rest = s
        .strip_prefix("{{")
        .and_then(|r| r.strip_suffix("}}"))
        .unwrap_or_else(|| panic!("not a histogram: {s}"))
        .trim();
    let mut h = FloatHistogram::default();
    let (mut offset, mut n_offset) = (0i32, 0i32);
    let (mut pos, mut neg) = (Vec::new(), Vec::new());
    let num = |t: &str| -> f64 { t.parse().unwrap_or_else(|_| panic!("bad number {t}")) };
    while !rest.is_empty() {
        let colon = rest.find(':').expect("key without value");
        let key = &rest[..colon];
        let after = &rest[colon + 1..];
        let (value, next) = if let Some(list) = after.strip_prefix('[') {
            let end = list.find(']').expect("unclosed list");
            (&list[..end], &list[end + 1..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        let list = || value.split_whitespace().map(num).collect::<Vec<f64>>();
        match key {
            "schema" => h.schema = value.parse().expect("schema"),
            "count" => h.count = num(value),
            "sum" => h.sum = num(value),
            "z_bucket" => h.zero_count = num(value),
            "z_bucket_w" => h.zero_threshold = num(value),
            "offset" => offset = value.parse().expect("offset"),
            "n_offset" => n_offset = value.parse().expect("n_offset"),
            "buckets" => pos = list(),
            "n_buckets" => neg = list(),
            "custom_values" => h.custom_values = Arc::from(list()),
            _ => {}
        }
        rest = next.trim_start();
    }
    let place = |off: i32, counts: Vec<f64>| -> Vec<(i32, f64)> {
        counts
            .into_iter()
            .enumerate()
            .map(|(i, c)| (off + i as i32, c))
            .collect()
    };
    h.positive = place(offset, pos);
    h.negative = place(n_offset, neg);
    h
}

/// Equal, both NaN, or within `rel` relative difference.
fn near(got: f64, want: f64, rel: f64) -> bool {
    if got.is_nan() || want.is_nan() {
        return got.is_nan() && want.is_nan();
    }
    if got == want {
        return true;
    }
    (got - want).abs() <= rel * got.abs().max(want.abs())
}

#[track_caller]
fn check(got: f64, want: f64, what: &str) {
    check_rel(got, want, 1e-12, what);
}

#[track_caller]
fn check_rel(got: f64, want: f64, rel: f64, what: &str) {
    assert!(near(got, want, rel), "{what}: got {got:?}, want {want:?}");
}

#[track_caller]
fn check_q(hist: &str, q: f64, want: f64, note: Option<QuantileNote>) {
    let (got, n) = quantile(q, &nh(hist));
    check(got, want, &format!("quantile({q}, {hist})"));
    assert_eq!(n, note, "note of quantile({q}, {hist})");
}

#[track_caller]
fn check_f(hist: &str, lower: f64, upper: f64, want: f64, note: Option<QuantileNote>) {
    let (got, n) = fraction(lower, upper, &nh(hist));
    check(got, want, &format!("fraction({lower}, {upper}, {hist})"));
    assert_eq!(n, note, "note of fraction({lower}, {upper}, {hist})");
}

/// `variance` against `histogram_stdvar` and its square root against `histogram_stddev`
/// (the stddev values in the test file are printed with fewer digits).
#[track_caller]
fn check_var(hist: &str, stddev: f64, stdvar: f64) {
    let v = variance(&nh(hist));
    check(v, stdvar, &format!("stdvar({hist})"));
    assert!(
        near(v.sqrt(), stddev, 1e-11),
        "stddev({hist}): got {}, want {stddev}",
        v.sqrt()
    );
}

/// `trim` against an expected histogram: schema, zero threshold, custom bounds exactly;
/// counts, sum and populated buckets (empty ones ignored, as Prometheus compacts) closely.
#[track_caller]
fn check_trim(hist: &str, rhs: f64, upper: bool, want: &str) {
    check_trim_rel(hist, rhs, upper, want, 1e-12);
}

/// [`check_trim`] with relative tolerance `rel` for the floats.
#[track_caller]
fn check_trim_rel(hist: &str, rhs: f64, upper: bool, want: &str, rel: f64) {
    let what = format!("{hist} {} {rhs}", if upper { "</" } else { ">/" });
    let got = trim(&nh(hist), rhs, upper);
    let want = nh(want);
    assert_eq!(got.schema, want.schema, "{what}: schema");
    assert_eq!(got.zero_threshold, want.zero_threshold, "{what}: threshold");
    assert_eq!(
        got.custom_values, want.custom_values,
        "{what}: custom values"
    );
    check_rel(got.count, want.count, rel, &format!("{what}: count"));
    check_rel(got.sum, want.sum, rel, &format!("{what}: sum"));
    check_rel(
        got.zero_count,
        want.zero_count,
        rel,
        &format!("{what}: zero count"),
    );
    let populated = |v: &[(i32, f64)]| -> Vec<(i32, f64)> {
        v.iter().filter(|b| b.1 != 0.0).copied().collect()
    };
    for (side, g, w) in [
        (
            "positive",
            populated(&got.positive),
            populated(&want.positive),
        ),
        (
            "negative",
            populated(&got.negative),
            populated(&want.negative),
        ),
    ] {
        assert_eq!(
            g.iter().map(|b| b.0).collect::<Vec<_>>(),
            w.iter().map(|b| b.0).collect::<Vec<_>>(),
            "{what}: {side} bucket indexes ({g:?} vs {w:?})"
        );
        for (a, b) in g.iter().zip(&w) {
            check_rel(a.1, b.1, rel, &format!("{what}: {side} bucket {}", a.0));
        }
    }
}

const INF: f64 = f64::INFINITY;
const NAN: f64 = f64::NAN;

// ---- histogram_quantile (NH: histogram_quantile_1/2/3) ----

#[test]
fn quantile_positive_buckets_with_zero_bucket() {
    let h = "{{schema:0 count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}";
    check_q(h, 1.001, INF, None);
    check_q(h, 1.0, 16.0, None);
    check_q(h, 0.99, 15.67072476139083, None);
    check_q(h, 0.9, 12.99603834169977, None);
    check_q(h, 0.6, 4.594793419988138, None);
    check_q(h, 0.5, 1.5874010519681994, None);
    // Linear interpolation within the zero bucket (from 0: only positive buckets).
    check_q(h, 0.1, 0.0006, None);
    check_q(h, 0.0, 0.0, None);
    check_q(h, -1.0, -INF, None);
    check_q(h, NAN, NAN, None);
}

#[test]
fn quantile_negative_buckets_with_zero_bucket() {
    let h = "{{schema:0 count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}";
    check_q(h, 1.001, INF, None);
    check_q(h, 1.0, 0.0, None);
    check_q(h, 0.99, -0.00006, None);
    check_q(h, 0.9, -0.0006, None);
    check_q(h, 0.5, -1.5874010519681996, None);
    check_q(h, 0.1, -12.996038341699768, None);
    check_q(h, 0.0, -16.0, None);
    check_q(h, -1.0, -INF, None);
}

#[test]
fn quantile_both_signs_with_zero_bucket() {
    let h = "{{schema:0 count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] \
             n_buckets:[2 3 0 1 4]}}";
    check_q(h, 1.001, INF, None);
    check_q(h, 1.0, 16.0, None);
    check_q(h, 0.99, 15.34822590920423, None);
    check_q(h, 0.9, 10.556063286183155, None);
    check_q(h, 0.7, 1.2030250360821164, None);
    // Linear in the zero bucket, centred on 0.
    check_q(h, 0.55, 0.0006, None);
    check_q(h, 0.5, 0.0, None);
    check_q(h, 0.45, -0.0006, None);
    check_q(h, 0.3, -1.2030250360821169, None);
    check_q(h, 0.1, -10.556063286183155, None);
    check_q(h, 0.01, -15.34822590920423, None);
    check_q(h, 0.0, -16.0, None);
    check_q(h, -1.0, -INF, None);
}

#[test]
fn quantile_does_not_depend_on_schema() {
    // NH: var_res_histogram, positive and negative, one and two buckets up.
    for (schema, one, two) in [
        (-1, 2.0, 8.0),
        (0, 1.4142135623730951, 2.82842712474619),
        (1, 1.189207, 1.6817928305074292),
    ] {
        let rel = if schema == 1 { 1e-6 } else { 1e-12 }; // 1.189207 is printed short.
        for (buckets, want) in [("[0 5]", one), ("[0 0 5]", two)] {
            let p = nh(&format!(
                "{{{{schema:{schema} sum:4 count:5 buckets:{buckets}}}}}"
            ));
            let n = nh(&format!(
                "{{{{schema:{schema} sum:4 count:5 n_buckets:{buckets}}}}}"
            ));
            let (gp, _) = quantile(0.5, &p);
            let (gn, _) = quantile(0.5, &n);
            assert!(
                near(gp, want, rel),
                "schema {schema} {buckets}: {gp} vs {want}"
            );
            assert!(
                near(gn, -want, rel),
                "schema {schema} n {buckets}: {gn} vs {want}"
            );
            // histogram_fraction(0, q, ...) is 0.5 at that quantile (exact for the exact ones).
            let (fp, _) = fraction(0.0, want, &p);
            let (fn_, _) = fraction(-want, 0.0, &n);
            assert!(near(fp, 0.5, rel * 10.0), "fraction schema {schema}: {fp}");
            assert!(
                near(fn_, 0.5, rel * 10.0),
                "n fraction schema {schema}: {fn_}"
            );
        }
    }
}

#[test]
fn quantile_single_zero_negative_and_balanced() {
    // NH: single_zero_histogram, negative_histogram, two_samples_histogram,
    // balanced_histogram (the sum of the positive and the negative one), single_histogram.
    let zero = "{{schema:0 z_bucket:1 z_bucket_w:0.5 sum:0.25 count:1}}";
    check_q(zero, 0.5, 0.0, None);
    check_f(zero, -0.5, 0.5, 1.0, None);
    let neg = "{{schema:0 sum:-5 count:4 n_buckets:[1 2 1]}}";
    check_q(neg, 0.5, -1.414213562373095, None);
    check_f(neg, -2.0, -1.0, 0.5, None);
    // The quantile in a gap of empty buckets: the next populated bucket's lower bound
    // (found by the reverse walk for q >= 0.5).
    let balanced = "{{schema:0 sum:0 count:8 buckets:[1 2 1] n_buckets:[1 2 1]}}";
    check_q(balanced, 0.5, 0.5, None);
    check_f(balanced, 0.0, 4.0, 0.5, None);
    let single = "{{schema:0 sum:5 count:4 buckets:[1 2 1]}}";
    check_q(single, 0.5, 1.414213562373095, None);
    check_f(single, 1.0, 2.0, 0.5, None);
    check_f(single, 0.0, 8.0, 1.0, None);
}

#[test]
fn quantile_and_fraction_with_nan_observations() {
    // NH: histogram_nan.
    let all_nan = "{{schema:0 count:3 sum:NaN}}";
    let some_nan = "{{schema:0 count:15 sum:NaN buckets:[12]}}";
    let nan_result = Some(QuantileNote::NanResult);
    let skew = Some(QuantileNote::NanSkew);
    check_q(all_nan, 1.0, NAN, nan_result);
    check_q(some_nan, 1.0, NAN, nan_result);
    check_q(all_nan, 0.81, NAN, nan_result);
    check_q(some_nan, 0.81, NAN, nan_result);
    check_q(all_nan, 0.8, NAN, nan_result);
    check_q(some_nan, 0.8, 1.0, skew);
    check_q(all_nan, 0.4, NAN, nan_result);
    check_q(some_nan, 0.4, 0.7071067811865475, skew);
    let nans = Some(QuantileNote::FractionNans);
    check_f(all_nan, -INF, 0.7071067811865475, 0.0, nans);
    check_f(some_nan, -INF, 0.7071067811865475, 0.4, nans);
    check_f(all_nan, -INF, INF, 0.0, nans);
    check_f(some_nan, -INF, INF, 0.8, nans);
}

#[test]
fn quantile_of_empty_histogram_is_nan() {
    check_q("{{}}", 0.5, NAN, None);
    check_q("{{schema:-53 custom_values:[-2 3]}}", 1.0, NAN, None);
    check_q("{{}}", 2.0, INF, None);
}

// ---- custom buckets (NHCB) ----

#[test]
fn custom_bucket_quantiles_and_fraction() {
    // NH: custom_buckets_histogram.
    let h = "{{schema:-53 sum:5 count:4 custom_values:[5 10] buckets:[1 2 1]}}";
    check_f(h, 5.0, 10.0, 0.5, None);
    check_q(h, 0.5, 7.5, None);

    // histograms.test: testhistogram3 as NHCB at 50m.
    let pos = "{{schema:-53 count:110 sum:330 custom_values:[0 0.1 0.2 1] buckets:[0 50 20 40 0]}}";
    let neg =
        "{{schema:-53 count:20 sum:80 custom_values:[-0.25 -0.2 -0.1 0.3] buckets:[0 10 10 0 0]}}";
    for (q, want_pos, want_neg) in [
        (0.0, 0.0, -0.25),
        (0.25, 0.055, -0.225),
        (0.5, 0.125, -0.2),
        (0.75, 0.45, -0.15),
        (1.0, 1.0, -0.1),
    ] {
        check_q(pos, q, want_pos, None);
        check_q(neg, q, want_neg, None);
    }
    check_f(pos, 0.0, 0.2, 0.6363636363636364, None);
    check_f(neg, 0.0, 0.2, 0.0, None);
    check_var(pos, 2.7435461458749795, 7.527045454545455);
    check_var(neg, 4.187667907081458, 17.5365625);
}

#[test]
fn custom_bucket_first_and_last_bucket_quantiles() {
    // A quantile in the first bucket (from -Inf) is its upper bound when that is <= 0, and
    // one in the +Inf bucket is the +Inf bucket's lower bound (testhistogram as NHCB: the
    // "negative" series at 50m, cumulative 10 20 20 30).
    let h = "{{schema:-53 count:30 custom_values:[-0.2 -0.1 0.3] buckets:[10 10 0 10]}}";
    check_q(h, 0.1, -0.2, None);
    check_q(h, 0.9, 0.3, None);
}

#[test]
fn custom_bucket_fractions() {
    // histograms.test, the NHCB form of each classic test histogram.
    let pos = "{{schema:-53 count:100 custom_values:[1 2 3] buckets:[1 2 3 94]}}";
    let neg = "{{schema:-53 count:100 custom_values:[-3 -2 -1] buckets:[10 2 3 85]}}";
    check_f(pos, 0.0, 1.5, 0.02, None); // The first bucket from 0, not -Inf.
    check_f(neg, -4.0, -2.0, 0.02, None); // Nothing from the -Inf bucket.
    check_f(neg, -INF, -1.5, 0.135, None);
    check_f(pos, -INF, INF, 1.0, None);
    check_f(neg, -INF, INF, 1.0, None);
    check_f(pos, 4.0, 5.0, 0.0, None); // Nothing from the +Inf bucket.
    check_f(neg, 0.0, 1.0, 0.0, None);
    check_f(pos, 2.0, 5.0, 0.03, None);
    check_f(pos, 400.0, INF, 0.94, None);
    check_f(pos, 2.0, 2.0, 0.0, None);
    check_f(pos, 3.0, 2.0, 0.0, None);
    check_f(
        "{{schema:-53 count:100 buckets:[100]}}",
        0.0,
        1.0,
        0.0,
        None,
    );
    check_f(
        "{{schema:-53 count:0 custom_values:[1 2 3] buckets:[0 0 0 0]}}",
        0.0,
        5.0,
        NAN,
        None,
    );
    check_f(pos, 2.0, 3.5, 0.03, None);
    check_f(pos, 0.5, 2.0, 0.025, None);
    check_f(pos, 1.0, 3.0, 0.05, None);
    let fractional = "{{schema:-53 count:100 custom_values:[0.5 1] buckets:[2.5 5 92.5]}}";
    check_f(fractional, 0.1, 0.75, 0.045, None);
    let crosses = "{{schema:-53 count:100 custom_values:[-2 -1 0 1] buckets:[5 5 5 5 80]}}";
    check_f(crosses, -1.0, 1.0, 0.1, None);
    let one = "{{schema:-53 count:100 custom_values:[1] buckets:[1 99]}}";
    check_f(one, NAN, 1.0, NAN, None);
    check_f(one, 0.0, NAN, NAN, None);
    let ten = "{{schema:-53 count:10 custom_values:[1 2] buckets:[1 2 7]}}";
    check_f(ten, -10.0, -5.0, 0.0, None);
    check_f(ten, 5.0, 10.0, 0.0, None);
}

// ---- histogram_fraction, exponential (NH: histogram_fraction_1..4) ----

#[test]
fn fraction_positive_buckets_with_zero_bucket() {
    let h = "{{schema:0 count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}";
    check_f("{{}}", 3.1415, 42.0, NAN, None);
    check_f(h, 0.0, INF, 1.0, None);
    check_f(h, -INF, 0.0, 0.0, None);
    check_f(h, -0.001, 0.0, 0.0, None);
    check_f(h, 0.0, 0.001, 0.16666666666666666, None);
    check_f(h, 0.001, INF, 0.8333333333333334, None);
    check_f(h, 0.0, 0.0005, 0.08333333333333333, None);
    check_q(h, 0.08333333333333333, 0.0005, None);
    check_f(h, -INF, -0.001, 0.0, None);
    check_f(h, 1.0, 2.0, 0.25, None);
    check_f(h, 0.0, 1.5, 0.4795739585136224, None);
    check_f(h, 1.5, 2.0, 0.10375937481971091, None);
    check_f(h, 1.0, 8.0, 0.3333333333333333, None);
    check_f(h, 0.0, 6.0, 0.6320802083934297, None);
    check_q(h, 0.6320802083934297, 6.0, None);
    check_f(h, 1.0, 6.0, 0.29874687506009634, None);
    check_f(h, 1.5, 6.0, 0.15250624987980724, None);
    check_f(h, -6.0, -1.5, 0.0, None);
    check_f(h, 42.0, 3.1415, 0.0, None);
    check_f(h, 0.000001, 0.000001, 0.0, None);
    check_f(h, 3.1415, NAN, NAN, None);
    check_f(h, NAN, NAN, NAN, None);
    check_f(h, -INF, INF, 1.0, None);
}

#[test]
fn fraction_negative_buckets_with_zero_bucket() {
    let h = "{{schema:0 count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}";
    check_f(h, 0.0, INF, 0.0, None);
    check_f(h, -INF, 0.0, 1.0, None);
    check_f(h, -0.001, 0.0, 0.16666666666666666, None);
    check_f(h, 0.0, 0.001, 0.0, None);
    check_f(h, -0.0005, 0.0, 0.08333333333333333, None);
    check_f(h, -INF, -0.0005, 0.9166666666666666, None);
    check_q(h, 0.9166666666666666, -0.0005, None);
    check_f(h, -INF, -0.001, 0.8333333333333334, None);
    check_f(h, 1.0, 2.0, 0.0, None);
    check_f(h, -2.0, -1.0, 0.25, None);
    check_f(h, -2.0, -1.5, 0.10375937481971091, None);
    check_f(h, -8.0, -1.0, 0.3333333333333333, None);
    check_f(h, -INF, -6.0, 0.36791979160657035, None);
    check_q(h, 0.36791979160657035, -6.0, None);
    check_f(h, -6.0, -1.0, 0.29874687506009634, None);
    check_f(h, -6.0, -1.5, 0.15250624987980724, None);
    check_f(h, -3.1, -3.1, 0.0, None);
    check_f(h, -INF, INF, 1.0, None);
}

#[test]
fn fraction_both_signs_with_zero_bucket() {
    let h = "{{schema:0 count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] \
             n_buckets:[2 3 0 1 4]}}";
    check_f(h, 0.0, INF, 0.5, None);
    check_f(h, -INF, 0.0, 0.5, None);
    check_f(h, -0.001, 0.0, 0.08333333333333333, None);
    check_f(h, 0.0, 0.001, 0.08333333333333333, None);
    check_f(h, -0.0005, 0.0005, 0.08333333333333333, None);
    check_f(h, -INF, 0.0005, 0.5416666666666666, None);
    check_q(h, 0.5416666666666666, 0.0005, None);
    check_f(h, -INF, -0.0005, 0.4583333333333333, None);
    check_q(h, 0.4583333333333333, -0.0005, None);
    check_f(h, 0.001, INF, 0.4166666666666667, None);
    check_f(h, -INF, -0.001, 0.4166666666666667, None);
    check_f(h, 1.0, 2.0, 0.125, None);
    check_f(h, 1.5, 2.0, 0.051879687409855414, None);
    check_f(h, 1.0, 8.0, 0.16666666666666666, None);
    check_f(h, 1.0, 6.0, 0.14937343753004825, None);
    check_f(h, 1.5, 6.0, 0.07625312493990366, None);
    check_f(h, -2.0, -1.0, 0.125, None);
    check_f(h, -2.0, -1.5, 0.051879687409855456, None);
    check_f(h, -8.0, -1.0, 0.16666666666666666, None);
    check_f(h, -6.0, -1.0, 0.14937343753004817, None);
    check_f(h, -6.0, -1.5, 0.07625312493990362, None);
    check_f(h, 42.0, 42.0, 0.0, None);
    check_f(h, NAN, 42.0, NAN, None);
    check_f(h, -INF, INF, 1.0, None);
}

#[test]
fn fraction_below_matches_go() {
    // model/histogram/generic_test.go: TestBucketFractionBelow.
    let b = |lower: f64, upper: f64| Bucket {
        lower,
        upper,
        lower_inclusive: false,
        upper_inclusive: true,
        count: 100.0,
        index: 0,
    };
    let cases = [
        (b(0.0, 10.0), 5.0, true, 0.5),
        (b(2.0, 6.0), 3.0, true, 0.25),
        (b(-10.0, -5.0), -6.0, true, 0.8),
        (b(2.0, 8.0), 4.0, false, 0.5),
        (b(1.0, 16.0), 2.0, false, 0.25),
        (b(-8.0, -2.0), -4.0, false, 0.5),
        (b(-4.0, -2.0), -3.0, false, 0.41503749927884383),
    ];
    for (bucket, v, linear, want) in cases {
        let got = bucket.fraction_below(v, linear);
        assert!(
            (got - want).abs() <= 1e-12,
            "{bucket:?} at {v}: {got} vs {want}"
        );
    }
}

// ---- histogram_stddev / histogram_stdvar (NH: histogram_stddev_stdvar_1..7) ----

#[test]
fn variance_of_exponential_histograms() {
    check_var(
        "{{schema:2 count:4 sum:10 buckets:[1 0 0 0 1 0 0 1 1]}}",
        1.0787993180043811,
        1.163807968526718,
    );
    check_var(
        "{{schema:8 count:10 sum:10 buckets:[1 2 3 4]}}",
        0.0048960313898237465,
        2.3971123370139447e-05,
    );
    let three = |sum: &str| {
        format!(
            "{{{{schema:3 count:7 sum:{sum} z_bucket:1 buckets:[0 0 0 0 0 0 0 0 0 0 0 0 0 1 0 0 \
             0 0 0 0 0 0 0 0 1 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 ] \
             n_buckets:[0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 \
             0 0 0 0 0 0 0 0 0 0 1 ]}}}}"
        )
    };
    check_var(&three("62"), 42.94723640026, 1844.4651144196398);
    check_var(
        "{{schema:0 count:10 sum:-112946 z_bucket:0 \
         n_buckets:[0 0 1 1 1 0 1 1 0 0 3 0 0 0 1 0 0 1]}}",
        27556.344499842,
        759352122.1939945,
    );
    check_var(
        "{{schema:0 count:10 sum:-100 z_bucket:0 n_buckets:[0 0 0 0 10]}}",
        1.3137084989848,
        1.725830020304794,
    );
    // NaN and Inf observations.
    assert!(variance(&nh(&three("NaN"))).is_nan());
    assert_eq!(variance(&nh(&three("Inf"))), INF);
    // No observations: NaN.
    assert!(variance(&nh("{{schema:0 count:0 sum:0 buckets:[0 0]}}")).is_nan());
}

// ---- trim operators (NH: h_test, h_test_2, ... ; `true` is `</`, `false` is `>/`) ----

const H_TEST: &str = "{{schema:0 sum:123.75 count:34 z_bucket:1 z_bucket_w:0.001 buckets:[2 4 8 16] n_buckets:[1 2]}}";

#[test]
fn trim_exponential() {
    check_trim(H_TEST, -INF, false, H_TEST);
    check_trim(H_TEST, INF, true, H_TEST);
    check_trim(H_TEST, INF, false, "{{schema:0 z_bucket_w:0.001}}");
    check_trim(H_TEST, -INF, true, "{{schema:0 z_bucket_w:0.001}}");
    check_trim(
        H_TEST,
        0.0,
        false,
        "{{schema:0 sum:120.20840280171308 count:30.5 z_bucket:0.5 z_bucket_w:0.001 \
         buckets:[2 4 8 16]}}",
    );
    check_trim(
        H_TEST,
        0.0,
        true,
        "{{schema:0 sum:-3.53578390593273768 count:3.5 z_bucket:0.5 z_bucket_w:0.001 \
         n_buckets:[1 2]}}",
    );
    // Exponential interpolation inside a bucket. The rhs is not exactly √2, so the expected
    // round numbers hold only to promqltest's tolerance (1e-6 relative).
    check_trim_rel(
        H_TEST,
        1.4142135624,
        true,
        "{{count:8 sum:0.2570938865989847 z_bucket:1 z_bucket_w:0.001 buckets:[2 2] \
         n_buckets:[1 2]}}",
        1e-9,
    );
    check_trim_rel(
        H_TEST,
        1.4142135624,
        false,
        "{{count:26 sum:116.50067065070982 z_bucket_w:0.001 buckets:[0 2 8 16]}}",
        1e-9,
    );
    // On bucket boundaries: no interpolation.
    check_trim(
        H_TEST,
        2.0,
        true,
        "{{count:10 sum:3.5355339059327373 z_bucket:1 z_bucket_w:0.001 buckets:[2 4] \
         n_buckets:[1 2]}}",
    );
    check_trim(
        H_TEST,
        2.0,
        false,
        "{{count:24 sum:113.13708498984761 z_bucket_w:0.001 offset:2 buckets:[8 16]}}",
    );
    check_trim(
        H_TEST,
        -1.0,
        false,
        "{{count:32 sum:119.50104602052653 z_bucket:1 z_bucket_w:0.001 buckets:[2 4 8 16] \
         n_buckets:[1]}}",
    );
    check_trim(
        H_TEST,
        -1.0,
        true,
        "{{count:2 sum:-2.8284271247461903 z_bucket_w:0.001 n_offset:1 n_buckets:[2]}}",
    );
}

#[test]
fn trim_exponential_schema_2() {
    let h = "{{schema:2 sum:12.8286080906 count:28 z_bucket:1 z_bucket_w:0.001 \
             buckets:[1 2 4 7 3] n_buckets:[1 5 3 1]}}";
    check_trim(
        h,
        1.13,
        true,
        "{{schema:2 count:13.410582181123704 sum:-9.385798726068233 z_bucket:1 \
         z_bucket_w:0.001 buckets:[1 1.410582181123704] n_buckets:[1 5 3 1]}}",
    );
    check_trim(
        h,
        1.13,
        false,
        "{{schema:2 count:14.589417818876296 sum:22.168126492693734 z_bucket_w:0.001 \
         offset:1 buckets:[0.589417818876296 4 7 3]}}",
    );
    check_trim(
        h,
        -1.3,
        false,
        "{{schema:2 count:25.54213947904476 sum:16.29588491217537 z_bucket:1 \
         z_bucket_w:0.001 buckets:[1 2 4 7 3] n_buckets:[1 5 1.54213947904476]}}",
    );
    check_trim(
        h,
        -1.3,
        true,
        "{{schema:2 count:2.45786052095524 sum:-3.5189307983595066 z_bucket_w:0.001 \
         n_offset:2 n_buckets:[1.45786052095524 1]}}",
    );
    // The trim identity with histogram_fraction (NH, last section).
    let hh = nh(h);
    check(
        trim(&hh, 1.13, true).count,
        fraction(-INF, 1.13, &hh).0 * hh.count,
        "identity </",
    );
    check(
        trim(&hh, 1.13, false).count,
        fraction(1.13, INF, &hh).0 * hh.count,
        "identity >/",
    );
}

#[test]
fn trim_zero_bucket() {
    // Positive-biased zero bucket.
    let p = "{{schema:0 sum:8.0210678118654755 count:12 z_bucket:2 z_bucket_w:0.5 buckets:[10]}}";
    check_trim(
        p,
        0.5,
        false,
        "{{schema:0 count:10 sum:7.0710678118654755 z_bucket:0 z_bucket_w:0.5 buckets:[10]}}",
    );
    check_trim(
        p,
        0.1,
        false,
        "{{schema:0 count:11.6 sum:7.551067811865476 z_bucket:1.6 z_bucket_w:0.5 buckets:[10]}}",
    );
    check_trim(p, 0.0, false, p);
    check_trim(
        p,
        0.5,
        true,
        "{{schema:0 count:2 sum:0.5 z_bucket:2 z_bucket_w:0.5}}",
    );
    check_trim(
        p,
        0.1,
        true,
        "{{schema:0 count:0.4 sum:0.02 z_bucket:0.4 z_bucket_w:0.5}}",
    );
    check_trim(p, 0.0, true, "{{schema:0 z_bucket_w:0.5}}");
    // Negative-biased zero bucket.
    let n =
        "{{schema:0 sum:-8.0210678118654755 count:12 z_bucket:2 z_bucket_w:0.5 n_buckets:[10]}}";
    check_trim(
        n,
        -0.5,
        true,
        "{{schema:0 count:10 sum:-7.0710678118654755 z_bucket:0 z_bucket_w:0.5 n_buckets:[10]}}",
    );
    check_trim(
        n,
        -0.1,
        true,
        "{{schema:0 count:11.6 sum:-7.551067811865476 z_bucket:1.6 z_bucket_w:0.5 \
         n_buckets:[10]}}",
    );
    check_trim(n, 0.0, true, n);
    check_trim(
        n,
        -0.5,
        false,
        "{{schema:0 count:2 sum:-0.5 z_bucket:2 z_bucket_w:0.5}}",
    );
    check_trim(
        n,
        -0.1,
        false,
        "{{schema:0 count:0.4 sum:-0.02 z_bucket:0.4 z_bucket_w:0.5}}",
    );
    check_trim(n, 0.0, false, "{{schema:0 z_bucket_w:0.5}}");
    // Only the zero bucket: symmetric around 0.
    let z = "{{schema:0 count:5 sum:0 z_bucket:5 z_bucket_w:0.1 }}";
    let zt = |count: f64, sum: f64| {
        format!("{{{{schema:0 count:{count} sum:{sum} z_bucket:{count} z_bucket_w:0.1}}}}")
    };
    check_trim(z, 0.1, false, &zt(0.0, 0.0));
    check_trim(z, 0.1, true, &zt(5.0, 0.0));
    check_trim(z, 0.05, false, &zt(1.25, 0.09375));
    check_trim(z, 0.05, true, &zt(3.75, -0.09375));
    check_trim(z, 0.0, false, &zt(2.5, 0.125));
    check_trim(z, 0.0, true, &zt(2.5, -0.125));
    check_trim(z, -0.05, false, &zt(3.75, 0.09375));
    check_trim(z, -0.05, true, &zt(1.25, -0.09375));
    check_trim(z, -0.1, true, &zt(0.0, 0.0));
    check_trim(z, -0.1, false, &zt(5.0, 0.0));
    // Interpolation around zero with buckets on both sides (and no count given).
    let zb = "{{schema:0 sum:-6.75 z_bucket:5 z_bucket_w:0.01 buckets:[2 3] n_buckets:[1 2 3]}}";
    check_trim(
        zb,
        -0.005,
        true,
        "{{count:7.25 sum:-12.03019028017131 z_bucket:1.25 z_bucket_w:0.01 n_buckets:[1 2 3]}}",
    );
    check_trim(
        zb,
        0.0,
        false,
        "{{count:7.5 sum:5.669354249492381 z_bucket:2.5 z_bucket_w:0.01 buckets:[2 3]}}",
    );
}

#[test]
fn trim_custom_buckets() {
    let cbh = "{{schema:-53 sum:172.5 count:15 custom_values:[5 10 15 20] buckets:[1 6 4 3 1]}}";
    let cb = |rest: &str| format!("{{{{schema:-53 {rest} custom_values:[5 10 15 20]}}}}");
    check_trim(cbh, 15.0, true, &cb("count:11 sum:97.5 buckets:[1 6 4]"));
    check_trim(
        cbh,
        15.0,
        false,
        &cb("count:4 sum:72.5 offset:3 buckets:[3 1]"),
    );
    check_trim(cbh, 13.0, true, &cb("count:9.4 sum:75.1 buckets:[1 6 2.4]"));
    check_trim(
        cbh,
        13.0,
        false,
        &cb("count:5.6 sum:94.9 offset:2 buckets:[1.6 3 1]"),
    );
    check_trim(cbh, 7.5, true, &cb("count:4 sum:21.25 buckets:[1 3]"));
    // The +Inf bucket is dropped whole even above its lower bound.
    check_trim(cbh, 50.0, true, &cb("count:14 sum:150.0 buckets:[1 6 4 3]"));
    check_trim(cbh, -INF, true, &cb(""));
    check_trim(cbh, INF, false, &cb(""));
    check_trim(cbh, INF, true, cbh);
    check_trim(cbh, -INF, false, cbh);
    check_trim(cbh, 0.0, false, cbh);
    check_trim(cbh, 0.0, true, &cb(""));

    let neg = "{{schema:-53 sum:172.5 count:15 custom_values:[-10 5 10 15 20] \
               buckets:[2 1 6 4 3 1]}}";
    let nb = |rest: &str| format!("{{{{schema:-53 {rest} custom_values:[-10 5 10 15 20]}}}}");
    check_trim(neg, 2.0, true, &nb("count:2.8 sum:-23.2 buckets:[2 0.8]"));
    check_trim(neg, -4.0, true, &nb("count:2.4 sum:-22.8 buckets:[2 0.4]"));
    check_trim(neg, -15.0, true, &nb("count:2 sum:-30 buckets:[2]"));
}

#[test]
fn trim_custom_buckets_with_infinite_bounds() {
    // One bucket, (-Inf, +Inf].
    let one = "{{schema:-53 sum:100.0 count:100 buckets:[100]}}";
    let none = "{{schema:-53 sum:0 count:0 buckets:[0]}}";
    check_trim(one, 10.0, true, none);
    check_trim(one, 10.0, false, none);
    check_trim(one, INF, true, one);
    check_trim(one, INF, false, none);
    check_trim(one, -INF, false, one);
    check_trim(one, -INF, true, none);

    let at_zero = "{{schema:-53 sum:33.0 count:100 custom_values:[0] buckets:[1 100]}}";
    let z = |sum: f64, count: f64, b: &str| {
        format!("{{{{schema:-53 sum:{sum} count:{count} custom_values:[0] buckets:{b}}}}}")
    };
    check_trim(at_zero, 10.0, true, &z(0.0, 1.0, "[1 0]"));
    check_trim(at_zero, 0.0, true, &z(0.0, 1.0, "[1 0]"));
    check_trim(at_zero, -10.0, true, &z(-10.0, 1.0, "[1 0]"));
    check_trim(at_zero, -10.0, false, &z(0.0, 100.0, "[0 100]"));
    check_trim(at_zero, 0.0, false, &z(0.0, 100.0, "[0 100]"));
    check_trim(at_zero, 10.0, false, &z(1000.0, 100.0, "[0 100]"));

    let at_pos = "{{schema:-53 sum:33 count:101 custom_values:[5] buckets:[1 100]}}";
    let p = |sum: f64, count: f64, b: &str| {
        format!("{{{{schema:-53 sum:{sum} count:{count} custom_values:[5] buckets:{b}}}}}")
    };
    check_trim(at_pos, 10.0, true, &p(2.5, 1.0, "[1 0]"));
    check_trim(at_pos, 2.0, true, &p(0.4, 0.4, "[0.4 0]"));
    check_trim(at_pos, 0.0, true, "{{schema:-53 custom_values:[5]}}");
    check_trim(at_pos, -10.0, true, &p(0.0, 0.0, "[0 0]"));
    check_trim(at_pos, -10.0, false, &p(500.0, 100.0, "[0 100]"));
    check_trim(at_pos, 0.0, false, at_pos);
    check_trim(at_pos, 2.0, false, &p(502.1, 100.6, "[0.6 100]"));
    check_trim(at_pos, 10.0, false, &p(1000.0, 100.0, "[0 100]"));
    // cbh_for_join: the same at rhs 1 and 4 (and the doubled histogram at 4).
    check_trim(at_pos, 1.0, false, &p(502.4, 100.8, "[0.8 100]"));
    check_trim(
        "{{schema:-53 sum:66 count:202 custom_values:[5] buckets:[2 200]}}",
        4.0,
        false,
        &p(1001.8, 200.4, "[0.4 200]"),
    );

    let at_neg = "{{schema:-53 sum:33 count:101 custom_values:[-5] buckets:[1 100]}}";
    let n = |sum: f64, count: f64, b: &str| {
        format!("{{{{schema:-53 sum:{sum} count:{count} custom_values:[-5] buckets:{b}}}}}")
    };
    check_trim(at_neg, 10.0, true, &n(-5.0, 1.0, "[1 0]"));
    check_trim(at_neg, 0.0, true, &n(-5.0, 1.0, "[1 0]"));
    check_trim(at_neg, -2.0, true, &n(-5.0, 1.0, "[1 0]"));
    check_trim(at_neg, -10.0, true, &n(-10.0, 1.0, "[1 0]"));
    check_trim(at_neg, -10.0, false, &n(-500.0, 100.0, "[0 100]"));
    check_trim(at_neg, -2.0, false, &n(-200.0, 100.0, "[0 100]"));
    check_trim(at_neg, 0.0, false, &n(0.0, 100.0, "[0 100]"));
    check_trim(at_neg, 10.0, false, &n(1000.0, 100.0, "[0 100]"));
}

#[test]
fn trim_empty_histograms_is_a_no_op() {
    for h in ["{{}}", "{{schema:-53 custom_values:[-3 2]}}"] {
        for rhs in [-INF, -5.0, 0.0, 5.0, INF] {
            check_trim(h, rhs, true, h);
            check_trim(h, rhs, false, h);
        }
    }
}

#[test]
fn trim_leaves_its_input_alone() {
    // float_histogram_test.go: TestFloatHistogramTrimBucketsInPlace (the Copy case).
    let h = nh("{{schema:0 count:30 sum:100 buckets:[5 5 10 10]}}");
    let before = h.clone();
    let t = trim(&h, 4.0, true);
    assert_eq!(h, before);
    assert_ne!(t, h);
    // Bucket (4, 8] is gone, the others are kept whole.
    assert_eq!(t.positive, vec![(0, 5.0), (1, 5.0), (2, 10.0)]);
    assert_eq!(t.count, 20.0);
}

// ---- the ported Go math ----

#[test]
fn go_math_ports() {
    assert_eq!(go_frexp(8.0), (0.5, 4));
    assert_eq!(go_frexp(-3.0), (-0.75, 2));
    assert_eq!(go_frexp(5e-324), (0.5, -1073));
    assert_eq!(go_ldexp(0.5, -1073), 5e-324);
    assert_eq!(go_ldexp(0.75, 1025), INF);
    assert_eq!(go_log2(8.0), 3.0);
    assert_eq!(go_log2(0.5), -1.0);
    assert_eq!(go_log2(0.0), -INF);
    assert!(go_log2(-1.0).is_nan());
    assert_eq!(go_exp2(3.0), 8.0);
    assert_eq!(go_exp2(-1074.0), 5e-324);
    assert_eq!(go_exp2(1024.0), INF);
    assert_eq!(go_exp2(-INF), 0.0);
    for x in [0.3_f64, 1.7, 3.0, 12.5, 1e-300, 1e300] {
        assert!(near(go_log2(x), x.log2(), 4e-16), "log2({x})");
        assert!(near(go_exp2(x.log2()), x, 1e-12), "exp2(log2({x}))");
    }
}
