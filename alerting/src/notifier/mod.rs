//! The Alertmanager-class notifier. Built so far: [`config`], the Alertmanager
//! configuration format with its validation (used by `strata check alertmanager-config`),
//! and [`silences`], the persisted silence set (not yet served: it comes with the API v2).
//! The dispatcher, silences, notification log, receivers and the API v2 follow (issue
//! "Alert notifier"); until then alerts go only to the `alerting.alertmanagers` of
//! `prometheus.yml`.

pub mod config;
pub mod silences;
