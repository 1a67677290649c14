//! The TLS settings of an SMTP connection from an entry's `tls_config`, as Alertmanager's
//! `commoncfg.NewTLSConfig` makes them: the server name is `server_name` or the smarthost's
//! host; a `ca`/`ca_file` replaces the system roots; `cert`/`key` (or their files) identify
//! the client; `insecure_skip_verify` accepts any certificate; `min_version` is honoured
//! (TLS 1.2 or 1.3).

use lettre::transport::smtp::client::{
    Certificate, CertificateStore, Identity, TlsParameters, TlsVersion,
};
use strata_config::TlsConfig;

/// TLS parameters for a connection to `host`.
pub(super) fn parameters(cfg: Option<&TlsConfig>, host: &str) -> Result<TlsParameters, String> {
    let empty = TlsConfig::default();
    let t = cfg.unwrap_or(&empty);
    let name = if t.server_name.is_empty() {
        host
    } else {
        &t.server_name
    };
    let mut b = TlsParameters::builder(name.to_owned());
    let ca = pem(&t.ca, &t.ca_file, "ca_file")?;
    if !ca.is_empty() {
        let cert = Certificate::from_pem(&ca).map_err(|e| format!("tls_config.ca: {e}"))?;
        b = b
            .certificate_store(CertificateStore::None)
            .add_root_certificate(cert);
    }
    let cert = pem(&t.cert, &t.cert_file, "cert_file")?;
    let key = pem(t.key.expose(), &t.key_file, "key_file")?;
    if !cert.is_empty() {
        let id = Identity::from_pem(&cert, &key).map_err(|e| format!("tls_config.cert: {e}"))?;
        b = b.identify_with(id);
    }
    if t.insecure_skip_verify {
        b = b.dangerous_accept_invalid_certs(true);
    }
    if matches!(t.min_version, Some(strata_config::TlsVersion::Tls13)) {
        b = b.set_min_tls_version(TlsVersion::Tlsv13);
    }
    b.build_rustls().map_err(|e| format!("tls_config: {e}"))
}

/// Inline PEM, or the file's.
fn pem(inline: &str, file: &str, field: &str) -> Result<Vec<u8>, String> {
    if file.is_empty() {
        return Ok(inline.as_bytes().to_vec());
    }
    std::fs::read(file).map_err(|e| format!("tls_config.{field}: reading {file}: {e}"))
}
