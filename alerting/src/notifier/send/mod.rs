//! Delivery of one notification to one receiver integration (a `webhook_configs`,
//! `slack_configs` or `pagerduty_configs` entry), with Alertmanager's retry policy:
//! network errors, timeouts, 5xx and 429 are retried with exponential backoff until the
//! flush's deadline; other 4xx are final. Attempts and failures are counted per
//! integration kind for `/metrics`.

mod pagerduty;
mod slack;
mod webhook;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use strata_config::HttpClientConfig;
use strata_ingest::http_client::HttpClient;

use crate::notifier::alert::{Alert, LabelSet};
use crate::notifier::config::{
    GlobalConfig, PagerdutyConfig, Receiver, SlackConfig, WebhookConfig,
};
use crate::notifier::render::Renderer;

/// `User-Agent` of notifications: receivers written for Alertmanager look for the prefix.
pub const USER_AGENT: &str = concat!("Alertmanager/strata-", env!("CARGO_PKG_VERSION"));

/// Integration kinds, as Alertmanager names them in metrics.
pub const KINDS: [&str; 3] = ["webhook", "slack", "pagerduty"];

/// A failed attempt.
#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct SendError {
    /// Worth another attempt (network, timeout, 5xx, 429).
    pub retry: bool,
    /// What happened.
    pub msg: String,
}

impl SendError {
    fn fatal(msg: impl Into<String>) -> SendError {
        SendError {
            retry: false,
            msg: msg.into(),
        }
    }
}

/// Counters per integration kind (index into [`KINDS`]).
#[derive(Debug, Default)]
pub struct SendMetrics {
    /// `alertmanager_notifications_total`.
    pub notifications: [AtomicU64; 3],
    /// `alertmanager_notifications_failed_total`.
    pub failed: [AtomicU64; 3],
    /// `alertmanager_notification_requests_total`.
    pub requests: [AtomicU64; 3],
    /// `alertmanager_notification_requests_failed_total`.
    pub requests_failed: [AtomicU64; 3],
}

enum Kind {
    Webhook(WebhookConfig),
    Slack(SlackConfig),
    Pagerduty(PagerdutyConfig),
}

/// One configured integration of a receiver, with its HTTP client.
pub struct Integration {
    kind: Kind,
    /// Index among the receiver's integrations of the same kind.
    pub index: usize,
    http: HttpClient,
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

impl Integration {
    /// The integrations of `receiver`, each with its own (or the global) `http_config`.
    pub fn for_receiver(
        receiver: &Receiver,
        global: &GlobalConfig,
    ) -> Result<Vec<Integration>, String> {
        let mut out = Vec::new();
        let kinds = receiver
            .webhook_configs
            .iter()
            .map(|c| (Kind::Webhook(c.clone()), c.http_config.clone()))
            .enumerate()
            .chain(
                receiver
                    .slack_configs
                    .iter()
                    .map(|c| (Kind::Slack(c.clone()), c.http_config.clone()))
                    .enumerate(),
            )
            .chain(
                receiver
                    .pagerduty_configs
                    .iter()
                    .map(|c| (Kind::Pagerduty(c.clone()), c.http_config.clone()))
                    .enumerate(),
            );
        for (index, (kind, http)) in kinds {
            let http = http
                .or_else(|| global.http_config.clone())
                .unwrap_or_default();
            let what = format!("receiver {:?}", receiver.name);
            let cfg = HttpClientConfig::from_yaml_value(http)
                .map_err(|e| format!("{what}: http_config: {e}"))?;
            let http = HttpClient::new_title_case(&cfg, &what).map_err(|e| e.to_string())?;
            out.push(Integration { kind, index, http });
        }
        Ok(out)
    }

    /// `webhook`, `slack` or `pagerduty`.
    pub fn name(&self) -> &'static str {
        KINDS[self.kind_index()]
    }

    fn kind_index(&self) -> usize {
        match self.kind {
            Kind::Webhook(_) => 0,
            Kind::Slack(_) => 1,
            Kind::Pagerduty(_) => 2,
        }
    }

    /// `send_resolved` of the integration.
    pub fn send_resolved(&self) -> bool {
        match &self.kind {
            Kind::Webhook(c) => c.send_resolved,
            Kind::Slack(c) => c.send_resolved,
            Kind::Pagerduty(c) => c.send_resolved,
        }
    }

    /// Sends `n`, retrying until `deadline`; counts into `m`.
    pub async fn notify(
        &self,
        n: &Notification<'_>,
        tmpl: &Renderer,
        deadline: tokio::time::Instant,
        m: &SendMetrics,
    ) -> Result<(), SendError> {
        let k = self.kind_index();
        m.notifications[k].fetch_add(1, Ordering::Relaxed);
        let mut backoff = Duration::from_millis(200);
        loop {
            m.requests[k].fetch_add(1, Ordering::Relaxed);
            let r = self.attempt(n, tmpl).await;
            let e = match r {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            m.requests_failed[k].fetch_add(1, Ordering::Relaxed);
            let now = tokio::time::Instant::now();
            if !e.retry || now + backoff > deadline {
                m.failed[k].fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
            tracing::debug!(integration = self.name(), error = %e, "notify attempt failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }

    async fn attempt(&self, n: &Notification<'_>, tmpl: &Renderer) -> Result<(), SendError> {
        match &self.kind {
            Kind::Webhook(c) => webhook::send(&self.http, c, n).await,
            Kind::Slack(c) => slack::send(&self.http, c, n, tmpl).await,
            Kind::Pagerduty(c) => pagerduty::send(&self.http, c, n, tmpl).await,
        }
    }
}

/// POSTs a JSON body; classifies the outcome. Returns the response body on success.
async fn post_json(
    http: &HttpClient,
    url: &str,
    body: &serde_json::Value,
    timeout: Option<Duration>,
) -> Result<String, SendError> {
    let headers = http
        .request_headers()
        .map_err(|e| SendError::fatal(e.to_string()))?;
    let mut req = http
        .client
        .post(url)
        .headers(headers)
        .header(reqwest::header::USER_AGENT, USER_AGENT)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string());
    req = req.timeout(timeout.unwrap_or(Duration::from_secs(30)));
    let resp = req.send().await.map_err(|e| SendError {
        retry: true,
        msg: format!("POST {}: {e}", redact(url)),
    })?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if status.is_success() {
        return Ok(text);
    }
    let retry = status.is_server_error() || status.as_u16() == 429;
    let mut snippet: String = text.chars().take(200).collect();
    if snippet.is_empty() {
        snippet = "(empty body)".to_owned();
    }
    Err(SendError {
        retry,
        msg: format!(
            "POST {}: unexpected status {status}: {snippet}",
            redact(url)
        ),
    })
}

/// The URL without its path and query (webhook URLs often carry secrets).
fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!("{}://{}/<redacted>", u.scheme(), u.host_str().unwrap_or("")),
        Err(_) => "<url>".to_owned(),
    }
}

/// `s` cut to `max` characters, the last one `…` when cut (Alertmanager's `TruncateInRunes`).
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// Reads a `*_file` secret, trimmed.
fn read_secret_file(path: &str) -> Result<String, SendError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| SendError::fatal(format!("reading {path}: {e}")))
}

/// Renders one template field, naming it in the error.
fn render_field(
    tmpl: &Renderer,
    field: &str,
    text: &str,
    data: &crate::template::NotifyData,
) -> Result<String, SendError> {
    tmpl.render(text, data)
        .map_err(|e| SendError::fatal(format!("template {field}: {e}")))
}
