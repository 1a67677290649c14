//! Storage options, with Prometheus's defaults.

use std::path::PathBuf;
use std::time::Duration;

/// Two hours: the head window and the smallest block range.
pub const DEFAULT_BLOCK_RANGE_MS: i64 = 2 * 3600 * 1000;

/// Ten minutes: how far ahead of the wall clock a sample may be (Prometheus's scrape limit).
pub const DEFAULT_MAX_FUTURE_MS: i64 = 10 * 60 * 1000;

/// How the database behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// Data directory (`--storage.tsdb.path`).
    pub dir: PathBuf,
    /// Blocks whose newest sample is older than this (relative to the newest sample
    /// stored, never later than the wall clock) are dropped, and samples older than it
    /// (relative to the wall clock) are refused at append. `None` keeps data forever.
    pub retention_time_ms: Option<i64>,
    /// Oldest blocks are dropped while blocks + WAL exceed this many bytes.
    pub retention_size_bytes: Option<u64>,
    /// Head window and smallest block range.
    pub block_range_ms: i64,
    /// How far behind the newest sample an out-of-order sample may be.
    pub ooo_window_ms: i64,
    /// WAL group-commit interval (fsync).
    pub wal_fsync_interval: Duration,
    /// Samples stamped later than the wall clock plus this are refused as out of bounds
    /// (`--storage.tsdb.too-far-in-future.time-window`; Prometheus refuses scraped samples
    /// more than 10 minutes ahead). `None` accepts any future time.
    pub max_future_ms: Option<i64>,
    /// Open without changing anything on disk (`strata sql` beside a running server):
    /// appends, maintenance and the block cut at close are off.
    pub read_only: bool,
    /// `storage.exemplars.max_exemplars`: size of the exemplar ring (0 or less: none kept).
    pub max_exemplars: i64,
    /// How far behind a series' newest exemplar an exemplar may be (Prometheus uses the
    /// TSDB's `out_of_order_time_window`, 0 unless configured).
    pub exemplar_ooo_window_ms: i64,
    /// `storage.tsdb.downsample` (`None`: no downsampling).
    pub downsample: Option<DownsampleOptions>,
    /// `storage.tsdb.retention_rules`, first match wins.
    pub retention_rules: Vec<RetentionRule>,
    /// Object storage the node ships its blocks to and reads its history from
    /// (`--objstore.config-file`).
    pub bucket: Option<crate::bucket::node::BucketOptions>,
    /// `--query.replica-label`: series differing only in these labels are HA replicas of one
    /// series, merged at read time (see [`crate::dedup`]).
    pub replica_labels: Vec<String>,
}

/// When blocks are downsampled and how long each resolution is kept.
#[derive(Debug, Clone)]
pub struct DownsampleOptions {
    /// A raw block is downsampled once its newest sample is this much older than the
    /// newest data.
    pub after_ms: i64,
    /// Retention of the 5m resolution (`None`: the raw retention).
    pub retention_5m_ms: Option<i64>,
    /// Retention of the 1h resolution (`None`: the raw retention).
    pub retention_1h_ms: Option<i64>,
}

/// A retention rule: the series any of `selectors` match are kept this long at each
/// resolution (`None`: the default of that resolution).
#[derive(Debug, Clone)]
pub struct RetentionRule {
    /// Series selectors (each a conjunction of matchers); a series matching any matches.
    pub selectors: Vec<Vec<crate::matcher::Matcher>>,
    /// Raw retention.
    pub raw_ms: Option<i64>,
    /// 5m retention.
    pub retention_5m_ms: Option<i64>,
    /// 1h retention.
    pub retention_1h_ms: Option<i64>,
}

impl RetentionRule {
    /// The rule's retention at resolution `res` (0: raw).
    pub fn at(&self, res: i64) -> Option<i64> {
        match res {
            0 => self.raw_ms,
            crate::downsample::RES_5M => self.retention_5m_ms,
            _ => self.retention_1h_ms,
        }
    }
}

impl Options {
    /// Defaults for a data directory: 15d retention, 2h blocks, 1h out-of-order window,
    /// fsync every 100 ms.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Options {
            dir: dir.into(),
            retention_time_ms: Some(15 * 24 * 3600 * 1000),
            retention_size_bytes: None,
            block_range_ms: DEFAULT_BLOCK_RANGE_MS,
            ooo_window_ms: 3600 * 1000,
            wal_fsync_interval: Duration::from_millis(100),
            max_future_ms: Some(DEFAULT_MAX_FUTURE_MS),
            read_only: false,
            max_exemplars: 100_000,
            exemplar_ooo_window_ms: 0,
            downsample: None,
            retention_rules: Vec::new(),
            bucket: None,
            replica_labels: Vec::new(),
        }
    }

    /// Default retention at resolution `res` (0: raw): the raw retention unless the
    /// downsampling options set one.
    pub fn retention_at(&self, res: i64) -> Option<i64> {
        let ds = self.downsample.as_ref();
        match res {
            0 => self.retention_time_ms,
            crate::downsample::RES_5M => ds
                .and_then(|d| d.retention_5m_ms)
                .or(self.retention_time_ms),
            _ => ds
                .and_then(|d| d.retention_1h_ms)
                .or(self.retention_time_ms),
        }
    }

    /// Largest block compaction produces: 10% of retention, at most 31 days.
    pub fn max_block_range_ms(&self) -> i64 {
        let cap = 31 * 24 * 3600 * 1000;
        self.retention_time_ms
            .map_or(cap, |r| (r / 10).min(cap))
            .max(self.block_range_ms)
    }
}
