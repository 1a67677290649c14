//! `telegram_configs`: the Bot API's `sendMessage` as Alertmanager sends it (through the
//! telebot library): POST `{api_url}/bot{token}/sendMessage` with a JSON object of strings —
//! `chat_id`, `text`, `parse_mode` (`HTML` by default: the message is then rendered as
//! `html/template` and replaced by a notice when over 4096 characters; otherwise it is cut
//! there), `disable_web_page_preview`, `disable_notification`, `message_thread_id`. A reply
//! with `"ok": false` is a failure; every delivery failure is retried, as Alertmanager does.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::check::inherit_http;
use super::http::{Request, read_secret_file, send, truncate};
use super::integration::{Context, FieldError, Integration, SendError};
use crate::notifier::config::GlobalConfig;
use crate::notifier::config::scalar::url;
use crate::notifier::config::secret::{masked, secret};

/// Telegram's limit on a message, in characters.
const MAX_MESSAGE: usize = 4096;

/// What Alertmanager sends instead of an HTML message over the limit.
const TOO_LONG: &str = "Alertmanager notification could not be sent: message length exceeds Telegram limits.\n\t\t\tPlease check the template used for producing the message content.";

/// `telegram_configs` entry; fields are the YAML keys, `message` a Go template.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelegramConfig {
    /// `send_resolved` (true).
    pub send_resolved: bool,
    /// `http_config`, opaque (the global one when unset).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "masked")]
    pub http_config: Option<serde_yaml_ng::Value>,
    /// `api_url` (global `telegram_api_url`, `https://api.telegram.org`).
    #[serde(deserialize_with = "url", skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// `bot_token` (secret; global `telegram_bot_token`).
    #[serde(serialize_with = "secret", skip_serializing_if = "Option::is_none")]
    pub bot_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot_token_file: Option<String>,
    /// `chat_id`; exactly one of it and `chat_id_file`.
    #[serde(skip_serializing_if = "is_zero")]
    pub chat_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_id_file: Option<String>,
    /// `message_thread_id` (0: none).
    #[serde(skip_serializing_if = "is_zero")]
    pub message_thread_id: i64,
    pub message: String,
    pub disable_notifications: bool,
    /// `parse_mode`: `HTML` (default), `Markdown`, `MarkdownV2` or empty.
    pub parse_mode: String,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl Default for TelegramConfig {
    fn default() -> TelegramConfig {
        TelegramConfig {
            send_resolved: true,
            http_config: None,
            api_url: None,
            bot_token: None,
            bot_token_file: None,
            chat_id: 0,
            chat_id_file: None,
            message_thread_id: 0,
            message: r#"{{ template "telegram.default.message" . }}"#.to_owned(),
            disable_notifications: false,
            parse_mode: "HTML".to_owned(),
        }
    }
}

#[async_trait::async_trait]
impl Integration for TelegramConfig {
    fn kind(&self) -> &'static str {
        "telegram"
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn resolve(&mut self, global: &GlobalConfig) -> Result<(), FieldError> {
        inherit_http(&mut self.http_config, global);
        if self.bot_token.is_some() && self.bot_token_file.is_some() {
            return Err(FieldError::at(
                "bot_token",
                "at most one of bot_token & bot_token_file must be configured",
            ));
        }
        if self.chat_id == 0 && self.chat_id_file.is_none() {
            return Err(FieldError::at(
                "chat_id",
                "missing chat_id or chat_id_file on telegram_config",
            ));
        }
        if self.chat_id != 0 && self.chat_id_file.is_some() {
            return Err(FieldError::at(
                "chat_id",
                "at most one of chat_id & chat_id_file must be configured",
            ));
        }
        if !matches!(
            self.parse_mode.as_str(),
            "" | "Markdown" | "MarkdownV2" | "HTML"
        ) {
            return Err(FieldError::at(
                "parse_mode",
                "unknown parse_mode on telegram_config, must be Markdown, MarkdownV2, HTML \
                 or empty string",
            ));
        }
        if self.api_url.is_none() {
            self.api_url = Some(global.telegram_api_url.clone());
        }
        if self.bot_token.is_none() && self.bot_token_file.is_none() {
            if global.telegram_bot_token.is_none() && global.telegram_bot_token_file.is_none() {
                return Err(FieldError::at(
                    "bot_token",
                    "missing bot_token or bot_token_file on telegram_config",
                ));
            }
            self.bot_token.clone_from(&global.telegram_bot_token);
            self.bot_token_file
                .clone_from(&global.telegram_bot_token_file);
        }
        Ok(())
    }

    fn http_config(&self) -> Option<Option<&serde_yaml_ng::Value>> {
        Some(self.http_config.as_ref())
    }

    async fn notify(&self, cx: &Context<'_>) -> Result<(), SendError> {
        let data = cx.data();
        let text = if self.parse_mode == "HTML" {
            let m = cx.render_html("message", &self.message, &data)?;
            if m.chars().count() > MAX_MESSAGE {
                TOO_LONG.to_owned()
            } else {
                m
            }
        } else {
            truncate(&cx.render("message", &self.message, &data)?, MAX_MESSAGE)
        };
        let token = match (&self.bot_token, &self.bot_token_file) {
            (_, Some(f)) => read_secret_file(f).map_err(|e| SendError::retry(e.msg))?,
            (Some(t), None) => t.clone(),
            (None, None) => String::new(),
        };
        let chat_id = match &self.chat_id_file {
            Some(f) => {
                let s = read_secret_file(f).map_err(|e| SendError::retry(e.msg))?;
                s.parse::<i64>().map_err(|e| {
                    SendError::retry(format!("could not parse chat_id from {f}: {e}"))
                })?
            }
            None => self.chat_id,
        };
        let mut params = Map::new();
        let mut set = |k: &str, v: String| {
            params.insert(k.to_owned(), Value::String(v));
        };
        set("chat_id", chat_id.to_string());
        set("text", text);
        set("disable_web_page_preview", "true".to_owned());
        if self.disable_notifications {
            set("disable_notification", "true".to_owned());
        }
        if !self.parse_mode.is_empty() {
            set("parse_mode", self.parse_mode.clone());
        }
        if self.message_thread_id != 0 {
            set("message_thread_id", self.message_thread_id.to_string());
        }
        let api = self.api_url.as_deref().unwrap_or_default();
        let url = format!("{api}/bot{token}/sendMessage");
        let body = Value::Object(params);
        // telebot reads the reply whatever its status: `ok` decides.
        let reply = match send(cx.http()?, Request::post(&url, &body)).await {
            Ok(t) => t,
            Err(e) => return Err(SendError::retry(redact_token(&e.msg, &token))),
        };
        check_reply(&reply).map_err(SendError::retry)
    }
}

/// The Bot API's `{"ok": false, "description": …, "error_code": …}`.
fn check_reply(reply: &str) -> Result<(), String> {
    let Ok(v) = serde_json::from_str::<Value>(reply) else {
        return Err(format!(
            "telegram: unexpected reply: {}",
            truncate(reply, 200)
        ));
    };
    if v["ok"].as_bool() == Some(true) {
        return Ok(());
    }
    Err(format!(
        "telegram: {} ({})",
        v["description"].as_str().unwrap_or("not ok"),
        v["error_code"]
    ))
}

/// The token never appears in errors.
fn redact_token(msg: &str, token: &str) -> String {
    if token.is_empty() {
        msg.to_owned()
    } else {
        msg.replace(token, "<secret>")
    }
}
