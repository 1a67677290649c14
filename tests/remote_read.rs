//! `POST /api/v1/read`: the Debian `prometheus`, configured with `remote_read` pointing at
//! Strata, answers PromQL queries from Strata's data (with Strata's external labels); and
//! the endpoint's refusals at the protocol level: a body that is not a snappy ReadRequest,
//! a client that accepts only streamed chunks, more samples than the limit.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, free_port, get_json, installed, now_ms, post_write, reqwest, write_body};
use prost::Message;
use strata_remote::read::proto::{
    LabelMatcher, MatchType, Query, ReadRequest, ReadResponse, ResponseType,
};

struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the Debian `prometheus` on a free port with `config` as its prometheus.yml,
/// its data under `dir`, and `extra` flags; returns it and its port.
fn start_prometheus(dir: &std::path::Path, config: &str, extra: &[&str]) -> (Peer, u16) {
    std::fs::create_dir_all(dir).expect("dir");
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, config).expect("prometheus config");
    let port = free_port();
    let peer = Peer(
        Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn prometheus"),
    );
    (peer, port)
}

/// A snappy ReadRequest for `{job="crash"}` over the last hour.
fn request(accepted: Vec<i32>) -> Vec<u8> {
    let now = now_ms();
    let req = ReadRequest {
        queries: vec![Query {
            start_timestamp_ms: now - 3_600_000,
            end_timestamp_ms: now,
            matchers: vec![LabelMatcher {
                r#type: MatchType::Eq as i32,
                name: "job".into(),
                value: "crash".into(),
            }],
            hints: None,
        }],
        accepted_response_types: accepted,
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .expect("snappy")
}

fn post_read(port: u16, body: Vec<u8>) -> (u16, Vec<u8>) {
    let r = reqwest::blocking_client()
        .post(format!("http://127.0.0.1:{port}/api/v1/read"), body)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Read-Version", "0.1.0")
        .send()
        .expect("remote read");
    let status = r.status().as_u16();
    assert!(
        status != 200 || r.headers.contains("content-encoding: snappy"),
        "{}",
        r.headers
    );
    (status, r.body)
}

fn config(dir: &std::path::Path) -> String {
    let cfg = dir.join("strata.yml");
    std::fs::write(
        &cfg,
        "global:\n  scrape_interval: 15s\n  external_labels:\n    site: s1\n",
    )
    .expect("config");
    format!("--config.file={}", cfg.display())
}

#[test]
fn prometheus_answers_promql_from_strata_through_remote_read() {
    if !installed("prometheus") {
        eprintln!("skipping: prometheus is not installed");
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let strata = Server::start(&tmp.path().join("strata"), &[&config(tmp.path())]);
    let t0 = now_ms() / 1000 * 1000 - 10 * 60_000;
    assert_eq!(
        post_write(strata.port, write_body(0..5, t0, 20, 15_000)).expect("write"),
        204
    );
    let (_prom, pport) = start_prometheus(
        &tmp.path().join("prom"),
        &format!(
            "global:\n  scrape_interval: 1m\nremote_read:\n  - url: {}\n    read_recent: true\n",
            strata.url("/api/v1/read")
        ),
        &[],
    );
    let url = |q: &str| {
        format!(
            "http://127.0.0.1:{pport}/api/v1/query?query={}",
            common::enc(q)
        )
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = serde_json::Value::Null;
    while Instant::now() < deadline {
        last = get_json(&url("count_over_time({job=\"crash\"}[1h])"));
        if last["data"]["result"]
            .as_array()
            .is_some_and(|a| a.len() == 5)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let result = last["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(result.len(), 5, "{last}");
    for s in &result {
        assert_eq!(s["value"][1], "20", "{s}");
        assert_eq!(s["metric"]["site"], "s1", "{s}");
    }
    // A value: series i's samples are i*1000 + k; the newest of host-3 is 3019.
    let v = get_json(&url(
        "last_over_time(test_metric_3{instance=\"host-3\"}[1h])",
    ));
    assert_eq!(v["data"]["result"][0]["value"][1], "3019", "{v}");
    // Matching Strata's external label selects Strata's series; another value, none.
    let v = get_json(&url(
        "count(count_over_time({job=\"crash\",site=\"s1\"}[1h]))",
    ));
    assert_eq!(v["data"]["result"][0]["value"][1], "5", "{v}");
    let v = get_json(&url("count_over_time({job=\"crash\",site=\"s2\"}[1h])"));
    assert_eq!(v["data"]["result"].as_array().map(Vec::len), Some(0), "{v}");
    strata.stop();
}

#[test]
fn the_read_endpoint_refuses_bad_bodies_streamed_only_clients_and_too_many_samples() {
    let tmp = tempfile::tempdir().expect("tmp");
    let strata = Server::start(
        &tmp.path().join("strata"),
        &[&config(tmp.path()), "--storage.remote.read-sample-limit=50"],
    );
    let t0 = now_ms() / 1000 * 1000 - 10 * 60_000;
    assert_eq!(
        post_write(strata.port, write_body(0..2, t0, 20, 15_000)).expect("write"),
        204
    );
    // Within the limit: 40 samples, external labels added, sorted labels.
    let (status, body) = post_read(strata.port, request(vec![]));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&body)
        .expect("snappy");
    let resp = ReadResponse::decode(raw.as_slice()).expect("ReadResponse");
    assert_eq!(resp.results.len(), 1);
    let ts = &resp.results[0].timeseries;
    assert_eq!(ts.len(), 2);
    assert_eq!(ts.iter().map(|t| t.samples.len()).sum::<usize>(), 40);
    assert!(
        ts[0]
            .labels
            .iter()
            .any(|l| l.name == "site" && l.value == "s1")
    );
    assert!(ts[0].labels.windows(2).all(|w| w[0].name < w[1].name));
    // Streamed chunks only: refused; with SAMPLES among them: answered.
    let (status, body) = post_read(
        strata.port,
        request(vec![ResponseType::StreamedXorChunks as i32]),
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let (status, _) = post_read(
        strata.port,
        request(vec![
            ResponseType::StreamedXorChunks as i32,
            ResponseType::Samples as i32,
        ]),
    );
    assert_eq!(status, 200);
    // Not snappy; not a ReadRequest.
    let (status, _) = post_read(strata.port, b"not snappy".to_vec());
    assert_eq!(status, 400);
    // Past the sample limit.
    assert_eq!(
        post_write(strata.port, write_body(2..10, t0, 20, 15_000)).expect("write"),
        204
    );
    let (status, body) = post_read(strata.port, request(vec![]));
    assert_eq!(status, 400);
    assert!(
        String::from_utf8_lossy(&body).contains("exceeded sample limit (50)"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    strata.stop();
    // Past a query's memory (half of --query.max-memory): refused, not held.
    let small = Server::start(
        &tmp.path().join("small"),
        &[&config(tmp.path()), "--query.max-memory=1MB"],
    );
    // 100 series × 200 samples over the last 55 minutes: 20,000 samples, 640 KB held.
    let early = now_ms() / 1000 * 1000 - 55 * 60_000;
    assert_eq!(
        post_write(small.port, write_body(0..100, early, 200, 15_000)).expect("write"),
        204
    );
    let (status, body) = post_read(small.port, request(vec![]));
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(
        String::from_utf8_lossy(&body).contains("do not fit in the query memory"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    small.stop();
}

/// Strata's own `remote_read`: PromQL over Strata merges the Debian `prometheus`'s series
/// (read through its `/api/v1/read`) with Strata's local ones; a selection naming a
/// `required_matchers` value it lacks is not sent.
#[test]
fn strata_reads_prometheus_through_remote_read() {
    if !installed("prometheus") {
        eprintln!("skipping: prometheus is not installed");
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let (_prom, pport) = start_prometheus(
        &tmp.path().join("prom"),
        "global:\n  scrape_interval: 1m\n",
        &["--web.enable-remote-write-receiver"],
    );
    let ready = format!("http://127.0.0.1:{pport}/-/ready");
    assert!(
        common::eventually(60, || reqwest::blocking_client()
            .get(ready.clone())
            .send()
            .is_ok_and(|r| r.status().as_u16() == 200)),
        "prometheus did not start"
    );
    let t0 = now_ms() / 1000 * 1000 - 10 * 60_000;
    // Prometheus holds series 0..3, Strata series 3..5, all of job "crash".
    assert_eq!(
        post_write(pport, write_body(0..3, t0, 20, 15_000)).expect("write"),
        204
    );
    // A second Prometheus holds a team="a" series of the same job; it is asked only for
    // selections that name team="a" (its required_matchers).
    let (_team, tport) = start_prometheus(
        &tmp.path().join("team"),
        "global:\n  scrape_interval: 1m\n",
        &["--web.enable-remote-write-receiver"],
    );
    let ready = format!("http://127.0.0.1:{tport}/-/ready");
    assert!(
        common::eventually(60, || reqwest::blocking_client()
            .get(ready.clone())
            .send()
            .is_ok_and(|r| r.status().as_u16() == 200)),
        "the second prometheus did not start"
    );
    use strata_ingest::remote_write::{Label, Sample, TimeSeries, WriteRequest, encode};
    let team = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: [("__name__", "team_metric"), ("job", "crash"), ("team", "a")]
                .iter()
                .map(|(n, v)| Label {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            samples: vec![Sample {
                value: 7.0,
                timestamp: t0,
            }],
        }],
        metadata: vec![],
    };
    assert_eq!(post_write(tport, encode(&team)).expect("write"), 204);
    let cfg = tmp.path().join("strata.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 15s\nremote_read:\n  - url: http://127.0.0.1:{pport}/api/v1/read\n  - url: http://127.0.0.1:{tport}/api/v1/read\n    name: only-team-a\n    required_matchers:\n      team: a\n"
        ),
    )
    .expect("config");
    let strata = Server::start(
        &tmp.path().join("strata"),
        &[&format!("--config.file={}", cfg.display())],
    );
    assert_eq!(
        post_write(strata.port, write_body(3..5, t0, 20, 15_000)).expect("write"),
        204
    );
    let v = common::query(&strata, "count_over_time({job=\"crash\"}[1h])");
    let result = v["data"]["result"].as_array().cloned().unwrap_or_default();
    assert_eq!(result.len(), 5, "{v}");
    assert!(result.iter().all(|s| s["value"][1] == "20"), "{v}");
    // Series of both, side by side in one aggregation.
    let v = common::query(&strata, "sum(last_over_time({job=\"crash\"}[1h]))");
    // Series i's newest value is i*1000 + 19.
    let want: i64 = (0..5).map(|i| i * 1000 + 19).sum();
    assert_eq!(v["data"]["result"][0]["value"][1], want.to_string(), "{v}");
    // The team entry is asked only when the selection names team="a".
    let v = common::query(
        &strata,
        "count(last_over_time({job=\"crash\",team=\"a\"}[1h]))",
    );
    assert_eq!(v["data"]["result"][0]["value"][1], "1", "{v}");
    let v = common::query(&strata, "count(last_over_time(team_metric[1h]))");
    assert_eq!(v["data"]["result"].as_array().map(Vec::len), Some(0), "{v}");
    strata.stop();
}
