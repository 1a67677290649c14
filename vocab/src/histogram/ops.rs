//! Arithmetic on [`FloatHistogram`]s as `float_histogram.go` defines it: scaling, adding
//! and subtracting with schema and zero-threshold reconciliation (and NHCB bound
//! intersection), resolution reduction, and counter-reset detection.

use std::sync::Arc;

use super::{CUSTOM_BUCKETS_SCHEMA, CounterResetHint, FloatHistogram, target_index};

/// An exponential and a custom-bucket histogram cannot be combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot apply this operation to histograms with a mix of exponential and custom bucket schemas"
)]
pub struct Incompatible;

/// What an addition or subtraction noticed beside its result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Combined {
    /// One operand said "reset", the other "not reset".
    pub counter_reset_collision: bool,
    /// Custom bucket bounds differed and were intersected.
    pub nhcb_bounds_reconciled: bool,
}

/// Custom bounds equal bit for bit.
pub(crate) fn bounds_match(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// The bounds both lists have.
fn intersect_bounds(a: &[f64], b: &[f64]) -> Vec<f64> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push(a[i]);
            i += 1;
            j += 1;
        } else if a[i] < b[j] {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Custom buckets re-bucketed onto `target` bounds: each bucket goes to the first target
/// bucket whose upper bound is at least its own (the +Inf bucket past the last).
fn map_custom(buckets: &[(i32, f64)], bounds: &[f64], target: &[f64], sign: f64, out: &mut [f64]) {
    for &(idx, c) in buckets {
        let t = match usize::try_from(idx).ok().and_then(|i| bounds.get(i)) {
            Some(upper) => target.partition_point(|b| b < upper),
            None => target.len(),
        };
        if let Some(slot) = out.get_mut(t) {
            *slot += sign * c;
        }
    }
}

/// Merges `b` (scaled by `sign`) into `a`, both sorted by index.
fn merge(a: &[(i32, f64)], b: impl Iterator<Item = (i32, f64)>, sign: f64) -> Vec<(i32, f64)> {
    let mut out: Vec<(i32, f64)> = Vec::with_capacity(a.len());
    let mut ai = a.iter().copied().peekable();
    for (bi, bc) in b {
        while let Some(&(i, c)) = ai.peek() {
            if i < bi {
                out.push((i, c));
                ai.next();
            } else {
                break;
            }
        }
        match ai.peek() {
            Some(&(i, c)) if i == bi => {
                out.push((i, c + sign * bc));
                ai.next();
            }
            _ => out.push((bi, sign * bc)),
        }
    }
    out.extend(ai);
    out
}

/// Buckets of `schema` moved to the lower schema `target`, counts of merged buckets summed.
pub fn reduce_buckets(buckets: &[(i32, f64)], schema: i32, target: i32) -> Vec<(i32, f64)> {
    if target >= schema {
        return buckets.to_vec();
    }
    let mut out: Vec<(i32, f64)> = Vec::with_capacity(buckets.len());
    for &(i, c) in buckets {
        let t = target_index(i, schema, target);
        match out.last_mut() {
            Some(last) if last.0 == t => last.1 += c,
            _ => out.push((t, c)),
        }
    }
    out
}

impl FloatHistogram {
    /// Multiplies counts and sum by `factor` (a negative factor makes it a gauge).
    pub fn mul(&mut self, factor: f64) {
        self.zero_count *= factor;
        self.count *= factor;
        self.sum *= factor;
        for b in self.positive.iter_mut().chain(self.negative.iter_mut()) {
            b.1 *= factor;
        }
        if factor < 0.0 {
            self.hint = CounterResetHint::Gauge;
        }
    }

    /// Divides counts and sum by `scalar`; dividing by 0 removes every bucket.
    pub fn div(&mut self, scalar: f64) {
        self.zero_count /= scalar;
        self.count /= scalar;
        self.sum /= scalar;
        if scalar == 0.0 {
            self.positive.clear();
            self.negative.clear();
            return;
        }
        for b in self.positive.iter_mut().chain(self.negative.iter_mut()) {
            b.1 /= scalar;
        }
        if scalar < 0.0 {
            self.hint = CounterResetHint::Gauge;
        }
    }

    /// Lowers the resolution to `target` (a no-op unless lower than the current schema).
    pub fn reduce_resolution(&mut self, target: i32) {
        if self.uses_custom_buckets() || target >= self.schema {
            return;
        }
        self.positive = reduce_buckets(&self.positive, self.schema, target);
        self.negative = reduce_buckets(&self.negative, self.schema, target);
        self.schema = target;
    }

    /// The zero count this histogram would have with a zero threshold of at least
    /// `larger`, and the threshold it would really need (widened to the upper bound of a
    /// populated bucket the requested threshold falls into).
    pub fn zero_count_for_larger_threshold(&self, larger: f64) -> (f64, f64) {
        let mut larger = larger;
        if larger <= self.zero_threshold {
            return (self.zero_count, self.zero_threshold.max(larger));
        }
        'outer: loop {
            let mut count = self.zero_count;
            for b in self.positive_buckets() {
                if b.lower >= larger {
                    break;
                }
                count += b.count;
                if b.upper > larger {
                    if b.count != 0.0 {
                        larger = b.upper;
                    }
                    break;
                }
            }
            for b in self.negative_buckets() {
                if b.upper <= -larger {
                    break;
                }
                count += b.count;
                if b.lower < -larger {
                    if b.count != 0.0 {
                        larger = -b.lower;
                        continue 'outer;
                    }
                    break;
                }
            }
            return (count, larger);
        }
    }

    /// Widens the zero bucket to `threshold` (from [`Self::zero_count_for_larger_threshold`]),
    /// dropping the buckets it swallows.
    fn widen_zero_bucket(&mut self, count: f64, threshold: f64) {
        self.zero_count = count;
        self.zero_threshold = threshold;
        let (s, cv) = (self.schema, self.custom_values.clone());
        self.positive
            .retain(|&(i, _)| super::bound(i - 1, s, &cv) >= threshold);
        self.negative
            .retain(|&(i, _)| -super::bound(i, s, &cv) > -threshold);
        self.compact();
    }

    /// The zero count of `other` after both zero buckets are made equally wide (this one
    /// widened in place when `other`'s is wider).
    fn reconcile_zero_buckets(&mut self, other: &FloatHistogram) -> f64 {
        let mut other_count = other.zero_count;
        let mut other_threshold = other.zero_threshold;
        while other_threshold != self.zero_threshold {
            if self.zero_threshold > other_threshold {
                (other_count, other_threshold) =
                    other.zero_count_for_larger_threshold(self.zero_threshold);
            }
            if other_threshold > self.zero_threshold {
                let (c, t) = self.zero_count_for_larger_threshold(other_threshold);
                self.widen_zero_bucket(c, t);
            }
        }
        other_count
    }

    /// The hint of a sum (`adjustCounterReset`): whether the two hints collided.
    pub(crate) fn adjust_hint(&mut self, other: CounterResetHint) -> bool {
        use CounterResetHint::*;
        match (self.hint, other) {
            (a, b) if a == b => false,
            (Gauge, _) => false,
            (_, Gauge) => {
                self.hint = Gauge;
                false
            }
            (Unknown, _) => false,
            (_, Unknown) => {
                self.hint = Unknown;
                false
            }
            _ => {
                self.hint = Unknown;
                true
            }
        }
    }

    /// `self + other` in place.
    pub fn add(&mut self, other: &FloatHistogram) -> Result<Combined, Incompatible> {
        self.combine(other, 1.0)
    }

    /// `self - other` in place.
    pub fn sub(&mut self, other: &FloatHistogram) -> Result<Combined, Incompatible> {
        self.combine(other, -1.0)
    }

    fn combine(&mut self, other: &FloatHistogram, sign: f64) -> Result<Combined, Incompatible> {
        if self.uses_custom_buckets() != other.uses_custom_buckets() {
            return Err(Incompatible);
        }
        let mut r = Combined {
            counter_reset_collision: self.adjust_hint(other.hint),
            ..Combined::default()
        };
        if !self.uses_custom_buckets() {
            let oz = self.reconcile_zero_buckets(other);
            self.zero_count += sign * oz;
        }
        self.count += sign * other.count;
        self.sum += sign * other.sum;
        if self.uses_custom_buckets() {
            if bounds_match(&self.custom_values, &other.custom_values) {
                self.positive = merge(&self.positive, other.positive.iter().copied(), sign);
            } else {
                r.nhcb_bounds_reconciled = true;
                let target = intersect_bounds(&self.custom_values, &other.custom_values);
                let mut counts = vec![0.0; target.len() + 1];
                map_custom(
                    &self.positive,
                    &self.custom_values,
                    &target,
                    1.0,
                    &mut counts,
                );
                map_custom(
                    &other.positive,
                    &other.custom_values,
                    &target,
                    sign,
                    &mut counts,
                );
                self.positive = counts
                    .into_iter()
                    .enumerate()
                    .filter(|(_, c)| *c != 0.0)
                    .map(|(i, c)| (i as i32, c))
                    .collect();
                self.custom_values = Arc::from(target);
            }
            return Ok(r);
        }
        let schema = self.schema.min(other.schema);
        self.reduce_resolution(schema);
        let zt = self.zero_threshold;
        // Buckets of `other` inside the (reconciled) zero bucket were counted there.
        let pos = reduce_buckets(&other.positive, other.schema, schema);
        let neg = reduce_buckets(&other.negative, other.schema, schema);
        let above = |&&(i, _): &&(i32, f64)| super::bound(i, schema, &[]) > zt;
        self.positive = merge(&self.positive, pos.iter().filter(above).copied(), sign);
        self.negative = merge(&self.negative, neg.iter().filter(above).copied(), sign);
        Ok(r)
    }

    /// Whether this histogram follows a counter reset relative to `previous`
    /// (`DetectReset`): by its hint when it says so, else by any count going down.
    pub fn detect_reset(&self, previous: &FloatHistogram) -> bool {
        match self.hint {
            CounterResetHint::Reset => return true,
            CounterResetHint::NotReset => return false,
            _ => {}
        }
        if self.count < previous.count {
            return true;
        }
        if self.uses_custom_buckets() {
            if !previous.uses_custom_buckets() {
                return true;
            }
            if !bounds_match(&self.custom_values, &previous.custom_values) {
                return self.reset_with_mismatched_bounds(previous);
            }
        }
        if self.schema > previous.schema {
            return true;
        }
        if self.zero_threshold < previous.zero_threshold {
            return true;
        }
        let (prev_zero, threshold) = previous.zero_count_for_larger_threshold(self.zero_threshold);
        if threshold != self.zero_threshold {
            return true;
        }
        if self.zero_count < prev_zero {
            return true;
        }
        let zt = self.zero_threshold;
        let sc = self.schema;
        let above = |s: i32, cv: &[f64], b: &(i32, f64)| {
            s == CUSTOM_BUCKETS_SCHEMA || super::bound(b.0, s, cv) > zt
        };
        let side = |cur: &[(i32, f64)], prev: &[(i32, f64)]| {
            let cur: Vec<(i32, f64)> = cur
                .iter()
                .filter(|b| above(sc, &self.custom_values, b))
                .copied()
                .collect();
            let prev = reduce_buckets(prev, previous.schema, sc);
            prev.iter()
                .filter(|b| above(sc, &previous.custom_values, b))
                .any(|&(i, pc)| {
                    let cc = cur
                        .binary_search_by_key(&i, |b| b.0)
                        .map_or(0.0, |k| cur[k].1);
                    cc < pc
                })
        };
        side(&self.positive, &previous.positive) || side(&self.negative, &previous.negative)
    }

    /// Reset detection between NHCBs of different bounds: cumulative counts compared at
    /// every bound both have.
    fn reset_with_mismatched_bounds(&self, previous: &FloatHistogram) -> bool {
        let common = intersect_bounds(&self.custom_values, &previous.custom_values);
        let mut cur = vec![0.0; common.len() + 1];
        let mut prev = vec![0.0; common.len() + 1];
        map_custom(&self.positive, &self.custom_values, &common, 1.0, &mut cur);
        map_custom(
            &previous.positive,
            &previous.custom_values,
            &common,
            1.0,
            &mut prev,
        );
        cur.iter().zip(&prev).any(|(c, p)| c < p)
    }
}
