//! `GET|POST /api/v1/query_exemplars`: the exemplars of the series a PromQL expression
//! selects, as Prometheus answers it. Every vector selector of the expression is a matcher
//! set (Prometheus's `ExtractSelectors`); the exemplars of series matching any of them
//! within `[start, end]` come back grouped by series, sorted by series labels. The answer
//! is bounded by the exemplar buffer (`storage.exemplars.max_exemplars`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use strata_storage::{Labels, SeriesExemplars};

use crate::AppState;
use crate::error::ApiError;
#[allow(unused_imports)]
use crate::openapi::*;
use crate::params::{MAX_TIME, MIN_TIME, Params, selector_matchers};

/// `GET|POST /api/v1/query_exemplars?query=…&start=…&end=…`.
#[utoipa::path(
    method(get, post),
    path = "/api/v1/query_exemplars",
    tag = "query",
    summary = "Exemplars of the series a query selects",
    params(
        ("query" = String, Query, description = "PromQL expression"),
        ("start" = Option<String>, Query, description = "Start of the range: RFC 3339 or Unix seconds"),
        ("end" = Option<String>, Query, description = "End of the range: RFC 3339 or Unix seconds")
    ),
    responses(
        (status = 200, description = "Success: [{seriesLabels, exemplars: [{labels, value, timestamp}]}]", body = ListResponse),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 503, description = "Storage not ready", body = ErrorBody)
    )
)]
pub(crate) async fn query_exemplars(
    State(s): State<Arc<AppState>>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let start = p.time_or("start", MIN_TIME)?;
    let end = p.time_or("end", MAX_TIME)?;
    if end < start {
        return Err(ApiError::BadData(
            "end timestamp must not be before start timestamp".into(),
        ));
    }
    let q = p.get("query").unwrap_or("");
    let expr = strata_grammar::parse(q)
        .map_err(|e| ApiError::BadData(format!("invalid parameter \"query\": {e}")))?;
    let sets = expr
        .selectors()
        .into_iter()
        .map(selector_matchers)
        .collect::<Result<Vec<_>, _>>()?;
    if sets.is_empty() {
        return Ok(Json(json!({"status": "success", "data": null})));
    }
    let db = s.db()?;
    let found = db.exemplars.select(start, end, &sets);
    Ok(Json(json!({
        "status": "success",
        "data": found.iter().map(series_json).collect::<Vec<_>>(),
    })))
}

fn labels_json(l: &Labels) -> Value {
    let m: BTreeMap<&str, &str> = l.iter().map(|x| (&*x.name, &*x.value)).collect();
    json!(m)
}

/// Seconds as Prometheus writes a timestamp: an integer when whole, else milliseconds.
pub(crate) fn seconds_json(ms: i64) -> Value {
    if ms % 1000 == 0 {
        json!(ms / 1000)
    } else {
        json!(ms as f64 / 1000.0)
    }
}

fn series_json(se: &SeriesExemplars) -> Value {
    let exemplars: Vec<Value> = se
        .exemplars
        .iter()
        .map(|e| {
            let mut v = String::new();
            crate::query::format_value(e.value, &mut v);
            json!({"labels": labels_json(&e.labels), "value": v, "timestamp": seconds_json(e.ts)})
        })
        .collect();
    json!({"seriesLabels": labels_json(&se.series), "exemplars": exemplars})
}
