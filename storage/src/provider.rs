//! DataFusion `TableProvider`s over head + blocks: `samples` (metric, labels, timestamp,
//! value), `series` (metric, labels), and the downsampled `samples_5m`/`samples_1h`. Equality on `metric` and bounds on `timestamp`
//! are pushed down to the postings and the time range of the read (reported as inexact, so
//! DataFusion still filters exactly).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, Float64Builder, MapBuilder, StringBuilder, TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Column, DataFusionError, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use crate::db::Db;
use crate::labels::{Labels, METRIC_NAME};
use crate::matcher::{MatchOp, Matcher};

/// Schema of the `samples` table.
pub fn samples_table_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("metric", DataType::Utf8, false),
        crate::block::writer::labels_field(),
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("value", DataType::Float64, false),
    ]))
}

/// Schema of the `series` table.
pub fn series_table_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("metric", DataType::Utf8, false),
        crate::block::writer::labels_field(),
    ]))
}

/// What the filters allow the scan to narrow to.
#[derive(Debug, Default)]
struct Pushdown {
    metric: Option<String>,
    mint: Option<i64>,
    maxt: Option<i64>,
}

impl Pushdown {
    fn from_filters(filters: &[Expr]) -> Pushdown {
        let mut p = Pushdown::default();
        for f in filters {
            classify(f, &mut p);
        }
        p
    }

    fn mint(&self) -> i64 {
        self.mint.unwrap_or(i64::MIN)
    }

    fn maxt(&self) -> i64 {
        self.maxt.unwrap_or(i64::MAX)
    }
}

fn ts_millis(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::TimestampMillisecond(Some(x), _) => Some(*x),
        ScalarValue::TimestampSecond(Some(x), _) => x.checked_mul(1000),
        ScalarValue::TimestampMicrosecond(Some(x), _) => Some(x.div_euclid(1000)),
        ScalarValue::TimestampNanosecond(Some(x), _) => Some(x.div_euclid(1_000_000)),
        ScalarValue::Int64(Some(x)) => Some(*x),
        _ => None,
    }
}

/// `column <op> literal` (either side), with the operator as seen from the column.
fn column_literal(e: &Expr) -> Option<(&Column, Operator, &ScalarValue)> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else {
        return None;
    };
    match (left.as_ref(), right.as_ref()) {
        (Expr::Column(c), Expr::Literal(v, _)) => Some((c, *op, v)),
        (Expr::Literal(v, _), Expr::Column(c)) => op.swap().map(|o| (c, o, v)),
        _ => None,
    }
}

/// A string literal's text.
fn string_lit(v: &ScalarValue) -> Option<&str> {
    match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => Some(s),
        _ => None,
    }
}

/// The pushable parts of one filter: `metric = 'x'`, `timestamp <op> literal`.
fn classify(e: &Expr, p: &mut Pushdown) -> bool {
    let Some((col, op, lit)) = column_literal(e) else {
        return false;
    };
    match (col.name.as_str(), op) {
        ("metric", Operator::Eq) => match string_lit(lit) {
            Some(s) => {
                p.metric = Some(s.to_owned());
                true
            }
            None => false,
        },
        (
            "timestamp",
            Operator::Gt | Operator::GtEq | Operator::Lt | Operator::LtEq | Operator::Eq,
        ) => {
            let Some(t) = ts_millis(lit) else {
                return false;
            };
            if matches!(op, Operator::Gt | Operator::GtEq | Operator::Eq) {
                p.mint = Some(p.mint.map_or(t, |m| m.max(t)));
            }
            if matches!(op, Operator::Lt | Operator::LtEq | Operator::Eq) {
                p.maxt = Some(p.maxt.map_or(t, |m| m.min(t)));
            }
            true
        }
        _ => false,
    }
}

fn matchers(p: &Pushdown) -> Vec<Matcher> {
    match &p.metric {
        Some(m) => vec![Matcher::equal(METRIC_NAME, m.clone())],
        None => Matcher::new(MatchOp::Regex, METRIC_NAME, ".+")
            .into_iter()
            .collect(),
    }
}

fn append_labels(
    b: &mut MapBuilder<StringBuilder, StringBuilder>,
    l: &Labels,
) -> datafusion::error::Result<()> {
    for x in l.iter().filter(|x| &*x.name != METRIC_NAME) {
        b.keys().append_value(&x.name);
        b.values().append_value(&x.value);
    }
    b.append(true)?;
    Ok(())
}

fn storage_err(e: crate::error::StorageError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

fn pushdown_all(filters: &[&Expr]) -> Vec<TableProviderFilterPushDown> {
    filters
        .iter()
        .map(|f| {
            if classify(f, &mut Pushdown::default()) {
                TableProviderFilterPushDown::Inexact
            } else {
                TableProviderFilterPushDown::Unsupported
            }
        })
        .collect()
}

/// Every sample of every series, head and blocks merged.
#[derive(Debug, Clone)]
pub struct SamplesTable {
    db: Arc<Db>,
}

impl SamplesTable {
    /// The table over `db`.
    pub fn new(db: Arc<Db>) -> Self {
        SamplesTable { db }
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("dir", &self.opts.dir).finish()
    }
}

#[async_trait]
impl TableProvider for SamplesTable {
    fn schema(&self) -> SchemaRef {
        samples_table_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        Ok(pushdown_all(filters))
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        scan_samples(
            &self.db,
            filters,
            projection,
            samples_table_schema(),
            "samples",
            samples_batch,
        )
        .await
    }
}

/// Builds a table's batch from one read: the selected series, the projected column
/// numbers, the projected schema.
type BatchFn =
    fn(&[crate::db::SeriesSamples], &[usize], &SchemaRef) -> datafusion::error::Result<RecordBatch>;

/// The schema a scan of `full` produces for `projection`, and the column numbers it keeps.
fn projected(
    full: &SchemaRef,
    projection: Option<&Vec<usize>>,
) -> datafusion::error::Result<(SchemaRef, Vec<usize>)> {
    let cols: Vec<usize> = match projection {
        Some(c) => c.clone(),
        None => (0..full.fields().len()).collect(),
    };
    Ok((Arc::new(full.project(&cols)?), cols))
}

/// A scan of one-row-per-sample table `name` (schema `full`): the filters narrow the read
/// (metric, time range), which is cut into parts and turned into batches by `batch`.
async fn scan_samples(
    db: &Arc<Db>,
    filters: &[Expr],
    projection: Option<&Vec<usize>>,
    full: SchemaRef,
    name: &'static str,
    batch: BatchFn,
) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
    let p = Pushdown::from_filters(filters);
    let (schema, cols) = projected(&full, projection)?;
    let build =
        move |data: Vec<crate::db::SeriesSamples>, schema: &SchemaRef| batch(&data, &cols, schema);
    Ok(Arc::new(
        scan::PartsScan::new(
            db.clone(),
            matchers(&p),
            (p.mint(), p.maxt()),
            name,
            schema,
            Arc::new(build),
        )
        .await
        .map_err(storage_err)?,
    ))
}

/// The `samples` columns `cols` of one read (staleness markers are not data).
fn samples_batch(
    data: &[crate::db::SeriesSamples],
    cols: &[usize],
    schema: &SchemaRef,
) -> datafusion::error::Result<RecordBatch> {
    let live = |s: &crate::db::SeriesSamples| {
        s.samples
            .iter()
            .filter(|x| !crate::is_stale(x.1))
            .copied()
            .collect::<Vec<_>>()
    };
    let data: Vec<(&Labels, Vec<(i64, f64)>)> = data.iter().map(|s| (&s.labels, live(s))).collect();
    let n: usize = data.iter().map(|s| s.1.len()).sum();
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(cols.len());
    for &c in cols {
        arrays.push(match c {
            0 => {
                let mut b = StringBuilder::with_capacity(n, n * 16);
                for (l, v) in &data {
                    v.iter().for_each(|_| b.append_value(l.metric_name()));
                }
                Arc::new(b.finish())
            }
            1 => {
                let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
                for (l, v) in &data {
                    for _ in v {
                        append_labels(&mut b, l)?;
                    }
                }
                Arc::new(b.finish())
            }
            2 => {
                let mut b = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
                data.iter()
                    .for_each(|(_, v)| v.iter().for_each(|&(t, _)| b.append_value(t)));
                Arc::new(b.finish())
            }
            _ => {
                let mut b = Float64Builder::with_capacity(n);
                data.iter()
                    .for_each(|(_, v)| v.iter().for_each(|&(_, x)| b.append_value(x)));
                Arc::new(b.finish())
            }
        });
    }
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        arrays,
        &datafusion::arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(n)),
    )?)
}

/// One row per series (head and blocks).
#[derive(Debug, Clone)]
pub struct SeriesTable {
    db: Arc<Db>,
}

impl SeriesTable {
    /// The table over `db`.
    pub fn new(db: Arc<Db>) -> Self {
        SeriesTable { db }
    }
}

#[async_trait]
impl TableProvider for SeriesTable {
    fn schema(&self) -> SchemaRef {
        series_table_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        Ok(pushdown_all(filters))
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let p = Pushdown::from_filters(filters);
        let series = self
            .db
            .series(&matchers(&p), p.mint(), p.maxt())
            .await
            .map_err(storage_err)?;
        let mut metric = StringBuilder::new();
        let mut labels = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        for l in &series {
            metric.append_value(l.metric_name());
            append_labels(&mut labels, l)?;
        }
        let cols: Vec<ArrayRef> = vec![Arc::new(metric.finish()), Arc::new(labels.finish())];
        let batch = RecordBatch::try_new(series_table_schema(), cols)?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            series_table_schema(),
            projection.cloned(),
        )?)
    }
}

mod downsampled;
pub mod metric;
mod scan;

pub use downsampled::{DownsampledTable, downsampled_table_schema};

#[cfg(test)]
mod tests;

/// Schema of the `histograms` table: native histogram samples, one row each, with their
/// populated buckets as a list of `{lower, upper, count}` (ascending; the zero bucket is
/// `[-zero_threshold, zero_threshold]`).
pub fn histograms_table_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("metric", DataType::Utf8, false),
        crate::block::writer::labels_field(),
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("count", DataType::Float64, false),
        Field::new("sum", DataType::Float64, false),
        Field::new("schema", DataType::Int32, false),
        Field::new("zero_threshold", DataType::Float64, false),
        Field::new("zero_count", DataType::Float64, false),
        Field::new(
            "buckets",
            DataType::List(Arc::new(Field::new(
                "item",
                DataType::Struct(bucket_fields()),
                true,
            ))),
            false,
        ),
    ]))
}

fn bucket_fields() -> datafusion::arrow::datatypes::Fields {
    vec![
        Field::new("lower", DataType::Float64, false),
        Field::new("upper", DataType::Float64, false),
        Field::new("count", DataType::Float64, false),
    ]
    .into()
}

/// Every native histogram sample of every series, head and blocks merged.
#[derive(Debug, Clone)]
pub struct HistogramsTable {
    db: Arc<Db>,
}

impl HistogramsTable {
    /// The table over `db`.
    pub fn new(db: Arc<Db>) -> Self {
        HistogramsTable { db }
    }
}

#[async_trait]
impl TableProvider for HistogramsTable {
    fn schema(&self) -> SchemaRef {
        histograms_table_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        Ok(pushdown_all(filters))
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        scan_samples(
            &self.db,
            filters,
            projection,
            histograms_table_schema(),
            "histograms",
            histograms_batch,
        )
        .await
    }
}

/// The `histograms` columns `cols` of one read (staleness markers are not data).
fn histograms_batch(
    data: &[crate::db::SeriesSamples],
    cols: &[usize],
    schema: &SchemaRef,
) -> datafusion::error::Result<RecordBatch> {
    use datafusion::arrow::array::{Int32Builder, ListBuilder, StructBuilder};
    type H<'a> = &'a strata_vocab::FloatHistogram;
    let rows: Vec<(&Labels, i64, H<'_>)> = data
        .iter()
        .flat_map(|s| {
            s.histograms
                .iter()
                .filter(|(_, h)| !crate::is_stale(h.sum))
                .map(move |(t, h)| (&s.labels, *t, &**h))
        })
        .collect();
    let n = rows.len();
    let floats = |f: fn(H<'_>) -> f64| -> ArrayRef {
        let mut b = Float64Builder::with_capacity(n);
        rows.iter().for_each(|r| b.append_value(f(r.2)));
        Arc::new(b.finish())
    };
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(cols.len());
    for &c in cols {
        arrays.push(match c {
            0 => {
                let mut b = StringBuilder::with_capacity(n, n * 16);
                rows.iter().for_each(|r| b.append_value(r.0.metric_name()));
                Arc::new(b.finish())
            }
            1 => {
                let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
                for r in &rows {
                    append_labels(&mut b, r.0)?;
                }
                Arc::new(b.finish())
            }
            2 => {
                let mut b = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
                rows.iter().for_each(|r| b.append_value(r.1));
                Arc::new(b.finish())
            }
            3 => floats(|h| h.count),
            4 => floats(|h| h.sum),
            5 => {
                let mut b = Int32Builder::with_capacity(n);
                rows.iter().for_each(|r| b.append_value(r.2.schema));
                Arc::new(b.finish())
            }
            6 => floats(|h| h.zero_threshold),
            7 => floats(|h| h.zero_count),
            _ => {
                let mut b =
                    ListBuilder::new(StructBuilder::from_fields(bucket_fields(), 0)).with_field(
                        Arc::new(Field::new("item", DataType::Struct(bucket_fields()), true)),
                    );
                for r in &rows {
                    let sb = b.values();
                    for k in r.2.all_buckets().into_iter().filter(|k| k.count != 0.0) {
                        for (i, v) in [k.lower, k.upper, k.count].into_iter().enumerate() {
                            sb.field_builder::<Float64Builder>(i)
                                .ok_or_else(|| {
                                    DataFusionError::Internal("bucket struct builder".into())
                                })?
                                .append_value(v);
                        }
                        sb.append(true);
                    }
                    b.append(true);
                }
                Arc::new(b.finish())
            }
        });
    }
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        arrays,
        &datafusion::arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(n)),
    )?)
}
