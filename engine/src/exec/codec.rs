//! The `datafusion-proto` codec of the PromQL operators: a physical plan of [`PromExec`]
//! nodes becomes a `PhysicalPlanNode` (protobuf) whose extension nodes carry each
//! operator as JSON of [`PromOp`] (plain data: matchers, grids, functions, parameters), so
//! a plan can be sent to another process and run there. Decoding re-attaches the
//! operators to a [`QueryContext`] of the receiving side (its storage, its budget).

use std::sync::Arc;

use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};

use super::PromExec;
use crate::model::QueryContext;
use crate::plan::PromOp;

/// Encodes and decodes [`PromExec`] nodes; decoded nodes run in `ctx`.
#[derive(Clone)]
pub struct PromCodec {
    ctx: Arc<QueryContext>,
}

impl PromCodec {
    /// A codec whose decoded operators run in `ctx`.
    pub fn new(ctx: Arc<QueryContext>) -> Self {
        PromCodec { ctx }
    }
}

impl std::fmt::Debug for PromCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PromCodec")
    }
}

impl PhysicalExtensionCodec for PromCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let op: PromOp = serde_json::from_slice(buf)
            .map_err(|e| DataFusionError::Internal(format!("bad PromQL operator: {e}")))?;
        Ok(Arc::new(PromExec::rebuild(
            op,
            inputs.to_vec(),
            self.ctx.clone(),
        )))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<()> {
        let any: &dyn std::any::Any = node.as_ref();
        let Some(p) = any.downcast_ref::<PromExec>() else {
            return Err(DataFusionError::NotImplemented(format!(
                "no codec for {}",
                node.name()
            )));
        };
        serde_json::to_writer(buf, p.op())
            .map_err(|e| DataFusionError::Internal(format!("encoding {}: {e}", p.op().name())))
    }
}
