//! URLs in the configuration (`url`, `proxy_url`, `api_server`). Parsed with a
//! small absolute-URL check (`scheme://host[:port][/path][?query]`); the
//! original text is kept. Serialization redacts an embedded password as
//! `xxxxx`, like Prometheus.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An absolute URL with a scheme and a host.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Url {
    raw: String,
    scheme_len: usize,
    host_start: usize,
    host_end: usize,
    password: Option<(usize, usize)>,
}

impl Url {
    /// Parses and checks an absolute URL.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("invalid URL {s:?}: {why}");
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("contains whitespace or control characters"));
        }
        let scheme_len = s.find("://").ok_or_else(|| bad("missing scheme"))?;
        let scheme = &s[..scheme_len];
        let mut chars = scheme.chars();
        let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !scheme_ok {
            return Err(bad("invalid scheme"));
        }
        let auth_start = scheme_len + 3;
        let auth_end = s[auth_start..]
            .find(['/', '?', '#'])
            .map_or(s.len(), |i| auth_start + i);
        let authority = &s[auth_start..auth_end];
        let (host_start, password) = match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                let pw = userinfo
                    .find(':')
                    .map(|c| (auth_start + c + 1, auth_start + at));
                (auth_start + at + 1, pw)
            }
            None => (auth_start, None),
        };
        let hostport = &s[host_start..auth_end];
        let host_len = if hostport.starts_with('[') {
            hostport
                .find(']')
                .ok_or_else(|| bad("unterminated IPv6 host"))?
                + 1
        } else {
            hostport.find(':').unwrap_or(hostport.len())
        };
        if host_len == 0 {
            return Err(bad("missing host"));
        }
        let port = &hostport[host_len..];
        if let Some(p) = port.strip_prefix(':') {
            if !p.is_empty() && (p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit())) {
                return Err(bad("invalid port"));
            }
        } else if !port.is_empty() {
            return Err(bad("invalid host"));
        }
        Ok(Url {
            raw: s.to_owned(),
            scheme_len,
            host_start,
            host_end: host_start + host_len,
            password,
        })
    }

    /// The URL as written in the configuration.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The scheme (`http`, `https`, ...).
    pub fn scheme(&self) -> &str {
        &self.raw[..self.scheme_len]
    }

    /// The host (IPv6 hosts keep their brackets).
    pub fn host(&self) -> &str {
        &self.raw[self.host_start..self.host_end]
    }

    /// The URL with any password replaced by `xxxxx`.
    pub fn redacted(&self) -> String {
        match self.password {
            Some((a, b)) => format!("{}xxxxx{}", &self.raw[..a], &self.raw[b..]),
            None => self.raw.clone(),
        }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for Url {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for Url {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::de::parse_str(d, "an absolute URL", Url::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::Url;

    #[test]
    fn parses_and_redacts() {
        let u = Url::parse("https://user:pw@example.com:9090/api/v1/write?x=1").expect("valid");
        assert_eq!(u.scheme(), "https");
        assert_eq!(u.host(), "example.com");
        assert_eq!(
            u.redacted(),
            "https://user:xxxxx@example.com:9090/api/v1/write?x=1"
        );
        assert!(Url::parse("http://[::1]:80/").is_ok());
        for bad in [
            "example.com",
            "http://",
            "http:// x",
            "http://h:port/",
            "1http://h",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }
}
