//! The read operators: the selector (raw samples of matching series), the instant-vector
//! lookup and the range-window functions. An instant or range node whose input is a
//! selector reads it itself, one label-range part per partition: each series goes from
//! storage through the kernel without the raw samples ever being a relation, and the parts
//! run on every worker (or, later, on other nodes). Over any other input (a subquery) they
//! take the input's rows.

use std::sync::Arc;

use datafusion::physical_plan::ExecutionPlan;
use futures::FutureExt;
use futures::future::BoxFuture;

use super::node::{Io, Kernel, Output, as_op, with_inputs};
use super::parts::Scan;
use super::scalar_values;
use super::select::{self, InstantSpec, RangeSpec};
use strata_storage::Labels;

use super::aggregate::group_labels;
use crate::error::Result;
use crate::model::QueryContext;
use crate::plan::PromOp;

/// A selector's matchers `(name, op, value)`, its inclusive time bounds, and whether it is
/// read for its histograms' statistics only.
type SelectorSpec<'a> = (&'a [strata_vocab::LabelMatcher], i64, i64, bool);

/// `PromSelector`: raw samples of matching series in `[mint, maxt]`, stale markers kept.
/// Under an instant or range node it is only the description of what that node reads.
#[derive(Debug)]
pub(crate) struct SelectorKernel {
    pub(super) op: PromOp,
}

impl SelectorKernel {
    /// The matchers and bounds.
    pub(super) fn spec(&self) -> Option<SelectorSpec<'_>> {
        match &self.op {
            PromOp::Selector {
                matchers,
                mint,
                maxt,
                stats_only,
            } => Some((matchers, *mint, *maxt, *stats_only)),
            _ => None,
        }
    }
}

impl Kernel for SelectorKernel {
    fn accepts_histograms(&self) -> bool {
        true
    }

    fn op(&self) -> &PromOp {
        &self.op
    }

    fn run<'a>(&'a self, io: &'a Io, _partition: usize) -> BoxFuture<'a, Result<Output>> {
        async move {
            let Some((m, mint, maxt, stats_only)) = self.spec() else {
                return Ok(Output::Rows(Default::default()));
            };
            select::selector(&io.ctx, m, mint, maxt, stats_only)
                .await
                .map(Output::Rows)
        }
        .boxed()
    }
}

/// The selector a read node's only input is, if it is one.
pub(super) fn selector_input(children: &[Arc<dyn ExecutionPlan>]) -> Option<&SelectorKernel> {
    match children {
        [c] => as_op::<SelectorKernel>(c).map(|n| n.kernel().as_ref()),
        _ => None,
    }
}

/// Plans the scan of the selector below a read node (`None`: the input is not a selector).
pub(super) async fn plan_scan(
    ctx: &QueryContext,
    children: &[Arc<dyn ExecutionPlan>],
    drop_name: bool,
) -> Result<Option<Arc<Scan>>> {
    match selector_input(children).and_then(SelectorKernel::spec) {
        // A distributed query: the workers list the selection when they read it.
        Some((m, mint, maxt, stats_only)) if ctx.layout.is_some() => {
            let parts = ctx.layout.as_ref().map_or(1, |l| l.parts);
            Ok(Some(Arc::new(
                Scan::later(m, mint, maxt, drop_name, parts).stats_only(stats_only),
            )))
        }
        Some((m, mint, maxt, stats_only)) => Ok(Some(Arc::new(
            Scan::plan(ctx, m, mint, maxt, drop_name)
                .await?
                .stats_only(stats_only),
        ))),
        None => Ok(None),
    }
}

/// Plans the scan of the selector below a range node: at a downsampled resolution when
/// its function, range and steps allow ([`super::downsampled::choose`]).
pub(super) async fn plan_range_scan(
    ctx: &QueryContext,
    children: &[Arc<dyn ExecutionPlan>],
    op: &PromOp,
    drop_name: bool,
) -> Result<Option<Arc<Scan>>> {
    let Some((m, mint, maxt, stats_only)) = selector_input(children).and_then(SelectorKernel::spec)
    else {
        return Ok(None);
    };
    let res = match (RangeKernel::new(op.clone(), None), stats_only) {
        // Downsampled blocks are not read by distributed queries (see `crate::distributed`).
        _ if ctx.layout.is_some() => None,
        (Some(k), false) => {
            super::downsampled::choose(ctx, &k.spec, mint, maxt).map(|r| (r, k.spec))
        }
        _ => None,
    };
    let Some((res, spec)) = res else {
        return plan_scan(ctx, children, drop_name).await;
    };
    Ok(Some(Arc::new(
        Scan::plan(ctx, m, mint, maxt, drop_name)
            .await?
            .downsampled(res, spec),
    )))
}

/// A scan of `parts` parts of the selector below a decoded read node, listed when read.
pub(super) fn later_scan(
    children: &[Arc<dyn ExecutionPlan>],
    drop_name: bool,
    parts: Option<usize>,
) -> Option<Arc<Scan>> {
    let (m, mint, maxt, stats_only) = selector_input(children).and_then(SelectorKernel::spec)?;
    Some(Arc::new(
        Scan::later(m, mint, maxt, drop_name, parts.unwrap_or(1)).stats_only(stats_only),
    ))
}

/// Part `partition` of `scan` through `(room, kernel)`, counting the series read.
async fn read_part(
    io: &Io,
    scan: &Scan,
    partition: usize,
    (room, kernel): (super::parts::Room, Arc<super::parts::SeriesKernel>),
) -> Result<Output> {
    let (rows, n) = scan.run(&io.ctx, partition, room, kernel).await?;
    io.series_read(n);
    Ok(Output::Rows(rows))
}

/// What EXPLAIN adds for a read node: the parts it reads.
fn scan_detail(scan: &Option<Arc<Scan>>) -> String {
    scan.as_ref()
        .map_or_else(String::new, |s| format!("reads {s:?}"))
}

/// A read node's partitions: one per part it reads, else one.
fn scan_parts(scan: &Option<Arc<Scan>>) -> usize {
    scan.as_ref().map_or(1, |s| s.parts())
}

/// `PromInstantVector`: the instant-vector lookup at each step (lookback, staleness,
/// `smoothed`, `timestamp()`).
#[derive(Debug)]
pub(crate) struct InstantKernel {
    pub(super) op: PromOp,
    pub(super) spec: InstantSpec,
    /// The selection it reads itself, when its input is a selector.
    pub(super) scan: Option<Arc<Scan>>,
}

impl InstantKernel {
    /// The lookup of `op` (an `Instant` operator), reading `scan` if given.
    pub(super) fn new(op: PromOp, scan: Option<Arc<Scan>>) -> Option<Self> {
        let PromOp::Instant {
            grid,
            lookback,
            offset,
            at,
            sample_ts,
            floats_only,
            smoothed,
            pos,
        } = &op
        else {
            return None;
        };
        let spec = InstantSpec {
            grid: *grid,
            lookback: *lookback,
            offset: *offset,
            at: *at,
            sample_ts: *sample_ts,
            floats_only: *floats_only,
            smoothed: *smoothed,
            pos: pos.clone(),
        };
        Some(InstantKernel { op, spec, scan })
    }
}

impl Kernel for InstantKernel {
    fn accepts_histograms(&self) -> bool {
        true
    }

    fn op(&self) -> &PromOp {
        &self.op
    }

    fn detail(&self) -> String {
        scan_detail(&self.scan)
    }

    fn partitions(&self, _children: &[Arc<dyn ExecutionPlan>]) -> usize {
        scan_parts(&self.scan)
    }

    fn run<'a>(&'a self, io: &'a Io, partition: usize) -> BoxFuture<'a, Result<Output>> {
        async move {
            match &self.scan {
                Some(scan) => {
                    read_part(io, scan, partition, select::instant_reader(&self.spec)).await
                }
                None => {
                    with_inputs(io, |inputs| {
                        select::instant(&io.ctx, &mut inputs[0], &self.spec)
                    })
                    .await
                }
            }
        }
        .boxed()
    }
}

/// `PromRangeWindow`: a range function over the windows `(t − range, t]` of each step
/// (`rate`, `*_over_time`, …, and the raw matrix of a range query's selector).
#[derive(Debug)]
pub(crate) struct RangeKernel {
    pub(super) op: PromOp,
    pub(super) spec: RangeSpec,
    /// The selection it reads itself, when its input is a selector.
    pub(super) scan: Option<Arc<Scan>>,
}

impl RangeKernel {
    /// The window function of `op` (a `Range` operator), reading `scan` if given.
    pub(super) fn new(op: PromOp, scan: Option<Arc<Scan>>) -> Option<Self> {
        let PromOp::Range {
            grid,
            range,
            offset,
            at,
            func,
            p0,
            p1,
            counter_check,
            pos,
            ext,
            params: _,
        } = &op
        else {
            return None;
        };
        let spec = RangeSpec {
            grid: *grid,
            width: *range,
            offset: *offset,
            at: *at,
            func: *func,
            p: [p0.get(), p1.get()],
            counter_check: *counter_check,
            pos: Arc::from(pos.as_str()),
            ext: *ext,
            per_step: None,
        };
        Some(RangeKernel { op, spec, scan })
    }

    /// Whether the output drops the metric name.
    pub(super) fn drops_name(op: &PromOp) -> bool {
        matches!(op, PromOp::Range { func, .. } if !func.keeps_name())
    }
}

impl Kernel for RangeKernel {
    fn accepts_histograms(&self) -> bool {
        true
    }

    fn op(&self) -> &PromOp {
        &self.op
    }

    fn detail(&self) -> String {
        scan_detail(&self.scan)
    }

    fn partitions(&self, _children: &[Arc<dyn ExecutionPlan>]) -> usize {
        scan_parts(&self.scan)
    }

    fn run<'a>(&'a self, io: &'a Io, partition: usize) -> BoxFuture<'a, Result<Output>> {
        async move {
            if let Some(scan) = &self.scan {
                return read_part(io, scan, partition, select::range_reader(&self.spec)).await;
            }
            let PromOp::Range { params, grid, .. } = &self.op else {
                return Ok(Output::Rows(Default::default()));
            };
            with_inputs(io, |inputs| {
                let mut s = self.spec.clone();
                if !params.is_empty() {
                    // Parameters evaluated per step (input 0 is the range's own input).
                    let values: Vec<Vec<f64>> = params
                        .iter()
                        .map(|a| scalar_values(*a, inputs, *grid))
                        .collect();
                    s.per_step = Some(Arc::new(
                        (0..grid.len())
                            .map(|k| [values[0][k], values.get(1).map_or(0.0, |v| v[k])])
                            .collect(),
                    ));
                }
                select::range(&io.ctx, &mut inputs[0], &s)
            })
            .await
        }
        .boxed()
    }
}

/// The scan of a read node, if it reads a selection itself.
pub(super) fn scan_of(plan: &Arc<dyn ExecutionPlan>) -> Option<&Arc<Scan>> {
    as_op::<InstantKernel>(plan)
        .and_then(|n| n.kernel().scan.as_ref())
        .or_else(|| as_op::<RangeKernel>(plan).and_then(|n| n.kernel().scan.as_ref()))
}

/// Whether an aggregation by `grouping` (`without`) over `children` is worth splitting into
/// partial aggregations per partition and a final merge: the input is a read of a selection
/// in several parts, and the per-group, per-step state of the groups its series fall into
/// stays small (each partial table may hold every group at every step).
pub(super) fn splits_into_groups(
    children: &[Arc<dyn ExecutionPlan>],
    grouping: &[String],
    without: bool,
    steps: usize,
) -> bool {
    let [c] = children else { return false };
    let Some(scan) = scan_of(c) else { return false };
    if scan.parts() < 2 {
        return false;
    }
    let Some(listed) = scan.listed() else {
        return false;
    };
    let groups: std::collections::HashSet<Labels> = listed
        .iter()
        .map(|l| group_labels(l, grouping, without))
        .collect();
    groups.len().saturating_mul(steps) <= 1 << 20
}
