//! The Alertmanager-class notifier. Built so far: [`config`], the Alertmanager
//! configuration format with its validation (used by `strata check alertmanager-config`),
//! [`silences`], the persisted silence set, [`alert`] (alerts with Alertmanager's
//! fingerprint), [`nflog`] (the persisted notification log and the dedup decision) and
//! [`webhook`] (the webhook message) — not yet served: the dispatcher and
//! the API v2 that use them come next.
//! The dispatcher, silences, notification log, receivers and the API v2 follow (issue
//! "Alert notifier"); until then alerts go only to the `alerting.alertmanagers` of
//! `prometheus.yml`.

pub mod alert;
pub mod config;
pub mod nflog;
pub mod silences;
pub mod webhook;
