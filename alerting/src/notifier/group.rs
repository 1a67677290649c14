//! Aggregation groups as Alertmanager's dispatcher keeps them: the alerts one route sends
//! to one receiver with the same values of the route's `group_by` labels, notified
//! together. A group is identified by its group key, `<route key>:<group labels>`
//! (`{}/{team="db"}:{alertname="Down"}`), the key the notification log, webhook messages
//! and PagerDuty's `dedup_key` use.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use strata_grammar::quote_string;
use tokio::sync::Notify;

use crate::notifier::alert::{Alert, LabelSet, labels_before};
use crate::notifier::config::Route;

/// Prometheus's `model.LabelSet.String()`: `{a="1", b="2"}`, names sorted, values quoted.
pub fn labels_string(labels: &LabelSet) -> String {
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", quote_string(v)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// The labels of `alert` that group it on `route` (`group_by`, or all with `...`).
pub fn group_labels(route: &Route, alert: &LabelSet) -> LabelSet {
    alert
        .iter()
        .filter(|(k, _)| route.group_by_all() || route.group_by().iter().any(|g| g == *k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Alertmanager's notification order: by `job`, then `instance` (alerts without the
/// label last), then by the whole label set.
pub fn sort_alerts(alerts: &mut [Alert]) {
    alerts.sort_by(|a, b| {
        for key in ["job", "instance"] {
            match (a.labels.get(key), b.labels.get(key)) {
                (None, None) => continue,
                (None, Some(_)) => return std::cmp::Ordering::Greater,
                (Some(_), None) => return std::cmp::Ordering::Less,
                (Some(x), Some(y)) if x != y => return x.cmp(y),
                _ => {}
            }
        }
        labels_before(&a.labels, &b.labels)
    });
}

/// Timing of a group, from its route.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// `group_wait` (ms).
    pub wait: i64,
    /// `group_interval` (ms).
    pub interval: i64,
    /// `repeat_interval` (ms).
    pub repeat: i64,
}

/// One aggregation group.
pub struct Group {
    /// The route's id (unique in the tree).
    pub route_id: String,
    /// `<route key>:<group labels>`.
    pub key: String,
    /// Receiver name.
    pub receiver: String,
    /// The grouping labels.
    pub labels: LabelSet,
    /// Timing.
    pub timing: Timing,
    /// Names of the route's `mute_time_intervals`.
    pub mute: Vec<String>,
    /// Names of the route's `active_time_intervals`.
    pub active: Vec<String>,
    /// The group's alerts by fingerprint.
    pub alerts: Mutex<BTreeMap<u64, Alert>>,
    /// Set after the first flush; before it, old alerts flush the group at once.
    pub flushed: AtomicBool,
    /// Wakes the group's task for an early flush.
    pub wake: Notify,
    /// Stops the group's task (reload, shutdown, group emptied).
    pub stop: Notify,
}

impl Group {
    /// A new, empty group for `route` with `labels`.
    pub fn new(route: &Route, labels: LabelSet) -> Group {
        Group {
            route_id: route.id().to_owned(),
            key: format!("{}:{}", route.key(), labels_string(&labels)),
            receiver: route.receiver().to_owned(),
            labels,
            timing: Timing {
                wait: route.group_wait().as_millis(),
                interval: route.group_interval().as_millis(),
                repeat: route.repeat_interval().as_millis(),
            },
            mute: route.mute_time_intervals.clone(),
            active: route.active_time_intervals.clone(),
            alerts: Mutex::new(BTreeMap::new()),
            flushed: AtomicBool::new(false),
            wake: Notify::new(),
            stop: Notify::new(),
        }
    }

    /// Adds or replaces an alert. Before the first flush, an alert that started more than
    /// `group_wait` ago makes the group flush now (Alertmanager's `aggrGroup.insert`).
    pub fn insert(&self, alert: Alert, now: i64) {
        let early =
            !self.flushed.load(Ordering::Acquire) && alert.starts_at + self.timing.wait < now;
        self.alerts.lock().insert(alert.fingerprint(), alert);
        if early {
            self.wake.notify_one();
        }
    }

    /// The alerts in notification order.
    pub fn snapshot(&self) -> Vec<Alert> {
        let mut v: Vec<Alert> = self.alerts.lock().values().cloned().collect();
        sort_alerts(&mut v);
        v
    }

    /// Removes the resolved alerts of a notified snapshot unless they changed since.
    pub fn delete_resolved(&self, sent: &[Alert], now: i64) {
        let mut held = self.alerts.lock();
        for a in sent.iter().filter(|a| a.resolved(now)) {
            let fp = a.fingerprint();
            if held.get(&fp).is_some_and(|h| h.updated_at == a.updated_at) {
                held.remove(&fp);
            }
        }
    }

    /// No alerts left.
    pub fn is_empty(&self) -> bool {
        self.alerts.lock().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(pairs: &[(&str, &str)]) -> Alert {
        Alert {
            labels: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            annotations: LabelSet::new(),
            starts_at: 0,
            ends_at: 1,
            updated_at: 0,
            generator_url: String::new(),
            timeout: false,
        }
    }

    #[test]
    fn label_string_is_go_model_string() {
        let l = alert(&[("b", "x\"y"), ("a", "1")]).labels;
        assert_eq!(labels_string(&l), r#"{a="1", b="x\"y"}"#);
        assert_eq!(labels_string(&LabelSet::new()), "{}");
    }

    #[test]
    fn alerts_sort_by_job_then_instance_then_labels() {
        let mut v = vec![
            alert(&[("alertname", "A")]),
            alert(&[("instance", "b"), ("job", "x")]),
            alert(&[("instance", "a"), ("job", "x")]),
            alert(&[("instance", "a")]),
            alert(&[("job", "a")]),
        ];
        sort_alerts(&mut v);
        let got: Vec<String> = v.iter().map(|a| labels_string(&a.labels)).collect();
        assert_eq!(
            got,
            [
                r#"{job="a"}"#,
                r#"{instance="a", job="x"}"#,
                r#"{instance="b", job="x"}"#,
                r#"{instance="a"}"#,
                r#"{alertname="A"}"#,
            ]
        );
    }
}
