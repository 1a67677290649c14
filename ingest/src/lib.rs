//! Ingest: everything that turns data from outside into samples for storage's
//! [`Appender`](strata_storage::Appender). Today: the Prometheus remote-write 1.0 decoder.
//! The scrape manager, service discovery, relabeling, exposition parsers and the push
//! gateway live here as they are built.

pub mod error;
pub mod remote_write;

pub use error::IngestError;
