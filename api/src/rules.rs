//! `/api/v1/rules`, `/api/v1/alerts`, `/api/v1/alertmanagers` and `/api/v1/query_exemplars`
//! in Prometheus's shapes. Rule evaluation is not built yet (issue #8), so no rule group is
//! loaded and the rule and alert lists are empty; exemplars are not stored, so the exemplar
//! list is empty (after the query and time range are validated, as Prometheus does).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
#[allow(unused_imports)]
use crate::openapi::*;
use crate::params::Params;

/// `GET /api/v1/rules`.
#[utoipa::path(
    method(get),
    path = "/api/v1/rules",
    tag = "rules",
    summary = "Recording and alerting rule groups",
    params(
        ("type" = Option<String>, Query, description = "alert or record"),
        ("rule_name[]" = Option<Vec<String>>, Query, description = "Only these rules"),
        ("group_name[]" = Option<Vec<String>>, Query, description = "Only these groups"),
        ("file[]" = Option<Vec<String>>, Query, description = "Only these files")
    ),
    responses(
        (status = 200, description = "Success", body = RulesResponse),
        (status = 400, description = "Bad parameters", body = ErrorBody)
    )
)]
pub(crate) async fn rules(p: Params) -> Result<Json<Value>, ApiError> {
    if let Some(t) = p.get("type").filter(|t| !t.is_empty())
        && t != "alert"
        && t != "record"
    {
        return Err(ApiError::BadData(format!(
            "invalid parameter \"type\": unsupported value {t:?}"
        )));
    }
    Ok(Json(json!({"status": "success", "data": {"groups": []}})))
}

/// `GET /api/v1/alerts`.
#[utoipa::path(
    method(get),
    path = "/api/v1/alerts",
    tag = "rules",
    summary = "Active alerts",
    responses(
        (status = 200, description = "Success", body = AlertsResponse)
    )
)]
pub(crate) async fn alerts() -> Json<Value> {
    Json(json!({"status": "success", "data": {"alerts": []}}))
}

/// `GET /api/v1/alertmanagers`: the Alertmanagers of `alerting.alertmanagers`.
#[utoipa::path(
    method(get),
    path = "/api/v1/alertmanagers",
    tag = "rules",
    summary = "Configured Alertmanagers",
    responses(
        (status = 200, description = "Success", body = AlertmanagersResponse)
    )
)]
pub(crate) async fn alertmanagers(State(s): State<Arc<AppState>>) -> Json<Value> {
    let active: Vec<Value> = s
        .info
        .alertmanagers
        .iter()
        .map(|u| json!({"url": u}))
        .collect();
    Json(json!({
        "status": "success",
        "data": {"activeAlertmanagers": active, "droppedAlertmanagers": []}
    }))
}

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
        (status = 200, description = "Success", body = ListResponse),
        (status = 400, description = "Bad parameters", body = ErrorBody)
    )
)]
pub(crate) async fn query_exemplars(p: Params) -> Result<Json<Value>, ApiError> {
    let q = p.get("query").unwrap_or("");
    strata_grammar::parse(q)
        .map_err(|e| ApiError::BadData(format!("invalid parameter \"query\": {e}")))?;
    let start = p.time_or("start", i64::MIN / 2)?;
    let end = p.time_or("end", i64::MAX / 2)?;
    if end < start {
        return Err(ApiError::BadData(
            "end timestamp must not be before start time".into(),
        ));
    }
    Ok(Json(json!({"status": "success", "data": []})))
}
