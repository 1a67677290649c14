//! `email_configs` entries: Alertmanager's fields and defaults (`send_resolved: false`, the
//! `email.default.html` body), the `smtp_*` fallbacks of `global`, and the checks at load —
//! `to`, `from` and `smarthost` required, header names canonical and unique, TLS settings
//! the SMTP client can honour. CRAM-MD5 (`auth_secret`) is refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use strata_config::{TlsConfig, TlsVersion};

use crate::notifier::config::GlobalConfig;
use crate::notifier::config::scalar::string_map;
use crate::notifier::config::secret::secret;
use crate::notifier::send::FieldError;

/// Alertmanager's default `Subject` header.
pub(super) const DEFAULT_SUBJECT: &str = r#"{{ template "email.default.subject" . }}"#;

/// `email_configs` entry; fields are the YAML keys, text fields Go templates.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    /// `send_resolved` (false).
    pub send_resolved: bool,
    /// `to`: the recipients (template), required.
    pub to: String,
    /// `from` (template; global `smtp_from`).
    pub from: String,
    /// `hello`: the EHLO name (global `smtp_hello`, `localhost`).
    pub hello: String,
    /// `smarthost`: `host:port` (global `smtp_smarthost`).
    pub smarthost: String,
    /// `auth_username` (global `smtp_auth_username`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub auth_username: String,
    /// `auth_password` (secret; global `smtp_auth_password`).
    #[serde(serialize_with = "secret", skip_serializing_if = "Option::is_none")]
    pub auth_password: Option<String>,
    /// `auth_password_file` (global `smtp_auth_password_file`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_password_file: Option<String>,
    /// `auth_secret`: CRAM-MD5, refused.
    #[serde(serialize_with = "secret", skip_serializing_if = "Option::is_none")]
    pub auth_secret: Option<String>,
    /// `auth_secret_file`: CRAM-MD5, refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_secret_file: Option<String>,
    /// `auth_identity`: the PLAIN authorization identity (global `smtp_auth_identity`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub auth_identity: String,
    /// `headers`: header name (canonical after loading) to template.
    #[serde(
        deserialize_with = "string_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub headers: BTreeMap<String, String>,
    /// `html`: the HTML part (`html/template`); none when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub html: String,
    /// `text`: the plain-text part; none when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// `require_tls` (global `smtp_require_tls`, true): STARTTLS required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_tls: Option<bool>,
    /// `tls_config` (global `smtp_tls_config`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    /// `force_implicit_tls` (unset: implicit TLS when the smarthost port is 465).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_implicit_tls: Option<bool>,
}

impl Default for EmailConfig {
    fn default() -> EmailConfig {
        EmailConfig {
            send_resolved: false,
            to: String::new(),
            from: String::new(),
            hello: String::new(),
            smarthost: String::new(),
            auth_username: String::new(),
            auth_password: None,
            auth_password_file: None,
            auth_secret: None,
            auth_secret_file: None,
            auth_identity: String::new(),
            headers: BTreeMap::new(),
            html: r#"{{ template "email.default.html" . }}"#.to_owned(),
            text: String::new(),
            require_tls: None,
            tls_config: None,
            force_implicit_tls: None,
        }
    }
}

impl EmailConfig {
    /// Alertmanager's checks and the `global` fallbacks.
    pub(super) fn resolve_with(&mut self, global: &GlobalConfig) -> Result<(), FieldError> {
        if self.to.is_empty() {
            return Err(FieldError::at("to", "missing to address in email config"));
        }
        let mut canonical = BTreeMap::new();
        for (h, v) in std::mem::take(&mut self.headers) {
            let c = canonical_header(&h);
            if canonical.insert(c.clone(), v).is_some() {
                let msg = format!("duplicate header {c:?} in email config");
                return Err(FieldError::at("headers", msg));
            }
        }
        self.headers = canonical;
        for (set, field) in [
            (self.auth_secret.is_some(), "auth_secret"),
            (self.auth_secret_file.is_some(), "auth_secret_file"),
        ] {
            if set {
                return Err(FieldError::at(
                    field,
                    "CRAM-MD5 authentication is not supported by Strata \
                     (use auth_password for PLAIN/LOGIN)",
                ));
            }
        }
        if self.auth_password.is_some() && self.auth_password_file.is_some() {
            return Err(FieldError::at(
                "auth_password",
                "at most one of auth_password & auth_password_file must be configured",
            ));
        }
        let g = &global.smtp;
        if self.tls_config.is_none() {
            self.tls_config.clone_from(&g.smtp_tls_config);
        }
        fallback(&mut self.smarthost, g.smtp_smarthost.as_ref());
        if self.smarthost.is_empty() {
            return Err(FieldError::at("smarthost", "no global SMTP smarthost set"));
        }
        split_host_port(&self.smarthost).map_err(|e| FieldError::at("smarthost", e))?;
        fallback(&mut self.from, g.smtp_from.as_ref());
        if self.from.is_empty() {
            return Err(FieldError::at("from", "no global SMTP from set"));
        }
        fallback(&mut self.hello, Some(&g.smtp_hello));
        fallback(&mut self.auth_username, g.smtp_auth_username.as_ref());
        if self.auth_password.is_none() && self.auth_password_file.is_none() {
            self.auth_password.clone_from(&g.smtp_auth_password);
            self.auth_password_file
                .clone_from(&g.smtp_auth_password_file);
        }
        fallback(&mut self.auth_identity, g.smtp_auth_identity.as_ref());
        if self.require_tls.is_none() {
            self.require_tls = Some(g.smtp_require_tls);
        }
        if self.force_implicit_tls.is_none() {
            self.force_implicit_tls = g.smtp_force_implicit_tls;
        }
        if let Some(t) = &self.tls_config {
            check_smtp_tls(t)
                .map_err(|(f, msg)| FieldError::at(&format!("tls_config.{f}"), msg))?;
        }
        Ok(())
    }

    /// The smarthost's host and port (checked at load).
    pub(super) fn host_port(&self) -> Result<(String, u16), String> {
        split_host_port(&self.smarthost)
    }
}

/// `own` set to the global value when empty.
fn fallback(own: &mut String, global: Option<&String>) {
    if own.is_empty()
        && let Some(g) = global
    {
        own.clone_from(g);
    }
}

/// Go's `textproto.CanonicalMIMEHeaderKey`: `message-id` → `Message-Id`.
fn canonical_header(h: &str) -> String {
    let valid = h
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return h.to_owned();
    }
    let mut upper = true;
    h.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

/// `host:port` (`[v6]:port`) as Go's `net.SplitHostPort`, the port numeric.
pub fn split_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest
            .split_once("]:")
            .ok_or_else(|| format!("address {s}: missing port in address"))?;
        (h, p)
    } else {
        let (h, p) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("address {s}: missing port in address"))?;
        if h.contains(':') {
            return Err(format!("address {s}: too many colons in address"));
        }
        (h, p)
    };
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("address {s}: invalid port {port:?}"))?;
    Ok((host.to_owned(), port))
}

/// What of a `tls_config` the SMTP client cannot honour: `(field, why)`.
pub fn check_smtp_tls(t: &TlsConfig) -> Result<(), (&'static str, String)> {
    if t.max_version.is_some() {
        return Err((
            "max_version",
            "not supported for email by Strata (its TLS client cannot cap the version)".into(),
        ));
    }
    if matches!(t.min_version, Some(TlsVersion::Tls10 | TlsVersion::Tls11)) {
        return Err((
            "min_version",
            "TLS versions below 1.2 are not supported for email by Strata".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_and_smarthosts() {
        assert_eq!(canonical_header("message-id"), "Message-Id");
        assert_eq!(canonical_header("X-CUSTOM"), "X-Custom");
        assert_eq!(
            split_host_port("smtp.example.org:587"),
            Ok(("smtp.example.org".to_owned(), 587))
        );
        assert_eq!(split_host_port("[::1]:25"), Ok(("::1".to_owned(), 25)));
        assert!(split_host_port("smtp.example.org").is_err());
        assert!(split_host_port("h:x").is_err());
    }
}
