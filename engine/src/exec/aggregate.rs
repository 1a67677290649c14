//! The aggregation operators, step by step (Prometheus `rangeEvalAgg`, `aggregation`,
//! `aggregationK`, `aggregationCountValues`).

use std::sync::Arc;

use datafusion::arrow::array::{Array, BooleanArray, Float64Array, Int64Array, UInt32Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::HashMap;

use strata_grammar::AggregateOp;
use strata_storage::{Label, Labels};

use super::scalar_values;
use crate::error::{EngineError, Result, exec_err};
use crate::functions::aggr::{Acc, AccState};
use crate::functions::{format_g, format_value_label};
use crate::model::{Grid, QueryContext, Rows};
use crate::plan::AggParam;
use strata_vocab::FloatHistogram;
use strata_vocab::histogram::kahan::{KahanMean, KahanSum};
use strata_vocab::histogram::{Combined, Incompatible};

/// Labels kept by `by` / left by `without` (which also drops `__name__`).
pub(crate) fn group_labels(labels: &Labels, grouping: &[String], without: bool) -> Labels {
    let keep: Vec<Label> = labels
        .iter()
        .filter(|l| {
            let listed = grouping.iter().any(|g| **g == *l.name);
            if without {
                !listed && &*l.name != "__name__"
            } else {
                listed
            }
        })
        .cloned()
        .collect();
    Labels::from_labels(keep)
}

/// Go `labels.Hash()`: xxhash64 over `name\xffvalue\xff` in byte order of names.
fn go_labels_hash(labels: &Labels) -> u64 {
    let mut v: Vec<&Label> = labels.iter().collect();
    v.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    let mut buf = Vec::with_capacity(256);
    for l in v {
        buf.extend_from_slice(l.name.as_bytes());
        buf.push(0xff);
        buf.extend_from_slice(l.value.as_bytes());
        buf.push(0xff);
    }
    xxhash_rust::xxh64::xxh64(&buf, 0)
}

/// Go `container/heap` on a slice with a `less` function.
fn heap_up(h: &mut [(u32, f64)], mut j: usize, less: &impl Fn(f64, f64) -> bool) {
    while j > 0 {
        let i = (j - 1) / 2;
        if !less(h[j].1, h[i].1) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

fn heap_down(h: &mut [(u32, f64)], i0: usize, less: &impl Fn(f64, f64) -> bool) -> bool {
    let n = h.len();
    let mut i = i0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        if j1 + 1 < n && less(h[j1 + 1].1, h[j1].1) {
            j = j1 + 1;
        }
        if !less(h[j].1, h[i].1) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
    i > i0
}

/// Go `sort.Sort(sort.Reverse(h))` for small heaps: insertion sort (stable).
fn reverse_sort(h: &mut [(u32, f64)], less: &impl Fn(f64, f64) -> bool) {
    for i in 1..h.len() {
        let mut j = i;
        while j > 0 && less(h[j - 1].1, h[j].1) {
            h.swap(j, j - 1);
            j -= 1;
        }
    }
}

fn k_param(v: f64) -> Result<i64> {
    if v.is_nan() {
        return Err(exec_err("Parameter value is NaN"));
    }
    if !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&v) {
        return Err(exec_err(format!(
            "Scalar value {} overflows int64",
            format_g(v)
        )));
    }
    Ok(v as i64)
}

/// Whether `op`'s value for a step and group depends only on that group's values in
/// arrival order (and the step's parameter): it can take rows as they come.
fn accumulates(op: AggregateOp) -> bool {
    // The operators with a fixed-size state, and `quantile`, which keeps the values.
    Acc::merges(op) || op == AggregateOp::Quantile
}

/// Whether `op` can fold the series of a selection as they are read: it accumulates and
/// takes no parameter.
pub(super) fn folds(op: AggregateOp, param: &AggParam) -> bool {
    matches!(param, AggParam::None) && accumulates(op)
}

/// An aggregation that takes rows as they come, into one accumulator per step and group:
/// for one step and group the rows arrive in the same order as after a sort by step, so
/// the result is the one of a sorted pass. Groups are numbered as they are first met.
pub(super) struct Fold<'a> {
    ctx: &'a QueryContext,
    grid: Grid,
    op: AggregateOp,
    grouping: &'a [String],
    without: bool,
    group_ids: HashMap<Labels, u32>,
    groups: Vec<(Labels, bool)>,
    /// Per group, per step.
    table: Vec<Vec<Option<Acc>>>,
    /// Rows of `table` allocated, each charged to the budget as one point per step.
    charged_rows: usize,
    /// Native histogram sums of `sum` and `avg`, per (group, step).
    hists: HashMap<(u32, usize), HistCell>,
    /// The aggregation's position in the query, for annotations.
    pos: String,
}

/// The histogram accumulator of one group at one step.
#[derive(Clone, Debug)]
pub(super) struct HistCell {
    /// `None` once the inputs could not be added (exponential with custom buckets).
    acc: Option<HistAcc>,
    /// Histograms added.
    n: f64,
    /// Counter-reset hints seen: reset, not reset (both: a warning).
    hints: (bool, bool),
}

/// A histogram `sum` or `avg` in progress.
#[derive(Clone, Debug)]
enum HistAcc {
    Sum(KahanSum),
    Mean(KahanMean),
    /// A mean merged from partial means (weighted by their counts).
    Merged(FloatHistogram),
}

impl HistAcc {
    fn new(op: AggregateOp, h: &FloatHistogram) -> Self {
        if op == AggregateOp::Avg {
            HistAcc::Mean(KahanMean::new(h))
        } else {
            HistAcc::Sum(KahanSum::new(h))
        }
    }

    fn add(&mut self, h: &FloatHistogram) -> std::result::Result<Combined, Incompatible> {
        match self {
            HistAcc::Sum(s) => s.add(h),
            HistAcc::Mean(m) => m.add(h),
            HistAcc::Merged(m) => m.add(h),
        }
    }

    fn value(self) -> FloatHistogram {
        match self {
            HistAcc::Sum(s) => s.value(),
            HistAcc::Mean(m) => m.value(),
            HistAcc::Merged(m) => m,
        }
    }
}

/// Bytes of one cell of a [`Fold`] table.
const CELL_BYTES: usize = std::mem::size_of::<Option<Acc>>();

impl Drop for Fold<'_> {
    fn drop(&mut self) {
        let cells = self.charged_rows.saturating_mul(self.grid.len());
        self.ctx.budget.release(cells, CELL_BYTES);
    }
}

impl<'a> Fold<'a> {
    pub(super) fn new(
        ctx: &'a QueryContext,
        grid: Grid,
        op: AggregateOp,
        grouping: &'a [String],
        without: bool,
    ) -> Self {
        Fold {
            ctx,
            grid,
            op,
            grouping,
            without,
            group_ids: HashMap::new(),
            groups: Vec::new(),
            table: Vec::new(),
            charged_rows: 0,
            hists: HashMap::new(),
            pos: String::new(),
        }
    }

    /// Sets the position annotations name.
    pub(super) fn at(mut self, pos: &str) -> Self {
        self.pos = pos.to_string();
        self
    }

    /// Adds a histogram value at grid time `t` to group `g`: `sum` and `avg` add it,
    /// `count` and `group` count it, the other operators ignore it (with an info).
    pub(super) fn add_hist_to_group(
        &mut self,
        g: u32,
        t: i64,
        h: &std::sync::Arc<strata_vocab::FloatHistogram>,
    ) -> Result<()> {
        match self.op {
            AggregateOp::Count | AggregateOp::Group => self.add_to_group(g, t, 0.0),
            AggregateOp::Sum | AggregateOp::Avg => {
                let Some(step) = self.grid.index(t) else {
                    return Ok(());
                };
                let op = self.op;
                let cell = self.hists.entry((g, step)).or_insert(HistCell {
                    acc: None,
                    n: 0.0,
                    hints: (false, false),
                });
                match h.hint {
                    strata_vocab::CounterResetHint::Reset => cell.hints.0 = true,
                    strata_vocab::CounterResetHint::NotReset => cell.hints.1 = true,
                    _ => {}
                }
                if cell.n == 0.0 {
                    cell.acc = Some(HistAcc::new(op, h));
                } else if let Some(acc) = cell.acc.as_mut() {
                    match acc.add(h) {
                        Ok(r) => {
                            if r.nhcb_bounds_reconciled {
                                self.ctx.info(format!(
                                    "PromQL info: mismatched custom buckets were reconciled during aggregation{}",
                                    self.pos
                                ));
                            }
                        }
                        Err(_) => cell.acc = None,
                    }
                }
                cell.n += 1.0;
                Ok(())
            }
            op => {
                self.ctx.info(format!(
                    "PromQL info: ignored histogram in {} aggregation{}",
                    op.as_str(),
                    self.pos
                ));
                Ok(())
            }
        }
    }

    /// The histogram result of group `g` at `step`, if it has one and no float: floats and
    /// histograms together are a warning and no result; incompatible schemas likewise.
    fn hist_result(
        &mut self,
        g: usize,
        step: usize,
        has_float: bool,
    ) -> Option<Option<strata_vocab::FloatHistogram>> {
        let cell = self.hists.remove(&(g as u32, step))?;
        if cell.hints == (true, true) {
            self.ctx.warn(format!(
                "PromQL warning: conflicting counter resets during histogram aggregation{}",
                self.pos
            ));
        }
        if has_float {
            self.ctx.warn(format!(
                "PromQL warning: encountered a mix of histograms and floats for aggregation{}",
                self.pos
            ));
            return Some(None);
        }
        let Some(mut h) = cell.acc.map(HistAcc::value) else {
            self.ctx.warn(format!(
                "PromQL warning: vector contains a mix of histograms with exponential and custom buckets schemas for metric name \"\"{}",
                self.pos
            ));
            return Some(None);
        };
        h.compact();
        Some(Some(h))
    }

    /// The group of series `id`.
    pub(super) fn group_of(&mut self, id: u32) -> u32 {
        let meta = self.ctx.registry.get(id);
        let gl = group_labels(&meta.labels, self.grouping, self.without);
        let n = self.groups.len() as u32;
        let g = *self.group_ids.entry(gl.clone()).or_insert(n);
        if g == n {
            self.groups.push((gl, false));
        }
        self.groups[g as usize].1 |= meta.drop_name;
        g
    }

    /// Adds the value of a row at grid time `t` to group `g`. A group's row of per-step
    /// accumulators is charged to the budget (one point per step) before it is allocated.
    #[inline]
    pub(super) fn add_to_group(&mut self, g: u32, t: i64, v: f64) -> Result<()> {
        let Some(step) = self.grid.index(t) else {
            return Ok(());
        };
        let g = g as usize;
        if g >= self.table.len() {
            self.table.resize_with(g + 1, Vec::new);
        }
        let row = &mut self.table[g];
        if row.is_empty() {
            self.ctx.budget.charge(self.grid.len(), CELL_BYTES)?;
            self.charged_rows += 1;
            *row = vec![None; self.grid.len()];
        }
        match &mut row[step] {
            Some(a) => a.add(self.op, v),
            slot @ None => *slot = Some(Acc::new(self.op, v)),
        }
        Ok(())
    }

    /// The aggregated rows, step by step, groups in the order they were met.
    #[allow(clippy::needless_range_loop)] // `g` indexes the table and the ids alike.
    pub(super) fn finish(mut self, params: &[f64]) -> Result<Rows> {
        let out_ids: Vec<u32> = self
            .groups
            .iter()
            .map(|(l, d)| self.ctx.registry.intern(l.clone(), *d))
            .collect();
        let filled: usize = self
            .table
            .iter()
            .map(|row| row.iter().filter(|a| a.is_some()).count())
            .sum();
        let mut out = Rows::charged(&self.ctx.budget, filled + self.hists.len())?;
        let with_hists = !self.hists.is_empty();
        for (step, t) in self.grid.steps().enumerate() {
            if step.is_multiple_of(64) {
                self.ctx.check_deadline()?;
            }
            let groups = if with_hists {
                out_ids.len()
            } else {
                self.table.len()
            };
            for g in 0..groups {
                let float = self
                    .table
                    .get_mut(g)
                    .and_then(|row| row.get_mut(step))
                    .and_then(Option::as_mut)
                    .map(|a| a.finish(self.op, params.get(step).copied().unwrap_or(f64::NAN)));
                if with_hists && let Some(h) = self.hist_result(g, step, float.is_some()) {
                    if let Some(h) = h {
                        out.push_hist(out_ids[g], t, std::sync::Arc::new(h));
                    }
                    continue;
                }
                if let Some(v) = float {
                    out.push(out_ids[g], t, v);
                }
            }
        }
        Ok(out)
    }
}

/// The schema of partial aggregation state: per group (an interned label set whose flag
/// says the name is to be dropped) and step, an [`AccState`].
pub(crate) fn state_schema() -> SchemaRef {
    static S: std::sync::LazyLock<SchemaRef> = std::sync::LazyLock::new(|| {
        Arc::new(Schema::new(vec![
            Field::new("group", DataType::UInt32, false),
            Field::new("ts", DataType::Int64, false),
            Field::new("value", DataType::Float64, false),
            Field::new("kahan", DataType::Float64, false),
            Field::new("mean", DataType::Float64, false),
            Field::new("count", DataType::Float64, false),
            Field::new("incremental", DataType::Boolean, false),
            // A histogram sum (`count` histograms added; empty when they could not be).
            Field::new("hist", DataType::Binary, true),
        ]))
    });
    S.clone()
}

impl Fold<'_> {
    /// The accumulated state as a batch of [`state_schema`], for a final aggregation to
    /// merge. The table's room stays charged: the merging side gives it back
    /// ([`Fold::merge_state`]).
    pub(super) fn into_state(mut self) -> Result<RecordBatch> {
        let ids: Vec<u32> = self
            .groups
            .iter()
            .map(|(l, d)| self.ctx.registry.intern(l.clone(), *d))
            .collect();
        let (mut g, mut ts) = (Vec::new(), Vec::new());
        let (mut value, mut kahan, mut mean, mut count) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut incremental = Vec::new();
        let mut hist: Vec<Option<Vec<u8>>> = Vec::new();
        for ((gi, step), cell) in std::mem::take(&mut self.hists) {
            g.push(ids[gi as usize]);
            ts.push(self.grid.start + step as i64 * self.grid.step.max(1));
            value.push(0.0);
            // A histogram row's `kahan` carries the counter-reset hints its inputs had
            // (1: reset, 2: not reset), so the final step can warn about a conflict.
            kahan.push(f64::from(
                u8::from(cell.hints.0) | (u8::from(cell.hints.1) << 1),
            ));
            mean.push(0.0);
            count.push(cell.n);
            incremental.push(false);
            hist.push(Some(
                cell.acc.map(|a| a.value().encode()).unwrap_or_default(),
            ));
        }
        for (gi, row) in self.table.iter().enumerate() {
            for (step, acc) in row.iter().enumerate() {
                let Some(a) = acc else { continue };
                let st = a.state();
                g.push(ids[gi]);
                ts.push(self.grid.start + step as i64 * self.grid.step.max(1));
                value.push(st.value);
                kahan.push(st.kahan);
                mean.push(st.mean);
                count.push(st.count);
                incremental.push(st.incremental);
                hist.push(None);
            }
        }
        // Handed over with the batch.
        self.charged_rows = 0;
        RecordBatch::try_new(
            state_schema(),
            vec![
                Arc::new(UInt32Array::from(g)),
                Arc::new(Int64Array::from(ts)),
                Arc::new(Float64Array::from(value)),
                Arc::new(Float64Array::from(kahan)),
                Arc::new(Float64Array::from(mean)),
                Arc::new(Float64Array::from(count)),
                Arc::new(BooleanArray::from(incremental)),
                Arc::new(datafusion::arrow::array::BinaryArray::from_iter(hist)),
            ],
        )
        .map_err(|e| EngineError::DataFusion(e.into()))
    }

    /// Merges a batch of partial state ([`Fold::into_state`]) into this table, then gives
    /// back the room the partial table held.
    pub(super) fn merge_state(&mut self, b: &RecordBatch) -> Result<()> {
        fn col<T: 'static>(b: &RecordBatch, i: usize) -> Result<&T> {
            b.column(i)
                .as_any()
                .downcast_ref::<T>()
                .ok_or_else(|| EngineError::Exec("bad partial aggregation state".into()))
        }
        let g = col::<UInt32Array>(b, 0)?;
        let ts = col::<Int64Array>(b, 1)?;
        let value = col::<Float64Array>(b, 2)?;
        let kahan = col::<Float64Array>(b, 3)?;
        let mean = col::<Float64Array>(b, 4)?;
        let count = col::<Float64Array>(b, 5)?;
        let incremental = col::<BooleanArray>(b, 6)?;
        let hist = col::<datafusion::arrow::array::BinaryArray>(b, 7)?;
        let mut local: HashMap<u32, u32> = HashMap::new();
        for k in 0..b.num_rows() {
            let id = g.value(k);
            let gi = match local.get(&id) {
                Some(&gi) => gi,
                None => {
                    let gi = self.group_of(id);
                    local.insert(id, gi);
                    gi
                }
            };
            if !hist.is_null(k) {
                let Some(step) = self.grid.index(ts.value(k)) else {
                    continue;
                };
                let part = if hist.value(k).is_empty() {
                    None
                } else {
                    Some(
                        strata_vocab::FloatHistogram::decode(hist.value(k)).map_err(|e| {
                            EngineError::Exec(format!("partial aggregation state: {e}"))
                        })?,
                    )
                };
                let n = count.value(k);
                let avg = self.op == AggregateOp::Avg;
                let flags = kahan.value(k) as u8;
                let hints = (flags & 1 != 0, flags & 2 != 0);
                let mut reconciled = false;
                match self.hists.get_mut(&(gi, step)) {
                    None => {
                        let acc = part.map(|p| {
                            if avg {
                                HistAcc::Merged(p)
                            } else {
                                HistAcc::Sum(KahanSum::new(&p))
                            }
                        });
                        self.hists.insert((gi, step), HistCell { acc, n, hints });
                    }
                    Some(cell) => {
                        let total = cell.n + n;
                        cell.hints = (cell.hints.0 || hints.0, cell.hints.1 || hints.1);
                        cell.acc = match (cell.acc.take(), part) {
                            (Some(HistAcc::Sum(mut a)), Some(b)) => a.add(&b).ok().map(|r| {
                                reconciled = r.nhcb_bounds_reconciled;
                                HistAcc::Sum(a)
                            }),
                            (Some(a), Some(mut b)) => {
                                // Means weighted by their counts.
                                let mut m = a.value();
                                m.mul(cell.n / total);
                                b.mul(n / total);
                                m.add(&b).ok().map(|r| {
                                    reconciled = r.nhcb_bounds_reconciled;
                                    HistAcc::Merged(m)
                                })
                            }
                            _ => None,
                        };
                        cell.n = total;
                    }
                }
                if reconciled {
                    self.ctx.info(format!(
                        "PromQL info: mismatched custom buckets were reconciled during aggregation{}",
                        self.pos
                    ));
                }
                continue;
            }
            let acc = Acc::from_state(AccState {
                value: value.value(k),
                kahan: kahan.value(k),
                mean: mean.value(k),
                count: count.value(k),
                incremental: incremental.value(k),
            });
            self.merge_into_group(gi, ts.value(k), acc)?;
        }
        // The partial table had one row of cells per group it met.
        self.ctx
            .budget
            .release(local.len().saturating_mul(self.grid.len()), CELL_BYTES);
        Ok(())
    }

    /// Merges a partial accumulator of group `g` at grid time `t`.
    fn merge_into_group(&mut self, g: u32, t: i64, acc: Acc) -> Result<()> {
        let Some(step) = self.grid.index(t) else {
            return Ok(());
        };
        let g = g as usize;
        if g >= self.table.len() {
            self.table.resize_with(g + 1, Vec::new);
        }
        if self.table[g].is_empty() {
            self.ctx.budget.charge(self.grid.len(), CELL_BYTES)?;
            self.charged_rows += 1;
            self.table[g] = vec![None; self.grid.len()];
        }
        match &mut self.table[g][step] {
            Some(a) => a.merge(self.op, &acc),
            slot @ None => *slot = Some(acc),
        }
        Ok(())
    }
}

/// `sum`, `avg`, `count` or `group` of an input holding histograms, through a [`Fold`].
#[allow(clippy::too_many_arguments)]
fn fold_all(
    ctx: &QueryContext,
    grid: Grid,
    op: AggregateOp,
    grouping: &[String],
    without: bool,
    pos: &str,
    input: &Rows,
    params: &[f64],
) -> Result<Rows> {
    let mut fold = Fold::new(ctx, grid, op, grouping, without).at(pos);
    let mut groups: HashMap<u32, u32> = HashMap::new();
    for k in 0..input.len() {
        let s = input.series[k];
        let g = match groups.get(&s) {
            Some(g) => *g,
            None => {
                let g = fold.group_of(s);
                groups.insert(s, g);
                g
            }
        };
        match input.hist(k) {
            Some(h) => fold.add_hist_to_group(g, input.ts[k], h)?,
            None => fold.add_to_group(g, input.ts[k], input.vals[k])?,
        }
    }
    fold.finish(params)
}

#[allow(clippy::too_many_arguments)]
/// Evaluates one aggregation over input 0 (input 1 is the scalar parameter, if any).
pub(super) fn aggregate(
    ctx: &QueryContext,
    grid: Grid,
    op: AggregateOp,
    grouping: &[String],
    without: bool,
    param: &AggParam,
    pos: &str,
    mut inputs: Vec<Rows>,
) -> Result<Rows> {
    let _params_held = ctx.budget.hold(grid.len(), 8)?;
    let params = match param {
        AggParam::Scalar(a) => scalar_values(*a, &inputs, grid),
        _ => vec![f64::NAN; grid.len()],
    };
    // Parameters are checked at every step, whether or not the input has samples there.
    for &p in &params {
        match op {
            AggregateOp::Topk | AggregateOp::Bottomk | AggregateOp::Limitk => {
                k_param(p)?;
            }
            AggregateOp::LimitRatio if p.is_nan() => return Err(exec_err("Ratio value is NaN")),
            AggregateOp::Quantile if p.is_nan() || !(0.0..=1.0).contains(&p) => ctx.warn(format!(
                "PromQL warning: quantile value should be between 0 and 1, got {}{pos}",
                format_g(p)
            )),
            _ => {}
        }
    }
    let mut input = std::mem::take(&mut inputs[0]);
    if input.has_histograms() {
        match op {
            // Fold histograms (sum, avg) or count them (count, group).
            AggregateOp::Sum | AggregateOp::Avg | AggregateOp::Count | AggregateOp::Group => {
                return fold_all(ctx, grid, op, grouping, without, pos, &input, &params);
            }
            AggregateOp::Limitk | AggregateOp::LimitRatio | AggregateOp::CountValues => {}
            _ => {
                ctx.info(format!(
                    "PromQL info: ignored histogram in {} aggregation{pos}",
                    op.as_str()
                ));
                input.drop_histograms();
            }
        }
    }
    // Accumulators that only add (sum, avg, …) take the rows as they come, into a
    // (step × group) table: for one step and group the rows arrive in the same order as
    // after a sort by step, so results are identical and the sort is saved. Operators
    // whose output order depends on arrival across groups (topk, limitk, …) sort first.
    let direct = accumulates(op) && input.ts.iter().all(|&t| grid.index(t).is_some());
    if !direct {
        input.sort_by_step(&grid, &ctx.budget)?;
    }

    // Groups of every input series, indexed by series id.
    const NONE: u32 = u32::MAX;
    let max_id = input.series.iter().copied().max().unwrap_or(0) as usize;
    let mut group_of: Vec<u32> = vec![NONE; max_id + 1];
    let count_values = match (op, param) {
        (AggregateOp::CountValues, AggParam::Label(l)) => Some(l.clone()),
        _ => None,
    };
    let mut fold = Fold::new(ctx, grid, op, grouping, without).at(pos);
    if count_values.is_none() {
        for &s in &input.series {
            if group_of[s as usize] == NONE {
                group_of[s as usize] = fold.group_of(s);
            }
        }
    }
    if direct && grid.len().saturating_mul(fold.groups.len()) <= 1 << 20 {
        for k in 0..input.len() {
            let g = group_of[input.series[k] as usize];
            fold.add_to_group(g, input.ts[k], input.vals[k])?;
        }
        return fold.finish(&params);
    }
    let groups = std::mem::take(&mut fold.groups);
    drop(fold);
    let out_ids: Vec<u32> = groups
        .iter()
        .map(|(l, d)| ctx.registry.intern(l.clone(), *d))
        .collect();
    if direct {
        input.sort_by_step(&grid, &ctx.budget)?;
    }

    // Every output row stands for at least one input row of its step.
    let bound = input
        .len()
        .min(grid.len().saturating_mul(groups.len().max(1)));
    let mut out = Rows::charged(&ctx.budget, bound)?;
    let mut accs: Vec<Option<Acc>> = vec![None; groups.len()];
    let mut heaps: Vec<Vec<(u32, f64)>> = vec![Vec::new(); groups.len()];
    let mut order: Vec<u32> = Vec::new();
    let mut cv_label_cache: HashMap<(u32, u64), u32> = HashMap::new();
    for (t, run) in input.step_runs() {
        let (start, i) = (run.start, run.end);
        let step = grid.index(t).unwrap_or(0);
        let p = params[step];
        order.clear();
        if step.is_multiple_of(64) {
            ctx.check_deadline()?;
        }
        if let Some(label) = &count_values {
            // count_values: group by the value label plus the grouping.
            let mut counts: Vec<(u32, f64)> = Vec::new();
            let mut pos: HashMap<u32, usize> = HashMap::new();
            for k in start..i {
                let (s, v) = (input.series[k], input.vals[k]);
                let hist_value = input
                    .hist(k)
                    .map(|h| crate::functions::native::go_string(h));
                let cached = if hist_value.is_some() {
                    None
                } else {
                    cv_label_cache.get(&(s, v.to_bits()))
                };
                let id = match cached {
                    Some(id) => *id,
                    None => {
                        let meta = ctx.registry.get(s);
                        let mut pairs: Vec<Label> = meta
                            .labels
                            .iter()
                            .filter(|l| *l.name != **label)
                            .cloned()
                            .collect();
                        let value = match &hist_value {
                            Some(text) => text.clone(),
                            None => format_value_label(v),
                        };
                        pairs.push(Label {
                            name: label.as_str().into(),
                            value: value.into(),
                        });
                        let mut g = grouping.to_vec();
                        if !without {
                            g.push(label.clone());
                        }
                        let gl = group_labels(&Labels::from_labels(pairs), &g, without);
                        let id = ctx.registry.intern(gl, false);
                        if hist_value.is_none() {
                            cv_label_cache.insert((s, v.to_bits()), id);
                        }
                        id
                    }
                };
                match pos.get(&id) {
                    Some(&j) => counts[j].1 += 1.0,
                    None => {
                        pos.insert(id, counts.len());
                        counts.push((id, 1.0));
                    }
                }
            }
            for (id, c) in counts {
                out.push_in(&ctx.budget, id, t, c)?;
            }
            continue;
        }
        match op {
            AggregateOp::Topk | AggregateOp::Bottomk | AggregateOp::Limitk => {
                let mut k = k_param(p)?;
                let n = (i - start) as i64;
                if k > n {
                    k = n;
                }
                if k < 1 {
                    continue;
                }
                let k = k as usize;
                let top = op == AggregateOp::Topk;
                let less = move |a: f64, b: f64| {
                    if a.is_nan() {
                        return true;
                    }
                    if top { a < b } else { a > b }
                };
                for h in heaps.iter_mut() {
                    h.clear();
                }
                for kk in start..i {
                    let (s, v) = (input.series[kk], input.vals[kk]);
                    let g = group_of[s as usize] as usize;
                    let h = &mut heaps[g];
                    if h.is_empty() {
                        order.push(g as u32);
                    }
                    if op == AggregateOp::Limitk {
                        if h.len() < k {
                            // The row's place, so a histogram row is handed on whole.
                            h.push((s, kk as f64));
                        }
                        continue;
                    }
                    if h.len() < k {
                        h.push((s, v));
                        let j = h.len() - 1;
                        heap_up(h, j, &less);
                    } else {
                        let better = if top { h[0].1 < v } else { h[0].1 > v };
                        if better || (h[0].1.is_nan() && !v.is_nan()) {
                            h[0] = (s, v);
                            if k > 1 && !heap_down(h, 0, &less) {
                                heap_up(h, 0, &less);
                            }
                        }
                    }
                }
                for &g in &order {
                    let h = &mut heaps[g as usize];
                    if op != AggregateOp::Limitk && h.len() > 1 {
                        reverse_sort(h, &less);
                    }
                    for &(s, v) in h.iter() {
                        if op == AggregateOp::Limitk {
                            let kk = v as usize;
                            let h = input.hist(kk).cloned();
                            out.push_value_in(&ctx.budget, s, t, input.vals[kk], h)?;
                        } else {
                            out.push_in(&ctx.budget, s, t, v)?;
                        }
                    }
                }
            }
            AggregateOp::LimitRatio => {
                if p.is_nan() {
                    return Err(exec_err("Ratio value is NaN"));
                }
                let mut r = p;
                if !(-1.0..=1.0).contains(&r) {
                    let capped = r.clamp(-1.0, 1.0);
                    ctx.warn(format!(
                        "PromQL warning: ratio value should be between -1 and 1, got {}, capping to {}{pos}",
                        format_g(r),
                        format_g(capped)
                    ));
                    r = capped;
                }
                for kk in start..i {
                    let s = input.series[kk];
                    let offset =
                        go_labels_hash(&ctx.registry.get(s).labels) as f64 / u64::MAX as f64;
                    if (r >= 0.0 && offset < r) || (r < 0.0 && offset >= 1.0 + r) {
                        let h = input.hist(kk).cloned();
                        out.push_value_in(&ctx.budget, s, t, input.vals[kk], h)?;
                    }
                }
            }
            _ => {
                for kk in start..i {
                    let (s, v) = (input.series[kk], input.vals[kk]);
                    let g = group_of[s as usize] as usize;
                    match &mut accs[g] {
                        Some(a) => a.add(op, v),
                        None => {
                            accs[g] = Some(Acc::new(op, v));
                            order.push(g as u32);
                        }
                    }
                }
                for &g in &order {
                    if let Some(mut a) = accs[g as usize].take() {
                        out.push_in(&ctx.budget, out_ids[g as usize], t, a.finish(op, p))?;
                    }
                }
            }
        }
    }
    Ok(out)
}
