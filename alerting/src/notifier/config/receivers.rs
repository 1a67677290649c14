//! Receivers: named sets of webhook, Slack and PagerDuty notifier configurations with
//! Alertmanager's defaults, global fallbacks and checks. Other Alertmanager receiver kinds
//! are rejected, never silently ignored.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use super::duration::Duration;
use super::error::ConfigError;
use super::global::GlobalConfig;
use super::locate::Locator;
use super::scalar::{or_default, string_map, url};
use super::secret::{masked, secret};

/// The receiver kinds Strata delivers to.
pub const SUPPORTED_KINDS: &str = "webhook_configs, slack_configs, pagerduty_configs";

/// A named receiver; fields are the YAML keys.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Receiver {
    /// `name`, unique.
    pub name: String,
    #[serde(deserialize_with = "or_default", skip_serializing_if = "Vec::is_empty")]
    pub webhook_configs: Vec<WebhookConfig>,
    #[serde(deserialize_with = "or_default", skip_serializing_if = "Vec::is_empty")]
    pub slack_configs: Vec<SlackConfig>,
    #[serde(deserialize_with = "or_default", skip_serializing_if = "Vec::is_empty")]
    pub pagerduty_configs: Vec<PagerdutyConfig>,
}

/// `webhook_configs` entry; fields are the YAML keys.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// `send_resolved` (true).
    pub send_resolved: bool,
    /// `http_config`, opaque (the global one when unset).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "masked")]
    pub http_config: Option<Value>,
    /// `url` (secret); exactly one of `url` and `url_file` is set.
    #[serde(
        deserialize_with = "url",
        serialize_with = "secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_file: Option<String>,
    /// `max_alerts` (0 = all).
    pub max_alerts: u64,
    /// `timeout` (0 = none).
    pub timeout: Duration,
}

impl Default for WebhookConfig {
    fn default() -> WebhookConfig {
        WebhookConfig {
            send_resolved: true,
            http_config: None,
            url: None,
            url_file: None,
            max_alerts: 0,
            timeout: Duration(0),
        }
    }
}

/// `slack_configs` entry; fields are the YAML keys, text fields Go templates.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackConfig {
    /// `send_resolved` (false).
    pub send_resolved: bool,
    /// `http_config`, opaque (the global one when unset).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "masked")]
    pub http_config: Option<Value>,
    /// `api_url` (secret); after loading, set unless `api_url_file` is (global fallback).
    #[serde(
        deserialize_with = "url",
        serialize_with = "secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub api_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url_file: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub channel: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    pub color: String,
    pub title: String,
    pub title_link: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pretext: String,
    pub text: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<SlackField>,
    pub short_fields: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub footer: String,
    pub fallback: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub callback_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub icon_emoji: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub icon_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub thumb_url: String,
    pub link_names: bool,
    pub mrkdwn_in: Vec<String>,
    /// `actions`, opaque.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Value>,
}

impl Default for SlackConfig {
    fn default() -> SlackConfig {
        let t = |name: &str| format!("{{{{ template \"slack.default.{name}\" . }}}}");
        SlackConfig {
            send_resolved: false,
            http_config: None,
            api_url: None,
            api_url_file: None,
            channel: String::new(),
            username: String::new(),
            color: r#"{{ if eq .Status "firing" }}danger{{ else }}good{{ end }}"#.to_owned(),
            title: t("title"),
            title_link: t("titlelink"),
            pretext: String::new(),
            text: t("text"),
            fields: Vec::new(),
            short_fields: false,
            footer: String::new(),
            fallback: t("fallback"),
            callback_id: String::new(),
            icon_emoji: String::new(),
            icon_url: String::new(),
            image_url: String::new(),
            thumb_url: String::new(),
            link_names: false,
            mrkdwn_in: ["fallback", "pretext", "text"].map(String::from).to_vec(),
            actions: Vec::new(),
        }
    }
}

/// A Slack attachment field.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackField {
    /// `title` (required).
    pub title: String,
    /// `value` (required).
    pub value: String,
    /// `short` (the config's `short_fields` when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub short: Option<bool>,
}

/// `pagerduty_configs` entry; fields are the YAML keys, text fields Go templates.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PagerdutyConfig {
    /// `send_resolved` (true).
    pub send_resolved: bool,
    /// `http_config`, opaque (the global one when unset).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "masked")]
    pub http_config: Option<Value>,
    /// `routing_key` (Events API v2, secret).
    #[serde(serialize_with = "secret", skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_key_file: Option<String>,
    /// `service_key` (Events API v1, secret).
    #[serde(serialize_with = "secret", skip_serializing_if = "Option::is_none")]
    pub service_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_key_file: Option<String>,
    /// `url`; always set after loading (global `pagerduty_url` fallback).
    #[serde(deserialize_with = "url", skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub client: String,
    pub client_url: String,
    pub description: String,
    /// `details`, with Alertmanager's default entries added for missing keys.
    #[serde(deserialize_with = "string_map")]
    pub details: BTreeMap<String, String>,
    /// `images`, opaque.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Value>,
    /// `links`, opaque.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Value>,
    /// `source` (`client` when unset).
    pub source: String,
    pub severity: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub class: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub component: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
}

impl Default for PagerdutyConfig {
    fn default() -> PagerdutyConfig {
        PagerdutyConfig {
            send_resolved: true,
            http_config: None,
            routing_key: None,
            routing_key_file: None,
            service_key: None,
            service_key_file: None,
            url: None,
            client: r#"{{ template "pagerduty.default.client" . }}"#.to_owned(),
            client_url: r#"{{ template "pagerduty.default.clientURL" . }}"#.to_owned(),
            description: r#"{{ template "pagerduty.default.description" .}}"#.to_owned(),
            details: BTreeMap::new(),
            images: Vec::new(),
            links: Vec::new(),
            source: String::new(),
            severity: "error".to_owned(),
            class: String::new(),
            component: String::new(),
            group: String::new(),
        }
    }
}

/// Alertmanager's default PagerDuty `details`.
const PAGERDUTY_DETAILS: [(&str, &str); 4] = [
    (
        "firing",
        r#"{{ template "pagerduty.default.instances" .Alerts.Firing }}"#,
    ),
    (
        "resolved",
        r#"{{ template "pagerduty.default.instances" .Alerts.Resolved }}"#,
    ),
    ("num_firing", "{{ .Alerts.Firing | len }}"),
    ("num_resolved", "{{ .Alerts.Resolved | len }}"),
];

/// Rejects receiver kinds Strata does not deliver to (any `*_configs` key other than
/// [`SUPPORTED_KINDS`]) at their key, before the typed parse would call them unknown.
pub(super) fn reject_unsupported(raw: &Value, loc: &Locator<'_>) -> Result<(), ConfigError> {
    let list = raw.get("receivers").and_then(Value::as_sequence);
    for (i, r) in list.into_iter().flatten().enumerate() {
        let keys = r.as_mapping().into_iter().flat_map(|m| m.keys());
        let kind = keys
            .filter_map(Value::as_str)
            .find(|k| k.ends_with("_configs") && !SUPPORTED_KINDS.split(", ").any(|s| s == *k));
        if let Some(kind) = kind {
            let msg = format!("{kind} is not supported by Strata (supported: {SUPPORTED_KINDS})");
            return Err(loc.err(&format!("receivers[{i}].{kind}"), msg));
        }
    }
    Ok(())
}

/// Checks the receivers, applies global fallbacks; returns the receiver names.
pub(super) fn resolve(
    receivers: &mut [Receiver],
    global: &GlobalConfig,
    loc: &Locator<'_>,
) -> Result<HashSet<String>, ConfigError> {
    let mut names = HashSet::new();
    for (i, r) in receivers.iter_mut().enumerate() {
        let p = format!("receivers[{i}]");
        if r.name.is_empty() {
            return Err(loc.err(&p, "missing name in receiver"));
        }
        if !names.insert(r.name.clone()) {
            let msg = format!("notification config name {:?} is not unique", r.name);
            return Err(loc.err_at(&p, &format!("{p}.name"), msg));
        }
        let http = |own: &mut Option<Value>| {
            if own.is_none() {
                own.clone_from(&global.http_config);
            }
        };
        for (j, c) in r.webhook_configs.iter_mut().enumerate() {
            let p = format!("{p}.webhook_configs[{j}]");
            http(&mut c.http_config);
            match (&c.url, &c.url_file) {
                (None, None) => {
                    return Err(loc.err(&p, "one of url or url_file must be configured"));
                }
                (Some(_), Some(_)) => {
                    return Err(loc.err(&p, "at most one of url & url_file must be configured"));
                }
                _ => {}
            }
        }
        for (j, c) in r.slack_configs.iter_mut().enumerate() {
            let p = format!("{p}.slack_configs[{j}]");
            http(&mut c.http_config);
            if c.api_url.is_some() && c.api_url_file.is_some() {
                let msg = "at most one of api_url & api_url_file must be configured";
                return Err(loc.err(&p, msg));
            }
            if c.api_url.is_none() && c.api_url_file.is_none() {
                if global.slack_api_url.is_none() && global.slack_api_url_file.is_none() {
                    let msg = format!(
                        "receiver {:?}: no Slack API URL set: set api_url or api_url_file, \
                         or global slack_api_url or slack_api_url_file",
                        r.name
                    );
                    return Err(loc.err(&p, msg));
                }
                c.api_url.clone_from(&global.slack_api_url);
                c.api_url_file.clone_from(&global.slack_api_url_file);
            }
            if let Some(k) = c
                .fields
                .iter()
                .position(|f| f.title.is_empty() || f.value.is_empty())
            {
                let msg = "missing title or value in Slack field configuration";
                return Err(loc.err(&format!("{p}.fields[{k}]"), msg));
            }
        }
        for (j, c) in r.pagerduty_configs.iter_mut().enumerate() {
            let p = format!("{p}.pagerduty_configs[{j}]");
            http(&mut c.http_config);
            check_pagerduty_keys(c).map_err(|e| loc.err(&p, e))?;
            if c.url.is_none() {
                c.url = Some(global.pagerduty_url.clone());
            }
            if c.source.is_empty() {
                c.source.clone_from(&c.client);
            }
            for (k, v) in PAGERDUTY_DETAILS {
                c.details
                    .entry(k.to_owned())
                    .or_insert_with(|| v.to_owned());
            }
        }
    }
    Ok(names)
}

/// Exactly one key kind: `routing_key[_file]` (Events v2) or `service_key[_file]` (v1).
fn check_pagerduty_keys(c: &PagerdutyConfig) -> Result<(), &'static str> {
    let v2 = c.routing_key.is_some() || c.routing_key_file.is_some();
    let v1 = c.service_key.is_some() || c.service_key_file.is_some();
    if !v1 && !v2 {
        return Err("missing service or routing key in PagerDuty config");
    }
    if v1 && v2 {
        return Err("set either routing_key/routing_key_file (Events API v2) \
                    or service_key/service_key_file (v1), not both");
    }
    if c.routing_key.is_some() && c.routing_key_file.is_some() {
        return Err("at most one of routing_key & routing_key_file must be configured");
    }
    if c.service_key.is_some() && c.service_key_file.is_some() {
        return Err("at most one of service_key & service_key_file must be configured");
    }
    Ok(())
}
