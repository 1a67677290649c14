//! Storage classes of the hardening issue, against the real binary: time bounds at append
//! (a far-future or too-old sample is refused and nothing stored is lost), WAL framing (a
//! checkpoint of series with huge label values survives kill -9), and disk full (a failed
//! WAL write leaves nothing visible, `/-/ready` says so, and ingestion resumes by itself
//! once space is back).

use std::time::{Duration, Instant};

use strata_ingest::remote_write::{Label, Sample, TimeSeries, WriteRequest, encode};

use crate::common::{Server, enc, read_all, reqwest};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn series(name: &str, extra: &[(&str, String)], samples: &[(i64, f64)]) -> TimeSeries {
    let mut labels = vec![Label {
        name: "__name__".into(),
        value: name.into(),
    }];
    labels.extend(extra.iter().map(|(n, v)| Label {
        name: (*n).into(),
        value: v.clone(),
    }));
    TimeSeries {
        labels,
        samples: samples
            .iter()
            .map(|&(timestamp, value)| Sample { value, timestamp })
            .collect(),
    }
}

fn body(ts: Vec<TimeSeries>) -> Vec<u8> {
    encode(&WriteRequest {
        timeseries: ts,
        metadata: vec![],
    })
}

fn post(port: u16, b: Vec<u8>) -> (u16, String) {
    crate::common::post_write_text(port, b)
}

/// Number of series `count_over_time(<sel>[window])` finds at now.
fn count_series(s: &Server, sel: &str) -> usize {
    let r = reqwest::blocking_client()
        .get(s.url(&format!("/api/v1/series?match[]={}", enc(sel))))
        .send()
        .expect("series");
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    v["data"].as_array().map_or(0, Vec::len)
}

/// Samples of `sel` stored between `start` and `end` (ms), through `/api/v1/query`.
fn samples_in(s: &Server, sel: &str, start: i64, end: i64) -> f64 {
    let range_s = ((end - start) / 1000).max(1);
    let q = format!("sum(count_over_time({sel}[{range_s}s]))");
    let r = reqwest::blocking_client()
        .get(s.url(&format!(
            "/api/v1/query?query={}&time={}",
            enc(&q),
            end as f64 / 1000.0
        )))
        .send()
        .expect("query");
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|x| x.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn far_future_and_too_old_samples_are_refused_and_nothing_is_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &["--storage.tsdb.retention.time=1d"]);
    let now = now_ms();
    // 5 hours of data at 1 minute: the head spans more than 1.5 block ranges, so
    // maintenance cuts blocks that retention could (wrongly) delete.
    let pts: Vec<(i64, f64)> = (0..300)
        .map(|i| (now - 5 * 3_600_000 + i * 60_000, i as f64))
        .collect();
    let (code, text) = post(s.port, body(vec![series("kept", &[], &pts)]));
    assert_eq!(code, 204, "{text}");

    let year = 365 * 24 * 3_600_000i64;
    let (code, text) = post(
        s.port,
        body(vec![series("future", &[], &[(now + year, 1.0)])]),
    );
    assert_eq!(code, 400, "a sample a year ahead is refused: {text}");
    assert!(text.contains("out of bounds"), "{text}");
    let (code, text) = post(
        s.port,
        body(vec![series("future", &[], &[(now + 3_600_000, 1.0)])]),
    );
    assert_eq!(code, 400, "an hour ahead is past the 10m tolerance: {text}");
    let (code, _) = post(
        s.port,
        body(vec![series("soon", &[], &[(now + 60_000, 1.0)])]),
    );
    assert_eq!(code, 204, "a minute ahead is within the tolerance");

    let (code, text) = post(
        s.port,
        body(vec![series("old", &[], &[(now - 2 * 24 * 3_600_000, 1.0)])]),
    );
    assert_eq!(
        code, 400,
        "a sample retention would delete is refused: {text}"
    );
    assert!(text.contains("out of bounds"), "{text}");

    // Maintenance runs every 5 s: give it two rounds to cut, compact and apply retention.
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(count_series(&s, "future"), 0);
    assert_eq!(count_series(&s, "old"), 0);
    let n = samples_in(&s, "kept", now - 6 * 3_600_000, now);
    assert_eq!(n, 300.0, "every acknowledged sample is still there");
    let blocks = std::fs::read_dir(dir.path().join("blocks"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(
        blocks > 0,
        "the head was cut into blocks, which retention kept"
    );
    s.stop();
    let stored: usize = read_all(dir.path()).iter().map(|s| s.samples.len()).sum();
    assert_eq!(stored, 301, "300 kept + 1 soon, nothing else");
}

#[test]
fn retention_never_counts_from_a_time_past_the_wall_clock() {
    // With the future check off, a far-future sample is stored, but retention still
    // counts back from now: today's data stays.
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(
        dir.path(),
        &[
            "--storage.tsdb.retention.time=1d",
            "--storage.tsdb.too-far-in-future.time-window=0s",
        ],
    );
    let now = now_ms();
    let pts: Vec<(i64, f64)> = (0..300)
        .map(|i| (now - 5 * 3_600_000 + i * 60_000, 1.0))
        .collect();
    assert_eq!(post(s.port, body(vec![series("kept", &[], &pts)])).0, 204);
    std::thread::sleep(Duration::from_secs(7));
    let year = 365 * 24 * 3_600_000i64;
    assert_eq!(
        post(
            s.port,
            body(vec![series("future", &[], &[(now + year, 1.0)])])
        )
        .0,
        204
    );
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(samples_in(&s, "kept", now - 6 * 3_600_000, now), 300.0);
}

#[test]
fn a_checkpoint_of_huge_label_values_survives_kill_9() {
    // 1,100 series with 300 KB label values: 330 MB of labels. A checkpoint cut by series
    // count made one record over the reader's 256 MiB limit and replay dropped them all.
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let now = now_ms();
    let big = |i: usize| format!("{i:06}{}", "x".repeat(300_000));
    for chunk in (0..1100usize).collect::<Vec<_>>().chunks(100) {
        let ts = chunk
            .iter()
            .map(|&i| {
                series(
                    "big_labels",
                    &[("blob", big(i))],
                    // A span over 3h: maintenance cuts a block and then checkpoints the WAL.
                    &[(now - 4 * 3_600_000, 1.0), (now, 2.0)],
                )
            })
            .collect();
        let (code, text) = post(s.port, body(ts));
        assert_eq!(code, 204, "{text}");
    }
    // Wait for the cut and checkpoint.
    let deadline = Instant::now() + Duration::from_secs(120);
    let wal = dir.path().join("wal");
    loop {
        let has_cp = std::fs::read_dir(&wal)
            .map(|d| {
                d.flatten().any(|e| {
                    e.file_name().to_string_lossy().starts_with("checkpoint.")
                        && !e.file_name().to_string_lossy().ends_with(".tmp")
                })
            })
            .unwrap_or(false);
        if has_cp {
            break;
        }
        assert!(Instant::now() < deadline, "no checkpoint was written");
        std::thread::sleep(Duration::from_millis(500));
    }
    s.kill9();
    let s = Server::start(dir.path(), &[]);
    assert_eq!(
        count_series(&s, "big_labels"),
        1100,
        "every series came back from the checkpoint"
    );
    s.stop();
}

/// Mounts a small tmpfs at `dir` (root only); `None` when that is impossible here.
fn mount_tmpfs(dir: &std::path::Path, size: &str) -> Option<()> {
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(())
}

struct Unmount(std::path::PathBuf);
impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn disk_full_refuses_writes_leaves_nothing_visible_and_recovers_without_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    if mount_tmpfs(dir.path(), "16m").is_none() {
        eprintln!("SKIP disk_full_…: cannot mount a tmpfs here (needs root)");
        return;
    }
    let _umount = Unmount(dir.path().to_path_buf());
    let data = dir.path().join("data");
    let s = Server::start(&data, &[]);
    let now = now_ms();
    let ok = (0..10)
        .map(|i| (now - 60_000 + i * 1000, 1.0))
        .collect::<Vec<_>>();
    assert_eq!(post(s.port, body(vec![series("before", &[], &ok)])).0, 204);

    // Fill the file system.
    let filler = dir.path().join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).expect("filler");
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    // A write big enough not to fit in what is left.
    let many: Vec<TimeSeries> = (0..2000)
        .map(|i| series("during", &[("i", i.to_string())], &ok))
        .collect();
    let mut refused = 0;
    for _ in 0..5 {
        let (code, _) = post(s.port, body(many.clone()));
        assert_ne!(code, 204, "a write the WAL could not hold was acknowledged");
        assert!(code >= 500, "disk full is the server's trouble: {code}");
        refused += 1;
    }
    assert_eq!(refused, 5);
    let ready = reqwest::blocking_client()
        .get(s.url("/-/ready"))
        .send()
        .expect("ready");
    assert_eq!(
        ready.status().as_u16(),
        503,
        "/-/ready reports the failing WAL"
    );
    assert_eq!(
        count_series(&s, "during"),
        0,
        "nothing of a refused write is visible"
    );
    assert_eq!(samples_in(&s, "during", now - 120_000, now), 0.0);
    assert_eq!(samples_in(&s, "before", now - 120_000, now), 10.0);

    // Space comes back: readiness returns by itself (no write needed: a not-ready server
    // behind a load balancer gets none), and ingestion resumes.
    std::fs::remove_file(&filler).expect("remove filler");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = reqwest::blocking_client()
            .get(s.url("/-/ready"))
            .send()
            .expect("ready");
        if r.status().as_u16() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still not ready after space came back"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let (code, text) = post(s.port, body(many.clone()));
    assert_eq!(code, 204, "{text}");
    let ready = reqwest::blocking_client()
        .get(s.url("/-/ready"))
        .send()
        .expect("ready");
    assert_eq!(ready.status().as_u16(), 200);
    assert_eq!(count_series(&s, "during"), 2000);
    s.kill9();
    let s = Server::start(&data, &[]);
    assert_eq!(
        count_series(&s, "during"),
        2000,
        "the acknowledged write survives kill -9"
    );
    assert_eq!(samples_in(&s, "before", now - 120_000, now), 10.0);
    drop(s);
}
