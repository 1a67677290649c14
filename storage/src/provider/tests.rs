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
            labels: Labels::from_pairs([("__name__", "up".to_string()), ("job", format!("j{i}"))]),
            samples: (0..10).map(|k| (k * 500, (i * k) as f64)).collect(),
        })
        .chain(std::iter::once(SeriesSamples {
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
