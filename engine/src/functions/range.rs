//! Range-vector functions (`rate`, `*_over_time`, …) over one window of float samples,
//! ported from Prometheus 3.x `promql/functions.go`. Windows are left-open `(lo, hi]`.

use super::{kahan_inc, quantile};

/// A function applied to each range window.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, serde::Serialize, serde::Deserialize,
)]
pub enum RangeFn {
    /// No function: an instant query of `x[5m]` returns the raw samples.
    Raw,
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    Changes,
    Resets,
    Deriv,
    /// `predict_linear(m, seconds)`.
    PredictLinear,
    SumOverTime,
    AvgOverTime,
    CountOverTime,
    MinOverTime,
    MaxOverTime,
    StddevOverTime,
    StdvarOverTime,
    /// `quantile_over_time(q, m)`.
    QuantileOverTime,
    MadOverTime,
    LastOverTime,
    FirstOverTime,
    PresentOverTime,
    TsOfFirstOverTime,
    TsOfLastOverTime,
    TsOfMinOverTime,
    TsOfMaxOverTime,
    /// `double_exponential_smoothing(m, sf, tf)`.
    DoubleExponentialSmoothing,
}

impl RangeFn {
    /// Functions whose result keeps the metric name.
    pub fn keeps_name(self) -> bool {
        matches!(
            self,
            RangeFn::Raw | RangeFn::LastOverTime | RangeFn::FirstOverTime
        )
    }
}

/// Where a window sits.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Evaluation (step) time, ms.
    pub t: i64,
    /// Exclusive lower bound, ms.
    pub lo: i64,
    /// Inclusive upper bound, ms.
    pub hi: i64,
    /// First numeric parameter (q, seconds, sf).
    pub p0: f64,
    /// Second numeric parameter (tf).
    pub p1: f64,
    /// The caller knows the window has no counter reset (saves the reset scan of `rate`).
    pub no_resets: bool,
}

/// Evaluates `f` over the samples of one window (`ts` and `vals` non-empty, sorted).
pub fn eval(f: RangeFn, ts: &[i64], vals: &[f64], w: &Window) -> Option<f64> {
    use RangeFn::*;
    let n = vals.len();
    match f {
        Raw => None,
        Rate => extrapolated_rate(ts, vals, w, true, true),
        Increase => extrapolated_rate(ts, vals, w, true, false),
        Delta => extrapolated_rate(ts, vals, w, false, false),
        Irate | Idelta => {
            if n < 2 {
                return None;
            }
            let (last, prev) = (vals[n - 1], vals[n - 2]);
            let dt = ts[n - 1] - ts[n - 2];
            if dt == 0 {
                return None;
            }
            if f == Irate {
                let r = if last < prev { last } else { last - prev };
                Some(r / (dt as f64 / 1e3))
            } else {
                Some(last - prev)
            }
        }
        Changes => {
            let mut c = 0;
            for i in 1..n {
                let (a, b) = (vals[i - 1], vals[i]);
                if !(a == b || (a.is_nan() && b.is_nan())) {
                    c += 1;
                }
            }
            Some(c as f64)
        }
        Resets => Some(vals.windows(2).filter(|p| p[1] < p[0]).count() as f64),
        Deriv => {
            if n < 2 {
                return None;
            }
            Some(linear_regression(ts, vals, ts[0]).0)
        }
        PredictLinear => {
            if n < 2 {
                return None;
            }
            let (slope, icpt) = linear_regression(ts, vals, w.t);
            Some(slope * w.p0 + icpt)
        }
        SumOverTime => {
            let (mut s, mut c) = (0.0, 0.0);
            for &v in vals {
                (s, c) = kahan_inc(v, s, c);
            }
            Some(if s.is_infinite() { s } else { s + c })
        }
        AvgOverTime => Some(avg(vals)),
        CountOverTime => Some(n as f64),
        MinOverTime => {
            let mut m = vals[0];
            for &v in vals {
                if v < m || m.is_nan() {
                    m = v;
                }
            }
            Some(m)
        }
        MaxOverTime => {
            let mut m = vals[0];
            for &v in vals {
                if v > m || m.is_nan() {
                    m = v;
                }
            }
            Some(m)
        }
        StddevOverTime | StdvarOverTime => {
            let (mut count, mut mean, mut cmean, mut aux, mut caux) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for &v in vals {
                count += 1.0;
                let delta = v - (mean + cmean);
                (mean, cmean) = kahan_inc(delta / count, mean, cmean);
                (aux, caux) = kahan_inc(delta * (v - (mean + cmean)), aux, caux);
            }
            let var = (aux + caux) / count;
            Some(if f == StddevOverTime { var.sqrt() } else { var })
        }
        QuantileOverTime => Some(quantile(w.p0, &mut vals.to_vec())),
        MadOverTime => {
            if vals.iter().any(|v| v.is_nan()) {
                return Some(f64::NAN);
            }
            let mut v = vals.to_vec();
            let median = quantile(0.5, &mut v);
            let mut d: Vec<f64> = vals.iter().map(|x| (x - median).abs()).collect();
            Some(quantile(0.5, &mut d))
        }
        LastOverTime => Some(vals[n - 1]),
        FirstOverTime => Some(vals[0]),
        PresentOverTime => Some(1.0),
        TsOfFirstOverTime => Some(ts[0] as f64 / 1e3),
        TsOfLastOverTime => Some(ts[n - 1] as f64 / 1e3),
        TsOfMinOverTime | TsOfMaxOverTime => {
            let mut best = vals[0];
            let mut bt = ts[0];
            for i in 0..n {
                let v = vals[i];
                let better = if f == TsOfMinOverTime {
                    v <= best || best.is_nan()
                } else {
                    v >= best || best.is_nan()
                };
                if better {
                    best = v;
                    bt = ts[i];
                }
            }
            Some(bt as f64 / 1e3)
        }
        DoubleExponentialSmoothing => {
            if n < 2 {
                return None;
            }
            let (sf, tf) = (w.p0, w.p1);
            let (mut s0, mut s1) = (0.0, vals[0]);
            let mut b = vals[1] - vals[0];
            for (i, &v) in vals.iter().enumerate().skip(1) {
                let x = sf * v;
                if i > 1 {
                    b = tf * (s1 - s0) + (1.0 - tf) * b;
                }
                let y = (1.0 - sf) * (s1 + b);
                s0 = s1;
                s1 = x + y;
            }
            Some(s1)
        }
    }
}

fn avg(vals: &[f64]) -> f64 {
    let (mut sum, mut count) = (vals[0], 1.0);
    let (mut mean, mut c) = (0.0, 0.0);
    let mut incremental = false;
    for (i, &v) in vals.iter().enumerate().skip(1) {
        count = (i + 1) as f64;
        if !incremental {
            let (ns, nc) = kahan_inc(v, sum, c);
            if !ns.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(v / count, q * mean, q * c);
    }
    if incremental {
        mean + c
    } else {
        sum / count + c / count
    }
}

/// Prometheus 3.x `extrapolatedRate` for float samples.
fn extrapolated_rate(
    ts: &[i64],
    vals: &[f64],
    w: &Window,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    let n = vals.len();
    if n < 2 {
        return None;
    }
    let mut r = vals[n - 1] - vals[0];
    if is_counter && !w.no_resets {
        for i in 1..n {
            if vals[i] < vals[i - 1] {
                r += vals[i - 1];
            }
        }
    }
    Some(extrapolate(
        (ts[0], vals[0]),
        (ts[n - 1], n),
        r,
        w,
        is_counter,
        is_rate,
    ))
}

/// The extrapolation of `extrapolatedRate`: the increase `r` (resets corrected) seen
/// between the first sample `(t, v)` and the last one (time, sample count) of window `w`,
/// extrapolated to the window's edges. Shared by the raw and the downsampled reads.
pub fn extrapolate(
    (t0, v0): (i64, f64),
    (t1, n): (i64, usize),
    r: f64,
    w: &Window,
    is_counter: bool,
    is_rate: bool,
) -> f64 {
    let range_start = w.lo;
    let range_end = w.hi;
    let mut ds = (t0 - range_start) as f64 / 1e3;
    let mut de = (range_end - t1) as f64 / 1e3;
    let si = (t1 - t0) as f64 / 1e3;
    let avg = si / (n - 1) as f64;
    let thr = avg * 1.1;
    if ds >= thr {
        ds = avg / 2.0;
    }
    if is_counter && r > 0.0 && v0 >= 0.0 {
        let dz = si * (v0 / r);
        if dz < ds {
            ds = dz;
        }
    }
    if de >= thr {
        de = avg / 2.0;
    }
    let mut f = (si + ds + de) / si;
    if is_rate {
        f /= (range_end - range_start) as f64 / 1e3;
    }
    r * f
}

/// Prometheus 3.x `extendedRate`: `rate`/`increase`/`delta` over an `anchored` or
/// `smoothed` window. `ts`/`vals` hold the window plus its boundary samples; `smoothed`
/// interpolates the values at the window edges instead of taking the boundary samples.
pub fn extended_rate(
    ts: &[i64],
    vals: &[f64],
    w: &Window,
    smoothed: bool,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    let (range_start, range_end) = (w.lo, w.hi);
    let mut last = ts.len() - 1;
    let mut first = ts[..last]
        .partition_point(|&t| t <= range_start)
        .saturating_sub(1);
    if smoothed {
        last = ts[..last].partition_point(|&t| t < range_end);
    }
    if ts[last] <= range_start || (smoothed && ts[first] > range_end) {
        return None;
    }
    let interpolate = |i: usize, j: usize, t: i64| -> f64 {
        let (y1, y2) = (vals[i], vals[j]);
        let y1 = if is_counter && y2 < y1 { 0.0 } else { y1 };
        y1 + (y2 - y1) * (t - ts[i]) as f64 / (ts[j] - ts[i]) as f64
    };
    let left = if smoothed && ts[first] < range_start {
        interpolate(first, first + 1, range_start)
    } else {
        vals[first]
    };
    let right = if smoothed && last > 0 && ts[last] > range_end {
        interpolate(last - 1, last, range_end)
    } else {
        vals[last]
    };
    let mut r = right - left;
    if is_counter {
        if ts[first] <= range_start {
            first += 1;
        }
        if ts[last] >= range_end {
            last = last.wrapping_sub(1);
        }
        let mut prev = left;
        if first <= last && last != usize::MAX {
            for &v in &vals[first..=last] {
                if v < prev {
                    r += prev;
                }
                prev = v;
            }
        }
        if right < prev {
            r += prev;
        }
    }
    if is_rate {
        r /= (range_end - range_start) as f64 / 1e3;
    }
    Some(r)
}

/// Least-squares fit with Kahan sums; x in seconds relative to `intercept_t`.
pub fn linear_regression(ts: &[i64], vals: &[f64], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sxy, mut cxy, mut sx2, mut cx2) = (0.0, 0.0, 0.0, 0.0);
    let init = vals[0];
    let mut const_y = true;
    for (i, (&t, &v)) in ts.iter().zip(vals).enumerate() {
        if const_y && i > 0 && v != init {
            const_y = false;
        }
        n += 1.0;
        let x = (t - intercept_t) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(v, sy, cy);
        (sxy, cxy) = kahan_inc(x * v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init);
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn win(t: i64, range: i64) -> Window {
        Window {
            t,
            lo: t - range,
            hi: t,
            p0: 0.0,
            p1: 0.0,
            no_resets: false,
        }
    }

    #[test]
    fn rate_of_a_steady_counter_is_its_slope() {
        let ts: Vec<i64> = (0..=10).map(|i| i * 30_000).collect();
        let vals: Vec<f64> = (0..=10).map(|i| i as f64 * 30.0).collect();
        let r = eval(RangeFn::Rate, &ts[1..], &vals[1..], &win(300_000, 300_000));
        assert_eq!(r, Some(1.0));
    }

    #[test]
    fn increase_handles_a_counter_reset() {
        let ts = [10_000, 20_000, 30_000];
        let vals = [5.0, 10.0, 2.0];
        let r = eval(RangeFn::Increase, &ts, &vals, &win(30_000, 30_000)).expect("value");
        // 5 → 10 → (reset) 2 is an increase of 5 + 2 = 7 over 20s; the first sample is 10s
        // after the window start (< 1.1 × the 10s average), so it extrapolates to 30s.
        assert!((r - 7.0 * 30.0 / 20.0).abs() < 1e-9, "{r}");
    }

    #[test]
    fn single_sample_windows_have_no_rate() {
        assert_eq!(eval(RangeFn::Rate, &[1], &[1.0], &win(1, 10)), None);
        assert_eq!(eval(RangeFn::Deriv, &[1], &[1.0], &win(1, 10)), None);
    }

    #[test]
    fn over_time_aggregates() {
        let ts = [1, 2, 3, 4];
        let v = [1.0, 5.0, 3.0, f64::NAN];
        let w = win(4, 10);
        assert_eq!(eval(RangeFn::MaxOverTime, &ts[..3], &v[..3], &w), Some(5.0));
        assert_eq!(eval(RangeFn::MinOverTime, &ts[..3], &v[..3], &w), Some(1.0));
        assert_eq!(eval(RangeFn::AvgOverTime, &ts[..3], &v[..3], &w), Some(3.0));
        assert_eq!(eval(RangeFn::CountOverTime, &ts, &v, &w), Some(4.0));
        assert_eq!(eval(RangeFn::Changes, &ts, &v, &w), Some(3.0));
        assert_eq!(eval(RangeFn::Resets, &ts, &v, &w), Some(1.0));
    }

    #[test]
    fn deriv_of_a_line_is_its_slope() {
        let ts = [0, 1000, 2000];
        let v = [1.0, 3.0, 5.0];
        assert_eq!(eval(RangeFn::Deriv, &ts, &v, &win(2000, 5000)), Some(2.0));
    }
}
