//! `/-/healthy` and `/-/ready`, with Prometheus's wording.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;

use crate::AppState;

/// Always 200 while the process serves HTTP.
pub(crate) async fn healthy() -> &'static str {
    "Strata is Healthy.\n"
}

/// 200 once WAL replay finished, 503 before.
pub(crate) async fn ready(State(s): State<Arc<AppState>>) -> (StatusCode, &'static str) {
    match s.db() {
        Ok(_) => (StatusCode::OK, "Strata is Ready.\n"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n"),
    }
}
