//! `POST /api/v1/read`: Prometheus remote read (see `strata_remote::read`), so another
//! Prometheus's `remote_read`, Thanos-style tools or promxy can query Strata's data.
//! Bounded like remote write: at most `--storage.remote.read-concurrent-limit` requests at
//! once (others wait up to 10 s, then 503), the body read up to 32 MiB, and at most
//! `--storage.remote.read-sample-limit` samples per request.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use strata_remote::read::{self, ReadError};

use crate::AppState;
#[allow(unused_imports)]
use crate::openapi::*;

#[utoipa::path(
    method(post),
    path = "/api/v1/read",
    tag = "read",
    summary = "Prometheus remote read (snappy-compressed protobuf ReadRequest; SAMPLES responses)",
    request_body(content = Vec<u8>, content_type = "application/x-protobuf", description = "snappy block-compressed ReadRequest"),
    responses(
        (status = 200, description = "snappy block-compressed ReadResponse", body = Vec<u8>, content_type = "application/x-protobuf"),
        (status = 400, description = "Malformed request, a bad matcher, only STREAMED_XOR_CHUNKS accepted, or more samples than --storage.remote.read-sample-limit", body = String, content_type = "text/plain"),
        (status = 413, description = "Body larger than the limit", body = String, content_type = "text/plain"),
        (status = 503, description = "Storage not ready, or too many remote-read requests at once (retry)", body = String, content_type = "text/plain")
    )
)]
pub(crate) async fn remote_read(State(s): State<Arc<AppState>>, req: Request) -> Response {
    let db = match s.db() {
        Ok(db) => db.clone(),
        Err(e) => return e.into_response(),
    };
    let _slot = match crate::body::slot(&s.read_slots, "remote-read").await {
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
    match read::answer(
        &db,
        &request,
        &external,
        s.info.remote_read_sample_limit,
        &memory,
    )
    .await
    {
        Ok(bytes) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/x-protobuf"),
                (header::CONTENT_ENCODING, "snappy"),
            ],
            bytes,
        )
            .into_response(),
        Err(e @ ReadError::Storage(_)) => {
            (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
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
