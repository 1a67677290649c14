//! `POST /api/v1/write`: remote write 1.0. 204 once every accepted sample is in the WAL;
//! 400 with the reason for a malformed body (nothing of it stored) and, as Prometheus, for
//! samples refused as out of bounds or conflicting (the others are stored).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use strata_storage::Appender;

use crate::AppState;
#[allow(unused_imports)]
use crate::openapi::*;

#[utoipa::path(
    method(post),
    path = "/api/v1/write",
    tag = "write",
    summary = "Prometheus remote write 1.0 (snappy-compressed protobuf WriteRequest)",
    request_body(content = Vec<u8>, content_type = "application/x-protobuf", description = "snappy block-compressed WriteRequest"),
    responses(
        (status = 204, description = "Every accepted sample is in the WAL"),
        (status = 400, description = "Malformed body, or samples refused", body = String, content_type = "text/plain"),
        (status = 503, description = "Storage not ready", body = String, content_type = "text/plain"),
        (status = 500, description = "Storage failure", body = String, content_type = "text/plain")
    )
)]
pub(crate) async fn remote_write(State(s): State<Arc<AppState>>, body: Bytes) -> Response {
    let db = match s.db() {
        Ok(db) => db.clone(),
        Err(e) => return e.into_response(),
    };
    let batch = match strata_ingest::remote_write::decode(&body).and_then(|req| {
        let md = req.metadata.clone();
        strata_ingest::remote_write::to_batch(req).map(|b| (b, md))
    }) {
        Ok((b, md)) => {
            s.metadata.record(&md);
            b
        }
        Err(e) => {
            s.counters
                .remote_write_rejected
                .fetch_add(1, Ordering::Relaxed);
            return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response();
        }
    };
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
        Ok(Err(e)) => {
            tracing::error!(error = %e, "remote write append failed");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}
