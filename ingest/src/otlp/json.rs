//! OTLP/JSON (the protobuf JSON mapping of the same messages: lowerCamelCase fields,
//! 64-bit integers as strings or numbers, enums as numbers, trace and span ids as hex
//! strings), read into the protobuf structs the translation takes.

use serde::Deserialize;

use super::proto;
use crate::error::IngestError;

/// A 64-bit integer as the JSON mapping writes it: a number or a decimal string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Integer {
    Signed(i64),
    Unsigned(u64),
    Float(f64),
    Text(String),
}

fn int<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(match Integer::deserialize(d)? {
        Integer::Signed(n) => n,
        Integer::Unsigned(n) => n as i64,
        Integer::Float(f) => f as i64,
        Integer::Text(s) => s
            .parse::<i64>()
            .or_else(|_| s.parse::<u64>().map(|u| u as i64))
            .map_err(serde::de::Error::custom)?,
    })
}

fn uint<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    int(d).map(|v| v as u64)
}

fn uints<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    #[derive(Deserialize)]
    struct W(#[serde(deserialize_with = "uint")] u64);
    Ok(Vec::<W>::deserialize(d)?.into_iter().map(|w| w.0).collect())
}

/// A double, or one of the protobuf JSON mapping's special strings.
fn float<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum F {
        N(f64),
        S(String),
    }
    Ok(match F::deserialize(d)? {
        F::N(v) => v,
        F::S(s) => match s.as_str() {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            other => other.parse().map_err(serde::de::Error::custom)?,
        },
    })
}

fn opt_float<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    float(d).map(Some)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Request {
    resource_metrics: Vec<ResourceMetrics>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ResourceMetrics {
    resource: Option<Resource>,
    scope_metrics: Vec<ScopeMetrics>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Resource {
    attributes: Vec<KeyValue>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ScopeMetrics {
    metrics: Vec<Metric>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Metric {
    name: String,
    description: String,
    unit: String,
    gauge: Option<Points<NumberPoint>>,
    sum: Option<Points<NumberPoint>>,
    histogram: Option<Points<HistogramPoint>>,
    exponential_histogram: Option<Points<ExpPoint>>,
    summary: Option<Points<SummaryPoint>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Points<T> {
    #[serde(default = "Vec::new")]
    data_points: Vec<T>,
    #[serde(default)]
    aggregation_temporality: i32,
    #[serde(default)]
    is_monotonic: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct NumberPoint {
    attributes: Vec<KeyValue>,
    #[serde(deserialize_with = "uint")]
    start_time_unix_nano: u64,
    #[serde(deserialize_with = "uint")]
    time_unix_nano: u64,
    #[serde(deserialize_with = "opt_float")]
    as_double: Option<f64>,
    #[serde(deserialize_with = "opt_int")]
    as_int: Option<i64>,
    exemplars: Vec<Exemplar>,
    flags: u32,
}

/// `Exemplar` in OTLP/JSON: `traceId` and `spanId` are hex, not base64.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Exemplar {
    filtered_attributes: Vec<KeyValue>,
    #[serde(deserialize_with = "uint")]
    time_unix_nano: u64,
    #[serde(deserialize_with = "opt_float")]
    as_double: Option<f64>,
    #[serde(deserialize_with = "opt_int")]
    as_int: Option<i64>,
    #[serde(deserialize_with = "hex_id")]
    span_id: Vec<u8>,
    #[serde(deserialize_with = "hex_id")]
    trace_id: Vec<u8>,
}

/// A trace or span id: a hex string (either case), empty for none.
fn hex_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s = String::deserialize(d)?;
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    if s.len() % 2 != 0 {
        return Err(serde::de::Error::custom(format!(
            "invalid trace or span id {s:?}: odd number of hex digits"
        )));
    }
    s.as_bytes()
        .chunks(2)
        .map(|p| match p {
            [hi, lo] => Some((digit(*hi)? << 4) | digit(*lo)?),
            _ => None,
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| serde::de::Error::custom(format!("invalid trace or span id {s:?}: not hex")))
}

fn exemplars(v: Vec<Exemplar>) -> Vec<proto::Exemplar> {
    v.into_iter()
        .map(|e| proto::Exemplar {
            filtered_attributes: kvs(e.filtered_attributes),
            time_unix_nano: e.time_unix_nano,
            value: match (e.as_double, e.as_int) {
                (Some(d), _) => Some(proto::ExemplarValue::AsDouble(d)),
                (None, Some(i)) => Some(proto::ExemplarValue::AsInt(i)),
                _ => None,
            },
            span_id: e.span_id,
            trace_id: e.trace_id,
        })
        .collect()
}

fn opt_int<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    int(d).map(Some)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct HistogramPoint {
    attributes: Vec<KeyValue>,
    #[serde(deserialize_with = "uint")]
    start_time_unix_nano: u64,
    #[serde(deserialize_with = "uint")]
    time_unix_nano: u64,
    #[serde(deserialize_with = "uint")]
    count: u64,
    #[serde(deserialize_with = "opt_float")]
    sum: Option<f64>,
    #[serde(deserialize_with = "uints")]
    bucket_counts: Vec<u64>,
    explicit_bounds: Vec<f64>,
    exemplars: Vec<Exemplar>,
    flags: u32,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ExpPoint {
    attributes: Vec<KeyValue>,
    #[serde(deserialize_with = "uint")]
    start_time_unix_nano: u64,
    #[serde(deserialize_with = "uint")]
    time_unix_nano: u64,
    #[serde(deserialize_with = "uint")]
    count: u64,
    #[serde(deserialize_with = "opt_float")]
    sum: Option<f64>,
    scale: i32,
    #[serde(deserialize_with = "uint")]
    zero_count: u64,
    positive: Option<ExpBuckets>,
    negative: Option<ExpBuckets>,
    flags: u32,
    exemplars: Vec<Exemplar>,
    zero_threshold: f64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ExpBuckets {
    offset: i32,
    #[serde(deserialize_with = "uints")]
    bucket_counts: Vec<u64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct SummaryPoint {
    attributes: Vec<KeyValue>,
    #[serde(deserialize_with = "uint")]
    start_time_unix_nano: u64,
    #[serde(deserialize_with = "uint")]
    time_unix_nano: u64,
    #[serde(deserialize_with = "uint")]
    count: u64,
    #[serde(deserialize_with = "float")]
    sum: f64,
    quantile_values: Vec<Quantile>,
    flags: u32,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Quantile {
    #[serde(deserialize_with = "float")]
    quantile: f64,
    #[serde(deserialize_with = "float")]
    value: f64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct KeyValue {
    key: String,
    value: Option<AnyValue>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct AnyValue {
    string_value: Option<String>,
    bool_value: Option<bool>,
    #[serde(deserialize_with = "opt_int")]
    int_value: Option<i64>,
    #[serde(deserialize_with = "opt_float")]
    double_value: Option<f64>,
    array_value: Option<ArrayValue>,
    kvlist_value: Option<KvList>,
    bytes_value: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ArrayValue {
    values: Vec<AnyValue>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct KvList {
    values: Vec<KeyValue>,
}

fn kvs(v: Vec<KeyValue>) -> Vec<proto::KeyValue> {
    v.into_iter()
        .map(|kv| proto::KeyValue {
            key: kv.key,
            value: kv.value.map(any),
        })
        .collect()
}

fn any(a: AnyValue) -> proto::AnyValue {
    use proto::Value;
    let value = if let Some(s) = a.string_value {
        Some(Value::StringValue(s))
    } else if let Some(b) = a.bool_value {
        Some(Value::BoolValue(b))
    } else if let Some(i) = a.int_value {
        Some(Value::IntValue(i))
    } else if let Some(d) = a.double_value {
        Some(Value::DoubleValue(d))
    } else if let Some(arr) = a.array_value {
        Some(Value::ArrayValue(proto::ArrayValue {
            values: arr.values.into_iter().map(any).collect(),
        }))
    } else if let Some(l) = a.kvlist_value {
        Some(Value::KvlistValue(proto::KeyValueList {
            values: kvs(l.values),
        }))
    } else {
        a.bytes_value.map(|b| Value::BytesValue(b.into_bytes()))
    };
    proto::AnyValue { value }
}

fn number(p: NumberPoint) -> proto::NumberDataPoint {
    proto::NumberDataPoint {
        attributes: kvs(p.attributes),
        start_time_unix_nano: p.start_time_unix_nano,
        time_unix_nano: p.time_unix_nano,
        value: match (p.as_double, p.as_int) {
            (Some(d), _) => Some(proto::NumberValue::AsDouble(d)),
            (None, Some(i)) => Some(proto::NumberValue::AsInt(i)),
            _ => None,
        },
        exemplars: exemplars(p.exemplars),
        flags: p.flags,
    }
}

/// Decodes an OTLP/JSON `ExportMetricsServiceRequest`.
pub(super) fn decode(raw: &[u8]) -> Result<proto::ExportMetricsServiceRequest, IngestError> {
    let req: Request = serde_json::from_slice(raw)
        .map_err(|e| IngestError::Config(format!("invalid OTLP/JSON request: {e}")))?;
    let resource_metrics = req
        .resource_metrics
        .into_iter()
        .map(|rm| proto::ResourceMetrics {
            resource: rm.resource.map(|r| proto::Resource {
                attributes: kvs(r.attributes),
            }),
            scope_metrics: rm
                .scope_metrics
                .into_iter()
                .map(|sm| proto::ScopeMetrics {
                    scope: None,
                    metrics: sm.metrics.into_iter().map(metric).collect(),
                })
                .collect(),
        })
        .collect();
    Ok(proto::ExportMetricsServiceRequest { resource_metrics })
}

fn metric(m: Metric) -> proto::Metric {
    use proto::Data;
    let data = if let Some(g) = m.gauge {
        Some(Data::Gauge(proto::Gauge {
            data_points: g.data_points.into_iter().map(number).collect(),
        }))
    } else if let Some(s) = m.sum {
        Some(Data::Sum(proto::Sum {
            data_points: s.data_points.into_iter().map(number).collect(),
            aggregation_temporality: s.aggregation_temporality,
            is_monotonic: s.is_monotonic,
        }))
    } else if let Some(h) = m.histogram {
        Some(Data::Histogram(proto::Histogram {
            data_points: h
                .data_points
                .into_iter()
                .map(|p| proto::HistogramDataPoint {
                    attributes: kvs(p.attributes),
                    start_time_unix_nano: p.start_time_unix_nano,
                    time_unix_nano: p.time_unix_nano,
                    count: p.count,
                    sum: p.sum,
                    bucket_counts: p.bucket_counts,
                    explicit_bounds: p.explicit_bounds,
                    exemplars: exemplars(p.exemplars),
                    flags: p.flags,
                })
                .collect(),
            aggregation_temporality: h.aggregation_temporality,
        }))
    } else if let Some(e) = m.exponential_histogram {
        Some(Data::ExponentialHistogram(proto::ExponentialHistogram {
            data_points: e
                .data_points
                .into_iter()
                .map(|p| {
                    let b = |b: Option<ExpBuckets>| {
                        b.map(|b| proto::Buckets {
                            offset: b.offset,
                            bucket_counts: b.bucket_counts,
                        })
                    };
                    proto::ExponentialHistogramDataPoint {
                        attributes: kvs(p.attributes),
                        start_time_unix_nano: p.start_time_unix_nano,
                        time_unix_nano: p.time_unix_nano,
                        count: p.count,
                        sum: p.sum,
                        scale: p.scale,
                        zero_count: p.zero_count,
                        positive: b(p.positive),
                        negative: b(p.negative),
                        flags: p.flags,
                        exemplars: exemplars(p.exemplars),
                        zero_threshold: p.zero_threshold,
                    }
                })
                .collect(),
            aggregation_temporality: e.aggregation_temporality,
        }))
    } else {
        m.summary.map(|s| {
            Data::Summary(proto::Summary {
                data_points: s
                    .data_points
                    .into_iter()
                    .map(|p| proto::SummaryDataPoint {
                        attributes: kvs(p.attributes),
                        start_time_unix_nano: p.start_time_unix_nano,
                        time_unix_nano: p.time_unix_nano,
                        count: p.count,
                        sum: p.sum,
                        quantile_values: p
                            .quantile_values
                            .into_iter()
                            .map(|q| proto::ValueAtQuantile {
                                quantile: q.quantile,
                                value: q.value,
                            })
                            .collect(),
                        flags: p.flags,
                    })
                    .collect(),
            })
        })
    };
    proto::Metric {
        name: m.name,
        description: m.description,
        unit: m.unit,
        data,
    }
}
