//! Exposition parsers: Prometheus text 0.0.4 and OpenMetrics 1.0 text, one streaming,
//! allocation-free pass over the scraped body.
//!
//! The parser yields [`Entry`]s borrowing from the body. A sample's series is returned as its
//! raw bytes (`name{labels}` as written), which the scrape cache uses as key: a series seen in
//! an earlier scrape costs one hash lookup and a float parse, and its labels are only decoded
//! ([`parse_series`]) when the cache misses. An OpenMetrics exemplar after ` # ` comes
//! with its sample ([`RawExemplar`]).

use std::borrow::Cow;

/// The two text formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4 (timestamps in milliseconds).
    PromText,
    /// OpenMetrics 1.0 text (timestamps in seconds, `# EOF` required).
    OpenMetrics,
}

impl Format {
    /// The format a `Content-Type` names; `None` when it names neither.
    pub fn from_content_type(ct: &str) -> Option<Format> {
        let media = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/openmetrics-text" => Some(Format::OpenMetrics),
            "text/plain" => Some(Format::PromText),
            _ => None,
        }
    }
}

/// A metric family type from `# TYPE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Unknown,
}

impl MetricType {
    fn parse(s: &str) -> Option<MetricType> {
        Some(match s {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "gaugehistogram" => MetricType::GaugeHistogram,
            "summary" => MetricType::Summary,
            "info" => MetricType::Info,
            "stateset" => MetricType::StateSet,
            "untyped" | "unknown" => MetricType::Unknown,
            _ => return None,
        })
    }

    /// The name Prometheus's metadata API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }
}

/// One parsed line.
#[derive(Debug, PartialEq)]
pub enum Entry<'a> {
    /// `# HELP name text`.
    Help { name: &'a str, text: Cow<'a, str> },
    /// `# TYPE name type`.
    Type { name: &'a str, kind: MetricType },
    /// `# UNIT name unit` (OpenMetrics).
    Unit { name: &'a str, unit: &'a str },
    /// A sample: the series as written, its value, its timestamp in milliseconds if given,
    /// and its exemplar (OpenMetrics), if any.
    Sample {
        series: &'a [u8],
        value: f64,
        timestamp: Option<i64>,
        exemplar: Option<RawExemplar<'a>>,
    },
}

/// An OpenMetrics exemplar as written after ` # `: `{labels} value [timestamp]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawExemplar<'a> {
    /// The label set as written, braces included (decode with [`parse_label_set`]).
    pub labels: &'a [u8],
    pub value: f64,
    /// Milliseconds, if the exemplar carries its own timestamp.
    pub timestamp: Option<i64>,
}

/// A malformed body: the line and what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {msg}")]
pub struct ParseError {
    pub line: usize,
    pub msg: String,
}

/// Streaming parser over one body.
pub struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
    line: usize,
    format: Format,
    eof_seen: bool,
}

impl<'a> Parser<'a> {
    pub fn new(buf: &'a [u8], format: Format) -> Self {
        Parser {
            buf,
            pos: 0,
            line: 0,
            format,
            eof_seen: false,
        }
    }

    fn err(&self, msg: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line,
            msg: msg.into(),
        }
    }

    /// The next entry, `None` at the end of the body.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Result<Entry<'a>, ParseError>> {
        loop {
            if self.pos >= self.buf.len() {
                if self.format == Format::OpenMetrics && !self.eof_seen {
                    self.eof_seen = true;
                    return Some(Err(self.err("data does not end with # EOF")));
                }
                return None;
            }
            let rest = &self.buf[self.pos..];
            let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            let mut line = &rest[..end];
            self.pos += end + 1;
            self.line += 1;
            if self.eof_seen {
                return Some(Err(self.err("unexpected data after # EOF")));
            }
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            if self.format == Format::PromText {
                line = trim_start(line);
            }
            if line.is_empty() {
                if self.format == Format::OpenMetrics {
                    return Some(Err(self.err("empty line")));
                }
                continue;
            }
            if line[0] == b'#' {
                match self.comment(line) {
                    Ok(Some(e)) => return Some(Ok(e)),
                    Ok(None) => continue,
                    Err(e) => return Some(Err(e)),
                }
            }
            return Some(self.sample(line));
        }
    }

    fn comment(&mut self, line: &'a [u8]) -> Result<Option<Entry<'a>>, ParseError> {
        let text = std::str::from_utf8(line).map_err(|_| self.err("invalid UTF-8"))?;
        if self.format == Format::OpenMetrics && text == "# EOF" {
            self.eof_seen = true;
            return Ok(None);
        }
        let body = &text[1..];
        let body = if self.format == Format::PromText {
            body.trim_start()
        } else {
            match body.strip_prefix(' ') {
                Some(b) => b,
                None => return Err(self.err("invalid comment")),
            }
        };
        let (kw, rest) = split_word(body);
        let (kind, rest) = match kw {
            "HELP" | "TYPE" => (kw, rest),
            "UNIT" if self.format == Format::OpenMetrics => (kw, rest),
            _ if self.format == Format::PromText => return Ok(None),
            _ => return Err(self.err(format!("unknown comment {kw:?}"))),
        };
        let (name, value) = split_name(rest);
        if name.is_empty() {
            return Err(self.err(format!("{kind} without a metric name")));
        }
        match kind {
            "HELP" => Ok(Some(Entry::Help {
                name,
                text: unescape_help(value),
            })),
            "TYPE" => {
                let t = MetricType::parse(value.trim())
                    .ok_or_else(|| self.err(format!("invalid metric type {:?}", value.trim())))?;
                Ok(Some(Entry::Type { name, kind: t }))
            }
            _ => Ok(Some(Entry::Unit {
                name,
                unit: value.trim(),
            })),
        }
    }

    fn sample(&self, line: &'a [u8]) -> Result<Entry<'a>, ParseError> {
        let series_end = series_end(line).map_err(|m| self.err(m))?;
        let series = &line[..series_end];
        let rest = &line[series_end..];
        if rest.first().is_none_or(|c| *c != b' ' && *c != b'\t') {
            return Err(self.err("expected a value after the series"));
        }
        // Exemplars (OpenMetrics) follow " # ".
        let (rest, exemplar) = match self.format {
            Format::OpenMetrics => match memchr::memmem::find(rest, b" # ") {
                Some(i) => (&rest[..i], Some(self.exemplar(&rest[i + 3..])?)),
                None => (rest, None),
            },
            Format::PromText => (rest, None),
        };
        let mut words = rest
            .split(|c| *c == b' ' || *c == b'\t')
            .filter(|w| !w.is_empty())
            .map(|w| std::str::from_utf8(w).map_err(|_| self.err("invalid UTF-8")));
        let value = words
            .next()
            .ok_or_else(|| self.err("expected a value after the series"))??;
        let value =
            parse_value(value).ok_or_else(|| self.err(format!("invalid value {value:?}")))?;
        let timestamp = match words.next() {
            None => None,
            Some(ts) => Some(self.parse_timestamp(ts?)?),
        };
        if let Some(extra) = words.next() {
            let extra = extra?;
            return Err(self.err(format!("unexpected {extra:?} after the timestamp")));
        }
        Ok(Entry::Sample {
            series,
            value,
            timestamp,
            exemplar,
        })
    }

    /// `{labels} value [timestamp]` after a sample's ` # `.
    fn exemplar(&self, text: &'a [u8]) -> Result<RawExemplar<'a>, ParseError> {
        if text.first() != Some(&b'{') {
            return Err(self.err("expected a label set after \" # \" (exemplar)"));
        }
        let end = series_end(text).map_err(|m| self.err(format!("exemplar: {m}")))?;
        let labels = &text[..end];
        let mut words = text[end..]
            .split(|c| *c == b' ' || *c == b'\t')
            .filter(|w| !w.is_empty())
            .map(|w| std::str::from_utf8(w).map_err(|_| self.err("invalid UTF-8")));
        let value = words
            .next()
            .ok_or_else(|| self.err("expected a value after the exemplar's labels"))??;
        let value = parse_value(value)
            .ok_or_else(|| self.err(format!("invalid exemplar value {value:?}")))?;
        let timestamp = match words.next() {
            None => None,
            Some(ts) => Some(self.parse_timestamp(ts?)?),
        };
        if let Some(extra) = words.next() {
            let extra = extra?;
            return Err(self.err(format!(
                "unexpected {extra:?} after the exemplar's timestamp"
            )));
        }
        Ok(RawExemplar {
            labels,
            value,
            timestamp,
        })
    }

    fn parse_timestamp(&self, ts: &str) -> Result<i64, ParseError> {
        let bad = || self.err(format!("invalid timestamp {ts:?}"));
        match self.format {
            Format::PromText => ts.parse::<i64>().map_err(|_| bad()),
            Format::OpenMetrics => {
                let secs: f64 = ts.parse().map_err(|_| bad())?;
                if !secs.is_finite() {
                    return Err(bad());
                }
                Ok((secs * 1000.0).round() as i64)
            }
        }
    }
}

fn trim_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| **c == b' ' || **c == b'\t').count();
    &b[n..]
}

fn split_word(s: &str) -> (&str, &str) {
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    }
}

/// The metric name of a `# HELP`/`# TYPE`/`# UNIT` line and the rest after it. A quoted
/// name (`"my metric"`) may hold spaces and escaped quotes; it is returned without its
/// quotes, escapes as written.
fn split_name(s: &str) -> (&str, &str) {
    let Some(q) = s.strip_prefix('"') else {
        return split_word(s);
    };
    let b = q.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => {
                let rest = &q[i + 1..];
                return (&q[..i], rest.strip_prefix([' ', '\t']).unwrap_or(rest));
            }
            _ => i += 1,
        }
    }
    split_word(s)
}

fn unescape_help(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// Go's `strconv.ParseFloat` spellings used in expositions (`+Inf`, `-Inf`, `NaN`, any case).
pub fn parse_value(s: &str) -> Option<f64> {
    if let Ok(v) = s.parse::<f64>() {
        return Some(v);
    }
    match s.to_ascii_lowercase().as_str() {
        "+inf" | "inf" | "+infinity" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        _ => None,
    }
}

/// Where the series part of a sample line ends: after the metric name, or after the
/// closing `}` of its labels (quotes and escapes respected). It jumps from one quote,
/// brace or backslash to the next rather than looking at every byte.
fn series_end(line: &[u8]) -> Result<usize, &'static str> {
    const UNTERMINATED: &str = "unterminated label set";
    let mut i = 0;
    if line[0] != b'{' {
        i = memchr::memchr3(b'{', b' ', b'\t', line).unwrap_or(line.len());
        if i == 0 {
            return Err("expected a metric name");
        }
        if i == line.len() || line[i] != b'{' {
            return Ok(i);
        }
    }
    // Inside braces, outside quotes.
    i += 1;
    loop {
        let j = i + memchr::memchr2(b'"', b'}', &line[i..]).ok_or(UNTERMINATED)?;
        if line[j] == b'}' {
            return Ok(j + 1);
        }
        // Inside quotes: up to the next quote that is not escaped.
        let mut k = j + 1;
        loop {
            let q = k + memchr::memchr2(b'"', b'\\', line.get(k..).ok_or(UNTERMINATED)?)
                .ok_or(UNTERMINATED)?;
            if line[q] == b'"' {
                i = q + 1;
                break;
            }
            k = q + 2;
        }
    }
}

/// Decodes a series as written (`name{a="b",...}`, or `{"name",a="b"}` with a quoted
/// UTF-8 name) into its metric name and label pairs.
pub fn parse_series(series: &[u8]) -> Result<(String, Vec<(String, String)>), String> {
    parse_named(series, true)
}

/// Decodes a label set without a metric name (`{a="b",...}`, an exemplar's labels).
pub fn parse_label_set(set: &[u8]) -> Result<Vec<(String, String)>, String> {
    let (name, labels) = parse_named(set, false)?;
    if !name.is_empty() {
        return Err(format!("unexpected metric name {name:?} in a label set"));
    }
    Ok(labels)
}

fn parse_named(series: &[u8], need_name: bool) -> Result<(String, Vec<(String, String)>), String> {
    let s = std::str::from_utf8(series).map_err(|_| "invalid UTF-8 in series".to_string())?;
    let (mut name, rest) = match s.find('{') {
        Some(i) => (s[..i].trim().to_owned(), &s[i + 1..]),
        None => (s.trim().to_owned(), ""),
    };
    if !name.is_empty() && !is_legacy_metric_name(&name) {
        return Err(format!("invalid metric name {name:?}"));
    }
    // Quoted names come unescaped: one may hold a control character (`"a\nb"`).
    let check = |n: &str| strata_storage::Labels::validate_name(n);
    let mut labels: Vec<(String, String)> = Vec::new();
    let mut r = rest.trim_start();
    if !s.contains('{') {
        r = "";
    }
    while !r.is_empty() {
        r = r.trim_start_matches([' ', '\t', ',']);
        if r.starts_with('}') {
            break;
        }
        // A label name, or (quoted) a metric name / UTF-8 label name.
        let (lname, after) = if let Some(q) = r.strip_prefix('"') {
            let (v, after) = read_quoted(q)?;
            (v, after)
        } else {
            let end = r
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(r.len());
            if end == 0 || r.as_bytes()[0].is_ascii_digit() {
                return Err(format!("invalid label name in {s:?}"));
            }
            (r[..end].to_owned(), &r[end..])
        };
        let after = after.trim_start();
        if let Some(a) = after.strip_prefix('=') {
            let a = a.trim_start();
            let q = a
                .strip_prefix('"')
                .ok_or_else(|| format!("expected a quoted label value in {s:?}"))?;
            let (value, after) = read_quoted(q)?;
            check(&lname)?;
            if labels.iter().any(|(n, _)| *n == lname) {
                return Err(format!("duplicate label name {lname:?}"));
            }
            labels.push((lname, value));
            r = after.trim_start();
        } else if name.is_empty() {
            // `{"metric.name", ...}`: a bare quoted string is the metric name.
            check(&lname)?;
            name = lname;
            r = after.trim_start();
        } else {
            return Err(format!("expected '=' after label name {lname:?}"));
        }
        if let Some(a) = r.strip_prefix(',') {
            r = a;
        } else if !r.starts_with('}') {
            return Err(format!("expected ',' or '}}' in {s:?}"));
        }
    }
    if name.is_empty() && need_name {
        return Err(format!("missing metric name in {s:?}"));
    }
    if labels.iter().any(|(n, _)| n == "__name__") {
        return Err("label __name__ given twice".into());
    }
    Ok((name, labels))
}

use strata_vocab::name::is_legacy_metric_name;

/// Reads a quoted string body (after the opening quote); returns it and the rest after the
/// closing quote.
fn read_quoted(s: &str) -> Result<(String, &str), String> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                Some((_, o)) => {
                    out.push('\\');
                    out.push(o);
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("unterminated quoted string".into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn all(body: &str, f: Format) -> Result<Vec<Entry<'_>>, ParseError> {
        let mut p = Parser::new(body.as_bytes(), f);
        let mut v = Vec::new();
        while let Some(e) = p.next() {
            v.push(e?);
        }
        Ok(v)
    }

    #[test]
    fn text_format() {
        let body = "# HELP http_requests_total The total.\\nSecond line.\n# TYPE http_requests_total counter\nhttp_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\nhttp_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n\n# a comment\nmetric_without_timestamp_and_labels 12.47\nsomething_weird{problem=\"division by zero\"} +Inf -3982045\nmsdos_file{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n";
        let v = all(body, Format::PromText).unwrap();
        assert_eq!(v.len(), 7);
        assert_eq!(
            v[0],
            Entry::Help {
                name: "http_requests_total",
                text: Cow::Owned("The total.\nSecond line.".into())
            }
        );
        assert_eq!(
            v[3],
            Entry::Sample {
                series: b"http_requests_total{method=\"post\",code=\"400\"}",
                value: 3.0,
                timestamp: Some(1395066363000),
                exemplar: None,
            }
        );
        let Entry::Sample { series, value, .. } = &v[6] else {
            panic!("sample expected")
        };
        assert_eq!(*value, 1.458255915e9);
        let (name, labels) = parse_series(series).unwrap();
        assert_eq!(name, "msdos_file");
        assert_eq!(labels[0], ("path".into(), "C:\\DIR\\FILE.TXT".into()));
        assert_eq!(labels[1].1, "Cannot find file:\n\"FILE.TXT\"");
        let Entry::Sample {
            value, timestamp, ..
        } = &v[5]
        else {
            panic!("sample expected")
        };
        assert_eq!((*value, *timestamp), (f64::INFINITY, Some(-3982045)));
    }

    #[test]
    fn openmetrics_format() {
        let body = "# TYPE foo counter\n# UNIT foo seconds\n# HELP foo Help.\nfoo_total{a=\"1\"} 17.0 1520879607.789 # {trace_id=\"KOO5S4vxi0o\"} 0.67\nfoo_created{a=\"1\"} 1520430000.123\n# EOF\n";
        let v = all(body, Format::OpenMetrics).unwrap();
        assert_eq!(v.len(), 5);
        assert_eq!(
            v[3],
            Entry::Sample {
                series: b"foo_total{a=\"1\"}",
                value: 17.0,
                timestamp: Some(1520879607789),
                exemplar: Some(RawExemplar {
                    labels: b"{trace_id=\"KOO5S4vxi0o\"}",
                    value: 0.67,
                    timestamp: None,
                }),
            }
        );
        // An exemplar with its own timestamp, a label value holding " # ", and bad ones.
        let v = all(
            "a_bucket{le=\"1\"} 3 # {trace_id=\"x # y\",span_id=\"s\"} 0.5 1520879607.5\n# EOF\n",
            Format::OpenMetrics,
        )
        .unwrap();
        let Entry::Sample {
            exemplar: Some(e), ..
        } = &v[0]
        else {
            panic!("exemplar expected")
        };
        assert_eq!((e.value, e.timestamp), (0.5, Some(1520879607500)));
        let labels = parse_label_set(e.labels).unwrap();
        assert_eq!(labels[0], ("trace_id".into(), "x # y".into()));
        for bad in [
            "a 1 # 0.5\n# EOF\n",
            "a 1 # {trace_id=\"x\"}\n# EOF\n",
            "a 1 # {trace_id=\"x\"} 1 2 3\n# EOF\n",
            "a 1 # {trace_id=\"x} 1\n# EOF\n",
        ] {
            assert!(all(bad, Format::OpenMetrics).is_err(), "{bad}");
        }
        assert!(all("foo 1\n", Format::OpenMetrics).is_err(), "missing EOF");
        assert!(all("# EOF\nfoo 1\n", Format::OpenMetrics).is_err());
    }

    #[test]
    fn malformed_lines_name_the_line() {
        for bad in [
            "ok 1\nfoo{a=\"1\" 2\n",
            "ok 1\nfoo bar\n",
            "ok 1\nfoo 1 2 3\n",
            "ok 1\nfoo 1 1.5\n",
            "ok 1\n# TYPE foo nonsense\n",
        ] {
            let e = all(bad, Format::PromText).unwrap_err();
            assert_eq!(e.line, 2, "{bad:?}: {e}");
        }
        for bad in [
            "1foo",
            "foo{a=1}",
            "foo{a=\"1\",a=\"2\"}",
            "foo{1a=\"x\"}",
            "{a=\"b\"}",
        ] {
            assert!(parse_series(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn series_end_respects_quotes_and_escapes() {
        for (line, end) in [
            ("foo 1", Ok(3)),
            ("foo\t1", Ok(3)),
            ("foo{} 1", Ok(5)),
            ("foo{a=\"x\\\"}y\",b=\"}\"} 1", Ok(20)),
            ("foo{a=\"\\\\\"} 1", Ok(11)),
            ("{\"a b\"} 1", Ok(7)),
            ("foo{a=\"x\\", Err("unterminated label set")),
            ("foo{a=\"x\\\"", Err("unterminated label set")),
            ("foo{a=\"x\"", Err("unterminated label set")),
            ("{a", Err("unterminated label set")),
            (" 1", Err("expected a metric name")),
        ] {
            assert_eq!(series_end(line.as_bytes()), end, "{line}");
        }
    }

    #[test]
    fn utf8_names() {
        let (n, l) = parse_series(br#"{"my.metric", "label.x"="v", b="c"}"#).unwrap();
        assert_eq!(n, "my.metric");
        assert_eq!(
            l,
            vec![("label.x".into(), "v".into()), ("b".into(), "c".into())]
        );
        let (n, l) = parse_series(b"up").unwrap();
        assert_eq!((n.as_str(), l.len()), ("up", 0));
        let (_, l) = parse_series(b"up{a=\"b\",}").unwrap();
        assert_eq!(l.len(), 1);
    }
}
