//! Ingest: everything that turns data from outside into samples for storage's
//! [`Appender`](strata_storage::Appender): the Prometheus remote-write 1.0 decoder, the
//! exposition parsers (text 0.0.4, OpenMetrics 1.0), relabeling, service discovery
//! (static, file, HTTP) and the scrape manager.
//!
//! Deviations from Prometheus, on purpose: the protobuf exposition format and native
//! histograms are not scraped (a target offering only protobuf fails with that message);
//! `oauth2` and TLS `server_name` in HTTP client settings are refused at load time; a
//! scrape whose response has no `Content-Type` is parsed as text 0.0.4 (Prometheus 3
//! fails it unless `fallback_scrape_protocol` is set).

pub mod discovery;
pub mod error;
pub mod expfmt;
pub mod exposition;
pub mod histogram_proto;
pub mod http_client;
pub mod otlp;
pub mod pushgateway;
pub mod relabel;
pub mod remote_write;
pub mod scrape;

pub use error::IngestError;
