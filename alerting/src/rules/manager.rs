//! The rule manager: loads the groups of `rule_files`, runs one evaluation task per group
//! on its aligned schedule, swaps groups on reload (state of unchanged groups kept,
//! staleness markers for removed ones), and restores `for` state from `ALERTS_FOR_STATE`
//! after a start, as Prometheus's `RestoreForState` does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use strata_config::Config;
use strata_storage::Matcher;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::Result;
use crate::rules::file::{RuleFile, expand_globs, load_files};
use crate::rules::group::{Group, RuleContext, now_ms};

/// Manager settings (flags).
#[derive(Clone, Debug)]
pub struct ManagerOptions {
    /// `--rules.alert.for-outage-tolerance` (ms).
    pub outage_tolerance: i64,
    /// `--rules.alert.for-grace-period` (ms).
    pub grace_period: i64,
}

impl Default for ManagerOptions {
    fn default() -> Self {
        ManagerOptions {
            outage_tolerance: 3_600_000,
            grace_period: 600_000,
        }
    }
}

struct Running {
    group: Arc<Group>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Runs the rule groups.
pub struct RuleManager {
    ctx: Arc<RuleContext>,
    opts: ManagerOptions,
    running: Mutex<Vec<Running>>,
    /// True until the first load: groups of the first load restore `for` state.
    first: Mutex<bool>,
}

impl RuleManager {
    /// A manager evaluating with `ctx`.
    pub fn new(ctx: Arc<RuleContext>, opts: ManagerOptions) -> Arc<RuleManager> {
        Arc::new(RuleManager {
            ctx,
            opts,
            running: Mutex::new(Vec::new()),
            first: Mutex::new(true),
        })
    }

    /// The evaluation context.
    pub fn context(&self) -> &Arc<RuleContext> {
        &self.ctx
    }

    /// Loads and validates the rule files of `config` without applying them.
    pub fn load(config: &Config) -> Result<Vec<RuleFile>> {
        load_files(&expand_globs(&config.rule_files)?)
    }

    /// Replaces the running groups with those of `files` (already validated). Old group
    /// tasks are stopped and awaited first (an evaluation in progress finishes), so the
    /// state taken over is whole.
    pub async fn apply(self: &Arc<Self>, config: &Config, files: Vec<RuleFile>) {
        *self.ctx.external_labels.write() = config
            .global
            .external_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let interval = config.global.evaluation_interval.as_millis() as i64;
        let offset = config.global.rule_query_offset.as_millis() as i64;
        let restore = std::mem::replace(&mut *self.first.lock(), false);
        let running: Vec<Running> = self.running.lock().drain(..).collect();
        let mut old: HashMap<(String, String), Arc<Group>> = HashMap::new();
        for r in running {
            let _ = r.stop.send(true);
            let _ = r.task.await;
            old.insert(r.group.key(), r.group);
        }
        let mut next = Vec::new();
        for f in files {
            for def in f.groups {
                let g = Arc::new(Group::new(&f.path, def, interval, offset));
                let mut group_restore = restore;
                if let Some(o) = old.remove(&g.key()) {
                    let gone = g.copy_state_from(&o);
                    g.write_stale(&self.ctx, gone, now_ms());
                    group_restore = false;
                }
                if !group_restore {
                    for r in &g.rules {
                        r.state.lock().alerts.restored = true;
                    }
                }
                let (stop, rx) = watch::channel(false);
                let task = tokio::spawn(run_group(self.clone(), g.clone(), rx, group_restore));
                next.push(Running {
                    group: g,
                    stop,
                    task,
                });
            }
        }
        let now = now_ms();
        for (_, o) in old {
            o.mark_stale(&self.ctx, now);
        }
        tracing::info!(groups = next.len(), "rule groups loaded");
        *self.running.lock() = next;
    }

    /// The running groups in file and definition order.
    pub fn groups(&self) -> Vec<Arc<Group>> {
        self.running
            .lock()
            .iter()
            .map(|r| r.group.clone())
            .collect()
    }

    /// Stops every group.
    pub async fn shutdown(&self) {
        let running: Vec<Running> = self.running.lock().drain(..).collect();
        for r in running {
            let _ = r.stop.send(true);
            let _ = r.task.await;
        }
    }

    /// Prometheus's `RestoreForState` for one group, after its first evaluation at `ts`.
    async fn restore(&self, g: &Group, ts: i64) {
        for rule in g.rules.iter().filter(|r| r.def.alert) {
            let hold = rule.def.hold;
            if hold < self.opts.grace_period {
                rule.state.lock().alerts.restored = true;
                continue;
            }
            // Raw samples: the last one may be a staleness marker (the alert resolved
            // before the restart), which means there is nothing to restore.
            let matchers = [
                Matcher::equal("__name__", "ALERTS_FOR_STATE"),
                Matcher::equal("alertname", rule.def.name.as_str()),
            ];
            let found = match self
                .ctx
                .db
                .select(&matchers, ts - self.opts.outage_tolerance, ts)
                .await
            {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(alert = %rule.def.name, error = %e, "restoring alert state failed");
                    Vec::new()
                }
            };
            let mut st = rule.state.lock();
            for a in st.alerts.alerts.values_mut() {
                let Some((down_at, v)) = found
                    .iter()
                    .find(|s| {
                        s.labels.len() == a.labels.len() + 1
                            && a.labels
                                .iter()
                                .all(|(k, v)| s.labels.get(k) == Some(v.as_str()))
                    })
                    .and_then(|s| s.samples.last().copied())
                else {
                    continue;
                };
                if strata_storage::is_stale(v) {
                    continue;
                }
                let mut active_at = (v as i64) * 1000;
                let remaining = hold - (down_at - active_at);
                if remaining <= 0 {
                    // It was firing already: keep the original activeAt.
                } else if remaining < self.opts.grace_period {
                    active_at = ts + self.opts.grace_period - hold;
                } else {
                    active_at += ts - down_at;
                }
                tracing::info!(alert = %rule.def.name, labels = ?a.labels, active_at, "restored for state");
                a.active_at = active_at;
            }
            st.alerts.restored = true;
        }
    }
}

async fn run_group(
    mgr: Arc<RuleManager>,
    g: Arc<Group>,
    mut stop: watch::Receiver<bool>,
    mut restore: bool,
) {
    let mut next = g.next_eval_after(now_ms());
    loop {
        let wait = (next - now_ms()).max(0) as u64;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        g.eval(&mgr.ctx, next).await;
        if restore {
            mgr.restore(&g, next).await;
            restore = false;
        }
        next += g.interval;
        let now = now_ms();
        if next <= now {
            let missed = (now - next) / g.interval + 1;
            tracing::warn!(group = %g.def.name, missed, "rule group evaluation took longer than its interval");
            next += missed * g.interval;
        }
    }
}
