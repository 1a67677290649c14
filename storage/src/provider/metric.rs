//! One table per metric name, its labels as columns: `SELECT instance, avg(value) FROM
//! node_load1 WHERE timestamp > now() - INTERVAL '1 day' GROUP BY instance`. The schema
//! is `timestamp`, `value`, then one nullable string column per label name the metric's
//! series carry (an absent label is NULL; dictionary-encoded, one value per series). Filters
//! `label = 'x'`, `label <> 'x'`, `label IN (...)` and `timestamp` bounds are pushed down to
//! the postings and the time range of the read (blocks outside the range are not opened),
//! exactly where the read then returns just the matching rows; only projected columns are
//! built.
//!
//! [`MetricSchema`] is the DataFusion schema provider that resolves any metric name to its
//! table, so every metric is queryable without registering anything.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, DictionaryArray, Float64Builder, Int32Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use super::{column_literal, storage_err, string_lit, ts_millis};
use crate::db::Db;
use crate::labels::METRIC_NAME;
use crate::matcher::{MatchOp, Matcher};

/// The table of one metric.
#[derive(Debug)]
pub struct MetricTable {
    db: Arc<Db>,
    metric: String,
    /// Label names (sorted), one column each after `timestamp` and `value`.
    labels: Vec<String>,
    schema: SchemaRef,
}

impl MetricTable {
    /// The table of `metric`, with a column for every label name its series have.
    pub async fn new(db: Arc<Db>, metric: &str) -> crate::error::Result<Option<MetricTable>> {
        let series = db
            .series(&[Matcher::equal(METRIC_NAME, metric)], i64::MIN, i64::MAX)
            .await?;
        if series.is_empty() {
            return Ok(None);
        }
        let names: BTreeSet<String> = series
            .iter()
            .flat_map(|l| l.iter().map(|x| x.name.to_string()).collect::<Vec<_>>())
            .filter(|n| n != METRIC_NAME && n != "timestamp" && n != "value")
            .collect();
        let labels: Vec<String> = names.into_iter().collect();
        let mut fields = vec![
            Field::new(
                "timestamp",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                false,
            ),
            Field::new("value", DataType::Float64, false),
        ];
        fields.extend(labels.iter().map(|n| {
            Field::new(
                n,
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            )
        }));
        Ok(Some(MetricTable {
            db,
            metric: metric.to_owned(),
            labels,
            schema: Arc::new(Schema::new(fields)),
        }))
    }

    /// Narrows `m` and `range` by one filter. `Exact` when the read then returns exactly the
    /// rows the filter keeps (DataFusion need not filter again), `Inexact` when it returns a
    /// superset, `Unsupported` when the filter is not understood.
    fn classify(
        &self,
        e: &Expr,
        m: &mut Vec<Matcher>,
        range: &mut (i64, i64),
    ) -> TableProviderFilterPushDown {
        use TableProviderFilterPushDown::{Exact, Inexact, Unsupported};
        match e {
            Expr::BinaryExpr(_) => {
                let Some((col, op, lit)) = column_literal(e) else {
                    return Unsupported;
                };
                if col.name == "timestamp" {
                    let Some(t) = ts_millis(lit) else {
                        return Unsupported;
                    };
                    // Whole milliseconds: strict bounds become inclusive ones exactly.
                    let whole = matches!(
                        lit,
                        ScalarValue::TimestampMillisecond(..)
                            | ScalarValue::TimestampSecond(..)
                            | ScalarValue::Int64(_)
                    );
                    match op {
                        Operator::Gt => range.0 = range.0.max(t.saturating_add(1)),
                        Operator::GtEq => range.0 = range.0.max(t),
                        Operator::Lt => range.1 = range.1.min(t.saturating_sub(1)),
                        Operator::LtEq => range.1 = range.1.min(t),
                        Operator::Eq => {
                            range.0 = range.0.max(t);
                            range.1 = range.1.min(t);
                        }
                        _ => return Unsupported,
                    }
                    return if whole { Exact } else { Inexact };
                }
                if !self.labels.contains(&col.name) {
                    return Unsupported;
                }
                let Some(s) = string_lit(lit) else {
                    return Unsupported;
                };
                // `label = 'x'` keeps exactly the series the matcher selects (an absent
                // label is NULL in SQL and "" for matchers, so '' is not exact, nor is `<>`).
                let (op, exact) = match op {
                    Operator::Eq => (MatchOp::Equal, !s.is_empty()),
                    Operator::NotEq => (MatchOp::NotEqual, false),
                    _ => return Unsupported,
                };
                match Matcher::new(op, &col.name, s) {
                    Ok(x) => {
                        m.push(x);
                        if exact { Exact } else { Inexact }
                    }
                    Err(_) => Unsupported,
                }
            }
            Expr::InList(l) if !l.negated => {
                let Expr::Column(c) = l.expr.as_ref() else {
                    return Unsupported;
                };
                if !self.labels.contains(&c.name) {
                    return Unsupported;
                }
                let mut alts = Vec::new();
                let mut exact = true;
                for x in &l.list {
                    match x {
                        Expr::Literal(v, _) => match string_lit(v) {
                            Some(s) => {
                                exact &= !s.is_empty();
                                alts.push(regex::escape(s));
                            }
                            None => return Unsupported,
                        },
                        _ => return Unsupported,
                    }
                }
                match Matcher::new(MatchOp::Regex, &c.name, alts.join("|")) {
                    Ok(x) => {
                        m.push(x);
                        if exact { Exact } else { Inexact }
                    }
                    Err(_) => Unsupported,
                }
            }
            _ => Unsupported,
        }
    }
}

#[async_trait]
impl TableProvider for MetricTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| self.classify(f, &mut Vec::new(), &mut (i64::MIN, i64::MAX)))
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let mut matchers = vec![Matcher::equal(METRIC_NAME, &self.metric)];
        let mut range = (i64::MIN, i64::MAX);
        for f in filters {
            self.classify(f, &mut matchers, &mut range);
        }
        let (schema, cols) = super::projected(&self.schema, projection)?;
        let labels = self.labels.clone();
        let build = move |mut data: Vec<crate::db::SeriesSamples>, schema: &SchemaRef| {
            // Staleness markers are not data (PromQL drops them too).
            for s in &mut data {
                s.samples.retain(|p| !crate::is_stale(p.1));
            }
            metric_batch(&data, &cols, &labels, schema)
        };
        Ok(Arc::new(
            super::scan::PartsScan::new(
                self.db.clone(),
                matchers,
                range,
                "metric",
                schema,
                Arc::new(build),
            )
            .await
            .map_err(storage_err)?,
        ))
    }
}

/// The columns `cols` of one read of a metric table (samples already within the range).
fn metric_batch(
    data: &[crate::db::SeriesSamples],
    cols: &[usize],
    labels: &[String],
    schema: &SchemaRef,
) -> datafusion::error::Result<RecordBatch> {
    let n: usize = data.iter().map(|s| s.samples.len()).sum();
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(cols.len());
    for &c in cols {
        arrays.push(match c {
            0 => {
                let mut b = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
                data.iter()
                    .for_each(|s| s.samples.iter().for_each(|&(t, _)| b.append_value(t)));
                Arc::new(b.finish())
            }
            1 => {
                let mut b = Float64Builder::with_capacity(n);
                data.iter()
                    .for_each(|s| s.samples.iter().for_each(|&(_, v)| b.append_value(v)));
                Arc::new(b.finish())
            }
            _ => label_column(data, &labels[c - 2], n)?,
        });
    }
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        arrays,
        &RecordBatchOptions::new().with_row_count(Some(n)),
    )?)
}

/// One label as a dictionary column: the value is looked up once per series, each
/// sample only repeats its key.
fn label_column(
    data: &[crate::db::SeriesSamples],
    name: &str,
    rows: usize,
) -> datafusion::error::Result<ArrayRef> {
    let mut values = StringBuilder::new();
    let mut index: HashMap<&str, i32> = HashMap::new();
    let mut keys = Int32Builder::with_capacity(rows);
    for s in data {
        let key = s.labels.get(name).map(|v| {
            let next = index.len() as i32;
            *index.entry(v).or_insert_with(|| {
                values.append_value(v);
                next
            })
        });
        for _ in &s.samples {
            keys.append_option(key);
        }
    }
    Ok(Arc::new(DictionaryArray::<Int32Type>::try_new(
        keys.finish(),
        Arc::new(values.finish()),
    )?))
}

/// The SQL session's default schema: the fixed tables (`samples`, `series`, `histograms`,
/// `samples_5m`, `samples_1h`) and a table
/// for every metric name (a metric named like a fixed table is shadowed by it).
#[derive(Debug)]
pub struct MetricSchema {
    db: Arc<Db>,
    names: Vec<String>,
    fixed: HashMap<String, Arc<dyn TableProvider>>,
}

impl MetricSchema {
    /// A provider over `db`, listing the metric names present now.
    pub async fn new(db: Arc<Db>) -> crate::error::Result<MetricSchema> {
        let all = Matcher::new(MatchOp::Regex, METRIC_NAME, ".+")?;
        let names: BTreeSet<String> = db
            .series(&[all], i64::MIN, i64::MAX)
            .await?
            .iter()
            .map(|l| l.metric_name().to_owned())
            .collect();
        let fixed: HashMap<String, Arc<dyn TableProvider>> = [
            (
                "samples".to_owned(),
                Arc::new(super::SamplesTable::new(db.clone())) as Arc<dyn TableProvider>,
            ),
            (
                "series".to_owned(),
                Arc::new(super::SeriesTable::new(db.clone())) as Arc<dyn TableProvider>,
            ),
            (
                "histograms".to_owned(),
                Arc::new(super::HistogramsTable::new(db.clone())) as Arc<dyn TableProvider>,
            ),
        ]
        .into_iter()
        .chain(crate::downsample::RESOLUTIONS.map(|res| {
            (
                super::downsampled::table_name(res).to_owned(),
                Arc::new(super::DownsampledTable::new(db.clone(), res)) as Arc<dyn TableProvider>,
            )
        }))
        .collect();
        Ok(MetricSchema {
            db,
            names: names.into_iter().collect(),
            fixed,
        })
    }
}

#[async_trait]
impl SchemaProvider for MetricSchema {
    fn table_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.fixed.keys().cloned().collect();
        v.sort();
        v.extend(
            self.names
                .iter()
                .filter(|n| !self.fixed.contains_key(*n))
                .cloned(),
        );
        v
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        if let Some(t) = self.fixed.get(name) {
            return Ok(Some(t.clone()));
        }
        Ok(MetricTable::new(self.db.clone(), name)
            .await
            .map_err(storage_err)?
            .map(|t| Arc::new(t) as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.fixed.contains_key(name) || self.names.iter().any(|n| n == name)
    }
}
