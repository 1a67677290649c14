//! Step-wise reductions with fixed output: `scalar()`, `absent()` and classic
//! `histogram_quantile()`.

use datafusion::common::HashMap;

use strata_storage::{Label, Labels};

use super::scalar_values;
use crate::error::Result;
use crate::functions::histogram::{Bucket, bucket_fraction, bucket_quantile, parse_go_float};
use crate::functions::{format_g, format_value_label};
use crate::model::{Grid, QueryContext, Rows, SCALAR_SERIES};
use crate::plan::{HistKind, PromOp, ScalarArg};
use futures::FutureExt;
use futures::future::BoxFuture;

use super::node::{Io, Kernel, Output, with_inputs};

/// `scalar(v)`: the single value of each step, else NaN.
pub(super) fn scalar_of(ctx: &QueryContext, input: &Rows, grid: Grid) -> Result<Rows> {
    let _scratch = ctx.budget.hold(grid.len(), 12)?;
    let mut out = Rows::charged(&ctx.budget, grid.len())?;
    let mut count = vec![0u32; grid.len()];
    let mut val = vec![f64::NAN; grid.len()];
    for k in 0..input.len() {
        // `scalar()` reads float samples only.
        if input.hist(k).is_some() {
            continue;
        }
        if let Some(i) = grid.index(input.ts[k]) {
            count[i] += 1;
            val[i] = input.vals[k];
        }
    }
    for (i, t) in grid.steps().enumerate() {
        out.push(
            SCALAR_SERIES,
            t,
            if count[i] == 1 { val[i] } else { f64::NAN },
        );
    }
    Ok(out)
}

/// `absent(v)`: 1 at each step where `v` is empty.
pub(super) fn absent(
    ctx: &QueryContext,
    input: &Rows,
    grid: Grid,
    labels: &[(String, String)],
) -> Result<Rows> {
    let _scratch = ctx.budget.hold_bytes(grid.len(), "absent()")?;
    let mut present = vec![false; grid.len()];
    for &t in &input.ts {
        if let Some(i) = grid.index(t) {
            present[i] = true;
        }
    }
    let id = ctx.registry.intern(
        Labels::from_pairs(labels.iter().map(|(a, b)| (a, b))),
        false,
    );
    let mut out = Rows::default();
    for (i, t) in grid.steps().enumerate() {
        if !present[i] {
            out.push_in(&ctx.budget, id, t, 1.0)?;
        }
    }
    Ok(out)
}

/// Go-style label value of a quantile (`0.0`, `0.25`, `1.0`): integers get `.0`.
fn quantile_label(q: f64) -> String {
    let s = format_value_label(q);
    if q.is_finite() && !s.contains(['.', 'e']) {
        format!("{s}.0")
    } else {
        s
    }
}

/// The labels without `__name__`.
fn without_name(l: &Labels) -> Labels {
    Labels::from_labels(
        l.iter()
            .filter(|x| &*x.name != "__name__")
            .cloned()
            .collect(),
    )
}

/// `histogram_quantile`, `histogram_quantiles` and `histogram_fraction` over classic `le`
/// buckets.
pub(super) fn histogram(
    ctx: &QueryContext,
    grid: Grid,
    kind: &HistKind,
    args: &[ScalarArg],
    (q_pos, v_pos): (&str, &str),
    mut inputs: Vec<Rows>,
) -> Result<Rows> {
    let _args_held = ctx.budget.hold(args.len().saturating_mul(grid.len()), 8)?;
    let a: Vec<Vec<f64>> = args
        .iter()
        .map(|&x| scalar_values(x, &inputs, grid))
        .collect();
    if !matches!(kind, HistKind::Fraction) {
        for qs in &a {
            if let Some(&q) = qs.iter().find(|q| q.is_nan() || !(0.0..=1.0).contains(*q)) {
                ctx.warn(format!(
                    "PromQL warning: quantile value should be between 0 and 1, got {}{q_pos}",
                    format_g(q)
                ));
            }
        }
    }
    let mut input = std::mem::take(&mut inputs[0]);
    input.sort_by_step(&grid, &ctx.budget)?;
    let mut out = Rows::default();
    // Native histograms: each sample on its own, its name dropped. Classic buckets whose
    // series (without `le`) is also a native histogram at that step are dropped with a
    // warning, as Prometheus does.
    let mut native_at: HashMap<(Labels, i64), ()> = HashMap::new();
    if input.has_histograms() {
        let hists = input.take_histograms();
        // Series (without `le` and the name) that have classic buckets, per time.
        let mut classic: HashMap<(Labels, i64), ()> = HashMap::new();
        for k in 0..input.len() {
            let l = ctx.registry.get(input.series[k]).labels;
            if l.get("le").is_some() {
                let rest = l.iter().filter(|x| &*x.name != "le").cloned().collect();
                classic.insert((without_name(&Labels::from_labels(rest)), input.ts[k]), ());
            }
        }
        for (s, t, h) in hists {
            let step = grid.index(t).unwrap_or(0);
            let meta = ctx.registry.get(s);
            let name = meta.labels.metric_name().to_string();
            let key = (without_name(&meta.labels), t);
            if classic.contains_key(&key) {
                // Reported with the classic group, which is dropped too.
                native_at.insert(key, ());
                continue;
            }
            let note = |n: strata_vocab::histogram::stats::QuantileNote| {
                ctx.info(format!("PromQL info: {n} for metric name {name:?}{v_pos}"));
            };
            match kind {
                HistKind::Fraction => {
                    let (v, n) =
                        strata_vocab::histogram::stats::fraction(a[0][step], a[1][step], &h);
                    n.map(note);
                    out.push_in(&ctx.budget, ctx.registry.with_drop_name(s), t, v)?;
                }
                HistKind::Quantile => {
                    let (v, n) = strata_vocab::histogram::stats::quantile(a[0][step], &h);
                    n.map(note);
                    out.push_in(&ctx.budget, ctx.registry.with_drop_name(s), t, v)?;
                }
                HistKind::Quantiles(label) => {
                    for qs in &a {
                        let q = qs[step];
                        let (v, n) = strata_vocab::histogram::stats::quantile(q, &h);
                        n.map(note);
                        let mut pairs: Vec<Label> = meta
                            .labels
                            .iter()
                            .filter(|x| *x.name != **label)
                            .cloned()
                            .collect();
                        pairs.push(Label {
                            name: label.as_str().into(),
                            value: quantile_label(q).into(),
                        });
                        let id = ctx.registry.intern(Labels::from_labels(pairs), true);
                        out.push_in(&ctx.budget, id, t, v)?;
                    }
                }
            }
        }
    }
    // Per input series: (group, upper bound), or None when `le` is bad.
    let mut info: HashMap<u32, Option<(u32, f64)>> = HashMap::new();
    let mut group_ids: HashMap<Labels, u32> = HashMap::new();
    let mut groups: Vec<(Labels, String)> = Vec::new();
    let mut out_ids: HashMap<(u32, usize), u32> = HashMap::new();
    for (t, run) in input.step_runs() {
        let step = grid.index(t).unwrap_or(0);
        let mut buckets: Vec<Vec<Bucket>> = Vec::new();
        let mut order: Vec<u32> = Vec::new();
        for k in run {
            let s = input.series[k];
            let entry = *info.entry(s).or_insert_with(|| {
                let meta = ctx.registry.get(s);
                let le = meta.labels.get("le").unwrap_or("");
                match parse_go_float(le) {
                    Some(ub) => {
                        let rest: Vec<Label> = meta.labels.iter().filter(|l| &*l.name != "le").cloned().collect();
                        let gl = Labels::from_labels(rest);
                        let n = groups.len() as u32;
                        let g = *group_ids.entry(gl.clone()).or_insert(n);
                        if g == n {
                            let name = gl.metric_name().to_string();
                            groups.push((gl, name));
                        }
                        Some((g, ub))
                    }
                    None => {
                        ctx.warn(format!(
                            "PromQL warning: bucket label \"le\" is missing or has a malformed value of {:?} for metric name {:?}{v_pos}",
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
            let b = &buckets[g as usize];
            let name = &groups[g as usize].1;
            if !native_at.is_empty()
                && native_at.contains_key(&(without_name(&groups[g as usize].0), t))
            {
                ctx.warn(format!(
                    "PromQL warning: vector contains a mix of classic and native histograms for metric name {name:?}{v_pos}"
                ));
                continue;
            }
            let mut id_of = |variant: usize, label: Option<(&str, String)>| -> u32 {
                *out_ids.entry((g, variant)).or_insert_with(|| {
                    let mut l = groups[g as usize].0.clone();
                    if let Some((n, v)) = label {
                        let mut pairs: Vec<Label> =
                            l.iter().filter(|x| &*x.name != n).cloned().collect();
                        pairs.push(Label {
                            name: n.into(),
                            value: v.into(),
                        });
                        l = Labels::from_labels(pairs);
                    }
                    ctx.registry.intern(l, true)
                })
            };
            match kind {
                HistKind::Fraction => {
                    let v = bucket_fraction(a[0][step], a[1][step], &mut b.clone());
                    let id = id_of(0, None);
                    out.push_in(&ctx.budget, id, t, v)?;
                }
                HistKind::Quantile | HistKind::Quantiles(_) => {
                    for (qi, qs) in a.iter().enumerate() {
                        let q = qs[step];
                        let (v, forced) = bucket_quantile(q, &mut b.clone());
                        if forced {
                            ctx.info(format!(
                                "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {name:?}{v_pos}"
                            ));
                        }
                        let id = match kind {
                            HistKind::Quantiles(label) => {
                                id_of(qi, Some((label, quantile_label(q))))
                            }
                            _ => id_of(0, None),
                        };
                        out.push_in(&ctx.budget, id, t, v)?;
                    }
                }
            }
        }
    }
    Ok(out)
}

/// `PromScalar`, `PromAbsent`, `PromHistogram`: reductions of each step of one vector to
/// a fixed output.
#[derive(Debug)]
pub(crate) struct StepKernel {
    pub(super) op: PromOp,
}

impl Kernel for StepKernel {
    fn op(&self) -> &PromOp {
        &self.op
    }

    fn accepts_histograms(&self) -> bool {
        true
    }

    fn run<'a>(&'a self, io: &'a Io, _partition: usize) -> BoxFuture<'a, Result<Output>> {
        async move {
            let ctx = &io.ctx;
            with_inputs(io, |inputs| match &self.op {
                PromOp::ScalarOf { grid } => scalar_of(ctx, &inputs[0], *grid),
                PromOp::Absent { grid, labels } => absent(ctx, &inputs[0], *grid, labels),
                PromOp::Histogram {
                    grid,
                    kind,
                    args,
                    q_pos,
                    v_pos,
                } => histogram(
                    ctx,
                    *grid,
                    kind,
                    args,
                    (q_pos, v_pos),
                    std::mem::take(inputs),
                ),
                _ => Ok(Rows::default()),
            })
            .await
        }
        .boxed()
    }
}
