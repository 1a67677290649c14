//! What every PromQL operator has in common: [`OpExec`], the DataFusion `ExecutionPlan`
//! around one operator family's [`Kernel`] (properties, partitions, metrics, the budget
//! given back once inputs are consumed), and [`gather`], which reads a node's partitions
//! in order. The families themselves (selection reads, instant functions, aggregation,
//! joins, …) live in their own modules and only say how one partition is computed.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, Count, ExecutionPlanMetricsSet, Gauge, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::StreamExt;
use futures::future::BoxFuture;

use crate::error::{EngineError, Result};
use crate::memory::POINT_BYTES;
use crate::model::{QueryContext, Rows, vector_schema};
use crate::plan::PromOp;

/// What a kernel produces for one partition.
pub(crate) enum Output {
    /// A relation of the vector schema.
    Rows(Rows),
    /// A batch of the kernel's own schema (partial aggregation state).
    Batch(RecordBatch),
}

/// One operator family: how a partition of its output is computed from its inputs.
pub(crate) trait Kernel: fmt::Debug + Send + Sync + 'static {
    /// The logical operator (EXPLAIN, the codec).
    fn op(&self) -> &PromOp;

    /// The node's name in EXPLAIN.
    fn name(&self) -> &'static str {
        self.op().name()
    }

    /// What the node adds to the operator's text in EXPLAIN (its mode, its parts).
    fn detail(&self) -> String {
        String::new()
    }

    /// Output partitions over `children`.
    fn partitions(&self, _children: &[Arc<dyn ExecutionPlan>]) -> usize {
        1
    }

    /// Output schema.
    fn schema(&self) -> SchemaRef {
        vector_schema()
    }

    /// Computes partition `partition`.
    fn run<'a>(&'a self, io: &'a Io, partition: usize) -> BoxFuture<'a, Result<Output>>;

    /// Whether the operator reads native histogram rows of its inputs. Operators that
    /// only know floats never see them: they are dropped as the inputs are gathered, which
    /// is what Prometheus's float-only functions and operators do with histogram samples.
    fn accepts_histograms(&self) -> bool {
        false
    }
}

/// A kernel's view of its node while it runs: the query, the inputs, the task, metrics.
pub(crate) struct Io {
    pub(crate) ctx: Arc<QueryContext>,
    pub(crate) children: Vec<Arc<dyn ExecutionPlan>>,
    pub(crate) task: Arc<TaskContext>,
    /// The node's metrics and the partition running.
    metrics: (ExecutionPlanMetricsSet, usize),
    /// Nanoseconds spent waiting for inputs (their own nodes' time, not this one's).
    waited: std::sync::atomic::AtomicU64,
    /// Whether histogram rows of the inputs reach the kernel ([`Kernel::accepts_histograms`]).
    histograms: bool,
}

impl Io {
    /// Every input, all partitions of each in order, evaluated concurrently: every input
    /// but the first in a task of its own (both sides of a binary operator on their own
    /// workers), the first on this task. A single input is not handed to another task:
    /// after a pause the runtime's other worker is parked, and waking it to run the input,
    /// then this one to take the result, cost a small query ~0.8 ms.
    pub(crate) async fn inputs(&self) -> Result<Inputs> {
        let start = std::time::Instant::now();
        let r = self.gather_inputs().await;
        self.waited(start.elapsed());
        r
    }

    /// Records `n` series read from storage by the node itself.
    pub(crate) fn series_read(&self, n: usize) {
        let (set, partition) = &self.metrics;
        MetricBuilder::new(set)
            .counter("series_read", *partition)
            .add(n);
    }

    /// Records time spent waiting for inputs (not the node's own).
    pub(crate) fn waited(&self, d: std::time::Duration) {
        self.waited
            .fetch_add(d.as_nanos() as u64, std::sync::atomic::Ordering::Relaxed);
    }

    async fn gather_inputs(&self) -> Result<Inputs> {
        let mut children = self.children.iter();
        let first = children.next();
        let pending: Vec<_> = children
            .map(|c| {
                crate::compute::Spawned::new(gather(self.ctx.clone(), c.clone(), self.task.clone()))
            })
            .collect();
        let mut rows = Vec::with_capacity(pending.len() + 1);
        if let Some(c) = first {
            rows.push(gather(self.ctx.clone(), c.clone(), self.task.clone()).await?);
        }
        for p in pending {
            rows.push(
                p.await
                    .map_err(|e| EngineError::Exec(format!("query task failed: {e}")))??,
            );
        }
        if !self.histograms {
            for r in &mut rows {
                r.drop_histograms();
            }
        }
        let held = rows
            .iter()
            .map(|r| (r.series.as_ptr() as usize, r.charged_rows()))
            .collect();
        Ok(Inputs { rows, held })
    }
}

/// The gathered inputs of a node, and the room they hold in the budget.
pub(crate) struct Inputs {
    pub(crate) rows: Vec<Rows>,
    held: Vec<(usize, usize)>,
}

impl Inputs {
    /// Gives the inputs' room back to the budget once the kernel has made `out`, except an
    /// input handed on as the output itself.
    pub(crate) fn release(self, ctx: &QueryContext, out: &Result<Rows>) {
        let kept = out.as_ref().map_or(0, |r| r.series.as_ptr() as usize);
        for (ptr, room) in self.held {
            if ptr != kept {
                ctx.budget.release(room, POINT_BYTES);
            }
        }
    }
}

/// Runs `f` over the gathered inputs of `io`, then gives their room back.
pub(crate) async fn with_inputs(
    io: &Io,
    f: impl FnOnce(&mut Vec<Rows>) -> Result<Rows>,
) -> Result<Output> {
    let mut inputs = io.inputs().await?;
    let out = f(&mut inputs.rows);
    inputs.release(&io.ctx, &out);
    out.map(Output::Rows)
}

/// The rows of every partition of `plan`, concatenated in partition order (a selection's
/// parts are label ranges, so the order is the one a single pass gives). Partitions run
/// concurrently, as many at a time as the runtime has workers.
pub(crate) async fn gather(
    ctx: Arc<QueryContext>,
    plan: Arc<dyn ExecutionPlan>,
    task: Arc<TaskContext>,
) -> Result<Rows> {
    let n = plan.properties().partitioning.partition_count();
    if n <= 1 {
        return partition_rows(plan, 0, task).await;
    }
    let done = partition_results(plan, n, task, partition_rows).await?;
    // One allocation for the concatenation; each part is given back once copied.
    let mut out = Rows::charged(&ctx.budget, done.iter().map(Rows::len).sum())?;
    for rows in done {
        let room = rows.charged_rows();
        out.append(rows);
        ctx.budget.release(room, POINT_BYTES);
    }
    Ok(out)
}

/// The results of `f` over every partition of `plan`, in partition order, computed
/// concurrently (as many at a time as the runtime has workers).
pub(crate) async fn partition_results<T, F, Fut>(
    plan: Arc<dyn ExecutionPlan>,
    n: usize,
    task: Arc<TaskContext>,
    f: F,
) -> Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(Arc<dyn ExecutionPlan>, usize, Arc<TaskContext>) -> Fut,
    Fut: Future<Output = Result<T>> + Send + 'static,
{
    let workers = tokio::runtime::Handle::current()
        .metrics()
        .num_workers()
        .max(1);
    let mut results = futures::stream::iter(0..n)
        .map(|p| crate::compute::Spawned::new(f(plan.clone(), p, task.clone())))
        .buffered(workers);
    let mut done = Vec::with_capacity(n);
    while let Some(r) = results.next().await {
        done.push(r.map_err(|e| EngineError::Exec(format!("query task failed: {e}")))??);
    }
    Ok(done)
}

/// The batches of one partition.
pub(crate) async fn partition_batches(
    plan: Arc<dyn ExecutionPlan>,
    partition: usize,
    task: Arc<TaskContext>,
) -> Result<Vec<RecordBatch>> {
    let stream = plan
        .execute(partition, task)
        .map_err(EngineError::from_df)?;
    datafusion::physical_plan::common::collect(stream)
        .await
        .map_err(EngineError::from_df)
}

/// The rows of one partition.
async fn partition_rows(
    plan: Arc<dyn ExecutionPlan>,
    partition: usize,
    task: Arc<TaskContext>,
) -> Result<Rows> {
    Rows::from_batches(partition_batches(plan, partition, task).await?)
}

/// The DataFusion node of one PromQL operator family.
pub(crate) struct OpExec<K> {
    kernel: Arc<K>,
    children: Vec<Arc<dyn ExecutionPlan>>,
    ctx: Arc<QueryContext>,
    props: Arc<PlanProperties>,
    /// What `EXPLAIN ANALYZE` shows: output rows and series, series read from storage, the
    /// operator's own compute time (not its inputs'), and the query budget it held when done.
    metrics: ExecutionPlanMetricsSet,
}

impl<K: Kernel> OpExec<K> {
    /// A node running `kernel` over `children` in `ctx`.
    pub(crate) fn new(
        kernel: Arc<K>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        ctx: Arc<QueryContext>,
    ) -> Self {
        let props = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(kernel.schema()),
            Partitioning::UnknownPartitioning(kernel.partitions(&children).max(1)),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        OpExec {
            kernel,
            children,
            ctx,
            props,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// The kernel.
    pub(crate) fn kernel(&self) -> &Arc<K> {
        &self.kernel
    }

    /// The query the node belongs to.
    pub(crate) fn ctx(&self) -> &Arc<QueryContext> {
        &self.ctx
    }
}

/// The node of kernel type `K` at `plan`, if it is one.
pub(crate) fn as_op<K: Kernel>(plan: &Arc<dyn ExecutionPlan>) -> Option<&OpExec<K>> {
    let any: &dyn std::any::Any = plan.as_ref();
    any.downcast_ref::<OpExec<K>>()
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

impl<K: Kernel> fmt::Debug for OpExec<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kernel.name())
    }
}

impl<K: Kernel> DisplayAs for OpExec<K> {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}: ", self.kernel.name())?;
        let detail = self.kernel.detail();
        if !detail.is_empty() {
            write!(f, "{detail}, ")?;
        }
        write!(f, "{:?}", self.kernel.op())
    }
}

/// The metrics of one partition's run.
struct RunMetrics {
    baseline: BaselineMetrics,
    out_series: Count,
    held: Gauge,
}

impl<K: Kernel> ExecutionPlan for OpExec<K> {
    fn name(&self) -> &str {
        self.kernel.name()
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
        Ok(Arc::new(OpExec::new(
            self.kernel.clone(),
            children,
            self.ctx.clone(),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        task: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let parts = self.props.partitioning.partition_count();
        if partition >= parts {
            return Err(DataFusionError::Internal(format!(
                "{} has {parts} partitions, asked for {partition}",
                self.kernel.name()
            )));
        }
        let kernel = self.kernel.clone();
        let schema = kernel.schema();
        let m = RunMetrics {
            baseline: BaselineMetrics::new(&self.metrics, partition),
            out_series: MetricBuilder::new(&self.metrics).counter("output_series", partition),
            held: MetricBuilder::new(&self.metrics).gauge("budget_bytes", partition),
        };
        let io = Io {
            ctx: self.ctx.clone(),
            children: self.children.clone(),
            task,
            metrics: (self.metrics.clone(), partition),
            waited: std::sync::atomic::AtomicU64::new(0),
            histograms: self.kernel.accepts_histograms(),
        };
        let fut = async move {
            io.ctx.check_deadline().map_err(EngineError::into_df)?;
            // The kernel's time, less what its gathered inputs took (measured by theirs).
            let start = std::time::Instant::now();
            let out = kernel.run(&io, partition).await;
            let waited = std::time::Duration::from_nanos(
                io.waited.load(std::sync::atomic::Ordering::Relaxed),
            );
            m.baseline
                .elapsed_compute()
                .add_duration(start.elapsed().saturating_sub(waited));
            let batch = match out.map_err(EngineError::into_df)? {
                Output::Rows(mut rows) => match rows.settle(&io.ctx.budget) {
                    Ok(()) => {
                        m.out_series.add(distinct_series(&rows));
                        rows.into_batch().map_err(EngineError::into_df)
                    }
                    Err(e) => {
                        rows.release_to(&io.ctx.budget);
                        Err(EngineError::into_df(e))
                    }
                },
                Output::Batch(b) => Ok(b),
            };
            m.held.set(io.ctx.budget.bytes());
            // Rows, batches and bytes out, and the end time.
            let batch = match m.baseline.record_poll(std::task::Poll::Ready(Some(batch))) {
                std::task::Poll::Ready(Some(b)) => b,
                _ => Err(DataFusionError::Internal("no batch".into())),
            };
            m.baseline.done();
            batch
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::once(fut),
        )))
    }
}
