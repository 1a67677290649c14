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

mod rules {
    //! Retention rules per series, as a property: series of a rule lose exactly their
    //! samples in blocks wholly older than the rule's cutoff (block-granular, as the time
    //! retention); the other series keep everything the default retention keeps; a rule
    //! longer than the default keeps its series' old blocks; downsampled blocks follow the
    //! same rules.
    use proptest::prelude::*;
    use strata_storage::{
        Appender, Db, DownsampleOptions, Labels, MatchOp, Matcher, Options, RetentionRule,
        SeriesSamples,
    };

    const BLOCK: i64 = 1_000;

    fn series(name: &str, i: u32, to: i64) -> SeriesSamples {
        SeriesSamples::floats(
            Labels::from_pairs([("__name__", name.to_string()), ("i", i.to_string())]),
            (0..to).step_by(50).map(|t| (t, (t / 50) as f64)).collect(),
        )
    }

    async fn oldest(db: &Db, name: &str) -> Option<i64> {
        let m = Matcher::new(MatchOp::Equal, "__name__", name).expect("matcher");
        let r = db.select(&[m], i64::MIN, i64::MAX).await.expect("select");
        r.iter()
            .filter_map(|s| s.samples.first().map(|x| x.0))
            .min()
    }

    async fn run(short: i64, long: i64, default: i64, slices: i64) {
        let dir = tempfile::tempdir().expect("tmp");
        let mut o = Options::new(dir.path());
        o.block_range_ms = BLOCK;
        o.ooo_window_ms = 0;
        o.max_future_ms = None;
        o.retention_time_ms = Some(default);
        o.downsample = Some(DownsampleOptions {
            after_ms: 2 * BLOCK,
            retention_5m_ms: None,
            retention_1h_ms: None,
        });
        let sel = |re: &str| vec![Matcher::new(MatchOp::Regex, "__name__", re).expect("re")];
        o.retention_rules = vec![
            RetentionRule {
                selectors: vec![sel("debug_.*")],
                raw_ms: Some(short),
                retention_5m_ms: Some(short),
                retention_1h_ms: Some(short),
            },
            RetentionRule {
                selectors: vec![sel("slo_.*")],
                raw_ms: Some(long),
                retention_5m_ms: None,
                retention_1h_ms: None,
            },
        ];
        let db = Db::open(o).await.expect("open");
        for k in 1..=slices {
            let to = k * BLOCK;
            let mut b = Vec::new();
            for (name, i) in [("debug_x", 0), ("debug_x", 1), ("slo_y", 0), ("other", 0)] {
                let all = series(name, i, to);
                let fresh: Vec<(i64, f64)> = all
                    .samples
                    .into_iter()
                    .filter(|x| x.0 >= to - BLOCK)
                    .collect();
                b.push(SeriesSamples::floats(all.labels, fresh));
            }
            db.append(&b).expect("append");
            db.maintain().await.expect("maintain");
        }
        let newest = slices * BLOCK - 50;
        // Block-granular cutoffs: what is kept starts in the block holding the cutoff (or
        // later), what is gone was wholly older.
        for (name, ret) in [("debug_x", short), ("slo_y", long), ("other", default)] {
            let cutoff = newest - ret;
            let first = oldest(&db, name).await.expect("series kept");
            if cutoff <= 0 {
                assert_eq!(first, 0, "{name}: dropped data inside its retention");
                continue;
            }
            assert!(
                first <= cutoff,
                "{name}: dropped data inside its retention (first {first}, cutoff {cutoff})"
            );
            // Blocks are at most 3 ranges wide after compaction (max range = 10% of the
            // longest retention here, or more): a kept block ends after the cutoff.
            for b in db.blocks() {
                let m = Matcher::new(MatchOp::Equal, "__name__", name).expect("m");
                if !b.select(&[m]).is_empty() {
                    assert!(
                        b.meta.max_time > cutoff,
                        "{name}: a wholly expired raw block kept it"
                    );
                }
            }
        }
        // Downsampled blocks: the rule's series are gone from wholly expired ones.
        let cutoff = newest - short;
        for b in db.downsampled_blocks() {
            let m = Matcher::new(MatchOp::Equal, "__name__", "debug_x").expect("m");
            if b.meta.max_time <= cutoff {
                assert!(
                    b.select(&[m]).is_empty(),
                    "an expired downsampled block kept debug_x"
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

        #[test]
        fn rules_remove_exactly_their_series_old_blocks(
            short in 1i64..8, long in 10i64..30, default in 4i64..12, slices in 12i64..30,
        ) {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
            rt.block_on(run(short * BLOCK, long * BLOCK, default * BLOCK, slices));
        }
    }
}
