//! `email_configs`: Alertmanager's email notifier over SMTP (lettre's client and MIME
//! encoding): [`config`] (fields, defaults, `smtp_*` fallbacks and checks), [`message`]
//! (headers and the `multipart/alternative` body), [`smtp`] (the conversation: TLS,
//! AUTH, delivery) and [`tls`] (the `tls_config`).

mod config;
mod message;
mod smtp;
mod tls;

use std::collections::BTreeMap;
use std::str::FromStr;

use lettre::address::{Address, Envelope};
use lettre::message::Mailboxes;
use lettre::transport::smtp::extension::ClientId;
use serde_yaml_ng::Value;

pub use config::{EmailConfig, check_smtp_tls, split_host_port};

use super::integration::{Context, FieldError, Integration, SendError};
use crate::notifier::config::GlobalConfig;

#[async_trait::async_trait]
impl Integration for EmailConfig {
    fn kind(&self) -> &'static str {
        "email"
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn resolve(&mut self, global: &GlobalConfig) -> Result<(), FieldError> {
        self.resolve_with(global)
    }

    fn http_config(&self) -> Option<Option<&Value>> {
        None
    }

    async fn notify(&self, cx: &Context<'_>) -> Result<(), SendError> {
        let data = cx.data();
        let from = cx.render("from", &self.from, &data)?;
        let to = cx.render("to", &self.to, &data)?;
        let from = addresses("from", &from)?;
        let [sender] = from.as_slice() else {
            return Err(SendError::fatal(format!(
                "must be exactly one 'from' address (got: {})",
                from.len()
            )));
        };
        let envelope = Envelope::new(Some(sender.clone()), addresses("to", &to)?)
            .map_err(|e| SendError::fatal(format!("envelope: {e}")))?;
        let mut headers = BTreeMap::new();
        let defaults = [
            ("Subject", config::DEFAULT_SUBJECT),
            ("To", self.to.as_str()),
            ("From", self.from.as_str()),
        ];
        for (name, text) in defaults {
            if !self.headers.contains_key(name) {
                headers.insert(name.to_owned(), cx.render(name, text, &data)?);
            }
        }
        for (name, text) in &self.headers {
            let field = format!("headers.{name}");
            headers.insert(name.clone(), cx.render(&field, text, &data)?);
        }
        let rendered = message::Rendered {
            headers,
            text: match self.text.as_str() {
                "" => None,
                t => Some(cx.render("text", t, &data)?),
            },
            html: match self.html.as_str() {
                "" => None,
                t => Some(cx.render_html("html", t, &data)?),
            },
        };
        let bytes = message::format(&rendered, &hostname(), cx.n.now).map_err(SendError::fatal)?;
        smtp::deliver(self, &envelope, &bytes).await
    }
}

/// The addresses of a list as `net/mail.ParseAddressList` reads it.
fn addresses(field: &str, list: &str) -> Result<Vec<Address>, SendError> {
    let m = Mailboxes::from_str(list)
        .map_err(|e| SendError::fatal(format!("parse '{field}' addresses: {e}")))?;
    Ok(m.into_iter().map(|mb| mb.email).collect())
}

/// This machine's name for `Message-Id` (`localhost.localdomain` when unknown).
fn hostname() -> String {
    match ClientId::default() {
        ClientId::Domain(h) if h != "localhost" => h,
        _ => "localhost.localdomain".to_owned(),
    }
}
