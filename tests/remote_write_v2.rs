//! Remote Write 2.0 on `/api/v1/write`, with requests built here from the specification's
//! proto (`io.prometheus.write.v2.Request`): content negotiation by `Content-Type`
//! (`proto=`), the symbols table, metadata, the written-count headers on every answer, and
//! 415 / 400 for unsupported types and encodings and for bodies that break the rules.

mod common;

use common::{Server, now_ms, post_write, query, reqwest, write_body};
use prost::Message;

const V2: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";

#[derive(Clone, PartialEq, Message)]
struct Request {
    #[prost(string, repeated, tag = "4")]
    symbols: Vec<String>,
    #[prost(message, repeated, tag = "5")]
    timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, Message)]
struct TimeSeries {
    #[prost(uint32, repeated, tag = "1")]
    labels_refs: Vec<u32>,
    #[prost(message, repeated, tag = "2")]
    samples: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    histograms: Vec<Histogram>,
    #[prost(message, repeated, tag = "4")]
    exemplars: Vec<Exemplar>,
    #[prost(message, optional, tag = "5")]
    metadata: Option<Metadata>,
    #[prost(int64, tag = "6")]
    created_timestamp: i64,
}

#[derive(Clone, PartialEq, Message)]
struct Sample {
    #[prost(double, tag = "1")]
    value: f64,
    #[prost(int64, tag = "2")]
    timestamp: i64,
}

#[derive(Clone, PartialEq, Message)]
struct Exemplar {
    #[prost(uint32, repeated, tag = "1")]
    labels_refs: Vec<u32>,
    #[prost(double, tag = "2")]
    value: f64,
    #[prost(int64, tag = "3")]
    timestamp: i64,
}

/// Only the fields this test sets: count, sum, the zero bucket and a timestamp.
#[derive(Clone, PartialEq, Message)]
struct Histogram {
    #[prost(uint64, tag = "1")]
    count_int: u64,
    #[prost(double, tag = "3")]
    sum: f64,
    #[prost(sint32, tag = "4")]
    schema: i32,
    #[prost(double, tag = "5")]
    zero_threshold: f64,
    #[prost(uint64, tag = "6")]
    zero_count_int: u64,
    #[prost(int64, tag = "15")]
    timestamp: i64,
}

#[derive(Clone, PartialEq, Message)]
struct Metadata {
    #[prost(int32, tag = "1")]
    r#type: i32,
    #[prost(uint32, tag = "3")]
    help_ref: u32,
    #[prost(uint32, tag = "4")]
    unit_ref: u32,
}

fn snappy(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(raw).expect("snappy")
}

/// Posts `body`; returns the status, the body text and the three written counts.
fn post(port: u16, body: Vec<u8>, ct: Option<&str>, enc: Option<&str>) -> (u16, String, [i64; 3]) {
    let mut r =
        reqwest::blocking_client().post(format!("http://127.0.0.1:{port}/api/v1/write"), body);
    if let Some(ct) = ct {
        r = r.header("Content-Type", ct);
    }
    if let Some(enc) = enc {
        r = r.header("Content-Encoding", enc);
    }
    let r = r
        .header("X-Prometheus-Remote-Write-Version", "2.0.0")
        .send()
        .expect("post");
    let count = |name: &str| {
        r.headers
            .lines()
            .find_map(|l| l.strip_prefix(&format!("x-prometheus-remote-write-{name}-written:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(-1)
    };
    let counts = [count("samples"), count("histograms"), count("exemplars")];
    (r.status().as_u16(), r.text(), counts)
}

fn symbols() -> Vec<String> {
    [
        "",
        "__name__",
        "v2_requests_total",
        "job",
        "api",
        "instance",
        "i1",
        "i2",
        "Requests served.",
        "requests",
        "trace_id",
        "abc",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn series(instance: u32, t0: i64, n: usize) -> TimeSeries {
    TimeSeries {
        labels_refs: vec![1, 2, 3, 4, 5, instance],
        samples: (0..n)
            .map(|k| Sample {
                value: k as f64,
                timestamp: t0 + k as i64 * 15_000,
            })
            .collect(),
        ..TimeSeries::default()
    }
}

/// Two series of 3 and 4 samples from `t0`, the first with metadata and an exemplar.
fn two_series(t0: i64) -> Request {
    let mut a = series(6, t0, 3);
    a.metadata = Some(Metadata {
        r#type: 1,
        help_ref: 8,
        unit_ref: 9,
    });
    a.exemplars = vec![Exemplar {
        labels_refs: vec![10, 11],
        value: 1.0,
        timestamp: t0,
    }];
    Request {
        symbols: symbols(),
        timeseries: vec![a, series(7, t0, 4)],
    }
}

#[test]
fn a_v2_request_is_stored_and_answered_with_written_counts() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = Server::start(tmp.path(), &[]);
    let t0 = now_ms() / 1000 * 1000 - 60_000;
    let req = two_series(t0);
    let (status, text, counts) = post(
        s.port,
        snappy(&req.encode_to_vec()),
        Some(V2),
        Some("snappy"),
    );
    assert_eq!(status, 204, "{text}");
    assert_eq!(counts, [7, 0, 1]);
    // The exemplar is stored with its series and served as Prometheus serves it.
    let ex = common::get_json(&s.url(&format!(
        "/api/v1/query_exemplars?query=v2_requests_total&start={}&end={}",
        t0 / 1000 - 1,
        t0 / 1000 + 1
    )));
    assert_eq!(ex["data"][0]["seriesLabels"]["instance"], "i1", "{ex}");
    assert_eq!(
        ex["data"][0]["exemplars"][0]["labels"]["trace_id"], "abc",
        "{ex}"
    );
    assert_eq!(ex["data"][0]["exemplars"][0]["value"], "1", "{ex}");
    // The same request again: samples are idempotent, the exemplar a no-op that counts.
    let (status, text, counts) = post(
        s.port,
        snappy(&req.encode_to_vec()),
        Some(V2),
        Some("snappy"),
    );
    assert_eq!(status, 204, "{text}");
    assert_eq!(counts, [7, 0, 1]);
    let v = query(&s, "count_over_time(v2_requests_total{job=\"api\"}[5m])");
    let result = v["data"]["result"].as_array().cloned().unwrap_or_default();
    assert_eq!(result.len(), 2, "{v}");
    let md: serde_json::Value = serde_json::from_str(
        &reqwest::blocking_client()
            .get(s.url("/api/v1/metadata?metric=v2_requests_total"))
            .send()
            .expect("metadata")
            .text(),
    )
    .expect("json");
    assert_eq!(
        md["data"]["v2_requests_total"][0]["type"], "counter",
        "{md}"
    );
    assert_eq!(
        md["data"]["v2_requests_total"][0]["help"], "Requests served.",
        "{md}"
    );
    assert_eq!(
        md["data"]["v2_requests_total"][0]["unit"], "requests",
        "{md}"
    );
    // A native histogram sample is stored beside the float and counted in its header.
    let mut h = series(6, t0 + 60_000, 1);
    h.histograms = vec![Histogram {
        count_int: 3,
        sum: 1.5,
        schema: 0,
        zero_threshold: 0.001,
        zero_count_int: 3,
        timestamp: t0 + 90_000,
    }];
    let req = Request {
        symbols: symbols(),
        timeseries: vec![h.clone()],
    };
    let (status, text, counts) = post(
        s.port,
        snappy(&req.encode_to_vec()),
        Some(V2),
        Some("snappy"),
    );
    assert_eq!(status, 204, "{text}");
    assert_eq!(counts, [1, 1, 0]);
    let got = common::query(
        &s,
        &format!(
            "histogram_count(v2_requests_total{{instance=\"i1\"}} @ {})",
            (t0 + 90_000) / 1000
        ),
    );
    assert_eq!(got["data"]["result"][0]["value"][1], "3", "{got}");
    // An invalid histogram (a schema no histogram has) refuses the request, naming the
    // reason, as Prometheus.
    h.histograms[0].schema = 60;
    h.histograms[0].timestamp = t0 + 120_000;
    let req = Request {
        symbols: symbols(),
        timeseries: vec![h],
    };
    let (status, text, counts) = post(
        s.port,
        snappy(&req.encode_to_vec()),
        Some(V2),
        Some("snappy"),
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("invalid histogram"), "{text}");
    assert_eq!(counts, [0, 0, 0]);
    // 1.0 by `proto=`, by a bare Content-Type and with no headers at all.
    for ct in [
        Some("application/x-protobuf;proto=prometheus.WriteRequest"),
        Some("application/x-protobuf"),
        None,
    ] {
        let (status, text, _) = post(s.port, write_body(0..1, t0, 2, 15_000), ct, None);
        assert_eq!(status, 204, "{ct:?}: {text}");
    }
    assert_eq!(
        post_write(s.port, write_body(1..2, t0, 2, 15_000)).expect("v1"),
        204
    );
    s.stop();
}

#[test]
fn unsupported_types_encodings_and_bad_bodies_are_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = Server::start(tmp.path(), &[]);
    let t0 = now_ms() / 1000 * 1000 - 60_000;
    let good = Request {
        symbols: symbols(),
        timeseries: vec![series(6, t0, 2)],
    };
    let body = snappy(&good.encode_to_vec());
    for (ct, enc) in [
        (
            "application/x-protobuf;proto=io.prometheus.write.v3.Request",
            "snappy",
        ),
        ("application/json", "snappy"),
        (V2, "gzip"),
        (V2, "zstd"),
    ] {
        let (status, text, _) = post(s.port, body.clone(), Some(ct), Some(enc));
        assert_eq!(status, 415, "{ct} {enc}: {text}");
    }
    let bad = |f: &dyn Fn(&mut Request)| {
        let mut r = good.clone();
        f(&mut r);
        snappy(&r.encode_to_vec())
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "symbols without the empty string first",
            bad(&|r| r.symbols[0] = "x".into()),
        ),
        (
            "a label reference out of the table",
            bad(&|r| r.timeseries[0].labels_refs[5] = 99),
        ),
        (
            "an odd number of label references",
            bad(&|r| {
                r.timeseries[0].labels_refs.pop();
            }),
        ),
        (
            "a series without labels",
            bad(&|r| r.timeseries[0].labels_refs.clear()),
        ),
        ("not snappy", good.encode_to_vec()),
        ("not protobuf", snappy(b"\xff\xff\xff\xff")),
    ];
    for (what, body) in cases {
        let (status, text, counts) = post(s.port, body, Some(V2), Some("snappy"));
        assert_eq!(status, 400, "{what}: {text}");
        assert_eq!(counts, [0, 0, 0], "{what}: headers on errors too");
    }
    // Nothing of the refused requests was stored.
    let v = query(&s, "count(v2_requests_total)");
    assert_eq!(v["data"]["result"].as_array().map(Vec::len), Some(0), "{v}");
    s.stop();
}

/// A front door (`--distributor.ingester`) forwards 2.0 to each series' ingesters — the
/// symbols table whole, the series as they came (exemplars, metadata) — and answers with
/// the request's written counts once every series has its quorum.
#[test]
fn a_front_door_forwards_v2_to_the_ingesters() {
    let tmp = tempfile::tempdir().expect("tmp");
    let ingesters: Vec<Server> = (0..3)
        .map(|i| Server::start(&tmp.path().join(format!("ingester-{i}")), &[]))
        .collect();
    let mut args = vec!["--distributor.replication-factor=2".to_string()];
    for s in &ingesters {
        args.push(format!(
            "--distributor.ingester=http://127.0.0.1:{}",
            s.port
        ));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let front = Server::start(&tmp.path().join("front"), &args);
    let t0 = now_ms() / 1000 * 1000 - 60_000;
    let req = two_series(t0);
    let (status, text, counts) = post(
        front.port,
        snappy(&req.encode_to_vec()),
        Some(V2),
        Some("snappy"),
    );
    assert_eq!(status, 204, "{text}");
    assert_eq!(counts, [7, 0, 1]);
    // Each series on two of the three ingesters, with its labels resolved.
    let held: f64 = ingesters
        .iter()
        .map(|s| {
            let v = query(
                s,
                "sum(count_over_time(v2_requests_total{job=\"api\"}[5m]))",
            );
            v["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|x| x.parse().ok())
                .unwrap_or(0.0)
        })
        .sum();
    assert_eq!(held, 14.0);
    // Read back through the front door: each sample once.
    let v = query(
        &front,
        "sum(count_over_time(v2_requests_total{job=\"api\"}[5m]))",
    );
    assert_eq!(v["data"]["result"][0]["value"][1], "7", "{v}");
    // A reference outside the table: the sender's error.
    let mut bad = req.clone();
    bad.timeseries[0].labels_refs.push(99);
    bad.timeseries[0].labels_refs.push(1);
    let (status, text, _) = post(
        front.port,
        snappy(&bad.encode_to_vec()),
        Some(V2),
        Some("snappy"),
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("symbols table"), "{text}");
}
