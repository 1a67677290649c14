//! The HTTP side shared by the integrations that speak HTTP: the client built from an
//! entry's `http_config` (proxy, TLS, authorization), JSON requests with Alertmanager's
//! `User-Agent` and outcome classification (network errors, 5xx and 429 are worth
//! another attempt; other 4xx are final), URL redaction in errors, secrets read from
//! `*_file` fields, and Alertmanager's truncation helpers.

use std::time::Duration;

use serde_yaml_ng::Value;
use strata_config::HttpClientConfig;
use strata_ingest::http_client::HttpClient;

use super::integration::SendError;

/// `User-Agent` of notifications: receivers written for Alertmanager look for the prefix.
pub const USER_AGENT: &str = concat!("Alertmanager/strata-", env!("CARGO_PKG_VERSION"));

/// How long one request may take when the entry sets no timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The client of one entry: its `http_config`, else the global one, else the defaults.
pub(super) fn client(
    own: Option<&Value>,
    global: Option<&Value>,
    what: &str,
) -> Result<HttpClient, String> {
    let v = own.or(global).cloned().unwrap_or_default();
    let cfg =
        HttpClientConfig::from_yaml_value(v).map_err(|e| format!("{what}: http_config: {e}"))?;
    HttpClient::new_title_case(&cfg, what).map_err(|e| e.to_string())
}

/// One request of an integration.
pub(super) struct Request<'a> {
    /// `POST`, `PUT`, …
    pub(super) method: reqwest::Method,
    /// Where.
    pub(super) url: &'a str,
    /// The JSON body.
    pub(super) body: &'a serde_json::Value,
    /// Headers besides the `http_config` ones.
    pub(super) headers: Vec<(&'static str, String)>,
    /// The entry's timeout (30 s when `None`).
    pub(super) timeout: Option<Duration>,
}

impl<'a> Request<'a> {
    /// A JSON POST.
    pub(super) fn post(url: &'a str, body: &'a serde_json::Value) -> Request<'a> {
        Request {
            method: reqwest::Method::POST,
            url,
            body,
            headers: Vec::new(),
            timeout: None,
        }
    }
}

/// POSTs a JSON body; classifies the outcome. Returns the response body on success.
pub(super) async fn post_json(
    http: &HttpClient,
    url: &str,
    body: &serde_json::Value,
    timeout: Option<Duration>,
) -> Result<String, SendError> {
    let mut r = Request::post(url, body);
    r.timeout = timeout;
    send(http, r).await
}

/// Sends `r`; classifies the outcome. Returns the response body on success.
pub(super) async fn send(http: &HttpClient, r: Request<'_>) -> Result<String, SendError> {
    let headers = http
        .request_headers()
        .map_err(|e| SendError::fatal(e.to_string()))?;
    let method = r.method.clone();
    let mut req = http
        .client
        .request(r.method, r.url)
        .headers(headers)
        .header(reqwest::header::USER_AGENT, USER_AGENT)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    for (k, v) in r.headers {
        req = req.header(k, v);
    }
    let req = req
        .body(r.body.to_string())
        .timeout(r.timeout.unwrap_or(DEFAULT_TIMEOUT));
    let resp = req
        .send()
        .await
        .map_err(|e| SendError::retry(format!("{method} {}: {e}", redact(r.url))))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if status.is_success() {
        return Ok(text);
    }
    let retry = status.is_server_error() || status.as_u16() == 429;
    let mut snippet: String = text.chars().take(200).collect();
    if snippet.is_empty() {
        snippet = "(empty body)".to_owned();
    }
    Err(SendError {
        retry,
        msg: format!(
            "{method} {}: unexpected status {status}: {snippet}",
            redact(r.url)
        ),
    })
}

/// The URL without its path and query (webhook URLs often carry secrets).
pub(super) fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!("{}://{}/<redacted>", u.scheme(), u.host_str().unwrap_or("")),
        Err(_) => "<url>".to_owned(),
    }
}

/// `s` cut to `max` characters, the last one `…` when cut (Alertmanager's `TruncateInRunes`).
pub(super) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    if max <= 3 {
        return s.chars().take(max).collect();
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}

/// `s` cut to `max` bytes on a character boundary, ending in `…` when cut (Alertmanager's
/// `TruncateInBytes`).
pub(super) fn truncate_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    if max <= 3 {
        return if max == 3 {
            "…".to_owned()
        } else {
            ".".repeat(max)
        };
    }
    let mut end = max - 3;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Reads a `*_file` secret, trimmed.
pub(super) fn read_secret_file(path: &str) -> Result<String, SendError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| SendError::fatal(format!("reading {path}: {e}")))
}

/// The value of a secret given inline or in a file (exactly one is set after loading).
pub(super) fn secret_or_file(
    inline: Option<&String>,
    file: Option<&String>,
    what: &str,
) -> Result<String, SendError> {
    match (inline, file) {
        (Some(v), _) => Ok(v.clone()),
        (None, Some(f)) => read_secret_file(f),
        (None, None) => Err(SendError::fatal(format!("no {what} configured"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_as_alertmanager() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        assert_eq!(truncate("abcdef", 2), "ab");
        assert_eq!(truncate_bytes("abcdef", 5), "ab…");
        assert_eq!(truncate_bytes("ééé", 5), "é…");
        assert_eq!(truncate_bytes("abc", 3), "abc");
    }
}
