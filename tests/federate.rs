//! `/federate` with native histograms, against the real binary: the protobuf delimited
//! format when `Accept` asks for it (decoded here: families, types, labels, timestamps and
//! histograms as stored), the text format otherwise (native histograms left out as
//! Prometheus leaves them out, custom-bucket histograms as classic ones); a second Strata
//! federating the first with `scrape_protocols: [PrometheusProto]` and
//! `scrape_native_histograms` gets the same histograms; and the Debian `prometheus` (when
//! installed; the test skips and says so otherwise) federates them with
//! `--enable-feature=native-histograms`, and scrapes a pushed native histogram from the push
//! gateway port likewise.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::rw1::{TimeSeries, WriteRequest};
use common::{
    Server, enc, free_port, get_json, installed, now_ms, post_write, reqwest, write_body,
};
use prost::Message;
use serde_json::{Value, json};
use strata_ingest::histogram_proto::{BucketSpan, Count, Histogram, ZeroCount};
use strata_ingest::pushgateway::proto::{self, MetricFamily, decode_delimited};

/// What Prometheus 2.x with native histograms (and Strata's `PrometheusProto` scrapes) send.
const PROTO_ACCEPT: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.1";

fn span(offset: i32, length: u32) -> BucketSpan {
    BucketSpan { offset, length }
}

/// An integer histogram, schema 0: 3 in the zero bucket, 3 in (0.5, 1], 6 in (1, 2], 3 in
/// (4, 8]; sum 30.
fn rpc_histogram(t: i64) -> Histogram {
    Histogram {
        count: Some(Count::CountInt(15)),
        sum: 30.0,
        schema: 0,
        zero_threshold: 0.001,
        zero_count: Some(ZeroCount::ZeroCountInt(3)),
        positive_spans: vec![span(0, 2), span(1, 1)],
        positive_deltas: vec![3, 3, -3],
        timestamp: t,
        ..Histogram::default()
    }
}

/// A float gauge histogram, schema 2, with a fractional zero count.
fn gauge_histogram(t: i64) -> Histogram {
    Histogram {
        count: Some(Count::CountFloat(2.5)),
        sum: 1.25,
        schema: 2,
        zero_threshold: 0.0,
        zero_count: Some(ZeroCount::ZeroCountFloat(0.5)),
        positive_spans: vec![span(-1, 2)],
        positive_counts: vec![1.0, 1.0],
        // GAUGE
        reset_hint: 3,
        timestamp: t,
        ..Histogram::default()
    }
}

/// A histogram with custom buckets (NHCB): bounds 0.1 and 0.5, counts 1, 2, 2 (+Inf).
fn nhcb_histogram(t: i64) -> Histogram {
    Histogram {
        count: Some(Count::CountInt(5)),
        sum: 1.7,
        schema: -53,
        zero_count: Some(ZeroCount::ZeroCountInt(0)),
        positive_spans: vec![span(0, 3)],
        positive_deltas: vec![1, 1, 0],
        custom_values: vec![0.1, 0.5],
        timestamp: t,
        ..Histogram::default()
    }
}

fn series(name: &str, instance: &str, h: Histogram) -> TimeSeries {
    common::rw1::histogram_series(name, instance, vec![h])
}

/// Remote-writes the three histograms at `t` and floats (`test_metric_1`, newest at
/// `now - 10s`).
fn load(s: &Server, t: i64) {
    let body = WriteRequest {
        timeseries: vec![
            series("rpc_seconds", "a", rpc_histogram(t)),
            series("queue_size_hist", "b", gauge_histogram(t)),
            series("req_nhcb", "c", nhcb_histogram(t)),
        ],
    }
    .encode_to_vec();
    let compressed = snap::raw::Encoder::new()
        .compress_vec(&body)
        .expect("snappy");
    let r = reqwest::blocking_client()
        .post(s.url("/api/v1/write"), compressed)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .send()
        .expect("write");
    assert_eq!(r.status().as_u16(), 204, "{}", r.text());
    let now = now_ms();
    assert_eq!(
        post_write(s.port, write_body(0..3, now - 30_000, 3, 10_000)).expect("post"),
        204
    );
}

fn federate_url(s: &Server) -> String {
    s.url(&format!(
        "/federate?match[]={}&match[]={}",
        enc("{job=\"api\"}"),
        enc("test_metric_1")
    ))
}

/// The header block's `content-type` (lower-cased).
fn content_type(r: &reqwest::Response) -> String {
    r.headers
        .lines()
        .find_map(|l| l.strip_prefix("content-type:"))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

fn labels_of(m: &proto::Metric) -> Vec<(String, String)> {
    m.label
        .iter()
        .map(|l| {
            (
                l.name.clone().unwrap_or_default(),
                l.value.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn federate_serves_native_histograms_in_the_negotiated_format() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &[]);
    let t = now_ms() - 5_000;
    load(&s, t);

    // Protobuf, as asked for: every series, native histograms included.
    let r = reqwest::blocking_client()
        .get(federate_url(&s))
        .header("Accept", PROTO_ACCEPT)
        .send()
        .expect("federate");
    assert_eq!(r.status().as_u16(), 200, "{}", r.text());
    assert_eq!(
        content_type(&r),
        "application/vnd.google.protobuf; proto=io.prometheus.client.metricfamily; encoding=delimited; escaping=underscores"
    );
    let fams: Vec<MetricFamily> = decode_delimited(&r.body).expect("delimited MetricFamily");
    let shape: Vec<(&str, i32, usize)> = fams
        .iter()
        .map(|f| {
            (
                f.name.as_deref().unwrap_or(""),
                f.r#type.unwrap_or(-1),
                f.metric.len(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("queue_size_hist", 5, 1),
            ("req_nhcb", 4, 1),
            ("rpc_seconds", 4, 1),
            ("test_metric_1", 3, 1),
        ],
        "{fams:?}"
    );
    let metric = |name: &str| {
        fams.iter()
            .find(|f| f.name.as_deref() == Some(name))
            .map(|f| f.metric[0].clone())
            .expect(name)
    };
    // Integer histogram: integer (delta-encoded) counts, equal to what was written.
    let m = metric("rpc_seconds");
    assert_eq!(labels_of(&m), pairs(&[("instance", "a"), ("job", "api")]));
    assert_eq!(m.timestamp_ms, Some(t));
    let h = m.histogram.expect("histogram");
    assert!(h.is_native() && !h.is_float(), "{h:?}");
    assert_eq!(
        (
            h.schema,
            h.zero_threshold,
            h.zero_count,
            h.sample_count,
            h.sample_sum
        ),
        (Some(0), Some(0.001), Some(3), Some(15), Some(30.0))
    );
    assert_eq!(
        h.to_native(false).expect("valid"),
        rpc_histogram(t).to_float().expect("valid").1
    );
    // Float gauge histogram: float counts, a GAUGE_HISTOGRAM family.
    let m = metric("queue_size_hist");
    let h = m.histogram.expect("histogram");
    assert!(h.is_float(), "{h:?}");
    assert_eq!(h.sample_count_float, Some(2.5));
    assert_eq!(h.positive_count, vec![1.0, 1.0]);
    assert_eq!(
        h.to_native(true).expect("valid"),
        gauge_histogram(t).to_float().expect("valid").1
    );
    // Custom buckets: a classic histogram (cumulative buckets, no +Inf, count and sum).
    let h = metric("req_nhcb").histogram.expect("histogram");
    assert!(!h.is_native(), "{h:?}");
    let buckets: Vec<(f64, u64)> = h
        .bucket
        .iter()
        .map(|b| {
            (
                b.upper_bound.unwrap_or(0.0),
                b.cumulative_count.unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(buckets, [(0.1, 1), (0.5, 3)]);
    assert_eq!((h.sample_count, h.sample_sum), (Some(5), Some(1.7)));
    // Floats: untyped.
    let m = metric("test_metric_1");
    assert_eq!(m.untyped.and_then(|u| u.value), Some(1002.0));
    assert!(m.timestamp_ms.is_some_and(|ts| ts > t - 60_000));

    // Text, the default: native histograms left out, custom buckets as classic buckets.
    let r = reqwest::blocking_client()
        .get(federate_url(&s))
        .send()
        .expect("federate");
    assert_eq!(
        content_type(&r),
        "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"
    );
    let text = r.text();
    assert!(!text.contains("rpc_seconds"), "{text}");
    assert!(!text.contains("queue_size_hist"), "{text}");
    assert!(text.contains("# TYPE test_metric_1 untyped\n"), "{text}");
    let want = format!(
        "# TYPE req_nhcb histogram\n\
         req_nhcb_bucket{{instance=\"c\",job=\"api\",le=\"0.1\"}} 1 {t}\n\
         req_nhcb_bucket{{instance=\"c\",job=\"api\",le=\"0.5\"}} 3 {t}\n\
         req_nhcb_bucket{{instance=\"c\",job=\"api\",le=\"+Inf\"}} 5 {t}\n\
         req_nhcb_sum{{instance=\"c\",job=\"api\"}} 1.7 {t}\n\
         req_nhcb_count{{instance=\"c\",job=\"api\"}} 5 {t}\n"
    );
    assert!(text.contains(&want), "{text}");
    // The protobuf text encodings are not offered: text.
    let r = reqwest::blocking_client()
        .get(federate_url(&s))
        .header(
            "Accept",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text",
        )
        .send()
        .expect("federate");
    assert!(content_type(&r).starts_with("text/plain; version=0.0.4"));
    s.stop();
}

fn write_config(dir: &Path, yaml: &str) -> String {
    let p = dir.join("federate.yml");
    std::fs::write(&p, yaml).expect("write config");
    format!("--config.file={}", p.display())
}

fn instant(url: String) -> Vec<Value> {
    get_json(&url)["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The federation job of a scraper of `/federate` on `target`. (One `match[]`: Strata's
/// scraper sends only the first value of a parameter, Prometheus all of them.)
fn federation_job(target: &str, extra: &str) -> String {
    format!(
        "  - job_name: federate\n    honor_labels: true\n    metrics_path: /federate\n    params:\n      'match[]': ['{{__name__=~\"rpc_seconds|queue_size_hist|req_nhcb|test_metric_1\"}}']\n{extra}    static_configs:\n      - targets: ['{target}']\n"
    )
}

#[test]
fn strata_federates_native_histograms_from_strata() {
    let dir = tempfile::tempdir().expect("tmp");
    let a = Server::start(&dir.path().join("a"), &[]);
    let t = now_ms() - 5_000;
    load(&a, t);
    let cfg = write_config(
        dir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 500ms\nscrape_configs:\n{}",
            federation_job(
                &format!("127.0.0.1:{}", a.port),
                "    scrape_protocols: [PrometheusProto]\n    scrape_native_histograms: true\n"
            )
        ),
    );
    let b = Server::start(&dir.path().join("b"), &[&cfg]);
    let q = |s: &Server, q: &str| instant(s.url(&format!("/api/v1/query?query={}", enc(q))));
    for name in ["rpc_seconds", "queue_size_hist"] {
        let got = wait_for(name, 30, || {
            let r = q(&b, name);
            (r.len() == 1).then_some(r)
        });
        let want = q(&a, name);
        assert_eq!(want.len(), 1, "{want:?}");
        assert_eq!(got[0]["metric"], want[0]["metric"], "{name}");
        assert!(got[0]["histogram"][1].is_object(), "{name}: {}", got[0]);
        assert_eq!(got[0]["histogram"][1], want[0]["histogram"][1], "{name}");
        // The sample keeps its own timestamp.
        let ts = q(&b, &format!("timestamp({name})"));
        assert_eq!(ts[0]["value"][1], json!(format!("{}", t as f64 / 1e3)));
    }
    assert_eq!(
        q(&b, "histogram_count(rpc_seconds)")[0]["value"][1],
        json!("15")
    );
    assert_eq!(
        q(&b, "histogram_sum(queue_size_hist)")[0]["value"][1],
        json!("1.25")
    );
    // Custom buckets arrive as a classic histogram.
    let r = q(&b, "req_nhcb_bucket");
    assert_eq!(r.len(), 3, "{r:?}");
    assert_eq!(q(&b, "req_nhcb_count")[0]["value"][1], json!("5"));
    assert_eq!(q(&b, "test_metric_1")[0]["value"][1], json!("1002"));
    b.stop();
    a.stop();
}

/// A process killed when dropped.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `(major, minor)` of the installed `prometheus`.
fn prometheus_version() -> (u32, u32) {
    let out = Command::new("prometheus")
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
        })
        .unwrap_or_default();
    let v = out
        .split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)
        .unwrap_or("0.0");
    let mut it = v
        .split(|c: char| !c.is_ascii_digit())
        .map(|x| x.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// A delimited protobuf push body: a native histogram (schema 0: one in the zero bucket,
/// two in (0.5, 1], three in (1, 2], two in (4, 8]; sum 20).
fn native_push_body() -> Vec<u8> {
    let span = |offset: i32, length: u32| proto::BucketSpan {
        offset: Some(offset),
        length: Some(length),
    };
    MetricFamily {
        name: Some("batch_duration_seconds".into()),
        help: Some("Batch durations.".into()),
        r#type: Some(4),
        metric: vec![proto::Metric {
            histogram: Some(proto::Histogram {
                sample_count: Some(8),
                sample_sum: Some(20.0),
                schema: Some(0),
                zero_threshold: Some(0.001),
                zero_count: Some(1),
                positive_span: vec![span(0, 2), span(1, 1)],
                positive_delta: vec![2, 1, -1],
                ..Default::default()
            }),
            ..Default::default()
        }],
    }
    .encode_length_delimited_to_vec()
}

#[test]
fn prometheus_federates_native_histograms_from_strata_and_its_push_gateway() {
    if !installed("prometheus") {
        eprintln!("SKIP: prometheus is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let pg = free_port();
    let pg_flag = format!("--pushgateway.listen-address=127.0.0.1:{pg}");
    let s = Server::start(&dir.path().join("strata"), &[&pg_flag]);
    let t = now_ms() - 5_000;
    load(&s, t);
    let r = reqwest::blocking_client()
        .request("PUT", s.url("/metrics/job/nightly"), native_push_body())
        .header(
            "Content-Type",
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
        )
        .send()
        .expect("push");
    assert_eq!(r.status().as_u16(), 200, "{}", r.text());

    // Prometheus asks for protobuf with `--enable-feature=native-histograms`; from 2.49
    // it is said with `scrape_protocols`, from 3.8 native histograms are switched on with
    // `scrape_native_histograms`.
    let (major, minor) = prometheus_version();
    let mut extra = String::new();
    if (major, minor) >= (2, 49) {
        extra.push_str("    scrape_protocols: [PrometheusProto]\n");
    }
    if (major, minor) >= (3, 8) {
        extra.push_str("    scrape_native_histograms: true\n");
    }
    let pdir = dir.path().join("prom");
    std::fs::create_dir_all(&pdir).expect("prometheus dir");
    let cfg = pdir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 500ms\nscrape_configs:\n{}  - job_name: pushgateway\n    honor_labels: true\n{extra}    static_configs:\n      - targets: ['127.0.0.1:{pg}']\n",
            federation_job(&format!("127.0.0.1:{}", s.port), &extra)
        ),
    )
    .expect("config");
    let port = free_port();
    let _prom = Peer(
        Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                pdir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--enable-feature=native-histograms")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn prometheus"),
    );
    let q = |query: &str| {
        instant(format!(
            "http://127.0.0.1:{port}/api/v1/query?query={}",
            enc(query)
        ))
    };
    let value = |query: &str| {
        q(query)
            .first()
            .and_then(|r| r["value"][1].as_str().map(str::to_owned))
    };
    let count = wait_for("histogram_count(rpc_seconds) in prometheus", 60, || {
        value("histogram_count(rpc_seconds)")
    });
    assert_eq!(count, "15");
    assert_eq!(value("histogram_sum(rpc_seconds)").as_deref(), Some("30"));
    // Rank 7.5 of 15 lies in (1, 2] after 6 below it, a quarter into it: interpolated
    // linearly (Prometheus 2.x) or exponentially (3.x).
    let median: f64 = value("histogram_quantile(0.5, rpc_seconds)")
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    assert!(
        (median - 1.25).abs() < 1e-9 || (median - 2f64.powf(0.25)).abs() < 1e-9,
        "median {median}"
    );
    let r = q("rpc_seconds");
    assert_eq!(
        r[0]["metric"],
        json!({"__name__": "rpc_seconds", "instance": "a", "job": "api"})
    );
    assert_eq!(value("test_metric_1").as_deref(), Some("1002"));
    assert_eq!(value("req_nhcb_count").as_deref(), Some("5"));
    // The push gateway's native histogram, scraped in the protobuf format.
    let count = wait_for("histogram_count(batch_duration_seconds)", 60, || {
        value("histogram_count(batch_duration_seconds)")
    });
    assert_eq!(count, "8");
    assert_eq!(
        value("histogram_sum(batch_duration_seconds)").as_deref(),
        Some("20")
    );
    s.stop();
}
