//! The native histogram of Prometheus's remote-write protos (`prometheus.Histogram` of
//! 1.0 and `io.prometheus.write.v2.Histogram` of 2.0 share every field number) and its
//! conversion into [`FloatHistogram`], validated as Prometheus's `Histogram.Validate` /
//! `FloatHistogram.Validate` do, with their error texts. Schemas 9..52 are reduced to 8,
//! as Prometheus's appender does.

use std::sync::Arc;

use prost::Message;
use strata_vocab::histogram::{
    CUSTOM_BUCKETS_SCHEMA, CounterResetHint, FloatHistogram, MAX_SCHEMA, MIN_SCHEMA, Span,
};

/// `Histogram.count`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Count {
    #[prost(uint64, tag = "1")]
    CountInt(u64),
    #[prost(double, tag = "2")]
    CountFloat(f64),
}

/// `Histogram.zero_count`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ZeroCount {
    #[prost(uint64, tag = "6")]
    ZeroCountInt(u64),
    #[prost(double, tag = "7")]
    ZeroCountFloat(f64),
}

/// `BucketSpan`.
#[derive(Clone, PartialEq, Message)]
pub struct BucketSpan {
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    #[prost(uint32, tag = "2")]
    pub length: u32,
}

/// `Histogram`.
#[derive(Clone, PartialEq, Message)]
pub struct Histogram {
    #[prost(oneof = "Count", tags = "1, 2")]
    pub count: Option<Count>,
    #[prost(double, tag = "3")]
    pub sum: f64,
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    #[prost(double, tag = "5")]
    pub zero_threshold: f64,
    #[prost(oneof = "ZeroCount", tags = "6, 7")]
    pub zero_count: Option<ZeroCount>,
    #[prost(message, repeated, tag = "8")]
    pub negative_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "9")]
    pub negative_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "10")]
    pub negative_counts: Vec<f64>,
    #[prost(message, repeated, tag = "11")]
    pub positive_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "12")]
    pub positive_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "13")]
    pub positive_counts: Vec<f64>,
    #[prost(int32, tag = "14")]
    pub reset_hint: i32,
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
    #[prost(double, repeated, tag = "16")]
    pub custom_values: Vec<f64>,
}

/// A histogram Prometheus would refuse, with its reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidHistogram(pub String);

fn spans(s: &[BucketSpan]) -> Vec<Span> {
    s.iter()
        .map(|s| Span {
            offset: s.offset,
            length: s.length,
        })
        .collect()
}

fn check_spans(
    side: &str,
    spans: &[Span],
    buckets: usize,
    custom: bool,
) -> Result<usize, InvalidHistogram> {
    let mut n: u64 = 0;
    let mut total: i64 = 0;
    for (i, s) in spans.iter().enumerate() {
        if (i > 0 || custom) && s.offset < 0 {
            return Err(InvalidHistogram(format!(
                "{side}span number {} with offset {}: histogram has a span whose offset is negative",
                i + 1,
                s.offset
            )));
        }
        n += u64::from(s.length);
        total += i64::from(s.length) + i64::from(s.offset);
    }
    if n != buckets as u64 {
        return Err(InvalidHistogram(format!(
            "{side}spans need {n} buckets, have {buckets} buckets: histogram spans specify different number of buckets than provided"
        )));
    }
    Ok(total.max(0) as usize)
}

fn check_counts(side: &str, counts: &[f64]) -> Result<(), InvalidHistogram> {
    for (i, c) in counts.iter().enumerate() {
        if *c < 0.0 {
            return Err(InvalidHistogram(format!(
                "{side}bucket number {} has observation count of {c}: histogram has a bucket whose observation count is negative",
                i + 1
            )));
        }
    }
    Ok(())
}

fn absolute(deltas: &[i64]) -> Vec<f64> {
    let mut acc: i64 = 0;
    deltas
        .iter()
        .map(|d| {
            acc = acc.wrapping_add(*d);
            acc as f64
        })
        .collect()
}

impl Histogram {
    /// Whether the integer form is used (counts as deltas).
    pub fn is_integer(&self) -> bool {
        !matches!(self.count, Some(Count::CountFloat(_)))
    }

    /// The validated histogram and its timestamp.
    pub fn to_float(&self) -> Result<(i64, FloatHistogram), InvalidHistogram> {
        let int = self.is_integer();
        let count = match self.count {
            Some(Count::CountInt(c)) => c as f64,
            Some(Count::CountFloat(c)) => c,
            None => 0.0,
        };
        let zero_count = match self.zero_count {
            Some(ZeroCount::ZeroCountInt(c)) => c as f64,
            Some(ZeroCount::ZeroCountFloat(c)) => c,
            None => 0.0,
        };
        let (pos, neg) = if int {
            (
                absolute(&self.positive_deltas),
                absolute(&self.negative_deltas),
            )
        } else {
            (self.positive_counts.clone(), self.negative_counts.clone())
        };
        let (ps, ns) = (spans(&self.positive_spans), spans(&self.negative_spans));
        let mut schema = self.schema;
        let custom = schema == CUSTOM_BUCKETS_SCHEMA;
        if custom {
            let cv = &self.custom_values;
            let mut prev = f64::NEG_INFINITY;
            for (i, v) in cv.iter().enumerate() {
                if v.is_nan() {
                    return Err(InvalidHistogram(
                        "custom buckets: histogram custom bounds must not be NaN".into(),
                    ));
                }
                if i > 0 && *v <= prev {
                    return Err(InvalidHistogram(format!(
                        "custom buckets: previous bound is {prev:.6} and current is {v:.6}: histogram custom bounds must be in strictly increasing order"
                    )));
                }
                prev = *v;
            }
            if prev == f64::INFINITY {
                return Err(InvalidHistogram("custom buckets: last +Inf bound must not be explicitly defined: histogram custom bounds must be finite".into()));
            }
            let total = check_spans("custom buckets: ", &ps, pos.len(), true)?;
            if cv.len() + 1 < total {
                return Err(InvalidHistogram(format!(
                    "custom buckets: only {} custom bounds defined which is insufficient to cover total span length of {total}: histogram custom bounds are too few",
                    cv.len()
                )));
            }
            if zero_count != 0.0 {
                return Err(InvalidHistogram(
                    "custom buckets: must have zero count of 0".into(),
                ));
            }
            if self.zero_threshold != 0.0 {
                return Err(InvalidHistogram(
                    "custom buckets: must have zero threshold of 0".into(),
                ));
            }
            if !ns.is_empty() {
                return Err(InvalidHistogram(
                    "custom buckets: must not have negative spans".into(),
                ));
            }
            if !neg.is_empty() {
                return Err(InvalidHistogram(
                    "custom buckets: must not have negative buckets".into(),
                ));
            }
        } else if (MIN_SCHEMA..=52).contains(&schema) {
            check_spans("positive side: ", &ps, pos.len(), false)?;
            check_spans("negative side: ", &ns, neg.len(), false)?;
            if !self.custom_values.is_empty() {
                return Err(InvalidHistogram(
                    "histogram with exponential schema must not have custom bounds".into(),
                ));
            }
        } else {
            return Err(InvalidHistogram(format!(
                "histogram has an invalid schema, which must be between {MIN_SCHEMA} and {MAX_SCHEMA} for exponential buckets, or {CUSTOM_BUCKETS_SCHEMA} for custom buckets"
            )));
        }
        check_counts("negative side: ", &neg)?;
        if zero_count < 0.0 {
            return Err(InvalidHistogram(format!(
                "zero bucket has observation count of {zero_count}: histogram has a bucket whose observation count is negative"
            )));
        }
        if count < 0.0 {
            return Err(InvalidHistogram(format!(
                "observation count is  {count}: histogram's observation count is negative"
            )));
        }
        check_counts("positive side: ", &pos)?;
        // Prometheus also refuses integer histograms whose count differs from their
        // buckets' total; that check is left out: such a sample is stored as sent.
        let mut h = FloatHistogram {
            hint: CounterResetHint::from_u8(u8::try_from(self.reset_hint).unwrap_or(0)),
            schema,
            zero_threshold: self.zero_threshold,
            zero_count,
            count,
            sum: self.sum,
            positive: FloatHistogram::buckets_from_spans(&ps, &pos),
            negative: FloatHistogram::buckets_from_spans(&ns, &neg),
            custom_values: Arc::from(if custom {
                self.custom_values.clone()
            } else {
                Vec::new()
            }),
        };
        if schema > MAX_SCHEMA {
            h.reduce_resolution(MAX_SCHEMA);
            schema = MAX_SCHEMA;
        }
        h.schema = schema;
        h.compact();
        Ok((self.timestamp, h))
    }

    /// The float form of `h` at `t` (what the sender writes).
    pub fn from_float(t: i64, h: &FloatHistogram) -> Histogram {
        let (ps, pc) = FloatHistogram::spans(&h.positive);
        let (ns, nc) = FloatHistogram::spans(&h.negative);
        let bs = |s: Vec<Span>| {
            s.into_iter()
                .map(|s| BucketSpan {
                    offset: s.offset,
                    length: s.length,
                })
                .collect()
        };
        Histogram {
            count: Some(Count::CountFloat(h.count)),
            sum: h.sum,
            schema: h.schema,
            zero_threshold: h.zero_threshold,
            zero_count: Some(ZeroCount::ZeroCountFloat(h.zero_count)),
            negative_spans: bs(ns),
            negative_deltas: Vec::new(),
            negative_counts: nc,
            positive_spans: bs(ps),
            positive_deltas: Vec::new(),
            positive_counts: pc,
            reset_hint: h.hint as i32,
            timestamp: t,
            custom_values: h.custom_values.to_vec(),
        }
    }
}
