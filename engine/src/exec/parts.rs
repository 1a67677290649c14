//! Reading a selection in parts ([`Scan`]): the matching series are listed, interned in
//! label order and cut into label ranges, one per partition of the node that reads them;
//! each part is read from storage and run through a per-series kernel, holding only its own
//! raw samples, charged to the query's budget while held. The parts' outputs concatenated
//! in partition order are what a single pass gives. The kernels themselves live in
//! `select`.

use std::sync::Arc;

use strata_storage::{Labels, Matcher, SeriesRange, SeriesSamples};

use super::select::{RangeSpec, storage_matchers};
use crate::error::Result;
use crate::memory::SAMPLE_BYTES;
use crate::model::{QueryContext, Rows};

/// Reusable buffers of a kernel.
#[derive(Default)]
pub(super) struct Scratch {
    pub(super) ts: Vec<i64>,
    pub(super) vals: Vec<f64>,
    pub(super) resets: Vec<u32>,
}

impl Scratch {
    /// Takes one series' samples apart into the time and value buffers.
    pub(super) fn split(&mut self, samples: &[(i64, f64)]) {
        self.ts.clear();
        self.vals.clear();
        self.ts.extend(samples.iter().map(|x| x.0));
        self.vals.extend(samples.iter().map(|x| x.1));
    }
}

/// The per-series work of a fused node: context, series id, the id its output goes under
/// (the name-dropped twin where the function drops the name), its samples, scratch, output.
pub(super) type SeriesKernel = dyn Fn(&QueryContext, u32, u32, &[(i64, f64)], &[HistSample], &mut Scratch, &mut Rows) -> Result<()>
    + Send
    + Sync;

/// A histogram sample as storage returns it.
pub(super) type HistSample = (i64, Arc<strata_vocab::FloatHistogram>);

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
/// Estimated samples a part reads at once (16 MB of raw samples).
const SLICE_SAMPLES: usize = 1 << 20;
/// Fewest series of a slice.
const MIN_SLICE_SERIES: usize = 256;

/// Estimated work of one series over `[mint, maxt]`: samples at a 15s interval plus a
/// per-series cost (labels, lookups).
fn per_series_work(mint: i64, maxt: i64) -> usize {
    20 + (maxt.saturating_sub(mint) / 15_000).max(0) as usize
}

/// The series of a selection, sorted, with their ids.
pub(super) struct Interned {
    pub(super) labels: Vec<Labels>,
    ids: Vec<(u32, u32)>,
}

/// A selection listed and cut into parts: its matchers, its series with their ids, and
/// the label ranges read concurrently.
pub(super) struct Selection {
    ms: Arc<Vec<Matcher>>,
    pub(super) known: Arc<Interned>,
    pub(super) ranges: Vec<SeriesRange>,
}

impl Selection {
    /// Lists the selection's series (interning their ids in label order, with their
    /// name-dropped twins when `drop_name`) and cuts it into label ranges holding about
    /// [`PART_WORK`] estimated samples each, at most two per worker.
    pub(super) async fn plan(
        ctx: &QueryContext,
        matchers: &[strata_vocab::LabelMatcher],
        mint: i64,
        maxt: i64,
        drop_name: bool,
    ) -> Result<Selection> {
        let ms = Arc::new(storage_matchers(matchers)?);
        // Raw or downsampled: a scan at a resolution reads series whose raw data is gone.
        let labels = ctx.db.series(&ms, mint, maxt).await?;
        let ids = ctx.registry.intern_all(&labels, drop_name);
        let workers = tokio::runtime::Handle::current()
            .metrics()
            .num_workers()
            .max(1);
        let parts = (labels.len().saturating_mul(per_series_work(mint, maxt)) / PART_WORK)
            .min(labels.len() / MIN_PART_SERIES)
            .min(2 * workers)
            .max(1);
        let parts = match ctx.parts {
            Some(n) => n.max(1),
            None if workers > 1 => parts,
            None => 1,
        };
        let ranges = SeriesRange::split(&labels, parts);
        Ok(Selection {
            ms,
            known: Arc::new(Interned { labels, ids }),
            ranges,
        })
    }
}

/// A selection read by a node in partitions: listed and cut into label ranges when the
/// physical plan is made (so the partition count is known to DataFusion), or, for a node
/// decoded from another process's plan, listed when first read and cut into the same
/// number of ranges.
pub(crate) struct Scan {
    matchers: Vec<strata_vocab::LabelMatcher>,
    mint: i64,
    maxt: i64,
    drop_name: bool,
    parts: usize,
    sel: tokio::sync::OnceCell<Selection>,
    /// Histogram hints re-derived as for statistics ([`super::stats_hints`]).
    stats_only: bool,
    /// Read as aggregates at this resolution for this range function
    /// ([`super::downsampled`]).
    downsampled: Option<(i64, RangeSpec)>,
}

impl std::fmt::Debug for Scan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} parts", self.parts)?;
        if let Some((res, _)) = &self.downsampled {
            write!(
                f,
                " at {} resolution",
                strata_storage::downsample::resolution_name(*res)
            )?;
        }
        Ok(())
    }
}

impl Scan {
    /// Lists the selection now and cuts it into parts.
    pub(super) async fn plan(
        ctx: &QueryContext,
        matchers: &[strata_vocab::LabelMatcher],
        mint: i64,
        maxt: i64,
        drop_name: bool,
    ) -> Result<Scan> {
        let sel = if mint > maxt {
            None
        } else {
            Some(Selection::plan(ctx, matchers, mint, maxt, drop_name).await?)
        };
        Ok(Scan {
            matchers: matchers.to_vec(),
            mint,
            maxt,
            drop_name,
            parts: sel.as_ref().map_or(1, |s| s.ranges.len().max(1)),
            sel: sel.map_or_else(tokio::sync::OnceCell::new, |s| {
                tokio::sync::OnceCell::new_with(Some(s))
            }),
            stats_only: false,
            downsampled: None,
        })
    }

    /// A scan of `parts` parts whose series are listed when first read.
    pub(super) fn later(
        matchers: &[strata_vocab::LabelMatcher],
        mint: i64,
        maxt: i64,
        drop_name: bool,
        parts: usize,
    ) -> Scan {
        Scan {
            matchers: matchers.to_vec(),
            mint,
            maxt,
            drop_name,
            parts: parts.max(1),
            sel: tokio::sync::OnceCell::new(),
            stats_only: false,
            downsampled: None,
        }
    }

    /// The same scan, read as aggregates at `res` for the range function `spec`.
    pub(super) fn downsampled(mut self, res: i64, spec: RangeSpec) -> Scan {
        self.downsampled = Some((res, spec));
        self
    }

    /// The same scan, read for its histograms' statistics only when `yes`.
    pub(super) fn stats_only(mut self, yes: bool) -> Scan {
        self.stats_only = yes;
        self
    }

    /// The sample times it reads.
    pub(super) fn span(&self) -> (i64, i64) {
        (self.mint, self.maxt)
    }

    /// The number of parts.
    pub(super) fn parts(&self) -> usize {
        self.parts
    }

    /// The series of the selection, when already listed.
    pub(super) fn listed(&self) -> Option<&[Labels]> {
        self.sel.get().map(|s| &s.known.labels[..])
    }

    /// The series of the whole selection, in label order (listed if not yet).
    pub(super) async fn selection(&self, ctx: &QueryContext) -> Result<Option<&Selection>> {
        if self.mint > self.maxt {
            return Ok(None);
        }
        let sel = self
            .sel
            .get_or_try_init(|| async {
                let ms = Arc::new(storage_matchers(&self.matchers)?);
                let mut labels = ctx.db.series(&ms, self.mint, self.maxt).await?;
                if ctx.shard.is_some() {
                    labels.retain(|l| ctx.owns(l));
                }
                let ids = ctx.registry.intern_all(&labels, self.drop_name);
                let ranges = SeriesRange::split(&labels, self.parts);
                Ok::<_, crate::error::EngineError>(Selection {
                    ms,
                    known: Arc::new(Interned { labels, ids }),
                    ranges,
                })
            })
            .await?;
        Ok(Some(sel))
    }

    /// Part `p` of the selection (`None`: nothing to read there).
    pub(super) async fn part(&self, ctx: &Arc<QueryContext>, p: usize) -> Result<Option<Part>> {
        let Some(sel) = self.selection(ctx).await? else {
            return Ok(None);
        };
        let mut range = match sel.ranges.len() {
            0 | 1 if p == 0 => SeriesRange::default(),
            _ => match sel.ranges.get(p) {
                Some(r) => r.clone(),
                None => return Ok(None),
            },
        };
        // A task of a distributed query: storage skips the other tasks' series.
        range.keep = ctx.series_filter();
        Ok(Some(Part {
            ctx: ctx.clone(),
            ms: sel.ms.clone(),
            mint: self.mint,
            maxt: self.maxt,
            range,
            known: sel.known.clone(),
            drop_name: self.drop_name,
            stats_only: self.stats_only,
            downsampled: self.downsampled.clone(),
        }))
    }

    /// Part `p` run through `kernel` (no rows where the part is empty), and the number of
    /// series read.
    pub(super) async fn run(
        &self,
        ctx: &Arc<QueryContext>,
        p: usize,
        room: Room,
        kernel: Arc<SeriesKernel>,
    ) -> Result<(Rows, usize)> {
        match self.part(ctx, p).await? {
            Some(part) => part.run(room, kernel).await,
            None => Ok((Rows::default(), 0)),
        }
    }
}

/// One label range of a [`Scan`].
pub(super) struct Part {
    ctx: Arc<QueryContext>,
    ms: Arc<Vec<Matcher>>,
    mint: i64,
    maxt: i64,
    range: SeriesRange,
    known: Arc<Interned>,
    drop_name: bool,
    stats_only: bool,
    downsampled: Option<(i64, RangeSpec)>,
}

impl Part {
    /// The part's rows through `kernel`, and the number of series read.
    pub(super) async fn run(self, room: Room, kernel: Arc<SeriesKernel>) -> Result<(Rows, usize)> {
        if let Some((res, spec)) = &self.downsampled
            && let Some(done) = self.run_downsampled(*res, spec).await?
        {
            return Ok(done);
        }
        // Room for the most the kernel can emit; rows are charged as they are written.
        let bound = match room {
            Room::Steps(n) => self.known_series().saturating_mul(n),
            Room::Samples => 0,
        };
        let ctx = self.ctx.clone();
        let mut out = Rows::with_room(&ctx.budget, bound);
        let mut sc = Scratch::default();
        let n = self
            .each_series(|id, out_id, samples, hists| {
                kernel(&ctx, id, out_id, samples, hists, &mut sc, &mut out)
            })
            .await;
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                out.release_to(&ctx.budget);
                return Err(e);
            }
        };
        if let Err(e) = out.settle(&ctx.budget) {
            out.release_to(&ctx.budget);
            return Err(e);
        }
        Ok((out, n))
    }

    /// The part's rows from aggregates at `res` (`None`: histograms are involved, the
    /// part reads raw data).
    async fn run_downsampled(&self, res: i64, spec: &RangeSpec) -> Result<Option<(Rows, usize)>> {
        let ctx = self.ctx.clone();
        let charge = crate::memory::ReadBudget::new(&ctx.budget);
        let r = ctx
            .db
            .select_aggregates(
                &self.ms,
                super::downsampled::window_ends(spec, res),
                res,
                Some(&self.range),
                &charge,
                false,
            )
            .await;
        let (got, taken) = charge.finish(r)?;
        let Some(series) = got else {
            ctx.budget.release(taken, SAMPLE_BYTES);
            return Ok(None);
        };
        let n = series.len();
        let mut out = Rows::with_room(&ctx.budget, n.saturating_mul(spec.grid.len()));
        let mut k = self.first_known();
        let mut r = Ok(());
        for (i, s) in series.into_iter().enumerate() {
            if i % 256 == 0
                && let Err(e) = ctx.check_deadline()
            {
                r = Err(e);
                break;
            }
            let ids = self.ids_of(s.labels, &mut k);
            if let Err(e) = super::downsampled::eval_series(&ctx, ids, &s.windows, spec, &mut out) {
                r = Err(e);
                break;
            }
        }
        ctx.budget.release(taken, SAMPLE_BYTES);
        if let Err(e) = r.and_then(|()| out.settle(&ctx.budget)) {
            out.release_to(&ctx.budget);
            return Err(e);
        }
        super::downsampled::note(&ctx, res);
        Ok(Some((out, n)))
    }

    /// Where the part's series start among the known ones.
    fn first_known(&self) -> usize {
        self.range
            .after
            .as_ref()
            .map_or(0, |a| self.known.labels.partition_point(|l| l <= a))
    }

    /// The ids (and output id) of `labels`, looked up from `*k` on (series come in label
    /// order), interned when the series appeared after the listing.
    fn ids_of(&self, labels: Labels, k: &mut usize) -> (u32, u32) {
        let known = &self.known.labels;
        while *k < known.len() && known[*k] < labels {
            *k += 1;
        }
        if *k < known.len() && known[*k] == labels {
            return self.known.ids[*k];
        }
        // Created after the series were listed.
        let id = self.ctx.registry.intern(labels, false);
        let out_id = if self.drop_name {
            self.ctx.registry.with_drop_name(id)
        } else {
            id
        };
        (id, out_id)
    }

    /// The known series of the part.
    fn known(&self) -> &[Labels] {
        let known = &self.known.labels;
        let hi = match &self.range.upto {
            Some(u) => known.partition_point(|l| l <= u),
            None => known.len(),
        };
        &known[self.first_known().min(hi)..hi]
    }

    fn known_series(&self) -> usize {
        self.known().len()
    }

    /// The part cut into label sub-ranges of about [`SLICE_SAMPLES`] estimated samples and
    /// at least [`MIN_SLICE_SERIES`] series, tiling it exactly (series created after the
    /// listing fall in one of them).
    fn slices(&self) -> Vec<SeriesRange> {
        let mine = self.known();
        let per_series = per_series_work(self.mint, self.maxt);
        // Every slice lists the selection in the head and each block again: not too many.
        let n = (mine.len().saturating_mul(per_series) / SLICE_SAMPLES)
            .min(mine.len() / MIN_SLICE_SERIES)
            .max(1);
        let mut v = SeriesRange::split(mine, n);
        match (v.first_mut(), n) {
            (Some(first), 2..) => first.after = self.range.after.clone(),
            _ => return vec![self.range.clone()],
        }
        if let Some(last) = v.last_mut() {
            last.upto = self.range.upto.clone();
        }
        for r in &mut v {
            r.keep = self.range.keep.clone();
        }
        v
    }

    /// Reads the part slice by slice and calls `f` with each series' id, output id and
    /// samples, in label order; the number of series read. A slice's samples are charged
    /// to the query's budget while they are walked, so a part holds one slice of raw
    /// samples at a time (a quarter of a 24h selection was 100 MB).
    pub(super) async fn each_series(
        &self,
        mut f: impl FnMut(u32, u32, &[(i64, f64)], &[HistSample]) -> Result<()>,
    ) -> Result<usize> {
        let mut n = 0;
        for r in self.slices() {
            // Charged as storage decodes, so a slice too large for the limits stops early.
            let charge = crate::memory::ReadBudget::new(&self.ctx.budget);
            let got = self
                .ctx
                .db
                .select_charged(&self.ms, self.mint, self.maxt, Some(&r), &charge)
                .await;
            let (series, raw) = charge.finish(got)?;
            n += series.len();
            let walked = self.walk(series, r.after.as_ref(), &mut f);
            self.ctx.budget.release(raw, SAMPLE_BYTES);
            walked?;
        }
        Ok(n)
    }

    /// Calls `f` with each series' id, output id and samples, in label order.
    fn walk(
        &self,
        series: Vec<SeriesSamples>,
        after: Option<&Labels>,
        mut f: impl FnMut(u32, u32, &[(i64, f64)], &[HistSample]) -> Result<()>,
    ) -> Result<()> {
        let ctx = &self.ctx;
        // Both lists are in label order: walk them together.
        let mut k = after.map_or(0, |a| self.known.labels.partition_point(|l| l <= a));
        for (n, ser) in series.into_iter().enumerate() {
            if n % 256 == 0 {
                ctx.check_deadline()?;
            }
            if ser.is_empty() {
                continue;
            }
            let (id, out_id) = self.ids_of(ser.labels.clone(), &mut k);
            if self.stats_only && !ser.histograms.is_empty() {
                f(
                    id,
                    out_id,
                    &ser.samples,
                    &super::stats_hints::derive(&ser.histograms),
                )?;
            } else {
                f(id, out_id, &ser.samples, &ser.histograms)?;
            }
        }
        Ok(())
    }
}
