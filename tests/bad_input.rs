//! Bad input never loses or corrupts data: random and truncated remote-write bodies get a
//! 400 and change nothing; a torn or corrupt WAL tail is cut off with a warning and the
//! records before it are kept.

mod common;

use std::io::Write;

use common::{Server, post_write, read_all, write_body};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const T0: i64 = 1_700_000_000_000;

#[test]
fn malformed_remote_write_bodies_are_refused_and_store_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(dir.path(), &[]);
    let good = write_body(0..50, T0, 10, 15_000);
    assert_eq!(post_write(server.port, good.clone()).expect("post"), 204);

    let mut runner = TestRunner::new(Config {
        cases: 300,
        ..Config::default()
    });
    let port = server.port;
    let result = runner.run(
        &(
            proptest::collection::vec(any::<u8>(), 0..2048),
            any::<u16>(),
            any::<bool>(),
        ),
        |(junk, cut, compress)| {
            // Random bytes, random bytes snappy-compressed, and truncated valid bodies.
            let bodies = vec![
                junk.clone(),
                if compress {
                    snap::raw::Encoder::new()
                        .compress_vec(&junk)
                        .unwrap_or_default()
                } else {
                    junk.clone()
                },
                good[..(cut as usize % good.len().max(1))].to_vec(),
            ];
            for b in bodies {
                let code = post_write(port, b).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(code == 400 || code == 204, "status {}", code);
            }
            Ok(())
        },
    );
    result.expect("every malformed body gets a 400");
    // Still alive and healthy.
    let r = common::reqwest::blocking_client()
        .get(server.url("/-/healthy"))
        .send()
        .expect("healthy");
    assert_eq!(r.status().as_u16(), 200);
    server.stop();
    let stored = read_all(dir.path());
    let n: usize = stored.iter().map(|s| s.samples.len()).sum();
    // A truncated body can decode as a shorter valid request only if snappy and protobuf
    // both accept it; snappy's length header makes that impossible, so exactly the good data.
    assert_eq!(n, 50 * 10);
    assert_eq!(stored.len(), 50);
}

#[test]
fn invalid_series_is_a_400_naming_the_reason() {
    use strata_ingest::remote_write::{Label, Sample, TimeSeries, WriteRequest, encode};
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(dir.path(), &[]);
    let req = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![Label {
                name: "job".into(),
                value: "x".into(),
            }],
            samples: vec![Sample {
                value: 1.0,
                timestamp: T0,
            }],
        }],
        metadata: vec![],
    };
    let r = common::reqwest::blocking_client()
        .post(server.url("/api/v1/write"), encode(&req))
        .send()
        .expect("post");
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().contains("missing metric name"), "{}", r.text());
    server.stop();
    assert!(read_all(dir.path()).is_empty());
}

#[test]
fn corrupt_wal_tail_is_cut_and_the_rest_kept() {
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(dir.path(), &[]);
    for i in 0..10 {
        let body = write_body(0..20, T0 + i * 150_000, 10, 15_000);
        assert_eq!(post_write(server.port, body).expect("post"), 204);
    }
    server.kill9();
    // Tear the newest segment: garbage after the last record, as a crash mid-write leaves.
    let wal = dir.path().join("wal");
    let mut segs: Vec<_> = std::fs::read_dir(&wal)
        .expect("wal dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
        })
        .collect();
    segs.sort();
    let last = segs
        .iter()
        .rev()
        .find(|p| std::fs::metadata(p).map(|m| m.len() > 0).unwrap_or(false))
        .expect("a segment with data")
        .clone();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .expect("open segment");
    f.write_all(&[0x20, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3])
        .expect("append garbage");
    drop(f);

    let server = Server::start(dir.path(), &[]);
    server.stop();
    let stored = read_all(dir.path());
    let n: usize = stored.iter().map(|s| s.samples.len()).sum();
    assert_eq!(n, 10 * 20 * 10, "every record before the torn tail is kept");
}
