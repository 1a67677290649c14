//! Errors of the ingest crate.

/// Why input was refused (remote write: every such variant is the client's fault, HTTP 400),
/// or why a scrape job or discovery provider cannot run.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The body is not valid snappy (block format).
    #[error("snappy decode error: {0}")]
    Snappy(String),
    /// The decompressed body is larger than allowed.
    #[error("decompressed body of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    /// The request would decode to more memory than its size allows (tiny elements that
    /// are large once decoded).
    #[error(
        "too many elements: the request would decode to about {estimated} bytes, past the limit of {limit} bytes for its size"
    )]
    TooManyElements { estimated: usize, limit: usize },
    /// A length-delimited field runs past the end of its message.
    #[error("protobuf decode error: a field runs past the end of its message")]
    Truncated,
    /// The body is not a valid `WriteRequest`.
    #[error("protobuf decode error: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// A series the request carries is not acceptable.
    #[error("invalid series #{index} ({labels}): {reason}")]
    InvalidSeries {
        index: usize,
        labels: String,
        reason: String,
    },
    /// A scrape job or discovery provider cannot be set up from its configuration.
    #[error("{0}")]
    Config(String),
}
