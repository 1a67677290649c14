//! Step-wise reductions with fixed output: `scalar()`, `absent()` and classic
//! `histogram_quantile()`.

use std::collections::HashMap;

use strata_storage::{Label, Labels};

use super::scalar_values;
use crate::error::Result;
use crate::functions::format_g;
use crate::functions::histogram::{Bucket, bucket_quantile, parse_go_float};
use crate::model::{Grid, QueryContext, Rows, SCALAR_SERIES};
use crate::plan::ScalarArg;

/// `scalar(v)`: the single value of each step, else NaN.
pub(super) fn scalar_of(input: &Rows, grid: Grid) -> Rows {
    let mut count = vec![0u32; grid.len()];
    let mut val = vec![f64::NAN; grid.len()];
    for k in 0..input.len() {
        if let Some(i) = grid.index(input.ts[k]) {
            count[i] += 1;
            val[i] = input.vals[k];
        }
    }
    let mut out = Rows::with_capacity(grid.len());
    for (i, t) in grid.steps().enumerate() {
        out.push(SCALAR_SERIES, t, if count[i] == 1 { val[i] } else { f64::NAN });
    }
    out
}

/// `absent(v)`: 1 at each step where `v` is empty.
pub(super) fn absent(ctx: &QueryContext, input: &Rows, grid: Grid, labels: &[(String, String)]) -> Rows {
    let mut present = vec![false; grid.len()];
    for &t in &input.ts {
        if let Some(i) = grid.index(t) {
            present[i] = true;
        }
    }
    let id = ctx.registry.intern(Labels::from_pairs(labels.iter().map(|(a, b)| (a, b))), false);
    let mut out = Rows::default();
    for (i, t) in grid.steps().enumerate() {
        if !present[i] {
            out.push(id, t, 1.0);
        }
    }
    out
}

/// `histogram_quantile(φ, v)` over classic `le` buckets.
pub(super) fn histogram_quantile(ctx: &QueryContext, grid: Grid, q: ScalarArg, mut inputs: Vec<Rows>) -> Result<Rows> {
    let qs = scalar_values(q, &inputs, grid);
    let mut input = std::mem::take(&mut inputs[0]);
    input.sort_by_time();
    // Per input series: (group id, upper bound) or None when `le` is bad.
    let mut info: HashMap<u32, Option<(u32, f64)>> = HashMap::new();
    let mut group_ids: HashMap<Labels, u32> = HashMap::new();
    let mut group_out: Vec<(u32, String)> = Vec::new();
    let mut out = Rows::default();
    let mut i = 0;
    let mut warned_q = false;
    while i < input.len() {
        let t = input.ts[i];
        let start = i;
        while i < input.len() && input.ts[i] == t {
            i += 1;
        }
        let phi = grid.index(t).map_or(f64::NAN, |k| qs[k]);
        if !warned_q && (phi.is_nan() || !(0.0..=1.0).contains(&phi)) {
            ctx.warn(format!(
                "PromQL warning: quantile value should be between 0 and 1, got {}",
                format_g(phi)
            ));
            warned_q = true;
        }
        let mut buckets: Vec<Vec<Bucket>> = Vec::new();
        let mut order: Vec<u32> = Vec::new();
        for k in start..i {
            let s = input.series[k];
            let entry = *info.entry(s).or_insert_with(|| {
                let meta = ctx.registry.get(s);
                let le = meta.labels.get("le").unwrap_or("");
                match parse_go_float(le) {
                    Some(ub) => {
                        let rest: Vec<Label> = meta.labels.iter().filter(|l| &*l.name != "le").cloned().collect();
                        let gl = Labels::from_labels(rest);
                        let n = group_out.len() as u32;
                        let g = *group_ids.entry(gl.clone()).or_insert(n);
                        if g == n {
                            let name = gl.metric_name().to_string();
                            group_out.push((ctx.registry.intern(gl, true), name));
                        }
                        Some((g, ub))
                    }
                    None => {
                        ctx.warn(format!(
                            "PromQL warning: bucket label \"le\" is missing or has a malformed value of {:?} for metric name {:?}",
                            le,
                            meta.labels.metric_name()
                        ));
                        None
                    }
                }
            });
            let Some((g, ub)) = entry else { continue };
            let g = g as usize;
            if buckets.len() <= g {
                buckets.resize(g + 1, Vec::new());
            }
            if buckets[g].is_empty() {
                order.push(g as u32);
            }
            buckets[g].push(Bucket {
                upper: ub,
                count: input.vals[k],
            });
        }
        for &g in &order {
            let b = &mut buckets[g as usize];
            let (v, forced) = bucket_quantile(phi, b);
            let (id, name) = &group_out[g as usize];
            if forced {
                ctx.info(format!(
                    "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {name:?}"
                ));
            }
            out.push(*id, t, v);
        }
    }
    Ok(out)
}
