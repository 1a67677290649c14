//! Prometheus's native histogram as one value type: [`FloatHistogram`], the form every
//! Strata crate computes with (the integer `Histogram` of the wire formats converts into it
//! on ingest, as Prometheus's engine converts every histogram it reads).
//!
//! Semantics follow `model/histogram/float_histogram.go`: exponential schemas −4..8 (bucket
//! `i` of schema `s` is `(2^((i-1)·2^-s), 2^(i·2^-s)]`), the custom-bucket schema −53 (NHCB,
//! bucket `i` is `(custom_values[i-1], custom_values[i]]`, bucket 0 from −∞, the last to
//! +∞), a zero bucket `[-zero_threshold, zero_threshold]`, and a counter-reset hint.
//!
//! Deviation from Prometheus's layout: buckets are kept sparse, as sorted `(index, count)`
//! pairs, not as spans over a dense count slice. Spans exist only at the edges (wire
//! formats, [`FloatHistogram::from_spans`], [`FloatHistogram::spans`]); every operation
//! here (add with schema and zero-threshold reconciliation, reset detection, resolution
//! reduction) reads as the definition instead of as span surgery.

mod bounds;
mod codec;
pub mod kahan;
pub mod ops;
pub mod stats;

use std::sync::Arc;

pub use codec::DecodeError;
pub use ops::{Combined, Incompatible};

/// The schema of histograms with custom bucket bounds (NHCB).
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;
/// Lowest exponential schema.
pub const MIN_SCHEMA: i32 = -4;
/// Highest exponential schema.
pub const MAX_SCHEMA: i32 = 8;

/// Whether a histogram follows a counter reset, as its producer says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CounterResetHint {
    /// Not known: detected by comparing with the previous sample.
    #[default]
    Unknown = 0,
    /// A counter reset happened.
    Reset = 1,
    /// No counter reset happened.
    NotReset = 2,
    /// A gauge histogram: counter resets do not apply.
    Gauge = 3,
}

impl CounterResetHint {
    /// From the wire number (unknown numbers read as `Unknown`).
    pub fn from_u8(v: u8) -> Self {
        match v {
            1 => CounterResetHint::Reset,
            2 => CounterResetHint::NotReset,
            3 => CounterResetHint::Gauge,
            _ => CounterResetHint::Unknown,
        }
    }

    /// The name in the test notation (`counter_reset_hint:`).
    pub fn name(self) -> &'static str {
        match self {
            CounterResetHint::Unknown => "unknown",
            CounterResetHint::Reset => "reset",
            CounterResetHint::NotReset => "not_reset",
            CounterResetHint::Gauge => "gauge",
        }
    }
}

/// A span of consecutive buckets in the wire formats: `offset` from the end of the
/// previous span (from index 0 for the first), `length` buckets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub offset: i32,
    pub length: u32,
}

/// One bucket with its bounds, as iterated for output and for quantiles.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    pub lower: f64,
    pub upper: f64,
    pub lower_inclusive: bool,
    pub upper_inclusive: bool,
    pub count: f64,
    pub index: i32,
}

impl Bucket {
    /// Prometheus's JSON boundary rule: 0 `(a,b]`, 1 `[a,b)`, 2 `(a,b)`, 3 `[a,b]`.
    pub fn boundary_rule(&self) -> u8 {
        match (self.lower_inclusive, self.upper_inclusive) {
            (true, true) => 3,
            (false, true) => 0,
            (true, false) => 1,
            (false, false) => 2,
        }
    }
}

/// A native histogram with float counts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FloatHistogram {
    pub hint: CounterResetHint,
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: f64,
    pub count: f64,
    pub sum: f64,
    /// Positive buckets (all buckets of an NHCB), sorted by index, indexes unique.
    pub positive: Vec<(i32, f64)>,
    /// Negative buckets, sorted by index (index `i` is `[-upper(i), -lower(i))`).
    pub negative: Vec<(i32, f64)>,
    /// Upper bounds of the custom buckets (schema −53 only), ascending, without +Inf.
    pub custom_values: Arc<[f64]>,
}

impl FloatHistogram {
    /// Whether the schema is the custom-bucket one.
    pub fn uses_custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }

    /// Sparse buckets from spans and their absolute counts (missing counts read as 0).
    pub fn buckets_from_spans(spans: &[Span], counts: &[f64]) -> Vec<(i32, f64)> {
        let mut out = Vec::with_capacity(counts.len());
        let mut idx: i64 = 0;
        let mut k = 0;
        for s in spans {
            // The first offset is the first index; later ones are gaps after a span.
            idx += i64::from(s.offset);
            for _ in 0..s.length {
                let c = counts.get(k).copied().unwrap_or(0.0);
                out.push((idx as i32, c));
                idx += 1;
                k += 1;
            }
        }
        out
    }

    /// Sparse buckets from spans and delta-encoded integer counts (the integer form).
    pub fn buckets_from_deltas(spans: &[Span], deltas: &[i64]) -> Vec<(i32, f64)> {
        let mut acc: i64 = 0;
        let counts: Vec<f64> = deltas
            .iter()
            .map(|d| {
                acc = acc.wrapping_add(*d);
                acc as f64
            })
            .collect();
        Self::buckets_from_spans(spans, &counts)
    }

    /// Spans and counts of sparse buckets (gaps of up to two empty buckets are kept inside a
    /// span, as Prometheus's compaction does).
    pub fn spans(buckets: &[(i32, f64)]) -> (Vec<Span>, Vec<f64>) {
        let mut spans: Vec<Span> = Vec::new();
        let mut counts = Vec::with_capacity(buckets.len());
        let mut next: Option<i32> = None;
        for &(i, c) in buckets {
            match next {
                Some(n) if i >= n && i - n <= 2 => {
                    counts.resize(counts.len() + (i - n) as usize, 0.0);
                    if let Some(s) = spans.last_mut() {
                        s.length += (i - n) as u32 + 1;
                    }
                }
                Some(n) => spans.push(Span {
                    offset: i - n,
                    length: 1,
                }),
                None => spans.push(Span {
                    offset: i,
                    length: 1,
                }),
            }
            counts.push(c);
            next = Some(i + 1);
        }
        (spans, counts)
    }

    /// The upper bound of bucket `idx` in this histogram's schema.
    pub fn bound(&self, idx: i32) -> f64 {
        bound(idx, self.schema, &self.custom_values)
    }

    /// The positive bucket `(index, count)` with its bounds.
    fn positive_bucket(&self, idx: i32, count: f64) -> Bucket {
        let (lower, upper) = (self.bound(idx - 1), self.bound(idx));
        let custom = self.uses_custom_buckets();
        Bucket {
            lower,
            upper,
            lower_inclusive: if custom { idx == 0 } else { lower < 0.0 },
            upper_inclusive: if custom { true } else { upper > 0.0 },
            count,
            index: idx,
        }
    }

    /// The negative bucket `(index, count)` with its bounds.
    fn negative_bucket(&self, idx: i32, count: f64) -> Bucket {
        let (lower, upper) = (-self.bound(idx), -self.bound(idx - 1));
        Bucket {
            lower,
            upper,
            lower_inclusive: lower < 0.0,
            upper_inclusive: upper > 0.0,
            count,
            index: idx,
        }
    }

    /// Positive buckets with bounds, ascending.
    pub fn positive_buckets(&self) -> impl Iterator<Item = Bucket> + '_ {
        self.positive
            .iter()
            .map(|&(i, c)| self.positive_bucket(i, c))
    }

    /// Negative buckets with bounds, from the one nearest zero outwards.
    pub fn negative_buckets(&self) -> impl Iterator<Item = Bucket> + '_ {
        self.negative
            .iter()
            .map(|&(i, c)| self.negative_bucket(i, c))
    }

    /// The zero bucket.
    pub fn zero_bucket(&self) -> Bucket {
        Bucket {
            lower: -self.zero_threshold,
            upper: self.zero_threshold,
            lower_inclusive: true,
            upper_inclusive: true,
            count: self.zero_count,
            index: 0,
        }
    }

    /// Every bucket in ascending order of bounds: negative buckets (highest index first),
    /// the zero bucket when populated, positive buckets; bounds clipped to the zero bucket
    /// (`AllBucketIterator`).
    pub fn all_buckets(&self) -> Vec<Bucket> {
        let zt = self.zero_threshold;
        let mut out = Vec::with_capacity(self.positive.len() + self.negative.len() + 1);
        for &(i, c) in self.negative.iter().rev() {
            let mut b = self.negative_bucket(i, c);
            if b.upper < 0.0 && b.upper > -zt {
                b.upper = -zt;
            }
            if b.lower > 0.0 && b.lower < zt {
                b.lower = zt;
            }
            out.push(b);
        }
        // Any non-zero zero count (Prometheus's iterator takes positive ones only; a
        // negated histogram's zero bucket is shown too).
        if self.zero_count != 0.0 {
            out.push(self.zero_bucket());
        }
        for &(i, c) in &self.positive {
            let mut b = self.positive_bucket(i, c);
            if b.lower > 0.0 && b.lower < zt {
                b.lower = zt;
            }
            if b.upper < 0.0 && b.upper > -zt {
                b.upper = -zt;
            }
            out.push(b);
        }
        out
    }

    /// Removes empty buckets.
    pub fn compact(&mut self) {
        self.positive.retain(|b| b.1 != 0.0);
        self.negative.retain(|b| b.1 != 0.0);
    }

    /// Equality as Prometheus's `==` between histograms sees it: same schema, threshold,
    /// counts, sum, custom bounds and populated buckets (bit patterns for the floats).
    pub fn equals(&self, o: &FloatHistogram) -> bool {
        let same = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
        let populated = |v: &[(i32, f64)]| -> Vec<(i32, u64)> {
            v.iter()
                .filter(|b| b.1 != 0.0)
                .map(|b| (b.0, b.1.to_bits()))
                .collect()
        };
        self.schema == o.schema
            && same(self.zero_threshold, o.zero_threshold)
            && same(self.zero_count, o.zero_count)
            && same(self.count, o.count)
            && same(self.sum, o.sum)
            && (!self.uses_custom_buckets()
                || ops::bounds_match(&self.custom_values, &o.custom_values))
            && populated(&self.positive) == populated(&o.positive)
            && populated(&self.negative) == populated(&o.negative)
    }

    /// Whether any count, the sum or a custom bound is infinite.
    pub fn has_overflow(&self) -> bool {
        self.zero_count.is_infinite()
            || self.count.is_infinite()
            || self.sum.is_infinite()
            || self.positive.iter().any(|b| b.1.is_infinite())
            || self.negative.iter().any(|b| b.1.is_infinite())
            || self.custom_values.iter().any(|v| v.is_infinite())
    }

    /// Approximate heap and inline size in bytes (for memory accounting).
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + 16 * (self.positive.len() + self.negative.len())
            + 8 * self.custom_values.len()
    }
}

/// The upper bound of bucket `idx` in `schema` (`getBound`): for custom buckets −∞ below
/// index 0 and +∞ from the last bound on; for exponential schemas the largest finite float
/// for the last regular bucket.
pub fn bound(idx: i32, schema: i32, custom_values: &[f64]) -> f64 {
    if schema == CUSTOM_BUCKETS_SCHEMA {
        let len = custom_values.len() as i64;
        let i = i64::from(idx);
        return if i >= len || i < -1 {
            f64::INFINITY
        } else if i == -1 {
            f64::NEG_INFINITY
        } else {
            custom_values[idx as usize]
        };
    }
    if schema < 0 {
        // Schemas below −4 never get here from ingest; a corrupt one must not overflow.
        let exp = i64::from(idx) << (-schema).min(60);
        if exp == 1024 {
            return f64::MAX;
        }
        return ldexp(1.0, exp);
    }
    let schema = schema.min(MAX_SCHEMA);
    let frac_idx = idx & ((1 << schema) - 1);
    let frac = bounds::frac(schema, frac_idx);
    let exp = i64::from(idx >> schema) + 1;
    if frac == 0.5 && exp == 1025 {
        return f64::MAX;
    }
    ldexp(frac, exp)
}

/// `frac · 2^exp`, saturating to 0 and ±Inf like Go's `math.Ldexp`.
fn ldexp(frac: f64, exp: i64) -> f64 {
    let exp = exp.clamp(-1200, 1200) as i32;
    // Two steps keep intermediate powers in range.
    let half = exp / 2;
    frac * f64::from(half).exp2() * f64::from(exp - half).exp2()
}

/// The schema-`target` index of bucket `idx` of schema `origin` (`target ≤ origin`).
pub fn target_index(idx: i32, origin: i32, target: i32) -> i32 {
    (idx.wrapping_sub(1) >> (origin - target).clamp(0, 31)).wrapping_add(1)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_stats;
