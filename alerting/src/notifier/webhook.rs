//! The webhook receiver's body: Alertmanager's webhook message, version 4 (`status`,
//! `receiver`, `groupLabels`, `commonLabels`, `commonAnnotations`, `externalURL`, `groupKey`,
//! `truncatedAlerts`, and each alert with its `fingerprint`), with `max_alerts` truncation.

use serde_json::{Value, json};
use strata_grammar::format_rfc3339;

use crate::notifier::alert::{Alert, LabelSet};

/// Go's zero `time.Time`, which Alertmanager sends as `endsAt` of firing alerts.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The labels (or annotations) every alert has with the same value.
pub fn common(sets: &[&LabelSet]) -> LabelSet {
    let Some((first, rest)) = sets.split_first() else {
        return LabelSet::new();
    };
    first
        .iter()
        .filter(|(k, v)| rest.iter().all(|s| s.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The message for `alerts` of one aggregation group at `now` (ms).
pub fn message(
    receiver: &str,
    group_key: &str,
    group_labels: &LabelSet,
    alerts: &[Alert],
    external_url: &str,
    max_alerts: usize,
    now: i64,
) -> Value {
    // Truncated first, as Alertmanager does: status and common labels describe what is sent.
    let keep = if max_alerts > 0 {
        alerts.len().min(max_alerts)
    } else {
        alerts.len()
    };
    let kept = &alerts[..keep];
    let firing = kept.iter().any(|a| !a.resolved(now));
    let labels: Vec<&LabelSet> = kept.iter().map(|a| &a.labels).collect();
    let annotations: Vec<&LabelSet> = kept.iter().map(|a| &a.annotations).collect();
    let items: Vec<Value> = kept
        .iter()
        .map(|a| {
            let resolved = a.resolved(now);
            json!({
                "status": if resolved { "resolved" } else { "firing" },
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": format_rfc3339(a.starts_at, true),
                "endsAt": if resolved { format_rfc3339(a.ends_at, true) } else { ZERO_TIME.to_owned() },
                "generatorURL": a.generator_url,
                "fingerprint": format!("{:016x}", a.fingerprint()),
            })
        })
        .collect();
    json!({
        "receiver": receiver,
        "status": if firing { "firing" } else { "resolved" },
        "alerts": items,
        "groupLabels": group_labels,
        "commonLabels": common(&labels),
        "commonAnnotations": common(&annotations),
        "externalURL": external_url,
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": alerts.len() - keep,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn alert(instance: &str, ends_at: i64) -> Alert {
        Alert {
            labels: LabelSet::from([
                ("alertname".to_owned(), "Down".to_owned()),
                ("instance".to_owned(), instance.to_owned()),
            ]),
            annotations: LabelSet::from([("summary".to_owned(), "down".to_owned())]),
            starts_at: 1000,
            ends_at,
            updated_at: 1000,
            generator_url: "http://prom/graph".into(),
            timeout: false,
        }
    }

    #[test]
    fn message_shape() {
        let alerts = vec![alert("a", 10_000), alert("b", 1500)];
        let gl = LabelSet::from([("alertname".to_owned(), "Down".to_owned())]);
        let m = message(
            "hook",
            "{}:{alertname=\"Down\"}",
            &gl,
            &alerts,
            "http://am",
            1,
            2000,
        );
        assert_eq!(m["status"], "firing");
        assert_eq!(m["version"], "4");
        assert_eq!(m["truncatedAlerts"], 1);
        assert_eq!(m["alerts"].as_array().unwrap().len(), 1);
        assert_eq!(m["alerts"][0]["endsAt"], ZERO_TIME);
        // Truncation comes first: the common labels are those of the alert sent.
        assert_eq!(
            m["commonLabels"],
            json!({"alertname": "Down", "instance": "a"})
        );
        let all = message("hook", "k", &gl, &alerts, "http://am", 0, 2000);
        assert_eq!(all["commonLabels"], json!({"alertname": "Down"}));
        assert_eq!(m["commonAnnotations"], json!({"summary": "down"}));
        assert_eq!(m["alerts"][0]["fingerprint"].as_str().unwrap().len(), 16);
        let resolved = message("hook", "k", &gl, &alerts[1..], "http://am", 0, 2000);
        assert_eq!(resolved["status"], "resolved");
        assert_eq!(resolved["alerts"][0]["endsAt"], "1970-01-01T00:00:01.500Z");
    }
}
