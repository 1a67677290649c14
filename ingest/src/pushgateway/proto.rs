//! `io.prometheus.client.MetricFamily` (client_model `metrics.proto`), the protobuf body the
//! Go client pushes as a stream of length-delimited messages.

use prost::Message;

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

/// `Histogram` (classic buckets; native histogram fields are not decoded).
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
