//! [`AlertingError`]: why rules could not be loaded, evaluated or tested.

/// Errors of the rule manager and the rule test runner.
#[derive(Debug, thiserror::Error)]
pub enum AlertingError {
    /// A rule file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Rule files are invalid; one message per problem, each naming file and line.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
    /// A rule's evaluation failed.
    #[error("{0}")]
    Eval(String),
    /// Storage refused the rule's samples.
    #[error("storage: {0}")]
    Storage(#[from] strata_storage::StorageError),
    /// A rule unit test file is invalid or a test failed.
    #[error("{0}")]
    Test(String),
}

/// Result alias.
pub type Result<T, E = AlertingError> = std::result::Result<T, E>;
