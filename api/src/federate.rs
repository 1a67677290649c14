//! `/federate`: the newest sample (within the lookback window, not stale) of every series the
//! `match[]` selectors pick, in the text exposition format with timestamps, as Prometheus
//! serves it to federating servers. External labels are added where a series lacks them.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;
#[allow(unused_imports)]
use crate::openapi::*;
use crate::params::Params;

/// `GET /federate?match[]=…`.
#[utoipa::path(
    method(get),
    path = "/federate",
    tag = "federation",
    summary = "Newest samples of the selected series (text format)",
    params(
        ("match[]" = Vec<String>, Query, description = "Series selectors")
    ),
    responses(
        (status = 200, description = "Samples", body = String, content_type = "text/plain"),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 503, description = "Storage not ready (WAL replay in progress)", body = ErrorBody)
    )
)]
pub(crate) async fn federate(
    State(s): State<Arc<AppState>>,
    p: Params,
) -> Result<Response, ApiError> {
    let db = s.db()?;
    let selectors = p.selectors()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let lookback = s.info.engine.lookback;
    // name → (labels text → (t, v))
    let mut by_name: BTreeMap<String, BTreeMap<String, (i64, f64)>> = BTreeMap::new();
    for sel in &selectors {
        for series in db.select(sel, now - lookback + 1, now).await? {
            let Some(&(t, v)) = series.samples.last() else {
                continue;
            };
            if strata_storage::is_stale(v) {
                continue;
            }
            let mut name = String::new();
            let mut labels: BTreeMap<&str, &str> = BTreeMap::new();
            for l in series.labels.iter() {
                if &*l.name == "__name__" {
                    name = l.value.to_string();
                } else {
                    labels.insert(&l.name, &l.value);
                }
            }
            for (k, v) in &s.info.external_labels {
                labels.entry(k.as_str()).or_insert(v.as_str());
            }
            let mut text = String::new();
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                let _ = write!(text, "{k}=\"{}\"", escape(v));
            }
            by_name.entry(name).or_default().insert(text, (t, v));
        }
    }
    let mut out = String::new();
    for (name, series) in &by_name {
        let _ = writeln!(out, "# TYPE {name} untyped");
        for (labels, (t, v)) in series {
            let _ = writeln!(out, "{name}{{{labels}}} {} {t}", format_value(*v));
        }
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        let mut b = ryu::Buffer::new();
        let s = b.format(v);
        s.strip_suffix(".0").unwrap_or(s).to_owned()
    }
}
