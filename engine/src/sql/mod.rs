//! SQL over the same data as PromQL: a DataFusion `SessionContext` whose default schema
//! holds `samples` (metric, labels map, timestamp, value), `series` (metric, labels) and one
//! table per metric name with its labels as columns (storage's
//! [`strata_storage::provider::metric::MetricSchema`]), plus [`functions`]. Queries run
//! read-only (no DDL, DML or `SET`), under the engine's limits: `--query.timeout`, the
//! concurrency slots, and `--query.max-samples` as the cap on result rows.

pub mod functions;

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use strata_storage::Db;
use strata_storage::provider::metric::MetricSchema;

use crate::{Engine, EngineError, Result};

/// A SQL result.
#[derive(Debug)]
pub struct SqlOutput {
    /// Column names and types.
    pub schema: SchemaRef,
    /// Rows.
    pub batches: Vec<RecordBatch>,
}

/// A session over `db` with the tables and functions registered.
pub async fn context(db: Arc<Db>) -> Result<SessionContext> {
    let config = SessionConfig::new().with_information_schema(true);
    let ctx = SessionContext::new_with_config(config);
    let schema = MetricSchema::new(db).await?;
    let catalog = ctx
        .catalog("datafusion")
        .ok_or_else(|| EngineError::Exec("the default catalog is missing".into()))?;
    catalog
        .register_schema("public", Arc::new(schema))
        .map_err(EngineError::from_df)?;
    ctx.register_udf(functions::time_bucket());
    ctx.register_udaf(functions::prom_rate());
    Ok(ctx)
}

/// Classifies DataFusion errors: planning problems are the query's fault (`bad_data`).
fn sql_err(e: DataFusionError) -> EngineError {
    let bad = matches!(
        e.find_root(),
        DataFusionError::SQL(..)
            | DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..)
            | DataFusionError::NotImplemented(_)
    );
    if bad {
        EngineError::BadData(e.to_string())
    } else {
        EngineError::Exec(e.to_string())
    }
}

impl Engine {
    /// Runs a read-only SQL query.
    pub async fn sql(&self, sql: &str, timeout: Option<Duration>) -> Result<SqlOutput> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| EngineError::Exec("query engine is shutting down".into()))?;
        let timeout = timeout.unwrap_or(self.opts.timeout).min(self.opts.timeout);
        match tokio::time::timeout(timeout, run(self.db.clone(), sql, self.opts.max_samples)).await
        {
            Ok(r) => r,
            Err(_) => Err(EngineError::Timeout),
        }
    }
}

/// Plans and runs `sql` on a fresh session over `db`, stopping past `max_rows` rows.
pub async fn run(db: Arc<Db>, sql: &str, max_rows: u64) -> Result<SqlOutput> {
    let ctx = context(db).await?;
    let opts = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let df = ctx.sql_with_options(sql, opts).await.map_err(sql_err)?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let mut stream = df.execute_stream().await.map_err(sql_err)?;
    let mut batches = Vec::new();
    let mut rows = 0u64;
    while let Some(b) = stream.next().await {
        let b = b.map_err(sql_err)?;
        rows += b.num_rows() as u64;
        if rows > max_rows {
            return Err(EngineError::TooManySamples);
        }
        batches.push(b);
    }
    Ok(SqlOutput { schema, batches })
}
