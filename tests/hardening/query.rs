//! Query memory is bounded before it is allocated. Each request below OOM-killed a release
//! build, or would: a subquery of 2.6e9 steps, a range query of 10k series × 11,001 steps
//! with `lookback_delta=1y` (every step of every series has a value), an SQL query whose
//! operators need more than `--query.max-memory`, and an SQL result of 100 MB. Each is
//! refused with Prometheus's error envelope (`execution`, 422) and the server stays up,
//! within a stated peak RSS where it matters.

use std::time::{Duration, Instant};

use crate::common::{Server, enc, post_write, reqwest, write_body};

fn get(s: &Server, path: &str) -> (u16, String) {
    let r = reqwest::blocking_client()
        .get(s.url(path))
        .send()
        .expect("GET");
    (r.status().as_u16(), r.text())
}

fn sql(s: &Server, q: &str) -> (u16, String) {
    let r = reqwest::blocking_client()
        .post(s.url("/api/v1/sql"), q.as_bytes().to_vec())
        .header("Content-Type", "application/sql")
        .send()
        .expect("POST /api/v1/sql");
    (r.status().as_u16(), r.text())
}

fn assert_alive(s: &Server) {
    let (code, body) = get(s, "/-/healthy");
    assert_eq!(code, 200, "{body}");
    let (code, body) = get(s, "/api/v1/query?query=1%2B1&time=0");
    assert_eq!(code, 200, "{body}");
}

/// The server's peak resident set (`VmHWM`), in bytes.
fn peak_rss(s: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.child.id()))
        .expect("/proc/<pid>/status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM");
    kb * 1024
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

const TOO_MANY: &str =
    "query processing would load too many samples into memory in query execution";

#[test]
fn the_subquery_of_death_is_refused_quickly() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &[]);
    for q in [
        "max_over_time(vector(1)[30d:1ms])",
        "count_over_time(vector(time())[1y:1ms])",
        "max_over_time(max_over_time(vector(1)[1h:1ms])[30d:1h])",
    ] {
        let started = Instant::now();
        let (code, body) = get(
            &s,
            &format!("/api/v1/query?query={}&time=1700000000", enc(q)),
        );
        assert_eq!(code, 422, "{q}: {body}");
        assert_eq!(
            body,
            format!(r#"{{"status":"error","errorType":"execution","error":"{TOO_MANY}"}}"#),
            "{q}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{q}: refused when planned, took {:?}",
            started.elapsed()
        );
    }
    assert_alive(&s);
}

/// Peak RSS allowed while the 10k × 11,001 query is refused: the default limits
/// (`--query.max-samples=50000000`, `--query.max-memory=1GB`) let a query hold about 1 GB
/// of points, plus the server itself. Without the limits the query takes several GB.
const RANGE_QUERY_RSS: u64 = 1_500 * 1024 * 1024;

#[test]
fn a_range_query_of_10k_series_by_11k_steps_is_refused_in_bounded_memory() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &[]);
    // 10k series, two samples each, before the query range: with lookback_delta=1y every
    // series has a value at every step.
    let t0 = now_ms() - 4 * 3_600_000;
    for chunk in 0..5 {
        let body = write_body(chunk * 2_000..(chunk + 1) * 2_000, t0, 2, 60_000);
        assert_eq!(post_write(s.port, body).expect("write"), 204);
    }
    let start = (t0 + 3_600_000) / 1000;
    let q = enc(r#"{job="crash"}"#);
    eprintln!("peak RSS before the query: {} MB", peak_rss(&s) >> 20);
    // 11,001 points per series is one too many, as in Prometheus.
    let (code, body) = get(
        &s,
        &format!(
            "/api/v1/query_range?query={q}&start={start}&end={}&step=1&lookback_delta=1y",
            start + 11_001
        ),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("exceeded maximum resolution of 11,000 points per timeseries"),
        "{body}"
    );
    // 11,000 steps: 10k × 11,001 = 110M points, over the 50M of --query.max-samples.
    let started = Instant::now();
    let (code, body) = get(
        &s,
        &format!(
            "/api/v1/query_range?query={q}&start={start}&end={}&step=1&lookback_delta=1y",
            start + 11_000
        ),
    );
    assert_eq!(code, 422, "{body}");
    // Refused by whichever bound it meets first: the 50M points of --query.max-samples or
    // the per-query memory share (half of the 1 GiB pool: ~26M points of 20 bytes).
    assert!(
        body == format!(r#"{{"status":"error","errorType":"execution","error":"{TOO_MANY}"}}"#)
            || (body.starts_with(r#"{"status":"error","errorType":"execution","error":"query processing would use too much memory"#)),
        "{body}"
    );
    let rss = peak_rss(&s);
    eprintln!(
        "10k × 11,001 refused in {:?}, peak RSS {} MB",
        started.elapsed(),
        rss >> 20
    );
    assert!(
        rss < RANGE_QUERY_RSS,
        "peak RSS {} MB over {} MB (query took {:?})",
        rss >> 20,
        RANGE_QUERY_RSS >> 20,
        started.elapsed()
    );
    assert_alive(&s);
    // A query of the same series that fits still answers.
    let (code, body) = get(
        &s,
        &format!(
            "/api/v1/query_range?query={}&start={start}&end={}&step=60&lookback_delta=1y",
            enc(r#"count({job="crash"})"#),
            start + 600
        ),
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""10000""#), "{body}");
}

#[test]
fn an_sql_query_past_the_memory_limit_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &["--query.max-memory=64MB"]);
    // 10M groups of a hash aggregation need far more than 64 MB, and nothing spills.
    let started = Instant::now();
    let (code, body) = sql(
        &s,
        "SELECT v % 10000000 AS k, count(*) AS n FROM generate_series(1, 20000000) AS t(v) \
         GROUP BY k ORDER BY n DESC LIMIT 3",
    );
    assert_eq!(code, 422, "{body}");
    assert!(
        body.starts_with(r#"{"status":"error","errorType":"execution","error":"query processing would use too much memory"#),
        "{body}"
    );
    assert!(body.contains("--query.max-memory"), "{body}");
    // A sort of 20M rows, too.
    let (code, body) = sql(
        &s,
        "SELECT count(*) FROM (SELECT v FROM generate_series(1, 20000000) AS t(v) ORDER BY v DESC OFFSET 1)",
    );
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("--query.max-memory"), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert_alive(&s);
    // Under the limit, SQL still works.
    let (code, body) = sql(&s, "SELECT count(*) AS n FROM generate_series(1, 1000)");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""n":1000"#), "{body}");
}

#[test]
fn an_sql_result_past_the_byte_cap_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &[]);
    // 100 MB of strings in 100k rows: under --query.max-samples rows, over the default
    // 64 MB of --query.sql-max-result-bytes.
    let (code, body) = sql(
        &s,
        "SELECT repeat('x', 1000) AS s FROM generate_series(1, 100000)",
    );
    assert_eq!(code, 422, "{body}");
    assert!(
        body.starts_with(r#"{"status":"error","errorType":"execution","error":"SQL result exceeds 67108864 bytes (--query.sql-max-result-bytes)"#),
        "{body}"
    );
    assert_alive(&s);
    let (code, body) = sql(
        &s,
        "SELECT repeat('x', 1000) AS s FROM generate_series(1, 1000)",
    );
    assert_eq!(code, 200, "{}", &body[..body.len().min(300)]);
    s.stop();

    // A smaller cap from the flag.
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &["--query.sql-max-result-bytes=100KB"]);
    let (code, body) = sql(
        &s,
        "SELECT repeat('x', 1000) AS s FROM generate_series(1, 1000)",
    );
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("SQL result exceeds 102400 bytes"), "{body}");
    assert_alive(&s);
}

#[test]
fn health_answers_fast_while_two_heavy_queries_run() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &[]);
    // CPU-heavy and small in memory: a median over a 86,400-point window at each of
    // 3,601 steps (seconds in a debug build).
    let heavy = format!(
        "/api/v1/query_range?query={}&start=0&end=3600&step=1",
        enc("quantile_over_time(0.5, vector(time())[1d:1s])")
    );
    let port = s.port;
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let path = heavy.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let r = reqwest::blocking_client()
                    .get(format!("http://127.0.0.1:{port}{path}"))
                    .send()
                    .expect("heavy query");
                (r.status().as_u16(), started.elapsed())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let started = Instant::now();
        let (code, _) = get(&s, "/-/healthy");
        assert_eq!(code, 200);
        slowest = slowest.max(started.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    let took: Vec<(u16, Duration)> = runs
        .into_iter()
        .map(|h| h.join().expect("heavy thread"))
        .collect();
    eprintln!("heavy queries {took:?}, slowest /-/healthy {slowest:?}");
    assert!(took.iter().all(|(code, _)| *code == 200), "{took:?}");
    assert!(
        slowest < Duration::from_millis(500),
        "/-/healthy took {slowest:?} while queries ran for {took:?}"
    );
}
