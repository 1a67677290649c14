//! Distributed PromQL on `datafusion-distributed`. A querier in front of a cluster
//! (`--distributed.worker`, one per `--distributor.ingester`) plans a query as it would
//! alone, except that it lists nothing itself ([`Layout`]): reads of selections, selector
//! reads and partial aggregations over reads are cut out of the plan and run as one stage
//! on every worker ([`place`]), each task reading the series its [`Shard`] owns — those
//! the front door wrote first to that worker's node, so each series is read once — and
//! the querier finishes the plan over what they send (final aggregations, binary
//! operators, `topk`, …). Between the two, [`exchange`] carries series labels, since
//! series ids are per node.
//!
//! Network boundaries are placed here, not by the library's planner: PromQL plans are
//! this engine's own operators, and which subtree can run apart from the others is a
//! PromQL fact (a partial `sum` can, a `topk` cannot). `datafusion-distributed` then
//! finalises the stages, routes task `i` to the worker of its member
//! ([`Coordinator::new`]'s routing), serialises the stage with [`codec`] and streams the
//! results back over Arrow Flight.
//!
//! Deviations, with reasons: downsampled blocks are not read by distributed queries (the
//! resolution is chosen from the coordinator's own blocks); `--query.replica-label` is
//! not applied to them (each series is read from one node only, so replicas never meet);
//! a query the workers cannot answer (a worker down) is answered the single-node way
//! (remote reads of the ingesters), and counted.

pub mod codec;
pub mod exchange;
mod shard;
pub mod worker;

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::DFSchemaRef;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::context::{QueryPlanner, SessionState};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::{SessionStateBuilder, TaskContext};
use datafusion::logical_expr::{Expr, Extension, LogicalPlan, UserDefinedLogicalNodeCore};
use datafusion::physical_plan::{ChildrenPropertiesMode, ExecutionPlan, ReplaceChildrenOptions};
use datafusion::prelude::SessionConfig;
use datafusion_distributed::{
    DistributedExt, NetworkCoalesceExec, RouteTasksEvent, RouteTasksEventResponse,
    SessionStateBuilderExt, WorkerResolver,
};
use url::Url;

pub use shard::{Layout, Shard};
pub use worker::{BoundWorker, WorkerEnv};

use exchange::ExchangeExec;

use crate::model::QueryContext;

/// A querier's view of the cluster and the session its distributed plans run in.
pub struct Coordinator {
    layout: Arc<Layout>,
    state: SessionState,
    task: Arc<TaskContext>,
    /// Queries run distributed.
    pub queries: AtomicU64,
    /// Queries answered the single-node way because the workers could not.
    pub fallbacks: AtomicU64,
    /// Queries answered from every replica because an ingester may lack samples they read.
    pub incomplete: AtomicU64,
    /// Whether some ingester may lack samples in a span of sample times (the front door's
    /// failed forwards).
    gaps: std::sync::OnceLock<GapCheck>,
    /// How long the workers have to answer before the query is answered the other way (ms).
    attempt_ms: AtomicU64,
}

/// How long the workers have to answer by default: `--distributor.remote-timeout`'s default.
pub const DEFAULT_ATTEMPT: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether some ingester may lack samples in `[mint, maxt]`.
pub type GapCheck = Arc<dyn Fn(i64, i64) -> bool + Send + Sync>;

/// The workers' URLs.
#[derive(Clone)]
struct Workers(Vec<Url>);

impl WorkerResolver for Workers {
    fn get_urls(&self) -> DfResult<Vec<Url>> {
        Ok(self.0.clone())
    }
}

impl Coordinator {
    /// A coordinator over the ring of `members`, the worker of member `i` at `workers[i]`;
    /// each task cuts its reads into `parts` parts. Plans run on `runtime` (its memory pool).
    pub fn new(
        members: Vec<String>,
        workers: Vec<Url>,
        parts: usize,
        runtime: Arc<RuntimeEnv>,
    ) -> DfResult<Coordinator> {
        if members.is_empty() || members.len() != workers.len() {
            return Err(DataFusionError::Configuration(format!(
                "{} workers for {} ingesters: give one --distributed.worker per \
                 --distributor.ingester, in the same order",
                workers.len(),
                members.len()
            )));
        }
        let layout = Arc::new(Layout::new(members, parts));
        let (l, w) = (layout.clone(), workers.clone());
        let route = move |ev: RouteTasksEvent| -> Option<DfResult<RouteTasksEventResponse>> {
            if ev.task_count != l.tasks {
                return None;
            }
            let urls = (0..ev.task_count)
                .map(|t| w[l.member_of(t).min(w.len() - 1)].clone())
                .collect();
            Some(Ok(RouteTasksEventResponse::new(urls)))
        };
        let state = SessionStateBuilder::new()
            .with_config(SessionConfig::new().with_target_partitions(1))
            .with_runtime_env(runtime)
            .with_physical_optimizer_rules(vec![])
            .with_query_planner(Arc::new(Prebuilt::planner()))
            .with_distributed_planner()
            .with_distributed_worker_resolver(Workers(workers))
            .with_distributed_user_codec(codec::DistCodec::coordinator())
            .with_distributed_route_tasks_handler(route)
            // Workers' operator metrics are not shown (EXPLAIN ANALYZE runs on one node).
            .with_distributed_metrics_collection(false)?
            .build();
        let task = state.task_ctx();
        Ok(Coordinator {
            layout,
            state,
            task,
            queries: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
            incomplete: AtomicU64::new(0),
            gaps: std::sync::OnceLock::new(),
            attempt_ms: AtomicU64::new(DEFAULT_ATTEMPT.as_millis() as u64),
        })
    }

    /// Sets how long the workers have to answer a query (a worker that hangs costs that
    /// long, then the query is answered by remote reads).
    pub fn set_attempt_timeout(&self, d: std::time::Duration) {
        self.attempt_ms
            .store(d.as_millis().max(1) as u64, Ordering::Relaxed);
    }

    /// How long the workers have to answer a query.
    pub fn attempt_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.attempt_ms.load(Ordering::Relaxed))
    }

    /// Sets how to tell whether an ingester may lack samples of a query (once).
    pub fn set_gaps(&self, check: GapCheck) {
        let _ = self.gaps.set(check);
    }

    /// The layout queries are planned for.
    pub fn layout(&self) -> Arc<Layout> {
        self.layout.clone()
    }

    /// The task context distributed plans run in.
    pub(crate) fn task(&self) -> Arc<TaskContext> {
        self.task.clone()
    }

    /// `plan` (planned with [`Layout`]) with its worker stages placed, ready to run;
    /// `None` when an ingester may lack samples it reads (then every replica must be read).
    pub(crate) async fn distribute(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        ctx: &Arc<QueryContext>,
    ) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
        if let Some(gaps) = self.gaps.get()
            && let Some((mint, maxt)) = crate::exec::read_span(&plan)
            && gaps(mint, maxt)
        {
            self.incomplete.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        self.queries.fetch_add(1, Ordering::Relaxed);
        let placed = place(plan, ctx, self.layout.tasks)?;
        if placed.properties().partitioning.partition_count() != 1 {
            return Err(DataFusionError::Internal(
                "a distributed plan must end in one partition".into(),
            ));
        }
        let logical = LogicalPlan::Extension(Extension {
            node: Arc::new(Prebuilt::new(placed)),
        });
        self.state
            .query_planner()
            .create_physical_plan(&logical, &self.state)
            .await
            .map(Some)
    }
}

/// `plan` with every subtree that runs on the workers replaced by the import of its
/// export from each of `tasks` tasks.
fn place(
    plan: Arc<dyn ExecutionPlan>,
    ctx: &Arc<QueryContext>,
    tasks: usize,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    if crate::exec::runs_on_workers(&plan) {
        let export = Arc::new(ExchangeExec::export(plan, ctx.clone()));
        let network = Arc::new(NetworkCoalesceExec::try_new(export, tasks, 1)?);
        return Ok(Arc::new(ExchangeExec::import(network, ctx.clone())));
    }
    let children: Vec<Arc<dyn ExecutionPlan>> = plan.children().into_iter().cloned().collect();
    if children.is_empty() {
        return Ok(plan);
    }
    let placed = children
        .into_iter()
        .map(|c| place(c, ctx, tasks))
        .collect::<DfResult<Vec<_>>>()?;
    plan.replace_children(
        placed,
        ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
    )
}

/// A physical plan made already, carried through the library's planner (which finalises
/// the stages of a plan that has network boundaries) as a logical node.
#[derive(Clone)]
struct Prebuilt {
    plan: Arc<dyn ExecutionPlan>,
    schema: DFSchemaRef,
}

impl Prebuilt {
    fn new(plan: Arc<dyn ExecutionPlan>) -> Prebuilt {
        Prebuilt {
            plan,
            schema: crate::model::vector_dfschema(),
        }
    }

    fn planner() -> PrebuiltPlanner {
        PrebuiltPlanner
    }

    fn key(&self) -> usize {
        Arc::as_ptr(&self.plan) as *const () as usize
    }
}

impl fmt::Debug for Prebuilt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PromPrebuilt")
    }
}

impl PartialEq for Prebuilt {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Prebuilt {}

impl PartialOrd for Prebuilt {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        self.key().partial_cmp(&other.key())
    }
}

impl Hash for Prebuilt {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state)
    }
}

impl UserDefinedLogicalNodeCore for Prebuilt {
    fn name(&self) -> &str {
        "PromPrebuilt"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        Vec::new()
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("PromPrebuilt")
    }

    fn with_exprs_and_inputs(
        &self,
        _exprs: Vec<Expr>,
        _inputs: Vec<LogicalPlan>,
    ) -> DfResult<Self> {
        Ok(self.clone())
    }
}

/// The query planner under the library's: hands back the [`Prebuilt`] plan.
#[derive(Debug)]
struct PrebuiltPlanner;

#[async_trait]
impl QueryPlanner for PrebuiltPlanner {
    async fn create_physical_plan(
        &self,
        logical: &LogicalPlan,
        _session: &dyn Session,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        match logical {
            LogicalPlan::Extension(e) => e
                .node
                .as_any()
                .downcast_ref::<Prebuilt>()
                .map(|p| p.plan.clone())
                .ok_or_else(|| DataFusionError::Internal("not a prebuilt PromQL plan".into())),
            _ => Err(DataFusionError::Internal(
                "the distributed PromQL session plans prebuilt plans only".into(),
            )),
        }
    }
}
