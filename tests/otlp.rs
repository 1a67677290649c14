//! OTLP metrics from the real OpenTelemetry Python SDK (`opentelemetry-sdk`,
//! `opentelemetry-exporter-otlp-proto-http`) into `/api/v1/otlp/v1/metrics`, queried back
//! with Prometheus's translated names, `job`/`instance` from the service attributes and
//! `target_info` from the others; the endpoint is off without `--web.enable-otlp-receiver`
//! and refuses what it does not take. Skips (and says so) without the SDK. Exemplars of
//! sums and histograms (protobuf requests built here) come back from
//! `/api/v1/query_exemplars`; with `--enable-feature=otlp-deltatocumulative` delta counters
//! and histograms (built here, and from the SDK with delta temporality) are stored as
//! running totals.

mod common;

use std::process::Command;

use common::{Server, enc, get_json, now_ms, query, reqwest};
use strata_ingest::otlp::proto;

const EXPORT: &str = r#"
import sys
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.resources import Resource
reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=sys.argv[1]), export_interval_millis=3600000)
provider = MeterProvider(
    resource=Resource.create({"service.name": "shop", "service.namespace": "prod",
                              "service.instance.id": "i-1", "deployment.environment": "test"}),
    metric_readers=[reader])
meter = provider.get_meter("strata-test")
c = meter.create_counter("http.server.requests", unit="{request}", description="Requests served.")
c.add(5, {"http.method": "GET"})
c.add(2, {"http.method": "POST"})
h = meter.create_histogram("http.server.duration", unit="s")
for v in [0.003, 0.02, 0.2, 1.5]:
    h.record(v, {"http.method": "GET"})
u = meter.create_up_down_counter("queue.size", unit="By")
u.add(100)
u.add(-30)
g = meter.create_gauge("cpu.utilization", unit="1")
g.set(0.25)
ok = provider.force_flush()
provider.shutdown()
sys.exit(0 if ok else 1)
"#;

fn sdk_installed() -> bool {
    Command::new("python3")
        .args([
            "-c",
            "import opentelemetry.sdk.metrics, opentelemetry.exporter.otlp.proto.http.metric_exporter",
        ])
        .status()
        .is_ok_and(|s| s.success())
}

fn value(s: &Server, q: &str) -> Option<String> {
    query(s, q)["data"]["result"][0]["value"][1]
        .as_str()
        .map(str::to_string)
}

#[test]
fn the_python_sdk_exports_and_prometheus_names_come_back() {
    if !sdk_installed() {
        eprintln!(
            "skipping: the OpenTelemetry Python SDK is not installed (pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http)"
        );
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let s = Server::start(tmp.path(), &["--web.enable-otlp-receiver"]);
    let status = Command::new("python3")
        .args(["-c", EXPORT, &s.url("/api/v1/otlp/v1/metrics")])
        .status()
        .expect("python3");
    assert!(status.success(), "the exporter failed");
    let sel = "job=\"prod/shop\",instance=\"i-1\"";
    assert_eq!(
        value(
            &s,
            &format!("http_server_requests_total{{{sel},http_method=\"GET\"}}")
        )
        .as_deref(),
        Some("5"),
        "{}",
        query(&s, "{job=\"prod/shop\"}")
    );
    assert_eq!(
        value(
            &s,
            &format!("http_server_requests_total{{{sel},http_method=\"POST\"}}")
        )
        .as_deref(),
        Some("2")
    );
    assert_eq!(
        value(&s, &format!("queue_size_bytes{{{sel}}}")).as_deref(),
        Some("70")
    );
    assert_eq!(
        value(&s, &format!("cpu_utilization_ratio{{{sel}}}")).as_deref(),
        Some("0.25")
    );
    assert_eq!(
        value(&s, &format!("http_server_duration_seconds_count{{{sel}}}")).as_deref(),
        Some("4")
    );
    let sum: f64 = value(&s, &format!("http_server_duration_seconds_sum{{{sel}}}"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    assert!((sum - 1.723).abs() < 1e-9, "{sum}");
    // Prometheus's definition on the SDK's default buckets (0, 5, 10, …): all four
    // observations in (0, 5], the median interpolated half way.
    assert_eq!(
        value(
            &s,
            "histogram_quantile(0.5, sum by (le) (http_server_duration_seconds_bucket))"
        )
        .as_deref(),
        Some("2.5")
    );
    let info = query(&s, "target_info");
    let m = &info["data"]["result"][0]["metric"];
    assert_eq!(m["job"], "prod/shop", "{info}");
    assert_eq!(m["instance"], "i-1", "{info}");
    assert_eq!(m["deployment_environment"], "test", "{info}");
    assert_eq!(m["telemetry_sdk_language"], "python", "{info}");
    assert!(m.get("service_name").is_none(), "{info}");
    // info() joins it.
    assert_eq!(
        query(&s, "info(queue_size_bytes)")["data"]["result"][0]["metric"]["deployment_environment"],
        "test"
    );
    let md: serde_json::Value = serde_json::from_str(
        &reqwest::blocking_client()
            .get(s.url("/api/v1/metadata?metric=http_server_requests_total"))
            .send()
            .expect("metadata")
            .text(),
    )
    .expect("json");
    assert_eq!(
        md["data"]["http_server_requests_total"][0]["type"], "counter",
        "{md}"
    );
    assert_eq!(
        md["data"]["http_server_requests_total"][0]["help"], "Requests served.",
        "{md}"
    );
    s.stop();
}

#[test]
fn the_endpoint_is_off_by_default_and_refuses_what_it_does_not_take() {
    let tmp = tempfile::tempdir().expect("tmp");
    let off = Server::start(&tmp.path().join("off"), &[]);
    let post = |s: &Server, body: &[u8], ct: &str, enc: Option<&str>| {
        let mut r = reqwest::blocking_client()
            .post(s.url("/api/v1/otlp/v1/metrics"), body.to_vec())
            .header("Content-Type", ct);
        if let Some(e) = enc {
            r = r.header("Content-Encoding", e);
        }
        let r = r.send().expect("post");
        (r.status().as_u16(), r.text())
    };
    assert_eq!(post(&off, b"", "application/x-protobuf", None).0, 404);
    off.stop();
    let on = Server::start(&tmp.path().join("on"), &["--web.enable-otlp-receiver"]);
    // An empty request is a valid empty export.
    assert_eq!(post(&on, b"", "application/x-protobuf", None).0, 200);
    assert_eq!(post(&on, b"{}", "text/plain", None).0, 415);
    assert_eq!(post(&on, b"", "application/x-protobuf", Some("br")).0, 415);
    let (status, text) = post(&on, b"\xff\xff\xff", "application/x-protobuf", None);
    assert_eq!(status, 400, "{text}");
    let (status, text) = post(&on, b"not gzip", "application/x-protobuf", Some("gzip"));
    assert_eq!(status, 400, "{text}");
    // OTLP/JSON: a gauge in Celsius is stored; a delta sum refuses the whole request.
    let ns = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
        - 60_000)
        * 1_000_000;
    let json = |metric: &str| {
        format!(
            r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"j"}}}}]}},"scopeMetrics":[{{"metrics":[{metric}]}}]}}]}}"#
        )
    };
    let gauge = json(&format!(
        r#"{{"name":"room.temp","unit":"Cel","gauge":{{"dataPoints":[{{"timeUnixNano":"{ns}","asDouble":21.5,"attributes":[{{"key":"room","value":{{"stringValue":"a"}}}}]}}]}}}}"#
    ));
    let (status, text) = post(&on, gauge.as_bytes(), "application/json", None);
    assert_eq!((status, text.as_str()), (200, "{}"));
    assert_eq!(
        value(&on, "room_temp_celsius{job=\"j\",room=\"a\"}").as_deref(),
        Some("21.5")
    );
    let delta = json(&format!(
        r#"{{"name":"jobs","sum":{{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[{{"timeUnixNano":"{ns}","asInt":"3"}}]}}}},{{"name":"other","gauge":{{"dataPoints":[{{"timeUnixNano":"{ns}","asInt":"1"}}]}}}}"#
    ));
    let (status, text) = post(&on, delta.as_bytes(), "application/json", None);
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("invalid temporality and type combination for metric \"jobs\""),
        "{text}"
    );
    assert_eq!(
        value(&on, "other"),
        None,
        "nothing of a refused request is stored"
    );
    on.stop();
}

/// Exports an exponential histogram of 1..=100 from the SDK twice (to Strata and to an
/// in-memory reader), and prints the quantiles Prometheus's definition gives on the SDK's
/// own buckets: logarithmic interpolation inside the bucket where the rank falls, walking
/// up for q < 0.5 and down from the top otherwise (`HistogramQuantile`).
const EXPORT_EXPONENTIAL: &str = r#"
import sys, math
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import View, ExponentialBucketHistogramAggregation
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.resources import Resource
mem = InMemoryMetricReader()
reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=sys.argv[1]), export_interval_millis=3600000)
provider = MeterProvider(resource=Resource.create({"service.name": "api"}), metric_readers=[reader, mem],
    views=[View(instrument_name="rpc.latency", aggregation=ExponentialBucketHistogramAggregation(max_size=160))])
h = provider.get_meter("strata-test").create_histogram("rpc.latency", unit="s")
for v in range(1, 101):
    h.record(float(v))
p = mem.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics[0].data.data_points[0]
ok = provider.force_flush()
provider.shutdown()
base = 2.0 ** (2.0 ** -p.scale)
buckets = [(base ** (p.positive.offset + k), base ** (p.positive.offset + k + 1), c)
           for k, c in enumerate(p.positive.bucket_counts) if c]
def quantile(q):
    order = buckets if q < 0.5 else list(reversed(buckets))
    rank = q * p.count if q < 0.5 else (1 - q) * p.count
    seen = 0.0
    for lo, hi, c in order:
        seen += c
        if seen >= rank:
            f = (rank - (seen - c)) / c
            if q >= 0.5:
                f = 1 - f
            return 2 ** (math.log2(lo) + (math.log2(hi) - math.log2(lo)) * f)
print(p.scale, p.count, quantile(0.25), quantile(0.9))
sys.exit(0 if ok else 1)
"#;

#[test]
fn an_sdk_exponential_histogram_is_a_native_histogram() {
    if !sdk_installed() {
        eprintln!(
            "skipping: the OpenTelemetry Python SDK is not installed (pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http)"
        );
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let s = Server::start(tmp.path(), &["--web.enable-otlp-receiver"]);
    let out = Command::new("python3")
        .args(["-c", EXPORT_EXPONENTIAL, &s.url("/api/v1/otlp/v1/metrics")])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "the exporter failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = text
        .split_whitespace()
        .map(|x| x.parse().expect("number"))
        .collect();
    let (count, q25, q90) = (f[1], f[2], f[3]);
    let sel = "rpc_latency_seconds{job=\"api\"}";
    let r = query(&s, sel);
    let hist = &r["data"]["result"][0]["histogram"][1];
    assert_eq!(hist["count"], count.to_string(), "{r}");
    assert_eq!(hist["sum"], "5050", "{r}");
    for (q, want) in [(0.25, q25), (0.9, q90)] {
        let got: f64 = value(&s, &format!("histogram_quantile({q}, {sel})"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN);
        assert!(
            (got - want).abs() <= 1e-9 * want,
            "q={q}: Strata {got}, Prometheus's definition {want}"
        );
    }
    assert_eq!(
        value(&s, &format!("histogram_count({sel})")).as_deref(),
        Some("100")
    );
    let md = query(&s, "count(rpc_latency_seconds_bucket)");
    assert_eq!(
        md["data"]["result"].as_array().map(Vec::len),
        Some(0),
        "no classic buckets are made from an exponential histogram: {md}"
    );
}

/// With `otlp.convert_histograms_to_nhcb`, an explicit-bucket histogram is one native
/// histogram with custom buckets (the SDK's default bounds), no classic series.
#[test]
fn explicit_bucket_histograms_become_nhcb_when_configured() {
    if !sdk_installed() {
        eprintln!(
            "skipping: the OpenTelemetry Python SDK is not installed (pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http)"
        );
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        "global:\n  scrape_interval: 1h\notlp:\n  convert_histograms_to_nhcb: true\n",
    )
    .expect("config");
    let flag = format!("--config.file={}", cfg.display());
    let s = Server::start(
        &tmp.path().join("data"),
        &["--web.enable-otlp-receiver", &flag],
    );
    let status = Command::new("python3")
        .args(["-c", EXPORT, &s.url("/api/v1/otlp/v1/metrics")])
        .status()
        .expect("python3");
    assert!(status.success(), "the exporter failed");
    let sel = "http_server_duration_seconds{job=\"prod/shop\"}";
    let r = query(&s, sel);
    let h = &r["data"]["result"][0]["histogram"][1];
    assert_eq!(h["count"], "4", "{r}");
    // All four observations in the first custom bucket (0, 5]: the median half way.
    assert_eq!(
        value(&s, &format!("histogram_quantile(0.5, {sel})")).as_deref(),
        Some("2.5")
    );
    let classic = query(&s, "http_server_duration_seconds_bucket");
    assert_eq!(
        classic["data"]["result"].as_array().map(Vec::len),
        Some(0),
        "{classic}"
    );
}

/// An `ExportMetricsServiceRequest` of `metrics` from service `svc`, as protobuf.
fn export(metrics: Vec<proto::Metric>) -> Vec<u8> {
    let req = proto::ExportMetricsServiceRequest {
        resource_metrics: vec![proto::ResourceMetrics {
            resource: Some(proto::Resource {
                attributes: vec![proto::KeyValue {
                    key: "service.name".into(),
                    value: Some(proto::AnyValue {
                        value: Some(proto::Value::StringValue("svc".into())),
                    }),
                }],
            }),
            scope_metrics: vec![proto::ScopeMetrics {
                scope: None,
                metrics,
            }],
        }],
    };
    prost::Message::encode_to_vec(&req)
}

/// Posts a protobuf export; the status and body.
fn post_export(s: &Server, body: Vec<u8>) -> (u16, String) {
    let r = reqwest::blocking_client()
        .post(s.url("/api/v1/otlp/v1/metrics"), body)
        .header("Content-Type", "application/x-protobuf")
        .send()
        .expect("post");
    (r.status().as_u16(), r.text())
}

fn ns(ms: i64) -> u64 {
    ms as u64 * 1_000_000
}

fn otlp_exemplar(ms: i64, value: f64, trace: u8) -> proto::Exemplar {
    proto::Exemplar {
        time_unix_nano: ns(ms),
        value: Some(proto::ExemplarValue::AsDouble(value)),
        trace_id: vec![trace; 16],
        span_id: vec![0x0f; 8],
        ..Default::default()
    }
}

/// `/api/v1/query_exemplars` of `q` over the last hour.
fn exemplars(s: &Server, q: &str) -> serde_json::Value {
    let now = now_ms() / 1000;
    get_json(&s.url(&format!(
        "/api/v1/query_exemplars?query={}&start={}&end={}",
        enc(q),
        now - 3600,
        now + 60
    )))
}

#[test]
fn exemplars_of_counters_and_histograms_are_queryable() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = Server::start(tmp.path(), &["--web.enable-otlp-receiver"]);
    let t = now_ms() - 30_000;
    let counter = proto::Metric {
        name: "orders".into(),
        data: Some(proto::Data::Sum(proto::Sum {
            data_points: vec![proto::NumberDataPoint {
                start_time_unix_nano: ns(t - 60_000),
                time_unix_nano: ns(t),
                value: Some(proto::NumberValue::AsInt(7)),
                exemplars: vec![otlp_exemplar(t - 1_000, 1.0, 0xaa)],
                ..Default::default()
            }],
            aggregation_temporality: proto::CUMULATIVE,
            is_monotonic: true,
        })),
        ..Default::default()
    };
    let histogram = proto::Metric {
        name: "checkout.duration".into(),
        unit: "s".into(),
        data: Some(proto::Data::Histogram(proto::Histogram {
            data_points: vec![proto::HistogramDataPoint {
                start_time_unix_nano: ns(t - 60_000),
                time_unix_nano: ns(t),
                count: 3,
                sum: Some(3.6),
                bucket_counts: vec![1, 1, 1],
                explicit_bounds: vec![0.5, 1.0],
                exemplars: vec![
                    otlp_exemplar(t - 2_000, 0.1, 0xb1),
                    otlp_exemplar(t - 1_500, 3.0, 0xb3),
                ],
                ..Default::default()
            }],
            aggregation_temporality: proto::CUMULATIVE,
        })),
        ..Default::default()
    };
    let (status, text) = post_export(&s, export(vec![counter, histogram]));
    assert_eq!(status, 200, "{text}");

    let r = exemplars(&s, "orders_total");
    let data = r["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(data.len(), 1, "{r}");
    assert_eq!(data[0]["seriesLabels"]["__name__"], "orders_total", "{r}");
    assert_eq!(data[0]["seriesLabels"]["job"], "svc", "{r}");
    let e = &data[0]["exemplars"][0];
    assert_eq!(e["labels"]["trace_id"], "aa".repeat(16), "{r}");
    assert_eq!(e["labels"]["span_id"], "0f".repeat(8), "{r}");
    assert_eq!(e["value"], "1", "{r}");
    assert_eq!(
        e["timestamp"].as_f64(),
        Some((t - 1_000) as f64 / 1000.0),
        "{r}"
    );

    // Each histogram exemplar in the bucket holding its value.
    let r = exemplars(&s, "checkout_duration_seconds_bucket");
    let data = r["data"].as_array().cloned().unwrap_or_default();
    let le_of = |trace: &str| {
        data.iter()
            .find(|d| {
                d["exemplars"]
                    .as_array()
                    .is_some_and(|es| es.iter().any(|e| e["labels"]["trace_id"] == trace))
            })
            .map(|d| d["seriesLabels"]["le"].clone())
    };
    assert_eq!(le_of(&"b1".repeat(16)), Some("0.5".into()), "{r}");
    assert_eq!(le_of(&"b3".repeat(16)), Some("+Inf".into()), "{r}");
    assert_eq!(data.len(), 2, "{r}");
    s.stop();
}

/// A delta counter point of `v` over `(start, end]` ms.
fn delta_counter(start: i64, end: i64, v: i64) -> proto::Metric {
    proto::Metric {
        name: "jobs".into(),
        data: Some(proto::Data::Sum(proto::Sum {
            data_points: vec![proto::NumberDataPoint {
                start_time_unix_nano: ns(start),
                time_unix_nano: ns(end),
                value: Some(proto::NumberValue::AsInt(v)),
                ..Default::default()
            }],
            aggregation_temporality: 1,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

/// The samples of `q` (a range selector) as (ms, value).
fn samples(s: &Server, q: &str) -> Vec<(i64, String)> {
    let r = query(s, q);
    r["data"]["result"][0]["values"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .map(|v| {
                    (
                        (v[0].as_f64().unwrap_or(0.0) * 1000.0).round() as i64,
                        v[1].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn delta_counters_are_accumulated_with_the_feature_and_refused_without() {
    let tmp = tempfile::tempdir().expect("tmp");
    let t = now_ms() - 60_000;
    let requests = [
        delta_counter(t, t + 10_000, 5),
        delta_counter(t + 10_000, t + 20_000, 3),
        delta_counter(t + 20_000, t + 30_000, 2),
    ];

    let off = Server::start(&tmp.path().join("off"), &["--web.enable-otlp-receiver"]);
    let (status, text) = post_export(&off, export(vec![requests[0].clone()]));
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("invalid temporality and type combination for metric \"jobs\""),
        "{text}"
    );
    off.stop();

    let on = Server::start(
        &tmp.path().join("on"),
        &[
            "--web.enable-otlp-receiver",
            "--enable-feature=otlp-deltatocumulative",
        ],
    );
    for m in &requests {
        let (status, text) = post_export(&on, export(vec![m.clone()]));
        assert_eq!(status, 200, "{text}");
    }
    assert_eq!(
        samples(&on, "jobs_total{job=\"svc\"}[5m]"),
        vec![
            (t + 10_000, "5".to_string()),
            (t + 20_000, "8".to_string()),
            (t + 30_000, "10".to_string()),
        ]
    );
    // The same request again (a retry) adds nothing: it is out of order.
    let (status, _) = post_export(&on, export(vec![requests[2].clone()]));
    assert_eq!(status, 200);
    assert_eq!(
        query(&on, "jobs_total{job=\"svc\"}")["data"]["result"][0]["value"][1],
        "10"
    );
    // The accumulator's state and the dropped retry are on /metrics.
    let metrics = reqwest::blocking_client()
        .get(on.url("/metrics"))
        .send()
        .expect("metrics")
        .text();
    assert!(
        metrics.contains("\nstrata_otlp_delta_streams 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nstrata_otlp_delta_points_dropped_total 1\n"),
        "{metrics}"
    );
    on.stop();
}

/// The SDK with delta temporality for counters and histograms: three exports of a counter
/// (5, 3, 2) and a histogram (one observation each time).
const EXPORT_DELTA: &str = r#"
import sys, time
from opentelemetry.sdk.metrics import MeterProvider, Counter, Histogram
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader, AggregationTemporality
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.resources import Resource
exporter = OTLPMetricExporter(endpoint=sys.argv[1], preferred_temporality={
    Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA})
reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3600000)
provider = MeterProvider(resource=Resource.create({"service.name": "worker"}), metric_readers=[reader])
meter = provider.get_meter("strata-test")
c = meter.create_counter("tasks.done")
h = meter.create_histogram("task.duration", unit="s")
ok = True
for n, d in [(5, 0.2), (3, 2.0), (2, 20.0)]:
    c.add(n, {"queue": "q1"})
    h.record(d)
    ok = provider.force_flush() and ok
    time.sleep(0.05)
provider.shutdown()
sys.exit(0 if ok else 1)
"#;

#[test]
fn the_python_sdk_with_delta_temporality_is_accumulated() {
    if !sdk_installed() {
        eprintln!(
            "skipping: the OpenTelemetry Python SDK is not installed (pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http)"
        );
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let s = Server::start(
        tmp.path(),
        &[
            "--web.enable-otlp-receiver",
            "--enable-feature=otlp-deltatocumulative",
        ],
    );
    let out = Command::new("python3")
        .args(["-c", EXPORT_DELTA, &s.url("/api/v1/otlp/v1/metrics")])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "the exporter failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counter = samples(&s, "tasks_done_total{job=\"worker\",queue=\"q1\"}[5m]");
    let values: Vec<&str> = counter.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values, vec!["5", "8", "10"], "{counter:?}");
    assert_eq!(
        value(&s, "task_duration_seconds_count{job=\"worker\"}").as_deref(),
        Some("3")
    );
    assert_eq!(
        value(&s, "task_duration_seconds_sum{job=\"worker\"}").as_deref(),
        Some("22.2")
    );
    // 0.2 in (0, 5], 2 too, 20 in (10, 25]: the buckets are running totals as well.
    assert_eq!(
        value(&s, "task_duration_seconds_bucket{job=\"worker\",le=\"5\"}").as_deref(),
        Some("2")
    );
    assert_eq!(
        value(
            &s,
            "task_duration_seconds_bucket{job=\"worker\",le=\"+Inf\"}"
        )
        .as_deref(),
        Some("3")
    );
    s.stop();
}
