//! A rule group: its rules with their state, evaluation at one timestamp (recording results
//! and `ALERTS*` appended to storage, staleness markers for series that vanished, alerts
//! handed to the sink), and the aligned evaluation schedule of Prometheus
//! (`EvalTimestamp`: a per-group offset inside the interval).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use strata_engine::{Engine, PromValue, QueryParams};
use strata_grammar::Expr;
use strata_storage::{Appender, Db, Labels, SeriesSamples};

use crate::format::table_link;
use crate::rules::alert::{ActiveAlerts, Candidate, LabelMap, OutAlert};
use crate::rules::file::{GroupDef, RuleDef};
use crate::template::{self, QueryRunner, QuerySample, TemplateData};

pub use strata_storage::STALE_NAN;

/// Receives the alerts to send (the Alertmanager sender, later the built-in notifier).
pub trait AlertSink: Send + Sync {
    /// Queues alerts for delivery; never blocks on the network.
    fn send(&self, alerts: Vec<OutAlert>);
}

/// What every group evaluates with.
pub struct RuleContext {
    /// The engine.
    pub engine: Arc<Engine>,
    /// Where results go.
    pub db: Arc<Db>,
    /// `global.external_labels` (for `$externalLabels`).
    pub external_labels: RwLock<BTreeMap<String, String>>,
    /// `--web.external-url`, without a trailing slash.
    pub external_url: String,
    /// `--rules.alert.resend-delay` (ms).
    pub resend_delay: i64,
    /// Where alerts go.
    pub sinks: RwLock<Vec<Arc<dyn AlertSink>>>,
}

/// Health of a rule's last evaluation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Health {
    /// Not evaluated yet.
    #[default]
    Unknown,
    /// Last evaluation succeeded.
    Ok,
    /// Last evaluation failed.
    Err,
}

impl Health {
    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// Mutable state of a rule.
#[derive(Clone, Debug, Default)]
pub struct RuleState {
    /// Health.
    pub health: Health,
    /// Last error.
    pub last_error: Option<String>,
    /// Wall time of the last evaluation (ms).
    pub last_eval: Option<i64>,
    /// Duration of the last evaluation (s).
    pub eval_seconds: f64,
    /// Series written by the last evaluation (for staleness markers).
    pub series: HashSet<Labels>,
    /// Alerts (alerting rules).
    pub alerts: ActiveAlerts,
}

/// A rule with its state.
pub struct Rule {
    /// Definition.
    pub def: RuleDef,
    /// The expression as Prometheus re-prints it.
    pub query: String,
    /// State.
    pub state: Mutex<RuleState>,
}

/// Mutable state of a group.
#[derive(Clone, Debug, Default)]
pub struct GroupState {
    /// Wall time of the last evaluation (ms).
    pub last_eval: Option<i64>,
    /// Duration of the last evaluation (s).
    pub eval_seconds: f64,
    /// Rule evaluations so far (`prometheus_rule_evaluations_total`).
    pub evaluations: u64,
    /// Failed rule evaluations (`prometheus_rule_evaluation_failures_total`).
    pub failures: u64,
}

/// A loaded rule group.
pub struct Group {
    /// The file it came from.
    pub file: String,
    /// Definition.
    pub def: GroupDef,
    /// Evaluation interval (ms).
    pub interval: i64,
    /// Query offset (ms).
    pub query_offset: i64,
    /// Rules in order.
    pub rules: Vec<Rule>,
    /// State.
    pub state: Mutex<GroupState>,
}

impl Group {
    /// A group from its definition; `interval` and `query_offset` default to the global ones.
    pub fn new(file: &str, def: GroupDef, default_interval: i64, default_offset: i64) -> Group {
        let rules = def
            .rules
            .iter()
            .map(|r| Rule {
                query: r.expr.to_string(),
                def: r.clone(),
                state: Mutex::new(RuleState::default()),
            })
            .collect();
        Group {
            file: file.to_owned(),
            interval: def
                .interval
                .filter(|i| *i > 0)
                .unwrap_or(default_interval)
                .max(1),
            query_offset: def.query_offset.unwrap_or(default_offset),
            def,
            rules,
            state: Mutex::new(GroupState::default()),
        }
    }

    /// `(file, name)`: what identifies a group across reloads.
    pub fn key(&self) -> (String, String) {
        (self.file.clone(), self.def.name.clone())
    }

    /// The first aligned evaluation time strictly after `now` (ms).
    pub fn next_eval_after(&self, now: i64) -> i64 {
        let h = xxhash_rust::xxh3::xxh3_64(format!("{};{}", self.def.name, self.file).as_bytes());
        let offset = (h % self.interval as u64) as i64;
        let adj = now - offset;
        let base = adj - adj.rem_euclid(self.interval);
        base + offset + self.interval
    }

    /// Takes over the state of the same group before a reload (rules matched by name and
    /// position among equally named rules), as Prometheus's `CopyState`. Returns the series
    /// of old rules that have no successor, which the caller marks stale.
    pub fn copy_state_from(&self, old: &Group) -> Vec<Labels> {
        *self.state.lock() = old.state.lock().clone();
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let mut taken = vec![false; old.rules.len()];
        for r in &self.rules {
            let n = seen.entry(r.def.name.as_str()).or_default();
            let idx = *n;
            *n += 1;
            if let Some((i, o)) = old
                .rules
                .iter()
                .enumerate()
                .filter(|(_, o)| o.def.name == r.def.name && o.def.alert == r.def.alert)
                .nth(idx)
            {
                taken[i] = true;
                *r.state.lock() = o.state.lock().clone();
            }
        }
        old.rules
            .iter()
            .zip(taken)
            .filter(|(_, t)| !t)
            .flat_map(|(o, _)| o.state.lock().series.iter().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// Writes staleness markers at `ts` for `series` (outputs of rules a reload removed).
    pub fn write_stale(&self, ctx: &RuleContext, series: Vec<Labels>, ts: i64) {
        if series.is_empty() {
            return;
        }
        let batch: Vec<SeriesSamples> = series
            .into_iter()
            .map(|labels| SeriesSamples {
                histograms: Vec::new(),
                labels,
                samples: vec![(ts - self.query_offset, STALE_NAN)],
            })
            .collect();
        if let Err(e) = ctx.db.append(&batch) {
            tracing::warn!(group = %self.def.name, error = %e, "writing staleness markers failed");
        }
    }

    /// Evaluates every rule at `ts` (ms), in order.
    pub async fn eval(&self, ctx: &RuleContext, ts: i64) {
        let started = Instant::now();
        let mut failures = 0;
        for rule in &self.rules {
            if !self.eval_rule(ctx, rule, ts).await {
                failures += 1;
            }
        }
        let mut st = self.state.lock();
        st.evaluations += self.rules.len() as u64;
        st.failures += failures;
        st.last_eval = Some(now_ms());
        st.eval_seconds = started.elapsed().as_secs_f64();
    }

    /// Evaluates one rule; false when it failed.
    async fn eval_rule(&self, ctx: &RuleContext, rule: &Rule, ts: i64) -> bool {
        let started = Instant::now();
        let qts = ts - self.query_offset;
        let result = match query(&ctx.engine, &rule.def.expr, qts).await {
            Ok(samples) => {
                if rule.def.alert {
                    self.eval_alert(ctx, rule, ts, qts, samples)
                } else {
                    record(&rule.def, samples, self.def.limit)
                }
            }
            Err(e) => Err(e),
        };
        let mut err = None;
        match result {
            Ok(out) => {
                let stale: Vec<Labels> = {
                    let now: HashSet<&Labels> = out.iter().map(|(l, _)| l).collect();
                    let st = rule.state.lock();
                    st.series
                        .iter()
                        .filter(|l| !now.contains(l))
                        .cloned()
                        .collect()
                };
                let mut batch: Vec<SeriesSamples> = Vec::with_capacity(out.len() + stale.len());
                for (labels, v) in &out {
                    batch.push(SeriesSamples {
                        histograms: Vec::new(),
                        labels: labels.clone(),
                        samples: vec![(qts, *v)],
                    });
                }
                for labels in stale {
                    batch.push(SeriesSamples {
                        histograms: Vec::new(),
                        labels,
                        samples: vec![(qts, STALE_NAN)],
                    });
                }
                if !batch.is_empty()
                    && let Err(e) = ctx.db.append(&batch)
                {
                    tracing::warn!(group = %self.def.name, rule = %rule.def.name, error = %e, "appending rule results failed");
                }
                rule.state.lock().series = out.into_iter().map(|(l, _)| l).collect();
            }
            Err(e) => {
                tracing::warn!(group = %self.def.name, rule = %rule.def.name, error = %e, "rule evaluation failed");
                err = Some(e);
            }
        }
        if rule.def.alert && err.is_none() {
            let url = format!("{}{}", ctx.external_url, table_link(&rule.query));
            let alerts =
                rule.state
                    .lock()
                    .alerts
                    .to_send(ts, ctx.resend_delay, self.interval, &url);
            if !alerts.is_empty() {
                for s in ctx.sinks.read().iter() {
                    s.send(alerts.clone());
                }
            }
        }
        let mut st = rule.state.lock();
        st.health = if err.is_some() {
            Health::Err
        } else {
            Health::Ok
        };
        let ok = err.is_none();
        st.last_error = err;
        st.last_eval = Some(now_ms());
        st.eval_seconds = started.elapsed().as_secs_f64();
        ok
    }

    fn eval_alert(
        &self,
        ctx: &RuleContext,
        rule: &Rule,
        ts: i64,
        qts: i64,
        samples: Vec<(Labels, f64)>,
    ) -> Result<Vec<(Labels, f64)>, String> {
        let def = &rule.def;
        let external_labels = ctx.external_labels.read().clone();
        let runner = EngineQueries {
            engine: &ctx.engine,
            ts: qts,
        };
        let tname = format!("__alert_{}", def.name);
        let mut candidates = Vec::with_capacity(samples.len());
        for (labels, v) in samples {
            let lmap: LabelMap = labels
                .iter()
                .map(|l| (l.name.to_string(), l.value.to_string()))
                .collect();
            let data = TemplateData {
                labels: lmap.clone(),
                external_labels: external_labels.clone(),
                external_url: ctx.external_url.clone(),
                value: v,
            };
            let expand = |text: &str| match template::expand(&tname, text, &data, &runner) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(alert = %def.name, error = %e, "expanding alert template failed");
                    format!("<error expanding template: {e}>")
                }
            };
            let mut out = lmap.clone();
            out.remove("__name__");
            for (k, t) in &def.labels {
                let val = expand(t);
                if val.is_empty() {
                    out.remove(k);
                } else {
                    out.insert(k.clone(), val);
                }
            }
            out.insert("alertname".into(), def.name.clone());
            let annotations = def
                .annotations
                .iter()
                .map(|(k, t)| (k.clone(), expand(t)))
                .collect();
            candidates.push(Candidate {
                labels: out,
                annotations,
                value: v,
            });
        }
        let mut st = rule.state.lock();
        let out = st.alerts.update(
            &def.name,
            ts,
            candidates,
            def.hold,
            def.keep_firing_for,
            self.def.limit,
        )?;
        Ok(out
            .series
            .into_iter()
            .map(|(l, v)| (Labels::from_pairs(l), v))
            .collect())
    }

    /// Writes staleness markers for everything the group's rules wrote last (the group
    /// was removed by a reload or the server stops).
    pub fn mark_stale(&self, ctx: &RuleContext, ts: i64) {
        let mut batch = Vec::new();
        for r in &self.rules {
            for labels in r.state.lock().series.drain() {
                batch.push(SeriesSamples {
                    histograms: Vec::new(),
                    labels,
                    samples: vec![(ts - self.query_offset, STALE_NAN)],
                });
            }
        }
        if !batch.is_empty()
            && let Err(e) = ctx.db.append(&batch)
        {
            tracing::warn!(group = %self.def.name, error = %e, "writing staleness markers failed");
        }
    }
}

/// A recording rule's output: `__name__` set to the record name, rule labels applied.
fn record(
    def: &RuleDef,
    samples: Vec<(Labels, f64)>,
    limit: usize,
) -> Result<Vec<(Labels, f64)>, String> {
    let mut out = Vec::with_capacity(samples.len());
    let mut seen = HashSet::with_capacity(samples.len());
    for (labels, v) in samples {
        let mut m: BTreeMap<String, String> = labels
            .iter()
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect();
        m.insert("__name__".into(), def.name.clone());
        for (k, val) in &def.labels {
            if val.is_empty() {
                m.remove(k);
            } else {
                m.insert(k.clone(), val.clone());
            }
        }
        let l = Labels::from_pairs(m);
        if !seen.insert(l.clone()) {
            return Err(
                "vector contains metrics with the same labelset after applying rule labels".into(),
            );
        }
        out.push((l, v));
    }
    if limit > 0 && out.len() > limit {
        return Err(format!(
            "exceeded limit of {limit} with {} series",
            out.len()
        ));
    }
    Ok(out)
}

/// Runs a rule's expression at `t` (ms): a vector, or a scalar as one unlabelled sample.
pub async fn query(engine: &Engine, expr: &Expr, t: i64) -> Result<Vec<(Labels, f64)>, String> {
    let p = QueryParams {
        start: t,
        end: t,
        interval: 0,
        lookback: engine.options().lookback,
        max_source_resolution: strata_engine::AUTO_RESOLUTION,
    };
    match engine.run(expr, p, None).await {
        Ok(o) => match o.value {
            PromValue::Vector(v) => Ok(v.into_iter().map(|s| (s.labels, s.v)).collect()),
            PromValue::Scalar { v, .. } => Ok(vec![(Labels::default(), v)]),
            _ => Err("rule result is not a vector or scalar".into()),
        },
        Err(e) => Err(e.to_string()),
    }
}

/// The template `query` function on the engine, at the rule's evaluation time.
struct EngineQueries<'a> {
    engine: &'a Engine,
    ts: i64,
}

impl QueryRunner for EngineQueries<'_> {
    fn query(&self, q: &str) -> Result<Vec<QuerySample>, String> {
        let handle = tokio::runtime::Handle::try_current().map_err(|e| e.to_string())?;
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return Err("the query template function needs a multi-threaded runtime".into());
        }
        let expr = strata_grammar::parse(q).map_err(|e| e.to_string())?;
        let res =
            tokio::task::block_in_place(|| handle.block_on(query(self.engine, &expr, self.ts)))?;
        Ok(res
            .into_iter()
            .map(|(l, v)| QuerySample {
                labels: l
                    .iter()
                    .map(|l| (l.name.to_string(), l.value.to_string()))
                    .collect(),
                value: v,
            })
            .collect())
    }

    fn now(&self) -> f64 {
        self.ts as f64 / 1000.0
    }
}

/// Wall-clock time (ms).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
