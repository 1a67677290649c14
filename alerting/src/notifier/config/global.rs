//! The `global` block: defaults the receivers and the alert store fall back to. Keys of
//! receiver kinds Strata does not deliver to (`smtp_*`, `opsgenie_*`, …) are accepted and
//! kept opaque so existing files load.

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

/// `global` keys kept opaque.
const OPAQUE_KEYS: &str = "smtp_from smtp_hello smtp_smarthost smtp_auth_username \
    smtp_auth_password smtp_auth_password_file smtp_auth_secret smtp_auth_secret_file \
    smtp_auth_identity smtp_require_tls smtp_tls_config opsgenie_api_url opsgenie_api_key \
    opsgenie_api_key_file wechat_api_url wechat_api_secret wechat_api_corp_id \
    victorops_api_url victorops_api_key victorops_api_key_file telegram_api_url webex_api_url \
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
    /// Other known keys (`smtp_*`, `opsgenie_*`, …), opaque.
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
        if self.slack_api_url.is_some() && self.slack_api_url_file.is_some() {
            let msg = "at most one of slack_api_url & slack_api_url_file must be configured";
            return Err(loc.err("global.slack_api_url", msg));
        }
        scalar::check_url(&self.pagerduty_url).map_err(|e| loc.err("global.pagerduty_url", e))
    }
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
