//! The exposition formats `/federate` and the push gateway's `/metrics` serve, and their
//! writers, shared by both handlers.
//!
//! The format is negotiated by `Accept` as Prometheus's `expfmt.Negotiate` (prometheus/common
//! 0.70, used by Prometheus's federation and by the Pushgateway through `promhttp`) does:
//! the clauses in order of preference (`q`, then the more specific first), the first one
//! naming the protobuf delimited format (`application/vnd.google.protobuf;
//! proto=io.prometheus.client.MetricFamily; encoding=delimited`) or the text format 0.0.4
//! (`text/plain`, `version=0.0.4` or none) wins, else text. The `escaping` parameter of the
//! clauses up to the chosen one decides the names: `allow-utf-8` as stored, anything else
//! underscore-escaped ([`crate::expfmt::underscore_escape`]). Not offered (a clause naming
//! them is passed over): the protobuf `text`/`compact-text` encodings and OpenMetrics, which
//! `expfmt.Negotiate` does not offer either.
//!
//! Both formats are written from `io.prometheus.client.MetricFamily` messages
//! ([`crate::pushgateway::proto`]): the protobuf one as a stream of varint-length-prefixed
//! messages, the only one that carries native histograms; the text one as Go's
//! `MetricFamilyToText` writes it ([`write_text`]).

use prost::Message;
use strata_vocab::FloatHistogram;

use crate::expfmt;
use crate::pushgateway::proto::{Bucket, Histogram, MetricFamily};

/// `Content-Type` of the protobuf delimited format (without `escaping`).
pub const PROTO_DELIMITED: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// `Content-Type` of the text format 0.0.4 (without `escaping`).
pub const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The wire format of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// Text format 0.0.4: no native histograms.
    Text,
    /// Length-delimited protobuf `MetricFamily` messages.
    ProtoDelimited,
}

/// A negotiated answer format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    /// The wire format.
    pub wire: Wire,
    /// Names as stored (`escaping=allow-utf-8`), else underscore-escaped.
    pub utf8: bool,
}

impl Format {
    /// The text format with underscore-escaped names (no `Accept`).
    pub const DEFAULT: Format = Format {
        wire: Wire::Text,
        utf8: false,
    };

    /// The answer's `Content-Type`, with the escaping applied.
    pub fn content_type(self) -> &'static str {
        match (self.wire, self.utf8) {
            (Wire::Text, true) => "text/plain; version=0.0.4; charset=utf-8; escaping=allow-utf-8",
            (Wire::Text, false) => "text/plain; version=0.0.4; charset=utf-8; escaping=underscores",
            (Wire::ProtoDelimited, true) => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; escaping=allow-utf-8"
            }
            (Wire::ProtoDelimited, false) => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; escaping=underscores"
            }
        }
    }

    /// The body of `fams` in this format (names written as they are: see [`escape_names`]).
    /// Families without metrics are left out, as Go's encoders refuse them.
    pub fn encode(self, fams: &[MetricFamily]) -> Vec<u8> {
        match self.wire {
            Wire::ProtoDelimited => encode_delimited(fams),
            Wire::Text => {
                let mut out = String::new();
                for f in fams {
                    write_text(&mut out, f);
                }
                out.into_bytes()
            }
        }
    }
}

/// One `Accept` clause as goautoneg parses it.
struct Clause<'a> {
    ty: &'a str,
    sub: &'a str,
    q: f64,
    params: Vec<(&'a str, &'a str)>,
}

impl Clause<'_> {
    fn param(&self, k: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| *n == k).map(|(_, v)| *v)
    }
}

/// The clauses of an `Accept` header, most preferred first (`q` descending, then specific
/// types before wildcards; equal ones in header order).
fn parse_accept(h: &str) -> Vec<Clause<'_>> {
    let mut out = Vec::new();
    for part in h.split(',') {
        let mut it = part.split(';');
        let range = it.next().unwrap_or("").trim();
        let (ty, sub) = match range.split_once('/') {
            Some((t, s)) => (t.trim(), s.trim()),
            None if range == "*" => ("*", "*"),
            None => continue,
        };
        let mut c = Clause {
            ty,
            sub,
            q: 1.0,
            params: Vec::new(),
        };
        for p in it {
            let Some((k, v)) = p.split_once('=') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            if k == "q" {
                c.q = v.parse().unwrap_or(0.0);
            } else {
                c.params.push((k, v));
            }
        }
        out.push(c);
    }
    out.sort_by(|a, b| {
        b.q.total_cmp(&a.q)
            .then_with(|| (a.ty == "*").cmp(&(b.ty == "*")))
            .then_with(|| (a.sub == "*").cmp(&(b.sub == "*")))
    });
    out
}

/// The format to answer a request with this `Accept` header (`expfmt.Negotiate`).
pub fn negotiate(accept: Option<&str>) -> Format {
    let mut utf8 = false;
    for c in parse_accept(accept.unwrap_or("")) {
        if let Some(e) = c.param("escaping") {
            match e {
                "allow-utf-8" => utf8 = true,
                "underscores" | "dots" | "values" => utf8 = false,
                _ => {}
            }
        }
        let is = |t: &str, s: &str| c.ty.eq_ignore_ascii_case(t) && c.sub.eq_ignore_ascii_case(s);
        if is("application", "vnd.google.protobuf")
            && c.param("proto") == Some("io.prometheus.client.MetricFamily")
            && c.param("encoding") == Some("delimited")
        {
            return Format {
                wire: Wire::ProtoDelimited,
                utf8,
            };
        }
        if is("text", "plain") && c.param("version").is_none_or(|v| v == "0.0.4") {
            return Format {
                wire: Wire::Text,
                utf8,
            };
        }
    }
    Format {
        wire: Wire::Text,
        utf8,
    }
}

/// `fams` as a stream of varint-length-prefixed messages; families without metrics left
/// out.
pub fn encode_delimited(fams: &[MetricFamily]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fams.iter().filter(|f| !f.metric.is_empty()) {
        out.extend_from_slice(&f.encode_length_delimited_to_vec());
    }
    out
}

/// The names of `f` underscore-escaped (`model.EscapeMetricFamily` with
/// `UnderscoreEscaping`): the family name, and label names that are not legacy-valid.
pub fn escape_names(f: &mut MetricFamily) {
    if let Some(n) = &mut f.name
        && let std::borrow::Cow::Owned(e) = expfmt::underscore_escape(n)
    {
        *n = e;
    }
    for m in &mut f.metric {
        for l in &mut m.label {
            if let Some(n) = &mut l.name
                && let std::borrow::Cow::Owned(e) = expfmt::underscore_escape_label(n)
            {
                *n = e;
            }
        }
    }
}

/// An integer count as its `u64` field when whole (as clients write it), else the float
/// field.
fn count_fields(v: f64) -> (Option<u64>, Option<f64>) {
    if v >= 0.0 && v.fract() == 0.0 && v < 9.0e15 {
        (Some(v as u64), None)
    } else {
        (Some(v.max(0.0) as u64), Some(v))
    }
}

/// A native histogram (exponential schema) as the protobuf `Histogram` federation sends:
/// schema, zero threshold and count, spans with delta-encoded integer counts when every
/// count is whole, else float counts (`sample_count_float`, `positive_count`, ...), sum.
/// One without buckets or zero threshold carries a no-op span, so a reader still sees a
/// native histogram.
pub fn native_histogram(h: &FloatHistogram) -> Histogram {
    let mut p = Histogram::default();
    p.set_native(h);
    p
}

/// A custom-bucket histogram (NHCB, schema −53) as the classic histogram federation
/// sends for it (Prometheus's `makeClassicHistogram`): one cumulative bucket per custom
/// bound, no `+Inf` bucket (the count stands for it), count and sum.
pub fn custom_bucket_histogram(h: &FloatHistogram) -> Histogram {
    let mut cumulative = 0.0;
    let mut buckets = h.positive.iter().peekable();
    let bucket = h
        .custom_values
        .iter()
        .enumerate()
        .map(|(i, le)| {
            while let Some(&&(idx, c)) = buckets.peek() {
                if i64::from(idx) > i as i64 {
                    break;
                }
                if i64::from(idx) == i as i64 {
                    cumulative += c;
                }
                buckets.next();
            }
            let (int, float) = count_fields(cumulative);
            // Whatever else `Bucket` holds (exemplars) stays empty.
            #[allow(clippy::needless_update)]
            Bucket {
                cumulative_count: int,
                upper_bound: Some(*le),
                cumulative_count_float: float,
                ..Default::default()
            }
        })
        .collect();
    let (count, count_float) = count_fields(h.count);
    Histogram {
        sample_count: count,
        sample_count_float: count_float,
        sample_sum: Some(h.sum),
        bucket,
        ..Default::default()
    }
}

/// A family in the text format 0.0.4 as Go's `MetricFamilyToText` writes it: `# HELP` when
/// it has help, `# TYPE` (a gauge histogram as `histogram`), then every metric's lines with
/// its timestamp; a histogram's classic buckets with a `+Inf` bucket added when missing,
/// `_sum` and `_count` (its native part, which text cannot carry, is left out). Nothing
/// for a family without metrics.
pub fn write_text(out: &mut String, f: &MetricFamily) {
    let name = f.name.as_deref().unwrap_or("");
    if f.metric.is_empty() || name.is_empty() {
        return;
    }
    if let Some(help) = &f.help {
        expfmt::write_help(out, name, help);
    }
    let ty = f.r#type.unwrap_or(3);
    let kind = match ty {
        0 => "counter",
        1 => "gauge",
        2 => "summary",
        4 | 5 => "histogram",
        _ => "untyped",
    };
    expfmt::write_type(out, name, kind);
    let series = |out: &mut String,
                  m: &crate::pushgateway::proto::Metric,
                  suffix: &str,
                  extra: Option<(&str, f64)>,
                  v: f64| {
        let full;
        let n = if suffix.is_empty() {
            name
        } else {
            full = format!("{name}{suffix}");
            &full
        };
        let extra = extra.map(|(k, x)| (k, expfmt::format_float(x)));
        let labels = m
            .label
            .iter()
            .map(|l| {
                (
                    l.name.as_deref().unwrap_or(""),
                    l.value.as_deref().unwrap_or(""),
                )
            })
            .chain(extra.iter().map(|(k, x)| (*k, x.as_ref())));
        expfmt::write_sample(out, n, labels, v, m.timestamp_ms);
    };
    for m in &f.metric {
        match ty {
            0 | 1 | 3 => {
                let v = match ty {
                    0 => m.counter.as_ref(),
                    1 => m.gauge.as_ref(),
                    _ => m.untyped.as_ref(),
                };
                series(out, m, "", None, v.and_then(|v| v.value).unwrap_or(0.0));
            }
            2 => {
                let s = m.summary.clone().unwrap_or_default();
                for q in &s.quantile {
                    series(
                        out,
                        m,
                        "",
                        Some(("quantile", q.quantile.unwrap_or(0.0))),
                        q.value.unwrap_or(0.0),
                    );
                }
                series(out, m, "_sum", None, s.sample_sum.unwrap_or(0.0));
                series(out, m, "_count", None, s.sample_count.unwrap_or(0) as f64);
            }
            _ => {
                let h = m.histogram.clone().unwrap_or_default();
                let count = match h.sample_count_float {
                    Some(v) if v != 0.0 => v,
                    _ => h.sample_count.unwrap_or(0) as f64,
                };
                let mut inf = false;
                for b in &h.bucket {
                    let le = b.upper_bound.unwrap_or(0.0);
                    let v = match b.cumulative_count_float {
                        Some(v) if v != 0.0 => v,
                        _ => b.cumulative_count.unwrap_or(0) as f64,
                    };
                    series(out, m, "_bucket", Some(("le", le)), v);
                    inf |= le == f64::INFINITY;
                }
                if !inf {
                    series(out, m, "_bucket", Some(("le", f64::INFINITY)), count);
                }
                series(out, m, "_sum", None, h.sample_sum.unwrap_or(0.0));
                series(out, m, "_count", None, count);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pushgateway::proto::{LabelPair, Metric, SimpleValue, decode_delimited};
    use strata_vocab::histogram::CounterResetHint;

    fn fmt(wire: Wire, utf8: bool) -> Format {
        Format { wire, utf8 }
    }

    #[test]
    fn negotiates_as_expfmt_negotiate() {
        use Wire::*;
        let proto = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";
        for (accept, want) in [
            (None, fmt(Text, false)),
            (Some(""), fmt(Text, false)),
            (Some("*/*"), fmt(Text, false)),
            (Some("text/plain"), fmt(Text, false)),
            (Some("text/plain;version=1.0.0"), fmt(Text, false)),
            (Some(proto), fmt(ProtoDelimited, false)),
            // Prometheus 2.x with native histograms, Strata's `PrometheusProto` scrapes.
            (
                Some(&format!(
                    "{proto};q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.1"
                )),
                fmt(ProtoDelimited, false),
            ),
            (
                Some(
                    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5,text/plain;version=0.0.4;q=0.3",
                ),
                fmt(ProtoDelimited, true),
            ),
            // Preference by q, not by position.
            (
                Some(&format!("text/plain;version=0.0.4;q=0.2,{proto};q=0.9")),
                fmt(ProtoDelimited, false),
            ),
            (
                Some(&format!("{proto};q=0.2,text/plain;version=0.0.4;q=0.9")),
                fmt(Text, false),
            ),
            // Encodings not offered are passed over.
            (
                Some(
                    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text",
                ),
                fmt(Text, false),
            ),
            (
                Some("application/vnd.google.protobuf;proto=other;encoding=delimited"),
                fmt(Text, false),
            ),
            // Prometheus 3.x's text scrape: UTF-8 names from an earlier clause.
            (
                Some(
                    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
                ),
                fmt(Text, true),
            ),
            (
                Some("text/plain;version=0.0.4;escaping=allow-utf-8;q=0.5,*/*;q=0.1"),
                fmt(Text, true),
            ),
            (
                Some("text/plain;version=0.0.4;q=1,*/*;q=0.1"),
                fmt(Text, false),
            ),
            (
                Some(&format!("{proto};escaping=allow-utf-8")),
                fmt(ProtoDelimited, true),
            ),
            (
                Some(&format!("{proto};escaping=bogus")),
                fmt(ProtoDelimited, false),
            ),
        ] {
            assert_eq!(negotiate(accept), want, "{accept:?}");
        }
        assert_eq!(
            fmt(ProtoDelimited, false).content_type(),
            format!("{PROTO_DELIMITED}; escaping=underscores")
        );
        assert_eq!(
            fmt(Text, true).content_type(),
            format!("{TEXT}; escaping=allow-utf-8")
        );
    }

    fn metric(labels: &[(&str, &str)], t: Option<i64>) -> Metric {
        Metric {
            label: labels
                .iter()
                .map(|(k, v)| LabelPair {
                    name: Some((*k).into()),
                    value: Some((*v).into()),
                })
                .collect(),
            timestamp_ms: t,
            ..Default::default()
        }
    }

    #[test]
    fn native_and_custom_bucket_histograms_round_trip() {
        let n = FloatHistogram {
            hint: CounterResetHint::Gauge,
            schema: 1,
            zero_threshold: 0.01,
            zero_count: 2.0,
            count: 9.0,
            sum: 12.0,
            positive: vec![(-1, 1.0), (0, 2.0), (4, 3.0)],
            negative: vec![(2, 1.0)],
            ..Default::default()
        };
        let p = native_histogram(&n);
        assert!(p.is_native() && !p.is_float());
        assert_eq!(p.sample_count, Some(9));
        let back = p.to_native(true).unwrap();
        assert_eq!(back, n);
        // Fractional counts go as floats.
        let f = FloatHistogram {
            count: 2.5,
            zero_count: 0.5,
            positive: vec![(3, 2.0)],
            ..n.clone()
        };
        let p = native_histogram(&f);
        assert!(p.is_float());
        assert_eq!(p.positive_count, vec![2.0]);
        assert_eq!(p.to_native(true).unwrap(), f);
        // An empty one stays recognizably native.
        assert!(native_histogram(&FloatHistogram::default()).is_native());

        let c = FloatHistogram {
            schema: -53,
            count: 7.0,
            sum: 3.5,
            positive: vec![(0, 1.0), (2, 4.0), (3, 2.0)],
            custom_values: vec![0.1, 0.5, 1.0].into(),
            ..Default::default()
        };
        let p = custom_bucket_histogram(&c);
        assert!(!p.is_native());
        let b: Vec<(f64, u64)> = p
            .bucket
            .iter()
            .map(|b| (b.upper_bound.unwrap(), b.cumulative_count.unwrap()))
            .collect();
        assert_eq!(b, vec![(0.1, 1), (0.5, 1), (1.0, 5)]);
        assert_eq!((p.sample_count, p.sample_sum), (Some(7), Some(3.5)));
    }

    #[test]
    fn writes_text_as_metric_family_to_text() {
        let mut h = metric(&[("job", "a\"b")], Some(5));
        h.histogram = Some(custom_bucket_histogram(&FloatHistogram {
            schema: -53,
            count: 3.0,
            sum: 1.5,
            positive: vec![(0, 1.0), (1, 1.0), (2, 1.0)],
            custom_values: vec![1.0, 2.0].into(),
            ..Default::default()
        }));
        let mut u = metric(&[("a.b", "x")], Some(7));
        u.untyped = Some(SimpleValue { value: Some(0.5) });
        let fams = vec![
            MetricFamily {
                name: Some("lat".into()),
                help: Some("L\\x".into()),
                r#type: Some(5),
                metric: vec![h],
            },
            MetricFamily {
                name: Some("my.metric".into()),
                help: None,
                r#type: Some(3),
                metric: vec![u],
            },
            MetricFamily {
                name: Some("empty".into()),
                help: None,
                r#type: Some(1),
                metric: vec![],
            },
        ];
        let text = String::from_utf8(fmt(Wire::Text, true).encode(&fams)).unwrap();
        assert_eq!(
            text,
            "# HELP lat L\\\\x\n# TYPE lat histogram\n\
             lat_bucket{job=\"a\\\"b\",le=\"1\"} 1 5\n\
             lat_bucket{job=\"a\\\"b\",le=\"2\"} 2 5\n\
             lat_bucket{job=\"a\\\"b\",le=\"+Inf\"} 3 5\n\
             lat_sum{job=\"a\\\"b\"} 1.5 5\n\
             lat_count{job=\"a\\\"b\"} 3 5\n\
             # TYPE \"my.metric\" untyped\n\
             {\"my.metric\",\"a.b\"=\"x\"} 0.5 7\n"
        );
        let bytes = fmt(Wire::ProtoDelimited, true).encode(&fams);
        let back = decode_delimited(&bytes).unwrap();
        assert_eq!(back, fams[..2].to_vec(), "the empty family is left out");
        let mut escaped = fams[1].clone();
        escape_names(&mut escaped);
        assert_eq!(escaped.name.as_deref(), Some("my_metric"));
        assert_eq!(escaped.metric[0].label[0].name.as_deref(), Some("a_b"));
    }
}
