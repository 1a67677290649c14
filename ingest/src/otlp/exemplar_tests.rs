//! Exemplars through decoding and translation: with a sum's sample, in the `_bucket`
//! series of the bucket holding them, with native histograms; none from gauges; OTLP/JSON's
//! hex ids; a bad id refuses the request.

use strata_config::OtlpConfig;
use strata_storage::{Exemplar, Labels};

use super::proto::{
    Data, Exemplar as OtlpExemplar, ExemplarValue, ExponentialHistogram,
    ExponentialHistogramDataPoint, ExportMetricsServiceRequest, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, NumberValue, ResourceMetrics, ScopeMetrics, Sum,
};
use super::{Encoding, decode_and_translate};

const T: u64 = 1_700_000_000_000_000_000;

fn ex(v: f64) -> OtlpExemplar {
    OtlpExemplar {
        time_unix_nano: T + 1_000_000,
        value: Some(ExemplarValue::AsDouble(v)),
        trace_id: vec![0xab; 16],
        span_id: vec![0x01; 8],
        ..Default::default()
    }
}

fn metric(name: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        data: Some(data),
        ..Default::default()
    }
}

fn translate(metrics: Vec<Metric>) -> super::Translated {
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: None,
            scope_metrics: vec![ScopeMetrics {
                scope: None,
                metrics,
            }],
        }],
    };
    let raw = prost::Message::encode_to_vec(&req);
    decode_and_translate(&raw, Encoding::Protobuf, &OtlpConfig::default(), None).expect("valid")
}

fn by_series(t: &super::Translated) -> Vec<(String, f64)> {
    t.exemplars
        .iter()
        .map(|(l, e): &(Labels, Exemplar)| (l.to_string(), e.value))
        .collect()
}

#[test]
fn exemplars_go_where_prometheus_puts_them() {
    let number = |v: f64, exemplars: Vec<OtlpExemplar>| NumberDataPoint {
        time_unix_nano: T,
        value: Some(NumberValue::AsDouble(v)),
        exemplars,
        ..Default::default()
    };
    let t = translate(vec![
        metric(
            "requests",
            Data::Sum(Sum {
                data_points: vec![number(5.0, vec![ex(1.0)])],
                aggregation_temporality: 2,
                is_monotonic: true,
            }),
        ),
        metric(
            "temp",
            Data::Gauge(Gauge {
                data_points: vec![number(20.0, vec![ex(20.0)])],
            }),
        ),
        metric(
            "latency",
            Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    time_unix_nano: T,
                    count: 3,
                    bucket_counts: vec![1, 1, 1],
                    explicit_bounds: vec![1.0, 5.0],
                    exemplars: vec![ex(0.5), ex(5.0), ex(9.0)],
                    ..Default::default()
                }],
                aggregation_temporality: 2,
            }),
        ),
        metric(
            "rpc",
            Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    time_unix_nano: T,
                    count: 1,
                    zero_count: 1,
                    exemplars: vec![ex(0.0)],
                    ..Default::default()
                }],
                aggregation_temporality: 2,
            }),
        ),
    ]);
    assert_eq!(t.refused, None);
    assert_eq!(
        by_series(&t),
        vec![
            ("requests_total{}".to_string(), 1.0),
            ("latency_bucket{le=\"1\"}".to_string(), 0.5),
            ("latency_bucket{le=\"5\"}".to_string(), 5.0),
            ("latency_bucket{le=\"+Inf\"}".to_string(), 9.0),
            ("rpc{}".to_string(), 0.0),
        ]
    );
    let (_, e) = &t.exemplars[0];
    assert_eq!(e.labels.get("trace_id"), Some("ab".repeat(16).as_str()));
    assert_eq!(e.labels.get("span_id"), Some("0101010101010101"));
    assert_eq!((e.ts, e.has_ts), ((T / 1_000_000 + 1) as i64, true));
}

#[test]
fn nhcb_exemplars_go_with_the_histogram() {
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: None,
            scope_metrics: vec![ScopeMetrics {
                scope: None,
                metrics: vec![metric(
                    "latency",
                    Data::Histogram(Histogram {
                        data_points: vec![HistogramDataPoint {
                            time_unix_nano: T,
                            count: 1,
                            bucket_counts: vec![0, 1],
                            explicit_bounds: vec![1.0],
                            exemplars: vec![ex(3.0)],
                            ..Default::default()
                        }],
                        aggregation_temporality: 2,
                    }),
                )],
            }],
        }],
    };
    let cfg = OtlpConfig {
        convert_histograms_to_nhcb: true,
        ..OtlpConfig::default()
    };
    let raw = prost::Message::encode_to_vec(&req);
    let t = decode_and_translate(&raw, Encoding::Protobuf, &cfg, None).expect("valid");
    assert_eq!(by_series(&t), vec![("latency{}".to_string(), 3.0)]);
}

#[test]
fn json_ids_are_hex_and_a_bad_id_refuses_the_request() {
    let body = |trace: &str| {
        format!(
            r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{{"name":"jobs","sum":{{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":[{{"timeUnixNano":"{T}","asInt":"3","exemplars":[{{"timeUnixNano":"{T}","asInt":"2","traceId":"{trace}","spanId":"00F067AA0BA902B7","filteredAttributes":[{{"key":"user.id","value":{{"stringValue":"u1"}}}}]}}]}}]}}}}]}}]}}]}}"#
        )
    };
    let ok = decode_and_translate(
        body("4BF92F3577B34DA6A3CE929D0E0E4736").as_bytes(),
        Encoding::Json,
        &OtlpConfig::default(),
        None,
    )
    .expect("valid");
    assert_eq!(ok.refused, None);
    let (series, e) = &ok.exemplars[0];
    assert_eq!(series.get("__name__"), Some("jobs_total"));
    assert_eq!(
        e.labels.to_string(),
        "{span_id=\"00f067aa0ba902b7\", trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\", user_id=\"u1\"}"
    );
    assert_eq!(e.value, 2.0);
    // Not hex: not a request.
    assert!(
        decode_and_translate(
            body("xyz").as_bytes(),
            Encoding::Json,
            &OtlpConfig::default(),
            None
        )
        .is_err()
    );
    // Hex of the wrong length: refused, as Prometheus's decoder does.
    let short = decode_and_translate(
        body("abcd").as_bytes(),
        Encoding::Json,
        &OtlpConfig::default(),
        None,
    )
    .expect("decoded");
    assert!(
        short
            .refused
            .as_deref()
            .is_some_and(|r| r.contains("invalid length for TraceID")),
        "{:?}",
        short.refused
    );
}
