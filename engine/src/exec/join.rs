//! vector ⊕ vector: arithmetic and comparisons with one-to-one / group_left / group_right
//! matching, and the set operators (Prometheus `VectorBinop`, `VectorAnd/Or/Unless`).

use datafusion::common::{HashMap, HashSet};

use strata_grammar::{BinaryOp, Cardinality};
use strata_storage::{Label, Labels};

use crate::error::{Result, exec_err};
use crate::functions::instant::elem_binop;
use crate::functions::native;
use crate::model::{Grid, QueryContext, Rows};
use futures::FutureExt;
use futures::future::BoxFuture;

use super::node::{Io, Kernel, Output, with_inputs};
use crate::plan::PromOp;
use crate::result::go_labels_string;

struct Sigs<'a> {
    ctx: &'a QueryContext,
    on: bool,
    names: &'a [String],
    of_id: HashMap<u32, u32>,
    ids: HashMap<Labels, u32>,
}

impl Sigs<'_> {
    fn match_labels(&self, labels: &Labels) -> Labels {
        match_labels(self.on, self.names, labels)
    }

    fn sig(&mut self, id: u32) -> u32 {
        if let Some(s) = self.of_id.get(&id) {
            return *s;
        }
        let labels = self.match_labels(&self.ctx.registry.get(id).labels);
        let n = self.ids.len() as u32;
        let s = *self.ids.entry(labels).or_insert(n);
        self.of_id.insert(id, s);
        s
    }
}

/// Bytes of one entry of the per-step maps (timestamp, row range, hash table overhead).
const STEP_ENTRY_BYTES: usize = 48;

/// Row ranges of each timestamp; rows sorted by (ts, series).
fn by_step(
    rows: &mut Rows,
    grid: &Grid,
    ctx: &QueryContext,
) -> Result<HashMap<i64, std::ops::Range<usize>>> {
    rows.sort_by_step(grid, &ctx.budget)?;
    Ok(rows.step_runs().collect())
}

/// The operator and how the two sides match.
pub(super) struct Matching<'a> {
    pub op: BinaryOp,
    pub card: Cardinality,
    /// `on` (true) or `ignoring`.
    pub on: bool,
    pub names: &'a [String],
    /// `group_*` labels.
    pub include: &'a [String],
    pub return_bool: bool,
    /// `fill_left` / `fill_right`.
    pub fill: (Option<f64>, Option<f64>),
    /// The expression's position (annotations).
    pub pos: &'a str,
}

/// Evaluates `lhs op rhs`.
pub(super) fn join(
    ctx: &QueryContext,
    grid: Grid,
    m: &Matching,
    mut lhs: Rows,
    mut rhs: Rows,
) -> Result<Rows> {
    let Matching {
        op,
        card,
        on,
        names,
        include: _,
        return_bool,
        fill,
        pos,
    } = *m;
    let mut sigs = Sigs {
        ctx,
        on,
        names,
        of_id: HashMap::new(),
        ids: HashMap::new(),
    };
    // The output grows as rows are pushed, each growth asked of the budget first.
    let mut out = Rows::default();
    // The per-step row ranges of both sides, one map entry per distinct step.
    let steps = |n: usize| n.min(grid.len());
    let _maps = ctx.budget.hold_bytes(
        (steps(lhs.len()) + steps(rhs.len())).saturating_mul(STEP_ENTRY_BYTES),
        "a join",
    )?;
    let lsteps = by_step(&mut lhs, &grid, ctx)?;
    let rsteps = by_step(&mut rhs, &grid, ctx)?;
    let mut times: Vec<i64> = lsteps.keys().chain(rsteps.keys()).copied().collect();
    times.sort_unstable();
    times.dedup();
    let empty = 0..0;
    let mut result_ids: HashMap<(u32, u32), u32> = HashMap::new();
    let mut notes: Vec<native::BinNote> = Vec::new();
    for (n, t) in times.into_iter().enumerate() {
        if n % 64 == 0 {
            ctx.check_deadline()?;
        }
        let lr = lsteps.get(&t).unwrap_or(&empty).clone();
        let rr = rsteps.get(&t).unwrap_or(&empty).clone();
        match op {
            BinaryOp::And | BinaryOp::Unless => {
                let set: HashSet<u32> = rr.map(|k| sigs.sig(rhs.series[k])).collect();
                for k in lr {
                    let hit = set.contains(&sigs.sig(lhs.series[k]));
                    if hit == (op == BinaryOp::And) {
                        let h = lhs.hist(k).cloned();
                        out.push_value_in(&ctx.budget, lhs.series[k], t, lhs.vals[k], h)?;
                    }
                }
            }
            BinaryOp::Or => {
                let mut set = HashSet::new();
                for k in lr {
                    set.insert(sigs.sig(lhs.series[k]));
                    let h = lhs.hist(k).cloned();
                    out.push_value_in(&ctx.budget, lhs.series[k], t, lhs.vals[k], h)?;
                }
                for k in rr {
                    if !set.contains(&sigs.sig(rhs.series[k])) {
                        let h = rhs.hist(k).cloned();
                        out.push_value_in(&ctx.budget, rhs.series[k], t, rhs.vals[k], h)?;
                    }
                }
            }
            _ => {
                let swapped = card == Cardinality::OneToMany;
                // The value that stands in for a missing `one` / `many` side. Prometheus
                // swaps the sides for `group_right` but not the fill values: `fill_right`
                // always stands in for the one side, `fill_left` for the many side.
                let (fill_one, fill_many) = (fill.1, fill.0);
                if (lr.is_empty() && rr.is_empty())
                    || ((lr.is_empty() || rr.is_empty()) && fill.0.is_none() && fill.1.is_none())
                {
                    continue;
                }
                let (many, mr, one, or) = if swapped {
                    (&rhs, rr, &lhs, lr)
                } else {
                    (&lhs, lr, &rhs, rr)
                };
                let mut one_map: HashMap<u32, (u32, f64, Option<Hist>)> =
                    HashMap::with_capacity(or.len());
                for k in or {
                    let s = sigs.sig(one.series[k]);
                    let entry = (one.series[k], one.vals[k], one.hist(k).cloned());
                    if let Some((prev, _, _)) = one_map.insert(s, entry) {
                        let side = if swapped { "left" } else { "right" };
                        let mut a = ctx.registry.get(one.series[k]).labels;
                        let mut b = ctx.registry.get(prev).labels;
                        if crate::result::compare_labels(&a, &b) == std::cmp::Ordering::Greater {
                            std::mem::swap(&mut a, &mut b);
                        }
                        return Err(exec_err(format!(
                            "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                            go_labels_string(&sigs.match_labels(&a)),
                            go_labels_string(&a),
                            go_labels_string(&b),
                        )));
                    }
                }
                let mut matched: HashMap<u32, HashSet<u32>> = HashMap::new();
                let mut used: HashSet<u32> = HashSet::new();
                let mut emit = |ms: u32,
                                os: Option<u32>,
                                (mv, mh): (f64, Option<&Hist>),
                                (ov, oh): (f64, Option<&Hist>),
                                s: u32,
                                out: &mut Rows|
                 -> Result<()> {
                    let (l, r) = if swapped {
                        ((ov, oh), (mv, mh))
                    } else {
                        ((mv, mh), (ov, oh))
                    };
                    let (mut val, hv, keep) = if mh.is_none() && oh.is_none() && !op.is_trim() {
                        let (v, keep) = elem_binop(op, l.0, r.0);
                        (v, None, keep)
                    } else {
                        let before = notes.len();
                        let r = native::elem_binop_hist(op, l, r, &mut notes);
                        if notes.len() > before && r.1.is_none() {
                            return Ok(());
                        }
                        r
                    };
                    if card == Cardinality::OneToOne && os.is_some() {
                        // Checked before filtering, as Prometheus does.
                        let set = matched.entry(s).or_default();
                        if !set.is_empty() {
                            return Err(exec_err(
                                "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                            ));
                        }
                        set.insert(0);
                    }
                    if return_bool {
                        val = if keep { 1.0 } else { 0.0 };
                    } else if !keep {
                        return Ok(());
                    }
                    let key = (ms, os.unwrap_or(u32::MAX));
                    let oid = match result_ids.get(&key) {
                        Some(o) => *o,
                        None => {
                            let o = if os == Some(FILLED) {
                                let base = ctx.registry.get(ms);
                                let stand_in = match_labels(m.on, m.names, &base.labels);
                                result_labels(ctx, m, &base.labels, base.drop_name, &stand_in)
                            } else {
                                result_id(ctx, m, ms, os)
                            };
                            result_ids.insert(key, o);
                            o
                        }
                    };
                    if card != Cardinality::OneToOne
                        && os.is_some()
                        && !matched.entry(s).or_default().insert(oid)
                    {
                        return Err(exec_err(
                            "multiple matches for labels: grouping labels must ensure unique matches",
                        ));
                    }
                    match hv {
                        Some(h) if !return_bool => out.push_hist_in(&ctx.budget, oid, t, h)?,
                        _ => out.push_in(&ctx.budget, oid, t, val)?,
                    }
                    Ok(())
                };
                for k in mr {
                    let (ms, mv, mh) = (many.series[k], many.vals[k], many.hist(k));
                    let s = sigs.sig(ms);
                    match one_map.get(&s) {
                        Some((os, ov, oh)) => {
                            used.insert(s);
                            emit(ms, Some(*os), (mv, mh), (*ov, oh.as_ref()), s, &mut out)?;
                        }
                        None => {
                            if let Some(f) = fill_one {
                                // The stand-in has the many side's matching labels.
                                emit(ms, Some(FILLED), (mv, mh), (f, None), s, &mut out)?;
                            }
                        }
                    }
                }
                if let Some(f) = fill_many {
                    let mut rest: Vec<(u32, u32, f64)> = one_map
                        .iter()
                        .filter(|(s, _)| !used.contains(*s))
                        .map(|(s, (os, ov, _))| (*s, *os, *ov))
                        .collect();
                    rest.sort_unstable_by_key(|r| r.1);
                    for (s, os, ov) in rest {
                        // The one side stands alone: it is the result's label source.
                        let (l, r) = if swapped { (ov, f) } else { (f, ov) };
                        let (mut val, keep) = elem_binop(op, l, r);
                        if return_bool {
                            val = if keep { 1.0 } else { 0.0 };
                        } else if !keep {
                            continue;
                        }
                        let _ = s;
                        // The stand-in for the many side has the one side's matching
                        // labels; the result is built on it (Prometheus `MatchLabels`).
                        let key = (u32::MAX, os);
                        let oid = match result_ids.get(&key) {
                            Some(o) => *o,
                            None => {
                                let one = ctx.registry.get(os).labels;
                                let stand_in = match_labels(m.on, m.names, &one);
                                let o = result_labels(ctx, m, &stand_in, false, &one);
                                result_ids.insert(key, o);
                                o
                            }
                        };
                        out.push_in(&ctx.budget, oid, t, val)?;
                    }
                }
            }
        }
    }
    for n in notes {
        let (warn, text) = n.text(op.as_str(), pos);
        if warn {
            ctx.warn(text);
        } else {
            ctx.info(text);
        }
    }
    Ok(out)
}

/// A histogram value of a row.
type Hist = std::sync::Arc<strata_vocab::FloatHistogram>;

/// The `one` id of a many-side row matched by a `fill_right` stand-in.
const FILLED: u32 = u32::MAX - 1;

/// Prometheus `Labels.MatchLabels(on, names)`: with `on` only the listed labels, else
/// every label but the listed ones and `__name__`.
fn match_labels(on: bool, names: &[String], labels: &Labels) -> Labels {
    Labels::from_labels(
        labels
            .iter()
            .filter(|l| {
                let listed = names.iter().any(|n| **n == *l.name);
                if on {
                    listed
                } else {
                    !listed && &*l.name != "__name__"
                }
            })
            .cloned()
            .collect(),
    )
}

/// Prometheus `resultMetric`, interned with the delayed-name-removal flag.
fn result_id(ctx: &QueryContext, mt: &Matching, many: u32, one: Option<u32>) -> u32 {
    let m = ctx.registry.get(many);
    let o = one
        .map(|id| ctx.registry.get(id).labels)
        .unwrap_or_default();
    result_labels(ctx, mt, &m.labels, m.drop_name, &o)
}

/// Prometheus `resultMetric(base, other)`: the labels of a result built on `base` (the
/// many side, or a side `fill*` stood in for), `group_*` labels taken from `other`.
fn result_labels(
    ctx: &QueryContext,
    mt: &Matching,
    base: &Labels,
    base_drop: bool,
    o: &Labels,
) -> u32 {
    let Matching {
        op,
        card,
        on,
        names,
        include,
        return_bool,
        ..
    } = *mt;
    let arithmetic = !op.keeps_name();
    let mut labels: Vec<Label> = base
        .iter()
        .filter(|l| {
            if arithmetic && crate::result::is_metadata_label(&l.name) {
                return false;
            }
            if card == Cardinality::OneToOne {
                let listed = names.iter().any(|n| **n == *l.name);
                return if on { listed } else { !listed };
            }
            true
        })
        .cloned()
        .collect();
    for ln in include {
        labels.retain(|l| *l.name != **ln);
        if let Some(v) = o.get(ln) {
            labels.push(Label {
                name: ln.as_str().into(),
                value: v.into(),
            });
        }
    }
    let drop = return_bool || (!arithmetic && base_drop);
    ctx.registry.intern(Labels::from_labels(labels), drop)
}

/// `PromJoin`: vector ⊕ vector over its two inputs.
#[derive(Debug)]
pub(crate) struct JoinKernel {
    pub(super) op: PromOp,
}

impl Kernel for JoinKernel {
    fn accepts_histograms(&self) -> bool {
        true
    }

    fn op(&self) -> &PromOp {
        &self.op
    }

    fn run<'a>(&'a self, io: &'a Io, _partition: usize) -> BoxFuture<'a, Result<Output>> {
        async move {
            let PromOp::Join {
                grid,
                op,
                card,
                on,
                labels,
                include,
                return_bool,
                fill,
                pos,
            } = &self.op
            else {
                return Ok(Output::Rows(Rows::default()));
            };
            with_inputs(io, |inputs| {
                let rhs = inputs.pop().unwrap_or_default();
                let lhs = inputs.pop().unwrap_or_default();
                let fill = (fill.0.map(|f| f.get()), fill.1.map(|f| f.get()));
                let m = Matching {
                    op: *op,
                    card: *card,
                    on: *on,
                    names: labels,
                    include,
                    return_bool: *return_bool,
                    fill,
                    pos,
                };
                join(&io.ctx, *grid, &m, lhs, rhs)
            })
            .await
        }
        .boxed()
    }
}
