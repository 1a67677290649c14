//! The two ends of a stage boundary of a distributed query ([`ExchangeExec`]). PromQL
//! relations name their series by ids of a per-query registry
//! ([`crate::model::SeriesRegistry`]), and each node of the cluster has its own: the export
//! ([`ExchangeExec::export`]), head of a worker's stage, adds a `labels` column that
//! carries a series' label set on the first row of that series in each batch (null on the
//! others), and the import ([`ExchangeExec::import`]), on the coordinator, interns those
//! label sets in the query's registry, rewrites the ids and drops the column. Every batch
//! is self-contained, so batches of any worker and partition can arrive in any order.
//! The warnings and infos a worker's operators note follow its last batch as one row of
//! series id [`NOTES`] whose labels column holds them (JSON).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryBuilder, UInt32Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt32Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::StreamExt;
use strata_storage::{Label, Labels};

use crate::model::{QueryContext, SeriesMeta};

/// The name of the column an export adds.
const LABELS: &str = "labels";

/// The series id of the row that carries a task's notes (no registry gets this far).
const NOTES: u32 = u32::MAX;

fn properties(schema: SchemaRef, partitions: usize) -> Arc<PlanProperties> {
    Arc::new(PlanProperties::new(
        EquivalenceProperties::new(schema),
        Partitioning::UnknownPartitioning(partitions.max(1)),
        EmissionType::Final,
        Boundedness::Bounded,
    ))
}

/// Which end of a boundary a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    /// The head of a worker's stage: its input's batches with the label sets of their
    /// series (and, last, its notes).
    Export,
    /// The coordinator's end: every partition of its input (a network boundary over
    /// exports) as one partition, series ids those of the query's registry.
    Import,
}

/// One end of a stage boundary ([`Side`]).
pub(crate) struct ExchangeExec {
    side: Side,
    input: Arc<dyn ExecutionPlan>,
    ctx: Arc<QueryContext>,
    props: Arc<PlanProperties>,
}

impl ExchangeExec {
    /// The export of `input`, whose series ids are those of `ctx`.
    pub(crate) fn export(input: Arc<dyn ExecutionPlan>, ctx: Arc<QueryContext>) -> Self {
        let mut fields: Vec<Field> = input
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new(LABELS, DataType::Binary, true));
        let props = properties(
            Arc::new(Schema::new(fields)),
            input.properties().partitioning.partition_count(),
        );
        ExchangeExec {
            side: Side::Export,
            input,
            ctx,
            props,
        }
    }

    /// The import of `input` (exports' batches) into `ctx`.
    pub(crate) fn import(input: Arc<dyn ExecutionPlan>, ctx: Arc<QueryContext>) -> Self {
        let schema = input.schema();
        let n = schema.fields().len().saturating_sub(1);
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .take(n)
            .map(|f| f.as_ref().clone())
            .collect();
        let props = properties(Arc::new(Schema::new(fields)), 1);
        ExchangeExec {
            side: Side::Import,
            input,
            ctx,
            props,
        }
    }

    /// Whether it is the head of a worker's stage.
    pub(crate) fn is_export(&self) -> bool {
        self.side == Side::Export
    }

    /// The query it belongs to.
    pub(crate) fn ctx(&self) -> &Arc<QueryContext> {
        &self.ctx
    }

    fn execute_export(
        &self,
        partition: usize,
        task: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let input = self.input.execute(partition, task)?;
        let (ctx, schema) = (self.ctx.clone(), self.schema());
        let (c, out) = (ctx.clone(), schema.clone());
        let stream = input.map(move |b| b.and_then(|b| export(&c, &out, b)));
        // Then the notes, once the operators are done.
        let out = schema.clone();
        let notes = futures::stream::once(async move { notes_row(&ctx, &out) })
            .filter_map(|r| async move { r.transpose() });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            stream.chain(notes),
        )))
    }

    fn execute_import(
        &self,
        partition: usize,
        task: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "PromImport has one partition, asked for {partition}"
            )));
        }
        // Every partition at once: each is a task on some worker, running as it is read.
        let n = self.input.properties().partitioning.partition_count();
        let streams = (0..n)
            .map(|p| self.input.execute(p, task.clone()))
            .collect::<DfResult<Vec<_>>>()?;
        let (ctx, schema) = (self.ctx.clone(), self.schema());
        let out = schema.clone();
        let stream = futures::stream::select_all(streams)
            .map(move |b| b.and_then(|b| import(&ctx, &out, b)));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

impl fmt::Debug for ExchangeExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl DisplayAs for ExchangeExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        match self.side {
            Side::Export => f.write_str("PromExport: series ids with their labels"),
            Side::Import => f.write_str("PromImport: the workers' series in this query's ids"),
        }
    }
}

impl ExecutionPlan for ExchangeExec {
    fn name(&self) -> &str {
        match self.side {
            Side::Export => "PromExport",
            Side::Import => "PromImport",
        }
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
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
        let Ok([input]) = <[_; 1]>::try_from(children) else {
            return Err(DataFusionError::Internal(format!(
                "{} takes one input",
                self.name()
            )));
        };
        Ok(Arc::new(match self.side {
            Side::Export => ExchangeExec::export(input, self.ctx.clone()),
            Side::Import => ExchangeExec::import(input, self.ctx.clone()),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        task: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        match self.side {
            Side::Export => self.execute_export(partition, task),
            Side::Import => self.execute_import(partition, task),
        }
    }
}

/// `batch` with the labels column: the label set on the first row of each series.
fn export(ctx: &QueryContext, schema: &SchemaRef, batch: RecordBatch) -> DfResult<RecordBatch> {
    let ids = ids_of(&batch)?;
    let mut seen = std::collections::HashSet::new();
    let mut labels = BinaryBuilder::with_capacity(batch.num_rows(), 0);
    let mut buf = Vec::new();
    for id in ids.values().iter() {
        if seen.insert(*id) {
            buf.clear();
            encode(&ctx.registry.get(*id), &mut buf);
            labels.append_value(&buf);
        } else {
            labels.append_null();
        }
    }
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(labels.finish()) as ArrayRef);
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// The row of series id [`NOTES`] that carries the query's notes (`None`: no notes).
fn notes_row(ctx: &QueryContext, schema: &SchemaRef) -> DfResult<Option<RecordBatch>> {
    use datafusion::arrow::array::{BinaryArray, BooleanArray, Float64Array, Int64Array};
    let notes = ctx.notes.lock().clone();
    if notes.warnings.is_empty() && notes.infos.is_empty() {
        return Ok(None);
    }
    let json = serde_json::to_vec(&notes)
        .map_err(|e| DataFusionError::Internal(format!("encoding notes: {e}")))?;
    let last = schema.fields().len() - 1;
    let columns = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| -> DfResult<ArrayRef> {
            Ok(match f.data_type() {
                DataType::UInt32 => Arc::new(UInt32Array::from(vec![NOTES])),
                DataType::Int64 => Arc::new(Int64Array::from(vec![0])),
                DataType::Float64 => Arc::new(Float64Array::from(vec![0.0])),
                DataType::Boolean => Arc::new(BooleanArray::from(vec![false])),
                DataType::Binary if i == last => {
                    Arc::new(BinaryArray::from(vec![Some(json.as_slice())]))
                }
                DataType::Binary => Arc::new(BinaryArray::from(vec![None::<&[u8]>])),
                t => {
                    return Err(DataFusionError::Internal(format!(
                        "no notes row for a {t} column"
                    )));
                }
            })
        })
        .collect::<DfResult<Vec<_>>>()?;
    Ok(Some(RecordBatch::try_new(schema.clone(), columns)?))
}

/// The series ids of a batch: its first column.
fn ids_of(batch: &RecordBatch) -> DfResult<&UInt32Array> {
    batch
        .columns()
        .first()
        .and_then(|c| c.as_primitive_opt::<UInt32Type>())
        .ok_or_else(|| DataFusionError::Internal("a PromQL relation without series ids".into()))
}

/// A label set on the wire: the drop-name flag, then each name and value, length-prefixed.
fn encode(m: &SeriesMeta, out: &mut Vec<u8>) {
    out.push(u8::from(m.drop_name));
    for l in m.labels.iter() {
        for s in [&*l.name, &*l.value] {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
}

/// The label set [`encode`] wrote.
fn decode(mut b: &[u8]) -> DfResult<SeriesMeta> {
    let bad = || DataFusionError::Execution("a worker sent a malformed label set".into());
    let (&flag, rest) = b.split_first().ok_or_else(bad)?;
    b = rest;
    let take = |b: &mut &[u8]| -> DfResult<String> {
        let (n, rest) = b.split_at_checked(4).ok_or_else(bad)?;
        let n = u32::from_le_bytes(n.try_into().map_err(|_| bad())?) as usize;
        let (s, rest) = rest.split_at_checked(n).ok_or_else(bad)?;
        *b = rest;
        String::from_utf8(s.to_vec()).map_err(|_| bad())
    };
    let mut labels = Vec::new();
    while !b.is_empty() {
        let name = take(&mut b)?;
        let value = take(&mut b)?;
        labels.push(Label {
            name: name.into(),
            value: value.into(),
        });
    }
    Ok(SeriesMeta {
        labels: Labels::from_labels(labels),
        drop_name: flag != 0,
    })
}

/// `batch` (with a labels column) with its ids interned in `ctx`'s registry.
fn import(ctx: &QueryContext, schema: &SchemaRef, batch: RecordBatch) -> DfResult<RecordBatch> {
    let ids = ids_of(&batch)?;
    let last = batch.num_columns().saturating_sub(1);
    let labels = batch
        .column(last)
        .as_binary_opt::<i32>()
        .ok_or_else(|| DataFusionError::Internal("a worker's batch without labels".into()))?;
    if ids.len() == 1 && ids.value(0) == NOTES && labels.is_valid(0) {
        let notes: crate::model::Annotations = serde_json::from_slice(labels.value(0))
            .map_err(|e| DataFusionError::Execution(format!("a worker's notes: {e}")))?;
        for w in notes.warnings {
            ctx.warn(w);
        }
        for i in notes.infos {
            ctx.info(i);
        }
        return Ok(RecordBatch::new_empty(schema.clone()));
    }
    let mut mine: HashMap<u32, u32> = HashMap::new();
    let mut out = Vec::with_capacity(ids.len());
    for (k, id) in ids.values().iter().enumerate() {
        let to = match mine.get(id) {
            Some(&to) => to,
            None if labels.is_valid(k) => {
                let m = decode(labels.value(k))?;
                let to = ctx.registry.intern(m.labels, m.drop_name);
                mine.insert(*id, to);
                to
            }
            None => {
                return Err(DataFusionError::Execution(
                    "a worker sent a series without its labels".into(),
                ));
            }
        };
        out.push(to);
    }
    let mut columns: Vec<ArrayRef> = batch.columns()[..last].to_vec();
    columns[0] = Arc::new(UInt32Array::from(out));
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_sets_cross_intact_and_malformed_ones_are_refused() {
        let m = SeriesMeta {
            labels: Labels::from_pairs([("__name__", "up"), ("job", "a\u{1F600}"), ("x", "")]),
            drop_name: true,
        };
        let mut buf = Vec::new();
        encode(&m, &mut buf);
        let back = decode(&buf).expect("decodes");
        assert_eq!(back, m);
        for cut in 1..buf.len() {
            if let Ok(got) = decode(&buf[..cut]) {
                assert_ne!(got, m, "a cut set must not pass for the whole one");
            }
        }
        assert!(decode(&[]).is_err());
    }
}
