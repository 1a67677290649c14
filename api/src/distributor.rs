//! `POST /api/v1/write` of a front door (`--distributor.ingester`): remote write 1.0
//! forwarded by [`strata_ingest::distributor`] to the ingesters, 204 once a majority of
//! every series' ingesters has it, 400 when an ingester refused the data or the body is
//! malformed, 503 (with `Retry-After`) when series are short of their quorum. Remote write
//! 2.0 likewise (each ingester gets the whole symbols table and its series), the 204
//! carrying `X-Prometheus-Remote-Write-{Samples,Histograms,Exemplars}-Written` of the whole
//! request. Bounded as the node's own endpoint: its request slots and body limit.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use strata_ingest::distributor::{Distributor, DistributorError};

use crate::AppState;

/// Forwards one remote-write request.
pub(crate) async fn forward(s: &AppState, d: &Distributor, req: Request) -> Response {
    let v2 = match crate::write::negotiate(&req) {
        Ok(crate::write::Version::V1) => false,
        Ok(crate::write::Version::V2) => true,
        Err(msg) => {
            return (StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("{msg}\n")).into_response();
        }
    };
    let _slot = match crate::body::slot(&s.write_slots, "remote-write").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let body = match crate::body::read(req, strata_ingest::remote_write::MAX_DECOMPRESSED).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let pushed = match v2 {
        true => d.push_v2(&body).await.map(Some),
        false => d.push(&body).await.map(|()| None),
    };
    match pushed {
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Ok(Some(written)) => {
            crate::write::with_written(StatusCode::NO_CONTENT.into_response(), written)
        }
        Err(
            e @ (DistributorError::Malformed(_)
            | DistributorError::Body(_)
            | DistributorError::Refused { .. }),
        ) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
        Err(e @ DistributorError::Unavailable { .. }) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            format!("{e}\n"),
        )
            .into_response(),
    }
}

/// The front door's counters in the exposition format.
pub(crate) fn metrics(d: &Distributor, o: &mut String) {
    let m = &d.metrics;
    let mut c = |name: &str, help: &str, v: u64| {
        let _ = write!(
            o,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
        );
    };
    c(
        "strata_distributor_requests_total",
        "Remote-write requests received by the front door.",
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
            d.urls()[i],
            f.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        o,
        "# HELP strata_distributor_replication_factor Replicas per series.\n# TYPE strata_distributor_replication_factor gauge\nstrata_distributor_replication_factor {}",
        d.ring().replication_factor()
    );
}
