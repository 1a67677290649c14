//! `webex_configs`: a Webex message as Alertmanager sends it — POST `api_url` with
//! `{"markdown": message, "roomId": room_id}`, the message cut to Webex's 7439 bytes, the
//! bot token in `http_config.authorization` (required).

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::check::inherit_http;
use super::http::{post_json, truncate_bytes};
use super::integration::{Context, FieldError, Integration, SendError};
use crate::notifier::config::GlobalConfig;
use crate::notifier::config::scalar::url;
use crate::notifier::config::secret::masked;

/// Webex's limit on a message, in bytes.
const MAX_MESSAGE: usize = 7439;

/// `webex_configs` entry; fields are the YAML keys, text fields Go templates.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebexConfig {
    /// `send_resolved` (true).
    pub send_resolved: bool,
    /// `http_config` with the `authorization` (required).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "masked")]
    pub http_config: Option<serde_yaml_ng::Value>,
    /// `api_url` (global `webex_api_url`).
    #[serde(deserialize_with = "url", skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    pub message: String,
    /// `room_id` (required, a template).
    pub room_id: String,
}

impl Default for WebexConfig {
    fn default() -> WebexConfig {
        WebexConfig {
            send_resolved: true,
            http_config: None,
            api_url: None,
            message: r#"{{ template "webex.default.message" . }}"#.to_owned(),
            room_id: String::new(),
        }
    }
}

#[async_trait::async_trait]
impl Integration for WebexConfig {
    fn kind(&self) -> &'static str {
        "webex"
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn resolve(&mut self, global: &GlobalConfig) -> Result<(), FieldError> {
        if self.room_id.is_empty() {
            return Err(FieldError::at("room_id", "missing room_id on webex_config"));
        }
        let authorized = self
            .http_config
            .as_ref()
            .and_then(|h| h.get("authorization"))
            .is_some_and(|a| !a.is_null());
        if !authorized {
            return Err(FieldError::at(
                "http_config.authorization",
                "missing webex_configs.http_config.authorization",
            ));
        }
        inherit_http(&mut self.http_config, global);
        if self.api_url.is_none() {
            self.api_url = Some(global.webex_api_url.clone());
        }
        Ok(())
    }

    fn http_config(&self) -> Option<Option<&serde_yaml_ng::Value>> {
        Some(self.http_config.as_ref())
    }

    async fn notify(&self, cx: &Context<'_>) -> Result<(), SendError> {
        let data = cx.data();
        let message = truncate_bytes(&cx.render("message", &self.message, &data)?, MAX_MESSAGE);
        let room = cx.render("room_id", &self.room_id, &data)?;
        let mut body = json!({"markdown": message});
        if !room.is_empty() {
            body["roomId"] = json!(room);
        }
        let url = self.api_url.as_deref().unwrap_or_default();
        post_json(cx.http()?, url, &body, None).await.map(drop)
    }
}
