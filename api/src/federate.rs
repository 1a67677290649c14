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
    p: Params,
) -> Result<Response, ApiError> {
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
            let name = series.labels.metric_name();
            let mut labels: BTreeMap<&str, &str> = series
                .labels
                .iter()
                .filter(|l| &*l.name != METRIC_NAME)
                .map(|l| (&*l.name, &*l.value))
                .collect();
            for (k, v) in &s.info.external_labels {
                labels.entry(k.as_str()).or_insert(v.as_str());
            }
            let mut text = String::new();
            expfmt::write_series(&mut text, name, labels);
            by_name
                .entry(name.to_owned())
                .or_default()
                .insert(text, (t, v));
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
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}
