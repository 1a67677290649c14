//! Query memory is bounded before it is allocated: every point a query materialises
//! (raw samples, subquery steps, constant grids, aggregation buffers, output grids) counts
//! against `max_samples`, checked before the buffer grows; their bytes come out of the
//! engine's memory pool (`max_memory`), shared with SQL, whose operators and results are
//! bounded too.

use std::time::{Duration, Instant};

use strata_engine::{Engine, EngineError, EngineOptions, PromValue};
use strata_storage::{Appender, Db, Labels, Options, SeriesSamples};

/// `n` series `m{i="…"}` with one sample each at t = 0.
async fn db_of(n: usize) -> (tempfile::TempDir, std::sync::Arc<Db>) {
    let dir = tempfile::tempdir().expect("tmp");
    let mut o = Options::new(dir.path());
    o.retention_time_ms = None;
    let db = Db::open(o).await.expect("open");
    let batch: Vec<SeriesSamples> = (0..n)
        .map(|i| SeriesSamples {
            histograms: Vec::new(),
            labels: Labels::from_pairs([("__name__", "m".to_string()), ("i", format!("{i:05}"))]),
            samples: vec![(0, i as f64)],
        })
        .collect();
    db.append(&batch).expect("append");
    (dir, db)
}

fn engine(db: std::sync::Arc<Db>, max_samples: u64, max_memory: usize) -> Engine {
    Engine::new(
        db,
        EngineOptions {
            max_samples,
            max_memory,
            ..EngineOptions::default()
        },
    )
}

/// 1 000 steps of 1 s from t = 0, every series visible at every step (lookback 1 y).
async fn range(e: &Engine, q: &str) -> Result<PromValue, EngineError> {
    e.range(q, 0, 999_000, 1_000, Some(365 * 86_400_000), None)
        .await
        .map(|o| o.value)
}

/// The pool's reservations once the tasks of failed queries have stopped: their other
/// parts stop at their next await point and give their bytes back.
async fn pool_after_cancelled_tasks(e: &Engine) -> usize {
    let until = Instant::now() + Duration::from_secs(5);
    while e.runtime().memory_pool.reserved() != 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    e.runtime().memory_pool.reserved()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subquery_with_more_steps_than_max_samples_is_refused_when_planned() {
    let (_dir, db) = db_of(1).await;
    let e = engine(db, 50_000_000, 1 << 30);
    let started = Instant::now();
    let err = e
        .instant("max_over_time(vector(1)[30d:1ms])", 0, None, None)
        .await
        .expect_err("2.6e9 steps");
    assert!(matches!(err, EngineError::TooManySamples), "{err}");
    assert_eq!(err.error_type(), "execution");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused before running"
    );
    // Nested: the inner subquery's grid spans the outer one's range.
    let err = e
        .instant(
            "max_over_time(max_over_time(vector(1)[1h:1ms])[30d:1h])",
            0,
            None,
            None,
        )
        .await
        .expect_err("nested");
    assert!(matches!(err, EngineError::TooManySamples), "{err}");
    // Under the limit it runs.
    let ok = e
        .instant("count_over_time(vector(1)[10m:1s])", 600_000, None, None)
        .await
        .expect("600 steps");
    assert!(matches!(ok.value, PromValue::Vector(v) if v.len() == 1 && v[0].v == 600.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constant_grids_count_against_max_samples() {
    let (_dir, db) = db_of(1).await;
    let e = engine(db, 1_000, 1 << 30);
    // 1 200 steps: refused when planned.
    let err = e
        .instant("count_over_time(vector(1)[20m:1s])", 1_200_000, None, None)
        .await
        .expect_err("grid");
    assert!(matches!(err, EngineError::TooManySamples), "{err}");
    // 600 steps of vector(1) plus 600 of time(): 1 200 points held at once.
    let err = e
        .instant(
            "count_over_time((vector(1) + time())[10m:1s])",
            600_000,
            None,
            None,
        )
        .await
        .expect_err("two grids");
    assert!(matches!(err, EngineError::TooManySamples), "{err}");
    e.instant("count_over_time(vector(1)[10m:1s])", 600_000, None, None)
        .await
        .expect("one grid of 600");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_query_output_grids_count_against_max_samples() {
    let (_dir, db) = db_of(100).await;
    // 100 series × 1 000 steps = 100 000 points.
    let e = engine(db.clone(), 50_000, 1 << 30);
    for q in ["m", "m * 2", "-m", "last_over_time(m[1y])", "m > 0"] {
        let err = range(&e, q).await.expect_err(q);
        assert!(matches!(err, EngineError::TooManySamples), "{q}: {err}");
    }
    // Aggregation buffers: one accumulator per group and step.
    let err = range(&e, "sum by (i) (m)").await.expect_err("sum by");
    assert!(matches!(err, EngineError::TooManySamples), "{err}");
    // Fewer points than the limit: fine, and the budget was given back in between.
    let e = engine(db, 250_000, 1 << 30);
    let PromValue::Matrix(m) = range(&e, "m * 2").await.expect("fits") else {
        panic!("matrix");
    };
    assert_eq!((m.len(), m[0].points.len()), (100, 1000));
    let PromValue::Matrix(m) = range(&e, "sum(m)").await.expect("sum") else {
        panic!("matrix");
    };
    assert_eq!(m[0].points.len(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relations_reserve_their_bytes_from_the_memory_pool() {
    let (_dir, db) = db_of(100).await;
    // 100 000 points of 20 bytes do not fit in 1 MiB.
    let e = engine(db.clone(), u64::MAX, 1 << 20);
    let err = range(&e, "m").await.expect_err("pool");
    assert!(
        // One query may hold half the pool (--query.max-memory-per-query's default).
        matches!(err, EngineError::OutOfMemory { limit, .. } if limit == 1 << 19),
        "{err}"
    );
    assert_eq!(err.error_type(), "execution");
    assert!(err.to_string().contains("--query.max-memory"), "{err}");
    assert_eq!(
        pool_after_cancelled_tasks(&e).await,
        0,
        "a failed query frees its bytes"
    );
    // A small query still runs in the same pool.
    let ok = e.instant("sum(m)", 0, None, None).await.expect("small");
    assert!(matches!(&ok.value, PromValue::Vector(v) if v.len() == 1));
    drop(ok);
    assert_eq!(e.runtime().memory_pool.reserved(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_operators_and_results_are_bounded() {
    let (_dir, db) = db_of(1).await;
    let e = Engine::new(
        db,
        EngineOptions {
            max_memory: 16 << 20,
            sql_max_result_bytes: 1 << 20,
            ..EngineOptions::default()
        },
    );
    // A hash aggregation of 2M groups needs more than 16 MiB, and nothing spills.
    let err = e
        .sql(
            "SELECT v % 2000000 AS k, count(*) AS n FROM generate_series(1, 4000000) AS t(v) \
             GROUP BY k ORDER BY n DESC LIMIT 3",
            None,
        )
        .await
        .expect_err("memory");
    assert!(matches!(err, EngineError::OutOfMemory { .. }), "{err}");
    assert!(err.to_string().contains("--query.max-memory"), "{err}");
    // 2 MB of strings pass the 1 MiB result cap.
    let err = e
        .sql(
            "SELECT repeat('x', 1000) AS s FROM generate_series(1, 2000)",
            None,
        )
        .await
        .expect_err("result bytes");
    assert!(
        matches!(err, EngineError::ResultTooLarge { limit } if limit == 1 << 20),
        "{err}"
    );
    assert_eq!(err.error_type(), "execution");
    let ok = e
        .sql(
            "SELECT repeat('x', 1000) AS s FROM generate_series(1, 500)",
            None,
        )
        .await
        .expect("under the cap");
    assert_eq!(ok.batches.iter().map(|b| b.num_rows()).sum::<usize>(), 500);
    assert!(ok.bytes() >= 500_000, "{}", ok.bytes());
    assert!(
        e.runtime().memory_pool.reserved() >= 500_000,
        "the result holds its bytes"
    );
    drop(ok);
    assert_eq!(pool_after_cancelled_tasks(&e).await, 0);
    // Functions that build more than they are given are refused before they allocate
    // (`range` and `array_repeat` too, when DataFusion's nested functions are built in).
    for q in [
        "SELECT length(repeat('x', 100000000))",
        "SELECT length(lpad('x', 100000000))",
        "SELECT length(rpad('x', 100000000, 'yz'))",
        "SELECT length(repeat('x', v * 10000000)) FROM generate_series(1, 3) AS t(v)",
    ] {
        let started = Instant::now();
        let err = e.sql(q, None).await.expect_err(q);
        assert!(matches!(err, EngineError::OutOfMemory { .. }), "{q}: {err}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{q}: {:?}",
            started.elapsed()
        );
    }
    let ok = e
        .sql(
            "SELECT length(lpad('x', 1000)) AS n, length(repeat('ab', 10)) AS l",
            None,
        )
        .await
        .expect("small");
    assert_eq!(ok.batches[0].num_rows(), 1);
}

/// The response is rendered after the query's budget is gone, so its bytes are reserved
/// from the query's share with the result: a result that fits as points but not as JSON
/// is refused, and the reservation lives exactly as long as the outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_too_large_to_render_is_refused_and_its_room_is_held_while_it_lives() {
    // A 20 MiB share. 200 series × 1 000 points: 7.2 MB as result points and 8 MB of JSON.
    let (_dir, db) = db_of(200).await;
    let e = engine(db, 50_000_000, 40 << 20);
    let out = e
        .range("m", 0, 999_000, 1_000, Some(365 * 86_400_000), None)
        .await
        .expect("fits the share");
    let held = e.runtime().memory_pool.reserved();
    assert!(
        held >= out.value.json_bytes(),
        "{held} < {}",
        out.value.json_bytes()
    );
    drop(out);
    assert_eq!(pool_after_cancelled_tasks(&e).await, 0);
    // 400 series: 14.4 MB of points fit the share, 16 MB more of JSON do not.
    let (_dir, db) = db_of(400).await;
    let e = engine(db, 50_000_000, 40 << 20);
    let err = range(&e, "m")
        .await
        .expect_err("the points fit, the JSON does not");
    assert_eq!(err.error_type(), "execution", "{err}");
    assert!(err.to_string().contains("the response"), "{err}");
    assert_eq!(pool_after_cancelled_tasks(&e).await, 0);
}

/// A native histogram of `buckets` positive buckets, sampled every 15 s for an hour.
async fn histogram_db(buckets: i32) -> (tempfile::TempDir, std::sync::Arc<Db>) {
    let dir = tempfile::tempdir().expect("tmp");
    let mut o = Options::new(dir.path());
    o.retention_time_ms = None;
    o.max_future_ms = None;
    let db = Db::open(o).await.expect("open");
    let h = std::sync::Arc::new(strata_vocab::FloatHistogram {
        schema: 3,
        count: f64::from(buckets),
        sum: 1.0,
        positive: (0..buckets).map(|i| (i, 1.0)).collect(),
        ..Default::default()
    });
    db.append(&[SeriesSamples {
        labels: Labels::from_pairs([("__name__", "h")]),
        samples: Vec::new(),
        histograms: (0..240).map(|k| (k * 15_000, h.clone())).collect(),
    }])
    .expect("append");
    (dir, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histogram_rows_count_their_size_against_max_samples() {
    // 1,000 buckets: about 1,000 points a row. The subquery makes 3,600 rows of one
    // stored histogram: 3.6k rows, but ~3.6M points of histogram.
    let (_dir, db) = histogram_db(1000).await;
    let q = "last_over_time(h[1h:1s])";
    let e = engine(db.clone(), 1_000_000, 1 << 30);
    let err = e
        .instant(q, 3_600_000, None, None)
        .await
        .expect_err("3.6M points of histograms");
    assert!(matches!(err, EngineError::TooManySamples), "{err}");
    assert_eq!(
        pool_after_cancelled_tasks(&e).await,
        0,
        "the charge is given back"
    );
    // Within a limit that holds them it runs, and gives everything back.
    let e = engine(db, 50_000_000, 1 << 30);
    let v = e.instant(q, 3_600_000, None, None).await.expect("runs");
    assert!(
        matches!(v.value, PromValue::Vector(ref s) if s.len() == 1),
        "{:?}",
        v.value
    );
    drop(v);
    assert_eq!(pool_after_cancelled_tasks(&e).await, 0);
}
