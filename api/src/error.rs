//! API errors, mapped in one place to Prometheus's `{"status":"error","errorType","error"}`
//! JSON and HTTP status codes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error an endpoint returns.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad parameters or body (400, `bad_data`).
    #[error("{0}")]
    BadData(String),
    /// A request body past its limit (413, `bad_data`).
    #[error("{0}")]
    TooLarge(String),
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
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "bad_data"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind) = self.parts();
        error_response(status, kind, &self.to_string())
    }
}

/// Prometheus's error envelope, keys in Prometheus's order.
pub(crate) fn error_response(status: StatusCode, kind: &str, msg: &str) -> Response {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let body = format!(
        "{{\"status\":\"error\",\"errorType\":{},\"error\":{}}}",
        q(kind),
        q(msg)
    );
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
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
