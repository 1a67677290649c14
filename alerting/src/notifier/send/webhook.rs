//! The generic webhook: Alertmanager's webhook message (version 4) POSTed as JSON to
//! `url` (or the URL read from `url_file`), truncated to `max_alerts`.

use std::time::Duration;

use strata_ingest::http_client::HttpClient;

use super::{Notification, SendError, post_json, read_secret_file};
use crate::notifier::config::WebhookConfig;
use crate::notifier::webhook::message;

pub(super) async fn send(
    http: &HttpClient,
    cfg: &WebhookConfig,
    n: &Notification<'_>,
) -> Result<(), SendError> {
    let url = match (&cfg.url, &cfg.url_file) {
        (Some(u), _) => u.clone(),
        (None, Some(f)) => read_secret_file(f)?,
        (None, None) => return Err(SendError::fatal("webhook without url")),
    };
    let body = message(
        n.receiver,
        n.group_key,
        n.group_labels,
        n.alerts,
        n.external_url,
        usize::try_from(cfg.max_alerts).unwrap_or(usize::MAX),
        n.now,
    );
    let timeout = (cfg.timeout.as_millis() > 0)
        .then(|| Duration::from_millis(cfg.timeout.as_millis().unsigned_abs()));
    post_json(http, &url, &body, timeout).await.map(|_| ())
}
