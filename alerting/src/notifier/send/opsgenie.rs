//! `opsgenie_configs`: OpsGenie's Alert API v2 as Alertmanager drives it, with
//! `Authorization: GenieKey <api_key>`: while any alert of the group fires, POST
//! `{api_url}v2/alerts` creates (or de-duplicates) an alert whose `alias` is the SHA-256 of
//! the group key, with message (130 characters at most), description, details (the common
//! labels plus `details`), source, responders, tags, note, priority, entity and actions;
//! `update_alerts` also PUTs the message and description of the existing alert. When all
//! are resolved, POST `{api_url}v2/alerts/{alias}/close?identifierType=alias` closes it.
//! An acknowledgement of the group POSTs `{api_url}v2/alerts/{alias}/acknowledge?identifierType=alias`
//! with `{user, note, source}`. 5xx and 429 are retried.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::check::inherit_http;
use super::http::{Request, read_secret_file, send, truncate};
use super::integration::{AckNotice, Context, FieldError, Integration, SendError};
use super::pagerduty::dedup_key;
use crate::notifier::config::GlobalConfig;
use crate::notifier::config::scalar::{string_map, url};
use crate::notifier::config::secret::{masked, secret};

/// OpsGenie's limit on the message, in characters.
const MAX_MESSAGE: usize = 130;

/// `opsgenie_configs` entry; fields are the YAML keys, text fields Go templates.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpsgenieConfig {
    /// `send_resolved` (true).
    pub send_resolved: bool,
    /// `http_config`, opaque (the global one when unset).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "masked")]
    pub http_config: Option<serde_yaml_ng::Value>,
    /// `api_key` (secret, a template; global `opsgenie_api_key`).
    #[serde(serialize_with = "secret", skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<String>,
    /// `api_url` (global `opsgenie_api_url`), ending in `/` after loading.
    #[serde(deserialize_with = "url", skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    pub message: String,
    pub description: String,
    pub source: String,
    #[serde(
        deserialize_with = "string_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub details: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub entity: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub responders: Vec<OpsgenieResponder>,
    /// `actions`: comma-separated.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub actions: String,
    /// `tags`: comma-separated.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tags: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub priority: String,
    pub update_alerts: bool,
}

/// A `responders` entry: one of `id`, `name`, `username`, and the `type`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpsgenieResponder {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// `team`, `teams`, `user`, `escalation` or `schedule` (or a template).
    #[serde(rename = "type")]
    pub kind: String,
}

impl Default for OpsgenieConfig {
    fn default() -> OpsgenieConfig {
        OpsgenieConfig {
            send_resolved: true,
            http_config: None,
            api_key: None,
            api_key_file: None,
            api_url: None,
            message: r#"{{ template "opsgenie.default.message" . }}"#.to_owned(),
            description: r#"{{ template "opsgenie.default.description" . }}"#.to_owned(),
            source: r#"{{ template "opsgenie.default.source" . }}"#.to_owned(),
            details: BTreeMap::new(),
            entity: String::new(),
            responders: Vec::new(),
            actions: String::new(),
            tags: String::new(),
            note: String::new(),
            priority: String::new(),
            update_alerts: false,
        }
    }
}

#[async_trait::async_trait]
impl Integration for OpsgenieConfig {
    fn kind(&self) -> &'static str {
        "opsgenie"
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn resolve(&mut self, global: &GlobalConfig) -> Result<(), FieldError> {
        inherit_http(&mut self.http_config, global);
        if self.api_key.is_some() && self.api_key_file.is_some() {
            return Err(FieldError::at(
                "api_key",
                "at most one of api_key & api_key_file must be configured",
            ));
        }
        for (i, r) in self.responders.iter_mut().enumerate() {
            let at = format!("responders[{i}]");
            if r.id.is_empty() && r.username.is_empty() && r.name.is_empty() {
                return Err(FieldError::at(
                    &at,
                    "has to have at least one of id, username or name specified",
                ));
            }
            if !r.kind.contains("{{") {
                r.kind = r.kind.to_lowercase();
                if !matches!(
                    r.kind.as_str(),
                    "team" | "teams" | "user" | "escalation" | "schedule"
                ) {
                    return Err(FieldError::at(
                        &format!("{at}.type"),
                        "type does not match valid options ^(team|teams|user|escalation|schedule)$",
                    ));
                }
            }
        }
        let mut api = self
            .api_url
            .take()
            .unwrap_or_else(|| global.opsgenie_api_url.clone());
        if !api.ends_with('/') {
            api.push('/');
        }
        self.api_url = Some(api);
        if self.api_key.is_none() && self.api_key_file.is_none() {
            self.api_key.clone_from(&global.opsgenie_api_key);
            self.api_key_file.clone_from(&global.opsgenie_api_key_file);
        }
        if self.api_key.is_none() && self.api_key_file.is_none() {
            return Err(FieldError::at(
                "api_key",
                "no global OpsGenie API Key set either inline or in a file",
            ));
        }
        Ok(())
    }

    fn http_config(&self) -> Option<Option<&serde_yaml_ng::Value>> {
        Some(self.http_config.as_ref())
    }

    async fn notify(&self, cx: &Context<'_>) -> Result<(), SendError> {
        let data = cx.data();
        let r = |field: &str, text: &str| cx.render(field, text, &data);
        let alias = dedup_key(cx.n.group_key);
        let api = self.api_url.as_deref().unwrap_or_default();
        let auth = self.auth(cx, &data)?;
        let mut requests: Vec<(reqwest::Method, String, Value)> = Vec::new();
        if cx.resolved() {
            requests.push((
                reqwest::Method::POST,
                format!("{api}v2/alerts/{alias}/close?identifierType=alias"),
                json!({"source": r("source", &self.source)?}),
            ));
        } else {
            let create = self.create_message(cx, &data, &alias)?;
            if self.update_alerts {
                let message = create["message"].clone();
                let description = create["description"].clone();
                requests.push((reqwest::Method::POST, format!("{api}v2/alerts"), create));
                let mut upd = |what: &str, v: Value| {
                    let mut body = Map::new();
                    if v.as_str().is_some_and(|s| !s.is_empty()) {
                        body.insert(what.to_owned(), v);
                    }
                    requests.push((
                        reqwest::Method::PUT,
                        format!("{api}v2/alerts/{alias}/{what}?identifierType=alias"),
                        Value::Object(body),
                    ));
                };
                upd("message", message);
                upd("description", description);
            } else {
                requests.push((reqwest::Method::POST, format!("{api}v2/alerts"), create));
            }
        }
        let http = cx.http()?;
        for (method, url, body) in &requests {
            let mut req = Request::post(url, body);
            req.method = method.clone();
            req.headers.push(("Authorization", auth.clone()));
            send(http, req).await?;
        }
        Ok(())
    }

    fn supports_ack(&self) -> bool {
        true
    }

    async fn acknowledge(&self, cx: &Context<'_>, ack: &AckNotice<'_>) -> Result<(), SendError> {
        let data = cx.data();
        let alias = dedup_key(cx.n.group_key);
        let api = self.api_url.as_deref().unwrap_or_default();
        let url = format!("{api}v2/alerts/{alias}/acknowledge?identifierType=alias");
        let body = json!({
            "user": ack.user,
            "note": ack.note,
            "source": cx.render("source", &self.source, &data)?,
        });
        let mut req = Request::post(&url, &body);
        req.headers.push(("Authorization", self.auth(cx, &data)?));
        send(cx.http()?, req).await.map(|_| ())
    }
}

impl OpsgenieConfig {
    /// The `Authorization` header value.
    fn auth(
        &self,
        cx: &Context<'_>,
        data: &crate::template::NotifyData,
    ) -> Result<String, SendError> {
        let r = |field: &str, text: &str| cx.render(field, text, data);
        let key = match (&self.api_key, &self.api_key_file) {
            (Some(k), _) => r("api_key", k)?,
            (None, Some(f)) => r("api_key_file", &read_secret_file(f)?)?.trim().to_owned(),
            (None, None) => return Err(SendError::fatal("opsgenie without api_key")),
        };
        Ok(format!("GenieKey {key}"))
    }

    /// The body creating the alert.
    fn create_message(
        &self,
        cx: &Context<'_>,
        data: &crate::template::NotifyData,
        alias: &str,
    ) -> Result<Value, SendError> {
        let r = |field: &str, text: &str| cx.render(field, text, data);
        let mut details: BTreeMap<String, String> = data.common_labels.clone();
        for (k, v) in &self.details {
            details.insert(k.clone(), r(&format!("details.{k}"), v)?);
        }
        let mut responders = Vec::new();
        for (i, resp) in self.responders.iter().enumerate() {
            let f = |name: &str| format!("responders[{i}].{name}");
            let (id, name, username, kind) = (
                r(&f("id"), &resp.id)?,
                r(&f("name"), &resp.name)?,
                r(&f("username"), &resp.username)?,
                r(&f("type"), &resp.kind)?,
            );
            if id.is_empty() && name.is_empty() && username.is_empty() && kind.is_empty() {
                continue;
            }
            if kind == "teams" {
                for team in split(&name) {
                    responders.push(json!({"name": team, "type": "team"}));
                }
                continue;
            }
            let mut o = Map::new();
            for (k, v) in [("id", id), ("name", name), ("username", username)] {
                if !v.is_empty() {
                    o.insert(k.to_owned(), Value::String(v));
                }
            }
            o.insert("type".to_owned(), Value::String(kind));
            responders.push(Value::Object(o));
        }
        let mut m = json!({
            "alias": alias,
            "message": truncate(&r("message", &self.message)?, MAX_MESSAGE),
            "details": details,
            "source": r("source", &self.source)?,
        });
        let mut opt = |k: &str, v: Value| {
            let empty = match &v {
                Value::String(s) => s.is_empty(),
                Value::Array(a) => a.is_empty(),
                _ => false,
            };
            if !empty {
                m[k] = v;
            }
        };
        opt(
            "description",
            Value::String(r("description", &self.description)?),
        );
        opt("responders", Value::Array(responders));
        opt("tags", json!(split(&r("tags", &self.tags)?)));
        opt("note", Value::String(r("note", &self.note)?));
        opt("priority", Value::String(r("priority", &self.priority)?));
        opt("entity", Value::String(r("entity", &self.entity)?));
        opt("actions", json!(split(&r("actions", &self.actions)?)));
        Ok(m)
    }
}

/// Alertmanager's `safeSplit`: comma-separated, empty items dropped.
fn split(s: &str) -> Vec<String> {
    s.trim()
        .split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}
