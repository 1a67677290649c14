//! Rules and alerts: the rule manager (Prometheus rule files, recording and alerting rules)
//! and the Alertmanager-class notifier (routing, grouping, inhibition, silences, receivers).
//!
//! Not built yet (issues "Recording and alerting rules" and "Alert notifier"); nothing here
//! is wired into the binary until it works.
