//! `scrape_configs`: one scrape job each. Parsing keeps "unset" values so the
//! job can inherit from `global` in [`ScrapeSpec::resolve`] exactly as
//! Prometheus's `ScrapeConfig.Validate` does (interval, timeout =
//! min(global timeout, interval), limits, protocols, histogram options,
//! name validation/escaping).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::de::deserialize_via;
use crate::discovery::{
    FileSdConfig, HttpSdConfig, KubernetesSdConfig, ServiceDiscoveryConfigs, StaticConfig,
};
use crate::duration::Duration;
use crate::global::GlobalConfig;
use crate::http_client::{HttpClientConfig, join_dir, raw_with_http_client};
use crate::labels::{NameEscapingScheme, NameValidationScheme, empty_is_none};
use crate::relabel::{RelabelConfig, relabel_list};
use crate::size::ByteSize;

/// An exposition format that can be negotiated with a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScrapeProtocol {
    /// Protobuf `io.prometheus.client.MetricFamily`, delimited.
    #[serde(rename = "PrometheusProto")]
    PrometheusProto,
    /// Prometheus text format 0.0.4.
    #[serde(rename = "PrometheusText0.0.4")]
    PrometheusText0_0_4,
    /// Prometheus text format 1.0.0.
    #[serde(rename = "PrometheusText1.0.0")]
    PrometheusText1_0_0,
    /// OpenMetrics text 0.0.1.
    #[serde(rename = "OpenMetricsText0.0.1")]
    OpenMetricsText0_0_1,
    /// OpenMetrics text 1.0.0.
    #[serde(rename = "OpenMetricsText1.0.0")]
    OpenMetricsText1_0_0,
}

impl ScrapeProtocol {
    /// The `Accept` media type for this protocol.
    pub fn header_media_type(self) -> &'static str {
        match self {
            ScrapeProtocol::PrometheusProto => {
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
            }
            ScrapeProtocol::PrometheusText0_0_4 => "text/plain;version=0.0.4",
            ScrapeProtocol::PrometheusText1_0_0 => "text/plain;version=1.0.0",
            ScrapeProtocol::OpenMetricsText0_0_1 => "application/openmetrics-text;version=0.0.1",
            ScrapeProtocol::OpenMetricsText1_0_0 => "application/openmetrics-text;version=1.0.0",
        }
    }

    /// Prometheus's default negotiation order.
    pub const DEFAULT: [ScrapeProtocol; 4] = [
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::PrometheusText1_0_0,
        ScrapeProtocol::PrometheusText0_0_4,
    ];

    /// The order used when native histograms are scraped (protobuf first).
    pub const PROTO_FIRST: [ScrapeProtocol; 5] = [
        ScrapeProtocol::PrometheusProto,
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::PrometheusText1_0_0,
        ScrapeProtocol::PrometheusText0_0_4,
    ];
}

/// Prometheus's `validateAcceptScrapeProtocols`.
pub(crate) fn validate_protocols(p: &[ScrapeProtocol]) -> Result<(), String> {
    if p.is_empty() {
        return Err("scrape_protocols cannot be empty".into());
    }
    for (i, a) in p.iter().enumerate() {
        if p[..i].contains(a) {
            return Err(format!(
                "duplicated protocol in scrape_protocols, got {p:?}"
            ));
        }
    }
    Ok(())
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

/// One scrape job, fully resolved against `global`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScrapeConfig {
    /// `job_name` (unique, non-empty).
    pub job_name: String,
    /// `honor_labels` (default false).
    pub honor_labels: bool,
    /// `honor_timestamps` (default true).
    pub honor_timestamps: bool,
    /// `track_timestamps_staleness` (default false).
    pub track_timestamps_staleness: bool,
    /// `params`: URL query parameters.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, Vec<String>>,
    /// `scrape_interval` (inherited from global when unset).
    pub scrape_interval: Duration,
    /// `scrape_timeout` (min(global timeout, interval) when unset).
    pub scrape_timeout: Duration,
    /// `scrape_protocols` in negotiation order.
    pub scrape_protocols: Vec<ScrapeProtocol>,
    /// `fallback_scrape_protocol`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_scrape_protocol: Option<ScrapeProtocol>,
    /// `scrape_native_histograms`.
    pub scrape_native_histograms: bool,
    /// `always_scrape_classic_histograms` (alias `scrape_classic_histograms`).
    pub always_scrape_classic_histograms: bool,
    /// `convert_classic_histograms_to_nhcb`.
    pub convert_classic_histograms_to_nhcb: bool,
    /// `scrape_failure_log_file`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scrape_failure_log_file: String,
    /// `metrics_path` (default `/metrics`).
    pub metrics_path: String,
    /// `scheme` (default `http`).
    pub scheme: String,
    /// `enable_compression` (default true).
    pub enable_compression: bool,
    // The limits below repeat `GlobalConfig`'s on purpose: `#[serde(flatten)]` would share
    // them but cannot be combined with `deny_unknown_fields`, which file:line errors rely on.
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
    /// `native_histogram_bucket_limit` (0 = unlimited).
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub native_histogram_bucket_limit: u64,
    /// `native_histogram_min_bucket_factor` (0 = none).
    #[serde(skip_serializing_if = "is_zero_f64")]
    pub native_histogram_min_bucket_factor: f64,
    /// `keep_dropped_targets` (0 = unlimited).
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub keep_dropped_targets: u64,
    /// `metric_name_validation_scheme` (inherited from global).
    pub metric_name_validation_scheme: NameValidationScheme,
    /// `metric_name_escaping_scheme` (derived when unset).
    pub metric_name_escaping_scheme: NameEscapingScheme,
    /// `extra_scrape_metrics` (inherited from global).
    pub extra_scrape_metrics: bool,
    /// Target discovery.
    #[serde(flatten)]
    pub service_discovery: ServiceDiscoveryConfigs,
    /// HTTP client settings (inlined).
    #[serde(flatten)]
    pub http_client: HttpClientConfig,
    /// `relabel_configs` (target relabeling).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub relabel_configs: Vec<RelabelConfig>,
    /// `metric_relabel_configs` (sample relabeling).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metric_relabel_configs: Vec<RelabelConfig>,
}

fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}

impl ScrapeConfig {
    /// Joins relative file paths with `dir`.
    pub(crate) fn set_directory(&mut self, dir: &std::path::Path) {
        self.service_discovery.set_directory(dir);
        self.http_client.set_directory(dir);
        join_dir(dir, &mut self.scrape_failure_log_file);
    }
}

raw_with_http_client! {
    struct RawScrapeConfig {
        #[serde(default)]
        job_name: String,
        #[serde(default)]
        honor_labels: bool,
        #[serde(default)]
        honor_timestamps: Option<bool>,
        #[serde(default)]
        track_timestamps_staleness: bool,
        #[serde(default)]
        params: Option<BTreeMap<String, Vec<String>>>,
        #[serde(default)]
        scrape_interval: Duration,
        #[serde(default)]
        scrape_timeout: Duration,
        #[serde(default)]
        scrape_protocols: Option<Vec<ScrapeProtocol>>,
        #[serde(default, deserialize_with = "empty_is_none")]
        fallback_scrape_protocol: Option<ScrapeProtocol>,
        #[serde(default)]
        scrape_native_histograms: Option<bool>,
        #[serde(default, alias = "scrape_classic_histograms")]
        always_scrape_classic_histograms: Option<bool>,
        #[serde(default)]
        convert_classic_histograms_to_nhcb: Option<bool>,
        #[serde(default)]
        scrape_failure_log_file: String,
        #[serde(default)]
        metrics_path: Option<String>,
        #[serde(default)]
        scheme: Option<String>,
        #[serde(default)]
        enable_compression: Option<bool>,
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
        native_histogram_bucket_limit: u64,
        #[serde(default)]
        native_histogram_min_bucket_factor: f64,
        #[serde(default)]
        keep_dropped_targets: u64,
        #[serde(default, deserialize_with = "empty_is_none")]
        metric_name_validation_scheme: Option<NameValidationScheme>,
        #[serde(default, deserialize_with = "empty_is_none")]
        metric_name_escaping_scheme: Option<NameEscapingScheme>,
        #[serde(default)]
        extra_scrape_metrics: Option<bool>,
        #[serde(default)]
        static_configs: Option<Vec<StaticConfig>>,
        #[serde(default)]
        file_sd_configs: Option<Vec<FileSdConfig>>,
        #[serde(default)]
        http_sd_configs: Option<Vec<HttpSdConfig>>,
        #[serde(default)]
        kubernetes_sd_configs: Option<Vec<KubernetesSdConfig>>,
        #[serde(default)]
        relabel_configs: Option<Vec<Option<RelabelConfig>>>,
        #[serde(default)]
        metric_relabel_configs: Option<Vec<Option<RelabelConfig>>>,
    }
}

/// A parsed scrape config whose inherited values are not yet filled in.
#[derive(Debug)]
pub(crate) struct ScrapeSpec {
    /// The config with every job-local default applied.
    pub(crate) config: ScrapeConfig,
    scrape_protocols: Option<Vec<ScrapeProtocol>>,
    scrape_native_histograms: Option<bool>,
    always_scrape_classic_histograms: Option<bool>,
    convert_classic_histograms_to_nhcb: Option<bool>,
    metric_name_validation_scheme: Option<NameValidationScheme>,
    metric_name_escaping_scheme: Option<NameEscapingScheme>,
    extra_scrape_metrics: Option<bool>,
}

impl TryFrom<RawScrapeConfig> for ScrapeSpec {
    type Error = String;
    fn try_from(mut r: RawScrapeConfig) -> Result<Self, String> {
        if r.job_name.is_empty() {
            return Err("job_name is empty".into());
        }
        let http_client = r.take_http(true)?;
        let scheme = r.scheme.unwrap_or_else(|| "http".into());
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "invalid scheme {scheme:?} for scrape config with job name {:?} (expected http or https)",
                r.job_name
            ));
        }
        let service_discovery = ServiceDiscoveryConfigs {
            static_configs: r.static_configs.unwrap_or_default(),
            file_sd_configs: r.file_sd_configs.unwrap_or_default(),
            http_sd_configs: r.http_sd_configs.unwrap_or_default(),
            kubernetes_sd_configs: r.kubernetes_sd_configs.unwrap_or_default(),
        };
        let relabel_configs =
            relabel_list(r.relabel_configs, "target relabeling rule in scrape config")?;
        let metric_relabel_configs = relabel_list(
            r.metric_relabel_configs,
            "metric relabeling rule in scrape config",
        )?;
        if relabel_configs.is_empty() {
            service_discovery.check_static_targets()?;
        }
        if let Some(p) = &r.scrape_protocols {
            validate_protocols(p)
                .map_err(|e| format!("{e} for scrape config with job name {:?}", r.job_name))?;
        }
        let config = ScrapeConfig {
            job_name: r.job_name,
            honor_labels: r.honor_labels,
            honor_timestamps: r.honor_timestamps.unwrap_or(true),
            track_timestamps_staleness: r.track_timestamps_staleness,
            params: r.params.unwrap_or_default(),
            scrape_interval: r.scrape_interval,
            scrape_timeout: r.scrape_timeout,
            scrape_protocols: Vec::new(),
            fallback_scrape_protocol: r.fallback_scrape_protocol,
            scrape_native_histograms: false,
            always_scrape_classic_histograms: false,
            convert_classic_histograms_to_nhcb: false,
            scrape_failure_log_file: r.scrape_failure_log_file,
            metrics_path: r.metrics_path.unwrap_or_else(|| "/metrics".into()),
            scheme,
            enable_compression: r.enable_compression.unwrap_or(true),
            body_size_limit: r.body_size_limit,
            sample_limit: r.sample_limit,
            target_limit: r.target_limit,
            label_limit: r.label_limit,
            label_name_length_limit: r.label_name_length_limit,
            label_value_length_limit: r.label_value_length_limit,
            native_histogram_bucket_limit: r.native_histogram_bucket_limit,
            native_histogram_min_bucket_factor: r.native_histogram_min_bucket_factor,
            keep_dropped_targets: r.keep_dropped_targets,
            metric_name_validation_scheme: NameValidationScheme::Utf8,
            metric_name_escaping_scheme: NameEscapingScheme::AllowUtf8,
            extra_scrape_metrics: false,
            service_discovery,
            http_client,
            relabel_configs,
            metric_relabel_configs,
        };
        Ok(ScrapeSpec {
            config,
            scrape_protocols: r.scrape_protocols,
            scrape_native_histograms: r.scrape_native_histograms,
            always_scrape_classic_histograms: r.always_scrape_classic_histograms,
            convert_classic_histograms_to_nhcb: r.convert_classic_histograms_to_nhcb,
            metric_name_validation_scheme: r.metric_name_validation_scheme,
            metric_name_escaping_scheme: r.metric_name_escaping_scheme,
            extra_scrape_metrics: r.extra_scrape_metrics,
        })
    }
}
deserialize_via!(ScrapeSpec, RawScrapeConfig);

/// Which field a resolution error is about (for locating it in the text).
pub(crate) struct ResolveError {
    pub(crate) field: &'static str,
    pub(crate) message: String,
}

impl ScrapeSpec {
    /// Prometheus's `ScrapeConfig.Validate(global)`: inherit and check.
    pub(crate) fn resolve(self, g: &GlobalConfig) -> Result<ScrapeConfig, ResolveError> {
        let err = |field: &'static str, message: String| ResolveError { field, message };
        let mut c = self.config;
        let job = c.job_name.clone();
        if c.scrape_interval.is_zero() {
            c.scrape_interval = g.scrape_interval;
        }
        if c.scrape_timeout > c.scrape_interval {
            return Err(err(
                "scrape_timeout",
                format!(
                    "scrape timeout greater than scrape interval for scrape config with job name {job:?}"
                ),
            ));
        }
        if c.scrape_timeout.is_zero() {
            c.scrape_timeout = g.scrape_timeout.min(c.scrape_interval);
        }
        if c.body_size_limit.0 == 0 {
            c.body_size_limit = g.body_size_limit;
        }
        let inherit = |v: &mut u64, g: u64| {
            if *v == 0 {
                *v = g;
            }
        };
        inherit(&mut c.sample_limit, g.sample_limit);
        inherit(&mut c.target_limit, g.target_limit);
        inherit(&mut c.label_limit, g.label_limit);
        inherit(&mut c.label_name_length_limit, g.label_name_length_limit);
        inherit(&mut c.label_value_length_limit, g.label_value_length_limit);
        inherit(&mut c.keep_dropped_targets, g.keep_dropped_targets);
        if c.scrape_failure_log_file.is_empty() {
            c.scrape_failure_log_file
                .clone_from(&g.scrape_failure_log_file);
        }
        c.scrape_native_histograms = self
            .scrape_native_histograms
            .unwrap_or(g.scrape_native_histograms);
        c.extra_scrape_metrics = self.extra_scrape_metrics.unwrap_or(g.extra_scrape_metrics);
        c.scrape_protocols = match (self.scrape_protocols, &g.scrape_protocols) {
            (Some(p), _) => p,
            (None, Some(gp)) => gp.clone(),
            (None, None) if c.scrape_native_histograms => ScrapeProtocol::PROTO_FIRST.to_vec(),
            (None, None) => ScrapeProtocol::DEFAULT.to_vec(),
        };
        validate_protocols(&c.scrape_protocols).map_err(|e| {
            err(
                "scrape_protocols",
                format!("{e} for scrape config with job name {job:?}"),
            )
        })?;
        let local_unset = self.metric_name_validation_scheme.is_none();
        c.metric_name_validation_scheme = self
            .metric_name_validation_scheme
            .unwrap_or(g.metric_name_validation_scheme);
        c.metric_name_escaping_scheme = match self.metric_name_escaping_scheme {
            Some(e) => e,
            None if local_unset => g.effective_escaping_scheme(),
            None if c.metric_name_validation_scheme == NameValidationScheme::Legacy => {
                NameEscapingScheme::Underscores
            }
            None => NameEscapingScheme::AllowUtf8,
        };
        if c.metric_name_escaping_scheme == NameEscapingScheme::AllowUtf8
            && c.metric_name_validation_scheme != NameValidationScheme::Utf8
        {
            return Err(err(
                "metric_name_escaping_scheme",
                "utf8 metric names requested but validation scheme is not set to UTF8".into(),
            ));
        }
        c.convert_classic_histograms_to_nhcb = self
            .convert_classic_histograms_to_nhcb
            .unwrap_or(g.convert_classic_histograms_to_nhcb);
        c.always_scrape_classic_histograms = self
            .always_scrape_classic_histograms
            .unwrap_or(g.always_scrape_classic_histograms);
        let scheme = c.metric_name_validation_scheme;
        if scheme == NameValidationScheme::Legacy {
            for (field, list) in [
                ("relabel_configs", &c.relabel_configs),
                ("metric_relabel_configs", &c.metric_relabel_configs),
            ] {
                for rc in list {
                    rc.validate(scheme).map_err(|m| err(field, m))?;
                }
            }
            c.service_discovery
                .validate_labels(scheme)
                .map_err(|m| err("static_configs", m))?;
        }
        Ok(c)
    }
}
