//! One table per metric name, its labels as columns: `SELECT instance, avg(value) FROM
//! node_load1 WHERE timestamp > now() - INTERVAL '1 day' GROUP BY instance`. The schema
//! is `timestamp`, `value`, then one nullable string column per label name the metric's
//! series carry (an absent label is NULL). Filters `label = 'x'`, `label <> 'x'`,
//! `label IN (...)` and `timestamp` bounds are pushed down to the postings and the time
//! range of the read (blocks outside the range are not opened).
//!
//! [`MetricSchema`] is the DataFusion schema provider that resolves any metric name to its
//! table, so every metric is queryable without registering anything.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, Float64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use super::{storage_err, ts_millis};
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
        fields.extend(labels.iter().map(|n| Field::new(n, DataType::Utf8, true)));
        Ok(Some(MetricTable {
            db,
            metric: metric.to_owned(),
            labels,
            schema: Arc::new(Schema::new(fields)),
        }))
    }

    /// The matchers and time range a filter narrows the read to; `None` when it cannot.
    fn classify(&self, e: &Expr, m: &mut Vec<Matcher>, range: &mut (i64, i64)) -> bool {
        match e {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (col, op, lit) = match (left.as_ref(), right.as_ref()) {
                    (Expr::Column(c), Expr::Literal(v, _)) => (c, *op, v),
                    (Expr::Literal(v, _), Expr::Column(c)) => match op.swap() {
                        Some(o) => (c, o, v),
                        None => return false,
                    },
                    _ => return false,
                };
                if col.name == "timestamp" {
                    let Some(t) = ts_millis(lit) else {
                        return false;
                    };
                    match op {
                        Operator::Gt | Operator::GtEq => range.0 = range.0.max(t),
                        Operator::Lt | Operator::LtEq => range.1 = range.1.min(t),
                        Operator::Eq => {
                            range.0 = range.0.max(t);
                            range.1 = range.1.min(t);
                        }
                        _ => return false,
                    }
                    return true;
                }
                if !self.labels.contains(&col.name) {
                    return false;
                }
                let Some(s) = string_lit(lit) else {
                    return false;
                };
                let op = match op {
                    Operator::Eq => MatchOp::Equal,
                    Operator::NotEq => MatchOp::NotEqual,
                    _ => return false,
                };
                match Matcher::new(op, &col.name, s) {
                    Ok(x) => {
                        m.push(x);
                        true
                    }
                    Err(_) => false,
                }
            }
            Expr::InList(l) if !l.negated => {
                let Expr::Column(c) = l.expr.as_ref() else {
                    return false;
                };
                if !self.labels.contains(&c.name) {
                    return false;
                }
                let mut alts = Vec::new();
                for x in &l.list {
                    match x {
                        Expr::Literal(v, _) => match string_lit(v) {
                            Some(s) => alts.push(regex::escape(s)),
                            None => return false,
                        },
                        _ => return false,
                    }
                }
                match Matcher::new(MatchOp::RegexMatch, &c.name, alts.join("|")) {
                    Ok(x) => {
                        m.push(x);
                        true
                    }
                    Err(_) => false,
                }
            }
            _ => false,
        }
    }
}

fn string_lit(v: &ScalarValue) -> Option<&str> {
    match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => Some(s),
        _ => None,
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
            .map(|f| {
                if self.classify(f, &mut Vec::new(), &mut (i64::MIN, i64::MAX)) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
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
        let data = if range.0 > range.1 {
            Vec::new()
        } else {
            self.db
                .select(&matchers, range.0, range.1)
                .await
                .map_err(storage_err)?
        };
        let n: usize = data.iter().map(|s| s.samples.len()).sum();
        let mut ts = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
        let mut vals = Float64Builder::with_capacity(n);
        let mut cols: Vec<StringBuilder> = self
            .labels
            .iter()
            .map(|_| StringBuilder::with_capacity(n, n * 8))
            .collect();
        let index: HashMap<&str, usize> = self
            .labels
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let mut row: Vec<Option<&str>> = vec![None; self.labels.len()];
        for s in &data {
            row.iter_mut().for_each(|x| *x = None);
            for l in s.labels.iter() {
                if let Some(&i) = index.get(&*l.name) {
                    row[i] = Some(&l.value);
                }
            }
            for &(t, v) in &s.samples {
                ts.append_value(t);
                vals.append_value(v);
                for (b, x) in cols.iter_mut().zip(&row) {
                    b.append_option(*x);
                }
            }
        }
        let mut arrays: Vec<ArrayRef> = vec![Arc::new(ts.finish()), Arc::new(vals.finish())];
        arrays.extend(cols.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            self.schema.clone(),
            projection.cloned(),
        )?)
    }
}

/// The SQL session's default schema: the fixed tables (`samples`, `series`) and a table
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
        let all = Matcher::new(MatchOp::RegexMatch, METRIC_NAME, ".+")?;
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
        ]
        .into();
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
