//! `POST /api/v1/write`: remote write 1.0 and 2.0, told apart by the `Content-Type`'s
//! `proto=` parameter (none, or `prometheus.WriteRequest`: 1.0;
//! `io.prometheus.write.v2.Request`: 2.0; anything else, or an encoding other than snappy:
//! 415). 204 once every accepted sample is in the WAL; 400 with the reason for a malformed
//! body (nothing of it stored) and, as Prometheus, for samples refused as out of bounds or
//! conflicting (the others are stored). A 2.0 answer always carries
//! `X-Prometheus-Remote-Write-{Samples,Histograms,Exemplars}-Written` (what was stored,
//! also on errors).
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
    if let Some(d) = s.distributor.get() {
        return crate::distributor::forward(&s, d, req).await;
    }
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
    let decoded = match decode(&s, move || {
        strata_ingest::remote_write::decode_bounded(&body, &limits)
    })
    .await
    {
        Ok(d) => d,
        Err(r) => return r,
    };
    s.metadata.record(&decoded.metadata);
    let report = match append(db, decoded.batch, decoded.exemplars).await {
        Ok((r, _)) => r,
        Err(r) => return r,
    };
    match report.first_rejection {
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
    }
}

/// Decodes a request body with `f` off the async workers (decoding 32 MiB is CPU work);
/// a body `f` refuses is a 400 and counts as a rejected write.
pub(crate) async fn decode<T, E>(
    s: &AppState,
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, Response>
where
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(d)) => Ok(d),
        Ok(Err(e)) => {
            s.counters
                .remote_write_rejected
                .fetch_add(1, Ordering::Relaxed);
            Err((StatusCode::BAD_REQUEST, format!("{e}\n")).into_response())
        }
        Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response()),
    }
}

/// Appends `batch`, then the exemplars, off the async workers. A WAL write that fails
/// (disk full, I/O error) answers 503 with `Retry-After`, so the sender retries; any other
/// storage failure is a 500. Refused exemplars (out of order, too long) are counted and
/// logged, not errors, as Prometheus's receiver does.
pub(crate) async fn append(
    db: Arc<strata_storage::Db>,
    batch: Vec<strata_storage::SeriesSamples>,
    exemplars: Vec<(strata_storage::Labels, strata_storage::Exemplar)>,
) -> Result<(strata_storage::AppendReport, strata_storage::ExemplarReport), Response> {
    let work = move || -> strata_storage::Result<_> {
        let report = db.append(&batch)?;
        let ex = db.append_exemplars(&exemplars)?;
        if let Some(e) = &ex.first_error {
            tracing::debug!(refused = ex.refused, error = %e, "exemplars refused");
        }
        Ok((report, ex))
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(e @ StorageError::Io { .. })) => {
            tracing::warn!(error = %e, "write refused: WAL write failed");
            Err((
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
                format!("{e}\n"),
            )
                .into_response())
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "append failed");
            Err((StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response())
        }
        Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response()),
    }
}

/// The protocol of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Version {
    V1,
    V2,
}

/// The protocol a request's `Content-Type` names, or why it is not one Strata takes
/// (Remote Write 2.0 specification: 415 Unsupported Media Type). No `Content-Type` and no
/// `Content-Encoding` are 1.0 and snappy, as Prometheus takes them from older senders.
pub(crate) fn negotiate(req: &Request) -> Result<Version, String> {
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
    with_written((status, text).into_response(), written)
}

/// `r` with the 2.0 written-count headers.
pub(crate) fn with_written(mut r: Response, written: (usize, usize, usize)) -> Response {
    let h = r.headers_mut();
    for (name, n) in [
        ("x-prometheus-remote-write-samples-written", written.0),
        ("x-prometheus-remote-write-histograms-written", written.1),
        ("x-prometheus-remote-write-exemplars-written", written.2),
    ] {
        h.insert(name, header::HeaderValue::from(n));
    }
    r
}

/// Decodes, stores and answers a Remote Write 2.0 request.
async fn write_v2(
    s: &AppState,
    db: Arc<strata_storage::Db>,
    body: axum::body::Bytes,
    limits: strata_ingest::remote_write::Limits,
) -> Response {
    let decoded = match decode(s, move || {
        strata_ingest::remote_write::v2::decode(&body, &limits)
    })
    .await
    {
        Ok(d) => d,
        Err(r) => return with_written(r, (0, 0, 0)),
    };
    s.metadata.record(&decoded.metadata);
    let (report, ex) = match append(db, decoded.batch, decoded.exemplars).await {
        Ok(r) => r,
        Err(r) => return with_written(r, (0, 0, 0)),
    };
    // As Prometheus: a duplicate exemplar is a no-op that counts as written.
    let written = (
        (report.appended - report.histograms_appended + report.duplicates_ignored) as usize,
        report.histograms_appended as usize,
        (ex.appended + ex.duplicates) as usize,
    );
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
    v2_answer(StatusCode::NO_CONTENT, String::new(), written)
}
