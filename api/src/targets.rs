//! `/api/v1/targets` and `/api/v1/targets/metadata`, fed by the scrape manager, in
//! Prometheus's shapes (active and dropped targets, health, last scrape and error).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Map, Value, json};
use strata_ingest::scrape::TargetState;

use crate::AppState;
use crate::error::ApiError;
#[allow(unused_imports)]
use crate::openapi::*;
use crate::params::{Params, parse_selector};

/// RFC 3339 with milliseconds, UTC (Go's zero time when never scraped).
pub(crate) fn rfc3339_ms(ms: Option<i64>) -> String {
    match ms {
        Some(ms) => crate::rfc3339(ms, true),
        None => "0001-01-01T00:00:00Z".into(),
    }
}

fn labels_json<'a>(it: impl Iterator<Item = (&'a str, &'a str)>) -> Value {
    Value::Object(
        it.map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
            .collect::<Map<_, _>>(),
    )
}

fn active_json(t: &TargetState) -> Value {
    let h = t.health.lock().clone();
    let tg = &t.target;
    json!({
        "discoveredLabels": labels_json(tg.discovered.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        "labels": labels_json(tg.public_labels()),
        "scrapePool": t.job,
        "scrapeUrl": tg.url,
        "globalUrl": tg.url,
        "lastError": h.last_error,
        "lastScrape": rfc3339_ms(h.last_scrape_ms),
        "lastScrapeDuration": h.last_duration,
        "health": h.state.as_str(),
        "scrapeInterval": tg.labels.get("__scrape_interval__").cloned().unwrap_or_default(),
        "scrapeTimeout": tg.labels.get("__scrape_timeout__").cloned().unwrap_or_default(),
    })
}

/// `GET /api/v1/targets[?state=active|dropped|any&scrapePool=…]`.
#[utoipa::path(
    method(get),
    path = "/api/v1/targets",
    tag = "targets",
    summary = "Scrape targets (active and dropped)",
    params(
        ("state" = Option<String>, Query, description = "active, dropped or any (default)"),
        ("scrapePool" = Option<String>, Query, description = "Only this job")
    ),
    responses(
        (status = 200, description = "Success", body = TargetsResponse)
    )
)]
pub(crate) async fn targets(
    State(s): State<Arc<AppState>>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let state = p.get("state").unwrap_or("any").to_ascii_lowercase();
    let (want_active, want_dropped) = match state.as_str() {
        "" | "any" => (true, true),
        "active" => (true, false),
        "dropped" => (false, true),
        _ => (true, true),
    };
    let pool = p.get("scrapePool").filter(|x| !x.is_empty());
    let mut active = Vec::new();
    let mut dropped = Vec::new();
    let mut counts = Map::new();
    for (job, status) in s.scrape_pools() {
        if pool.is_some_and(|p| p != job) {
            continue;
        }
        let st = status.read();
        counts.insert(job.clone(), json!(st.dropped_count));
        if want_active {
            active.extend(st.active.iter().map(|t| active_json(t)));
        }
        if want_dropped {
            dropped.extend(st.dropped.iter().map(|d| {
                json!({
                    "discoveredLabels": labels_json(d.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
                    "scrapePool": job,
                })
            }));
        }
    }
    Ok(Json(json!({
        "status": "success",
        "data": {
            "activeTargets": active,
            "droppedTargets": dropped,
            "droppedTargetCounts": counts,
        }
    })))
}

/// `GET /api/v1/targets/metadata[?match_target=…&metric=…&limit=…]`.
#[utoipa::path(
    method(get),
    path = "/api/v1/targets/metadata",
    tag = "targets",
    summary = "Metric metadata per target",
    params(
        ("match_target" = Option<String>, Query, description = "Label selector of targets, e.g. {job=\"node\"}"),
        ("metric" = Option<String>, Query, description = "Only this metric"),
        ("limit" = Option<i64>, Query, description = "Maximum number of returned items (0: no limit)")
    ),
    responses(
        (status = 200, description = "Success", body = ListResponse),
        (status = 400, description = "Bad parameters", body = ErrorBody)
    )
)]
pub(crate) async fn targets_metadata(
    State(s): State<Arc<AppState>>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let matchers = match p.get("match_target").filter(|m| !m.is_empty()) {
        Some(m) => parse_selector(m)?,
        None => Vec::new(),
    };
    let metric = p.get("metric").filter(|m| !m.is_empty());
    let limit = p.limit()?;
    let mut out = Vec::new();
    'pools: for (_, status) in s.scrape_pools() {
        let st = status.read();
        for t in &st.active {
            let ok = matchers.iter().all(|m| {
                let v = t
                    .target
                    .public_labels()
                    .find(|(n, _)| *n == m.name.as_str())
                    .map(|(_, v)| v)
                    .unwrap_or("");
                m.matches(v)
            });
            if !ok {
                continue;
            }
            let md = t.metadata.lock();
            let mut names: Vec<&String> = md.keys().collect();
            names.sort();
            for name in names {
                if metric.is_some_and(|m| m != name) {
                    continue;
                }
                if limit.is_some_and(|l| out.len() >= l) {
                    break 'pools;
                }
                let m = &md[name];
                let mut e = json!({
                    "target": labels_json(t.target.public_labels()),
                    "type": m.kind.map(|k| k.as_str()).unwrap_or("unknown"),
                    "help": m.help,
                    "unit": m.unit,
                });
                if metric.is_none() {
                    e["metric"] = json!(name);
                }
                out.push(e);
            }
        }
    }
    Ok(Json(json!({"status": "success", "data": out})))
}
