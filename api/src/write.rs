//! `POST /api/v1/write`: remote write 1.0 and 2.0, told apart by the `Content-Type`'s
//! `proto=` parameter (none, or `prometheus.WriteRequest`: 1.0;
//! `io.prometheus.write.v2.Request`: 2.0; anything else, or an encoding other than snappy:
//! 415). 204 once every accepted sample is in the WAL; 400 with the reason for a malformed
//! body (nothing of it stored) and, as Prometheus, for samples refused as out of bounds or
//! conflicting (the others are stored). A 2.0 answer always carries
//! `X-Prometheus-Remote-Write-{Samples,Histograms,Exemplars}-Written` (what was stored,
//! also on errors); native histograms and exemplars are not stored yet, so a request with
//! histograms is answered 400 after its float samples are written.
//!
//! Bounded: at most `--web.remote-write.max-concurrency` requests are read, decoded and
//! appended at once (a request waits up to [`SLOT_WAIT`] for a slot before its body is
//! read, then gets 503 so the sender retries); the body is read up to the size limit
//! (413 past it) and decoded element by element within a heap budget relative to its size
//! (`strata_ingest::remote_write::decode_bounded`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use strata_storage::{Appender, StorageError};

use crate::AppState;
#[allow(unused_imports)]
use crate::openapi::*;

#[utoipa::path(
    method(post),
    path = "/api/v1/write",
    tag = "write",
    summary = "Prometheus remote write 1.0 and 2.0 (snappy-compressed protobuf; Content-Type proto= prometheus.WriteRequest or io.prometheus.write.v2.Request)",
    request_body(content = Vec<u8>, content_type = "application/x-protobuf", description = "snappy block-compressed WriteRequest (1.0) or io.prometheus.write.v2.Request (2.0)"),
    responses(
        (status = 204, description = "Every accepted sample is in the WAL (2.0: X-Prometheus-Remote-Write-{Samples,Histograms,Exemplars}-Written headers on every answer)"),
        (status = 415, description = "Unsupported Content-Type, proto= message or Content-Encoding", body = String, content_type = "text/plain"),
        (status = 400, description = "Malformed body, or samples refused (out of bounds: too old for retention, too far in the future, or behind the out-of-order window)", body = String, content_type = "text/plain"),
        (status = 413, description = "Body larger than the limit", body = String, content_type = "text/plain"),
        (status = 503, description = "Storage not ready, WAL writes failing, or too many remote-write requests at once (retry)", body = String, content_type = "text/plain"),
        (status = 500, description = "Storage failure", body = String, content_type = "text/plain")
    )
)]
pub(crate) async fn remote_write(State(s): State<Arc<AppState>>, req: Request) -> Response {
    let version = match negotiate(&req) {
        Ok(v) => v,
        Err(msg) => {
            s.counters
                .remote_write_rejected
                .fetch_add(1, Ordering::Relaxed);
            return (StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("{msg}\n")).into_response();
        }
    };
    let db = match s.db() {
        Ok(db) => db.clone(),
        Err(e) => return e.into_response(),
    };
    let _slot = match crate::body::slot(&s.write_slots, "remote-write").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let limit = strata_ingest::remote_write::MAX_DECOMPRESSED;
    let body = match crate::body::read(req, limit).await {
        Ok(b) => b,
        Err(r) => {
            s.counters
                .remote_write_rejected
                .fetch_add(1, Ordering::Relaxed);
            return r;
        }
    };
    let limits = *s.write_limits.read();
    if version == Version::V2 {
        return write_v2(&s, db, body, limits).await;
    }
    // Decoding a 32 MiB body is CPU work: off the async workers.
    let decoded = tokio::task::spawn_blocking(move || {
        strata_ingest::remote_write::decode_bounded(&body, &limits)
    })
    .await;
    let decoded = match decoded {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => {
            s.counters
                .remote_write_rejected
                .fetch_add(1, Ordering::Relaxed);
            return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response();
        }
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    };
    s.metadata.record(&decoded.metadata);
    let batch = decoded.batch;
    let res = tokio::task::spawn_blocking(move || db.append(&batch)).await;
    match res {
        Ok(Ok(report)) => match report.first_rejection {
            None => StatusCode::NO_CONTENT.into_response(),
            Some(msg) => (
                StatusCode::BAD_REQUEST,
                format!(
                    "{msg} ({} samples refused: {} out of bounds, {} duplicate timestamps; {} stored)\n",
                    report.out_of_bounds + report.duplicate_timestamp,
                    report.out_of_bounds,
                    report.duplicate_timestamp,
                    report.appended
                ),
            )
                .into_response(),
        },
        // Disk full or I/O error: nothing of the request is stored; the sender retries.
        Ok(Err(e @ StorageError::Io { .. })) => {
            tracing::warn!(error = %e, "remote write refused: WAL write failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
                format!("{e}\n"),
            )
                .into_response()
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "remote write append failed");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// The protocol of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// The protocol a request's `Content-Type` names, or why it is not one Strata takes
/// (Remote Write 2.0 specification: 415 Unsupported Media Type). No `Content-Type` and no
/// `Content-Encoding` are 1.0 and snappy, as Prometheus takes them from older senders.
fn negotiate(req: &Request) -> Result<Version, String> {
    let header_text = |h: header::HeaderName| {
        req.headers()
            .get(h)
            .map(|v| v.to_str().map(str::trim).unwrap_or("?"))
            .unwrap_or("")
    };
    let enc = header_text(header::CONTENT_ENCODING);
    if !enc.is_empty() && !enc.eq_ignore_ascii_case("snappy") {
        return Err(format!(
            "unsupported Content-Encoding {enc:?}; only snappy is supported"
        ));
    }
    let ct = header_text(header::CONTENT_TYPE);
    if ct.is_empty() {
        return Ok(Version::V1);
    }
    let mut parts = ct.split(';');
    let media = parts.next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case("application/x-protobuf") {
        return Err(format!(
            "unsupported Content-Type {ct:?}; expected application/x-protobuf"
        ));
    }
    let proto = parts
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("proto"))
        .map(|(_, v)| v.trim().trim_matches('"'));
    match proto {
        None | Some("prometheus.WriteRequest") => Ok(Version::V1),
        Some(p) if p == strata_ingest::remote_write::v2::PROTO => Ok(Version::V2),
        Some(p) => Err(format!(
            "unsupported remote write protobuf message {p:?}; supported: prometheus.WriteRequest, {}",
            strata_ingest::remote_write::v2::PROTO
        )),
    }
}

/// A 2.0 answer: status, text, and the written-count headers.
fn v2_answer(status: StatusCode, text: String, written: (usize, usize, usize)) -> Response {
    (
        status,
        [
            (
                "X-Prometheus-Remote-Write-Samples-Written",
                written.0.to_string(),
            ),
            (
                "X-Prometheus-Remote-Write-Histograms-Written",
                written.1.to_string(),
            ),
            (
                "X-Prometheus-Remote-Write-Exemplars-Written",
                written.2.to_string(),
            ),
        ],
        text,
    )
        .into_response()
}

/// Decodes, stores and answers a Remote Write 2.0 request.
async fn write_v2(
    s: &AppState,
    db: Arc<strata_storage::Db>,
    body: axum::body::Bytes,
    limits: strata_ingest::remote_write::Limits,
) -> Response {
    let decoded = tokio::task::spawn_blocking(move || {
        strata_ingest::remote_write::v2::decode(&body, &limits)
    })
    .await;
    let decoded = match decoded {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => {
            s.counters
                .remote_write_rejected
                .fetch_add(1, Ordering::Relaxed);
            return v2_answer(StatusCode::BAD_REQUEST, format!("{e}\n"), (0, 0, 0));
        }
        Err(e) => {
            return v2_answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{e}\n"),
                (0, 0, 0),
            );
        }
    };
    s.metadata.record(&decoded.metadata);
    let histograms = decoded.histograms;
    let batch = decoded.batch;
    let res = tokio::task::spawn_blocking(move || db.append(&batch)).await;
    match res {
        Ok(Ok(report)) => {
            let written = ((report.appended + report.duplicates_ignored) as usize, 0, 0);
            if let Some(msg) = report.first_rejection {
                return v2_answer(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "{msg} ({} samples refused; {} stored)\n",
                        report.out_of_bounds + report.duplicate_timestamp,
                        report.appended
                    ),
                    written,
                );
            }
            if histograms > 0 {
                return v2_answer(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "native histograms are not supported by Strata yet: {histograms} histogram samples not written ({} float samples stored)\n",
                        report.appended
                    ),
                    written,
                );
            }
            v2_answer(StatusCode::NO_CONTENT, String::new(), written)
        }
        Ok(Err(e @ StorageError::Io { .. })) => {
            tracing::warn!(error = %e, "remote write refused: WAL write failed");
            let mut r = v2_answer(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n"), (0, 0, 0));
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
            r
        }
        Ok(Err(e)) => v2_answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{e}\n"),
            (0, 0, 0),
        ),
        Err(e) => v2_answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{e}\n"),
            (0, 0, 0),
        ),
    }
}
