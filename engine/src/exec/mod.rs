//! Physical execution of [`PromNode`]s: one DataFusion `ExecutionPlan` per operator family,
//! each in its own module — the reads of a selection (`window`: selector, instant lookup,
//! range functions), per-sample functions (`map`), aggregation (`aggregation`, kernels in
//! `aggregate`), vector matching (`join`), `info` (`info`) and the step reductions
//! `scalar`, `absent` and classic `histogram_*` (`absent`) — sharing the node machinery of
//! [`node`]. A read whose input is a selector reads storage itself, one label-range part
//! per partition; aggregations with fixed-size state run as partial aggregations per
//! partition and one final merge; every other operator needs whole steps or whole series
//! and takes all partitions of its inputs, in order. The plans serialise with [`codec`].

mod absent;
mod aggregate;
pub mod aggregation;
pub mod codec;
mod downsampled;
mod info;
mod join;
mod map;
pub(crate) mod node;
mod parts;
mod select;
mod stats_hints;
pub(crate) mod window;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::error::Result as DfResult;
use datafusion::execution::TaskContext;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{LogicalPlan, UserDefinedLogicalNode};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{ExtensionPlanner, PhysicalPlanner};

use crate::error::{EngineError, Result};
use crate::model::{QueryContext, Rows};
use crate::plan::{PromNode, PromOp, ScalarArg};
use aggregation::{AggregateKernel, Mode};
use node::{Kernel, OpExec};

pub(crate) use node::gather;

/// Builds the physical node of every [`PromNode`] of one query.
pub struct PromExtensionPlanner {
    /// The query the plan belongs to.
    pub ctx: Arc<QueryContext>,
}

impl fmt::Debug for PromExtensionPlanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PromExtensionPlanner")
    }
}

#[async_trait]
impl ExtensionPlanner for PromExtensionPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn datafusion::catalog::Session,
        _planning_ctx: &PhysicalPlanningContext,
    ) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
        let Some(n) = node.as_any().downcast_ref::<PromNode>() else {
            return Ok(None);
        };
        build(n.op.clone(), physical_inputs.to_vec(), &self.ctx)
            .await
            .map(Some)
            .map_err(EngineError::into_df)
    }
}

/// A node of kernel `k` over `children`.
fn exec<K: Kernel>(
    k: K,
    children: Vec<Arc<dyn ExecutionPlan>>,
    ctx: &Arc<QueryContext>,
) -> Arc<dyn ExecutionPlan> {
    Arc::new(OpExec::new(Arc::new(k), children, ctx.clone()))
}

/// The physical node of `op` over `children`: a read over a selector lists the selection
/// now and takes one partition per part; an aggregation that splits over a partitioned
/// input becomes a final aggregation over a partial one.
async fn build(
    op: PromOp,
    children: Vec<Arc<dyn ExecutionPlan>>,
    ctx: &Arc<QueryContext>,
) -> Result<Arc<dyn ExecutionPlan>> {
    Ok(match &op {
        PromOp::Instant { .. } => {
            let scan = window::plan_scan(ctx, &children, false).await?;
            family(op, children, ctx, scan, Mode::Single)
        }
        PromOp::Range { .. } => {
            let drop_name = window::RangeKernel::drops_name(&op);
            let scan = window::plan_range_scan(ctx, &children, &op, drop_name).await?;
            family(op, children, ctx, scan, Mode::Single)
        }
        PromOp::Aggregate {
            grid,
            grouping,
            without,
            ..
        } if AggregateKernel::splits(&op)
            && (distributed_read(ctx, &children)
                || window::splits_into_groups(&children, grouping, *without, grid.len())) =>
        {
            let partial = exec(
                AggregateKernel {
                    op: op.clone(),
                    mode: Mode::Partial,
                },
                children,
                ctx,
            );
            exec(
                AggregateKernel {
                    op,
                    mode: Mode::Final,
                },
                vec![partial],
                ctx,
            )
        }
        _ => family(op, children, ctx, None, Mode::Single),
    })
}

/// Whether `plan` is a node the distributed planner sends to the workers: a read of a
/// selection (with the functions fused into it), a selector read on its own, or a partial
/// aggregation over a read of a selection.
pub(crate) fn runs_on_workers(plan: &Arc<dyn ExecutionPlan>) -> bool {
    if window::scan_of(plan).is_some() || node::as_op::<window::SelectorKernel>(plan).is_some() {
        return true;
    }
    node::as_op::<AggregateKernel>(plan).is_some_and(|n| {
        n.kernel().mode == Mode::Partial
            && matches!(plan.children()[..], [c] if window::scan_of(c).is_some())
    })
}

/// The span of sample times every read of `plan` covers (`None`: it reads nothing).
pub(crate) fn read_span(plan: &Arc<dyn ExecutionPlan>) -> Option<(i64, i64)> {
    let own = window::scan_of(plan).map(|s| s.span()).or_else(|| {
        node::as_op::<window::SelectorKernel>(plan)
            .and_then(|n| n.kernel().spec())
            .map(|(_, mint, maxt, _)| (mint, maxt))
    });
    plan.children()
        .into_iter()
        .filter_map(read_span)
        .chain(own)
        .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))
}

/// Whether `children` is one read of a selection planned for a distributed query: an
/// aggregation over it splits, so that its partial aggregations run on the workers.
fn distributed_read(ctx: &QueryContext, children: &[Arc<dyn ExecutionPlan>]) -> bool {
    ctx.layout.is_some() && matches!(children, [c] if window::scan_of(c).is_some())
}

/// The node of `op`'s family over `children`; a read node reads `scan`, an aggregation
/// runs in `mode`.
fn family(
    op: PromOp,
    children: Vec<Arc<dyn ExecutionPlan>>,
    ctx: &Arc<QueryContext>,
    scan: Option<Arc<parts::Scan>>,
    mode: Mode,
) -> Arc<dyn ExecutionPlan> {
    match &op {
        PromOp::Selector { .. } => exec(window::SelectorKernel { op }, children, ctx),
        PromOp::Instant { .. } => match window::InstantKernel::new(op.clone(), scan) {
            Some(k) => exec(k, children, ctx),
            None => exec(map::MapKernel { op }, children, ctx),
        },
        PromOp::Range { .. } => match window::RangeKernel::new(op.clone(), scan) {
            Some(k) => exec(k, children, ctx),
            None => exec(map::MapKernel { op }, children, ctx),
        },
        PromOp::Const { .. } | PromOp::Time { .. } | PromOp::Map { .. } => {
            exec(map::MapKernel { op }, children, ctx)
        }
        PromOp::Join { .. } => exec(join::JoinKernel { op }, children, ctx),
        PromOp::Aggregate { .. } => exec(AggregateKernel { op, mode }, children, ctx),
        PromOp::Info { .. } => exec(info::InfoKernel { op }, children, ctx),
        PromOp::ScalarOf { .. } | PromOp::Absent { .. } | PromOp::Histogram { .. } => {
            exec(absent::StepKernel { op }, children, ctx)
        }
    }
}

/// The node of a decoded operator (see [`codec`]): a read over a selector lists its
/// selection when first run, cut into `parts` parts.
pub(crate) fn rebuild(
    op: PromOp,
    children: Vec<Arc<dyn ExecutionPlan>>,
    ctx: &Arc<QueryContext>,
    parts: Option<usize>,
    mode: Mode,
) -> Arc<dyn ExecutionPlan> {
    let scan = match &op {
        PromOp::Instant { .. } => window::later_scan(&children, false, parts),
        PromOp::Range { .. } => {
            window::later_scan(&children, window::RangeKernel::drops_name(&op), parts)
        }
        _ => None,
    };
    family(op, children, ctx, scan, mode)
}

/// The per-step values of a scalar argument (NaN where missing).
pub(crate) fn scalar_values(arg: ScalarArg, inputs: &[Rows], grid: crate::model::Grid) -> Vec<f64> {
    match arg {
        ScalarArg::Const(v) => vec![v.get(); grid.len()],
        ScalarArg::Child(i) => {
            let mut out = vec![f64::NAN; grid.len()];
            let rows = &inputs[i];
            for k in 0..rows.len() {
                if let Some(idx) = grid.index(rows.ts[k]) {
                    out[idx] = rows.vals[k];
                }
            }
            out
        }
    }
}

/// The session state PromQL plans are planned in, and the task context they run in: built
/// once per engine, over the engine's runtime (its memory pool). Building them per query
/// (DataFusion's default features register some hundred functions in maps, and a task
/// context copies those maps) was a fixed cost of every query; PromQL plans are made of
/// this crate's nodes and need nothing per query from either.
pub(crate) fn session(
    runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
) -> (SessionState, Arc<TaskContext>) {
    use datafusion::execution::SessionStateBuilder;
    use datafusion::prelude::SessionConfig;
    // No physical optimizer rules: PromQL plans are single-partition and already in the
    // order the kernels need, so DataFusion's rules would only add wrappers.
    let state = SessionStateBuilder::new()
        .with_config(SessionConfig::new().with_target_partitions(1))
        .with_runtime_env(runtime)
        .with_default_features()
        .with_physical_optimizer_rules(vec![])
        .build();
    let task = state.task_ctx();
    (state, task)
}
