//! Reading a selection in parts: the matching series are listed, interned in label order
//! and cut into label ranges that are read from storage and run through a per-series
//! kernel concurrently (one task per part, as many at a time as the runtime has workers),
//! each part holding only its own raw samples, charged to the query's budget while held.
//! The parts' outputs are concatenated in label order, so the answer is the one a single
//! pass gives. The kernels themselves live in `select`.

use std::sync::Arc;

use futures::StreamExt;
use strata_storage::{Labels, Matcher, SeriesRange, SeriesSamples};

use super::select::storage_matchers;
use crate::error::Result;
use crate::memory::{POINT_BYTES, SAMPLE_BYTES};
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
pub(super) type SeriesKernel = dyn Fn(&QueryContext, u32, u32, &[(i64, f64)], &mut Scratch, &mut Rows) -> Result<()>
    + Send
    + Sync;

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
    /// The runtime's workers: parts read at a time.
    workers: usize,
}

impl Selection {
    /// Lists the selection's series (interning their ids in label order, with their
    /// name-dropped twins when `drop_name`) and cuts it into label ranges holding about
    /// [`PART_WORK`] estimated samples each, at most two per worker.
    pub(super) async fn plan(
        ctx: &QueryContext,
        matchers: &[(String, String, String)],
        mint: i64,
        maxt: i64,
        drop_name: bool,
    ) -> Result<Selection> {
        let ms = Arc::new(storage_matchers(matchers)?);
        let labels = ctx.db.series(&ms, mint, maxt).await?;
        let ids = ctx.registry.intern_all(&labels, drop_name);
        let workers = tokio::runtime::Handle::current()
            .metrics()
            .num_workers()
            .max(1);
        // Work estimate: samples at a 15s interval plus a per-series cost (labels, lookups).
        let per_series = 20 + (maxt.saturating_sub(mint) / 15_000).max(0) as usize;
        let parts = (labels.len().saturating_mul(per_series) / PART_WORK)
            .min(labels.len() / MIN_PART_SERIES)
            .min(2 * workers)
            .max(1);
        let parts = if workers > 1 { parts } else { 1 };
        let ranges = SeriesRange::split(&labels, parts);
        Ok(Selection {
            ms,
            known: Arc::new(Interned { labels, ids }),
            ranges,
            workers,
        })
    }

    /// The selection as one part.
    pub(super) fn whole(
        self,
        ctx: &Arc<QueryContext>,
        mint: i64,
        maxt: i64,
        drop_name: bool,
    ) -> Part {
        Part {
            ctx: ctx.clone(),
            ms: self.ms,
            mint,
            maxt,
            range: SeriesRange::default(),
            known: self.known,
            drop_name,
        }
    }
}

/// Reads the selection and runs `kernel` over each series, in parts: the matching series are
/// cut into label ranges read and processed concurrently (one task per part, as many at a
/// time as the runtime has workers), and the outputs are concatenated in label order, so
/// the result is the one a single pass gives. Series ids are interned in label order first
/// (with their name-dropped twins when `drop_name`), so ids follow label order too.
pub(super) async fn read_parts(
    ctx: &Arc<QueryContext>,
    matchers: &[(String, String, String)],
    mint: i64,
    maxt: i64,
    drop_name: bool,
    room: Room,
    kernel: Arc<SeriesKernel>,
) -> Result<Rows> {
    if mint > maxt {
        return Ok(Rows::default());
    }
    let sel = Selection::plan(ctx, matchers, mint, maxt, drop_name).await?;
    run_parts(ctx, sel, mint, maxt, drop_name, room, kernel).await
}

/// Runs `kernel` over the parts of a planned selection (see [`read_parts`]).
pub(super) async fn run_parts(
    ctx: &Arc<QueryContext>,
    sel: Selection,
    mint: i64,
    maxt: i64,
    drop_name: bool,
    room: Room,
    kernel: Arc<SeriesKernel>,
) -> Result<Rows> {
    if sel.ranges.len() <= 1 {
        return sel
            .whole(ctx, mint, maxt, drop_name)
            .run(room, kernel)
            .await;
    }
    let Selection {
        ms,
        known,
        ranges,
        workers,
    } = sel;
    let mut results = futures::stream::iter(ranges)
        .map(|range| {
            let part = Part {
                ctx: ctx.clone(),
                ms: ms.clone(),
                mint,
                maxt,
                range,
                known: known.clone(),
                drop_name,
            };
            crate::compute::Spawned::new(part.run(room, kernel.clone()))
        })
        .buffered(workers);
    let mut done = Vec::new();
    while let Some(r) = results.next().await {
        done.push(
            r.map_err(|e| crate::error::EngineError::Exec(format!("query task failed: {e}")))??,
        );
    }
    // One allocation for the concatenation; each part is given back once copied.
    let mut out = Rows::charged(&ctx.budget, done.iter().map(Rows::len).sum())?;
    for rows in done {
        let room = rows.charged_rows();
        out.append(rows);
        ctx.budget.release(room, POINT_BYTES);
    }
    Ok(out)
}

/// One part of [`read_parts`].
pub(super) struct Part {
    ctx: Arc<QueryContext>,
    ms: Arc<Vec<Matcher>>,
    mint: i64,
    maxt: i64,
    range: SeriesRange,
    known: Arc<Interned>,
    drop_name: bool,
}

impl Part {
    async fn run(self, room: Room, kernel: Arc<SeriesKernel>) -> Result<Rows> {
        let (series, raw) = self.read().await?;
        // Room for the most the kernel can emit; rows are charged as they are written.
        let bound = match room {
            Room::Steps(n) => series.len().saturating_mul(n),
            Room::Samples => raw,
        };
        let ctx = self.ctx.clone();
        let mut out = Rows::with_room(&ctx.budget, bound);
        let mut sc = Scratch::default();
        self.walk(series, |id, out_id, samples| {
            kernel(&ctx, id, out_id, samples, &mut sc, &mut out)
        })?;
        ctx.budget.release(raw, SAMPLE_BYTES);
        out.settle(&ctx.budget);
        Ok(out)
    }

    /// The part's series with their samples and how many there are, charged to the
    /// query's budget (given back by the caller once walked).
    pub(super) async fn read(&self) -> Result<(Vec<SeriesSamples>, usize)> {
        // Charged as storage decodes, so a part too large for the limits stops early.
        let charge = crate::memory::ReadBudget::new(&self.ctx.budget);
        let r = self
            .ctx
            .db
            .select_charged(&self.ms, self.mint, self.maxt, Some(&self.range), &charge)
            .await;
        charge.finish(r)
    }

    /// Calls `f` with each series' id, output id and samples, in label order.
    pub(super) fn walk(
        &self,
        series: Vec<SeriesSamples>,
        mut f: impl FnMut(u32, u32, &[(i64, f64)]) -> Result<()>,
    ) -> Result<()> {
        let ctx = &self.ctx;
        let known = &self.known.labels;
        // Both lists are in label order: walk them together.
        let mut k = self
            .range
            .after
            .as_ref()
            .map_or(0, |a| known.partition_point(|l| l <= a));
        for (n, ser) in series.into_iter().enumerate() {
            if n % 256 == 0 {
                ctx.check_deadline()?;
            }
            if ser.samples.is_empty() {
                continue;
            }
            while k < known.len() && known[k] < ser.labels {
                k += 1;
            }
            let (id, out_id) = if k < known.len() && known[k] == ser.labels {
                self.known.ids[k]
            } else {
                // Created after the series were listed.
                let id = ctx.registry.intern(ser.labels, false);
                let out_id = if self.drop_name {
                    ctx.registry.with_drop_name(id)
                } else {
                    id
                };
                (id, out_id)
            };
            f(id, out_id, &ser.samples)?;
        }
        Ok(())
    }
}
