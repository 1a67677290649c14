//! Strata's time-series storage: series identity and postings, a CRC-framed WAL, the
//! in-memory head (compressed chunks, out-of-order window), immutable Parquet blocks through
//! `object_store`, compaction, retention, tombstones, and DataFusion `TableProvider`s.
//!
//! It knows no PromQL: queries arrive as label [`Matcher`]s and time ranges. Samples enter
//! only through the [`Appender`] trait.
//!
//! Layout of a data directory:
//! ```text
//! wal/00000012, wal/checkpoint.00000012     framed records (series, samples, tombstones,
//!                                             histograms, exemplars)
//! blocks/<ULID>/meta.json                     time range, counts, compaction lineage
//! blocks/<ULID>/series.parquet                series_id, metric, labels (map), hash, row range
//! blocks/<ULID>/samples.parquet               series_id, timestamp, the value as a decimal
//!                                             (value_mantissa, value_shift, value_exponent)
//!                                             or value_float; sorted by series and time
//! blocks/<ULID>/tombstones.json               deleted intervals, until compaction
//! downsampled/{5m,1h}/<ULID>/…                 downsampled blocks (see [`downsample`])
//! shipper.json                                blocks uploaded to object storage ([`bucket`])
//! ```
//! With object storage configured, blocks are also uploaded to a bucket in Thanos's layout
//! and the node's older blocks are read back from it ([`bucket`]); HA replicas are merged
//! at read time by their replica labels ([`dedup`]).
//! Deviation from the agreed design: on a graceful stop the whole head is written to blocks
//! and the WAL emptied, so a stopped server's data directory is plain Parquet only (and
//! smaller than a WAL would make it).

pub mod block;
pub mod bucket;
mod chunk;
mod compact;
pub mod db;
pub mod dedup;
pub mod downsample;
mod durable;
pub mod error;
pub mod exemplars;
pub mod external;
pub mod head;
mod hist_chunk;
pub mod index;
pub mod labels;
pub mod matcher;
pub mod options;
pub mod provider;
pub mod read;
mod series;
mod series_hash;
mod snapshot;
pub mod wal;

/// Arrow as storage uses it (DataFusion's re-export: one arrow in the tree).
pub use datafusion::arrow;

/// Prometheus's staleness marker: a NaN with this exact bit pattern ends a series.
pub const STALE_NAN: f64 = f64::from_bits(0x7ff0_0000_0000_0002);

/// Whether `v` is the staleness marker (not just any NaN).
pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN.to_bits()
}

pub use db::{AppendReport, Appender, Db, ExemplarReport, SeriesSamples};
pub use durable::write_atomic;
pub use error::{Result, StorageError};
pub use exemplars::{Exemplar, ExemplarError, ExemplarStore, SeriesExemplars};
pub use external::ExternalSource;
pub use labels::{Label, LabelPool, Labels, METRIC_NAME};
pub use matcher::{LabelMatcher, MatchOp, Matcher};
pub use options::{DownsampleOptions, Options, RetentionRule};
pub use read::{ReadCharge, SeriesFilter, SeriesRange, Unbounded};
pub use series::Rejection;
