//! The message Alertmanager's email notifier writes: every configured header (`Subject`,
//! `To` and `From` defaulted from the entry) rendered as a template and RFC 2047-encoded
//! when not ASCII, `Message-Id` unless configured, `Date` (RFC 1123 with numeric zone),
//! `MIME-Version`, and a `multipart/alternative` body with the text part first and the
//! HTML part last (RFC 2046's preferred-last order), each quoted-printable. MIME encoding
//! and header folding are lettre's.

use std::collections::BTreeMap;

use lettre::message::header::{
    ContentTransferEncoding, ContentType, HeaderName, HeaderValue, Headers,
};
use lettre::message::{MultiPart, SinglePart};

/// The rendered parts of one message.
pub(super) struct Rendered {
    /// Header name → rendered value, with `Subject`, `To` and `From` present.
    pub(super) headers: BTreeMap<String, String>,
    /// The plain-text part, if the entry has `text`.
    pub(super) text: Option<String>,
    /// The HTML part, if the entry has `html`.
    pub(super) html: Option<String>,
}

/// The message bytes; `host` names this machine in the generated `Message-Id`.
pub(super) fn format(r: &Rendered, host: &str, now_ms: i64) -> Result<Vec<u8>, String> {
    let mut h = Headers::new();
    for (name, value) in &r.headers {
        let name = HeaderName::new_from_ascii(name.clone())
            .map_err(|_| format!("invalid header name {name:?}"))?;
        h.insert_raw(HeaderValue::new(name, value.clone()));
    }
    if !r.headers.contains_key("Message-Id") {
        let nanos = now_ms.saturating_mul(1_000_000);
        let rand = ulid::Ulid::new().random();
        raw(&mut h, "Message-Id", format!("<{nanos}.{rand}@{host}>"))?;
    }
    raw(&mut h, "Date", rfc1123z(now_ms))?;
    raw(&mut h, "MIME-Version", "1.0".to_owned())?;
    let mut body = MultiPart::alternative().build();
    if let Some(text) = &r.text {
        body = body.singlepart(part("text/plain; charset=UTF-8", text)?);
    }
    if let Some(html) = &r.html {
        body = body.singlepart(part("text/html; charset=UTF-8", html)?);
    }
    let mut out = h.to_string().into_bytes();
    out.extend(body.formatted());
    Ok(out)
}

fn raw(h: &mut Headers, name: &'static str, value: String) -> Result<(), String> {
    let name = HeaderName::new_from_ascii_str(name);
    h.insert_raw(HeaderValue::new(name, value));
    Ok(())
}

/// One quoted-printable part.
fn part(content_type: &str, body: &str) -> Result<SinglePart, String> {
    let ct = ContentType::parse(content_type).map_err(|e| format!("{content_type}: {e}"))?;
    Ok(SinglePart::builder()
        .header(ct)
        .header(ContentTransferEncoding::QuotedPrintable)
        .body(body.to_owned()))
}

/// `Mon, 02 Jan 2006 15:04:05 +0000` (Go's `time.RFC1123Z`, in UTC).
pub(super) fn rfc1123z(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let wd = DAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    let mon = MONTHS[usize::try_from(month - 1).unwrap_or(0)];
    format!(
        "{wd}, {day:02} {mon} {year} {:02}:{:02}:{:02} +0000",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dates_as_go_rfc1123z() {
        assert_eq!(rfc1123z(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc1123z(1_136_214_245_000),
            "Mon, 02 Jan 2006 15:04:05 +0000"
        );
    }

    #[test]
    fn message_shape() {
        let r = Rendered {
            headers: BTreeMap::from([
                ("Subject".to_owned(), "[FIRING:1] Down é".to_owned()),
                ("To".to_owned(), "ops@example.org".to_owned()),
                ("From".to_owned(), "am@example.org".to_owned()),
            ]),
            text: Some("plain".to_owned()),
            html: Some("<b>x</b>".to_owned()),
        };
        let m = String::from_utf8(format(&r, "h", 0).unwrap()).unwrap();
        assert!(m.contains("Subject: [FIRING:1] Down =?utf-8?"), "{m}");
        assert!(m.contains("To: ops@example.org\r\n"), "{m}");
        assert!(m.contains("Message-Id: <0."), "{m}");
        assert!(m.contains("MIME-Version: 1.0\r\n"), "{m}");
        assert!(m.contains("Content-Type: multipart/alternative;"), "{m}");
        let text = m.find("text/plain").unwrap();
        let html = m.find("text/html").unwrap();
        assert!(text < html, "{m}");
        assert!(
            m.contains("Content-Transfer-Encoding: quoted-printable"),
            "{m}"
        );
    }
}
