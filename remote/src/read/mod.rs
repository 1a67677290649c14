//! Remote read, server side (`POST /api/v1/read`, Prometheus's protocol): a snappy
//! `ReadRequest` of queries (matchers, time range, hints) answered with the matching series'
//! samples as a snappy `ReadResponse` (the `SAMPLES` response type; a request that accepts
//! only `STREAMED_XOR_CHUNKS` is refused with 400). As Prometheus's handler: equality
//! matchers on the server's external labels are dropped from a query and the external
//! labels are added to the series returned; at most `--storage.remote.read-sample-limit`
//! samples per request (400 past it) and no more memory than a query may hold, at most
//! `--storage.remote.read-concurrent-limit` requests at once.

mod client;
pub mod proto;

pub use client::RemoteReaders;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use prost::Message;
use strata_storage::{Db, MatchOp, Matcher, ReadCharge, StorageError};

use proto::{Label, QueryResult, ReadRequest, ReadResponse, Sample, TimeSeries};

/// Largest decompressed request accepted.
pub const MAX_REQUEST_BYTES: usize = 32 << 20;

/// Why a read request is refused.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not snappy, not a `ReadRequest`, or too large.
    #[error("{0}")]
    BadRequest(String),
    /// More samples than the limit.
    #[error("exceeded sample limit ({0})")]
    SampleLimit(usize),
    /// More memory than the server's query memory allows.
    #[error("the samples read do not fit in the query memory (--query.max-memory-per-query)")]
    Memory,
    /// Only response types Strata does not produce were accepted.
    #[error(
        "server does not support any of the requested response types: {0:?}; supported: [SAMPLES]"
    )]
    UnsupportedResponseType(Vec<i32>),
    /// Storage failed.
    #[error("{0}")]
    Storage(#[from] StorageError),
}

/// Counts samples against the request's limit, and their memory against `memory`.
struct Limit<'a> {
    left: AtomicUsize,
    limit: usize,
    memory: &'a dyn ReadCharge,
    out_of_memory: std::sync::atomic::AtomicBool,
}

impl ReadCharge for Limit<'_> {
    fn charge(&self, samples: usize) -> bool {
        if self
            .left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| {
                l.checked_sub(samples)
            })
            .is_err()
        {
            return false;
        }
        if !self.memory.charge(samples) {
            self.out_of_memory.store(true, Ordering::Release);
            return false;
        }
        true
    }
}

/// Decodes a snappy-compressed `ReadRequest`.
pub fn decode_request(body: &[u8]) -> Result<ReadRequest, ReadError> {
    let len = snap::raw::decompress_len(body).map_err(|e| ReadError::BadRequest(e.to_string()))?;
    if len > MAX_REQUEST_BYTES {
        return Err(ReadError::BadRequest(format!(
            "decompressed request of {len} bytes is larger than {MAX_REQUEST_BYTES}"
        )));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| ReadError::BadRequest(e.to_string()))?;
    ReadRequest::decode(raw.as_slice()).map_err(|e| ReadError::BadRequest(e.to_string()))
}

/// Answers `req` from `db`: one result per query, in order, as a snappy-compressed
/// `ReadResponse`. Samples count against `sample_limit` and, as storage decodes them,
/// their memory against `memory`.
pub async fn answer(
    db: &Db,
    req: &ReadRequest,
    external: &BTreeMap<String, String>,
    sample_limit: usize,
    memory: &dyn ReadCharge,
) -> Result<Vec<u8>, ReadError> {
    if !req.accepted_response_types.is_empty()
        && !req
            .accepted_response_types
            .contains(&(proto::ResponseType::Samples as i32))
    {
        return Err(ReadError::UnsupportedResponseType(
            req.accepted_response_types.clone(),
        ));
    }
    let limit = Limit {
        left: AtomicUsize::new(if sample_limit == 0 {
            usize::MAX
        } else {
            sample_limit
        }),
        limit: sample_limit,
        memory,
        out_of_memory: std::sync::atomic::AtomicBool::new(false),
    };
    let mut results = Vec::with_capacity(req.queries.len());
    for q in &req.queries {
        let mut matchers = Vec::with_capacity(q.matchers.len());
        for m in &q.matchers {
            let op = match proto::MatchType::try_from(m.r#type) {
                Ok(proto::MatchType::Eq) => MatchOp::Equal,
                Ok(proto::MatchType::Neq) => MatchOp::NotEqual,
                Ok(proto::MatchType::Re) => MatchOp::Regex,
                Ok(proto::MatchType::Nre) => MatchOp::NotRegex,
                Err(_) => {
                    return Err(ReadError::BadRequest(format!(
                        "unknown matcher type {}",
                        m.r#type
                    )));
                }
            };
            // Prometheus `filterExtLabelsFromMatchers`: a matcher that selects this
            // server's external label value says "this server", not a series label.
            if op == MatchOp::Equal && external.get(&m.name) == Some(&m.value) {
                continue;
            }
            matchers.push(
                Matcher::new(op, m.name.clone(), m.value.clone())
                    .map_err(|e| ReadError::BadRequest(e.to_string()))?,
            );
        }
        let series = match db
            .select_charged(
                &matchers,
                q.start_timestamp_ms,
                q.end_timestamp_ms,
                None,
                &limit,
            )
            .await
        {
            Ok(s) => s,
            Err(StorageError::ReadRefused) if limit.out_of_memory.load(Ordering::Acquire) => {
                return Err(ReadError::Memory);
            }
            Err(StorageError::ReadRefused) => return Err(ReadError::SampleLimit(limit.limit)),
            Err(e) => return Err(e.into()),
        };
        let timeseries = series
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(|s| {
                let mut labels: BTreeMap<String, String> = s
                    .labels
                    .iter()
                    .map(|l| (l.name.to_string(), l.value.to_string()))
                    .collect();
                for (k, v) in external {
                    labels.entry(k.clone()).or_insert_with(|| v.clone());
                }
                TimeSeries {
                    labels: labels
                        .into_iter()
                        .map(|(name, value)| Label { name, value })
                        .collect(),
                    samples: s
                        .samples
                        .into_iter()
                        .map(|(timestamp, value)| Sample { value, timestamp })
                        .collect(),
                    histograms: s
                        .histograms
                        .iter()
                        .map(|(t, h)| strata_ingest::histogram_proto::Histogram::from_float(*t, h))
                        .collect(),
                }
            })
            .collect();
        results.push(QueryResult { timeseries });
    }
    let raw = ReadResponse { results }.encode_to_vec();
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .map_err(|e| ReadError::BadRequest(e.to_string()))
}
