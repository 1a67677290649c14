//! Compensated (Kahan–Neumaier) summation of histograms, as Prometheus's `KahanAdd`: `sum`
//! and `avg` (aggregations and `*_over_time`) keep a compensation term per component
//! (count, sum, zero bucket, each bucket), so adding 1e100 and −1e100 to 3.1 gives 3.1.
//! `avg` switches to an incremental mean when a sum overflows, as Prometheus does.

use super::FloatHistogram;
use super::ops::{Combined, Incompatible, bounds_match};

/// `kahansum.Inc`: adds `inc` to `sum` with compensation `c` (Kahan–Neumaier), returning
/// the new sum and compensation; the one PromQL's float sums use too.
pub fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// A running histogram sum and its compensation.
#[derive(Clone, Debug)]
pub struct KahanSum {
    sum: FloatHistogram,
    /// Compensation, same schema and zero threshold as `sum`.
    c: FloatHistogram,
}

impl KahanSum {
    /// A sum starting at `h`.
    pub fn new(h: &FloatHistogram) -> Self {
        KahanSum {
            sum: h.clone(),
            c: empty_like(h),
        }
    }

    /// Adds the compensation into the sum (before a layout change or at the end).
    fn fold(&mut self) {
        let c = std::mem::replace(&mut self.c, empty_like(&self.sum));
        let hint = self.sum.hint;
        let _ = self.sum.add(&c);
        self.sum.hint = hint;
        self.c = empty_like(&self.sum);
    }

    /// Adds `o`.
    pub fn add(&mut self, o: &FloatHistogram) -> Result<Combined, Incompatible> {
        if self.sum.uses_custom_buckets() != o.uses_custom_buckets() {
            return Err(Incompatible);
        }
        let same_layout = if o.uses_custom_buckets() {
            bounds_match(&self.sum.custom_values, &o.custom_values)
        } else {
            self.sum.zero_threshold == o.zero_threshold
        };
        if !same_layout {
            self.fold();
            let r = self.sum.add(o);
            self.c = empty_like(&self.sum);
            return r;
        }
        let collision = self.sum.adjust_hint(o.hint);
        let schema = self.sum.schema.min(o.schema);
        self.sum.reduce_resolution(schema);
        self.c.reduce_resolution(schema);
        let mut o = o.clone();
        o.reduce_resolution(schema);
        (self.sum.count, self.c.count) = kahan_inc(o.count, self.sum.count, self.c.count);
        (self.sum.sum, self.c.sum) = kahan_inc(o.sum, self.sum.sum, self.c.sum);
        (self.sum.zero_count, self.c.zero_count) =
            kahan_inc(o.zero_count, self.sum.zero_count, self.c.zero_count);
        add_buckets(&mut self.sum.positive, &mut self.c.positive, &o.positive);
        add_buckets(&mut self.sum.negative, &mut self.c.negative, &o.negative);
        Ok(Combined {
            counter_reset_collision: collision,
            nhcb_bounds_reconciled: false,
        })
    }

    /// Scales sum and compensation (the incremental mean's `q` and `1/n`).
    pub fn scale(&mut self, f: f64) {
        let hint = self.sum.hint;
        self.sum.mul(f);
        self.c.mul(f);
        self.sum.hint = hint;
    }

    /// Whether the sum has overflowed to infinity somewhere.
    pub fn overflowed(&self) -> bool {
        self.sum.has_overflow()
    }

    /// The compensated sum.
    pub fn value(mut self) -> FloatHistogram {
        self.fold();
        self.sum
    }
}

/// An empty histogram of `h`'s layout.
fn empty_like(h: &FloatHistogram) -> FloatHistogram {
    FloatHistogram {
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        custom_values: h.custom_values.clone(),
        ..FloatHistogram::default()
    }
}

/// Adds sorted buckets `o` into `sum` with compensation `c` (both sorted, `c` sparse).
fn add_buckets(sum: &mut Vec<(i32, f64)>, c: &mut Vec<(i32, f64)>, o: &[(i32, f64)]) {
    for &(i, v) in o {
        let k = match sum.binary_search_by_key(&i, |b| b.0) {
            Ok(k) => k,
            Err(k) => {
                sum.insert(k, (i, 0.0));
                k
            }
        };
        let ck = match c.binary_search_by_key(&i, |b| b.0) {
            Ok(ck) => ck,
            Err(ck) => {
                c.insert(ck, (i, 0.0));
                ck
            }
        };
        (sum[k].1, c[ck].1) = kahan_inc(v, sum[k].1, c[ck].1);
    }
}

/// `avg` of histograms: a compensated sum that becomes an incremental mean once the sum
/// overflows (Prometheus's `histogramIncrementalMean`).
#[derive(Clone, Debug)]
pub struct KahanMean {
    acc: KahanSum,
    n: f64,
    incremental: bool,
}

impl KahanMean {
    /// A mean of `h` alone.
    pub fn new(h: &FloatHistogram) -> Self {
        KahanMean {
            acc: KahanSum::new(h),
            n: 1.0,
            incremental: false,
        }
    }

    /// Adds `h`.
    pub fn add(&mut self, h: &FloatHistogram) -> Result<Combined, Incompatible> {
        self.n += 1.0;
        if !self.incremental {
            let mut next = self.acc.clone();
            let r = next.add(h)?;
            if !next.overflowed() {
                self.acc = next;
                return Ok(r);
            }
            self.incremental = true;
            self.acc.scale(1.0 / (self.n - 1.0));
        }
        let q = (self.n - 1.0) / self.n;
        self.acc.scale(q);
        let mut part = h.clone();
        part.div(self.n);
        self.acc.add(&part)
    }

    /// The mean.
    pub fn value(self) -> FloatHistogram {
        let (n, incremental) = (self.n, self.incremental);
        let mut v = self.acc.value();
        if !incremental {
            let hint = v.hint;
            v.div(n);
            v.hint = hint;
        }
        v
    }
}
