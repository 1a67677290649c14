//! Native histograms over HTTP against the real binary: integer histograms as client_golang
//! remote-writes them (spans and delta-encoded counts), answered in Prometheus's JSON
//! (`histogram` / `histograms`, bucket boundary rules), computed on (`rate`,
//! `histogram_quantile`, `sum`), kept across a restart (head written to Parquet blocks),
//! listed by the SQL `histograms` table, and refused with a reason when invalid.

mod common;

use common::rw1::{TimeSeries, WriteRequest};
use common::{Server, enc, get_json, now_ms, reqwest};
use prost::Message;
use strata_ingest::histogram_proto::{BucketSpan, Count, Histogram, ZeroCount};

/// A schema-0 histogram after `k` rounds of observations: each round adds one
/// observation to (0.5, 1] (bucket 0), two to (1, 2] (bucket 1), one to (4, 8]
/// (bucket 3) and one to the zero bucket; the sum grows by 10.
fn hist(k: u64, t: i64) -> Histogram {
    let (b0, b1, b3) = (k as i64, 2 * k as i64, k as i64);
    Histogram {
        count: Some(Count::CountInt(5 * k)),
        sum: 10.0 * k as f64,
        schema: 0,
        zero_threshold: 0.001,
        zero_count: Some(ZeroCount::ZeroCountInt(k)),
        positive_spans: vec![
            BucketSpan {
                offset: 0,
                length: 2,
            },
            BucketSpan {
                offset: 1,
                length: 1,
            },
        ],
        // Deltas between consecutive buckets: b0, b1 - b0, b3 - b1.
        positive_deltas: vec![b0, b1 - b0, b3 - b1],
        timestamp: t,
        ..Histogram::default()
    }
}

fn write(s: &Server, series: Vec<TimeSeries>) -> (u16, String) {
    let body = WriteRequest { timeseries: series }.encode_to_vec();
    let compressed = snap::raw::Encoder::new()
        .compress_vec(&body)
        .expect("snappy");
    let r = reqwest::blocking_client()
        .post(s.url("/api/v1/write"), compressed)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .send()
        .expect("write");
    (r.status().as_u16(), r.text())
}

fn series(name: &str, instance: &str, h: Vec<Histogram>) -> TimeSeries {
    common::rw1::histogram_series(name, instance, h)
}

fn instant(s: &Server, q: &str, t: i64) -> serde_json::Value {
    get_json(&s.url(&format!(
        "/api/v1/query?query={}&time={}",
        enc(q),
        t as f64 / 1e3
    )))
}

#[test]
fn histograms_round_trip_compute_and_survive_a_restart() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let s = Server::start(&data, &[]);
    let t0 = now_ms() / 60_000 * 60_000 - 30 * 60_000;
    let points = |k0: u64| (0..20u64).map(move |k| hist(k0 + k, t0 + k as i64 * 60_000));
    let (status, text) = write(
        &s,
        vec![
            series("rpc_seconds", "a", points(1).collect()),
            series("rpc_seconds", "b", points(1).collect()),
        ],
    );
    assert_eq!(status, 204, "{text}");
    let at = t0 + 10 * 60_000;
    let check = |s: &Server| {
        // The sample at `at` is round 11: Prometheus's JSON, buckets ascending.
        let r = instant(s, "rpc_seconds{instance=\"a\"}", at);
        let h = &r["data"]["result"][0]["histogram"];
        assert_eq!(h[0].as_f64(), Some(at as f64 / 1e3), "{r}");
        assert_eq!(
            h[1],
            serde_json::json!({
                "count": "55", "sum": "110",
                "buckets": [[3, "-0.001", "0.001", "11"], [0, "0.5", "1", "11"],
                            [0, "1", "2", "22"], [0, "4", "8", "11"]]
            }),
            "{r}"
        );
        // rate over 5m: 5 observations per minute, 1/12 per second; the sum of two series.
        let r = instant(s, "histogram_count(sum(rate(rpc_seconds[5m])))", at);
        let v: f64 = r["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN);
        assert!((v - 2.0 * 5.0 / 60.0).abs() < 1e-9, "{r}");
        // The median: rank 27.5 of 55 falls in (1, 2] after 22 below it, 5.5 of its 22:
        // 2^(log2(1) + (log2(2) - log2(1)) * 0.25) (exponential interpolation).
        let r = instant(
            s,
            "histogram_quantile(0.5, rpc_seconds{instance=\"a\"})",
            at,
        );
        let v: f64 = r["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN);
        assert!((v - 2f64.powf(0.25)).abs() < 1e-12, "{r}");
        // A range query answers `histograms`, no `values`.
        let r = get_json(&s.url(&format!(
            "/api/v1/query_range?query={}&start={}&end={}&step=60",
            enc("rpc_seconds{instance=\"b\"}"),
            t0 as f64 / 1e3,
            (t0 + 4 * 60_000) as f64 / 1e3
        )));
        let m = &r["data"]["result"][0];
        assert_eq!(m["histograms"].as_array().map(Vec::len), Some(5), "{r}");
        assert!(m.get("values").is_none(), "{r}");
    };
    check(&s);
    // SQL sees them, one row per sample, with their populated buckets.
    let sql = reqwest::blocking_client()
        .post(
            s.url("/api/v1/sql"),
            "SELECT count(*) AS n, max(count) AS c, max(zero_count) AS z FROM histograms WHERE metric = 'rpc_seconds'"
                .as_bytes()
                .to_vec(),
        )
        .header("Content-Type", "application/sql")
        .header("Accept", "text/csv")
        .send()
        .expect("sql");
    let text = sql.text();
    assert_eq!(text.lines().nth(1), Some("40,100.0,20.0"), "{text}");
    s.stop();
    let s = Server::start(&data, &[]);
    check(&s);
}

#[test]
fn invalid_histograms_are_refused_with_the_reason() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = Server::start(tmp.path(), &[]);
    let t = now_ms();
    let mut bad = hist(2, t);
    // Three buckets declared, two counts given.
    bad.positive_deltas.pop();
    let (status, text) = write(&s, vec![series("bad_seconds", "a", vec![bad])]);
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("spans need 3 buckets, have 2 buckets"),
        "{text}"
    );
    let r = instant(&s, "bad_seconds", t);
    assert_eq!(r["data"]["result"].as_array().map(Vec::len), Some(0), "{r}");
}

/// `send_native_histograms: true`: histograms written to one Strata are forwarded by its
/// remote-write queue (1.0 and 2.0) to another, which answers the same histogram.
#[test]
fn remote_write_forwards_native_histograms() {
    for proto in ["prometheus.WriteRequest", "io.prometheus.write.v2.Request"] {
        let tmp = tempfile::tempdir().expect("tmp");
        let b = Server::start(&tmp.path().join("b"), &[]);
        let cfg = tmp.path().join("a.yml");
        std::fs::write(
            &cfg,
            format!(
                "global:\n  scrape_interval: 1h\nremote_write:\n  - url: {}\n    send_native_histograms: true\n    protobuf_message: {proto}\n    queue_config:\n      batch_send_deadline: 100ms\n",
                b.url("/api/v1/write")
            ),
        )
        .expect("config");
        let flag = format!("--config.file={}", cfg.display());
        let a = Server::start(&tmp.path().join("a"), &[&flag]);
        let t = now_ms();
        let (status, text) = write(&a, vec![series("fwd_seconds", "x", vec![hist(3, t)])]);
        assert_eq!(status, 204, "{text}");
        let seen = common::eventually(20, || {
            let r = instant(&b, "histogram_count(fwd_seconds)", t);
            r["data"]["result"][0]["value"][1].as_str() == Some("15")
        });
        assert!(seen, "{proto}: {}", instant(&b, "fwd_seconds", t));
    }
}

/// Remote read carries native histograms both ways: one Strata reads another's.
#[test]
fn remote_read_carries_native_histograms() {
    let tmp = tempfile::tempdir().expect("tmp");
    let a = Server::start(&tmp.path().join("a"), &[]);
    let t = now_ms();
    let (status, text) = write(&a, vec![series("far_seconds", "x", vec![hist(4, t)])]);
    assert_eq!(status, 204, "{text}");
    let cfg = tmp.path().join("b.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1h\nremote_read:\n  - url: {}\n    read_recent: true\n",
            a.url("/api/v1/read")
        ),
    )
    .expect("config");
    let flag = format!("--config.file={}", cfg.display());
    let b = Server::start(&tmp.path().join("b"), &[&flag]);
    let r = instant(&b, "far_seconds", t);
    assert_eq!(r["data"]["result"][0]["histogram"][1]["count"], "20", "{r}");
    assert_eq!(
        r["data"]["result"][0]["histogram"][1]["buckets"]
            .as_array()
            .map(Vec::len),
        Some(4),
        "{r}"
    );
}

/// Histograms with many buckets and small deltas (1 byte each on the wire, 16 decoded),
/// as client_golang sends fine-grained ones, fit the decode budget.
#[test]
fn fine_grained_histograms_fit_the_decode_budget() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = Server::start(tmp.path(), &[]);
    let t0 = now_ms() - 60 * 60_000;
    let wide = |k: i64| Histogram {
        count: Some(Count::CountInt(300)),
        sum: 1.0,
        schema: 8,
        positive_spans: vec![BucketSpan {
            offset: -150,
            length: 300,
        }],
        positive_deltas: std::iter::once(1)
            .chain(std::iter::repeat_n(0, 299))
            .collect(),
        timestamp: t0 + k * 15_000,
        ..Histogram::default()
    };
    let series: Vec<TimeSeries> = (0..20)
        .map(|i| {
            series(
                "wide_seconds",
                &format!("i{i}"),
                (0..40).map(wide).collect(),
            )
        })
        .collect();
    let (status, text) = write(&s, series);
    assert_eq!(status, 204, "{text}");
    let r = instant(&s, "count(wide_seconds)", t0 + 39 * 15_000);
    assert_eq!(r["data"]["result"][0]["value"][1], "20", "{r}");
}
