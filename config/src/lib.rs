//! The `prometheus.yml` model for Strata.
//!
//! This crate owns the configuration file format and nothing runtime: the
//! serde model of Prometheus's `prometheus.yml` (global settings, scrape
//! configs, relabeling, service discovery declarations, alerting, remote
//! read/write, storage, tracing, OTLP), the Prometheus defaulting rules, the
//! semantic validation Prometheus performs at load time, precise error
//! positions (`file:line:column: path: message`) and the serialization used by
//! `/api/v1/status/config` (secrets rendered as `<secret>`).
//!
//! It does not scrape, discover, read secret files or evaluate rules; other
//! crates consume the resolved [`Config`].
//!
//! Entry points: [`Config::load`], [`Config::from_yaml_str`],
//! [`Config::default_embedded`] and [`Config::to_yaml`].
//!
//! Differences from Prometheus, on purpose:
//! - Service discovery other than static, file, HTTP and Kubernetes (consul,
//!   ec2, dns, ... see [`UNSUPPORTED_SD_KEYS`]) and `sigv4`/`azuread`/
//!   `google_iam` auth are rejected with a "not supported by Strata" error
//!   at the key's position instead of being silently ignored.
//! - URLs must be absolute (`scheme://host...`); scrape and Alertmanager
//!   `scheme` must be `http` or `https` (Prometheus fails later, at runtime).
//! - Secret-manager references (`*_ref`) are not accepted.
//! - `scrape_config_files` are kept but not read.

mod alerting;
mod config;
mod de;
mod discovery;
mod duration;
mod error;
mod extra;
mod global;
mod http_client;
mod labels;
mod locate;
mod objstore;
mod relabel;
mod remote;
mod scrape;
mod secret;
mod size;
mod url;

pub use alerting::{AlertingConfig, AlertmanagerApiVersion, AlertmanagerConfig};
pub use config::{Config, DEFAULT_CONFIG};
pub use discovery::{
    FileSdConfig, HttpSdConfig, KubernetesAttachMetadata, KubernetesNamespaces, KubernetesRole,
    KubernetesSdConfig, KubernetesSelector, ServiceDiscoveryConfigs, StaticConfig,
    UNSUPPORTED_SD_KEYS,
};
pub use duration::Duration;
pub use error::{ConfigError, Position};
pub use extra::{
    DownsampleConfig, ExemplarsConfig, OtlpConfig, RetentionRule, RuntimeConfig, StorageConfig,
    TracingClientType, TracingConfig, TsdbConfig, TsdbRetentionConfig,
};
pub use global::{
    DEFAULT_EVALUATION_INTERVAL, DEFAULT_SCRAPE_INTERVAL, DEFAULT_SCRAPE_TIMEOUT, GlobalConfig,
};
pub use http_client::{
    Authorization, BasicAuth, HttpClientConfig, HttpHeader, OAuth2, ProxyConfig, TlsConfig,
    TlsVersion,
};
pub use labels::{LabelSet, NameEscapingScheme, NameValidationScheme};
pub use objstore::{BucketConfig, ObjstoreConfig, S3Config};
pub use relabel::{
    DEFAULT_REGEX, DEFAULT_REPLACEMENT, DEFAULT_SEPARATOR, RelabelAction, RelabelConfig,
    RelabelRegex,
};
pub use remote::{MetadataConfig, QueueConfig, RemoteReadConfig, RemoteWriteConfig};
pub use scrape::{ScrapeConfig, ScrapeProtocol};
pub use secret::Secret;
pub use size::ByteSize;
pub use url::Url;
