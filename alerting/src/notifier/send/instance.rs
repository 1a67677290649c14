//! [`Instance`]: one configured integration of a receiver with its HTTP client, delivering
//! with Alertmanager's retry policy: failures its integration calls worth another attempt
//! are retried with exponential backoff until the flush's deadline, others are final.
//! Acknowledgements are forwarded with the same policy. Attempts and failures are
//! counted per integration kind.

use std::time::Duration;

use strata_ingest::http_client::HttpClient;

use super::http;
use super::integration::{AckNotice, Context, Integration, Notification, SendError};
use super::metrics::{KindCounters, SendMetrics};
use crate::notifier::config::{GlobalConfig, Receiver};
use crate::notifier::render::Renderer;

/// One configured integration of a receiver.
pub struct Instance {
    integration: Box<dyn Integration>,
    /// Index among the receiver's integrations of the same kind.
    pub index: usize,
    http: Option<HttpClient>,
}

impl Instance {
    /// The integrations of `receiver`, each with its own (or the global) `http_config`.
    pub fn for_receiver(
        receiver: &Receiver,
        global: &GlobalConfig,
    ) -> Result<Vec<Instance>, String> {
        let what = format!("receiver {:?}", receiver.name);
        let mut out = Vec::new();
        for (index, integration) in receiver.integrations() {
            let http = match integration.http_config() {
                Some(own) => Some(http::client(own, global.http_config.as_ref(), &what)?),
                None => None,
            };
            out.push(Instance {
                integration,
                index,
                http,
            });
        }
        Ok(out)
    }

    /// The integration's kind (`webhook`, `email`, …).
    pub fn name(&self) -> &'static str {
        self.integration.kind()
    }

    /// `send_resolved` of the integration.
    pub fn send_resolved(&self) -> bool {
        self.integration.send_resolved()
    }

    /// Whether the integration forwards acknowledgements.
    pub fn supports_ack(&self) -> bool {
        self.integration.supports_ack()
    }

    /// Sends `n`, retrying until `deadline`; counts into `m`.
    pub async fn notify(
        &self,
        n: &Notification<'_>,
        tmpl: &Renderer,
        deadline: tokio::time::Instant,
        m: &SendMetrics,
    ) -> Result<(), SendError> {
        let cx = Context {
            n,
            tmpl,
            http: self.http.as_ref(),
        };
        self.retrying(deadline, m, || self.integration.notify(&cx))
            .await
    }

    /// Forwards an acknowledgement of `n`'s group, with the same retry policy.
    pub async fn acknowledge(
        &self,
        n: &Notification<'_>,
        ack: &AckNotice<'_>,
        tmpl: &Renderer,
        deadline: tokio::time::Instant,
        m: &SendMetrics,
    ) -> Result<(), SendError> {
        let cx = Context {
            n,
            tmpl,
            http: self.http.as_ref(),
        };
        self.retrying(deadline, m, || self.integration.acknowledge(&cx, ack))
            .await
    }

    /// Runs `attempt` until it succeeds, fails for good or `deadline` passes.
    async fn retrying<F, Fut>(
        &self,
        deadline: tokio::time::Instant,
        m: &SendMetrics,
        attempt: F,
    ) -> Result<(), SendError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), SendError>>,
    {
        let kind = self.name();
        m.inc(kind, |c: &KindCounters| &c.notifications);
        let mut backoff = Duration::from_millis(200);
        loop {
            m.inc(kind, |c: &KindCounters| &c.requests);
            // An attempt ends by the flush's deadline whatever the peer does (an SMTP or
            // HTTP server that accepts and then stalls).
            let e = match tokio::time::timeout_at(deadline, attempt()).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => e,
                Err(_) => SendError::retry("timed out before the flush's deadline"),
            };
            m.inc(kind, |c: &KindCounters| &c.requests_failed);
            let now = tokio::time::Instant::now();
            if !e.retry || now + backoff > deadline {
                m.inc(kind, |c: &KindCounters| &c.failed);
                return Err(e);
            }
            tracing::debug!(integration = kind, error = %e, "notify attempt failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }
}
