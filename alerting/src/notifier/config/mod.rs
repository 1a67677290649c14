//! Alertmanager's configuration file (`alertmanager.yml`, 0.25+): loaded strictly, with
//! Alertmanager's defaults and checks, every error as `origin:line:col: field.path: what`,
//! and written back with secrets shown as `<secret>`.
//!
//! Strata delivers to the receiver kinds registered in [`crate::notifier::send`]; files
//! using other receiver kinds are rejected. Time intervals are evaluated in UTC only.

mod duration;
mod error;
mod global;
mod inhibit;
mod locate;
mod matchers;
mod receivers;
mod route;
pub(crate) mod scalar;
pub(crate) mod secret;
mod time_interval;

#[cfg(test)]
mod tests;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use crate::notifier::send::{
    PagerdutyConfig, Receiver, SlackConfig, SlackField, WebhookConfig,
};
pub use duration::Duration;
pub use error::ConfigError;
pub use global::{
    DEFAULT_OPSGENIE_URL, DEFAULT_PAGERDUTY_URL, DEFAULT_TELEGRAM_URL, DEFAULT_WEBEX_URL,
    GlobalConfig, SmtpGlobals,
};
pub use inhibit::InhibitRule;
pub use matchers::{MatchOp, Matcher, matchers_string, matches_all, parse_matcher, parse_matchers};
pub use receivers::supported_kinds;
pub use route::Route;
pub use secret::SECRET_TOKEN;
pub use time_interval::{NamedTimeInterval, TimeInterval, TimeRange};

use locate::Locator;
use scalar::or_default;

/// A loaded and validated Alertmanager configuration.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `global`.
    #[serde(default, deserialize_with = "or_default")]
    pub global: GlobalConfig,
    /// `route`: the routing tree's root.
    pub route: Route,
    /// `inhibit_rules`.
    #[serde(
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub inhibit_rules: Vec<InhibitRule>,
    /// `receivers`.
    #[serde(
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub receivers: Vec<Receiver>,
    /// `templates`: glob patterns as written.
    #[serde(default, deserialize_with = "or_default")]
    pub templates: Vec<String>,
    /// Deprecated `mute_time_intervals`.
    #[serde(
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mute_time_intervals: Vec<NamedTimeInterval>,
    /// `time_intervals`.
    #[serde(
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub time_intervals: Vec<NamedTimeInterval>,
}

impl Config {
    /// Reads and validates a configuration file; errors name the file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            origin: origin.clone(),
            source,
        })?;
        Config::from_yaml_str(&text, &origin)
    }

    /// Parses and validates configuration text; `origin` names it in errors.
    pub fn from_yaml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let loc = Locator::new(origin, text);
        if text.trim().is_empty() {
            return Err(loc.err("route", "no route provided in config"));
        }
        let yaml_err = |e: serde_yaml_ng::Error| ConfigError::from_yaml(origin, &e);
        let raw: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(yaml_err)?;
        receivers::reject_unsupported(&raw, &loc)?;
        let mut cfg: Config = serde_yaml_ng::from_str(text).map_err(yaml_err)?;
        cfg.global.validate(&loc)?;
        let receivers = receivers::resolve(&mut cfg.receivers, &cfg.global, &loc)?;
        let intervals = time_interval::resolve(
            [
                (
                    "mute_time_intervals",
                    cfg.mute_time_intervals.as_mut_slice(),
                ),
                ("time_intervals", cfg.time_intervals.as_mut_slice()),
            ],
            &loc,
        )?;
        cfg.route.resolve_root(&loc, &receivers, &intervals)?;
        for (i, rule) in cfg.inhibit_rules.iter_mut().enumerate() {
            rule.resolve(&format!("inhibit_rules[{i}]"), &loc)?;
        }
        Ok(cfg)
    }

    /// The configuration as YAML, defaults filled in and secrets as `<secret>`, like
    /// Alertmanager's `/api/v2/status` shows it.
    pub fn to_yaml(&self) -> Result<String, ConfigError> {
        serde_yaml_ng::to_string(self).map_err(|e| ConfigError::Serialize(e.to_string()))
    }

    /// The receiver named `name`.
    pub fn receiver(&self, name: &str) -> Option<&Receiver> {
        self.receivers.iter().find(|r| r.name == name)
    }

    /// The time interval named `name` (from `time_intervals` or `mute_time_intervals`).
    pub fn time_interval(&self, name: &str) -> Option<&NamedTimeInterval> {
        self.time_intervals
            .iter()
            .chain(&self.mute_time_intervals)
            .find(|t| t.name == name)
    }
}
