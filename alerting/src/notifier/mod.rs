//! The Alertmanager-class notifier. Built so far: [`config`], the Alertmanager
//! configuration format with its validation (used by `strata check alertmanager-config`),
//! [`silences`], the persisted silence set, [`alert`] (alerts with Alertmanager's
//! fingerprint), [`nflog`] (the persisted notification log and the dedup decision) and
//! [`webhook`] (the webhook message). Not built yet (issue "Alert notifier"): the
//! dispatcher that uses them, the Slack and PagerDuty senders and the API v2; until then
//! alerts go only to the `alerting.alertmanagers` of `prometheus.yml`.

pub mod alert;
pub mod config;
pub mod nflog;
pub mod silences;
pub mod webhook;
