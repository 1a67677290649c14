//! Per-window aggregates of one float series: what a downsampled block keeps for each
//! series and window `(end − resolution, end]` (left-open like PromQL's range windows), so
//! that `count/sum/min/max_over_time`, `rate` and `increase` over windows made of whole
//! resolution windows come out as from the raw samples.
//!
//! - `count`, `sum` (Kahan-compensated, as `sum_over_time`), `min` and `max` (NaN only when
//!   every value is NaN, as `min/max_over_time`);
//! - the first and last sample (time and value): `rate`'s extrapolation needs the first
//!   and last sample of its range and their count;
//! - `counter_correction`: the sum of the values before each counter reset inside the
//!   window (`rate`'s reset handling); resets between windows are found from one window's
//!   last value and the next one's first.
//!
//! This is Thanos's `count, sum, min, max, counter` made exact for `rate`: Thanos's
//! counter aggregate keeps one reset-corrected value per window, which gives the increase
//! but not the sample count and edge samples `rate`'s extrapolation reads.
//! Stale markers are not samples of a range and are skipped.

use strata_vocab::kahan_inc;

use crate::is_stale;

/// One series' aggregate over one window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Aggregate {
    /// The window's end (inclusive), a multiple of the resolution; it starts (exclusive)
    /// one resolution earlier.
    pub end: i64,
    /// Samples in the window.
    pub count: u32,
    /// Their sum (compensated).
    pub sum: f64,
    /// Their minimum (NaN when all are NaN).
    pub min: f64,
    /// Their maximum (NaN when all are NaN).
    pub max: f64,
    /// The first sample's time.
    pub first_t: i64,
    /// The first sample's value.
    pub first_v: f64,
    /// The last sample's time.
    pub last_t: i64,
    /// The last sample's value.
    pub last_v: f64,
    /// Sum of the values before each counter reset (a value below its predecessor)
    /// inside the window.
    pub counter_correction: f64,
}

/// The end of the window of resolution `res` holding time `t`: the least multiple of
/// `res` not below `t`.
pub fn window_end(t: i64, res: i64) -> i64 {
    let r = t.rem_euclid(res);
    if r == 0 {
        t
    } else {
        t.saturating_sub(r).saturating_add(res)
    }
}

fn compensated(s: f64, c: f64) -> f64 {
    if s.is_infinite() { s } else { s + c }
}

/// The aggregates of `samples` (sorted by time, unique) at resolution `res`, in time
/// order; stale markers skipped.
pub fn aggregate(samples: &[(i64, f64)], res: i64) -> Vec<Aggregate> {
    let mut out: Vec<Aggregate> = Vec::new();
    let mut cur: Option<(Aggregate, f64, f64)> = None; // (aggregate, kahan sum, kahan c)
    for &(t, v) in samples {
        if is_stale(v) {
            continue;
        }
        let end = window_end(t, res);
        match &mut cur {
            Some((a, s, c)) if a.end == end => {
                a.count += 1;
                (*s, *c) = kahan_inc(v, *s, *c);
                if v < a.min || a.min.is_nan() {
                    a.min = v;
                }
                if v > a.max || a.max.is_nan() {
                    a.max = v;
                }
                if v < a.last_v {
                    a.counter_correction += a.last_v;
                }
                a.last_t = t;
                a.last_v = v;
            }
            _ => {
                if let Some((mut a, s, c)) = cur.take() {
                    a.sum = compensated(s, c);
                    out.push(a);
                }
                cur = Some((
                    Aggregate {
                        end,
                        count: 1,
                        sum: v,
                        min: v,
                        max: v,
                        first_t: t,
                        first_v: v,
                        last_t: t,
                        last_v: v,
                        counter_correction: 0.0,
                    },
                    v,
                    0.0,
                ));
            }
        }
    }
    if let Some((mut a, s, c)) = cur {
        a.sum = compensated(s, c);
        out.push(a);
    }
    out
}

/// A running fold of consecutive aggregates (each later than the previous one): the
/// aggregate of all the samples they were made of.
#[derive(Clone, Copy, Debug)]
pub struct Fold {
    /// The aggregate so far (`end` is the last folded window's).
    pub acc: Aggregate,
    sum_c: f64,
}

impl Fold {
    /// A fold starting with `a`.
    pub fn new(a: &Aggregate) -> Fold {
        Fold {
            acc: *a,
            sum_c: 0.0,
        }
    }

    /// Adds the next aggregate (all its samples later than the fold's).
    pub fn push(&mut self, b: &Aggregate) {
        let a = &mut self.acc;
        a.end = b.end;
        a.count = a.count.saturating_add(b.count);
        (a.sum, self.sum_c) = kahan_inc(b.sum, a.sum, self.sum_c);
        if b.min < a.min || a.min.is_nan() {
            a.min = b.min;
        }
        if b.max > a.max || a.max.is_nan() {
            a.max = b.max;
        }
        if b.first_v < a.last_v {
            a.counter_correction += a.last_v;
        }
        a.counter_correction += b.counter_correction;
        a.last_t = b.last_t;
        a.last_v = b.last_v;
    }

    /// The folded aggregate.
    pub fn get(&self) -> Aggregate {
        let mut a = self.acc;
        a.sum = compensated(a.sum, self.sum_c);
        a
    }
}

/// Merges two aggregate runs of one series (each sorted by window end) into one, windows
/// present in both (a window cut by a block boundary) folded in time order.
pub fn merge_runs(a: Vec<Aggregate>, b: Vec<Aggregate>) -> Vec<Aggregate> {
    if a.is_empty() {
        return b;
    }
    if b.is_empty() {
        return a;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let pick = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.end == y.end => {
                let (first, second) = if x.first_t <= y.first_t {
                    (x, y)
                } else {
                    (y, x)
                };
                let mut f = Fold::new(first);
                f.push(second);
                i += 1;
                j += 1;
                f.get()
            }
            (Some(x), Some(y)) if x.end < y.end => {
                i += 1;
                *x
            }
            (Some(x), None) => {
                i += 1;
                *x
            }
            (_, Some(y)) => {
                j += 1;
                *y
            }
            (None, None) => break,
        };
        out.push(pick);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_left_open() {
        assert_eq!(window_end(300_000, 300_000), 300_000);
        assert_eq!(window_end(300_001, 300_000), 600_000);
        assert_eq!(window_end(1, 300_000), 300_000);
        assert_eq!(window_end(-1, 300_000), 0);
        assert_eq!(window_end(0, 300_000), 0);
    }

    #[test]
    fn aggregates_and_folds_agree_with_the_samples() {
        let s: Vec<(i64, f64)> = vec![
            (60_000, 5.0),
            (120_000, 7.0),
            (180_000, crate::STALE_NAN),
            (300_000, 2.0),
            (360_000, 4.0),
            (420_000, 1.0),
            (900_000, 9.0),
        ];
        let w = aggregate(&s, 300_000);
        assert_eq!(w.len(), 3);
        assert_eq!(
            (
                w[0].end,
                w[0].count,
                w[0].min,
                w[0].max,
                w[0].counter_correction
            ),
            (300_000, 3, 2.0, 7.0, 7.0)
        );
        assert_eq!(
            (w[1].end, w[1].count, w[1].counter_correction),
            (600_000, 2, 4.0)
        );
        assert_eq!(w[2].end, 900_000);
        let mut f = Fold::new(&w[0]);
        f.push(&w[1]);
        f.push(&w[2]);
        let all = f.get();
        assert_eq!(all.count, 6);
        assert_eq!(all.sum, 28.0);
        assert_eq!(
            (all.first_t, all.last_t, all.last_v),
            (60_000, 900_000, 9.0)
        );
        // Resets: 7→2, 4→1.
        assert_eq!(all.counter_correction, 11.0);
        // A window cut in two (block boundary) merges back.
        let (a, b) = s.split_at(2);
        let merged = merge_runs(aggregate(a, 300_000), aggregate(b, 300_000));
        assert_eq!(merged, w);
    }
}
