//! Recording and alerting rules: [`file`] (rule files and their validation), [`alert`] (the
//! alert state machine), [`group`] (evaluation of a group), [`manager`] (schedules,
//! reloads, `for` state restore), [`sender`] (delivery to Alertmanagers), [`unittest`]
//! (`promtool test rules` files).

pub mod alert;
pub mod file;
pub mod group;
pub mod manager;
pub mod notation;
pub mod sender;
pub mod unittest;

pub use alert::{Alert, AlertState, OutAlert};
pub use file::{RuleFile, duplicate_rules, expand_globs, load_files, parse_rule_file};
pub use group::{AlertSink, Group, Health, RuleContext};
pub use manager::{ManagerOptions, RuleManager};
pub use sender::Sender;
