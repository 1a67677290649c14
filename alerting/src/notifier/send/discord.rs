//! `discord_configs`: a Discord webhook message as Alertmanager sends it — `content`, one
//! embed with the title (256 characters at most), the message as description (4096) and
//! Alertmanager's colour (red `0x992D22` firing, green `0x2ECC71` resolved), and the
//! optional `username` and `avatar_url`.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::check::{exactly_one, inherit_http};
use super::http::{post_json, secret_or_file, truncate};
use super::integration::{Context, FieldError, Integration, SendError};
use crate::notifier::config::GlobalConfig;
use crate::notifier::config::scalar::url;
use crate::notifier::config::secret::{masked, secret};

const MAX_TITLE: usize = 256;
const MAX_DESCRIPTION: usize = 4096;
const MAX_CONTENT: usize = 2000;
const COLOR_RED: u32 = 0x99_2D22;
const COLOR_GREEN: u32 = 0x2E_CC71;

/// `discord_configs` entry; fields are the YAML keys, text fields Go templates.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscordConfig {
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
    #[serde(skip_serializing_if = "String::is_empty")]
    pub content: String,
    pub title: String,
    pub message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub avatar_url: String,
}

impl Default for DiscordConfig {
    fn default() -> DiscordConfig {
        DiscordConfig {
            send_resolved: true,
            http_config: None,
            webhook_url: None,
            webhook_url_file: None,
            content: String::new(),
            title: r#"{{ template "discord.default.title" . }}"#.to_owned(),
            message: r#"{{ template "discord.default.message" . }}"#.to_owned(),
            username: String::new(),
            avatar_url: String::new(),
        }
    }
}

#[async_trait::async_trait]
impl Integration for DiscordConfig {
    fn kind(&self) -> &'static str {
        "discord"
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
        let title = truncate(&cx.render("title", &self.title, &data)?, MAX_TITLE);
        let description = truncate(
            &cx.render("message", &self.message, &data)?,
            MAX_DESCRIPTION,
        );
        let content = truncate(&cx.render("content", &self.content, &data)?, MAX_CONTENT);
        let color = if cx.resolved() {
            COLOR_GREEN
        } else {
            COLOR_RED
        };
        let url = secret_or_file(
            self.webhook_url.as_ref(),
            self.webhook_url_file.as_ref(),
            "webhook_url",
        )?;
        let mut body = json!({
            "content": content,
            "embeds": [{"title": title, "description": description, "color": color}],
        });
        if !self.username.is_empty() {
            body["username"] = json!(self.username);
        }
        if !self.avatar_url.is_empty() {
            if reqwest::Url::parse(&self.avatar_url).is_ok() {
                body["avatar_url"] = json!(self.avatar_url);
            } else {
                tracing::warn!(group = %cx.n.group_key, "discord: bad avatar_url");
            }
        }
        post_json(cx.http()?, &url, &body, None).await.map(drop)
    }
}
