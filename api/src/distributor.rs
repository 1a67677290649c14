//! The front door's HTTP side (`strata distributor`): `POST /api/v1/write` (remote write
//! 1.0, forwarded by [`strata_ingest::distributor`]), `/-/healthy`, `/-/ready` and
//! `/metrics`. Remote write 2.0 is refused with 415 (its symbol tables would have to be
//! rebuilt per ingester; senders then use 1.0).
//!
//! Bounded as the node's own endpoint: `max_concurrency` requests are read and forwarded at
//! once (503 with `Retry-After` after waiting 10 s for a slot), bodies up to the
//! remote-write limit (413).

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use strata_ingest::distributor::{Distributor, DistributorError};
use tokio::sync::Semaphore;

struct FrontDoor {
    d: Distributor,
    slots: Semaphore,
}

/// The front door's routes.
pub fn distributor_router(d: Distributor, max_concurrency: usize) -> Router {
    let st = Arc::new(FrontDoor {
        d,
        slots: Semaphore::new(max_concurrency.max(1)),
    });
    Router::new()
        .route("/api/v1/write", post(write))
        .route("/-/healthy", get(|| async { "Healthy.\n" }))
        .route("/-/ready", get(|| async { "Ready.\n" }))
        .route("/metrics", get(metrics))
        .with_state(st)
}

async fn write(State(st): State<Arc<FrontDoor>>, req: Request) -> Response {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if ct.contains(strata_ingest::remote_write::v2::PROTO) {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the distributor accepts remote write 1.0 (prometheus.WriteRequest) only\n",
        )
            .into_response();
    }
    let enc = req
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("snappy");
    if !enc.eq_ignore_ascii_case("snappy") {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Encoding {enc:?}; only snappy is supported\n"),
        )
            .into_response();
    }
    let _slot = match crate::body::slot(&st.slots, "remote-write").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let body = match crate::body::read(req, strata_ingest::remote_write::MAX_DECOMPRESSED).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match st.d.push(&body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e @ (DistributorError::Malformed(_) | DistributorError::Body(_))) => {
            (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response()
        }
        Err(e @ DistributorError::Refused { .. }) => {
            (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response()
        }
        Err(e @ DistributorError::Unavailable { .. }) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            format!("{e}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(st): State<Arc<FrontDoor>>) -> Response {
    let m = &st.d.metrics;
    let mut o = String::new();
    let mut c = |name: &str, help: &str, v: u64| {
        let _ = write!(
            o,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
        );
    };
    c(
        "strata_distributor_requests_total",
        "Remote-write requests received.",
        m.requests.load(Ordering::Relaxed),
    );
    c(
        "strata_distributor_series_total",
        "Series received (each sent to its replication factor of ingesters).",
        m.series.load(Ordering::Relaxed),
    );
    c(
        "strata_distributor_refused_total",
        "Requests refused because an ingester refused their data (400).",
        m.refused.load(Ordering::Relaxed),
    );
    c(
        "strata_distributor_unavailable_total",
        "Requests with series short of their quorum (503).",
        m.unavailable.load(Ordering::Relaxed),
    );
    let _ = writeln!(
        o,
        "# HELP strata_distributor_forward_failures_total Forwards to an ingester that failed.\n# TYPE strata_distributor_forward_failures_total counter"
    );
    for (i, f) in m.forward_failures.iter().enumerate() {
        let _ = writeln!(
            o,
            "strata_distributor_forward_failures_total{{ingester={:?}}} {}",
            st.d.urls()[i],
            f.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        o,
        "# HELP strata_distributor_replication_factor Replicas per series.\n# TYPE strata_distributor_replication_factor gauge\nstrata_distributor_replication_factor {}",
        st.d.ring().replication_factor()
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        o,
    )
        .into_response()
}
