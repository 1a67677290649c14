//! `pagerduty_configs`: Events API v2 (`routing_key`) as Alertmanager sends it — `trigger` while any
//! alert of the group fires, `resolve` when all are resolved, with `dedup_key` the SHA-256
//! of the group key so PagerDuty folds every notification of a group into one incident;
//! summary, source, severity, class/component/group and `custom_details` from templates.
//! `service_key` configurations use the Events API v1 the same way. An acknowledgement of
//! the group is forwarded as `event_action: acknowledge` with the same `dedup_key`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::http::{post_json, read_secret_file, truncate};
use super::integration::{AckNotice, Context, FieldError, Integration, SendError};
use crate::notifier::config::scalar::{string_map, url};
use crate::notifier::config::secret::{masked, secret};
use crate::notifier::config::{DEFAULT_PAGERDUTY_URL, GlobalConfig};

/// Events API v1 endpoint (for `service_key`).
const EVENTS_V1_URL: &str = "https://events.pagerduty.com/generic/2010-04-15/create_event.json";

/// PagerDuty's limit on an event, in bytes.
const MAX_EVENT_BYTES: usize = 512_000;

/// PagerDuty's limit on the summary, in characters.
const MAX_SUMMARY: usize = 1024;

/// `dedup_key`: hex SHA-256 of the group key (Alertmanager's `notify.Key.Hash`).
pub(crate) fn dedup_key(group_key: &str) -> String {
    let d = Sha256::digest(group_key.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// `pagerduty_configs` entry; fields are the YAML keys, text fields Go templates.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PagerdutyConfig {
    /// `send_resolved` (true).
    pub send_resolved: bool,
    /// `http_config`, opaque (the global one when unset).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "masked")]
    pub http_config: Option<serde_yaml_ng::Value>,
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
    pub images: Vec<serde_yaml_ng::Value>,
    /// `links`, opaque.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<serde_yaml_ng::Value>,
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

#[async_trait::async_trait]
impl Integration for PagerdutyConfig {
    fn kind(&self) -> &'static str {
        "pagerduty"
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn resolve(&mut self, global: &GlobalConfig) -> Result<(), FieldError> {
        if self.http_config.is_none() {
            self.http_config.clone_from(&global.http_config);
        }
        check_pagerduty_keys(self).map_err(FieldError::entry)?;
        if self.url.is_none() {
            self.url = Some(global.pagerduty_url.clone());
        }
        if self.source.is_empty() {
            self.source.clone_from(&self.client);
        }
        for (k, v) in PAGERDUTY_DETAILS {
            self.details
                .entry(k.to_owned())
                .or_insert_with(|| v.to_owned());
        }
        Ok(())
    }

    fn http_config(&self) -> Option<Option<&serde_yaml_ng::Value>> {
        Some(self.http_config.as_ref())
    }

    async fn notify(&self, cx: &Context<'_>) -> Result<(), SendError> {
        let (body, url) = message(self, cx)?;
        post_json(cx.http()?, &url, &body, None).await.map(|_| ())
    }

    fn supports_ack(&self) -> bool {
        true
    }

    async fn acknowledge(&self, cx: &Context<'_>, ack: &AckNotice<'_>) -> Result<(), SendError> {
        let (body, url) = ack_message(self, cx, ack)?;
        post_json(cx.http()?, &url, &body, None).await.map(|_| ())
    }
}

/// The acknowledge event (same `dedup_key` / `incident_key` as the trigger) and its URL.
fn ack_message(
    cfg: &PagerdutyConfig,
    cx: &Context<'_>,
    ack: &AckNotice<'_>,
) -> Result<(Value, String), SendError> {
    let key = dedup_key(cx.n.group_key);
    let v1_key = match (&cfg.service_key, &cfg.service_key_file) {
        (Some(k), _) => Some(k.clone()),
        (None, Some(f)) => Some(read_secret_file(f)?),
        (None, None) => None,
    };
    let what = format!("acknowledged by {}: {}", ack.user, ack.note);
    if let Some(service_key) = v1_key {
        let ev = json!({
            "service_key": service_key,
            "incident_key": key,
            "event_type": "acknowledge",
            "description": truncate(&what, MAX_SUMMARY),
        });
        return Ok((ev, EVENTS_V1_URL.to_owned()));
    }
    let routing_key = match (&cfg.routing_key, &cfg.routing_key_file) {
        (Some(k), _) => k.clone(),
        (None, Some(f)) => read_secret_file(f)?,
        (None, None) => return Err(SendError::fatal("pagerduty without routing_key")),
    };
    let ev = json!({
        "routing_key": routing_key,
        "dedup_key": key,
        "event_action": "acknowledge",
    });
    let url = cfg
        .url
        .clone()
        .unwrap_or_else(|| DEFAULT_PAGERDUTY_URL.to_owned());
    Ok((ev, url))
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

/// The event and the URL it goes to.
fn message(cfg: &PagerdutyConfig, cx: &Context<'_>) -> Result<(Value, String), SendError> {
    let data = cx.data();
    let r = |field: &str, text: &str| cx.render(field, text, &data);
    let resolved = data.status == "resolved";
    let key = dedup_key(cx.n.group_key);
    let mut details = Map::new();
    for (k, v) in &cfg.details {
        details.insert(k.clone(), Value::String(r(&format!("details.{k}"), v)?));
    }
    let description = r("description", &cfg.description)?;
    let client = r("client", &cfg.client)?;
    let client_url = r("client_url", &cfg.client_url)?;
    let v1_key = match (&cfg.service_key, &cfg.service_key_file) {
        (Some(k), _) => Some(k.clone()),
        (None, Some(f)) => Some(read_secret_file(f)?),
        (None, None) => None,
    };
    if let Some(service_key) = v1_key {
        let mut ev = json!({
            "service_key": service_key,
            "incident_key": key,
            "event_type": if resolved { "resolve" } else { "trigger" },
            "description": truncate(&description, MAX_SUMMARY),
        });
        if !resolved {
            ev["client"] = Value::String(client);
            ev["client_url"] = Value::String(client_url);
            ev["details"] = Value::Object(details);
        }
        return Ok((ev, EVENTS_V1_URL.to_owned()));
    }
    let routing_key = match (&cfg.routing_key, &cfg.routing_key_file) {
        (Some(k), _) => k.clone(),
        (None, Some(f)) => read_secret_file(f)?,
        (None, None) => return Err(SendError::fatal("pagerduty without routing_key")),
    };
    let severity = r("severity", &cfg.severity)?;
    let mut source = r("source", &cfg.source)?;
    if source.is_empty() {
        source.clone_from(&client);
    }
    let mut payload = json!({
        "summary": truncate(&description, MAX_SUMMARY),
        "source": source,
        "severity": severity,
        "custom_details": details,
    });
    for (key, text) in [
        ("class", &cfg.class),
        ("component", &cfg.component),
        ("group", &cfg.group),
    ] {
        let v = r(key, text)?;
        if !v.is_empty() {
            payload[key] = Value::String(v);
        }
    }
    let mut ev = json!({
        "routing_key": routing_key,
        "dedup_key": key,
        "event_action": if resolved { "resolve" } else { "trigger" },
        "payload": payload,
    });
    if !client.is_empty() {
        ev["client"] = Value::String(client);
    }
    if !client_url.is_empty() {
        ev["client_url"] = Value::String(client_url);
    }
    for (key, list) in [("images", &cfg.images), ("links", &cfg.links)] {
        if !list.is_empty() {
            ev[key] = serde_json::to_value(list)
                .map_err(|e| SendError::fatal(format!("pagerduty {key}: {e}")))?;
        }
    }
    // PagerDuty refuses events over 512 KB: drop the details, as Alertmanager does.
    if ev.to_string().len() > MAX_EVENT_BYTES {
        ev["payload"]["custom_details"] = json!({
            "error": "Custom details have been removed because the original event exceeds the maximum size of 512KB"
        });
    }
    let url = cfg
        .url
        .clone()
        .unwrap_or_else(|| DEFAULT_PAGERDUTY_URL.to_owned());
    Ok((ev, url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_key_is_sha256_of_the_group_key() {
        // sha256("") and the probe's formula.
        assert_eq!(
            dedup_key(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(dedup_key("{}:{}").len(), 64);
    }
}
