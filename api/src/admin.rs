//! `/api/v1/admin/tsdb/*`: delete_series, clean_tombstones, snapshot. Routed only with
//! `--web.enable-admin-api` (404 otherwise, as the issue and Prometheus's router do).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::params::{MAX_TIME, MIN_TIME, Params};

/// `POST|PUT /api/v1/admin/tsdb/delete_series?match[]=…&start=…&end=…` → 204.
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
pub(crate) async fn clean_tombstones(
    State(s): State<Arc<AppState>>,
) -> Result<StatusCode, ApiError> {
    s.db()?.clean_tombstones().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST|PUT /api/v1/admin/tsdb/snapshot[?skip_head=true]` → `{"name": …}`.
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
