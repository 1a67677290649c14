//! The smaller top-level sections: `storage` (TSDB out-of-order window,
//! retention, downsampling and per-series retention rules, exemplar buffer),
//! `tracing`, `otlp` and `runtime`. They are parsed and validated strictly;
//! acting on them is up to other crates.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::de::deserialize_via;
use crate::duration::Duration;
use crate::http_client::TlsConfig;
use crate::size::ByteSize;

fn is_false(v: &bool) -> bool {
    !*v
}

/// The `storage` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `tsdb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsdb: Option<TsdbConfig>,
    /// `exemplars`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exemplars: Option<ExemplarsConfig>,
}

impl StorageConfig {
    /// True when neither subsection is present.
    pub fn is_empty(&self) -> bool {
        self.tsdb.is_none() && self.exemplars.is_none()
    }
}

/// `storage.tsdb`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TsdbConfig {
    /// `out_of_order_time_window` (0 = out-of-order ingestion disabled).
    #[serde(skip_serializing_if = "Duration::is_zero_ref")]
    pub out_of_order_time_window: Duration,
    /// `retention`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<TsdbRetentionConfig>,
    /// `downsample` (Strata extension): absent = no downsampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downsample: Option<DownsampleConfig>,
    /// `retention_rules` (Strata extension): per-series retention overrides,
    /// the first rule with a matching selector wins.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retention_rules: Vec<RetentionRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTsdbConfig {
    #[serde(default)]
    out_of_order_time_window: Duration,
    #[serde(default)]
    retention: Option<TsdbRetentionConfig>,
    #[serde(default)]
    downsample: Option<DownsampleConfig>,
    #[serde(default)]
    retention_rules: Option<Vec<Option<RetentionRule>>>,
}

impl TryFrom<RawTsdbConfig> for TsdbConfig {
    type Error = String;
    fn try_from(r: RawTsdbConfig) -> Result<Self, String> {
        let retention_rules = r
            .retention_rules
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, rule)| {
                rule.ok_or_else(|| format!("retention_rules[{i}]: empty or null retention rule"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if r.downsample.is_none() {
            for (i, rule) in retention_rules.iter().enumerate() {
                for (field, value) in [
                    ("retention_5m", rule.retention_5m),
                    ("retention_1h", rule.retention_1h),
                ] {
                    if value.is_some() {
                        return Err(format!(
                            "retention_rules[{i}].{field} requires downsample to be configured"
                        ));
                    }
                }
            }
        }
        Ok(TsdbConfig {
            out_of_order_time_window: r.out_of_order_time_window,
            retention: r.retention,
            downsample: r.downsample,
            retention_rules,
        })
    }
}
deserialize_via!(TsdbConfig, RawTsdbConfig);

/// A duration that must be greater than 0 when given (`0s` is rejected at
/// the scalar, not read as "forever").
struct PositiveDuration(Duration);

impl PositiveDuration {
    fn parse(s: &str) -> Result<Self, String> {
        let d = Duration::parse(s)?;
        if d.is_zero() {
            return Err(format!("duration must be greater than 0, got {s:?}"));
        }
        Ok(PositiveDuration(d))
    }
}

impl<'de> Deserialize<'de> for PositiveDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::de::parse_str(d, "a duration greater than 0", PositiveDuration::parse)
    }
}

/// `storage.tsdb.downsample` (Strata extension): blocks whose data is older
/// than `after` gain 5m and 1h resolutions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DownsampleConfig {
    /// `after` (required, greater than 0): age of data before it is downsampled.
    pub after: Duration,
    /// `retention_5m` (greater than 0 when given): how long 5m data is
    /// kept; absent = as long as raw data (the server decides).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_5m: Option<Duration>,
    /// `retention_1h` (greater than 0 when given): how long 1h data is
    /// kept; absent = as long as raw data (the server decides).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_1h: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDownsampleConfig {
    after: PositiveDuration,
    #[serde(default)]
    retention_5m: Option<PositiveDuration>,
    #[serde(default)]
    retention_1h: Option<PositiveDuration>,
}

impl TryFrom<RawDownsampleConfig> for DownsampleConfig {
    type Error = String;
    fn try_from(r: RawDownsampleConfig) -> Result<Self, String> {
        Ok(DownsampleConfig {
            after: r.after.0,
            retention_5m: r.retention_5m.map(|d| d.0),
            retention_1h: r.retention_1h.map(|d| d.0),
        })
    }
}
deserialize_via!(DownsampleConfig, RawDownsampleConfig);

/// One entry of `storage.tsdb.retention_rules` (Strata extension): the
/// retentions of the series matching any of `matchers`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RetentionRule {
    /// `matchers` (required, non-empty): PromQL series selectors
    /// (`up{job="x"}`, `{__name__=~"debug_.*"}`), kept as written; a series
    /// matching any of them matches the rule. Each is checked at load time
    /// to be a plain vector selector (no range, `offset` or `@`) with at
    /// least one matcher that does not match the empty string.
    pub matchers: Vec<String>,
    /// `raw` (greater than 0 when given): retention of raw samples; absent =
    /// the global raw retention.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<Duration>,
    /// `retention_5m` (greater than 0 when given; requires `downsample`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_5m: Option<Duration>,
    /// `retention_1h` (greater than 0 when given; requires `downsample`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_1h: Option<Duration>,
}

/// A series selector checked with the PromQL grammar, kept as written.
struct Selector(String);

impl Selector {
    fn parse(s: &str) -> Result<Self, String> {
        // `parse` also applies Prometheus's rule that a selector needs at
        // least one matcher not matching the empty string.
        let expr =
            strata_grammar::parse(s).map_err(|e| format!("invalid series selector {s:?}: {e}"))?;
        match expr {
            strata_grammar::Expr::VectorSelector(vs)
                if vs.offset.is_none() && vs.at.is_none() && !vs.anchored && !vs.smoothed =>
            {
                Ok(Selector(s.to_owned()))
            }
            _ => Err(format!(
                "invalid series selector {s:?}: expected a metric name and/or {{label matchers}} \
                 without range, offset or @ modifier"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::de::parse_str(d, "a PromQL series selector", Selector::parse)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetentionRule {
    matchers: Vec<Selector>,
    #[serde(default)]
    raw: Option<PositiveDuration>,
    #[serde(default)]
    retention_5m: Option<PositiveDuration>,
    #[serde(default)]
    retention_1h: Option<PositiveDuration>,
}

impl TryFrom<RawRetentionRule> for RetentionRule {
    type Error = String;
    fn try_from(r: RawRetentionRule) -> Result<Self, String> {
        if r.matchers.is_empty() {
            return Err("a retention rule must have at least one selector in matchers".into());
        }
        if r.raw.is_none() && r.retention_5m.is_none() && r.retention_1h.is_none() {
            return Err("a retention rule must set raw, retention_5m or retention_1h".into());
        }
        Ok(RetentionRule {
            matchers: r.matchers.into_iter().map(|m| m.0).collect(),
            raw: r.raw.map(|d| d.0),
            retention_5m: r.retention_5m.map(|d| d.0),
            retention_1h: r.retention_1h.map(|d| d.0),
        })
    }
}
deserialize_via!(RetentionRule, RawRetentionRule);

/// `storage.tsdb.retention`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsdbRetentionConfig {
    /// `time`.
    #[serde(default, skip_serializing_if = "Duration::is_zero_ref")]
    pub time: Duration,
    /// `size`.
    #[serde(default, skip_serializing_if = "ByteSize::is_zero_ref")]
    pub size: ByteSize,
}

/// `storage.exemplars`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExemplarsConfig {
    /// `max_exemplars` (default 100000; 0 or less disables exemplar storage).
    #[serde(default = "default_max_exemplars")]
    pub max_exemplars: i64,
}

fn default_max_exemplars() -> i64 {
    100_000
}

impl Default for ExemplarsConfig {
    fn default() -> Self {
        ExemplarsConfig {
            max_exemplars: default_max_exemplars(),
        }
    }
}

/// Transport for trace export.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TracingClientType {
    /// OTLP over gRPC (default).
    #[default]
    Grpc,
    /// OTLP over HTTP.
    Http,
}

/// The `tracing` section (OTLP trace export of Strata itself).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TracingConfig {
    /// `client_type` (default grpc).
    pub client_type: TracingClientType,
    /// `endpoint` (required).
    pub endpoint: String,
    /// `sampling_fraction`.
    pub sampling_fraction: f64,
    /// `insecure`.
    pub insecure: bool,
    /// `tls_config`.
    pub tls_config: TlsConfig,
    /// `headers`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// `compression` (`gzip` or empty).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub compression: String,
    /// `timeout`.
    #[serde(skip_serializing_if = "Duration::is_zero_ref")]
    pub timeout: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTracingConfig {
    #[serde(default)]
    client_type: TracingClientType,
    #[serde(default)]
    endpoint: String,
    #[serde(default)]
    sampling_fraction: f64,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    tls_config: Option<TlsConfig>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    compression: String,
    #[serde(default)]
    timeout: Duration,
}

impl TryFrom<RawTracingConfig> for TracingConfig {
    type Error = String;
    fn try_from(r: RawTracingConfig) -> Result<Self, String> {
        for h in r.headers.keys() {
            if h.eq_ignore_ascii_case("authorization") {
                return Err(
                    "custom authorization header configuration is not yet supported".into(),
                );
            }
        }
        if r.endpoint.is_empty() {
            return Err("tracing endpoint must be set".into());
        }
        if !r.compression.is_empty() && r.compression != "gzip" {
            return Err(format!(
                "invalid compression type {} provided, valid options: gzip",
                r.compression
            ));
        }
        Ok(TracingConfig {
            client_type: r.client_type,
            endpoint: r.endpoint,
            sampling_fraction: r.sampling_fraction,
            insecure: r.insecure,
            tls_config: r.tls_config.unwrap_or_default(),
            headers: r.headers,
            compression: r.compression,
            timeout: r.timeout,
        })
    }
}
deserialize_via!(TracingConfig, RawTracingConfig);

/// Accepted OTLP `translation_strategy` values.
const TRANSLATION_STRATEGIES: [&str; 4] = [
    "UnderscoreEscapingWithSuffixes",
    "UnderscoreEscapingWithoutSuffixes",
    "NoUTF8EscapingWithSuffixes",
    "NoTranslation",
];

/// The `otlp` section (OTLP metrics ingestion).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OtlpConfig {
    /// `promote_all_resource_attributes`.
    #[serde(skip_serializing_if = "is_false")]
    pub promote_all_resource_attributes: bool,
    /// `promote_resource_attributes`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub promote_resource_attributes: Vec<String>,
    /// `ignore_resource_attributes`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignore_resource_attributes: Vec<String>,
    /// `translation_strategy` (default `UnderscoreEscapingWithSuffixes`).
    pub translation_strategy: String,
    /// `keep_identifying_resource_attributes`.
    #[serde(skip_serializing_if = "is_false")]
    pub keep_identifying_resource_attributes: bool,
    /// `convert_histograms_to_nhcb`.
    #[serde(skip_serializing_if = "is_false")]
    pub convert_histograms_to_nhcb: bool,
    /// `promote_scope_metadata`.
    #[serde(skip_serializing_if = "is_false")]
    pub promote_scope_metadata: bool,
    /// `label_name_underscore_sanitization` (default true).
    pub label_name_underscore_sanitization: bool,
    /// `label_name_preserve_multiple_underscores` (default true).
    pub label_name_preserve_multiple_underscores: bool,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            promote_all_resource_attributes: false,
            promote_resource_attributes: Vec::new(),
            ignore_resource_attributes: Vec::new(),
            translation_strategy: TRANSLATION_STRATEGIES[0].into(),
            keep_identifying_resource_attributes: false,
            convert_histograms_to_nhcb: false,
            promote_scope_metadata: false,
            label_name_underscore_sanitization: true,
            label_name_preserve_multiple_underscores: true,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOtlpConfig {
    #[serde(default)]
    promote_all_resource_attributes: bool,
    #[serde(default)]
    promote_resource_attributes: Vec<String>,
    #[serde(default)]
    ignore_resource_attributes: Vec<String>,
    #[serde(default)]
    translation_strategy: String,
    #[serde(default)]
    keep_identifying_resource_attributes: bool,
    #[serde(default)]
    convert_histograms_to_nhcb: bool,
    #[serde(default)]
    promote_scope_metadata: bool,
    #[serde(default)]
    label_name_underscore_sanitization: Option<bool>,
    #[serde(default)]
    label_name_preserve_multiple_underscores: Option<bool>,
}

impl TryFrom<RawOtlpConfig> for OtlpConfig {
    type Error = String;
    fn try_from(r: RawOtlpConfig) -> Result<Self, String> {
        if r.promote_all_resource_attributes && !r.promote_resource_attributes.is_empty() {
            return Err("'promote_all_resource_attributes' and 'promote_resource_attributes' cannot be configured simultaneously".into());
        }
        if !r.promote_all_resource_attributes && !r.ignore_resource_attributes.is_empty() {
            return Err("'ignore_resource_attributes' cannot be configured unless 'promote_all_resource_attributes' is true".into());
        }
        let d = OtlpConfig::default();
        let translation_strategy = if r.translation_strategy.is_empty() {
            d.translation_strategy
        } else if TRANSLATION_STRATEGIES.contains(&r.translation_strategy.as_str()) {
            r.translation_strategy
        } else {
            return Err(format!(
                "unsupported OTLP translation strategy {:?}",
                r.translation_strategy
            ));
        };
        Ok(OtlpConfig {
            promote_all_resource_attributes: r.promote_all_resource_attributes,
            promote_resource_attributes: r.promote_resource_attributes,
            ignore_resource_attributes: r.ignore_resource_attributes,
            translation_strategy,
            keep_identifying_resource_attributes: r.keep_identifying_resource_attributes,
            convert_histograms_to_nhcb: r.convert_histograms_to_nhcb,
            promote_scope_metadata: r.promote_scope_metadata,
            label_name_underscore_sanitization: r
                .label_name_underscore_sanitization
                .unwrap_or(d.label_name_underscore_sanitization),
            label_name_preserve_multiple_underscores: r
                .label_name_preserve_multiple_underscores
                .unwrap_or(d.label_name_preserve_multiple_underscores),
        })
    }
}
deserialize_via!(OtlpConfig, RawOtlpConfig);

/// The `runtime` section. `gogc` tunes Go's garbage collector in Prometheus;
/// Strata accepts it for compatibility and ignores it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// `gogc` (0 = unset).
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub gogc: i64,
}

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

impl RuntimeConfig {
    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self.gogc == 0
    }
}
