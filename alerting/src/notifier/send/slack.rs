//! Slack: one message with one attachment, as Alertmanager's Slack notifier sends it,
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

use serde_json::{Map, Value};
use slack_morphism::api::SlackApiChatPostMessageRequest;
use slack_morphism::{
    SlackChannelId, SlackEnvelopeMessage, SlackMessageAttachment,
    SlackMessageAttachmentFieldObject, SlackMessageContent,
};
use strata_ingest::http_client::HttpClient;

use super::{Notification, SendError, post_json, read_secret_file, render_field, truncate};
use crate::notifier::config::SlackConfig;
use crate::notifier::render::{Renderer, notify_data};

/// Slack's limit on an attachment title, in characters (Alertmanager truncates to it).
const MAX_TITLE: usize = 1024;

pub(super) async fn send(
    http: &HttpClient,
    cfg: &SlackConfig,
    n: &Notification<'_>,
    tmpl: &Renderer,
) -> Result<(), SendError> {
    let url = match (&cfg.api_url, &cfg.api_url_file) {
        (Some(u), _) => u.clone(),
        (None, Some(f)) => read_secret_file(f)?,
        (None, None) => return Err(SendError::fatal("slack without api_url")),
    };
    let body = message(cfg, n, tmpl)?;
    let text = post_json(http, &url, &body, None).await?;
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

/// The request body for `n`.
pub(super) fn message(
    cfg: &SlackConfig,
    n: &Notification<'_>,
    tmpl: &Renderer,
) -> Result<Value, SendError> {
    let data = notify_data(n.receiver, n.group_labels, n.alerts, n.external_url, n.now);
    let r = |field: &str, text: &str| render_field(tmpl, field, text, &data);
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
