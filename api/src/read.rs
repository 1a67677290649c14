//! `POST /api/v1/read`: Prometheus remote read (see `strata_remote::read`), so another
//! Prometheus's `remote_read`, Thanos-style tools or promxy can query Strata's data.
//! Bounded like remote write: at most `--storage.remote.read-concurrent-limit` requests at
//! once (others wait up to 10 s, then 503), the body read up to 32 MiB, and at most
//! `--storage.remote.read-sample-limit` samples per request.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use strata_remote::read::{self, ReadError};

use crate::AppState;
#[allow(unused_imports)]
use crate::openapi::*;

/// How long a request waits for a slot before 503.
const SLOT_WAIT: Duration = Duration::from_secs(10);
/// How long the body may take to arrive.
const BODY_WAIT: Duration = Duration::from_secs(30);

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
    let Ok(Ok(_slot)) = tokio::time::timeout(SLOT_WAIT, s.read_slots.acquire()).await else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "too many remote-read requests in progress; retry\n",
        )
            .into_response();
    };
    let limit = read::MAX_REQUEST_BYTES;
    let body =
        match tokio::time::timeout(BODY_WAIT, axum::body::to_bytes(req.into_body(), limit)).await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                return (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("reading the body (limit {limit} bytes): {e}\n"),
                )
                    .into_response();
            }
            Err(_) => {
                return (
                    StatusCode::REQUEST_TIMEOUT,
                    format!("the body did not arrive within {} s\n", BODY_WAIT.as_secs()),
                )
                    .into_response();
            }
        };
    let request = match read::decode_request(&body) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let external: BTreeMap<String, String> = s.info.external_labels.iter().cloned().collect();
    match read::answer(&db, &request, &external, s.info.remote_read_sample_limit).await {
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
