//! The push gateway: batch jobs push their metrics (Pushgateway API: `PUT`/`POST`/`DELETE`
//! on `/metrics/job/<job>{/<label>/<value>}`, text 0.0.4 or protobuf delimited bodies) and
//! Strata keeps them per grouping key, persisted to a file, and ingests them into storage.
//!
//! Choice (the issue leaves it open): pushed groups are **ingested by an internal scrape**
//! ([`ingest`]) every `global.scrape_interval`, with `honor_labels` semantics (grouping
//! labels win over labels in the body, `instance=""` for job-only groups, so it is dropped),
//! instead of being appended once at push time. A pushed value then stays visible to
//! queries and alerts (`time() - push_time_seconds > 3600`) for as long as the group exists,
//! exactly as when Prometheus scrapes a Pushgateway; a deleted group or metric gets
//! staleness markers. Groups may expire after `--pushgateway.group-ttl` (the original
//! Pushgateway has no TTL).
//!
//! Native histograms (protobuf pushes) are kept with their classic buckets, persisted (as
//! protobuf in the persistence file, beside the text) and stored as native histogram
//! samples, as Prometheus stores them when it scrapes a Pushgateway with
//! `scrape_native_histograms` and `always_scrape_classic_histograms`. The `/metrics`
//! re-exposition serves them in the protobuf format to a scraper that asks for it
//! ([`render::exposition_proto`], negotiated by [`crate::protofmt::negotiate`]); in the
//! text format a native histogram shows as its classic buckets, or `_count`, `_sum` and a
//! `+Inf` bucket without them, as Go's text encoder writes it.

pub mod grouping;
pub mod ingest;
pub mod model;
pub mod proto;
pub mod render;
pub mod store;

pub use grouping::parse_grouping;
pub use model::{Family, Kind, Metric, MetricValue, parse_text};
pub use store::{Group, PushError, PushStore};
