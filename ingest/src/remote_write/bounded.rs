//! Bounded decoding of a remote-write body: the protobuf is walked element by element
//! (series, their labels and samples, metadata) instead of being decoded into prost's
//! structures at once, so what a request may allocate is known as it grows and capped
//! relative to the body.
//!
//! Why: protobuf elements can be tiny on the wire and large in memory. An empty
//! `MetricMetadata` is 2 bytes and 80 in prost's struct, an empty `Sample` 2 and 16: a
//! 32 MiB body of them decoded to gigabytes (observed: four 1.6 MB snappy bodies of empty
//! metadata grew the server to 6 GB). Here empty metadata and series without samples cost
//! nothing, metadata is deduplicated and capped per request, and the decoded heap of the
//! series kept is estimated as it grows and refused past [`HEAP_PER_BODY_BYTE`] × the
//! decompressed size.
//!
//! Label limits follow Prometheus's scrape options (`label_limit`,
//! `label_name_length_limit`, `label_value_length_limit`, from `global`), with its errors.

use std::collections::HashSet;

use prost::Message;
use prost::bytes::Buf;
use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};
use strata_storage::{Labels, SeriesSamples};

use super::{Label, MetricMetadata, Sample, decompress, describe};
use crate::error::IngestError;

/// Decoded heap allowed per byte of decompressed body. A normal request decodes to about
/// its own size (a sample is ~18 bytes on the wire and 16 decoded; labels are shared by a
/// series' samples); series of one sample with two short labels reach ~4×. Empty samples
/// (2 bytes, 16 decoded) are 8×: refused.
pub const HEAP_PER_BODY_BYTE: usize = 6;
/// Decoded heap allowed per byte of a native histogram on the wire: its bucket counts are
/// 1–2 byte varints there and 16 bytes decoded (index and count), so a histogram needs
/// far more than [`HEAP_PER_BODY_BYTE`] (client_golang's, ~8×; Prometheus decodes them
/// into 8-byte deltas too). A body of nothing but histograms may take this much.
pub const HEAP_PER_HISTOGRAM_BYTE: usize = 20;

/// Estimated heap of one stored label beyond its text: two `Arc<str>` (header, rounding)
/// in a 32-byte `Label`.
pub(super) const LABEL_OVERHEAD: usize = 64;
/// Heap any request may use, whatever its size.
pub(super) const HEAP_FLOOR: usize = 1 << 20;
/// Distinct metadata entries kept from one request; more are ignored.
pub const MAX_METADATA_PER_REQUEST: usize = 10_000;

/// Prometheus's label limits (0 = unlimited).
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub label_limit: usize,
    pub label_name_length_limit: usize,
    pub label_value_length_limit: usize,
}

/// A decoded request: the series to append and the (deduplicated) metadata.
#[derive(Debug, Default)]
pub struct Decoded {
    pub batch: Vec<SeriesSamples>,
    /// Exemplars with their series (stored after the samples; refusals are not errors).
    pub exemplars: Vec<(Labels, strata_storage::Exemplar)>,
    pub metadata: Vec<MetricMetadata>,
    /// Samples carried.
    pub samples: usize,
}

/// Running estimate of the decoded heap against its cap.
pub(super) struct Budget {
    pub(super) used: usize,
    pub(super) cap: usize,
}

impl Budget {
    pub(super) fn take(&mut self, bytes: usize) -> Result<(), IngestError> {
        self.used = self.used.saturating_add(bytes);
        if self.used > self.cap {
            return Err(IngestError::TooManyElements {
                estimated: self.used,
                limit: self.cap,
            });
        }
        Ok(())
    }

    /// Widens the budget for a native histogram of `wire` bytes, to
    /// [`HEAP_PER_HISTOGRAM_BYTE`] per byte of it.
    pub(super) fn allow_histogram(&mut self, wire: usize) {
        self.cap = self.cap.saturating_add(
            wire.saturating_mul(HEAP_PER_HISTOGRAM_BYTE.saturating_sub(HEAP_PER_BODY_BYTE)),
        );
    }
}

/// Decompresses, decodes and validates a request body within the heap budget.
pub fn decode_bounded(body: &[u8], limits: &Limits) -> Result<Decoded, IngestError> {
    let raw = decompress(body)?;
    let mut budget = Budget {
        used: 0,
        cap: raw.len().saturating_mul(HEAP_PER_BODY_BYTE).max(HEAP_FLOOR),
    };
    let mut out = Decoded::default();
    let mut seen_md: HashSet<(i32, String, String, String)> = HashSet::new();
    let mut buf: &[u8] = &raw;
    let mut index = 0usize;
    while buf.has_remaining() {
        let (tag, wt) = decode_key(&mut buf)?;
        match (tag, wt) {
            (1, WireType::LengthDelimited) => {
                let el = take_len_delimited(&mut buf)?;
                let (series, exemplars) = decode_series(el, index, limits, &mut budget)?;
                if let Some(s) = series {
                    out.samples += s.len();
                    out.batch.push(s);
                }
                out.exemplars.extend(exemplars);
                index += 1;
            }
            (3, WireType::LengthDelimited) => {
                let el = take_len_delimited(&mut buf)?;
                let md = MetricMetadata::decode(el)?;
                if md.metric_family_name.is_empty() || seen_md.len() >= MAX_METADATA_PER_REQUEST {
                    continue;
                }
                let key = (
                    md.r#type,
                    md.metric_family_name.clone(),
                    md.help.clone(),
                    md.unit.clone(),
                );
                if seen_md.insert(key) {
                    budget.take(el.len() + std::mem::size_of::<MetricMetadata>() * 2)?;
                    out.metadata.push(md);
                }
            }
            _ => skip_field(wt, tag, &mut buf, DecodeContext::default())?,
        }
    }
    Ok(out)
}

/// One native histogram of a series (1.0 field 4, 2.0 field 3), within the budget: kept
/// when valid, else its reason noted (the first one refuses the request).
pub(super) fn decode_histogram(
    el: &[u8],
    budget: &mut Budget,
    histograms: &mut Vec<(i64, std::sync::Arc<strata_vocab::FloatHistogram>)>,
    invalid: &mut Option<String>,
) -> Result<(), IngestError> {
    budget.allow_histogram(el.len());
    let h = crate::histogram_proto::Histogram::decode(el)?;
    match h.to_float() {
        Ok((t, h)) => {
            budget.take(h.size_bytes() + 16)?;
            histograms.push((t, std::sync::Arc::new(h)));
        }
        Err(e) => {
            invalid.get_or_insert(e.0);
        }
    }
    Ok(())
}

/// The bytes of one length-delimited field, advancing `buf` past them.
pub(super) fn take_len_delimited<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], IngestError> {
    let len = decode_varint(buf)?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= buf.len())
        .ok_or(IngestError::Truncated)?;
    let (el, rest) = buf.split_at(len);
    *buf = rest;
    Ok(el)
}

/// An exemplar's labels (validated like a series' labels) as stored, charging the budget.
pub(super) fn exemplar_of(
    index: usize,
    pairs: &[(&str, &str)],
    value: f64,
    ts: i64,
    budget: &mut Budget,
) -> Result<strata_storage::Exemplar, IngestError> {
    // Names valid and distinct; no metric name needed.
    let checked = pairs.iter().enumerate().try_for_each(|(i, (n, _))| {
        Labels::validate_name(n)?;
        if pairs[..i].iter().any(|(m, _)| m == n) {
            return Err(format!("duplicate label name {n:?}"));
        }
        Ok(())
    });
    checked.map_err(|reason| IngestError::InvalidSeries {
        index,
        labels: describe_short(pairs),
        reason: format!("invalid exemplar labels: {reason}"),
    })?;
    budget.take(
        64 + pairs
            .iter()
            .map(|(n, v)| LABEL_OVERHEAD + n.len() + v.len())
            .sum::<usize>(),
    )?;
    Ok(strata_storage::Exemplar {
        labels: Labels::from_pairs(pairs.iter().copied()),
        value,
        ts,
        has_ts: true,
    })
}

/// Exemplars decoded with the series, to be paired with its labels.
type SeriesExemplars = Vec<(Labels, strata_storage::Exemplar)>;

/// One `TimeSeries`: labels validated, samples sorted (`None` when it carries no sample),
/// and its exemplars.
fn decode_series(
    mut buf: &[u8],
    index: usize,
    limits: &Limits,
    budget: &mut Budget,
) -> Result<(Option<SeriesSamples>, SeriesExemplars), IngestError> {
    let mut exemplars: Vec<strata_storage::Exemplar> = Vec::new();
    let mut labels: Vec<Label> = Vec::new();
    let mut samples: Vec<(i64, f64)> = Vec::new();
    let mut histograms: Vec<(i64, std::sync::Arc<strata_vocab::FloatHistogram>)> = Vec::new();
    let mut invalid: Option<String> = None;
    while buf.has_remaining() {
        let (tag, wt) = decode_key(&mut buf)?;
        match (tag, wt) {
            (1, WireType::LengthDelimited) => {
                let el = take_len_delimited(&mut buf)?;
                let l = Label::decode(el)?;
                budget.take(LABEL_OVERHEAD + l.name.len() + l.value.len())?;
                labels.push(l);
            }
            (2, WireType::LengthDelimited) => {
                let el = take_len_delimited(&mut buf)?;
                let s = Sample::decode(el)?;
                budget.take(std::mem::size_of::<(i64, f64)>())?;
                samples.push((s.timestamp, s.value));
            }
            (4, WireType::LengthDelimited) => {
                let el = take_len_delimited(&mut buf)?;
                decode_histogram(el, budget, &mut histograms, &mut invalid)?;
            }
            (3, WireType::LengthDelimited) => {
                let el = take_len_delimited(&mut buf)?;
                let e = super::Exemplar::decode(el)?;
                let pairs: Vec<(&str, &str)> = e
                    .labels
                    .iter()
                    .map(|l| (l.name.as_str(), l.value.as_str()))
                    .collect();
                exemplars.push(exemplar_of(index, &pairs, e.value, e.timestamp, budget)?);
            }
            _ => skip_field(wt, tag, &mut buf, DecodeContext::default())?,
        }
    }
    let pairs: Vec<(&str, &str)> = labels
        .iter()
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect();
    check_series(index, &pairs, limits)?;
    let series_labels = Labels::from_pairs(pairs.iter().copied());
    let exemplars: SeriesExemplars = exemplars
        .into_iter()
        .map(|e| (series_labels.clone(), e))
        .collect();
    if let Some(reason) = invalid {
        return Err(IngestError::InvalidSeries {
            index,
            labels: describe_short(&pairs),
            reason: format!("invalid histogram: {reason}"),
        });
    }
    if samples.is_empty() && histograms.is_empty() {
        return Ok((None, exemplars));
    }
    budget.take(std::mem::size_of::<SeriesSamples>())?;
    samples.sort_by_key(|s| s.0);
    histograms.sort_by_key(|s| s.0);
    Ok((
        Some(SeriesSamples {
            histograms,
            labels: series_labels,
            samples,
        }),
        exemplars,
    ))
}

/// A series' labels checked: valid names and values, and within Prometheus's limits;
/// the error names the series (by its place in the request) and the reason.
pub(super) fn check_series(
    index: usize,
    pairs: &[(&str, &str)],
    limits: &Limits,
) -> Result<(), IngestError> {
    Labels::validate_pairs(pairs)
        .and_then(|()| check_limits(pairs, limits))
        .map_err(|reason| IngestError::InvalidSeries {
            index,
            labels: describe_short(pairs),
            reason,
        })
}

/// Prometheus's label limits, with its error texts.
fn check_limits(pairs: &[(&str, &str)], limits: &Limits) -> Result<(), String> {
    let metric = pairs
        .iter()
        .find(|(n, _)| *n == strata_storage::METRIC_NAME)
        .map_or("", |(_, v)| v);
    let metric = clip(metric);
    if limits.label_limit > 0 && pairs.len() > limits.label_limit {
        return Err(format!(
            "label_limit exceeded (metric: {metric}, number of labels: {}, limit: {})",
            pairs.len(),
            limits.label_limit
        ));
    }
    for (n, v) in pairs {
        if limits.label_name_length_limit > 0 && n.len() > limits.label_name_length_limit {
            return Err(format!(
                "label_name_length_limit exceeded (metric: {metric}, label name: {}, length: {}, limit: {})",
                clip(n),
                n.len(),
                limits.label_name_length_limit
            ));
        }
        if limits.label_value_length_limit > 0 && v.len() > limits.label_value_length_limit {
            return Err(format!(
                "label_value_length_limit exceeded (metric: {metric}, label name: {}, value: {:?}, length: {}, limit: {})",
                clip(n),
                clip(v),
                v.len(),
                limits.label_value_length_limit
            ));
        }
    }
    Ok(())
}

/// The first 50 characters, as Prometheus's `%.50s`.
fn clip(s: &str) -> &str {
    match s.char_indices().nth(50) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// A label set for an error message, each value clipped (a 300 KB value is not echoed).
pub(super) fn describe_short(pairs: &[(&str, &str)]) -> String {
    let clipped: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (clip(n), clip(v))).collect();
    describe(&clipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_write::{TimeSeries, WriteRequest, encode};

    fn series(name: &str, samples: usize) -> TimeSeries {
        TimeSeries {
            labels: vec![Label {
                name: "__name__".into(),
                value: name.into(),
            }],
            samples: (0..samples)
                .map(|i| Sample {
                    value: i as f64,
                    timestamp: i as i64 * 1000,
                })
                .collect(),
        }
    }

    #[test]
    fn a_normal_request_decodes_like_prost() {
        let req = WriteRequest {
            timeseries: vec![series("a", 3), series("b", 0), series("c", 1)],
            metadata: vec![],
        };
        let d = decode_bounded(&encode(&req), &Limits::default()).expect("valid");
        assert_eq!(d.batch.len(), 2);
        assert_eq!(d.samples, 4);
        let want: Vec<SeriesSamples> = req
            .timeseries
            .iter()
            .filter(|ts| !ts.samples.is_empty())
            .map(|ts| SeriesSamples {
                histograms: Vec::new(),
                labels: Labels::from_pairs(
                    ts.labels
                        .iter()
                        .map(|l| (l.name.as_str(), l.value.as_str()))
                        .collect::<Vec<_>>(),
                ),
                samples: ts.samples.iter().map(|s| (s.timestamp, s.value)).collect(),
            })
            .collect();
        assert_eq!(d.batch, want);
    }

    #[test]
    fn empty_metadata_costs_nothing_and_duplicates_are_kept_once() {
        let mut req = WriteRequest {
            timeseries: vec![],
            metadata: vec![MetricMetadata::default(); 100_000],
        };
        let md = MetricMetadata {
            r#type: 1,
            metric_family_name: "x_total".into(),
            help: "h".into(),
            unit: String::new(),
        };
        req.metadata.extend(std::iter::repeat_n(md, 1000));
        let d = decode_bounded(&encode(&req), &Limits::default()).expect("valid");
        assert_eq!(d.metadata.len(), 1);
    }

    #[test]
    fn a_body_of_empty_samples_is_refused_by_its_heap() {
        // One series, 4M empty samples: 8 MB on the wire, 64 MB decoded.
        let mut ts = series("a", 0);
        ts.samples = vec![Sample::default(); 4 << 20];
        let req = WriteRequest {
            timeseries: vec![ts],
            metadata: vec![],
        };
        let e = decode_bounded(&encode(&req), &Limits::default()).expect_err("too many");
        assert!(matches!(e, IngestError::TooManyElements { .. }), "{e}");
    }

    #[test]
    fn label_limits_use_prometheus_errors() {
        let mut ts = series("m", 1);
        ts.labels.push(Label {
            name: "long".into(),
            value: "x".repeat(100),
        });
        let req = WriteRequest {
            timeseries: vec![ts],
            metadata: vec![],
        };
        let limits = Limits {
            label_value_length_limit: 10,
            ..Limits::default()
        };
        let e = decode_bounded(&encode(&req), &limits).expect_err("too long");
        assert!(
            e.to_string()
                .contains("label_value_length_limit exceeded (metric: m, label name: long"),
            "{e}"
        );
        let limits = Limits {
            label_limit: 1,
            ..Limits::default()
        };
        let e = decode_bounded(&encode(&req), &limits).expect_err("too many labels");
        assert!(e.to_string().contains("label_limit exceeded"), "{e}");
    }
}
