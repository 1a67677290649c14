//! Engine errors, each mapped by the API to Prometheus's `errorType`.

use datafusion::error::DataFusionError;
use strata_grammar::ParseError;
use strata_storage::StorageError;

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The query text does not parse or type-check.
    #[error("{0}")]
    Parse(#[from] ParseError),
    /// A parameter or the query shape is invalid (`bad_data`).
    #[error("{0}")]
    BadData(String),
    /// Evaluation failed with a PromQL error (`execution`).
    #[error("{0}")]
    Exec(String),
    /// The query would load more samples than `--query.max-samples`.
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    /// The query would need more memory than `--query.max-memory` leaves it (the pool is
    /// shared by running queries).
    #[error(
        "query processing would use too much memory: over the {limit}-byte limit of this query (--query.max-memory-per-query; all running queries share --query.max-memory): {detail}"
    )]
    OutOfMemory {
        /// The pool's size in bytes.
        limit: usize,
        /// What needed the memory.
        detail: String,
    },
    /// An SQL result is larger than `--query.sql-max-result-bytes`.
    #[error(
        "SQL result exceeds {limit} bytes (--query.sql-max-result-bytes); select fewer rows or columns, or add a LIMIT"
    )]
    ResultTooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// The query ran longer than its timeout.
    #[error("query timed out in expression evaluation")]
    Timeout,
    /// Storage failed.
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// DataFusion failed for a reason other than a PromQL error.
    #[error("{0}")]
    DataFusion(DataFusionError),
}

impl EngineError {
    /// Prometheus's `errorType` for this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            EngineError::Parse(_) | EngineError::BadData(_) => "bad_data",
            EngineError::Exec(_)
            | EngineError::TooManySamples
            | EngineError::OutOfMemory { .. }
            | EngineError::ResultTooLarge { .. } => "execution",
            EngineError::Timeout => "timeout",
            EngineError::Storage(StorageError::BadRegex { .. }) => "bad_data",
            EngineError::Storage(_) | EngineError::DataFusion(_) => "internal",
        }
    }

    /// Whether the query was refused for its own sake — its text, its parameters, a limit
    /// it reached — rather than for a failure of the node or the cluster running it.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            EngineError::Parse(_)
                | EngineError::BadData(_)
                | EngineError::TooManySamples
                | EngineError::OutOfMemory { .. }
                | EngineError::ResultTooLarge { .. }
                | EngineError::Timeout
        )
    }

    /// Wraps this error so it can travel through DataFusion.
    pub(crate) fn into_df(self) -> DataFusionError {
        DataFusionError::External(Box::new(self))
    }

    /// Recovers an engine error carried through DataFusion.
    pub(crate) fn from_df(e: DataFusionError) -> EngineError {
        match e {
            DataFusionError::External(b) => match b.downcast::<EngineError>() {
                Ok(e) => *e,
                Err(b) => EngineError::DataFusion(DataFusionError::External(b)),
            },
            DataFusionError::Context(_, inner) => EngineError::from_df(*inner),
            DataFusionError::Shared(s) => match std::sync::Arc::try_unwrap(s) {
                Ok(e) => EngineError::from_df(e),
                Err(s) => EngineError::DataFusion(DataFusionError::Shared(s)),
            },
            other => EngineError::DataFusion(other),
        }
    }
}

/// Result alias of the engine.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// Shorthand for an execution error.
pub(crate) fn exec_err(msg: impl Into<String>) -> EngineError {
    EngineError::Exec(msg.into())
}
