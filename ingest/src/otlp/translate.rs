//! OTLP metrics to Prometheus series, as Prometheus's `otlptranslator` does: names from
//! the metric name, unit and type (see `names`), labels from the data point's attributes,
//! `job` / `instance` from `service.namespace`/`service.name` and `service.instance.id`,
//! the other resource attributes in a `target_info` series (or promoted to labels), gauges
//! and cumulative sums as samples, cumulative histograms as `_bucket`/`_sum`/`_count`,
//! summaries as `quantile` series with `_sum`/`_count`, exponential histograms as native
//! histograms. Exemplars (see `exemplars`) go with the samples of sums, to the `_bucket`
//! series of the bucket holding their value for classic histograms, and with the native
//! histogram otherwise; gauges' are not kept, as Prometheus. A sum or
//! histogram that is not cumulative refuses the whole request with Prometheus's message
//! (delta ones are made cumulative before, with `--enable-feature=otlp-deltatocumulative`:
//! see `delta`).

use std::collections::BTreeMap;

use std::sync::Arc;
use strata_config::OtlpConfig;

use strata_storage::{Exemplar, Labels, SeriesSamples};
use strata_vocab::FloatHistogram;
use strata_vocab::histogram::{MAX_SCHEMA, MIN_SCHEMA};

use super::exemplars::{bucket_of, convert};
use super::names::{Namer, sanitize_label};
use super::proto::{
    AnyValue, Buckets, CUMULATIVE, Data, ExponentialHistogramDataPoint,
    ExportMetricsServiceRequest, FLAG_NO_RECORDED_VALUE, KeyValue, NumberValue, Value,
};
use crate::remote_write::MetricMetadata;

/// Prometheus's stale marker.
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// The resource attributes that make `job` and `instance`.
const SERVICE_NAME: &str = "service.name";
const SERVICE_NAMESPACE: &str = "service.namespace";
const SERVICE_INSTANCE_ID: &str = "service.instance.id";

/// What a request becomes.
#[derive(Debug, Default)]
pub struct Translated {
    /// Series and samples to append.
    pub batch: Vec<SeriesSamples>,
    /// Exemplars of the data points, with the series they belong to.
    pub exemplars: Vec<(strata_storage::Labels, strata_storage::Exemplar)>,
    /// Metadata of the families.
    pub metadata: Vec<MetricMetadata>,
    /// Data points not translated, and why (the first few reasons).
    pub rejected: usize,
    pub errors: Vec<String>,
    /// A reason to refuse the whole request (as Prometheus: a sum or histogram that is
    /// not cumulative).
    pub refused: Option<String>,
}

impl Translated {
    /// Counts `n` data points not written, keeping the first few distinct reasons.
    pub(super) fn reject(&mut self, n: usize, msg: String) {
        self.rejected += n;
        if self.errors.len() < 8 && !self.errors.contains(&msg) {
            self.errors.push(msg);
        }
    }
}

/// An attribute value as a label value (`AnyValue.AsString`).
pub(super) fn value_text(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => strata_vocab::float::format_g(*d),
        Some(Value::BytesValue(b)) => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(b)
        }
        Some(Value::ArrayValue(a)) => {
            let parts: Vec<String> = a.values.iter().map(|x| json_of(&Some(x.clone()))).collect();
            format!("[{}]", parts.join(","))
        }
        Some(Value::KvlistValue(l)) => {
            let parts: Vec<String> = l
                .values
                .iter()
                .map(|kv| {
                    format!(
                        "{}:{}",
                        serde_json::Value::String(kv.key.clone()),
                        json_of(&kv.value)
                    )
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        }
    }
}

fn json_of(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => serde_json::Value::String(s.clone()).to_string(),
        None => "null".into(),
        _ => value_text(v),
    }
}

/// Attributes as sanitized label pairs: keys that sanitize to the same name have their
/// values joined with `;` in the order of the original keys.
pub(super) fn attribute_labels(
    attrs: &[KeyValue],
    cfg: &OtlpConfig,
    out: &mut BTreeMap<String, String>,
) {
    let mut sorted: Vec<&KeyValue> = attrs.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    for kv in sorted {
        // An attribute may not set the metric name; an empty key makes no label.
        if kv.key.is_empty() || kv.key == "__name__" {
            continue;
        }
        let name = sanitize_label(&kv.key, cfg);
        let value = value_text(&kv.value);
        match out.get_mut(&name) {
            Some(v) => {
                v.push(';');
                v.push_str(&value);
            }
            None => {
                out.insert(name, value);
            }
        }
    }
}

/// The labels a resource gives its series: `job` and `instance` (they override the data
/// point's attributes) and the promoted attributes (added where the point has no label of
/// that name).
#[derive(Default)]
struct ResourceLabels {
    ids: BTreeMap<String, String>,
    promoted: BTreeMap<String, String>,
}

fn promoted(key: &str, cfg: &OtlpConfig) -> bool {
    if cfg.promote_all_resource_attributes {
        !cfg.ignore_resource_attributes.iter().any(|k| k == key)
            && ![SERVICE_NAME, SERVICE_NAMESPACE, SERVICE_INSTANCE_ID].contains(&key)
    } else {
        cfg.promote_resource_attributes.iter().any(|k| k == key)
    }
}

fn resource_labels(attrs: &[KeyValue], cfg: &OtlpConfig) -> ResourceLabels {
    let get = |k: &str| {
        attrs
            .iter()
            .find(|a| a.key == k)
            .map(|a| value_text(&a.value))
    };
    let chosen: Vec<KeyValue> = attrs
        .iter()
        .filter(|a| promoted(&a.key, cfg))
        .cloned()
        .collect();
    let mut out = ResourceLabels::default();
    attribute_labels(&chosen, cfg, &mut out.promoted);
    if let Some(name) = get(SERVICE_NAME) {
        let job = match get(SERVICE_NAMESPACE) {
            Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
            _ => name,
        };
        out.ids.insert("job".into(), job);
    }
    if let Some(id) = get(SERVICE_INSTANCE_ID) {
        out.ids.insert("instance".into(), id);
    }
    out.ids.retain(|_, v| !v.is_empty());
    out
}

struct Out<'a> {
    series: BTreeMap<Labels, Vec<(i64, f64)>>,
    hists: BTreeMap<Labels, Vec<(i64, Arc<FloatHistogram>)>>,
    exemplars: Vec<(Labels, Exemplar)>,
    /// Why the request is refused (an exemplar's trace or span id of the wrong length).
    refused: Option<String>,
    cfg: &'a OtlpConfig,
}

impl Out<'_> {
    /// A native histogram sample of `name` with the point's attributes and the resource's
    /// labels; its series.
    fn push_hist(
        &mut self,
        name: &str,
        attrs: &[KeyValue],
        resource: &ResourceLabels,
        t: i64,
        h: FloatHistogram,
    ) -> Labels {
        let labels = self.labels(name, attrs, resource, None);
        self.hists
            .entry(labels.clone())
            .or_default()
            .push((t, Arc::new(h)));
        labels
    }

    /// Converts a point's exemplars; `series` says where each goes (by its value).
    fn exemplars(
        &mut self,
        exemplars: &[super::proto::Exemplar],
        point_ts: i64,
        mut series: impl FnMut(f64) -> Labels,
    ) {
        for e in exemplars {
            match convert(e, point_ts, self.cfg) {
                Ok(Some(ex)) => {
                    let labels = series(ex.value);
                    self.exemplars.push((labels, ex));
                }
                Ok(None) => {}
                Err(err) => {
                    self.refused.get_or_insert(err.to_string());
                }
            }
        }
    }

    /// The labels of a sample of `name`.
    fn labels(
        &self,
        name: &str,
        attrs: &[KeyValue],
        resource: &ResourceLabels,
        extra: Option<(&str, String)>,
    ) -> Labels {
        let mut l = BTreeMap::new();
        attribute_labels(attrs, self.cfg, &mut l);
        for (k, val) in &resource.promoted {
            l.entry(k.clone()).or_insert_with(|| val.clone());
        }
        for (k, val) in &resource.ids {
            l.insert(k.clone(), val.clone());
        }
        if let Some((k, val)) = extra {
            l.insert(k.to_string(), val);
        }
        l.insert("__name__".into(), name.to_string());
        Labels::from_pairs(l.into_iter().filter(|(_, v)| !v.is_empty()))
    }

    /// A sample of `name` with the point's attributes and the resource's labels; its
    /// series.
    fn push(
        &mut self,
        name: &str,
        attrs: &[KeyValue],
        resource: &ResourceLabels,
        extra: Option<(&str, String)>,
        t: i64,
        v: f64,
    ) -> Labels {
        let labels = self.labels(name, attrs, resource, extra);
        self.series.entry(labels.clone()).or_default().push((t, v));
        labels
    }
}

/// An explicit-bucket histogram point as a native histogram with custom buckets
/// (`otlp.convert_histograms_to_nhcb`): the bounds are the custom values, the counts the
/// buckets (OTLP's counts are per bucket already), as Prometheus's `explicitHistogramToCustomBucketsHistogram`.
fn nhcb(p: &super::proto::HistogramDataPoint) -> FloatHistogram {
    let mut h = FloatHistogram {
        schema: strata_vocab::histogram::CUSTOM_BUCKETS_SCHEMA,
        count: p.count as f64,
        sum: p.sum.unwrap_or(0.0),
        positive: p
            .bucket_counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c != 0)
            .map(|(i, c)| (i as i32, *c as f64))
            .collect(),
        custom_values: std::sync::Arc::from(
            p.explicit_bounds
                .iter()
                .copied()
                .filter(|b| b.is_finite())
                .collect::<Vec<f64>>(),
        ),
        ..FloatHistogram::default()
    };
    if p.flags & 1 == 1 {
        h.sum = strata_storage::STALE_NAN;
        h.count = strata_storage::STALE_NAN;
    }
    h
}

/// Prometheus's zero threshold for histograms from OTLP (the data point's own is not read,
/// as Prometheus).
const DEFAULT_ZERO_THRESHOLD: f64 = 1e-128;

/// An exponential histogram point as a native histogram (Prometheus's
/// `exponentialToNativeHistogram`): scale is the schema (above 8 reduced to 8, below −4
/// refused), OTLP bucket `i` is Prometheus bucket `i + 1`; a point flagged as having no
/// recorded value is a staleness marker.
fn exponential(p: &ExponentialHistogramDataPoint) -> Result<FloatHistogram, String> {
    if p.scale < MIN_SCHEMA {
        return Err(format!(
            "cannot convert exponential to native histogram. Scale must be >= {MIN_SCHEMA}, was {}",
            p.scale
        ));
    }
    let down = (p.scale - MAX_SCHEMA).max(0);
    let buckets = |b: &Option<Buckets>| -> Vec<(i32, f64)> {
        let mut out: Vec<(i32, f64)> = Vec::new();
        let Some(b) = b else { return out };
        for (k, &c) in b.bucket_counts.iter().enumerate() {
            let idx = i64::from(b.offset) + k as i64;
            let target = ((idx >> down) + 1) as i32;
            match out.last_mut() {
                Some(last) if last.0 == target => last.1 += c as f64,
                _ => out.push((target, c as f64)),
            }
        }
        out.retain(|b| b.1 != 0.0);
        out
    };
    let mut h = FloatHistogram {
        schema: p.scale.min(MAX_SCHEMA),
        zero_threshold: DEFAULT_ZERO_THRESHOLD,
        zero_count: p.zero_count as f64,
        count: p.count as f64,
        sum: p.sum.unwrap_or(0.0),
        positive: buckets(&p.positive),
        negative: buckets(&p.negative),
        ..FloatHistogram::default()
    };
    if p.flags & 1 == 1 {
        h.sum = strata_storage::STALE_NAN;
        h.count = strata_storage::STALE_NAN;
    }
    Ok(h)
}

/// How often `target_info` is repeated between a resource's first and last point: half the
/// default lookback delta, as Prometheus.
const TARGET_INFO_EVERY_MS: i64 = 150_000;

/// Widens `span` to take `ts`.
fn see(span: &mut Option<(i64, i64)>, ts: i64) {
    *span = Some(match *span {
        None => (ts, ts),
        Some((a, b)) => (a.min(ts), b.max(ts)),
    });
}

pub(super) fn ms(nanos: u64) -> i64 {
    (nanos / 1_000_000) as i64
}

fn value_of(flags: u32, v: f64) -> f64 {
    if flags & FLAG_NO_RECORDED_VALUE != 0 {
        f64::from_bits(STALE_NAN)
    } else {
        v
    }
}

/// Whether a sum or histogram is cumulative; if not, the request is refused with
/// Prometheus's message.
fn cumulative(t: &mut Translated, temporality: i32, metric: &str) -> bool {
    if temporality == CUMULATIVE {
        return true;
    }
    t.refused.get_or_insert(format!(
        "invalid temporality and type combination for metric {metric:?}"
    ));
    false
}

/// Where a histogram or summary point is.
struct Point<'a> {
    attrs: &'a [KeyValue],
    ts: i64,
    flags: u32,
}

/// The `_sum` (when known) and `_count` series of a histogram or summary point.
fn sum_and_count(
    out: &mut Out<'_>,
    name: &str,
    p: &Point<'_>,
    resource: &ResourceLabels,
    sum: Option<f64>,
    count: u64,
) {
    if let Some(sum) = sum {
        out.push(
            &format!("{name}_sum"),
            p.attrs,
            resource,
            None,
            p.ts,
            value_of(p.flags, sum),
        );
    }
    out.push(
        &format!("{name}_count"),
        p.attrs,
        resource,
        None,
        p.ts,
        value_of(p.flags, count as f64),
    );
}

/// The samples of gauge or sum points, with their exemplars when `exemplars` (sums).
fn numbers(
    out: &mut Out<'_>,
    name: &str,
    points: &[super::proto::NumberDataPoint],
    resource: &ResourceLabels,
    span: &mut Option<(i64, i64)>,
    exemplars: bool,
) {
    for p in points {
        let v = match p.value {
            Some(NumberValue::AsDouble(d)) => d,
            Some(NumberValue::AsInt(i)) => i as f64,
            None => 0.0,
        };
        let ts = ms(p.time_unix_nano);
        see(span, ts);
        let labels = out.push(
            name,
            &p.attributes,
            resource,
            None,
            ts,
            value_of(p.flags, v),
        );
        if exemplars {
            out.exemplars(&p.exemplars, ts, |_| labels.clone());
        }
    }
}

/// Translates `req` with the `otlp` settings `cfg`.
pub(super) fn translate(req: &ExportMetricsServiceRequest, cfg: &OtlpConfig) -> Translated {
    let namer = Namer::new(cfg);
    let mut t = Translated::default();
    let mut out = Out {
        series: BTreeMap::new(),
        hists: BTreeMap::new(),
        exemplars: Vec::new(),
        refused: None,
        cfg,
    };
    let mut metadata: BTreeMap<String, MetricMetadata> = BTreeMap::new();
    for rm in &req.resource_metrics {
        let attrs: &[KeyValue] = rm.resource.as_ref().map_or(&[], |r| &r.attributes);
        let resource = resource_labels(attrs, cfg);
        let mut span: Option<(i64, i64)> = None;
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                let Some(data) = &m.data else { continue };
                let (kind, name) = match data {
                    Data::Gauge(_) => (2, namer.name(&m.name, &m.unit, false, true)),
                    Data::Sum(s) => {
                        let counter = s.is_monotonic;
                        (
                            if counter { 1 } else { 2 },
                            namer.name(&m.name, &m.unit, counter, false),
                        )
                    }
                    Data::Histogram(_) | Data::ExponentialHistogram(_) => {
                        (3, namer.name(&m.name, &m.unit, false, false))
                    }
                    Data::Summary(_) => (5, namer.name(&m.name, &m.unit, false, false)),
                };
                match data {
                    Data::Gauge(g) => {
                        numbers(&mut out, &name, &g.data_points, &resource, &mut span, false);
                    }
                    Data::Sum(s) => {
                        if !cumulative(&mut t, s.aggregation_temporality, &m.name) {
                            continue;
                        }
                        numbers(&mut out, &name, &s.data_points, &resource, &mut span, true);
                    }
                    Data::Histogram(h) => {
                        if !cumulative(&mut t, h.aggregation_temporality, &m.name) {
                            continue;
                        }
                        if cfg.convert_histograms_to_nhcb {
                            for p in &h.data_points {
                                let ts = ms(p.time_unix_nano);
                                see(&mut span, ts);
                                let labels =
                                    out.push_hist(&name, &p.attributes, &resource, ts, nhcb(p));
                                out.exemplars(&p.exemplars, ts, |_| labels.clone());
                            }
                            continue;
                        }
                        for p in &h.data_points {
                            let ts = ms(p.time_unix_nano);
                            see(&mut span, ts);
                            let f = |v: f64| value_of(p.flags, v);
                            let point = Point {
                                attrs: &p.attributes,
                                ts,
                                flags: p.flags,
                            };
                            sum_and_count(&mut out, &name, &point, &resource, p.sum, p.count);
                            let mut cumulative = 0u64;
                            let mut buckets = Vec::with_capacity(p.explicit_bounds.len() + 1);
                            for (bound, n) in p.explicit_bounds.iter().zip(&p.bucket_counts) {
                                cumulative = cumulative.saturating_add(*n);
                                buckets.push(out.push(
                                    &format!("{name}_bucket"),
                                    &p.attributes,
                                    &resource,
                                    Some(("le", strata_vocab::float::format_f(*bound))),
                                    ts,
                                    f(cumulative as f64),
                                ));
                            }
                            buckets.push(out.push(
                                &format!("{name}_bucket"),
                                &p.attributes,
                                &resource,
                                Some(("le", "+Inf".into())),
                                ts,
                                f(p.count as f64),
                            ));
                            // Bucket i of the series made (the bounds with a count), else +Inf.
                            let bounds = &p.explicit_bounds[..buckets.len() - 1];
                            out.exemplars(&p.exemplars, ts, |v| {
                                let i = bucket_of(v, bounds);
                                buckets[i].clone()
                            });
                        }
                    }
                    Data::ExponentialHistogram(e) => {
                        if !cumulative(&mut t, e.aggregation_temporality, &m.name) {
                            continue;
                        }
                        for p in &e.data_points {
                            let ts = ms(p.time_unix_nano);
                            match exponential(p) {
                                Ok(h) => {
                                    see(&mut span, ts);
                                    let labels =
                                        out.push_hist(&name, &p.attributes, &resource, ts, h);
                                    out.exemplars(&p.exemplars, ts, |_| labels.clone());
                                }
                                Err(msg) => t.reject(1, msg),
                            }
                        }
                    }
                    Data::Summary(s) => {
                        for p in &s.data_points {
                            let ts = ms(p.time_unix_nano);
                            see(&mut span, ts);
                            let f = |v: f64| value_of(p.flags, v);
                            let point = Point {
                                attrs: &p.attributes,
                                ts,
                                flags: p.flags,
                            };
                            sum_and_count(&mut out, &name, &point, &resource, Some(p.sum), p.count);
                            for q in &p.quantile_values {
                                out.push(
                                    &name,
                                    &p.attributes,
                                    &resource,
                                    Some(("quantile", strata_vocab::float::format_f(q.quantile))),
                                    ts,
                                    f(q.value),
                                );
                            }
                        }
                    }
                }
                metadata
                    .entry(name.clone())
                    .or_insert_with(|| MetricMetadata {
                        r#type: kind,
                        metric_family_name: name.clone(),
                        help: m.description.clone(),
                        unit: namer.unit(&m.unit),
                    });
            }
        }
        // target_info: the resource attributes other than the identifying ones, with job
        // and instance, from the resource's first to its last point every half lookback
        // (so it stays visible in between), as Prometheus writes it.
        if let Some((first, last)) = span
            && !resource.ids.is_empty()
        {
            let info: Vec<KeyValue> = attrs
                .iter()
                .filter(|a| {
                    let identifying = [SERVICE_NAME, SERVICE_NAMESPACE, SERVICE_INSTANCE_ID]
                        .contains(&a.key.as_str());
                    !identifying || cfg.keep_identifying_resource_attributes
                })
                .cloned()
                .collect();
            if !info.is_empty() {
                let ids = ResourceLabels {
                    ids: resource.ids.clone(),
                    promoted: BTreeMap::new(),
                };
                let mut ts = first;
                while ts < last {
                    out.push("target_info", &info, &ids, None, ts, 1.0);
                    ts = ts.saturating_add(TARGET_INFO_EVERY_MS);
                }
                out.push("target_info", &info, &ids, None, last, 1.0);
            }
        }
    }
    let mut hists = std::mem::take(&mut out.hists);
    t.batch = out
        .series
        .into_iter()
        .map(|(labels, mut samples)| {
            samples.sort_by_key(|s| s.0);
            samples.dedup_by_key(|s| s.0);
            let mut histograms = hists.remove(&labels).unwrap_or_default();
            histograms.sort_by_key(|s| s.0);
            histograms.dedup_by_key(|s| s.0);
            SeriesSamples {
                histograms,
                labels,
                samples,
            }
        })
        .collect();
    for (labels, mut histograms) in hists {
        histograms.sort_by_key(|s| s.0);
        histograms.dedup_by_key(|s| s.0);
        t.batch.push(SeriesSamples {
            labels,
            samples: Vec::new(),
            histograms,
        });
    }
    t.metadata = metadata.into_values().collect();
    t.exemplars = std::mem::take(&mut out.exemplars);
    if let Some(why) = out.refused.take() {
        t.refused.get_or_insert(why);
    }
    t
}
