//! Metric metadata (type, help, unit) learned from scrapes and remote-write requests, served at
//! `/api/v1/metadata` in Prometheus's shape. Held in memory, newest entry per
//! (metric, type, help, unit) kept, as Prometheus keeps scrape metadata. Remote-write
//! metadata is bounded: families, bytes, and an expiry for families no longer sent.

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

/// Families the store keeps at most; entries of new families past it are ignored until
/// old ones expire.
const MAX_FAMILIES: usize = 100_000;
/// Bytes (names, help, unit) the store keeps at most.
const MAX_BYTES: usize = 32 << 20;
/// A family not sent again for this long is forgotten (senders resend every minute).
const EXPIRY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// One family's entries and when they were last sent.
#[derive(Debug, Clone)]
struct Family {
    entries: BTreeSet<Entry>,
    seen: std::time::Instant,
}

/// Metadata per metric family name, bounded in families, bytes and age.
#[derive(Debug, Default)]
pub(crate) struct MetadataStore {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_metric: BTreeMap<String, Family>,
    bytes: usize,
    /// Entries refused because the store was full (a warning is logged once per fill).
    refused: u64,
}

fn entry_bytes(name: &str, e: &Entry) -> usize {
    name.len() + e.help.len() + e.unit.len() + 64
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
    /// Records the metadata of a remote-write request (already deduplicated and capped by
    /// the decoder): a family keeps one entry per distinct type/help/unit, at most a few.
    pub(crate) fn record(&self, md: &[MetricMetadata]) {
        if md.is_empty() {
            return;
        }
        let now = std::time::Instant::now();
        let mut m = self.inner.write();
        if m.by_metric.len() >= MAX_FAMILIES || m.bytes >= MAX_BYTES {
            m.expire(now);
        }
        for x in md.iter().filter(|x| !x.metric_family_name.is_empty()) {
            let e = Entry {
                kind: kind(x.r#type),
                help: x.help.clone(),
                unit: x.unit.clone(),
            };
            let size = entry_bytes(&x.metric_family_name, &e);
            let is_new_family = !m.by_metric.contains_key(&x.metric_family_name);
            if (is_new_family && m.by_metric.len() >= MAX_FAMILIES) || m.bytes + size > MAX_BYTES {
                if m.refused == 0 {
                    tracing::warn!(
                        families = m.by_metric.len(),
                        bytes = m.bytes,
                        "metadata store full: new remote-write metadata is ignored until old entries expire"
                    );
                }
                m.refused += 1;
                continue;
            }
            let fam = m
                .by_metric
                .entry(x.metric_family_name.clone())
                .or_insert_with(|| Family {
                    entries: BTreeSet::new(),
                    seen: now,
                });
            fam.seen = now;
            if fam.entries.len() < 8 && fam.entries.insert(e) {
                m.bytes += size;
            }
        }
    }

    /// The families and their entries.
    fn snapshot(&self) -> BTreeMap<String, BTreeSet<Entry>> {
        self.inner
            .read()
            .by_metric
            .iter()
            .map(|(k, f)| (k.clone(), f.entries.clone()))
            .collect()
    }
}

impl Inner {
    /// Drops families not sent for [`EXPIRY`].
    fn expire(&mut self, now: std::time::Instant) {
        let mut freed = 0;
        self.by_metric.retain(|name, f| {
            let keep = now.duration_since(f.seen) < EXPIRY;
            if !keep {
                freed += f
                    .entries
                    .iter()
                    .map(|e| entry_bytes(name, e))
                    .sum::<usize>();
            }
            keep
        });
        self.bytes = self.bytes.saturating_sub(freed);
        self.refused = 0;
    }
}

/// `GET /api/v1/metadata[?metric=…&limit=…&limit_per_metric=…]`.
/// The metadata of every family: received through remote write, and scraped.
fn combined(s: &AppState) -> BTreeMap<String, BTreeSet<Entry>> {
    let mut m = s.metadata.snapshot();
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
    m
}

impl AppState {
    /// Every family's metadata as remote-write metadata (what remote-write queues send).
    pub fn metadata_list(&self) -> Vec<MetricMetadata> {
        let type_of = |k: &str| match k {
            "counter" => 1,
            "gauge" => 2,
            "histogram" => 3,
            "gaugehistogram" => 4,
            "summary" => 5,
            "info" => 6,
            "stateset" => 7,
            _ => 0,
        };
        combined(self)
            .into_iter()
            .flat_map(|(name, entries)| {
                entries.into_iter().map(move |e| MetricMetadata {
                    r#type: type_of(e.kind),
                    metric_family_name: name.clone(),
                    help: e.help,
                    unit: e.unit,
                })
            })
            .collect()
    }
}

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
    let m = combined(&s);
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
