//! `POST /api/v1/read`: Prometheus remote read (see `strata_remote::read`), so another
//! Prometheus's `remote_read`, Thanos-style tools or promxy can query Strata's data, in
//! either response type: `SAMPLES` (one snappy `ReadResponse`) or `STREAMED_XOR_CHUNKS`
//! (frames sent as they are made, each within `--storage.remote.read-max-bytes-in-frame`).
//! Bounded like remote write: at most `--storage.remote.read-concurrent-limit` requests at
//! once (others wait up to 10 s, then 503; a streamed answer keeps its slot and its memory
//! until its last frame is sent or the client goes away), the body read up to 32 MiB, and
//! at most `--storage.remote.read-sample-limit` samples per request.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use strata_remote::read::{self, Answer, ReadError, ReadLimits};

use crate::AppState;
#[allow(unused_imports)]
use crate::openapi::*;

#[utoipa::path(
    method(post),
    path = "/api/v1/read",
    tag = "read",
    summary = "Prometheus remote read (snappy-compressed protobuf ReadRequest; SAMPLES and STREAMED_XOR_CHUNKS responses)",
    description = "The response type is the first of the request's accepted_response_types Strata supports (SAMPLES when none is listed). STREAMED_XOR_CHUNKS: uncompressed frames (uvarint length, CRC32 Castagnoli big-endian, ChunkedReadResponse), one series per frame, float samples in XOR chunks of at most 120 samples and native histograms in FLOAT_HISTOGRAM chunks (Prometheus's encoding, bit-exact: counter-reset header, recoding on new buckets, a new chunk at a counter reset or schema change, about 1 KiB a chunk), a series' chunks in time order, each frame's message within --storage.remote.read-max-bytes-in-frame.",
    request_body(content = Vec<u8>, content_type = "application/x-protobuf", description = "snappy block-compressed ReadRequest"),
    responses(
        (status = 200, description = "SAMPLES: a snappy block-compressed ReadResponse (Content-Encoding: snappy). STREAMED_XOR_CHUNKS: framed ChunkedReadResponse messages, no content encoding", content(
            (Vec<u8> = "application/x-protobuf"),
            (Vec<u8> = "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse")
        )),
        (status = 400, description = "Malformed request, a bad matcher, no supported response type accepted, more samples than --storage.remote.read-sample-limit, or more memory than a query may hold", body = String, content_type = "text/plain"),
        (status = 413, description = "Body larger than the limit", body = String, content_type = "text/plain"),
        (status = 503, description = "Storage not ready, or too many remote-read requests at once (retry)", body = String, content_type = "text/plain")
    )
)]
pub(crate) async fn remote_read(State(s): State<Arc<AppState>>, req: Request) -> Response {
    let db = match s.db() {
        Ok(db) => db.clone(),
        Err(e) => return e.into_response(),
    };
    let slot = match crate::body::slot(&s.read_slots, "remote-read").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let body = match crate::body::read(req, read::MAX_REQUEST_BYTES).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let request = match read::decode_request(&body) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let external: BTreeMap<String, String> = s.info.external_labels.iter().cloned().collect();
    // A read holds its samples like a query: from the shared query memory, at most a
    // query's share (--query.max-memory-per-query), decoded and then encoded.
    let engine = match s.engine() {
        Ok(e) => e,
        Err(e) => return e.into_response(),
    };
    let budget = strata_engine::memory::Budget::new(
        &strata_engine::memory::query_pool(
            &engine.runtime().memory_pool,
            engine.options().per_query_memory(),
        ),
        u64::MAX,
        "remote read",
    );
    let memory = MemoryCharge(&budget);
    let limits = ReadLimits {
        sample_limit: s.info.remote_read_sample_limit,
        max_bytes_in_frame: s.info.remote_read_max_bytes_in_frame,
    };
    match read::answer(&db, &request, &external, limits, &memory).await {
        Ok(Answer::Samples(bytes)) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, read::SAMPLES_CONTENT_TYPE),
                (header::CONTENT_ENCODING, "snappy"),
            ],
            bytes,
        )
            .into_response(),
        Ok(Answer::Streamed(frames)) => {
            // The stream outlives this function: it keeps the slot (given back by the
            // guard) and the memory budget of the samples it still holds.
            slot.forget();
            let frames = frames.hold((budget, SlotGuard(s.clone())));
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, read::STREAMED_CONTENT_TYPE)],
                Body::from_stream(frames.into_stream()),
            )
                .into_response()
        }
        Err(e @ (ReadError::Storage(_) | ReadError::Encode(_))) => {
            (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    }
}

/// A remote-read slot held by a streamed answer; given back when the answer is dropped.
struct SlotGuard(Arc<AppState>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.read_slots.add_permits(1);
    }
}

/// Charges read samples to a query budget: each held decoded and then encoded.
struct MemoryCharge<'a>(&'a strata_engine::memory::Budget);

impl strata_storage::ReadCharge for MemoryCharge<'_> {
    fn charge(&self, samples: usize) -> bool {
        self.0
            .charge(samples, 2 * strata_engine::memory::SAMPLE_BYTES)
            .is_ok()
    }
}
