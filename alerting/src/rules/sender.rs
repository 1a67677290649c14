//! Delivery of alerts to the Alertmanagers of `alerting.alertmanagers` (API v2), as
//! Prometheus's notifier: a bounded queue (oldest dropped when full), batches of up to 256
//! alerts POSTed to every discovered Alertmanager, external labels added and
//! `alert_relabel_configs` applied first. Alertmanagers are discovered with the same
//! providers as scrape targets (static, file, HTTP, Kubernetes) and relabeled with the
//! set's `relabel_configs` (`__scheme__`, `__address__`, `__alerts_path__`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};
use strata_config::{AlertmanagerConfig, Config, RelabelConfig};
use strata_grammar::format_rfc3339;
use strata_ingest::discovery::{self, Update};
use strata_ingest::http_client::HttpClient;
use strata_ingest::relabel::{self, LabelSet};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::notifier::alert::Alert;
use crate::notifier::dispatch::{Notifier, now_ms};
use crate::rules::alert::OutAlert;
use crate::rules::group::AlertSink;

/// Alerts per POST.
const MAX_BATCH: usize = 256;

/// Counters exposed on `/metrics` (Prometheus's `prometheus_notifications_*`).
#[derive(Debug, Default)]
pub struct SenderMetrics {
    /// Alerts sent successfully (per Alertmanager).
    pub sent: AtomicU64,
    /// Alerts whose POST failed (per Alertmanager).
    pub errors: AtomicU64,
    /// Alerts dropped (queue full, or no Alertmanager).
    pub dropped: AtomicU64,
}

/// One `alertmanagers` entry with its discovered URLs.
struct AmSet {
    cfg: AlertmanagerConfig,
    client: HttpClient,
    /// Push URLs, refreshed by discovery.
    urls: Arc<Mutex<Vec<String>>>,
    /// Discovered Alertmanagers that relabeling dropped (their labels).
    dropped: Arc<Mutex<Vec<String>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for AmSet {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

struct State {
    sets: Vec<Arc<AmSet>>,
    relabel: Vec<RelabelConfig>,
    external_labels: BTreeMap<String, String>,
}

/// The Alertmanager sender.
pub struct Sender {
    queue: Mutex<VecDeque<OutAlert>>,
    capacity: usize,
    notify: Notify,
    state: Mutex<State>,
    generation: AtomicU64,
    /// The built-in notifier (`--alertmanager.config.file`), which gets every alert too.
    local: parking_lot::RwLock<Option<Arc<Notifier>>>,
    /// Counters.
    pub metrics: SenderMetrics,
}

impl Sender {
    /// A sender with a queue of `capacity` alerts (`--alertmanager.notification-queue-capacity`).
    pub fn new(capacity: usize) -> Arc<Sender> {
        Arc::new(Sender {
            queue: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            notify: Notify::new(),
            state: Mutex::new(State {
                sets: Vec::new(),
                relabel: Vec::new(),
                external_labels: BTreeMap::new(),
            }),
            generation: AtomicU64::new(0),
            local: parking_lot::RwLock::new(None),
            metrics: SenderMetrics::default(),
        })
    }

    /// Applies the `alerting` section and external labels (at start and on reload).
    pub fn apply(&self, config: &Config) -> Result<(), String> {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let mut sets = Vec::new();
        for (i, am) in config.alerting.alertmanagers.iter().enumerate() {
            let name = format!("alertmanager config {i}");
            let client = HttpClient::new(&am.http_client, &name).map_err(|e| e.to_string())?;
            let (tx, rx) = mpsc::channel::<Update>(16);
            let mut tasks = discovery::spawn(&am.service_discovery, &name, generation, tx)
                .map_err(|e| e.to_string())?;
            let urls = Arc::new(Mutex::new(Vec::new()));
            let dropped = Arc::new(Mutex::new(Vec::new()));
            tasks.push(tokio::spawn(track(
                am.clone(),
                discovery::provider_count(&am.service_discovery),
                rx,
                urls.clone(),
                dropped.clone(),
            )));
            sets.push(Arc::new(AmSet {
                cfg: am.clone(),
                client,
                urls,
                dropped,
                tasks,
            }));
        }
        let mut st = self.state.lock();
        st.sets = sets;
        st.relabel = config.alerting.alert_relabel_configs.clone();
        st.external_labels = config
            .global
            .external_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(())
    }

    /// Also delivers every alert to the built-in notifier.
    pub fn set_notifier(&self, n: Option<Arc<Notifier>>) {
        *self.local.write() = n;
    }

    /// Push URLs of the discovered Alertmanagers, and those relabeling dropped.
    pub fn alertmanagers(&self) -> (Vec<String>, Vec<String>) {
        let st = self.state.lock();
        let mut active = Vec::new();
        let mut dropped = Vec::new();
        for s in &st.sets {
            active.extend(s.urls.lock().iter().cloned());
            dropped.extend(s.dropped.lock().iter().cloned());
        }
        (active, dropped)
    }

    /// Alerts waiting in the queue.
    pub fn queue_length(&self) -> usize {
        self.queue.lock().len()
    }

    /// Delivers the queue until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if self.queue.lock().is_empty() {
                tokio::select! {
                    _ = self.notify.notified() => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
            let batch: Vec<OutAlert> = {
                let mut q = self.queue.lock();
                let n = q.len().min(MAX_BATCH);
                q.drain(..n).collect()
            };
            if batch.is_empty() {
                continue;
            }
            self.deliver(batch).await;
        }
    }

    async fn deliver(&self, batch: Vec<OutAlert>) {
        let (sets, relabel, ext) = {
            let st = self.state.lock();
            (
                st.sets.clone(),
                st.relabel.clone(),
                st.external_labels.clone(),
            )
        };
        let alerts = prepare(&batch, &relabel, &ext);
        let n = alerts.len() as u64;
        if n == 0 {
            return;
        }
        let local = self.local.read().clone();
        if let Some(notifier) = &local {
            notifier.put(alerts.iter().map(to_notifier_alert).collect());
            self.metrics.sent.fetch_add(n, Ordering::Relaxed);
        }
        let body = payload(&alerts);
        let mut posts = Vec::new();
        for set in &sets {
            let urls = set.urls.lock().clone();
            for url in urls {
                let set = set.clone();
                let body = body.clone();
                posts.push(async move {
                    let r = post(&set, &url, &body).await;
                    if let Err(e) = &r {
                        tracing::warn!(alertmanager = %url, error = %e, "sending alerts failed");
                    }
                    r.is_ok()
                });
            }
        }
        if posts.is_empty() {
            if local.is_none() {
                self.metrics.dropped.fetch_add(n, Ordering::Relaxed);
            }
            return;
        }
        for ok in futures_join_all(posts).await {
            if ok {
                self.metrics.sent.fetch_add(n, Ordering::Relaxed);
            } else {
                self.metrics.errors.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

impl AlertSink for Sender {
    fn send(&self, alerts: Vec<OutAlert>) {
        let mut q = self.queue.lock();
        for a in alerts {
            if q.len() >= self.capacity {
                q.pop_front();
                self.metrics.dropped.fetch_add(1, Ordering::Relaxed);
            }
            q.push_back(a);
        }
        drop(q);
        self.notify.notify_one();
    }
}

/// External labels added (alert labels win), then alert relabeling; dropped alerts removed.
fn prepare(
    batch: &[OutAlert],
    relabel: &[RelabelConfig],
    ext: &BTreeMap<String, String>,
) -> Vec<OutAlert> {
    let mut out = Vec::with_capacity(batch.len());
    for a in batch {
        let mut labels: LabelSet = a.labels.clone();
        for (k, v) in ext {
            labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if !relabel.is_empty() && !relabel::process(&mut labels, relabel) {
            continue;
        }
        out.push(OutAlert {
            labels,
            ..a.clone()
        });
    }
    out
}

/// The API v2 body.
fn payload(alerts: &[OutAlert]) -> Value {
    let out: Vec<Value> = alerts
        .iter()
        .map(|a| {
            json!({
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": format_rfc3339(a.starts_at, true),
                "endsAt": format_rfc3339(a.ends_at, true),
                "generatorURL": a.generator_url,
            })
        })
        .collect();
    Value::Array(out)
}

fn to_notifier_alert(a: &OutAlert) -> Alert {
    let non_empty = |m: &LabelSet| -> crate::notifier::alert::LabelSet {
        m.iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    Alert {
        labels: non_empty(&a.labels),
        annotations: a
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        starts_at: a.starts_at,
        ends_at: a.ends_at,
        updated_at: now_ms(),
        generator_url: a.generator_url.clone(),
        timeout: false,
    }
}

async fn post(set: &AmSet, url: &str, body: &Value) -> Result<(), String> {
    let headers = set.client.request_headers().map_err(|e| e.to_string())?;
    let timeout = Duration::from_millis(set.cfg.timeout.as_millis().max(1));
    let r = set
        .client
        .client
        .post(url)
        .headers(headers)
        .timeout(timeout)
        .json(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if r.status().is_success() {
        Ok(())
    } else {
        Err(format!("bad response status {}", r.status()))
    }
}

async fn futures_join_all<F: std::future::Future<Output = bool> + Send + 'static>(
    posts: Vec<F>,
) -> Vec<bool> {
    let handles: Vec<_> = posts.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap_or(false));
    }
    out
}

/// Keeps `urls` in step with discovery for one set.
async fn track(
    cfg: AlertmanagerConfig,
    providers: usize,
    mut rx: mpsc::Receiver<Update>,
    urls: Arc<Mutex<Vec<String>>>,
    dropped: Arc<Mutex<Vec<String>>>,
) {
    let mut by_provider: Vec<Vec<discovery::TargetGroup>> = vec![Vec::new(); providers];
    while let Some(u) = rx.recv().await {
        if let Some(slot) = by_provider.get_mut(u.provider) {
            *slot = u.groups;
        }
        let mut active = Vec::new();
        let mut gone = Vec::new();
        for g in by_provider.iter().flatten() {
            for t in &g.targets {
                let mut l: LabelSet = g.labels.clone();
                l.extend(t.iter().map(|(k, v)| (k.clone(), v.clone())));
                match alertmanager_url(&cfg, l.clone()) {
                    Some(u) => {
                        if !active.contains(&u) {
                            active.push(u)
                        }
                    }
                    None => gone.push(format!("{l:?}")),
                }
            }
        }
        *urls.lock() = active;
        *dropped.lock() = gone;
    }
}

/// Prometheus's `AlertmanagerFromGroup`: the push URL of one discovered Alertmanager.
fn alertmanager_url(cfg: &AlertmanagerConfig, mut l: LabelSet) -> Option<String> {
    l.entry("__scheme__".into())
        .or_insert_with(|| cfg.scheme.clone());
    let prefix = cfg.path_prefix.trim_end_matches('/');
    l.entry("__alerts_path__".into())
        .or_insert_with(|| format!("{prefix}/api/v2/alerts"));
    if !relabel::process(&mut l, &cfg.relabel_configs) {
        return None;
    }
    let addr = l.get("__address__")?;
    Some(format!(
        "{}://{}{}",
        l.get("__scheme__").map(String::as_str).unwrap_or("http"),
        addr,
        l.get("__alerts_path__")
            .map(String::as_str)
            .unwrap_or("/api/v2/alerts")
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn payload_adds_external_labels_without_overriding() {
        let a = OutAlert {
            labels: BTreeMap::from([
                ("alertname".into(), "A".into()),
                ("env".into(), "own".into()),
            ]),
            annotations: BTreeMap::from([("summary".into(), "s".into())]),
            starts_at: 1_000,
            ends_at: 2_500,
            generator_url: "http://x/graph".into(),
        };
        let ext = BTreeMap::from([
            ("env".to_owned(), "prod".to_owned()),
            ("region".to_owned(), "eu".to_owned()),
        ]);
        let v = payload(&prepare(&[a], &[], &ext));
        assert_eq!(v[0]["labels"]["env"], "own");
        assert_eq!(v[0]["labels"]["region"], "eu");
        assert_eq!(v[0]["startsAt"], "1970-01-01T00:00:01.000Z");
        assert_eq!(v[0]["endsAt"], "1970-01-01T00:00:02.500Z");
    }

    #[test]
    fn url_from_discovered_target() {
        let cfg: Config = Config::from_yaml_str(
            "alerting:\n  alertmanagers:\n  - static_configs:\n    - targets: ['am:9093']\n    path_prefix: /am\n",
            "t.yml",
        )
        .unwrap();
        let am = &cfg.alerting.alertmanagers[0];
        let l = LabelSet::from([("__address__".to_owned(), "am:9093".to_owned())]);
        assert_eq!(
            alertmanager_url(am, l).as_deref(),
            Some("http://am:9093/am/api/v2/alerts")
        );
    }
}
