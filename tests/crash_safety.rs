//! Crash safety: remote-write a few hundred thousand samples over thousands of series,
//! `kill -9` the server mid-stream, restart it, and find every acknowledged sample exactly
//! once (no loss, no duplicates in the Parquet files).

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Server, post_write, read_all, write_body};

const SERIES: usize = 2000;
const PER_REQUEST_SERIES: usize = 200;
const SAMPLES_PER_SERIES: usize = 25;
const ROUNDS: usize = 8;
const STEP: i64 = 15_000;
const T0: i64 = 1_700_000_000_000;

/// Request `i`: round `i / 10`, series block `i % 10`.
fn request(i: usize) -> (std::ops::Range<usize>, i64) {
    let round = i / (SERIES / PER_REQUEST_SERIES);
    let block = i % (SERIES / PER_REQUEST_SERIES);
    let t0 = T0 + (round * SAMPLES_PER_SERIES) as i64 * STEP;
    (
        block * PER_REQUEST_SERIES..(block + 1) * PER_REQUEST_SERIES,
        t0,
    )
}

#[test]
fn kill_9_loses_no_acknowledged_sample() {
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(dir.path(), &[]);
    let port = server.port;
    let total = ROUNDS * SERIES / PER_REQUEST_SERIES;
    let acked = Arc::new(Mutex::new(Vec::<usize>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let sender = {
        let acked = acked.clone();
        let count = count.clone();
        std::thread::spawn(move || {
            for i in 0..total {
                let (range, t0) = request(i);
                match post_write(port, write_body(range, t0, SAMPLES_PER_SERIES, STEP)) {
                    Ok(204) => {
                        if let Ok(mut a) = acked.lock() {
                            a.push(i);
                        }
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(code) => panic!("request {i} answered {code}"),
                    Err(_) => return, // server gone
                }
            }
        })
    };
    // Kill while requests are still flowing.
    while count.load(Ordering::SeqCst) < total * 6 / 10 {
        std::thread::sleep(Duration::from_millis(2));
    }
    server.kill9();
    sender.join().expect("sender thread");
    let acked: Vec<usize> = acked.lock().expect("lock").clone();
    assert!(
        acked.len() >= total * 6 / 10 && acked.len() < total,
        "killed mid-stream: {} of {total}",
        acked.len()
    );

    // Restart (WAL replay), then stop gracefully so everything lands in blocks.
    let server = Server::start(dir.path(), &[]);
    server.stop();

    let stored = read_all(dir.path());
    let mut by_instance: BTreeMap<String, BTreeMap<i64, f64>> = BTreeMap::new();
    for s in &stored {
        let inst = s.labels.get("instance").unwrap_or_default().to_string();
        by_instance
            .entry(inst)
            .or_default()
            .extend(s.samples.iter().copied());
    }
    let mut expected_samples = 0usize;
    for &i in &acked {
        let (range, t0) = request(i);
        for series in range {
            let got = by_instance
                .get(&format!("host-{series}"))
                .unwrap_or_else(|| {
                    panic!("series host-{series} of acknowledged request {i} missing")
                });
            for k in 0..SAMPLES_PER_SERIES {
                let t = t0 + k as i64 * STEP;
                let v = got.get(&t).unwrap_or_else(|| {
                    panic!("sample t={t} of host-{series} (request {i}) missing")
                });
                assert_eq!(*v, (series * 1000 + k) as f64);
                expected_samples += 1;
            }
        }
    }
    let unique: usize = stored.iter().map(|s| s.samples.len()).sum();
    assert!(unique >= expected_samples);
    assert!(
        unique >= 300_000 * 6 / 10,
        "a few hundred thousand samples: {unique}"
    );

    // No duplicates on disk: Parquet rows == unique (series, timestamp) pairs.
    let rows = common_parquet_rows(dir.path());
    assert_eq!(rows, unique, "Parquet holds duplicate samples");
    let ids: HashSet<String> = by_instance.keys().cloned().collect();
    assert!(ids.len() <= SERIES);
}

fn common_parquet_rows(data: &std::path::Path) -> usize {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let mut rows = 0usize;
    for e in std::fs::read_dir(data.join("blocks"))
        .expect("blocks dir")
        .flatten()
    {
        let f = std::fs::File::open(e.path().join("samples.parquet")).expect("samples.parquet");
        let r = SerializedFileReader::new(f).expect("parquet");
        rows += r.metadata().file_metadata().num_rows() as usize;
    }
    rows
}
