//! The `global` block: defaults the receivers and the alert store fall back to (`smtp_*`
//! for email, `opsgenie_*`, `telegram_*`, `webex_api_url`, `slack_api_url`, `pagerduty_url`,
//! `http_config`). Keys of receiver kinds Strata does not deliver to (`wechat_*`,
//! `victorops_*`, …) are accepted and kept opaque so existing files load.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, Serializer};
use serde_yaml_ng::Value;

use super::duration::Duration;
use super::error::ConfigError;
use super::locate::Locator;
use super::scalar::{self, url};
use super::secret;

/// Alertmanager's default PagerDuty Events API URL.
pub const DEFAULT_PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Alertmanager's default `opsgenie_api_url`.
pub const DEFAULT_OPSGENIE_URL: &str = "https://api.opsgenie.com/";

/// Alertmanager's default `telegram_api_url`.
pub const DEFAULT_TELEGRAM_URL: &str = "https://api.telegram.org";

/// Alertmanager's default `webex_api_url`.
pub const DEFAULT_WEBEX_URL: &str = "https://webexapis.com/v1/messages";

/// `global` keys of receiver kinds Strata does not deliver to, kept opaque.
const OPAQUE_KEYS: &str = "wechat_api_url wechat_api_secret wechat_api_secret_file \
    wechat_api_corp_id victorops_api_url victorops_api_key victorops_api_key_file \
    jira_api_url rocketchat_api_url rocketchat_token rocketchat_token_file rocketchat_token_id \
    rocketchat_token_id_file";

/// The `global` block.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct GlobalConfig {
    /// `resolve_timeout` (5m): an alert not updated for this long is resolved.
    #[serde(default = "default_resolve_timeout")]
    pub resolve_timeout: Duration,
    /// `http_config`, opaque; receivers without their own inherit it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "secret::masked"
    )]
    pub http_config: Option<Value>,
    /// `slack_api_url` (secret).
    #[serde(
        default,
        deserialize_with = "url",
        serialize_with = "secret::secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub slack_api_url: Option<String>,
    /// `slack_api_url_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_api_url_file: Option<String>,
    /// `pagerduty_url`.
    #[serde(default = "default_pagerduty_url")]
    pub pagerduty_url: String,
    /// The `smtp_*` defaults of `email_configs`.
    #[serde(flatten)]
    pub smtp: SmtpGlobals,
    /// `opsgenie_api_url` (`https://api.opsgenie.com/`).
    #[serde(default = "default_opsgenie_url", deserialize_with = "required_url")]
    pub opsgenie_api_url: String,
    /// `opsgenie_api_key` (secret).
    #[serde(
        default,
        serialize_with = "secret::secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub opsgenie_api_key: Option<String>,
    /// `opsgenie_api_key_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opsgenie_api_key_file: Option<String>,
    /// `telegram_api_url` (`https://api.telegram.org`).
    #[serde(default = "default_telegram_url", deserialize_with = "required_url")]
    pub telegram_api_url: String,
    /// `telegram_bot_token` (secret).
    #[serde(
        default,
        serialize_with = "secret::secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub telegram_bot_token: Option<String>,
    /// `telegram_bot_token_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telegram_bot_token_file: Option<String>,
    /// `webex_api_url` (`https://webexapis.com/v1/messages`).
    #[serde(default = "default_webex_url", deserialize_with = "required_url")]
    pub webex_api_url: String,
    /// Other known keys (`wechat_*`, `victorops_*`, …), opaque.
    #[serde(flatten, serialize_with = "masked_map")]
    pub other: BTreeMap<String, Value>,
}

impl Default for GlobalConfig {
    fn default() -> GlobalConfig {
        GlobalConfig {
            resolve_timeout: default_resolve_timeout(),
            http_config: None,
            slack_api_url: None,
            slack_api_url_file: None,
            pagerduty_url: default_pagerduty_url(),
            smtp: SmtpGlobals::default(),
            opsgenie_api_url: default_opsgenie_url(),
            opsgenie_api_key: None,
            opsgenie_api_key_file: None,
            telegram_api_url: default_telegram_url(),
            telegram_bot_token: None,
            telegram_bot_token_file: None,
            webex_api_url: default_webex_url(),
            other: BTreeMap::new(),
        }
    }
}

impl GlobalConfig {
    /// Alertmanager's checks on `global`, plus strictness for the opaque keys.
    pub(super) fn validate(&self, loc: &Locator<'_>) -> Result<(), ConfigError> {
        if let Some(k) = self
            .other
            .keys()
            .find(|k| !OPAQUE_KEYS.split_whitespace().any(|o| o == *k))
        {
            return Err(loc.err(&format!("global.{k}"), format!("unknown field `{k}`")));
        }
        for (a, b, both) in [
            (
                self.slack_api_url.is_some(),
                self.slack_api_url_file.is_some(),
                "slack_api_url",
            ),
            (
                self.opsgenie_api_key.is_some(),
                self.opsgenie_api_key_file.is_some(),
                "opsgenie_api_key",
            ),
            (
                self.telegram_bot_token.is_some(),
                self.telegram_bot_token_file.is_some(),
                "telegram_bot_token",
            ),
            (
                self.smtp.smtp_auth_password.is_some(),
                self.smtp.smtp_auth_password_file.is_some(),
                "smtp_auth_password",
            ),
        ] {
            if a && b {
                let msg = format!("at most one of {both} & {both}_file must be configured");
                return Err(loc.err(&format!("global.{both}"), msg));
            }
        }
        self.smtp.validate(loc)?;
        scalar::check_url(&self.pagerduty_url).map_err(|e| loc.err("global.pagerduty_url", e))
    }
}

/// The `smtp_*` keys of `global`: defaults of every `email_configs` entry.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct SmtpGlobals {
    /// `smtp_from`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_from: Option<String>,
    /// `smtp_hello` (`localhost`).
    #[serde(default = "default_hello")]
    pub smtp_hello: String,
    /// `smtp_smarthost` (`host:port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_smarthost: Option<String>,
    /// `smtp_auth_username`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_username: Option<String>,
    /// `smtp_auth_password` (secret).
    #[serde(
        default,
        serialize_with = "secret::secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub smtp_auth_password: Option<String>,
    /// `smtp_auth_password_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_password_file: Option<String>,
    /// `smtp_auth_identity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_identity: Option<String>,
    /// `smtp_auth_secret`: refused (CRAM-MD5 is not supported).
    #[serde(
        default,
        serialize_with = "secret::secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub smtp_auth_secret: Option<String>,
    /// `smtp_auth_secret_file`: refused (CRAM-MD5 is not supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_secret_file: Option<String>,
    /// `smtp_require_tls` (true).
    #[serde(default = "default_true")]
    pub smtp_require_tls: bool,
    /// `smtp_tls_config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_tls_config: Option<strata_config::TlsConfig>,
    /// `smtp_force_implicit_tls` (unset: implicit TLS on port 465).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_force_implicit_tls: Option<bool>,
}

impl Default for SmtpGlobals {
    fn default() -> SmtpGlobals {
        SmtpGlobals {
            smtp_from: None,
            smtp_hello: default_hello(),
            smtp_smarthost: None,
            smtp_auth_username: None,
            smtp_auth_password: None,
            smtp_auth_password_file: None,
            smtp_auth_identity: None,
            smtp_auth_secret: None,
            smtp_auth_secret_file: None,
            smtp_require_tls: true,
            smtp_tls_config: None,
            smtp_force_implicit_tls: None,
        }
    }
}

impl SmtpGlobals {
    /// What Strata cannot act on is refused, naming the key.
    fn validate(&self, loc: &Locator<'_>) -> Result<(), ConfigError> {
        for (set, key) in [
            (self.smtp_auth_secret.is_some(), "smtp_auth_secret"),
            (
                self.smtp_auth_secret_file.is_some(),
                "smtp_auth_secret_file",
            ),
        ] {
            if set {
                let msg = "CRAM-MD5 authentication is not supported by Strata \
                           (use smtp_auth_password for PLAIN/LOGIN)";
                return Err(loc.err(&format!("global.{key}"), msg));
            }
        }
        if let Some(h) = &self.smtp_smarthost {
            crate::notifier::send::split_host_port(h)
                .map_err(|e| loc.err("global.smtp_smarthost", e))?;
        }
        if let Some(t) = &self.smtp_tls_config {
            crate::notifier::send::check_smtp_tls(t)
                .map_err(|e| loc.err(&format!("global.smtp_tls_config.{}", e.0), e.1))?;
        }
        Ok(())
    }
}

fn default_hello() -> String {
    "localhost".to_owned()
}

fn default_true() -> bool {
    true
}

fn default_opsgenie_url() -> String {
    DEFAULT_OPSGENIE_URL.to_owned()
}

fn default_telegram_url() -> String {
    DEFAULT_TELEGRAM_URL.to_owned()
}

fn default_webex_url() -> String {
    DEFAULT_WEBEX_URL.to_owned()
}

/// A URL that must be set when the key is written.
fn required_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    url(d)?.ok_or_else(|| serde::de::Error::custom("missing URL"))
}

fn default_resolve_timeout() -> Duration {
    Duration(5 * 60_000)
}

fn default_pagerduty_url() -> String {
    DEFAULT_PAGERDUTY_URL.to_owned()
}

fn masked_map<S: Serializer>(m: &BTreeMap<String, Value>, s: S) -> Result<S::Ok, S::Error> {
    let v: serde_yaml_ng::Mapping = m
        .iter()
        .map(|(k, v)| (Value::String(k.clone()), v.clone()))
        .collect();
    secret::mask(&Value::Mapping(v)).serialize(s)
}
