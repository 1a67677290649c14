//! Range functions over windows holding native histograms (`promql/functions.go`):
//! `rate`/`increase`/`delta` (`histogramRate` inside `extrapolatedRate`), `irate`/`idelta`
//! (`instantValue`), `changes`, `resets`, the `*_over_time` functions that accept
//! histograms, and which functions ignore them. Windows holding floats only never come
//! here (`range`). Annotations are returned as [`Note`]s; the caller words them with the
//! metric name and position.

use std::sync::Arc;

use strata_vocab::histogram::{CounterResetHint, FloatHistogram};

use super::range::{RangeFn, Window};

/// A value of either kind.
#[derive(Clone, Debug)]
pub enum Val {
    F(f64),
    H(Arc<FloatHistogram>),
}

/// An annotation raised over a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Note {
    /// `encountered a mix of histograms and floats for metric name`.
    Mixed,
    /// `this native histogram metric is not a counter:`.
    NotCounter,
    /// `this native histogram metric is not a gauge:`.
    NotGauge,
    /// `vector contains a mix of histograms with exponential and custom buckets schemas`.
    MixedExponentialCustom,
    /// `mismatched custom buckets were reconciled during subtraction`.
    ReconciledSub,
    /// `mismatched custom buckets were reconciled during addition`.
    ReconciledAdd,
    /// `ignored histograms in a range containing both floats and histograms`.
    IgnoredInMixedRange,
    /// `conflicting counter resets during histogram aggregation`.
    CounterResetCollision,
}

impl Note {
    /// The annotation text for `metric` at `pos` (pos already formatted, e.g. ` (1:1)`).
    pub fn text(self, metric: &str, pos: &str) -> (bool, String) {
        let warn = |s: String| (true, format!("PromQL warning: {s}{pos}"));
        let info = |s: String| (false, format!("PromQL info: {s}{pos}"));
        match self {
            Note::Mixed => warn(format!(
                "encountered a mix of histograms and floats for metric name {metric:?}"
            )),
            Note::NotCounter => warn(format!(
                "this native histogram metric is not a counter: {metric:?}"
            )),
            Note::NotGauge => warn(format!(
                "this native histogram metric is not a gauge: {metric:?}"
            )),
            Note::MixedExponentialCustom => warn(format!(
                "vector contains a mix of histograms with exponential and custom buckets schemas for metric name {metric:?}"
            )),
            Note::ReconciledSub => {
                info("mismatched custom buckets were reconciled during subtraction".into())
            }
            Note::ReconciledAdd => {
                info("mismatched custom buckets were reconciled during aggregation".into())
            }
            Note::CounterResetCollision => {
                warn("conflicting counter resets during histogram aggregation".into())
            }
            Note::IgnoredInMixedRange => info(format!(
                "ignored histograms in a range containing both floats and histograms for metric name {metric:?}"
            )),
        }
    }
}

/// Whether `f` reads histogram samples (the others ignore them).
pub fn accepts_histograms(f: RangeFn) -> bool {
    use RangeFn::*;
    matches!(
        f,
        Raw | Rate
            | Increase
            | Delta
            | Irate
            | Idelta
            | Changes
            | Resets
            | SumOverTime
            | AvgOverTime
            | CountOverTime
            | LastOverTime
            | FirstOverTime
            | PresentOverTime
            | TsOfFirstOverTime
            | TsOfLastOverTime
    )
}

type H = (i64, Arc<FloatHistogram>);

/// Evaluates a histogram-reading `f` over a window with at least one histogram sample
/// (`floats` may be empty); `range_secs` is the selector's range.
pub fn eval(
    f: RangeFn,
    floats: &[(i64, f64)],
    hists: &[H],
    w: &Window,
    range_secs: f64,
    notes: &mut Vec<Note>,
) -> Option<Val> {
    use RangeFn::*;
    let n = floats.len() + hists.len();
    match f {
        Rate | Increase | Delta => {
            if !floats.is_empty() {
                notes.push(Note::Mixed);
                return None;
            }
            extrapolated_rate(hists, w, f != Delta, f == Rate, range_secs, notes).map(Val::H)
        }
        Irate | Idelta => instant_value(floats, hists, f == Irate, notes),
        Changes | Resets => Some(Val::F(changes_or_resets(floats, hists, f == Resets) as f64)),
        CountOverTime => Some(Val::F(n as f64)),
        PresentOverTime => Some(Val::F(1.0)),
        LastOverTime | TsOfLastOverTime => {
            let lf = floats.last();
            let lh = hists.last();
            let (t, v) = match (lf, lh) {
                (Some(a), Some(b)) if a.0 > b.0 => (a.0, Val::F(a.1)),
                (_, Some(b)) => (b.0, Val::H(b.1.clone())),
                (Some(a), None) => (a.0, Val::F(a.1)),
                (None, None) => return None,
            };
            Some(if f == TsOfLastOverTime {
                Val::F(t as f64 / 1e3)
            } else {
                v
            })
        }
        FirstOverTime | TsOfFirstOverTime => {
            let (t, v) = match (floats.first(), hists.first()) {
                (Some(a), Some(b)) if a.0 < b.0 => (a.0, Val::F(a.1)),
                (_, Some(b)) => (b.0, Val::H(b.1.clone())),
                (Some(a), None) => (a.0, Val::F(a.1)),
                (None, None) => return None,
            };
            Some(if f == TsOfFirstOverTime {
                Val::F(t as f64 / 1e3)
            } else {
                v
            })
        }
        SumOverTime | AvgOverTime => {
            if !floats.is_empty() {
                notes.push(Note::Mixed);
                return None;
            }
            use strata_vocab::histogram::kahan::{KahanMean, KahanSum};
            let first = &hists[0].1;
            let hinted = |k| hists.iter().any(|(_, h)| h.hint == k);
            if hinted(CounterResetHint::Reset) && hinted(CounterResetHint::NotReset) {
                notes.push(Note::CounterResetCollision);
            }
            let (mut sum, mut mean) = if f == AvgOverTime {
                (None, Some(KahanMean::new(first)))
            } else {
                (Some(KahanSum::new(first)), None)
            };
            for (_, h) in &hists[1..] {
                let r = match (&mut sum, &mut mean) {
                    (Some(s), _) => s.add(h),
                    (_, Some(m)) => m.add(h),
                    _ => return None,
                };
                match r {
                    Ok(r) if r.nhcb_bounds_reconciled => notes.push(Note::ReconciledAdd),
                    Ok(_) => {}
                    Err(_) => {
                        notes.push(Note::MixedExponentialCustom);
                        return None;
                    }
                }
            }
            let mut acc = match (sum, mean) {
                (Some(s), _) => s.value(),
                (_, Some(m)) => m.value(),
                _ => return None,
            };
            acc.compact();
            Some(Val::H(Arc::new(acc)))
        }
        _ => None,
    }
}

/// `histogramRate` with the extrapolation of `extrapolatedRate`.
fn extrapolated_rate(
    points: &[H],
    w: &Window,
    is_counter: bool,
    is_rate: bool,
    range_secs: f64,
    notes: &mut Vec<Note>,
) -> Option<Arc<FloatHistogram>> {
    if points.len() < 2 {
        return None;
    }
    let mut result = histogram_rate(points, is_counter, notes)?;
    let (first_t, last_t) = (points[0].0, points[points.len() - 1].0);
    let minus_one = (points.len() - 1) as f64;
    let mut to_start = (first_t - w.lo) as f64 / 1e3;
    let mut to_end = (w.hi - last_t) as f64 / 1e3;
    let sampled = (last_t - first_t) as f64 / 1e3;
    let avg = sampled / minus_one;
    let threshold = avg * 1.1;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if is_counter {
        let first_count = points[0].1.count;
        let to_zero = if result.count > 0.0 && first_count >= 0.0 {
            sampled * (first_count / result.count)
        } else {
            to_start
        };
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    let mut factor = if sampled != 0.0 {
        (sampled + to_start + to_end) / sampled
    } else {
        1.0
    };
    if is_rate {
        factor /= range_secs;
    }
    result.mul(factor);
    Some(Arc::new(result))
}

/// `histogramRate`: last minus first, counter resets corrected.
fn histogram_rate(points: &[H], is_counter: bool, notes: &mut Vec<Note>) -> Option<FloatHistogram> {
    let mut prev: FloatHistogram = (*points[0].1).clone();
    let last = &points[points.len() - 1].1;
    let mut custom = prev.uses_custom_buckets();
    if is_counter && (prev.hint == CounterResetHint::Gauge || last.hint == CounterResetHint::Gauge)
    {
        notes.push(Note::NotCounter);
    }
    if is_counter {
        let second = &points[1].1;
        if second.detect_reset(&prev) {
            prev = FloatHistogram {
                schema: second.schema,
                custom_values: second.custom_values.clone(),
                ..FloatHistogram::default()
            };
            custom = second.uses_custom_buckets();
        }
    }
    if last.uses_custom_buckets() != custom {
        notes.push(Note::MixedExponentialCustom);
        return None;
    }
    let mut min_schema = last.schema.min(prev.schema);
    for (_, curr) in &points[1..points.len() - 1] {
        if !is_counter {
            continue;
        }
        if curr.hint == CounterResetHint::Gauge {
            notes.push(Note::NotCounter);
        }
        min_schema = min_schema.min(curr.schema);
        if curr.uses_custom_buckets() != custom {
            notes.push(Note::MixedExponentialCustom);
            return None;
        }
    }
    let mut h = (**last).clone();
    h.reduce_resolution(min_schema);
    match h.sub(&prev) {
        Err(_) => {
            notes.push(Note::MixedExponentialCustom);
            return None;
        }
        Ok(r) if r.nhcb_bounds_reconciled => notes.push(Note::ReconciledSub),
        Ok(_) => {}
    }
    if is_counter {
        // From the first sample, or the empty one that replaced it after a reset.
        let mut prev: &FloatHistogram = &prev;
        for (_, curr) in &points[1..] {
            if curr.detect_reset(prev) {
                match h.add(prev) {
                    Err(_) => {
                        notes.push(Note::MixedExponentialCustom);
                        return None;
                    }
                    Ok(r) if r.nhcb_bounds_reconciled => notes.push(Note::ReconciledAdd),
                    Ok(_) => {}
                }
            }
            prev = curr;
        }
    } else if points[0].1.hint != CounterResetHint::Gauge || last.hint != CounterResetHint::Gauge {
        notes.push(Note::NotGauge);
    }
    h.hint = CounterResetHint::Gauge;
    h.compact();
    Some(h)
}

/// `instantValue`: the last two samples of either kind.
fn instant_value(
    floats: &[(i64, f64)],
    hists: &[H],
    is_rate: bool,
    notes: &mut Vec<Note>,
) -> Option<Val> {
    if floats.len() + hists.len() < 2 {
        return None;
    }
    let mut ss: Vec<(i64, Val)> = floats[floats.len().saturating_sub(2)..]
        .iter()
        .map(|s| (s.0, Val::F(s.1)))
        .collect();
    for (t, h) in &hists[hists.len().saturating_sub(2)..] {
        let s = (*t, Val::H(h.clone()));
        match ss.len() {
            0 => ss.push(s),
            1 => {
                if s.0 < ss[0].0 {
                    ss.insert(0, s);
                } else {
                    ss.push(s);
                }
            }
            _ if s.0 < ss[0].0 => {}
            _ if s.0 > ss[1].0 => {
                ss.remove(0);
                ss.push(s);
            }
            _ => ss[0] = s,
        }
    }
    let dt = ss[1].0 - ss[0].0;
    if dt == 0 {
        return None;
    }
    let secs = dt as f64 / 1e3;
    match (&ss[0].1, &ss[1].1) {
        (Val::F(a), Val::F(b)) => {
            let mut r = *b;
            if !is_rate || *b >= *a {
                r = b - a;
            }
            Some(Val::F(if is_rate { r / secs } else { r }))
        }
        (Val::H(a), Val::H(b)) => {
            let mut r = (**b).clone();
            if is_rate && (b.hint == CounterResetHint::Gauge || a.hint == CounterResetHint::Gauge) {
                notes.push(Note::NotCounter);
            }
            if !is_rate && (b.hint != CounterResetHint::Gauge || a.hint != CounterResetHint::Gauge)
            {
                notes.push(Note::NotGauge);
            }
            if !is_rate || !b.detect_reset(a) {
                match r.sub(a) {
                    Err(_) => {
                        notes.push(Note::MixedExponentialCustom);
                        return None;
                    }
                    Ok(c) if c.nhcb_bounds_reconciled => notes.push(Note::ReconciledSub),
                    Ok(_) => {}
                }
            }
            r.hint = CounterResetHint::Gauge;
            r.compact();
            if is_rate {
                r.div(secs);
            }
            Some(Val::H(Arc::new(r)))
        }
        _ => {
            notes.push(Note::Mixed);
            None
        }
    }
}

/// `changes` or `resets` over the samples of both kinds in time order.
fn changes_or_resets(floats: &[(i64, f64)], hists: &[H], resets: bool) -> usize {
    let (mut i, mut j) = (0, 0);
    let mut prev: Option<Val> = None;
    let mut n = 0;
    while i < floats.len() || j < hists.len() {
        let cur = if j >= hists.len() || (i < floats.len() && floats[i].0 < hists[j].0) {
            i += 1;
            Val::F(floats[i - 1].1)
        } else {
            j += 1;
            Val::H(hists[j - 1].1.clone())
        };
        if let Some(p) = &prev {
            let hit = match (p, &cur) {
                (Val::F(a), Val::F(b)) => {
                    if resets {
                        b < a
                    } else {
                        !(a == b || (a.is_nan() && b.is_nan()))
                    }
                }
                (Val::H(a), Val::H(b)) => {
                    if resets {
                        b.detect_reset(a)
                    } else {
                        !b.equals(a)
                    }
                }
                _ => true,
            };
            n += usize::from(hit);
        }
        prev = Some(cur);
    }
    n
}

/// What a binary operation on histograms noticed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BinNote {
    /// `incompatible sample types encountered for binary operator "op": l op r` (info).
    Incompatible(&'static str, &'static str),
    /// `conflicting counter resets during histogram addition|subtraction` (warning).
    Collision(&'static str),
    /// `mismatched custom buckets were reconciled during addition|subtraction` (info).
    Reconciled(&'static str),
    /// Exponential and custom buckets cannot be combined (warning).
    MixedSchemas,
}

impl BinNote {
    /// `(is warning, text)` for operator `op` at `pos`.
    pub fn text(&self, op: &str, pos: &str) -> (bool, String) {
        match self {
            BinNote::Incompatible(l, r) => (
                false,
                format!(
                    "PromQL info: incompatible sample types encountered for binary operator {op:?}: {l} {op} {r}{pos}"
                ),
            ),
            BinNote::Collision(what) => (
                true,
                format!("PromQL warning: conflicting counter resets during histogram {what}{pos}"),
            ),
            BinNote::Reconciled(what) => (
                false,
                format!(
                    "PromQL info: mismatched custom buckets were reconciled during {what}{pos}"
                ),
            ),
            BinNote::MixedSchemas => (
                true,
                format!(
                    "PromQL warning: vector contains a mix of histograms with exponential and custom buckets schemas for metric name \"\"{pos}"
                ),
            ),
        }
    }
}

/// The result of one element operation: value, histogram, kept.
pub type BinResult = (f64, Option<Arc<FloatHistogram>>, bool);

/// `vectorElemBinop` when at least one side is a histogram.
pub fn elem_binop_hist(
    op: strata_grammar::BinaryOp,
    (l, lh): (f64, Option<&Arc<FloatHistogram>>),
    (r, rh): (f64, Option<&Arc<FloatHistogram>>),
    notes: &mut Vec<BinNote>,
) -> BinResult {
    use strata_grammar::BinaryOp::*;
    let drop = (0.0, None, false);
    let done = |mut h: FloatHistogram| {
        h.compact();
        (0.0, Some(Arc::new(h)), true)
    };
    match (lh, rh) {
        (None, Some(h)) => match op {
            Mul => {
                let mut h = (**h).clone();
                h.mul(l);
                done(h)
            }
            _ => {
                notes.push(BinNote::Incompatible("float", "histogram"));
                drop
            }
        },
        (Some(h), None) => match op {
            Mul => {
                let mut h = (**h).clone();
                h.mul(r);
                done(h)
            }
            Div => {
                let mut h = (**h).clone();
                h.div(r);
                done(h)
            }
            TrimUpper | TrimLower => {
                let t = strata_vocab::histogram::stats::trim(h, r, op == TrimUpper);
                (0.0, Some(Arc::new(t)), true)
            }
            _ => {
                notes.push(BinNote::Incompatible("histogram", "float"));
                drop
            }
        },
        (Some(a), Some(b)) => match op {
            Add | Sub => {
                let mut h = (**a).clone();
                let what = if op == Add { "addition" } else { "subtraction" };
                let r = if op == Add { h.add(b) } else { h.sub(b) };
                match r {
                    Err(_) => {
                        notes.push(BinNote::MixedSchemas);
                        return drop;
                    }
                    Ok(c) => {
                        if c.counter_reset_collision {
                            notes.push(BinNote::Collision(what));
                        }
                        if c.nhcb_bounds_reconciled {
                            notes.push(BinNote::Reconciled(what));
                        }
                    }
                }
                if op == Sub {
                    h.hint = CounterResetHint::Gauge;
                }
                done(h)
            }
            Eql => (0.0, Some(a.clone()), a.equals(b)),
            Neq => (0.0, Some(a.clone()), !a.equals(b)),
            _ => {
                notes.push(BinNote::Incompatible("histogram", "histogram"));
                drop
            }
        },
        (None, None) => {
            if op.is_trim() {
                notes.push(BinNote::Incompatible("float", "float"));
                return drop;
            }
            let (v, keep) = super::instant::elem_binop(op, l, r);
            (v, None, keep)
        }
    }
}

/// Go's `FloatHistogram.String()`: `{count:N, sum:S, [a,b):c, …}` with the populated
/// buckets in ascending order (what `count_values` uses as a histogram's label value).
pub fn go_string(h: &FloatHistogram) -> String {
    use super::format_g;
    let mut s = format!("{{count:{}, sum:{}", format_g(h.count), format_g(h.sum));
    let bucket = |b: &strata_vocab::histogram::Bucket| {
        format!(
            ", {}{},{}{}:{}",
            if b.lower_inclusive { '[' } else { '(' },
            format_g(b.lower),
            format_g(b.upper),
            if b.upper_inclusive { ']' } else { ')' },
            format_g(b.count)
        )
    };
    let neg: Vec<_> = h.negative_buckets().filter(|b| b.count != 0.0).collect();
    for b in neg.iter().rev() {
        s.push_str(&bucket(b));
    }
    if h.zero_count != 0.0 {
        s.push_str(&bucket(&h.zero_bucket()));
    }
    for b in h.positive_buckets().filter(|b| b.count != 0.0) {
        s.push_str(&bucket(&b));
    }
    s.push('}');
    s
}

/// `interpolateHistograms`: the histogram at `t` between `(t1, h1)` and `(t2, h2)`; after
/// a counter reset, `h2` scaled as if counting from zero.
pub fn interpolate(
    (t1, h1): (i64, &FloatHistogram),
    (t2, h2): (i64, &FloatHistogram),
    t: i64,
    is_counter: bool,
    notes: &mut Vec<Note>,
) -> Option<FloatHistogram> {
    if t == t1 {
        return Some(h1.clone());
    }
    if t == t2 {
        return Some(h2.clone());
    }
    let fraction = (t - t1) as f64 / (t2 - t1) as f64;
    let mut r = h2.clone();
    if is_counter && h2.detect_reset(h1) {
        let hint = r.hint;
        r.mul(fraction);
        r.hint = hint;
        return Some(r);
    }
    match r.sub(h1) {
        Err(_) => return None,
        Ok(c) if c.nhcb_bounds_reconciled => notes.push(Note::ReconciledSub),
        Ok(_) => {}
    }
    r.mul(fraction);
    match r.add(h1) {
        Err(_) => return None,
        Ok(c) if c.nhcb_bounds_reconciled => notes.push(Note::ReconciledAdd),
        Ok(_) => {}
    }
    Some(r)
}

/// `extendedHistogramRate`: `rate`/`increase`/`delta` of an `anchored` or `smoothed`
/// range over histograms. `h` holds the samples the extended selection reads (the one
/// before the range within the lookback, and for `smoothed` the one after it); `lo` and
/// `hi` bound the range.
#[allow(clippy::too_many_arguments)]
pub fn extended_rate(
    h: &[H],
    (lo, hi): (i64, i64),
    smoothed: bool,
    is_counter: bool,
    is_rate: bool,
    range_secs: f64,
    notes: &mut Vec<Note>,
) -> Option<Arc<FloatHistogram>> {
    if h.is_empty() {
        return None;
    }
    let mut last = h.len() - 1;
    let first = h[..last].partition_point(|p| p.0 <= lo).saturating_sub(1);
    if smoothed {
        last = h[..last].partition_point(|p| p.0 < hi);
    }
    if h[last].0 <= lo || (smoothed && h[first].0 > hi) {
        return None;
    }
    let custom = h[first].1.uses_custom_buckets();
    for p in &h[first..=last] {
        if p.1.uses_custom_buckets() != custom {
            notes.push(Note::MixedExponentialCustom);
            return None;
        }
        if is_counter && p.1.hint == CounterResetHint::Gauge {
            notes.push(Note::NotCounter);
        }
    }
    let at = |i: usize| (h[i].0, &*h[i].1);
    let left = if smoothed && h[first].0 < lo {
        interpolate(at(first), at(first + 1), lo, is_counter, notes)
    } else {
        Some((*h[first].1).clone())
    };
    let right = if smoothed && last > 0 && h[last].0 > hi {
        interpolate(at(last - 1), at(last), hi, is_counter, notes)
    } else {
        Some((*h[last].1).clone())
    };
    let (Some(left), Some(right)) = (left, right) else {
        notes.push(Note::MixedExponentialCustom);
        return None;
    };
    if !is_counter
        && (left.hint != CounterResetHint::Gauge || right.hint != CounterResetHint::Gauge)
    {
        notes.push(Note::NotGauge);
    }
    let mut result = right.clone();
    match result.sub(&left) {
        Err(_) => {
            notes.push(Note::MixedExponentialCustom);
            return None;
        }
        Ok(c) if c.nhcb_bounds_reconciled => notes.push(Note::ReconciledSub),
        Ok(_) => {}
    }
    if is_counter {
        // `correctForCounterResetsHistogram`.
        let mut from = first + 1;
        let mut prev: &FloatHistogram = &left;
        if smoothed && h[first].0 < lo && h[first + 1].1.detect_reset(&h[first].1) {
            prev = &h[first + 1].1;
            from += 1;
        }
        let mut correction: Option<FloatHistogram> = None;
        let add = |c: &mut Option<FloatHistogram>, x: &FloatHistogram| -> bool {
            match c {
                None => {
                    *c = Some(x.clone());
                    true
                }
                Some(acc) => acc.add(x).is_ok(),
            }
        };
        if from <= last {
            for p in &h[from..last] {
                if p.1.detect_reset(prev) && !add(&mut correction, prev) {
                    notes.push(Note::MixedExponentialCustom);
                    return None;
                }
                prev = &p.1;
            }
            if right.detect_reset(prev) && !add(&mut correction, prev) {
                notes.push(Note::MixedExponentialCustom);
                return None;
            }
        }
        if let Some(c) = correction
            && result.add(&c).is_err()
        {
            notes.push(Note::MixedExponentialCustom);
            return None;
        }
    }
    if is_rate {
        result.div(range_secs);
    }
    result.hint = CounterResetHint::Gauge;
    result.compact();
    Some(Arc::new(result))
}
