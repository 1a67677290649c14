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
    // Prometheus's weights: the first protocol gets q=0.(n+1), each next one less.
    let mut weight = cfg.scrape_protocols.len() + 1;
    let mut accept = String::new();
    for p in &cfg.scrape_protocols {
        accept.push_str(&format!("{};q=0.{weight},", p.header_media_type()));
        weight -= 1;
    }
    accept.push_str(&format!("*/*;q=0.{weight}"));
    Ok(JobSettings {
        cfg: Arc::new(cfg.clone()),
        client,
        accept,
        type_and_unit_labels,
    })
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
