//! `io.prometheus.client.MetricFamily` (client_model `metrics.proto`), the protobuf body the
//! Go client pushes (and serves to scrapes) as a stream of length-delimited messages,
//! native histogram fields included ([`Histogram::to_native`] reads them as Prometheus's
//! protobuf parser does).

use prost::Message;
use strata_vocab::histogram::{CounterResetHint, FloatHistogram, Span};

use crate::histogram_proto;

/// `LabelPair`.
#[derive(Clone, PartialEq, Message)]
pub struct LabelPair {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

/// `Gauge`, `Counter` and `Untyped` share the value field.
#[derive(Clone, PartialEq, Message)]
pub struct SimpleValue {
    #[prost(double, optional, tag = "1")]
    pub value: Option<f64>,
}

/// `Quantile`.
#[derive(Clone, PartialEq, Message)]
pub struct Quantile {
    #[prost(double, optional, tag = "1")]
    pub quantile: Option<f64>,
    #[prost(double, optional, tag = "2")]
    pub value: Option<f64>,
}

/// `Summary`.
#[derive(Clone, PartialEq, Message)]
pub struct Summary {
    #[prost(uint64, optional, tag = "1")]
    pub sample_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    pub sample_sum: Option<f64>,
    #[prost(message, repeated, tag = "3")]
    pub quantile: Vec<Quantile>,
}

/// `Bucket`.
#[derive(Clone, PartialEq, Message)]
pub struct Bucket {
    #[prost(uint64, optional, tag = "1")]
    pub cumulative_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    pub upper_bound: Option<f64>,
    #[prost(double, optional, tag = "4")]
    pub cumulative_count_float: Option<f64>,
}

/// `BucketSpan` of a native histogram: `offset` from the end of the previous span (from
/// bucket index 0 for the first span), `length` consecutive buckets.
#[derive(Clone, PartialEq, Message)]
pub struct BucketSpan {
    /// Gap to the previous span, or the first bucket index for the first span.
    #[prost(sint32, optional, tag = "1")]
    pub offset: Option<i32>,
    /// Consecutive buckets.
    #[prost(uint32, optional, tag = "2")]
    pub length: Option<u32>,
}

/// `Histogram`: the classic buckets and the native histogram fields (`start_timestamp`
/// and exemplars are not decoded).
#[derive(Clone, PartialEq, Message)]
pub struct Histogram {
    #[prost(uint64, optional, tag = "1")]
    pub sample_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    pub sample_sum: Option<f64>,
    #[prost(message, repeated, tag = "3")]
    pub bucket: Vec<Bucket>,
    #[prost(double, optional, tag = "4")]
    pub sample_count_float: Option<f64>,
    /// Native: the bucket schema (−4..8 exponential).
    #[prost(sint32, optional, tag = "5")]
    pub schema: Option<i32>,
    /// Native: the breadth of the zero bucket.
    #[prost(double, optional, tag = "6")]
    pub zero_threshold: Option<f64>,
    /// Native: the zero bucket's count (integer histograms).
    #[prost(uint64, optional, tag = "7")]
    pub zero_count: Option<u64>,
    /// Native: the zero bucket's count (float histograms; overrides `zero_count` if > 0).
    #[prost(double, optional, tag = "8")]
    pub zero_count_float: Option<f64>,
    /// Native: the spans of the negative buckets.
    #[prost(message, repeated, tag = "9")]
    pub negative_span: Vec<BucketSpan>,
    /// Delta-encoded counts of the negative buckets (integer histograms).
    #[prost(sint64, repeated, packed = "false", tag = "10")]
    pub negative_delta: Vec<i64>,
    /// Absolute counts of the negative buckets (float histograms).
    #[prost(double, repeated, packed = "false", tag = "11")]
    pub negative_count: Vec<f64>,
    /// Native: the spans of the positive buckets (a no-op span `{0, 0}` marks a native
    /// histogram without observations).
    #[prost(message, repeated, tag = "12")]
    pub positive_span: Vec<BucketSpan>,
    /// Delta-encoded counts of the positive buckets (integer histograms).
    #[prost(sint64, repeated, packed = "false", tag = "13")]
    pub positive_delta: Vec<i64>,
    /// Absolute counts of the positive buckets (float histograms).
    #[prost(double, repeated, packed = "false", tag = "14")]
    pub positive_count: Vec<f64>,
}

/// A native histogram of the exposition that Prometheus would refuse.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidNative(pub String);

impl Histogram {
    /// Whether it carries a native histogram (Prometheus's `isNativeHistogram`): any span
    /// (an empty histogram signals itself with a no-op span), a zero threshold or an integer
    /// zero count.
    pub fn is_native(&self) -> bool {
        !self.positive_span.is_empty()
            || !self.negative_span.is_empty()
            || self.zero_threshold.unwrap_or(0.0) > 0.0
            || self.zero_count.unwrap_or(0) > 0
    }

    /// Whether the native part uses float counts (`sample_count_float` or
    /// `zero_count_float` > 0), else delta-encoded integer counts.
    pub fn is_float(&self) -> bool {
        self.sample_count_float.unwrap_or(0.0) > 0.0 || self.zero_count_float.unwrap_or(0.0) > 0.0
    }

    /// The native histogram, checked as Prometheus checks a scraped one (span lengths
    /// against bucket counts, then `Validate`), empty buckets removed. `gauge` marks a
    /// `GAUGE_HISTOGRAM` family. Schemas 9..52 are reduced to 8.
    pub fn to_native(&self, gauge: bool) -> Result<FloatHistogram, InvalidNative> {
        let float = self.is_float();
        let (pos, neg) = if float {
            (self.positive_count.len(), self.negative_count.len())
        } else {
            (self.positive_delta.len(), self.negative_delta.len())
        };
        check_span_buckets("positive", &self.positive_span, pos)?;
        check_span_buckets("negative", &self.negative_span, neg)?;
        let spans = |s: &[BucketSpan]| -> Vec<histogram_proto::BucketSpan> {
            s.iter()
                .map(|s| histogram_proto::BucketSpan {
                    offset: s.offset.unwrap_or(0),
                    length: s.length.unwrap_or(0),
                })
                .collect()
        };
        let wire = histogram_proto::Histogram {
            count: Some(if float {
                histogram_proto::Count::CountFloat(self.sample_count_float.unwrap_or(0.0))
            } else {
                histogram_proto::Count::CountInt(self.sample_count.unwrap_or(0))
            }),
            sum: self.sample_sum.unwrap_or(0.0),
            schema: self.schema.unwrap_or(0),
            zero_threshold: self.zero_threshold.unwrap_or(0.0),
            zero_count: Some(if float {
                histogram_proto::ZeroCount::ZeroCountFloat(self.zero_count_float.unwrap_or(0.0))
            } else {
                histogram_proto::ZeroCount::ZeroCountInt(self.zero_count.unwrap_or(0))
            }),
            negative_spans: spans(&self.negative_span),
            negative_deltas: if float {
                Vec::new()
            } else {
                self.negative_delta.clone()
            },
            negative_counts: if float {
                self.negative_count.clone()
            } else {
                Vec::new()
            },
            positive_spans: spans(&self.positive_span),
            positive_deltas: if float {
                Vec::new()
            } else {
                self.positive_delta.clone()
            },
            positive_counts: if float {
                self.positive_count.clone()
            } else {
                Vec::new()
            },
            reset_hint: if gauge {
                CounterResetHint::Gauge as i32
            } else {
                CounterResetHint::Unknown as i32
            },
            timestamp: 0,
            custom_values: Vec::new(),
        };
        wire.to_float()
            .map(|(_, h)| h)
            .map_err(|e| InvalidNative(e.0))
    }

    /// The native fields of `h`, for re-exposition: integer counts (delta-encoded) when
    /// every count is a whole number, as clients write them, else float counts. The
    /// classic buckets are left as they are; count and sum are shared with them.
    pub fn set_native(&mut self, h: &FloatHistogram) {
        let (ps, pc) = FloatHistogram::spans(&h.positive);
        let (ns, nc) = FloatHistogram::spans(&h.negative);
        let whole = |v: f64| v >= 0.0 && v.fract() == 0.0 && v < 9.0e15;
        let integer =
            whole(h.count) && whole(h.zero_count) && pc.iter().chain(nc.iter()).all(|c| whole(*c));
        let spans = |s: Vec<Span>| -> Vec<BucketSpan> {
            s.into_iter()
                .map(|s| BucketSpan {
                    offset: Some(s.offset),
                    length: Some(s.length),
                })
                .collect()
        };
        let deltas = |counts: &[f64]| -> Vec<i64> {
            let mut prev = 0i64;
            counts
                .iter()
                .map(|c| {
                    let c = *c as i64;
                    let d = c - prev;
                    prev = c;
                    d
                })
                .collect()
        };
        self.schema = Some(h.schema);
        self.zero_threshold = Some(h.zero_threshold);
        self.sample_sum = Some(h.sum);
        if integer {
            self.sample_count = Some(h.count as u64);
            self.sample_count_float = None;
            self.zero_count = Some(h.zero_count as u64);
            self.zero_count_float = None;
            self.positive_delta = deltas(&pc);
            self.negative_delta = deltas(&nc);
            self.positive_count = Vec::new();
            self.negative_count = Vec::new();
        } else {
            self.sample_count = None;
            self.sample_count_float = Some(h.count);
            self.zero_count = None;
            self.zero_count_float = Some(h.zero_count);
            self.positive_delta = Vec::new();
            self.negative_delta = Vec::new();
            self.positive_count = pc;
            self.negative_count = nc;
        }
        self.positive_span = spans(ps);
        self.negative_span = spans(ns);
        if !self.is_native() {
            // An empty histogram with a zero threshold of 0: a no-op span marks it native.
            self.positive_span.push(BucketSpan {
                offset: Some(0),
                length: Some(0),
            });
        }
    }
}

/// Prometheus's `checkProtoSpanBucketConsistency`.
fn check_span_buckets(side: &str, spans: &[BucketSpan], have: usize) -> Result<(), InvalidNative> {
    let need: u64 = spans.iter().map(|s| u64::from(s.length.unwrap_or(0))).sum();
    if need != have as u64 {
        return Err(InvalidNative(format!(
            "{side} side: spans require {need} buckets, have {have}"
        )));
    }
    Ok(())
}

/// `Metric`.
#[derive(Clone, PartialEq, Message)]
pub struct Metric {
    #[prost(message, repeated, tag = "1")]
    pub label: Vec<LabelPair>,
    #[prost(message, optional, tag = "2")]
    pub gauge: Option<SimpleValue>,
    #[prost(message, optional, tag = "3")]
    pub counter: Option<SimpleValue>,
    #[prost(message, optional, tag = "4")]
    pub summary: Option<Summary>,
    #[prost(message, optional, tag = "5")]
    pub untyped: Option<SimpleValue>,
    #[prost(int64, optional, tag = "6")]
    pub timestamp_ms: Option<i64>,
    #[prost(message, optional, tag = "7")]
    pub histogram: Option<Histogram>,
}

/// `MetricFamily`. `type`: 0 counter, 1 gauge, 2 summary, 3 untyped, 4 histogram,
/// 5 gauge histogram.
#[derive(Clone, PartialEq, Message)]
pub struct MetricFamily {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub help: Option<String>,
    #[prost(int32, optional, tag = "3")]
    pub r#type: Option<i32>,
    #[prost(message, repeated, tag = "4")]
    pub metric: Vec<Metric>,
}

/// Decodes a stream of length-delimited `MetricFamily` messages.
pub fn decode_delimited(mut body: &[u8]) -> Result<Vec<MetricFamily>, String> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let len = prost::encoding::decode_varint(&mut body)
            .map_err(|e| format!("invalid protobuf length prefix: {e}"))?
            as usize;
        if len > body.len() {
            return Err("truncated protobuf message".into());
        }
        let (msg, rest) = body.split_at(len);
        out.push(MetricFamily::decode(msg).map_err(|e| format!("invalid MetricFamily: {e}"))?);
        body = rest;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn span(offset: i32, length: u32) -> BucketSpan {
        BucketSpan {
            offset: Some(offset),
            length: Some(length),
        }
    }

    /// An integer native histogram as client_golang exposes it (schema 0, zero bucket,
    /// positive buckets 0, 1 and 3, negative bucket 1), with two classic buckets too.
    fn int_histogram() -> Histogram {
        Histogram {
            sample_count: Some(11),
            sample_sum: Some(12.5),
            bucket: vec![
                Bucket {
                    cumulative_count: Some(4),
                    upper_bound: Some(1.0),
                    ..Default::default()
                },
                Bucket {
                    cumulative_count: Some(8),
                    upper_bound: Some(8.0),
                    ..Default::default()
                },
            ],
            schema: Some(0),
            zero_threshold: Some(0.001),
            zero_count: Some(1),
            positive_span: vec![span(0, 2), span(1, 1)],
            positive_delta: vec![2, 1, -1],
            negative_span: vec![span(1, 1)],
            negative_delta: vec![3],
            ..Default::default()
        }
    }

    fn family(kind: i32, h: Histogram) -> MetricFamily {
        MetricFamily {
            name: Some("rpc_seconds".into()),
            help: Some("RPC latency.".into()),
            r#type: Some(kind),
            metric: vec![Metric {
                label: vec![LabelPair {
                    name: Some("method".into()),
                    value: Some("get".into()),
                }],
                histogram: Some(h),
                ..Default::default()
            }],
        }
    }

    #[test]
    fn decodes_an_integer_native_histogram_from_a_delimited_stream() {
        let mut body = Vec::new();
        family(4, int_histogram())
            .encode_length_delimited(&mut body)
            .unwrap();
        let fams = decode_delimited(&body).unwrap();
        let h = fams[0].metric[0].histogram.clone().unwrap();
        assert_eq!(h, int_histogram());
        assert_eq!(h.bucket.len(), 2, "classic buckets kept");
        assert!(h.is_native());
        assert!(!h.is_float());
        let n = h.to_native(false).unwrap();
        assert_eq!(n.schema, 0);
        assert_eq!(n.count, 11.0);
        assert_eq!(n.sum, 12.5);
        assert_eq!(n.zero_threshold, 0.001);
        assert_eq!(n.zero_count, 1.0);
        assert_eq!(n.positive, vec![(0, 2.0), (1, 3.0), (3, 2.0)]);
        assert_eq!(n.negative, vec![(1, 3.0)]);
        assert_eq!(n.hint, CounterResetHint::Unknown);
        assert_eq!(h.to_native(true).unwrap().hint, CounterResetHint::Gauge);
    }

    #[test]
    fn decodes_float_histograms_and_packed_or_unpacked_counts() {
        let h = Histogram {
            sample_count_float: Some(3.5),
            sample_sum: Some(-1.0),
            schema: Some(3),
            positive_span: vec![span(-2, 3)],
            positive_count: vec![1.0, 0.0, 2.5],
            ..Default::default()
        };
        assert!(h.is_float());
        let n = h.to_native(false).unwrap();
        assert_eq!(n.count, 3.5);
        assert_eq!(
            n.positive,
            vec![(-2, 1.0), (0, 2.5)],
            "empty buckets removed"
        );
        // The same deltas written packed (proto3 writers) decode alike.
        #[derive(Clone, PartialEq, Message)]
        struct Packed {
            #[prost(message, repeated, tag = "12")]
            positive_span: Vec<BucketSpan>,
            #[prost(sint64, repeated, tag = "13")]
            positive_delta: Vec<i64>,
        }
        let bytes = Packed {
            positive_span: vec![span(0, 3)],
            positive_delta: vec![1, 2, -3],
        }
        .encode_to_vec();
        let unpacked = Histogram::decode(&bytes[..]).unwrap();
        assert_eq!(unpacked.positive_delta, vec![1, 2, -3]);
        assert_eq!(
            Histogram::decode(&unpacked.encode_to_vec()[..]).unwrap(),
            unpacked
        );
    }

    #[test]
    fn tells_native_from_classic_as_prometheus_does() {
        let classic = Histogram {
            sample_count: Some(1),
            bucket: vec![Bucket {
                cumulative_count: Some(1),
                upper_bound: Some(1.0),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(!classic.is_native());
        // A native histogram without observations signals itself with a no-op span.
        let empty = Histogram {
            schema: Some(3),
            positive_span: vec![span(0, 0)],
            ..Default::default()
        };
        assert!(empty.is_native());
        let n = empty.to_native(false).unwrap();
        assert_eq!((n.count, n.positive.len()), (0.0, 0));
        let zero_only = Histogram {
            zero_threshold: Some(1e-128),
            ..Default::default()
        };
        assert!(zero_only.is_native());
    }

    #[test]
    fn refuses_inconsistent_or_invalid_native_histograms() {
        let mut h = int_histogram();
        h.positive_delta.pop();
        assert_eq!(
            h.to_native(false).unwrap_err().0,
            "positive side: spans require 3 buckets, have 2"
        );
        let mut h = int_histogram();
        h.negative_delta = vec![-1];
        assert!(
            h.to_native(false)
                .unwrap_err()
                .0
                .contains("observation count is negative"),
        );
        let mut h = int_histogram();
        h.schema = Some(-9);
        assert!(h.to_native(false).unwrap_err().0.contains("invalid schema"));
        // Schemas above 8 are reduced to 8.
        let mut h = int_histogram();
        h.schema = Some(10);
        assert_eq!(h.to_native(false).unwrap().schema, 8);
    }

    #[test]
    fn set_native_writes_what_to_native_reads() {
        let n = int_histogram().to_native(false).unwrap();
        let mut h = Histogram::default();
        h.set_native(&n);
        assert!(!h.is_float());
        assert_eq!(h.to_native(false).unwrap(), n);
        let f = Histogram {
            sample_count_float: Some(2.5),
            schema: Some(1),
            zero_threshold: Some(0.5),
            zero_count_float: Some(0.5),
            negative_span: vec![span(2, 1)],
            negative_count: vec![2.0],
            ..Default::default()
        }
        .to_native(false)
        .unwrap();
        let mut h = Histogram::default();
        h.set_native(&f);
        assert!(h.is_float());
        assert_eq!(h.to_native(false).unwrap(), f);
        // An empty histogram stays recognizably native.
        let mut h = Histogram::default();
        h.set_native(&FloatHistogram::default());
        assert!(h.is_native());
    }
}
