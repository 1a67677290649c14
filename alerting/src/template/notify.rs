//! Alertmanager's notification template data (`template.Data`, `template.Alert`) and the
//! methods its `KV`, `Pairs` and `Alerts` types offer to templates.

use std::collections::BTreeMap;

/// Alertmanager's `template.Data`: what a notification template sees as `.`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyData {
    /// `.Receiver` (Alertmanager sets it to `regexp.QuoteMeta(receiver name)`).
    pub receiver: String,
    /// `.Status`: `"firing"` or `"resolved"`.
    pub status: String,
    /// `.Alerts`.
    pub alerts: Vec<NotifyAlert>,
    /// `.GroupLabels`.
    pub group_labels: BTreeMap<String, String>,
    /// `.CommonLabels`.
    pub common_labels: BTreeMap<String, String>,
    /// `.CommonAnnotations`.
    pub common_annotations: BTreeMap<String, String>,
    /// `.ExternalURL`.
    pub external_url: String,
}

/// Alertmanager's `template.Alert`: one alert of a notification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyAlert {
    /// `.Status`: `"firing"` or `"resolved"`.
    pub status: String,
    /// `.Labels`.
    pub labels: BTreeMap<String, String>,
    /// `.Annotations`.
    pub annotations: BTreeMap<String, String>,
    /// `.StartsAt`, Unix milliseconds (UTC).
    pub starts_at_ms: i64,
    /// `.EndsAt`, Unix milliseconds (UTC); 0 means Go's zero `time.Time`.
    pub ends_at_ms: i64,
    /// `.GeneratorURL`.
    pub generator_url: String,
    /// `.Fingerprint`.
    pub fingerprint: String,
}

/// Go's zero `time.Time` (`0001-01-01 00:00:00 UTC`) in Unix milliseconds.
pub(crate) const GO_ZERO_TIME_MS: i64 = -62_135_596_800_000;

/// A notification timestamp as a Go `time.Time` instant (0 is the zero time).
pub(crate) fn go_instant(ms: i64) -> i64 {
    if ms == 0 { GO_ZERO_TIME_MS } else { ms }
}

/// `KV.SortedPairs`: `alertname` first, then the other keys in byte order.
pub(crate) fn sorted_pairs(kv: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let first = kv.get_key_value("alertname");
    first
        .into_iter()
        .chain(kv.iter().filter(|(k, _)| k.as_str() != "alertname"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `KV.Remove`: a copy without the given keys.
pub(crate) fn remove(kv: &BTreeMap<String, String>, keys: &[String]) -> BTreeMap<String, String> {
    kv.iter()
        .filter(|(k, _)| !keys.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `Pairs.String` / `KV.String`: `a=1, b=2`.
pub(crate) fn pairs_string(pairs: &[(String, String)]) -> String {
    let parts: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join(", ")
}

/// `Alerts.Firing` / `Alerts.Resolved`: the alerts with the given status.
pub(crate) fn with_status(alerts: &[NotifyAlert], status: &str) -> Vec<NotifyAlert> {
    alerts
        .iter()
        .filter(|a| a.status == status)
        .cloned()
        .collect()
}
