//! Scraping, end to end over HTTP: strata scrapes exporters (a scripted one in this file,
//! the real `prometheus-node-exporter`, a Python `prometheus_client` app) from a
//! `prometheus.yml`, and the series are found through the query and targets APIs.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Exporter, Server, enc, free_port, reqwest};
use serde_json::Value;

fn get_json(url: String) -> Value {
    let r = reqwest::blocking_client().get(url).send().expect("get");
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

fn query(s: &Server, q: &str) -> Vec<Value> {
    let v = get_json(s.url(&format!("/api/v1/query?query={}", enc(q))));
    assert_eq!(v["status"], "success", "{q}: {v}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
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

fn write_config(dir: &Path, yaml: &str) -> String {
    let p = dir.join("prometheus.yml");
    std::fs::write(&p, yaml).expect("write config");
    format!("--config.file={}", p.display())
}

fn value_of(r: &Value) -> f64 {
    r["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
}

#[test]
fn scrape_labels_relabeling_staleness_and_failures() {
    let exp = Exporter::start(
        "# HELP app_requests_total Requests.\n# TYPE app_requests_total counter\napp_requests_total{path=\"/a\",job=\"inner\"} 5\napp_requests_total{path=\"/b\"} 7\napp_temp 21.5\ndebug_only 1\n",
    );
    let cfgdir = tempfile::tempdir().expect("tmp");
    let cfg = write_config(
        cfgdir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 500ms\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['{}']\n        labels:\n          env: test\n    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: debug_.*\n        action: drop\n",
            exp.addr()
        ),
    );
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &[&cfg]);

    let up = wait_for("up == 1", 20, || {
        let r = query(&s, "up");
        (r.len() == 1 && value_of(&r[0]) == 1.0).then_some(r)
    });
    assert_eq!(up[0]["metric"]["job"], "app");
    assert_eq!(up[0]["metric"]["instance"], exp.addr());
    assert_eq!(up[0]["metric"]["env"], "test");

    let r = query(&s, "app_requests_total");
    assert_eq!(r.len(), 2, "{r:?}");
    let a = r
        .iter()
        .find(|x| x["metric"]["path"] == "/a")
        .expect("path /a");
    // The target's job wins; the exposed one is kept as exported_job.
    assert_eq!(a["metric"]["job"], "app");
    assert_eq!(a["metric"]["exported_job"], "inner");
    assert_eq!(value_of(a), 5.0);
    assert!(
        query(&s, "debug_only").is_empty(),
        "metric relabeling drops"
    );
    let scraped = query(&s, "scrape_samples_scraped");
    assert_eq!(value_of(&scraped[0]), 4.0);
    let post = query(&s, "scrape_samples_post_metric_relabeling");
    assert_eq!(value_of(&post[0]), 3.0);
    assert_eq!(query(&s, "scrape_duration_seconds").len(), 1);
    assert_eq!(query(&s, "scrape_series_added").len(), 1);

    // Metadata from TYPE/HELP.
    let md = get_json(s.url("/api/v1/metadata?metric=app_requests_total"));
    assert_eq!(md["data"]["app_requests_total"][0]["type"], "counter");
    assert_eq!(md["data"]["app_requests_total"][0]["help"], "Requests.");
    let tmd = get_json(s.url(&format!(
        "/api/v1/targets/metadata?match_target={}",
        enc("{job=\"app\"}")
    )));
    assert!(
        tmd["data"]
            .as_array()
            .expect("list")
            .iter()
            .any(|e| e["metric"] == "app_requests_total" && e["type"] == "counter"),
        "{tmd}"
    );

    // A series that vanishes is marked stale at once (not after the 5m lookback).
    exp.set(
        "app_requests_total{path=\"/a\",job=\"inner\"} 6\napp_temp 22\n",
        "text/plain; version=0.0.4",
    );
    wait_for("path=/b stale", 20, || {
        let r = query(&s, "app_requests_total");
        (r.len() == 1).then_some(())
    });

    // A malformed body fails that scrape only: up 0, the error on the targets API, the
    // previous series stale, the server fine.
    exp.set(
        "app_temp 22\nbroken{a=\"1\" 3\n",
        "text/plain; version=0.0.4",
    );
    wait_for("up == 0", 20, || {
        let r = query(&s, "up");
        (value_of(&r[0]) == 0.0).then_some(())
    });
    assert!(
        query(&s, "app_temp").is_empty(),
        "stale after a failed scrape"
    );
    let t = get_json(s.url("/api/v1/targets"));
    let active = &t["data"]["activeTargets"][0];
    assert_eq!(active["health"], "down");
    assert_eq!(active["scrapePool"], "app");
    assert_eq!(
        active["scrapeUrl"],
        format!("http://{}/metrics", exp.addr())
    );
    assert!(
        active["lastError"]
            .as_str()
            .unwrap_or("")
            .contains("line 2"),
        "{active}"
    );
    assert_eq!(active["labels"]["env"], "test");
    assert_eq!(active["discoveredLabels"]["__address__"], exp.addr());
    assert_eq!(active["scrapeInterval"], "1s");

    // OpenMetrics is negotiated by Content-Type; recovery brings up back to 1.
    exp.set(
        "# TYPE om_thing counter\nom_thing_total 3 # {trace_id=\"x\"} 1\n# EOF\n",
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
    );
    wait_for("om_thing_total", 20, || {
        let r = query(&s, "om_thing_total");
        (r.len() == 1 && value_of(&r[0]) == 3.0).then_some(())
    });
    assert_eq!(value_of(&query(&s, "up")[0]), 1.0);
    s.stop();
}

#[test]
fn file_sd_and_reload() {
    let a = Exporter::start("metric_a 1\n");
    let b = Exporter::start("metric_b 2\n");
    let cfgdir = tempfile::tempdir().expect("tmp");
    let sd = cfgdir.path().join("targets.json");
    std::fs::write(&sd, "[]").expect("write");
    let cfg = write_config(
        cfgdir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: files\n    file_sd_configs:\n      - files: ['{}']\n    relabel_configs:\n      - source_labels: [team]\n        regex: drop-me\n        action: drop\n",
            cfgdir.path().join("*.json").display()
        ),
    );
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &[&cfg, "--web.enable-lifecycle"]);
    std::fs::write(
        &sd,
        format!(
            r#"[{{"targets": ["{}"], "labels": {{"team": "x"}}}}, {{"targets": ["{}"], "labels": {{"team": "drop-me"}}}}]"#,
            a.addr(),
            b.addr()
        ),
    )
    .expect("write");
    wait_for("metric_a", 20, || {
        let r = query(&s, "metric_a");
        (r.len() == 1).then_some(())
    });
    assert_eq!(query(&s, "metric_a")[0]["metric"]["team"], "x");
    assert!(query(&s, "metric_b").is_empty(), "dropped by relabeling");
    let t = get_json(s.url("/api/v1/targets?state=dropped"));
    assert_eq!(t["data"]["activeTargets"].as_array().map(Vec::len), Some(0));
    assert_eq!(
        t["data"]["droppedTargets"][0]["discoveredLabels"]["team"],
        "drop-me"
    );
    assert_eq!(t["data"]["droppedTargetCounts"]["files"], 1);
    assert!(
        t["data"]["droppedTargets"][0]["discoveredLabels"]["__meta_filepath"]
            .as_str()
            .is_some_and(|p| p.ends_with("targets.json"))
    );

    // The target leaves the file: its series go stale.
    std::fs::write(&sd, "[]").expect("write");
    wait_for("metric_a stale", 20, || {
        query(&s, "metric_a").is_empty().then_some(())
    });
    assert!(
        query(&s, "up").is_empty(),
        "up of a vanished target is stale"
    );

    // Reload: a new static job appears; a bad file is refused and changes nothing.
    std::fs::write(
        cfgdir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: static\n    static_configs:\n      - targets: ['{}']\n",
            b.addr()
        ),
    )
    .expect("write");
    let r = reqwest::blocking_client()
        .post(s.url("/-/reload"), Vec::new())
        .send()
        .expect("reload");
    assert_eq!(r.status().as_u16(), 200, "{}", r.text());
    wait_for("metric_b", 20, || {
        (query(&s, "metric_b").len() == 1).then_some(())
    });
    std::fs::write(
        cfgdir.path().join("prometheus.yml"),
        "scrape_configs:\n  - job_name: x\n    scrape_intervall: 1s\n",
    )
    .expect("write");
    let r = reqwest::blocking_client()
        .post(s.url("/-/reload"), Vec::new())
        .send()
        .expect("reload");
    assert_eq!(r.status().as_u16(), 500);
    assert!(r.text().contains("scrape_intervall"), "{}", r.text());
    let t = get_json(s.url("/api/v1/targets"));
    assert_eq!(t["data"]["activeTargets"][0]["scrapePool"], "static");
    s.stop();
}

#[test]
fn lifecycle_endpoints_are_off_by_default() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &[]);
    let r = reqwest::blocking_client()
        .post(s.url("/-/reload"), Vec::new())
        .send()
        .expect("reload");
    assert_eq!(r.status().as_u16(), 403);
    s.stop();
}

struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_port(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// The real peers: Debian's `prometheus-node-exporter` and a `prometheus_client` app.
#[test]
fn scrapes_node_exporter_and_python_client() {
    let node_bin = "/usr/bin/prometheus-node-exporter";
    let have_node = Path::new(node_bin).exists();
    let have_py = Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .status()
        .is_ok_and(|s| s.success());
    if !have_node || !have_py {
        eprintln!(
            "SKIP: prometheus-node-exporter ({have_node}) or python3 prometheus_client ({have_py}) \
             is not installed (.ci/run installs both)"
        );
        return;
    }
    let node_port = free_port();
    let _node = Peer(
        Command::new(node_bin)
            .arg(format!("--web.listen-address=127.0.0.1:{node_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node exporter"),
    );
    let py_port = free_port();
    let script = format!(
        "import time\nfrom prometheus_client import start_http_server, Counter, Gauge\nc = Counter('jobs_processed', 'Jobs processed.', ['queue'])\nc.labels('emails').inc(3)\ng = Gauge('queue_depth', 'Depth.')\ng.set(42)\nstart_http_server({py_port}, addr='127.0.0.1')\nwhile True:\n    time.sleep(1)\n"
    );
    let _py = Peer(
        Command::new("python3")
            .args(["-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python app"),
    );
    assert!(
        wait_port(node_port) && wait_port(py_port),
        "peers did not start"
    );
    let cfgdir = tempfile::tempdir().expect("tmp");
    let cfg = write_config(
        cfgdir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{node_port}']\n  - job_name: pyapp\n    static_configs:\n      - targets: ['127.0.0.1:{py_port}']\n"
        ),
    );
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &[&cfg]);
    wait_for("both targets up", 30, || {
        let r = query(&s, "up == 1");
        (r.len() == 2).then_some(())
    });
    let r = query(&s, "node_cpu_seconds_total{mode=\"idle\"}");
    assert!(!r.is_empty(), "node exporter series");
    assert_eq!(r[0]["metric"]["job"], "node");
    assert_eq!(r[0]["metric"]["instance"], format!("127.0.0.1:{node_port}"));
    // prometheus_client negotiates OpenMetrics: the counter is exposed as _total.
    let r = query(&s, "jobs_processed_total");
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["metric"]["queue"], "emails");
    assert_eq!(r[0]["metric"]["job"], "pyapp");
    assert_eq!(value_of(&r[0]), 3.0);
    assert_eq!(value_of(&query(&s, "queue_depth")[0]), 42.0);
    let md = get_json(s.url("/api/v1/metadata?metric=queue_depth"));
    assert_eq!(md["data"]["queue_depth"][0]["type"], "gauge");
    s.stop();
}

/// The protobuf exposition (delimited `MetricFamily`, what Go clients serve when asked with
/// `scrape_protocols: [PrometheusProto, ...]`) is negotiated and scraped, timestamps kept.
#[test]
fn scrapes_the_protobuf_format() {
    use prost::Message;
    use strata_ingest::pushgateway::proto::{
        Bucket, Histogram, LabelPair, Metric, MetricFamily, SimpleValue,
    };
    let fam = |name: &str, kind: i32, metrics: Vec<Metric>| MetricFamily {
        name: Some(name.into()),
        help: Some("Help.".into()),
        r#type: Some(kind),
        metric: metrics,
    };
    let label = |k: &str, v: &str| LabelPair {
        name: Some(k.into()),
        value: Some(v.into()),
    };
    let mut body = Vec::new();
    for f in [
        fam(
            "proto_requests_total",
            0,
            vec![Metric {
                label: vec![label("code", "200")],
                counter: Some(SimpleValue { value: Some(42.0) }),
                ..Default::default()
            }],
        ),
        fam(
            "proto_latency_seconds",
            4,
            vec![Metric {
                histogram: Some(Histogram {
                    sample_count: Some(3),
                    sample_sum: Some(1.5),
                    bucket: vec![Bucket {
                        cumulative_count: Some(2),
                        upper_bound: Some(0.5),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            }],
        ),
    ] {
        f.encode_length_delimited(&mut body).expect("encode");
    }
    let exp = Exporter::start("");
    exp.set_bytes(
        &body,
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
    );
    let cfgdir = tempfile::tempdir().expect("tmp");
    let cfg = write_config(
        cfgdir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 500ms\nscrape_configs:\n  - job_name: proto\n    scrape_protocols: [PrometheusProto, PrometheusText0.0.4]\n    static_configs:\n      - targets: ['{}']\n",
            exp.addr()
        ),
    );
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &[&cfg]);
    let r = wait_for("proto counter", 20, || {
        let r = query(&s, "proto_requests_total");
        (r.len() == 1).then_some(r)
    });
    assert_eq!(r[0]["metric"]["code"], "200");
    assert_eq!(value_of(&r[0]), 42.0);
    let b = query(&s, "proto_latency_seconds_bucket");
    assert_eq!(b.len(), 2, "0.5 and the added +Inf bucket: {b:?}");
    assert_eq!(query(&s, "proto_latency_seconds_count").len(), 1);
    // A corrupt protobuf body fails the scrape (up 0) and stores nothing of it.
    exp.set_bytes(
        &[0xff, 0xff, 0xff],
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
    );
    wait_for("up == 0", 20, || {
        let r = query(&s, "up");
        (r.len() == 1 && value_of(&r[0]) == 0.0).then_some(())
    });
    s.stop();
}

/// `--enable-feature=type-and-unit-labels`: scraped series carry their family's declared
/// type and unit as `__type__` / `__unit__` (replacing any such labels the exposition
/// wrote), and rate() judges counters by `__type__`. An unknown feature is refused.
#[test]
fn type_and_unit_labels_come_from_the_metadata() {
    let exp = Exporter::start("");
    exp.set(
        "# TYPE work_seconds counter\n# UNIT work_seconds seconds\n# HELP work_seconds Work.\nwork_seconds_total{__type__=\"gauge\"} 5\n# TYPE level gauge\nlevel 3\n# TYPE plain unknown\nplain 1\n# EOF\n",
        "application/openmetrics-text; version=1.0.0",
    );
    let cfgdir = tempfile::tempdir().expect("tmp");
    let cfg = write_config(
        cfgdir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 500ms\nscrape_configs:\n  - job_name: tu\n    static_configs:\n      - targets: ['{}']\n",
            exp.addr()
        ),
    );
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(
        dir.path(),
        &[
            &cfg,
            "--enable-feature=type-and-unit-labels,promql-experimental-functions",
        ],
    );
    let r = wait_for("work_seconds_total", 20, || {
        let r = query(&s, "work_seconds_total");
        (r.len() == 1).then_some(r)
    });
    assert_eq!(r[0]["metric"]["__type__"], "counter", "{r:?}");
    assert_eq!(r[0]["metric"]["__unit__"], "seconds", "{r:?}");
    let r = query(&s, "level");
    assert_eq!(r[0]["metric"]["__type__"], "gauge", "{r:?}");
    assert!(r[0]["metric"].get("__unit__").is_none(), "{r:?}");
    let r = query(&s, "plain");
    assert!(
        r[0]["metric"].get("__type__").is_none(),
        "unknown is no type: {r:?}"
    );
    // Arithmetic drops them with the name.
    let r = query(&s, "level * 2");
    assert_eq!(
        r[0]["metric"],
        serde_json::json!({"instance": exp.addr(), "job": "tu"})
    );
    // rate() of a gauge: the info names the type, not the name's suffix.
    let v = wait_for("rate over two scrapes", 20, || {
        let v = get_json(s.url(&format!("/api/v1/query?query={}", enc("rate(level[1m])"))));
        (v["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty()))
        .then_some(v)
    });
    let infos = v["infos"].to_string();
    assert!(infos.contains("__type__ label is not set to"), "{v}");
    let v = get_json(s.url(&format!(
        "/api/v1/query?query={}",
        enc("rate(work_seconds_total[1m])")
    )));
    assert!(v.get("infos").is_none(), "a declared counter: {v}");
    s.stop();

    let dir = tempfile::tempdir().expect("tmp");
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            &format!("--storage.tsdb.path={}", dir.path().display()),
            "--web.listen-address=127.0.0.1:0",
            "--enable-feature=no-such-feature",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-feature"), "{err}");
}
