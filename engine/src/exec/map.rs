//! Per-sample functions, vector ⊕ scalar arithmetic and the label functions.

use datafusion::common::{HashMap, HashSet};

use strata_storage::Labels;

use super::scalar_values;
use crate::error::{Result, exec_err};
use crate::functions::instant::{clamp, elem_binop, round};
use crate::functions::{go_max, go_min};
use crate::model::{Grid, QueryContext, Rows, SCALAR_SERIES};
use crate::plan::{MapFn, PromOp, ScalarArg};
use futures::FutureExt;
use futures::future::BoxFuture;

use super::node::{Io, Kernel, Output, with_inputs};

/// Output series id of an input series after a label-changing or value-only function.
struct IdMap<'a> {
    ctx: &'a QueryContext,
    cache: HashMap<u32, u32>,
}

impl IdMap<'_> {
    fn get(&mut self, id: u32, f: impl FnOnce(&QueryContext, u32) -> Result<u32>) -> Result<u32> {
        if let Some(o) = self.cache.get(&id) {
            return Ok(*o);
        }
        let o = f(self.ctx, id)?;
        self.cache.insert(id, o);
        Ok(o)
    }
}

fn drop_name(ctx: &QueryContext, id: u32) -> Result<u32> {
    Ok(if id == SCALAR_SERIES {
        id
    } else {
        ctx.registry.with_drop_name(id)
    })
}

fn set_label(labels: &Labels, name: &str, value: &str) -> Labels {
    let mut pairs: Vec<(String, String)> = labels
        .iter()
        .filter(|l| &*l.name != name)
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect();
    if !value.is_empty() {
        pairs.push((name.to_string(), value.to_string()));
    }
    Labels::from_pairs(pairs)
}

/// Runs `func` over input 0 with scalar arguments from the other inputs.
pub(super) fn map(
    ctx: &QueryContext,
    grid: Grid,
    func: &MapFn,
    args: &[ScalarArg],
    inputs: Vec<Rows>,
) -> Result<Rows> {
    let _args_held = ctx.budget.hold(args.len().saturating_mul(grid.len()), 8)?;
    let a: Vec<Vec<f64>> = args
        .iter()
        .map(|&x| scalar_values(x, &inputs, grid))
        .collect();
    let input = &inputs[0];
    match func {
        MapFn::Identity => return Ok(inputs.into_iter().next().unwrap_or_default()),
        MapFn::Floats => {
            let mut v = inputs.into_iter().next().unwrap_or_default();
            v.drop_histograms();
            return Ok(v);
        }
        MapFn::Nothing => return Ok(Rows::default()),
        MapFn::LabelReplace { .. } | MapFn::LabelJoin { .. } => return relabel(ctx, func, input),
        _ => {}
    }
    // At most one output row per input row.
    let mut out = Rows::charged(&ctx.budget, input.len())?;
    let mut ids = IdMap {
        ctx,
        cache: HashMap::new(),
    };
    let at = |k: usize, t: i64| -> f64 { grid.index(t).map_or(f64::NAN, |i| a[k][i]) };
    let mut notes: Vec<crate::functions::native::BinNote> = Vec::new();
    for k in 0..input.len() {
        let (id, t, v) = (input.series[k], input.ts[k], input.vals[k]);
        if let Some(h) = input.hist(k) {
            map_hist(func, &at, &mut ids, &mut notes, (id, t, h), &mut out)?;
            continue;
        }
        let value = match func {
            // Statistics of histograms ignore float samples.
            MapFn::Native(_) => continue,
            MapFn::Math(f) => f.apply(v),
            MapFn::Date(f) => f.apply(v),
            MapFn::Clamp => {
                let (lo, hi) = (at(0, t), at(1, t));
                if hi < lo {
                    continue;
                }
                clamp(v, lo, hi)
            }
            MapFn::ClampMin => go_max(at(0, t), v),
            MapFn::ClampMax => go_min(at(0, t), v),
            MapFn::Round => round(v, at(0, t)),
            MapFn::Timestamp => t as f64 / 1e3,
            MapFn::DropName => v,
            MapFn::Neg => -v,
            MapFn::Binary {
                op,
                scalar_lhs,
                return_bool,
                ..
            } => {
                let s = at(0, t);
                if op.is_trim() {
                    // Trims apply to histograms only.
                    notes.push(crate::functions::native::BinNote::Incompatible(
                        "float", "float",
                    ));
                    continue;
                }
                let (l, r) = if *scalar_lhs { (s, v) } else { (v, s) };
                let (mut val, keep) = elem_binop(*op, l, r);
                if op.is_comparison() && *scalar_lhs {
                    val = v;
                }
                if *return_bool {
                    val = if keep { 1.0 } else { 0.0 };
                } else if !keep {
                    continue;
                }
                if !op.is_comparison() || *return_bool {
                    let o = ids.get(id, drop_name)?;
                    out.push(o, t, val);
                } else {
                    out.push(id, t, val);
                }
                continue;
            }
            MapFn::Identity
            | MapFn::Floats
            | MapFn::Nothing
            | MapFn::LabelReplace { .. }
            | MapFn::LabelJoin { .. } => v,
        };
        let o = ids.get(id, drop_name)?;
        out.push(o, t, value);
    }
    if let MapFn::Binary { op, pos, .. } = func {
        for n in notes {
            let (warn, text) = n.text(op.as_str(), pos);
            if warn {
                ctx.warn(text);
            } else {
                ctx.info(text);
            }
        }
    }
    Ok(out)
}

/// One histogram row through `func`: the statistics read it, the float-only functions
/// ignore it, `-`, `*` and `/` by a scalar scale it, other operators with a scalar do not
/// apply (an info, as Prometheus).
fn map_hist(
    func: &MapFn,
    at: &impl Fn(usize, i64) -> f64,
    ids: &mut IdMap<'_>,
    notes: &mut Vec<crate::functions::native::BinNote>,
    (id, t, h): (u32, i64, &std::sync::Arc<strata_vocab::FloatHistogram>),
    out: &mut Rows,
) -> Result<()> {
    match func {
        MapFn::Native(f) => {
            let o = ids.get(id, drop_name)?;
            out.push(o, t, f.apply(h));
        }
        MapFn::Timestamp => {
            let o = ids.get(id, drop_name)?;
            out.push(o, t, t as f64 / 1e3);
        }
        MapFn::DropName => {
            let o = ids.get(id, drop_name)?;
            out.push_hist(o, t, h.clone());
        }
        MapFn::Identity => out.push_hist(id, t, h.clone()),
        MapFn::Neg => {
            let mut n = (**h).clone();
            n.mul(-1.0);
            let o = ids.get(id, drop_name)?;
            out.push_hist(o, t, std::sync::Arc::new(n));
        }
        MapFn::Binary {
            op,
            scalar_lhs,
            return_bool,
            ..
        } => {
            let s = at(0, t);
            let (l, r) = if *scalar_lhs {
                ((s, None), (0.0, Some(h)))
            } else {
                ((0.0, Some(h)), (s, None))
            };
            let before = notes.len();
            let (_, hv, keep) = crate::functions::native::elem_binop_hist(*op, l, r, notes);
            if notes.len() > before && hv.is_none() {
                // Not applicable: dropped, whatever the `bool` modifier.
                return Ok(());
            }
            if *return_bool {
                let o = ids.get(id, drop_name)?;
                out.push(o, t, if keep { 1.0 } else { 0.0 });
            } else if keep && let Some(hv) = hv {
                if op.is_comparison() {
                    out.push_hist(id, t, h.clone());
                } else if op.is_trim() {
                    out.push_hist(id, t, hv);
                } else {
                    let o = ids.get(id, drop_name)?;
                    out.push_hist(o, t, hv);
                }
            }
        }
        // Float functions (`abs`, `clamp`, `round`, dates, …) ignore histograms.
        _ => {}
    }
    Ok(())
}

fn relabel(ctx: &QueryContext, func: &MapFn, input: &Rows) -> Result<Rows> {
    let re = match func {
        MapFn::LabelReplace { regex, .. } => {
            Some(strata_vocab::pattern::compile_anchored(regex).map_err(|_| {
                exec_err(format!(
                    "invalid regular expression in label_replace(): {regex}"
                ))
            })?)
        }
        _ => None,
    };
    let mut ids = IdMap {
        ctx,
        cache: HashMap::new(),
    };
    // One entry per output row, to find two rows that became one series at one step.
    let _seen_held = ctx
        .budget
        .hold_bytes(input.len().saturating_mul(32), "label_replace")?;
    let mut seen: HashSet<(u32, i64)> = HashSet::new();
    let mut out = Rows::charged(&ctx.budget, input.len())?;
    for k in 0..input.len() {
        let id = input.series[k];
        let o = ids.get(id, |ctx, id| {
            let meta = ctx.registry.get(id);
            let (dst, value) = match func {
                MapFn::LabelReplace { dst, repl, src, .. } => {
                    let sv = meta.labels.get(src).unwrap_or("");
                    let Some(caps) = re.as_ref().and_then(|r| r.captures(sv)) else {
                        return Ok(id);
                    };
                    let mut res = String::new();
                    caps.expand(repl, &mut res);
                    (dst, res)
                }
                MapFn::LabelJoin { dst, sep, srcs } => {
                    let vals: Vec<&str> = srcs
                        .iter()
                        .map(|s| meta.labels.get(s).unwrap_or(""))
                        .collect();
                    (dst, vals.join(sep))
                }
                _ => return Ok(id),
            };
            let labels = set_label(&meta.labels, dst, &value);
            let drop = if dst == "__name__" {
                false
            } else {
                meta.drop_name
            };
            Ok(ctx.registry.intern(labels, drop))
        })?;
        if !seen.insert((o, input.ts[k])) {
            return Err(exec_err(
                "vector cannot contain metrics with the same labelset",
            ));
        }
        match input.hist(k) {
            Some(h) => out.push_hist(o, input.ts[k], h.clone()),
            None => out.push(o, input.ts[k], input.vals[k]),
        }
    }
    Ok(out)
}

/// `PromMap`, `PromConst`, `PromTime`: per-sample functions of one vector (or of
/// nothing: a constant or `time()` at every step).
#[derive(Debug)]
pub(crate) struct MapKernel {
    pub(super) op: PromOp,
}

impl Kernel for MapKernel {
    fn op(&self) -> &PromOp {
        &self.op
    }

    fn accepts_histograms(&self) -> bool {
        true
    }

    fn run<'a>(&'a self, io: &'a Io, _partition: usize) -> BoxFuture<'a, Result<Output>> {
        async move {
            let ctx = &io.ctx;
            match &self.op {
                PromOp::Const { grid, value } => {
                    let mut out = Rows::charged(&ctx.budget, grid.len())?;
                    for t in grid.steps() {
                        out.push(SCALAR_SERIES, t, value.get());
                    }
                    Ok(Output::Rows(out))
                }
                PromOp::Time { grid } => {
                    let mut out = Rows::charged(&ctx.budget, grid.len())?;
                    for t in grid.steps() {
                        out.push(SCALAR_SERIES, t, t as f64 / 1e3);
                    }
                    Ok(Output::Rows(out))
                }
                PromOp::Map { grid, func, args } => {
                    with_inputs(io, |inputs| {
                        map(ctx, *grid, func, args, std::mem::take(inputs))
                    })
                    .await
                }
                _ => Ok(Output::Rows(Rows::default())),
            }
        }
        .boxed()
    }
}
