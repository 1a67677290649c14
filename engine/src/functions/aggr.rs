//! Per-group accumulators of the aggregation operators (Prometheus `aggregation()`).

use strata_grammar::AggregateOp;

use super::{kahan_inc, quantile};

/// The fixed-size state of an [`Acc`] (see [`Acc::state`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AccState {
    /// Sum, extreme or sum of squared deviations.
    pub value: f64,
    /// Kahan compensation.
    pub kahan: f64,
    /// Running mean.
    pub mean: f64,
    /// Values seen.
    pub count: f64,
    /// The mean is kept incrementally (the sum overflowed).
    pub incremental: bool,
}

/// Running state of one group at one step.
#[derive(Clone, Debug)]
pub struct Acc {
    value: f64,
    kahan: f64,
    mean: f64,
    count: f64,
    incremental: bool,
    values: Vec<f64>,
}

impl Acc {
    /// A group seeded with its first sample.
    pub fn new(op: AggregateOp, v: f64) -> Acc {
        let value = match op {
            AggregateOp::Stddev | AggregateOp::Stdvar => {
                if v.is_nan() || v.is_infinite() {
                    f64::NAN
                } else {
                    0.0
                }
            }
            AggregateOp::Group => 1.0,
            _ => v,
        };
        Acc {
            value,
            kahan: 0.0,
            mean: v,
            count: 1.0,
            incremental: false,
            values: if op == AggregateOp::Quantile {
                vec![v]
            } else {
                Vec::new()
            },
        }
    }

    /// Adds one more sample.
    pub fn add(&mut self, op: AggregateOp, v: f64) {
        match op {
            AggregateOp::Sum => (self.value, self.kahan) = kahan_inc(v, self.value, self.kahan),
            AggregateOp::Avg => {
                self.count += 1.0;
                if !self.incremental {
                    let (nv, nc) = kahan_inc(v, self.value, self.kahan);
                    if !nv.is_infinite() {
                        self.value = nv;
                        self.kahan = nc;
                        return;
                    }
                    self.incremental = true;
                    self.mean = self.value / (self.count - 1.0);
                    self.kahan /= self.count - 1.0;
                }
                let q = (self.count - 1.0) / self.count;
                (self.mean, self.kahan) = kahan_inc(v / self.count, q * self.mean, q * self.kahan);
            }
            AggregateOp::Count => self.count += 1.0,
            AggregateOp::Min if (self.value > v || self.value.is_nan()) => {
                self.value = v;
            }
            AggregateOp::Max if (self.value < v || self.value.is_nan()) => {
                self.value = v;
            }
            AggregateOp::Stddev | AggregateOp::Stdvar => {
                self.count += 1.0;
                let delta = v - self.mean;
                self.mean += delta / self.count;
                self.value += delta * (v - self.mean);
            }
            AggregateOp::Quantile => self.values.push(v),
            _ => {}
        }
    }

    /// Whether a group of `op` can be accumulated in parts and the parts merged
    /// ([`Acc::merge`]): every operator that keeps a fixed-size state.
    pub fn merges(op: AggregateOp) -> bool {
        matches!(
            op,
            AggregateOp::Sum
                | AggregateOp::Avg
                | AggregateOp::Count
                | AggregateOp::Min
                | AggregateOp::Max
                | AggregateOp::Group
                | AggregateOp::Stddev
                | AggregateOp::Stdvar
        )
    }

    /// The state of a group that [`Acc::merges`]: value, Kahan compensation, mean, count
    /// and whether the mean is incremental.
    pub fn state(&self) -> AccState {
        AccState {
            value: self.value,
            kahan: self.kahan,
            mean: self.mean,
            count: self.count,
            incremental: self.incremental,
        }
    }

    /// A group from its [`AccState`].
    pub fn from_state(s: AccState) -> Acc {
        Acc {
            value: s.value,
            kahan: s.kahan,
            mean: s.mean,
            count: s.count,
            incremental: s.incremental,
            values: Vec::new(),
        }
    }

    /// Merges the state of the same group accumulated over other series (an operator
    /// that [`Acc::merges`]): the result is the one of one pass over both, up to rounding
    /// (sums stay Kahan-compensated; variances merge by Chan's formula).
    pub fn merge(&mut self, op: AggregateOp, o: &Acc) {
        match op {
            AggregateOp::Sum => {
                let (v, c) = kahan_inc(o.value, self.value, self.kahan);
                self.value = v;
                self.kahan = if v.is_infinite() { 0.0 } else { c + o.kahan };
            }
            AggregateOp::Avg => {
                let n = self.count + o.count;
                if !self.incremental && !o.incremental {
                    let (v, c) = kahan_inc(o.value, self.value, self.kahan);
                    if !v.is_infinite() {
                        (self.value, self.kahan, self.count) = (v, c + o.kahan, n);
                        return;
                    }
                }
                let mean = |a: &Acc| {
                    if a.incremental {
                        a.mean + a.kahan
                    } else {
                        a.value / a.count + a.kahan / a.count
                    }
                };
                let (ma, mb) = (mean(self), mean(o));
                self.mean = if ma.is_infinite() || mb.is_infinite() {
                    ma + mb
                } else {
                    ma * (self.count / n) + mb * (o.count / n)
                };
                (self.kahan, self.count, self.incremental) = (0.0, n, true);
            }
            AggregateOp::Count => self.count += o.count,
            AggregateOp::Min if (self.value > o.value || self.value.is_nan()) => {
                self.value = o.value;
            }
            AggregateOp::Max if (self.value < o.value || self.value.is_nan()) => {
                self.value = o.value;
            }
            AggregateOp::Stddev | AggregateOp::Stdvar => {
                let n = self.count + o.count;
                let delta = o.mean - self.mean;
                self.value += o.value + delta * delta * self.count * o.count / n;
                self.mean += delta * o.count / n;
                self.count = n;
            }
            _ => {}
        }
    }

    /// The group's result; `q` is the quantile parameter.
    pub fn finish(&mut self, op: AggregateOp, q: f64) -> f64 {
        match op {
            AggregateOp::Sum => self.value + self.kahan,
            AggregateOp::Avg => {
                if self.incremental {
                    self.mean + self.kahan
                } else {
                    self.value / self.count + self.kahan / self.count
                }
            }
            AggregateOp::Count => self.count,
            AggregateOp::Stdvar => self.value / self.count,
            AggregateOp::Stddev => (self.value / self.count).sqrt(),
            AggregateOp::Quantile => quantile(q, &mut self.values),
            _ => self.value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(op: AggregateOp, v: &[f64]) -> f64 {
        let mut a = Acc::new(op, v[0]);
        for &x in &v[1..] {
            a.add(op, x);
        }
        a.finish(op, 0.5)
    }

    #[test]
    fn accumulators() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(run(AggregateOp::Sum, &v), 10.0);
        assert_eq!(run(AggregateOp::Avg, &v), 2.5);
        assert_eq!(run(AggregateOp::Count, &v), 4.0);
        assert_eq!(run(AggregateOp::Min, &v), 1.0);
        assert_eq!(run(AggregateOp::Max, &v), 4.0);
        assert_eq!(run(AggregateOp::Stdvar, &v), 1.25);
        assert_eq!(run(AggregateOp::Quantile, &v), 2.5);
        assert_eq!(run(AggregateOp::Avg, &[f64::MAX, f64::MAX]), f64::MAX);
    }

    /// Any split of the values into two runs, merged, gives what one pass gives.
    #[test]
    fn merged_parts_equal_one_pass() {
        let sets: [&[f64]; 5] = [
            &[1.0, 2.0, 3.0, 4.0, 10.5, -3.25],
            &[1e308, 1e308, -5.0, 7.0],
            &[f64::INFINITY, 1.0, 2.0, 3.0],
            &[f64::NAN, 1.0, 2.0],
            &[0.1, 0.2, 0.3, 1e-17, 5.0, 6.0, 7.0],
        ];
        let ops = [
            AggregateOp::Sum,
            AggregateOp::Avg,
            AggregateOp::Count,
            AggregateOp::Min,
            AggregateOp::Max,
            AggregateOp::Group,
            AggregateOp::Stddev,
            AggregateOp::Stdvar,
        ];
        for v in sets {
            for op in ops {
                let whole = run(op, v);
                for cut in 1..v.len() {
                    let part = |xs: &[f64]| {
                        let mut a = Acc::new(op, xs[0]);
                        for &x in &xs[1..] {
                            a.add(op, x);
                        }
                        Acc::from_state(a.state())
                    };
                    let mut a = part(&v[..cut]);
                    a.merge(op, &part(&v[cut..]));
                    let merged = a.finish(op, 0.5);
                    let same = (whole.is_nan() && merged.is_nan())
                        || whole == merged
                        || (whole - merged).abs() <= 1e-9 * whole.abs().max(merged.abs());
                    assert!(same, "{op:?} of {v:?} cut at {cut}: {whole} vs {merged}");
                }
            }
        }
    }
}
