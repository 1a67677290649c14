//! [`Rows`]: a PromQL relation in memory, column-wise, and how it grows within its query's
//! [`Budget`].
//!
//! A relation is charged for the rows it may hold before they are written: kernels append
//! with [`Rows::push_in`], which asks the budget for more (doubling, or what is left near
//! the limits) whenever the rows reach the charge, and fails with the budget's error
//! instead of growing past `--query.max-samples` or the memory pool. The buffers' capacity
//! may run ahead of the charge: [`Rows::with_room`] reserves address space for a known
//! bound without charging it (pages never written cost no memory), so a dense output is
//! written without reallocation, whose freed buffers the allocator keeps resident for a
//! while. Before a node hands its output on, [`Rows::settle`] makes the charge its
//! capacity, so the consumer gives back exactly that.
//!
//! It must not allocate outside these paths in kernels: [`Rows::push`] is for rows already
//! charged ([`Rows::charged`]).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BinaryArray, BinaryBuilder, Float64Array, Int64Array, PrimitiveArray,
    RecordBatch, UInt32Array,
};
use datafusion::arrow::datatypes::{ArrowPrimitiveType, Float64Type, Int64Type, UInt32Type};
use strata_vocab::FloatHistogram;

use crate::error::{EngineError, Result};
use crate::memory::{Budget, POINT_BYTES, SAMPLE_BYTES};
use crate::model::{Grid, vector_schema};

/// The least room a growing relation asks for.
const MIN_GROWTH: usize = 64;
/// Unused room past which [`Rows::settle`] shrinks the buffers.
const SHRINK_SLACK: usize = 4096;

/// A relation in memory, column-wise.
#[derive(Debug, Default)]
pub struct Rows {
    /// Series ids.
    pub series: Vec<u32>,
    /// Timestamps (ms).
    pub ts: Vec<i64>,
    /// Values (of a histogram row: 0, not to be read).
    pub vals: Vec<f64>,
    /// Native histogram values, by row, `None` for a float row; empty when no row holds a
    /// histogram (float relations carry nothing extra).
    pub hists: Vec<Option<Arc<FloatHistogram>>>,
    /// Rows charged to the query's budget (at least the length).
    charged: usize,
    /// Extra points charged for the histogram rows' size ([`hist_points`] each, of
    /// [`SAMPLE_BYTES`]), and those appended but not charged yet ([`Rows::settle`] charges
    /// them).
    hist_charged: usize,
    hist_uncharged: usize,
}

/// The points a histogram row counts beyond its own: its size in float samples, as
/// Prometheus counts a histogram against `--query.max-samples` (`HPoint.size()`).
pub fn hist_points(h: &FloatHistogram) -> usize {
    h.size_bytes() / SAMPLE_BYTES
}

/// A histogram row of a relation: its series, time and value.
pub type HistRow = (u32, i64, Arc<FloatHistogram>);

/// A copy of the rows, charged to no budget.
impl Clone for Rows {
    fn clone(&self) -> Self {
        Rows {
            series: self.series.clone(),
            ts: self.ts.clone(),
            vals: self.vals.clone(),
            hists: self.hists.clone(),
            charged: 0,
            hist_charged: 0,
            hist_uncharged: 0,
        }
    }
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
    /// Empty, with room for `n` rows, charged to nothing (tests, and copies whose rows
    /// were charged as batches).
    pub fn with_capacity(n: usize) -> Self {
        Rows {
            series: Vec::with_capacity(n),
            ts: Vec::with_capacity(n),
            vals: Vec::with_capacity(n),
            hists: Vec::new(),
            charged: 0,
            hist_charged: 0,
            hist_uncharged: 0,
        }
    }

    /// Empty, charged for `n` rows (taken from `budget` before they are allocated).
    pub fn charged(budget: &Budget, n: usize) -> Result<Self> {
        let mut r = Rows::default();
        r.reserve_in(budget, n)?;
        Ok(r)
    }

    /// Empty, with address space for up to `n` rows (no more than the budget has left),
    /// charged for none: rows are charged as they are appended ([`Rows::push_in`]).
    pub fn with_room(budget: &Budget, n: usize) -> Self {
        let mut r = Rows::default();
        let n = n
            .min(budget.points_left())
            .min(budget.bytes_left() / POINT_BYTES);
        if n > MIN_GROWTH && r.try_reserve_total(n).is_err() {
            r = Rows::default();
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

    /// Rows charged to the budget.
    pub fn charged_rows(&self) -> usize {
        self.charged
    }

    /// Makes room for `extra` more rows, charging them to `budget` before allocating:
    /// twice the charge when the budget has it, else what it has left, else an error.
    pub fn reserve_in(&mut self, budget: &Budget, extra: usize) -> Result<()> {
        let need = self.len().saturating_add(extra);
        if need <= self.charged {
            return Ok(());
        }
        let pref = need.max(self.charged.saturating_mul(2)).max(MIN_GROWTH);
        let got = budget.grant(need - self.charged, pref - self.charged, POINT_BYTES)?;
        if self.charged + got > self.capacity()
            && self.try_reserve_total(self.charged + got).is_err()
        {
            budget.release(got, POINT_BYTES);
            return Err(EngineError::OutOfMemory {
                limit: budget.pool_limit(),
                detail: format!("the system refused memory for {got} more rows"),
            });
        }
        self.charged += got;
        Ok(())
    }

    /// Grows the three buffers to hold `total` rows, or fails without aborting.
    fn try_reserve_total(&mut self, total: usize) -> std::result::Result<(), ()> {
        let more = |len: usize| total.saturating_sub(len);
        self.series
            .try_reserve_exact(more(self.series.len()))
            .map_err(|_| ())?;
        self.ts
            .try_reserve_exact(more(self.ts.len()))
            .map_err(|_| ())?;
        self.vals
            .try_reserve_exact(more(self.vals.len()))
            .map_err(|_| ())
    }

    /// Appends a row, charging `budget` first when the rows reach their charge: the way
    /// kernels append, so no relation outgrows `--query.max-samples` or the memory pool.
    #[inline]
    pub fn push_in(&mut self, budget: &Budget, s: u32, t: i64, v: f64) -> Result<()> {
        if self.series.len() >= self.charged {
            self.reserve_in(budget, 1)?;
        }
        self.push(s, t, v);
        Ok(())
    }

    /// Charges the size of the histogram rows appended since the last charge.
    pub fn charge_histograms(&mut self, budget: &Budget) -> Result<()> {
        if self.hist_uncharged > 0 {
            budget.charge(self.hist_uncharged, SAMPLE_BYTES)?;
            self.hist_charged += std::mem::take(&mut self.hist_uncharged);
        }
        Ok(())
    }

    /// Makes the charge the buffers' capacity before the rows are handed on: unused room
    /// past [`SHRINK_SLACK`] rows is given back to the allocator, the charge follows; the
    /// histogram rows' size is charged (failing when it is past the query's limits).
    pub fn settle(&mut self, budget: &Budget) -> Result<()> {
        if self.capacity() - self.len() > SHRINK_SLACK {
            self.series.shrink_to_fit();
            self.ts.shrink_to_fit();
            self.vals.shrink_to_fit();
        }
        let cap = self.capacity();
        if self.charged > cap {
            budget.release(self.charged - cap, POINT_BYTES);
        } else {
            budget.force(cap - self.charged, POINT_BYTES);
        }
        self.charged = cap;
        self.charge_histograms(budget)
    }

    /// Gives these rows' charge back to `budget`.
    pub fn release_to(&mut self, budget: &Budget) {
        budget.release(self.charged, POINT_BYTES);
        budget.release(self.hist_charged, SAMPLE_BYTES);
        self.charged = 0;
        self.hist_charged = 0;
    }

    /// Appends a row that was charged for ([`Rows::charged`]); kernels that cannot bound
    /// their output use [`Rows::push_in`].
    #[inline]
    pub fn push(&mut self, s: u32, t: i64, v: f64) {
        self.series.push(s);
        self.ts.push(t);
        self.vals.push(v);
        if !self.hists.is_empty() {
            self.hists.push(None);
        }
    }

    /// Appends a histogram row, charging as [`Rows::push_in`] does.
    pub fn push_hist_in(
        &mut self,
        budget: &Budget,
        s: u32,
        t: i64,
        h: Arc<FloatHistogram>,
    ) -> Result<()> {
        if self.series.len() >= self.charged {
            self.reserve_in(budget, 1)?;
        }
        self.push_hist(s, t, h);
        self.charge_histograms(budget)
    }

    /// Appends a histogram row whose row was charged for; its size is charged at the
    /// latest when the rows are settled ([`Rows::settle`]).
    pub fn push_hist(&mut self, s: u32, t: i64, h: Arc<FloatHistogram>) {
        self.hist_uncharged += hist_points(&h);
        if self.hists.is_empty() {
            self.hists.resize(self.series.len(), None);
        }
        self.series.push(s);
        self.ts.push(t);
        self.vals.push(0.0);
        self.hists.push(Some(h));
    }

    /// Appends a row of either kind.
    pub fn push_value_in(
        &mut self,
        budget: &Budget,
        s: u32,
        t: i64,
        v: f64,
        h: Option<Arc<FloatHistogram>>,
    ) -> Result<()> {
        match h {
            Some(h) => self.push_hist_in(budget, s, t, h),
            None => self.push_in(budget, s, t, v),
        }
    }

    /// The histogram of row `i`, if it is a histogram row.
    #[inline]
    pub fn hist(&self, i: usize) -> Option<&Arc<FloatHistogram>> {
        self.hists.get(i).and_then(Option::as_ref)
    }

    /// Whether any row holds a histogram.
    pub fn has_histograms(&self) -> bool {
        self.hists.iter().any(Option::is_some)
    }

    /// Removes the histogram rows (what operators that only know floats see); the rows'
    /// charge is kept.
    pub fn drop_histograms(&mut self) -> usize {
        if !self.has_histograms() {
            self.hists = Vec::new();
            return 0;
        }
        let hists = std::mem::take(&mut self.hists);
        let mut w = 0;
        for (r, h) in hists.iter().enumerate() {
            if h.is_none() {
                self.series[w] = self.series[r];
                self.ts[w] = self.ts[r];
                self.vals[w] = self.vals[r];
                w += 1;
            }
        }
        let dropped = self.series.len() - w;
        self.series.truncate(w);
        self.ts.truncate(w);
        self.vals.truncate(w);
        dropped
    }

    /// Takes the histogram rows out, leaving the float rows (charge kept).
    pub fn take_histograms(&mut self) -> Vec<HistRow> {
        let out: Vec<HistRow> = self
            .hists
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|h| (self.series[i], self.ts[i], h.clone())))
            .collect();
        self.drop_histograms();
        out
    }

    /// Removes every row, keeping the capacity (and the charge).
    pub fn clear(&mut self) {
        self.series.clear();
        self.ts.clear();
        self.vals.clear();
        self.hists.clear();
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Appends all rows of `other` (room for them must have been charged; `other`'s charge
    /// stays with the caller to give back).
    pub fn append(&mut self, mut other: Rows) {
        if !other.hists.is_empty() || !self.hists.is_empty() {
            self.hists.resize(self.series.len(), None);
            other.hists.resize(other.series.len(), None);
            self.hists.append(&mut other.hists);
        }
        self.series.append(&mut other.series);
        self.ts.append(&mut other.ts);
        self.vals.append(&mut other.vals);
    }

    /// The rows of collected batches. A single batch, as every PromQL node emits, is taken
    /// back without a copy when nothing else holds its buffers (they were made from
    /// [`Rows`] vectors by [`Rows::into_batch`]); otherwise the rows are copied. The rows
    /// count as charged: the node that made the batches was charged for them, and whoever
    /// takes them over gives them back ([`Rows::release_to`]).
    pub fn from_batches(mut batches: Vec<RecordBatch>) -> Result<Rows> {
        if batches.len() == 1 {
            let b = batches.swap_remove(0);
            let shape_ok = b.num_columns() == 4
                && b.column(0).as_any().is::<UInt32Array>()
                && b.column(1).as_any().is::<Int64Array>()
                && b.column(2).as_any().is::<Float64Array>()
                && b.column(3).null_count() == b.num_rows();
            if shape_ok {
                let (_, mut cols, _) = b.into_parts();
                cols.pop();
                let v = owned_values::<Float64Type>(cols.pop());
                let t = owned_values::<Int64Type>(cols.pop());
                let s = owned_values::<UInt32Type>(cols.pop());
                let mut rows = Rows {
                    series: s,
                    ts: t,
                    vals: v,
                    hists: Vec::new(),
                    charged: 0,
                    hist_charged: 0,
                    hist_uncharged: 0,
                };
                rows.charged = rows.capacity();
                return Ok(rows);
            }
            batches.push(b);
        }
        let mut rows = Rows::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
        for b in &batches {
            rows.extend_from_batch(b)?;
        }
        rows.charged = rows.capacity();
        // The histograms' size was charged by the node that made them, as here.
        rows.hist_charged = std::mem::take(&mut rows.hist_uncharged);
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
        let before = self.series.len();
        self.series.extend_from_slice(s.values());
        self.ts.extend_from_slice(t.values());
        self.vals.extend_from_slice(v.values());
        if let Some(h) = b.columns().get(3)
            && h.null_count() < h.len()
        {
            let h = h
                .as_any()
                .downcast_ref::<BinaryArray>()
                .ok_or_else(|| EngineError::Exec("unexpected batch schema".into()))?;
            self.hists.resize(before, None);
            for i in 0..h.len() {
                self.hists.push(if h.is_null(i) {
                    None
                } else {
                    let v = FloatHistogram::decode(h.value(i))
                        .map_err(|e| EngineError::Exec(format!("histogram column: {e}")))?;
                    self.hist_uncharged += hist_points(&v);
                    Some(Arc::new(v))
                });
            }
        } else if !self.hists.is_empty() {
            self.hists.resize(self.series.len(), None);
        }
        Ok(())
    }

    /// Converts into one record batch (no copy of the float columns; histograms are
    /// encoded into the `hist` column, all null when there are none).
    pub fn into_batch(self) -> Result<RecordBatch> {
        let n = self.series.len();
        let hist: ArrayRef = if self.hists.iter().any(Option::is_some) {
            let mut b = BinaryBuilder::with_capacity(n, 0);
            let mut buf = Vec::new();
            for i in 0..n {
                match self.hists.get(i).and_then(Option::as_ref) {
                    Some(h) => {
                        buf.clear();
                        h.encode_into(&mut buf);
                        b.append_value(&buf);
                    }
                    None => b.append_null(),
                }
            }
            Arc::new(b.finish())
        } else {
            datafusion::arrow::array::new_null_array(
                &datafusion::arrow::datatypes::DataType::Binary,
                n,
            )
        };
        RecordBatch::try_new(
            vector_schema(),
            vec![
                Arc::new(UInt32Array::from(self.series)),
                Arc::new(Int64Array::from(self.ts)),
                Arc::new(Float64Array::from(self.vals)),
                hist,
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
        if !self.hists.is_empty() {
            self.hists.resize(self.series.len(), None);
            let old = std::mem::take(&mut self.hists);
            self.hists = idx.iter().map(|&k| old[k as usize].clone()).collect();
        }
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
mod tests {
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

    fn budget(points: u64) -> (Arc<datafusion::execution::runtime_env::RuntimeEnv>, Budget) {
        let rt = crate::memory::runtime(1 << 30);
        let b = Budget::new(&rt.memory_pool, points, "test");
        (rt, b)
    }

    #[test]
    fn appends_stop_at_the_budget_before_the_buffers_grow() {
        let (_rt, b) = budget(1000);
        let mut rows = Rows::default();
        for k in 0..1000 {
            rows.push_in(&b, 1, k, 0.0).unwrap();
        }
        assert!(rows.capacity() <= 1000, "{}", rows.capacity());
        assert!(matches!(
            rows.push_in(&b, 1, 1000, 0.0),
            Err(EngineError::TooManySamples)
        ));
        assert_eq!(rows.len(), 1000);
        assert_eq!(b.points(), 1000);
        rows.release_to(&b);
        assert_eq!((b.points(), b.bytes()), (0, 0));
    }

    #[test]
    fn room_is_charged_as_it_is_written_and_settled_to_the_rows() {
        let (_rt, b) = budget(1_000_000);
        let mut rows = Rows::with_room(&b, 100_000);
        assert!(rows.capacity() >= 100_000);
        assert_eq!(b.points(), 0, "room is not charged");
        for k in 0..10 {
            rows.push_in(&b, 1, k, 0.0).unwrap();
        }
        assert_eq!(
            rows.capacity(),
            100_000.max(rows.capacity()),
            "no reallocation"
        );
        assert!(b.points() < 100, "{}", b.points());
        rows.settle(&b).unwrap();
        assert_eq!(rows.capacity(), 10, "unused room given back");
        assert_eq!(b.points(), 10);
        let back = Rows::from_batches(vec![rows.into_batch().unwrap()]).unwrap();
        assert_eq!(back.charged_rows(), back.capacity());
    }

    #[test]
    fn sorts_permute_in_place() {
        let (_rt, b) = budget(1_000_000);
        let mut rows = Rows::with_capacity(6);
        for (s, t) in [(3, 20), (1, 10), (3, 10), (2, 30), (1, 20), (2, 10)] {
            rows.push(s, t, (s * 100 + t as u32) as f64);
        }
        rows.sort_by_series(&b).unwrap();
        assert_eq!(rows.series, [1, 1, 2, 2, 3, 3]);
        assert_eq!(rows.ts, [10, 20, 10, 30, 10, 20]);
        assert_eq!(rows.vals, [110.0, 120.0, 210.0, 230.0, 310.0, 320.0]);
        let grid = Grid {
            start: 10,
            end: 30,
            step: 10,
        };
        rows.sort_by_step(&grid, &b).unwrap();
        assert_eq!(rows.ts, [10, 10, 10, 20, 20, 30]);
        assert_eq!(rows.series, [1, 2, 3, 1, 3, 2], "stable within a step");
        assert_eq!(b.bytes(), 0, "sort scratch given back");
    }
}
