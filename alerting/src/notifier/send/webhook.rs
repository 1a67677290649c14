//! `webhook_configs`: Alertmanager's webhook message (version 4) POSTed as JSON to `url`
//! (or the URL read from `url_file`), truncated to `max_alerts`.

use std::time::Duration as StdDuration;

use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use super::http::{post_json, secret_or_file};
use super::integration::{Context, FieldError, Integration, SendError};
use crate::notifier::config::scalar::url;
use crate::notifier::config::secret::{masked, secret};
use crate::notifier::config::{Duration, GlobalConfig};
use crate::notifier::webhook::message;

/// `webhook_configs` entry; fields are the YAML keys.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// `send_resolved` (true).
    pub send_resolved: bool,
    /// `http_config`, opaque (the global one when unset).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "masked")]
    pub http_config: Option<Value>,
    /// `url` (secret); exactly one of `url` and `url_file` is set.
    #[serde(
        deserialize_with = "url",
        serialize_with = "secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_file: Option<String>,
    /// `max_alerts` (0 = all).
    pub max_alerts: u64,
    /// `timeout` (0 = none).
    pub timeout: Duration,
}

impl Default for WebhookConfig {
    fn default() -> WebhookConfig {
        WebhookConfig {
            send_resolved: true,
            http_config: None,
            url: None,
            url_file: None,
            max_alerts: 0,
            timeout: Duration(0),
        }
    }
}

#[async_trait::async_trait]
impl Integration for WebhookConfig {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn resolve(&mut self, global: &GlobalConfig) -> Result<(), FieldError> {
        if self.http_config.is_none() {
            self.http_config.clone_from(&global.http_config);
        }
        match (&self.url, &self.url_file) {
            (None, None) => Err(FieldError::entry(
                "one of url or url_file must be configured",
            )),
            (Some(_), Some(_)) => Err(FieldError::entry(
                "at most one of url & url_file must be configured",
            )),
            _ => Ok(()),
        }
    }

    fn http_config(&self) -> Option<Option<&Value>> {
        Some(self.http_config.as_ref())
    }

    async fn notify(&self, cx: &Context<'_>) -> Result<(), SendError> {
        let url = secret_or_file(self.url.as_ref(), self.url_file.as_ref(), "url")?;
        let n = cx.n;
        let body = message(
            n.receiver,
            n.group_key,
            n.group_labels,
            n.alerts,
            n.external_url,
            usize::try_from(self.max_alerts).unwrap_or(usize::MAX),
            n.now,
        );
        let timeout = (self.timeout.as_millis() > 0)
            .then(|| StdDuration::from_millis(self.timeout.as_millis().unsigned_abs()));
        post_json(cx.http()?, &url, &body, timeout)
            .await
            .map(|_| ())
    }
}
