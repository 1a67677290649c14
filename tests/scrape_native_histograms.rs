//! Native histograms scraped from the protobuf exposition, end to end over HTTP: a scripted
//! exporter serves delimited `MetricFamily` messages (built here with prost) holding a
//! client_golang-style integer native histogram next to classic buckets; strata scrapes it
//! with `scrape_native_histograms` on and off, `always_scrape_classic_histograms`,
//! `native_histogram_bucket_limit` and `native_histogram_min_bucket_factor`, and the series
//! are checked through `/api/v1/query` (Prometheus's `histogram` JSON, `histogram_quantile`).

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, enc, reqwest};
use prost::Message;
use serde_json::{Value, json};
use strata_ingest::pushgateway::proto::{
    Bucket, BucketSpan, Histogram, LabelPair, Metric, MetricFamily, SimpleValue,
};

/// A classic histogram in text format (for `convert_classic_histograms_to_nhcb`).
const TEXT: &str = "# HELP req_seconds Latency.\n# TYPE req_seconds histogram\nreq_seconds_bucket{path=\"/a\",le=\"0.1\"} 1\nreq_seconds_bucket{path=\"/a\",le=\"0.5\"} 3\nreq_seconds_bucket{path=\"/a\",le=\"+Inf\"} 4\nreq_seconds_sum{path=\"/a\"} 1.2\nreq_seconds_count{path=\"/a\"} 4\n# TYPE level gauge\nlevel 2\n";

const PROTO: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// A scripted exporter: serves whatever body the test sets as protobuf, or [`TEXT`] in
/// text format when asked for `format=text`, and remembers the `Accept` header of each job
/// (by the `job` query parameter).
struct Exporter {
    port: u16,
    body: Arc<Mutex<Vec<u8>>>,
    accepts: Arc<Mutex<Vec<(String, String)>>>,
}

impl Exporter {
    fn start(body: Vec<u8>) -> Exporter {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(body));
        let accepts = Arc::new(Mutex::new(Vec::new()));
        let (st, acc) = (state.clone(), accepts.clone());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut c) = conn else { continue };
                let mut buf = [0u8; 8192];
                let n = c.read(&mut buf).unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                let path = req.split_whitespace().nth(1).unwrap_or("").to_owned();
                let accept = req
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("accept")
                            .then(|| v.trim().to_owned())
                    })
                    .unwrap_or_default();
                let text = path.contains("format=text");
                acc.lock().expect("lock").push((path, accept));
                let (body, ct) = if text {
                    (TEXT.as_bytes().to_vec(), "text/plain; version=0.0.4")
                } else {
                    (st.lock().expect("lock").clone(), PROTO)
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = c.write_all(head.as_bytes());
                let _ = c.write_all(&body);
            }
        });
        Exporter {
            port,
            body: state,
            accepts,
        }
    }

    fn set(&self, body: Vec<u8>) {
        *self.body.lock().expect("lock") = body;
    }

    fn accept_of(&self, job: &str) -> Option<String> {
        let want = format!("job={job}");
        self.accepts
            .lock()
            .expect("lock")
            .iter()
            .rev()
            .find(|(p, _)| p.contains(&want))
            .map(|(_, a)| a.clone())
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

fn label(k: &str, v: &str) -> LabelPair {
    LabelPair {
        name: Some(k.into()),
        value: Some(v.into()),
    }
}

fn span(offset: i32, length: u32) -> BucketSpan {
    BucketSpan {
        offset: Some(offset),
        length: Some(length),
    }
}

/// A schema-0 integer native histogram as client_golang exposes it: one observation in
/// the zero bucket, two in (0.5, 1] (bucket 0), three in (1, 2] (bucket 1), two in (4, 8]
/// (bucket 3); sum 20. Two classic buckets come with it.
fn native_histogram() -> Histogram {
    Histogram {
        sample_count: Some(8),
        sample_sum: Some(20.0),
        bucket: vec![
            Bucket {
                cumulative_count: Some(3),
                upper_bound: Some(1.0),
                ..Default::default()
            },
            Bucket {
                cumulative_count: Some(6),
                upper_bound: Some(2.0),
                ..Default::default()
            },
        ],
        schema: Some(0),
        zero_threshold: Some(0.001),
        zero_count: Some(1),
        positive_span: vec![span(0, 2), span(1, 1)],
        // Deltas between consecutive buckets: 2, 3 - 2, 2 - 3.
        positive_delta: vec![2, 1, -1],
        ..Default::default()
    }
}

fn body(with_histogram: bool) -> Vec<u8> {
    let mut fams = vec![MetricFamily {
        name: Some("rpc_requests_total".into()),
        help: Some("Requests.".into()),
        r#type: Some(0),
        metric: vec![Metric {
            counter: Some(SimpleValue { value: Some(5.0) }),
            ..Default::default()
        }],
    }];
    if with_histogram {
        fams.push(MetricFamily {
            name: Some("rpc_duration_seconds".into()),
            help: Some("RPC latency.".into()),
            r#type: Some(4),
            metric: vec![Metric {
                label: vec![label("method", "get")],
                histogram: Some(native_histogram()),
                ..Default::default()
            }],
        });
        fams.push(MetricFamily {
            name: Some("dropped_seconds".into()),
            help: None,
            r#type: Some(4),
            metric: vec![Metric {
                histogram: Some(native_histogram()),
                ..Default::default()
            }],
        });
    }
    let mut out = Vec::new();
    for f in fams {
        f.encode_length_delimited(&mut out).expect("encode");
    }
    out
}

fn write_config(dir: &Path, yaml: &str) -> String {
    let p = dir.join("prometheus.yml");
    std::fs::write(&p, yaml).expect("write config");
    format!("--config.file={}", p.display())
}

fn query(s: &Server, q: &str) -> Vec<Value> {
    let r = reqwest::blocking_client()
        .get(s.url(&format!("/api/v1/query?query={}", enc(q))))
        .send()
        .expect("query");
    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    assert_eq!(v["status"], "success", "{q}: {v}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

fn value_of(r: &Value) -> f64 {
    r["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
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

/// One job per setting, all scraping the same exporter (told apart by `job`).
fn config(exporter: &str) -> String {
    let job = |name: &str, extra: &str| {
        // `format=text` asks the exporter for the text body.
        let format = if name == "nhcb" {
            "      format: [text]\n"
        } else {
            ""
        };
        format!(
            "  - job_name: {name}\n    params:\n      job: [{name}]\n{format}{extra}    static_configs:\n      - targets: ['{exporter}']\n"
        )
    };
    let mut cfg =
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 500ms\nscrape_configs:\n".to_owned();
    cfg.push_str(&job(
        "native",
        "    scrape_native_histograms: true\n    metric_relabel_configs:\n      - target_label: env\n        replacement: test\n      - source_labels: [__name__]\n        regex: dropped_seconds\n        action: drop\n",
    ));
    // Off, with the protobuf format asked for: the histogram is read as classic.
    cfg.push_str(&job(
        "classic",
        "    scrape_native_histograms: false\n    scrape_protocols: [PrometheusProto, PrometheusText0.0.4]\n",
    ));
    cfg.push_str(&job(
        "both",
        "    scrape_native_histograms: true\n    always_scrape_classic_histograms: true\n",
    ));
    cfg.push_str(&job(
        "limited",
        "    scrape_native_histograms: true\n    native_histogram_bucket_limit: 2\n",
    ));
    cfg.push_str(&job(
        "coarse",
        "    scrape_native_histograms: true\n    native_histogram_min_bucket_factor: 4\n",
    ));
    cfg.push_str(&job(
        "overlimit",
        "    scrape_native_histograms: true\n    native_histogram_bucket_limit: 1\n",
    ));
    // Classic histograms stored as native histograms with custom buckets: from the text
    // format, from the protobuf format, and not where a native histogram exists.
    cfg.push_str(&job(
        "nhcb",
        "    convert_classic_histograms_to_nhcb: true\n",
    ));
    cfg.push_str(&job(
        "nhcbproto",
        "    scrape_protocols: [PrometheusProto]\n    convert_classic_histograms_to_nhcb: true\n",
    ));
    cfg.push_str(&job(
        "inhibited",
        "    scrape_native_histograms: true\n    always_scrape_classic_histograms: true\n    convert_classic_histograms_to_nhcb: true\n",
    ));
    cfg
}

/// `(count, sum, buckets)` of an instant vector element holding a histogram.
fn histogram_of(r: &Value) -> (Value, Value, Value) {
    let h = &r["histogram"][1];
    assert!(h.is_object(), "not a histogram: {r}");
    (h["count"].clone(), h["sum"].clone(), h["buckets"].clone())
}

#[test]
fn native_histograms_are_scraped_from_the_protobuf_format() {
    let exp = Exporter::start(body(true));
    let cfgdir = tempfile::tempdir().expect("tmp");
    let cfg = write_config(cfgdir.path(), &config(&exp.addr()));
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &[&cfg]);

    // The native sample, under the family name, with target labels and relabeling.
    let r = wait_for("the native histogram", 30, || {
        let r = query(&s, "rpc_duration_seconds{job=\"native\"}");
        (r.len() == 1).then_some(r)
    });
    assert_eq!(
        r[0]["metric"],
        json!({"__name__": "rpc_duration_seconds", "env": "test", "instance": exp.addr(),
               "job": "native", "method": "get"})
    );
    assert!(
        r[0].get("value").is_none(),
        "a histogram, not a float: {}",
        r[0]
    );
    let (count, sum, buckets) = histogram_of(&r[0]);
    assert_eq!(count, "8");
    assert_eq!(sum, "20");
    assert_eq!(
        buckets,
        json!([
            [3, "-0.001", "0.001", "1"],
            [0, "0.5", "1", "2"],
            [0, "1", "2", "3"],
            [0, "4", "8", "2"]
        ])
    );
    // Rank 4 of 8 falls in (1, 2] after 3: a third of it on a logarithmic scale.
    let q = query(
        &s,
        "histogram_quantile(0.5, rpc_duration_seconds{job=\"native\"})",
    );
    assert_eq!(q.len(), 1, "{q:?}");
    let v = value_of(&q[0]);
    assert!((v - 2f64.powf(1.0 / 3.0)).abs() < 1e-9, "median {v}");
    assert_eq!(
        value_of(&query(&s, "histogram_count(rpc_duration_seconds{job=\"native\"})")[0]),
        8.0
    );
    // Only the native sample: no classic series, and the dropped family is gone.
    for q in [
        "rpc_duration_seconds_bucket{job=\"native\"}",
        "rpc_duration_seconds_count{job=\"native\"}",
        "rpc_duration_seconds_sum{job=\"native\"}",
        "dropped_seconds{job=\"native\"}",
        "{__name__=~\"dropped_seconds.*\",job=\"native\"}",
    ] {
        assert!(query(&s, q).is_empty(), "{q}: {:?}", query(&s, q));
    }
    // Histograms count as scraped samples: the counter and two histograms, one dropped.
    let scraped = query(&s, "scrape_samples_scraped{job=\"native\"}");
    assert_eq!(value_of(&scraped[0]), 3.0);
    let post = query(&s, "scrape_samples_post_metric_relabeling{job=\"native\"}");
    assert_eq!(value_of(&post[0]), 2.0);
    // The protobuf format is asked for first, as Prometheus asks.
    let accept = exp.accept_of("native").expect("a request of job native");
    assert!(
        accept.starts_with(
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,"
        ),
        "{accept}"
    );
    assert!(accept.ends_with("*/*;q=0.1"), "{accept}");

    // scrape_native_histograms off: classic series only (with the +Inf bucket).
    let b = wait_for("classic buckets", 20, || {
        let r = query(&s, "rpc_duration_seconds_bucket{job=\"classic\"}");
        (r.len() == 3).then_some(r)
    });
    let mut les: Vec<String> = b
        .iter()
        .map(|r| r["metric"]["le"].as_str().unwrap_or("").to_owned())
        .collect();
    les.sort();
    assert_eq!(les, ["+Inf", "1", "2"]);
    assert_eq!(
        value_of(&query(&s, "rpc_duration_seconds_count{job=\"classic\"}")[0]),
        8.0
    );
    assert!(query(&s, "rpc_duration_seconds{job=\"classic\"}").is_empty());
    let accept = exp.accept_of("classic").expect("a request of job classic");
    assert!(!accept.contains("escaping"), "{accept}");

    // always_scrape_classic_histograms: both.
    wait_for("native and classic", 20, || {
        let n = query(&s, "rpc_duration_seconds{job=\"both\"}");
        let c = query(&s, "rpc_duration_seconds_bucket{job=\"both\"}");
        (n.len() == 1 && c.len() == 3).then_some(())
    });
    let accept = exp.accept_of("both").expect("a request of job both");
    assert!(
        accept.starts_with("application/vnd.google.protobuf"),
        "{accept}"
    );

    // Bucket limit 2: schema 0 → −2 (buckets (1/16, 1] and (1, 16]).
    let r = wait_for("the limited histogram", 20, || {
        let r = query(&s, "rpc_duration_seconds{job=\"limited\"}");
        (r.len() == 1).then_some(r)
    });
    let (count, _, buckets) = histogram_of(&r[0]);
    assert_eq!(count, "8");
    assert_eq!(
        buckets,
        json!([
            [3, "-0.001", "0.001", "1"],
            [0, "0.0625", "1", "2"],
            [0, "1", "16", "5"]
        ])
    );
    // Minimum bucket factor 4: schema −1 at most (buckets (0.25, 1], (1, 4], (4, 16]).
    let r = wait_for("the coarse histogram", 20, || {
        let r = query(&s, "rpc_duration_seconds{job=\"coarse\"}");
        (r.len() == 1).then_some(r)
    });
    let (_, _, buckets) = histogram_of(&r[0]);
    assert_eq!(
        buckets,
        json!([
            [3, "-0.001", "0.001", "1"],
            [0, "0.25", "1", "2"],
            [0, "1", "4", "3"],
            [0, "4", "16", "2"]
        ])
    );
    // Bucket limit 1 cannot be met: the scrape fails with Prometheus's error, nothing stored.
    wait_for("the over-limit scrape to fail", 20, || {
        let up = query(&s, "up{job=\"overlimit\"}");
        (up.len() == 1 && value_of(&up[0]) == 0.0).then_some(())
    });
    assert!(query(&s, "rpc_requests_total{job=\"overlimit\"}").is_empty());
    let last_error = || {
        let targets: Value = serde_json::from_slice(
            &reqwest::blocking_client()
                .get(s.url("/api/v1/targets"))
                .send()
                .expect("targets")
                .body,
        )
        .unwrap_or(Value::Null);
        targets["data"]["activeTargets"]
            .as_array()
            .and_then(|a| a.iter().find(|t| t["labels"]["job"] == "overlimit"))
            .map(|t| t["lastError"].clone())
            .unwrap_or(Value::Null)
    };
    wait_for("the bucket limit error on the targets page", 20, || {
        (last_error() == "histogram bucket limit exceeded").then_some(())
    });

    // NHCB from the text format: one histogram with the classic bounds, no classic series.
    let r = wait_for("the NHCB from text", 20, || {
        let r = query(&s, "req_seconds{job=\"nhcb\"}");
        (r.len() == 1).then_some(r)
    });
    assert_eq!(r[0]["metric"]["path"], "/a");
    let (count, sum, buckets) = histogram_of(&r[0]);
    assert_eq!((count.as_str(), sum.as_str()), (Some("4"), Some("1.2")));
    let uppers_counts: Vec<(Value, Value)> = buckets
        .as_array()
        .map(|b| b.iter().map(|b| (b[2].clone(), b[3].clone())).collect())
        .unwrap_or_default();
    assert_eq!(
        uppers_counts,
        [
            (json!("0.1"), json!("1")),
            (json!("0.5"), json!("2")),
            (json!("+Inf"), json!("1"))
        ]
    );
    assert!(query(&s, "req_seconds_bucket{job=\"nhcb\"}").is_empty());
    assert!(query(&s, "req_seconds_count{job=\"nhcb\"}").is_empty());
    assert_eq!(query(&s, "level{job=\"nhcb\"}").len(), 1);
    // Custom buckets interpolate linearly: rank 2 of 4 is half way through (0.1, 0.5].
    let v = value_of(&query(&s, "histogram_quantile(0.5, req_seconds{job=\"nhcb\"})")[0]);
    assert!((v - 0.3).abs() < 1e-9, "median {v}");
    // NHCB from the classic buckets of the protobuf body (native histograms not scraped).
    let r = wait_for("the NHCB from protobuf", 20, || {
        let r = query(&s, "rpc_duration_seconds{job=\"nhcbproto\"}");
        (r.len() == 1).then_some(r)
    });
    let (count, _, buckets) = histogram_of(&r[0]);
    assert_eq!(count, "8");
    let uppers: Vec<Value> = buckets
        .as_array()
        .map(|b| b.iter().map(|b| b[2].clone()).collect())
        .unwrap_or_default();
    assert_eq!(uppers, [json!("1"), json!("2"), json!("+Inf")]);
    assert!(query(&s, "rpc_duration_seconds_bucket{job=\"nhcbproto\"}").is_empty());
    // A native histogram wins over the conversion of its own classic buckets.
    let r = wait_for(
        "the native histogram beside kept classic series",
        20,
        || {
            let r = query(&s, "rpc_duration_seconds{job=\"inhibited\"}");
            let c = query(&s, "rpc_duration_seconds_bucket{job=\"inhibited\"}");
            (r.len() == 1 && c.len() == 3).then_some(r)
        },
    );
    let (_, _, buckets) = histogram_of(&r[0]);
    assert_eq!(
        buckets[1],
        json!([0, "0.5", "1", "2"]),
        "exponential: {buckets}"
    );

    // The histogram leaves the exposition: its series ends (a staleness marker).
    exp.set(body(false));
    wait_for("the histogram series to end", 20, || {
        query(&s, "rpc_duration_seconds{job=\"native\"}")
            .is_empty()
            .then_some(())
    });
    assert_eq!(
        query(&s, "rpc_requests_total{job=\"native\"}").len(),
        1,
        "the counter stays"
    );
    s.stop();
}
