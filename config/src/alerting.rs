//! The `alerting` section: `alert_relabel_configs` and the Alertmanagers to
//! send alerts to (discovered like scrape targets; defaults `scheme: http`,
//! `timeout: 10s`, `api_version: v2`, the only version Prometheus supports).

use serde::{Deserialize, Deserializer, Serialize};

use crate::de::deserialize_via;
use crate::discovery::{
    FileSdConfig, HttpSdConfig, KubernetesSdConfig, ServiceDiscoveryConfigs, StaticConfig,
};
use crate::duration::Duration;
use crate::http_client::{HttpClientConfig, raw_with_http_client};
use crate::relabel::{RelabelConfig, relabel_list};

/// The `alerting` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AlertingConfig {
    /// `alert_relabel_configs`, applied to every alert.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alert_relabel_configs: Vec<RelabelConfig>,
    /// `alertmanagers`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

impl AlertingConfig {
    /// True when nothing is configured.
    pub fn is_empty(&self) -> bool {
        self.alert_relabel_configs.is_empty() && self.alertmanagers.is_empty()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlertingConfig {
    #[serde(default)]
    alert_relabel_configs: Option<Vec<Option<RelabelConfig>>>,
    #[serde(default)]
    alertmanagers: Option<Vec<Option<AlertmanagerConfig>>>,
}

impl TryFrom<RawAlertingConfig> for AlertingConfig {
    type Error = String;
    fn try_from(r: RawAlertingConfig) -> Result<Self, String> {
        Ok(AlertingConfig {
            alert_relabel_configs: relabel_list(r.alert_relabel_configs, "alert relabeling rule")?,
            alertmanagers: crate::de::no_nulls(
                r.alertmanagers,
                "empty or null alertmanager config section",
            )?,
        })
    }
}
deserialize_via!(AlertingConfig, RawAlertingConfig);

/// Alertmanager API version. Only `v2` is accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub enum AlertmanagerApiVersion {
    /// `/api/v2`.
    #[default]
    #[serde(rename = "v2")]
    V2,
}

impl<'de> Deserialize<'de> for AlertmanagerApiVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::de::parse_str(d, "an Alertmanager API version", |s| match s {
            "v2" => Ok(AlertmanagerApiVersion::V2),
            other => Err(format!(
                "expected Alertmanager api version to be one of [v2] but got {other}"
            )),
        })
    }
}

/// One `alertmanagers` entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertmanagerConfig {
    /// Discovery of Alertmanager instances.
    #[serde(flatten)]
    pub service_discovery: ServiceDiscoveryConfigs,
    /// HTTP client settings (inlined).
    #[serde(flatten)]
    pub http_client: HttpClientConfig,
    /// `scheme` (default http).
    pub scheme: String,
    /// `path_prefix`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path_prefix: String,
    /// `timeout` (default 10s).
    pub timeout: Duration,
    /// `api_version` (default v2).
    pub api_version: AlertmanagerApiVersion,
    /// `relabel_configs` (on discovered Alertmanagers).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub relabel_configs: Vec<RelabelConfig>,
    /// `alert_relabel_configs` (on alerts sent to these Alertmanagers).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alert_relabel_configs: Vec<RelabelConfig>,
}

raw_with_http_client! {
    struct RawAlertmanagerConfig {
        #[serde(default)]
        static_configs: Option<Vec<StaticConfig>>,
        #[serde(default)]
        file_sd_configs: Option<Vec<FileSdConfig>>,
        #[serde(default)]
        http_sd_configs: Option<Vec<HttpSdConfig>>,
        #[serde(default)]
        kubernetes_sd_configs: Option<Vec<KubernetesSdConfig>>,
        #[serde(default)]
        scheme: Option<String>,
        #[serde(default)]
        path_prefix: String,
        #[serde(default)]
        timeout: Option<Duration>,
        #[serde(default)]
        api_version: AlertmanagerApiVersion,
        #[serde(default)]
        relabel_configs: Option<Vec<Option<RelabelConfig>>>,
        #[serde(default)]
        alert_relabel_configs: Option<Vec<Option<RelabelConfig>>>,
    }
}

impl TryFrom<RawAlertmanagerConfig> for AlertmanagerConfig {
    type Error = String;
    fn try_from(mut r: RawAlertmanagerConfig) -> Result<Self, String> {
        let http_client = r.take_http(true)?;
        let service_discovery = ServiceDiscoveryConfigs {
            static_configs: r.static_configs.unwrap_or_default(),
            file_sd_configs: r.file_sd_configs.unwrap_or_default(),
            http_sd_configs: r.http_sd_configs.unwrap_or_default(),
            kubernetes_sd_configs: r.kubernetes_sd_configs.unwrap_or_default(),
        };
        let relabel_configs =
            relabel_list(r.relabel_configs, "Alertmanager target relabeling rule")?;
        let alert_relabel_configs = relabel_list(
            r.alert_relabel_configs,
            "Alertmanager alert relabeling rule",
        )?;
        if relabel_configs.is_empty() {
            service_discovery.check_static_targets()?;
        }
        let scheme = r.scheme.unwrap_or_else(|| "http".into());
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "invalid Alertmanager scheme {scheme:?} (expected http or https)"
            ));
        }
        Ok(AlertmanagerConfig {
            service_discovery,
            http_client,
            scheme,
            path_prefix: r.path_prefix,
            timeout: r.timeout.unwrap_or(Duration::from_secs(10)),
            api_version: r.api_version,
            relabel_configs,
            alert_relabel_configs,
        })
    }
}
deserialize_via!(AlertmanagerConfig, RawAlertmanagerConfig);
