//! `strata test rules`: Prometheus's rule unit-test files (the format of `promtool test
//! rules`): `rule_files`, `evaluation_interval`, `group_eval_order`, and `tests` with
//! `input_series`, `alert_rule_test` (firing alerts at `eval_time`) and `promql_expr_test`.
//! Each test group runs on a fresh temporary storage: the input series are loaded, the
//! rule groups are evaluated at every `evaluation_interval` from 0 to the last `eval_time`,
//! and the expectations are checked as promtool checks them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use parking_lot::RwLock;
use serde::Deserialize;
use strata_config::Duration;
use strata_engine::{Engine, EngineOptions};
use strata_storage::{Appender, Db, Labels, Options};

use crate::error::{AlertingError, Result};
use crate::rules::alert::{AlertState, LabelMap};
use crate::rules::file::{expand_globs, load_files};
use crate::rules::group::{Group, RuleContext};
use crate::rules::notation::{
    Value, expand_values, series_samples, split_series, test_expression, tokenize,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    #[serde(default)]
    evaluation_interval: Option<Duration>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    tests: Vec<TestGroup>,
    #[serde(default)]
    fuzzy_compare: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    #[serde(default)]
    name: String,
    #[serde(default)]
    interval: Option<Duration>,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<ExprTest>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    series: String,
    values: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTest {
    eval_time: Duration,
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExprTest {
    expr: String,
    eval_time: Duration,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    #[serde(default)]
    labels: String,
    #[serde(default)]
    value: f64,
    /// A native histogram in the series notation (`{{…}}`); when set, `value` is not
    /// looked at (it stays 0, as a histogram sample's float is).
    #[serde(default)]
    histogram: String,
}

/// The outcome of one test file: `Ok(())` or the failures, promtool-style.
pub async fn run_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|source| AlertingError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let tf: TestFile = serde_yaml_ng::from_str(&text)
        .map_err(|e| AlertingError::Test(format!("{}: {e}", path.display())))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let patterns: Vec<String> = tf
        .rule_files
        .iter()
        .map(|f| {
            if Path::new(f).is_absolute() {
                f.clone()
            } else {
                dir.join(f).to_string_lossy().into_owned()
            }
        })
        .collect();
    let files = load_files(&expand_globs(&patterns)?)?;
    let eval_interval = tf
        .evaluation_interval
        .map(|d| d.as_millis() as i64)
        .unwrap_or(60_000)
        .max(1);
    let mut failures = Vec::new();
    for (i, t) in tf.tests.iter().enumerate() {
        let label = if t.name.is_empty() {
            format!("test {}", i + 1)
        } else {
            t.name.clone()
        };
        match run_group(&tf, t, &files, eval_interval).await {
            Ok(mut f) => failures.extend(f.drain(..).map(|m| format!("{label}: {m}"))),
            Err(e) => failures.push(format!("{label}: {e}")),
        }
    }
    Ok(failures)
}

async fn run_group(
    tf: &TestFile,
    t: &TestGroup,
    files: &[crate::rules::file::RuleFile],
    eval_interval: i64,
) -> Result<Vec<String>> {
    let dir = tempdir()?;
    let db = Db::open(Options::new(dir.path())).await?;
    let result = run_on(tf, t, files, eval_interval, &db).await;
    let _ = db.close().await;
    result
}

async fn run_on(
    tf: &TestFile,
    t: &TestGroup,
    files: &[crate::rules::file::RuleFile],
    eval_interval: i64,
    db: &Arc<Db>,
) -> Result<Vec<String>> {
    let interval = t
        .interval
        .map(|d| d.as_millis() as i64)
        .unwrap_or(eval_interval);
    let mut batch = Vec::new();
    for s in &t.input_series {
        let (labels, _) = split_series(&s.series).map_err(AlertingError::Test)?;
        let tokens = tokenize(&s.values).map_err(AlertingError::Test)?;
        let values = expand_values(&tokens).map_err(AlertingError::Test)?;
        batch.push(series_samples(labels, values, interval));
    }
    db.append(&batch)?;
    let engine = Arc::new(Engine::new(
        db.clone(),
        EngineOptions {
            default_subquery_step: eval_interval,
            ..EngineOptions::default()
        },
    ));
    let ctx = RuleContext {
        engine: engine.clone(),
        db: db.clone(),
        external_labels: RwLock::new(t.external_labels.clone()),
        external_url: t.external_url.trim_end_matches('/').to_owned(),
        resend_delay: 60_000,
        sinks: RwLock::new(Vec::new()),
    };
    let mut groups: Vec<Group> = Vec::new();
    for f in files {
        for g in &f.groups {
            let g = Group::new(&f.path, g.clone(), eval_interval, 0);
            for r in &g.rules {
                r.state.lock().alerts.restored = true;
            }
            groups.push(g);
        }
    }
    if !tf.group_eval_order.is_empty() {
        let mut ordered = Vec::new();
        for name in &tf.group_eval_order {
            let Some(i) = groups.iter().position(|g| &g.def.name == name) else {
                return Err(AlertingError::Test(format!(
                    "group name {name:?} in group_eval_order not found among the loaded groups"
                )));
            };
            ordered.push(groups.remove(i));
        }
        ordered.append(&mut groups);
        groups = ordered;
    }
    let mut alert_tests: Vec<&AlertTest> = t.alert_rule_test.iter().collect();
    alert_tests.sort_by_key(|a| a.eval_time.as_millis());
    let max_t = alert_tests
        .iter()
        .map(|a| a.eval_time.as_millis() as i64)
        .chain(
            t.promql_expr_test
                .iter()
                .map(|e| e.eval_time.as_millis() as i64),
        )
        .max()
        .unwrap_or(0);
    let mut failures = Vec::new();
    let mut next_alert = 0;
    let mut ts = 0i64;
    while ts <= max_t {
        for g in &groups {
            g.eval(&ctx, ts).await;
        }
        while let Some(a) = alert_tests.get(next_alert) {
            let at = a.eval_time.as_millis() as i64;
            if !(ts <= at && at < ts + eval_interval) {
                break;
            }
            next_alert += 1;
            if let Some(f) = check_alerts(&groups, a) {
                failures.push(f);
            }
        }
        ts += eval_interval;
    }
    for e in &t.promql_expr_test {
        if let Some(f) = check_expr(&engine, e, tf.fuzzy_compare).await {
            failures.push(f);
        }
    }
    Ok(failures)
}

fn check_alerts(groups: &[Group], a: &AlertTest) -> Option<String> {
    let mut got: Vec<(LabelMap, LabelMap)> = Vec::new();
    let mut found = false;
    for g in groups {
        for r in g
            .rules
            .iter()
            .filter(|r| r.def.alert && r.def.name == a.alertname)
        {
            found = true;
            for al in r.state.lock().alerts.active() {
                if al.state == AlertState::Firing {
                    got.push((al.labels.clone(), al.annotations.clone()));
                }
            }
        }
    }
    if !found {
        return Some(format!(
            "alertname: {}, time: {}: no alerting rule with this name",
            a.alertname, a.eval_time
        ));
    }
    let mut exp: Vec<(LabelMap, LabelMap)> = a
        .exp_alerts
        .iter()
        .map(|e| {
            let mut l = e.exp_labels.clone();
            l.insert("alertname".into(), a.alertname.clone());
            (l, e.exp_annotations.clone())
        })
        .collect();
    got.sort();
    exp.sort();
    (got != exp).then(|| {
        format!(
            "alertname: {}, time: {},\n        exp:{},\n        got:{}",
            a.alertname,
            a.eval_time,
            show_alerts(&exp),
            show_alerts(&got)
        )
    })
}

fn show_alerts(v: &[(LabelMap, LabelMap)]) -> String {
    let items: Vec<String> = v
        .iter()
        .enumerate()
        .map(|(i, (l, a))| {
            format!("\n        {i}:\n          Labels:{l:?}\n          Annotations:{a:?}")
        })
        .collect();
    if items.is_empty() {
        "[]".into()
    } else {
        items.concat()
    }
}

/// A sample as promtool compares it: labels, the float (0 for a histogram sample) and the
/// histogram's `TestExpression` (empty for a float sample).
type Compared = (Labels, f64, String);

/// The expected histogram of an `exp_samples` entry (exactly one `{{…}}` value).
fn expected_histogram(text: &str) -> std::result::Result<String, String> {
    let values = expand_values(&tokenize(text)?)?;
    match values.as_slice() {
        [Some(Value::Histogram { h, .. })] => Ok(test_expression(h)),
        [v] => Err(format!("expected histogram, got {v:?}")),
        v => Err(format!("expected 1 value, got {}", v.len())),
    }
}

async fn check_expr(engine: &Engine, e: &ExprTest, fuzzy: bool) -> Option<String> {
    let at = e.eval_time.as_millis() as i64;
    let got: Vec<Compared> = match engine.instant(&e.expr, at, None, None).await {
        Ok(o) => match o.value {
            strata_engine::PromValue::Vector(v) => v
                .into_iter()
                .map(|s| match &s.h {
                    Some(h) => (s.labels, 0.0, test_expression(h)),
                    None => (s.labels, s.v, String::new()),
                })
                .collect(),
            strata_engine::PromValue::Scalar { v, .. } => {
                vec![(Labels::default(), v, String::new())]
            }
            other => {
                return Some(format!(
                    "expr: {:?}, time: {}: unsupported result {other:?}",
                    e.expr, e.eval_time
                ));
            }
        },
        Err(err) => {
            return Some(format!(
                "expr: {:?}, time: {}, err: {err}",
                e.expr, e.eval_time
            ));
        }
    };
    let mut exp: Vec<Compared> = Vec::new();
    for s in &e.exp_samples {
        let labels = if s.labels.trim().is_empty() {
            Labels::default()
        } else {
            match split_series(&s.labels) {
                Ok((l, _)) => l,
                Err(err) => {
                    return Some(format!("expr: {:?}: bad exp_samples labels: {err}", e.expr));
                }
            }
        };
        let hist = if s.histogram.trim().is_empty() {
            String::new()
        } else {
            match expected_histogram(&s.histogram) {
                Ok(h) => h,
                Err(err) => {
                    return Some(format!(
                        "expr: {:?}, time: {}, err: labels {:?}: {err}",
                        e.expr, e.eval_time, s.labels
                    ));
                }
            }
        };
        exp.push((labels, s.value, hist));
    }
    let key = |l: &Labels| {
        l.iter()
            .map(|l| format!("{}={}", l.name, l.value))
            .collect::<Vec<_>>()
    };
    let mut got = got;
    got.sort_by_key(|(l, _, _)| key(l));
    exp.sort_by_key(|(l, _, _)| key(l));
    let same = got.len() == exp.len()
        && got.iter().zip(&exp).all(|((gl, gv, gh), (el, ev, eh))| {
            gl == el
                && gh == eh
                && (gv == ev || (gv.is_nan() && ev.is_nan()) || (fuzzy && close(*gv, *ev)))
        });
    (!same).then(|| {
        format!(
            "expr: {:?}, time: {},\n        exp: {},\n        got: {}",
            e.expr,
            e.eval_time,
            show_samples(&exp),
            show_samples(&got)
        )
    })
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1e-300)
}

fn show_samples(v: &[Compared]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|(l, x, h)| {
            let inner: Vec<String> = l
                .iter()
                .map(|l| format!("{}={:?}", l.name, &*l.value))
                .collect();
            let value = if h.is_empty() {
                strata_grammar::format_float(*x)
            } else {
                h.clone()
            };
            format!("{{{}}} {value}", inner.join(", "))
        })
        .collect();
    format!("[{}]", items.join(", "))
}

fn tempdir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("strata-rule-test-")
        .tempdir()
        .map_err(|source| AlertingError::Io {
            path: std::env::temp_dir().display().to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn histogram_fixture_passes() {
        let path = Path::new(
            &std::env::var("CARGO_MANIFEST_DIR")
                .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string()),
        )
        .join("../tests/rules/histograms_test.yml");
        let failures = run_file(&path).await.expect("runs");
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn histogram_mismatches_are_reported() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("t.yml");
        std::fs::write(
            &path,
            r#"
tests:
  - input_series:
      - series: 'h'
        values: '{{schema:0 count:4 sum:6 buckets:[1 2 1]}}x2'
    promql_expr_test:
      - expr: h
        eval_time: 1m
        exp_samples:
          - labels: 'h'
            histogram: '{{count:4 sum:6 buckets:[1 2 2]}}'
      - expr: histogram_count(h)
        eval_time: 1m
        exp_samples:
          - labels: '{}'
            histogram: '{{count:4}}'
      - expr: h
        eval_time: 1m
        exp_samples:
          - labels: 'h'
            value: 4
      - expr: h
        eval_time: 1m
        exp_samples:
          - labels: 'h'
            histogram: '1'
      - expr: h
        eval_time: 1m
        exp_samples:
          - labels: 'h'
            # The second sample of a chunk reads back "not a reset", as in Prometheus.
            histogram: '{{count:4 sum:6 counter_reset_hint:not_reset buckets:[1 2 1]}}'
"#,
        )
        .expect("write");
        let failures = run_file(&path).await.expect("runs");
        assert_eq!(failures.len(), 4, "{failures:#?}");
        assert!(
            failures[0].contains("exp: [{__name__=\"h\"} {{count:4 sum:6 buckets:[1 2 2]}}]")
                && failures[0]
                    .contains("got: [{__name__=\"h\"} {{count:4 sum:6 counter_reset_hint:not_reset buckets:[1 2 1]}}]"),
            "{}",
            failures[0]
        );
        assert!(failures[1].contains("got: [{} 4]"), "{}", failures[1]);
        assert!(
            failures[2].contains("exp: [{__name__=\"h\"} 4]"),
            "{}",
            failures[2]
        );
        assert!(
            failures[3].contains("expected histogram"),
            "{}",
            failures[3]
        );
    }
}
