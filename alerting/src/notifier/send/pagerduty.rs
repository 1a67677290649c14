//! PagerDuty: Events API v2 (`routing_key`) as Alertmanager sends it — `trigger` while any
//! alert of the group fires, `resolve` when all are resolved, with `dedup_key` the SHA-256
//! of the group key so PagerDuty folds every notification of a group into one incident;
//! summary, source, severity, class/component/group and `custom_details` from templates.
//! `service_key` configurations use the Events API v1 the same way.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use strata_ingest::http_client::HttpClient;

use super::{Notification, SendError, post_json, read_secret_file, render_field, truncate};
use crate::notifier::config::PagerdutyConfig;
use crate::notifier::render::{Renderer, notify_data};

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

pub(super) async fn send(
    http: &HttpClient,
    cfg: &PagerdutyConfig,
    n: &Notification<'_>,
    tmpl: &Renderer,
) -> Result<(), SendError> {
    let (body, url) = message(cfg, n, tmpl)?;
    post_json(http, &url, &body, None).await.map(|_| ())
}

/// The event and the URL it goes to.
pub(super) fn message(
    cfg: &PagerdutyConfig,
    n: &Notification<'_>,
    tmpl: &Renderer,
) -> Result<(Value, String), SendError> {
    let data = notify_data(n.receiver, n.group_labels, n.alerts, n.external_url, n.now);
    let r = |field: &str, text: &str| render_field(tmpl, field, text, &data);
    let resolved = data.status == "resolved";
    let key = dedup_key(n.group_key);
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
        .unwrap_or_else(|| crate::notifier::config::DEFAULT_PAGERDUTY_URL.to_owned());
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
