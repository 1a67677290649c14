//! Request parameters as Prometheus reads them: from the query string and, for
//! form-encoded POSTs, the body (repeated keys such as `match[]` kept); times as RFC 3339
//! or Unix seconds; series selectors parsed with the PromQL grammar into storage matchers.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri, header};
use strata_grammar::{Expr, MatchOp as GMatchOp};
use strata_storage::{METRIC_NAME, MatchOp, Matcher};

use crate::error::ApiError;

/// Earliest and latest times a range may name (ms), as Prometheus's `MinTime`/`MaxTime`.
pub(crate) const MIN_TIME: i64 = i64::MIN / 2;
pub(crate) const MAX_TIME: i64 = i64::MAX / 2;

/// All parameters of a request, in order.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

/// Largest form body (query text and other parameters) read: past it the request gets 413,
/// not a parse error of a cut query. Go's `ParseForm`, behind Prometheus, reads 10 MB.
pub(crate) const MAX_FORM_BODY: usize = 10 << 20;

impl<S: Send + Sync> axum::extract::FromRequest<S> for Params {
    type Rejection = axum::response::Response;

    /// Query string plus form body: handlers take `p: Params` as their last argument.
    async fn from_request(
        req: axum::extract::Request,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        let (parts, body) = req.into_parts();
        let bytes: Bytes = match axum::body::to_bytes(body, MAX_FORM_BODY).await {
            Ok(b) => b,
            Err(e) => {
                return Err(ApiError::TooLarge(format!(
                    "request body past the limit of {MAX_FORM_BODY} bytes: {e}"
                ))
                .into_response());
            }
        };
        Ok(Params::from_request(
            &parts.method,
            &parts.uri,
            &parts.headers,
            &bytes,
        ))
    }
}

impl Params {
    /// Reads the query string, plus the body of a form-encoded POST/PUT.
    pub(crate) fn from_request(
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Params {
        let mut v: Vec<(String, String)> = uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        if (method == Method::POST || method == Method::PUT) && is_form {
            v.extend(form_urlencoded::parse(body).into_owned());
        }
        Params(v)
    }

    /// The first value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub(crate) fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A time parameter, or `default` when absent.
    pub(crate) fn time_or(&self, key: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(default),
            Some(s) => parse_time(s).ok_or_else(|| {
                ApiError::BadData(format!(
                    "invalid parameter \"{key}\": cannot parse \"{s}\" to a valid timestamp"
                ))
            }),
        }
    }

    /// `limit`: 0 or absent means none.
    pub(crate) fn limit(&self) -> Result<Option<usize>, ApiError> {
        match self.get("limit") {
            None | Some("") => Ok(None),
            Some(s) => match s.parse::<i64>() {
                Ok(0) => Ok(None),
                Ok(n) if n > 0 => Ok(Some(n as usize)),
                _ => Err(ApiError::BadData(format!(
                    "invalid parameter \"limit\": cannot parse \"{s}\" to a valid limit"
                ))),
            },
        }
    }

    /// Every `match[]` parsed into matcher lists.
    pub(crate) fn selectors(&self) -> Result<Vec<Vec<Matcher>>, ApiError> {
        self.all("match[]")
            .into_iter()
            .map(parse_selector)
            .collect()
    }
}

/// RFC 3339 or Unix seconds (with fraction) → ms.
pub(crate) fn parse_time(s: &str) -> Option<i64> {
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() {
            return None;
        }
        let ms = (f * 1000.0).round();
        return (ms >= MIN_TIME as f64 && ms <= MAX_TIME as f64).then_some(ms as i64);
    }
    parse_rfc3339(s)
}

/// `2015-07-01T20:10:30.781Z` or with `+hh:mm` offset → ms since the epoch.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = s.get(start..i)?;
        if digits.is_empty() {
            return None;
        }
        let padded: String = digits
            .chars()
            .chain(std::iter::repeat('0'))
            .take(3)
            .collect();
        frac_ms = padded.parse().ok()?;
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        c @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let m = oh * 60 + om;
            if *c == b'+' { m } else { -m }
        }
        _ => return None,
    };
    let days = strata_grammar::days_from_civil(y, mo, d);
    let secs = days * 86400 + h * 3600 + mi * 60 + se - offset_min * 60;
    Some(secs * 1000 + frac_ms)
}

/// A series selector (`up{job="x"}`) → storage matchers.
pub fn parse_selector(s: &str) -> Result<Vec<Matcher>, ApiError> {
    let expr = strata_grammar::parse(s).map_err(|e| ApiError::BadData(e.to_string()))?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(ApiError::BadData(format!(
            "invalid parameter \"match[]\": 1:1: parse error: expected a vector selector, got {s:?}"
        )));
    };
    selector_matchers(&vs)
}

/// A parsed vector selector's matchers, compiled for storage (the name as `__name__`).
pub(crate) fn selector_matchers(
    vs: &strata_grammar::VectorSelector,
) -> Result<Vec<Matcher>, ApiError> {
    let mut out = Vec::with_capacity(vs.matchers.len() + 1);
    if let Some(name) = &vs.name {
        out.push(Matcher::equal(METRIC_NAME, name.clone()));
    }
    for m in &vs.matchers {
        let op = match m.op {
            GMatchOp::Equal => MatchOp::Equal,
            GMatchOp::NotEqual => MatchOp::NotEqual,
            GMatchOp::Regex => MatchOp::Regex,
            GMatchOp::NotRegex => MatchOp::NotRegex,
        };
        out.push(
            Matcher::new(op, m.name.clone(), m.value.clone())
                .map_err(|e| ApiError::BadData(e.to_string()))?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1435781430.781"), Some(1_435_781_430_781));
        assert_eq!(
            parse_time("2015-07-01T20:10:30.781Z"),
            Some(1_435_781_430_781)
        );
        assert_eq!(
            parse_time("2015-07-01T22:10:30.781+02:00"),
            Some(1_435_781_430_781)
        );
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time("0"), Some(0));
        assert_eq!(parse_time("-1.5"), Some(-1500));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("NaN"), None);
    }

    #[test]
    fn selectors() {
        let m = parse_selector(r#"up{job=~"a|b"}"#).expect("valid");
        assert_eq!(m.len(), 2);
        assert!(m[1].matches("a") && !m[1].matches("c"));
        assert!(parse_selector("rate(x[5m])").is_err());
        assert!(parse_selector("{").is_err());
    }
}
