//! Pushed metric families: decoded from the text format 0.0.4 (grouped into families as
//! Go's text parser does: `_bucket`/`_sum`/`_count` join their histogram, quantiles and
//! `_sum`/`_count` their summary) or from protobuf `MetricFamily`s, and checked the way the
//! Pushgateway checks a push (no timestamps, no duplicate series).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use strata_vocab::histogram::{CounterResetHint, FloatHistogram};

use crate::exposition::{Entry, Format, MetricType, Parser, parse_series};
use crate::pushgateway::proto;

/// A family's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Untyped,
    Histogram,
    Summary,
}

impl Kind {
    /// The `# TYPE` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Untyped => "untyped",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
        }
    }

    /// The protobuf enum name (`/api/v1/metrics`).
    pub fn proto_name(self) -> &'static str {
        match self {
            Kind::Counter => "COUNTER",
            Kind::Gauge => "GAUGE",
            Kind::Untyped => "UNTYPED",
            Kind::Histogram => "HISTOGRAM",
            Kind::Summary => "SUMMARY",
        }
    }

    fn from_text(t: MetricType) -> Kind {
        match t {
            MetricType::Counter => Kind::Counter,
            MetricType::Gauge | MetricType::Info | MetricType::StateSet => Kind::Gauge,
            MetricType::Histogram | MetricType::GaugeHistogram => Kind::Histogram,
            MetricType::Summary => Kind::Summary,
            MetricType::Unknown => Kind::Untyped,
        }
    }
}

/// A metric's value.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricValue {
    /// Counter, gauge, untyped.
    Simple(f64),
    /// Histogram: classic `(upper bound, cumulative count)` buckets, count, sum, and the
    /// native histogram when the protobuf body carried one (count and sum are shared, as
    /// in `io.prometheus.client.Histogram`).
    Histogram {
        buckets: Vec<(f64, f64)>,
        count: f64,
        sum: f64,
        native: Option<Arc<FloatHistogram>>,
    },
    /// Summary: `(quantile, value)`, count, sum.
    Summary {
        quantiles: Vec<(f64, f64)>,
        count: f64,
        sum: f64,
    },
}

/// One metric (label set) of a family.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// Its labels (without the family name).
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: MetricValue,
    /// Its timestamp (ms): only scraped protobuf bodies have one; pushes may not.
    pub timestamp_ms: Option<i64>,
}

/// A metric family.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    /// Name.
    pub name: String,
    /// `# HELP` text.
    pub help: String,
    /// Type.
    pub kind: Kind,
    /// Metrics in push order.
    pub metrics: Vec<Metric>,
}

/// Why a body was refused.
#[derive(Clone, Debug, PartialEq)]
pub enum BodyError {
    /// It does not parse.
    Malformed(String),
    /// It parses but breaks a push rule (timestamps, duplicates).
    Invalid(String),
}

/// Parses a text-format (0.0.4) body.
pub fn parse_text(body: &[u8]) -> Result<Vec<Family>, BodyError> {
    let mut parser = Parser::new(body, Format::PromText);
    let mut types: HashMap<String, Kind> = HashMap::new();
    let mut helps: HashMap<String, String> = HashMap::new();
    let mut b = Builder::default();
    while let Some(entry) = parser.next() {
        match entry.map_err(|e| BodyError::Malformed(e.to_string()))? {
            Entry::Help { name, text } => {
                helps.insert(name.to_owned(), text.into_owned());
            }
            Entry::Type { name, kind } => {
                if b.index.contains_key(name) {
                    return Err(BodyError::Malformed(format!(
                        "second TYPE line for metric name {name:?}, or TYPE reported after samples"
                    )));
                }
                types.insert(name.to_owned(), Kind::from_text(kind));
            }
            Entry::Unit { .. } => {}
            Entry::Sample {
                series,
                value,
                timestamp,
                ..
            } => {
                if timestamp.is_some() {
                    return Err(BodyError::Invalid(
                        "pushed metrics must not have timestamps".into(),
                    ));
                }
                let (name, pairs) = parse_series(series).map_err(BodyError::Malformed)?;
                let labels: BTreeMap<String, String> = pairs.into_iter().collect();
                b.add_text_sample(&types, &name, labels, value)?;
            }
        }
    }
    for (name, kind) in &types {
        b.family(name, *kind);
    }
    let mut out = b.families;
    for f in &mut out {
        if let Some(h) = helps.get(&f.name) {
            f.help = h.clone();
        }
    }
    check_duplicates(&out)?;
    Ok(out)
}

#[derive(Default)]
struct Builder {
    families: Vec<Family>,
    index: HashMap<String, usize>,
}

impl Builder {
    fn family(&mut self, name: &str, kind: Kind) -> &mut Family {
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.families.push(Family {
                    name: name.to_owned(),
                    help: String::new(),
                    kind,
                    metrics: Vec::new(),
                });
                self.index.insert(name.to_owned(), self.families.len() - 1);
                self.families.len() - 1
            }
        };
        &mut self.families[i]
    }

    fn add_text_sample(
        &mut self,
        types: &HashMap<String, Kind>,
        name: &str,
        mut labels: BTreeMap<String, String>,
        v: f64,
    ) -> Result<(), BodyError> {
        if let Some(&kind) = types.get(name) {
            if kind == Kind::Summary {
                let q = labels.remove("quantile").ok_or_else(|| {
                    BodyError::Malformed(format!("summary {name:?} sample without quantile"))
                })?;
                let q = parse_float(&q)?;
                let m = complex(self.family(name, kind), labels, kind);
                if let MetricValue::Summary { quantiles, .. } = &mut m.value {
                    quantiles.push((q, v));
                }
                return Ok(());
            }
            if kind != Kind::Histogram {
                self.family(name, kind).metrics.push(Metric {
                    labels,
                    value: MetricValue::Simple(v),
                    timestamp_ms: None,
                });
                return Ok(());
            }
        }
        for suffix in ["_bucket", "_sum", "_count"] {
            let Some(base) = name.strip_suffix(suffix) else {
                continue;
            };
            let kind = match types.get(base) {
                Some(k @ (Kind::Histogram | Kind::Summary)) => *k,
                _ => continue,
            };
            if suffix == "_bucket" && kind != Kind::Histogram {
                continue;
            }
            let le = if suffix == "_bucket" {
                let le = labels.remove("le").ok_or_else(|| {
                    BodyError::Malformed(format!("histogram bucket {name:?} without le"))
                })?;
                Some(parse_float(&le)?)
            } else {
                None
            };
            let m = complex(self.family(base, kind), labels, kind);
            match (&mut m.value, suffix) {
                (MetricValue::Histogram { buckets, .. }, "_bucket") => {
                    buckets.push((le.unwrap_or(f64::INFINITY), v))
                }
                (MetricValue::Histogram { sum, .. } | MetricValue::Summary { sum, .. }, "_sum") => {
                    *sum = v
                }
                (MetricValue::Histogram { count, .. } | MetricValue::Summary { count, .. }, _) => {
                    *count = v
                }
                _ => {}
            }
            return Ok(());
        }
        let kind = types.get(name).copied().unwrap_or(Kind::Untyped);
        self.family(name, kind).metrics.push(Metric {
            labels,
            value: MetricValue::Simple(v),
            timestamp_ms: None,
        });
        Ok(())
    }
}

/// The histogram/summary metric of `f` with `labels`, created empty if new.
fn complex(f: &mut Family, labels: BTreeMap<String, String>, kind: Kind) -> &mut Metric {
    let i = match f.metrics.iter().position(|m| m.labels == labels) {
        Some(i) => i,
        None => {
            f.metrics.push(Metric {
                labels,
                value: if kind == Kind::Histogram {
                    MetricValue::Histogram {
                        buckets: Vec::new(),
                        count: 0.0,
                        sum: 0.0,
                        native: None,
                    }
                } else {
                    MetricValue::Summary {
                        quantiles: Vec::new(),
                        count: 0.0,
                        sum: 0.0,
                    }
                },
                timestamp_ms: None,
            });
            f.metrics.len() - 1
        }
    };
    &mut f.metrics[i]
}

fn parse_float(s: &str) -> Result<f64, BodyError> {
    crate::exposition::parse_value(s)
        .ok_or_else(|| BodyError::Malformed(format!("invalid number {s:?}")))
}

/// Decodes protobuf `MetricFamily`s, native histograms included; sample timestamps are
/// refused unless `allow_timestamps` (scrapes keep them, pushes may not have them).
pub fn from_proto(
    fams: Vec<proto::MetricFamily>,
    allow_timestamps: bool,
) -> Result<Vec<Family>, BodyError> {
    from_proto_with(fams, allow_timestamps, true)
}

/// As [`from_proto`]. With `native`, the native part of a histogram
/// ([`proto::Histogram::is_native`]) is decoded and checked (an invalid one refuses the
/// body); without, it is ignored and only the classic buckets count, as Prometheus parses
/// when native histograms are not scraped.
pub fn from_proto_with(
    fams: Vec<proto::MetricFamily>,
    allow_timestamps: bool,
    native: bool,
) -> Result<Vec<Family>, BodyError> {
    let mut out = Vec::with_capacity(fams.len());
    for f in fams {
        let name = f.name.unwrap_or_default();
        if name.is_empty() {
            return Err(BodyError::Malformed("metric family without a name".into()));
        }
        let gauge_histogram = f.r#type == Some(5);
        let kind = match f.r#type.unwrap_or(3) {
            0 => Kind::Counter,
            1 => Kind::Gauge,
            2 => Kind::Summary,
            4 | 5 => Kind::Histogram,
            _ => Kind::Untyped,
        };
        let mut metrics = Vec::with_capacity(f.metric.len());
        for m in f.metric {
            if m.timestamp_ms.is_some() && !allow_timestamps {
                return Err(BodyError::Invalid(
                    "pushed metrics must not have timestamps".into(),
                ));
            }
            let labels: BTreeMap<String, String> = m
                .label
                .into_iter()
                .map(|l| (l.name.unwrap_or_default(), l.value.unwrap_or_default()))
                .collect();
            let simple = |v: Option<proto::SimpleValue>| {
                MetricValue::Simple(v.and_then(|v| v.value).unwrap_or(0.0))
            };
            let value = match kind {
                Kind::Counter => simple(m.counter),
                Kind::Gauge => simple(m.gauge),
                Kind::Untyped => simple(m.untyped),
                Kind::Summary => {
                    let s = m.summary.unwrap_or_default();
                    MetricValue::Summary {
                        quantiles: s
                            .quantile
                            .iter()
                            .map(|q| (q.quantile.unwrap_or(0.0), q.value.unwrap_or(0.0)))
                            .collect(),
                        count: s.sample_count.unwrap_or(0) as f64,
                        sum: s.sample_sum.unwrap_or(0.0),
                    }
                }
                Kind::Histogram => {
                    let h = m.histogram.unwrap_or_default();
                    let native = if native && h.is_native() {
                        let nh = h
                            .to_native(gauge_histogram)
                            .map_err(|e| BodyError::Invalid(format!("histogram {name:?}: {e}")))?;
                        Some(Arc::new(nh))
                    } else {
                        None
                    };
                    MetricValue::Histogram {
                        native,
                        buckets: h
                            .bucket
                            .iter()
                            .map(|b| {
                                (
                                    b.upper_bound.unwrap_or(f64::INFINITY),
                                    b.cumulative_count_float
                                        .unwrap_or(b.cumulative_count.unwrap_or(0) as f64),
                                )
                            })
                            .collect(),
                        count: h
                            .sample_count_float
                            .unwrap_or(h.sample_count.unwrap_or(0) as f64),
                        sum: h.sample_sum.unwrap_or(0.0),
                    }
                }
            };
            metrics.push(Metric {
                labels,
                value,
                timestamp_ms: m.timestamp_ms,
            });
        }
        out.push(Family {
            name,
            help: f.help.unwrap_or_default(),
            kind,
            metrics,
        });
    }
    check_duplicates(&out)?;
    Ok(out)
}

/// The family as a protobuf `MetricFamily`, native histograms included ([`from_proto`]
/// reads it back). A histogram family whose native histograms are gauges is a
/// `GAUGE_HISTOGRAM`.
pub fn to_proto(f: &Family) -> proto::MetricFamily {
    let gauge_histogram = f.metrics.iter().any(|m| {
        matches!(&m.value, MetricValue::Histogram { native: Some(h), .. } if h.hint == CounterResetHint::Gauge)
    });
    let r#type = match f.kind {
        Kind::Counter => 0,
        Kind::Gauge => 1,
        Kind::Summary => 2,
        Kind::Untyped => 3,
        Kind::Histogram if gauge_histogram => 5,
        Kind::Histogram => 4,
    };
    let whole = |v: f64| v >= 0.0 && v.fract() == 0.0 && v < 9.0e15;
    let metric = f
        .metrics
        .iter()
        .map(|m| {
            let mut pm = proto::Metric {
                label: m
                    .labels
                    .iter()
                    .map(|(k, v)| proto::LabelPair {
                        name: Some(k.clone()),
                        value: Some(v.clone()),
                    })
                    .collect(),
                timestamp_ms: m.timestamp_ms,
                ..Default::default()
            };
            match &m.value {
                MetricValue::Simple(v) => {
                    let v = Some(proto::SimpleValue { value: Some(*v) });
                    match f.kind {
                        Kind::Counter => pm.counter = v,
                        Kind::Gauge => pm.gauge = v,
                        _ => pm.untyped = v,
                    }
                }
                MetricValue::Summary {
                    quantiles,
                    count,
                    sum,
                } => {
                    pm.summary = Some(proto::Summary {
                        sample_count: Some(*count as u64),
                        sample_sum: Some(*sum),
                        quantile: quantiles
                            .iter()
                            .map(|(q, v)| proto::Quantile {
                                quantile: Some(*q),
                                value: Some(*v),
                            })
                            .collect(),
                    })
                }
                MetricValue::Histogram {
                    buckets,
                    count,
                    sum,
                    native,
                } => {
                    let mut h = proto::Histogram {
                        sample_count: Some(*count as u64),
                        sample_count_float: (!whole(*count)).then_some(*count),
                        sample_sum: Some(*sum),
                        bucket: buckets
                            .iter()
                            .map(|(le, c)| proto::Bucket {
                                cumulative_count: Some(*c as u64),
                                upper_bound: Some(*le),
                                cumulative_count_float: (!whole(*c)).then_some(*c),
                            })
                            .collect(),
                        ..Default::default()
                    };
                    if let Some(n) = native {
                        h.set_native(n);
                    }
                    pm.histogram = Some(h);
                }
            }
            pm
        })
        .collect();
    proto::MetricFamily {
        name: Some(f.name.clone()),
        help: (!f.help.is_empty()).then(|| f.help.clone()),
        r#type: Some(r#type),
        metric,
    }
}

fn check_duplicates(fams: &[Family]) -> Result<(), BodyError> {
    let mut names = std::collections::HashSet::new();
    for f in fams {
        if !strata_grammar::is_legacy_metric_name(&f.name) {
            return Err(BodyError::Invalid(format!(
                "invalid metric name {:?}",
                f.name
            )));
        }
        if !names.insert(&f.name) {
            return Err(BodyError::Invalid(format!(
                "metric family {:?} appears twice",
                f.name
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for m in &f.metrics {
            if let Some(bad) = m.labels.keys().find(|k| {
                !strata_grammar::is_legacy_label_name(k)
                    || k.starts_with("__")
                    || (f.kind == Kind::Histogram && *k == "le")
                    || (f.kind == Kind::Summary && *k == "quantile")
            }) {
                return Err(BodyError::Invalid(format!(
                    "invalid label name {bad:?} in metric family {:?}",
                    f.name
                )));
            }
            if !seen.insert(&m.labels) {
                return Err(BodyError::Invalid(format!(
                    "collected metric {:?} {:?} was collected before with the same name and label values",
                    f.name, m.labels
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn groups_histograms_and_summaries() {
        let body = b"# HELP h Latency.\n# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"1.0\"} 2\nh_bucket{le=\"+Inf\"} 3\nh_count 3\nh_sum 5.55\n# TYPE s summary\ns{quantile=\"0.5\"} 4\ns_sum 10\ns_count 1\n# TYPE c_total counter\nc_total 5\nplain{a=\"b\"} 1\n";
        let f = parse_text(body).unwrap();
        let h = f.iter().find(|f| f.name == "h").unwrap();
        assert_eq!(h.kind, Kind::Histogram);
        assert_eq!(h.help, "Latency.");
        assert_eq!(
            h.metrics[0].value,
            MetricValue::Histogram {
                buckets: vec![(0.1, 1.0), (1.0, 2.0), (f64::INFINITY, 3.0)],
                count: 3.0,
                sum: 5.55,
                native: None,
            }
        );
        let s = f.iter().find(|f| f.name == "s").unwrap();
        assert_eq!(
            s.metrics[0].value,
            MetricValue::Summary {
                quantiles: vec![(0.5, 4.0)],
                count: 1.0,
                sum: 10.0
            }
        );
        assert_eq!(
            f.iter().find(|f| f.name == "c_total").unwrap().kind,
            Kind::Counter
        );
        assert_eq!(
            f.iter().find(|f| f.name == "plain").unwrap().kind,
            Kind::Untyped
        );
    }

    #[test]
    fn refuses_timestamps_duplicates_and_garbage() {
        assert!(matches!(
            parse_text(b"x 1 1700000000000\n"),
            Err(BodyError::Invalid(_))
        ));
        assert!(matches!(
            parse_text(b"x 1\nx 2\n"),
            Err(BodyError::Invalid(_))
        ));
        assert!(matches!(
            parse_text(b"pgprobe_broken{{{ 1\nnot valid at all\n"),
            Err(BodyError::Malformed(_))
        ));
        assert_eq!(parse_text(b"").unwrap(), vec![]);
    }

    #[test]
    fn refuses_names_the_exposition_could_not_carry() {
        let fam = |name: &str, kind: i32, label: &str| proto::MetricFamily {
            name: Some(name.into()),
            help: None,
            r#type: Some(kind),
            metric: vec![proto::Metric {
                label: vec![proto::LabelPair {
                    name: Some(label.into()),
                    value: Some("x".into()),
                }],
                gauge: Some(proto::SimpleValue { value: Some(1.0) }),
                ..Default::default()
            }],
        };
        for (name, kind, label) in [
            ("my-metric", 1, "a"),
            ("ok", 1, "bad-label"),
            ("ok", 1, "__reserved"),
            ("h", 4, "le"),
            ("s", 2, "quantile"),
        ] {
            assert!(
                matches!(
                    from_proto(vec![fam(name, kind, label)], false),
                    Err(BodyError::Invalid(_))
                ),
                "{name} {label}"
            );
        }
    }
}
