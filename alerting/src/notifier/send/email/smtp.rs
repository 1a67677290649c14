//! The SMTP conversation of one notification, as Alertmanager's email notifier holds it:
//! connect (implicit TLS when the smarthost port is 465 or `force_implicit_tls`), EHLO with
//! `hello`, STARTTLS when `require_tls` (an error when the server does not offer it; no
//! opportunistic STARTTLS otherwise), AUTH when the server offers it and `auth_username` is
//! set — the first of the server's mechanisms Strata can do with the configured secrets,
//! PLAIN (with `auth_identity`, refused over plain text to a remote host, as Go's
//! `smtp.PlainAuth`) or LOGIN — then MAIL, RCPT, DATA and QUIT. Network and protocol
//! failures are worth another attempt; configuration and address errors are not.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::Ehlo;
use lettre::transport::smtp::extension::ClientId;

use super::config::EmailConfig;
use super::tls;
use crate::notifier::send::SendError;
use crate::notifier::send::http::read_secret_file;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A raw SMTP command line.
struct Raw(String);

impl fmt::Display for Raw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\r\n", self.0)
    }
}

/// Delivers `message` to the envelope's recipients through the entry's smarthost.
pub(super) async fn deliver(
    cfg: &EmailConfig,
    envelope: &Envelope,
    message: &[u8],
) -> Result<(), SendError> {
    let (host, port) = cfg.host_port().map_err(SendError::fatal)?;
    let implicit = cfg.force_implicit_tls.unwrap_or(port == 465);
    let tls_params = || tls::parameters(cfg.tls_config.as_ref(), &host).map_err(SendError::fatal);
    // Go's client says `localhost` when no name is set.
    let hello = if cfg.hello.is_empty() {
        "localhost"
    } else {
        &cfg.hello
    };
    let client_id = ClientId::Domain(hello.to_owned());
    let mut conn = AsyncSmtpConnection::connect_tokio1(
        (host.as_str(), port),
        Some(CONNECT_TIMEOUT),
        &client_id,
        if implicit { Some(tls_params()?) } else { None },
        None,
    )
    .await
    .map_err(|e| SendError::retry(format!("establish connection to {}: {e}", cfg.smarthost)))?;
    // A failed STARTTLS leaves lettre's connection without a stream: it is dropped, not
    // quit (lettre panics writing to it).
    let mut usable = true;
    let r = converse(
        cfg,
        &mut conn,
        &client_id,
        &host,
        implicit,
        &tls_params,
        envelope,
        message,
        &mut usable,
    )
    .await;
    if r.is_ok() {
        let _ = conn.quit().await;
    } else if usable {
        conn.abort().await;
    }
    r
}

#[allow(clippy::too_many_arguments)]
async fn converse(
    cfg: &EmailConfig,
    conn: &mut AsyncSmtpConnection,
    client_id: &ClientId,
    host: &str,
    implicit: bool,
    tls_params: &(
         dyn Fn() -> Result<lettre::transport::smtp::client::TlsParameters, SendError> + Sync
     ),
    envelope: &Envelope,
    message: &[u8],
    usable: &mut bool,
) -> Result<(), SendError> {
    if cfg.require_tls.unwrap_or(true) && !implicit {
        if !conn.can_starttls() {
            return Err(SendError::retry(format!(
                "'require_tls' is true (default) but {:?} does not advertise the STARTTLS extension",
                cfg.smarthost
            )));
        }
        let params = tls_params()?;
        if let Err(e) = conn.starttls(params, client_id).await {
            *usable = false;
            return Err(SendError::retry(format!("send STARTTLS command: {e}")));
        }
    }
    if !cfg.auth_username.is_empty() {
        // The server's mechanisms in its order (lettre keeps only a set).
        let ehlo = conn
            .command(Ehlo::new(client_id.clone()))
            .await
            .map_err(|e| SendError::retry(format!("send EHLO command: {e}")))?;
        let mechs: Vec<String> = ehlo
            .message()
            .filter_map(|l| {
                let l = l.trim();
                l.strip_prefix("AUTH ").or_else(|| l.strip_prefix("AUTH="))
            })
            .flat_map(|l| l.split_whitespace().map(str::to_ascii_uppercase))
            .collect();
        if !mechs.is_empty() {
            authenticate(cfg, conn, host, &mechs).await?;
        }
    }
    conn.send(envelope, message)
        .await
        .map_err(|e| SendError::retry(format!("delivery failure: {e}")))?;
    Ok(())
}

/// The first mechanism of the server's list Strata can do with the entry's secrets.
async fn authenticate(
    cfg: &EmailConfig,
    conn: &mut AsyncSmtpConnection,
    host: &str,
    mechs: &[String],
) -> Result<(), SendError> {
    let mut errs = Vec::new();
    for mech in mechs {
        match mech.as_str() {
            "CRAM-MD5" => errs.push("missing secret for CRAM-MD5 auth mechanism".to_owned()),
            "PLAIN" | "LOGIN" => {
                let password = match (&cfg.auth_password, &cfg.auth_password_file) {
                    (_, Some(f)) => read_secret_file(f).map_err(|e| e.msg),
                    (Some(p), None) => Ok(p.clone()),
                    (None, None) => Ok(String::new()),
                };
                let password = match password {
                    Ok(p) if !p.is_empty() => p,
                    Ok(_) => {
                        errs.push(format!("missing password for {mech} auth mechanism"));
                        continue;
                    }
                    Err(e) => {
                        errs.push(e);
                        continue;
                    }
                };
                return if mech == "PLAIN" {
                    plain(cfg, conn, host, &password).await
                } else {
                    let creds = Credentials::new(cfg.auth_username.clone(), password);
                    conn.auth(&[Mechanism::Login], &creds)
                        .await
                        .map(drop)
                        .map_err(|e| SendError::retry(format!("LOGIN auth: {e}")))
                };
            }
            other => errs.push(format!("unknown auth mechanism: {other}")),
        }
    }
    Err(SendError::retry(format!(
        "find auth mechanism: {}",
        errs.join("; ")
    )))
}

/// AUTH PLAIN with the authorization identity (Go's `smtp.PlainAuth`).
async fn plain(
    cfg: &EmailConfig,
    conn: &mut AsyncSmtpConnection,
    host: &str,
    password: &str,
) -> Result<(), SendError> {
    let local = matches!(host, "localhost" | "127.0.0.1" | "::1");
    if !conn.is_encrypted() && !local {
        return Err(SendError::retry("PLAIN auth: unencrypted connection"));
    }
    let token = format!("{}\0{}\0{password}", cfg.auth_identity, cfg.auth_username);
    let b64 = base64::engine::general_purpose::STANDARD.encode(token);
    conn.command(Raw(format!("AUTH PLAIN {b64}")))
        .await
        .map(drop)
        .map_err(|e| SendError::retry(format!("PLAIN auth: {e}")))
}
