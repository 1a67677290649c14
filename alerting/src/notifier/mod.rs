//! The Alertmanager-class notifier, on when `--alertmanager.config.file` is given:
//! [`config`] (Alertmanager's configuration format and checks), [`dispatch`] (alert store,
//! routing, aggregation groups, inhibition, silencing, dedup and delivery), [`group`]
//! (aggregation groups), [`send`] (the receiver integrations — webhook, Slack,
//! PagerDuty, email, … — with retries), [`acks`] (acknowledgements of alert groups that
//! stop their repeat notifications), [`render`] (notification templates), [`silences`] and [`nflog`] (persisted
//! silences and notification log), [`alert`] (alerts with Alertmanager's fingerprint) and
//! [`webhook`] (the webhook message), [`cluster`] (high availability: silences and the
//! notification log gossiped between notifiers, each notification sent once by the
//! cluster). The HTTP API v2 over it lives in the api crate.

pub mod acks;
pub mod alert;
pub mod cluster;
pub mod config;
pub mod dispatch;
pub mod group;
pub mod nflog;
pub mod render;
pub mod send;
pub mod silences;
pub mod webhook;

pub use dispatch::{Notifier, NotifierMetrics, NotifierOptions, now_ms};
