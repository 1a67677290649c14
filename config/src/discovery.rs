//! Service discovery declarations supported by Strata: `static_configs`,
//! `file_sd_configs`, `http_sd_configs` and `kubernetes_sd_configs`. The other
//! Prometheus mechanisms (consul, ec2, dns, ...) are recognised by name and
//! rejected with a clear "not supported" error (see [`UNSUPPORTED_SD_KEYS`]).

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::de::deserialize_via;
use crate::duration::Duration;
use crate::http_client::{HttpClientConfig, join_dir, raw_with_http_client};
use crate::labels::{LabelSet, NameValidationScheme, validate_label_set};
use crate::url::Url;

/// Prometheus discovery keys that Strata recognises but does not implement.
pub const UNSUPPORTED_SD_KEYS: &[&str] = &[
    "azure_sd_configs",
    "consul_sd_configs",
    "digitalocean_sd_configs",
    "docker_sd_configs",
    "dockerswarm_sd_configs",
    "dns_sd_configs",
    "ec2_sd_configs",
    "eureka_sd_configs",
    "gce_sd_configs",
    "hetzner_sd_configs",
    "ionos_sd_configs",
    "kuma_sd_configs",
    "lightsail_sd_configs",
    "linode_sd_configs",
    "marathon_sd_configs",
    "nerve_sd_configs",
    "nomad_sd_configs",
    "openstack_sd_configs",
    "ovhcloud_sd_configs",
    "puppetdb_sd_configs",
    "scaleway_sd_configs",
    "serverset_sd_configs",
    "stackit_sd_configs",
    "triton_sd_configs",
    "uyuni_sd_configs",
    "vultr_sd_configs",
];

/// The discovery sections of a scrape config or alertmanager config.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ServiceDiscoveryConfigs {
    /// `static_configs`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub static_configs: Vec<StaticConfig>,
    /// `file_sd_configs`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub file_sd_configs: Vec<FileSdConfig>,
    /// `http_sd_configs`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub http_sd_configs: Vec<HttpSdConfig>,
    /// `kubernetes_sd_configs`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kubernetes_sd_configs: Vec<KubernetesSdConfig>,
}

impl ServiceDiscoveryConfigs {
    /// Prometheus's `checkStaticTargets`: no URLs as static targets.
    pub(crate) fn check_static_targets(&self) -> Result<(), String> {
        for t in self.static_configs.iter().flat_map(|s| &s.targets) {
            if t.contains('/') {
                return Err(format!("{t:?} is not a valid hostname"));
            }
        }
        Ok(())
    }

    /// Checks label names under the effective scheme.
    pub(crate) fn validate_labels(&self, scheme: NameValidationScheme) -> Result<(), String> {
        self.static_configs
            .iter()
            .try_for_each(|s| validate_label_set(&s.labels, scheme))
    }

    pub(crate) fn set_directory(&mut self, dir: &std::path::Path) {
        for f in &mut self.file_sd_configs {
            f.files.iter_mut().for_each(|p| join_dir(dir, p));
        }
        for h in &mut self.http_sd_configs {
            h.http_client.set_directory(dir);
        }
        for k in &mut self.kubernetes_sd_configs {
            join_dir(dir, &mut k.kubeconfig_file);
            k.http_client.set_directory(dir);
        }
    }
}

/// One `static_configs` target group.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StaticConfig {
    /// `targets` (`host:port`).
    pub targets: Vec<String>,
    /// `labels` added to every target.
    #[serde(skip_serializing_if = "LabelSet::is_empty")]
    pub labels: LabelSet,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStaticConfig {
    #[serde(default)]
    targets: Option<Vec<String>>,
    #[serde(default)]
    labels: Option<LabelSet>,
}

impl TryFrom<RawStaticConfig> for StaticConfig {
    type Error = String;
    fn try_from(r: RawStaticConfig) -> Result<Self, String> {
        let labels = r.labels.unwrap_or_default();
        validate_label_set(&labels, NameValidationScheme::Utf8)?;
        Ok(StaticConfig {
            targets: r.targets.unwrap_or_default(),
            labels,
        })
    }
}
deserialize_via!(StaticConfig, RawStaticConfig);

static FILE_SD_PATTERN: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$").ok());

/// One `file_sd_configs` entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FileSdConfig {
    /// `files`: paths or globs (`*` only in the last path element).
    pub files: Vec<String>,
    /// `refresh_interval` (default 5m).
    pub refresh_interval: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileSdConfig {
    #[serde(default)]
    files: Option<Vec<String>>,
    #[serde(default)]
    refresh_interval: Option<Duration>,
}

impl TryFrom<RawFileSdConfig> for FileSdConfig {
    type Error = String;
    fn try_from(r: RawFileSdConfig) -> Result<Self, String> {
        let files = r.files.unwrap_or_default();
        if files.is_empty() {
            return Err("file service discovery config must contain at least one path name".into());
        }
        for f in &files {
            if !FILE_SD_PATTERN.as_ref().is_some_and(|p| p.is_match(f)) {
                return Err(format!("path name {f:?} is not valid for file discovery"));
            }
        }
        Ok(FileSdConfig {
            files,
            refresh_interval: r.refresh_interval.unwrap_or(Duration::from_secs(300)),
        })
    }
}
deserialize_via!(FileSdConfig, RawFileSdConfig);

/// One `http_sd_configs` entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HttpSdConfig {
    /// HTTP client settings (inlined).
    #[serde(flatten)]
    pub http_client: HttpClientConfig,
    /// `refresh_interval` (default 60s).
    pub refresh_interval: Duration,
    /// `url` to fetch target groups from (http or https).
    pub url: Url,
}

raw_with_http_client! {
    struct RawHttpSdConfig {
        #[serde(default)]
        url: Option<Url>,
        #[serde(default)]
        refresh_interval: Option<Duration>,
    }
}

impl TryFrom<RawHttpSdConfig> for HttpSdConfig {
    type Error = String;
    fn try_from(mut r: RawHttpSdConfig) -> Result<Self, String> {
        let http_client = r.take_http(true)?;
        let url = r.url.ok_or("URL is missing")?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err("URL scheme must be 'http' or 'https'".into());
        }
        Ok(HttpSdConfig {
            http_client,
            refresh_interval: r.refresh_interval.unwrap_or(Duration::from_secs(60)),
            url,
        })
    }
}
deserialize_via!(HttpSdConfig, RawHttpSdConfig);

/// Kubernetes object kind to discover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KubernetesRole {
    /// Endpoints objects.
    Endpoints,
    /// EndpointSlice objects.
    EndpointSlice,
    /// Services.
    Service,
    /// Pods.
    Pod,
    /// Nodes.
    Node,
    /// Ingresses.
    Ingress,
}

impl KubernetesRole {
    fn allowed_selectors(self) -> &'static [KubernetesRole] {
        use KubernetesRole::*;
        match self {
            Endpoints => &[Pod, Service, Endpoints],
            EndpointSlice => &[Pod, Service, EndpointSlice],
            Service => &[Service],
            Pod => &[Pod],
            Node => &[Node],
            Ingress => &[Ingress],
        }
    }
}

/// `namespaces` of a Kubernetes SD config.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesNamespaces {
    /// `own_namespace`: include the namespace Strata runs in.
    #[serde(default)]
    pub own_namespace: bool,
    /// `names`.
    #[serde(default)]
    pub names: Vec<String>,
}

/// One `selectors` entry of a Kubernetes SD config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSelector {
    /// `role` the selector applies to.
    pub role: KubernetesRole,
    /// `label` selector.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
    /// `field` selector.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field: String,
}

/// `attach_metadata` of a Kubernetes SD config.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesAttachMetadata {
    /// `node`: attach node metadata.
    #[serde(default)]
    pub node: bool,
    /// `namespace`: attach namespace metadata.
    #[serde(default)]
    pub namespace: bool,
}

/// One `kubernetes_sd_configs` entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KubernetesSdConfig {
    /// `api_server` (in-cluster config when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_server: Option<Url>,
    /// `role`.
    pub role: KubernetesRole,
    /// `kubeconfig_file`.
    pub kubeconfig_file: String,
    /// HTTP client settings (inlined).
    #[serde(flatten)]
    pub http_client: HttpClientConfig,
    /// `namespaces`.
    pub namespaces: KubernetesNamespaces,
    /// `selectors`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub selectors: Vec<KubernetesSelector>,
    /// `attach_metadata`.
    pub attach_metadata: KubernetesAttachMetadata,
}

raw_with_http_client! {
    struct RawKubernetesSdConfig {
        #[serde(default)]
        api_server: Option<Url>,
        #[serde(default)]
        role: Option<KubernetesRole>,
        #[serde(default)]
        kubeconfig_file: String,
        #[serde(default)]
        namespaces: Option<KubernetesNamespaces>,
        #[serde(default)]
        selectors: Option<Vec<KubernetesSelector>>,
        #[serde(default)]
        attach_metadata: Option<KubernetesAttachMetadata>,
    }
}

impl TryFrom<RawKubernetesSdConfig> for KubernetesSdConfig {
    type Error = String;
    fn try_from(mut r: RawKubernetesSdConfig) -> Result<Self, String> {
        let http_client = r.take_http(true)?;
        let role = r.role.ok_or(
            "role missing (one of: pod, service, endpoints, endpointslice, node, ingress)",
        )?;
        if r.api_server.is_some() && !r.kubeconfig_file.is_empty() {
            return Err("cannot use 'kubeconfig_file' and 'api_server' simultaneously".into());
        }
        let custom_http = http_client != HttpClientConfig::defaults(true);
        if !r.kubeconfig_file.is_empty() && custom_http {
            return Err(
                "cannot use a custom HTTP client configuration together with 'kubeconfig_file'"
                    .into(),
            );
        }
        if r.api_server.is_none() && r.kubeconfig_file.is_empty() && custom_http {
            return Err(
                "to use custom HTTP client configuration please provide the 'api_server' URL explicitly"
                    .into(),
            );
        }
        let selectors = r.selectors.unwrap_or_default();
        let mut seen = Vec::new();
        for s in &selectors {
            if seen.contains(&s.role) {
                return Err(format!("duplicated selector role: {}", role_name(s.role)));
            }
            seen.push(s.role);
            if !role.allowed_selectors().contains(&s.role) {
                return Err(format!(
                    "{} role supports only {} selectors",
                    role_name(role),
                    role.allowed_selectors()
                        .iter()
                        .map(|r| role_name(*r))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        Ok(KubernetesSdConfig {
            api_server: r.api_server,
            role,
            kubeconfig_file: r.kubeconfig_file,
            http_client,
            namespaces: r.namespaces.unwrap_or_default(),
            selectors,
            attach_metadata: r.attach_metadata.unwrap_or_default(),
        })
    }
}
deserialize_via!(KubernetesSdConfig, RawKubernetesSdConfig);

fn role_name(r: KubernetesRole) -> &'static str {
    match r {
        KubernetesRole::Endpoints => "endpoints",
        KubernetesRole::EndpointSlice => "endpointslice",
        KubernetesRole::Service => "service",
        KubernetesRole::Pod => "pod",
        KubernetesRole::Node => "node",
        KubernetesRole::Ingress => "ingress",
    }
}
