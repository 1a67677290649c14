//! Exemplars over HTTP against the real binary: scraped from an OpenMetrics target,
//! written with remote write 1.0, kept in a ring of `storage.exemplars.max_exemplars`
//! entries, surviving restarts, served by `/api/v1/query_exemplars` in Prometheus's shape,
//! counted on `/metrics`, and forwarded by the remote-write sender with `send_exemplars`.

mod common;

use common::rw1::{Exemplar, Sample, TimeSeries, WriteRequest, encode, label};
use common::{Exporter, Server, enc, eventually, get_json, now_ms, post_write_text, reqwest};
use prost::Message;
use serde_json::Value;

fn exemplars(s: &Server, q: &str, start: f64, end: f64) -> Value {
    let v = get_json(&s.url(&format!(
        "/api/v1/query_exemplars?query={}&start={start}&end={end}",
        enc(q)
    )));
    assert_eq!(v["status"], "success", "{q}: {v}");
    v["data"].clone()
}

fn metric(s: &Server, name: &str) -> f64 {
    let text = reqwest::blocking_client()
        .get(s.url("/metrics"))
        .send()
        .expect("metrics")
        .text();
    // Summed over label sets (a family with labels, e.g. per remote-write queue).
    let values: Vec<f64> = text
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let rest = match rest.strip_prefix('{') {
                Some(r) => &r[r.find('}')? + 1..],
                None => rest,
            };
            rest.strip_prefix(' ')?.parse().ok()
        })
        .collect();
    if values.is_empty() {
        f64::NAN
    } else {
        values.iter().sum()
    }
}

/// A request of one series with a sample and an exemplar (trace `trace`) per timestamp.
fn request(ts: &[i64], trace: &str) -> Vec<u8> {
    encode(&WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![label("__name__", "rpc_seconds_bucket"), label("le", "0.5")],
            samples: ts
                .iter()
                .map(|&t| Sample {
                    value: 1.0,
                    timestamp: t,
                })
                .collect(),
            exemplars: ts
                .iter()
                .enumerate()
                .map(|(i, &t)| Exemplar {
                    labels: vec![label("trace_id", &format!("{trace}{i}"))],
                    value: 0.25 + i as f64,
                    timestamp: t,
                })
                .collect(),
            ..Default::default()
        }],
    })
}

#[test]
fn openmetrics_scrape_exemplars_are_served_as_prometheus_serves_them() {
    let exporter = Exporter::start("");
    exporter.set(
        "# TYPE rpc counter\n\
         rpc_total{code=\"200\"} 17 # {trace_id=\"KOO5S4vxi0o\"} 0.67 1520879607.789\n\
         # TYPE lat histogram\n\
         lat_bucket{le=\"0.1\"} 2 # {trace_id=\"t1\",span_id=\"s1\"} 0.05\n\
         lat_bucket{le=\"+Inf\"} 3\n\
         lat_count 3\n\
         lat_sum 0.7\n\
         # EOF\n",
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: om\n    static_configs:\n      - targets: ['{}']\n",
            exporter.addr()
        ),
    )
    .expect("config");
    let s = Server::start(
        &tmp.path().join("data"),
        &[&format!("--config.file={}", cfg.display())],
    );
    let now = now_ms() as f64 / 1000.0;
    assert!(
        eventually(30, || exemplars(&s, "lat_bucket", now - 60.0, now + 60.0)
            .as_array()
            .is_some_and(|a| !a.is_empty())),
        "the bucket's exemplar never arrived"
    );
    // Several scrapes later the exemplar without a timestamp is still one exemplar.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let lat = exemplars(&s, "lat_bucket", now - 60.0, now + 60.0);
    let lat = lat.as_array().expect("list");
    assert_eq!(lat.len(), 1, "{lat:?}");
    assert_eq!(lat[0]["seriesLabels"]["le"], "0.1");
    assert_eq!(lat[0]["seriesLabels"]["job"], "om");
    assert_eq!(
        lat[0]["exemplars"].as_array().map(Vec::len),
        Some(1),
        "{lat:?}"
    );
    let e = &lat[0]["exemplars"][0];
    assert_eq!(
        e["labels"],
        serde_json::json!({"trace_id": "t1", "span_id": "s1"})
    );
    assert_eq!(e["value"], "0.05");
    // The exemplar with its own timestamp keeps it, in seconds as Prometheus writes it.
    let rpc = exemplars(&s, "rpc_total{code=\"200\"}", 1520879607.0, 1520879608.0);
    assert_eq!(rpc[0]["exemplars"][0]["timestamp"], 1520879607.789, "{rpc}");
    assert_eq!(rpc[0]["exemplars"][0]["value"], "0.67", "{rpc}");
    assert_eq!(rpc[0]["seriesLabels"]["__name__"], "rpc_total", "{rpc}");
    // One query may name several selectors; a range outside the exemplars finds none.
    let both = exemplars(
        &s,
        "rpc_total + on() group_left lat_bucket",
        0.0,
        now + 60.0,
    );
    assert_eq!(both.as_array().map(Vec::len), Some(2), "{both}");
    assert_eq!(exemplars(&s, "rpc_total", 0.0, 1.0), serde_json::json!([]));
    assert_eq!(
        metric(&s, "prometheus_tsdb_exemplar_exemplars_in_storage"),
        2.0
    );
    assert_eq!(
        metric(
            &s,
            "prometheus_tsdb_exemplar_series_with_exemplars_in_storage"
        ),
        2.0
    );
    assert_eq!(
        metric(&s, "prometheus_tsdb_exemplar_max_exemplars"),
        100000.0
    );
}

#[test]
fn query_exemplars_checks_its_parameters_as_prometheus() {
    let tmp = tempfile::tempdir().expect("tmp");
    // Prometheus's feature flag is accepted (exemplar storage is always on in Strata).
    let s = Server::start(tmp.path(), &["--enable-feature=exemplar-storage"]);
    let r = get_json(&s.url("/api/v1/query_exemplars?query=up&start=5&end=2"));
    assert_eq!(r["errorType"], "bad_data", "{r}");
    assert_eq!(
        r["error"], "end timestamp must not be before start timestamp",
        "{r}"
    );
    let r = get_json(&s.url("/api/v1/query_exemplars?query=up((&start=1&end=2"));
    assert_eq!(r["errorType"], "bad_data", "{r}");
    // No selector in the expression: success with no data.
    let r = get_json(&s.url("/api/v1/query_exemplars?query=1%2B1"));
    assert_eq!(r, serde_json::json!({"status": "success", "data": null}));
}

#[test]
fn remote_written_exemplars_live_in_a_bounded_ring_across_restarts() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        "global:\n  scrape_interval: 15s\nstorage:\n  exemplars:\n    max_exemplars: 3\n",
    )
    .expect("config");
    let data = tmp.path().join("data");
    let flag = format!("--config.file={}", cfg.display());
    let t0 = now_ms() / 1000 * 1000 - 120_000;
    let ts: Vec<i64> = (0..5).map(|i| t0 + i * 15_000).collect();
    let s = Server::start(&data, &[&flag]);
    let (code, text) = post_write_text(s.port, request(&ts, "a"));
    assert_eq!(code, 204, "{text}");
    let (lo, hi) = (t0 as f64 / 1000.0 - 1.0, t0 as f64 / 1000.0 + 600.0);
    let traces = |s: &Server| -> Vec<String> {
        exemplars(s, "rpc_seconds_bucket", lo, hi)[0]["exemplars"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["labels"]["trace_id"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    // The ring keeps the newest three, in time order.
    assert_eq!(traces(&s), ["a2", "a3", "a4"]);
    assert_eq!(
        metric(&s, "prometheus_tsdb_exemplar_exemplars_appended_total"),
        5.0
    );
    // An older exemplar than the series' newest is refused (not an error for the request).
    let (code, text) = post_write_text(s.port, request(&[t0 - 60_000], "old"));
    assert_eq!(code, 204, "{text}");
    assert_eq!(
        metric(&s, "prometheus_tsdb_exemplar_out_of_order_exemplars_total"),
        1.0
    );
    // A graceful stop writes the head out to blocks; the exemplars come back.
    s.stop();
    let s = Server::start(&data, &[&flag]);
    assert_eq!(traces(&s), ["a2", "a3", "a4"]);
    // And after a crash, from the WAL.
    let (code, text) = post_write_text(s.port, request(&[t0 + 100_000], "b"));
    assert_eq!(code, 204, "{text}");
    s.kill9();
    let s = Server::start(&data, &[&flag]);
    assert_eq!(traces(&s), ["a3", "a4", "b0"]);
    assert_eq!(metric(&s, "prometheus_tsdb_exemplar_max_exemplars"), 3.0);
}

#[test]
fn the_sender_forwards_exemplars_with_send_exemplars() {
    let tmp = tempfile::tempdir().expect("tmp");
    let receiver = Server::start(&tmp.path().join("rx"), &[]);
    let cfg = tmp.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 15s\n  external_labels:\n    site: a\nremote_write:\n  - url: http://127.0.0.1:{}/api/v1/write\n    send_exemplars: true\n    queue_config:\n      batch_send_deadline: 200ms\n",
            receiver.port
        ),
    )
    .expect("config");
    let sender = Server::start(
        &tmp.path().join("tx"),
        &[&format!("--config.file={}", cfg.display())],
    );
    // The queue starts at the WAL's end: write once it runs.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let t0 = now_ms() / 1000 * 1000 - 30_000;
    let (code, text) = post_write_text(sender.port, request(&[t0, t0 + 15_000], "fwd"));
    assert_eq!(code, 204, "{text}");
    let (lo, hi) = (t0 as f64 / 1000.0 - 1.0, t0 as f64 / 1000.0 + 60.0);
    assert!(
        eventually(30, || exemplars(&receiver, "rpc_seconds_bucket", lo, hi)
            .as_array()
            .is_some_and(
                |a| a.len() == 1 && a[0]["exemplars"].as_array().map(Vec::len) == Some(2)
            )),
        "exemplars never arrived: {}",
        exemplars(&receiver, "rpc_seconds_bucket", lo, hi)
    );
    let got = exemplars(&receiver, "rpc_seconds_bucket", lo, hi);
    assert_eq!(
        got[0]["seriesLabels"]["site"], "a",
        "external labels apply: {got}"
    );
    assert_eq!(
        got[0]["exemplars"][1]["labels"]["trace_id"], "fwd1",
        "{got}"
    );
    assert_eq!(got[0]["exemplars"][1]["value"], "1.25", "{got}");
    assert!(
        eventually(10, || metric(
            &sender,
            "prometheus_remote_storage_exemplars_total"
        ) == 2.0),
        "the sender counts what it sent"
    );
}

/// client_model messages with the exemplar fields (a test-side subset).
mod client_model {
    use prost::Message;

    #[derive(Clone, PartialEq, Message)]
    pub(crate) struct LabelPair {
        #[prost(string, optional, tag = "1")]
        pub(crate) name: Option<String>,
        #[prost(string, optional, tag = "2")]
        pub(crate) value: Option<String>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub(crate) struct Timestamp {
        #[prost(int64, tag = "1")]
        pub(crate) seconds: i64,
        #[prost(int32, tag = "2")]
        pub(crate) nanos: i32,
    }

    #[derive(Clone, PartialEq, Message)]
    pub(crate) struct Exemplar {
        #[prost(message, repeated, tag = "1")]
        pub(crate) label: Vec<LabelPair>,
        #[prost(double, optional, tag = "2")]
        pub(crate) value: Option<f64>,
        #[prost(message, optional, tag = "3")]
        pub(crate) timestamp: Option<Timestamp>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub(crate) struct Counter {
        #[prost(double, optional, tag = "1")]
        pub(crate) value: Option<f64>,
        #[prost(message, optional, tag = "2")]
        pub(crate) exemplar: Option<Exemplar>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub(crate) struct Span {
        #[prost(sint32, optional, tag = "1")]
        pub(crate) offset: Option<i32>,
        #[prost(uint32, optional, tag = "2")]
        pub(crate) length: Option<u32>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub(crate) struct Histogram {
        #[prost(uint64, optional, tag = "1")]
        pub(crate) sample_count: Option<u64>,
        #[prost(double, optional, tag = "2")]
        pub(crate) sample_sum: Option<f64>,
        #[prost(sint32, optional, tag = "5")]
        pub(crate) schema: Option<i32>,
        #[prost(double, optional, tag = "6")]
        pub(crate) zero_threshold: Option<f64>,
        #[prost(uint64, optional, tag = "7")]
        pub(crate) zero_count: Option<u64>,
        #[prost(message, repeated, tag = "12")]
        pub(crate) positive_span: Vec<Span>,
        #[prost(sint64, repeated, packed = "false", tag = "13")]
        pub(crate) positive_delta: Vec<i64>,
        #[prost(message, repeated, tag = "16")]
        pub(crate) exemplars: Vec<Exemplar>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub(crate) struct Metric {
        #[prost(message, repeated, tag = "1")]
        pub(crate) label: Vec<LabelPair>,
        #[prost(message, optional, tag = "3")]
        pub(crate) counter: Option<Counter>,
        #[prost(message, optional, tag = "7")]
        pub(crate) histogram: Option<Histogram>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub(crate) struct MetricFamily {
        #[prost(string, optional, tag = "1")]
        pub(crate) name: Option<String>,
        #[prost(int32, optional, tag = "3")]
        pub(crate) r#type: Option<i32>,
        #[prost(message, repeated, tag = "4")]
        pub(crate) metric: Vec<Metric>,
    }
}

#[test]
fn protobuf_scrape_exemplars_of_counters_and_native_histograms_are_stored() {
    use client_model::*;
    let ex = |trace: &str, v: f64, ts: Option<i64>| Exemplar {
        label: vec![LabelPair {
            name: Some("trace_id".into()),
            value: Some(trace.into()),
        }],
        value: Some(v),
        timestamp: ts.map(|s| Timestamp {
            seconds: s,
            nanos: 250_000_000,
        }),
    };
    let now_s = now_ms() / 1000;
    let fams = [
        MetricFamily {
            name: Some("jobs_total".into()),
            r#type: Some(0),
            metric: vec![Metric {
                counter: Some(Counter {
                    value: Some(7.0),
                    exemplar: Some(ex("c1", 1.0, None)),
                }),
                ..Default::default()
            }],
        },
        MetricFamily {
            name: Some("wait_seconds".into()),
            r#type: Some(4),
            metric: vec![Metric {
                histogram: Some(Histogram {
                    sample_count: Some(3),
                    sample_sum: Some(3.5),
                    schema: Some(0),
                    zero_threshold: Some(0.001),
                    zero_count: Some(0),
                    positive_span: vec![Span {
                        offset: Some(0),
                        length: Some(2),
                    }],
                    positive_delta: vec![1, 1],
                    // With a timestamp: stored; without: dropped, as Prometheus.
                    exemplars: vec![ex("h1", 1.5, Some(now_s)), ex("h2", 0.75, None)],
                }),
                ..Default::default()
            }],
        },
    ];
    let mut body = Vec::new();
    for f in &fams {
        f.encode_length_delimited(&mut body).expect("encode");
    }
    let exporter = Exporter::start("");
    exporter.set_bytes(
        &body,
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: pb\n    scrape_protocols: [PrometheusProto]\n    scrape_native_histograms: true\n    static_configs:\n      - targets: ['{}']\n",
            exporter.addr()
        ),
    )
    .expect("config");
    let s = Server::start(
        &tmp.path().join("data"),
        &[&format!("--config.file={}", cfg.display())],
    );
    let (lo, hi) = (now_s as f64 - 60.0, now_s as f64 + 60.0);
    assert!(
        eventually(30, || exemplars(&s, "jobs_total", lo, hi)
            .as_array()
            .is_some_and(|a| !a.is_empty())),
        "the counter's exemplar never arrived"
    );
    let c = exemplars(&s, "jobs_total", lo, hi);
    assert_eq!(c[0]["seriesLabels"]["job"], "pb", "{c}");
    assert_eq!(c[0]["exemplars"][0]["labels"]["trace_id"], "c1", "{c}");
    let h = exemplars(&s, "wait_seconds", lo, hi);
    assert_eq!(h[0]["exemplars"].as_array().map(Vec::len), Some(1), "{h}");
    assert_eq!(h[0]["exemplars"][0]["labels"]["trace_id"], "h1", "{h}");
    assert_eq!(
        h[0]["exemplars"][0]["timestamp"],
        now_s as f64 + 0.25,
        "{h}"
    );
}
