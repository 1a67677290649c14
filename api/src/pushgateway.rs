//! The Pushgateway HTTP API over [`strata_ingest::pushgateway::PushStore`]: `PUT`, `POST`
//! and `DELETE` on `/metrics/job/<job>{/<label>/<value>}` on the main port, and with
//! `--pushgateway.listen-address` a drop-in Pushgateway on its own port (`/metrics` with
//! the pushed groups, in the text format or, when the scraper's `Accept` asks for it, in
//! the protobuf format with native histograms; `/api/v1/metrics`, `/api/v1/status`,
//! `/-/healthy`, `/-/ready`, and `PUT /api/v1/admin/wipe` only with
//! `--web.enable-admin-api`: as the Pushgateway, the route does not exist otherwise, 404).
//! Bodies are text 0.0.4 or protobuf delimited, optionally gzip. Errors are plain text
//! with the status the Pushgateway uses (400, 500).

use std::io::Read as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde_json::json;
use strata_ingest::protofmt::{self, Wire};
use strata_ingest::pushgateway::model::{BodyError, from_proto};
use strata_ingest::pushgateway::proto::decode_delimited;
use strata_ingest::pushgateway::{PushError, PushStore, parse_grouping, parse_text, render};

use crate::AppState;
#[allow(unused_imports)]
use crate::openapi::*;

/// The store is handed over once storage is open.
struct NotReady;

impl IntoResponse for NotReady {
    fn into_response(self) -> Response {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "push gateway is not ready\n",
        )
            .into_response()
    }
}

fn store(s: &AppState) -> Result<&Arc<PushStore>, NotReady> {
    s.pushgateway.get().ok_or(NotReady)
}

/// The body as families: gzip undone, protobuf or text by `Content-Type`.
fn decode_body(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<strata_ingest::pushgateway::Family>, BodyError> {
    let gz = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let owned;
    let body = if gz {
        let mut out = Vec::new();
        let max = strata_ingest::remote_write::MAX_DECOMPRESSED;
        flate2::read::GzDecoder::new(body)
            .take(max as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| BodyError::Malformed(format!("gzip: {e}")))?;
        if out.len() > max {
            return Err(BodyError::Malformed(format!(
                "decompressed body larger than {max} bytes"
            )));
        }
        owned = out;
        &owned[..]
    } else {
        body
    };
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("application/vnd.google.protobuf") {
        if !ct.contains("encoding=delimited") || !ct.contains("io.prometheus.client.MetricFamily") {
            return Err(BodyError::Malformed(format!(
                "unsupported protobuf Content-Type {ct:?}: want proto=io.prometheus.client.MetricFamily; encoding=delimited"
            )));
        }
        let fams = decode_delimited(body).map_err(BodyError::Malformed)?;
        from_proto(fams, false)
    } else {
        parse_text(body)
    }
}

/// Runs a push off the async workers: decoding and checking a large body is CPU work.
async fn blocking(f: impl FnOnce() -> Response + Send + 'static) -> Response {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response())
}

fn push(s: &AppState, rest: &str, headers: &HeaderMap, body: &[u8], replace: bool) -> Response {
    let st = match store(s) {
        Ok(st) => st,
        Err(r) => return r.into_response(),
    };
    let key = match parse_grouping(rest) {
        Ok(k) => k,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    match st.push(
        key,
        decode_body(headers, body),
        replace,
        crate::query::now_ms(),
    ) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(PushError::BadRequest(m)) => {
            (StatusCode::BAD_REQUEST, format!("{m}\n")).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

fn delete(s: &AppState, rest: &str) -> Response {
    let st = match store(s) {
        Ok(st) => st,
        Err(r) => return r.into_response(),
    };
    let key = match parse_grouping(rest) {
        Ok(k) => k,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    st.delete(&key);
    StatusCode::ACCEPTED.into_response()
}

/// `PUT /metrics/job/<job>{/<label>/<value>}`: replaces the group.
#[utoipa::path(
    method(put),
    path = "/metrics/job/{job}",
    tag = "pushgateway",
    summary = "Push metrics, replacing the whole group (more grouping labels may follow as /<label>/<value>; @base64 values)",
    params(("job" = String, Path, description = "Job name")),
    request_body(content = String, content_type = "text/plain", description = "Text format 0.0.4 or protobuf delimited MetricFamily"),
    responses(
        (status = 200, description = "Stored"),
        (status = 400, description = "Malformed or inconsistent push; the group is unchanged", body = String, content_type = "text/plain")
    )
)]
pub(crate) async fn push_put(
    State(s): State<Arc<AppState>>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    blocking(move || push(&s, &rest, &headers, &body, true)).await
}

/// `POST /metrics/job/<job>{/<label>/<value>}`: replaces only the pushed metric families.
#[utoipa::path(
    method(post),
    path = "/metrics/job/{job}",
    tag = "pushgateway",
    summary = "Push metrics, replacing only metrics of the same names",
    params(("job" = String, Path, description = "Job name")),
    request_body(content = String, content_type = "text/plain", description = "Text format 0.0.4 or protobuf delimited MetricFamily"),
    responses(
        (status = 200, description = "Stored"),
        (status = 400, description = "Malformed or inconsistent push; the group is unchanged", body = String, content_type = "text/plain")
    )
)]
pub(crate) async fn push_post(
    State(s): State<Arc<AppState>>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    blocking(move || push(&s, &rest, &headers, &body, false)).await
}

/// `DELETE /metrics/job/<job>{/<label>/<value>}`: deletes the group.
#[utoipa::path(
    method(delete),
    path = "/metrics/job/{job}",
    tag = "pushgateway",
    summary = "Delete a push group",
    params(("job" = String, Path, description = "Job name")),
    responses(
        (status = 202, description = "Deleted (also when absent)"),
        (status = 400, description = "Bad grouping key", body = String, content_type = "text/plain")
    )
)]
pub(crate) async fn push_delete(
    State(s): State<Arc<AppState>>,
    Path(rest): Path<String>,
) -> Response {
    delete(&s, &rest)
}

/// The push routes with any number of grouping labels (`/metrics/{*grouping}`), served on
/// the main port beside the documented single-label form.
pub(crate) fn push_routes() -> Router<Arc<AppState>> {
    Router::new().route(
        "/metrics/{*grouping}",
        put(push_put).post(push_post).delete(push_delete),
    )
}

/// The pushed groups in the format the `Accept` header asks for, as the Pushgateway
/// negotiates it (`expfmt.Negotiate`): protobuf delimited `MetricFamily`s, native
/// histograms included, or the text format 0.0.4 (the default), where a native histogram
/// shows as its classic buckets, or `_count`, `_sum` and a `+Inf` bucket.
async fn pg_metrics(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let st = match store(&s) {
        Ok(st) => st,
        Err(r) => return r.into_response(),
    };
    let format = protofmt::negotiate(headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()));
    let groups = st.snapshot();
    let body = match format.wire {
        Wire::Text => render::exposition(&groups).into_bytes(),
        Wire::ProtoDelimited => {
            let mut fams = render::exposition_proto(&groups);
            if !format.utf8 {
                fams.iter_mut().for_each(protofmt::escape_names);
            }
            format.encode(&fams)
        }
    };
    ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
}

async fn pg_api_metrics(State(s): State<Arc<AppState>>) -> Response {
    match store(&s) {
        Ok(st) => {
            axum::Json(json!({"status": "success", "data": render::api_metrics(&st.snapshot())}))
                .into_response()
        }
        Err(r) => r.into_response(),
    }
}

async fn pg_status(State(s): State<Arc<AppState>>) -> Response {
    axum::Json(json!({
        "status": "success",
        "data": {
            "build_information": {
                "version": s.build.version,
                "revision": s.build.revision,
                "branch": "",
                "buildUser": "",
                "buildDate": "",
                "goVersion": "",
            },
            "flags": s.info.flags,
            "start_time": s.info.start_time_rfc3339,
        }
    }))
    .into_response()
}

/// `PUT /api/v1/admin/wipe`: deletes every group (routed only with the admin flag).
async fn pg_wipe(State(s): State<Arc<AppState>>) -> Response {
    match store(&s) {
        Ok(st) => {
            st.wipe();
            StatusCode::ACCEPTED.into_response()
        }
        Err(r) => r.into_response(),
    }
}

async fn pg_healthy() -> &'static str {
    "OK\n"
}

async fn pg_ready(State(s): State<Arc<AppState>>) -> Response {
    match store(&s) {
        Ok(_) => "OK\n".into_response(),
        Err(r) => r.into_response(),
    }
}

/// The drop-in Pushgateway served on `--pushgateway.listen-address`; the admin API (wipe)
/// only with `--web.enable-admin-api`.
pub fn pushgateway_router(state: Arc<AppState>) -> Router {
    let mut r = Router::new();
    if state.info.enable_admin_api {
        r = r.route("/api/v1/admin/wipe", put(pg_wipe));
    }
    r.route("/metrics", get(pg_metrics))
        .route(
            "/metrics/{*grouping}",
            put(push_put).post(push_post).delete(push_delete),
        )
        .route("/api/v1/metrics", get(pg_api_metrics))
        .route("/api/v1/status", get(pg_status))
        .route("/-/healthy", get(pg_healthy))
        .route("/-/ready", get(pg_ready))
        .layer(axum::extract::DefaultBodyLimit::max(
            strata_ingest::remote_write::MAX_DECOMPRESSED,
        ))
        .with_state(state)
}
