//! The scrape manager: one scrape pool per `scrape_configs` job, fed by that job's service
//! discovery providers, running one [`scrape_loop`](super::scrape_loop) per target.
//!
//! Reloads ([`ScrapeManager::apply`]) keep everything that did not change: a job whose
//! configuration is identical keeps its providers and loops untouched; a changed job gets new
//! settings (pushed to its running loops) and new providers, and only targets whose labels or
//! URL changed are stopped (with staleness markers) or started. Until every new provider has
//! reported once, the pool keeps its previous targets, so a reload never drops a scrape.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use strata_config::{Config, ScrapeConfig};
use strata_storage::Db;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::scrape_loop::{self, JobSettings, StopMode, TargetState};
use super::target::{Populated, TargetGroup, populate};
use crate::discovery::{self, Update};
use crate::error::IngestError;
use crate::http_client::HttpClient;
use crate::relabel::LabelSet;

/// What a pool shows to the targets API.
#[derive(Default)]
pub struct PoolStatus {
    pub active: Vec<Arc<TargetState>>,
    /// Discovered labels of targets that relabeling dropped (at most `keep_dropped_targets`
    /// when set).
    pub dropped: Vec<LabelSet>,
    /// How many targets were dropped in all.
    pub dropped_count: usize,
}

enum PoolMsg {
    /// New providers of `generation` (`providers` of them) replace the old ones.
    Reset {
        generation: u64,
        providers: usize,
    },
    Stop(StopMode),
}

struct Pool {
    cfg: ScrapeConfig,
    settings: watch::Sender<Arc<JobSettings>>,
    msgs: mpsc::UnboundedSender<PoolMsg>,
    updates: mpsc::Sender<Update>,
    providers: Vec<JoinHandle<()>>,
    generation: u64,
    status: Arc<RwLock<PoolStatus>>,
    runner: JoinHandle<()>,
}

/// Runs every scrape pool.
pub struct ScrapeManager {
    db: Arc<Db>,
    pools: Mutex<HashMap<String, Pool>>,
    order: Mutex<Vec<String>>,
    /// `--enable-feature=type-and-unit-labels`.
    type_and_unit_labels: bool,
}

fn settings_for(
    cfg: &ScrapeConfig,
    type_and_unit_labels: bool,
) -> Result<JobSettings, IngestError> {
    let client = HttpClient::new(&cfg.http_client, &cfg.job_name)?;
    Ok(JobSettings {
        cfg: Arc::new(cfg.clone()),
        client,
        accept: accept_header(cfg),
        type_and_unit_labels,
    })
}

/// The `Accept` header of a job, as Prometheus's `acceptHeader` builds it: the protocols of
/// `scrape_protocols` in order (protobuf first by default when `scrape_native_histograms`
/// is on), the first with weight `q=0.(k+1)` for the `k` protocols Prometheus knows, each
/// next one less, the 1.0.0 text formats with the job's `escaping` scheme, then `*/*`.
fn accept_header(cfg: &ScrapeConfig) -> String {
    use strata_config::ScrapeProtocol;
    const KNOWN_PROTOCOLS: usize = 5;
    let escaping = match cfg.metric_name_escaping_scheme {
        strata_config::NameEscapingScheme::AllowUtf8 => "allow-utf-8",
        strata_config::NameEscapingScheme::Underscores => "underscores",
        strata_config::NameEscapingScheme::Dots => "dots",
        strata_config::NameEscapingScheme::Values => "values",
    };
    let mut weight = KNOWN_PROTOCOLS + 1;
    let mut accept = String::new();
    for p in &cfg.scrape_protocols {
        accept.push_str(p.header_media_type());
        if matches!(
            p,
            ScrapeProtocol::PrometheusText1_0_0 | ScrapeProtocol::OpenMetricsText1_0_0
        ) {
            accept.push_str(";escaping=");
            accept.push_str(escaping);
        }
        accept.push_str(&format!(";q=0.{weight},"));
        weight = weight.saturating_sub(1);
    }
    accept.push_str(&format!("*/*;q=0.{weight}"));
    accept
}

impl ScrapeManager {
    pub fn new(db: Arc<Db>) -> Arc<Self> {
        Arc::new(ScrapeManager {
            db,
            pools: Mutex::new(HashMap::new()),
            order: Mutex::new(Vec::new()),
            type_and_unit_labels: false,
        })
    }

    /// With `--enable-feature=type-and-unit-labels`: every scraped series carries
    /// `__type__` and `__unit__` labels from its family's `# TYPE` / `# UNIT` metadata.
    pub fn with_type_and_unit_labels(self: Arc<Self>, on: bool) -> Arc<Self> {
        match Arc::try_unwrap(self) {
            Ok(mut m) => {
                m.type_and_unit_labels = on;
                Arc::new(m)
            }
            Err(shared) => shared,
        }
    }

    /// Applies a configuration (at start and on reload). Every job's HTTP client is built
    /// first: if one fails, nothing changes and the error is returned.
    pub fn apply(&self, config: &Config) -> Result<(), IngestError> {
        let mut new_settings = HashMap::new();
        for cfg in &config.scrape_configs {
            new_settings.insert(
                cfg.job_name.clone(),
                settings_for(cfg, self.type_and_unit_labels)?,
            );
        }
        let mut pools = self.pools.lock();
        let wanted: HashSet<&str> = config
            .scrape_configs
            .iter()
            .map(|c| c.job_name.as_str())
            .collect();
        let gone: Vec<String> = pools
            .keys()
            .filter(|k| !wanted.contains(k.as_str()))
            .cloned()
            .collect();
        for name in gone {
            if let Some(p) = pools.remove(&name) {
                for h in &p.providers {
                    h.abort();
                }
                let _ = p.msgs.send(PoolMsg::Stop(StopMode::Vanished));
            }
        }
        for cfg in &config.scrape_configs {
            let Some(settings) = new_settings.remove(&cfg.job_name) else {
                continue;
            };
            match pools.get_mut(&cfg.job_name) {
                Some(p) if p.cfg == *cfg => {}
                Some(p) => {
                    for h in &p.providers {
                        h.abort();
                    }
                    p.generation += 1;
                    p.cfg = cfg.clone();
                    p.settings.send_replace(Arc::new(settings));
                    let _ = p.msgs.send(PoolMsg::Reset {
                        generation: p.generation,
                        providers: discovery::provider_count(&cfg.service_discovery),
                    });
                    p.providers = discovery::spawn(
                        &cfg.service_discovery,
                        &cfg.job_name,
                        p.generation,
                        p.updates.clone(),
                    )?;
                }
                None => {
                    let pool = self.start_pool(cfg, settings)?;
                    pools.insert(cfg.job_name.clone(), pool);
                }
            }
        }
        *self.order.lock() = config
            .scrape_configs
            .iter()
            .map(|c| c.job_name.clone())
            .collect();
        Ok(())
    }

    fn start_pool(&self, cfg: &ScrapeConfig, settings: JobSettings) -> Result<Pool, IngestError> {
        let (settings_tx, settings_rx) = watch::channel(Arc::new(settings));
        let (msgs_tx, msgs_rx) = mpsc::unbounded_channel();
        let (upd_tx, upd_rx) = mpsc::channel(64);
        let status = Arc::new(RwLock::new(PoolStatus::default()));
        let _ = msgs_tx.send(PoolMsg::Reset {
            generation: 1,
            providers: discovery::provider_count(&cfg.service_discovery),
        });
        let providers = discovery::spawn(&cfg.service_discovery, &cfg.job_name, 1, upd_tx.clone())?;
        let runner = tokio::spawn(run_pool(
            cfg.job_name.clone(),
            settings_rx,
            msgs_rx,
            upd_rx,
            self.db.clone(),
            status.clone(),
        ));
        Ok(Pool {
            cfg: cfg.clone(),
            settings: settings_tx,
            msgs: msgs_tx,
            updates: upd_tx,
            providers,
            generation: 1,
            status,
            runner,
        })
    }

    /// Every pool's status, in configuration order.
    pub fn pools(&self) -> Vec<(String, Arc<RwLock<PoolStatus>>)> {
        let pools = self.pools.lock();
        self.order
            .lock()
            .iter()
            .filter_map(|n| pools.get(n).map(|p| (n.clone(), p.status.clone())))
            .collect()
    }

    /// Stops every loop without staleness markers and waits for them (server shutdown).
    pub async fn shutdown(&self) {
        let runners: Vec<JoinHandle<()>> = {
            let mut pools = self.pools.lock();
            pools
                .drain()
                .map(|(_, p)| {
                    for h in &p.providers {
                        h.abort();
                    }
                    let _ = p.msgs.send(PoolMsg::Stop(StopMode::Shutdown));
                    p.runner
                })
                .collect()
        };
        for r in runners {
            let _ = r.await;
        }
    }
}

struct RunningLoop {
    state: Arc<TargetState>,
    stop: watch::Sender<StopMode>,
    handle: JoinHandle<()>,
}

async fn run_pool(
    job: String,
    settings: watch::Receiver<Arc<JobSettings>>,
    mut msgs: mpsc::UnboundedReceiver<PoolMsg>,
    mut updates: mpsc::Receiver<Update>,
    db: Arc<Db>,
    status: Arc<RwLock<PoolStatus>>,
) {
    let mut generation = 0;
    let mut waiting: HashSet<usize> = HashSet::new();
    let mut groups: HashMap<usize, Vec<TargetGroup>> = HashMap::new();
    let mut loops: HashMap<u64, RunningLoop> = HashMap::new();
    loop {
        tokio::select! {
            biased;
            m = msgs.recv() => match m {
                Some(PoolMsg::Reset { generation: g, providers }) => {
                    generation = g;
                    waiting = (0..providers).collect();
                    groups.clear();
                }
                Some(PoolMsg::Stop(mode)) => {
                    stop_all(&mut loops, mode).await;
                    return;
                }
                None => {
                    stop_all(&mut loops, StopMode::Shutdown).await;
                    return;
                }
            },
            u = updates.recv() => {
                let Some(u) = u else { continue };
                if u.generation != generation {
                    continue;
                }
                waiting.remove(&u.provider);
                groups.insert(u.provider, u.groups);
                // Take whatever else is queued before syncing once.
                while let Ok(u) = updates.try_recv() {
                    if u.generation == generation {
                        waiting.remove(&u.provider);
                        groups.insert(u.provider, u.groups);
                    }
                }
                if waiting.is_empty() {
                    sync(&job, &settings, &groups, &mut loops, &db, &status).await;
                }
            }
        }
    }
}

async fn stop_all(loops: &mut HashMap<u64, RunningLoop>, mode: StopMode) {
    for l in loops.values() {
        let _ = l.stop.send(mode);
    }
    for (_, l) in loops.drain() {
        let _ = l.handle.await;
    }
}

async fn sync(
    job: &str,
    settings: &watch::Receiver<Arc<JobSettings>>,
    groups: &HashMap<usize, Vec<TargetGroup>>,
    loops: &mut HashMap<u64, RunningLoop>,
    db: &Arc<Db>,
    status: &RwLock<PoolStatus>,
) {
    let s = settings.borrow().clone();
    let cfg = &s.cfg;
    let mut active = Vec::new();
    let mut dropped = Vec::new();
    let mut providers: Vec<&usize> = groups.keys().collect();
    providers.sort();
    for p in providers {
        for g in &groups[p] {
            for t in &g.targets {
                match populate(g, t, cfg) {
                    Ok(Populated::Active(t)) => active.push(t),
                    Ok(Populated::Dropped(d)) => dropped.push(d),
                    Err(e) => {
                        tracing::warn!(job, source = %g.source, error = %e, "invalid target");
                    }
                }
            }
        }
    }
    if cfg.target_limit > 0 && active.len() as u64 > cfg.target_limit {
        tracing::error!(
            job,
            targets = active.len(),
            limit = cfg.target_limit,
            "target_limit exceeded: no target of the job is scraped"
        );
        active.clear();
    }
    let mut want: HashMap<u64, super::target::Target> = HashMap::new();
    for t in active {
        want.entry(t.hash()).or_insert(t);
    }
    let gone: Vec<u64> = loops
        .keys()
        .filter(|h| !want.contains_key(h))
        .copied()
        .collect();
    let mut stopping = Vec::new();
    for h in gone {
        if let Some(l) = loops.remove(&h) {
            let _ = l.stop.send(StopMode::Vanished);
            stopping.push(l.handle);
        }
    }
    for (h, t) in want {
        if loops.contains_key(&h) {
            continue;
        }
        let state = Arc::new(TargetState {
            job: job.to_owned(),
            target: t,
            health: Default::default(),
            metadata: Default::default(),
        });
        let (stop_tx, stop_rx) = watch::channel(StopMode::Running);
        let handle = tokio::spawn(scrape_loop::run(
            state.clone(),
            settings.clone(),
            db.clone(),
            stop_rx,
        ));
        loops.insert(
            h,
            RunningLoop {
                state,
                stop: stop_tx,
                handle,
            },
        );
    }
    let mut act: Vec<Arc<TargetState>> = loops.values().map(|l| l.state.clone()).collect();
    act.sort_by(|a, b| a.target.labels.cmp(&b.target.labels));
    let dropped_count = dropped.len();
    if cfg.keep_dropped_targets > 0 {
        dropped.truncate(cfg.keep_dropped_targets as usize);
    }
    {
        let mut st = status.write();
        st.active = act;
        st.dropped = dropped;
        st.dropped_count = dropped_count;
    }
    for h in stopping {
        let _ = h.await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn job(extra: &str) -> ScrapeConfig {
        let text = format!(
            "scrape_configs:\n  - job_name: j\n{extra}    static_configs:\n      - targets: ['h:1']\n"
        );
        Config::from_yaml_str(&text, "test")
            .unwrap()
            .scrape_configs
            .remove(0)
    }

    #[test]
    fn accept_header_is_prometheus_s() {
        assert_eq!(
            accept_header(&job("")),
            "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
        );
        // Native histograms: protobuf first.
        assert_eq!(
            accept_header(&job("    scrape_native_histograms: true\n")),
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
        );
        assert_eq!(
            accept_header(&job(
                "    scrape_protocols: [PrometheusText1.0.0]\n    metric_name_validation_scheme: legacy\n"
            )),
            "text/plain;version=1.0.0;escaping=underscores;q=0.6,*/*;q=0.5"
        );
    }
}
