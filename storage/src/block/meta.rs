//! `meta.json` of a block (in the spirit of Prometheus's) and `tombstones.json`, the deleted
//! intervals recorded against an immutable block until compaction rewrites it.

use serde::{Deserialize, Serialize};

/// Contents of `meta.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    pub ulid: String,
    /// Oldest sample, ms (inclusive).
    pub min_time: i64,
    /// Newest sample + 1, ms (exclusive), as Prometheus.
    pub max_time: i64,
    pub stats: BlockStats,
    pub compaction: Compaction,
    pub version: u32,
    /// Downsampling resolution (ms) of a downsampled block (`downsampled/<5m|1h>/`); 0
    /// (absent) for raw blocks. A downsampled block's time range is that of the raw
    /// samples it was made from.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub resolution: i64,
    /// Where the block came from, in the bucket's copy only (Thanos's `thanos` section):
    /// the external labels of the node that wrote it, so nodes sharing a bucket tell
    /// their blocks apart and a querier can label and deduplicate them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thanos: Option<ThanosMeta>,
}

/// The `thanos` section of a bucket block's `meta.json` (the fields Thanos's tools read).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ThanosMeta {
    /// The external labels of the node that wrote the block.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// `downsample.resolution` (0: raw).
    #[serde(default)]
    pub downsample: Downsample,
    /// What uploaded it: `sidecar` for a node's own blocks, `compactor` for merges.
    #[serde(default)]
    pub source: String,
}

/// Thanos's `downsample` section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Downsample {
    /// Milliseconds.
    #[serde(default)]
    pub resolution: i64,
}

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

/// Counts of a block.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct BlockStats {
    pub num_samples: u64,
    pub num_series: u64,
    /// Native histogram samples (in `histograms.parquet`); absent in older blocks.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_histograms: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Compaction lineage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Compaction {
    pub level: u32,
    pub sources: Vec<String>,
}

/// One deleted interval of one series (block-local id), inclusive bounds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tombstone {
    pub series_id: u32,
    pub min_time: i64,
    pub max_time: i64,
}

/// Whether `t` of `series` is deleted.
pub(crate) fn is_deleted(tombs: &[Tombstone], series: u32, t: i64) -> bool {
    tombs
        .iter()
        .any(|x| x.series_id == series && x.min_time <= t && t <= x.max_time)
}
