//! Prometheus remote write 1.0: snappy-compressed (block format) protobuf `WriteRequest`s.
//! The whole request is decoded and validated before anything is appended, so a malformed
//! request stores nothing. The server decodes with [`decode_bounded`]: element by element,
//! with the decoded heap capped relative to the body (see `bounded.rs`).

use prost::Message;
use strata_storage::SeriesSamples;

use crate::error::IngestError;

mod bounded;
pub mod v2;

pub use bounded::{
    Decoded, HEAP_PER_BODY_BYTE, HEAP_PER_HISTOGRAM_BYTE, Limits, MAX_METADATA_PER_REQUEST,
    decode_bounded,
};

/// Largest decompressed request accepted (Prometheus's default is 32 MiB too).
pub const MAX_DECOMPRESSED: usize = 32 << 20;

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// `prometheus.TimeSeries` (exemplars and native histograms are not decoded yet).
#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Exemplar` (1.0; field 3 of `TimeSeries`).
#[derive(Clone, PartialEq, Message)]
pub struct Exemplar {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(double, tag = "2")]
    pub value: f64,
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// `io.prometheus.write.v2.Exemplar`: labels as symbol references.
#[derive(Clone, PartialEq, Message)]
pub struct ExemplarV2 {
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    #[prost(double, tag = "2")]
    pub value: f64,
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// `prometheus.MetricMetadata`.
#[derive(Clone, PartialEq, Message)]
pub struct MetricMetadata {
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    #[prost(string, tag = "4")]
    pub help: String,
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// Decompresses and decodes a request body into prost's structures (tools and tests; the
/// server decodes with [`decode_bounded`]).
pub fn decode(body: &[u8]) -> Result<WriteRequest, IngestError> {
    Ok(WriteRequest::decode(decompress(body)?.as_slice())?)
}

/// Decompresses a snappy block, refusing one that would exceed [`MAX_DECOMPRESSED`].
pub fn decompress(body: &[u8]) -> Result<Vec<u8>, IngestError> {
    let len = snap::raw::decompress_len(body).map_err(|e| IngestError::Snappy(e.to_string()))?;
    if len > MAX_DECOMPRESSED {
        return Err(IngestError::TooLarge {
            size: len,
            limit: MAX_DECOMPRESSED,
        });
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| IngestError::Snappy(e.to_string()))
}

/// Decodes, validates and converts a request body in one go (unbounded labels).
pub fn parse(body: &[u8]) -> Result<Vec<SeriesSamples>, IngestError> {
    decode_bounded(body, &Limits::default()).map(|d| d.batch)
}

fn describe(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// Encodes a request (for tests and tools).
pub fn encode(req: &WriteRequest) -> Vec<u8> {
    let raw = req.encode_to_vec();
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> WriteRequest {
        WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![
                    Label {
                        name: "__name__".into(),
                        value: "up".into(),
                    },
                    Label {
                        name: "job".into(),
                        value: "a".into(),
                    },
                ],
                samples: vec![
                    Sample {
                        value: 1.0,
                        timestamp: 2000,
                    },
                    Sample {
                        value: 0.0,
                        timestamp: 1000,
                    },
                ],
            }],
            metadata: vec![],
        }
    }

    #[test]
    fn round_trip() {
        let b = parse(&encode(&req())).expect("valid");
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].samples, vec![(1000, 0.0), (2000, 1.0)]);
        assert_eq!(b[0].labels.to_string(), r#"up{job="a"}"#);
    }

    #[test]
    fn missing_name_is_rejected() {
        let mut r = req();
        r.timeseries[0].labels.remove(0);
        let e = parse(&encode(&r)).expect_err("invalid series");
        assert!(e.to_string().contains("missing metric name"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(b in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse(&b);
            let _ = parse(&snap::raw::Encoder::new().compress_vec(&b).unwrap_or_default());
        }
    }
}
