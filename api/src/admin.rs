//! `/api/v1/admin/tsdb/*`: delete_series, clean_tombstones, snapshot. Routed only with
//! `--web.enable-admin-api` (404 otherwise, as the issue and Prometheus's router do).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
#[allow(unused_imports)]
use crate::openapi::*;
use crate::params::{MAX_TIME, MIN_TIME, Params};

/// `POST|PUT /api/v1/admin/tsdb/delete_series?match[]=…&start=…&end=…` → 204.
#[utoipa::path(
    method(post, put),
    path = "/api/v1/admin/tsdb/delete_series",
    tag = "admin",
    summary = "Delete series data (with --web.enable-admin-api)",
    params(
        ("match[]" = Vec<String>, Query, description = "Series selectors"),
        ("start" = Option<String>, Query, description = "Start of the range: RFC 3339 or Unix seconds"),
        ("end" = Option<String>, Query, description = "End of the range: RFC 3339 or Unix seconds")
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 404, description = "Admin API not enabled"),
        (status = 503, description = "Storage not ready (WAL replay in progress)", body = ErrorBody)
    )
)]
pub(crate) async fn delete_series(
    State(s): State<Arc<AppState>>,
    p: Params,
) -> Result<StatusCode, ApiError> {
    let selectors = p.selectors()?;
    if selectors.is_empty() {
        return Err(ApiError::BadData("no match[] parameter provided".into()));
    }
    let start = p.time_or("start", MIN_TIME)?;
    let end = p.time_or("end", MAX_TIME)?;
    let db = s.db()?;
    for sel in &selectors {
        db.delete_series(sel, start, end).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST|PUT /api/v1/admin/tsdb/clean_tombstones` → 204.
#[utoipa::path(
    method(post, put),
    path = "/api/v1/admin/tsdb/clean_tombstones",
    tag = "admin",
    summary = "Rewrite blocks without deleted data (with --web.enable-admin-api)",
    responses(
        (status = 204, description = "Done"),
        (status = 404, description = "Admin API not enabled"),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "Storage not ready (WAL replay in progress)", body = ErrorBody)
    )
)]
pub(crate) async fn clean_tombstones(
    State(s): State<Arc<AppState>>,
) -> Result<StatusCode, ApiError> {
    s.db()?.clean_tombstones().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST|PUT /api/v1/admin/tsdb/snapshot[?skip_head=true]` → `{"name": …}`.
#[utoipa::path(
    method(post, put),
    path = "/api/v1/admin/tsdb/snapshot",
    tag = "admin",
    summary = "Snapshot of the data directory (with --web.enable-admin-api)",
    params(
        ("skip_head" = Option<bool>, Query, description = "Leave the head out")
    ),
    responses(
        (status = 200, description = "Success", body = ObjectResponse),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 404, description = "Admin API not enabled"),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "Storage not ready (WAL replay in progress)", body = ErrorBody)
    )
)]
pub(crate) async fn snapshot(
    State(s): State<Arc<AppState>>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let skip_head = match p.get("skip_head") {
        None | Some("") => false,
        Some(v) => v.parse::<bool>().map_err(|_| {
            ApiError::BadData(format!(
                "unable to parse boolean 'skip_head' argument: {v:?}"
            ))
        })?,
    };
    let name = s.db()?.snapshot(!skip_head).await?;
    Ok(Json(json!({"status": "success", "data": {"name": name}})))
}
