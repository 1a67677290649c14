//! `/api/v1/series`, `/api/v1/labels` and `/api/v1/label/<name>/values`, with Prometheus's
//! parameters (`match[]`, `start`, `end`, `limit`) and response shapes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use strata_storage::{Labels, METRIC_NAME, MatchOp, Matcher};

use crate::AppState;
use crate::error::ApiError;
#[allow(unused_imports)]
use crate::openapi::*;
use crate::params::{MAX_TIME, MIN_TIME, Params};

/// The success envelope, with Prometheus's truncation warning when a limit cut the answer.
fn success(data: Value, truncated: bool) -> Json<Value> {
    if truncated {
        Json(
            json!({"status": "success", "data": data, "warnings": ["results truncated due to limit"]}),
        )
    } else {
        Json(json!({"status": "success", "data": data}))
    }
}

/// Label sets of every series selected by any of the `match[]` selectors (or every
/// series when there is none) in `[start, end]`.
async fn matching(
    state: &AppState,
    p: &Params,
    require_match: bool,
) -> Result<Vec<Labels>, ApiError> {
    let db = state.db()?;
    let start = p.time_or("start", MIN_TIME)?;
    let end = p.time_or("end", MAX_TIME)?;
    if end < start {
        return Err(ApiError::BadData(
            "end timestamp must not be before start time".into(),
        ));
    }
    let mut selectors = p.selectors()?;
    if selectors.is_empty() {
        if require_match {
            return Err(ApiError::BadData("no match[] parameter provided".into()));
        }
        selectors.push(vec![Matcher::new(MatchOp::Regex, METRIC_NAME, ".+")?]);
    }
    let mut set: BTreeSet<Labels> = BTreeSet::new();
    for sel in &selectors {
        set.extend(db.series(sel, start, end).await?);
    }
    Ok(set.into_iter().collect())
}

fn labels_json(l: &Labels) -> Value {
    let m: BTreeMap<&str, &str> = l.iter().map(|x| (&*x.name, &*x.value)).collect();
    json!(m)
}

/// `GET|POST /api/v1/series`.
#[utoipa::path(
    method(get, post),
    path = "/api/v1/series",
    tag = "metadata",
    summary = "Series matching selectors",
    params(
        ("match[]" = Vec<String>, Query, description = "Series selectors; repeat for several"),
        ("start" = Option<String>, Query, description = "Start of the range: RFC 3339 or Unix seconds"),
        ("end" = Option<String>, Query, description = "End of the range: RFC 3339 or Unix seconds"),
        ("limit" = Option<i64>, Query, description = "Maximum number of returned items (0: no limit)")
    ),
    responses(
        (status = 200, description = "Success", body = SeriesResponse),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 503, description = "Storage not ready (WAL replay in progress)", body = ErrorBody)
    )
)]
pub(crate) async fn series(
    State(s): State<Arc<AppState>>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let limit = p.limit()?;
    let all = matching(&s, &p, true).await?;
    let truncated = limit.is_some_and(|l| all.len() > l);
    let data: Vec<Value> = all
        .iter()
        .take(limit.unwrap_or(usize::MAX))
        .map(labels_json)
        .collect();
    Ok(success(Value::Array(data), truncated))
}

/// `GET|POST /api/v1/labels`.
#[utoipa::path(
    method(get, post),
    path = "/api/v1/labels",
    tag = "metadata",
    summary = "Label names",
    params(
        ("match[]" = Option<Vec<String>>, Query, description = "Series selectors; repeat for several"),
        ("start" = Option<String>, Query, description = "Start of the range: RFC 3339 or Unix seconds"),
        ("end" = Option<String>, Query, description = "End of the range: RFC 3339 or Unix seconds"),
        ("limit" = Option<i64>, Query, description = "Maximum number of returned items (0: no limit)")
    ),
    responses(
        (status = 200, description = "Success", body = StringsResponse),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 503, description = "Storage not ready (WAL replay in progress)", body = ErrorBody)
    )
)]
pub(crate) async fn label_names(
    State(s): State<Arc<AppState>>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let limit = p.limit()?;
    let names: BTreeSet<String> = matching(&s, &p, false)
        .await?
        .iter()
        .flat_map(|l| l.iter().map(|x| x.name.to_string()).collect::<Vec<_>>())
        .collect();
    let truncated = limit.is_some_and(|l| names.len() > l);
    let data: Vec<&String> = names.iter().take(limit.unwrap_or(usize::MAX)).collect();
    Ok(success(json!(data), truncated))
}

/// `GET /api/v1/label/<name>/values`.
#[utoipa::path(
    method(get),
    path = "/api/v1/label/{name}/values",
    tag = "metadata",
    summary = "Values of a label",
    params(
        ("name" = String, Path, description = "Label name"),
        ("match[]" = Option<Vec<String>>, Query, description = "Series selectors; repeat for several"),
        ("start" = Option<String>, Query, description = "Start of the range: RFC 3339 or Unix seconds"),
        ("end" = Option<String>, Query, description = "End of the range: RFC 3339 or Unix seconds"),
        ("limit" = Option<i64>, Query, description = "Maximum number of returned items (0: no limit)")
    ),
    responses(
        (status = 200, description = "Success", body = StringsResponse),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 503, description = "Storage not ready (WAL replay in progress)", body = ErrorBody)
    )
)]
pub(crate) async fn label_values(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    // Prometheus 3 accepts any UTF-8 name, written plainly or as `U__` escaped.
    let name = unescape_label_name(&name);
    if name.is_empty() {
        return Err(ApiError::BadData(format!("invalid label name: {name:?}")));
    }
    let limit = p.limit()?;
    let values: BTreeSet<String> = matching(&s, &p, false)
        .await?
        .iter()
        .filter_map(|l| l.get(&name).map(str::to_owned))
        .collect();
    let truncated = limit.is_some_and(|l| values.len() > l);
    let data: Vec<&String> = values.iter().take(limit.unwrap_or(usize::MAX)).collect();
    Ok(success(json!(data), truncated))
}

/// Prometheus's `U__` value-encoding of label names (`U__my_2e_name` → `my.name`).
fn unescape_label_name(n: &str) -> String {
    let Some(rest) = n.strip_prefix("U__") else {
        return n.to_string();
    };
    let mut out = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'_') {
            chars.next();
            out.push('_');
            continue;
        }
        let hex: String = chars.by_ref().take_while(|c| *c != '_').collect();
        match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
            Some(ch) => out.push(ch),
            None => return n.to_string(),
        }
    }
    out
}
