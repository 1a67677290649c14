//! The built-in notifier: Alertmanager's dispatcher and notification pipeline.
//!
//! Alerts (posted to `/api/v2/alerts` or handed over by the rule manager) are merged into
//! the alert store and routed; each matching route puts the alert into the aggregation
//! group of its grouping labels. A group's task flushes it after `group_wait`, then every
//! `group_interval`: alerts muted by the route's time intervals, inhibited or silenced are
//! dropped, and each integration of the receiver is notified when the notification log
//! says something changed (new firing alerts, resolved alerts for `send_resolved`, all
//! resolved) or `repeat_interval` has passed. Resolved alerts leave the group after a
//! successful flush. A reload rebuilds the groups from the store; the notification log
//! keeps the receivers from being paged twice.
//!
//! An acknowledged group ([`acknowledge`]) whose firing set is unchanged skips its repeat
//! notifications (they are logged as if sent).
//!
//! In a cluster ([`Notifier::join_cluster`]) a flush first waits for the gossip to settle
//! (Alertmanager's `ClusterGossipSettleStage`), and each integration waits this node's
//! turn (`ClusterWaitStage`: position × peer timeout) before the dedup against the
//! notification log, which then holds what the nodes before it sent.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::task::{JoinHandle, JoinSet};

mod acknowledge;

pub use acknowledge::{AckRequest, AckTarget};

use crate::notifier::acks::{Acks, DEFAULT_ACK_RETENTION_MS};
use crate::notifier::alert::{Alert, LabelSet};
use crate::notifier::cluster::{self, ClusterError, ClusterOptions, Peer};
use crate::notifier::config::Config;
use crate::notifier::group::{Group, group_labels, labels_string, sort_alerts};
use crate::notifier::nflog::{self, Nflog};
use crate::notifier::render::Renderer;
use crate::notifier::send::{Instance, Notification, SendMetrics};
use crate::notifier::silences::{DEFAULT_RETENTION_MS, Silences};
pub use crate::rules::group::now_ms;

/// How often resolved alerts, expired silences and old log entries are collected.
const MAINTENANCE: Duration = Duration::from_secs(60);

/// Resolved alerts stay in the store this long (Alertmanager's `--alerts.gc-interval`).
const RESOLVED_KEPT_MS: i64 = 30 * 60_000;

/// Start-up settings.
pub struct NotifierOptions {
    /// `--alertmanager.config.file`.
    pub config_file: PathBuf,
    /// Where silences and the notification log are kept (`<data>/alertmanager`).
    pub state_dir: PathBuf,
    /// `--web.external-url` (links in notifications), without trailing slash.
    pub external_url: String,
}

/// A loaded configuration with what it needs at run time.
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// The file as written (`/api/v2/status` `config.original`).
    pub original: String,
    renderer: Renderer,
    integrations: HashMap<String, Arc<Vec<Instance>>>,
}

impl Loaded {
    /// Reads, validates and prepares `path` (templates, receivers' HTTP clients).
    pub fn load(path: &Path) -> Result<Loaded, String> {
        let original = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let config = Config::from_yaml_str(&original, &path.display().to_string())
            .map_err(|e| e.to_string())?;
        let base = path.parent().unwrap_or(Path::new("."));
        let renderer = Renderer::load(&config.templates, base)?;
        let mut integrations = HashMap::new();
        for r in &config.receivers {
            let list = Instance::for_receiver(r, &config.global)?;
            integrations.insert(r.name.clone(), Arc::new(list));
        }
        Ok(Loaded {
            config,
            original,
            renderer,
            integrations,
        })
    }
}

/// Counters for `/metrics` (Alertmanager's names).
#[derive(Debug, Default)]
pub struct NotifierMetrics {
    /// Per integration kind.
    pub send: SendMetrics,
    /// `alertmanager_alerts_received_total{status="firing"}`.
    pub received_firing: AtomicU64,
    /// `alertmanager_alerts_received_total{status="resolved"}`.
    pub received_resolved: AtomicU64,
    /// `alertmanager_alerts_invalid_total`.
    pub invalid: AtomicU64,
    /// `alertmanager_config_last_reload_successful` (1/0).
    pub reload_ok: AtomicU64,
    /// `strata_notifier_notifications_acknowledged_total`: repeat notifications skipped
    /// because the group is acknowledged.
    pub acknowledged: AtomicU64,
    /// `strata_notifier_acknowledgements_forwarded_total`: acknowledgements delivered to
    /// PagerDuty / Opsgenie integrations.
    pub acks_forwarded: AtomicU64,
}

type GroupId = (String, String);

/// A group and its task.
type GroupEntry = (Arc<Group>, JoinHandle<()>);

/// The notifier.
pub struct Notifier {
    loaded: RwLock<Arc<Loaded>>,
    path: PathBuf,
    alerts: Mutex<HashMap<u64, Alert>>,
    groups: Mutex<HashMap<GroupId, GroupEntry>>,
    /// Silences.
    pub silences: Arc<Silences>,
    /// Acknowledgements of alert groups.
    pub acks: Arc<Acks>,
    nflog: Arc<Nflog>,
    cluster: OnceLock<Arc<Peer>>,
    /// `--web.external-url`.
    pub external_url: String,
    /// Start time (ms), `/api/v2/status` `uptime`.
    pub started_ms: i64,
    /// Counters.
    pub metrics: NotifierMetrics,
}

impl Notifier {
    /// Loads the configuration and the persisted silences and log.
    pub fn open(opts: NotifierOptions) -> Result<Arc<Notifier>, String> {
        let loaded = Loaded::load(&opts.config_file)?;
        std::fs::create_dir_all(&opts.state_dir)
            .map_err(|e| format!("creating {}: {e}", opts.state_dir.display()))?;
        let silences = Silences::open(
            Some(opts.state_dir.join("silences.json")),
            DEFAULT_RETENTION_MS,
        )?;
        let nflog = Nflog::open(
            Some(opts.state_dir.join("nflog.json")),
            DEFAULT_RETENTION_MS,
        )?;
        let acks = Acks::open(
            Some(opts.state_dir.join("acks.json")),
            DEFAULT_ACK_RETENTION_MS,
        )?;
        let metrics = NotifierMetrics::default();
        metrics.reload_ok.store(1, Ordering::Relaxed);
        Ok(Arc::new(Notifier {
            loaded: RwLock::new(Arc::new(loaded)),
            path: opts.config_file,
            alerts: Mutex::new(HashMap::new()),
            groups: Mutex::new(HashMap::new()),
            silences: Arc::new(silences),
            acks: Arc::new(acks),
            nflog: Arc::new(nflog),
            cluster: OnceLock::new(),
            external_url: opts.external_url,
            started_ms: now_ms(),
            metrics,
        }))
    }

    /// Joins the cluster of `opts`: silences, the notification log and acknowledgements are gossiped with
    /// the peers until `stop` turns true, and notifications wait for this node's turn.
    pub async fn join_cluster(
        &self,
        opts: &ClusterOptions,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<Arc<Peer>, ClusterError> {
        let shared = cluster::Shared {
            silences: self.silences.clone(),
            nflog: self.nflog.clone(),
            acks: self.acks.clone(),
        };
        let peer = cluster::join(opts, shared, stop).await?;
        let _ = self.cluster.set(peer.clone());
        Ok(peer)
    }

    /// This node in its cluster (`None`: clustering disabled).
    pub fn cluster(&self) -> Option<&Arc<Peer>> {
        self.cluster.get()
    }

    /// The current configuration.
    pub fn loaded(&self) -> Arc<Loaded> {
        self.loaded.read().clone()
    }

    /// The configuration file.
    pub fn config_path(&self) -> &Path {
        &self.path
    }

    /// Reads and checks the configuration file without applying it; a failure is counted
    /// in `alertmanager_config_last_reload_successful`.
    pub fn load_config(&self) -> Result<Loaded, String> {
        Loaded::load(&self.path).inspect_err(|_| {
            self.metrics.reload_ok.store(0, Ordering::Relaxed);
        })
    }

    /// Re-reads the configuration file. On error the running configuration stays.
    pub async fn reload(self: &Arc<Self>) -> Result<(), String> {
        let l = self.load_config()?;
        self.apply(l).await;
        Ok(())
    }

    /// Switches to a loaded configuration. When the file changed, the aggregation groups
    /// are stopped (in-flight sends cancelled, as Alertmanager cancels their context) and
    /// rebuilt from the alert store; the notification log keeps receivers from being
    /// notified twice.
    pub async fn apply(self: &Arc<Self>, loaded: Loaded) {
        self.metrics.reload_ok.store(1, Ordering::Relaxed);
        let unchanged = self.loaded().original == loaded.original;
        *self.loaded.write() = Arc::new(loaded);
        if unchanged {
            return;
        }
        let old: Vec<JoinHandle<()>> = self.groups.lock().drain().map(|(_, (_, h))| h).collect();
        for h in &old {
            h.abort();
        }
        for h in old {
            let _ = h.await;
        }
        let now = now_ms();
        let store = self.alerts.lock();
        for a in store.values() {
            self.route(a.clone(), now);
        }
    }

    /// Adds or updates alerts (already validated), as Alertmanager's alert store `Put`:
    /// merged, stored and routed under one lock, so groups see updates in store order.
    pub fn put(self: &Arc<Self>, alerts: Vec<Alert>) {
        let now = now_ms();
        let mut store = self.alerts.lock();
        for mut a in alerts {
            if a.resolved(now) {
                self.metrics
                    .received_resolved
                    .fetch_add(1, Ordering::Relaxed);
            } else {
                self.metrics.received_firing.fetch_add(1, Ordering::Relaxed);
            }
            let fp = a.fingerprint();
            if let Some(old) = store.get(&fp) {
                // Merge when the activity ranges overlap.
                let overlap = (a.ends_at > old.starts_at && a.ends_at < old.ends_at)
                    || (a.starts_at > old.starts_at && a.starts_at < old.ends_at);
                if overlap {
                    let mut m = old.clone();
                    m.merge(a, now);
                    a = m;
                }
            }
            store.insert(fp, a.clone());
            self.route(a, now);
        }
    }

    /// Puts `alert` into the aggregation group of every route it matches (the caller holds
    /// the store lock).
    fn route(self: &Arc<Self>, alert: Alert, now: i64) {
        let loaded = self.loaded();
        let mut groups = self.groups.lock();
        for route in loaded.config.route.matching(&alert.labels) {
            let labels = group_labels(route, &alert.labels);
            let id = (route.id().to_owned(), labels_string(&labels));
            let g = match groups.get(&id) {
                Some((g, _)) => g.clone(),
                None => {
                    let g = Arc::new(Group::new(route, labels));
                    let h = tokio::spawn(self.clone().run_group(id.clone(), g.clone()));
                    groups.insert(id.clone(), (g.clone(), h));
                    g
                }
            };
            g.insert(alert.clone(), now);
        }
    }

    /// A group's life: flush after `group_wait`, then every `group_interval`, until empty.
    async fn run_group(self: Arc<Self>, id: GroupId, g: Arc<Group>) {
        let mut next = tokio::time::Instant::now() + ms(g.timing.wait);
        loop {
            tokio::select! {
                biased;
                () = g.stop.notified() => return,
                () = tokio::time::sleep_until(next) => {}
                () = g.wake.notified() => {}
            }
            next = tokio::time::Instant::now() + ms(g.timing.interval);
            g.flushed.store(true, Ordering::Release);
            self.flush(&g).await;
            let mut groups = self.groups.lock();
            if g.is_empty() {
                if groups.get(&id).is_some_and(|(cur, _)| Arc::ptr_eq(cur, &g)) {
                    groups.remove(&id);
                }
                return;
            }
        }
    }

    /// Notifies the receiver's integrations about the group, as the pipeline does.
    async fn flush(self: &Arc<Self>, g: &Arc<Group>) {
        // Nothing is sent before the gossip settled (ClusterGossipSettleStage).
        if let Some(c) = self.cluster() {
            c.wait_ready().await;
        }
        let now = now_ms();
        let alerts = g.snapshot();
        if alerts.is_empty() {
            return;
        }
        let loaded = self.loaded();
        let cfg = &loaded.config;
        let in_interval = |n: &String| cfg.time_interval(n).is_some_and(|t| t.contains(now));
        let time_muted = g.mute.iter().any(in_interval)
            || (!g.active.is_empty() && !g.active.iter().any(in_interval));
        let mut all_ok = true;
        if !time_muted {
            let inhibition = self.inhibition(now);
            let keep: Vec<Alert> = alerts
                .iter()
                .filter(|a| {
                    self.silences.silenced_by(&a.labels, now).is_empty()
                        && inhibition.inhibited_by(&a.labels).is_empty()
                })
                .cloned()
                .collect();
            // Everything muted: nothing is sent and the log is left as it is (the mute
            // stages end the pipeline), so lifting a silence does not page again.
            if !keep.is_empty() {
                all_ok = self.notify_all(g, &loaded, keep, now).await;
            }
        }
        if all_ok {
            g.delete_resolved(&alerts, now);
        }
    }

    /// Dedup, send and log for every integration of the group's receiver.
    async fn notify_all(
        self: &Arc<Self>,
        g: &Arc<Group>,
        loaded: &Arc<Loaded>,
        keep: Vec<Alert>,
        now: i64,
    ) -> bool {
        let Some(integrations) = loaded.integrations.get(&g.receiver).cloned() else {
            return true;
        };
        let firing: BTreeSet<u64> = keep
            .iter()
            .filter(|a| !a.resolved(now))
            .map(Alert::fingerprint)
            .collect();
        let resolved: BTreeSet<u64> = keep
            .iter()
            .filter(|a| a.resolved(now))
            .map(Alert::fingerprint)
            .collect();
        let keep = Arc::new(keep);
        let (firing, resolved) = (Arc::new(firing), Arc::new(resolved));
        // This node's turn in the cluster (ClusterWaitStage); the send's deadline is
        // pushed back as much, as Alertmanager's timeout function does.
        let wait = self.cluster().map_or(Duration::ZERO, |c| c.wait());
        let deadline = tokio::time::Instant::now() + ms(g.timing.interval.max(5_000)) + wait;
        let mut tasks = JoinSet::new();
        for i in 0..integrations.len() {
            let (me, g, loaded, keep, integrations, firing, resolved) = (
                self.clone(),
                g.clone(),
                loaded.clone(),
                keep.clone(),
                integrations.clone(),
                firing.clone(),
                resolved.clone(),
            );
            tasks.spawn(async move {
                let Some(integ) = integrations.get(i) else {
                    return true;
                };
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                // DedupStage, after the wait: the log holds what the nodes before this one
                // sent meanwhile.
                let key = format!("{}|{}/{}/{}", g.key, g.receiver, integ.name(), integ.index);
                let entry = me.nflog.get(&key);
                let send_resolved = integ.send_resolved();
                if !nflog::needs_update(
                    entry.as_ref(),
                    &firing,
                    &resolved,
                    g.timing.repeat,
                    send_resolved,
                    now,
                ) {
                    return true;
                }
                // An acknowledged, unchanged group: the repeat is skipped but logged, so
                // the count is one per repeat interval and the repeats resume one
                // repeat interval after the acknowledgement ends.
                let acked = me.ack_skips(&g, entry.as_ref(), &firing, &resolved, now);
                let mut log = nflog::Entry {
                    firing: (*firing).clone(),
                    resolved: (*resolved).clone(),
                    at: now,
                };
                let sent: Vec<Alert> = if send_resolved {
                    keep.to_vec()
                } else {
                    keep.iter().filter(|a| !a.resolved(now)).cloned().collect()
                };
                if acked {
                    me.metrics.acknowledged.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(receiver = %g.receiver, group = %g.key, "repeat skipped: acknowledged");
                } else if !sent.is_empty() {
                    let n = Notification {
                        receiver: &g.receiver,
                        group_key: &g.key,
                        group_labels: &g.labels,
                        alerts: &sent,
                        external_url: &me.external_url,
                        now,
                    };
                    if let Err(e) = integ
                        .notify(&n, &loaded.renderer, deadline, &me.metrics.send)
                        .await
                    {
                        tracing::warn!(
                            receiver = %g.receiver,
                            integration = %format!("{}[{}]", integ.name(), integ.index),
                            group = %g.key,
                            error = %e,
                            "notify failed"
                        );
                        return false;
                    }
                }
                // Logged when sent, as Alertmanager's SetNotifiesStage.
                log.at = now_ms();
                if let Err(e) = me.nflog.log(&key, log) {
                    tracing::warn!(error = %e, "writing the notification log failed");
                }
                true
            });
        }
        let mut ok = true;
        while let Some(r) = tasks.join_next().await {
            ok &= r.unwrap_or(false);
        }
        ok
    }

    /// The firing alerts that can inhibit, per rule, at `now`.
    pub fn inhibition(&self, now: i64) -> Inhibition {
        let loaded = self.loaded();
        let store = self.alerts.lock();
        let rules = loaded
            .config
            .inhibit_rules
            .iter()
            .map(|rule| {
                let sources = store
                    .values()
                    .filter(|s| {
                        !s.resolved(now)
                            && crate::notifier::config::matches_all(
                                rule.all_source_matchers(),
                                &s.labels,
                            )
                    })
                    .map(|s| (format!("{:016x}", s.fingerprint()), s.labels.clone()))
                    .collect();
                (rule.clone(), sources)
            })
            .collect();
        Inhibition { rules }
    }

    /// Active (not resolved) alerts of the store, in fingerprint order.
    pub fn active_alerts(&self, now: i64) -> Vec<Alert> {
        let store = self.alerts.lock();
        let mut v: Vec<(u64, Alert)> = store
            .iter()
            .filter(|(_, a)| !a.resolved(now))
            .map(|(fp, a)| (*fp, a.clone()))
            .collect();
        v.sort_by_key(|(fp, _)| *fp);
        v.into_iter().map(|(_, a)| a).collect()
    }

    /// The receivers an alert routes to, deduplicated in routing order.
    pub fn receivers_of(&self, labels: &LabelSet) -> Vec<String> {
        let loaded = self.loaded();
        let mut out: Vec<String> = Vec::new();
        for r in loaded.config.route.matching(labels) {
            if !out.iter().any(|x| x == r.receiver()) {
                out.push(r.receiver().to_owned());
            }
        }
        out
    }

    /// The aggregation groups: (group key, labels, receiver, active alerts), in group-key
    /// order.
    pub fn groups(&self, now: i64) -> Vec<(String, LabelSet, String, Vec<Alert>)> {
        let groups: Vec<Arc<Group>> = self
            .groups
            .lock()
            .values()
            .map(|(g, _)| g.clone())
            .collect();
        type Entry = (String, LabelSet, String, Vec<Alert>);
        let mut out: BTreeMap<(String, String), Entry> = BTreeMap::new();
        for g in groups {
            let mut alerts: Vec<Alert> = g
                .alerts
                .lock()
                .values()
                .filter(|a| !a.resolved(now))
                .cloned()
                .collect();
            if alerts.is_empty() {
                continue;
            }
            sort_alerts(&mut alerts);
            out.insert(
                (g.key.clone(), g.receiver.clone()),
                (g.key.clone(), g.labels.clone(), g.receiver.clone(), alerts),
            );
        }
        out.into_values().collect()
    }

    /// Periodic collection until `stop` turns true.
    pub async fn maintain(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(MAINTENANCE) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            let now = now_ms();
            self.alerts
                .lock()
                .retain(|_, a| a.ends_at > now - RESOLVED_KEPT_MS);
            self.silences.gc(now);
            self.acks.gc(now);
            self.nflog.gc(now);
        }
        let groups: Vec<GroupEntry> = self.groups.lock().drain().map(|(_, g)| g).collect();
        for (g, _) in groups {
            g.stop.notify_one();
        }
    }
}

/// The inhibiting alerts of every rule at one moment.
pub struct Inhibition {
    rules: Vec<(
        crate::notifier::config::InhibitRule,
        Vec<(String, LabelSet)>,
    )>,
}

impl Inhibition {
    /// Fingerprints (hex) of the firing alerts that inhibit an alert with `labels`.
    pub fn inhibited_by(&self, labels: &LabelSet) -> Vec<String> {
        let mut out = BTreeSet::new();
        for (rule, sources) in &self.rules {
            if !crate::notifier::config::matches_all(rule.all_target_matchers(), labels) {
                continue;
            }
            for (fp, src) in sources {
                if src != labels && rule.inhibits(src, labels) {
                    out.insert(fp.clone());
                }
            }
        }
        out.into_iter().collect()
    }
}

fn ms(v: i64) -> Duration {
    Duration::from_millis(u64::try_from(v).unwrap_or(0))
}
