//! `/api/v1/rules`, `/api/v1/alerts` and `/api/v1/alertmanagers` in Prometheus's shapes,
//! from the rule manager and the Alertmanager sender.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use strata_alerting::format::format_value_e;
use strata_alerting::rules::{Alert, Group};

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
        ("file[]" = Option<Vec<String>>, Query, description = "Only these files"),
        ("exclude_alerts" = Option<bool>, Query, description = "Leave out the alerts of alerting rules")
    ),
    responses(
        (status = 200, description = "Success", body = RulesResponse),
        (status = 400, description = "Bad parameters", body = ErrorBody)
    )
)]
pub(crate) async fn rules(
    State(s): State<Arc<AppState>>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let kind = p.get("type").filter(|t| !t.is_empty());
    if let Some(t) = kind
        && t != "alert"
        && t != "record"
    {
        return Err(ApiError::BadData(format!(
            "invalid parameter \"type\": unsupported value {t:?}"
        )));
    }
    let exclude_alerts = match p.get("exclude_alerts").filter(|v| !v.is_empty()) {
        None => false,
        Some("true" | "1" | "t" | "T" | "TRUE" | "True") => true,
        Some("false" | "0" | "f" | "F" | "FALSE" | "False") => false,
        Some(v) => {
            return Err(ApiError::BadData(format!(
                "invalid parameter \"exclude_alerts\": strconv.ParseBool: parsing {v:?}: invalid syntax"
            )));
        }
    };
    let rule_names = p.all("rule_name[]");
    let group_names = p.all("group_name[]");
    let files = p.all("file[]");
    let mut groups = Vec::new();
    for g in s.rule_groups() {
        if (!group_names.is_empty() && !group_names.iter().any(|n| *n == g.def.name))
            || (!files.is_empty() && !files.iter().any(|f| *f == g.file))
        {
            continue;
        }
        let rules: Vec<Value> = g
            .rules
            .iter()
            .filter(|r| match kind {
                Some("alert") => r.def.alert,
                Some("record") => !r.def.alert,
                _ => true,
            })
            .filter(|r| rule_names.is_empty() || rule_names.iter().any(|n| *n == r.def.name))
            .map(|r| rule_json(r, exclude_alerts))
            .collect();
        if rules.is_empty() && (kind.is_some() || !rule_names.is_empty()) {
            continue;
        }
        groups.push(group_json(&g, rules));
    }
    Ok(Json(
        json!({"status": "success", "data": {"groups": groups}}),
    ))
}

fn group_json(g: &Group, rules: Vec<Value>) -> Value {
    let st = g.state.lock().clone();
    json!({
        "name": g.def.name,
        "file": g.file,
        "rules": rules,
        "interval": g.interval as f64 / 1000.0,
        "limit": g.def.limit,
        "evaluationTime": st.eval_seconds,
        "lastEvaluation": time_or_zero(st.last_eval),
    })
}

fn rule_json(r: &strata_alerting::rules::group::Rule, exclude_alerts: bool) -> Value {
    let st = r.state.lock();
    let mut v = if r.def.alert {
        let alerts: Vec<Value> = if exclude_alerts {
            Vec::new()
        } else {
            st.alerts.active().map(alert_json).collect()
        };
        json!({
            "state": st.alerts.rule_state().as_str(),
            "name": r.def.name,
            "query": r.query,
            "duration": r.def.hold as f64 / 1000.0,
            "keepFiringFor": r.def.keep_firing_for as f64 / 1000.0,
            "labels": r.def.labels,
            "annotations": r.def.annotations,
            "alerts": alerts,
            "health": st.health.as_str(),
            "evaluationTime": st.eval_seconds,
            "lastEvaluation": time_or_zero(st.last_eval),
            "type": "alerting",
        })
    } else {
        let mut v = json!({
            "name": r.def.name,
            "query": r.query,
            "health": st.health.as_str(),
            "evaluationTime": st.eval_seconds,
            "lastEvaluation": time_or_zero(st.last_eval),
            "type": "recording",
        });
        if !r.def.labels.is_empty() {
            v["labels"] = json!(r.def.labels);
        }
        v
    };
    if let Some(e) = &st.last_error {
        v["lastError"] = json!(e);
    }
    v
}

fn alert_json(a: &Alert) -> Value {
    let mut v = json!({
        "labels": a.labels,
        "annotations": a.annotations,
        "state": a.state.as_str(),
        "activeAt": crate::rfc3339(a.active_at, true),
        "value": format_value_e(a.value),
    });
    if let Some(k) = a.keep_firing_since {
        v["keepFiringSince"] = json!(crate::rfc3339(k, true));
    }
    v
}

/// Go's zero `time.Time` when never evaluated.
fn time_or_zero(ms: Option<i64>) -> String {
    match ms {
        Some(ms) => crate::rfc3339(ms, true),
        None => "0001-01-01T00:00:00Z".into(),
    }
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
pub(crate) async fn alerts(State(s): State<Arc<AppState>>) -> Json<Value> {
    let mut alerts = Vec::new();
    for g in s.rule_groups() {
        for r in g.rules.iter().filter(|r| r.def.alert) {
            alerts.extend(r.state.lock().alerts.active().map(alert_json));
        }
    }
    Json(json!({"status": "success", "data": {"alerts": alerts}}))
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
    let (active, dropped) = match s.sender.get() {
        Some(sender) => sender.alertmanagers(),
        None => (s.info.alertmanagers.clone(), Vec::new()),
    };
    let active: Vec<Value> = active.iter().map(|u| json!({"url": u})).collect();
    let dropped: Vec<Value> = dropped.iter().map(|u| json!({"url": u})).collect();
    Json(json!({
        "status": "success",
        "data": {"activeAlertmanagers": active, "droppedAlertmanagers": dropped}
    }))
}
