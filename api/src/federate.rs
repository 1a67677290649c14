//! `/federate`: the newest sample (within the lookback window, not stale) of every series the
//! `match[]` selectors pick, in the text exposition format with timestamps, as Prometheus
//! serves it to federating servers. External labels are added where a series lacks them.
//! Names and values are written by [`strata_ingest::expfmt`] as Prometheus 3.x writes them:
//! a name that is not legacy-valid is quoted (`{"my.metric","label.x"="v"}`), `\`, `"` and
//! newlines escaped, so no stored label can forge or break a line of the output.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use strata_ingest::expfmt;
use strata_storage::METRIC_NAME;

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
    headers: axum::http::HeaderMap,
    p: Params,
) -> Result<Response, ApiError> {
    // As Prometheus 3.x's `expfmt.Negotiate`: UTF-8 names quoted only for a client that
    // asks (`escaping=allow-utf-8`); others (Prometheus 2.x) get underscore-escaped names.
    let utf8 = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(expfmt::accepts_utf8_names);
    let db = s.db()?;
    let selectors = p.selectors()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let lookback = s.info.engine.lookback;
    // name → (series as written → (t, v)); sorted as Prometheus sorts the families.
    let mut by_name: BTreeMap<String, BTreeMap<String, (i64, f64)>> = BTreeMap::new();
    for sel in &selectors {
        for series in db.select(sel, now - lookback + 1, now).await? {
            let Some(&(t, v)) = series.samples.last() else {
                continue;
            };
            if strata_storage::is_stale(v) {
                continue;
            }
            let metric = series.labels.metric_name();
            let name = if utf8 {
                metric.to_owned()
            } else {
                expfmt::underscore_escape(metric).into_owned()
            };
            let mut labels: BTreeMap<std::borrow::Cow<'_, str>, &str> = series
                .labels
                .iter()
                .filter(|l| &*l.name != METRIC_NAME)
                .map(|l| (label_name(utf8, &l.name), &*l.value))
                .collect();
            for (k, v) in &s.info.external_labels {
                labels.entry(label_name(utf8, k)).or_insert(v.as_str());
            }
            let mut text = String::new();
            expfmt::write_series(&mut text, &name, labels.iter().map(|(k, v)| (&**k, *v)));
            by_name.entry(name).or_default().insert(text, (t, v));
        }
    }
    let mut out = String::new();
    for (name, series) in &by_name {
        expfmt::write_type(&mut out, name, "untyped");
        for (text, (t, v)) in series {
            out.push_str(text);
            out.push(' ');
            out.push_str(&expfmt::format_float(*v));
            out.push(' ');
            out.push_str(&t.to_string());
            out.push('\n');
        }
    }
    let content_type = if utf8 {
        "text/plain; version=0.0.4; charset=utf-8; escaping=allow-utf-8"
    } else {
        "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"
    };
    Ok(([(header::CONTENT_TYPE, content_type)], out).into_response())
}

/// A label name as the client asked for it: as stored, or underscore-escaped.
fn label_name(utf8: bool, n: &str) -> std::borrow::Cow<'_, str> {
    if utf8 {
        std::borrow::Cow::Borrowed(n)
    } else {
        expfmt::underscore_escape_label(n)
    }
}
