//! [`Integration`]: what one receiver integration (a `webhook_configs`, `email_configs`, …
//! entry) declares — its Alertmanager name, `send_resolved`, its load-time checks with the
//! `global` fallbacks, the HTTP client settings it sends through, and one delivery attempt
//! with the retry classification of its failure, and (for the integrations supporting it)
//! one attempt at forwarding an acknowledgement. The entry's configuration type implements
//! it; [`super::registry`] lists the types.

use serde_yaml_ng::Value;
use strata_ingest::http_client::HttpClient;

use crate::notifier::alert::{Alert, LabelSet};
use crate::notifier::config::GlobalConfig;
use crate::notifier::render::{Renderer, notify_data};
use crate::template::NotifyData;

/// One receiver integration.
#[async_trait::async_trait]
pub trait Integration: Send + Sync {
    /// Alertmanager's name of the integration (`email`, `webhook`, …): the `integration`
    /// label of the notification metrics.
    fn kind(&self) -> &'static str;

    /// `send_resolved`: whether resolved alerts are sent.
    fn send_resolved(&self) -> bool;

    /// Alertmanager's checks of the entry and the `global` fallbacks, at load.
    fn resolve(&mut self, global: &GlobalConfig) -> Result<(), FieldError>;

    /// The `http_config` its requests go through (the global one when it has none), or
    /// `None` when it does not speak HTTP (email).
    fn http_config(&self) -> Option<Option<&Value>>;

    /// One delivery attempt.
    async fn notify(&self, cx: &Context<'_>) -> Result<(), SendError>;

    /// Whether the integration forwards acknowledgements of a group (PagerDuty, Opsgenie).
    fn supports_ack(&self) -> bool {
        false
    }

    /// One attempt at forwarding an acknowledgement of the notification's group.
    async fn acknowledge(&self, _cx: &Context<'_>, _ack: &AckNotice<'_>) -> Result<(), SendError> {
        Err(SendError::fatal(format!(
            "{} does not support acknowledgements",
            self.kind()
        )))
    }
}

/// An acknowledgement of a group, as forwarded to the integrations supporting it.
pub struct AckNotice<'a> {
    /// Who acknowledged.
    pub user: &'a str,
    /// The comment.
    pub note: &'a str,
}

/// A configuration error of one integration entry: the field (relative to the entry, as
/// `to` or `tls_config.ca_file`) when there is one, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct FieldError {
    /// The field, relative to the entry.
    pub field: Option<String>,
    /// What is wrong.
    pub msg: String,
}

impl FieldError {
    /// An error about `field` of the entry.
    pub fn at(field: &str, msg: impl Into<String>) -> FieldError {
        FieldError {
            field: Some(field.to_owned()),
            msg: msg.into(),
        }
    }

    /// An error about the entry as a whole.
    pub fn entry(msg: impl Into<String>) -> FieldError {
        FieldError {
            field: None,
            msg: msg.into(),
        }
    }
}

/// A failed attempt.
#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct SendError {
    /// Worth another attempt (network, timeout, 5xx, 429, …).
    pub retry: bool,
    /// What happened.
    pub msg: String,
}

impl SendError {
    /// A failure another attempt would not fix (templates, bad addresses, 4xx).
    pub fn fatal(msg: impl Into<String>) -> SendError {
        SendError {
            retry: false,
            msg: msg.into(),
        }
    }

    /// A failure worth another attempt (network, server errors).
    pub fn retry(msg: impl Into<String>) -> SendError {
        SendError {
            retry: true,
            msg: msg.into(),
        }
    }
}

/// What one notification is about.
pub struct Notification<'a> {
    /// Receiver name.
    pub receiver: &'a str,
    /// The group key.
    pub group_key: &'a str,
    /// The grouping labels.
    pub group_labels: &'a LabelSet,
    /// The alerts to send (already filtered for `send_resolved`).
    pub alerts: &'a [Alert],
    /// `--web.external-url` of the notifier.
    pub external_url: &'a str,
    /// Now (ms).
    pub now: i64,
}

/// What an attempt works with.
pub struct Context<'a> {
    /// The notification.
    pub n: &'a Notification<'a>,
    /// The configuration's templates.
    pub tmpl: &'a Renderer,
    /// The integration's HTTP client (for integrations that speak HTTP).
    pub http: Option<&'a HttpClient>,
}

impl Context<'_> {
    /// The template data of the notification (Alertmanager's `template.Data`).
    pub fn data(&self) -> NotifyData {
        let n = self.n;
        notify_data(n.receiver, n.group_labels, n.alerts, n.external_url, n.now)
    }

    /// The HTTP client.
    pub fn http(&self) -> Result<&HttpClient, SendError> {
        self.http
            .ok_or_else(|| SendError::fatal("integration has no HTTP client"))
    }

    /// Renders one text template field, naming it in the error.
    pub fn render(&self, field: &str, text: &str, data: &NotifyData) -> Result<String, SendError> {
        self.tmpl
            .render(text, data)
            .map_err(|e| SendError::fatal(format!("template {field}: {e}")))
    }

    /// Renders one field as Alertmanager's `html/template` does (values escaped for
    /// where they land in the HTML), naming it in the error.
    pub fn render_html(
        &self,
        field: &str,
        text: &str,
        data: &NotifyData,
    ) -> Result<String, SendError> {
        self.tmpl
            .render_html(text, data)
            .map_err(|e| SendError::fatal(format!("template {field}: {e}")))
    }

    /// `true` when every alert of the notification is resolved (Alertmanager's
    /// `Alerts.Status() == resolved`).
    pub fn resolved(&self) -> bool {
        let n = self.n;
        n.alerts.iter().all(|a| a.resolved(n.now))
    }
}
