//! # strata-alerting
//!
//! Rules and alerts. [`rules`] loads Prometheus rule files, evaluates recording and alerting
//! rules on the engine at each group's interval, writes their results (and the `ALERTS` /
//! `ALERTS_FOR_STATE` series) to storage, restores `for` state after a restart, and sends
//! firing and resolved alerts to Alertmanagers with Prometheus's resend rules. It also runs
//! `promtool`-format rule unit tests ([`rules::unittest`]). [`notifier`] is the built-in
//! Alertmanager (routing, grouping, inhibition, silences, notification log, webhook, Slack
//! and PagerDuty). [`template`] is the Go text/template subset rule labels, annotations and
//! notification texts are written in.
//!
//! Deviation from `ARCHITECTURE.md`: templates are a small evaluator of our own
//! ([`template`]), not a template crate. Rule templates are Go text/template with
//! Prometheus's function set, notification templates with Alertmanager's (and its default
//! templates, `define`/`template`/`block`); the Rust crates that implement Go templates are unmaintained
//! or differ in printing floats and missing keys, which every alert annotation shows.

pub mod error;
pub mod format;
pub mod notifier;
pub mod rules;
pub mod template;

pub use error::{AlertingError, Result};
