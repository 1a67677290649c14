//! Round trip, as a property: whatever sequence of appends (in order, out of order,
//! duplicates, conflicting values), head cuts, compactions, deletions, crashes and graceful
//! restarts happens, the querier returns exactly what a simple model says was stored — also
//! when the selection is read in label-range parts, as the query engine does. Samples are
//! floats and native histograms mixed in the same series.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use strata_storage::{Appender, Db, Labels, MatchOp, Matcher, Options, SeriesRange, SeriesSamples};
use strata_vocab::histogram::{CUSTOM_BUCKETS_SCHEMA, CounterResetHint, FloatHistogram};

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<(usize, i64, u8)>),
    Maintain,
    Delete(usize, i64, i64),
    Crash,
    Restart,
}

fn labels(i: usize) -> Labels {
    Labels::from_pairs([("__name__", format!("m{}", i % 2)), ("i", i.to_string())])
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec((0usize..4, 0i64..20_000, 0u8..6), 1..40).prop_map(Op::Append),
        2 => Just(Op::Maintain),
        1 => (0usize..4, 0i64..20_000, 0i64..5_000).prop_map(|(s, a, l)| Op::Delete(s, a, a + l)),
        1 => Just(Op::Crash),
        1 => Just(Op::Restart),
    ]
}

/// A sample of either kind.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    F(f64),
    H(Arc<FloatHistogram>),
}

/// Values 0..3 are floats; 3..6 histograms (one of them with custom buckets).
fn value(v: u8) -> Val {
    if v < 3 {
        return Val::F(f64::from(v));
    }
    let n = f64::from(v);
    let mut h = FloatHistogram {
        schema: i32::from(v) - 4,
        count: 2.0 * n,
        sum: 1.5 * n,
        zero_threshold: 0.001,
        zero_count: 1.0,
        positive: vec![(-1, n - 1.0), (2, 1.0)],
        negative: vec![(0, n - 2.0)],
        ..FloatHistogram::default()
    };
    if v == 5 {
        h.schema = CUSTOM_BUCKETS_SCHEMA;
        h.zero_threshold = 0.0;
        h.zero_count = 0.0;
        h.negative.clear();
        h.positive = vec![(0, 1.0), (2, n)];
        h.custom_values = Arc::from(vec![0.5, 1.0]);
    }
    Val::H(Arc::new(h))
}

type Model = BTreeMap<Labels, BTreeMap<i64, Val>>;

fn options(dir: &std::path::Path) -> Options {
    let mut o = Options::new(dir);
    o.block_range_ms = 1_000;
    o.ooo_window_ms = i64::MAX / 4;
    o.retention_time_ms = None;
    o
}

async fn all(db: &Db) -> Vec<SeriesSamples> {
    let m = [Matcher::new(MatchOp::Regex, "__name__", ".+").expect("matcher")];
    let whole = db.select(&m, i64::MIN, i64::MAX).await.expect("select");
    // Read in parts (label ranges), concatenated: the same series and samples.
    let labels = db.series(&m, i64::MIN, i64::MAX).await.expect("series");
    for parts in [2, 3] {
        let mut joined = Vec::new();
        for r in SeriesRange::split(&labels, parts) {
            joined.extend(
                db.select_in(&m, i64::MIN, i64::MAX, Some(&r))
                    .await
                    .expect("select_in"),
            );
        }
        assert_eq!(joined, whole, "select in {parts} parts");
    }
    // Read with a filter (a distributed query's share): exactly the series it keeps,
    // from the head and the blocks alike.
    let even = strata_storage::SeriesFilter(Arc::new(|l: &Labels| {
        l.get("i")
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|i| i % 2 == 0)
    }));
    let kept = SeriesRange {
        keep: Some(even.clone()),
        ..Default::default()
    };
    let got = db
        .select_in(&m, i64::MIN, i64::MAX, Some(&kept))
        .await
        .expect("select_in");
    let want: Vec<SeriesSamples> = whole
        .iter()
        .filter(|s| (even.0)(&s.labels))
        .cloned()
        .collect();
    assert_eq!(got, want, "select with a filter");
    whole
}

fn expected(model: &Model) -> Vec<SeriesSamples> {
    model
        .iter()
        .filter(|(_, s)| !s.is_empty())
        .map(|(l, s)| SeriesSamples {
            labels: l.clone(),
            samples: s
                .iter()
                .filter_map(|(t, v)| match v {
                    Val::F(f) => Some((*t, *f)),
                    Val::H(_) => None,
                })
                .collect(),
            histograms: s
                .iter()
                .filter_map(|(t, v)| match v {
                    Val::H(h) => Some((*t, h.clone())),
                    Val::F(_) => None,
                })
                .collect(),
        })
        .collect()
}

/// The samples with their counter-reset hints left out, gauges aside: the head's chunks
/// give Prometheus's hints (unknown for a chunk's first sample, "not a reset" after),
/// not the appended ones (the head's own tests check those rules).
fn without_hints(mut v: Vec<SeriesSamples>) -> Vec<SeriesSamples> {
    for s in &mut v {
        for (_, h) in &mut s.histograms {
            if h.hint != CounterResetHint::Gauge {
                Arc::make_mut(h).hint = CounterResetHint::Unknown;
            }
        }
    }
    v
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tmp");
    let mut db = Db::open(options(dir.path())).await.expect("open");
    let mut model: Model = BTreeMap::new();
    for op in ops {
        match op {
            Op::Append(samples) => {
                let mut batch: Vec<SeriesSamples> = Vec::new();
                // Within a batch, floats are stored before histograms (first write wins).
                let mut ordered: Vec<(usize, i64, Val)> = samples
                    .into_iter()
                    .map(|(s, t, v)| (s, t, value(v)))
                    .collect();
                ordered.sort_by_key(|x| matches!(x.2, Val::H(_)));
                for (s, t, v) in ordered {
                    let entry = model.entry(labels(s)).or_default();
                    entry.entry(t).or_insert(v.clone());
                    batch.push(match v {
                        Val::F(f) => SeriesSamples::floats(labels(s), vec![(t, f)]),
                        Val::H(h) => SeriesSamples {
                            labels: labels(s),
                            samples: Vec::new(),
                            histograms: vec![(t, h)],
                        },
                    });
                }
                db.append(&batch).expect("append");
            }
            Op::Maintain => db.maintain().await.expect("maintain"),
            Op::Delete(s, a, b) => {
                let m = Matcher::new(MatchOp::Equal, "i", s.to_string()).expect("matcher");
                db.delete_series(&[m], a, b).await.expect("delete");
                if let Some(x) = model.get_mut(&labels(s)) {
                    x.retain(|t, _| *t < a || *t > b);
                }
            }
            Op::Crash => {
                drop(db);
                db = Db::open(options(dir.path()))
                    .await
                    .expect("reopen after crash");
            }
            Op::Restart => {
                db.close().await.expect("close");
                drop(db);
                db = Db::open(options(dir.path())).await.expect("reopen");
            }
        }
        let got = all(&db).await;
        prop_assert_eq!(without_hints(got), without_hints(expected(&model)));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn querier_returns_what_was_appended(ops in proptest::collection::vec(op(), 1..25)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        rt.block_on(run(ops))?;
    }
}

/// A float and a histogram at one timestamp of one series in one batch: the float wins,
/// in the head and after a crash (the WAL holds floats first).
#[test]
fn a_float_and_a_histogram_at_one_time_keep_the_float() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(vec![
        Op::Append(vec![(0, 9325, 0), (0, 9325, 3)]),
        Op::Crash,
        Op::Maintain,
    ]))
    .expect("the float wins");
}
