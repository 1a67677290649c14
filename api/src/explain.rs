//! `GET|POST /api/v1/explain`: the physical plan of a PromQL query, one DataFusion operator
//! per line; with `analyze=true` the query runs first (under the usual limits) and each
//! operator shows its metrics — output rows and series, its own compute time
//! (`elapsed_compute`, not its inputs'), the budget held — as SQL's `EXPLAIN ANALYZE` does.
//! An instant query takes `time`; a range query `start`, `end` and `step`.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use strata_engine::QueryParams;

use crate::AppState;
use crate::error::ApiError;
#[allow(unused_imports)]
use crate::openapi::*;
use crate::params::Params;
use crate::query::{QueryError, now_ms, parse_duration, time_param};

/// `GET|POST /api/v1/explain`.
#[utoipa::path(
    method(get, post),
    path = "/api/v1/explain",
    tag = "query",
    summary = "The physical plan of a PromQL query; with analyze=true, run it and show per-operator metrics",
    params(
        ("query" = String, Query, description = "PromQL expression"),
        ("time" = Option<String>, Query, description = "Evaluation time of an instant query (default now)"),
        ("start" = Option<String>, Query, description = "Range query start (with end and step)"),
        ("end" = Option<String>, Query, description = "Range query end"),
        ("step" = Option<String>, Query, description = "Range query step"),
        ("analyze" = Option<bool>, Query, description = "Run the query and show each operator's metrics")
    ),
    responses(
        (status = 200, description = "The plan as text in data.plan", body = Success),
        (status = 400, description = "Bad parameters or query", body = ErrorBody),
        (status = 422, description = "Execution failed (analyze)", body = ErrorBody),
        (status = 503, description = "Timeout or not ready", body = ErrorBody)
    )
)]
pub(crate) async fn explain(State(st): State<Arc<AppState>>, p: Params) -> Response {
    let r = async {
        let q = p
            .get("query")
            .filter(|q| !q.trim().is_empty())
            .ok_or_else(|| ApiError::BadData("invalid parameter \"query\": empty query".into()))?
            .to_owned();
        let analyze = matches!(p.get("analyze"), Some("true" | "1"));
        let engine = st.engine()?;
        let lookback = engine.options().lookback;
        let params = if p.get("start").is_some() || p.get("end").is_some() {
            let start = time_param(&p, "start", None)?;
            let end = time_param(&p, "end", None)?;
            let step = parse_duration(p.get("step").unwrap_or(""))
                .map_err(|e| ApiError::BadData(format!("invalid parameter \"step\": {e}")))?;
            if step <= 0 || end < start || (end - start) / step > 11_000 {
                return Err(ApiError::BadData(
                    "invalid parameters: need start <= end and a positive step, at most 11,000 steps".into(),
                ));
            }
            QueryParams {
                start,
                end,
                interval: step,
                lookback,
            }
        } else {
            let t = time_param(&p, "time", Some(now_ms()))?;
            QueryParams {
                start: t,
                end: t,
                interval: 0,
                lookback,
            }
        };
        Ok((engine, q, params, analyze))
    }
    .await;
    let (engine, q, params, analyze) = match r {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    match engine.explain_params(&q, params, analyze).await {
        Ok(plan) => {
            axum::Json(json!({"status": "success", "data": {"plan": plan}})).into_response()
        }
        Err(e) => QueryError(e).into_response(),
    }
}
