//! `googlechat_configs` (Strata's own; Alertmanager has no Google Chat receiver): a message
//! to a Google Chat space's incoming webhook — POST the webhook `url` (or the URL read from
//! `url_file`) with `{"text": message}` (Google Chat's text formatting; cut to its 32,000
//! bytes). With `thread_key` (a template) every notification with that key goes to one
//! thread: the URL gets `threadKey=…&messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD`.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::check::{exactly_one, inherit_http};
use super::http::{post_json, secret_or_file, truncate_bytes};
use super::integration::{Context, FieldError, Integration, SendError};
use crate::notifier::config::GlobalConfig;
use crate::notifier::config::scalar::url;
use crate::notifier::config::secret::{masked, secret};

/// Google Chat's limit on a message, in bytes.
const MAX_MESSAGE: usize = 32_000;

/// `googlechat_configs` entry; fields are the YAML keys, text fields Go templates.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GoogleChatConfig {
    /// `send_resolved` (true).
    pub send_resolved: bool,
    /// `http_config`, opaque (the global one when unset).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "masked")]
    pub http_config: Option<serde_yaml_ng::Value>,
    /// `url`: the space's webhook (secret: it carries the key and token).
    #[serde(
        deserialize_with = "url",
        serialize_with = "secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_file: Option<String>,
    /// `message` (`googlechat.default.message`: the subject and the alert list).
    pub message: String,
    /// `thread_key`: messages with the same key are threaded (none when empty).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub thread_key: String,
}

impl Default for GoogleChatConfig {
    fn default() -> GoogleChatConfig {
        GoogleChatConfig {
            send_resolved: true,
            http_config: None,
            url: None,
            url_file: None,
            message: r#"{{ template "googlechat.default.message" . }}"#.to_owned(),
            thread_key: String::new(),
        }
    }
}

#[async_trait::async_trait]
impl Integration for GoogleChatConfig {
    fn kind(&self) -> &'static str {
        "googlechat"
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn resolve(&mut self, global: &GlobalConfig) -> Result<(), FieldError> {
        inherit_http(&mut self.http_config, global);
        exactly_one(self.url.is_some(), self.url_file.is_some(), "url")
    }

    fn http_config(&self) -> Option<Option<&serde_yaml_ng::Value>> {
        Some(self.http_config.as_ref())
    }

    async fn notify(&self, cx: &Context<'_>) -> Result<(), SendError> {
        let data = cx.data();
        let text = truncate_bytes(&cx.render("message", &self.message, &data)?, MAX_MESSAGE);
        let thread = cx.render("thread_key", &self.thread_key, &data)?;
        let base = secret_or_file(self.url.as_ref(), self.url_file.as_ref(), "url")?;
        let mut url = reqwest::Url::parse(&base)
            .map_err(|e| SendError::fatal(format!("googlechat url: {e}")))?;
        if !thread.is_empty() {
            url.query_pairs_mut()
                .append_pair("threadKey", &thread)
                .append_pair("messageReplyOption", "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD");
        }
        post_json(cx.http()?, url.as_str(), &json!({"text": text}), None)
            .await
            .map(drop)
    }
}
