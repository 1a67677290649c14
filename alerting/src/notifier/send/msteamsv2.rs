//! `msteamsv2_configs`: Microsoft Teams through a Power Automate workflow webhook —
//! Alertmanager's message with one Adaptive Card (version 1.2): the title as a bold,
//! medium heading coloured `Attention` (firing) or `Good` (resolved), the text wrapped
//! below, full width.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::check::{exactly_one, inherit_http};
use super::http::{post_json, secret_or_file};
use super::integration::{Context, FieldError, Integration, SendError};
use crate::notifier::config::GlobalConfig;
use crate::notifier::config::scalar::url;
use crate::notifier::config::secret::{masked, secret};

/// `msteamsv2_configs` entry; fields are the YAML keys, text fields Go templates.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MsTeamsV2Config {
    /// `send_resolved` (true).
    pub send_resolved: bool,
    /// `http_config`, opaque (the global one when unset).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "masked")]
    pub http_config: Option<serde_yaml_ng::Value>,
    /// `webhook_url` (secret); exactly one of it and `webhook_url_file`.
    #[serde(
        deserialize_with = "url",
        serialize_with = "secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub webhook_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url_file: Option<String>,
    pub title: String,
    pub text: String,
}

impl Default for MsTeamsV2Config {
    fn default() -> MsTeamsV2Config {
        MsTeamsV2Config {
            send_resolved: true,
            http_config: None,
            webhook_url: None,
            webhook_url_file: None,
            title: r#"{{ template "msteamsv2.default.title" . }}"#.to_owned(),
            text: r#"{{ template "msteamsv2.default.text" . }}"#.to_owned(),
        }
    }
}

#[async_trait::async_trait]
impl Integration for MsTeamsV2Config {
    fn kind(&self) -> &'static str {
        "msteamsv2"
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn resolve(&mut self, global: &GlobalConfig) -> Result<(), FieldError> {
        inherit_http(&mut self.http_config, global);
        exactly_one(
            self.webhook_url.is_some(),
            self.webhook_url_file.is_some(),
            "webhook_url",
        )
    }

    fn http_config(&self) -> Option<Option<&serde_yaml_ng::Value>> {
        Some(self.http_config.as_ref())
    }

    async fn notify(&self, cx: &Context<'_>) -> Result<(), SendError> {
        let data = cx.data();
        let title = cx.render("title", &self.title, &data)?;
        let text = cx.render("text", &self.text, &data)?;
        let url = secret_or_file(
            self.webhook_url.as_ref(),
            self.webhook_url_file.as_ref(),
            "webhook_url",
        )?;
        let color = if cx.resolved() { "Good" } else { "Attention" };
        post_json(cx.http()?, &url, &card(&title, &text, color), None)
            .await
            .map(drop)
    }
}

/// Alertmanager's `teamsMessage`.
fn card(title: &str, text: &str, color: &str) -> Value {
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.2",
                "body": [
                    {
                        "type": "TextBlock",
                        "text": title,
                        "weight": "Bolder",
                        "size": "Medium",
                        "wrap": true,
                        "style": "heading",
                        "color": color,
                    },
                    {"type": "TextBlock", "text": text, "wrap": true},
                ],
                "msteams": {"width": "full"},
            },
        }],
    })
}
