//! `slack_configs`: one message with one attachment, as Alertmanager's Slack notifier sends it,
//! to an incoming webhook (`api_url` is the hook) or to the Web API's `chat.postMessage`
//! (`api_url: https://slack.com/api/chat.postMessage` with the bot token in
//! `http_config.authorization`). Every text field is a template with Alertmanager's
//! defaults (`[FIRING:1] ...` title, `danger`/`good` colour).
//!
//! The message and the Web API's `{ok, error}` envelope are `slack-morphism`'s models.
//! Alertmanager's attachment has legacy fields slack-morphism does not model (`title_link`,
//! `pretext`, `footer`, `callback_id`, `image_url`, `thumb_url`, `actions`); they are added
//! to the serialized attachment. The transport is the notifier's HTTP client (reqwest),
//! so each receiver's `http_config` (proxy, TLS, authorization) applies as in Alertmanager.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use slack_morphism::api::SlackApiChatPostMessageRequest;
use slack_morphism::{
    SlackChannelId, SlackEnvelopeMessage, SlackMessageAttachment,
    SlackMessageAttachmentFieldObject, SlackMessageContent,
};

use super::http::{post_json, secret_or_file, truncate};
use super::integration::{Context, FieldError, Integration, SendError};
use crate::notifier::config::GlobalConfig;
use crate::notifier::config::scalar::url;
use crate::notifier::config::secret::{masked, secret};

/// Slack's limit on an attachment title, in characters (Alertmanager truncates to it).
const MAX_TITLE: usize = 1024;

/// `slack_configs` entry; fields are the YAML keys, text fields Go templates.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackConfig {
    /// `send_resolved` (false).
    pub send_resolved: bool,
    /// `http_config`, opaque (the global one when unset).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "masked")]
    pub http_config: Option<serde_yaml_ng::Value>,
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
    pub actions: Vec<serde_yaml_ng::Value>,
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

#[async_trait::async_trait]
impl Integration for SlackConfig {
    fn kind(&self) -> &'static str {
        "slack"
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn resolve(&mut self, global: &GlobalConfig) -> Result<(), FieldError> {
        if self.http_config.is_none() {
            self.http_config.clone_from(&global.http_config);
        }
        if self.api_url.is_some() && self.api_url_file.is_some() {
            return Err(FieldError::entry(
                "at most one of api_url & api_url_file must be configured",
            ));
        }
        if self.api_url.is_none() && self.api_url_file.is_none() {
            if global.slack_api_url.is_none() && global.slack_api_url_file.is_none() {
                return Err(FieldError::entry(
                    "no Slack API URL set: set api_url or api_url_file, \
                     or global slack_api_url or slack_api_url_file",
                ));
            }
            self.api_url.clone_from(&global.slack_api_url);
            self.api_url_file.clone_from(&global.slack_api_url_file);
        }
        if let Some(k) = self
            .fields
            .iter()
            .position(|f| f.title.is_empty() || f.value.is_empty())
        {
            return Err(FieldError::at(
                &format!("fields[{k}]"),
                "missing title or value in Slack field configuration",
            ));
        }
        Ok(())
    }

    fn http_config(&self) -> Option<Option<&serde_yaml_ng::Value>> {
        Some(self.http_config.as_ref())
    }

    async fn notify(&self, cx: &Context<'_>) -> Result<(), SendError> {
        let url = secret_or_file(self.api_url.as_ref(), self.api_url_file.as_ref(), "api_url")?;
        let body = message(self, cx)?;
        let text = post_json(cx.http()?, &url, &body, None).await?;
        // The Web API answers 200 with {"ok": false, "error": ...} on failure; incoming
        // webhooks answer "ok".
        if let Ok(env) = serde_json::from_str::<SlackEnvelopeMessage>(&text)
            && !env.ok
        {
            return Err(SendError::fatal(format!(
                "slack: {}",
                env.error.unwrap_or_else(|| "not ok".to_owned())
            )));
        }
        Ok(())
    }
}

/// The request body for `n`.
fn message(cfg: &SlackConfig, cx: &Context<'_>) -> Result<Value, SendError> {
    let data = cx.data();
    let r = |field: &str, text: &str| cx.render(field, text, &data);
    let non_empty = |s: String| (!s.is_empty()).then_some(s);
    let mut fields = Vec::new();
    for (i, f) in cfg.fields.iter().enumerate() {
        fields.push(SlackMessageAttachmentFieldObject {
            title: Some(r(&format!("fields[{i}].title"), &f.title)?),
            value: Some(r(&format!("fields[{i}].value"), &f.value)?),
            short: Some(f.short.unwrap_or(cfg.short_fields)),
        });
    }
    let attachment = SlackMessageAttachment {
        id: None,
        color: non_empty(r("color", &cfg.color)?),
        fallback: Some(r("fallback", &cfg.fallback)?),
        title: non_empty(truncate(&r("title", &cfg.title)?, MAX_TITLE)),
        fields: (!fields.is_empty()).then_some(fields),
        mrkdwn_in: (!cfg.mrkdwn_in.is_empty()).then(|| cfg.mrkdwn_in.clone()),
        text: Some(r("text", &cfg.text)?),
        blocks: None,
    };
    let req = SlackApiChatPostMessageRequest {
        channel: SlackChannelId(r("channel", &cfg.channel)?),
        content: SlackMessageContent::new().with_attachments(vec![attachment]),
        as_user: None,
        icon_emoji: non_empty(r("icon_emoji", &cfg.icon_emoji)?),
        icon_url: non_empty(r("icon_url", &cfg.icon_url)?),
        link_names: cfg.link_names.then_some(true),
        parse: None,
        thread_ts: None,
        username: non_empty(r("username", &cfg.username)?),
        reply_broadcast: None,
        unfurl_links: None,
        unfurl_media: None,
    };
    let mut body =
        serde_json::to_value(&req).map_err(|e| SendError::fatal(format!("slack body: {e}")))?;
    let Some(obj) = body.as_object_mut() else {
        return Err(SendError::fatal("slack body is not an object"));
    };
    if obj.get("channel").and_then(Value::as_str) == Some("") {
        obj.remove("channel");
    }
    // Alertmanager's legacy attachment fields.
    let mut extra = Map::new();
    extra.insert(
        "callback_id".into(),
        Value::String(r("callback_id", &cfg.callback_id)?),
    );
    extra.insert("footer".into(), Value::String(r("footer", &cfg.footer)?));
    for (key, text) in [
        ("title_link", &cfg.title_link),
        ("pretext", &cfg.pretext),
        ("image_url", &cfg.image_url),
        ("thumb_url", &cfg.thumb_url),
    ] {
        let v = r(key, text)?;
        if !v.is_empty() {
            extra.insert(key.into(), Value::String(v));
        }
    }
    if !cfg.actions.is_empty() {
        let actions = serde_json::to_value(&cfg.actions)
            .map_err(|e| SendError::fatal(format!("slack actions: {e}")))?;
        extra.insert("actions".into(), actions);
    }
    if let Some(Value::Object(att)) = obj
        .get_mut("attachments")
        .and_then(Value::as_array_mut)
        .and_then(|a| a.first_mut())
    {
        att.extend(extra);
    }
    Ok(body)
}
