//! Acknowledging an aggregation group ([`Notifier::acknowledge`]): the group is found by
//! its key or by receiver and grouping labels, its firing fingerprints are recorded in the
//! [`Acks`](crate::notifier::acks::Acks) set, and the acknowledgement is forwarded once,
//! in the background and with the usual retry policy, to the receiver's integrations that
//! support it (PagerDuty, Opsgenie). [`Notifier::ack_skips`] is the dispatcher's check:
//! an unchanged, acknowledged group skips its repeat notifications.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Notifier;
use crate::notifier::acks::{AckError, AckInput, Acknowledgement};
use crate::notifier::alert::{Alert, LabelSet};
use crate::notifier::group::{Group, sort_alerts};
use crate::notifier::nflog;
use crate::notifier::send::{AckNotice, Notification};

/// How long forwarding an acknowledgement may take, retries included.
const FORWARD_DEADLINE: Duration = Duration::from_secs(60);

/// Which group to acknowledge.
#[derive(Clone, Debug)]
pub enum AckTarget {
    /// By group key (and receiver, when several receivers share the key).
    Key {
        /// The group key.
        group_key: String,
        /// The receiver, if given.
        receiver: Option<String>,
    },
    /// By receiver and grouping labels.
    Labels {
        /// The receiver.
        receiver: String,
        /// The grouping labels.
        labels: LabelSet,
    },
}

/// An acknowledgement request.
#[derive(Clone, Debug)]
pub struct AckRequest {
    /// The group.
    pub target: AckTarget,
    /// Author.
    pub created_by: String,
    /// Comment.
    pub comment: String,
    /// End (ms).
    pub ends_at: i64,
}

impl Notifier {
    /// Acknowledges a group at `now`: records it and forwards it to the integrations of
    /// the receiver that support acknowledgements. Unknown (or no longer firing) groups
    /// are [`AckError::NotFound`].
    pub fn acknowledge(
        self: &Arc<Self>,
        req: AckRequest,
        now: i64,
    ) -> Result<Acknowledgement, AckError> {
        let g = self.find_group(&req.target).ok_or_else(|| {
            AckError::NotFound(match &req.target {
                AckTarget::Key { group_key, .. } => format!("alert group {group_key}"),
                AckTarget::Labels { receiver, labels } => format!(
                    "alert group {} of receiver {receiver}",
                    crate::notifier::group::labels_string(labels)
                ),
            })
        })?;
        let mut firing: Vec<Alert> = g
            .snapshot()
            .into_iter()
            .filter(|a| !a.resolved(now))
            .collect();
        sort_alerts(&mut firing);
        let ack = self.acks.create(
            AckInput {
                group_key: g.key.clone(),
                receiver: g.receiver.clone(),
                fingerprints: self.notified_fingerprints(&firing, now),
                created_by: req.created_by,
                comment: req.comment,
                ends_at: req.ends_at,
            },
            now,
        )?;
        tokio::spawn(self.clone().forward_ack(g, firing, ack.clone(), now));
        Ok(ack)
    }

    /// Fingerprints of the alerts of `alerts` that fire and are neither silenced nor
    /// inhibited at `now`: the firing set the dispatcher notifies, which an
    /// acknowledgement must equal to hold.
    pub fn notified_fingerprints(&self, alerts: &[Alert], now: i64) -> BTreeSet<u64> {
        let inhibition = self.inhibition(now);
        alerts
            .iter()
            .filter(|a| {
                !a.resolved(now)
                    && self.silences.silenced_by(&a.labels, now).is_empty()
                    && inhibition.inhibited_by(&a.labels).is_empty()
            })
            .map(Alert::fingerprint)
            .collect()
    }

    /// The live group `target` names, if it has firing alerts.
    fn find_group(&self, target: &AckTarget) -> Option<Arc<Group>> {
        let groups = self.groups.lock();
        let mut found: Vec<Arc<Group>> = groups
            .values()
            .map(|(g, _)| g)
            .filter(|g| match target {
                AckTarget::Key {
                    group_key,
                    receiver,
                } => g.key == *group_key && receiver.as_ref().is_none_or(|r| g.receiver == *r),
                AckTarget::Labels { receiver, labels } => {
                    g.receiver == *receiver && g.labels == *labels
                }
            })
            .cloned()
            .collect();
        found.sort_by(|a, b| a.receiver.cmp(&b.receiver));
        found.into_iter().next()
    }

    /// Sends the acknowledgement to every integration of the group's receiver that
    /// supports it.
    async fn forward_ack(
        self: Arc<Self>,
        g: Arc<Group>,
        firing: Vec<Alert>,
        ack: Acknowledgement,
        now: i64,
    ) {
        let loaded = self.loaded();
        let Some(integrations) = loaded.integrations.get(&g.receiver).cloned() else {
            return;
        };
        let deadline = tokio::time::Instant::now() + FORWARD_DEADLINE;
        let n = Notification {
            receiver: &g.receiver,
            group_key: &g.key,
            group_labels: &g.labels,
            alerts: &firing,
            external_url: &self.external_url,
            now,
        };
        let notice = AckNotice {
            user: &ack.created_by,
            note: &ack.comment,
        };
        for integ in integrations.iter().filter(|i| i.supports_ack()) {
            match integ
                .acknowledge(&n, &notice, &loaded.renderer, deadline, &self.metrics.send)
                .await
            {
                Ok(()) => {
                    self.metrics.acks_forwarded.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(
                    receiver = %g.receiver,
                    integration = %format!("{}[{}]", integ.name(), integ.index),
                    group = %g.key,
                    error = %e,
                    "forwarding the acknowledgement failed"
                ),
            }
        }
    }

    /// Whether a notification the log asks for is a repeat of an acknowledged group: an
    /// active acknowledgement covers exactly the firing set, the last logged
    /// notification had that firing set and no alert resolved since.
    pub(super) fn ack_skips(
        &self,
        g: &Group,
        entry: Option<&nflog::Entry>,
        firing: &BTreeSet<u64>,
        resolved: &BTreeSet<u64>,
        now: i64,
    ) -> bool {
        let Some(e) = entry else {
            return false;
        };
        if e.firing != *firing || !resolved.is_subset(&e.resolved) {
            return false;
        }
        self.acks
            .active_for(&g.key, &g.receiver, now)
            .is_some_and(|a| a.covers(firing, now))
    }
}
