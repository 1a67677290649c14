//! Statistics of one native histogram as PromQL's functions compute them (`promql/quantile.go`
//! and `promql/functions.go`): quantile, fraction, variance, and the trim operators.
//!
//! Every function is a line-by-line port of its Go counterpart, edge cases included; the Go
//! names are given on each item. Bucket order and bounds come from
//! [`FloatHistogram::all_buckets`] (`AllBucketIterator`; reversed it is
//! `AllReverseBucketIterator`), [`FloatHistogram::positive_buckets`] and
//! [`FloatHistogram::negative_buckets`]. Where Go asks for `len(h.PositiveBuckets)` the
//! number of stored sparse buckets is used (zero-count entries included, as Go's dense
//! slices include the zero counts inside spans).
//!
//! `log2` and `exp2` are ports of Go's `math.Log2` and `math.Exp2` (with Go's `math.Log`,
//! `Frexp` and `Ldexp`), not the platform's libm, so that the interpolation arithmetic is
//! Go's (on amd64) to the last bit; results still inherit the bucket bounds of
//! [`FloatHistogram::bound`].

use super::kahan::kahan_inc;
use super::{Bucket, FloatHistogram};

/// An info-level annotation raised by [`quantile`] or [`fraction`] beside its result.
///
/// The messages are Prometheus's texts without the `PromQL info: ` prefix and the metric
/// name that PromQL's engine adds. (`HistogramQuantile` raises no monotonicity annotation:
/// that one, `HistogramQuantileForcedMonotonicityInfo`, belongs to classic histograms.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum QuantileNote {
    /// `annotations.NativeHistogramQuantileNaNResultInfo`: the histogram has NaN
    /// observations and the requested rank lies above every bucket, so the quantile is NaN.
    #[error("input to histogram_quantile has NaN observations, result is NaN")]
    NanResult,
    /// `annotations.NativeHistogramQuantileNaNSkewInfo`: the histogram has NaN observations
    /// (counted in `count` but in no bucket), so the quantile is skewed towards higher
    /// values.
    #[error("input to histogram_quantile has NaN observations, result is skewed higher")]
    NanSkew,
    /// `annotations.NativeHistogramFractionNaNsInfo`: the histogram has NaN observations,
    /// which no fraction includes (so `fraction(-Inf, +Inf)` is below 1).
    #[error(
        "input to histogram_fraction has NaN observations, which are excluded from all fractions"
    )]
    FractionNans,
}

impl Bucket {
    /// The fraction (0 to 1) of this bucket's width at or below `v`, for `v` strictly inside
    /// the bucket's finite bounds (`Bucket.FractionBelow`): linear interpolation when
    /// `linear` (custom buckets, the zero bucket), else interpolation on a logarithmic scale
    /// (exponential buckets; negative buckets mirrored). Values outside the bucket and
    /// infinite bounds give meaningless results; callers handle those.
    pub fn fraction_below(&self, v: f64, linear: bool) -> f64 {
        if linear {
            return (v - self.lower) / (self.upper - self.lower);
        }
        let log_lower = gomath::log2(self.lower.abs());
        let log_upper = gomath::log2(self.upper.abs());
        let log_v = gomath::log2(v.abs());
        if v > 0.0 {
            return (log_v - log_lower) / (log_upper - log_lower);
        }
        1.0 - ((log_v - log_upper) / (log_lower - log_upper))
    }
}

/// Go's zero `Bucket[float64]`: what `HistogramQuantile` works with when it saw no bucket.
const NO_BUCKET: Bucket = Bucket {
    lower: 0.0,
    upper: 0.0,
    lower_inclusive: false,
    upper_inclusive: false,
    count: 0.0,
    index: 0,
};

/// The `q`-quantile of `h` (`HistogramQuantile`), with the annotation it raises, if any.
///
/// Interpolation is linear for custom buckets and inside the zero bucket, exponential (on a
/// logarithmic scale, mirrored for negative buckets) otherwise. The zero bucket is taken to
/// start at 0 when only positive buckets exist and to end at 0 when only negative ones do.
/// For custom buckets the first bucket is taken to start at 0 when its upper bound is
/// positive (else its upper bound is the result), and a quantile in the +Inf bucket is that
/// bucket's lower bound. `q < 0` gives −Inf, `q > 1` +Inf, a NaN `q` or an empty histogram
/// NaN. With a NaN sum (NaN observations) buckets are walked upwards only, and a rank above
/// every bucket gives NaN ([`QuantileNote::NanResult`]); otherwise
/// [`QuantileNote::NanSkew`] is raised when the buckets hold fewer observations than
/// `count`.
pub fn quantile(q: f64, h: &FloatHistogram) -> (f64, Option<QuantileNote>) {
    if q < 0.0 {
        return (f64::NEG_INFINITY, None);
    }
    if q > 1.0 {
        return (f64::INFINITY, None);
    }
    if h.count == 0.0 || q.is_nan() {
        return (f64::NAN, None);
    }

    let mut note = None;
    let mut bucket = NO_BUCKET;
    let mut count = 0.0;

    // With NaN observations (a NaN sum) or q < 0.5 walk upwards, else downwards.
    let forward = h.sum.is_nan() || q < 0.5;
    let mut buckets = h.all_buckets();
    let mut rank = if forward {
        q * h.count
    } else {
        buckets.reverse();
        (1.0 - q) * h.count
    };
    let mut it = buckets.into_iter();

    for b in it.by_ref() {
        bucket = b;
        if bucket.count == 0.0 {
            continue;
        }
        count += bucket.count;
        if count >= rank {
            break;
        }
    }
    if !h.uses_custom_buckets() && bucket.lower < 0.0 && bucket.upper > 0.0 {
        if h.negative.is_empty() && !h.positive.is_empty() {
            // In the zero bucket with only positive buckets: 0 is the lower bound.
            bucket.lower = 0.0;
        } else if h.positive.is_empty() && !h.negative.is_empty() {
            // In the zero bucket with only negative buckets: 0 is the upper bound.
            bucket.upper = 0.0;
        }
    } else if h.uses_custom_buckets() {
        if bucket.lower == f64::NEG_INFINITY {
            // The first bucket, from -Inf.
            if bucket.upper <= 0.0 {
                return (bucket.upper, note);
            }
            bucket.lower = 0.0;
        } else if bucket.upper == f64::INFINITY {
            // The last bucket, to +Inf.
            return (bucket.lower, note);
        }
    }
    // Numerical inaccuracies could make the bucket total exceed the count.
    if count > h.count {
        count = h.count;
    }
    // The highest bucket was reached without reaching the rank: NaN observations (or
    // something wrong with the histogram).
    if count < rank {
        if h.sum.is_nan() {
            return (f64::NAN, Some(QuantileNote::NanResult));
        }
        return (bucket.upper, note);
    }

    if forward {
        rank -= count - bucket.count;
    } else {
        rank = count - rank;
    }
    if h.sum.is_nan() {
        // Are there fewer observations in the buckets than counted? As in Go, this walk
        // leaves `bucket` at the last bucket, which the interpolation below then uses.
        for b in it {
            bucket = b;
            count += bucket.count;
        }
        if count < h.count {
            note = Some(QuantileNote::NanSkew);
        }
    }

    // How far into the bucket the rank lies.
    let fraction = rank / bucket.count;

    if h.uses_custom_buckets() || (bucket.lower <= 0.0 && bucket.upper >= 0.0) {
        return (
            bucket.lower + (bucket.upper - bucket.lower) * fraction,
            note,
        );
    }

    // Exponential buckets are equally wide on a logarithmic scale.
    let log_lower = gomath::log2(bucket.lower.abs());
    let log_upper = gomath::log2(bucket.upper.abs());
    if bucket.lower > 0.0 {
        return (
            gomath::exp2(log_lower + (log_upper - log_lower) * fraction),
            note,
        );
    }
    // A negative bucket: mirrored.
    (
        -gomath::exp2(log_upper + (log_lower - log_upper) * (1.0 - fraction)),
        note,
    )
}

/// The fraction of the observations of `h` between `lower` and `upper`
/// (`HistogramFraction`), with the annotation it raises, if any.
///
/// The inverse of [`quantile`], with the same interpolation and the same assumptions about
/// the zero bucket (any bucket spanning 0, also a custom one). Buckets with an infinite
/// bound contribute nothing when a bound falls inside them. NaN for an empty histogram or a
/// NaN bound; 0 when `lower >= upper`. NaN observations (a NaN sum with fewer observations
/// in the buckets than counted) are in no fraction, flagged by
/// [`QuantileNote::FractionNans`].
pub fn fraction(lower: f64, upper: f64, h: &FloatHistogram) -> (f64, Option<QuantileNote>) {
    if h.count == 0.0 || lower.is_nan() || upper.is_nan() {
        return (f64::NAN, None);
    }
    if lower >= upper {
        return (0.0, None);
    }

    let mut note = None;
    let (mut count, mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    let custom = h.uses_custom_buckets();
    let mut it = h.all_buckets().into_iter();

    for mut b in it.by_ref() {
        count += b.count;
        let mut zero_bucket = false;

        if b.lower <= 0.0 && b.upper >= 0.0 {
            zero_bucket = true;
            if h.negative.is_empty() && !h.positive.is_empty() {
                // Only positive buckets: 0 is the lower bound.
                b.lower = 0.0;
            } else if h.positive.is_empty() && !h.negative.is_empty() {
                // Only negative buckets: 0 is the upper bound.
                b.upper = 0.0;
            }
        }
        // Linear for custom buckets and the zero bucket; a bucket from -Inf counts whole
        // (no interpolation in an infinitely wide bucket).
        let interpolate_linearly = |v: f64, rank: f64| {
            if b.lower == f64::NEG_INFINITY {
                return b.count;
            }
            rank + b.count * b.fraction_below(v, true)
        };
        let interpolate_exponentially =
            |v: f64, rank: f64| rank + b.count * b.fraction_below(v, false);

        if !lower_set && b.lower >= lower {
            // The lower value is at the bucket's lower boundary.
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && b.lower >= upper {
            // The upper value is at the bucket's lower boundary.
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && b.lower < lower && b.upper > lower {
            // The lower value is in this bucket.
            lower_rank = if custom || zero_bucket {
                interpolate_linearly(lower, rank)
            } else {
                interpolate_exponentially(lower, rank)
            };
            lower_set = true;
        }
        if !upper_set && b.lower < upper && b.upper > upper {
            // The upper value is in this bucket.
            upper_rank = if custom || zero_bucket {
                interpolate_linearly(upper, rank)
            } else {
                interpolate_exponentially(upper, rank)
            };
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank += b.count;
    }
    if h.sum.is_nan() {
        // There might be NaN observations: count only those in buckets.
        for b in it {
            count += b.count;
        }
        if count < h.count {
            note = Some(QuantileNote::FractionNans);
        }
    } else {
        count = h.count;
    }

    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }

    ((upper_rank - lower_rank) / h.count, note)
}

/// The variance of the observations of `h` (`histogramVariance`, what `histogram_stdvar`
/// returns; `histogram_stddev` is its square root).
///
/// Every observation is taken to lie at its bucket's mean: the arithmetic mean for custom
/// buckets, 0 in the zero bucket, the geometric mean (negated for negative buckets) for
/// exponential buckets. Squared deviations from `sum / count` are Kahan-summed and divided
/// by `count`.
pub fn variance(h: &FloatHistogram) -> f64 {
    let mean = h.sum / h.count;
    let (mut variance, mut c_variance) = (0.0, 0.0);
    for bucket in h.all_buckets() {
        if bucket.count == 0.0 {
            continue;
        }
        let val = if h.uses_custom_buckets() {
            // Arithmetic mean for custom buckets.
            (bucket.upper + bucket.lower) / 2.0
        } else if bucket.lower <= 0.0 && bucket.upper >= 0.0 {
            // Zero (the arithmetic mean) in the zero bucket.
            0.0
        } else {
            // Geometric mean for exponential buckets.
            let v = (bucket.upper * bucket.lower).sqrt();
            if bucket.upper < 0.0 { -v } else { v }
        };
        let delta = val - mean;
        (variance, c_variance) = kahan_inc(bucket.count * delta * delta, variance, c_variance);
    }
    variance += c_variance;
    variance / h.count
}

/// `h` trimmed at `rhs` (`FloatHistogram.TrimBuckets` on a copy), PromQL's `h </ rhs` when
/// `upper` (`isUpperTrim`: keep the observations below `rhs`) and `h >/ rhs` otherwise
/// (keep those above).
///
/// Buckets entirely on the kept side stay, buckets entirely on the other side are emptied,
/// and a bucket containing `rhs` keeps the interpolated part (linear for custom buckets and
/// the zero bucket, exponential otherwise; buckets with an infinite bound are kept or
/// dropped whole, except that a custom first bucket with a positive finite upper bound is
/// taken to start at 0). If anything was removed, `count` becomes the kept total, `sum` is
/// re-estimated from the kept part of every bucket at its midpoint (arithmetic for custom
/// buckets and the zero bucket, geometric for exponential ones), and empty buckets are
/// dropped; otherwise the histogram is returned unchanged.
pub fn trim(h: &FloatHistogram, rhs: f64, upper: bool) -> FloatHistogram {
    let mut out = h.clone();
    let custom = h.uses_custom_buckets();
    let mut acc = TrimTotals::default();

    let has_positive = trim_side(
        h.positive_buckets(),
        &mut out.positive,
        rhs,
        upper,
        true,
        custom,
        &mut acc,
    );
    let has_negative = trim_side(
        h.negative_buckets(),
        &mut out.negative,
        rhs,
        upper,
        false,
        custom,
        &mut acc,
    );

    if h.zero_count > 0.0 {
        let (keep, midpoint) =
            zero_bucket_trim(&h.zero_bucket(), rhs, has_negative, has_positive, upper);
        if out.zero_count != keep {
            out.zero_count = keep;
            acc.trimmed = true;
        }
        acc.sum += midpoint * keep;
        acc.count += keep;
    }

    if acc.trimmed {
        // Totals change only when some bucket was (partly) trimmed.
        out.count = acc.count;
        out.sum = acc.sum;
        out.compact();
    }
    out
}

/// What [`trim`] accumulates over the buckets.
#[derive(Default)]
struct TrimTotals {
    count: f64,
    sum: f64,
    trimmed: bool,
}

/// One side's loop of `TrimBuckets`: `buckets` (with bounds) index-aligned with `counts`,
/// the counts to update. Returns whether the side has a populated bucket.
fn trim_side(
    buckets: impl Iterator<Item = Bucket>,
    counts: &mut [(i32, f64)],
    rhs: f64,
    upper_trim: bool,
    positive: bool,
    custom: bool,
    acc: &mut TrimTotals,
) -> bool {
    let mut has_any = false;
    for (slot, bucket) in counts.iter_mut().zip(buckets) {
        if bucket.count == 0.0 {
            continue;
        }
        has_any = true;
        let (keep_all, contains) = if upper_trim {
            (bucket.upper <= rhs, bucket.lower < rhs)
        } else {
            (bucket.lower >= rhs, bucket.upper > rhs)
        };
        if keep_all {
            // Entirely on the kept side.
            acc.count += bucket.count;
            let midpoint = midpoint(bucket.lower, bucket.upper, positive, custom);
            acc.sum += midpoint * bucket.count;
        } else if contains {
            // Contains the trim point: interpolate.
            let (keep, midpoint) = bucket_trim(&bucket, rhs, upper_trim, positive, custom);
            acc.count += keep;
            acc.sum += midpoint * keep;
            if slot.1 != keep {
                slot.1 = keep;
                acc.trimmed = true;
            }
        } else {
            // Entirely on the removed side.
            slot.1 = 0.0;
            acc.trimmed = true;
        }
    }
    has_any
}

/// `handleInfinityBuckets`: the kept count and its midpoint for a bucket with an infinite
/// bound (the lower one checked first).
fn infinity_bucket_trim(upper_trim: bool, b: &Bucket, rhs: f64) -> (f64, f64) {
    let zero_if_inf = |x: f64| if x.is_infinite() { 0.0 } else { x };

    if b.lower == f64::NEG_INFINITY {
        if upper_trim {
            if rhs >= b.upper {
                // The whole bucket is below rhs.
                return (b.count, 0.0);
            }
            if rhs > 0.0 && b.upper > 0.0 && b.upper != f64::INFINITY {
                // A finite positive upper bound: 0 is taken as the lower bound (only NHCB
                // have such a bucket, so linear interpolation).
                return (b.count * rhs / b.upper, rhs / 2.0);
            }
            if b.upper <= 0.0 {
                return (b.count, rhs);
            }
            // The distribution inside an infinite bucket is unknown: drop it whole.
            return (0.0, zero_if_inf(b.upper));
        }
        if rhs <= b.lower {
            // Cannot happen with a lower bound of -Inf: keep the whole bucket.
            return (b.count, 0.0);
        }
        if rhs >= 0.0 && b.upper > rhs && b.upper != f64::INFINITY {
            // A finite positive upper bound: 0 is taken as the lower bound.
            return (b.count * (1.0 - rhs / b.upper), (rhs + b.upper) / 2.0);
        }
        return (0.0, zero_if_inf(b.upper));
    }

    // The upper bound is +Inf.
    if upper_trim {
        // Some observations could be above rhs (or all are): drop the bucket.
        return (0.0, zero_if_inf(b.lower));
    }
    if rhs >= b.lower {
        return (b.count, rhs);
    }
    // rhs is below the bucket, whose distribution is unknown: drop it whole.
    (0.0, zero_if_inf(b.lower))
}

/// `computeSplit`: the part of the bucket's count at or below `rhs`.
fn split(b: &Bucket, rhs: f64, linear: bool) -> f64 {
    if rhs <= b.lower {
        return 0.0;
    }
    if rhs >= b.upper {
        return b.count;
    }
    b.count * b.fraction_below(rhs, linear)
}

/// `computeZeroBucketTrim`: the kept count of the zero bucket and its midpoint (the zero
/// bucket starts at 0 with only positive buckets and ends at 0 with only negative ones).
fn zero_bucket_trim(
    zero_bucket: &Bucket,
    rhs: f64,
    has_negative: bool,
    has_positive: bool,
    upper_trim: bool,
) -> (f64, f64) {
    let (mut lower, mut upper) = (zero_bucket.lower, zero_bucket.upper);
    if has_negative && !has_positive {
        upper = 0.0;
    }
    if has_positive && !has_negative {
        lower = 0.0;
    }

    let (fraction, midpoint) = if upper_trim {
        if rhs <= lower {
            return (0.0, 0.0);
        }
        if rhs >= upper {
            return (zero_bucket.count, (lower + upper) / 2.0);
        }
        ((rhs - lower) / (upper - lower), (lower + rhs) / 2.0)
    } else {
        if rhs <= lower {
            return (zero_bucket.count, (lower + upper) / 2.0);
        }
        if rhs >= upper {
            return (0.0, 0.0);
        }
        ((upper - rhs) / (upper - lower), (rhs + upper) / 2.0)
    };
    (zero_bucket.count * fraction, midpoint)
}

/// `computeBucketTrim`: the kept count of a bucket containing `rhs` and its midpoint.
fn bucket_trim(b: &Bucket, rhs: f64, upper_trim: bool, positive: bool, custom: bool) -> (f64, f64) {
    if b.lower == f64::NEG_INFINITY || b.upper == f64::INFINITY {
        return infinity_bucket_trim(upper_trim, b, rhs);
    }
    let under = split(b, rhs, custom);
    if upper_trim {
        return (under, midpoint(b.lower, rhs, positive, custom));
    }
    (b.count - under, midpoint(rhs, b.upper, positive, custom))
}

/// `computeMidpoint`: where the observations of a surviving interval are taken to lie.
fn midpoint(lower: f64, upper: f64, positive: bool, linear: bool) -> f64 {
    if lower.is_infinite() {
        if upper.is_infinite() {
            return 0.0;
        }
        if upper > 0.0 {
            return upper / 2.0;
        }
        return upper;
    } else if upper.is_infinite() {
        return lower;
    }
    if linear {
        return (lower + upper) / 2.0;
    }
    let geo_mean = (lower * upper).abs().sqrt();
    if positive { geo_mean } else { -geo_mean }
}

/// Ports of the parts of Go's `math` package the statistics use (the portable Go code; on
/// amd64 Go's assembly `Log` performs the same operations in the same order).
// The constants are written as Go's source writes them.
#[allow(clippy::excessive_precision)]
mod gomath {
    const SHIFT: u32 = 52;
    const MASK: u64 = 0x7ff;
    const BIAS: i64 = 1023;
    const SMALLEST_NORMAL: f64 = 2.2250738585072014e-308;

    /// `math.normalize`: a subnormal scaled into the normal range, with the exponent taken.
    fn normalize(x: f64) -> (f64, i64) {
        if x.abs() < SMALLEST_NORMAL {
            return (x * (1u64 << 52) as f64, -52);
        }
        (x, 0)
    }

    /// `math.Frexp`: `f = frac · 2^exp` with `|frac|` in `[0.5, 1)`.
    pub(in crate::histogram) fn frexp(f: f64) -> (f64, i64) {
        if f == 0.0 || f.is_infinite() || f.is_nan() {
            return (f, 0);
        }
        let (f, mut exp) = normalize(f);
        let mut x = f.to_bits();
        exp += ((x >> SHIFT) & MASK) as i64 - BIAS + 1;
        x &= !(MASK << SHIFT);
        x |= ((BIAS - 1) as u64) << SHIFT;
        (f64::from_bits(x), exp)
    }

    /// `math.Ldexp`: `frac · 2^exp`.
    pub(in crate::histogram) fn ldexp(frac: f64, exp: i64) -> f64 {
        if frac == 0.0 || frac.is_infinite() || frac.is_nan() {
            return frac;
        }
        let (frac, e) = normalize(frac);
        let mut exp = exp + e;
        let mut x = frac.to_bits();
        exp += ((x >> SHIFT) & MASK) as i64 - BIAS;
        if exp < -1075 {
            return 0.0_f64.copysign(frac);
        }
        if exp > 1023 {
            return if frac < 0.0 {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            };
        }
        let mut m = 1.0;
        if exp < -1022 {
            // Subnormal result.
            exp += 53;
            m = 1.0 / (1u64 << 53) as f64;
        }
        x &= !(MASK << SHIFT);
        x |= ((exp + BIAS) as u64) << SHIFT;
        m * f64::from_bits(x)
    }

    /// `math.Log` (FreeBSD's `e_log.c` as Go has it).
    pub(super) fn log(x: f64) -> f64 {
        const LN2_HI: f64 = 6.93147180369123816490e-01;
        const LN2_LO: f64 = 1.90821492927058770002e-10;
        const L1: f64 = 6.666666666666735130e-01;
        const L2: f64 = 3.999999999940941908e-01;
        const L3: f64 = 2.857142874366239149e-01;
        const L4: f64 = 2.222219843214978396e-01;
        const L5: f64 = 1.818357216161805012e-01;
        const L6: f64 = 1.531383769920937332e-01;
        const L7: f64 = 1.479819860511658591e-01;

        if x.is_nan() || x == f64::INFINITY {
            return x;
        }
        if x < 0.0 {
            return f64::NAN;
        }
        if x == 0.0 {
            return f64::NEG_INFINITY;
        }

        let (mut f1, mut ki) = frexp(x);
        if f1 < std::f64::consts::FRAC_1_SQRT_2 {
            f1 *= 2.0;
            ki -= 1;
        }
        let f = f1 - 1.0;
        let k = ki as f64;

        let s = f / (2.0 + f);
        let s2 = s * s;
        let s4 = s2 * s2;
        let t1 = s2 * (L1 + s4 * (L3 + s4 * (L5 + s4 * L7)));
        let t2 = s4 * (L2 + s4 * (L4 + s4 * L6));
        let r = t1 + t2;
        let hfsq = 0.5 * f * f;
        k * LN2_HI - ((hfsq - (s * (hfsq + r) + k * LN2_LO)) - f)
    }

    /// `math.Log2`: exact for powers of two.
    pub(in crate::histogram) fn log2(x: f64) -> f64 {
        let (frac, exp) = frexp(x);
        if frac == 0.5 {
            return (exp - 1) as f64;
        }
        log(frac) * std::f64::consts::LOG2_E + exp as f64
    }

    /// `math.Exp2`.
    pub(in crate::histogram) fn exp2(x: f64) -> f64 {
        const LN2_HI: f64 = 6.93147180369123816490e-01;
        const LN2_LO: f64 = 1.90821492927058770002e-10;
        const OVERFLOW: f64 = 1.0239999999999999e+03;
        const UNDERFLOW: f64 = -1.0740e+03;

        if x.is_nan() || x == f64::INFINITY {
            return x;
        }
        if x == f64::NEG_INFINITY {
            return 0.0;
        }
        if x > OVERFLOW {
            return f64::INFINITY;
        }
        if x < UNDERFLOW {
            return 0.0;
        }

        // x = r·lg(e) + k with |r| ≤ ln(2)/2, r as hi - lo. Go's int() truncates.
        let k: i64 = if x > 0.0 {
            (x + 0.5) as i64
        } else if x < 0.0 {
            (x - 0.5) as i64
        } else {
            0
        };
        let t = x - k as f64;
        let hi = t * LN2_HI;
        let lo = -t * LN2_LO;
        expmulti(hi, lo, k)
    }

    /// `math.expmulti`: `e^r · 2^k` for `r = hi - lo`, `|r| ≤ ln(2)/2`.
    fn expmulti(hi: f64, lo: f64, k: i64) -> f64 {
        const P1: f64 = 1.66666666666666657415e-01;
        const P2: f64 = -2.77777777770155933842e-03;
        const P3: f64 = 6.61375632143793436117e-05;
        const P4: f64 = -1.65339022054652515390e-06;
        const P5: f64 = 4.13813679705723846039e-08;

        let r = hi - lo;
        let t = r * r;
        let c = r - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
        let y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
        ldexp(y, k)
    }
}

#[cfg(test)]
pub(in crate::histogram) use gomath::{
    exp2 as go_exp2, frexp as go_frexp, ldexp as go_ldexp, log2 as go_log2,
};
