//! Metric metadata (type, help, unit) learned from scrapes and remote-write requests, served at
//! `/api/v1/metadata` in Prometheus's shape. Held in memory, newest entry per
//! (metric, type, help, unit) kept, as Prometheus keeps scrape metadata.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use parking_lot::RwLock;
use serde_json::{Value, json};
use strata_ingest::remote_write::MetricMetadata;

use crate::AppState;
use crate::error::ApiError;
#[allow(unused_imports)]
use crate::openapi::*;
use crate::params::Params;

/// One metadata entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Entry {
    kind: &'static str,
    help: String,
    unit: String,
}

/// Metadata per metric family name.
#[derive(Debug, Default)]
pub(crate) struct MetadataStore {
    by_metric: RwLock<BTreeMap<String, BTreeSet<Entry>>>,
}

/// Remote write's `MetricType` enum → Prometheus's type names.
fn kind(t: i32) -> &'static str {
    match t {
        1 => "counter",
        2 => "gauge",
        3 => "histogram",
        4 => "gaugehistogram",
        5 => "summary",
        6 => "info",
        7 => "stateset",
        _ => "unknown",
    }
}

impl MetadataStore {
    /// Records the metadata of a remote-write request.
    pub(crate) fn record(&self, md: &[MetricMetadata]) {
        if md.is_empty() {
            return;
        }
        let mut m = self.by_metric.write();
        for x in md.iter().filter(|x| !x.metric_family_name.is_empty()) {
            let set = m.entry(x.metric_family_name.clone()).or_default();
            // A family keeps one entry per distinct type/help/unit, at most a few.
            if set.len() < 8 {
                set.insert(Entry {
                    kind: kind(x.r#type),
                    help: x.help.clone(),
                    unit: x.unit.clone(),
                });
            }
        }
    }
}

/// `GET /api/v1/metadata[?metric=…&limit=…&limit_per_metric=…]`.
#[utoipa::path(
    method(get),
    path = "/api/v1/metadata",
    tag = "metadata",
    summary = "Metric metadata (type, help, unit)",
    params(
        ("metric" = Option<String>, Query, description = "Only this metric"),
        ("limit" = Option<i64>, Query, description = "Maximum number of returned items (0: no limit)"),
        ("limit_per_metric" = Option<i64>, Query, description = "Entries per metric")
    ),
    responses(
        (status = 200, description = "Success", body = MetadataResponse),
        (status = 400, description = "Bad parameters", body = ErrorBody)
    )
)]
pub(crate) async fn metadata(
    State(s): State<Arc<AppState>>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let limit = parse_limit(&p, "limit")?;
    let per_metric = parse_limit(&p, "limit_per_metric")?;
    let metric = p.get("metric").filter(|m| !m.is_empty());
    let mut m = s.metadata.by_metric.read().clone();
    for (_, pool) in s.scrape_pools() {
        for t in &pool.read().active {
            for (name, md) in t.metadata.lock().iter() {
                let set = m.entry(name.clone()).or_default();
                if set.len() < 8 {
                    set.insert(Entry {
                        kind: md.kind.map(|k| k.as_str()).unwrap_or("unknown"),
                        help: md.help.clone(),
                        unit: md.unit.clone(),
                    });
                }
            }
        }
    }
    let mut out = serde_json::Map::new();
    for (name, entries) in m.iter() {
        if metric.is_some_and(|x| x != name) {
            continue;
        }
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        let list: Vec<Value> = entries
            .iter()
            .take(per_metric.unwrap_or(usize::MAX))
            .map(|e| json!({"type": e.kind, "help": e.help, "unit": e.unit}))
            .collect();
        out.insert(name.clone(), Value::Array(list));
    }
    Ok(Json(json!({"status": "success", "data": out})))
}

/// A limit parameter: values <= 0 mean no limit, as in Prometheus.
fn parse_limit(p: &Params, key: &str) -> Result<Option<usize>, ApiError> {
    match p.get(key) {
        None | Some("") => Ok(None),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n > 0 => Ok(Some(n as usize)),
            Ok(_) => Ok(None),
            Err(_) => Err(ApiError::BadData(format!(
                "invalid parameter \"{key}\": {v:?} is not a number"
            ))),
        },
    }
}
