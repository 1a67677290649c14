//! The request side of the HTTP stand-ins the notifier tests run (webhook, Slack,
//! PagerDuty, Opsgenie, … receivers): one HTTP/1.1 request read off a keep-alive
//! connection.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;

/// One request: method, target, headers as received (lower-cased, one per line) and the
/// body as JSON (`Null` when it is not JSON).
pub struct Request {
    pub method: String,
    pub target: String,
    pub headers: String,
    pub body: serde_json::Value,
}

/// The next request on `r`, `None` once the connection ends.
pub fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut it = line.split_whitespace();
    let method = it.next().unwrap_or("").to_owned();
    let target = it.next().unwrap_or("").to_owned();
    let mut headers = String::new();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap_or(0);
        }
        headers.push_str(&h.to_ascii_lowercase());
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        target,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    })
}
