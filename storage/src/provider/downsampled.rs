//! The SQL tables `samples_5m` and `samples_1h`: every float series at a downsampled
//! resolution, one row per series and window — from the downsampled blocks where they
//! exist, computed from raw samples elsewhere — with the window's aggregates
//! ([`crate::downsample::Aggregate`]). `timestamp` is the window's end; the window covers
//! `(timestamp − resolution, timestamp]`. `metric = '…'` and bounds on `timestamp` are
//! pushed down as for `samples`.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, Float64Builder, MapBuilder, StringBuilder, TimestampMillisecondBuilder, UInt32Builder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use super::{Pushdown, append_labels, matchers, projected, pushdown_all, storage_err};
use crate::db::Db;
use crate::downsample::SeriesAggregates;

/// Schema of the `samples_5m` and `samples_1h` tables.
pub fn downsampled_table_schema() -> SchemaRef {
    let ts = || DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("metric", DataType::Utf8, false),
        crate::block::writer::labels_field(),
        Field::new("timestamp", ts(), false),
        Field::new("count", DataType::UInt32, false),
        Field::new("sum", DataType::Float64, false),
        Field::new("min", DataType::Float64, false),
        Field::new("max", DataType::Float64, false),
        Field::new("first_timestamp", ts(), false),
        Field::new("first_value", DataType::Float64, false),
        Field::new("last_timestamp", ts(), false),
        Field::new("last_value", DataType::Float64, false),
        Field::new("counter_correction", DataType::Float64, false),
    ]))
}

/// The table of resolution `res`: `samples_5m` or `samples_1h`.
pub(super) fn table_name(res: i64) -> &'static str {
    if res == crate::downsample::RES_1H {
        "samples_1h"
    } else {
        "samples_5m"
    }
}

/// One resolution's table.
#[derive(Debug, Clone)]
pub struct DownsampledTable {
    db: Arc<Db>,
    res: i64,
}

impl DownsampledTable {
    /// The table of resolution `res` over `db`.
    pub fn new(db: Arc<Db>, res: i64) -> Self {
        DownsampledTable { db, res }
    }
}

#[async_trait]
impl TableProvider for DownsampledTable {
    fn schema(&self) -> SchemaRef {
        downsampled_table_schema()
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
        let (schema, cols) = projected(&downsampled_table_schema(), projection)?;
        let build =
            move |data: Vec<SeriesAggregates>, schema: &SchemaRef| batch(&data, &cols, schema);
        let table = table_name(self.res);
        Ok(Arc::new(
            super::scan::PartsScan::aggregates(
                self.db.clone(),
                matchers(&p),
                (p.mint(), p.maxt()),
                table,
                schema,
                (self.res, Arc::new(build)),
            )
            .await
            .map_err(storage_err)?,
        ))
    }
}

/// The columns `cols` of one read's aggregates.
fn batch(
    data: &[SeriesAggregates],
    cols: &[usize],
    schema: &SchemaRef,
) -> datafusion::error::Result<RecordBatch> {
    let n: usize = data.iter().map(|s| s.windows.len()).sum();
    let ts = |f: &dyn Fn(&crate::downsample::Aggregate) -> i64| -> ArrayRef {
        let mut b = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
        data.iter()
            .for_each(|s| s.windows.iter().for_each(|w| b.append_value(f(w))));
        Arc::new(b.finish())
    };
    let fl = |f: &dyn Fn(&crate::downsample::Aggregate) -> f64| -> ArrayRef {
        let mut b = Float64Builder::with_capacity(n);
        data.iter()
            .for_each(|s| s.windows.iter().for_each(|w| b.append_value(f(w))));
        Arc::new(b.finish())
    };
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(cols.len());
    for &c in cols {
        arrays.push(match c {
            0 => {
                let mut b = StringBuilder::with_capacity(n, n * 16);
                for s in data {
                    s.windows
                        .iter()
                        .for_each(|_| b.append_value(s.labels.metric_name()));
                }
                Arc::new(b.finish())
            }
            1 => {
                let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
                for s in data {
                    for _ in &s.windows {
                        append_labels(&mut b, &s.labels)?;
                    }
                }
                Arc::new(b.finish())
            }
            2 => ts(&|w| w.end),
            3 => {
                let mut b = UInt32Builder::with_capacity(n);
                data.iter()
                    .for_each(|s| s.windows.iter().for_each(|w| b.append_value(w.count)));
                Arc::new(b.finish())
            }
            4 => fl(&|w| w.sum),
            5 => fl(&|w| w.min),
            6 => fl(&|w| w.max),
            7 => ts(&|w| w.first_t),
            8 => fl(&|w| w.first_v),
            9 => ts(&|w| w.last_t),
            10 => fl(&|w| w.last_v),
            _ => fl(&|w| w.counter_correction),
        });
    }
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        arrays,
        &RecordBatchOptions::new().with_row_count(Some(n)),
    )?)
}
