//! Notification counters per integration kind, one set for every registered kind (as
//! Alertmanager registers its metrics for every integration, used or not), for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// The counters of one integration kind.
#[derive(Debug, Default)]
pub struct KindCounters {
    /// `alertmanager_notifications_total`.
    pub notifications: AtomicU64,
    /// `alertmanager_notifications_failed_total`.
    pub failed: AtomicU64,
    /// `alertmanager_notification_requests_total`.
    pub requests: AtomicU64,
    /// `alertmanager_notification_requests_failed_total`.
    pub requests_failed: AtomicU64,
}

/// Counters of every registered integration kind, in registry order.
#[derive(Debug)]
pub struct SendMetrics {
    kinds: Vec<(&'static str, KindCounters)>,
}

impl Default for SendMetrics {
    fn default() -> SendMetrics {
        SendMetrics {
            kinds: super::kinds()
                .into_iter()
                .map(|k| (k, KindCounters::default()))
                .collect(),
        }
    }
}

impl SendMetrics {
    /// `(kind, counters)` of every registered kind.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &KindCounters)> {
        self.kinds.iter().map(|(k, c)| (*k, c))
    }

    /// The counters of `kind` (registered kinds only).
    pub fn of(&self, kind: &str) -> Option<&KindCounters> {
        self.kinds.iter().find(|(k, _)| *k == kind).map(|(_, c)| c)
    }

    /// Adds one to a counter of `kind`.
    pub(super) fn inc(&self, kind: &str, which: fn(&KindCounters) -> &AtomicU64) {
        if let Some(c) = self.of(kind) {
            which(c).fetch_add(1, Ordering::Relaxed);
        }
    }
}
