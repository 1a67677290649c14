//! The push gateway over HTTP: Python's `prometheus_client` (`push_to_gateway`,
//! `pushadd_to_gateway`, `delete_from_gateway`) pushing to the main port, the series then
//! found with `/api/v1/query`; the drop-in Pushgateway port (`/metrics`, `/api/v1/metrics`);
//! bad pushes refused with 400 leaving the group as it was; groups surviving a graceful
//! restart (the persistence file is written at shutdown, at most once per interval before).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, enc, free_port, reqwest};
use serde_json::Value;

fn get(url: String) -> (u16, String) {
    let r = reqwest::blocking_client().get(url).send().expect("GET");
    (r.status().as_u16(), r.text())
}

fn query(s: &Server, q: &str) -> Vec<Value> {
    let (_, body) = get(s.url(&format!("/api/v1/query?query={}", enc(q))));
    let j: Value = serde_json::from_str(&body).expect("JSON");
    j["data"]["result"].as_array().cloned().unwrap_or_default()
}

fn poll(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn put(url: String, body: &str) -> (u16, String) {
    let r = reqwest::blocking_client()
        .request("PUT", url, body.as_bytes().to_vec())
        .header("Content-Type", "text/plain; version=0.0.4")
        .send()
        .expect("PUT");
    (r.status().as_u16(), r.text())
}

#[test]
fn python_client_push_pushadd_delete_then_query() {
    let have_py = Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .status()
        .is_ok_and(|s| s.success());
    if !have_py {
        eprintln!("SKIP: python3 prometheus_client is not installed (.ci/run installs it)");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &[]);
    let url = format!("127.0.0.1:{}", s.port);
    let script = format!(
        r#"
from prometheus_client import CollectorRegistry, Gauge, Counter, push_to_gateway, pushadd_to_gateway, delete_from_gateway
r = CollectorRegistry()
Gauge('batch_last_success_unixtime', 'Last success.', registry=r).set(1700000000)
Counter('batch_records', 'Records.', ['table'], registry=r).labels('users').inc(42)
push_to_gateway('{url}', job='nightly', registry=r, grouping_key={{'instance': 'db/1'}})
r2 = CollectorRegistry()
Gauge('batch_duration_seconds', 'Duration.', registry=r2).set(12.5)
pushadd_to_gateway('{url}', job='nightly', registry=r2, grouping_key={{'instance': 'db/1'}})
r3 = CollectorRegistry()
Gauge('gone_soon', 'To delete.', registry=r3).set(1)
push_to_gateway('{url}', job='temp', registry=r3)
delete_from_gateway('{url}', job='temp')
"#
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        poll(|| query(&s, "batch_records_total").len() == 1),
        "pushed counter never queryable"
    );
    let r = query(&s, "batch_records_total");
    assert_eq!(
        r[0]["metric"],
        serde_json::json!({"__name__": "batch_records_total", "instance": "db/1", "job": "nightly", "table": "users"})
    );
    assert_eq!(r[0]["value"][1], "42");
    let r = query(&s, "batch_duration_seconds");
    assert_eq!(r.len(), 1, "pushadd kept: {r:?}");
    assert_eq!(
        query(&s, "batch_last_success_unixtime").len(),
        1,
        "pushadd keeps others"
    );
    let r = query(&s, "push_time_seconds{job=\"nightly\"}");
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(
        poll(|| query(&s, "gone_soon").is_empty()),
        "deleted group still queryable"
    );
    s.stop();
}

#[test]
fn bad_pushes_get_400_and_leave_the_group() {
    let dir = tempfile::tempdir().expect("tmp");
    let pg = free_port();
    let pg_flag = format!("--pushgateway.listen-address=127.0.0.1:{pg}");
    let s = Server::start(dir.path(), &[&pg_flag]);
    let base = format!("http://127.0.0.1:{pg}");
    let (code, _) = put(
        format!("{base}/metrics/job/j/instance/i"),
        "# TYPE kept gauge\nkept{a=\"b\"} 3\n",
    );
    assert_eq!(code, 200);
    for (path, body, why) in [
        ("/metrics/job/j/instance/i", "kept{{{ 1\n", "malformed"),
        (
            "/metrics/job/j/instance/i",
            "kept 1 1700000000000\n",
            "timestamp",
        ),
        (
            "/metrics/job/other",
            "# TYPE kept counter\nkept 1\n",
            "type conflict",
        ),
        ("/metrics/job/j/bad-name/v", "x 1\n", "label name"),
        ("/metrics/job/j/odd", "x 1\n", "odd path"),
        ("/metrics/job/j/l@base64/!!!", "x 1\n", "base64"),
    ] {
        let (code, text) = put(format!("{base}{path}"), body);
        assert_eq!(code, 400, "{why}: {text}");
        assert!(!text.trim().is_empty(), "{why}: a message");
    }
    let (code, text) = get(format!("{base}/metrics"));
    assert_eq!(code, 200);
    assert!(
        text.contains("kept{a=\"b\",instance=\"i\",job=\"j\"} 3\n"),
        "{text}"
    );
    assert!(!text.contains("job=\"other\""), "{text}");
    let (_, api) = get(format!("{base}/api/v1/metrics"));
    let j: Value = serde_json::from_str(&api).expect("JSON");
    let grp = &j["data"][0];
    assert_eq!(
        grp["labels"],
        serde_json::json!({"job": "j", "instance": "i"})
    );
    assert_eq!(grp["last_push_successful"], false);
    assert_eq!(grp["kept"]["metrics"][0]["value"], "3");
    for p in ["/-/healthy", "/-/ready", "/api/v1/status"] {
        assert_eq!(get(format!("{base}{p}")).0, 200, "{p}");
    }
    s.stop();
}

#[test]
fn pushed_groups_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &[]);
    let (code, _) = put(
        s.url("/metrics/job/backup/instance/db1"),
        "# HELP backup_bytes Size.\n# TYPE backup_bytes gauge\nbackup_bytes 1024\n",
    );
    assert_eq!(code, 200);
    s.stop();
    let pg = free_port();
    let pg_flag = format!("--pushgateway.listen-address=127.0.0.1:{pg}");
    let s = Server::start(dir.path(), &[&pg_flag]);
    let (_, text) = get(format!("http://127.0.0.1:{pg}/metrics"));
    assert!(
        text.contains("# HELP backup_bytes Size.\n# TYPE backup_bytes gauge\nbackup_bytes{instance=\"db1\",job=\"backup\"} 1024\n"),
        "{text}"
    );
    // The ingester stores it again after the restart.
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let r = reqwest::blocking_client()
        .request(
            "DELETE",
            format!("http://127.0.0.1:{pg}/metrics/job/unrelated"),
            Vec::new(),
        )
        .send()
        .expect("DELETE");
    assert_eq!(r.status().as_u16(), 202);
    assert!(poll(|| {
        query(&s, "timestamp(backup_bytes)")
            .first()
            .and_then(|v| v["value"][1].as_str().and_then(|x| x.parse::<f64>().ok()))
            .is_some_and(|t| t >= t0 - 1.0)
    }));
    s.stop();
}

/// A delimited protobuf body with a native histogram (schema 0: one observation in the
/// zero bucket, two in (0.5, 1], three in (1, 2], two in (4, 8]; sum 20), no classic
/// buckets, and a gauge. `deltas` are the positive bucket deltas (three buckets declared).
fn native_push_body(deltas: Vec<i64>) -> Vec<u8> {
    use prost::Message;
    use strata_ingest::pushgateway::proto::{
        BucketSpan, Histogram, Metric, MetricFamily, SimpleValue,
    };
    let span = |offset: i32, length: u32| BucketSpan {
        offset: Some(offset),
        length: Some(length),
    };
    let mut body = Vec::new();
    for f in [
        MetricFamily {
            name: Some("batch_duration_seconds".into()),
            help: Some("Batch durations.".into()),
            r#type: Some(4),
            metric: vec![Metric {
                histogram: Some(Histogram {
                    sample_count: Some(8),
                    sample_sum: Some(20.0),
                    schema: Some(0),
                    zero_threshold: Some(0.001),
                    zero_count: Some(1),
                    positive_span: vec![span(0, 2), span(1, 1)],
                    positive_delta: deltas,
                    ..Default::default()
                }),
                ..Default::default()
            }],
        },
        MetricFamily {
            name: Some("batch_rows".into()),
            help: None,
            r#type: Some(1),
            metric: vec![Metric {
                gauge: Some(SimpleValue { value: Some(3.0) }),
                ..Default::default()
            }],
        },
    ] {
        f.encode_length_delimited(&mut body).expect("encode");
    }
    body
}

fn put_proto(url: String, body: Vec<u8>) -> (u16, String) {
    let r = reqwest::blocking_client()
        .request("PUT", url, body)
        .header(
            "Content-Type",
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
        )
        .send()
        .expect("PUT");
    (r.status().as_u16(), r.text())
}

/// A pushed protobuf native histogram is stored as a native histogram sample (as a
/// scrape with `scrape_native_histograms` stores it), answers `histogram_quantile`, shows
/// as count/sum/+Inf on the text `/metrics`, survives a restart, and ends when its group
/// is deleted; an inconsistent one is refused with 400.
#[test]
fn pushed_native_histograms_are_stored_natively() {
    let dir = tempfile::tempdir().expect("tmp");
    let pg = free_port();
    let pg_flag = format!("--pushgateway.listen-address=127.0.0.1:{pg}");
    let s = Server::start(dir.path(), &[&pg_flag]);
    let (code, text) = put_proto(
        s.url("/metrics/job/nightly"),
        native_push_body(vec![2, 1, -1]),
    );
    assert_eq!(code, 200, "{text}");
    assert!(
        poll(|| query(&s, "batch_duration_seconds").len() == 1),
        "pushed native histogram never queryable"
    );
    let r = query(&s, "batch_duration_seconds");
    assert_eq!(
        r[0]["metric"],
        serde_json::json!({"__name__": "batch_duration_seconds", "job": "nightly"})
    );
    let h = &r[0]["histogram"][1];
    assert_eq!(h["count"], "8", "{}", r[0]);
    assert_eq!(h["sum"], "20");
    assert_eq!(
        h["buckets"],
        serde_json::json!([
            [3, "-0.001", "0.001", "1"],
            [0, "0.5", "1", "2"],
            [0, "1", "2", "3"],
            [0, "4", "8", "2"]
        ])
    );
    let q = query(&s, "histogram_quantile(0.5, batch_duration_seconds)");
    let v: f64 = q[0]["value"][1]
        .as_str()
        .and_then(|x| x.parse().ok())
        .unwrap_or(f64::NAN);
    assert!((v - 2f64.powf(1.0 / 3.0)).abs() < 1e-9, "median {v}");
    assert!(
        query(&s, "batch_duration_seconds_count").is_empty(),
        "a native-only histogram has no classic series"
    );
    assert_eq!(query(&s, "batch_rows").len(), 1);
    // The drop-in Pushgateway's text exposition shows it as Go's text encoder would.
    let (_, text) = get(format!("http://127.0.0.1:{pg}/metrics"));
    assert!(
        text.contains(
            "batch_duration_seconds_bucket{instance=\"\",job=\"nightly\",le=\"+Inf\"} 8\n"
        ) && text.contains("batch_duration_seconds_count{instance=\"\",job=\"nightly\"} 8\n"),
        "{text}"
    );
    // Spans declaring three buckets with two counts: refused, the group unchanged.
    let (code, text) = put_proto(s.url("/metrics/job/nightly"), native_push_body(vec![2, 1]));
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("spans require 3 buckets, have 2"), "{text}");
    // Restart: the native histogram comes back from the persistence file.
    s.stop();
    let s = Server::start(dir.path(), &[]);
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    // Any change makes the ingester store every group at once.
    let r = reqwest::blocking_client()
        .request("DELETE", s.url("/metrics/job/unrelated"), Vec::new())
        .send()
        .expect("DELETE");
    assert_eq!(r.status().as_u16(), 202);
    assert!(
        poll(|| {
            query(&s, "timestamp(batch_duration_seconds)")
                .first()
                .and_then(|v| v["value"][1].as_str().and_then(|x| x.parse::<f64>().ok()))
                .is_some_and(|t| t >= t0 - 0.01)
        }),
        "not stored again after the restart"
    );
    assert_eq!(
        query(&s, "histogram_count(batch_duration_seconds)")[0]["value"][1],
        "8"
    );
    let r = reqwest::blocking_client()
        .request("DELETE", s.url("/metrics/job/nightly"), Vec::new())
        .send()
        .expect("DELETE");
    assert_eq!(r.status().as_u16(), 202);
    assert!(
        poll(|| query(&s, "batch_duration_seconds").is_empty()),
        "deleted native histogram still queryable"
    );
    s.stop();
}

/// The header block's `content-type` (lower-cased).
fn content_type(r: &reqwest::Response) -> String {
    r.headers
        .lines()
        .find_map(|l| l.strip_prefix("content-type:"))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

/// The drop-in Pushgateway's `/metrics` in the format the scraper negotiates, as the
/// Pushgateway does (`expfmt.Negotiate`): asked for protobuf (as Prometheus with native
/// histograms asks), it answers delimited `MetricFamily` messages carrying the pushed
/// native histogram (equal to the pushed one), the other families and the push times;
/// without `Accept`, the text format with the histogram's count and `+Inf` bucket.
#[test]
fn pushed_native_histograms_are_served_in_the_protobuf_format() {
    use strata_ingest::pushgateway::proto::{self, decode_delimited};
    let dir = tempfile::tempdir().expect("tmp");
    let pg = free_port();
    let pg_flag = format!("--pushgateway.listen-address=127.0.0.1:{pg}");
    let s = Server::start(dir.path(), &[&pg_flag]);
    let pushed = native_push_body(vec![2, 1, -1]);
    let (code, text) = put_proto(
        format!("http://127.0.0.1:{pg}/metrics/job/nightly"),
        pushed.clone(),
    );
    assert_eq!(code, 200, "{text}");
    let r = reqwest::blocking_client()
        .get(format!("http://127.0.0.1:{pg}/metrics"))
        .header(
            "Accept",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.1",
        )
        .send()
        .expect("GET");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        content_type(&r),
        "application/vnd.google.protobuf; proto=io.prometheus.client.metricfamily; encoding=delimited; escaping=underscores"
    );
    let fams = decode_delimited(&r.body).expect("delimited MetricFamily");
    let names: Vec<&str> = fams.iter().filter_map(|f| f.name.as_deref()).collect();
    assert_eq!(
        names,
        [
            "batch_duration_seconds",
            "batch_rows",
            "push_failure_time_seconds",
            "push_time_seconds"
        ]
    );
    let f = &fams[0];
    assert_eq!(f.r#type, Some(4));
    assert_eq!(f.help.as_deref(), Some("Batch durations."));
    assert_eq!(f.metric.len(), 1);
    let labels: Vec<(&str, &str)> = f.metric[0]
        .label
        .iter()
        .map(|l| {
            (
                l.name.as_deref().unwrap_or(""),
                l.value.as_deref().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(labels, [("instance", ""), ("job", "nightly")]);
    assert_eq!(f.metric[0].timestamp_ms, None);
    let got = f.metric[0].histogram.clone().expect("histogram");
    let want: proto::Histogram = decode_delimited(&pushed).expect("pushed")[0].metric[0]
        .histogram
        .clone()
        .expect("pushed histogram");
    assert!(got.is_native() && !got.is_float(), "{got:?}");
    assert_eq!(
        (
            got.sample_count,
            got.sample_sum,
            got.schema,
            got.zero_threshold,
            got.zero_count
        ),
        (Some(8), Some(20.0), Some(0), Some(0.001), Some(1))
    );
    assert_eq!(
        got.to_native(false).expect("valid"),
        want.to_native(false).expect("valid")
    );
    assert_eq!(
        fams[1].metric[0].gauge.as_ref().and_then(|g| g.value),
        Some(3.0)
    );
    assert!(
        fams[3].metric[0]
            .gauge
            .as_ref()
            .and_then(|g| g.value)
            .is_some_and(|v| v > 1.0e9),
        "{:?}",
        fams[3]
    );
    // The text format stays the default.
    let r = reqwest::blocking_client()
        .get(format!("http://127.0.0.1:{pg}/metrics"))
        .send()
        .expect("GET");
    assert_eq!(
        content_type(&r),
        "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"
    );
    let text = r.text();
    assert!(
        text.contains("batch_duration_seconds_count{instance=\"\",job=\"nightly\"} 8\n"),
        "{text}"
    );
    s.stop();
}
