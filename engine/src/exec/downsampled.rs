//! Range functions answered from downsampled data (issue #27): `rate`, `increase`,
//! `count/sum/min/max_over_time` over a range that is a whole number of windows of a
//! downsampled resolution, at steps (and offset, `@`) on that resolution's grid, read the
//! per-window aggregates ([`strata_storage::downsample`]) instead of the raw samples: each
//! step's window `(t − range, t]` is then exactly a run of resolution windows, whose
//! aggregates fold into the values the function needs (count, sum, min, max, first and
//! last sample, counter-reset corrections). The answers are the raw data's:
//! `count/min/max_over_time` bit for bit, `rate`/`increase` bit for bit unless a window
//! holds several counter resets of non-integer values (their corrections are added in a
//! different order), `sum_over_time` within float rounding of a compensated sum (exact for
//! integer values).
//!
//! The coarsest such resolution with downsampled blocks in the range answers, within the
//! query's `max_source_resolution`; anything else (other functions, `anchored`/`smoothed`,
//! unaligned steps, histograms) reads raw data. The resolution used is noted as an info of
//! the query.

use strata_storage::downsample::{Aggregate, Fold, RESOLUTIONS, resolution_name};

use super::select::{RangeSpec, counter_note};
use crate::error::Result;
use crate::functions::range::{self, RangeFn, Window};
use crate::model::{QueryContext, Rows};
use crate::plan::Extend;

/// Functions answered from aggregates.
fn exact(f: RangeFn) -> bool {
    matches!(
        f,
        RangeFn::Rate
            | RangeFn::Increase
            | RangeFn::CountOverTime
            | RangeFn::SumOverTime
            | RangeFn::MinOverTime
            | RangeFn::MaxOverTime
    )
}

/// The resolution a read of `s` over `[mint, maxt]` answers from, if any.
pub(super) fn choose(ctx: &QueryContext, s: &RangeSpec, mint: i64, maxt: i64) -> Option<i64> {
    if !exact(s.func) || s.ext != Extend::None || s.per_step.is_some() {
        return None;
    }
    RESOLUTIONS.into_iter().rev().find(|&res| {
        let aligned = |x: i64| x.rem_euclid(res) == 0;
        res <= ctx.params.max_source_resolution
            && aligned(s.width)
            && s.width > 0
            && aligned(s.offset)
            && match s.at {
                Some(at) => aligned(at),
                None => aligned(s.grid.start) && (s.grid.len() <= 1 || aligned(s.grid.step)),
            }
            && ctx.db.has_downsampled(res, mint, maxt)
    })
}

/// The window ends `[first, last]` the steps of `s` read.
pub(super) fn window_ends(s: &RangeSpec, res: i64) -> (i64, i64) {
    let refs = |t: i64| s.at.unwrap_or(t) - s.offset;
    let (a, b) = (refs(s.grid.start), refs(s.grid.end.max(s.grid.start)));
    let (lo, hi) = (a.min(b), a.max(b));
    (lo - s.width + res, hi)
}

/// Runs the function of `s` over one series' aggregates into `out`.
pub(super) fn eval_series(
    ctx: &QueryContext,
    (id, out_id): (u32, u32),
    windows: &[Aggregate],
    s: &RangeSpec,
    out: &mut Rows,
) -> Result<()> {
    if windows.is_empty() {
        return Ok(());
    }
    let before = out.len();
    let ends: Vec<i64> = windows.iter().map(|w| w.end).collect();
    for (k, t) in s.grid.steps().enumerate() {
        if k % 65_536 == 65_535 {
            ctx.check_deadline()?;
        }
        let rf = s.at.unwrap_or(t) - s.offset;
        let a = ends.partition_point(|&e| e <= rf - s.width);
        let b = ends.partition_point(|&e| e <= rf);
        if a >= b {
            continue;
        }
        let mut f = Fold::new(&windows[a]);
        for w in &windows[a + 1..b] {
            f.push(w);
        }
        let g = f.get();
        let win = Window {
            t,
            lo: rf - s.width,
            hi: rf,
            p0: s.p[0],
            p1: s.p[1],
            no_resets: false,
        };
        let v = match s.func {
            RangeFn::CountOverTime => Some(f64::from(g.count)),
            RangeFn::SumOverTime => Some(g.sum),
            RangeFn::MinOverTime => Some(g.min),
            RangeFn::MaxOverTime => Some(g.max),
            RangeFn::Rate | RangeFn::Increase if g.count >= 2 => {
                let r = g.last_v - g.first_v + g.counter_correction;
                Some(range::extrapolate(
                    (g.first_t, g.first_v),
                    (g.last_t, g.count as usize),
                    r,
                    &win,
                    true,
                    s.func == RangeFn::Rate,
                ))
            }
            _ => None,
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

/// Notes which resolution answered.
pub(super) fn note(ctx: &QueryContext, res: i64) {
    ctx.info(format!(
        "Strata info: answered from downsampled data at {} resolution (max_source_resolution=0s reads raw data)",
        resolution_name(res)
    ));
}
