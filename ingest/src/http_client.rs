//! HTTP clients from `prometheus.yml` HTTP settings (`basic_auth`, `authorization`,
//! `tls_config`, proxy, `follow_redirects`, `http_headers`), shared by scraping and HTTP
//! service discovery. Credentials given as files are read on every request, as Prometheus
//! does, so rotated secrets are picked up without a reload.
//!
//! Not supported (rejected at startup with a clear error): `oauth2`, TLS `server_name`
//! overrides, `proxy_connect_header`.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use strata_config::HttpClientConfig;

use crate::error::IngestError;

/// A configured client plus the per-request credentials.
#[derive(Clone, Debug)]
pub struct HttpClient {
    pub client: reqwest::Client,
    cfg: HttpClientConfig,
}

fn read_file(path: &str, what: &str) -> Result<String, IngestError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| IngestError::Config(format!("reading {what} {path}: {e}")))
}

impl HttpClient {
    /// Builds the client. `name` (the job) appears in errors.
    pub fn new(cfg: &HttpClientConfig, name: &str) -> Result<Self, IngestError> {
        Self::build(cfg, name, false)
    }

    /// Like [`HttpClient::new`], with header names in canonical case on HTTP/1
    /// (`Content-Type`), as Go clients send them (notification receivers may expect it).
    pub fn new_title_case(cfg: &HttpClientConfig, name: &str) -> Result<Self, IngestError> {
        Self::build(cfg, name, true)
    }

    fn build(cfg: &HttpClientConfig, name: &str, title_case: bool) -> Result<Self, IngestError> {
        let err = |m: String| IngestError::Config(format!("job {name:?}: {m}"));
        if cfg.oauth2.is_some() {
            return Err(err("oauth2 is not supported by Strata".into()));
        }
        let tls = &cfg.tls_config;
        if !tls.server_name.is_empty() {
            return Err(err(
                "tls_config.server_name is not supported by Strata".into()
            ));
        }
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("Strata/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(300))
            .tcp_nodelay(true)
            .redirect(if cfg.follow_redirects {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            });
        if title_case {
            b = b.http1_title_case_headers();
        }
        if !cfg.enable_http2 {
            b = b.http1_only();
        }
        let mut ca_pem = tls.ca.clone().into_bytes();
        if !tls.ca_file.is_empty() {
            ca_pem = std::fs::read(&tls.ca_file)
                .map_err(|e| err(format!("reading ca_file {}: {e}", tls.ca_file)))?;
        }
        if !ca_pem.is_empty() {
            for c in reqwest::Certificate::from_pem_bundle(&ca_pem)
                .map_err(|e| err(format!("invalid CA certificate: {e}")))?
            {
                b = b.add_root_certificate(c);
            }
        }
        let mut cert = tls.cert.clone().into_bytes();
        if !tls.cert_file.is_empty() {
            cert = std::fs::read(&tls.cert_file)
                .map_err(|e| err(format!("reading cert_file {}: {e}", tls.cert_file)))?;
        }
        let mut key = tls.key.expose().as_bytes().to_vec();
        if !tls.key_file.is_empty() {
            key = std::fs::read(&tls.key_file)
                .map_err(|e| err(format!("reading key_file {}: {e}", tls.key_file)))?;
        }
        if !cert.is_empty() {
            let mut pem = cert;
            pem.push(b'\n');
            pem.extend_from_slice(&key);
            let id = reqwest::Identity::from_pem(&pem)
                .map_err(|e| err(format!("invalid client certificate or key: {e}")))?;
            b = b.identity(id);
        }
        if tls.insecure_skip_verify {
            b = b.danger_accept_invalid_certs(true);
        }
        if let Some(v) = tls.min_version {
            b = b.min_tls_version(tls_version(v));
        }
        if let Some(v) = tls.max_version {
            b = b.max_tls_version(tls_version(v));
        }
        if let Some(p) = &cfg.proxy.proxy_url {
            let mut proxy = reqwest::Proxy::all(p.as_str())
                .map_err(|e| err(format!("invalid proxy_url: {e}")))?;
            if !cfg.proxy.no_proxy.is_empty() {
                proxy = proxy.no_proxy(reqwest::NoProxy::from_string(&cfg.proxy.no_proxy));
            }
            b = b.proxy(proxy);
        } else if !cfg.proxy.proxy_from_environment {
            b = b.no_proxy();
        }
        if !cfg.proxy.proxy_connect_header.is_empty() {
            return Err(err("proxy_connect_header is not supported by Strata".into()));
        }
        let client = b.build().map_err(|e| err(format!("HTTP client: {e}")))?;
        Ok(HttpClient {
            client,
            cfg: cfg.clone(),
        })
    }

    /// Authentication and configured headers for one request.
    pub fn request_headers(&self) -> Result<HeaderMap, IngestError> {
        let mut h = HeaderMap::new();
        let bad = |e: &dyn std::fmt::Display| IngestError::Config(format!("invalid header: {e}"));
        if let Some(ba) = &self.cfg.basic_auth {
            let user = if ba.username_file.is_empty() {
                ba.username.clone()
            } else {
                read_file(&ba.username_file, "username_file")?
            };
            let pass = if ba.password_file.is_empty() {
                ba.password.expose().to_owned()
            } else {
                read_file(&ba.password_file, "password_file")?
            };
            use base64::Engine;
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            h.insert(
                reqwest::header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Basic {token}")).map_err(|e| bad(&e))?,
            );
        } else if let Some(a) = &self.cfg.authorization {
            let cred = if a.credentials_file.is_empty() {
                a.credentials.expose().to_owned()
            } else {
                read_file(&a.credentials_file, "credentials_file")?
            };
            let kind = if a.kind.is_empty() { "Bearer" } else { &a.kind };
            h.insert(
                reqwest::header::AUTHORIZATION,
                HeaderValue::from_str(&format!("{kind} {cred}")).map_err(|e| bad(&e))?,
            );
        }
        for (name, hv) in &self.cfg.http_headers {
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(&e))?;
            let mut values: Vec<String> = hv.values.clone();
            values.extend(hv.secrets.iter().map(|s| s.expose().to_owned()));
            for f in &hv.files {
                values.push(read_file(f, "http_headers file")?);
            }
            for v in values {
                h.append(n.clone(), HeaderValue::from_str(&v).map_err(|e| bad(&e))?);
            }
        }
        Ok(h)
    }
}

fn tls_version(v: strata_config::TlsVersion) -> reqwest::tls::Version {
    use strata_config::TlsVersion::*;
    match v {
        Tls10 => reqwest::tls::Version::TLS_1_0,
        Tls11 => reqwest::tls::Version::TLS_1_1,
        Tls12 => reqwest::tls::Version::TLS_1_2,
        Tls13 => reqwest::tls::Version::TLS_1_3,
    }
}
