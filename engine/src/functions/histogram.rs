//! Classic-histogram quantiles over `le` buckets (Prometheus `quantile.go`).

/// One cumulative bucket.
#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    /// `le`.
    pub upper: f64,
    /// Cumulative count.
    pub count: f64,
}

const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    let min_normal = f64::from_bits(0x0010_0000_0000_0000);
    if a.is_nan() && b.is_nan() || a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < min_normal {
        return diff < eps * min_normal;
    }
    diff / abs_sum.min(f64::MAX) < eps
}

/// Prometheus `BucketQuantile`: (value, forced monotonicity).
pub fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    buckets.sort_by(|a, b| {
        a.upper
            .partial_cmp(&b.upper)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    match buckets.last() {
        Some(b) if b.upper == f64::INFINITY => {}
        _ => return (f64::NAN, false),
    }
    // Coalesce equal bounds.
    let mut out: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match out.last_mut() {
            Some(l) if l.upper == b.upper => l.count += b.count,
            _ => out.push(*b),
        }
    }
    *buckets = out;
    let mut forced = false;
    let mut prev = buckets[0].count;
    for b in buckets.iter_mut().skip(1) {
        let cur = b.count;
        if cur == prev {
            continue;
        }
        if almost_equal(prev, cur, SMALL_DELTA_TOLERANCE) {
            b.count = prev;
            continue;
        }
        if cur < prev {
            b.count = prev;
            forced = true;
            continue;
        }
        prev = cur;
    }
    let n = buckets.len();
    if n < 2 {
        return (f64::NAN, forced);
    }
    let observations = buckets[n - 1].count;
    if observations == 0.0 {
        return (f64::NAN, forced);
    }
    let mut rank = q * observations;
    let b = buckets[..n - 1].partition_point(|x| x.count < rank);
    if b == n - 1 {
        return (buckets[n - 2].upper, forced);
    }
    if b == 0 && buckets[0].upper <= 0.0 {
        return (buckets[0].upper, forced);
    }
    let end = buckets[b].upper;
    let mut count = buckets[b].count;
    let mut start = 0.0;
    if b > 0 {
        start = buckets[b - 1].upper;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    (start + (end - start) * (rank / count), forced)
}

/// Go's `strconv.ParseFloat` for bucket bounds (accepts `+Inf`, `inf`, `1e3`, `.5`, `0x1p-2`).
pub fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim_start_matches(['+', '-']);
    let lower = t.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(if s.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if lower == "nan" {
        return Some(f64::NAN);
    }
    if t.is_empty() || t.contains('_') {
        return None;
    }
    s.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(upper: f64, count: f64) -> Bucket {
        Bucket { upper, count }
    }

    #[test]
    fn interpolates_inside_a_bucket() {
        let mut v = vec![b(1.0, 10.0), b(2.0, 20.0), b(f64::INFINITY, 20.0)];
        assert_eq!(bucket_quantile(0.75, &mut v).0, 1.5);
    }

    #[test]
    fn needs_an_inf_bucket_and_fixes_monotonicity() {
        assert!(bucket_quantile(0.5, &mut vec![b(1.0, 1.0)]).0.is_nan());
        let mut v = vec![b(1.0, 10.0), b(2.0, 5.0), b(f64::INFINITY, 10.0)];
        assert!(bucket_quantile(0.5, &mut v).1);
    }

    #[test]
    fn parses_go_floats() {
        assert_eq!(parse_go_float("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_go_float(".5"), Some(0.5));
        assert_eq!(parse_go_float("1e3"), Some(1000.0));
        assert_eq!(parse_go_float("x"), None);
    }
}

/// Sorts, coalesces and makes the buckets monotonic; false when there is no `+Inf` bucket.
fn prepare(buckets: &mut Vec<Bucket>) -> bool {
    buckets.sort_by(|a, b| {
        a.upper
            .partial_cmp(&b.upper)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    if buckets.last().is_none_or(|b| b.upper != f64::INFINITY) {
        return false;
    }
    let mut out: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match out.last_mut() {
            Some(l) if l.upper == b.upper => l.count += b.count,
            _ => out.push(*b),
        }
    }
    let mut max = out[0].count;
    for b in out.iter_mut().skip(1) {
        if b.count > max {
            max = b.count;
        } else if b.count < max {
            b.count = max;
        }
    }
    *buckets = out;
    true
}

/// Fraction of observations in `(lower, upper]` of cumulative classic buckets. The lowest
/// bucket starts at 0 when its bound is positive; buckets of infinite width are not
/// interpolated.
pub fn bucket_fraction(lower: f64, upper: f64, buckets: &mut Vec<Bucket>) -> f64 {
    if !prepare(buckets) {
        return f64::NAN;
    }
    let total = buckets[buckets.len() - 1].count;
    if total == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    for (i, b) in buckets.iter().enumerate() {
        let lo = if i > 0 {
            buckets[i - 1].upper
        } else if b.upper > 0.0 {
            0.0
        } else {
            f64::NEG_INFINITY
        };
        let hi = b.upper;
        let count = b.count - rank;
        let interpolate = |v: f64| -> f64 {
            if lo == f64::NEG_INFINITY {
                rank + count
            } else if hi == f64::INFINITY {
                rank
            } else {
                rank + count * (v - lo) / (hi - lo)
            }
        };
        if !lower_set && lo >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lo >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lo < lower && hi > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && lo < upper && hi > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = b.count;
    }
    if !lower_set || lower_rank > total {
        lower_rank = total;
    }
    if !upper_set || upper_rank > total {
        upper_rank = total;
    }
    (upper_rank - lower_rank) / total
}

#[cfg(test)]
mod fraction_tests {
    use super::*;

    fn hist(v: &[(f64, f64)]) -> Vec<Bucket> {
        v.iter()
            .map(|&(upper, count)| Bucket { upper, count })
            .collect()
    }

    #[test]
    fn fractions_of_classic_buckets() {
        let b = [(1.0, 1.0), (2.0, 3.0), (3.0, 6.0), (f64::INFINITY, 100.0)];
        assert!((bucket_fraction(0.0, 1.5, &mut hist(&b)) - 0.02).abs() < 1e-12);
        assert!((bucket_fraction(2.0, 5.0, &mut hist(&b)) - 0.03).abs() < 1e-12);
        assert!((bucket_fraction(400.0, f64::INFINITY, &mut hist(&b)) - 0.94).abs() < 1e-12);
        let n = [
            (-3.0, 10.0),
            (-2.0, 12.0),
            (-1.0, 15.0),
            (f64::INFINITY, 100.0),
        ];
        assert!((bucket_fraction(-4.0, -2.0, &mut hist(&n)) - 0.02).abs() < 1e-12);
        assert!((bucket_fraction(f64::NEG_INFINITY, -1.5, &mut hist(&n)) - 0.135).abs() < 1e-12);
    }
}
