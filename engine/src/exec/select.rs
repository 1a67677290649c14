//! Selector, instant-vector lookup (lookback, staleness) and range-window kernels. When an
//! instant or range node reads a selector directly, the two are fused: each series goes
//! from storage through the kernel without materialising the raw samples as a relation,
//! and a large selection is cut into label ranges read and processed on every worker
//! (`parts`), each holding only its own raw samples.

use std::sync::Arc;

use datafusion::common::HashSet;
use strata_storage::{Matcher, SeriesSamples};

use super::parts::{HistSample, Part, Room, Scratch, SeriesKernel};
use crate::error::Result;
use crate::functions::format_g;
use crate::functions::native::{self, Val};
use crate::functions::range::{self, RangeFn, Window};
use crate::memory::{Budget, SAMPLE_BYTES};
use crate::model::{Grid, QueryContext, Rows, is_stale};
use crate::plan::Extend;

/// Where an instant lookup happens.
#[derive(Clone, Debug)]
pub(super) struct InstantSpec {
    pub grid: Grid,
    pub lookback: i64,
    pub offset: i64,
    pub at: Option<i64>,
    pub sample_ts: bool,
    /// A histogram sample is an error (`info()`'s info series).
    pub floats_only: bool,
    pub smoothed: bool,
    /// Annotation position of the selector (` (1:1)`), for its warnings.
    pub pos: String,
}

/// What a range node computes.
#[derive(Clone, Debug)]
pub(super) struct RangeSpec {
    pub grid: Grid,
    pub width: i64,
    pub offset: i64,
    pub at: Option<i64>,
    pub func: RangeFn,
    pub p: [f64; 2],
    pub counter_check: bool,
    pub pos: Arc<str>,
    pub ext: Extend,
    /// Parameters per step, replacing `p` (non-constant parameters).
    pub per_step: Option<Arc<Vec<[f64; 2]>>>,
}

/// Compiles the matchers of a plan node into storage matchers.
pub(super) fn storage_matchers(matchers: &[strata_vocab::LabelMatcher]) -> Result<Vec<Matcher>> {
    Ok(matchers
        .iter()
        .map(Matcher::compile)
        .collect::<std::result::Result<Vec<_>, _>>()?)
}

/// Reads the series matching `matchers` with samples in `[mint, maxt]`, charging them to
/// the query's budget as they are decoded; returns them with the points charged (the
/// caller gives those back once it has turned them into rows).
async fn read(
    ctx: &QueryContext,
    matchers: &[strata_vocab::LabelMatcher],
    mint: i64,
    maxt: i64,
) -> Result<(Vec<SeriesSamples>, usize)> {
    let ms = storage_matchers(matchers)?;
    if mint > maxt {
        return Ok((Vec::new(), 0));
    }
    let charge = crate::memory::ReadBudget::new(&ctx.budget);
    // A task of a distributed query reads its own series only.
    let mine = ctx.series_filter().map(|keep| strata_storage::SeriesRange {
        keep: Some(keep),
        ..Default::default()
    });
    let r = ctx
        .db
        .select_charged(&ms, mint, maxt, mine.as_ref(), &charge)
        .await;
    charge.finish(r)
}

/// Raw samples of matching series as a relation; ids are interned in label order.
pub(super) async fn selector(
    ctx: &QueryContext,
    matchers: &[strata_vocab::LabelMatcher],
    mint: i64,
    maxt: i64,
    stats_only: bool,
) -> Result<Rows> {
    let (mut series, charged) = read(ctx, matchers, mint, maxt).await?;
    if stats_only {
        for s in &mut series {
            if !s.histograms.is_empty() {
                s.histograms = super::stats_hints::derive(&s.histograms);
            }
        }
    }
    let total: usize = series.iter().map(|s| s.len()).sum();
    let mut out = Rows::charged(&ctx.budget, total)?;
    for s in series {
        if s.is_empty() {
            continue;
        }
        let id = ctx.registry.intern(s.labels, false);
        if s.histograms.is_empty() {
            for (t, v) in s.samples {
                out.push(id, t, v);
            }
            continue;
        }
        // Both kinds, in time order.
        let (mut i, mut j) = (0, 0);
        while i < s.samples.len() || j < s.histograms.len() {
            if j >= s.histograms.len()
                || (i < s.samples.len() && s.samples[i].0 < s.histograms[j].0)
            {
                out.push(id, s.samples[i].0, s.samples[i].1);
                i += 1;
            } else {
                out.push_hist(id, s.histograms[j].0, s.histograms[j].1.clone());
                j += 1;
            }
        }
    }
    ctx.budget.release(charged, SAMPLE_BYTES);
    Ok(out)
}

/// Makes every series one contiguous, time-ordered run (sorting only when needed).
fn ensure_grouped(rows: &mut Rows, budget: &Budget) -> Result<()> {
    let mut seen = HashSet::new();
    for (id, r) in rows.series_runs() {
        if !seen.insert(id) || rows.ts[r].windows(2).any(|w| w[0] > w[1]) {
            return rows.sort_by_series(budget);
        }
    }
    Ok(())
}

/// The instant value of one series at each step (Prometheus 3 left-open lookback).
fn instant_one(
    budget: &Budget,
    id: u32,
    ts: &[i64],
    vals: &[f64],
    s: &InstantSpec,
    out: &mut Rows,
) -> Result<()> {
    if s.smoothed {
        return smoothed_one(budget, id, ts, vals, s, out);
    }
    let mut j = 0;
    for t in s.grid.steps() {
        let rf = s.at.unwrap_or(t) - s.offset;
        while j < ts.len() && ts[j] <= rf {
            j += 1;
        }
        if j == 0 {
            continue;
        }
        let (st, v) = (ts[j - 1], vals[j - 1]);
        if st <= rf - s.lookback || is_stale(v) {
            continue;
        }
        out.push_in(budget, id, t, if s.sample_ts { st as f64 / 1e3 } else { v })?;
    }
    Ok(())
}

/// Whether a histogram sample is a staleness marker (its sum is the stale NaN).
fn stale_hist(h: &HistSample) -> bool {
    is_stale(h.1.sum)
}

/// The instant value of one series holding histograms: at each step the newest sample of
/// either kind within the lookback (`smoothed`: [`smoothed_mixed`]).
fn instant_mixed(
    ctx: &QueryContext,
    id: u32,
    ts: &[i64],
    vals: &[f64],
    hs: &[HistSample],
    s: &InstantSpec,
    out: &mut Rows,
) -> Result<()> {
    let budget = &ctx.budget;
    if s.smoothed {
        return smoothed_mixed(ctx, id, ts, vals, hs, s, out);
    }
    let (mut j, mut k) = (0, 0);
    for t in s.grid.steps() {
        let rf = s.at.unwrap_or(t) - s.offset;
        while j < ts.len() && ts[j] <= rf {
            j += 1;
        }
        while k < hs.len() && hs[k].0 <= rf {
            k += 1;
        }
        let hist = (k > 0).then(|| &hs[k - 1]);
        let float = (j > 0).then(|| (ts[j - 1], vals[j - 1]));
        match (float, hist) {
            (f, Some(h)) if f.is_none_or(|f| h.0 > f.0) => {
                if h.0 <= rf - s.lookback || stale_hist(h) {
                    continue;
                }
                if s.floats_only {
                    return Err(crate::error::exec_err("info sample should be float"));
                }
                if s.sample_ts {
                    out.push_in(budget, id, t, h.0 as f64 / 1e3)?;
                } else {
                    out.push_hist_in(budget, id, t, h.1.clone())?;
                }
            }
            (Some((st, v)), _) => {
                if st <= rf - s.lookback || is_stale(v) {
                    continue;
                }
                out.push_in(budget, id, t, if s.sample_ts { st as f64 / 1e3 } else { v })?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// `smoothed` over a series holding histograms (Prometheus `smoothSeries`): per step, the
/// samples within the lookback on either side; both kinds there is a warning and no point;
/// histograms are taken exactly, interpolated (counter-reset aware unless both are gauges)
/// or carried forward.
fn smoothed_mixed(
    ctx: &QueryContext,
    id: u32,
    ts: &[i64],
    vals: &[f64],
    hs: &[HistSample],
    s: &InstantSpec,
    out: &mut Rows,
) -> Result<()> {
    let hs: Vec<&HistSample> = hs.iter().filter(|h| !stale_hist(h)).collect();
    let mut notes = Vec::new();
    // Steps without a histogram nearby are the float smoothing's.
    let mut floats_out = Rows::default();
    smoothed_one(&ctx.budget, id, ts, vals, s, &mut floats_out)?;
    let mut fo = 0usize;
    for t in s.grid.steps() {
        let rf = s.at.unwrap_or(t) - s.offset;
        let (lo, hi) = (rf - s.lookback, rf + s.lookback);
        let fl = ts.partition_point(|&x| x <= lo);
        let fh = ts.partition_point(|&x| x <= hi);
        let has_float = (fl..fh).any(|i| !is_stale(vals[i]));
        let hl = hs.partition_point(|h| h.0 <= lo);
        let hh = hs.partition_point(|h| h.0 <= hi);
        while fo < floats_out.len() && floats_out.ts[fo] < t {
            fo += 1;
        }
        if hl == hh {
            if fo < floats_out.len() && floats_out.ts[fo] == t {
                out.push_in(&ctx.budget, id, t, floats_out.vals[fo])?;
            }
            continue;
        }
        let name = || ctx.registry.get(id).labels.metric_name().to_string();
        if has_float {
            let (_, text) = native::Note::Mixed.text(&name(), &s.pos);
            ctx.warn(text);
            continue;
        }
        let w = &hs[hl..hh];
        let i = w.partition_point(|h| h.0 < rf);
        let h = if i < w.len() && w[i].0 == rf {
            Some(w[i].1.clone())
        } else if i > 0 && i < w.len() {
            let (p, n) = (w[i - 1], w[i]);
            if p.1.uses_custom_buckets() != n.1.uses_custom_buckets() {
                let (_, text) = native::Note::MixedExponentialCustom.text(&name(), &s.pos);
                ctx.warn(text);
                continue;
            }
            let counter = p.1.hint != strata_vocab::CounterResetHint::Gauge
                || n.1.hint != strata_vocab::CounterResetHint::Gauge;
            native::interpolate((p.0, &p.1), (n.0, &n.1), rf, counter, &mut notes).map(Arc::new)
        } else if i > 0 {
            let mut h = (*w[i - 1].1).clone();
            h.hint = strata_vocab::CounterResetHint::Unknown;
            Some(Arc::new(h))
        } else {
            None
        };
        if let Some(h) = h {
            if s.sample_ts {
                out.push_in(&ctx.budget, id, t, rf as f64 / 1e3)?;
            } else {
                out.push_hist_in(&ctx.budget, id, t, h)?;
            }
        }
    }
    Ok(())
}

/// A series' rows split into float samples and histogram samples. The histograms' "reset"
/// and "not a reset" hints become unknown, as Prometheus's `evalSubquery` makes them: a
/// subquery may skip the sample where a counter reset happened, or return it several
/// times, so resets are detected from the counts instead.
fn split_run(input: &Rows, r: std::ops::Range<usize>) -> (Vec<i64>, Vec<f64>, Vec<HistSample>) {
    use strata_vocab::CounterResetHint;
    let (mut ts, mut vals, mut hs) = (Vec::new(), Vec::new(), Vec::new());
    for i in r {
        match input.hist(i) {
            Some(h) if matches!(h.hint, CounterResetHint::Reset | CounterResetHint::NotReset) => {
                let mut u = (**h).clone();
                u.hint = CounterResetHint::Unknown;
                hs.push((input.ts[i], Arc::new(u)));
            }
            Some(h) => hs.push((input.ts[i], h.clone())),
            None => {
                ts.push(input.ts[i]);
                vals.push(input.vals[i]);
            }
        }
    }
    (ts, vals, hs)
}

/// `metric smoothed` (Prometheus `smoothSeries`): at each step the sample exactly at the
/// step, else the line between the samples either side of it (no counter-reset handling),
/// else the last sample before it; each within the lookback on its side, stale markers
/// skipped. No sample before the step: no point.
fn smoothed_one(
    budget: &Budget,
    id: u32,
    ts: &[i64],
    vals: &[f64],
    s: &InstantSpec,
    out: &mut Rows,
) -> Result<()> {
    let live: Vec<(i64, f64)> = ts
        .iter()
        .zip(vals)
        .filter(|(_, v)| !is_stale(**v))
        .map(|(t, v)| (*t, *v))
        .collect();
    for t in s.grid.steps() {
        let rf = s.at.unwrap_or(t) - s.offset;
        // The window (rf − lookback, rf + lookback].
        let lo = live.partition_point(|p| p.0 <= rf - s.lookback);
        let hi = live.partition_point(|p| p.0 <= rf + s.lookback);
        let w = &live[lo..hi];
        let i = w.partition_point(|p| p.0 < rf);
        let v = if i < w.len() && w[i].0 == rf {
            w[i].1
        } else if i > 0 && i < w.len() {
            let ((t1, y1), (t2, y2)) = (w[i - 1], w[i]);
            y1 + (y2 - y1) * (rf - t1) as f64 / (t2 - t1) as f64
        } else if i > 0 {
            w[i - 1].1
        } else {
            continue;
        };
        out.push_in(budget, id, t, if s.sample_ts { rf as f64 / 1e3 } else { v })?;
    }
    Ok(())
}

/// Instant lookups over a relation of raw samples.
pub(super) fn instant(ctx: &QueryContext, input: &mut Rows, s: &InstantSpec) -> Result<Rows> {
    ensure_grouped(input, &ctx.budget)?;
    let mut out = Rows::default();
    for (n, (id, r)) in input.series_runs().enumerate() {
        if n % 256 == 0 {
            ctx.check_deadline()?;
        }
        if !input.hists.is_empty() && input.hists[r.clone()].iter().any(Option::is_some) {
            let (ts, vals, hs) = split_run(input, r);
            instant_mixed(ctx, id, &ts, &vals, &hs, s, &mut out)?;
            continue;
        }
        instant_one(
            &ctx.budget,
            id,
            &input.ts[r.clone()],
            &input.vals[r],
            s,
            &mut out,
        )?;
    }
    Ok(out)
}

/// The room and per-series kernel of an instant lookup read straight from storage.
pub(super) fn instant_reader(s: &InstantSpec) -> (Room, Arc<SeriesKernel>) {
    (Room::Steps(s.grid.len()), instant_kernel(s.clone()))
}

/// The per-series kernel of an instant lookup.
fn instant_kernel(s: InstantSpec) -> Arc<SeriesKernel> {
    Arc::new(move |ctx, id, _out_id, samples, hists, sc, out| {
        sc.split(samples);
        if hists.is_empty() {
            instant_one(&ctx.budget, id, &sc.ts, &sc.vals, &s, out)
        } else {
            instant_mixed(ctx, id, &sc.ts, &sc.vals, hists, &s, out)
        }
    })
}

/// Instant lookup + aggregation of one part read from storage (`max by (job) (metric{…})`):
/// each series' values are folded into the aggregation as it is read, so the instant vector
/// never exists as rows (building them, handing them on and walking them again was a fifth
/// of a small dashboard query's CPU).
pub(super) async fn fold_part(
    ctx: &Arc<QueryContext>,
    part: Part,
    s: &InstantSpec,
    fold: &mut super::aggregate::Fold<'_>,
) -> Result<usize> {
    let mut sc = Scratch::default();
    let mut one = Rows::charged(&ctx.budget, s.grid.len())?;
    let r = part
        .each_series(|id, _out_id, samples, hists| {
            sc.split(samples);
            one.clear();
            if hists.is_empty() {
                instant_one(&ctx.budget, id, &sc.ts, &sc.vals, s, &mut one)?;
            } else {
                instant_mixed(ctx, id, &sc.ts, &sc.vals, hists, s, &mut one)?;
            }
            if !one.is_empty() {
                let g = fold.group_of(id);
                for k in 0..one.len() {
                    match one.hist(k) {
                        Some(h) => fold.add_hist_to_group(g, one.ts[k], h)?,
                        None => fold.add_to_group(g, one.ts[k], one.vals[k])?,
                    }
                }
            }
            Ok(())
        })
        .await;
    one.release_to(&ctx.budget);
    r
}

/// The range function over the windows `(ref − range, ref]` of one series (stale markers
/// already removed).
#[allow(clippy::too_many_arguments)]
fn range_one(
    ctx: &QueryContext,
    id: u32,
    out_id: u32,
    ts: &[i64],
    vals: &[f64],
    s: &RangeSpec,
    resets: &mut Vec<u32>,
    out: &mut Rows,
) -> Result<()> {
    if ts.is_empty() {
        return Ok(());
    }
    let before = out.len();
    // Resets seen up to each sample, so a `rate` window without a reset (nearly all of
    // them) skips the reset scan: O(1) per step instead of O(window).
    resets.clear();
    if matches!(s.func, RangeFn::Rate | RangeFn::Increase) {
        let mut acc = 0u32;
        resets.push(0);
        for w in vals.windows(2) {
            acc += u32::from(w[1] < w[0]);
            resets.push(acc);
        }
    }
    let (mut lo, mut hi) = (0usize, 0usize);
    for (k, t) in s.grid.steps().enumerate() {
        if k % 65_536 == 65_535 {
            ctx.check_deadline()?;
        }
        let rf = s.at.unwrap_or(t) - s.offset;
        while hi < ts.len() && ts[hi] <= rf {
            hi += 1;
        }
        while lo < hi && ts[lo] <= rf - s.width {
            lo += 1;
        }
        let (a, b) = match s.ext {
            Extend::None => (lo, hi),
            // Without a sample inside the window there is nothing to measure: the sample
            // before it may only anchor one (Prometheus `pickFirstSampleIndices`).
            Extend::Anchored(_) if lo == hi => continue,
            // The sample before the window (anchored) and after it (smoothed), within the
            // lookback, join the window as its boundaries.
            Extend::Anchored(lb) | Extend::Smoothed(lb) => {
                let a = if lo > 0 && ts[lo - 1] > rf - s.width - lb {
                    lo - 1
                } else {
                    lo
                };
                let smoothed = matches!(s.ext, Extend::Smoothed(_));
                let b = if smoothed && hi < ts.len() && ts[hi] <= rf + lb {
                    hi + 1
                } else {
                    hi
                };
                (a, b)
            }
        };
        if a == b {
            continue;
        }
        if s.func == RangeFn::Raw {
            for k in a..b {
                out.push_in(&ctx.budget, id, ts[k], vals[k])?;
            }
            continue;
        }
        let [p0, p1] = s.per_step.as_ref().map_or(s.p, |v| v[k]);
        step_params_check(ctx, s, p0, p1)?;
        let w = Window {
            t,
            lo: rf - s.width,
            hi: rf,
            p0,
            p1,
            no_resets: !resets.is_empty() && resets[b - 1] == resets[a],
        };
        let v = match (s.ext, s.func) {
            (Extend::None, f) => range::eval(f, &ts[a..b], &vals[a..b], &w),
            (e, f @ (RangeFn::Rate | RangeFn::Increase | RangeFn::Delta)) => range::extended_rate(
                &ts[a..b],
                &vals[a..b],
                &w,
                matches!(e, Extend::Smoothed(_)),
                f != RangeFn::Delta,
                f == RangeFn::Rate,
            ),
            (_, f) => range::eval(f, &ts[a..b], &vals[a..b], &w),
        };
        if let Some(v) = v {
            out.push_in(&ctx.budget, out_id, t, v)?;
        }
    }
    if s.counter_check && out.len() > before {
        counter_note(ctx, id, s);
    }
    Ok(())
}

/// The "might not be a counter" info of `rate`/`increase` over series `id`.
pub(super) fn counter_note(ctx: &QueryContext, id: u32, s: &RangeSpec) {
    let meta = ctx.registry.get(id);
    let name = meta.labels.metric_name();
    if ctx.type_and_unit_labels {
        // The type the exposition declared, not the name, says what a counter is.
        let t = meta.labels.get("__type__").unwrap_or("");
        if !name.is_empty() && t != "counter" && t != "histogram" {
            ctx.info(format!(
                "PromQL info: metric might not be a counter, __type__ label is not set to \"counter\" or \"histogram\", got {t:?}: {name:?}{}",
                s.pos
            ));
        }
    } else if !name.is_empty()
        && !["_total", "_sum", "_count", "_bucket"]
            .iter()
            .any(|x| name.ends_with(x))
    {
        ctx.info(format!(
            "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {name:?}{}",
            s.pos
        ));
    }
}

/// A range function over one series holding histograms: floats go through
/// [`range_one`] as usual; each step whose window holds a histogram is then decided by
/// the function: histogram-reading functions see both kinds ([`native::eval`]), the others
/// keep their float result and note that histograms were ignored.
#[allow(clippy::too_many_arguments)]
fn range_mixed(
    ctx: &QueryContext,
    id: u32,
    out_id: u32,
    ts: &[i64],
    vals: &[f64],
    hs: &[HistSample],
    s: &RangeSpec,
    resets: &mut Vec<u32>,
    out: &mut Rows,
) -> Result<()> {
    let hs: Vec<HistSample> = hs.iter().filter(|h| !stale_hist(h)).cloned().collect();
    if hs.is_empty() {
        return range_one(ctx, id, out_id, ts, vals, s, resets, out);
    }
    let extended = !matches!(s.ext, Extend::None);
    let mut floats_out = Rows::default();
    if !ts.is_empty() {
        range_one(ctx, id, out_id, ts, vals, s, resets, &mut floats_out)?;
    }
    let note = |n: native::Note| {
        let name = ctx.registry.get(id).labels.metric_name().to_string();
        let (warn, text) = n.text(&name, &s.pos);
        if warn { ctx.warn(text) } else { ctx.info(text) }
    };
    let mut notes = Vec::new();
    let mut fo = 0usize;
    for (k, t) in s.grid.steps().enumerate() {
        if k % 65_536 == 65_535 {
            ctx.check_deadline()?;
        }
        let rf = s.at.unwrap_or(t) - s.offset;
        let (lo, hi) = (rf - s.width, rf);
        let c = hs.partition_point(|h| h.0 <= lo);
        let d = hs.partition_point(|h| h.0 <= hi);
        let a = ts.partition_point(|&x| x <= lo);
        let b = ts.partition_point(|&x| x <= hi);
        if s.func == RangeFn::Raw {
            let (mut i, mut j) = (a, c);
            while i < b || j < d {
                if j >= d || (i < b && ts[i] < hs[j].0) {
                    out.push_in(&ctx.budget, id, ts[i], vals[i])?;
                    i += 1;
                } else {
                    out.push_hist_in(&ctx.budget, id, hs[j].0, hs[j].1.clone())?;
                    j += 1;
                }
            }
            continue;
        }
        // The float result of this step, if any.
        let mut float_v = None;
        while fo < floats_out.len() && floats_out.ts[fo] < t {
            fo += 1;
        }
        if fo < floats_out.len() && floats_out.ts[fo] == t {
            float_v = Some(floats_out.vals[fo]);
        }
        if let (
            Extend::Anchored(lb) | Extend::Smoothed(lb),
            RangeFn::Rate | RangeFn::Increase | RangeFn::Delta,
        ) = (s.ext, s.func)
        {
            // The extended selection: the sample before the range within the lookback,
            // and for `smoothed` the one after it.
            let smoothed = matches!(s.ext, Extend::Smoothed(_));
            let end = if smoothed { hi + lb } else { hi };
            let hc = hs.partition_point(|h| h.0 <= lo - lb);
            let hd = hs.partition_point(|h| h.0 <= end);
            let fc = ts.partition_point(|&x| x <= lo - lb);
            let fd = ts.partition_point(|&x| x <= end);
            if hc == hd {
                if let Some(v) = float_v {
                    out.push_in(&ctx.budget, out_id, t, v)?;
                }
                continue;
            }
            notes.clear();
            if fc < fd {
                notes.push(native::Note::Mixed);
            } else if let Some(h) = native::extended_rate(
                &hs[hc..hd],
                (lo, hi),
                smoothed,
                s.func != RangeFn::Delta,
                s.func == RangeFn::Rate,
                s.width as f64 / 1e3,
                &mut notes,
            ) {
                out.push_hist_in(&ctx.budget, out_id, t, h)?;
            }
            for n in notes.drain(..) {
                note(n);
            }
            continue;
        }
        if let (Extend::Anchored(lb), RangeFn::Changes | RangeFn::Resets) = (s.ext, s.func) {
            // `pickFirstSampleIndices`: the newest sample at or before the range start
            // (within the lookback), of either kind, opens the window.
            if a == b && c == d {
                continue;
            }
            let (mut fa, mut hc) = (a, c);
            let fprev = (a > 0 && ts[a - 1] > lo - lb).then(|| ts[a - 1]);
            let hprev = (c > 0 && hs[c - 1].0 > lo - lb).then(|| hs[c - 1].0);
            match (fprev, hprev) {
                (Some(f), Some(h)) if f > h => fa -= 1,
                (Some(_), None) => fa -= 1,
                (_, Some(_)) => hc -= 1,
                _ => {}
            }
            if hc == d {
                if let Some(v) = float_v {
                    out.push_in(&ctx.budget, out_id, t, v)?;
                }
                continue;
            }
            let floats: Vec<(i64, f64)> = (fa..b).map(|i| (ts[i], vals[i])).collect();
            notes.clear();
            let w = Window {
                t,
                lo,
                hi,
                p0: 0.0,
                p1: 0.0,
                no_resets: false,
            };
            if let Some(Val::F(v)) = native::eval(
                s.func,
                &floats,
                &hs[hc..d],
                &w,
                s.width as f64 / 1e3,
                &mut notes,
            ) {
                out.push_in(&ctx.budget, out_id, t, v)?;
            }
            continue;
        }
        if c == d || extended {
            if let Some(v) = float_v {
                out.push_in(&ctx.budget, out_id, t, v)?;
            }
            continue;
        }
        if !native::accepts_histograms(s.func) {
            if a < b {
                note(native::Note::IgnoredInMixedRange);
            }
            if let Some(v) = float_v {
                out.push_in(&ctx.budget, out_id, t, v)?;
            }
            continue;
        }
        let floats: Vec<(i64, f64)> = (a..b).map(|i| (ts[i], vals[i])).collect();
        let [p0, p1] = s.per_step.as_ref().map_or(s.p, |v| v[k]);
        let w = Window {
            t,
            lo,
            hi,
            p0,
            p1,
            no_resets: false,
        };
        notes.clear();
        let v = native::eval(
            s.func,
            &floats,
            &hs[c..d],
            &w,
            s.width as f64 / 1e3,
            &mut notes,
        );
        for n in notes.drain(..) {
            note(n);
        }
        match v {
            Some(Val::F(v)) => out.push_in(&ctx.budget, out_id, t, v)?,
            Some(Val::H(h)) => out.push_hist_in(&ctx.budget, out_id, t, h)?,
            None => {}
        }
    }
    Ok(())
}

/// Per-step parameters, checked where the function runs (a step with samples), as
/// Prometheus does: the quantile warning, the smoothing and trend factor errors.
fn step_params_check(ctx: &QueryContext, s: &RangeSpec, p0: f64, p1: f64) -> Result<()> {
    match s.func {
        RangeFn::QuantileOverTime if p0.is_nan() || !(0.0..=1.0).contains(&p0) => {
            ctx.warn(format!(
                "PromQL warning: quantile value should be between 0 and 1, got {}{}",
                format_g(p0),
                s.pos
            ));
        }
        RangeFn::DoubleExponentialSmoothing => {
            if p0 <= 0.0 || p0 >= 1.0 || p0.is_nan() {
                return Err(crate::error::exec_err(format!(
                    "invalid smoothing factor. Expected: 0 < sf < 1, got: {p0:.6}"
                )));
            }
            if p1 <= 0.0 || p1 >= 1.0 || p1.is_nan() {
                return Err(crate::error::exec_err(format!(
                    "invalid trend factor. Expected: 0 < tf < 1, got: {p1:.6}"
                )));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Copies one series without its stale markers into reusable buffers.
fn fill_fresh(ts_in: impl Iterator<Item = (i64, f64)>, ts: &mut Vec<i64>, vals: &mut Vec<f64>) {
    ts.clear();
    vals.clear();
    for (t, v) in ts_in {
        if !is_stale(v) {
            ts.push(t);
            vals.push(v);
        }
    }
}

/// A range function over a relation (subquery output or raw samples).
pub(super) fn range(ctx: &QueryContext, input: &mut Rows, s: &RangeSpec) -> Result<Rows> {
    ensure_grouped(input, &ctx.budget)?;
    let mut out = Rows::default();
    let (mut ts, mut vals, mut resets) = (Vec::new(), Vec::new(), Vec::new());
    for (n, (id, r)) in input.series_runs().enumerate() {
        if n % 256 == 0 {
            ctx.check_deadline()?;
        }
        let out_id = if s.func.keeps_name() {
            id
        } else {
            ctx.registry.with_drop_name(id)
        };
        if !input.hists.is_empty() && input.hists[r.clone()].iter().any(Option::is_some) {
            let (t2, v2, hs) = split_run(input, r);
            fill_fresh(t2.into_iter().zip(v2), &mut ts, &mut vals);
            range_mixed(ctx, id, out_id, &ts, &vals, &hs, s, &mut resets, &mut out)?;
            continue;
        }
        fill_fresh(
            input.ts[r.clone()]
                .iter()
                .copied()
                .zip(input.vals[r].iter().copied()),
            &mut ts,
            &mut vals,
        );
        range_one(ctx, id, out_id, &ts, &vals, s, &mut resets, &mut out)?;
    }
    Ok(out)
}

/// The room and per-series kernel of a range function read straight from storage.
pub(super) fn range_reader(s: &RangeSpec) -> (Room, Arc<SeriesKernel>) {
    let room = if s.func == RangeFn::Raw {
        Room::Samples
    } else {
        Room::Steps(s.grid.len())
    };
    let s = s.clone();
    let kernel: Arc<SeriesKernel> = Arc::new(move |ctx, id, out_id, samples, hists, sc, out| {
        fill_fresh(samples.iter().copied(), &mut sc.ts, &mut sc.vals);
        if !hists.is_empty() {
            return range_mixed(
                ctx,
                id,
                out_id,
                &sc.ts,
                &sc.vals,
                hists,
                &s,
                &mut sc.resets,
                out,
            );
        }
        if sc.ts.is_empty() {
            return Ok(());
        }
        range_one(ctx, id, out_id, &sc.ts, &sc.vals, &s, &mut sc.resets, out)
    });
    (room, kernel)
}
