//! The codec of a distributed query's worker stages: each PromQL node travels as the JSON
//! of [`exec::codec::Wire`](crate::exec::codec::Wire) with the query it belongs to
//! ([`QueryWire`]: its parameters, the time it has left, the ring and the read stage's
//! task count), and the stage head ([`ExchangeExec::export`]) as that query alone. On a worker the first node
//! decoded makes the task's [`QueryContext`] — this node's storage, its own memory pool
//! and limits, the task's [`Shard`](super::Shard) — and every node of the stage runs in it.

use std::sync::{Arc, OnceLock};

use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_distributed::DistributedTaskContext;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};

use super::exchange::ExchangeExec;
use super::worker::WorkerEnv;
use crate::exec::codec::{Wire, wire_of};
use crate::model::{QueryContext, QueryParams};

/// What a worker needs to know of the query a stage belongs to.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct QueryWire {
    pub(crate) params: QueryParams,
    /// Milliseconds the query had left when the plan was sent.
    pub(crate) timeout_ms: u64,
    /// The ring's members.
    pub(crate) members: Vec<String>,
    /// Tasks of the read stage.
    pub(crate) tasks: usize,
}

impl QueryWire {
    fn of(ctx: &QueryContext) -> DfResult<QueryWire> {
        let layout = ctx.layout.as_ref().ok_or_else(|| {
            DataFusionError::Internal("a stage of a query that is not distributed".into())
        })?;
        Ok(QueryWire {
            params: ctx.params,
            timeout_ms: ctx
                .deadline
                .saturating_duration_since(std::time::Instant::now())
                .as_millis() as u64,
            members: layout.members.clone(),
            tasks: layout.tasks,
        })
    }
}

/// One node of a stage.
#[derive(serde::Serialize, serde::Deserialize)]
enum Node {
    /// A PromQL operator.
    Op { wire: Wire, query: QueryWire },
    /// The stage's head.
    Export { query: QueryWire },
}

/// Encodes stages on the coordinator; decodes them on a worker (with its [`WorkerEnv`]).
pub(crate) struct DistCodec {
    worker: Option<Arc<WorkerEnv>>,
    ctx: OnceLock<Arc<QueryContext>>,
}

impl DistCodec {
    /// The coordinator's codec: it only encodes.
    pub(crate) fn coordinator() -> Self {
        DistCodec {
            worker: None,
            ctx: OnceLock::new(),
        }
    }

    /// The codec of one task on a worker.
    pub(crate) fn worker(env: Arc<WorkerEnv>) -> Self {
        DistCodec {
            worker: Some(env),
            ctx: OnceLock::new(),
        }
    }

    fn context(&self, q: &QueryWire, task: &TaskContext) -> DfResult<Arc<QueryContext>> {
        let env = self.worker.as_ref().ok_or_else(|| {
            DataFusionError::Internal("this node does not run distributed tasks".into())
        })?;
        let index = task
            .session_config()
            .get_extension::<DistributedTaskContext>()
            .map_or(0, |t| t.task_index);
        if q.members.is_empty() || q.tasks == 0 || index >= q.tasks {
            return Err(DataFusionError::Plan(format!(
                "task {index} of {} over {} members",
                q.tasks,
                q.members.len()
            )));
        }
        Ok(self.ctx.get_or_init(|| env.context(q, index)).clone())
    }
}

impl std::fmt::Debug for DistCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DistCodec")
    }
}

impl PhysicalExtensionCodec for DistCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        task: &TaskContext,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let node: Node = serde_json::from_slice(buf)
            .map_err(|e| DataFusionError::Plan(format!("bad distributed PromQL node: {e}")))?;
        match node {
            Node::Op { wire, query } => {
                let ctx = self.context(&query, task)?;
                Ok(crate::exec::rebuild(
                    wire.op,
                    inputs.to_vec(),
                    &ctx,
                    wire.parts,
                    wire.mode,
                ))
            }
            Node::Export { query } => {
                let ctx = self.context(&query, task)?;
                match inputs {
                    [input] => Ok(Arc::new(ExchangeExec::export(input.clone(), ctx))),
                    _ => Err(DataFusionError::Plan("PromExport takes one input".into())),
                }
            }
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<()> {
        let any: &dyn std::any::Any = node.as_ref();
        let n = if let Some(e) = any.downcast_ref::<ExchangeExec>().filter(|e| e.is_export()) {
            Node::Export {
                query: QueryWire::of(e.ctx())?,
            }
        } else if let Some((wire, ctx)) = wire_of(&node) {
            Node::Op {
                wire,
                query: QueryWire::of(ctx)?,
            }
        } else {
            return Err(DataFusionError::NotImplemented(format!(
                "no codec for {}",
                node.name()
            )));
        };
        serde_json::to_writer(buf, &n)
            .map_err(|e| DataFusionError::Internal(format!("encoding {}: {e}", node.name())))
    }
}
