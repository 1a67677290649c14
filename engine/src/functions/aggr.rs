//! Per-group accumulators of the aggregation operators (Prometheus `aggregation()`).

use strata_grammar::AggregateOp;

use super::{kahan_inc, quantile};

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
}
