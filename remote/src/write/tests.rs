//! Resource bounds of the queues against a fake receiver: a receiver that never answers
//! leaves at most `max_shards × (capacity + 2 × max_samples_per_send)` samples pending
//! while the WAL grows; a receiver down while the WAL drops the segments a queue pinned
//! leaves the queue counting them as skipped, and its pin moves on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use strata_config::Config;
use strata_storage::{Appender, Db, Labels, Options, SeriesSamples};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::RemoteWrite;

/// How the fake receiver answers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Answer {
    /// Reads the request and never answers.
    Never,
    /// Answers with this status (a 2xx takes the samples).
    Status(u16),
}

/// A remote-write receiver on a local port.
struct Receiver {
    port: u16,
    answer: Arc<Mutex<Answer>>,
    /// Samples taken.
    samples: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // Its connections go with it (they live in the task's `JoinSet`).
        self.task.abort();
    }
}

impl Receiver {
    async fn start(answer: Answer) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let answer = Arc::new(Mutex::new(answer));
        let samples = Arc::new(AtomicU64::new(0));
        let (a, s) = (answer.clone(), samples.clone());
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                conns.spawn(serve(stream, a.clone(), s.clone()));
            }
        });
        Receiver {
            port,
            answer,
            samples,
            task,
        }
    }

    fn set(&self, answer: Answer) {
        *self.answer.lock() = answer;
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/write", self.port)
    }
}

/// Answers the requests of one connection as `answer` says when each arrives.
async fn serve(mut s: TcpStream, answer: Arc<Mutex<Answer>>, samples: Arc<AtomicU64>) {
    let mut buf = Vec::new();
    loop {
        let Some(body) = next_request(&mut s, &mut buf).await else {
            return;
        };
        let a = *answer.lock();
        let code = match a {
            Answer::Never => return std::future::pending().await,
            Answer::Status(code) => code,
        };
        if (200..300).contains(&code) {
            let req = strata_ingest::remote_write::decode(&body).expect("a WriteRequest");
            let n: usize = req.timeseries.iter().map(|t| t.samples.len()).sum();
            samples.fetch_add(n as u64, Ordering::Relaxed);
        }
        let head = format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n");
        if s.write_all(head.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// The body of the next request on `s` (`buf` holds what was read past the last one);
/// `None` when the connection ends.
async fn next_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut chunk = [0u8; 16 << 10];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let body = buf[end + 4..end + 4 + len].to_vec();
                buf.drain(..end + 4 + len);
                return Some(body);
            }
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `series` series of `per_series` samples each, one a millisecond from `t0`.
fn batch(series: usize, per_series: usize, t0: i64) -> Vec<SeriesSamples> {
    (0..series)
        .map(|i| {
            SeriesSamples::floats(
                Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())]),
                (0..per_series).map(|j| (t0 + j as i64, j as f64)).collect(),
            )
        })
        .collect()
}

/// A queue named `q` sending to `url` with `queue_config` (YAML, indented 6).
fn config(url: &str, queue_config: &str) -> Config {
    let text = format!(
        "remote_write:\n  - url: {url}\n    name: q\n    remote_timeout: 1m\n    queue_config:\n{queue_config}"
    );
    Config::from_yaml_str(&text, "test").expect("config")
}

/// The value of the queue's metric `name`.
fn metric(rw: &RemoteWrite, name: &str) -> f64 {
    let mut out = String::new();
    rw.render_metrics(&mut out);
    out.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(name)?;
            (rest.starts_with('{') || rest.starts_with(' ')).then_some(rest)
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{out}"))
}

/// Waits up to `secs` for `f`.
async fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

/// The segment queue `q` pins, once its reader runs.
fn pinned(rw: &RemoteWrite) -> Option<u64> {
    rw.env.pins.segments.lock().get("q").copied()
}

async fn open(dir: &std::path::Path, block_range_ms: i64) -> Arc<Db> {
    let mut o = Options::new(dir.join("data"));
    o.block_range_ms = block_range_ms;
    Db::open(o).await.expect("open")
}

/// A receiver that takes requests and never answers: the queue reads the WAL only as fast
/// as its shards take samples, so what it holds stays within its configured capacity
/// however much the WAL grows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_that_never_answers_leaves_a_bounded_number_of_samples_pending() {
    let receiver = Receiver::start(Answer::Never).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let db = open(tmp.path(), 2 * 3_600_000).await;
    let rw = RemoteWrite::new(db.clone(), tmp.path().to_path_buf());
    let (capacity, shards, per_send) = (100u64, 2u64, 10u64);
    let cfg = config(
        &receiver.url(),
        &format!(
            "      capacity: {capacity}\n      min_shards: {shards}\n      max_shards: {shards}\n      max_samples_per_send: {per_send}\n"
        ),
    );
    rw.apply(&cfg).await.expect("apply");
    assert!(
        eventually(10, || pinned(&rw).is_some()).await,
        "queue started"
    );
    // Prometheus's bound: per shard, its capacity, the batch being filled and the one
    // being sent.
    let bound = (shards * (capacity + 2 * per_send)) as f64;
    let wal_before = db.disk_bytes();
    let t0 = now_ms() - 600_000;
    let mut max_pending = 0.0f64;
    let mut written = 0u64;
    for round in 0..20 {
        // 4000 samples a round: one WAL read holds far more than the bound.
        let b = batch(40, 100, t0 + round * 100);
        written += 4000;
        db.append(&b).expect("append");
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            max_pending = max_pending.max(metric(&rw, "prometheus_remote_storage_samples_pending"));
        }
    }
    assert!(
        eventually(5, || metric(
            &rw,
            "prometheus_remote_storage_samples_pending"
        ) > 0.0)
        .await,
        "the queue read samples"
    );
    max_pending = max_pending.max(metric(&rw, "prometheus_remote_storage_samples_pending"));
    assert!(
        max_pending >= (shards * capacity) as f64,
        "{max_pending} samples pending: the queue read ahead to its capacity"
    );
    assert!(
        max_pending <= bound,
        "{max_pending} samples pending, more than {bound} (capacity {capacity} × {shards} shards + batches)"
    );
    assert!(
        written as f64 > 10.0 * bound,
        "the WAL holds far more than the queue"
    );
    assert!(db.disk_bytes() > wal_before, "the WAL grew");
    assert_eq!(metric(&rw, "prometheus_remote_storage_samples_total"), 0.0);
    // The newest timestamp is what was stored, not what the queue read, so the lag behind
    // it (the "remote write behind" alert) shows while the receiver does not answer.
    assert_eq!(
        metric(
            &rw,
            "prometheus_remote_storage_highest_timestamp_in_seconds"
        ),
        db.head.max_time() as f64 / 1e3
    );
    drop(receiver);
    rw.stop().await;
}

/// A receiver down while the WAL grows past its bound for kept segments: the next
/// checkpoint deletes the segments the queue pinned (the WAL's disk is not held hostage by
/// a dead receiver); once the receiver is back the queue counts them in
/// `strata_remote_storage_wal_segments_skipped_total`, sends what is left, and its pin
/// follows the WAL again.
///
/// The bound is [`strata_storage::wal::KEEP_MAX_BYTES`] (1 GiB): a closed segment is made
/// to look that large by extending it sparsely (checkpoints go by file sizes).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_queue_behind_the_wal_bound_skips_and_counts_the_deleted_segments() {
    let receiver = Receiver::start(Answer::Status(503)).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let range = 60_000;
    let db = open(tmp.path(), range).await;
    let wal = db.wal_dir().to_path_buf();
    let rw = RemoteWrite::new(db.clone(), tmp.path().to_path_buf());
    let cfg = config(
        &receiver.url(),
        "      min_backoff: 10ms\n      max_backoff: 50ms\n",
    );
    rw.apply(&cfg).await.expect("apply");
    assert!(
        eventually(10, || pinned(&rw) == Some(0)).await,
        "queue started at segment 0"
    );
    let t0 = (now_ms() - 3_600_000) / range * range;
    // The queue reads these and is held retrying them.
    db.append(&batch(10, 10, t0)).expect("append");
    assert!(
        eventually(10, || metric(
            &rw,
            "prometheus_remote_storage_samples_retried_total"
        ) > 0.0)
        .await,
        "the receiver refuses"
    );
    // Twice two block ranges more: the head is cut and the WAL checkpointed, the segments
    // from 0 on kept for the queue.
    for k in 1..=2 {
        db.append(&batch(10, 10, t0 + k * 5 * range / 2))
            .expect("append");
        db.maintain().await.expect("maintain");
    }
    let current = strata_storage::wal::WalTail::end(&wal)
        .expect("end")
        .segment;
    assert!(current >= 2, "the cuts rotated the WAL: segment {current}");
    for n in 0..=current {
        assert!(wal.join(format!("{n:08}")).exists(), "segment {n} is kept");
    }
    // The newest closed segment grows past the bound: the next checkpoint deletes it and
    // every older one, pinned or not (the small segment 0 would fit, but a queue must not
    // find a hole between kept segments).
    let big = wal.join(format!("{:08}", current - 1));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .and_then(|f| f.set_len(strata_storage::wal::KEEP_MAX_BYTES + 1))
        .expect("extend");
    let after = t0 + 8 * range;
    db.append(&batch(10, 10, after)).expect("append");
    db.maintain().await.expect("maintain");
    assert!(!big.exists(), "a segment past the bound is deleted");
    assert!(
        !wal.join(format!("{:08}", 0)).exists(),
        "so is the pinned one"
    );
    assert!(
        wal.join(format!("{:08}", current)).exists(),
        "the newest is kept"
    );
    // The receiver is back: the queue skips the deleted segments and sends the rest.
    receiver.set(Answer::Status(204));
    assert!(
        eventually(20, || receiver.samples.load(Ordering::Relaxed) >= 200).await,
        "the first batch and the one after the gap arrive: {}",
        receiver.samples.load(Ordering::Relaxed)
    );
    assert!(
        eventually(10, || metric(
            &rw,
            "strata_remote_storage_wal_segments_skipped_total"
        ) == current as f64)
        .await,
        "segments 0..{current} counted as skipped: {}",
        metric(&rw, "strata_remote_storage_wal_segments_skipped_total")
    );
    let end = strata_storage::wal::WalTail::end(&wal)
        .expect("end")
        .segment;
    assert!(
        eventually(10, || pinned(&rw) == Some(end)).await,
        "the pin follows the WAL again: {:?}, end {end}",
        pinned(&rw)
    );
    rw.stop().await;
}
