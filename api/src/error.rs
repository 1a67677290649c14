//! API errors, mapped in one place to Prometheus's `{"status":"error","errorType","error"}`
//! JSON and HTTP status codes.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error an endpoint returns.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad parameters or body (400, `bad_data`).
    #[error("{0}")]
    BadData(String),
    /// Storage not ready (503, `unavailable`).
    #[error("{0}")]
    Unavailable(String),
    /// Anything else (500, `internal`).
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadData(_) => (StatusCode::BAD_REQUEST, "bad_data"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind) = self.parts();
        let body =
            serde_json::json!({"status": "error", "errorType": kind, "error": self.to_string()});
        (status, Json(body)).into_response()
    }
}

impl From<strata_storage::StorageError> for ApiError {
    fn from(e: strata_storage::StorageError) -> Self {
        match e {
            strata_storage::StorageError::BadRegex { .. }
            | strata_storage::StorageError::InvalidSeries { .. } => {
                ApiError::BadData(e.to_string())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}
