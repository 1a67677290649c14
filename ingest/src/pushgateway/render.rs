//! Pushed groups rendered three ways: the text exposition the Pushgateway serves on
//! `/metrics` (families merged across groups, grouping labels winning, `instance=""` for
//! groups without one, floats and `le`/`quantile` values printed as Go prints them, plus
//! `push_time_seconds` and `push_failure_time_seconds` per group), the `/api/v1/metrics`
//! JSON, and the samples the ingester stores. The text is written by [`crate::expfmt`]
//! (names and values escaped as Prometheus writes them).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use strata_grammar::{format_go_float, format_rfc3339};
use strata_vocab::FloatHistogram;

use crate::expfmt;
use crate::pushgateway::model::{Family, MetricValue, to_proto};
use crate::pushgateway::proto;
use crate::pushgateway::store::Group;

const PUSH_TIME_HELP: &str =
    "Last Unix time when changing this group in the Pushgateway succeeded.";
const PUSH_FAILURE_HELP: &str =
    "Last Unix time when changing this group in the Pushgateway failed.";

fn g(v: f64) -> String {
    format_go_float(v, 'g', None)
}

/// The labels of a metric in a group: its own, the grouping labels over them, and
/// `instance=""` when neither has one.
pub fn metric_labels(
    own: &BTreeMap<String, String>,
    group: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut l = own.clone();
    for (k, v) in group {
        l.insert(k.clone(), v.clone());
    }
    if !group.is_empty() {
        l.entry("instance".into()).or_default();
    }
    l
}

fn line(
    out: &mut String,
    name: &str,
    labels: &BTreeMap<String, String>,
    extra: Option<(&str, f64)>,
    v: f64,
    ts: Option<i64>,
) {
    let extra = extra.map(|(k, x)| (k, expfmt::format_float(x)));
    let pairs = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(extra.iter().map(|(k, x)| (*k, x.as_ref())));
    expfmt::write_sample(out, name, pairs, v, ts);
}

/// `(name, le/quantile label, value)`.
type ExposedSeries = (String, Option<(&'static str, f64)>, f64);

/// The series one metric exposes: `(name, le/quantile label, value)`; a histogram gets a
/// `+Inf` bucket when it was pushed without one. With `stored`, the float series storage
/// gets: a native histogram without classic buckets has none (its native sample stands
/// for it, see [`histogram_samples`]), as Prometheus scrapes one.
fn series_of(f: &Family, value: &MetricValue, stored: bool) -> Vec<ExposedSeries> {
    let mut out = Vec::new();
    match value {
        MetricValue::Simple(v) => out.push((f.name.clone(), None, *v)),
        MetricValue::Histogram {
            native: Some(_),
            buckets,
            ..
        } if stored && buckets.is_empty() => {}
        MetricValue::Histogram {
            buckets,
            count,
            sum,
            ..
        } => {
            let bucket = format!("{}_bucket", f.name);
            for (le, c) in buckets {
                out.push((bucket.clone(), Some(("le", *le)), *c));
            }
            if buckets.last().is_none_or(|(le, _)| *le != f64::INFINITY) {
                out.push((bucket, Some(("le", f64::INFINITY)), *count));
            }
            out.push((format!("{}_sum", f.name), None, *sum));
            out.push((format!("{}_count", f.name), None, *count));
        }
        MetricValue::Summary {
            quantiles,
            count,
            sum,
        } => {
            for (q, v) in quantiles {
                out.push((f.name.clone(), Some(("quantile", *q)), *v));
            }
            out.push((format!("{}_sum", f.name), None, *sum));
            out.push((format!("{}_count", f.name), None, *count));
        }
    }
    out
}

fn render_metric(
    out: &mut String,
    f: &Family,
    labels: &BTreeMap<String, String>,
    value: &MetricValue,
    ts: Option<i64>,
) {
    for (name, extra, v) in series_of(f, value, false) {
        line(out, &name, labels, extra, v, ts);
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    if !help.is_empty() {
        expfmt::write_help(out, name, help);
    }
    expfmt::write_type(out, name, kind);
}

/// Families of one group in text format, with `group` labels added (empty: as pushed).
pub fn render_families<'a>(
    fams: impl Iterator<Item = &'a Family>,
    group: &BTreeMap<String, String>,
    out: &mut String,
) {
    for f in fams {
        if f.metrics.is_empty() {
            continue;
        }
        header(out, &f.name, &f.help, f.kind.as_str());
        for m in &f.metrics {
            render_metric(
                out,
                f,
                &metric_labels(&m.labels, group),
                &m.value,
                m.timestamp_ms,
            );
        }
    }
}

/// The Pushgateway's `/metrics` body for all groups.
pub fn exposition(groups: &[Group]) -> String {
    let mut by_name: BTreeMap<&str, (&Family, Vec<String>)> = BTreeMap::new();
    for grp in groups {
        for f in grp.families.values() {
            let e = by_name.entry(&f.name).or_insert_with(|| (f, Vec::new()));
            for m in &f.metrics {
                let mut s = String::new();
                render_metric(
                    &mut s,
                    f,
                    &metric_labels(&m.labels, &grp.labels),
                    &m.value,
                    None,
                );
                e.1.push(s);
            }
        }
    }
    let mut out = String::new();
    let mut push_time = Vec::new();
    let mut push_failure = Vec::new();
    for grp in groups {
        let l = metric_labels(&BTreeMap::new(), &grp.labels);
        let mut s = String::new();
        line(
            &mut s,
            "push_time_seconds",
            &l,
            None,
            grp.push_time_ms as f64 / 1000.0,
            None,
        );
        push_time.push(s);
        let mut s = String::new();
        line(
            &mut s,
            "push_failure_time_seconds",
            &l,
            None,
            grp.failure_time_ms as f64 / 1000.0,
            None,
        );
        push_failure.push(s);
    }
    let mut emitted_push = false;
    let emit_push = |out: &mut String| {
        header(out, "push_failure_time_seconds", PUSH_FAILURE_HELP, "gauge");
        push_failure.iter().for_each(|s| out.push_str(s));
        header(out, "push_time_seconds", PUSH_TIME_HELP, "gauge");
        push_time.iter().for_each(|s| out.push_str(s));
    };
    for (name, (f, mut lines)) in by_name {
        if !emitted_push && !groups.is_empty() && name > "push_failure_time_seconds" {
            emit_push(&mut out);
            emitted_push = true;
        }
        if lines.is_empty() {
            continue;
        }
        lines.sort();
        header(&mut out, name, &f.help, f.kind.as_str());
        lines.iter().for_each(|s| out.push_str(s));
    }
    if !emitted_push && !groups.is_empty() {
        emit_push(&mut out);
    }
    out
}

/// The Pushgateway's `/metrics` as protobuf `MetricFamily`s, for a scraper that asks for
/// the protobuf format: the families, metrics and order of [`exposition`] (families by
/// name, their metrics in the order of their text lines, `push_time_seconds` and
/// `push_failure_time_seconds` per group), with native histograms as pushed
/// ([`crate::pushgateway::model::to_proto`]), which the text cannot carry.
pub fn exposition_proto(groups: &[Group]) -> Vec<proto::MetricFamily> {
    type Entry = (proto::MetricFamily, Vec<(String, proto::Metric)>);
    let mut by_name: BTreeMap<String, Entry> = BTreeMap::new();
    for grp in groups {
        for f in grp.families.values() {
            let pf = to_proto(f);
            let e = by_name.entry(f.name.clone()).or_insert_with(|| {
                (
                    proto::MetricFamily {
                        metric: Vec::new(),
                        ..pf.clone()
                    },
                    Vec::new(),
                )
            });
            for (m, mut pm) in f.metrics.iter().zip(pf.metric) {
                let labels = metric_labels(&m.labels, &grp.labels);
                let mut key = String::new();
                render_metric(&mut key, f, &labels, &m.value, None);
                pm.label = label_pairs(&labels);
                pm.timestamp_ms = None;
                e.1.push((key, pm));
            }
        }
    }
    let gauge = |name: &str, help: &str, v: &dyn Fn(&Group) -> i64| proto::MetricFamily {
        name: Some(name.to_owned()),
        help: Some(help.to_owned()),
        r#type: Some(1),
        metric: groups
            .iter()
            .map(|grp| proto::Metric {
                label: label_pairs(&metric_labels(&BTreeMap::new(), &grp.labels)),
                gauge: Some(proto::SimpleValue {
                    value: Some(v(grp) as f64 / 1000.0),
                }),
                ..Default::default()
            })
            .collect(),
    };
    let mut out: Vec<proto::MetricFamily> = by_name
        .into_values()
        .filter(|(_, m)| !m.is_empty())
        .map(|(mut f, mut metrics)| {
            metrics.sort_by(|a, b| a.0.cmp(&b.0));
            f.metric = metrics.into_iter().map(|(_, m)| m).collect();
            f
        })
        .collect();
    if !groups.is_empty() {
        out.push(gauge(
            "push_failure_time_seconds",
            PUSH_FAILURE_HELP,
            &|g| g.failure_time_ms,
        ));
        out.push(gauge("push_time_seconds", PUSH_TIME_HELP, &|g| {
            g.push_time_ms
        }));
        // Among the others by name, as in the text (a push may not use their names).
        out.sort_by(|a, b| a.name.cmp(&b.name));
    }
    out
}

fn label_pairs(labels: &BTreeMap<String, String>) -> Vec<proto::LabelPair> {
    labels
        .iter()
        .map(|(k, v)| proto::LabelPair {
            name: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

/// The `/api/v1/metrics` data: one object per group.
pub fn api_metrics(groups: &[Group]) -> Value {
    let mut out = Vec::new();
    for grp in groups {
        let mut o = Map::new();
        o.insert("labels".into(), json!(grp.labels));
        o.insert(
            "last_push_successful".into(),
            json!(grp.last_push_successful),
        );
        let gl = metric_labels(&BTreeMap::new(), &grp.labels);
        let ts = format_rfc3339(grp.push_time_ms, true);
        for (name, help, v) in [
            ("push_time_seconds", PUSH_TIME_HELP, grp.push_time_ms),
            (
                "push_failure_time_seconds",
                PUSH_FAILURE_HELP,
                grp.failure_time_ms,
            ),
        ] {
            o.insert(
                name.into(),
                json!({"time_stamp": ts, "type": "GAUGE", "help": help,
                       "metrics": [{"labels": gl, "value": g(v as f64 / 1000.0)}]}),
            );
        }
        for f in grp.families.values() {
            let metrics: Vec<Value> = f
                .metrics
                .iter()
                .map(|m| {
                    let labels = metric_labels(&m.labels, &grp.labels);
                    match &m.value {
                        MetricValue::Simple(v) => json!({"labels": labels, "value": g(*v)}),
                        MetricValue::Histogram {
                            buckets,
                            count,
                            sum,
                            ..
                        } => {
                            let b: Map<String, Value> =
                                buckets.iter().map(|(le, c)| (g(*le), json!(g(*c)))).collect();
                            json!({"labels": labels, "buckets": b, "count": g(*count), "sum": g(*sum)})
                        }
                        MetricValue::Summary {
                            quantiles,
                            count,
                            sum,
                        } => {
                            let q: Map<String, Value> =
                                quantiles.iter().map(|(q, v)| (g(*q), json!(g(*v)))).collect();
                            json!({"labels": labels, "quantiles": q, "count": g(*count), "sum": g(*sum)})
                        }
                    }
                })
                .collect();
            let when = grp
                .family_push_ms
                .get(&f.name)
                .copied()
                .unwrap_or(grp.push_time_ms);
            o.insert(
                f.name.clone(),
                json!({"time_stamp": format_rfc3339(when, true), "type": f.kind.proto_name(),
                       "help": f.help, "metrics": metrics}),
            );
        }
        out.push(Value::Object(o));
    }
    Value::Array(out)
}

/// Every series of every group as `(labels with __name__, value)`, as a Prometheus scrape
/// of the Pushgateway with `honor_labels: true` would store them.
pub fn samples(groups: &[Group]) -> Vec<(BTreeMap<String, String>, f64)> {
    let mut out = Vec::new();
    let mut push =
        |name: &str, labels: &BTreeMap<String, String>, extra: Option<(&str, f64)>, v: f64| {
            let mut l = labels.clone();
            l.insert("__name__".into(), name.to_owned());
            if let Some((k, x)) = extra {
                l.insert(k.into(), expfmt::format_float(x).into_owned());
            }
            l.retain(|_, v| !v.is_empty());
            out.push((l, v));
        };
    for grp in groups {
        let gl = metric_labels(&BTreeMap::new(), &grp.labels);
        push(
            "push_time_seconds",
            &gl,
            None,
            grp.push_time_ms as f64 / 1000.0,
        );
        push(
            "push_failure_time_seconds",
            &gl,
            None,
            grp.failure_time_ms as f64 / 1000.0,
        );
        for f in grp.families.values() {
            for m in &f.metrics {
                let l = metric_labels(&m.labels, &grp.labels);
                for (name, extra, v) in series_of(f, &m.value, true) {
                    push(&name, &l, extra, v);
                }
            }
        }
    }
    out
}

/// The native histogram samples of every group as `(labels with __name__, histogram)`:
/// one per histogram metric with native data, under the family name, labeled as
/// [`samples`] labels its series.
pub fn histogram_samples(groups: &[Group]) -> Vec<(BTreeMap<String, String>, Arc<FloatHistogram>)> {
    let mut out = Vec::new();
    for grp in groups {
        for f in grp.families.values() {
            for m in &f.metrics {
                if let MetricValue::Histogram {
                    native: Some(h), ..
                } = &m.value
                {
                    let mut l = metric_labels(&m.labels, &grp.labels);
                    l.insert("__name__".into(), f.name.clone());
                    l.retain(|_, v| !v.is_empty());
                    out.push((l, h.clone()));
                }
            }
        }
    }
    out
}

/// A native histogram of a scraped protobuf body.
#[derive(Clone, Debug, PartialEq)]
pub struct NativeSample {
    /// The series as the text format writes it (`name{label="value",...}`), the family
    /// name without suffix.
    pub series: String,
    /// The sample's own timestamp (ms), if the body gave one.
    pub timestamp_ms: Option<i64>,
    /// The histogram, checked.
    pub histogram: FloatHistogram,
}

/// A scraped protobuf body split for the scrape loop.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transcoded {
    /// Every float series as text format 0.0.4, timestamps kept.
    pub text: Vec<u8>,
    /// The native histograms (only when they are scraped).
    pub natives: Vec<NativeSample>,
}

/// A scraped protobuf body (delimited `MetricFamily`s) as text format 0.0.4, timestamps
/// kept, so the scrape loop parses it like any text body. Native histograms are ignored
/// (their classic series are kept, `_count`, `_sum` and a `+Inf` bucket at least).
pub fn proto_to_text(body: &[u8]) -> Result<Vec<u8>, String> {
    transcode_proto(body, false, true).map(|t| t.text)
}

/// A scraped protobuf body as Prometheus's protobuf parser presents it: with `native`,
/// every histogram with native data ([`crate::pushgateway::proto::Histogram::is_native`])
/// becomes a [`NativeSample`], and its classic series are kept in the text only with
/// `keep_classic` and when it has classic buckets (`always_scrape_classic_histograms`);
/// without `native`, histograms are classic only, as [`proto_to_text`].
pub fn transcode_proto(
    body: &[u8],
    native: bool,
    keep_classic: bool,
) -> Result<Transcoded, String> {
    let fams = crate::pushgateway::proto::decode_delimited(body)?;
    let fams =
        crate::pushgateway::model::from_proto_with(fams, true, native).map_err(|e| match e {
            crate::pushgateway::model::BodyError::Malformed(m)
            | crate::pushgateway::model::BodyError::Invalid(m) => m,
        })?;
    let mut out = String::new();
    let mut natives = Vec::new();
    let none = BTreeMap::new();
    for f in &fams {
        if f.metrics.is_empty() {
            continue;
        }
        header(&mut out, &f.name, &f.help, f.kind.as_str());
        for m in &f.metrics {
            if let MetricValue::Histogram {
                native: Some(h),
                buckets,
                ..
            } = &m.value
            {
                let mut series = String::new();
                expfmt::write_series(
                    &mut series,
                    &f.name,
                    m.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                );
                natives.push(NativeSample {
                    series,
                    timestamp_ms: m.timestamp_ms,
                    histogram: (**h).clone(),
                });
                if !keep_classic || buckets.is_empty() {
                    continue;
                }
            }
            render_metric(
                &mut out,
                f,
                &metric_labels(&m.labels, &none),
                &m.value,
                m.timestamp_ms,
            );
        }
    }
    Ok(Transcoded {
        text: out.into_bytes(),
        natives,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pushgateway::model::parse_text;
    use crate::pushgateway::store::{GroupKey, PushStore};

    #[test]
    fn exposition_merges_groups_and_renders_go_style() {
        let s = PushStore::open(None, 0).unwrap();
        let k = |j: &str| GroupKey::from([("job".to_owned(), j.to_owned())]);
        s.push(
            k("a"),
            parse_text(b"# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1.0\"} 1\nh_sum 2.5\nh_count 1\n# TYPE x gauge\nx{job=\"other\"} 1.5\n"),
            true,
            1_700_000_000_000,
        )
        .unwrap();
        s.push(
            k("b"),
            parse_text(b"# TYPE x gauge\nx 2\n"),
            true,
            1_700_000_001_000,
        )
        .unwrap();
        let text = exposition(&s.snapshot());
        assert!(
            text.contains("h_bucket{instance=\"\",job=\"a\",le=\"1\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("h_bucket{instance=\"\",job=\"a\",le=\"+Inf\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("x{instance=\"\",job=\"a\"} 1.5\nx{instance=\"\",job=\"b\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("push_time_seconds{instance=\"\",job=\"a\"} 1.7e+09\n"),
            "{text}"
        );
        assert_eq!(text.matches("# TYPE x gauge").count(), 1);
        let samples = samples(&s.snapshot());
        assert!(samples.iter().any(|(l, v)| l["__name__"] == "x"
            && l["job"] == "a"
            && *v == 1.5
            && !l.contains_key("instance")));
    }

    fn native_body(with_classic: bool) -> Vec<u8> {
        use crate::pushgateway::proto::{
            Bucket, BucketSpan, Histogram, LabelPair, Metric, MetricFamily, SimpleValue,
        };
        use prost::Message;
        let h = Histogram {
            sample_count: Some(3),
            sample_sum: Some(4.5),
            bucket: if with_classic {
                vec![Bucket {
                    cumulative_count: Some(2),
                    upper_bound: Some(1.0),
                    ..Default::default()
                }]
            } else {
                Vec::new()
            },
            schema: Some(0),
            zero_threshold: Some(0.001),
            positive_span: vec![BucketSpan {
                offset: Some(0),
                length: Some(2),
            }],
            positive_delta: vec![2, -1],
            ..Default::default()
        };
        let mut body = Vec::new();
        for f in [
            MetricFamily {
                name: Some("lat_seconds".into()),
                help: Some("Latency.".into()),
                r#type: Some(4),
                metric: vec![Metric {
                    label: vec![LabelPair {
                        name: Some("path".into()),
                        value: Some("/a\"b".into()),
                    }],
                    histogram: Some(h),
                    timestamp_ms: Some(1234),
                    ..Default::default()
                }],
            },
            MetricFamily {
                name: Some("up_total".into()),
                help: None,
                r#type: Some(0),
                metric: vec![Metric {
                    counter: Some(SimpleValue { value: Some(7.0) }),
                    ..Default::default()
                }],
            },
        ] {
            f.encode_length_delimited(&mut body).unwrap();
        }
        body
    }

    #[test]
    fn transcoding_sets_native_histograms_apart() {
        let body = native_body(true);
        // Not scraped: classic series only, with the +Inf bucket.
        let t = transcode_proto(&body, false, false).unwrap();
        let text = String::from_utf8(t.text).unwrap();
        assert!(t.natives.is_empty());
        assert!(
            text.contains("lat_seconds_bucket{path=\"/a\\\"b\",le=\"+Inf\"} 3 1234\n"),
            "{text}"
        );
        assert_eq!(proto_to_text(&body).unwrap(), text.as_bytes());
        // Scraped: the native sample under the family name; classic series only when
        // always scraped.
        let t = transcode_proto(&body, true, false).unwrap();
        let text = String::from_utf8(t.text).unwrap();
        assert!(!text.contains("lat_seconds_"), "{text}");
        assert!(text.contains("# TYPE lat_seconds histogram\n"), "{text}");
        assert!(text.contains("up_total 7\n"), "{text}");
        assert_eq!(t.natives.len(), 1);
        let n = &t.natives[0];
        assert_eq!(n.series, "lat_seconds{path=\"/a\\\"b\"}");
        assert_eq!(
            crate::exposition::parse_series(n.series.as_bytes()).unwrap(),
            (
                "lat_seconds".to_owned(),
                vec![("path".to_owned(), "/a\"b".to_owned())]
            )
        );
        assert_eq!(n.timestamp_ms, Some(1234));
        assert_eq!(n.histogram.positive, vec![(0, 2.0), (1, 1.0)]);
        assert_eq!(n.histogram.count, 3.0);
        let t = transcode_proto(&body, true, true).unwrap();
        let text = String::from_utf8(t.text).unwrap();
        assert!(
            text.contains("lat_seconds_bucket{path=\"/a\\\"b\",le=\"1\"} 2 1234\n"),
            "{text}"
        );
        assert!(
            text.contains("lat_seconds_count{path=\"/a\\\"b\"} 3 1234\n"),
            "{text}"
        );
        assert_eq!(t.natives.len(), 1);
        // Without classic buckets nothing classic is kept, even when always scraped.
        let t = transcode_proto(&native_body(false), true, true).unwrap();
        let text = String::from_utf8(t.text).unwrap();
        assert!(!text.contains("lat_seconds_"), "{text}");
        assert_eq!(t.natives.len(), 1);
    }

    #[test]
    fn pushed_native_histograms_are_stored_natively() {
        let s = PushStore::open(None, 0).unwrap();
        let k = GroupKey::from([("job".to_owned(), "j".to_owned())]);
        let fams = crate::pushgateway::proto::decode_delimited(&native_body(false)).unwrap();
        let mut fams = crate::pushgateway::model::from_proto(fams, true).unwrap();
        for f in &mut fams {
            for m in &mut f.metrics {
                m.timestamp_ms = None;
            }
        }
        s.push(k, Ok(fams), true, 1_700_000_000_000).unwrap();
        let groups = s.snapshot();
        let floats = samples(&groups);
        assert!(
            !floats
                .iter()
                .any(|(l, _)| l["__name__"].starts_with("lat_seconds")),
            "{floats:?}"
        );
        let hs = histogram_samples(&groups);
        assert_eq!(hs.len(), 1);
        assert_eq!(hs[0].0["__name__"], "lat_seconds");
        assert_eq!(hs[0].0["job"], "j");
        assert!(!hs[0].0.contains_key("instance"));
        assert_eq!(hs[0].1.count, 3.0);
        // The protobuf exposition carries it (the text below cannot).
        let fams = exposition_proto(&groups);
        let names: Vec<&str> = fams.iter().filter_map(|f| f.name.as_deref()).collect();
        assert_eq!(
            names,
            [
                "lat_seconds",
                "push_failure_time_seconds",
                "push_time_seconds",
                "up_total"
            ]
        );
        let m = &fams[0].metric[0];
        let labels: Vec<(&str, &str)> = m
            .label
            .iter()
            .map(|l| (l.name.as_deref().unwrap(), l.value.as_deref().unwrap()))
            .collect();
        assert_eq!(labels, [("instance", ""), ("job", "j"), ("path", "/a\"b")]);
        let h = m.histogram.as_ref().unwrap();
        assert_eq!(&h.to_native(false).unwrap(), &*hs[0].1);
        assert_eq!(h.positive_delta, vec![2, -1], "integer counts as pushed");
        assert_eq!(fams[0].r#type, Some(4));
        assert_eq!(fams[0].help.as_deref(), Some("Latency."));
        assert_eq!(
            fams[2].metric[0].gauge.as_ref().and_then(|g| g.value),
            Some(1_700_000_000.0)
        );
        // The text exposition shows it as a classic histogram with count and sum.
        let text = exposition(&groups);
        assert!(
            text.contains(
                "lat_seconds_bucket{instance=\"\",job=\"j\",path=\"/a\\\"b\",le=\"+Inf\"} 3\n"
            ),
            "{text}"
        );
    }
}
