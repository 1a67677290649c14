//! The web UI in a real browser: headless Debian Chromium driven by `playwright-core`
//! (`tests/ui/browser.mjs`, installed by `.ci/run` with `npm ci --prefix tests/ui`) against
//! a running `strata` with known data, rules and silences. The script runs a query and
//! checks the graph's series count, switches to the table, follows a shared URL with
//! several panels, shows exemplars on a graph (markers, tooltip, the `g0.show_exemplars`
//! toggle), sees an API error shown next to the query, uses autocompletion, and
//! opens the targets, rules, alerts, silences (create and expire) and status pages. Any
//! console error or uncaught exception fails it. Screenshots go to
//! `<target>/tmp/ui-artifacts/`.

mod common;

use std::path::Path;
use std::process::Command;

use common::Server;
use strata_ingest::remote_write::{Label, Sample, TimeSeries, WriteRequest, encode};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `ui_demo{job="demo", instance="a"|"b"|"c"}` every 15 s over the last hour.
fn load_demo(port: u16) {
    let now = now_ms();
    let req = WriteRequest {
        timeseries: ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, inst)| TimeSeries {
                labels: [("__name__", "ui_demo"), ("instance", inst), ("job", "demo")]
                    .iter()
                    .map(|(n, v)| Label {
                        name: (*n).into(),
                        value: (*v).into(),
                    })
                    .collect(),
                samples: (0..240)
                    .map(|k| Sample {
                        timestamp: now - 3_600_000 + k * 15_000,
                        value: (i as f64 + 1.0) * 10.0 + ((k as f64) / 20.0).sin() * 5.0,
                    })
                    .collect(),
            })
            .collect(),
        metadata: vec![],
    };
    assert_eq!(common::post_write(port, encode(&req)).expect("write"), 204);
}

/// `ui_hist{job="demo"}`: a native histogram every minute over the last hour, three
/// populated buckets.
fn load_histogram(port: u16) {
    use common::rw1::{TimeSeries, WriteRequest, encode};
    use strata_ingest::histogram_proto::{BucketSpan, Count, Histogram};
    let now = now_ms();
    let req = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: [("__name__", "ui_hist"), ("job", "demo")]
                .iter()
                .map(|(n, v)| Label {
                    name: (*n).into(),
                    value: (*v).into(),
                })
                .collect(),
            histograms: (1..=60i64)
                .map(|k| Histogram {
                    count: Some(Count::CountInt(5 * k as u64)),
                    sum: 9.0 * k as f64,
                    positive_spans: vec![BucketSpan {
                        offset: 0,
                        length: 3,
                    }],
                    positive_deltas: vec![k, k, 0],
                    timestamp: now - 3_600_000 + k * 60_000,
                    ..Histogram::default()
                })
                .collect(),
            ..Default::default()
        }],
    };
    assert_eq!(common::post_write(port, encode(&req)).expect("write"), 204);
}

/// The exemplars of `ui_exemplar` (trace id, minutes before now, value); `browser.mjs`
/// expects these. The 3.5 lies above the series' values (1..2), so the y axis must grow.
const EXEMPLARS: [(&str, i64, f64); 4] = [
    ("ui-trace-1", 50, 1.25),
    ("ui-trace-2", 35, 1.5),
    ("ui-trace-3", 20, 3.5),
    ("ui-trace-4", 5, 1.75),
];

/// `ui_exemplar{job="demo"}` every 15 s over the last hour (values between 1 and 2) with
/// the [`EXEMPLARS`], in remote write 1.0's `TimeSeries.exemplars` (field 3).
fn load_exemplars(port: u16) {
    use common::rw1::{Exemplar, TimeSeries, WriteRequest, encode, label};
    // Whole seconds, so each exemplar sits on a sample's timestamp.
    let now = now_ms() / 1000 * 1000;
    let req = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![label("__name__", "ui_exemplar"), label("job", "demo")],
            samples: (0..240)
                .map(|k| Sample {
                    timestamp: now - 3_600_000 + k * 15_000,
                    value: 1.5 + ((k as f64) / 15.0).sin() * 0.5,
                })
                .collect(),
            exemplars: EXEMPLARS
                .iter()
                .map(|&(trace, minutes_ago, value)| Exemplar {
                    labels: vec![label("trace_id", trace)],
                    value,
                    timestamp: now - minutes_ago * 60_000,
                })
                .collect(),
            ..Default::default()
        }],
    };
    assert_eq!(common::post_write(port, encode(&req)).expect("write"), 204);
    // The exemplars are served before the browser looks for them.
    let v = common::get_json(&format!(
        "http://127.0.0.1:{port}/api/v1/query_exemplars?query=ui_exemplar&start={}&end={}",
        (now - 3_600_000) / 1000,
        now / 1000 + 1
    ));
    let n = v["data"][0]["exemplars"].as_array().map_or(0, Vec::len);
    assert_eq!(n, EXEMPLARS.len(), "exemplars not stored: {v}");
}

#[test]
fn ui_in_headless_chromium() {
    // Read at run time: a test binary built from another checkout of the same sources
    // (a shared target directory) must still find this checkout's files.
    let root = std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string()),
    );
    let root = root.as_path();
    let script = root.join("tests/ui/browser.mjs");
    let chromium = Path::new("/usr/bin/chromium");
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let pw = root.join("tests/ui/node_modules/playwright-core");
    if !chromium.exists() || !node_ok || !pw.exists() {
        eprintln!(
            "SKIP: needs /usr/bin/chromium (Debian chromium), node and tests/ui/node_modules \
             (npm ci --prefix tests/ui); .ci/run installs them"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("rules.yml"),
        r#"groups:
  - name: ui
    interval: 1s
    rules:
      - alert: UiAlwaysFiring
        expr: vector(1)
        labels:
          severity: page
        annotations:
          summary: "Always firing, for the UI test"
      - alert: UiPending
        expr: ui_demo > 25
        for: 1h
      - record: job:ui_demo:sum
        expr: sum by (job) (ui_demo)
"#,
    )
    .expect("rules");
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        "global:\n  scrape_interval: 15s\n  evaluation_interval: 1s\nrule_files: [rules.yml]\nscrape_configs:\n  - job_name: unreachable\n    scrape_interval: 1s\n    scrape_timeout: 500ms\n    static_configs:\n      - targets: ['127.0.0.1:1']\n",
    )
    .expect("config");
    let am = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am,
        "route:\n  receiver: none\nreceivers:\n  - name: none\n",
    )
    .expect("am");
    let s = Server::start(
        &dir.path().join("data"),
        &[
            &format!("--config.file={}", cfg.display()),
            &format!("--alertmanager.config.file={}", am.display()),
        ],
    );
    load_demo(s.port);
    load_histogram(s.port);
    load_exemplars(s.port);
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    let out = Command::new("node")
        .arg(&script)
        .env("STRATA_URL", format!("http://127.0.0.1:{}", s.port))
        .env("UI_ARTIFACTS", &artifacts)
        .env("CHROMIUM", chromium)
        .current_dir(root.join("tests/ui"))
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}\nscreenshots: {}", artifacts.display());
    assert!(out.status.success(), "browser checks failed");
    assert!(stdout.contains("0 failed"), "{stdout}");
    s.stop();
}
