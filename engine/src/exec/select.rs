//! Selector, instant-vector lookup (lookback, staleness) and range-window kernels.

use std::collections::HashSet;

use strata_storage::{MatchOp, Matcher};

use crate::error::Result;
use crate::functions::format_g;
use crate::functions::range::{self, RangeFn, Window};
use crate::model::{Grid, QueryContext, Rows, is_stale};

/// Reads the raw samples of matching series; ids are interned in label order.
pub(super) async fn selector(
    ctx: &QueryContext,
    matchers: &[(String, String, String)],
    mint: i64,
    maxt: i64,
) -> Result<Rows> {
    let ms = matchers
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
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if mint > maxt {
        return Ok(Rows::default());
    }
    let series = ctx.db.select(&ms, mint, maxt).await?;
    let total: usize = series.iter().map(|s| s.samples.len()).sum();
    ctx.add_samples(total as u64)?;
    let mut out = Rows::with_capacity(total);
    for s in series {
        if s.samples.is_empty() {
            continue;
        }
        let id = ctx.registry.intern(s.labels, false);
        for (t, v) in s.samples {
            out.push(id, t, v);
        }
    }
    Ok(out)
}

/// Makes every series one contiguous run (sorting only when needed).
fn ensure_grouped(rows: &mut Rows) {
    let mut seen = HashSet::new();
    let mut sorted_ts = true;
    for (id, r) in rows.series_runs() {
        if !seen.insert(id) {
            rows.sort_by_series();
            return;
        }
        if rows.ts[r.clone()].windows(2).any(|w| w[0] > w[1]) {
            sorted_ts = false;
        }
    }
    if !sorted_ts {
        rows.sort_by_series();
    }
}

/// The instant-vector value of each series at each step (Prometheus 3 left-open lookback).
pub(super) fn instant(
    input: &Rows,
    grid: Grid,
    lookback: i64,
    offset: i64,
    at: Option<i64>,
    sample_ts: bool,
) -> Rows {
    let mut out = Rows::with_capacity(input.len().min(grid.len() * 64));
    for (id, r) in input.series_runs() {
        let ts = &input.ts[r.clone()];
        let vals = &input.vals[r];
        let mut j = 0;
        for t in grid.steps() {
            let rf = at.unwrap_or(t) - offset;
            while j < ts.len() && ts[j] <= rf {
                j += 1;
            }
            if j == 0 {
                continue;
            }
            let (st, v) = (ts[j - 1], vals[j - 1]);
            if st <= rf - lookback || is_stale(v) {
                continue;
            }
            out.push(id, t, if sample_ts { st as f64 / 1e3 } else { v });
        }
    }
    out
}

/// Applies a range function over the windows `(ref − range, ref]` of each series.
#[allow(clippy::too_many_arguments)]
pub(super) fn range(
    ctx: &QueryContext,
    input: &mut Rows,
    grid: Grid,
    width: i64,
    offset: i64,
    at: Option<i64>,
    func: RangeFn,
    p: [f64; 2],
    (counter_check, pos): (bool, &str),
) -> Result<Rows> {
    ensure_grouped(input);
    let mut out = Rows::with_capacity(input.len().min(grid.len() * 64));
    let mut ts: Vec<i64> = Vec::new();
    let mut vals: Vec<f64> = Vec::new();
    for (id, r) in input.series_runs() {
        ts.clear();
        vals.clear();
        for k in r {
            if !is_stale(input.vals[k]) {
                ts.push(input.ts[k]);
                vals.push(input.vals[k]);
            }
        }
        if ts.is_empty() {
            continue;
        }
        let out_id = if func.keeps_name() {
            id
        } else {
            ctx.registry.with_drop_name(id)
        };
        let before = out.len();
        let (mut lo, mut hi) = (0usize, 0usize);
        for t in grid.steps() {
            let rf = at.unwrap_or(t) - offset;
            while hi < ts.len() && ts[hi] <= rf {
                hi += 1;
            }
            while lo < hi && ts[lo] <= rf - width {
                lo += 1;
            }
            if lo == hi {
                continue;
            }
            if func == RangeFn::Raw {
                for k in lo..hi {
                    out.push(id, ts[k], vals[k]);
                }
                continue;
            }
            let w = Window {
                t,
                lo: rf - width,
                hi: rf,
                p0: p[0],
                p1: p[1],
            };
            if let Some(v) = range::eval(func, &ts[lo..hi], &vals[lo..hi], &w) {
                out.push(out_id, t, v);
            }
        }
        if counter_check && out.len() > before {
            let meta = ctx.registry.get(id);
            let name = meta.labels.metric_name();
            if !name.is_empty()
                && !["_total", "_sum", "_count", "_bucket"]
                    .iter()
                    .any(|s| name.ends_with(s))
            {
                ctx.info(format!(
                    "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {name:?}{pos}"
                ));
            }
        }
    }
    if func == RangeFn::QuantileOverTime && (p[0].is_nan() || !(0.0..=1.0).contains(&p[0])) {
        ctx.warn(format!(
            "PromQL warning: quantile value should be between 0 and 1, got {}{pos}",
            format_g(p[0])
        ));
    }
    Ok(out)
}
