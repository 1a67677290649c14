//! The `datafusion-proto` codec of the PromQL operators: a physical plan of PromQL nodes
//! becomes a `PhysicalPlanNode` (protobuf) whose extension nodes carry each operator as
//! JSON of [`Wire`] — the [`PromOp`] (plain data: matchers, grids, functions, parameters),
//! the number of parts a read is cut into and an aggregation's mode — so a plan can be sent
//! to another process and run there. Decoding re-attaches the operators to a
//! [`QueryContext`] of the receiving side (its storage, its budget); a decoded read lists
//! its selection when it first runs.

use std::sync::Arc;

use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};

use super::aggregation::{AggregateKernel, Mode};
use super::node::{Kernel, as_op};
use super::{absent, info, join, map, window};
use crate::model::QueryContext;
use crate::plan::PromOp;

/// What the codec sends for one node.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Wire {
    /// The operator.
    pub op: PromOp,
    /// Parts of the selection a read node reads itself.
    #[serde(default)]
    pub parts: Option<usize>,
    /// An aggregation's mode.
    pub mode: Mode,
}

/// The wire form of a PromQL node, and the query it belongs to.
pub(crate) fn wire_of(plan: &Arc<dyn ExecutionPlan>) -> Option<(Wire, &Arc<QueryContext>)> {
    fn plain<K: Kernel>(plan: &Arc<dyn ExecutionPlan>) -> Option<(Wire, &Arc<QueryContext>)> {
        as_op::<K>(plan).map(|n| {
            let wire = Wire {
                op: n.kernel().op().clone(),
                parts: None,
                mode: Mode::Single,
            };
            (wire, n.ctx())
        })
    }
    if let Some(n) = as_op::<window::InstantKernel>(plan) {
        let k = n.kernel();
        let wire = Wire {
            op: k.op.clone(),
            parts: k.scan.as_ref().map(|s| s.parts()),
            mode: Mode::Single,
        };
        return Some((wire, n.ctx()));
    }
    if let Some(n) = as_op::<window::RangeKernel>(plan) {
        let k = n.kernel();
        let wire = Wire {
            op: k.op.clone(),
            parts: k.scan.as_ref().map(|s| s.parts()),
            mode: Mode::Single,
        };
        return Some((wire, n.ctx()));
    }
    if let Some(n) = as_op::<AggregateKernel>(plan) {
        let k = n.kernel();
        let wire = Wire {
            op: k.op.clone(),
            parts: None,
            mode: k.mode,
        };
        return Some((wire, n.ctx()));
    }
    plain::<window::SelectorKernel>(plan)
        .or_else(|| plain::<map::MapKernel>(plan))
        .or_else(|| plain::<join::JoinKernel>(plan))
        .or_else(|| plain::<info::InfoKernel>(plan))
        .or_else(|| plain::<absent::StepKernel>(plan))
}

/// Encodes and decodes PromQL nodes; decoded nodes run in `ctx`.
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
        let w: Wire = serde_json::from_slice(buf)
            .map_err(|e| DataFusionError::Internal(format!("bad PromQL operator: {e}")))?;
        Ok(super::rebuild(
            w.op,
            inputs.to_vec(),
            &self.ctx,
            w.parts,
            w.mode,
        ))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<()> {
        let Some((w, _)) = wire_of(&node) else {
            return Err(DataFusionError::NotImplemented(format!(
                "no codec for {}",
                node.name()
            )));
        };
        serde_json::to_writer(buf, &w)
            .map_err(|e| DataFusionError::Internal(format!("encoding {}: {e}", w.op.name())))
    }
}
