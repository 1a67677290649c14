//! The remote-write sender against real receivers: the Debian `prometheus`
//! (`--web.enable-remote-write-receiver`) and `victoria-metrics`, started here on free
//! ports. Samples written to Strata arrive with Strata's external labels and after its
//! `write_relabel_configs`; a receiver down for a minute, and a restart of Strata during
//! the outage, lose nothing and duplicate nothing. Each test skips (and says so) when its
//! peer is not installed.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    Server, eventually, free_port, get_json, installed, now_ms, post_write, reqwest, write_body,
};

/// A receiver process, killed when dropped.
struct Peer {
    child: Child,
    port: u16,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peer {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// SIGTERM and wait (Prometheus writes its WAL out, VictoriaMetrics its buffers).
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
    }
}

fn wait_ready(url: &str, what: &str) {
    let client = reqwest::blocking_client();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if client
            .get(url.to_string())
            .send()
            .is_ok_and(|r| r.status().as_u16() == 200)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not become ready");
}

fn start_prometheus(dir: &Path, port: u16) -> Peer {
    std::fs::create_dir_all(dir).expect("prometheus dir");
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1m\n").expect("config");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-remote-write-receiver")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn prometheus");
    let p = Peer { child, port };
    wait_ready(&p.url("/-/ready"), "prometheus");
    p
}

fn start_victoria_metrics(dir: &Path, port: u16) -> Peer {
    let child = Command::new("victoria-metrics")
        .arg(format!("-storageDataPath={}", dir.display()))
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .arg("-retentionPeriod=100y")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn victoria-metrics");
    let p = Peer { child, port };
    wait_ready(&p.url("/health"), "victoria-metrics");
    p
}

/// Prometheus's answer to `count_over_time({job="crash"}[2h])`: `(labels, count)` per series.
fn prometheus_counts(p: &Peer) -> Vec<(serde_json::Map<String, serde_json::Value>, f64)> {
    let q = common::enc("count_over_time({job=\"crash\"}[2h])");
    let v = get_json(&p.url(&format!("/api/v1/query?query={q}")));
    v["data"]["result"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    let labels = s["metric"].as_object().cloned().unwrap_or_default();
                    let n = s["value"][1]
                        .as_str()
                        .and_then(|x| x.parse().ok())
                        .unwrap_or(0.0);
                    (labels, n)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// VictoriaMetrics' raw samples of `{job="crash"}`: `(labels, timestamps)` per series.
fn vm_series(p: &Peer) -> Vec<(serde_json::Map<String, serde_json::Value>, Vec<i64>)> {
    let _ = reqwest::blocking_client()
        .get(p.url("/internal/force_flush"))
        .send();
    let q = common::enc("{job=\"crash\"}");
    let text = reqwest::blocking_client()
        .get(p.url(&format!("/api/v1/export?match[]={q}")))
        .send()
        .map(|r| r.text())
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            let labels = v["metric"].as_object().cloned().unwrap_or_default();
            let ts = v["timestamps"]
                .as_array()
                .map(|a| a.iter().filter_map(|t| t.as_i64()).collect())
                .unwrap_or_default();
            (labels, ts)
        })
        .collect()
}

fn strata_config(dir: &Path, body: &str) -> String {
    let cfg = dir.join("strata.yml");
    std::fs::write(&cfg, body).expect("config");
    format!("--config.file={}", cfg.display())
}

#[test]
fn samples_reach_prometheus_and_victoria_metrics_with_external_labels_and_relabeling() {
    if !installed("prometheus") || !installed("victoria-metrics") {
        eprintln!("skipping: prometheus or victoria-metrics is not installed");
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let prom = start_prometheus(&tmp.path().join("prom"), free_port());
    let vm = start_victoria_metrics(&tmp.path().join("vm"), free_port());
    let cfg = strata_config(
        tmp.path(),
        &format!(
            "global:\n  scrape_interval: 15s\n  external_labels:\n    replica: a\n\
             remote_write:\n\
             \x20 - url: {}\n    name: prom\n    queue_config:\n      min_backoff: 50ms\n      max_backoff: 500ms\n\
             \x20   write_relabel_configs:\n      - source_labels: [__name__]\n        regex: test_metric_6\n        action: drop\n\
             \x20 - url: {}\n    name: vm\n",
            prom.url("/api/v1/write"),
            vm.url("/api/v1/write")
        ),
    );
    let strata = Server::start(&tmp.path().join("strata"), &[&cfg]);
    // 21 series (3 of them test_metric_6) × 40 samples, half an hour old.
    let t0 = now_ms() / 1000 * 1000 - 30 * 60_000;
    assert_eq!(
        post_write(strata.port, write_body(0..21, t0, 40, 15_000)).expect("write"),
        204
    );
    let ok = eventually(60, || {
        let c = prometheus_counts(&prom);
        c.len() == 18 && c.iter().all(|(_, n)| *n == 40.0)
    });
    let counts = prometheus_counts(&prom);
    assert!(ok, "prometheus has {counts:?}");
    for (labels, _) in &counts {
        assert_eq!(labels["replica"], "a", "{labels:?}");
    }
    let q = common::enc("{job=\"crash\"}");
    let series = get_json(&prom.url(&format!("/api/v1/series?match[]={q}")));
    let names: Vec<&str> = series["data"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["__name__"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names.len(), 18, "{series}");
    assert!(!names.contains(&"test_metric_6"), "{names:?}");
    let ok = eventually(60, || {
        let s = vm_series(&vm);
        s.len() == 21 && s.iter().all(|(_, ts)| ts.len() == 40)
    });
    let series = vm_series(&vm);
    assert!(
        ok,
        "victoria-metrics has {} series: {series:?}",
        series.len()
    );
    assert!(series.iter().all(|(l, _)| l["replica"] == "a"));
    // Prometheus's metric names, per queue.
    let metrics = reqwest::blocking_client()
        .get(strata.url("/metrics"))
        .send()
        .expect("metrics")
        .text();
    assert!(
        metrics.contains("prometheus_remote_storage_samples_total{remote_name=\"prom\""),
        "{metrics}"
    );
    let sent = |name: &str| {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("prometheus_remote_storage_samples_total{")
                    && l.contains(&format!("remote_name=\"{name}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    assert_eq!(sent("prom"), Some(720.0), "{metrics}");
    assert_eq!(sent("vm"), Some(840.0), "{metrics}");
    let dropped = metrics
        .lines()
        .find(|l| {
            l.starts_with("prometheus_remote_storage_samples_dropped_total{")
                && l.contains("remote_name=\"prom\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok());
    assert_eq!(dropped, Some(120.0), "{metrics}");
    strata.stop();
}

#[test]
fn a_receiver_down_for_a_minute_and_a_restart_lose_and_duplicate_nothing() {
    if !installed("prometheus") || !installed("victoria-metrics") {
        eprintln!("skipping: prometheus or victoria-metrics is not installed");
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let (pport, vport) = (free_port(), free_port());
    let prom = start_prometheus(&tmp.path().join("prom"), pport);
    let vm = start_victoria_metrics(&tmp.path().join("vm"), vport);
    let cfg = strata_config(
        tmp.path(),
        &format!(
            "global:\n  scrape_interval: 15s\n\
             remote_write:\n\
             \x20 - url: {}\n    name: prom\n    queue_config:\n      min_backoff: 50ms\n      max_backoff: 1s\n\
             \x20 - url: {}\n    name: vm\n    queue_config:\n      min_backoff: 50ms\n      max_backoff: 1s\n",
            prom.url("/api/v1/write"),
            vm.url("/api/v1/write")
        ),
    );
    let data = tmp.path().join("strata");
    let strata = Server::start(&data, &[&cfg]);
    let t0 = now_ms() / 1000 * 1000 - 50 * 60_000;
    let step = 15_000;
    // Three batches of 10 series × 20 samples, one after the other in time.
    let batch = |k: i64| write_body(0..10, t0 + k * 20 * step, 20, step);
    assert_eq!(post_write(strata.port, batch(0)).expect("write"), 204);
    assert!(
        eventually(60, || prometheus_counts(&prom)
            .iter()
            .map(|c| c.1)
            .sum::<f64>()
            == 200.0),
        "first batch: {:?}",
        prometheus_counts(&prom)
    );
    assert!(
        eventually(60, || vm_series(&vm)
            .iter()
            .map(|s| s.1.len())
            .sum::<usize>()
            == 200),
        "first batch: {:?}",
        vm_series(&vm)
    );
    // Both receivers go down (gracefully: VictoriaMetrics keeps the last second of
    // samples only in memory until it flushes); Strata keeps taking samples, and restarts
    // meanwhile.
    prom.stop();
    vm.stop();
    let down = Instant::now();
    assert_eq!(post_write(strata.port, batch(1)).expect("write"), 204);
    std::thread::sleep(Duration::from_secs(5));
    strata.stop();
    let strata = Server::start(&data, &[&cfg]);
    assert_eq!(post_write(strata.port, batch(2)).expect("write"), 204);
    let outage = std::env::var("STRATA_TEST_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let rest = Duration::from_secs(outage).saturating_sub(down.elapsed());
    std::thread::sleep(rest);
    // Back after a minute, on the same ports and data.
    let prom = start_prometheus(&tmp.path().join("prom"), pport);
    let vm = start_victoria_metrics(&tmp.path().join("vm"), vport);
    let ok = eventually(90, || {
        let c = prometheus_counts(&prom);
        c.len() == 10 && c.iter().all(|(_, n)| *n == 60.0)
    });
    assert!(ok, "prometheus has {:?}", prometheus_counts(&prom));
    // VictoriaMetrics keeps a sample sent twice twice: every timestamp once means no
    // duplicates.
    let ok = eventually(60, || {
        let s = vm_series(&vm);
        s.len() == 10 && s.iter().all(|(_, ts)| ts.len() == 60)
    });
    let series = vm_series(&vm);
    let counts: Vec<(usize, i64, i64)> = series
        .iter()
        .map(|(_, ts)| {
            (
                ts.len(),
                ts.first().copied().unwrap_or(0) - t0,
                ts.last().copied().unwrap_or(0) - t0,
            )
        })
        .collect();
    let remote: String = reqwest::blocking_client()
        .get(strata.url("/metrics"))
        .send()
        .map(|r| r.text())
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("remote_storage") && !l.starts_with('#') && !l.contains("_bucket"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        ok,
        "victoria-metrics has {counts:?} samples per series\n{remote}"
    );
    for (labels, ts) in &series {
        let mut unique = ts.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ts.len(), "duplicates in {labels:?}");
        assert_eq!(unique.len(), 60, "{labels:?}");
    }
    strata.stop();
}

/// Strata to Strata: a queue with `protobuf_message: io.prometheus.write.v2.Request` sends
/// Remote Write 2.0, and a 1.0 queue sends the families' metadata every `send_interval`.
#[test]
fn remote_write_2_0_and_metadata_reach_another_strata() {
    use strata_ingest::remote_write::{
        Label, MetricMetadata, Sample, TimeSeries, WriteRequest, encode,
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let b = Server::start(&tmp.path().join("b"), &[]);
    let c = Server::start(&tmp.path().join("c"), &[]);
    let cfg = strata_config(
        tmp.path(),
        &format!(
            "global:\n  scrape_interval: 15s\n\
             remote_write:\n\
             \x20 - url: {}\n    name: v2\n    protobuf_message: io.prometheus.write.v2.Request\n\
             \x20 - url: {}\n    name: meta\n    metadata_config:\n      send_interval: 1s\n",
            b.url("/api/v1/write"),
            c.url("/api/v1/write")
        ),
    );
    let a = Server::start(&tmp.path().join("a"), &[&cfg]);
    let t0 = now_ms() / 1000 * 1000 - 10 * 60_000;
    let req = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![
                Label {
                    name: "__name__".into(),
                    value: "jobs_done_total".into(),
                },
                Label {
                    name: "job".into(),
                    value: "crash".into(),
                },
            ],
            samples: (0..30)
                .map(|k| Sample {
                    value: k as f64,
                    timestamp: t0 + k * 15_000,
                })
                .collect(),
        }],
        metadata: vec![MetricMetadata {
            r#type: 1,
            metric_family_name: "jobs_done_total".into(),
            help: "Jobs done.".into(),
            unit: String::new(),
        }],
    };
    assert_eq!(post_write(a.port, encode(&req)).expect("write"), 204);
    let count = |s: &Server| {
        let q = common::enc("count_over_time(jobs_done_total[1h])");
        get_json(&s.url(&format!("/api/v1/query?query={q}")))["data"]["result"][0]["value"][1]
            .as_str()
            .map(str::to_string)
    };
    assert!(
        eventually(60, || count(&b).as_deref() == Some("30")),
        "v2: {:?}",
        count(&b)
    );
    assert!(
        eventually(60, || count(&c).as_deref() == Some("30")),
        "v1: {:?}",
        count(&c)
    );
    let help = |s: &Server| {
        get_json(&s.url("/api/v1/metadata?metric=jobs_done_total"))["data"]["jobs_done_total"][0]
            ["help"]
            .as_str()
            .map(str::to_string)
    };
    // 1.0: metadata in requests of their own; 2.0: on the series.
    assert!(
        eventually(30, || help(&c).as_deref() == Some("Jobs done.")),
        "{:?}",
        help(&c)
    );
    assert_eq!(help(&b).as_deref(), Some("Jobs done."));
    let metrics = reqwest::blocking_client()
        .get(a.url("/metrics"))
        .send()
        .expect("metrics")
        .text();
    assert!(
        metrics.lines().any(|l| l
            .starts_with("prometheus_remote_storage_metadata_total{remote_name=\"meta\"")
            && !l.ends_with(" 0")),
        "{metrics}"
    );
    a.stop();
    b.stop();
    c.stop();
}
