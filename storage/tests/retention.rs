//! Retention: by time, whole blocks older than the retention window (measured from the
//! newest sample) are dropped and everything inside the window stays; by size, the oldest
//! blocks go first until blocks + WAL fit.

use strata_storage::{Appender, Db, Labels, MatchOp, Matcher, Options, SeriesSamples};

fn batch(from: i64, to: i64) -> Vec<SeriesSamples> {
    (0..4)
        .map(|i| SeriesSamples {
            histograms: Vec::new(),
            labels: Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())]),
            samples: (from..to)
                .step_by(100)
                .map(|t| (t, (t / 100 + i) as f64))
                .collect(),
        })
        .collect()
}

async fn stored(db: &Db) -> Vec<(i64, f64)> {
    let m = Matcher::new(MatchOp::Equal, "i", "0").expect("matcher");
    let r = db.select(&[m], i64::MIN, i64::MAX).await.expect("select");
    r.into_iter().flat_map(|s| s.samples).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_retention_drops_whole_old_blocks_only() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut o = Options::new(dir.path());
    o.block_range_ms = 1_000;
    o.retention_time_ms = Some(3_000);
    let db = Db::open(o).await.expect("open");
    // Appended in slices, maintaining in between, as a live server would.
    for slice in 0..10 {
        db.append(&batch(slice * 1_000, (slice + 1) * 1_000))
            .expect("append");
        db.maintain().await.expect("maintain");
    }
    let newest = 9_900;
    let got = stored(&db).await;
    let first = got.first().expect("something is kept").0;
    // Everything within the window is kept...
    assert!(
        first <= newest - 3_000,
        "data inside retention was dropped: first={first}"
    );
    // ...what is kept is a contiguous suffix, starting on a block boundary...
    assert_eq!(first % 1_000, 0);
    let expect: Vec<(i64, f64)> = (first..=newest)
        .step_by(100)
        .map(|t| (t, (t / 100) as f64))
        .collect();
    assert_eq!(got, expect);
    // ...and old data did go.
    assert!(first > 0, "nothing was dropped by retention");
    assert!(db.blocks().iter().all(|b| b.meta.max_time > newest - 3_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_retention_drops_oldest_blocks_first() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut o = Options::new(dir.path());
    o.block_range_ms = 1_000;
    o.retention_time_ms = None;
    let db = Db::open(o.clone()).await.expect("open");
    for slice in 0..10 {
        db.append(&batch(slice * 1_000, (slice + 1) * 1_000))
            .expect("append");
        db.maintain().await.expect("maintain");
    }
    db.close().await.expect("close");
    let total = db.disk_bytes();
    let blocks_before = db.blocks().len();
    drop(db);
    // One byte too many: exactly the oldest block has to go.
    let limit = total - 1;
    o.retention_size_bytes = Some(limit);
    let db = Db::open(o).await.expect("reopen");
    db.maintain().await.expect("maintain");
    assert!(db.disk_bytes() <= limit, "{} > {limit}", db.disk_bytes());
    assert!(db.blocks().len() < blocks_before);
    let got = stored(&db).await;
    let first = got.first().expect("newest data kept").0;
    assert_eq!(got.last().map(|s| s.0), Some(9_900), "newest data kept");
    let expect: Vec<(i64, f64)> = (first..=9_900)
        .step_by(100)
        .map(|t| (t, (t / 100) as f64))
        .collect();
    assert_eq!(got, expect, "a contiguous suffix is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_removed_under_a_running_query_stays_readable_by_it() {
    // A query holds the blocks it started with; retention (or compaction) removing one
    // meanwhile must not fail the query: the block's open file outlives its directory.
    let dir = tempfile::tempdir().expect("tmp");
    let mut o = Options::new(dir.path());
    o.block_range_ms = 1_000;
    o.retention_time_ms = Some(3_000);
    let db = Db::open(o).await.expect("open");
    for slice in 0..4 {
        db.append(&batch(slice * 1_000, (slice + 1) * 1_000))
            .expect("append");
        db.maintain().await.expect("maintain");
    }
    let held = db.blocks();
    let oldest = held.first().expect("a block").clone();
    let m = Matcher::new(MatchOp::Equal, "i", "0").expect("matcher");
    let ids = oldest.select(std::slice::from_ref(&m));
    let before = oldest.read(&ids, i64::MIN, i64::MAX).await.expect("read");
    for slice in 4..12 {
        db.append(&batch(slice * 1_000, (slice + 1) * 1_000))
            .expect("append");
        db.maintain().await.expect("maintain");
    }
    assert!(
        !db.blocks()
            .iter()
            .any(|b| std::sync::Arc::ptr_eq(b, &oldest)),
        "retention removed the block"
    );
    assert!(
        !dir.path()
            .join(oldest.dir().as_ref())
            .join("meta.json")
            .exists(),
        "its files are gone"
    );
    let after = oldest
        .read(&ids, i64::MIN, i64::MAX)
        .await
        .expect("read after removal");
    assert_eq!(before, after);
    assert!(!after.is_empty());
}
