//! `PromAggregate`: the aggregation operator node. Over an input of several partitions (the
//! label-range parts of a selection) an aggregation whose groups keep a fixed-size state
//! (`sum`, `avg`, `count`, `min`, `max`, `group`, `stddev`, `stdvar`) runs in two steps,
//! as DataFusion's own aggregations do: a `Partial` node per input partition folds its
//! series into per-group, per-step state, and one `Final` node merges the states of every
//! partition and finishes them. Every other aggregation (`topk`, `quantile`,
//! `count_values`, …) is `Single`: it takes all its input at once. A `Single` or `Partial`
//! aggregation over an instant lookup of a selection folds each series as it is read, so
//! the instant vector never exists as rows.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_plan::ExecutionPlan;
use futures::FutureExt;
use futures::future::BoxFuture;
use strata_grammar::AggregateOp;

use super::aggregate::{self, Fold, state_schema};
use super::node::{Io, Kernel, Output, as_op, partition_batches, partition_results, with_inputs};
use super::select::fold_part;
use super::window::InstantKernel;
use crate::error::Result;
use crate::functions::aggr::Acc;
use crate::memory::POINT_BYTES;
use crate::model::{Grid, Rows};
use crate::plan::{AggParam, PromOp};

/// Which step of an aggregation a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Mode {
    /// The whole aggregation over all of its input.
    Single,
    /// Per input partition: per-group state ([`state_schema`]).
    Partial,
    /// The merge of every partition of a `Partial` input.
    Final,
}

/// `PromAggregate` in one [`Mode`].
#[derive(Debug)]
pub(crate) struct AggregateKernel {
    pub(super) op: PromOp,
    pub(super) mode: Mode,
}

impl AggregateKernel {
    /// Whether `op` (an `Aggregate` operator) can run as partial + final aggregation.
    pub(super) fn splits(op: &PromOp) -> bool {
        matches!(op, PromOp::Aggregate { op, param: AggParam::None, .. } if Acc::merges(*op))
    }
}

/// The fields of an `Aggregate` operator.
struct Spec<'a> {
    grid: Grid,
    op: AggregateOp,
    grouping: &'a [String],
    without: bool,
    param: &'a AggParam,
    pos: &'a str,
}

fn spec(op: &PromOp) -> Option<Spec<'_>> {
    match op {
        PromOp::Aggregate {
            grid,
            op,
            grouping,
            without,
            param,
            pos,
        } => Some(Spec {
            grid: *grid,
            op: *op,
            grouping,
            without: *without,
            param,
            pos,
        }),
        _ => None,
    }
}

/// The instant lookup of a selection that is the only input, if it is one.
fn instant_input(children: &[Arc<dyn ExecutionPlan>]) -> Option<&InstantKernel> {
    match children {
        [c] => as_op::<InstantKernel>(c)
            .map(|n| n.kernel().as_ref())
            .filter(|k| k.scan.is_some()),
        _ => None,
    }
}

impl Kernel for AggregateKernel {
    fn op(&self) -> &PromOp {
        &self.op
    }

    fn detail(&self) -> String {
        format!("{:?}", self.mode)
    }

    fn accepts_histograms(&self) -> bool {
        true
    }

    fn partitions(&self, children: &[Arc<dyn ExecutionPlan>]) -> usize {
        match (self.mode, children) {
            (Mode::Partial, [c]) => c.properties().partitioning.partition_count(),
            _ => 1,
        }
    }

    fn schema(&self) -> SchemaRef {
        match self.mode {
            Mode::Partial => state_schema(),
            _ => crate::model::vector_schema(),
        }
    }

    fn run<'a>(&'a self, io: &'a Io, partition: usize) -> BoxFuture<'a, Result<Output>> {
        async move {
            let Some(s) = spec(&self.op) else {
                return Ok(Output::Rows(Rows::default()));
            };
            match self.mode {
                Mode::Single => self.single(io, &s).await,
                Mode::Partial => self.partial(io, &s, partition).await,
                Mode::Final => self.merge(io, &s).await,
            }
        }
        .boxed()
    }
}

impl AggregateKernel {
    async fn single(&self, io: &Io, s: &Spec<'_>) -> Result<Output> {
        let ctx = &io.ctx;
        if let Some(inst) = instant_input(&io.children)
            && let Some(scan) = &inst.scan
            && scan.parts() == 1
            && aggregate::folds(s.op, s.param)
            // The fold's table holds every group at every step: at most one per series.
            && scan
                .listed()
                .is_some_and(|l| l.len().saturating_mul(s.grid.len()) <= 1 << 20)
        {
            let mut fold = Fold::new(ctx, s.grid, s.op, s.grouping, s.without).at(s.pos);
            if let Some(part) = scan.part(ctx, 0).await? {
                io.series_read(fold_part(ctx, part, &inst.spec, &mut fold).await?);
            }
            return fold.finish(&[]).map(Output::Rows);
        }
        with_inputs(io, |inputs| {
            aggregate::aggregate(
                ctx,
                s.grid,
                s.op,
                s.grouping,
                s.without,
                s.param,
                s.pos,
                std::mem::take(inputs),
            )
        })
        .await
    }

    /// Folds input partition `p` into per-group state.
    async fn partial(&self, io: &Io, s: &Spec<'_>, p: usize) -> Result<Output> {
        let ctx = &io.ctx;
        let mut fold = Fold::new(ctx, s.grid, s.op, s.grouping, s.without).at(s.pos);
        if let Some(inst) = instant_input(&io.children)
            && let Some(scan) = &inst.scan
        {
            if let Some(part) = scan.part(ctx, p).await? {
                io.series_read(fold_part(ctx, part, &inst.spec, &mut fold).await?);
            }
        } else if let [c] = io.children.as_slice() {
            let rows = Rows::from_batches(partition_batches(c.clone(), p, io.task.clone()).await?)?;
            let mut groups: Vec<u32> = Vec::new();
            for k in 0..rows.len() {
                let id = rows.series[k] as usize;
                if id >= groups.len() {
                    groups.resize(id + 1, u32::MAX);
                }
                if groups[id] == u32::MAX {
                    groups[id] = fold.group_of(rows.series[k]);
                }
                match rows.hist(k) {
                    Some(h) => fold.add_hist_to_group(groups[id], rows.ts[k], h)?,
                    None => fold.add_to_group(groups[id], rows.ts[k], rows.vals[k])?,
                }
            }
            ctx.budget.release(rows.charged_rows(), POINT_BYTES);
        }
        fold.into_state().map(Output::Batch)
    }

    /// Merges the state of every partition of the input, in partition order.
    async fn merge(&self, io: &Io, s: &Spec<'_>) -> Result<Output> {
        let ctx = &io.ctx;
        let mut fold = Fold::new(ctx, s.grid, s.op, s.grouping, s.without).at(s.pos);
        if let [c] = io.children.as_slice() {
            let n = c.properties().partitioning.partition_count();
            let start = std::time::Instant::now();
            let states = partition_results(c.clone(), n, io.task.clone(), partition_batches).await;
            io.waited(start.elapsed());
            for batch in states?.iter().flatten() {
                fold.merge_state(batch)?;
            }
        }
        fold.finish(&[]).map(Output::Rows)
    }
}
