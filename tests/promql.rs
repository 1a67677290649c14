//! Runs the PromQL test scripts in `tests/promql/*.test` against the engine over a real
//! storage instance. The format is Prometheus's `promqltest` language:
//!
//! ```text
//! load 5m
//!     http_requests{job="api"} 0+10x10 _ stale 3
//! eval instant at 50m sum(http_requests)
//!     {} 100
//! eval range from 0 to 10m step 5m rate(http_requests[10m])
//!     {job="api"} _ 0.033 0.033
//! eval instant at 0m foo{
//!     expect fail
//! clear
//! ```
//!
//! Values: numbers, `Inf`, `NaN`, `_` (missing), `stale`, and `a+bxn` / `a-bxn` / `axn`
//! expansions; native histograms `{{schema:0 count:3 sum:4 buckets:[1 2]}}`, `{{…}}xn`,
//! `{{a}}+{{b}}xn`, `{{a}}-{{b}}xn`. `load_with_nhcb <interval>` loads classic histogram
//! series (`x_bucket{le=…}`, `x_sum`, `x_count`) as given and also converted into one
//! native histogram with custom buckets `x{…}` per label set, as `promqltest` does.
//! Expectations: sample lines, a bare number for scalars, and
//! `expect fail [msg: …]`, `expect warn [msg: …]`, `expect no_warn`, `expect info [msg: …]`,
//! `expect no_info`, `expect ordered`, `expect range vector from <t> to <t> step <d>` (the
//! timestamps of a matrix an instant query returns). As in `promqltest`, once a command
//! expects warnings (or infos), every warning (info) it raises must be expected. Values
//! match within 1e-6 relative; NaN equals NaN; histograms match as
//! `compareNativeHistogram` matches them (populated buckets only, the counter-reset hint
//! only when the expectation sets one).
//!
//! `PROMQL_TEST_FILE=<part of a file name>` runs only the matching scripts.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use strata_alerting::rules::notation::{
    Value, expand, expand_values, histograms_match, nhcb_series, parse_duration_ms, parse_number,
    series_samples, split_series, test_expression, tokenize,
};
use strata_engine::{Engine, EngineOptions, PromValue, QueryOutcome};
use strata_storage::{Appender, Db, Labels, Options, SeriesSamples};

#[derive(Default, Debug)]
struct Expect {
    fail: Option<Option<String>>,
    /// `expect warn [msg: …]` lines (`None`: any warning).
    warn: Vec<Option<String>>,
    /// `expect info [msg: …]` lines (`None`: any info).
    info: Vec<Option<String>>,
    no_warn: bool,
    no_info: bool,
    ordered: bool,
    scalar: Option<f64>,
    series: Vec<(Labels, Vec<Option<Value>>)>,
    /// `expect range vector from … to … step …`: (start, end, step) in ms.
    range_vector: Option<(i64, i64, i64)>,
}

fn same(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs())
}

fn check(out: &QueryOutcome, exp: &Expect, range: Option<(i64, i64, i64)>) -> Result<(), String> {
    // As `validateExpectedAnnotationsOfType`: with any expectation of a kind, every
    // expected annotation is there and every annotation of that kind was expected.
    let check_note = |want: &[Option<String>], have: &[String], kind: &str| -> Result<(), String> {
        if want.is_empty() {
            return Ok(());
        }
        if have.is_empty() {
            return Err(format!("expected a {kind}, got none"));
        }
        let matches = |w: &Option<String>, h: &String| w.as_ref().is_none_or(|m| m == h);
        if let Some(Some(m)) = want.iter().find(|w| !have.iter().any(|h| matches(w, h))) {
            return Err(format!("expected {kind} {m:?}, got {have:?}"));
        }
        if let Some(h) = have.iter().find(|h| !want.iter().any(|w| matches(w, h))) {
            return Err(format!("unexpected {kind} {h:?}"));
        }
        Ok(())
    };
    check_note(&exp.warn, &out.notes.warnings, "warning")?;
    check_note(&exp.info, &out.notes.infos, "info")?;
    if exp.no_warn && !out.notes.warnings.is_empty() {
        return Err(format!("expected no warning, got {:?}", out.notes.warnings));
    }
    if exp.no_info && !out.notes.infos.is_empty() {
        return Err(format!("expected no info, got {:?}", out.notes.infos));
    }
    match &out.value {
        PromValue::Scalar { v, .. } => match exp.scalar {
            Some(w) if same(w, *v) => Ok(()),
            _ => Err(format!("got scalar {v}, expected {:?}", exp.scalar)),
        },
        PromValue::Str { s, .. } => Err(format!("unexpected string {s:?}")),
        PromValue::Vector(v) => {
            if v.len() != exp.series.len() {
                return Err(format!(
                    "got {} samples, expected {}: {v:?}",
                    v.len(),
                    exp.series.len()
                ));
            }
            for (i, (labels, want)) in exp.series.iter().enumerate() {
                let w = want
                    .first()
                    .and_then(|v| v.as_ref())
                    .ok_or("empty expectation")?;
                let got = if exp.ordered {
                    v.get(i).filter(|s| &s.labels == labels)
                } else {
                    v.iter().find(|s| &s.labels == labels)
                };
                let Some(s) = got else {
                    return Err(format!(
                        "missing {labels} (ordered: {}) in {v:?}",
                        exp.ordered
                    ));
                };
                match (w, &s.h) {
                    (Value::Float(w), None) if same(s.v, *w) => {}
                    (Value::Float(w), None) => {
                        return Err(format!("{labels}: got {}, expected {w}", s.v));
                    }
                    (Value::Float(w), Some(h)) => {
                        return Err(format!(
                            "{labels}: expected float value {w} but got histogram {}",
                            test_expression(h)
                        ));
                    }
                    (Value::Histogram { h: wh, .. }, None) => {
                        return Err(format!(
                            "{labels}: expected histogram {} but got float value {}",
                            test_expression(wh),
                            s.v
                        ));
                    }
                    (Value::Histogram { h: wh, hint_set }, Some(h)) => {
                        if !histograms_match(wh, h, *hint_set, 1e-6) {
                            return Err(format!(
                                "{labels}: expected {} but got {}",
                                test_expression(wh),
                                test_expression(h)
                            ));
                        }
                    }
                }
            }
            Ok(())
        }
        PromValue::Matrix(m) => {
            let (start, _end, step) = exp.range_vector.or(range).unwrap_or((0, 0, 1));
            if m.len() != exp.series.len() {
                return Err(format!(
                    "got {} series, expected {}: {m:?}",
                    m.len(),
                    exp.series.len()
                ));
            }
            for (labels, want) in &exp.series {
                let s = m
                    .iter()
                    .find(|s| &s.labels == labels)
                    .ok_or_else(|| format!("missing series {labels}"))?;
                let at = |k: usize| start + k as i64 * step;
                let want_f: BTreeMap<i64, f64> = want
                    .iter()
                    .enumerate()
                    .filter_map(|(k, v)| v.as_ref()?.as_float().map(|v| (at(k), v)))
                    .collect();
                let want_h: Vec<(i64, _, bool)> = want
                    .iter()
                    .enumerate()
                    .filter_map(|(k, v)| match v {
                        Some(Value::Histogram { h, hint_set }) => Some((at(k), h, *hint_set)),
                        _ => None,
                    })
                    .collect();
                let got: BTreeMap<i64, f64> = s.points.iter().copied().collect();
                if want_f.len() != got.len()
                    || want_f
                        .iter()
                        .any(|(t, w)| !got.get(t).is_some_and(|g| same(*g, *w)))
                {
                    return Err(format!("{labels}: got floats {got:?}, expected {want_f:?}"));
                }
                let show = |hs: &mut dyn Iterator<Item = (i64, &_)>| -> String {
                    hs.map(|(t, h)| format!("{} @[{t}]", test_expression(h)))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let matches = want_h.len() == s.histograms.len()
                    && want_h
                        .iter()
                        .zip(&s.histograms)
                        .all(|((wt, wh, set), (gt, gh))| {
                            wt == gt && histograms_match(wh, gh, *set, 1e-6)
                        });
                if !matches {
                    return Err(format!(
                        "{labels}: got histograms [{}], expected [{}]",
                        show(&mut s.histograms.iter().map(|(t, h)| (*t, &**h))),
                        show(&mut want_h.iter().map(|(t, h, _)| (*t, *h)))
                    ));
                }
            }
            Ok(())
        }
    }
}

struct Runner {
    dir: tempfile::TempDir,
    db: Arc<Db>,
    engine: Engine,
    /// The same data through an engine that cuts every selection into 3 label-range
    /// partitions: reads run per partition, sums and the like as partial + final.
    parted: Engine,
}

impl Runner {
    async fn new() -> Runner {
        let dir = tempfile::tempdir().expect("tmp");
        let mut o = Options::new(dir.path());
        o.retention_time_ms = None;
        let db = Db::open(o).await.expect("open");
        let engine = Engine::new(db.clone(), EngineOptions::default());
        let parted = Engine::new(
            db.clone(),
            EngineOptions {
                selection_parts: Some(3),
                ..EngineOptions::default()
            },
        );
        Runner {
            dir,
            db,
            engine,
            parted,
        }
    }

    async fn clear(&mut self) {
        self.db.close().await.expect("close");
        *self = Runner::new().await;
        let _ = self.dir.path();
    }
}

async fn run_file(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("read test file");
    let lines: Vec<&str> = text.lines().collect();
    let mut failures = Vec::new();
    let mut r = Runner::new().await;
    let mut i = 0;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    while i < lines.len() {
        let line = lines[i].trim();
        let lineno = i + 1;
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "clear" {
            r.clear().await;
            continue;
        }
        let load = match line.split_once(char::is_whitespace) {
            Some(("load", iv)) => Some((iv, false)),
            Some(("load_with_nhcb", iv)) => Some((iv, true)),
            _ => None,
        };
        if let Some((interval, with_nhcb)) = load {
            let step = parse_duration_ms(interval).expect("load interval");
            let mut batch = Vec::new();
            while i < lines.len()
                && lines[i].starts_with([' ', '\t'])
                && !lines[i].trim().is_empty()
            {
                match series_line(lines[i].trim(), step) {
                    Ok(s) => batch.push(s),
                    Err(e) => failures.push(format!("{name}:{}: {e}", i + 1)),
                }
                i += 1;
            }
            if with_nhcb {
                match nhcb_series(&batch) {
                    Ok(extra) => batch.extend(extra),
                    Err(e) => failures.push(format!("{name}:{lineno}: load_with_nhcb: {e}")),
                }
            }
            r.db.append(&batch).expect("append");
            continue;
        }
        let Some(rest) = line.strip_prefix("eval ") else {
            failures.push(format!("{name}:{lineno}: unknown command {line:?}"));
            continue;
        };
        let mut exp = Expect::default();
        while i < lines.len() && lines[i].starts_with([' ', '\t']) && !lines[i].trim().is_empty() {
            let l = lines[i].trim();
            i += 1;
            if l.starts_with('#') {
                continue;
            }
            if let Some(rv) = l.strip_prefix("expect range vector ") {
                match parse_range_vector(rv) {
                    Ok(r) => exp.range_vector = Some(r),
                    Err(e) => failures.push(format!("{name}:{i}: {e}")),
                }
                continue;
            }
            if let Some(e) = l.strip_prefix("expect ") {
                let (kind, msg) = match e.split_once(" msg:") {
                    Some((k, m)) => (k.trim(), Some(m.trim().to_string())),
                    None => (e.trim(), None),
                };
                match kind {
                    "fail" => exp.fail = Some(msg),
                    "warn" => exp.warn.push(msg),
                    "info" => exp.info.push(msg),
                    "no_warn" => exp.no_warn = true,
                    "no_info" => exp.no_info = true,
                    "ordered" => exp.ordered = true,
                    other => failures.push(format!("{name}:{}: unknown expectation {other}", i)),
                }
                continue;
            }
            if l.starts_with('{')
                || l.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && l.contains(['{', ' '])
                    && !l.starts_with("NaN")
                    && !l.starts_with("Inf")
            {
                match split_series(l)
                    .and_then(|(lb, rest)| expand_values(&tokenize(rest)?).map(|v| (lb, v)))
                {
                    Ok(s) => exp.series.push(s),
                    Err(e) => failures.push(format!("{name}:{i}: {e}")),
                }
            } else {
                match parse_number(l) {
                    Ok(v) => exp.scalar = Some(v),
                    Err(e) => failures.push(format!("{name}:{i}: {e}")),
                }
            }
        }
        let mut at = 0;
        let (result, range, query) = if let Some(r2) = rest.strip_prefix("instant at ") {
            let (t_text, q) = r2.split_once(' ').unwrap_or((r2, ""));
            let t = parse_duration_ms(t_text).expect("eval time");
            at = t;
            (r.engine.instant(q, t, None, None).await, None, q)
        } else if let Some(r2) = rest.strip_prefix("range from ") {
            // `<start> to <end> step <step> <query>`
            let parts: Vec<&str> = r2.splitn(6, ' ').collect();
            let start = parse_duration_ms(parts[0]).expect("start");
            let end = parse_duration_ms(parts[2]).expect("end");
            let step = parse_duration_ms(parts[4]).expect("step");
            let q = parts.get(5).copied().unwrap_or("");
            (
                r.engine.range(q, start, end, step, None, None).await,
                Some((start, end, step)),
                q,
            )
        } else {
            failures.push(format!("{name}:{lineno}: bad eval {line:?}"));
            continue;
        };
        match (result, &exp.fail) {
            (Err(e), Some(msg)) => {
                if let Some(m) = msg
                    && !e.to_string().contains(m.as_str())
                {
                    failures.push(format!(
                        "{name}:{lineno}: {query}: error {e:?} does not match {m:?}"
                    ));
                }
            }
            (Err(e), None) => {
                failures.push(format!("{name}:{lineno}: {query}: unexpected error {e}"))
            }
            (Ok(_), Some(_)) => {
                failures.push(format!("{name}:{lineno}: {query}: expected an error"))
            }
            (Ok(out), None) => {
                if let Err(e) = check(&out, &exp, range) {
                    failures.push(format!("{name}:{lineno}: {query}: {e}"));
                }
                if let Err(e) = codec_round_trip(&r.engine, query, range, at, &out).await {
                    failures.push(format!("{name}:{lineno}: {query}: codec: {e}"));
                }
                // Partitioned: the same expectations, and the same through the codec.
                let parted = match range {
                    Some((s, e, st)) => r.parted.range(query, s, e, st, None, None).await,
                    None => r.parted.instant(query, at, None, None).await,
                };
                match parted {
                    Ok(p) => {
                        if let Err(e) = check(&p, &exp, range) {
                            failures.push(format!("{name}:{lineno}: {query}: partitioned: {e}"));
                        }
                        if let Err(e) = codec_round_trip(&r.parted, query, range, at, &p).await {
                            failures
                                .push(format!("{name}:{lineno}: {query}: partitioned codec: {e}"));
                        }
                    }
                    Err(e) => failures.push(format!("{name}:{lineno}: {query}: partitioned: {e}")),
                }
            }
        }
    }
    let _ = r.db.close().await;
    failures
}

/// `from <t> to <t> step <d>` of `expect range vector`.
fn parse_range_vector(s: &str) -> Result<(i64, i64, i64), String> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    match parts.as_slice() {
        ["from", from, "to", to, "step", step] => Ok((
            parse_duration_ms(from)?,
            parse_duration_ms(to)?,
            parse_duration_ms(step)?,
        )),
        _ => Err(format!("invalid range vector definition {s:?}")),
    }
}

/// One series line of a `load`: the k-th value at `k · step`.
fn series_line(line: &str, step: i64) -> Result<SeriesSamples, String> {
    let (labels, rest) = split_series(line)?;
    Ok(series_samples(
        labels,
        expand_values(&tokenize(rest)?)?,
        step,
    ))
}

/// Evaluations whose plans went through the codec.
static ROUND_TRIPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The plan of `query` sent through datafusion-proto (PromCodec) and back: the same plan
/// text, and the decoded plan gives the same answer as the query itself.
async fn codec_round_trip(
    engine: &Engine,
    query: &str,
    range: Option<(i64, i64, i64)>,
    at: i64,
    out: &QueryOutcome,
) -> Result<(), String> {
    let p = match range {
        Some((start, end, step)) => strata_engine::QueryParams {
            start,
            end,
            interval: step,
            lookback: 300_000,
            max_source_resolution: strata_engine::AUTO_RESOLUTION,
        },
        None => strata_engine::QueryParams {
            start: at,
            end: at,
            interval: 0,
            lookback: 300_000,
            max_source_resolution: strata_engine::AUTO_RESOLUTION,
        },
    };
    ROUND_TRIPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let rt = match engine.codec_round_trip(query, p).await {
        Ok(rt) => rt,
        // Constants have no plan.
        Err(e) if e.to_string().contains("constant expression") => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    if rt.before != rt.after {
        return Err(format!("plan changed:\n{}\n---\n{}", rt.before, rt.after));
    }
    // Debug prints floats exactly (and NaN as NaN): equal text is the same answer.
    let same = format!("{:?}", rt.value) == format!("{:?}", out.value);
    if !same {
        return Err(format!(
            "decoded plan answered {:?}, not {:?}",
            rt.value, out.value
        ));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promql_scripts() {
    let dir = Path::new(
        &std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string()),
    )
    .join("tests/promql");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/promql")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    // `PROMQL_TEST_FILE=<part of a name>` runs only the matching scripts.
    let only = std::env::var("PROMQL_TEST_FILE").ok();
    if let Some(part) = &only {
        files.retain(|p| p.to_string_lossy().contains(part.as_str()));
    }
    files.sort();
    assert!(!files.is_empty(), "no .test files in {}", dir.display());
    let mut failures = Vec::new();
    for f in &files {
        failures.extend(run_file(f).await);
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Every successful evaluation's plan went through datafusion-proto and back.
    let n = ROUND_TRIPS.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("{n} plans went through datafusion-proto and back");
    assert!(only.is_some() || n >= 200, "{n} round trips");
}

#[test]
fn value_expansion() {
    assert_eq!(
        expand(&["1+2x2", "_", "5x1", "-1-1x1"]).expect("valid"),
        vec![
            Some(1.0),
            Some(3.0),
            Some(5.0),
            None,
            Some(5.0),
            Some(5.0),
            Some(-1.0),
            Some(-2.0)
        ]
    );
}
