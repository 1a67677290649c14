//! Receiver integrations and their delivery. Each `*_configs` entry type implements
//! [`Integration`] (its checks at load, templates and one delivery attempt) in its own
//! file and is listed once below; [`Instance`] delivers with Alertmanager's retry policy
//! and counts attempts per kind ([`SendMetrics`]).

mod check;
mod discord;
mod email;
mod googlechat;
mod http;
mod instance;
mod integration;
mod metrics;
mod msteamsv2;
mod opsgenie;
mod pagerduty;
mod registry;
mod slack;
mod telegram;
mod webex;
mod webhook;

pub use discord::DiscordConfig;
pub use email::{EmailConfig, check_smtp_tls, split_host_port};
pub use googlechat::GoogleChatConfig;
pub use http::USER_AGENT;
pub use instance::Instance;
pub use integration::{AckNotice, Context, FieldError, Integration, Notification, SendError};
pub use metrics::{KindCounters, SendMetrics};
pub use msteamsv2::MsTeamsV2Config;
pub use opsgenie::{OpsgenieConfig, OpsgenieResponder};
pub use pagerduty::PagerdutyConfig;
pub use slack::{SlackConfig, SlackField};
pub use telegram::TelegramConfig;
pub use webex::WebexConfig;
pub use webhook::WebhookConfig;

registry::integrations! {
    webhook_configs => WebhookConfig,
    slack_configs => SlackConfig,
    pagerduty_configs => PagerdutyConfig,
    email_configs => EmailConfig,
    msteamsv2_configs => MsTeamsV2Config,
    telegram_configs => TelegramConfig,
    discord_configs => DiscordConfig,
    opsgenie_configs => OpsgenieConfig,
    webex_configs => WebexConfig,
    googlechat_configs => GoogleChatConfig,
}
