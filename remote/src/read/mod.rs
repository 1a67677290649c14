//! Remote read (Prometheus's protocol), server side (`POST /api/v1/read`) and, in
//! [`RemoteReaders`], client side.
//!
//! The server takes a snappy `ReadRequest` of queries (matchers, time range, hints) and
//! answers in the first response type of the client's `accepted_response_types` it
//! supports (`SAMPLES` for an empty list; 400 when none is supported):
//!
//! - `SAMPLES`: one snappy `ReadResponse` of the series' float samples and native
//!   histograms ([`Answer::Samples`]);
//! - `STREAMED_XOR_CHUNKS`: uncompressed frames ([`frame`]) of `ChunkedReadResponse`s, one
//!   series per frame, float samples in XOR chunks ([`xor`]) of at most 120 samples and
//!   native histograms in `FLOAT_HISTOGRAM` chunks ([`chunkenc::histogram`], cut as
//!   Prometheus's appender cuts them), a series' chunks in time order, a frame's message
//!   within `--storage.remote.read-max-bytes-in-frame` ([`Answer::Streamed`], see
//!   [`Frames`]).
//!
//! As Prometheus's handler: equality matchers on the server's external labels are dropped
//! from a query and the external labels are added to the series returned; at most
//! `--storage.remote.read-sample-limit` samples per request (400 past it) and no more
//! memory than a query may hold, at most `--storage.remote.read-concurrent-limit` requests
//! at once. Every query is read before the answer starts, so a refusal is a status code,
//! never a broken stream; a streamed answer then holds the series read and one frame.

pub use strata_chunkenc as chunkenc;
mod client;
mod decode;
pub mod frame;
pub mod proto;
mod samples;
mod select;
mod stream;

pub use chunkenc::{ChunkError, xor};
pub use client::RemoteReaders;
pub use decode::{ClientError, MAX_ANSWER_BYTES};
pub use frame::STREAMED_CONTENT_TYPE;
pub use stream::{
    Frames, MAX_CHUNK_SAMPLES, MIN_HISTOGRAM_CHUNK_SAMPLES, TARGET_HISTOGRAM_CHUNK_BYTES,
};

use std::collections::BTreeMap;

use prost::Message;
use strata_storage::{Db, ReadCharge, StorageError};

use proto::{ReadRequest, ResponseType};

/// Largest decompressed request accepted.
pub const MAX_REQUEST_BYTES: usize = 32 << 20;

/// The `Content-Type` of a `SAMPLES` answer (with `Content-Encoding: snappy`).
pub const SAMPLES_CONTENT_TYPE: &str = "application/x-protobuf";

/// Prometheus's default of `--storage.remote.read-max-bytes-in-frame`.
pub const DEFAULT_MAX_BYTES_IN_FRAME: usize = 1_048_576;

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
        "server does not support any of the requested response types: {0:?}; supported: [SAMPLES STREAMED_XOR_CHUNKS]"
    )]
    UnsupportedResponseType(Vec<i32>),
    /// The answer could not be encoded.
    #[error("encoding the answer: {0}")]
    Encode(String),
    /// Storage failed.
    #[error("{0}")]
    Storage(#[from] StorageError),
}

/// How a request is answered.
#[derive(Debug)]
pub enum Answer {
    /// A snappy-compressed `ReadResponse` ([`SAMPLES_CONTENT_TYPE`], `Content-Encoding:
    /// snappy`).
    Samples(Vec<u8>),
    /// Frames to send as they are made ([`STREAMED_CONTENT_TYPE`], no content encoding).
    Streamed(Frames),
}

/// What bounds an answer.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// `--storage.remote.read-sample-limit`: samples per request (0: no limit).
    pub sample_limit: usize,
    /// `--storage.remote.read-max-bytes-in-frame`: bytes of a streamed frame's message.
    pub max_bytes_in_frame: usize,
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

/// The response type for `accepted` (Prometheus's `NegotiateResponseType`): the first one
/// Strata supports, `SAMPLES` for none listed.
pub fn negotiate(accepted: &[i32]) -> Result<ResponseType, ReadError> {
    if accepted.is_empty() {
        return Ok(ResponseType::Samples);
    }
    accepted
        .iter()
        .find_map(|&t| ResponseType::try_from(t).ok())
        .ok_or_else(|| ReadError::UnsupportedResponseType(accepted.to_vec()))
}

/// Answers `req` from `db`: one result per query, in order, in the negotiated response
/// type. Samples count against `limits.sample_limit` and, as storage decodes them, their
/// memory against `memory`.
pub async fn answer(
    db: &Db,
    req: &ReadRequest,
    external: &BTreeMap<String, String>,
    limits: ReadLimits,
    memory: &dyn ReadCharge,
) -> Result<Answer, ReadError> {
    let kind = negotiate(&req.accepted_response_types)?;
    let selected = select::select(db, req, external, limits.sample_limit, memory).await?;
    if kind == ResponseType::Samples {
        return samples::encode(selected).map(Answer::Samples);
    }
    let mut series = Vec::new();
    for (i, mut query) in selected.into_iter().enumerate() {
        // As a TSDB block orders them (label pairs compared in turn).
        query.sort_by(|a, b| {
            a.labels
                .iter()
                .map(|l| (&l.name, &l.value))
                .cmp(b.labels.iter().map(|l| (&l.name, &l.value)))
        });
        series.extend(
            query
                .into_iter()
                .filter(|s| !s.samples.is_empty() || !s.histograms.is_empty())
                .map(|s| stream::Series {
                    query_index: i as i64,
                    labels: s.labels,
                    samples: s.samples,
                    histograms: s.histograms,
                }),
        );
    }
    Ok(Answer::Streamed(Frames::new(
        series,
        limits.max_bytes_in_frame,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_supported_type_of_the_client_wins() {
        let s = ResponseType::Samples as i32;
        let x = ResponseType::StreamedXorChunks as i32;
        assert_eq!(negotiate(&[]).ok(), Some(ResponseType::Samples));
        assert_eq!(
            negotiate(&[x, s]).ok(),
            Some(ResponseType::StreamedXorChunks)
        );
        assert_eq!(negotiate(&[s, x]).ok(), Some(ResponseType::Samples));
        assert_eq!(
            negotiate(&[7, x]).ok(),
            Some(ResponseType::StreamedXorChunks)
        );
        assert!(matches!(
            negotiate(&[7, 9]),
            Err(ReadError::UnsupportedResponseType(v)) if v == vec![7, 9]
        ));
    }
}
