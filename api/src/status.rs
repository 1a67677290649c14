//! `/api/v1/status/*` (buildinfo, flags, runtimeinfo, config, tsdb, walreplay) and
//! `/api/v1/format_query`, with Prometheus's response shapes.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
#[allow(unused_imports)]
use crate::openapi::*;
use crate::params::Params;

fn ok(data: Value) -> Json<Value> {
    Json(json!({"status": "success", "data": data}))
}

/// `GET /api/v1/status/buildinfo`.
#[utoipa::path(
    method(get),
    path = "/api/v1/status/buildinfo",
    tag = "status",
    summary = "Build information",
    responses(
        (status = 200, description = "Success", body = ObjectResponse)
    )
)]
pub(crate) async fn buildinfo(State(s): State<Arc<AppState>>) -> Json<Value> {
    ok(json!({
        "version": s.build.version,
        "revision": s.build.revision,
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": format!("rust (strata {})", s.build.version),
    }))
}

/// `GET /api/v1/status/flags`.
#[utoipa::path(
    method(get),
    path = "/api/v1/status/flags",
    tag = "status",
    summary = "Command-line flags",
    responses(
        (status = 200, description = "Success", body = ObjectResponse)
    )
)]
pub(crate) async fn flags(State(s): State<Arc<AppState>>) -> Json<Value> {
    ok(json!(s.info.flags))
}

/// `GET /api/v1/status/config`.
#[utoipa::path(
    method(get),
    path = "/api/v1/status/config",
    tag = "status",
    summary = "The loaded configuration (YAML, secrets hidden)",
    responses(
        (status = 200, description = "Success", body = ObjectResponse)
    )
)]
pub(crate) async fn config(State(s): State<Arc<AppState>>) -> Json<Value> {
    ok(json!({"yaml": *s.config_yaml.read()}))
}

/// `GET /api/v1/status/runtimeinfo`.
#[utoipa::path(
    method(get),
    path = "/api/v1/status/runtimeinfo",
    tag = "status",
    summary = "Runtime information",
    responses(
        (status = 200, description = "Success", body = ObjectResponse)
    )
)]
pub(crate) async fn runtimeinfo(State(s): State<Arc<AppState>>) -> Json<Value> {
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let corruptions = s
        .db()
        .map(|db| db.replay_stats().corruptions.len())
        .unwrap_or(0);
    let threads = std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0);
    ok(json!({
        "startTime": s.info.start_time_rfc3339,
        "CWD": cwd,
        "reloadConfigSuccess": true,
        "lastConfigTime": s.info.start_time_rfc3339,
        "corruptionCount": corruptions,
        "goroutineCount": threads,
        "GOMAXPROCS": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "GOMEMLIMIT": i64::MAX,
        "GOGC": "",
        "GODEBUG": "",
        "storageRetention": s.info.retention,
    }))
}

/// `GET /api/v1/status/walreplay`: replay happens before the server is ready, so a ready
/// server reports it complete.
#[utoipa::path(
    method(get),
    path = "/api/v1/status/walreplay",
    tag = "status",
    summary = "WAL replay progress",
    responses(
        (status = 200, description = "Success", body = ObjectResponse)
    )
)]
pub(crate) async fn walreplay(State(s): State<Arc<AppState>>) -> Json<Value> {
    let n = s.db().map(|db| db.replay_stats().segments).unwrap_or(0);
    ok(json!({"min": 0, "max": n, "current": n}))
}

/// `GET /api/v1/status/tsdb`: head statistics and the top entries by series count.
#[utoipa::path(
    method(get),
    path = "/api/v1/status/tsdb",
    tag = "status",
    summary = "Head cardinality statistics",
    params(
        ("limit" = Option<i64>, Query, description = "Maximum number of returned items (0: no limit)")
    ),
    responses(
        (status = 200, description = "Success", body = ObjectResponse),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 503, description = "Storage not ready (WAL replay in progress)", body = ErrorBody)
    )
)]
pub(crate) async fn tsdb(
    State(s): State<Arc<AppState>>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let limit = p.limit()?.unwrap_or(10);
    let db = s.db()?;
    let head = &db.head;
    let (chunks_samples, sample_bytes) = head.sample_stats();
    let (mut by_metric, mut by_label_values, mut by_pair, pairs, memory) =
        head.with_postings(|p| {
            let by_metric: Vec<(String, u64)> = p
                .label_values(strata_storage::METRIC_NAME)
                .map(|(v, b)| (v.to_string(), b.len()))
                .collect();
            let by_label_values: Vec<(String, u64)> = p
                .value_counts()
                .into_iter()
                .map(|(n, c)| (n.to_string(), c as u64))
                .collect();
            let mut by_pair: Vec<(String, u64)> = Vec::new();
            let mut memory: HashMap<String, u64> = HashMap::new();
            let mut pairs = 0u64;
            for name in p.label_names() {
                for (v, b) in p.label_values(&name) {
                    by_pair.push((format!("{name}={v}"), b.len()));
                    *memory.entry(name.to_string()).or_default() += v.len() as u64;
                    pairs += 1;
                }
            }
            (by_metric, by_label_values, by_pair, pairs, memory)
        });
    let mut memory: Vec<(String, u64)> = memory.into_iter().collect();
    let top = |v: &mut Vec<(String, u64)>| -> Value {
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Value::Array(
            v.iter()
                .take(limit)
                .map(|(n, c)| json!({"name": n, "value": c}))
                .collect(),
        )
    };
    let (min, max) = (head.min_time(), head.max_time());
    Ok(ok(json!({
        "headStats": {
            "numSeries": head.num_series(),
            "numLabelPairs": pairs,
            "chunkCount": chunks_samples.div_ceil(120),
            "minTime": if min == i64::MAX { 0 } else { min },
            "maxTime": if max == i64::MIN { 0 } else { max },
            // Strata's own: the samples the head holds and the heap bytes of their
            // chunks (floats and native histograms), for bytes per sample in memory.
            "numSamples": chunks_samples,
            "sampleBytes": sample_bytes,
        },
        "seriesCountByMetricName": top(&mut by_metric),
        "labelValueCountByLabelName": top(&mut by_label_values),
        "memoryInBytesByLabelName": top(&mut memory),
        "seriesCountByLabelValuePair": top(&mut by_pair),
    })))
}

/// `GET|POST /api/v1/format_query`: the query printed canonically.
#[utoipa::path(
    method(get, post),
    path = "/api/v1/format_query",
    tag = "query",
    summary = "A query in canonical formatting",
    params(
        ("query" = String, Query, description = "PromQL expression")
    ),
    responses(
        (status = 200, description = "Success", body = StringResponse),
        (status = 400, description = "Bad parameters", body = ErrorBody)
    )
)]
pub(crate) async fn format_query(p: Params) -> Result<Json<Value>, ApiError> {
    let q = p.get("query").unwrap_or("");
    let expr = strata_grammar::parse(q)
        .map_err(|e| ApiError::BadData(format!("invalid parameter \"query\": {e}")))?;
    Ok(ok(Value::String(expr.to_string())))
}
