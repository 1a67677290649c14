//! The remote-read messages of Prometheus's `prompb` (`remote.proto`, `types.proto`).

use prost::{Enumeration, Message};

pub use strata_ingest::remote_write::{Label, Sample};

/// `prometheus.TimeSeries` as remote read carries it: float samples and native histograms.
#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<strata_ingest::histogram_proto::Histogram>,
}

/// `prometheus.ReadRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct ReadRequest {
    #[prost(message, repeated, tag = "1")]
    pub queries: Vec<Query>,
    /// [`ResponseType`]s the client accepts, in its order of preference.
    #[prost(enumeration = "ResponseType", repeated, tag = "2")]
    pub accepted_response_types: Vec<i32>,
}

/// `prometheus.ReadRequest.ResponseType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum ResponseType {
    /// One `ReadResponse` with raw samples.
    Samples = 0,
    /// A stream of `ChunkedReadResponse` frames of XOR chunks.
    StreamedXorChunks = 1,
}

/// `prometheus.Query`.
#[derive(Clone, PartialEq, Message)]
pub struct Query {
    #[prost(int64, tag = "1")]
    pub start_timestamp_ms: i64,
    #[prost(int64, tag = "2")]
    pub end_timestamp_ms: i64,
    #[prost(message, repeated, tag = "3")]
    pub matchers: Vec<LabelMatcher>,
    #[prost(message, optional, tag = "4")]
    pub hints: Option<ReadHints>,
}

/// `prometheus.LabelMatcher`.
#[derive(Clone, PartialEq, Message)]
pub struct LabelMatcher {
    #[prost(enumeration = "MatchType", tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, tag = "3")]
    pub value: String,
}

/// `prometheus.LabelMatcher.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum MatchType {
    Eq = 0,
    Neq = 1,
    Re = 2,
    Nre = 3,
}

/// `prometheus.ReadHints` (accepted; the server reads raw samples whatever they say).
#[derive(Clone, PartialEq, Message)]
pub struct ReadHints {
    #[prost(int64, tag = "1")]
    pub step_ms: i64,
    #[prost(string, tag = "2")]
    pub func: String,
    #[prost(int64, tag = "3")]
    pub start_ms: i64,
    #[prost(int64, tag = "4")]
    pub end_ms: i64,
    #[prost(string, repeated, tag = "5")]
    pub grouping: Vec<String>,
    #[prost(bool, tag = "6")]
    pub by: bool,
    #[prost(int64, tag = "7")]
    pub range_ms: i64,
}

/// `prometheus.ReadResponse`.
#[derive(Clone, PartialEq, Message)]
pub struct ReadResponse {
    #[prost(message, repeated, tag = "1")]
    pub results: Vec<QueryResult>,
}

/// `prometheus.QueryResult`.
#[derive(Clone, PartialEq, Message)]
pub struct QueryResult {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.Chunk`: samples of one series in one of Prometheus's chunk encodings.
#[derive(Clone, PartialEq, Message)]
pub struct Chunk {
    #[prost(int64, tag = "1")]
    pub min_time_ms: i64,
    #[prost(int64, tag = "2")]
    pub max_time_ms: i64,
    /// A [`ChunkEncoding`].
    #[prost(enumeration = "ChunkEncoding", tag = "3")]
    pub r#type: i32,
    #[prost(bytes = "vec", tag = "4")]
    pub data: Vec<u8>,
}

/// `prometheus.Chunk.Encoding` (Prometheus's `chunkenc.Encoding`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum ChunkEncoding {
    Unknown = 0,
    /// Float samples (see `read::xor`).
    Xor = 1,
    Histogram = 2,
    FloatHistogram = 3,
    Xor2 = 4,
    HistogramSt = 5,
    FloatHistogramSt = 6,
}

impl ChunkEncoding {
    /// The name `prompb` gives `code` (the number itself when it has none).
    pub fn name(code: i32) -> String {
        match ChunkEncoding::try_from(code) {
            Ok(ChunkEncoding::Unknown) => "UNKNOWN".into(),
            Ok(ChunkEncoding::Xor) => "XOR".into(),
            Ok(ChunkEncoding::Histogram) => "HISTOGRAM".into(),
            Ok(ChunkEncoding::FloatHistogram) => "FLOAT_HISTOGRAM".into(),
            Ok(ChunkEncoding::Xor2) => "XOR2".into(),
            Ok(ChunkEncoding::HistogramSt) => "HISTOGRAM_ST".into(),
            Ok(ChunkEncoding::FloatHistogramSt) => "FLOAT_HISTOGRAM_ST".into(),
            Err(_) => format!("encoding {code}"),
        }
    }
}

/// `prometheus.ChunkedSeries`: a series' labels (sorted) and chunks (in time order).
#[derive(Clone, PartialEq, Message)]
pub struct ChunkedSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub chunks: Vec<Chunk>,
}

/// `prometheus.ChunkedReadResponse`: one frame of a `STREAMED_XOR_CHUNKS` answer.
#[derive(Clone, PartialEq, Message)]
pub struct ChunkedReadResponse {
    #[prost(message, repeated, tag = "1")]
    pub chunked_series: Vec<ChunkedSeries>,
    /// The index of the request's query these chunks answer.
    #[prost(int64, tag = "2")]
    pub query_index: i64,
}
