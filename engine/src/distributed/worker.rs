//! A node's worker: `datafusion-distributed`'s Arrow Flight service on its own gRPC port
//! (`--distributed.listen-address`), running the stages coordinators send over this
//! node's storage. Each task's session decodes with [`DistCodec`] and accepts only what a
//! coordinator of this engine sends — PromQL operators under one export — so the
//! port cannot be used to run arbitrary DataFusion plans (file scans, say) on the node.
//! Memory is the engine's (`--query.max-memory`, one query's share per task), time the
//! query's own and at most `--query.timeout`, and a request at most
//! [`MAX_MESSAGE_BYTES`].

use std::net::SocketAddr;
use std::sync::Arc;

use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_distributed::{
    DistributedExt, Worker, WorkerPlanRewriteEvent, WorkerPlanRewriteEventResponse,
    WorkerQueryContext,
};
use parking_lot::Mutex;
use strata_storage::Db;

use super::codec::{DistCodec, QueryWire};
use super::exchange::ExchangeExec;
use super::shard::Shard;
use crate::EngineOptions;
use crate::model::QueryContext;

/// The largest gRPC message a worker accepts (a stage's plan is a few KB).
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// What a worker runs tasks with: this node's storage, the engine's limits and memory.
pub struct WorkerEnv {
    pub(crate) db: Arc<Db>,
    pub(crate) opts: EngineOptions,
    pub(crate) runtime: Arc<RuntimeEnv>,
}

impl WorkerEnv {
    /// The context of task `task` of the query `q`.
    pub(crate) fn context(&self, q: &QueryWire, task: usize) -> Arc<QueryContext> {
        let timeout = std::time::Duration::from_millis(q.timeout_ms).min(self.opts.timeout);
        Arc::new(crate::query_context(
            &self.db,
            &self.opts,
            &self.runtime,
            q.params,
            std::time::Instant::now() + timeout,
            Some(Arc::new(Shard::new(&q.members, q.tasks, task))),
        ))
    }
}

/// Refuses a stage that is not PromQL operators under one export.
fn only_promql(ev: WorkerPlanRewriteEvent) -> DfResult<WorkerPlanRewriteEventResponse> {
    fn promql(plan: &Arc<dyn ExecutionPlan>) -> bool {
        crate::exec::codec::wire_of(plan).is_some() && plan.children().into_iter().all(promql)
    }
    let any: &dyn std::any::Any = ev.plan.as_ref();
    let ok = any
        .downcast_ref::<ExchangeExec>()
        .is_some_and(ExchangeExec::is_export)
        && ev.plan.children().into_iter().all(promql);
    if !ok {
        return Err(DataFusionError::Plan(format!(
            "this worker runs PromQL stages only, not {}",
            ev.plan.name()
        )));
    }
    Ok(WorkerPlanRewriteEventResponse::new(ev.plan))
}

/// The worker of `env`.
pub fn worker(env: WorkerEnv) -> Worker {
    let env = Arc::new(env);
    let runtime = env.runtime.clone();
    Worker::from_session_builder(move |ctx: WorkerQueryContext| {
        let env = env.clone();
        async move {
            Ok(ctx
                .builder
                .with_distributed_user_codec(DistCodec::worker(env))
                .with_distributed_worker_plan_rewrite_handler(only_promql)
                .build())
        }
    })
    .with_runtime_env(runtime)
}

/// A worker already bound (so its port is known before it serves).
pub struct BoundWorker {
    listener: Mutex<Option<tokio::net::TcpListener>>,
    addr: SocketAddr,
}

impl BoundWorker {
    /// Binds `addr`.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<BoundWorker> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        Ok(BoundWorker {
            listener: Mutex::new(Some(listener)),
            addr,
        })
    }

    /// The address bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `env` until `shutdown` resolves.
    pub async fn serve(
        &self,
        env: WorkerEnv,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
        let Some(listener) = self.listener.lock().take() else {
            return Ok(());
        };
        let service = worker(env)
            .into_worker_server()
            .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let incoming = tokio_stream_of(listener);
        tonic::transport::Server::builder()
            .concurrency_limit_per_connection(256)
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
    }
}

/// The connections of `listener` as tonic takes them.
fn tokio_stream_of(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |l| async move {
        let r = l.accept().await.map(|(s, _)| {
            let _ = s.set_nodelay(true);
            s
        });
        Some((r, l))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::physical_plan::empty::EmptyExec;
    use datafusion::prelude::SessionConfig;

    fn rewrite(plan: Arc<dyn ExecutionPlan>) -> DfResult<WorkerPlanRewriteEventResponse> {
        let cfg = SessionConfig::new();
        only_promql(WorkerPlanRewriteEvent {
            plan,
            session_config: &cfg,
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_worker_runs_promql_stages_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tmp");
        let db = Db::open(strata_storage::Options::new(dir.path()))
            .await
            .expect("open");
        let engine = crate::Engine::new(db, EngineOptions::default());
        let env = engine.worker_env();
        let q = QueryWire {
            params: crate::QueryParams {
                start: 0,
                end: 0,
                interval: 0,
                lookback: 300_000,
                max_source_resolution: 0,
            },
            timeout_ms: 1000,
            members: vec!["http://a:1".into()],
            tasks: 2,
        };
        let ctx = env.context(&q, 1);
        let schema = crate::model::vector_schema();
        // Any DataFusion plan that is not PromQL under an export is refused…
        let empty: Arc<dyn ExecutionPlan> = Arc::new(EmptyExec::new(schema.clone()));
        let err = rewrite(empty.clone()).err().expect("refused");
        assert!(err.to_string().contains("PromQL stages only"), "{err}");
        // …even under an export.
        let export: Arc<dyn ExecutionPlan> = Arc::new(ExchangeExec::export(empty, ctx.clone()));
        assert!(rewrite(export).is_err());
        // An export of a PromQL operator runs.
        let op = crate::exec::rebuild(
            crate::plan::PromOp::Time {
                grid: crate::model::Grid {
                    start: 0,
                    end: 0,
                    step: 1,
                },
            },
            Vec::new(),
            &ctx,
            None,
            crate::exec::aggregation::Mode::Single,
        );
        let export: Arc<dyn ExecutionPlan> = Arc::new(ExchangeExec::export(op, ctx));
        assert!(rewrite(export).is_ok());
    }
}
