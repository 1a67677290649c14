//! The engine compiles PromQL into DataFusion plans of PromQL extension nodes, and answers
//! through DataFusion's executor.

use strata_engine::{Engine, EngineOptions, PromValue};
use strata_storage::{Appender, Db, Labels, Options, SeriesSamples};

/// `(metric name, job, samples)`.
type Spec<'a> = (&'a str, &'a str, Vec<(i64, f64)>);

async fn db_with(series: &[Spec<'_>]) -> (tempfile::TempDir, std::sync::Arc<Db>) {
    let dir = tempfile::tempdir().expect("tmp");
    let mut o = Options::new(dir.path());
    o.retention_time_ms = None;
    let db = Db::open(o).await.expect("open");
    let batch: Vec<SeriesSamples> = series
        .iter()
        .map(|(name, job, samples)| SeriesSamples {
            histograms: Vec::new(),
            labels: Labels::from_pairs([("__name__", *name), ("job", *job)]),
            samples: samples.clone(),
        })
        .collect();
    db.append(&batch).expect("append");
    (dir, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_one_extension_node_per_operator() {
    let (_dir, db) = db_with(&[("x_total", "a", vec![(0, 1.0)])]).await;
    let engine = Engine::new(db, EngineOptions::default());
    let plan = engine
        .explain(
            "sum by (job) (rate(x_total[5m])) / on(job) count by (job) (x_total)",
            0,
        )
        .await
        .expect("explain");
    for node in [
        "PromJoin",
        "PromAggregate",
        "PromRangeWindow",
        "PromInstantVector",
        "PromSelector",
    ] {
        assert!(plan.contains(node), "{node} missing from\n{plan}");
    }
    assert_eq!(plan.matches("PromSelector").count(), 2, "{plan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_query_through_datafusion() {
    let samples: Vec<(i64, f64)> = (0..=20).map(|i| (i * 15_000, i as f64 * 15.0)).collect();
    let (_dir, db) = db_with(&[("x_total", "a", samples.clone()), ("x_total", "b", samples)]).await;
    let engine = Engine::new(db, EngineOptions::default());
    let out = engine
        .range(
            "sum(rate(x_total[1m]))",
            60_000,
            300_000,
            60_000,
            None,
            None,
        )
        .await
        .expect("query");
    let PromValue::Matrix(m) = out.value else {
        panic!("expected a matrix");
    };
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].points.len(), 5);
    for (_, v) in &m[0].points {
        assert!((v - 2.0).abs() < 1e-9, "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_fail_the_query() {
    let samples: Vec<(i64, f64)> = (0..100).map(|i| (i * 1000, 1.0)).collect();
    let (_dir, db) = db_with(&[("m", "a", samples)]).await;
    let engine = Engine::new(
        db,
        EngineOptions {
            max_samples: 50,
            ..EngineOptions::default()
        },
    );
    let err = engine
        .instant("count_over_time(m[2m])", 100_000, None, None)
        .await
        .expect_err("limit");
    assert_eq!(err.error_type(), "execution");
    assert_eq!(
        err.to_string(),
        "query processing would load too many samples into memory in query execution"
    );
    let ok = engine
        .instant("count_over_time(m[30s])", 99_000, None, None)
        .await
        .expect("small");
    assert!(matches!(ok.value, PromValue::Vector(v) if v.len() == 1));
}

/// Large selections are read in label-range parts on every worker; the answer must be the
/// one a single pass gives (same series, order, points and floats to the last bit).
#[test]
fn selections_read_in_parts_answer_as_one_pass() {
    const SERIES: usize = 1_500;
    let build = |rt: &tokio::runtime::Runtime| {
        rt.block_on(async {
            let dir = tempfile::tempdir().expect("tmp");
            let mut o = Options::new(dir.path());
            o.retention_time_ms = None;
            let db = Db::open(o).await.expect("open");
            let batch: Vec<SeriesSamples> = (0..SERIES)
                .map(|i| SeriesSamples {
                    histograms: Vec::new(),
                    labels: Labels::from_pairs([
                        ("__name__", "x_total".to_string()),
                        ("job", format!("j{}", i % 7)),
                        ("instance", format!("i{i:04}")),
                    ]),
                    samples: (0..=80)
                        .map(|k| (k * 15_000, (k * (i as i64 % 13 + 1)) as f64 * 0.1))
                        .collect(),
                })
                .collect();
            db.append(&batch).expect("append");
            (dir, db)
        })
    };
    let queries = [
        "rate(x_total[1m])",
        "sum by (job) (rate(x_total[1m]))",
        "count by (job) (x_total)",
        "x_total",
        "x_total offset 1m",
    ];
    let answers = |rt: &tokio::runtime::Runtime| -> Vec<PromValue> {
        let (_dir, db) = build(rt);
        // On the caller's runtime, whose workers decide how many parts are read.
        let opts = EngineOptions {
            compute_threads: 0,
            ..EngineOptions::default()
        };
        let engine = Engine::new(db, opts);
        queries
            .iter()
            .map(|q| {
                rt.block_on(engine.range(q, 60_000, 1_200_000, 30_000, None, None))
                    .expect("query")
                    .value
            })
            .collect()
    };
    let parallel = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // One worker: one part.
    let single = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (a, b) = (answers(&parallel), answers(&single));
    for ((q, a), b) in queries.iter().zip(&a).zip(&b) {
        let PromValue::Matrix(m) = a else {
            panic!("{q}: expected a matrix");
        };
        let expect = if q.starts_with("x_total") || q.starts_with("rate") {
            SERIES
        } else {
            7
        };
        assert_eq!(m.len(), expect, "{q}");
        assert!(m.iter().all(|s| !s.points.is_empty()), "{q}");
        assert_eq!(a, b, "{q}: parts and one pass differ");
    }
}

/// `EXPLAIN ANALYZE`: the query runs, and every operator shows its output rows and series
/// and its own compute time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_analyze_shows_per_operator_metrics() {
    let samples: Vec<(i64, f64)> = (0..=20).map(|i| (i * 15_000, i as f64 * 15.0)).collect();
    let (_dir, db) = db_with(&[
        ("x_total", "a", samples.clone()),
        ("x_total", "b", samples.clone()),
        ("up", "a", samples),
    ])
    .await;
    let engine = Engine::new(db, EngineOptions::default());
    let p = strata_engine::QueryParams {
        start: 60_000,
        end: 300_000,
        interval: 60_000,
        lookback: 300_000,
        max_source_resolution: strata_engine::AUTO_RESOLUTION,
    };
    let text = engine
        .explain_params(
            "sum by (job) (rate(x_total[1m])) / on(job) count by (job) (up)",
            p,
            true,
        )
        .await
        .expect("explain analyze");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "{text}");
    // Selectors (and the instant lookup an aggregation folds) are read by the node above
    // them, which shows their time; they do not run on their own.
    let ran: Vec<&&str> = lines.iter().filter(|l| !l.contains("metrics=[]")).collect();
    assert_eq!(ran.len(), 4, "{text}");
    for l in ran {
        assert!(l.contains("output_rows="), "{l}");
        assert!(l.contains("output_series="), "{l}");
        assert!(l.contains("elapsed_compute="), "{l}");
        assert!(l.contains("output_batches=1"), "{l}");
    }
    // The division: one series (job a) at 5 steps.
    assert!(lines[0].starts_with("PromJoin"), "{text}");
    assert!(lines[0].contains("output_rows=5,"), "{text}");
    assert!(lines[0].contains("output_series=1,"), "{text}");
    // The rate over two series at 5 steps, read from storage by the node itself.
    let rate = lines
        .iter()
        .find(|l| l.contains("PromRangeWindow"))
        .expect("rate");
    assert!(rate.contains("output_rows=10,"), "{rate}");
    assert!(rate.contains("output_series=2,"), "{rate}");
    // A bad query is refused, not explained.
    let err = engine.explain_params("sum(", p, true).await;
    assert!(err.is_err());
}

/// With selections cut into parts, a read has one partition per part, an aggregation with
/// fixed-size state runs as a partial node per partition and one final merge (EXPLAIN
/// ANALYZE shows both), and the answer is the one a single pass gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregations_split_into_partial_and_final_over_parts() {
    let mut specs = Vec::new();
    let names: Vec<String> = (0..12).map(|i| format!("i{i:02}")).collect();
    for (i, n) in names.iter().enumerate() {
        let samples: Vec<(i64, f64)> = (0..=20)
            .map(|k| (k * 15_000, (k * (i as i64 + 1)) as f64 * 1.5))
            .collect();
        specs.push(("x_total", n.as_str(), samples));
    }
    let (_dir, db) = db_with(&specs).await;
    let one = Engine::new(db.clone(), EngineOptions::default());
    let parted = Engine::new(
        db,
        EngineOptions {
            selection_parts: Some(3),
            ..EngineOptions::default()
        },
    );
    let p = strata_engine::QueryParams {
        start: 60_000,
        end: 300_000,
        interval: 30_000,
        lookback: 300_000,
        max_source_resolution: strata_engine::AUTO_RESOLUTION,
    };
    let q = "sum(rate(x_total[1m]))";
    let text = parted.explain_params(q, p, true).await.expect("explain");
    let lines: Vec<&str> = text.lines().map(str::trim_start).collect();
    assert!(lines[0].starts_with("PromAggregate: Final"), "{text}");
    assert!(lines[1].starts_with("PromAggregate: Partial"), "{text}");
    assert!(lines[2].contains("reads 3 parts"), "{text}");
    // The partial node ran once per part, over all 12 series between them.
    assert!(lines[2].contains("output_series=12,"), "{text}");
    assert!(lines[2].contains("series_read=12,"), "{text}");
    assert!(lines[0].contains("output_series=1,"), "{text}");
    for q in [
        "sum(rate(x_total[1m]))",
        "avg(x_total)",
        "stddev(x_total)",
        "max by (job) (x_total)",
        "count(x_total > 10)",
        "topk(2, x_total)",
        "quantile(0.5, rate(x_total[1m]))",
    ] {
        let a = one.range(q, p.start, p.end, p.interval, None, None).await;
        let b = parted
            .range(q, p.start, p.end, p.interval, None, None)
            .await;
        let (PromValue::Matrix(a), PromValue::Matrix(b)) =
            (a.expect("one").value, b.expect("parted").value)
        else {
            panic!("{q}: expected matrices");
        };
        assert_eq!(a.len(), b.len(), "{q}");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.labels, y.labels, "{q}");
            assert_eq!(x.points.len(), y.points.len(), "{q}");
            for (p, r) in x.points.iter().zip(&y.points) {
                assert_eq!(p.0, r.0, "{q}");
                assert!(
                    (p.1 - r.1).abs() <= 1e-9 * p.1.abs().max(1.0),
                    "{q}: {p:?} {r:?}"
                );
            }
        }
    }
}
