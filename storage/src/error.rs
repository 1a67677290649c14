//! Errors of the storage crate: one enum, each variant naming what failed.

use std::path::PathBuf;

/// Everything storage can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A label set that Prometheus would not accept.
    #[error("invalid series {labels}: {reason}")]
    InvalidSeries { labels: String, reason: String },
    /// A matcher whose regular expression does not compile.
    #[error("invalid regular expression {regex:?} in matcher for label {label:?}: {source}")]
    BadRegex {
        label: String,
        regex: String,
        #[source]
        source: Box<regex::Error>,
    },
    /// I/O on a file of the data directory.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A WAL record that cannot be decoded.
    #[error("corrupt WAL record in {path} at offset {offset}: {reason}")]
    WalCorrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// A block directory that cannot be read.
    #[error("block {block}: {reason}")]
    Block { block: String, reason: String },
    /// A read stopped because its caller's bound (a query's sample or memory limit)
    /// refused more samples.
    #[error("read stopped: the query's sample or memory limit refused more samples")]
    ReadRefused,
    /// Parquet encoding or decoding.
    #[error("parquet: {0}")]
    Parquet(#[from] datafusion::parquet::errors::ParquetError),
    /// Arrow array construction.
    #[error("arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// Object store access (block files).
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    /// JSON of meta.json or tombstones.
    #[error("json in {file}: {source}")]
    Json {
        file: String,
        #[source]
        source: serde_json::Error,
    },
    /// Another compactor holds the bucket's lease.
    #[error("another compactor ({holder}) holds the bucket's lease until {until_ms} (unix ms)")]
    LeaseHeld { holder: String, until_ms: i64 },
    /// The compactor's lease expired and was taken by another compactor meanwhile.
    #[error("the bucket's compactor lease was lost to another compactor")]
    LeaseLost,
    /// A background task that panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

/// Shorthand for storage results.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

impl StorageError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
