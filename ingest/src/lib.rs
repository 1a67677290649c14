//! Ingest: everything that turns data from outside into samples (and exemplars) for
//! storage's [`Appender`](strata_storage::Appender): the remote-write 1.0 and 2.0
//! decoders, the OTLP receiver, the exposition parsers (text 0.0.4, OpenMetrics 1.0 with
//! exemplars, the protobuf format with native histograms) and writers (`expfmt`,
//! `protofmt`), relabeling, service discovery (static, file, HTTP, Kubernetes), the scrape
//! manager and the push gateway.
//!
//! Deviations from Prometheus, on purpose: `oauth2` and TLS `server_name` in HTTP client
//! settings are refused at load time; a scrape whose response has no `Content-Type` is
//! parsed as text 0.0.4 (Prometheus 3 fails it unless `fallback_scrape_protocol` is set).

pub mod discovery;
pub mod distributor;
pub mod error;
pub mod expfmt;
pub mod exposition;
pub use strata_chunkenc::histogram_proto;
pub mod http_client;
pub mod otlp;
pub mod protofmt;
pub mod pushgateway;
pub mod relabel;
pub mod remote_write;
pub mod scrape;

pub use error::IngestError;
