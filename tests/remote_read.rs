//! `POST /api/v1/read`: the Debian `prometheus`, configured with `remote_read` pointing at
//! Strata, answers PromQL queries from Strata's data (with Strata's external labels;
//! Prometheus 2.42's client has no streamed reader and asks for SAMPLES); both response
//! types at the protocol level — streamed frames checked frame by frame (CRC, XOR chunks
//! decoded to the samples written, the frame size bound), the negotiation of the response
//! type, native histograms in FLOAT_HISTOGRAM chunks — and the endpoint's refusals: a body
//! that is not a snappy ReadRequest, no supported response type, more samples than the
//! limit. The other way, Prometheus's server streams XOR chunks from its TSDB: Strata's
//! decoder reads them and its encoder writes the same bytes; Strata's own `remote_read`
//! client reads Prometheus and another Strata through streamed answers.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use common::{Server, free_port, get_json, installed, now_ms, post_write, reqwest, write_body};
use prost::Message;
use strata_remote::read::frame::FrameReader;
use strata_remote::read::proto::{
    ChunkEncoding, ChunkedReadResponse, LabelMatcher, MatchType, Query, ReadRequest, ReadResponse,
    ResponseType,
};
use strata_remote::read::{STREAMED_CONTENT_TYPE, xor};

struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The Debian `prometheus` with its remote-write receiver on, once ready.
fn start_receiving_prometheus(dir: &std::path::Path) -> (Peer, u16) {
    let (peer, port) = start_prometheus(
        dir,
        "global:\n  scrape_interval: 1m\n",
        &["--web.enable-remote-write-receiver"],
    );
    let ready = format!("http://127.0.0.1:{port}/-/ready");
    assert!(
        common::eventually(60, || reqwest::blocking_client()
            .get(ready.clone())
            .send()
            .is_ok_and(|r| r.status().as_u16() == 200)),
        "prometheus did not start"
    );
    (peer, port)
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

/// A remote read: status, header block (lower-cased) and body.
fn post_read_full(port: u16, body: Vec<u8>) -> (u16, String, Vec<u8>) {
    let r = reqwest::blocking_client()
        .post(format!("http://127.0.0.1:{port}/api/v1/read"), body)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Read-Version", "0.1.0")
        .send()
        .expect("remote read");
    (r.status().as_u16(), r.headers, r.body)
}

/// A remote read answered (if 200) with SAMPLES: status and body.
fn post_read(port: u16, body: Vec<u8>) -> (u16, Vec<u8>) {
    let (status, headers, body) = post_read_full(port, body);
    assert!(
        status != 200
            || (headers.contains("content-encoding: snappy")
                && headers.contains("content-type: application/x-protobuf")),
        "{headers}"
    );
    (status, body)
}

/// A remote read answered with streamed frames: each frame's message length and message,
/// every frame checked against its CRC.
fn post_read_streamed(port: u16, body: Vec<u8>) -> Vec<(usize, ChunkedReadResponse)> {
    let (status, headers, body) = post_read_full(port, body);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(
        headers.contains(&format!(
            "content-type: {}",
            STREAMED_CONTENT_TYPE.to_ascii_lowercase()
        )),
        "{headers}"
    );
    assert!(!headers.contains("content-encoding"), "{headers}");
    let mut reader = FrameReader::new(50_000_000);
    reader.push(&body);
    let mut frames = Vec::new();
    while let Some(m) = reader
        .next_message()
        .expect("a whole frame, its checksum right")
    {
        frames.push((
            m.len(),
            ChunkedReadResponse::decode(m).expect("ChunkedReadResponse"),
        ));
    }
    reader.finish().expect("the answer ends between frames");
    frames
}

type Pairs = Vec<(String, String)>;

/// The series of `frames` in the order they came, their XOR chunks decoded (at most
/// `chunk_limit` samples each); a series split over frames comes in consecutive frames.
fn streamed_series_limited(
    frames: &[(usize, ChunkedReadResponse)],
    chunk_limit: usize,
) -> Vec<(Pairs, Vec<(i64, f64)>)> {
    let mut out: Vec<(Pairs, Vec<(i64, f64)>)> = Vec::new();
    for (_, f) in frames {
        assert_eq!(f.chunked_series.len(), 1, "one series per frame");
        let cs = &f.chunked_series[0];
        let labels: Pairs = cs
            .labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        let mut samples = Vec::new();
        for c in &cs.chunks {
            assert_eq!(c.r#type, ChunkEncoding::Xor as i32);
            let got = xor::decode(&c.data).expect("XOR chunk");
            assert!(
                !got.is_empty() && got.len() <= chunk_limit,
                "{} samples",
                got.len()
            );
            assert_eq!(c.min_time_ms, got[0].0);
            assert_eq!(c.max_time_ms, got[got.len() - 1].0);
            samples.extend(got);
        }
        match out.last_mut() {
            Some((l, s)) if *l == labels => s.extend(samples),
            _ => {
                assert!(
                    out.iter().all(|(l, _)| *l != labels),
                    "series {labels:?} resumed after another"
                );
                out.push((labels, samples));
            }
        }
    }
    out
}

/// [`streamed_series_limited`] for Strata's chunks of at most 120 samples.
fn streamed_series(frames: &[(usize, ChunkedReadResponse)]) -> Vec<(Pairs, Vec<(i64, f64)>)> {
    streamed_series_limited(frames, 120)
}

/// Series `i` of [`write_body`]: `test_metric_{i%7}{instance="host-{i}",job="crash"}`
/// with the external label `site="s1"`, and its `n` samples from `t0`, `step` apart.
fn written(i: usize, t0: i64, n: usize, step: i64) -> (Pairs, Vec<(i64, f64)>) {
    let labels = [
        ("__name__", format!("test_metric_{}", i % 7)),
        ("instance", format!("host-{i}")),
        ("job", "crash".to_string()),
        ("site", "s1".to_string()),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v))
    .collect();
    let samples = (0..n)
        .map(|k| (t0 + k as i64 * step, (i * 1000 + k) as f64))
        .collect();
    (labels, samples)
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
fn the_read_endpoint_refuses_bad_bodies_unknown_response_types_and_too_many_samples() {
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
    // Only response types Strata does not know: refused.
    let (status, body) = post_read(strata.port, request(vec![7, 9]));
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(
        String::from_utf8_lossy(&body).contains("does not support any of the requested"),
        "{}",
        String::from_utf8_lossy(&body)
    );
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
    // A streamed answer is bounded alike, refused before its first frame.
    let (status, _, body) = post_read_full(
        strata.port,
        request(vec![ResponseType::StreamedXorChunks as i32]),
    );
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
    let (_prom, pport) = start_receiving_prometheus(&tmp.path().join("prom"));
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

/// A snappy ReadRequest for the series whose `name` label is `value`, over the last hour.
fn request_where(name: &str, value: &str, accepted: Vec<i32>) -> Vec<u8> {
    let now = now_ms();
    let req = ReadRequest {
        queries: vec![Query {
            start_timestamp_ms: now - 3_600_000,
            end_timestamp_ms: now,
            matchers: vec![LabelMatcher {
                r#type: MatchType::Eq as i32,
                name: name.into(),
                value: value.into(),
            }],
            hints: None,
        }],
        accepted_response_types: accepted,
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .expect("snappy")
}

const STREAMED: i32 = ResponseType::StreamedXorChunks as i32;
const SAMPLES: i32 = ResponseType::Samples as i32;

/// The stale marker Prometheus writes when a series disappears.
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

#[test]
fn streamed_answers_carry_the_written_samples_in_xor_chunks() {
    let tmp = tempfile::tempdir().expect("tmp");
    let strata = Server::start(&tmp.path().join("strata"), &[&config(tmp.path())]);
    // 300 samples per series: chunks of 120, 120 and 60.
    let t0 = now_ms() / 1000 * 1000 - 55 * 60_000;
    assert_eq!(
        post_write(strata.port, write_body(0..3, t0, 300, 10_000)).expect("write"),
        204
    );
    let frames = post_read_streamed(strata.port, request(vec![STREAMED, SAMPLES]));
    // One frame per series (the default 1 MiB holds one), series sorted by labels.
    assert_eq!(frames.len(), 3);
    let chunk_sizes: Vec<usize> = frames[0].1.chunked_series[0]
        .chunks
        .iter()
        .map(|c| xor::decode(&c.data).expect("xor").len())
        .collect();
    assert_eq!(chunk_sizes, vec![120, 120, 60]);
    assert!(frames.iter().all(|(_, f)| f.query_index == 0));
    let got = streamed_series(&frames);
    let want: Vec<_> = (0..3).map(|i| written(i, t0, 300, 10_000)).collect();
    assert_eq!(got, want);

    // Values travel as their bits: a stale marker and NaN come back unchanged.
    use strata_ingest::remote_write::{Label, Sample, TimeSeries, WriteRequest, encode};
    let values = [1.5, f64::from_bits(STALE_NAN), 2.5, f64::NAN, 1e-300];
    let odd = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: [("__name__", "odd"), ("job", "odd")]
                .iter()
                .map(|(n, v)| Label {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            samples: values
                .iter()
                .enumerate()
                .map(|(k, v)| Sample {
                    value: *v,
                    timestamp: t0 + k as i64 * 1_000,
                })
                .collect(),
        }],
        metadata: vec![],
    };
    assert_eq!(post_write(strata.port, encode(&odd)).expect("write"), 204);
    let frames = post_read_streamed(strata.port, request_where("job", "odd", vec![STREAMED]));
    let got = streamed_series(&frames);
    assert_eq!(got.len(), 1);
    let bits: Vec<u64> = got[0].1.iter().map(|(_, v)| v.to_bits()).collect();
    let want: Vec<u64> = values.iter().map(|v| v.to_bits()).collect();
    assert_eq!(bits, want);
    strata.stop();
}

#[test]
fn streamed_frames_stay_within_read_max_bytes_in_frame() {
    let tmp = tempfile::tempdir().expect("tmp");
    let strata = Server::start(
        &tmp.path().join("strata"),
        &[
            &config(tmp.path()),
            "--storage.remote.read-max-bytes-in-frame=300",
        ],
    );
    let t0 = now_ms() / 1000 * 1000 - 55 * 60_000;
    assert_eq!(
        post_write(strata.port, write_body(0..2, t0, 300, 10_000)).expect("write"),
        204
    );
    let frames = post_read_streamed(strata.port, request(vec![STREAMED]));
    // Each series takes several frames (~700 bytes of chunks each).
    assert!(frames.len() >= 5, "{} frames", frames.len());
    for (len, _) in &frames {
        assert!(*len <= 300, "a frame of {len} bytes");
    }
    let got = streamed_series(&frames);
    let want: Vec<_> = (0..2).map(|i| written(i, t0, 300, 10_000)).collect();
    assert_eq!(got, want);
    strata.stop();
}

#[test]
fn the_first_response_type_the_client_accepts_and_strata_supports_is_used() {
    let tmp = tempfile::tempdir().expect("tmp");
    let strata = Server::start(&tmp.path().join("strata"), &[&config(tmp.path())]);
    let t0 = now_ms() / 1000 * 1000 - 10 * 60_000;
    assert_eq!(
        post_write(strata.port, write_body(0..2, t0, 20, 15_000)).expect("write"),
        204
    );
    let sampled = |accepted: Vec<i32>| {
        let (status, body) = post_read(strata.port, request(accepted));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&body)
            .expect("snappy");
        let resp = ReadResponse::decode(raw.as_slice()).expect("ReadResponse");
        resp.results[0]
            .timeseries
            .iter()
            .map(|t| t.samples.len())
            .sum::<usize>()
    };
    // SAMPLES first, or nothing listed: a SAMPLES answer.
    assert_eq!(sampled(vec![SAMPLES, STREAMED]), 40);
    assert_eq!(sampled(vec![]), 40);
    // Streamed first (Prometheus's order), or after a type Strata does not know: frames.
    for accepted in [
        vec![STREAMED, SAMPLES],
        vec![STREAMED],
        vec![7, STREAMED, SAMPLES],
    ] {
        let frames = post_read_streamed(strata.port, request(accepted));
        let got = streamed_series(&frames);
        let want: Vec<_> = (0..2).map(|i| written(i, t0, 20, 15_000)).collect();
        assert_eq!(got, want);
    }
    strata.stop();
}

/// A remote-write 1.0 request (float samples and native histograms).
#[derive(Clone, PartialEq, Message)]
struct HistogramWrite {
    #[prost(message, repeated, tag = "1")]
    timeseries: Vec<strata_remote::read::proto::TimeSeries>,
}

/// `n` integer histograms of `{__name__=name, job=job}` from `t0` every 15 s: counts
/// growing, a bucket more every 7 samples, a counter reset at sample 40 (when there is
/// one); and the snappy write request carrying them and one float series.
fn histogram_write(
    name: &str,
    job: &str,
    t0: i64,
    n: usize,
) -> (Vec<u8>, Vec<strata_ingest::histogram_proto::Histogram>) {
    use strata_ingest::histogram_proto::{BucketSpan, Count, Histogram, ZeroCount};
    use strata_remote::read::proto::{Label, Sample, TimeSeries};
    let labels = |name: &str| {
        vec![
            Label {
                name: "__name__".into(),
                value: name.into(),
            },
            Label {
                name: "job".into(),
                value: job.into(),
            },
        ]
    };
    let hists: Vec<Histogram> = (0..n)
        .map(|i| {
            let k = if i >= 40 { i - 40 } else { i } as u64;
            let buckets = 2 + k as usize / 7;
            // Bucket b holds (b + 1) * (k + 1) observations: deltas b-th minus previous.
            let counts: Vec<i64> = (0..buckets)
                .map(|b| (b as i64 + 1) * (k as i64 + 1))
                .collect();
            let deltas = counts
                .iter()
                .scan(0i64, |prev, c| {
                    let d = c - *prev;
                    *prev = *c;
                    Some(d)
                })
                .collect();
            let zero = k;
            Histogram {
                count: Some(Count::CountInt(zero + counts.iter().sum::<i64>() as u64)),
                sum: 1.25 * (k as f64 + 1.0) * buckets as f64,
                schema: 2,
                zero_threshold: 0.001,
                zero_count: Some(ZeroCount::ZeroCountInt(zero)),
                positive_spans: vec![BucketSpan {
                    offset: -3,
                    length: buckets as u32,
                }],
                positive_deltas: deltas,
                timestamp: t0 + i as i64 * 15_000,
                ..Histogram::default()
            }
        })
        .collect();
    let body = HistogramWrite {
        timeseries: vec![
            TimeSeries {
                labels: labels("floats"),
                samples: vec![Sample {
                    value: 42.0,
                    timestamp: t0,
                }],
                histograms: vec![],
            },
            TimeSeries {
                labels: labels(name),
                samples: vec![],
                histograms: hists.clone(),
            },
        ],
    }
    .encode_to_vec();
    let body = snap::raw::Encoder::new()
        .compress_vec(&body)
        .expect("snappy");
    (body, hists)
}

/// Native histograms go in FLOAT_HISTOGRAM chunks: whether the client also accepts
/// SAMPLES or not, a streamed request selecting them gets frames, the histograms in
/// type-3 chunks decoded back to what was written (a new chunk at the counter reset, its
/// header saying so), the float series in XOR chunks.
#[test]
fn streamed_requests_carry_native_histograms_in_float_histogram_chunks() {
    use strata_remote::read::chunkenc::histogram::{self, Kind, counter_reset_header};
    let tmp = tempfile::tempdir().expect("tmp");
    let strata = Server::start(
        &tmp.path().join("strata"),
        &[
            &config(tmp.path()),
            "--storage.remote.read-max-bytes-in-frame=1024",
        ],
    );
    let t0 = now_ms() / 1000 * 1000 - 30 * 60_000;
    let (body, written) = histogram_write("latency", "mixed", t0, 100);
    assert_eq!(post_write(strata.port, body).expect("write"), 204);

    for accepted in [vec![STREAMED, SAMPLES], vec![STREAMED]] {
        let frames = post_read_streamed(strata.port, request_where("job", "mixed", accepted));
        let mut floats = Vec::new();
        let mut hists = Vec::new();
        let mut headers = Vec::new();
        let mut last = i64::MIN;
        for (len, f) in &frames {
            assert!(*len <= 1024, "a frame of {len} bytes");
            assert_eq!(f.chunked_series.len(), 1);
            let cs = &f.chunked_series[0];
            let name = cs
                .labels
                .iter()
                .find(|l| l.name == "__name__")
                .map(|l| l.value.clone())
                .unwrap_or_default();
            for c in &cs.chunks {
                if name == "floats" {
                    assert_eq!(c.r#type, ChunkEncoding::Xor as i32);
                    floats.extend(xor::decode(&c.data).expect("XOR chunk"));
                    continue;
                }
                assert_eq!(name, "latency");
                assert_eq!(c.r#type, ChunkEncoding::FloatHistogram as i32);
                assert!(c.min_time_ms > last, "histogram chunks in time order");
                last = c.max_time_ms;
                let got = histogram::decode(Kind::Float, &c.data).expect("float histograms");
                assert_eq!(c.min_time_ms, got[0].timestamp);
                assert_eq!(c.max_time_ms, got[got.len() - 1].timestamp);
                headers.push((c.min_time_ms, counter_reset_header(&c.data)));
                hists.extend(got);
            }
        }
        assert_eq!(floats, vec![(t0, 42.0)]);
        assert_eq!(hists.len(), written.len());
        for (got, want) in hists.iter().zip(&written) {
            assert_eq!(got.timestamp, want.timestamp);
            let (_, g) = got.to_float().expect("valid");
            let (_, w) = want.to_float().expect("valid");
            assert!(g.equals(&w), "at {}: {g:?} != {w:?}", want.timestamp);
        }
        // The reset starts a chunk whose header says so (hint 1, "reset"); the others
        // continue the previous one (2, "not a reset").
        let reset_t = t0 + 40 * 15_000;
        for (t, h) in &headers[1..] {
            let want = if *t == reset_t { 1 } else { 2 };
            assert_eq!(h.map(|h| h as i32), Some(want), "chunk at {t}");
        }
        assert!(headers.iter().any(|(t, _)| *t == reset_t), "{headers:?}");
    }
    strata.stop();
}

/// Strata's `remote_read` client reads another Strata's streamed answer (several frames
/// per series, XOR chunks) into PromQL; a `chunked_read_limit` below the frames' size
/// makes the remote's answer fail (the local one stands).
#[test]
fn strata_reads_strata_through_streamed_remote_read() {
    let tmp = tempfile::tempdir().expect("tmp");
    let remote = Server::start(
        &tmp.path().join("remote"),
        &[
            &config(tmp.path()),
            "--storage.remote.read-max-bytes-in-frame=512",
        ],
    );
    let t0 = now_ms() / 1000 * 1000 - 55 * 60_000;
    assert_eq!(
        post_write(remote.port, write_body(0..3, t0, 300, 10_000)).expect("write"),
        204
    );
    let (body, hists) = histogram_write("latency", "crash_hist", t0, 100);
    assert_eq!(post_write(remote.port, body).expect("write"), 204);
    let client = |name: &str, extra: &str| {
        let cfg = tmp.path().join(format!("{name}.yml"));
        std::fs::write(
            &cfg,
            format!(
                "global:\n  scrape_interval: 15s\nremote_read:\n  - url: {}\n    read_recent: true\n{extra}",
                remote.url("/api/v1/read")
            ),
        )
        .expect("config");
        Server::start(
            &tmp.path().join(name),
            &[&format!("--config.file={}", cfg.display())],
        )
    };
    let reader = client("reader", "");
    let v = common::query(&reader, "count_over_time({job=\"crash\"}[1h])");
    let result = v["data"]["result"].as_array().cloned().unwrap_or_default();
    assert_eq!(result.len(), 3, "{v}");
    assert!(result.iter().all(|s| s["value"][1] == "300"), "{v}");
    // The remote's external label is removed only when it is the reader's own; here it
    // stays.
    assert!(result.iter().all(|s| s["metric"]["site"] == "s1"), "{v}");
    // Series i's samples are i*1000 + k: the sum over all of them, exactly.
    let v = common::query(&reader, "sum(sum_over_time({job=\"crash\"}[1h]))");
    let want: usize = (0..3)
        .map(|i| (0..300).map(|k| i * 1000 + k).sum::<usize>())
        .sum();
    assert_eq!(v["data"]["result"][0]["value"][1], want.to_string(), "{v}");
    // The native histograms come through the streamed answer too (FLOAT_HISTOGRAM
    // chunks over several frames).
    let v = common::query(&reader, "count_over_time(latency{job=\"crash_hist\"}[1h])");
    assert_eq!(v["data"]["result"][0]["value"][1], "100", "{v}");
    let last = hists.last().expect("histograms");
    let v = common::query(
        &reader,
        "histogram_sum(last_over_time(latency{job=\"crash_hist\"}[1h]))",
    );
    assert_eq!(
        v["data"]["result"][0]["value"][1],
        last.sum.to_string(),
        "{v}"
    );
    let v = common::query(
        &reader,
        "histogram_count(last_over_time(latency{job=\"crash_hist\"}[1h]))",
    );
    let count = match last.count {
        Some(strata_ingest::histogram_proto::Count::CountInt(c)) => c,
        _ => unreachable!("integer histograms written"),
    };
    assert_eq!(v["data"]["result"][0]["value"][1], count.to_string(), "{v}");
    reader.stop();

    let tiny = client("tiny", "    chunked_read_limit: 100\n");
    let v = common::query(&tiny, "count_over_time({job=\"crash\"}[1h])");
    assert_eq!(v["data"]["result"].as_array().map(Vec::len), Some(0), "{v}");
    tiny.stop();
    remote.stop();
}

/// The Debian `prometheus` answers a streamed read with XOR chunks from its own TSDB
/// head: Strata's frame reader and XOR decoder read them back to the samples written, and
/// Strata's XOR encoder writes the same bits for the same samples.
#[test]
fn prometheus_streams_xor_chunks_strata_decodes_and_reencodes_bit_for_bit() {
    if !installed("prometheus") {
        eprintln!("skipping: prometheus is not installed");
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let (_prom, pport) = start_receiving_prometheus(&tmp.path().join("prom"));
    let t0 = now_ms() / 1000 * 1000 - 55 * 60_000;
    assert_eq!(
        post_write(pport, write_body(0..2, t0, 300, 10_000)).expect("write"),
        204
    );
    let frames = post_read_streamed(pport, request(vec![STREAMED]));
    let mut chunks = 0;
    for (_, f) in &frames {
        for c in &f.chunked_series[0].chunks {
            let samples = xor::decode(&c.data).expect("Prometheus's XOR chunk");
            let mut e = xor::XorEncoder::new();
            for (t, v) in &samples {
                e.append(*t, *v).expect("append");
            }
            // Prometheus 2.42's bit stream keeps a zero byte in reserve after a write
            // that ends on a byte boundary (newer ones, as Strata, start a byte when a
            // bit needs it): the same bits, maybe one zero byte more.
            let mut ours = e.finish();
            if ours.len() + 1 == c.data.len() && c.data.last() == Some(&0) {
                ours.push(0);
            }
            assert_eq!(ours, c.data, "{samples:?}");
            chunks += 1;
        }
    }
    assert!(chunks >= 4, "{chunks} chunks");
    // Prometheus has no external labels here.
    let want: Vec<_> = (0..2)
        .map(|i| {
            let (mut labels, samples) = written(i, t0, 300, 10_000);
            labels.retain(|(n, _)| n != "site");
            (labels, samples)
        })
        .collect();
    // Prometheus cuts its head chunks by time: some hold more than 120 samples.
    assert_eq!(
        streamed_series_limited(&frames, usize::from(u16::MAX)),
        want
    );
}

/// Native histograms from the Debian `prometheus` (which leaves them out of a SAMPLES
/// answer): its streamed answer carries them in HISTOGRAM and FLOAT_HISTOGRAM chunks,
/// which Strata decodes to the histograms written, and Strata's `remote_read` reads them
/// into PromQL.
#[test]
fn native_histograms_come_from_prometheus_in_histogram_chunks() {
    use strata_ingest::histogram_proto::{BucketSpan, Count, Histogram, ZeroCount};
    use strata_remote::read::chunkenc::histogram::{self, Kind};
    use strata_remote::read::proto::{Label, TimeSeries};
    #[derive(Clone, PartialEq, Message)]
    struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        timeseries: Vec<TimeSeries>,
    }
    if !installed("prometheus") {
        eprintln!("skipping: prometheus is not installed");
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let (_prom, pport) = start_prometheus(
        &tmp.path().join("prom"),
        "global:\n  scrape_interval: 1m\n",
        &[
            "--web.enable-remote-write-receiver",
            "--enable-feature=native-histograms",
        ],
    );
    let ready = format!("http://127.0.0.1:{pport}/-/ready");
    assert!(
        common::eventually(60, || reqwest::blocking_client()
            .get(ready.clone())
            .send()
            .is_ok_and(|r| r.status().as_u16() == 200)),
        "prometheus did not start"
    );
    let t0 = now_ms() / 1000 * 1000 - 40 * 60_000;
    let spans = |v: &[(i32, u32)]| {
        v.iter()
            .map(|&(offset, length)| BucketSpan { offset, length })
            .collect::<Vec<_>>()
    };
    // Integer histograms, one a minute: counts grow (the count is the buckets' total),
    // buckets as deltas.
    let ints: Vec<Histogram> = (0..30u64)
        .map(|k| Histogram {
            count: Some(Count::CountInt(6 * k + 4)),
            sum: 2.5 * k as f64 + 0.25,
            schema: 1,
            zero_threshold: f64::powi(2.0, -128),
            zero_count: Some(ZeroCount::ZeroCountInt(k + 1)),
            positive_spans: spans(&[(-2, 2), (3, 1)]),
            positive_deltas: vec![k as i64, k as i64 + 1, -(k as i64)],
            negative_spans: spans(&[(0, 1)]),
            negative_deltas: vec![k as i64 + 1],
            timestamp: t0 + k as i64 * 60_000,
            ..Histogram::default()
        })
        .collect();
    // Float histograms.
    let floats: Vec<Histogram> = (0..30u64)
        .map(|k| Histogram {
            count: Some(Count::CountFloat(3.5 * k as f64 + 1.0)),
            sum: 100.0 - k as f64 / 3.0,
            schema: 0,
            zero_threshold: 0.001,
            zero_count: Some(ZeroCount::ZeroCountFloat(0.5)),
            positive_spans: spans(&[(1, 2)]),
            positive_counts: vec![k as f64 * 1.5, k as f64 * 2.0 + 0.5],
            timestamp: t0 + k as i64 * 60_000,
            ..Histogram::default()
        })
        .collect();
    let labels = |name: &str| {
        vec![
            Label {
                name: "__name__".into(),
                value: name.into(),
            },
            Label {
                name: "job".into(),
                value: "hist".into(),
            },
        ]
    };
    let body = WriteRequest {
        timeseries: vec![
            TimeSeries {
                labels: labels("int_hist"),
                samples: vec![],
                histograms: ints.clone(),
            },
            TimeSeries {
                labels: labels("float_hist"),
                samples: vec![],
                histograms: floats.clone(),
            },
        ],
    }
    .encode_to_vec();
    let body = snap::raw::Encoder::new()
        .compress_vec(&body)
        .expect("snappy");
    assert_eq!(post_write(pport, body).expect("write"), 204);

    // Prometheus's chunks, decoded: the histograms written (counter-reset hints aside).
    let frames = post_read_streamed(pport, request_where("job", "hist", vec![STREAMED]));
    let mut seen = BTreeMap::new();
    for (_, f) in &frames {
        let cs = &f.chunked_series[0];
        let name = cs
            .labels
            .iter()
            .find(|l| l.name == "__name__")
            .map(|l| l.value.clone())
            .unwrap_or_default();
        for c in &cs.chunks {
            let kind = match ChunkEncoding::try_from(c.r#type) {
                Ok(ChunkEncoding::Histogram) => Kind::Integer,
                Ok(ChunkEncoding::FloatHistogram) => Kind::Float,
                other => panic!("{name}: a chunk of {other:?}"),
            };
            let entry: &mut Vec<_> = seen
                .entry((name.clone(), kind == Kind::Integer))
                .or_default();
            for h in histogram::decode(kind, &c.data).expect("Prometheus's histogram chunk") {
                let (t, mut fh) = h.to_float().expect("valid");
                fh.hint = Default::default();
                entry.push((t, fh));
            }
        }
    }
    let expect = |written: &[Histogram]| {
        written
            .iter()
            .map(|h| h.to_float().expect("valid"))
            .collect::<Vec<_>>()
    };
    assert_eq!(seen.len(), 2, "{:?}", seen.keys().collect::<Vec<_>>());
    assert_eq!(seen[&("int_hist".to_string(), true)], expect(&ints));
    assert_eq!(seen[&("float_hist".to_string(), false)], expect(&floats));

    // Through Strata's remote_read, into PromQL.
    let cfg = tmp.path().join("strata.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 15s\nremote_read:\n  - url: http://127.0.0.1:{pport}/api/v1/read\n    read_recent: true\n"
        ),
    )
    .expect("config");
    let strata = Server::start(
        &tmp.path().join("strata"),
        &[&format!("--config.file={}", cfg.display())],
    );
    let v = common::query(
        &strata,
        "histogram_count(last_over_time(int_hist[1h])) + histogram_sum(last_over_time(float_hist[1h]))",
    );
    let want = (6 * 29 + 4) as f64 + (100.0 - 29.0 / 3.0);
    let got: f64 = v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN);
    assert!((got - want).abs() < 1e-9, "{v}");
    let v = common::query(&strata, "count_over_time(int_hist[1h])");
    assert_eq!(v["data"]["result"][0]["value"][1], "30", "{v}");
    strata.stop();
}
