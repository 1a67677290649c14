//! `remote_write` and `remote_read` endpoints with Prometheus's defaults
//! (write: 30s timeout, queue and metadata defaults, HTTP/2 off; read: 1m
//! timeout, external-label filtering on) and header restrictions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::de::deserialize_via;
use crate::duration::Duration;
use crate::http_client::{HttpClientConfig, raw_with_http_client};
use crate::labels::LabelSet;
use crate::relabel::{RelabelConfig, relabel_list};
use crate::url::Url;

const RESERVED_HEADERS: [&str; 17] = [
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "accept-encoding",
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
    "authorization",
];

fn validate_headers(headers: &BTreeMap<String, String>) -> Result<(), String> {
    for h in headers.keys() {
        let lower = h.to_ascii_lowercase();
        if lower == "authorization" {
            return Err("authorization header must be changed via the basic_auth, authorization, oauth2, sigv4, azuread or google_iam parameter".into());
        }
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(format!("{h} is a reserved header. It must not be changed"));
        }
    }
    Ok(())
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// `queue_config` of a remote write endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// `capacity` (default 10000).
    pub capacity: u64,
    /// `max_shards` (default 50).
    pub max_shards: u64,
    /// `min_shards` (default 1).
    pub min_shards: u64,
    /// `max_samples_per_send` (default 2000).
    pub max_samples_per_send: u64,
    /// `batch_send_deadline` (default 5s).
    pub batch_send_deadline: Duration,
    /// `min_backoff` (default 30ms).
    pub min_backoff: Duration,
    /// `max_backoff` (default 5s).
    pub max_backoff: Duration,
    /// `retry_on_http_429`.
    #[serde(skip_serializing_if = "is_false")]
    pub retry_on_http_429: bool,
    /// `sample_age_limit` (0 = none).
    #[serde(skip_serializing_if = "Duration::is_zero_ref")]
    pub sample_age_limit: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 10_000,
            max_shards: 50,
            min_shards: 1,
            max_samples_per_send: 2000,
            batch_send_deadline: Duration::from_secs(5),
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            retry_on_http_429: false,
            sample_age_limit: Duration::ZERO,
        }
    }
}

/// `metadata_config` of a remote write endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    /// `send` (default true).
    pub send: bool,
    /// `send_interval` (default 1m).
    pub send_interval: Duration,
    /// `max_samples_per_send` (default 2000).
    pub max_samples_per_send: u64,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            send: true,
            send_interval: Duration::from_secs(60),
            max_samples_per_send: 2000,
        }
    }
}

/// One `remote_write` endpoint.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RemoteWriteConfig {
    /// `url`.
    pub url: Url,
    /// `remote_timeout` (default 30s).
    pub remote_timeout: Duration,
    /// `headers`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// `write_relabel_configs`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub write_relabel_configs: Vec<RelabelConfig>,
    /// `name` (unique when set).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `send_exemplars`.
    #[serde(skip_serializing_if = "is_false")]
    pub send_exemplars: bool,
    /// `send_native_histograms`.
    #[serde(skip_serializing_if = "is_false")]
    pub send_native_histograms: bool,
    /// `round_robin_dns`.
    #[serde(skip_serializing_if = "is_false")]
    pub round_robin_dns: bool,
    /// `protobuf_message` (default `prometheus.WriteRequest`).
    pub protobuf_message: String,
    /// HTTP client settings (inlined; HTTP/2 off by default).
    #[serde(flatten)]
    pub http_client: HttpClientConfig,
    /// `queue_config`.
    pub queue_config: QueueConfig,
    /// `metadata_config`.
    pub metadata_config: MetadataConfig,
}

raw_with_http_client! {
    struct RawRemoteWriteConfig {
        #[serde(default)]
        url: Option<Url>,
        #[serde(default)]
        remote_timeout: Option<Duration>,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        #[serde(default)]
        write_relabel_configs: Option<Vec<Option<RelabelConfig>>>,
        #[serde(default)]
        name: String,
        #[serde(default)]
        send_exemplars: bool,
        #[serde(default)]
        send_native_histograms: bool,
        #[serde(default)]
        round_robin_dns: bool,
        #[serde(default)]
        protobuf_message: Option<String>,
        #[serde(default)]
        queue_config: Option<QueueConfig>,
        #[serde(default)]
        metadata_config: Option<MetadataConfig>,
    }
}

/// Protobuf messages accepted for `protobuf_message`.
const WRITE_MESSAGES: [&str; 2] = ["prometheus.WriteRequest", "io.prometheus.write.v2.Request"];

impl TryFrom<RawRemoteWriteConfig> for RemoteWriteConfig {
    type Error = String;
    fn try_from(mut r: RawRemoteWriteConfig) -> Result<Self, String> {
        let url = r.url.take().ok_or("url for remote_write is empty")?;
        let write_relabel_configs = relabel_list(
            r.write_relabel_configs.take(),
            "relabeling rule in remote write config",
        )?;
        validate_headers(&r.headers)?;
        let protobuf_message = r
            .protobuf_message
            .take()
            .unwrap_or_else(|| WRITE_MESSAGES[0].into());
        if !WRITE_MESSAGES.contains(&protobuf_message.as_str()) {
            return Err(format!(
                "invalid protobuf_message value: unknown remote write protobuf message {protobuf_message}, supported: {}",
                WRITE_MESSAGES.join(", ")
            ));
        }
        let http_client = r.take_http(false)?;
        Ok(RemoteWriteConfig {
            url,
            remote_timeout: r.remote_timeout.unwrap_or(Duration::from_secs(30)),
            headers: r.headers,
            write_relabel_configs,
            name: r.name,
            send_exemplars: r.send_exemplars,
            send_native_histograms: r.send_native_histograms,
            round_robin_dns: r.round_robin_dns,
            protobuf_message,
            http_client,
            queue_config: r.queue_config.unwrap_or_default(),
            metadata_config: r.metadata_config.unwrap_or_default(),
        })
    }
}
deserialize_via!(RemoteWriteConfig, RawRemoteWriteConfig);

/// One `remote_read` endpoint.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RemoteReadConfig {
    /// `url`.
    pub url: Url,
    /// `remote_timeout` (default 1m).
    pub remote_timeout: Duration,
    /// `chunked_read_limit` (default 50 MB).
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub chunked_read_limit: u64,
    /// `headers`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// `read_recent`.
    #[serde(skip_serializing_if = "is_false")]
    pub read_recent: bool,
    /// `name` (unique when set).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// HTTP client settings (inlined).
    #[serde(flatten)]
    pub http_client: HttpClientConfig,
    /// `required_matchers`: equality matchers a query must contain.
    #[serde(skip_serializing_if = "LabelSet::is_empty")]
    pub required_matchers: LabelSet,
    /// `filter_external_labels` (default true).
    pub filter_external_labels: bool,
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

raw_with_http_client! {
    struct RawRemoteReadConfig {
        #[serde(default)]
        url: Option<Url>,
        #[serde(default)]
        remote_timeout: Option<Duration>,
        #[serde(default)]
        chunked_read_limit: Option<u64>,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        #[serde(default)]
        read_recent: bool,
        #[serde(default)]
        name: String,
        #[serde(default)]
        required_matchers: LabelSet,
        #[serde(default)]
        filter_external_labels: Option<bool>,
    }
}

impl TryFrom<RawRemoteReadConfig> for RemoteReadConfig {
    type Error = String;
    fn try_from(mut r: RawRemoteReadConfig) -> Result<Self, String> {
        let url = r.url.take().ok_or("url for remote_read is empty")?;
        validate_headers(&r.headers)?;
        let http_client = r.take_http(true)?;
        Ok(RemoteReadConfig {
            url,
            remote_timeout: r.remote_timeout.unwrap_or(Duration::from_secs(60)),
            chunked_read_limit: r.chunked_read_limit.unwrap_or(50_000_000),
            headers: r.headers,
            read_recent: r.read_recent,
            name: r.name,
            http_client,
            required_matchers: r.required_matchers,
            filter_external_labels: r.filter_external_labels.unwrap_or(true),
        })
    }
}
deserialize_via!(RemoteReadConfig, RawRemoteReadConfig);
