//! Selector, instant-vector lookup (lookback, staleness) and range-window kernels. When an
//! instant or range node reads a selector directly, the two are fused: each series goes
//! from storage through the kernel without materialising the raw samples as a relation,
//! and a large selection is cut into label ranges read and processed on every worker
//! ([`read_parts`]), each holding only its own raw samples.

use std::sync::Arc;

use datafusion::common::HashSet;
use futures::StreamExt;
use strata_storage::{Labels, MatchOp, Matcher, SeriesRange, SeriesSamples};

use crate::error::Result;
use crate::functions::format_g;
use crate::functions::range::{self, RangeFn, Window};
use crate::memory::{Budget, POINT_BYTES, SAMPLE_BYTES};
use crate::model::{Grid, QueryContext, Rows, is_stale};
use crate::plan::Extend;

/// Where an instant lookup happens.
#[derive(Clone, Copy)]
pub(super) struct InstantSpec {
    pub grid: Grid,
    pub lookback: i64,
    pub offset: i64,
    pub at: Option<i64>,
    pub sample_ts: bool,
}

/// What a range node computes.
#[derive(Clone)]
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
}

/// Compiles `(name, op, value)` matchers of a plan node into storage matchers.
pub(super) fn storage_matchers(matchers: &[(String, String, String)]) -> Result<Vec<Matcher>> {
    Ok(matchers
        .iter()
        .map(|(n, op, v)| {
            let op = match op.as_str() {
                "=" => MatchOp::Equal,
                "!=" => MatchOp::NotEqual,
                "=~" => MatchOp::RegexMatch,
                _ => MatchOp::RegexNoMatch,
            };
            Matcher::new(op, n.clone(), v.clone())
        })
        .collect::<std::result::Result<Vec<_>, _>>()?)
}

/// Reads the series matching `matchers` with samples in `[mint, maxt]`, charging them to
/// the query's budget (the caller gives them back once it has turned them into rows).
async fn read(
    ctx: &QueryContext,
    matchers: &[(String, String, String)],
    mint: i64,
    maxt: i64,
) -> Result<Vec<SeriesSamples>> {
    let ms = storage_matchers(matchers)?;
    if mint > maxt {
        return Ok(Vec::new());
    }
    let series = ctx.db.select(&ms, mint, maxt).await?;
    let total: usize = series.iter().map(|s| s.samples.len()).sum();
    ctx.budget.charge(total, SAMPLE_BYTES)?;
    Ok(series)
}

/// Raw samples of matching series as a relation; ids are interned in label order.
pub(super) async fn selector(
    ctx: &QueryContext,
    matchers: &[(String, String, String)],
    mint: i64,
    maxt: i64,
) -> Result<Rows> {
    let series = read(ctx, matchers, mint, maxt).await?;
    let total: usize = series.iter().map(|s| s.samples.len()).sum();
    let mut out = Rows::charged(&ctx.budget, total)?;
    for s in series {
        if s.samples.is_empty() {
            continue;
        }
        let id = ctx.registry.intern(s.labels, false);
        for (t, v) in s.samples {
            out.push(id, t, v);
        }
    }
    ctx.budget.release(total, SAMPLE_BYTES);
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

/// Instant lookups over a relation of raw samples.
pub(super) fn instant(ctx: &QueryContext, input: &mut Rows, s: &InstantSpec) -> Result<Rows> {
    ensure_grouped(input, &ctx.budget)?;
    let mut out = Rows::default();
    for (n, (id, r)) in input.series_runs().enumerate() {
        if n % 256 == 0 {
            ctx.check_deadline()?;
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

/// Fused selector + instant lookup.
pub(super) async fn select_instant(
    ctx: &Arc<QueryContext>,
    matchers: &[(String, String, String)],
    mint: i64,
    maxt: i64,
    s: &InstantSpec,
) -> Result<Rows> {
    let room = Room::Steps(s.grid.len());
    read_parts(ctx, matchers, mint, maxt, false, room, instant_kernel(*s)).await
}

/// The per-series kernel of an instant lookup.
fn instant_kernel(s: InstantSpec) -> Arc<SeriesKernel> {
    Arc::new(move |ctx, id, _out_id, samples, sc, out| {
        sc.split(samples);
        instant_one(&ctx.budget, id, &sc.ts, &sc.vals, &s, out)
    })
}

/// Reusable buffers of a kernel.
#[derive(Default)]
pub(super) struct Scratch {
    ts: Vec<i64>,
    vals: Vec<f64>,
    resets: Vec<u32>,
}

impl Scratch {
    /// Takes one series' samples apart into the time and value buffers.
    fn split(&mut self, samples: &[(i64, f64)]) {
        self.ts.clear();
        self.vals.clear();
        self.ts.extend(samples.iter().map(|x| x.0));
        self.vals.extend(samples.iter().map(|x| x.1));
    }
}

/// The per-series work of a fused node: context, series id, the id its output goes under
/// (the name-dropped twin where the function drops the name), its samples, scratch, output.
pub(super) type SeriesKernel = dyn Fn(&QueryContext, u32, u32, &[(i64, f64)], &mut Scratch, &mut Rows) -> Result<()>
    + Send
    + Sync;

/// The most rows a kernel emits, for room reserved (not charged) before it runs: a dense
/// output is then written without reallocating.
#[derive(Clone, Copy)]
pub(super) enum Room {
    /// At most this many per series (one per step).
    Steps(usize),
    /// At most one per raw sample.
    Samples,
}

/// Fewest series worth a part of their own.
const MIN_PART_SERIES: usize = 16;
/// Estimated samples (see [`read_parts`]) worth a part of their own.
const PART_WORK: usize = 50_000;

/// The series of a selection, sorted, with their ids.
struct Interned {
    labels: Vec<Labels>,
    ids: Vec<(u32, u32)>,
}

/// A selection listed and cut into parts: its matchers, its series with their ids, and
/// the label ranges read concurrently.
struct Selection {
    ms: Arc<Vec<Matcher>>,
    known: Arc<Interned>,
    ranges: Vec<SeriesRange>,
    /// The runtime's workers: parts read at a time.
    workers: usize,
}

impl Selection {
    /// Lists the selection's series (interning their ids in label order, with their
    /// name-dropped twins when `drop_name`) and cuts it into label ranges holding about
    /// [`PART_WORK`] estimated samples each, at most two per worker.
    async fn plan(
        ctx: &QueryContext,
        matchers: &[(String, String, String)],
        mint: i64,
        maxt: i64,
        drop_name: bool,
    ) -> Result<Selection> {
        let ms = Arc::new(storage_matchers(matchers)?);
        let labels = ctx.db.series(&ms, mint, maxt).await?;
        let ids = ctx.registry.intern_all(&labels, drop_name);
        let workers = tokio::runtime::Handle::current()
            .metrics()
            .num_workers()
            .max(1);
        // Work estimate: samples at a 15s interval plus a per-series cost (labels, lookups).
        let per_series = 20 + (maxt.saturating_sub(mint) / 15_000).max(0) as usize;
        let parts = (labels.len().saturating_mul(per_series) / PART_WORK)
            .min(labels.len() / MIN_PART_SERIES)
            .min(2 * workers)
            .max(1);
        let parts = if workers > 1 { parts } else { 1 };
        let ranges = SeriesRange::split(&labels, parts);
        Ok(Selection {
            ms,
            known: Arc::new(Interned { labels, ids }),
            ranges,
            workers,
        })
    }

    /// The selection as one part.
    fn whole(self, ctx: &Arc<QueryContext>, mint: i64, maxt: i64, drop_name: bool) -> Part {
        Part {
            ctx: ctx.clone(),
            ms: self.ms,
            mint,
            maxt,
            range: SeriesRange::default(),
            known: self.known,
            drop_name,
        }
    }
}

/// Reads the selection and runs `kernel` over each series, in parts: the matching series are
/// cut into label ranges read and processed concurrently (one task per part, as many at a
/// time as the runtime has workers), and the outputs are concatenated in label order, so
/// the result is the one a single pass gives. Series ids are interned in label order first
/// (with their name-dropped twins when `drop_name`), so ids follow label order too.
async fn read_parts(
    ctx: &Arc<QueryContext>,
    matchers: &[(String, String, String)],
    mint: i64,
    maxt: i64,
    drop_name: bool,
    room: Room,
    kernel: Arc<SeriesKernel>,
) -> Result<Rows> {
    if mint > maxt {
        return Ok(Rows::default());
    }
    let sel = Selection::plan(ctx, matchers, mint, maxt, drop_name).await?;
    run_parts(ctx, sel, mint, maxt, drop_name, room, kernel).await
}

/// Runs `kernel` over the parts of a planned selection (see [`read_parts`]).
async fn run_parts(
    ctx: &Arc<QueryContext>,
    sel: Selection,
    mint: i64,
    maxt: i64,
    drop_name: bool,
    room: Room,
    kernel: Arc<SeriesKernel>,
) -> Result<Rows> {
    if sel.ranges.len() <= 1 {
        return sel
            .whole(ctx, mint, maxt, drop_name)
            .run(room, kernel)
            .await;
    }
    let Selection {
        ms,
        known,
        ranges,
        workers,
    } = sel;
    let mut results = futures::stream::iter(ranges)
        .map(|range| {
            let part = Part {
                ctx: ctx.clone(),
                ms: ms.clone(),
                mint,
                maxt,
                range,
                known: known.clone(),
                drop_name,
            };
            super::Spawned::new(part.run(room, kernel.clone()))
        })
        .buffered(workers);
    let mut done = Vec::new();
    while let Some(r) = results.next().await {
        done.push(
            r.map_err(|e| crate::error::EngineError::Exec(format!("query task failed: {e}")))??,
        );
    }
    // One allocation for the concatenation; each part is given back once copied.
    let mut out = Rows::charged(&ctx.budget, done.iter().map(Rows::len).sum())?;
    for rows in done {
        let room = rows.charged_rows();
        out.append(rows);
        ctx.budget.release(room, POINT_BYTES);
    }
    Ok(out)
}

/// Fused selector + instant lookup + aggregation (`max by (job) (metric{…})`). A selection
/// read in one part folds each series' values into the aggregation as it is read, so the
/// instant vector never exists as rows (building them, handing them on and walking them
/// again was a fifth of a small dashboard query's CPU); a larger selection is read in
/// parts, as [`select_instant`] does, and its rows are returned for the caller to aggregate
/// (`None`: everything went into `fold`).
pub(super) async fn select_instant_fold(
    ctx: &Arc<QueryContext>,
    matchers: &[(String, String, String)],
    mint: i64,
    maxt: i64,
    s: &InstantSpec,
    fold: &mut super::aggregate::Fold<'_>,
) -> Result<Option<Rows>> {
    if mint > maxt {
        return Ok(None);
    }
    let sel = Selection::plan(ctx, matchers, mint, maxt, false).await?;
    let small = sel.known.labels.len().saturating_mul(s.grid.len()) <= 1 << 20;
    if sel.ranges.len() > 1 || !small {
        let kernel = instant_kernel(*s);
        let room = Room::Steps(s.grid.len());
        return Ok(Some(
            run_parts(ctx, sel, mint, maxt, false, room, kernel).await?,
        ));
    }
    let part = sel.whole(ctx, mint, maxt, false);
    let (series, raw) = part.read().await?;
    let mut sc = Scratch::default();
    let mut one = Rows::charged(&ctx.budget, s.grid.len())?;
    part.walk(series, |id, _out_id, samples| {
        sc.split(samples);
        one.clear();
        instant_one(&ctx.budget, id, &sc.ts, &sc.vals, s, &mut one)?;
        if !one.is_empty() {
            let g = fold.group_of(id);
            for (&t, &v) in one.ts.iter().zip(&one.vals) {
                fold.add_to_group(g, t, v)?;
            }
        }
        Ok(())
    })?;
    ctx.budget.release(raw, SAMPLE_BYTES);
    one.release_to(&ctx.budget);
    Ok(None)
}

/// One part of [`read_parts`].
struct Part {
    ctx: Arc<QueryContext>,
    ms: Arc<Vec<Matcher>>,
    mint: i64,
    maxt: i64,
    range: SeriesRange,
    known: Arc<Interned>,
    drop_name: bool,
}

impl Part {
    async fn run(self, room: Room, kernel: Arc<SeriesKernel>) -> Result<Rows> {
        let (series, raw) = self.read().await?;
        // Room for the most the kernel can emit; rows are charged as they are written.
        let bound = match room {
            Room::Steps(n) => series.len().saturating_mul(n),
            Room::Samples => raw,
        };
        let ctx = self.ctx.clone();
        let mut out = Rows::with_room(&ctx.budget, bound);
        let mut sc = Scratch::default();
        self.walk(series, |id, out_id, samples| {
            kernel(&ctx, id, out_id, samples, &mut sc, &mut out)
        })?;
        ctx.budget.release(raw, SAMPLE_BYTES);
        out.settle(&ctx.budget);
        Ok(out)
    }

    /// The part's series with their samples and how many there are, charged to the
    /// query's budget (given back by the caller once walked).
    async fn read(&self) -> Result<(Vec<SeriesSamples>, usize)> {
        let series = self
            .ctx
            .db
            .select_in(&self.ms, self.mint, self.maxt, Some(&self.range))
            .await?;
        let total: usize = series.iter().map(|s| s.samples.len()).sum();
        self.ctx.budget.charge(total, SAMPLE_BYTES)?;
        Ok((series, total))
    }

    /// Calls `f` with each series' id, output id and samples, in label order.
    fn walk(
        &self,
        series: Vec<SeriesSamples>,
        mut f: impl FnMut(u32, u32, &[(i64, f64)]) -> Result<()>,
    ) -> Result<()> {
        let ctx = &self.ctx;
        let known = &self.known.labels;
        // Both lists are in label order: walk them together.
        let mut k = self
            .range
            .after
            .as_ref()
            .map_or(0, |a| known.partition_point(|l| l <= a));
        for (n, ser) in series.into_iter().enumerate() {
            if n % 256 == 0 {
                ctx.check_deadline()?;
            }
            if ser.samples.is_empty() {
                continue;
            }
            while k < known.len() && known[k] < ser.labels {
                k += 1;
            }
            let (id, out_id) = if k < known.len() && known[k] == ser.labels {
                self.known.ids[k]
            } else {
                // Created after the series were listed.
                let id = ctx.registry.intern(ser.labels, false);
                let out_id = if self.drop_name {
                    ctx.registry.with_drop_name(id)
                } else {
                    id
                };
                (id, out_id)
            };
            f(id, out_id, &ser.samples)?;
        }
        Ok(())
    }
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
        let w = Window {
            t,
            lo: rf - s.width,
            hi: rf,
            p0: s.p[0],
            p1: s.p[1],
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
        let meta = ctx.registry.get(id);
        let name = meta.labels.metric_name();
        if !name.is_empty()
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
    Ok(())
}

fn quantile_warning(ctx: &QueryContext, s: &RangeSpec) {
    let q = s.p[0];
    if s.func == RangeFn::QuantileOverTime && (q.is_nan() || !(0.0..=1.0).contains(&q)) {
        ctx.warn(format!(
            "PromQL warning: quantile value should be between 0 and 1, got {}{}",
            format_g(q),
            s.pos
        ));
    }
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
    quantile_warning(ctx, s);
    ensure_grouped(input, &ctx.budget)?;
    let mut out = Rows::default();
    let (mut ts, mut vals, mut resets) = (Vec::new(), Vec::new(), Vec::new());
    for (n, (id, r)) in input.series_runs().enumerate() {
        if n % 256 == 0 {
            ctx.check_deadline()?;
        }
        fill_fresh(
            input.ts[r.clone()]
                .iter()
                .copied()
                .zip(input.vals[r].iter().copied()),
            &mut ts,
            &mut vals,
        );
        let out_id = if s.func.keeps_name() {
            id
        } else {
            ctx.registry.with_drop_name(id)
        };
        range_one(ctx, id, out_id, &ts, &vals, s, &mut resets, &mut out)?;
    }
    Ok(out)
}

/// Fused selector + range function.
pub(super) async fn select_range(
    ctx: &Arc<QueryContext>,
    matchers: &[(String, String, String)],
    mint: i64,
    maxt: i64,
    s: &RangeSpec,
) -> Result<Rows> {
    quantile_warning(ctx, s);
    let drop_name = !s.func.keeps_name();
    let room = if s.func == RangeFn::Raw {
        Room::Samples
    } else {
        Room::Steps(s.grid.len())
    };
    let s = s.clone();
    let kernel: Arc<SeriesKernel> = Arc::new(move |ctx, id, out_id, samples, sc, out| {
        fill_fresh(samples.iter().copied(), &mut sc.ts, &mut sc.vals);
        if sc.ts.is_empty() {
            return Ok(());
        }
        range_one(ctx, id, out_id, &sc.ts, &sc.vals, &s, &mut sc.resets, out)
    });
    read_parts(ctx, matchers, mint, maxt, drop_name, room, kernel).await
}
