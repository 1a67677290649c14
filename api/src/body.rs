//! The bounded start of the write and read endpoints (remote write, remote read, OTLP): a
//! slot of the endpoint's semaphore (503 with `Retry-After` after [`SLOT_WAIT`], so the
//! sender retries), then the body within [`BODY_WAIT`] (408) and a byte limit (413; 400
//! when the body breaks off).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::{Semaphore, SemaphorePermit};

/// How long a request waits for a slot before 503.
pub(crate) const SLOT_WAIT: Duration = Duration::from_secs(10);
/// How long the body may take to arrive once a slot is held (Prometheus's senders time
/// out after 30 s): a client trickling it must not keep the slot.
pub(crate) const BODY_WAIT: Duration = Duration::from_secs(30);

/// A slot of `slots`, or the 503 answer naming `what` is in progress.
pub(crate) async fn slot<'a>(
    slots: &'a Semaphore,
    what: &str,
) -> Result<SemaphorePermit<'a>, Response> {
    match tokio::time::timeout(SLOT_WAIT, slots.acquire()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            format!("too many {what} requests in progress; retry\n"),
        )
            .into_response()),
    }
}

/// The body of `req`, at most `limit` bytes, arriving within [`BODY_WAIT`].
pub(crate) async fn read(req: Request, limit: usize) -> Result<Bytes, Response> {
    match tokio::time::timeout(BODY_WAIT, axum::body::to_bytes(req.into_body(), limit)).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|src| src.is::<http_body_util::LengthLimitError>());
            let status = if too_large {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            Err((
                status,
                format!("reading the body (limit {limit} bytes): {e}\n"),
            )
                .into_response())
        }
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            format!("the body did not arrive within {} s\n", BODY_WAIT.as_secs()),
        )
            .into_response()),
    }
}
