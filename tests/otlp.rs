//! OTLP metrics from the real OpenTelemetry Python SDK (`opentelemetry-sdk`,
//! `opentelemetry-exporter-otlp-proto-http`) into `/api/v1/otlp/v1/metrics`, queried back
//! with Prometheus's translated names, `job`/`instance` from the service attributes and
//! `target_info` from the others; the endpoint is off without `--web.enable-otlp-receiver`
//! and refuses what it does not take. Skips (and says so) without the SDK.

mod common;

use std::process::Command;

use common::{Server, query, reqwest};

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
