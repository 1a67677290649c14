//! `--web.config.file`: Prometheus's exporter-toolkit web configuration. TLS
//! (`tls_server_config`: certificate and key, client certificates checked against a CA as
//! `client_auth_type` asks, minimum/maximum version), `basic_auth_users` with bcrypt hashes,
//! and `http_server_config.headers` (security headers on every response).
//!
//! The file is read once at startup (Prometheus re-reads it per connection); a change needs
//! a restart. `RequestClientCert` and `RequireAnyClientCert` verify a presented certificate
//! against `client_ca_file` too (Go accepts any certificate there): stricter, never looser.
//! Unknown keys and bad values are refused with the file and field named.
//!
//! bcrypt checks run off the async workers, a few at a time, with verdicts cached; an
//! unknown user costs the same bcrypt work as a known one ([`WebSecurity`]). The TLS
//! handshake itself runs in [`crate::serve`], under the connection cap.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::sync::Semaphore;
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

/// A bcrypt hash that matches no password, checked when the user is unknown so that an
/// unknown user costs the same bcrypt work as a known one (the cost, `10` here, is replaced
/// by the configured hashes' cost). Salt and digest are those of a real hash, so it parses.
const DUMMY_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

/// Cached verification results are kept for at most this many (user, password) pairs each
/// way; past it the cache starts over (a flood of wrong passwords cannot grow it).
const CACHE_LIMIT: usize = 1024;

/// Basic authentication and security headers, as one middleware state.
///
/// bcrypt is slow on purpose, so its work runs on the blocking pool, never on the async
/// workers, and at most [`WebSecurity::bcrypt_slots`] checks run at once: a flood of wrong
/// passwords waits for a slot instead of taking every blocking thread and core, while a
/// client whose credentials were verified before is answered from the cache at once.
pub struct WebSecurity {
    users: BTreeMap<String, String>,
    /// Checked for unknown users: no match, same cost as the configured hashes.
    dummy_hash: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Verified (user, password) pairs: a client sends the same credentials every request.
    verified: Mutex<HashSet<(String, String)>>,
    /// Pairs that failed: a client retrying a wrong password costs no bcrypt work.
    failed: Mutex<HashSet<(String, String)>>,
    /// Bounds the bcrypt checks running at once.
    bcrypt: Arc<Semaphore>,
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
        let cost = cfg
            .basic_auth_users
            .values()
            .filter_map(|h| bcrypt_cost(h))
            .max()
            .unwrap_or(bcrypt::DEFAULT_COST);
        Arc::new(WebSecurity {
            users: cfg.basic_auth_users.clone(),
            dummy_hash: dummy_hash(cost),
            headers,
            verified: Mutex::new(HashSet::new()),
            failed: Mutex::new(HashSet::new()),
            bcrypt: Arc::new(Semaphore::new(Self::bcrypt_slots())),
        })
    }

    /// bcrypt checks run at once: half the cores (at least one), so the other half keeps
    /// serving while a flood of wrong passwords is checked.
    pub fn bcrypt_slots() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get() / 2)
            .unwrap_or(1)
            .max(1)
    }

    /// Whether `credentials` (from [`credentials`]) may pass.
    async fn authorized(&self, credentials: Option<(String, String)>) -> bool {
        if self.users.is_empty() {
            return true;
        }
        let Some(key) = credentials else {
            return false;
        };
        if let Some(known) = self.cached(&key) {
            return known;
        }
        // Held until bcrypt returns, even if this request is dropped meanwhile.
        let Ok(slot) = self.bcrypt.clone().acquire_owned().await else {
            return false;
        };
        // The same pair may have been checked while this one waited for a slot.
        if let Some(known) = self.cached(&key) {
            return known;
        }
        let (hash, known_user) = match self.users.get(&key.0) {
            Some(h) => (h.clone(), true),
            None => (self.dummy_hash.clone(), false),
        };
        let pass = key.1.clone();
        let matched = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            bcrypt::verify(pass, &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        let ok = matched && known_user;
        let cache = if ok { &self.verified } else { &self.failed };
        let mut c = cache.lock();
        if c.len() >= CACHE_LIMIT {
            c.clear();
        }
        c.insert(key);
        ok
    }

    /// A cached verdict for the pair, if any.
    fn cached(&self, key: &(String, String)) -> Option<bool> {
        if self.verified.lock().contains(key) {
            Some(true)
        } else if self.failed.lock().contains(key) {
            Some(false)
        } else {
            None
        }
    }
}

/// The (user, password) of a `Basic` authorization header.
fn credentials(req: &Request) -> Option<(String, String)> {
    use base64::Engine;
    let b = req
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

/// The cost of a bcrypt hash (`$2y$10$...` is 10).
fn bcrypt_cost(hash: &str) -> Option<u32> {
    hash.split('$').nth(2)?.parse().ok()
}

/// [`DUMMY_HASH`] at `cost` (clamped to bcrypt's 4..=31).
fn dummy_hash(cost: u32) -> String {
    let rest = DUMMY_HASH.get(7..).unwrap_or_default();
    format!("$2y${:02}${rest}", cost.clamp(4, 31))
}

/// The middleware: 401 without valid credentials; configured headers on every response.
pub async fn security_layer(
    axum::extract::State(sec): axum::extract::State<Arc<WebSecurity>>,
    req: Request,
    next: Next,
) -> Response {
    let mut resp = if sec.authorized(credentials(&req)).await {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_parses_and_matches_nothing() {
        let h = dummy_hash(4);
        assert_eq!(bcrypt_cost(&h), Some(4));
        assert!(!bcrypt::verify("", &h).unwrap());
        assert!(!bcrypt::verify("password", &h).unwrap());
        assert_eq!(bcrypt_cost(&dummy_hash(12)), Some(12));
    }

    #[tokio::test]
    async fn verdicts_are_cached_and_unknown_users_refused() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let cfg = WebConfig {
            basic_auth_users: [("alice".to_owned(), hash)].into_iter().collect(),
            ..WebConfig::default()
        };
        let sec = WebSecurity::new(&cfg);
        assert_eq!(bcrypt_cost(&sec.dummy_hash), Some(4));
        let req = |cred: &str| {
            use base64::Engine;
            let v = base64::engine::general_purpose::STANDARD.encode(cred);
            Request::builder()
                .header(header::AUTHORIZATION, format!("Basic {v}"))
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let auth = |cred: &str| sec.authorized(credentials(&req(cred)));
        assert!(auth("alice:s3cret").await);
        assert_eq!(sec.cached(&("alice".into(), "s3cret".into())), Some(true));
        assert!(!auth("alice:wrong").await);
        assert!(!auth("bob:s3cret").await);
        assert_eq!(sec.cached(&("bob".into(), "s3cret".into())), Some(false));
        assert!(!sec.authorized(None).await);
    }
}
