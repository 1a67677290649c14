//! The accumulator: sums, histograms whose bounds change, exponential histograms whose
//! scale changes, out-of-order and older-start points, staleness, and its limits.

use std::time::{Duration, Instant};

use super::*;
use crate::otlp::proto::{
    AnyValue, Buckets, ExponentialHistogram, ExponentialHistogramDataPoint, Histogram,
    HistogramDataPoint, KeyValue, Metric, NumberDataPoint, NumberValue, Resource, ResourceMetrics,
    ScopeMetrics, Sum, Value,
};

const S: u64 = 1_000_000_000;

fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "svc")],
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: None,
                metrics,
            }],
        }],
    }
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.into())),
        }),
    }
}

/// A delta counter point of `v` over `(start, end]` seconds, with attribute `a=<attr>`.
fn sum(attr: &str, start: u64, end: u64, v: i64) -> Metric {
    Metric {
        name: "jobs".into(),
        data: Some(Data::Sum(Sum {
            data_points: vec![NumberDataPoint {
                attributes: vec![kv("a", attr)],
                start_time_unix_nano: start * S,
                time_unix_nano: end * S,
                value: Some(NumberValue::AsInt(v)),
                ..Default::default()
            }],
            aggregation_temporality: DELTA,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

/// The values (and start/end seconds) of the sum points left in `req`.
fn sums(req: &ExportMetricsServiceRequest) -> Vec<(u64, u64, f64)> {
    let mut out = Vec::new();
    for m in &req.resource_metrics[0].scope_metrics[0].metrics {
        if let Some(Data::Sum(s)) = &m.data {
            assert_eq!(s.aggregation_temporality, CUMULATIVE);
            for p in &s.data_points {
                let v = match p.value {
                    Some(NumberValue::AsDouble(d)) => d,
                    Some(NumberValue::AsInt(i)) => i as f64,
                    None => f64::NAN,
                };
                out.push((p.start_time_unix_nano / S, p.time_unix_nano / S, v));
            }
        }
    }
    out
}

fn run(
    acc: &DeltaToCumulative,
    now: Instant,
    metrics: Vec<Metric>,
) -> (Vec<(u64, u64, f64)>, Applied) {
    let mut req = request(metrics);
    let applied = acc.apply_at(&mut req, now);
    (sums(&req), applied)
}

#[test]
fn delta_sums_become_running_totals() {
    let acc = DeltaToCumulative::default();
    let t = Instant::now();
    assert_eq!(run(&acc, t, vec![sum("x", 0, 10, 5)]).0, vec![(0, 10, 5.0)]);
    assert_eq!(
        run(&acc, t, vec![sum("x", 10, 20, 3)]).0,
        vec![(0, 20, 8.0)]
    );
    // A gap (points lost in between) still adds.
    assert_eq!(
        run(&acc, t, vec![sum("x", 25, 30, 2)]).0,
        vec![(0, 30, 10.0)]
    );
    // Another attribute value is another stream.
    assert_eq!(run(&acc, t, vec![sum("y", 0, 30, 1)]).0, vec![(0, 30, 1.0)]);
    assert_eq!(acc.stats().streams, 2);
}

#[test]
fn out_of_order_and_older_start_points_are_dropped() {
    let acc = DeltaToCumulative::default();
    let t = Instant::now();
    run(&acc, t, vec![sum("x", 10, 20, 5)]);
    // The same point again (a retried request): dropped, nothing added twice.
    let (out, applied) = run(&acc, t, vec![sum("x", 10, 20, 5)]);
    assert_eq!(out, vec![]);
    assert_eq!(applied.dropped, 1);
    assert!(
        matches!(applied.errors[0], Dropped::OutOfOrder { .. }),
        "{applied:?}"
    );
    // Starting before the stream did.
    let (out, applied) = run(&acc, t, vec![sum("x", 5, 30, 1)]);
    assert_eq!(out, vec![]);
    assert!(
        matches!(applied.errors[0], Dropped::OlderStart { .. }),
        "{applied:?}"
    );
    assert_eq!(
        run(&acc, t, vec![sum("x", 20, 30, 1)]).0,
        vec![(10, 30, 6.0)]
    );
    assert_eq!(acc.stats().dropped_total, 2);
}

#[test]
fn cumulative_metrics_and_points_without_a_value_pass_untouched() {
    let acc = DeltaToCumulative::default();
    let t = Instant::now();
    let mut cumulative = sum("x", 0, 10, 5);
    if let Some(Data::Sum(s)) = &mut cumulative.data {
        s.aggregation_temporality = CUMULATIVE;
    }
    assert_eq!(run(&acc, t, vec![cumulative]).0, vec![(0, 10, 5.0)]);
    let mut none = sum("x", 0, 10, 0);
    if let Some(Data::Sum(s)) = &mut none.data {
        s.data_points[0].flags = FLAG_NO_RECORDED_VALUE;
    }
    assert_eq!(run(&acc, t, vec![none]).0, vec![(0, 10, 0.0)]);
    assert_eq!(acc.stats().streams, 0);
}

#[test]
fn idle_streams_are_forgotten_after_max_stale() {
    let acc = DeltaToCumulative::new(DeltaConfig {
        max_stale: Duration::from_secs(300),
        ..DeltaConfig::default()
    });
    let t = Instant::now();
    run(&acc, t, vec![sum("x", 0, 10, 5), sum("y", 0, 10, 1)]);
    run(
        &acc,
        t + Duration::from_secs(200),
        vec![sum("x", 10, 20, 1)],
    );
    // y idle for 6 minutes: the sweep forgets it; x, seen 4 minutes ago, stays.
    let later = t + Duration::from_secs(440);
    run(&acc, later, vec![]);
    let st = acc.stats();
    assert_eq!((st.streams, st.evicted_total), (1, 1));
    // y starts over.
    assert_eq!(
        run(&acc, later, vec![sum("y", 400, 440, 2)]).0,
        vec![(400, 440, 2.0)]
    );
    // x continues.
    assert_eq!(
        run(&acc, later, vec![sum("x", 20, 440, 1)]).0,
        vec![(0, 440, 7.0)]
    );
    // A stream idle past max_stale starts over even before a sweep takes it.
    let much_later = later + Duration::from_secs(301);
    assert_eq!(
        run(&acc, much_later, vec![sum("x", 440, 800, 4)]).0,
        vec![(440, 800, 4.0)]
    );
}

#[test]
fn new_streams_past_max_streams_are_dropped() {
    let acc = DeltaToCumulative::new(DeltaConfig {
        max_streams: 2,
        ..DeltaConfig::default()
    });
    let t = Instant::now();
    let (out, applied) = run(
        &acc,
        t,
        vec![sum("a", 0, 10, 1), sum("b", 0, 10, 1), sum("c", 0, 10, 1)],
    );
    assert_eq!(out.len(), 2);
    assert_eq!(applied.dropped, 1);
    assert_eq!(applied.errors, vec![Dropped::StreamLimit(2)]);
    // Known streams go on.
    assert_eq!(
        run(&acc, t, vec![sum("a", 10, 20, 1)]).0,
        vec![(0, 20, 2.0)]
    );
    assert_eq!(acc.stats().streams, 2);
    // Once the others are stale, there is room again.
    let later = t + Duration::from_secs(301);
    assert_eq!(
        run(&acc, later, vec![sum("c", 0, 10, 1)]).0,
        vec![(0, 10, 1.0)]
    );
}

#[test]
fn the_memory_limit_holds() {
    let one = STREAM_BYTES;
    let acc = DeltaToCumulative::new(DeltaConfig {
        max_bytes: one * 3,
        ..DeltaConfig::default()
    });
    let t = Instant::now();
    let (out, applied) = run(
        &acc,
        t,
        (0..5).map(|i| sum(&i.to_string(), 0, 10, 1)).collect(),
    );
    assert_eq!(out.len(), 3);
    assert_eq!(applied.errors, vec![Dropped::MemoryLimit(one * 3)]);
    assert!(acc.stats().bytes <= one * 3);
}

fn hist(start: u64, end: u64, bounds: &[f64], counts: &[u64]) -> Metric {
    Metric {
        name: "latency".into(),
        data: Some(Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                start_time_unix_nano: start * S,
                time_unix_nano: end * S,
                count: counts.iter().sum(),
                sum: Some(counts.iter().sum::<u64>() as f64),
                bucket_counts: counts.to_vec(),
                explicit_bounds: bounds.to_vec(),
                ..Default::default()
            }],
            aggregation_temporality: DELTA,
        })),
        ..Default::default()
    }
}

fn hist_point(req: &ExportMetricsServiceRequest) -> HistogramDataPoint {
    match &req.resource_metrics[0].scope_metrics[0].metrics[0].data {
        Some(Data::Histogram(h)) => {
            assert_eq!(h.aggregation_temporality, CUMULATIVE);
            h.data_points[0].clone()
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn explicit_histograms_add_and_start_over_when_their_bounds_change() {
    let acc = DeltaToCumulative::default();
    let t = Instant::now();
    let mut req = request(vec![hist(0, 10, &[1.0, 5.0], &[1, 2, 0])]);
    acc.apply_at(&mut req, t);
    let mut req = request(vec![hist(10, 20, &[1.0, 5.0], &[0, 1, 4])]);
    acc.apply_at(&mut req, t);
    let p = hist_point(&req);
    assert_eq!(p.bucket_counts, vec![1, 3, 4]);
    assert_eq!((p.count, p.sum, p.start_time_unix_nano), (8, Some(8.0), 0));
    // New bounds: the stream starts over from this point, with its start time.
    let mut req = request(vec![hist(20, 30, &[2.0], &[3, 1])]);
    acc.apply_at(&mut req, t);
    let p = hist_point(&req);
    assert_eq!(p.bucket_counts, vec![3, 1]);
    assert_eq!((p.count, p.start_time_unix_nano), (4, 20 * S));
    let mut req = request(vec![hist(30, 40, &[2.0], &[1, 1])]);
    acc.apply_at(&mut req, t);
    let p = hist_point(&req);
    assert_eq!((p.bucket_counts, p.count), (vec![4, 2], 6));
}

fn exp(start: u64, end: u64, scale: i32, offset: i32, counts: &[u64]) -> Metric {
    Metric {
        name: "rpc".into(),
        data: Some(Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![ExponentialHistogramDataPoint {
                start_time_unix_nano: start * S,
                time_unix_nano: end * S,
                count: counts.iter().sum::<u64>() + 1,
                sum: Some(1.0),
                scale,
                zero_count: 1,
                positive: Some(Buckets {
                    offset,
                    bucket_counts: counts.to_vec(),
                }),
                ..Default::default()
            }],
            aggregation_temporality: DELTA,
        })),
        ..Default::default()
    }
}

#[test]
fn exponential_histograms_of_another_scale_are_added_at_the_smaller() {
    let acc = DeltaToCumulative::default();
    let t = Instant::now();
    let mut req = request(vec![exp(0, 10, 2, 4, &[1, 1, 1, 1])]);
    acc.apply_at(&mut req, t);
    // Scale 1: the state's buckets 4..=7 at scale 2 are 2..=3 at scale 1.
    let mut req = request(vec![exp(10, 20, 1, 3, &[5])]);
    acc.apply_at(&mut req, t);
    let p = match &req.resource_metrics[0].scope_metrics[0].metrics[0].data {
        Some(Data::ExponentialHistogram(e)) => e.data_points[0].clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(p.scale, 1);
    assert_eq!(
        p.positive,
        Some(Buckets {
            offset: 2,
            bucket_counts: vec![2, 7],
        })
    );
    assert_eq!((p.count, p.zero_count, p.sum), (11, 2, Some(2.0)));
    assert_eq!(p.start_time_unix_nano, 0);
}

#[test]
fn the_request_translates_to_cumulative_samples() {
    let acc = DeltaToCumulative::default();
    let cfg = strata_config::OtlpConfig::default();
    let mut values = Vec::new();
    for (i, v) in [5, 3, 2].into_iter().enumerate() {
        let i = i as u64;
        let req = request(vec![sum("x", 10 * i, 10 * (i + 1), v)]);
        let raw = prost::Message::encode_to_vec(&req);
        let t = crate::otlp::decode_and_translate(
            &raw,
            crate::otlp::Encoding::Protobuf,
            &cfg,
            Some(&acc),
        )
        .expect("decoded");
        assert_eq!(t.refused, None);
        let series = t
            .batch
            .iter()
            .find(|s| s.labels.get("__name__") == Some("jobs_total"))
            .expect("the counter");
        values.push(series.samples[0].1);
    }
    assert_eq!(values, vec![5.0, 8.0, 10.0]);
    // Without the accumulator, delta is refused as before.
    let raw = prost::Message::encode_to_vec(&request(vec![sum("x", 0, 10, 1)]));
    let t = crate::otlp::decode_and_translate(&raw, crate::otlp::Encoding::Protobuf, &cfg, None)
        .expect("decoded");
    assert!(
        t.refused
            .as_deref()
            .is_some_and(|r| r.contains("invalid temporality")),
        "{:?}",
        t.refused
    );
}
