//! `POST /api/v1/otlp/v1/metrics`: OTLP/HTTP metrics (protobuf or JSON, gzip or not), behind
//! `--web.enable-otlp-receiver` as in Prometheus (404 without it). Translated as
//! Prometheus does (`strata_ingest::otlp`, with the configuration's `otlp` section) and
//! appended like a remote write; bounded the same way (the remote-write slots, a 32 MiB
//! body, the decoded heap estimated before decoding). 200 with an
//! `ExportMetricsServiceResponse` in the request's encoding (a partial success names the
//! data points not written); 400 for a body that is not a request and, as Prometheus, for a
//! sum or histogram that is not cumulative (nothing stored) unless
//! `--enable-feature=otlp-deltatocumulative` has delta ones accumulated into cumulative
//! ones (the server's streams, `strata_ingest::otlp::DeltaToCumulative`); 415 for another
//! content type or encoding (the OTLP/HTTP specification's status). Exemplars are stored
//! with the series they belong to.

use std::io::Read;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use strata_ingest::otlp::Encoding;

use crate::AppState;
#[allow(unused_imports)]
use crate::openapi::*;

#[utoipa::path(
    method(post),
    path = "/api/v1/otlp/v1/metrics",
    tag = "write",
    summary = "OTLP/HTTP metrics (protobuf ExportMetricsServiceRequest), with --web.enable-otlp-receiver",
    request_body(content = Vec<u8>, content_type = "application/x-protobuf", description = "ExportMetricsServiceRequest, optionally gzip (Content-Encoding)"),
    responses(
        (status = 200, description = "ExportMetricsServiceResponse; partial_success names data points not written", body = Vec<u8>, content_type = "application/x-protobuf"),
        (status = 400, description = "Not an ExportMetricsServiceRequest, or too many elements", body = String, content_type = "text/plain"),
        (status = 404, description = "The OTLP receiver is not enabled (--web.enable-otlp-receiver)", body = String, content_type = "text/plain"),
        (status = 413, description = "Body larger than the limit", body = String, content_type = "text/plain"),
        (status = 415, description = "Not protobuf, or an encoding other than gzip", body = String, content_type = "text/plain"),
        (status = 503, description = "Storage not ready, WAL writes failing, or too many requests at once (retry)", body = String, content_type = "text/plain")
    )
)]
pub(crate) async fn otlp_metrics(State(s): State<Arc<AppState>>, req: Request) -> Response {
    if !s.info.enable_otlp_receiver {
        return (
            StatusCode::NOT_FOUND,
            "the OTLP receiver is disabled; start with --web.enable-otlp-receiver\n",
        )
            .into_response();
    }
    let (ct, enc) = {
        let header_text = |h: header::HeaderName| {
            req.headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_ascii_lowercase())
                .unwrap_or_default()
        };
        (
            header_text(header::CONTENT_TYPE),
            header_text(header::CONTENT_ENCODING),
        )
    };
    let media = ct.split(';').next().unwrap_or_default().trim().to_string();
    let encoding = match media.as_str() {
        "application/x-protobuf" | "application/protobuf" => Encoding::Protobuf,
        "application/json" => Encoding::Json,
        _ => {
            return (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "unsupported content type: {ct}, supported: [application/json, application/x-protobuf]\n"
                ),
            )
                .into_response();
        }
    };
    let gzip = match enc.as_str() {
        "" | "identity" => false,
        "gzip" => true,
        other => {
            return (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported Content-Encoding {other:?}; expected gzip or none\n"),
            )
                .into_response();
        }
    };
    let db = match s.db() {
        Ok(db) => db.clone(),
        Err(e) => return e.into_response(),
    };
    let _slot = match crate::body::slot(&s.write_slots, "write").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let limit = strata_ingest::otlp::MAX_REQUEST_BYTES;
    let body = match crate::body::read(req, limit).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let cfg = s.otlp.read().clone();
    let delta = s.otlp_delta.clone();
    let translated = crate::write::decode(&s, move || {
        let raw = if gzip {
            let mut out = Vec::new();
            let r = flate2::read::GzDecoder::new(&body[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out);
            match r {
                Ok(_) if out.len() > limit => {
                    return Err(format!("decompressed body larger than {limit} bytes"));
                }
                Ok(_) => out,
                Err(e) => return Err(format!("gzip: {e}")),
            }
        } else {
            body.to_vec()
        };
        strata_ingest::otlp::decode_and_translate(&raw, encoding, &cfg, delta.as_deref())
            .map_err(|e| e.to_string())
    })
    .await;
    let t = match translated {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Some(why) = &t.refused {
        // As Prometheus: the whole request is refused, nothing of it stored.
        return (StatusCode::BAD_REQUEST, format!("{why}\n")).into_response();
    }
    s.metadata.record(&t.metadata);
    let answer = strata_ingest::otlp::response(&t, encoding);
    let content_type = match encoding {
        Encoding::Protobuf => "application/x-protobuf",
        Encoding::Json => "application/json",
    };
    match crate::write::append(db, t.batch, t.exemplars).await {
        Ok((report, _)) => match report.first_rejection {
            None => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, content_type)],
                answer,
            )
                .into_response(),
            Some(msg) => (StatusCode::BAD_REQUEST, format!("{msg}\n")).into_response(),
        },
        Err(r) => r,
    }
}
