//! Native histograms in scrapes: the per-target switches (Prometheus's
//! `__scrape_native_histograms__`, `__always_scrape_classic_histograms__` and
//! `__convert_classic_histograms_to_nhcb__` target labels over the job's settings), the
//! limits Prometheus's scrape appenders apply to every native histogram sample
//! (`maxSchemaAppender` for `native_histogram_min_bucket_factor`, `bucketLimitAppender`
//! for `native_histogram_bucket_limit`), and the conversion of classic histograms into
//! native histograms with custom buckets ([`NhcbConverter`], Prometheus's `NHCBParser`
//! and `convertnhcb`).

use std::collections::HashSet;

use strata_vocab::histogram::{CUSTOM_BUCKETS_SCHEMA, FloatHistogram, MAX_SCHEMA, MIN_SCHEMA};

use crate::exposition;
use crate::histogram_proto;
use crate::pushgateway::render::NativeSample;
use crate::relabel::LabelSet;

/// The target label that overrides `scrape_native_histograms` for one target.
pub const SCRAPE_NATIVE_HISTOGRAMS_LABEL: &str = "__scrape_native_histograms__";
/// The target label that overrides `always_scrape_classic_histograms` for one target.
pub const ALWAYS_SCRAPE_CLASSIC_HISTOGRAMS_LABEL: &str = "__always_scrape_classic_histograms__";
/// The target label that overrides `convert_classic_histograms_to_nhcb` for one target.
pub const CONVERT_CLASSIC_HISTOGRAMS_TO_NHCB_LABEL: &str = "__convert_classic_histograms_to_nhcb__";

/// A native histogram with more buckets than `native_histogram_bucket_limit` allows even
/// at the lowest resolution (or with custom buckets, which cannot be merged): the scrape
/// fails, as in Prometheus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("histogram bucket limit exceeded")]
pub struct BucketLimitExceeded;

/// The boolean value of target label `name` (Go's `strconv.ParseBool`), `default` when
/// the label is absent, empty or not a boolean (Prometheus's `Target.boolLabel`).
pub fn bool_label(labels: &LabelSet, name: &str, default: bool) -> bool {
    match labels.get(name).map(String::as_str) {
        Some("1" | "t" | "T" | "TRUE" | "true" | "True") => true,
        Some("0" | "f" | "F" | "FALSE" | "false" | "False") => false,
        _ => default,
    }
}

/// The highest schema whose bucket growth factor is at least `factor`
/// (`native_histogram_min_bucket_factor`; ≤ 1 means no limit, schema 8), Prometheus's
/// `pickSchema`.
pub fn pick_schema(factor: f64) -> i32 {
    let factor = if factor <= 1.0 { 1.00271 } else { factor };
    let floor = (-factor.log2().log2()).floor();
    if floor >= f64::from(MAX_SCHEMA) {
        MAX_SCHEMA
    } else if floor <= f64::from(MIN_SCHEMA) {
        MIN_SCHEMA
    } else {
        floor as i32
    }
}

/// Applies the scrape limits to a native histogram sample: its resolution is reduced to
/// `max_schema` when higher, then, with `bucket_limit` > 0, halved until it has at most
/// that many (populated) buckets.
pub fn apply_limits(
    h: &mut FloatHistogram,
    max_schema: i32,
    bucket_limit: u64,
) -> Result<(), BucketLimitExceeded> {
    let exponential = (MIN_SCHEMA..=MAX_SCHEMA).contains(&h.schema);
    if exponential && h.schema > max_schema {
        h.reduce_resolution(max_schema);
    }
    if bucket_limit == 0 {
        return Ok(());
    }
    let buckets = |h: &FloatHistogram| (h.positive.len() + h.negative.len()) as u64;
    if buckets(h) > bucket_limit && !exponential {
        return Err(BucketLimitExceeded);
    }
    while buckets(h) > bucket_limit {
        if h.schema <= MIN_SCHEMA {
            return Err(BucketLimitExceeded);
        }
        h.reduce_resolution(h.schema - 1);
    }
    Ok(())
}

/// The series of one classic histogram collected for conversion (`convertnhcb`'s
/// `TempHistogram`): cumulative buckets by upper bound, count and sum. Any inconsistency
/// (a negative or non-cumulative count, a count different from the `+Inf` bucket's)
/// makes the conversion fail, and then no histogram is produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TempHistogram {
    /// `(upper bound, cumulative count)`, ascending.
    buckets: Vec<(f64, f64)>,
    count: Option<f64>,
    sum: f64,
    failed: bool,
}

impl TempHistogram {
    /// Records a bucket (`_bucket{le=…}`); a repeated bound is ignored.
    pub fn set_bucket(&mut self, le: f64, count: f64) {
        if self.failed {
            return;
        }
        if le.is_nan() || count < 0.0 {
            self.failed = true;
            return;
        }
        let i = self.buckets.partition_point(|b| b.0 < le);
        if self.buckets.get(i).is_some_and(|b| b.0 == le) {
            return;
        }
        let below_ok = i == 0 || self.buckets[i - 1].1 <= count;
        let above_ok = self.buckets.get(i).is_none_or(|b| count <= b.1);
        if !(below_ok && above_ok) {
            self.failed = true;
            return;
        }
        self.buckets.insert(i, (le, count));
    }

    /// Records the count (`_count`).
    pub fn set_count(&mut self, count: f64) {
        if count < 0.0 {
            self.failed = true;
        }
        self.count = Some(count);
    }

    /// Records the sum (`_sum`).
    pub fn set_sum(&mut self, sum: f64) {
        self.sum = sum;
    }

    /// The native histogram with custom buckets (schema −53): one bucket per upper bound,
    /// `+Inf` added with the count when missing, checked as Prometheus checks a histogram
    /// (`Validate`), empty buckets removed. `None` when the series are inconsistent.
    pub fn convert(&self) -> Option<FloatHistogram> {
        if self.failed {
            return None;
        }
        let mut buckets = self.buckets.clone();
        let count = match self.count {
            Some(c) => c,
            None => buckets.last()?.1,
        };
        if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
            buckets.push((f64::INFINITY, count));
        }
        if buckets.last().is_none_or(|b| b.1 != count) {
            return None;
        }
        let mut prev = 0.0;
        let counts: Vec<f64> = buckets
            .iter()
            .map(|b| {
                let c = b.1 - prev;
                prev = b.1;
                c
            })
            .collect();
        let wire = histogram_proto::Histogram {
            count: Some(histogram_proto::Count::CountFloat(count)),
            sum: self.sum,
            schema: CUSTOM_BUCKETS_SCHEMA,
            positive_spans: vec![histogram_proto::BucketSpan {
                offset: 0,
                length: buckets.len() as u32,
            }],
            positive_counts: counts,
            custom_values: buckets[..buckets.len() - 1].iter().map(|b| b.0).collect(),
            ..Default::default()
        };
        wire.to_float().ok().map(|(_, h)| h)
    }
}

/// Which series of a classic histogram a sample is.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Part {
    Bucket(f64),
    Count,
    Sum,
}

/// Converts the classic histograms of a text scrape into native histograms with custom
/// buckets (NHCB) as Prometheus's `NHCBParser` does: the `_bucket`, `_count` and `_sum`
/// series that follow a `# TYPE <name> histogram` line are collected per label set
/// (without `le`) and become one histogram sample `<name>{labels}`, once the next series
/// is another one. Their classic series are kept only with `keep_classic`. A label set
/// that already has a native histogram in the scrape is not converted.
pub struct NhcbConverter {
    keep_classic: bool,
    /// The family of the last `# TYPE` line, when it is a histogram.
    family: Option<String>,
    /// The series text of the histogram being collected, its histogram and the first
    /// explicit timestamp of its series.
    current: Option<(String, TempHistogram, Option<i64>)>,
    inhibited: HashSet<String>,
    /// The converted histograms, in exposition order.
    pub out: Vec<NativeSample>,
}

impl NhcbConverter {
    /// A converter for one scrape; `natives` are the scrape's native histogram samples.
    pub fn new(keep_classic: bool, natives: &[NativeSample]) -> Self {
        NhcbConverter {
            keep_classic,
            family: None,
            current: None,
            inhibited: natives.iter().map(|n| n.series.clone()).collect(),
            out: Vec::new(),
        }
    }

    /// A `# TYPE` line.
    pub fn on_type(&mut self, name: &str, histogram: bool) {
        self.finish();
        self.family = histogram.then(|| name.to_owned());
    }

    /// Any other entry that is not a sample (HELP, UNIT).
    pub fn on_other(&mut self) {
        self.finish();
    }

    /// A sample; whether it is left out of the float samples (it went into a converted
    /// histogram and classic series are not kept).
    pub fn on_sample(&mut self, series: &[u8], value: f64, timestamp: Option<i64>) -> bool {
        let Some((key, part)) = self.classify(series) else {
            self.finish();
            return false;
        };
        if self.inhibited.contains(&key) {
            self.finish();
            return false;
        }
        if self.current.as_ref().is_some_and(|c| c.0 != key) {
            self.finish();
        }
        let cur = self
            .current
            .get_or_insert_with(|| (key, TempHistogram::default(), timestamp));
        match part {
            Part::Bucket(le) => cur.1.set_bucket(le, value),
            Part::Count => cur.1.set_count(value),
            Part::Sum => cur.1.set_sum(value),
        }
        !self.keep_classic
    }

    /// The series text of the histogram a sample belongs to and which part it is, when
    /// it is a series of the current histogram family.
    fn classify(&self, series: &[u8]) -> Option<(String, Part)> {
        let family = self.family.as_deref()?;
        // Most series are not the family's: rule them out without parsing.
        if !series.starts_with(family.as_bytes()) && series.first() != Some(&b'{') {
            return None;
        }
        let (name, labels) = exposition::parse_series(series).ok()?;
        let base = name
            .strip_suffix("_bucket")
            .or_else(|| name.strip_suffix("_count"))
            .or_else(|| name.strip_suffix("_sum"))?;
        if base != family {
            return None;
        }
        let part = if name.ends_with("_bucket") {
            let le = labels.iter().find(|(k, _)| k == "le")?;
            let le = exposition::parse_value(&le.1).filter(|v| !v.is_nan())?;
            Part::Bucket(le)
        } else if name.ends_with("_count") {
            Part::Count
        } else {
            Part::Sum
        };
        let mut labels: Vec<(String, String)> =
            labels.into_iter().filter(|(k, _)| k != "le").collect();
        labels.sort();
        let mut key = String::new();
        crate::expfmt::write_series(
            &mut key,
            base,
            labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        Some((key, part))
    }

    /// Converts the histogram being collected, if any.
    pub fn finish(&mut self) {
        let Some((series, temp, timestamp_ms)) = self.current.take() else {
            return;
        };
        if let Some(histogram) = temp.convert() {
            self.out.push(NativeSample {
                series,
                timestamp_ms,
                histogram,
            });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn min_bucket_factor_picks_prometheus_schemas() {
        assert_eq!(pick_schema(0.0), 8);
        assert_eq!(pick_schema(1.0), 8);
        assert_eq!(pick_schema(1.1), 2);
        assert_eq!(pick_schema(1.5), 0);
        assert_eq!(pick_schema(2.0), 0);
        assert_eq!(pick_schema(4.0), -1);
        assert_eq!(pick_schema(1e10), -4);
        assert_eq!(pick_schema(1.01), 6);
    }

    fn wide() -> FloatHistogram {
        FloatHistogram {
            schema: 3,
            count: 12.0,
            sum: 100.0,
            // Eight consecutive buckets, and two negative ones.
            positive: (0..8).map(|i| (i, 1.0)).collect(),
            negative: vec![(1, 1.0), (2, 3.0)],
            ..FloatHistogram::default()
        }
    }

    #[test]
    fn bucket_limit_halves_the_resolution_until_it_fits() {
        let mut h = wide();
        apply_limits(&mut h, 8, 0).expect("no limit");
        assert_eq!(h, wide());
        apply_limits(&mut h, 8, 10).expect("fits as is");
        assert_eq!(h.schema, 3);
        apply_limits(&mut h, 8, 6).expect("reduced");
        // Schema 2: positive 0..8 → 0,1,1,2,2,3,3,4 (5 buckets), negative 1,2 → 1 (1).
        assert_eq!(h.schema, 2);
        assert_eq!(h.positive.len() + h.negative.len(), 6);
        assert_eq!(h.positive.iter().map(|b| b.1).sum::<f64>(), 8.0);
        assert_eq!(h.negative, vec![(1, 4.0)]);
        let mut h = wide();
        apply_limits(&mut h, 8, 3).expect("reduced far");
        // Schema 0: (0.5,1] and (1,2] (buckets 0 and 1 never merge) and [-2,-1).
        assert_eq!(h.schema, 0);
        assert_eq!(h.positive, vec![(0, 1.0), (1, 7.0)]);
        assert_eq!(h.negative, vec![(1, 4.0)]);
        assert_eq!(apply_limits(&mut wide(), 8, 2), Err(BucketLimitExceeded));
        let mut custom = FloatHistogram {
            schema: strata_vocab::histogram::CUSTOM_BUCKETS_SCHEMA,
            positive: vec![(0, 1.0), (1, 1.0)],
            custom_values: std::sync::Arc::from(vec![1.0, 2.0]),
            ..FloatHistogram::default()
        };
        assert_eq!(apply_limits(&mut custom, 8, 1), Err(BucketLimitExceeded));
    }

    #[test]
    fn max_schema_reduces_first() {
        let mut h = wide();
        apply_limits(&mut h, 0, 0).expect("reduced");
        assert_eq!(h.schema, 0);
        assert_eq!(h.positive.iter().map(|b| b.1).sum::<f64>(), 8.0);
    }

    #[test]
    fn target_labels_override_the_job() {
        let mut l = LabelSet::new();
        assert!(bool_label(&l, SCRAPE_NATIVE_HISTOGRAMS_LABEL, true));
        l.insert(SCRAPE_NATIVE_HISTOGRAMS_LABEL.into(), "false".into());
        assert!(!bool_label(&l, SCRAPE_NATIVE_HISTOGRAMS_LABEL, true));
        l.insert(SCRAPE_NATIVE_HISTOGRAMS_LABEL.into(), "nope".into());
        assert!(bool_label(&l, SCRAPE_NATIVE_HISTOGRAMS_LABEL, true));
    }

    fn feed(c: &mut NhcbConverter, text: &str) -> Vec<String> {
        let mut kept = Vec::new();
        let mut p = exposition::Parser::new(text.as_bytes(), exposition::Format::PromText);
        while let Some(e) = p.next() {
            match e.unwrap() {
                exposition::Entry::Sample {
                    series,
                    value,
                    timestamp,
                    ..
                } => {
                    if !c.on_sample(series, value, timestamp) {
                        kept.push(String::from_utf8_lossy(series).into_owned());
                    }
                }
                exposition::Entry::Type { name, kind } => {
                    c.on_type(name, kind == exposition::MetricType::Histogram)
                }
                _ => c.on_other(),
            }
        }
        c.finish();
        kept
    }

    const CLASSIC: &str = "# HELP req_seconds Latency.\n# TYPE req_seconds histogram\nreq_seconds_bucket{path=\"/a\",le=\"0.1\"} 1\nreq_seconds_bucket{path=\"/a\",le=\"0.5\"} 3\nreq_seconds_bucket{path=\"/a\",le=\"+Inf\"} 4\nreq_seconds_sum{path=\"/a\"} 1.2\nreq_seconds_count{path=\"/a\"} 4\nreq_seconds_bucket{le=\"1\",path=\"/b\"} 2\nreq_seconds_count{path=\"/b\"} 2\nreq_seconds_sum{path=\"/b\"} 0.5\n# TYPE other_bucket gauge\nother_bucket 1\n# TYPE g gaugehistogram\ng_bucket{le=\"+Inf\"} 1\n";

    #[test]
    fn classic_histograms_become_nhcb() {
        let mut c = NhcbConverter::new(false, &[]);
        let kept = feed(&mut c, CLASSIC);
        assert_eq!(kept, ["other_bucket", "g_bucket{le=\"+Inf\"}"]);
        assert_eq!(c.out.len(), 2);
        let a = &c.out[0];
        assert_eq!(a.series, "req_seconds{path=\"/a\"}");
        assert_eq!(a.histogram.schema, CUSTOM_BUCKETS_SCHEMA);
        assert_eq!(&a.histogram.custom_values[..], &[0.1, 0.5]);
        assert_eq!(a.histogram.positive, vec![(0, 1.0), (1, 2.0), (2, 1.0)]);
        assert_eq!((a.histogram.count, a.histogram.sum), (4.0, 1.2));
        // No +Inf bucket: added with the count; labels in any order.
        let b = &c.out[1];
        assert_eq!(b.series, "req_seconds{path=\"/b\"}");
        assert_eq!(&b.histogram.custom_values[..], &[1.0]);
        assert_eq!(b.histogram.positive, vec![(0, 2.0)]);
        // Classic series kept too on request.
        let mut c = NhcbConverter::new(true, &[]);
        assert_eq!(feed(&mut c, CLASSIC).len(), 10);
        assert_eq!(c.out.len(), 2);
    }

    #[test]
    fn inconsistent_or_native_histograms_are_not_converted() {
        // Not cumulative, and a count different from the +Inf bucket.
        for body in [
            "# TYPE h histogram\nh_bucket{le=\"1\"} 3\nh_bucket{le=\"2\"} 2\nh_count 3\n",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_count 3\n",
            "# TYPE h histogram\nh_bucket{le=\"1\"} -1\n",
        ] {
            let mut c = NhcbConverter::new(false, &[]);
            assert!(feed(&mut c, body).is_empty(), "{body}");
            assert!(c.out.is_empty(), "{body}: {:?}", c.out);
        }
        // A label set with a native histogram keeps its classic series unconverted.
        let native = NativeSample {
            series: "req_seconds{path=\"/a\"}".into(),
            timestamp_ms: None,
            histogram: FloatHistogram::default(),
        };
        let mut c = NhcbConverter::new(false, &[native]);
        let kept = feed(&mut c, CLASSIC);
        assert_eq!(kept.len(), 7, "{kept:?}");
        assert_eq!(c.out.len(), 1);
        assert_eq!(c.out[0].series, "req_seconds{path=\"/b\"}");
    }
}
