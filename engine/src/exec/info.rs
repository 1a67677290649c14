//! `info(v, [selector])`: adds the data labels of info metrics (`target_info` by default)
//! to the series of `v` that share their identifying labels (`instance`, `job`), as
//! Prometheus's `evalInfo` / `combineWithInfoVector` do.

use datafusion::common::{HashMap, HashSet};
use strata_storage::{Label, Labels};

use super::select::storage_matchers;
use crate::error::{Result, exec_err};
use crate::model::{Grid, QueryContext, Rows};
use futures::FutureExt;
use futures::future::BoxFuture;

use super::node::{Io, Kernel, Output, with_inputs};
use crate::plan::PromOp;

const IDENTIFYING: [&str; 2] = ["instance", "job"];

/// The selector argument of `info`: which info metrics, and which data labels.
pub(super) struct InfoSpec<'a> {
    /// Matchers on `__name__` (empty: `target_info`).
    pub names: &'a [strata_vocab::LabelMatcher],
    /// Matchers on data labels.
    pub data: &'a [strata_vocab::LabelMatcher],
}

/// An info metric's name with the identifying label values (`instance`, `job`).
type Signature = (String, Option<String>, Option<String>);

fn signature(name: &str, labels: &Labels) -> Signature {
    (
        name.to_string(),
        labels.get(IDENTIFYING[0]).map(str::to_string),
        labels.get(IDENTIFYING[1]).map(str::to_string),
    )
}

/// Joins `base` with the instant values of the info series (`info` holds each info
/// series' sample timestamp as its value).
pub(super) fn info(
    ctx: &QueryContext,
    grid: Grid,
    spec: &InfoSpec,
    mut base: Rows,
    mut info: Rows,
) -> Result<Rows> {
    base.sort_by_step(&grid, &ctx.budget)?;
    info.sort_by_step(&grid, &ctx.budget)?;
    // Compiled once: the base series' names are checked against them row by row.
    let name_matchers = storage_matchers(spec.names)?;
    let is_info_name = |name: &str| -> bool {
        if name_matchers.is_empty() {
            name == "target_info"
        } else {
            name_matchers.iter().all(|m| m.matches(name))
        }
    };
    let data_names: HashSet<&str> = spec.data.iter().map(|m| m.name.as_str()).collect();
    let must_match = storage_matchers(spec.data)?
        .iter()
        .any(|m| !m.matches_empty());
    let info_steps: HashMap<i64, std::ops::Range<usize>> = info.step_runs().collect();
    let mut info_names: Vec<String> = Vec::new();
    for &s in &info.series {
        let n = ctx.registry.get(s).labels.metric_name().to_string();
        if !info_names.contains(&n) {
            info_names.push(n);
        }
    }
    // At most one output row per row of `base`.
    let mut out = Rows::charged(&ctx.budget, base.len())?;
    // One entry per output row, to find two rows that became one series at one step.
    let _seen_held = ctx
        .budget
        .hold_bytes(base.len().saturating_mul(32), "info()")?;
    let mut seen: HashSet<(u32, i64)> = HashSet::new();
    for (t, run) in base.step_runs() {
        let mut by_sig: HashMap<Signature, (u32, f64)> = HashMap::new();
        for k in info_steps.get(&t).cloned().unwrap_or(0..0) {
            let (s, orig_t) = (info.series[k], info.vals[k]);
            let labels = ctx.registry.get(s).labels;
            let sig = signature(labels.metric_name(), &labels);
            match by_sig.get(&sig) {
                Some(&(_, prev_t)) if prev_t > orig_t => {}
                Some(&(prev, prev_t)) if prev_t == orig_t => {
                    let existing = ctx.registry.get(prev).labels;
                    return Err(exec_err(format!(
                        "found duplicate series for info metric: existing {} @ {}, new {} @ {}",
                        crate::result::go_labels_string(&existing),
                        prev_t as i64,
                        crate::result::go_labels_string(&labels),
                        orig_t as i64
                    )));
                }
                _ => {
                    by_sig.insert(sig, (s, orig_t));
                }
            }
        }
        for k in run {
            let id = base.series[k];
            let meta = ctx.registry.get(id);
            let out_id = if is_info_name(meta.labels.metric_name()) {
                id
            } else {
                let mut added: Vec<Label> = Vec::new();
                let mut matched = false;
                for name in &info_names {
                    let Some(&(is, _)) = by_sig.get(&signature(name, &meta.labels)) else {
                        continue;
                    };
                    matched = true;
                    for l in ctx.registry.get(is).labels.iter() {
                        if &*l.name == "__name__"
                            || (!data_names.is_empty() && !data_names.contains(&*l.name))
                        {
                            continue;
                        }
                        if let Some(prev) = added.iter().find(|a| a.name == l.name) {
                            if prev.value != l.value {
                                return Err(exec_err(format!("conflicting label: {}", l.name)));
                            }
                            continue;
                        }
                        if meta.labels.get(&l.name).is_some() {
                            continue;
                        }
                        added.push(l.clone());
                    }
                }
                if added.is_empty() {
                    // Dropped only when no info series matched and a data matcher needs
                    // a value; labels the base series already has win silently.
                    if !matched && must_match {
                        continue;
                    }
                    id
                } else {
                    let mut all: Vec<Label> = meta.labels.iter().cloned().collect();
                    all.extend(added);
                    ctx.registry
                        .intern(Labels::from_labels(all), meta.drop_name)
                }
            };
            if !seen.insert((out_id, t)) {
                return Err(exec_err(
                    "vector cannot contain metrics with the same labelset",
                ));
            }
            match base.hist(k) {
                Some(h) => out.push_hist(out_id, t, h.clone()),
                None => out.push(out_id, t, base.vals[k]),
            }
        }
    }
    Ok(out)
}

/// `PromInfo`: `info(v, selector)` over `v` (input 0) and the info series (input 1).
#[derive(Debug)]
pub(crate) struct InfoKernel {
    pub(super) op: PromOp,
}

impl Kernel for InfoKernel {
    fn accepts_histograms(&self) -> bool {
        true
    }

    fn op(&self) -> &PromOp {
        &self.op
    }

    fn run<'a>(&'a self, io: &'a Io, _partition: usize) -> BoxFuture<'a, Result<Output>> {
        async move {
            let PromOp::Info { grid, names, data } = &self.op else {
                return Ok(Output::Rows(Rows::default()));
            };
            with_inputs(io, |inputs| {
                let infos = inputs.pop().unwrap_or_default();
                let base = inputs.pop().unwrap_or_default();
                info(&io.ctx, *grid, &InfoSpec { names, data }, base, infos)
            })
            .await
        }
        .boxed()
    }
}
