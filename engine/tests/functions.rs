//! Every function the grammar accepts (its table, `strata_grammar::FUNCTIONS`) is
//! executable: called with arguments of its declared types — non-constant scalars too — it
//! plans and runs as an instant and a range query, and returns its declared type.

use strata_engine::{Engine, EngineOptions, PromValue};
use strata_grammar::{FUNCTIONS, ValueType};
use strata_storage::{Appender, Db, Labels, Options, SeriesSamples};

/// An argument of type `t` for argument `i` of `name`.
fn arg(name: &str, i: usize, t: ValueType, constant: bool) -> String {
    match (name, i, t) {
        ("label_replace", 1, _) => "\"dst\"".into(),
        ("label_replace", 2, _) => "\"$1\"".into(),
        ("label_replace", 3, _) => "\"job\"".into(),
        ("label_replace", 4, _) => "\"(.*)\"".into(),
        ("label_join", 1, _) => "\"dst\"".into(),
        ("label_join", _, ValueType::String) => "\"job\"".into(),
        ("sort_by_label" | "sort_by_label_desc", _, ValueType::String) => "\"job\"".into(),
        ("histogram_quantiles", _, ValueType::String) => "\"q\"".into(),
        ("histogram_quantiles", 3, ValueType::Scalar) => "0.9".into(),
        ("info", 1, _) => "{job=\"a\"}".into(),
        // Smoothing and trend factors must lie in (0, 1); quantiles in [0, 1].
        (_, _, ValueType::Scalar) if constant => "0.5".into(),
        (_, _, ValueType::Scalar) => "(scalar(m{job=\"a\"}) * 0 + 0.5)".into(),
        (_, _, ValueType::Vector) if name.starts_with("histogram_") => "rate(h_bucket[5m])".into(),
        (_, _, ValueType::Vector) => "m".into(),
        (_, _, ValueType::Matrix) => "m[5m]".into(),
        (_, _, ValueType::String) => "\"x\"".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_the_grammar_accepts_runs() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut o = Options::new(dir.path());
    o.retention_time_ms = None;
    let db = Db::open(o).await.expect("open");
    let mut batch: Vec<SeriesSamples> = ["a", "b"]
        .iter()
        .map(|job| SeriesSamples {
            histograms: Vec::new(),
            labels: Labels::from_pairs([("__name__", "m"), ("job", job)]),
            samples: (0..40)
                .map(|k| (k * 15_000, (k % 7) as f64 + 1.0))
                .collect(),
        })
        .collect();
    for le in ["0.1", "1", "+Inf"] {
        batch.push(SeriesSamples {
            histograms: Vec::new(),
            labels: Labels::from_pairs([("__name__", "h_bucket"), ("le", le)]),
            samples: (0..40).map(|k| (k * 15_000, k as f64 * 3.0)).collect(),
        });
    }
    db.append(&batch).expect("append");
    let engine = Engine::new(db, EngineOptions::default());
    let mut failures = Vec::new();
    let mut ran = 0;
    for f in FUNCTIONS.iter() {
        for constant in [true, false] {
            let args: Vec<String> = f
                .arg_types
                .iter()
                .enumerate()
                .map(|(i, t)| arg(f.name, i, *t, constant))
                .collect();
            let q = format!("{}({})", f.name, args.join(", "));
            // Scalars used as a vector argument are wrapped by the grammar's own rules.
            let q = match f.return_type {
                ValueType::Scalar | ValueType::Vector => q,
                _ => continue,
            };
            match engine.instant(&q, 540_000, None, None).await {
                Ok(out) => {
                    let kind_ok = matches!(
                        (&out.value, f.return_type),
                        (PromValue::Vector(_), ValueType::Vector)
                            | (PromValue::Scalar { .. }, ValueType::Scalar)
                    );
                    if !kind_ok {
                        failures.push(format!("{q}: returned {:?}", out.value));
                    }
                }
                Err(e) => failures.push(format!("{q}: instant: {e}")),
            }
            if let Err(e) = engine.range(&q, 300_000, 540_000, 60_000, None, None).await {
                failures.push(format!("{q}: range: {e}"));
            }
            ran += 1;
        }
    }
    assert!(ran > 2 * 80, "{ran} calls");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
