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
//! expansions. Expectations: sample lines, a bare number for scalars, and
//! `expect fail [msg: …]`, `expect warn [msg: …]`, `expect no_warn`, `expect info [msg: …]`,
//! `expect no_info`, `expect ordered`. Values match within 1e-6 relative; NaN equals NaN.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use strata_alerting::rules::notation::{expand, parse_duration_ms, parse_number, split_series};
use strata_engine::{Engine, EngineOptions, PromValue, QueryOutcome};
use strata_storage::{Appender, Db, Labels, Options, SeriesSamples};

#[derive(Default, Debug)]
struct Expect {
    fail: Option<Option<String>>,
    warn: Option<Option<String>>,
    info: Option<Option<String>>,
    no_warn: bool,
    no_info: bool,
    ordered: bool,
    scalar: Option<f64>,
    series: Vec<(Labels, Vec<Option<f64>>)>,
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
    let check_note =
        |want: &Option<Option<String>>, have: &[String], kind: &str| -> Result<(), String> {
            match want {
                Some(None) if have.is_empty() => Err(format!("expected a {kind}, got none")),
                Some(Some(m)) if !have.iter().any(|h| h == m) => {
                    Err(format!("expected {kind} {m:?}, got {have:?}"))
                }
                _ => Ok(()),
            }
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
                let w = want.first().copied().flatten().ok_or("empty expectation")?;
                let got = if exp.ordered {
                    v.get(i).filter(|s| &s.labels == labels)
                } else {
                    v.iter().find(|s| &s.labels == labels)
                };
                match got {
                    Some(s) if same(s.v, w) => {}
                    Some(s) => return Err(format!("{labels}: got {}, expected {w}", s.v)),
                    None => {
                        return Err(format!(
                            "missing {labels} (ordered: {}) in {v:?}",
                            exp.ordered
                        ));
                    }
                }
            }
            Ok(())
        }
        PromValue::Matrix(m) => {
            let (start, _end, step) = range.unwrap_or((0, 0, 1));
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
                let want: BTreeMap<i64, f64> = want
                    .iter()
                    .enumerate()
                    .filter_map(|(k, v)| v.map(|v| (start + k as i64 * step, v)))
                    .collect();
                let got: BTreeMap<i64, f64> = s.points.iter().copied().collect();
                if want.len() != got.len()
                    || want
                        .iter()
                        .any(|(t, w)| !got.get(t).is_some_and(|g| same(*g, *w)))
                {
                    return Err(format!("{labels}: got {got:?}, expected {want:?}"));
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
        if let Some(interval) = line.strip_prefix("load ") {
            let step = parse_duration_ms(interval).expect("load interval");
            let mut batch = Vec::new();
            while i < lines.len()
                && lines[i].starts_with([' ', '\t'])
                && !lines[i].trim().is_empty()
            {
                let (labels, rest) = split_series(lines[i].trim()).expect("series line");
                let toks: Vec<&str> = rest.split_whitespace().collect();
                let vals = expand(&toks).expect("values");
                let samples = vals
                    .iter()
                    .enumerate()
                    .filter_map(|(k, v)| v.map(|v| (k as i64 * step, v)))
                    .collect();
                batch.push(SeriesSamples {
                    histograms: Vec::new(),
                    labels,
                    samples,
                });
                i += 1;
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
            if let Some(e) = l.strip_prefix("expect ") {
                let (kind, msg) = match e.split_once(" msg:") {
                    Some((k, m)) => (k.trim(), Some(m.trim().to_string())),
                    None => (e.trim(), None),
                };
                match kind {
                    "fail" => exp.fail = Some(msg),
                    "warn" => exp.warn = Some(msg),
                    "info" => exp.info = Some(msg),
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
                match split_series(l).and_then(|(lb, rest)| {
                    let toks: Vec<&str> = rest.split_whitespace().collect();
                    expand(&toks).map(|v| (lb, v))
                }) {
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
        },
        None => strata_engine::QueryParams {
            start: at,
            end: at,
            interval: 0,
            lookback: 300_000,
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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promql");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/promql")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
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
    assert!(n >= 200, "{n} round trips");
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
