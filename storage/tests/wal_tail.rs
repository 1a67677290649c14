//! A WAL tail (what remote-write queues read) sees every sample appended after its
//! position exactly once, in order, across segment rotations, a graceful restart that cuts
//! the head into blocks and checkpoints the WAL, and new series after the restart.

use std::collections::HashMap;

use strata_storage::wal::{Record, WalPosition, WalTail};
use strata_storage::{Appender, Db, Labels, Options, SeriesSamples};

fn batch(k: i64, series: usize) -> Vec<SeriesSamples> {
    (0..series)
        .map(|i| SeriesSamples {
            histograms: Vec::new(),
            labels: Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())]),
            samples: (0..10)
                .map(|j| (k * 10_000 + j * 1000, (k * 100 + j) as f64))
                .collect(),
        })
        .collect()
}

/// Learns the `i` label of each series record.
fn learn(names: &mut HashMap<u32, String>, records: Vec<Record>) {
    for r in records {
        if let Record::Series(list) = r {
            for (id, pairs) in list {
                let i = pairs.iter().find(|p| p.0 == "i").map(|p| p.1.clone());
                names.insert(id, i.unwrap_or_default());
            }
        }
    }
}

/// Reads everything available: `(labels of the series, ts)` of each sample.
fn drain(tail: &mut WalTail, names: &mut HashMap<u32, String>) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    loop {
        let before = tail.position();
        let r = tail.read(1 << 20).expect("read");
        let empty = r.records.is_empty();
        for rec in r.records {
            match rec {
                Record::Series(list) => {
                    for (id, pairs) in list {
                        let i = pairs.iter().find(|p| p.0 == "i").map(|p| p.1.clone());
                        names.insert(id, i.unwrap_or_default());
                    }
                }
                Record::Samples(s) => {
                    for (id, t, _) in s {
                        out.push((names.get(&id).cloned().unwrap_or_else(|| "?".into()), t));
                    }
                }
                Record::Tombstones(_) | Record::Histograms(_) | Record::Exemplars(_) => {}
            }
        }
        if empty && tail.position() == before {
            return out;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tail_reads_every_sample_once_across_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut o = Options::new(dir.path());
    o.retention_time_ms = None;
    let db = Db::open(o.clone()).await.expect("open");
    db.append(&batch(0, 3)).expect("append");
    // A queue starting now sees only what follows.
    let start = WalTail::end(db.wal_dir()).expect("end");
    db.keep_wal_from(Some(start.segment));
    db.append(&batch(1, 3)).expect("append");
    let (mut tail, known) = WalTail::open(db.wal_dir(), start).expect("tail");
    let mut names = HashMap::new();
    learn(&mut names, known);
    let first = drain(&mut tail, &mut names);
    assert_eq!(first.len(), 30, "{first:?}");
    assert!(
        first
            .iter()
            .all(|(s, t)| s != "?" && (10_000..20_000).contains(t)),
        "{first:?}"
    );
    let saved: WalPosition = tail.position();
    // More while nobody reads, then a graceful restart (head cut into blocks, checkpoint).
    db.append(&batch(2, 3)).expect("append");
    db.close().await.expect("close");
    drop(db);
    let db = Db::open(o).await.expect("reopen");
    db.append(&batch(3, 5)).expect("append");
    let (mut tail, known) = WalTail::open(db.wal_dir(), saved).expect("tail");
    let mut names = HashMap::new();
    learn(&mut names, known);
    let rest = drain(&mut tail, &mut names);
    let mut seen: Vec<(String, i64)> = rest.clone();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), rest.len(), "duplicates: {rest:?}");
    assert_eq!(rest.len(), 30 + 50, "{rest:?}");
    assert!(rest.iter().all(|(s, _)| s != "?"), "{rest:?}");
    assert_eq!(
        rest.iter()
            .filter(|(_, t)| (20_000..30_000).contains(t))
            .count(),
        30
    );
    assert_eq!(
        rest.iter()
            .filter(|(_, t)| (30_000..40_000).contains(t))
            .count(),
        50
    );
}
