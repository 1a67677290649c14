//! Status, format_query and admin endpoints over HTTP, with Prometheus's shapes; admin
//! endpoints exist only with `--web.enable-admin-api`.

mod common;

use common::{Server, post_write, read_all, reqwest::blocking_client, write_body};

const T0: i64 = 1_700_000_000_000;

fn get_json(url: String) -> (u16, serde_json::Value) {
    let r = blocking_client().get(url).send().expect("request");
    (
        r.status().as_u16(),
        serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null),
    )
}

fn post(url: String, body: &str) -> (u16, serde_json::Value) {
    let r = blocking_client()
        .post(url, body.as_bytes().to_vec())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send()
        .expect("request");
    (
        r.status().as_u16(),
        serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn status_endpoints() {
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start_embedded(dir.path(), &[]);
    assert_eq!(
        post_write(server.port, write_body(0..14, T0, 5, 15_000)).expect("post"),
        204
    );

    let (code, v) = get_json(server.url("/api/v1/status/buildinfo"));
    assert_eq!(code, 200);
    assert_eq!(v["data"]["version"], env!("CARGO_PKG_VERSION"));

    let (_, v) = get_json(server.url("/api/v1/status/flags"));
    assert_eq!(
        v["data"]["storage.tsdb.path"],
        dir.path().display().to_string()
    );
    assert_eq!(v["data"]["storage.tsdb.retention.time"], "15d");

    let (_, v) = get_json(server.url("/api/v1/status/config"));
    let yaml = v["data"]["yaml"].as_str().expect("yaml");
    assert!(
        yaml.contains("scrape_configs") && yaml.contains("job_name: prometheus"),
        "{yaml}"
    );

    let (_, v) = get_json(server.url("/api/v1/status/runtimeinfo"));
    assert_eq!(v["data"]["storageRetention"], "15d");
    assert_eq!(v["data"]["corruptionCount"], 0);

    let (_, v) = get_json(server.url("/api/v1/status/walreplay"));
    assert_eq!(v["data"]["min"], 0);
    server.stop();

    // TSDB statistics on a server that scrapes nothing: the embedded configuration's
    // self-scrape may land at any moment of its first interval and add series.
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(dir.path(), &[]);
    assert_eq!(
        post_write(server.port, write_body(0..14, T0, 5, 15_000)).expect("post"),
        204
    );

    let (code, v) = get_json(server.url("/api/v1/status/tsdb?limit=3"));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["data"]["headStats"]["numSeries"], 14);
    // 14 series × 5 samples, and the heap bytes of their chunks.
    assert_eq!(v["data"]["headStats"]["numSamples"], 70);
    let bytes = v["data"]["headStats"]["sampleBytes"]
        .as_u64()
        .expect("bytes");
    assert!(bytes > 0 && bytes < 70 * 64, "{bytes}");
    let top = v["data"]["seriesCountByMetricName"]
        .as_array()
        .expect("array");
    assert_eq!(top.len(), 3);
    assert_eq!(top[0]["value"], 2);
    assert_eq!(
        v["data"]["labelValueCountByLabelName"][0]["name"],
        "instance"
    );
    assert_eq!(v["data"]["labelValueCountByLabelName"][0]["value"], 14);
    server.stop();
}

#[test]
fn format_query_prints_canonical_promql() {
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(dir.path(), &[]);
    let (code, v) = post(
        server.url("/api/v1/format_query"),
        "query=sum(rate(x%5B5m%5D))by(job)",
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["data"], "sum by (job) (rate(x[5m]))");
    let (code, v) = get_json(server.url("/api/v1/format_query?query=rate(x)"));
    assert_eq!(code, 400);
    assert_eq!(v["errorType"], "bad_data");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("expected type range vector")),
        "{v}"
    );
    server.stop();
}

#[test]
fn admin_api_only_when_enabled() {
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(dir.path(), &[]);
    let (code, _) = post(server.url("/api/v1/admin/tsdb/snapshot"), "");
    assert_eq!(code, 404);
    server.stop();

    let server = Server::start(dir.path(), &["--web.enable-admin-api"]);
    assert_eq!(
        post_write(server.port, write_body(0..14, T0, 20, 15_000)).expect("post"),
        204
    );
    let (code, v) = post(server.url("/api/v1/admin/tsdb/snapshot"), "");
    assert_eq!(code, 200, "{v}");
    let name = v["data"]["name"].as_str().expect("name").to_string();
    let snap = dir.path().join("snapshots").join(&name);
    assert!(snap.join("blocks").read_dir().expect("blocks").count() >= 1);

    // Delete host-3 from T0+60s on; clean tombstones.
    let (code, v) = post(
        server.url("/api/v1/admin/tsdb/delete_series"),
        &format!(
            "match[]=%7Binstance%3D%22host-3%22%7D&start={}",
            (T0 + 60_000) / 1000
        ),
    );
    assert_eq!(code, 204, "{v}");
    let (code, _) = post(server.url("/api/v1/admin/tsdb/clean_tombstones"), "");
    assert_eq!(code, 204);
    let (code, v) = post(server.url("/api/v1/admin/tsdb/delete_series"), "");
    assert_eq!(code, 400, "{v}");
    server.stop();

    let stored = read_all(dir.path());
    let host3 = stored
        .iter()
        .find(|s| s.labels.get("instance") == Some("host-3"))
        .expect("host-3 kept before start");
    assert_eq!(
        host3.samples.len(),
        4,
        "samples from T0+60s deleted: {:?}",
        host3.samples
    );
    let others: usize = stored
        .iter()
        .filter(|s| s.labels.get("instance") != Some("host-3"))
        .map(|s| s.samples.len())
        .sum();
    assert_eq!(others, 13 * 20);
    // The snapshot is a data directory of its own, with everything before the delete.
    let snap_data = read_all(&snap);
    assert_eq!(
        snap_data.iter().map(|s| s.samples.len()).sum::<usize>(),
        14 * 20
    );
}

#[test]
fn metadata_from_remote_write_gzip_and_cors() {
    use strata_ingest::remote_write::{
        Label, MetricMetadata, Sample, TimeSeries, WriteRequest, encode,
    };
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(dir.path(), &[]);
    let req = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![Label {
                name: "__name__".into(),
                value: "http_requests_total".into(),
            }],
            samples: vec![Sample {
                value: 1.0,
                timestamp: T0,
            }],
        }],
        metadata: vec![MetricMetadata {
            r#type: 1,
            metric_family_name: "http_requests_total".into(),
            help: "Total HTTP requests.".into(),
            unit: String::new(),
        }],
    };
    let r = blocking_client()
        .post(server.url("/api/v1/write"), encode(&req))
        .send()
        .expect("post");
    assert_eq!(r.status().as_u16(), 204);
    let (code, v) = get_json(server.url("/api/v1/metadata?metric=http_requests_total"));
    assert_eq!(code, 200);
    assert_eq!(
        v["data"]["http_requests_total"],
        serde_json::json!([{"type": "counter", "help": "Total HTTP requests.", "unit": ""}])
    );

    // gzip when asked.
    let r = blocking_client()
        .get(server.url("/api/v1/status/flags"))
        .header("Accept-Encoding", "gzip")
        .send()
        .expect("get");
    assert!(
        r.headers.contains("content-encoding: gzip"),
        "{}",
        r.headers
    );
    assert_eq!(&r.body[..2], &[0x1f, 0x8b]);

    // CORS: the default origin regex allows any origin.
    let r = blocking_client()
        .get(server.url("/api/v1/labels"))
        .header("Origin", "http://grafana.example")
        .send()
        .expect("get");
    assert!(
        r.headers
            .contains("access-control-allow-origin: http://grafana.example"),
        "{}",
        r.headers
    );
    server.stop();

    let server = Server::start(dir.path(), &["--web.cors.origin=https://ok\\.example"]);
    let r = blocking_client()
        .get(server.url("/api/v1/labels"))
        .header("Origin", "http://evil.example")
        .send()
        .expect("get");
    assert!(
        !r.headers.contains("access-control-allow-origin"),
        "{}",
        r.headers
    );
    server.stop();
}
