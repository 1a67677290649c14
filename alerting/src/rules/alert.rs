//! The alerting rule's state machine, as Prometheus's `AlertingRule.Eval` and `sendAlerts`:
//! inactive → pending → firing → resolved, `for`, `keep_firing_for`, the `ALERTS` and
//! `ALERTS_FOR_STATE` samples, and which alerts are (re)sent to Alertmanagers when.

use std::collections::BTreeMap;

/// Label map of an alert (sorted by name, no `__name__`).
pub type LabelMap = BTreeMap<String, String>;

/// How long a resolved alert is kept (and re-sent) after it resolved: 15 minutes.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60_000;

/// An alert's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertState {
    /// Resolved (kept for re-sending).
    Inactive,
    /// Active, waiting for `for`.
    Pending,
    /// Active for at least `for`.
    Firing,
}

impl AlertState {
    /// The name used by the API and the `alertstate` label.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of a rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// Labels: the series' (without `__name__`), the rule's, `alertname`.
    pub labels: LabelMap,
    /// Expanded annotations.
    pub annotations: LabelMap,
    /// The expression's value at the last evaluation.
    pub value: f64,
    /// State.
    pub state: AlertState,
    /// When it became active (ms).
    pub active_at: i64,
    /// When it started firing (ms; 0 = not yet).
    pub fired_at: i64,
    /// When it resolved (ms).
    pub resolved_at: Option<i64>,
    /// When it was last sent (ms).
    pub last_sent_at: Option<i64>,
    /// `endsAt` sent while firing (ms).
    pub valid_until: i64,
    /// Since when it is kept firing by `keep_firing_for` (ms).
    pub keep_firing_since: Option<i64>,
}

/// What one evaluation of an alerting rule produced.
#[derive(Debug, Default)]
pub struct AlertOutput {
    /// `ALERTS` and `ALERTS_FOR_STATE` samples: labels (with `__name__`) and value.
    pub series: Vec<(LabelMap, f64)>,
}

/// An alert as sent to an Alertmanager.
#[derive(Clone, Debug, PartialEq)]
pub struct OutAlert {
    /// Labels (external labels and alert relabeling are applied by the sender).
    pub labels: LabelMap,
    /// Annotations.
    pub annotations: LabelMap,
    /// `startsAt` (ms).
    pub starts_at: i64,
    /// `endsAt` (ms).
    pub ends_at: i64,
    /// `generatorURL`.
    pub generator_url: String,
}

/// The alerts of one rule, keyed by their label set.
#[derive(Clone, Debug, Default)]
pub struct ActiveAlerts {
    /// Alerts by labels.
    pub alerts: BTreeMap<LabelMap, Alert>,
    /// False until `for` state has been restored after a start; no `ALERTS*` are written
    /// before that.
    pub restored: bool,
}

/// One result sample of the rule's expression, already turned into alert labels and
/// expanded annotations.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Alert labels.
    pub labels: LabelMap,
    /// Expanded annotations.
    pub annotations: LabelMap,
    /// The sample value.
    pub value: f64,
}

impl ActiveAlerts {
    /// Applies one evaluation at `ts` of a rule with `hold` (`for`) and `keep_firing_for`;
    /// `limit` > 0 caps the number of active alerts. Returns the `ALERTS*` samples.
    pub fn update(
        &mut self,
        name: &str,
        ts: i64,
        candidates: Vec<Candidate>,
        hold: i64,
        keep_firing_for: i64,
        limit: usize,
    ) -> Result<AlertOutput, String> {
        let mut fresh: BTreeMap<LabelMap, Candidate> = BTreeMap::new();
        for c in candidates {
            if fresh.contains_key(&c.labels) {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .into(),
                );
            }
            fresh.insert(c.labels.clone(), c);
        }
        for (labels, c) in &fresh {
            match self.alerts.get_mut(labels) {
                Some(a) if a.state != AlertState::Inactive => {
                    a.value = c.value;
                    a.annotations = c.annotations.clone();
                }
                _ => {
                    self.alerts.insert(
                        labels.clone(),
                        Alert {
                            labels: labels.clone(),
                            annotations: c.annotations.clone(),
                            value: c.value,
                            state: AlertState::Pending,
                            active_at: ts,
                            fired_at: 0,
                            resolved_at: None,
                            last_sent_at: None,
                            valid_until: 0,
                            keep_firing_since: None,
                        },
                    );
                }
            }
        }
        let mut out = AlertOutput::default();
        let mut active = 0usize;
        let mut remove = Vec::new();
        for (labels, a) in self.alerts.iter_mut() {
            if !fresh.contains_key(labels) {
                let mut keep = false;
                if a.state == AlertState::Firing && keep_firing_for > 0 {
                    let since = *a.keep_firing_since.get_or_insert(ts);
                    keep = ts - since < keep_firing_for;
                }
                if !keep {
                    if a.state == AlertState::Pending
                        || a.resolved_at
                            .is_some_and(|r| ts - r > RESOLVED_RETENTION_MS)
                    {
                        remove.push(labels.clone());
                    }
                    if a.state != AlertState::Inactive {
                        a.state = AlertState::Inactive;
                        a.resolved_at = Some(ts);
                    }
                    continue;
                }
            } else {
                a.keep_firing_since = None;
            }
            active += 1;
            if a.state == AlertState::Pending && ts - a.active_at >= hold {
                a.state = AlertState::Firing;
                a.fired_at = ts;
            }
            if self.restored {
                let mut l = a.labels.clone();
                l.insert("__name__".into(), "ALERTS_FOR_STATE".into());
                out.series
                    .push((l.clone(), (a.active_at.div_euclid(1000)) as f64));
                l.insert("__name__".into(), "ALERTS".into());
                l.insert("alertstate".into(), a.state.as_str().into());
                out.series.push((l, 1.0));
            }
        }
        for l in remove {
            self.alerts.remove(&l);
        }
        if limit > 0 && active > limit {
            self.alerts.clear();
            return Err(format!("exceeded limit of {limit} with {active} alerts"));
        }
        let _ = name;
        Ok(out)
    }

    /// The alerts to send at `ts` (Prometheus's `needsSending`), marking them sent.
    pub fn to_send(
        &mut self,
        ts: i64,
        resend_delay: i64,
        interval: i64,
        generator_url: &str,
    ) -> Vec<OutAlert> {
        let mut out = Vec::new();
        for a in self.alerts.values_mut() {
            let needs = match a.state {
                AlertState::Pending => false,
                _ => match (a.resolved_at, a.last_sent_at) {
                    (Some(r), Some(s)) if r > s => true,
                    (Some(_), None) => true,
                    (_, Some(s)) => s + resend_delay < ts,
                    (None, None) => true,
                },
            };
            if !needs {
                continue;
            }
            a.last_sent_at = Some(ts);
            a.valid_until = ts + 4 * resend_delay.max(interval);
            out.push(OutAlert {
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                starts_at: a.fired_at,
                ends_at: a.resolved_at.unwrap_or(a.valid_until),
                generator_url: generator_url.to_owned(),
            });
        }
        out
    }

    /// Active (not resolved) alerts.
    pub fn active(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values().filter(|a| a.resolved_at.is_none())
    }

    /// The rule's state: the highest state of its active alerts.
    pub fn rule_state(&self) -> AlertState {
        self.active()
            .map(|a| a.state)
            .max()
            .unwrap_or(AlertState::Inactive)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cand(instance: &str, v: f64) -> Candidate {
        let labels = LabelMap::from([
            ("alertname".to_owned(), "A".to_owned()),
            ("instance".to_owned(), instance.to_owned()),
        ]);
        Candidate {
            labels,
            annotations: LabelMap::new(),
            value: v,
        }
    }

    fn restored() -> ActiveAlerts {
        ActiveAlerts {
            restored: true,
            ..Default::default()
        }
    }

    #[test]
    fn pending_then_firing_then_resolved() {
        let mut r = restored();
        let out = r.update("A", 0, vec![cand("a", 1.0)], 5000, 0, 0).unwrap();
        assert_eq!(r.rule_state(), AlertState::Pending);
        assert_eq!(out.series.len(), 2);
        assert!(
            r.to_send(0, 60_000, 1000, "").is_empty(),
            "pending is not sent"
        );
        r.update("A", 4000, vec![cand("a", 1.0)], 5000, 0, 0)
            .unwrap();
        assert_eq!(r.rule_state(), AlertState::Pending);
        let out = r
            .update("A", 5000, vec![cand("a", 2.0)], 5000, 0, 0)
            .unwrap();
        assert_eq!(r.rule_state(), AlertState::Firing);
        let alerts = out
            .series
            .iter()
            .find(|(l, _)| l["__name__"] == "ALERTS")
            .unwrap();
        assert_eq!(alerts.0["alertstate"], "firing");
        let sent = r.to_send(5000, 60_000, 1000, "u");
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].starts_at, 5000);
        assert_eq!(sent[0].ends_at, 5000 + 240_000);
        assert!(
            r.to_send(6000, 60_000, 1000, "u").is_empty(),
            "not resent before the delay"
        );
        assert_eq!(
            r.to_send(65_001, 60_000, 1000, "u").len(),
            1,
            "resent after the delay"
        );
        let out = r.update("A", 70_000, vec![], 5000, 0, 0).unwrap();
        assert!(out.series.is_empty());
        assert_eq!(r.active().count(), 0);
        let sent = r.to_send(70_000, 60_000, 1000, "u");
        assert_eq!(sent.len(), 1, "resolved is sent at once");
        assert_eq!(sent[0].ends_at, 70_000);
        r.update("A", 70_000 + RESOLVED_RETENTION_MS + 1, vec![], 5000, 0, 0)
            .unwrap();
        assert!(r.alerts.is_empty(), "dropped after the retention");
    }

    #[test]
    fn pending_that_vanishes_is_forgotten() {
        let mut r = restored();
        r.update("A", 0, vec![cand("a", 1.0)], 5000, 0, 0).unwrap();
        r.update("A", 1000, vec![], 5000, 0, 0).unwrap();
        assert!(r.alerts.is_empty());
        r.update("A", 2000, vec![cand("a", 1.0)], 5000, 0, 0)
            .unwrap();
        assert_eq!(
            r.alerts.values().next().unwrap().active_at,
            2000,
            "for restarts"
        );
    }

    #[test]
    fn keep_firing_for_holds_the_alert() {
        let mut r = restored();
        r.update("A", 0, vec![cand("a", 1.0)], 0, 3000, 0).unwrap();
        assert_eq!(r.rule_state(), AlertState::Firing);
        r.update("A", 1000, vec![], 0, 3000, 0).unwrap();
        assert_eq!(r.rule_state(), AlertState::Firing);
        assert_eq!(
            r.alerts.values().next().unwrap().keep_firing_since,
            Some(1000)
        );
        r.update("A", 3999, vec![], 0, 3000, 0).unwrap();
        assert_eq!(r.rule_state(), AlertState::Firing);
        r.update("A", 4000, vec![], 0, 3000, 0).unwrap();
        assert_eq!(r.rule_state(), AlertState::Inactive);
    }

    #[test]
    fn limit_and_duplicates_are_errors() {
        let mut r = restored();
        let e = r
            .update("A", 0, vec![cand("a", 1.0), cand("b", 1.0)], 0, 0, 1)
            .unwrap_err();
        assert_eq!(e, "exceeded limit of 1 with 2 alerts");
        assert!(r.alerts.is_empty());
        let e = r
            .update("A", 0, vec![cand("a", 1.0), cand("a", 2.0)], 0, 0, 0)
            .unwrap_err();
        assert!(e.contains("same labelset"));
    }

    #[test]
    fn no_series_before_restore() {
        let mut r = ActiveAlerts::default();
        let out = r.update("A", 0, vec![cand("a", 1.0)], 0, 0, 0).unwrap();
        assert!(out.series.is_empty());
    }
}
