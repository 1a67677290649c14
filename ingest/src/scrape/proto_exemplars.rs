//! Exemplars of a scraped protobuf body (client_model `Exemplar`): a counter's, each
//! classic bucket's and a native histogram's (`Histogram.exemplars`), with the text of the
//! series each belongs to, as the body's transcoding to text writes it
//! (`pushgateway::render::transcode_proto`), so the scrape loop resolves them like the
//! samples. Read by a second, narrow decoding of the body: the message views below hold
//! only the fields exemplars need (prost skips the others), and the transcoding stays as
//! it is.
//!
//! As Prometheus's scrape loop: an exemplar without a timestamp takes its sample's (and
//! compares equal to itself at later scrapes); a native histogram's exemplar without one is
//! dropped.

use std::collections::BTreeMap;

use prost::Message;

use crate::expfmt;
use crate::pushgateway::proto::LabelPair;

/// `google.protobuf.Timestamp`.
#[derive(Clone, PartialEq, Message)]
struct Timestamp {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// `Exemplar`.
#[derive(Clone, PartialEq, Message)]
struct Exemplar {
    #[prost(message, repeated, tag = "1")]
    label: Vec<LabelPair>,
    #[prost(double, optional, tag = "2")]
    value: Option<f64>,
    #[prost(message, optional, tag = "3")]
    timestamp: Option<Timestamp>,
}

/// `Counter`: its exemplar.
#[derive(Clone, PartialEq, Message)]
struct CounterView {
    #[prost(message, optional, tag = "2")]
    exemplar: Option<Exemplar>,
}

/// `Bucket`: its bound and exemplar.
#[derive(Clone, PartialEq, Message)]
struct BucketView {
    #[prost(double, optional, tag = "2")]
    upper_bound: Option<f64>,
    #[prost(message, optional, tag = "3")]
    exemplar: Option<Exemplar>,
}

/// `Histogram`: the classic buckets and the native histogram's exemplars.
#[derive(Clone, PartialEq, Message)]
struct HistogramView {
    #[prost(message, repeated, tag = "3")]
    bucket: Vec<BucketView>,
    #[prost(message, repeated, tag = "16")]
    exemplars: Vec<Exemplar>,
}

/// `Metric`: labels, timestamp and the values that carry exemplars.
#[derive(Clone, PartialEq, Message)]
struct MetricView {
    #[prost(message, repeated, tag = "1")]
    label: Vec<LabelPair>,
    #[prost(message, optional, tag = "3")]
    counter: Option<CounterView>,
    #[prost(int64, optional, tag = "6")]
    timestamp_ms: Option<i64>,
    #[prost(message, optional, tag = "7")]
    histogram: Option<HistogramView>,
}

/// `MetricFamily`: name and metrics.
#[derive(Clone, PartialEq, Message)]
struct FamilyView {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(message, repeated, tag = "4")]
    metric: Vec<MetricView>,
}

/// One exemplar of the body.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ScrapedExemplar {
    /// The series it belongs to, as the transcoded text writes it (`name{labels}`).
    pub(super) series: String,
    pub(super) labels: Vec<(String, String)>,
    pub(super) value: f64,
    /// Its own timestamp (ms), if it has one.
    pub(super) timestamp_ms: Option<i64>,
    /// The sample's timestamp (ms), if the exposition gave one.
    pub(super) sample_timestamp_ms: Option<i64>,
    /// Whether it belongs to a native histogram.
    pub(super) native: bool,
}

/// Every exemplar of a delimited `MetricFamily` stream (at most `limit`; a body that does
/// not decode has none: the transcoding reports the error).
pub(super) fn extract(mut body: &[u8], limit: usize) -> Vec<ScrapedExemplar> {
    let mut out = Vec::new();
    while !body.is_empty() && out.len() < limit {
        let Ok(len) = prost::encoding::decode_varint(&mut body) else {
            break;
        };
        let Some((msg, rest)) = usize::try_from(len)
            .ok()
            .filter(|&l| l <= body.len())
            .map(|l| body.split_at(l))
        else {
            break;
        };
        body = rest;
        let Ok(f) = FamilyView::decode(msg) else {
            break;
        };
        family(&f, &mut out);
    }
    out.truncate(limit);
    out
}

fn family(f: &FamilyView, out: &mut Vec<ScrapedExemplar>) {
    let name = f.name.as_deref().unwrap_or_default();
    for m in &f.metric {
        let labels: BTreeMap<&str, &str> = m
            .label
            .iter()
            .map(|l| {
                (
                    l.name.as_deref().unwrap_or(""),
                    l.value.as_deref().unwrap_or(""),
                )
            })
            .collect();
        let series = |metric: &str, extra: Option<(&str, &str)>| {
            let mut s = String::new();
            expfmt::write_series(
                &mut s,
                metric,
                labels.iter().map(|(k, v)| (*k, *v)).chain(extra),
            );
            s
        };
        let mut push = |series: String, e: &Exemplar, native: bool| {
            out.push(ScrapedExemplar {
                series,
                labels: e
                    .label
                    .iter()
                    .map(|l| {
                        (
                            l.name.clone().unwrap_or_default(),
                            l.value.clone().unwrap_or_default(),
                        )
                    })
                    .collect(),
                value: e.value.unwrap_or(0.0),
                timestamp_ms: e
                    .timestamp
                    .as_ref()
                    .map(|t| t.seconds.saturating_mul(1000) + i64::from(t.nanos) / 1_000_000),
                sample_timestamp_ms: m.timestamp_ms,
                native,
            });
        };
        if let Some(e) = m.counter.as_ref().and_then(|c| c.exemplar.as_ref()) {
            push(series(name, None), e, false);
        }
        if let Some(h) = &m.histogram {
            let bucket = format!("{name}_bucket");
            for b in &h.bucket {
                if let Some(e) = &b.exemplar {
                    let le = expfmt::format_float(b.upper_bound.unwrap_or(f64::INFINITY));
                    push(series(&bucket, Some(("le", le.as_ref()))), e, false);
                }
            }
            for e in &h.exemplars {
                push(series(name, None), e, true);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pair(n: &str, v: &str) -> LabelPair {
        LabelPair {
            name: Some(n.into()),
            value: Some(v.into()),
        }
    }

    fn ex(trace: &str, v: f64, ts: Option<(i64, i32)>) -> Exemplar {
        Exemplar {
            label: vec![pair("trace_id", trace)],
            value: Some(v),
            timestamp: ts.map(|(seconds, nanos)| Timestamp { seconds, nanos }),
        }
    }

    #[test]
    fn counters_buckets_and_native_histograms() {
        let fams = [
            FamilyView {
                name: Some("rpc_total".into()),
                metric: vec![MetricView {
                    label: vec![pair("code", "200")],
                    counter: Some(CounterView {
                        exemplar: Some(ex("a", 1.0, Some((1_700_000_000, 500_000_000)))),
                    }),
                    timestamp_ms: None,
                    histogram: None,
                }],
            },
            FamilyView {
                name: Some("lat".into()),
                metric: vec![MetricView {
                    label: vec![],
                    counter: None,
                    timestamp_ms: Some(42),
                    histogram: Some(HistogramView {
                        bucket: vec![
                            BucketView {
                                upper_bound: Some(0.5),
                                exemplar: Some(ex("b", 0.25, None)),
                            },
                            BucketView {
                                upper_bound: Some(1.0),
                                exemplar: None,
                            },
                        ],
                        exemplars: vec![ex("c", 0.75, Some((1, 0)))],
                    }),
                }],
            },
        ];
        let mut body = Vec::new();
        for f in &fams {
            f.encode_length_delimited(&mut body).unwrap();
        }
        // The real message decodes the same bytes (the views are a subset of it).
        assert!(crate::pushgateway::proto::decode_delimited(&body).is_ok());
        let got = extract(&body, 100);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].series, "rpc_total{code=\"200\"}");
        assert_eq!(got[0].timestamp_ms, Some(1_700_000_000_500));
        assert_eq!(got[1].series, "lat_bucket{le=\"0.5\"}");
        assert_eq!((got[1].value, got[1].timestamp_ms), (0.25, None));
        assert_eq!(got[1].sample_timestamp_ms, Some(42));
        assert_eq!(
            got[1].labels,
            vec![("trace_id".to_string(), "b".to_string())]
        );
        assert!(got[2].native && got[2].series == "lat");
        assert_eq!(extract(&body, 1).len(), 1, "bounded");
    }
}
