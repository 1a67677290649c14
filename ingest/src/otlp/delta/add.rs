//! Adding a delta point to a stream's cumulative value, as the Collector's
//! `deltatocumulative` processor does (`internal/data/add.go`, `internal/data/expo`):
//! sums add; explicit-bucket histograms add bucket by bucket while their bounds stay the
//! same and start over from the point when they change; exponential histograms are brought
//! to the smaller of the two scales (and further down while the merged buckets would span
//! more than 160), their zero buckets widened to the larger threshold, then added. Counts
//! saturate rather than wrap. The sum of a histogram is kept only while every point has one.

use crate::otlp::proto::{
    Buckets, ExponentialHistogramDataPoint, HistogramDataPoint, NumberDataPoint, NumberValue,
};

/// Most buckets (per sign) a merged exponential histogram spans, as the Collector.
const MAX_BUCKETS: i64 = 160;

/// A stream's cumulative value.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Acc {
    Number(f64),
    Hist(Box<HistogramDataPoint>),
    Exp(Box<ExponentialHistogramDataPoint>),
}

impl Acc {
    /// Heap the value holds besides the stream's own entry.
    pub(super) fn heap_bytes(&self) -> usize {
        match self {
            Acc::Number(_) => 0,
            Acc::Hist(h) => {
                std::mem::size_of::<HistogramDataPoint>()
                    + 8 * (h.bucket_counts.len() + h.explicit_bounds.len())
            }
            Acc::Exp(e) => {
                let n = |b: &Option<Buckets>| b.as_ref().map_or(0, |b| b.bucket_counts.len());
                std::mem::size_of::<ExponentialHistogramDataPoint>()
                    + 2 * std::mem::size_of::<Buckets>()
                    + 8 * (n(&e.positive) + n(&e.negative))
            }
        }
    }
}

/// What `add` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Added {
    /// The point was added to the value.
    Added,
    /// The value starts over from the point (histogram bounds changed, or the value was of
    /// another kind).
    Reset,
}

/// A data point the accumulator takes.
pub(super) trait DeltaPoint {
    fn start(&self) -> u64;
    fn time(&self) -> u64;
    fn flags(&self) -> u32;
    fn attributes(&self) -> &[crate::otlp::proto::KeyValue];
    /// The value a stream starts with (the point itself).
    fn first(&self) -> Acc;
    /// Adds the point to `acc`.
    fn add_to(&self, acc: &mut Acc) -> Added;
    /// Makes the point the stream's cumulative value since `start`.
    fn set_from(&mut self, acc: &Acc, start: u64);
}

fn number_value(p: &NumberDataPoint) -> f64 {
    match p.value {
        Some(NumberValue::AsDouble(d)) => d,
        Some(NumberValue::AsInt(i)) => i as f64,
        None => 0.0,
    }
}

impl DeltaPoint for NumberDataPoint {
    fn start(&self) -> u64 {
        self.start_time_unix_nano
    }
    fn time(&self) -> u64 {
        self.time_unix_nano
    }
    fn flags(&self) -> u32 {
        self.flags
    }
    fn attributes(&self) -> &[crate::otlp::proto::KeyValue] {
        &self.attributes
    }
    fn first(&self) -> Acc {
        Acc::Number(number_value(self))
    }
    fn add_to(&self, acc: &mut Acc) -> Added {
        match acc {
            Acc::Number(v) => {
                *v += number_value(self);
                Added::Added
            }
            other => {
                *other = self.first();
                Added::Reset
            }
        }
    }
    fn set_from(&mut self, acc: &Acc, start: u64) {
        if let Acc::Number(v) = acc {
            self.value = Some(NumberValue::AsDouble(*v));
        }
        self.start_time_unix_nano = start;
    }
}

/// A histogram's value without what belongs to the point (attributes, exemplars).
fn bare_hist(p: &HistogramDataPoint) -> HistogramDataPoint {
    HistogramDataPoint {
        attributes: Vec::new(),
        exemplars: Vec::new(),
        bucket_counts: p.bucket_counts.clone(),
        explicit_bounds: p.explicit_bounds.clone(),
        ..*p
    }
}

impl DeltaPoint for HistogramDataPoint {
    fn start(&self) -> u64 {
        self.start_time_unix_nano
    }
    fn time(&self) -> u64 {
        self.time_unix_nano
    }
    fn flags(&self) -> u32 {
        self.flags
    }
    fn attributes(&self) -> &[crate::otlp::proto::KeyValue] {
        &self.attributes
    }
    fn first(&self) -> Acc {
        Acc::Hist(Box::new(bare_hist(self)))
    }
    fn add_to(&self, acc: &mut Acc) -> Added {
        let state = match acc {
            Acc::Hist(h) if h.explicit_bounds == self.explicit_bounds => h,
            // Other bounds: no way to merge, the stream starts over with these.
            other => {
                *other = self.first();
                return Added::Reset;
            }
        };
        // Bucket by bucket as far as both have counts (they should have bounds + 1).
        for (s, d) in state.bucket_counts.iter_mut().zip(&self.bucket_counts) {
            *s = s.saturating_add(*d);
        }
        state.count = state.count.saturating_add(self.count);
        state.sum = match (state.sum, self.sum) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        Added::Added
    }
    fn set_from(&mut self, acc: &Acc, start: u64) {
        if let Acc::Hist(h) = acc {
            self.count = h.count;
            self.sum = h.sum;
            self.bucket_counts.clone_from(&h.bucket_counts);
            self.explicit_bounds.clone_from(&h.explicit_bounds);
        }
        self.start_time_unix_nano = start;
    }
}

fn bare_exp(p: &ExponentialHistogramDataPoint) -> ExponentialHistogramDataPoint {
    let mut e = ExponentialHistogramDataPoint {
        attributes: Vec::new(),
        exemplars: Vec::new(),
        positive: p.positive.clone(),
        negative: p.negative.clone(),
        ..*p
    };
    for b in [&mut e.positive, &mut e.negative].into_iter().flatten() {
        trim(b);
    }
    e
}

impl DeltaPoint for ExponentialHistogramDataPoint {
    fn start(&self) -> u64 {
        self.start_time_unix_nano
    }
    fn time(&self) -> u64 {
        self.time_unix_nano
    }
    fn flags(&self) -> u32 {
        self.flags
    }
    fn attributes(&self) -> &[crate::otlp::proto::KeyValue] {
        &self.attributes
    }
    fn first(&self) -> Acc {
        Acc::Exp(Box::new(bare_exp(self)))
    }
    fn add_to(&self, acc: &mut Acc) -> Added {
        match acc {
            Acc::Exp(state) => {
                add_exp(state, bare_exp(self));
                Added::Added
            }
            other => {
                *other = self.first();
                Added::Reset
            }
        }
    }
    fn set_from(&mut self, acc: &Acc, start: u64) {
        if let Acc::Exp(e) = acc {
            self.scale = e.scale;
            self.count = e.count;
            self.sum = e.sum;
            self.zero_count = e.zero_count;
            self.zero_threshold = e.zero_threshold;
            self.positive.clone_from(&e.positive);
            self.negative.clone_from(&e.negative);
        }
        self.start_time_unix_nano = start;
    }
}

/// `state += d`, both exponential histograms of one stream.
fn add_exp(state: &mut ExponentialHistogramDataPoint, mut d: ExponentialHistogramDataPoint) {
    // To the smaller scale: buckets can be merged, never split.
    let scale = state.scale.min(d.scale);
    downscale_point(state, scale);
    downscale_point(&mut d, scale);
    // Further down while the merged buckets would span too many.
    let by = limit(&state.positive, &d.positive).max(limit(&state.negative, &d.negative));
    if by > 0 {
        let to = scale.saturating_sub(by as i32);
        downscale_point(state, to);
        downscale_point(&mut d, to);
    }
    // The wider zero bucket for both.
    let width = state.zero_threshold.max(d.zero_threshold);
    widen_zero(state, width);
    widen_zero(&mut d, width);
    state.zero_threshold = state.zero_threshold.max(d.zero_threshold);
    merge(&mut state.positive, d.positive);
    merge(&mut state.negative, d.negative);
    state.count = state.count.saturating_add(d.count);
    state.zero_count = state.zero_count.saturating_add(d.zero_count);
    state.sum = match (state.sum, d.sum) {
        (Some(a), Some(b)) => Some(a + b),
        _ => None,
    };
}

fn downscale_point(p: &mut ExponentialHistogramDataPoint, to: i32) {
    if p.scale <= to {
        return;
    }
    let by = (i64::from(p.scale) - i64::from(to)).min(63) as u32;
    for b in [&mut p.positive, &mut p.negative].into_iter().flatten() {
        downscale(b, by);
    }
    p.scale = to;
}

/// Drops leading and trailing empty buckets.
fn trim(b: &mut Buckets) {
    let Some(first) = b.bucket_counts.iter().position(|c| *c != 0) else {
        b.bucket_counts.clear();
        b.offset = 0;
        return;
    };
    let last = b
        .bucket_counts
        .iter()
        .rposition(|c| *c != 0)
        .unwrap_or(first);
    b.bucket_counts.truncate(last + 1);
    b.bucket_counts.drain(..first);
    b.offset = (i64::from(b.offset) + first as i64).clamp(i32::MIN.into(), i32::MAX.into()) as i32;
}

/// The absolute indexes of the first and last bucket of `b` (trimmed, not empty).
fn span(b: &Buckets) -> Option<(i64, i64)> {
    let n = b.bucket_counts.len() as i64;
    (n > 0).then(|| (i64::from(b.offset), i64::from(b.offset) + n - 1))
}

/// Merges buckets pairwise `by` times: bucket `i` becomes `i >> by`.
fn downscale(b: &mut Buckets, by: u32) {
    let Some((lo, hi)) = span(b) else {
        return;
    };
    let (nlo, nhi) = (lo >> by, hi >> by);
    let mut out = vec![0u64; (nhi - nlo + 1) as usize];
    for (k, c) in b.bucket_counts.iter().enumerate() {
        let i = ((lo + k as i64) >> by) - nlo;
        out[i as usize] = out[i as usize].saturating_add(*c);
    }
    b.offset = nlo as i32;
    b.bucket_counts = out;
}

/// How many scales further down `a` and `b` must go for their merge to span at most
/// [`MAX_BUCKETS`] buckets.
fn limit(a: &Option<Buckets>, b: &Option<Buckets>) -> u32 {
    let spans = [a, b].into_iter().flatten().filter_map(span);
    let Some((mut lo, mut hi)) = spans.reduce(|x, y| (x.0.min(y.0), x.1.max(y.1))) else {
        return 0;
    };
    let mut by = 0;
    while hi - lo + 1 > MAX_BUCKETS {
        lo >>= 1;
        hi >>= 1;
        by += 1;
    }
    by
}

/// Bucket indexes past this are clamped (offsets are 32-bit; this keeps the arithmetic
/// on indexes from overflowing whatever scale a point claims).
const MAX_INDEX: i64 = 1 << 40;

/// The index of the bucket holding `v` (> 0) at `scale`: bucket `i` is
/// `(base^i, base^(i+1)]`, `base = 2^(2^-scale)`.
fn index_of(v: f64, scale: i32) -> i64 {
    let bits = v.to_bits();
    let exp_bits = ((bits >> 52) & 0x7ff) as i64;
    let i = if bits & ((1 << 52) - 1) == 0 && exp_bits != 0 {
        // An exact power of two, 2^k: the bucket it closes.
        let k = i128::from(exp_bits - 1023);
        let i = if scale >= 0 {
            (k << scale.min(62)) - 1
        } else {
            -((-k) >> (-i64::from(scale)).min(62)) - 1
        };
        i.clamp(-i128::from(MAX_INDEX), i128::from(MAX_INDEX)) as i64
    } else {
        (v.log2() * f64::from(scale).exp2()).floor() as i64
    };
    i.clamp(-MAX_INDEX, MAX_INDEX)
}

/// Moves every bucket at or below `width` into the zero bucket, whose threshold becomes the
/// upper bound of the last bucket moved (as the Collector's `WidenZero`).
fn widen_zero(p: &mut ExponentialHistogramDataPoint, width: f64) {
    if !width.is_finite() || width <= 0.0 || width <= p.zero_threshold {
        return;
    }
    let lo = index_of(width, p.scale);
    let mut moved = 0u64;
    for b in [&mut p.positive, &mut p.negative].into_iter().flatten() {
        let Some((first, _)) = span(b) else { continue };
        let n = (lo - first + 1).clamp(0, b.bucket_counts.len() as i64) as usize;
        for c in b.bucket_counts.drain(..n) {
            moved = moved.saturating_add(c);
        }
        b.offset = (first + n as i64) as i32;
        trim(b);
    }
    p.zero_count = p.zero_count.saturating_add(moved);
    let upper = ((lo + 1) as f64 * f64::from(-p.scale).exp2()).exp2();
    p.zero_threshold = upper.max(width);
}

/// Adds `b`'s counts into `a` (same scale).
fn merge(a: &mut Option<Buckets>, b: Option<Buckets>) {
    let Some(b) = b.filter(|b| !b.bucket_counts.is_empty()) else {
        return;
    };
    let Some(x) = a.as_mut().filter(|a| !a.bucket_counts.is_empty()) else {
        *a = Some(b);
        return;
    };
    let (Some(sa), Some(sb)) = (span(x), span(&b)) else {
        return;
    };
    let lo = sa.0.min(sb.0);
    let hi = sa.1.max(sb.1);
    let mut out = vec![0u64; (hi - lo + 1) as usize];
    for (src, first) in [(&x.bucket_counts, sa.0), (&b.bucket_counts, sb.0)] {
        for (k, c) in src.iter().enumerate() {
            let i = (first - lo) as usize + k;
            out[i] = out[i].saturating_add(*c);
        }
    }
    x.offset = lo as i32;
    x.bucket_counts = out;
    trim(x);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(offset: i32, counts: &[u64]) -> Option<Buckets> {
        Some(Buckets {
            offset,
            bucket_counts: counts.to_vec(),
        })
    }

    fn exp(scale: i32, positive: Option<Buckets>, count: u64) -> ExponentialHistogramDataPoint {
        ExponentialHistogramDataPoint {
            scale,
            positive,
            count,
            sum: Some(count as f64),
            ..Default::default()
        }
    }

    #[test]
    fn the_bucket_of_a_value() {
        // Scale 0: bucket i is (2^i, 2^(i+1)].
        assert_eq!(index_of(1.0, 0), -1);
        assert_eq!(index_of(2.0, 0), 0);
        assert_eq!(index_of(3.0, 0), 1);
        assert_eq!(index_of(4.0, 0), 1);
        // Scale 1: base √2; 2 closes bucket 1.
        assert_eq!(index_of(2.0, 1), 1);
        assert_eq!(index_of(2.5, 1), 2);
        // Scale -1: base 4; 4 closes bucket 0, 8 is in bucket 1, 16 closes it.
        assert_eq!(index_of(4.0, -1), 0);
        assert_eq!(index_of(8.0, -1), 1);
        assert_eq!(index_of(16.0, -1), 1);
        assert_eq!(index_of(0.5, -1), -1);
    }

    #[test]
    fn downscaling_merges_pairs_aligned_to_zero() {
        let mut b = Buckets {
            offset: -3,
            bucket_counts: vec![1, 2, 3, 4, 5],
        };
        // Indexes -3..=1 → -2, -1, -1, 0, 0.
        downscale(&mut b, 1);
        assert_eq!((b.offset, b.bucket_counts.as_slice()), (-2, &[1, 5, 9][..]));
    }

    #[test]
    fn exponential_histograms_of_different_scales_add_at_the_smaller() {
        // Scale 1 buckets 2..=5 (one each) plus scale 0 bucket 1 (two).
        let mut state = exp(1, buckets(2, &[1, 1, 1, 1]), 4);
        let d = exp(0, buckets(1, &[2]), 2);
        add_exp(&mut state, d);
        assert_eq!(state.scale, 0);
        // At scale 0: 2,3 → 1; 4,5 → 2; plus 2 in bucket 1.
        assert_eq!(state.positive, buckets(1, &[4, 2]));
        assert_eq!((state.count, state.sum), (6, Some(6.0)));
    }

    #[test]
    fn merged_buckets_stay_within_160() {
        let mut state = exp(3, buckets(0, &[1]), 1);
        let d = exp(3, buckets(400, &[1]), 1);
        add_exp(&mut state, d);
        // 0..=400 is 401 buckets: two scales down (0..=100) is within the limit.
        assert_eq!(state.scale, 1);
        let b = state.positive.expect("buckets");
        assert_eq!(b.offset, 0);
        assert_eq!(b.bucket_counts.len(), 101);
        assert_eq!(b.bucket_counts.iter().sum::<u64>(), 2);
    }

    #[test]
    fn a_wider_zero_bucket_takes_the_buckets_below_it() {
        let mut state = exp(0, buckets(0, &[1, 1, 1]), 3);
        let mut d = exp(0, buckets(1, &[1]), 1);
        d.zero_threshold = 2.0;
        add_exp(&mut state, d);
        // Bucket 0 is (1, 2]: within the zero bucket of threshold 2.
        assert_eq!(state.zero_count, 1);
        assert_eq!(state.zero_threshold, 2.0);
        assert_eq!(state.positive, buckets(1, &[2, 1]));
        assert_eq!(state.count, 4);
    }

    #[test]
    fn explicit_histograms_add_or_start_over_on_new_bounds() {
        let h = |bounds: &[f64], counts: &[u64], sum: Option<f64>| HistogramDataPoint {
            explicit_bounds: bounds.to_vec(),
            bucket_counts: counts.to_vec(),
            count: counts.iter().sum(),
            sum,
            ..Default::default()
        };
        let mut acc = h(&[1.0, 5.0], &[1, 2, 3], Some(10.0)).first();
        assert_eq!(
            h(&[1.0, 5.0], &[1, 0, 1], Some(4.0)).add_to(&mut acc),
            Added::Added
        );
        let Acc::Hist(s) = &acc else {
            panic!("{acc:?}")
        };
        assert_eq!(
            (s.bucket_counts.as_slice(), s.count, s.sum),
            (&[2, 2, 4][..], 8, Some(14.0))
        );
        // A point without a sum: the sum is no longer known.
        assert_eq!(
            h(&[1.0, 5.0], &[1, 0, 0], None).add_to(&mut acc),
            Added::Added
        );
        let Acc::Hist(s) = &acc else {
            panic!("{acc:?}")
        };
        assert_eq!((s.count, s.sum), (9, None));
        assert_eq!(h(&[2.0], &[7, 1], Some(3.0)).add_to(&mut acc), Added::Reset);
        let Acc::Hist(s) = &acc else {
            panic!("{acc:?}")
        };
        assert_eq!((s.bucket_counts.as_slice(), s.count), (&[7, 1][..], 8));
    }
}
