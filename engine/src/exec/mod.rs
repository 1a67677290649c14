//! Physical execution of [`PromNode`]s: one DataFusion `ExecutionPlan` type whose
//! `execute` gathers its inputs and runs the operator's kernel (one module each). Every
//! PromQL operator needs whole steps (aggregations, joins) or whole series (range windows)
//! before it can emit, so the nodes are blocking and single-partition. Parallelism comes from
//! inside: a node's inputs are evaluated concurrently, and a fused selector reads and
//! processes its series in label-range parts on every worker (`select::read_parts`).

mod absent;
mod aggregate;
pub mod codec;
mod info;
mod join;
mod map;
mod parts;
mod select;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::context::SessionState;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{LogicalPlan, UserDefinedLogicalNode};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, collect,
};
use datafusion::physical_planner::{ExtensionPlanner, PhysicalPlanner};

use crate::error::{EngineError, Result};
use crate::memory::POINT_BYTES;
use crate::model::{QueryContext, Rows, SCALAR_SERIES, vector_schema};
use crate::plan::{PromNode, PromOp, ScalarArg};

/// Builds [`PromExec`]s for [`PromNode`]s of one query.
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
        Ok(Some(Arc::new(PromExec::new(
            n.op.clone(),
            physical_inputs.to_vec(),
            self.ctx.clone(),
        ))))
    }
}

/// The physical node of every PromQL operator.
pub struct PromExec {
    op: PromOp,
    children: Vec<Arc<dyn ExecutionPlan>>,
    ctx: Arc<QueryContext>,
    props: Arc<PlanProperties>,
    /// What `EXPLAIN ANALYZE` shows: output rows and series, the operator's own compute
    /// time (not its inputs'), and the query budget it held when done.
    metrics: ExecutionPlanMetricsSet,
}

impl PromExec {
    fn new(op: PromOp, children: Vec<Arc<dyn ExecutionPlan>>, ctx: Arc<QueryContext>) -> Self {
        let props = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(vector_schema()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        PromExec {
            op,
            children,
            ctx,
            props,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// The operator.
    pub fn op(&self) -> &PromOp {
        &self.op
    }

    /// A node of `op` over `children` in `ctx` (a decoded plan).
    pub fn rebuild(
        op: PromOp,
        children: Vec<Arc<dyn ExecutionPlan>>,
        ctx: Arc<QueryContext>,
    ) -> Self {
        PromExec::new(op, children, ctx)
    }
}

/// The number of distinct series among `rows`.
fn distinct_series(rows: &Rows) -> usize {
    let max = rows
        .series
        .iter()
        .copied()
        .max()
        .map_or(0, |m| m as usize + 1);
    let mut seen = vec![false; max];
    let mut n = 0;
    for &s in &rows.series {
        let slot = &mut seen[s as usize];
        if !*slot {
            *slot = true;
            n += 1;
        }
    }
    n
}

impl fmt::Debug for PromExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.op.name())
    }
}

impl DisplayAs for PromExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}: {:?}", self.op.name(), self.op)
    }
}

impl ExecutionPlan for PromExec {
    fn name(&self) -> &str {
        self.op.name()
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.children.iter().collect()
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(PromExec::new(
            self.op.clone(),
            children,
            self.ctx.clone(),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        task: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "{} has one partition, asked for {partition}",
                self.op.name()
            )));
        }
        let op = self.op.clone();
        let children = self.children.clone();
        let ctx = self.ctx.clone();
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let out_series = MetricBuilder::new(&self.metrics).counter("output_series", partition);
        let held = MetricBuilder::new(&self.metrics).gauge("budget_bytes", partition);
        // An instant or range node over a selector reads storage itself (fused), and so
        // does an aggregation that folds, over an instant node over a selector.
        let fused = match (&op, children.as_slice()) {
            (PromOp::Instant { .. } | PromOp::Range { .. }, [c]) => {
                selector_below(c).map(Fused::Select)
            }
            (PromOp::Aggregate { op: a, param, .. }, [c]) if aggregate::folds(*a, param) => {
                instant_below(c)
            }
            _ => None,
        };
        let fut = async move {
            ctx.check_deadline().map_err(EngineError::into_df)?;
            let out = if let Some(fused) = fused {
                // Reads storage itself: the whole time is the operator's.
                let _timer = baseline.elapsed_compute().timer();
                match fused {
                    Fused::Fold(instant, sel) => run_folded(&op, &instant, &sel, &ctx).await,
                    Fused::Select(sel) => run_fused(&op, &sel, &ctx).await,
                }
            } else {
                // Inputs are evaluated concurrently: every input but the first in a task
                // of its own (both sides of a binary operator on their own workers), the
                // first on this task. A single input is not handed to another task: after
                // a pause the runtime's other worker is parked, and waking it to run the
                // input, then this one to take the result, cost a small query ~0.8 ms.
                let mut children = children.into_iter();
                let first = children.next();
                let pending: Vec<_> = children
                    .map(|c| crate::compute::Spawned::new(collect(c, task.clone())))
                    .collect();
                let mut results = Vec::with_capacity(pending.len() + 1);
                if let Some(c) = first {
                    results.push(collect(c, task.clone()).await);
                }
                for p in pending {
                    results.push(p.await.map_err(|e| {
                        DataFusionError::Execution(format!("query task failed: {e}"))
                    })?);
                }
                let mut inputs = Vec::with_capacity(results.len());
                for batches in results {
                    inputs.push(Rows::from_batches(batches?).map_err(EngineError::into_df)?);
                }
                // The inputs' room goes back to the budget once the kernel is done with
                // them, except an input handed on as the output itself.
                let held: Vec<(usize, usize)> = inputs
                    .iter()
                    .map(|r| (r.series.as_ptr() as usize, r.charged_rows()))
                    .collect();
                let timer = baseline.elapsed_compute().timer();
                let out = run(&op, &ctx, inputs).await;
                timer.done();
                let kept = out.as_ref().map_or(0, |r| r.series.as_ptr() as usize);
                for (ptr, room) in held {
                    if ptr != kept {
                        ctx.budget.release(room, POINT_BYTES);
                    }
                }
                out
            };
            let mut out = out.map_err(EngineError::into_df)?;
            out.settle(&ctx.budget);
            out_series.add(distinct_series(&out));
            held.set(ctx.budget.bytes());
            let batch = out.into_batch().map_err(EngineError::into_df);
            // Rows, batches and bytes out, and the end time.
            let batch = match baseline.record_poll(std::task::Poll::Ready(Some(batch))) {
                std::task::Poll::Ready(Some(b)) => b,
                _ => Err(DataFusionError::Internal("no batch".into())),
            };
            baseline.done();
            batch
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            vector_schema(),
            futures::stream::once(fut),
        )))
    }
}

/// The PromQL node at or below `plan`, looking through wrappers DataFusion may have put
/// around it (such as cooperative-scheduling nodes).
fn prom_below(plan: &Arc<dyn ExecutionPlan>) -> Option<Arc<dyn ExecutionPlan>> {
    let mut cur = plan.clone();
    loop {
        let any: &dyn std::any::Any = cur.as_ref();
        if any.is::<PromExec>() {
            return Some(cur);
        }
        let next = match cur.children().as_slice() {
            [only] => Arc::clone(only),
            _ => return None,
        };
        cur = next;
    }
}

/// The operator of the PromQL node at or below `plan`, with its inputs.
fn prom_op_below(plan: &Arc<dyn ExecutionPlan>) -> Option<(PromOp, Vec<Arc<dyn ExecutionPlan>>)> {
    let node = prom_below(plan)?;
    let any: &dyn std::any::Any = node.as_ref();
    any.downcast_ref::<PromExec>()
        .map(|p| (p.op.clone(), p.children.clone()))
}

/// The selector an instant or range node reads.
fn selector_below(plan: &Arc<dyn ExecutionPlan>) -> Option<PromOp> {
    match prom_op_below(plan)? {
        (sel @ PromOp::Selector { .. }, _) => Some(sel),
        _ => None,
    }
}

/// How a node reads storage itself instead of taking its inputs' rows.
enum Fused {
    /// An instant or range node over this selector.
    Select(PromOp),
    /// An aggregation that folds, over this instant node over this selector.
    Fold(PromOp, PromOp),
}

/// The instant node and its selector below an aggregation, when the aggregation's input
/// is an instant lookup of a selector.
fn instant_below(plan: &Arc<dyn ExecutionPlan>) -> Option<Fused> {
    match prom_op_below(plan)? {
        (inst @ PromOp::Instant { .. }, children) => match children.as_slice() {
            [c] => selector_below(c).map(|sel| Fused::Fold(inst, sel)),
            _ => None,
        },
        _ => None,
    }
}

/// An aggregation that folds (see [`aggregate::folds`]) over an instant node over a
/// selector, evaluated as one pass over storage.
async fn run_folded(
    op: &PromOp,
    instant: &PromOp,
    sel: &PromOp,
    ctx: &Arc<QueryContext>,
) -> Result<Rows> {
    let (
        PromOp::Aggregate {
            grid,
            op: aop,
            grouping,
            without,
            param,
            pos,
        },
        Some(s),
        PromOp::Selector {
            matchers,
            mint,
            maxt,
        },
    ) = (op, instant_spec(instant), sel)
    else {
        return Ok(Rows::default());
    };
    let mut fold = aggregate::Fold::new(ctx, *grid, *aop, grouping, *without);
    match select::select_instant_fold(ctx, matchers, *mint, *maxt, &s, &mut fold).await? {
        None => fold.finish(&[]),
        Some(rows) => {
            let room = rows.charged_rows();
            let out =
                aggregate::aggregate(ctx, *grid, *aop, grouping, *without, param, pos, vec![rows]);
            ctx.budget.release(room, POINT_BYTES);
            out
        }
    }
}

/// Runs the kernel of `op` over its gathered inputs.
async fn run(op: &PromOp, ctx: &QueryContext, mut inputs: Vec<Rows>) -> Result<Rows> {
    match op {
        PromOp::Selector {
            matchers,
            mint,
            maxt,
        } => select::selector(ctx, matchers, *mint, *maxt).await,
        PromOp::Instant { .. } => match instant_spec(op) {
            Some(s) => select::instant(ctx, &mut inputs[0], &s),
            None => Ok(Rows::default()),
        },
        PromOp::Range { params, grid, .. } => match range_spec(op) {
            Some(mut s) => {
                if !params.is_empty() {
                    let values: Vec<Vec<f64>> = params
                        .iter()
                        .map(|a| scalar_values(*a, &inputs, *grid))
                        .collect();
                    s.per_step = Some(Arc::new(
                        (0..grid.len())
                            .map(|k| [values[0][k], values.get(1).map_or(0.0, |v| v[k])])
                            .collect(),
                    ));
                }
                select::range(ctx, &mut inputs[0], &s)
            }
            None => Ok(Rows::default()),
        },
        PromOp::Const { grid, value } => {
            let mut out = Rows::charged(&ctx.budget, grid.len())?;
            for t in grid.steps() {
                out.push(SCALAR_SERIES, t, value.get());
            }
            Ok(out)
        }
        PromOp::Time { grid } => {
            let mut out = Rows::charged(&ctx.budget, grid.len())?;
            for t in grid.steps() {
                out.push(SCALAR_SERIES, t, t as f64 / 1e3);
            }
            Ok(out)
        }
        PromOp::Map { grid, func, args } => map::map(ctx, *grid, func, args, inputs),
        PromOp::ScalarOf { grid } => absent::scalar_of(ctx, &inputs[0], *grid),
        PromOp::Join {
            grid,
            op,
            card,
            on,
            labels,
            include,
            return_bool,
            fill,
        } => {
            let rhs = inputs.pop().unwrap_or_default();
            let lhs = inputs.pop().unwrap_or_default();
            let fill = (fill.0.map(|f| f.get()), fill.1.map(|f| f.get()));
            join::join(
                ctx,
                *grid,
                &join::Matching {
                    op: *op,
                    card: *card,
                    on: *on,
                    names: labels,
                    include,
                    return_bool: *return_bool,
                    fill,
                },
                lhs,
                rhs,
            )
        }
        PromOp::Aggregate {
            grid,
            op,
            grouping,
            without,
            param,
            pos,
        } => aggregate::aggregate(ctx, *grid, *op, grouping, *without, param, pos, inputs),
        PromOp::Info { grid, names, data } => {
            let infos = inputs.pop().unwrap_or_default();
            let base = inputs.pop().unwrap_or_default();
            info::info(ctx, *grid, &info::InfoSpec { names, data }, base, infos)
        }
        PromOp::Absent { grid, labels } => absent::absent(ctx, &inputs[0], *grid, labels),
        PromOp::Histogram {
            grid,
            kind,
            args,
            q_pos,
            v_pos,
        } => absent::histogram(ctx, *grid, kind, args, (q_pos, v_pos), inputs),
    }
}

fn instant_spec(op: &PromOp) -> Option<select::InstantSpec> {
    match op {
        PromOp::Instant {
            grid,
            lookback,
            offset,
            at,
            sample_ts,
            smoothed,
        } => Some(select::InstantSpec {
            grid: *grid,
            lookback: *lookback,
            offset: *offset,
            at: *at,
            sample_ts: *sample_ts,
            smoothed: *smoothed,
        }),
        _ => None,
    }
}

fn range_spec(op: &PromOp) -> Option<select::RangeSpec> {
    match op {
        PromOp::Range {
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
        } => Some(select::RangeSpec {
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
        }),
        _ => None,
    }
}

/// An instant or range node that reads its selector directly.
async fn run_fused(op: &PromOp, sel: &PromOp, ctx: &Arc<QueryContext>) -> Result<Rows> {
    let PromOp::Selector {
        matchers,
        mint,
        maxt,
    } = sel
    else {
        return Ok(Rows::default());
    };
    if let Some(s) = instant_spec(op) {
        return select::select_instant(ctx, matchers, *mint, *maxt, &s).await;
    }
    match range_spec(op) {
        Some(s) => select::select_range(ctx, matchers, *mint, *maxt, &s).await,
        None => Ok(Rows::default()),
    }
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
