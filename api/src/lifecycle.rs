//! `/-/healthy`, `/-/ready`, and (with `--web.enable-lifecycle`) `/-/reload` and
//! `/-/quit`, with Prometheus's wording and status codes.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;

use crate::AppState;
#[allow(unused_imports)]
use crate::openapi::*;

/// Always 200 while the process serves HTTP.
#[utoipa::path(
    method(get, head),
    path = "/-/healthy",
    tag = "lifecycle",
    summary = "Liveness",
    responses(
        (status = 200, description = "Healthy", body = String, content_type = "text/plain")
    )
)]
pub(crate) async fn healthy() -> &'static str {
    "Strata is Healthy.\n"
}

/// 200 once WAL replay finished, 503 before and while WAL writes fail.
#[utoipa::path(
    method(get, head),
    path = "/-/ready",
    tag = "lifecycle",
    summary = "Readiness (WAL replay done)",
    responses(
        (status = 200, description = "Ready", body = String, content_type = "text/plain"),
        (status = 503, description = "Not ready", body = String, content_type = "text/plain")
    )
)]
pub(crate) async fn ready(State(s): State<Arc<AppState>>) -> (StatusCode, &'static str) {
    match s.db() {
        // WAL writes failing (disk full): appends are refused until one succeeds again.
        Ok(db) if db.wal_failing() => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable: WAL writes are failing (disk full?)\n",
        ),
        Ok(_) => (StatusCode::OK, "Strata is Ready.\n"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n"),
    }
}

/// `POST /-/reload`: 200 when the configuration was reloaded, 500 with the reason when not
/// (the running configuration stays), 403 unless `--web.enable-lifecycle`.
#[utoipa::path(
    method(post, put),
    path = "/-/reload",
    tag = "lifecycle",
    summary = "Reload the configuration (with --web.enable-lifecycle)",
    responses(
        (status = 200, description = "Reloaded", body = String, content_type = "text/plain"),
        (status = 403, description = "Lifecycle API not enabled", body = String, content_type = "text/plain"),
        (status = 500, description = "The new configuration was refused; the running one stays", body = String, content_type = "text/plain"),
        (status = 503, description = "Not ready", body = String, content_type = "text/plain")
    )
)]
pub(crate) async fn reload(State(s): State<Arc<AppState>>) -> (StatusCode, String) {
    if !s.info.enable_lifecycle {
        return (
            StatusCode::FORBIDDEN,
            "Lifecycle API is not enabled.\n".into(),
        );
    }
    let Some(f) = s.reload.get().cloned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable\n".into(),
        );
    };
    match f().await {
        Ok(()) => (StatusCode::OK, String::new()),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        ),
    }
}

/// `POST /-/quit`: asks the server to stop gracefully (403 unless `--web.enable-lifecycle`).
#[utoipa::path(
    method(post, put),
    path = "/-/quit",
    tag = "lifecycle",
    summary = "Stop gracefully (with --web.enable-lifecycle)",
    responses(
        (status = 200, description = "Stopping", body = String, content_type = "text/plain"),
        (status = 403, description = "Lifecycle API not enabled", body = String, content_type = "text/plain")
    )
)]
pub(crate) async fn quit(State(s): State<Arc<AppState>>) -> (StatusCode, &'static str) {
    if !s.info.enable_lifecycle {
        return (StatusCode::FORBIDDEN, "Lifecycle API is not enabled.\n");
    }
    s.quit.notify_one();
    (StatusCode::OK, "Requesting termination... Goodbye!\n")
}
