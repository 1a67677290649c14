use std::sync::Arc;

use datafusion::arrow::array::{AsArray, Int64Array};
use datafusion::prelude::SessionContext;

use super::*;
use crate::db::{Appender, SeriesSamples};
use crate::options::Options;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_over_head_and_blocks() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut o = Options::new(dir.path());
    o.block_range_ms = 1000;
    let db = Db::open(o).await.expect("open");
    let batch: Vec<SeriesSamples> = (0..3)
        .map(|i| SeriesSamples {
            histograms: Vec::new(),
            labels: Labels::from_pairs([("__name__", "up".to_string()), ("job", format!("j{i}"))]),
            samples: (0..10).map(|k| (k * 500, (i * k) as f64)).collect(),
        })
        .chain(std::iter::once(SeriesSamples {
            histograms: Vec::new(),
            labels: Labels::from_pairs([("__name__", "other"), ("job", "x")]),
            samples: vec![(0, 1.0)],
        }))
        .collect();
    db.append(&batch).expect("append");
    db.maintain().await.expect("cut some blocks");
    assert!(!db.blocks().is_empty());
    let ctx = SessionContext::new();
    ctx.register_table("samples", Arc::new(SamplesTable::new(db.clone())))
        .expect("register");
    ctx.register_table("series", Arc::new(SeriesTable::new(db.clone())))
        .expect("register");
    let df = ctx
        .sql("SELECT count(*) AS n FROM samples WHERE metric = 'up' AND timestamp >= to_timestamp_millis(1000)")
        .await
        .expect("plan");
    let rows = df.collect().await.expect("run");
    let n = rows[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("count")
        .value(0);
    assert_eq!(n, 3 * 8);
    let rows = ctx
        .sql("SELECT labels FROM series WHERE metric = 'up'")
        .await
        .expect("plan")
        .collect()
        .await
        .expect("run");
    let map = rows[0].column(0).as_map();
    let jobs: Vec<String> = map
        .values()
        .as_string::<i32>()
        .iter()
        .flatten()
        .map(str::to_owned)
        .collect();
    assert_eq!(jobs, ["j0", "j1", "j2"]);
    assert_eq!(map.keys().as_string::<i32>().value(0), "job");
}

/// Pushed-down filters on a metric table give exactly what DataFusion's own filtering
/// gives: strict and inclusive time bounds, `=`/`<>`/`IN` on labels including the empty
/// value and absent labels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_table_filters_are_exact() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut o = Options::new(dir.path());
    o.block_range_ms = 1000;
    let db = Db::open(o).await.expect("open");
    let batch: Vec<SeriesSamples> = ["a", "b", ""]
        .iter()
        .map(|job| SeriesSamples {
            histograms: Vec::new(),
            labels: Labels::from_pairs([("__name__", "m"), ("job", job), ("x", "1")]),
            samples: (0..10).map(|k| (k * 500, k as f64)).collect(),
        })
        .collect();
    db.append(&batch).expect("append");
    db.maintain().await.expect("cut some blocks");
    let ctx = SessionContext::new();
    ctx.register_table(
        "m",
        Arc::new(
            metric::MetricTable::new(db.clone(), "m")
                .await
                .expect("t")
                .expect("exists"),
        ),
    )
    .expect("register");
    let count = |q: String| {
        let ctx = ctx.clone();
        async move {
            let rows = ctx
                .sql(&q)
                .await
                .expect("plan")
                .collect()
                .await
                .expect("run");
            rows[0]
                .column(0)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .value(0)
        }
    };
    for (filter, want) in [
        ("timestamp > to_timestamp_millis(1000)", 3 * 7),
        ("timestamp >= to_timestamp_millis(1000)", 3 * 8),
        ("timestamp < to_timestamp_millis(1000)", 3 * 2),
        ("timestamp <= to_timestamp_millis(1000)", 3 * 3),
        ("timestamp = to_timestamp_millis(1500)", 3),
        ("job = 'a'", 10),
        ("job = ''", 0),
        ("job <> 'a'", 10),
        ("job IN ('a', 'b')", 20),
        ("job IN ('a', '')", 10),
        ("job IS NULL", 10),
        ("job = 'a' AND timestamp > to_timestamp_millis(4000)", 1),
    ] {
        let n = count(format!("SELECT count(*) FROM m WHERE {filter}")).await;
        assert_eq!(n, want, "{filter}");
    }
}

/// A read-only open (`strata sql` beside a server) leaves an unfinished block (no
/// meta.json yet: a server may be writing it) and the WAL alone, and SQL skips staleness
/// markers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_open_changes_nothing_and_sql_skips_stale_markers() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = Db::open(Options::new(dir.path())).await.expect("open");
    let stale = crate::STALE_NAN;
    db.append(&[SeriesSamples {
        histograms: Vec::new(),
        labels: Labels::from_pairs([("__name__", "g"), ("job", "a")]),
        samples: vec![(1000, 1.0), (2000, 2.0), (3000, stale)],
    }])
    .expect("append");
    db.sync_wal().expect("sync");
    let unfinished = dir.path().join("blocks").join("01UNFINISHED");
    std::fs::create_dir_all(&unfinished).expect("mkdir");
    std::fs::write(unfinished.join("samples.parquet"), b"partial").expect("write");
    let wal_files = |p: &std::path::Path| {
        let mut v: Vec<(String, u64)> = std::fs::read_dir(p.join("wal"))
            .expect("wal")
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().map(|m| m.len()).unwrap_or(0),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = wal_files(dir.path());
    let mut o = Options::new(dir.path());
    o.read_only = true;
    let ro = Db::open(o).await.expect("open read-only");
    assert!(
        unfinished.join("samples.parquet").exists(),
        "unfinished block kept"
    );
    assert_eq!(wal_files(dir.path()), before, "WAL untouched");
    let ctx = SessionContext::new();
    ctx.register_table(
        "g",
        Arc::new(
            metric::MetricTable::new(ro.clone(), "g")
                .await
                .expect("t")
                .expect("exists"),
        ),
    )
    .expect("register");
    let rows = ctx
        .sql("SELECT count(*), sum(value) FROM g")
        .await
        .expect("plan")
        .collect()
        .await
        .expect("run");
    assert_eq!(
        rows[0]
            .column(0)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .value(0),
        2
    );
    assert_eq!(
        rows[0]
            .column(1)
            .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
            .value(0),
        3.0
    );
    ro.close().await.expect("close read-only");
    assert_eq!(wal_files(dir.path()), before, "close writes nothing");
    db.close().await.expect("close");
}

/// The scan streams a read at a time with its raw samples reserved from the session's
/// pool: a count over more data than the pool holds answers, a sort that must hold every
/// row is refused by the pool, and a read bounded by a charge stops early.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_stream_within_the_memory_pool() {
    use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryPool};
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::prelude::SessionConfig;

    let dir = tempfile::tempdir().expect("tmp");
    let mut o = Options::new(dir.path());
    o.block_range_ms = 3_600_000;
    let db = Db::open(o).await.expect("open");
    // 400 series × 5,000 samples at 15 s (2M samples, 32 MB raw) over ~21 h.
    for chunk in 0..10 {
        let batch: Vec<SeriesSamples> = (0..400)
            .map(|i| SeriesSamples {
                histograms: Vec::new(),
                labels: Labels::from_pairs([
                    ("__name__", "m".to_string()),
                    ("i", format!("{i:04}")),
                ]),
                samples: (chunk * 500..(chunk + 1) * 500)
                    .map(|k| (k * 15_000, k as f64))
                    .collect(),
            })
            .collect();
        db.append(&batch).expect("append");
    }
    db.maintain().await.expect("cut blocks");
    assert!(!db.blocks().is_empty());
    let pool = Arc::new(GreedyMemoryPool::new(24 << 20));
    let rt = RuntimeEnvBuilder::new()
        .with_memory_pool(pool.clone())
        .build_arc()
        .expect("runtime");
    let ctx = SessionContext::new_with_config_rt(SessionConfig::new(), rt);
    ctx.register_table("samples", Arc::new(SamplesTable::new(db.clone())))
        .expect("register");
    let count = |rows: Vec<RecordBatch>| {
        rows[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("count")
            .value(0)
    };
    let rows = ctx
        .sql("SELECT count(*) FROM samples")
        .await
        .expect("plan")
        .collect()
        .await
        .expect("a count streams");
    assert_eq!(count(rows), 400 * 5000);
    assert_eq!(pool.reserved(), 0, "the scan gives its reservation back");
    let sorted = ctx
        .sql("SELECT * FROM samples ORDER BY value, timestamp")
        .await
        .expect("plan")
        .collect()
        .await;
    let err = sorted
        .expect_err("a sort of 2M rows does not fit 24 MiB")
        .to_string();
    assert!(err.contains("esources exhausted"), "{err}");
    // The scan estimates its rows, so a cross join builds on its small side (a join that
    // collected the whole table and looped over it row by row took minutes to refuse).
    let plan = ctx
        .sql("EXPLAIN SELECT count(*) FROM samples a CROSS JOIN (SELECT value FROM samples LIMIT 10) b")
        .await
        .expect("plan")
        .collect()
        .await
        .expect("explain");
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&plan)
        .expect("text")
        .to_string();
    let after_join: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("CrossJoinExec"))
        .take(2)
        .collect();
    assert!(after_join[1].contains("GlobalLimitExec"), "{text}");
    // The raw samples a read decodes are reserved: a pool smaller than one read refuses.
    let tiny = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(GreedyMemoryPool::new(1 << 20)))
        .build_arc()
        .expect("runtime");
    let small = SessionContext::new_with_config_rt(SessionConfig::new(), tiny);
    small
        .register_table("samples", Arc::new(SamplesTable::new(db.clone())))
        .expect("register");
    let err = small
        .sql("SELECT count(*) FROM samples")
        .await
        .expect("plan")
        .collect()
        .await
        .expect_err("one read needs more than 1 MiB")
        .to_string();
    assert!(err.contains("esources exhausted"), "{err}");

    // A charge that allows 10,000 samples stops a larger read.
    struct Upto(std::sync::atomic::AtomicUsize);
    impl crate::ReadCharge for Upto {
        fn charge(&self, n: usize) -> bool {
            use std::sync::atomic::Ordering::Relaxed;
            self.0.fetch_add(n, Relaxed) + n <= 10_000
        }
    }
    let m = [Matcher::equal(METRIC_NAME, "m")];
    let r = db
        .select_charged(&m, i64::MIN, i64::MAX, None, &Upto(0.into()))
        .await;
    assert!(matches!(r, Err(crate::StorageError::ReadRefused)));
    let r = db
        .select_charged(&m, 0, 15_000 * 19, None, &Upto(0.into()))
        .await
        .expect("400 × 20 samples fit");
    assert_eq!(r.iter().map(|s| s.samples.len()).sum::<usize>(), 8000);
}
