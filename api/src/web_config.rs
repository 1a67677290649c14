//! `--web.config.file`: Prometheus's exporter-toolkit web configuration. TLS
//! (`tls_server_config`: certificate and key, client certificates checked against a CA as
//! `client_auth_type` asks, minimum/maximum version), `basic_auth_users` with bcrypt hashes,
//! and `http_server_config.headers` (security headers on every response).
//!
//! The file is read once at startup (Prometheus re-reads it per connection); a change needs
//! a restart. `RequestClientCert` and `RequireAnyClientCert` verify a presented certificate
//! against `client_ca_file` too (Go accepts any certificate there): stricter, never looser. Unknown keys and bad values are refused with the file and field named.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The parsed web configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    #[serde(default)]
    pub tls_server_config: Option<TlsServerConfig>,
    #[serde(default)]
    pub http_server_config: Option<HttpServerConfig>,
    #[serde(default)]
    pub basic_auth_users: BTreeMap<String, String>,
}

/// `tls_server_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsServerConfig {
    #[serde(default)]
    pub cert_file: String,
    #[serde(default)]
    pub key_file: String,
    #[serde(default)]
    pub client_auth_type: Option<String>,
    #[serde(default)]
    pub client_ca_file: String,
    #[serde(default)]
    pub min_version: Option<String>,
    #[serde(default)]
    pub max_version: Option<String>,
    #[serde(default)]
    pub cipher_suites: Vec<String>,
    #[serde(default)]
    pub prefer_server_cipher_suites: Option<bool>,
    #[serde(default)]
    pub curve_preferences: Vec<String>,
    #[serde(default)]
    pub client_allowed_sans: Vec<String>,
}

/// `http_server_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpServerConfig {
    #[serde(default)]
    pub http2: Option<bool>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

const ALLOWED_HEADERS: [&str; 5] = [
    "Content-Security-Policy",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "X-XSS-Protection",
    "Strict-Transport-Security",
];

impl WebConfig {
    /// Reads and checks the file; errors name the file and the field.
    pub fn load(path: &Path) -> Result<WebConfig, String> {
        let shown = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
        let mut cfg: WebConfig = if text.trim().is_empty() {
            WebConfig::default()
        } else {
            serde_yaml_ng::from_str(&text).map_err(|e| format!("{shown}: {e}"))?
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        if let Some(tls) = &mut cfg.tls_server_config {
            if tls.cert_file.is_empty() {
                return Err(format!(
                    "{shown}: tls_server_config.cert_file: missing cert_file"
                ));
            }
            if tls.key_file.is_empty() {
                return Err(format!(
                    "{shown}: tls_server_config.key_file: missing key_file"
                ));
            }
            for f in [
                &mut tls.cert_file,
                &mut tls.key_file,
                &mut tls.client_ca_file,
            ] {
                if !f.is_empty() && Path::new(f.as_str()).is_relative() {
                    *f = dir.join(f.as_str()).to_string_lossy().into_owned();
                }
            }
            for v in [&tls.min_version, &tls.max_version].into_iter().flatten() {
                parse_version(v).map_err(|e| format!("{shown}: tls_server_config: {e}"))?;
            }
        }
        if let Some(h) = &cfg.http_server_config {
            for (k, v) in &h.headers {
                if !ALLOWED_HEADERS.iter().any(|a| a.eq_ignore_ascii_case(k)) {
                    return Err(format!(
                        "{shown}: http_server_config.headers: header {k:?} is not allowed (allowed: {})",
                        ALLOWED_HEADERS.join(", ")
                    ));
                }
                HeaderValue::from_str(v).map_err(|_| {
                    format!("{shown}: http_server_config.headers.{k}: invalid value {v:?}")
                })?;
            }
        }
        for (user, hash) in &cfg.basic_auth_users {
            if !hash.starts_with("$2") {
                return Err(format!(
                    "{shown}: basic_auth_users.{user}: not a bcrypt hash"
                ));
            }
        }
        Ok(cfg)
    }

    /// The TLS acceptor, when `tls_server_config` is set.
    pub fn tls_acceptor(&self) -> Result<Option<TlsAcceptor>, String> {
        let Some(t) = &self.tls_server_config else {
            return Ok(None);
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&t.cert_file)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("tls_server_config.cert_file {}: {e}", t.cert_file))?;
        let key = PrivateKeyDer::from_pem_file(&t.key_file)
            .map_err(|e| format!("tls_server_config.key_file {}: {e}", t.key_file))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let min = t
            .min_version
            .as_deref()
            .map(parse_version)
            .transpose()?
            .unwrap_or(12);
        let max = t
            .max_version
            .as_deref()
            .map(parse_version)
            .transpose()?
            .unwrap_or(13);
        let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
        if min <= 12 && max >= 12 {
            versions.push(&rustls::version::TLS12);
        }
        if max >= 13 {
            versions.push(&rustls::version::TLS13);
        }
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| format!("tls_server_config: {e}"))?;
        let auth = t.client_auth_type.as_deref().unwrap_or("NoClientCert");
        let builder = match auth {
            "NoClientCert" | "" => builder.with_no_client_auth(),
            "RequestClientCert"
            | "RequireAnyClientCert"
            | "VerifyClientCertIfGiven"
            | "RequireAndVerifyClientCert" => {
                if t.client_ca_file.is_empty() {
                    return Err(format!(
                        "tls_server_config.client_ca_file: required for client_auth_type {auth}"
                    ));
                }
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_file_iter(&t.client_ca_file)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| format!("tls_server_config.client_ca_file: {e}"))?
                {
                    roots
                        .add(c)
                        .map_err(|e| format!("tls_server_config.client_ca_file: {e}"))?;
                }
                let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                );
                let v = if auth == "RequireAndVerifyClientCert" || auth == "RequireAnyClientCert" {
                    v
                } else {
                    v.allow_unauthenticated()
                };
                builder.with_client_cert_verifier(
                    v.build().map_err(|e| format!("tls_server_config: {e}"))?,
                )
            }
            other => {
                return Err(format!(
                    "tls_server_config.client_auth_type: invalid value {other:?}"
                ));
            }
        };
        let mut sc = builder
            .with_single_cert(certs, key)
            .map_err(|e| format!("tls_server_config: {e}"))?;
        sc.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Some(TlsAcceptor::from(Arc::new(sc))))
    }
}

fn parse_version(v: &str) -> Result<u8, String> {
    match v {
        "TLS10" => Ok(10),
        "TLS11" => Ok(11),
        "TLS12" => Ok(12),
        "TLS13" => Ok(13),
        other => Err(format!("unknown TLS version {other:?}")),
    }
}

/// Basic authentication and security headers, as one middleware state.
pub struct WebSecurity {
    users: BTreeMap<String, String>,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Verified (user, password) pairs: bcrypt is slow on purpose, a client sends the same
    /// credentials on every request.
    verified: Mutex<HashSet<(String, String)>>,
    failed: Mutex<HashSet<(String, String)>>,
}

impl WebSecurity {
    pub fn new(cfg: &WebConfig) -> Arc<WebSecurity> {
        let headers = cfg
            .http_server_config
            .iter()
            .flat_map(|h| h.headers.iter())
            .filter_map(|(k, v)| {
                Some((
                    HeaderName::from_bytes(k.as_bytes()).ok()?,
                    HeaderValue::from_str(v).ok()?,
                ))
            })
            .collect();
        Arc::new(WebSecurity {
            users: cfg.basic_auth_users.clone(),
            headers,
            verified: Mutex::new(HashSet::new()),
            failed: Mutex::new(HashSet::new()),
        })
    }

    fn authorized(&self, req: &Request) -> bool {
        if self.users.is_empty() {
            return true;
        }
        let Some((user, pass)) = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned())))
        else {
            return false;
        };
        let key = (user.clone(), pass.clone());
        if self.verified.lock().contains(&key) {
            return true;
        }
        if self.failed.lock().contains(&key) {
            return false;
        }
        let ok = self
            .users
            .get(&user)
            .is_some_and(|hash| bcrypt::verify(&pass, hash).unwrap_or(false));
        if ok {
            self.verified.lock().insert(key);
        } else {
            let mut f = self.failed.lock();
            if f.len() > 1024 {
                f.clear();
            }
            f.insert(key);
        }
        ok
    }
}

/// The middleware: 401 without valid credentials; configured headers on every response.
pub async fn security_layer(
    axum::extract::State(sec): axum::extract::State<Arc<WebSecurity>>,
    req: Request,
    next: Next,
) -> Response {
    let mut resp = if sec.authorized(&req) {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic")],
            "Unauthorized\n",
        )
            .into_response()
    };
    for (k, v) in &sec.headers {
        resp.headers_mut().insert(k.clone(), v.clone());
    }
    resp
}

/// A listener that hands axum TLS connections, handshakes done off the accept loop.
pub struct TlsListener {
    rx: mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { rx, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(x) => x,
            // The accept task never ends while the listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
