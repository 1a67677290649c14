//! The data model every plan node shares: the step grid, the vector relation
//! `(series u32, ts i64, value f64)`, and the per-query series registry that maps
//! series ids to label sets (labels never travel in columns).

use datafusion::common::HashMap;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, Int64Array, PrimitiveArray, RecordBatch, UInt32Array,
};
use datafusion::arrow::datatypes::{ArrowPrimitiveType, Float64Type, Int64Type, UInt32Type};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{DFSchema, DFSchemaRef};
use parking_lot::{Mutex, RwLock};
use strata_storage::{Db, Labels};

use crate::error::{EngineError, Result};
use crate::memory::{Budget, POINT_BYTES};

/// The series id of scalar relations (labels `{}`).
pub const SCALAR_SERIES: u32 = 0;
/// Bit pattern of Prometheus's staleness marker.
pub const STALE_NAN: u64 = strata_storage::STALE_NAN.to_bits();

/// True if `v` is a staleness marker.
#[inline]
pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN
}

/// Evaluation steps: `start, start+step, …, ≤ end` (ms). An instant query is one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd)]
pub struct Grid {
    /// First step.
    pub start: i64,
    /// Last step (inclusive bound).
    pub end: i64,
    /// Step width, > 0.
    pub step: i64,
}

impl Grid {
    /// Number of steps.
    pub fn len(&self) -> usize {
        if self.end < self.start || self.step <= 0 {
            0
        } else {
            let steps = (i128::from(self.end) - i128::from(self.start)) / i128::from(self.step);
            usize::try_from(steps).map_or(usize::MAX, |n| n.saturating_add(1))
        }
    }

    /// True when the grid has no step.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The step times.
    pub fn steps(&self) -> impl Iterator<Item = i64> + use<> {
        let g = *self;
        (0..g.len()).map(move |i| g.start + i as i64 * g.step)
    }

    /// Index of the step at `ts`, if `ts` is on the grid.
    pub fn index(&self, ts: i64) -> Option<usize> {
        if ts < self.start || ts > self.end || (ts - self.start) % self.step != 0 {
            None
        } else {
            Some(((ts - self.start) / self.step) as usize)
        }
    }
}

/// Query-wide parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryParams {
    /// Query start (ms).
    pub start: i64,
    /// Query end (ms).
    pub end: i64,
    /// Step (ms); 0 for an instant query.
    pub interval: i64,
    /// Lookback delta (ms).
    pub lookback: i64,
}

impl QueryParams {
    /// The top-level grid.
    pub fn grid(&self) -> Grid {
        Grid {
            start: self.start,
            end: self.end,
            step: self.interval.max(1),
        }
    }
}

/// Labels of a series and whether `__name__` must be dropped from the result.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SeriesMeta {
    /// The labels.
    pub labels: Labels,
    /// Delayed `__name__` removal flag.
    pub drop_name: bool,
}

#[derive(Default)]
struct RegistryInner {
    metas: Vec<SeriesMeta>,
    ids: HashMap<SeriesMeta, u32>,
}

impl RegistryInner {
    fn get_or_insert(&mut self, meta: SeriesMeta) -> u32 {
        if let Some(id) = self.ids.get(&meta) {
            return *id;
        }
        let id = self.metas.len() as u32;
        self.metas.push(meta.clone());
        self.ids.insert(meta, id);
        id
    }
}

/// Per-query map of series ids to labels. Id 0 is the scalar series `{}`.
pub struct SeriesRegistry {
    inner: RwLock<RegistryInner>,
}

impl Default for SeriesRegistry {
    fn default() -> Self {
        let r = SeriesRegistry {
            inner: RwLock::new(RegistryInner::default()),
        };
        r.intern(Labels::default(), false);
        r
    }
}

impl SeriesRegistry {
    /// The id of `labels` with `drop_name`, allocating one on first sight.
    pub fn intern(&self, labels: Labels, drop_name: bool) -> u32 {
        let meta = SeriesMeta { labels, drop_name };
        if let Some(id) = self.inner.read().ids.get(&meta) {
            return *id;
        }
        self.inner.write().get_or_insert(meta)
    }

    /// Ids of many label sets at once, in order (one lock): `(id, id of the name-dropped
    /// twin)`, the twin only interned when `drop_name` (else it is the id itself).
    pub fn intern_all(&self, labels: &[Labels], drop_name: bool) -> Vec<(u32, u32)> {
        let mut w = self.inner.write();
        labels
            .iter()
            .map(|l| {
                let meta = |drop_name| SeriesMeta {
                    labels: l.clone(),
                    drop_name,
                };
                let id = w.get_or_insert(meta(false));
                let twin = if drop_name {
                    w.get_or_insert(meta(true))
                } else {
                    id
                };
                (id, twin)
            })
            .collect()
    }

    /// Labels and flag of `id`.
    pub fn get(&self, id: u32) -> SeriesMeta {
        self.inner.read().metas[id as usize].clone()
    }

    /// The same labels with the drop flag set.
    pub fn with_drop_name(&self, id: u32) -> u32 {
        let m = self.get(id);
        if m.drop_name {
            id
        } else {
            self.intern(m.labels, true)
        }
    }
}

/// Per-query state shared by all execution nodes.
pub struct QueryContext {
    /// The database.
    pub db: Arc<Db>,
    /// Series ids of this query.
    pub registry: SeriesRegistry,
    /// Query parameters.
    pub params: QueryParams,
    /// Points and bytes held, against `--query.max-samples` and `--query.max-memory`.
    pub budget: Budget,
    /// Warnings and infos collected during evaluation.
    pub notes: Mutex<Annotations>,
    /// When the query must stop (`--query.timeout` / `timeout`).
    pub deadline: std::time::Instant,
}

impl QueryContext {
    /// Fails with [`EngineError::Timeout`] once the deadline has passed; kernels call this
    /// between series and steps so a long query stops without an await point.
    pub fn check_deadline(&self) -> Result<()> {
        if std::time::Instant::now() >= self.deadline {
            return Err(EngineError::Timeout);
        }
        Ok(())
    }

    /// Records a warning.
    pub fn warn(&self, msg: String) {
        let mut n = self.notes.lock();
        if !n.warnings.contains(&msg) {
            n.warnings.push(msg);
        }
    }

    /// Records an info.
    pub fn info(&self, msg: String) {
        let mut n = self.notes.lock();
        if !n.infos.contains(&msg) {
            n.infos.push(msg);
        }
    }
}

/// Warnings and infos of a query.
#[derive(Clone, Debug, Default)]
pub struct Annotations {
    /// `warnings`.
    pub warnings: Vec<String>,
    /// `infos`.
    pub infos: Vec<String>,
}

/// The Arrow schema of every PromQL relation.
pub fn vector_schema() -> SchemaRef {
    static S: LazyLock<SchemaRef> = LazyLock::new(|| {
        Arc::new(Schema::new(vec![
            Field::new("series", DataType::UInt32, false),
            Field::new("ts", DataType::Int64, false),
            Field::new("value", DataType::Float64, false),
        ]))
    });
    S.clone()
}

/// The DataFusion logical schema of every PromQL relation.
pub fn vector_dfschema() -> DFSchemaRef {
    static S: LazyLock<DFSchemaRef> = LazyLock::new(|| {
        Arc::new(DFSchema::try_from(vector_schema().as_ref().clone()).expect("static schema"))
    });
    S.clone()
}

/// The least room a growing relation asks for.
const MIN_GROWTH: usize = 256;

/// A relation in memory, column-wise.
#[derive(Clone, Debug, Default)]
pub struct Rows {
    /// Series ids.
    pub series: Vec<u32>,
    /// Timestamps (ms).
    pub ts: Vec<i64>,
    /// Values.
    pub vals: Vec<f64>,
}

/// The values of a column known to be a `T` array without nulls: its vector itself when
/// no one else holds it, else a copy.
fn owned_values<T: ArrowPrimitiveType>(col: Option<ArrayRef>) -> Vec<T::Native> {
    let Some(col) = col else { return Vec::new() };
    let data = col.to_data();
    drop(col);
    let (_, values, _) = PrimitiveArray::<T>::from(data).into_parts();
    match values.into_inner().into_vec::<T::Native>() {
        Ok(v) => v,
        Err(shared) => shared.typed_data::<T::Native>().to_vec(),
    }
}

impl Rows {
    /// Empty, with room for `n` rows.
    pub fn with_capacity(n: usize) -> Self {
        Rows {
            series: Vec::with_capacity(n),
            ts: Vec::with_capacity(n),
            vals: Vec::with_capacity(n),
        }
    }

    /// Empty, with room for `n` rows taken from `budget` before they are allocated.
    pub fn charged(budget: &Budget, n: usize) -> Result<Self> {
        let mut r = Rows::default();
        r.reserve_in(budget, n)?;
        Ok(r)
    }

    /// Empty, with room for up to `n` rows as far as `budget` has them: a size hint that
    /// never fails (growth past it asks again, see [`Rows::push_in`]).
    pub fn hinted(budget: &Budget, n: usize) -> Self {
        let mut r = Rows::default();
        if let Ok(got) = budget.grant(0, n, POINT_BYTES) {
            r.reserve_total(got);
        }
        r
    }

    /// Rows the three buffers have room for.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.series
            .capacity()
            .min(self.ts.capacity())
            .min(self.vals.capacity())
    }

    /// Makes room for `extra` more rows, taking the growth from `budget` before allocating:
    /// double the capacity when the budget has it, else what it has left, else an error.
    pub fn reserve_in(&mut self, budget: &Budget, extra: usize) -> Result<()> {
        let cap = self.capacity();
        let need = self.len().saturating_add(extra);
        if need <= cap {
            return Ok(());
        }
        let pref = need.max(cap.saturating_mul(2)).max(MIN_GROWTH);
        let got = budget.grant(need - cap, pref - cap, POINT_BYTES)?;
        self.reserve_total(cap + got);
        Ok(())
    }

    fn reserve_total(&mut self, total: usize) {
        self.series
            .reserve_exact(total.saturating_sub(self.series.len()));
        self.ts.reserve_exact(total.saturating_sub(self.ts.len()));
        self.vals.reserve_exact(total.saturating_sub(self.vals.len()));
    }

    /// Appends a row, growing the buffers only with `budget`'s leave: the way kernels
    /// append, so no relation outgrows `--query.max-samples` or the memory pool.
    #[inline]
    pub fn push_in(&mut self, budget: &Budget, s: u32, t: i64, v: f64) -> Result<()> {
        if self.series.len() >= self.capacity() {
            self.reserve_in(budget, 1)?;
        }
        self.push(s, t, v);
        Ok(())
    }

    /// Gives these rows' room back to `budget`, which they were charged to.
    pub fn release_to(&self, budget: &Budget) {
        budget.release(self.capacity(), POINT_BYTES);
    }

    /// Appends a row (room must have been made: kernels use [`Rows::push_in`]).
    #[inline]
    pub fn push(&mut self, s: u32, t: i64, v: f64) {
        self.series.push(s);
        self.ts.push(t);
        self.vals.push(v);
    }

    /// Removes every row, keeping the capacity.
    pub fn clear(&mut self) {
        self.series.clear();
        self.ts.clear();
        self.vals.clear();
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Appends all rows of `other`.
    pub fn append(&mut self, mut other: Rows) {
        self.series.append(&mut other.series);
        self.ts.append(&mut other.ts);
        self.vals.append(&mut other.vals);
    }

    /// The rows of collected batches. A single batch, as every PromQL node emits, is taken
    /// back without a copy when nothing else holds its buffers (they were made from
    /// [`Rows`] vectors by [`Rows::into_batch`]); otherwise the rows are copied.
    pub fn from_batches(mut batches: Vec<RecordBatch>) -> Result<Rows> {
        if batches.len() == 1 {
            let b = batches.swap_remove(0);
            let shape_ok = b.num_columns() == 3
                && b.column(0).as_any().is::<UInt32Array>()
                && b.column(1).as_any().is::<Int64Array>()
                && b.column(2).as_any().is::<Float64Array>();
            if shape_ok {
                let (_, mut cols, _) = b.into_parts();
                let v = owned_values::<Float64Type>(cols.pop());
                let t = owned_values::<Int64Type>(cols.pop());
                let s = owned_values::<UInt32Type>(cols.pop());
                return Ok(Rows {
                    series: s,
                    ts: t,
                    vals: v,
                });
            }
            batches.push(b);
        }
        let mut rows = Rows::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
        for b in &batches {
            rows.extend_from_batch(b)?;
        }
        Ok(rows)
    }

    /// Appends all rows of a batch.
    pub fn extend_from_batch(&mut self, b: &RecordBatch) -> Result<()> {
        let col = |i: usize| b.column(i).clone();
        let s = col(0);
        let t = col(1);
        let v = col(2);
        let (Some(s), Some(t), Some(v)) = (
            s.as_any().downcast_ref::<UInt32Array>(),
            t.as_any().downcast_ref::<Int64Array>(),
            v.as_any().downcast_ref::<Float64Array>(),
        ) else {
            return Err(EngineError::Exec("unexpected batch schema".into()));
        };
        self.series.extend_from_slice(s.values());
        self.ts.extend_from_slice(t.values());
        self.vals.extend_from_slice(v.values());
        Ok(())
    }

    /// Converts into one record batch (no copy).
    pub fn into_batch(self) -> Result<RecordBatch> {
        RecordBatch::try_new(
            vector_schema(),
            vec![
                Arc::new(UInt32Array::from(self.series)),
                Arc::new(Int64Array::from(self.ts)),
                Arc::new(Float64Array::from(self.vals)),
            ],
        )
        .map_err(|e| EngineError::DataFusion(e.into()))
    }

    /// Sorts by (series, ts), stable.
    pub fn sort_by_series(&mut self, budget: &Budget) -> Result<()> {
        if self
            .series
            .windows(2)
            .zip(self.ts.windows(2))
            .all(|(s, t)| (s[0], t[0]) <= (s[1], t[1]))
        {
            return Ok(());
        }
        let _idx = budget.hold_bytes(self.len() * 4, "a sort")?;
        let mut idx: Vec<u32> = (0..self.len() as u32).collect();
        idx.sort_by_key(|&i| (self.series[i as usize], self.ts[i as usize]));
        self.permute(idx);
        Ok(())
    }

    /// Sorts by (ts, series), stable.
    pub fn sort_by_time(&mut self, budget: &Budget) -> Result<()> {
        let _idx = budget.hold_bytes(self.len() * 4, "a sort")?;
        let mut idx: Vec<u32> = (0..self.len() as u32).collect();
        idx.sort_by_key(|&i| (self.ts[i as usize], self.series[i as usize]));
        self.permute(idx);
        Ok(())
    }

    /// Sorts by (step, then input order) with a counting sort when every row is on
    /// `grid`, which is the case for every instant-vector relation.
    pub fn sort_by_step(&mut self, grid: &Grid, budget: &Budget) -> Result<()> {
        let n = grid.len();
        let _scratch = budget.hold_bytes((n + 1 + self.len()) * 4, "a sort")?;
        let mut counts = vec![0u32; n + 1];
        for &t in &self.ts {
            match grid.index(t) {
                Some(i) => counts[i + 1] += 1,
                None => return self.sort_by_time(budget),
            }
        }
        if self.ts.windows(2).all(|w| w[0] <= w[1]) {
            return Ok(());
        }
        for i in 1..=n {
            counts[i] += counts[i - 1];
        }
        let mut idx = vec![0u32; self.len()];
        for (k, &t) in self.ts.iter().enumerate() {
            let step = ((t - grid.start) / grid.step) as usize;
            idx[counts[step] as usize] = k as u32;
            counts[step] += 1;
        }
        self.permute(idx);
        Ok(())
    }

    /// Reorders the rows so that row `j` becomes old row `idx[j]`, in place: each cycle
    /// of the permutation is walked once, so no second copy of the relation is made.
    fn permute(&mut self, mut idx: Vec<u32>) {
        const DONE: u32 = u32::MAX;
        for start in 0..idx.len() {
            if idx[start] == DONE {
                continue;
            }
            let (s0, t0, v0) = (self.series[start], self.ts[start], self.vals[start]);
            let mut j = start;
            loop {
                let k = idx[j] as usize;
                idx[j] = DONE;
                if k == start {
                    self.series[j] = s0;
                    self.ts[j] = t0;
                    self.vals[j] = v0;
                    break;
                }
                self.series[j] = self.series[k];
                self.ts[j] = self.ts[k];
                self.vals[j] = self.vals[k];
                j = k;
            }
        }
    }

    /// Runs of equal timestamps: `(ts, start..end)`; rows must be sorted by time.
    pub fn step_runs(&self) -> impl Iterator<Item = (i64, std::ops::Range<usize>)> + '_ {
        let mut i = 0;
        std::iter::from_fn(move || {
            if i >= self.ts.len() {
                return None;
            }
            let (t, start) = (self.ts[i], i);
            while i < self.ts.len() && self.ts[i] == t {
                i += 1;
            }
            Some((t, start..i))
        })
    }

    /// Runs of equal series: `(series, start..end)`; rows must be sorted by series.
    pub fn series_runs(&self) -> SeriesRuns<'_> {
        SeriesRuns { rows: self, pos: 0 }
    }
}

/// Iterator over runs of one series.
pub struct SeriesRuns<'a> {
    rows: &'a Rows,
    pos: usize,
}

impl Iterator for SeriesRuns<'_> {
    type Item = (u32, std::ops::Range<usize>);
    fn next(&mut self) -> Option<Self::Item> {
        let s = &self.rows.series;
        if self.pos >= s.len() {
            return None;
        }
        let id = s[self.pos];
        let start = self.pos;
        let mut end = start + 1;
        while end < s.len() && s[end] == id {
            end += 1;
        }
        self.pos = end;
        Some((id, start..end))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod rows_tests {
    use super::*;

    #[test]
    fn a_single_batch_comes_back_without_a_copy() {
        let mut rows = Rows::with_capacity(3);
        rows.push(1, 10, 1.5);
        rows.push(2, 20, f64::NAN);
        rows.push(2, 30, -0.0);
        let ptr = rows.ts.as_ptr();
        let back = Rows::from_batches(vec![rows.clone().into_batch().unwrap()]).unwrap();
        assert_eq!(back.series, rows.series);
        assert_eq!(back.ts, rows.ts);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back.vals), bits(&rows.vals));
        let moved = rows.clone();
        let moved_ptr = moved.ts.as_ptr();
        assert_ne!(moved_ptr, ptr);
        let again = Rows::from_batches(vec![moved.into_batch().unwrap()]).unwrap();
        assert_eq!(again.ts.as_ptr(), moved_ptr, "the vector itself came back");
        // A batch still held elsewhere is copied, and several batches are concatenated.
        let b = rows.clone().into_batch().unwrap();
        let copied = Rows::from_batches(vec![b.clone(), b.clone()]).unwrap();
        assert_eq!(copied.len(), 6);
        let kept = Rows::from_batches(vec![b.clone()]).unwrap();
        assert_eq!(kept.ts, rows.ts);
        assert_eq!(b.num_rows(), 3);
    }
}
