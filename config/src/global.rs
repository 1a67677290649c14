//! The `global` section: defaults shared by every scrape config and rule
//! group (`scrape_interval` 1m, `scrape_timeout` 10s capped at the interval,
//! `evaluation_interval` 1m), external labels and global limits.

use serde::{Deserialize, Serialize};

use crate::de::deserialize_via;
use crate::duration::Duration;
use crate::labels::{
    LabelSet, NameEscapingScheme, NameValidationScheme, empty_is_none, validate_label_set,
};
use crate::scrape::{ScrapeProtocol, validate_protocols};
use crate::size::ByteSize;

/// Default global `scrape_interval`.
pub const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(60);
/// Default global `scrape_timeout`.
pub const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default global `evaluation_interval`.
pub const DEFAULT_EVALUATION_INTERVAL: Duration = Duration::from_secs(60);

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// The `global` section with defaults applied.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GlobalConfig {
    /// `scrape_interval` (default 1m).
    pub scrape_interval: Duration,
    /// `scrape_timeout` (default min(10s, scrape_interval)).
    pub scrape_timeout: Duration,
    /// `scrape_protocols`; `None` lets each job pick Prometheus's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_protocols: Option<Vec<ScrapeProtocol>>,
    /// `evaluation_interval` (default 1m).
    pub evaluation_interval: Duration,
    /// `rule_query_offset` (default 0).
    #[serde(skip_serializing_if = "Duration::is_zero_ref")]
    pub rule_query_offset: Duration,
    /// `query_log_file`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub query_log_file: String,
    /// `scrape_failure_log_file`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scrape_failure_log_file: String,
    /// `external_labels` (`$VAR`/`${VAR}` expanded from the environment).
    #[serde(skip_serializing_if = "LabelSet::is_empty")]
    pub external_labels: LabelSet,
    /// `body_size_limit` (0 = unlimited).
    #[serde(skip_serializing_if = "ByteSize::is_zero_ref")]
    pub body_size_limit: ByteSize,
    /// `sample_limit` (0 = unlimited).
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub sample_limit: u64,
    /// `target_limit` (0 = unlimited).
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub target_limit: u64,
    /// `label_limit` (0 = unlimited).
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub label_limit: u64,
    /// `label_name_length_limit` (0 = unlimited).
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub label_name_length_limit: u64,
    /// `label_value_length_limit` (0 = unlimited).
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub label_value_length_limit: u64,
    /// `keep_dropped_targets` (0 = unlimited).
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub keep_dropped_targets: u64,
    /// `metric_name_validation_scheme` (default utf8).
    pub metric_name_validation_scheme: NameValidationScheme,
    /// `metric_name_escaping_scheme`; `None` derives it from the validation scheme.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_name_escaping_scheme: Option<NameEscapingScheme>,
    /// `scrape_native_histograms` (default false).
    pub scrape_native_histograms: bool,
    /// `convert_classic_histograms_to_nhcb`.
    #[serde(skip_serializing_if = "is_false")]
    pub convert_classic_histograms_to_nhcb: bool,
    /// `always_scrape_classic_histograms`.
    #[serde(skip_serializing_if = "is_false")]
    pub always_scrape_classic_histograms: bool,
    /// `extra_scrape_metrics`.
    #[serde(skip_serializing_if = "is_false")]
    pub extra_scrape_metrics: bool,
}

impl Duration {
    pub(crate) fn is_zero_ref(&self) -> bool {
        self.is_zero()
    }
}

impl ByteSize {
    pub(crate) fn is_zero_ref(&self) -> bool {
        self.0 == 0
    }
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: DEFAULT_SCRAPE_INTERVAL,
            scrape_timeout: DEFAULT_SCRAPE_TIMEOUT,
            scrape_protocols: None,
            evaluation_interval: DEFAULT_EVALUATION_INTERVAL,
            rule_query_offset: Duration::ZERO,
            query_log_file: String::new(),
            scrape_failure_log_file: String::new(),
            external_labels: LabelSet::new(),
            body_size_limit: ByteSize(0),
            sample_limit: 0,
            target_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            keep_dropped_targets: 0,
            metric_name_validation_scheme: NameValidationScheme::Utf8,
            metric_name_escaping_scheme: None,
            scrape_native_histograms: false,
            convert_classic_histograms_to_nhcb: false,
            always_scrape_classic_histograms: false,
            extra_scrape_metrics: false,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGlobalConfig {
    #[serde(default)]
    scrape_interval: Duration,
    #[serde(default)]
    scrape_timeout: Duration,
    #[serde(default)]
    scrape_protocols: Option<Vec<ScrapeProtocol>>,
    #[serde(default)]
    evaluation_interval: Duration,
    #[serde(default)]
    rule_query_offset: Duration,
    #[serde(default)]
    query_log_file: String,
    #[serde(default)]
    scrape_failure_log_file: String,
    #[serde(default)]
    external_labels: Option<LabelSet>,
    #[serde(default)]
    body_size_limit: ByteSize,
    #[serde(default)]
    sample_limit: u64,
    #[serde(default)]
    target_limit: u64,
    #[serde(default)]
    label_limit: u64,
    #[serde(default)]
    label_name_length_limit: u64,
    #[serde(default)]
    label_value_length_limit: u64,
    #[serde(default)]
    keep_dropped_targets: u64,
    #[serde(default, deserialize_with = "empty_is_none")]
    metric_name_validation_scheme: Option<NameValidationScheme>,
    #[serde(default, deserialize_with = "empty_is_none")]
    metric_name_escaping_scheme: Option<NameEscapingScheme>,
    #[serde(default)]
    scrape_native_histograms: Option<bool>,
    #[serde(default)]
    convert_classic_histograms_to_nhcb: bool,
    #[serde(default)]
    always_scrape_classic_histograms: bool,
    #[serde(default)]
    extra_scrape_metrics: bool,
}

impl TryFrom<RawGlobalConfig> for GlobalConfig {
    type Error = String;
    fn try_from(r: RawGlobalConfig) -> Result<Self, String> {
        let scheme = r.metric_name_validation_scheme.unwrap_or_default();
        let external_labels = r.external_labels.unwrap_or_default();
        validate_label_set(&external_labels, scheme)?;
        let scrape_interval = if r.scrape_interval.is_zero() {
            DEFAULT_SCRAPE_INTERVAL
        } else {
            r.scrape_interval
        };
        if r.scrape_timeout > scrape_interval {
            return Err("global scrape timeout greater than scrape interval".into());
        }
        let scrape_timeout = if r.scrape_timeout.is_zero() {
            DEFAULT_SCRAPE_TIMEOUT.min(scrape_interval)
        } else {
            r.scrape_timeout
        };
        let evaluation_interval = if r.evaluation_interval.is_zero() {
            DEFAULT_EVALUATION_INTERVAL
        } else {
            r.evaluation_interval
        };
        if let Some(p) = &r.scrape_protocols {
            validate_protocols(p).map_err(|e| format!("{e} for global config"))?;
        }
        Ok(GlobalConfig {
            scrape_interval,
            scrape_timeout,
            scrape_protocols: r.scrape_protocols,
            evaluation_interval,
            rule_query_offset: r.rule_query_offset,
            query_log_file: r.query_log_file,
            scrape_failure_log_file: r.scrape_failure_log_file,
            external_labels,
            body_size_limit: r.body_size_limit,
            sample_limit: r.sample_limit,
            target_limit: r.target_limit,
            label_limit: r.label_limit,
            label_name_length_limit: r.label_name_length_limit,
            label_value_length_limit: r.label_value_length_limit,
            keep_dropped_targets: r.keep_dropped_targets,
            metric_name_validation_scheme: scheme,
            metric_name_escaping_scheme: r.metric_name_escaping_scheme,
            scrape_native_histograms: r.scrape_native_histograms.unwrap_or(false),
            convert_classic_histograms_to_nhcb: r.convert_classic_histograms_to_nhcb,
            always_scrape_classic_histograms: r.always_scrape_classic_histograms,
            extra_scrape_metrics: r.extra_scrape_metrics,
        })
    }
}
deserialize_via!(GlobalConfig, RawGlobalConfig);

impl GlobalConfig {
    /// The escaping scheme in effect (explicit, or derived from validation).
    pub fn effective_escaping_scheme(&self) -> NameEscapingScheme {
        self.metric_name_escaping_scheme
            .unwrap_or(match self.metric_name_validation_scheme {
                NameValidationScheme::Legacy => NameEscapingScheme::Underscores,
                NameValidationScheme::Utf8 => NameEscapingScheme::AllowUtf8,
            })
    }

    /// Expands `$VAR` / `${VAR}` (and `$$`) in external label values.
    pub(crate) fn expand_external_labels(&mut self) {
        for v in self.external_labels.values_mut() {
            if v.contains('$') {
                *v = expand_env(v);
            }
        }
    }
}

/// Go's `os.Expand` with `os.Getenv`, `$$` kept as `$`.
fn expand_env(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('{') {
            if let Some(end) = stripped.find('}') {
                out.push_str(&lookup(&stripped[..end]));
                rest = &stripped[end + 1..];
                continue;
            }
            // Bad syntax: Go drops the "${".
            rest = stripped;
            continue;
        }
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
            continue;
        }
        let n = after
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
            .map_or(after.len(), |(i, _)| i);
        if n == 0 {
            // A lone '$' followed by a non-name character is dropped, as in Go.
            rest = after;
            continue;
        }
        out.push_str(&lookup(&after[..n]));
        rest = &after[n..];
    }
    out.push_str(rest);
    out
}

fn lookup(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}
