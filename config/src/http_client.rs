//! The HTTP client settings Prometheus inlines into scrape configs,
//! alertmanagers, remote read/write and HTTP-based discovery
//! (`prometheus/common` `HTTPClientConfig`): authentication, TLS, proxy,
//! redirects, HTTP/2 and extra headers, with the same mutual-exclusion rules.
//! The legacy `bearer_token`/`bearer_token_file` fields are accepted and
//! turned into `authorization`, as Prometheus does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::de::deserialize_via;
use crate::secret::Secret;
use crate::url::Url;

/// HTTP client configuration (inlined in its parent section).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HttpClientConfig {
    /// `basic_auth`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// `authorization` (also filled from legacy `bearer_token[_file]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// `oauth2` client credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2>,
    /// `tls_config`.
    pub tls_config: TlsConfig,
    /// `follow_redirects` (default true).
    pub follow_redirects: bool,
    /// `enable_http2` (default true; false for remote write).
    pub enable_http2: bool,
    /// Proxy settings (`proxy_url`, `no_proxy`, ...), inlined.
    #[serde(flatten)]
    pub proxy: ProxyConfig,
    /// `http_headers`: extra request headers.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub http_headers: BTreeMap<String, HttpHeader>,
}

impl HttpClientConfig {
    /// Prometheus's defaults with the given `enable_http2`.
    pub(crate) fn defaults(enable_http2: bool) -> Self {
        HttpClientConfig {
            basic_auth: None,
            authorization: None,
            oauth2: None,
            tls_config: TlsConfig::default(),
            follow_redirects: true,
            enable_http2,
            proxy: ProxyConfig::default(),
            http_headers: BTreeMap::new(),
        }
    }

    /// Joins relative file paths with `dir`.
    pub(crate) fn set_directory(&mut self, dir: &std::path::Path) {
        if let Some(b) = &mut self.basic_auth {
            join_dir(dir, &mut b.password_file);
            join_dir(dir, &mut b.username_file);
        }
        if let Some(a) = &mut self.authorization {
            join_dir(dir, &mut a.credentials_file);
        }
        if let Some(o) = &mut self.oauth2 {
            join_dir(dir, &mut o.client_secret_file);
            o.tls_config.set_directory(dir);
        }
        self.tls_config.set_directory(dir);
        for h in self.http_headers.values_mut() {
            for f in &mut h.files {
                join_dir(dir, f);
            }
        }
    }
}

/// Makes a non-empty relative path relative to `dir`.
pub(crate) fn join_dir(dir: &std::path::Path, path: &mut String) {
    if !path.is_empty() && std::path::Path::new(path.as_str()).is_relative() {
        *path = dir.join(path.as_str()).to_string_lossy().into_owned();
    }
}

fn skip_empty(s: &str) -> bool {
    s.is_empty()
}

/// `basic_auth`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// `username`.
    #[serde(default)]
    pub username: String,
    /// `username_file`.
    #[serde(default, skip_serializing_if = "skip_empty")]
    pub username_file: String,
    /// `password`.
    #[serde(default, skip_serializing_if = "Secret::is_empty")]
    pub password: Secret,
    /// `password_file`.
    #[serde(default, skip_serializing_if = "skip_empty")]
    pub password_file: String,
}

/// `authorization`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// `type` (default `Bearer`).
    #[serde(default, rename = "type")]
    pub kind: String,
    /// `credentials`.
    #[serde(default, skip_serializing_if = "Secret::is_empty")]
    pub credentials: Secret,
    /// `credentials_file`.
    #[serde(default, skip_serializing_if = "skip_empty")]
    pub credentials_file: String,
}

/// `oauth2` client-credentials flow.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OAuth2 {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`.
    #[serde(skip_serializing_if = "Secret::is_empty")]
    pub client_secret: Secret,
    /// `client_secret_file`.
    #[serde(skip_serializing_if = "skip_empty")]
    pub client_secret_file: String,
    /// `scopes`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// `token_url`.
    pub token_url: String,
    /// `endpoint_params`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoint_params: BTreeMap<String, String>,
    /// `tls_config` for the token endpoint.
    pub tls_config: TlsConfig,
    /// Proxy for the token endpoint.
    #[serde(flatten)]
    pub proxy: ProxyConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOAuth2 {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: Secret,
    #[serde(default)]
    client_secret_file: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    token_url: String,
    #[serde(default)]
    endpoint_params: BTreeMap<String, String>,
    #[serde(default)]
    tls_config: Option<TlsConfig>,
    #[serde(default)]
    proxy_url: Option<Url>,
    #[serde(default)]
    no_proxy: String,
    #[serde(default)]
    proxy_from_environment: bool,
    #[serde(default)]
    proxy_connect_header: BTreeMap<String, Vec<Secret>>,
}

impl TryFrom<RawOAuth2> for OAuth2 {
    type Error = String;
    fn try_from(r: RawOAuth2) -> Result<Self, String> {
        if r.client_id.is_empty() {
            return Err("oauth2 client_id must be configured".into());
        }
        if r.token_url.is_empty() {
            return Err("oauth2 token_url must be configured".into());
        }
        if !r.client_secret.is_empty() && !r.client_secret_file.is_empty() {
            return Err(
                "at most one of oauth2 client_secret, client_secret_file & client_secret_ref must be configured"
                    .into(),
            );
        }
        let proxy = ProxyConfig {
            proxy_url: r.proxy_url,
            no_proxy: r.no_proxy,
            proxy_from_environment: r.proxy_from_environment,
            proxy_connect_header: r.proxy_connect_header,
        };
        proxy.validate()?;
        Ok(OAuth2 {
            client_id: r.client_id,
            client_secret: r.client_secret,
            client_secret_file: r.client_secret_file,
            scopes: r.scopes,
            token_url: r.token_url,
            endpoint_params: r.endpoint_params,
            tls_config: r.tls_config.unwrap_or_default(),
            proxy,
        })
    }
}
deserialize_via!(OAuth2, RawOAuth2);

/// Minimum/maximum TLS protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.0.
    #[serde(rename = "TLS10")]
    Tls10,
    /// TLS 1.1.
    #[serde(rename = "TLS11")]
    Tls11,
    /// TLS 1.2.
    #[serde(rename = "TLS12")]
    Tls12,
    /// TLS 1.3.
    #[serde(rename = "TLS13")]
    Tls13,
}

/// `tls_config`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TlsConfig {
    /// `ca`: inline PEM CA certificate.
    #[serde(skip_serializing_if = "skip_empty")]
    pub ca: String,
    /// `ca_file`.
    #[serde(skip_serializing_if = "skip_empty")]
    pub ca_file: String,
    /// `cert`: inline PEM client certificate.
    #[serde(skip_serializing_if = "skip_empty")]
    pub cert: String,
    /// `cert_file`.
    #[serde(skip_serializing_if = "skip_empty")]
    pub cert_file: String,
    /// `key`: inline PEM client key.
    #[serde(skip_serializing_if = "Secret::is_empty")]
    pub key: Secret,
    /// `key_file`.
    #[serde(skip_serializing_if = "skip_empty")]
    pub key_file: String,
    /// `server_name` (SNI / verification name).
    #[serde(skip_serializing_if = "skip_empty")]
    pub server_name: String,
    /// `insecure_skip_verify`.
    pub insecure_skip_verify: bool,
    /// `min_version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_version: Option<TlsVersion>,
    /// `max_version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_version: Option<TlsVersion>,
}

impl TlsConfig {
    fn set_directory(&mut self, dir: &std::path::Path) {
        join_dir(dir, &mut self.ca_file);
        join_dir(dir, &mut self.cert_file);
        join_dir(dir, &mut self.key_file);
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTlsConfig {
    #[serde(default)]
    ca: String,
    #[serde(default)]
    ca_file: String,
    #[serde(default)]
    cert: String,
    #[serde(default)]
    cert_file: String,
    #[serde(default)]
    key: Secret,
    #[serde(default)]
    key_file: String,
    #[serde(default)]
    server_name: String,
    #[serde(default)]
    insecure_skip_verify: bool,
    #[serde(default)]
    min_version: Option<TlsVersion>,
    #[serde(default)]
    max_version: Option<TlsVersion>,
}

impl TryFrom<RawTlsConfig> for TlsConfig {
    type Error = String;
    fn try_from(r: RawTlsConfig) -> Result<Self, String> {
        if !r.ca.is_empty() && !r.ca_file.is_empty() {
            return Err("at most one of ca, ca_file & ca_ref must be configured".into());
        }
        if !r.cert.is_empty() && !r.cert_file.is_empty() {
            return Err("at most one of cert, cert_file & cert_ref must be configured".into());
        }
        if !r.key.is_empty() && !r.key_file.is_empty() {
            return Err("at most one of key and key_file must be configured".into());
        }
        let has_cert = !r.cert.is_empty() || !r.cert_file.is_empty();
        let has_key = !r.key.is_empty() || !r.key_file.is_empty();
        if has_cert && !has_key {
            return Err("exactly one of key or key_file must be configured when a client certificate is configured".into());
        }
        if has_key && !has_cert {
            return Err("exactly one of cert or cert_file must be configured when a client key is configured".into());
        }
        if let (Some(min), Some(max)) = (r.min_version, r.max_version)
            && min > max
        {
            return Err("tls_config min_version must not be greater than max_version".into());
        }
        Ok(TlsConfig {
            ca: r.ca,
            ca_file: r.ca_file,
            cert: r.cert,
            cert_file: r.cert_file,
            key: r.key,
            key_file: r.key_file,
            server_name: r.server_name,
            insecure_skip_verify: r.insecure_skip_verify,
            min_version: r.min_version,
            max_version: r.max_version,
        })
    }
}
deserialize_via!(TlsConfig, RawTlsConfig);

/// Proxy settings (inlined into the HTTP client section).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProxyConfig {
    /// `proxy_url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<Url>,
    /// `no_proxy`: comma-separated hosts that bypass the proxy.
    #[serde(skip_serializing_if = "skip_empty")]
    pub no_proxy: String,
    /// `proxy_from_environment`: use `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub proxy_from_environment: bool,
    /// `proxy_connect_header`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub proxy_connect_header: BTreeMap<String, Vec<Secret>>,
}

impl ProxyConfig {
    fn validate(&self) -> Result<(), String> {
        if !self.proxy_connect_header.is_empty()
            && self.proxy_url.is_none()
            && !self.proxy_from_environment
        {
            return Err("if proxy_connect_header is configured, proxy_url or proxy_from_environment must also be configured".into());
        }
        if self.proxy_from_environment && self.proxy_url.is_some() {
            return Err(
                "if proxy_from_environment is configured, proxy_url must not be configured".into(),
            );
        }
        if self.proxy_from_environment && !self.no_proxy.is_empty() {
            return Err(
                "if proxy_from_environment is configured, no_proxy must not be configured".into(),
            );
        }
        if self.proxy_url.is_none() && !self.no_proxy.is_empty() {
            return Err("if no_proxy is configured, proxy_url must also be configured".into());
        }
        Ok(())
    }
}

/// One `http_headers` entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpHeader {
    /// Plain values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// Secret values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<Secret>,
    /// Files to read values from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

const RESERVED_HEADERS: [&str; 14] = [
    "authorization",
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
];

/// The HTTP client keys as they appear inlined in a parent section.
#[derive(Default)]
pub(crate) struct HttpClientFields {
    pub(crate) basic_auth: Option<BasicAuth>,
    pub(crate) authorization: Option<Authorization>,
    pub(crate) oauth2: Option<OAuth2>,
    pub(crate) bearer_token: Secret,
    pub(crate) bearer_token_file: String,
    pub(crate) tls_config: Option<TlsConfig>,
    pub(crate) follow_redirects: Option<bool>,
    pub(crate) enable_http2: Option<bool>,
    pub(crate) proxy_url: Option<Url>,
    pub(crate) no_proxy: String,
    pub(crate) proxy_from_environment: bool,
    pub(crate) proxy_connect_header: BTreeMap<String, Vec<Secret>>,
    pub(crate) http_headers: BTreeMap<String, HttpHeader>,
}

impl HttpClientFields {
    /// Validates like `HTTPClientConfig.Validate` and builds the config.
    pub(crate) fn build(self, default_http2: bool) -> Result<HttpClientConfig, String> {
        let has_bearer = !self.bearer_token.is_empty() || !self.bearer_token_file.is_empty();
        if !self.bearer_token.is_empty() && !self.bearer_token_file.is_empty() {
            return Err(
                "at most one of bearer_token & bearer_token_file must be configured".into(),
            );
        }
        if (self.basic_auth.is_some() || self.oauth2.is_some()) && has_bearer {
            return Err("at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured".into());
        }
        if let Some(b) = &self.basic_auth {
            if !b.username.is_empty() && !b.username_file.is_empty() {
                return Err("at most one of basic_auth username, username_file & username_ref must be configured".into());
            }
            if !b.password.is_empty() && !b.password_file.is_empty() {
                return Err("at most one of basic_auth password, password_file & password_ref must be configured".into());
            }
        }
        let mut authorization = self.authorization;
        if let Some(a) = &mut authorization {
            if has_bearer {
                return Err(
                    "authorization is not compatible with bearer_token & bearer_token_file".into(),
                );
            }
            if !a.credentials.is_empty() && !a.credentials_file.is_empty() {
                return Err(
                    "at most one of authorization credentials & credentials_file must be configured"
                        .into(),
                );
            }
            a.kind = a.kind.trim().to_owned();
            if a.kind.is_empty() {
                "Bearer".clone_into(&mut a.kind);
            }
            if a.kind.eq_ignore_ascii_case("basic") {
                return Err(
                    r#"authorization type cannot be set to "basic", use "basic_auth" instead"#
                        .into(),
                );
            }
            if self.basic_auth.is_some() || self.oauth2.is_some() {
                return Err(
                    "at most one of basic_auth, oauth2 & authorization must be configured".into(),
                );
            }
        } else if has_bearer {
            authorization = Some(Authorization {
                kind: "Bearer".into(),
                credentials: self.bearer_token,
                credentials_file: self.bearer_token_file,
            });
        }
        if self.oauth2.is_some() && self.basic_auth.is_some() {
            return Err(
                "at most one of basic_auth, oauth2 & authorization must be configured".into(),
            );
        }
        let proxy = ProxyConfig {
            proxy_url: self.proxy_url,
            no_proxy: self.no_proxy,
            proxy_from_environment: self.proxy_from_environment,
            proxy_connect_header: self.proxy_connect_header,
        };
        proxy.validate()?;
        for name in self.http_headers.keys() {
            if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(format!("setting header {name:?} is not allowed"));
            }
        }
        Ok(HttpClientConfig {
            basic_auth: self.basic_auth,
            authorization,
            oauth2: self.oauth2,
            tls_config: self.tls_config.unwrap_or_default(),
            follow_redirects: self.follow_redirects.unwrap_or(true),
            enable_http2: self.enable_http2.unwrap_or(default_http2),
            proxy,
            http_headers: self.http_headers,
        })
    }
}

/// Declares a raw (deserialization) struct with the given fields plus every
/// inlined HTTP client key, and a `take_http` method collecting the latter.
macro_rules! raw_with_http_client {
    ($(#[$attr:meta])* struct $name:ident { $($(#[$fattr:meta])* $field:ident : $ty:ty,)* }) => {
        $(#[$attr])*
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct $name {
            $($(#[$fattr])* $field: $ty,)*
            #[serde(default)]
            basic_auth: Option<$crate::http_client::BasicAuth>,
            #[serde(default)]
            authorization: Option<$crate::http_client::Authorization>,
            #[serde(default)]
            oauth2: Option<$crate::http_client::OAuth2>,
            #[serde(default)]
            bearer_token: $crate::secret::Secret,
            #[serde(default)]
            bearer_token_file: String,
            #[serde(default)]
            tls_config: Option<$crate::http_client::TlsConfig>,
            #[serde(default)]
            follow_redirects: Option<bool>,
            #[serde(default)]
            enable_http2: Option<bool>,
            #[serde(default)]
            proxy_url: Option<$crate::url::Url>,
            #[serde(default)]
            no_proxy: String,
            #[serde(default)]
            proxy_from_environment: bool,
            #[serde(default)]
            proxy_connect_header:
                std::collections::BTreeMap<String, Vec<$crate::secret::Secret>>,
            #[serde(default)]
            http_headers: std::collections::BTreeMap<String, $crate::http_client::HttpHeader>,
        }

        impl $name {
            /// Builds the HTTP client config from the inlined keys.
            fn take_http(
                &mut self,
                default_http2: bool,
            ) -> Result<$crate::http_client::HttpClientConfig, String> {
                $crate::http_client::HttpClientFields {
                    basic_auth: self.basic_auth.take(),
                    authorization: self.authorization.take(),
                    oauth2: self.oauth2.take(),
                    bearer_token: std::mem::take(&mut self.bearer_token),
                    bearer_token_file: std::mem::take(&mut self.bearer_token_file),
                    tls_config: self.tls_config.take(),
                    follow_redirects: self.follow_redirects.take(),
                    enable_http2: self.enable_http2.take(),
                    proxy_url: self.proxy_url.take(),
                    no_proxy: std::mem::take(&mut self.no_proxy),
                    proxy_from_environment: self.proxy_from_environment,
                    proxy_connect_header: std::mem::take(&mut self.proxy_connect_header),
                    http_headers: std::mem::take(&mut self.http_headers),
                }
                .build(default_http2)
            }
        }
    };
}
pub(crate) use raw_with_http_client;

raw_with_http_client! {
    /// A standalone `http_config` block (Alertmanager receivers).
    struct RawStandalone {}
}

impl HttpClientConfig {
    /// Parses a standalone `http_config` block (as Alertmanager's receivers have), with
    /// Prometheus's defaults for what it leaves out.
    pub fn from_yaml_value(v: serde_yaml_ng::Value) -> Result<HttpClientConfig, String> {
        let v = if v.is_null() {
            serde_yaml_ng::Value::Mapping(Default::default())
        } else {
            v
        };
        let mut raw: RawStandalone = serde_yaml_ng::from_value(v).map_err(|e| e.to_string())?;
        raw.take_http(true)
    }
}
