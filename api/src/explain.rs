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
use crate::query::{QueryError, now_ms, query_param, range_params, resolution_param, time_param};

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
        let q = query_param(&p)?;
        let analyze = matches!(p.get("analyze"), Some("true" | "1"));
        let engine = st.engine()?;
        let lookback = engine.options().lookback;
        let params = if p.get("start").is_some() || p.get("end").is_some() {
            let (start, end, step) = range_params(&p)?;
            QueryParams {
                start,
                end,
                interval: step,
                lookback,
                max_source_resolution: resolution_param(&p)?,
            }
        } else {
            let t = time_param(&p, "time", Some(now_ms()))?;
            QueryParams {
                start: t,
                end: t,
                interval: 0,
                lookback,
                max_source_resolution: resolution_param(&p)?,
            }
        };
        Ok::<_, ApiError>((engine, q, params, analyze))
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
