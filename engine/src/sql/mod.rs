//! SQL over the same data as PromQL: a DataFusion `SessionContext` whose default schema
//! holds `samples` (metric, labels map, timestamp, value), `series` (metric, labels) and one
//! table per metric name with its labels as columns (storage's
//! [`strata_storage::provider::metric::MetricSchema`]), plus [`functions`]. Queries run
//! read-only (no DDL, DML or `SET`), under the engine's limits: `--query.timeout`, the
//! concurrency slots, the engine's memory pool (`--query.max-memory`: sorts, hash tables
//! and join build sides reserve from it, nothing spills to disk), and caps on the result:
//! `--query.max-samples` rows and `--query.sql-max-result-bytes` bytes. The result is read
//! as a stream and checked batch by batch, so reading stops (and the plan is cancelled) as
//! soon as a cap is passed; the batches kept are reserved from the pool until the output
//! is dropped. Functions that build more than they are given (`repeat`, `range`, …) are
//! refused when their result would not fit in the pool ([`guard`]).

pub mod functions;
mod guard;

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::HashSet;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use strata_storage::Db;
use strata_storage::provider::metric::MetricSchema;

use crate::memory::pool_limit;
use crate::{Engine, EngineError, Result};

/// Default of `--query.sql-max-result-bytes`: 64 MiB of Arrow buffers.
pub const DEFAULT_MAX_RESULT_BYTES: usize = 64 << 20;

/// A SQL result. Its batches stay reserved from the engine's memory pool until it drops.
#[derive(Debug)]
pub struct SqlOutput {
    /// Column names and types.
    pub schema: SchemaRef,
    /// Rows.
    pub batches: Vec<RecordBatch>,
    /// The pool's share held by `batches`.
    held: MemoryReservation,
    /// `--query.sql-max-result-bytes`.
    limit: usize,
    /// The pool's size, for errors.
    pool: usize,
}

/// A rendered response (JSON, CSV, Arrow IPC) may be at most this many times
/// `--query.sql-max-result-bytes`: rendering expands dictionary-encoded label columns and
/// repeats column names per JSON row.
pub const RENDER_FACTOR: usize = 4;

/// A response body rendered from an [`SqlOutput`]: every byte written is held in the
/// query's pool share, and writing fails past [`RENDER_FACTOR`] × the result cap
/// ([`EngineError::ResultTooLarge`]) or when the pool refuses ([`EngineError::OutOfMemory`]);
/// the writer on top reports an I/O error, [`RenderBuf::refusal`] says why.
pub struct RenderBuf {
    buf: Vec<u8>,
    held: MemoryReservation,
    cap: usize,
    pool: usize,
    refusal: Option<EngineError>,
}

impl RenderBuf {
    /// The bytes written.
    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    /// Why a write was refused, if one was.
    pub fn refusal(&mut self) -> Option<EngineError> {
        self.refusal.take()
    }

    fn refuse(&mut self, e: EngineError) -> std::io::Error {
        let io = std::io::Error::other(e.to_string());
        self.refusal = Some(e);
        io
    }
}

impl std::io::Write for RenderBuf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let want = self.buf.len().saturating_add(data.len());
        if want > self.cap {
            let limit = self.cap;
            return Err(self.refuse(EngineError::ResultTooLarge { limit }));
        }
        if want > self.buf.capacity() {
            let grow = want
                .max(self.buf.capacity().saturating_mul(2))
                .min(self.cap);
            let extra = grow - self.buf.capacity();
            if let Err(e) = self.held.try_grow(extra) {
                let limit = self.pool;
                return Err(self.refuse(EngineError::OutOfMemory {
                    limit,
                    detail: format!("rendering the SQL result: {e}"),
                }));
            }
            self.buf.reserve_exact(grow - self.buf.len());
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SqlOutput {
    /// Bytes of the result's Arrow buffers, as counted against the caps.
    pub fn bytes(&self) -> usize {
        self.held.size()
    }

    /// An empty response body for this result, bounded as [`RenderBuf`] says.
    pub fn render_buf(&self) -> RenderBuf {
        RenderBuf {
            buf: Vec::new(),
            held: self.held.new_empty(),
            cap: self.limit.saturating_mul(RENDER_FACTOR),
            pool: self.pool,
            refusal: None,
        }
    }
}

/// The caps on an SQL result.
#[derive(Clone, Copy, Debug)]
pub struct ResultLimits {
    /// Most rows (`--query.max-samples`).
    pub rows: u64,
    /// Most bytes of Arrow buffers (`--query.sql-max-result-bytes`).
    pub bytes: usize,
}

/// A session over `db` with the tables and functions registered, running in `runtime`
/// (whose memory pool bounds its operators).
pub async fn context(db: Arc<Db>, runtime: Arc<RuntimeEnv>) -> Result<SessionContext> {
    let config = SessionConfig::new().with_information_schema(true);
    let pool = runtime.memory_pool.clone();
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    let schema = MetricSchema::new(db).await?;
    let catalog = ctx
        .catalog("datafusion")
        .ok_or_else(|| EngineError::Exec("the default catalog is missing".into()))?;
    catalog
        .register_schema("public", Arc::new(schema))
        .map_err(EngineError::from_df)?;
    ctx.register_udf(functions::time_bucket());
    ctx.register_udaf(functions::prom_rate());
    guard::bound_expanding_functions(&ctx, &pool);
    Ok(ctx)
}

/// Classifies DataFusion errors: planning problems are the query's fault (`bad_data`),
/// an operator the memory pool refused is [`EngineError::OutOfMemory`].
fn sql_err(e: DataFusionError, pool: usize) -> EngineError {
    if let DataFusionError::ResourcesExhausted(msg) = e.find_root() {
        return EngineError::OutOfMemory {
            limit: pool,
            detail: msg.clone(),
        };
    }
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
        let limits = ResultLimits {
            rows: self.opts.max_samples,
            bytes: self.opts.sql_max_result_bytes,
        };
        let runtime = crate::memory::query_runtime(&self.runtime, self.opts.per_query_memory());
        let (db, sql) = (self.db.clone(), sql.to_owned());
        let work = async move { run(db, runtime, &sql, limits).await };
        match tokio::time::timeout(timeout, self.compute.run(work)).await {
            Ok(r) => r,
            Err(_) => Err(EngineError::Timeout),
        }
    }
}

/// Plans and runs `sql` on a fresh session over `db` in `runtime`, reading the result as a
/// stream and stopping as soon as it passes `limits`.
pub async fn run(
    db: Arc<Db>,
    runtime: Arc<RuntimeEnv>,
    sql: &str,
    limits: ResultLimits,
) -> Result<SqlOutput> {
    let pool = pool_limit(&runtime.memory_pool);
    let held = MemoryConsumer::new("SQL result").register(&runtime.memory_pool);
    let ctx = context(db, runtime).await?;
    let opts = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let df = ctx
        .sql_with_options(sql, opts)
        .await
        .map_err(|e| sql_err(e, pool))?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let mut stream = df.execute_stream().await.map_err(|e| sql_err(e, pool))?;
    let mut batches = Vec::new();
    let mut rows = 0u64;
    let mut dictionaries = HashSet::new();
    while let Some(b) = stream.next().await {
        let b = b.map_err(|e| sql_err(e, pool))?;
        rows += b.num_rows() as u64;
        if rows > limits.rows {
            return Err(EngineError::TooManySamples);
        }
        let bytes = batch_bytes(&b, &mut dictionaries);
        if held.size().saturating_add(bytes) > limits.bytes {
            return Err(EngineError::ResultTooLarge {
                limit: limits.bytes,
            });
        }
        held.try_grow(bytes).map_err(|e| sql_err(e, pool))?;
        batches.push(b);
    }
    Ok(SqlOutput {
        schema,
        batches,
        held,
        limit: limits.bytes,
        pool,
    })
}

/// Bytes of a batch's rows: the slice of each column it holds, and each dictionary's
/// values once per result (label columns share one dictionary across batches).
fn batch_bytes(b: &RecordBatch, dictionaries: &mut HashSet<usize>) -> usize {
    b.columns()
        .iter()
        .map(|c| {
            let data = c.to_data();
            match c.data_type() {
                DataType::Dictionary(key, _) => {
                    let keys = data.len() * key.primitive_width().unwrap_or(8);
                    let values = data.child_data().first().map_or(0, |v| {
                        let key = v.buffers().first().map_or(0, |b| b.as_ptr() as usize);
                        if dictionaries.insert(key) {
                            v.get_slice_memory_size().unwrap_or(0)
                        } else {
                            0
                        }
                    });
                    keys + values
                }
                _ => data
                    .get_slice_memory_size()
                    .unwrap_or_else(|_| c.get_array_memory_size()),
            }
        })
        .sum()
}
