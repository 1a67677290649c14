//! Remote Write 2.0 (`io.prometheus.write.v2.Request`): a symbols table and series whose
//! labels, metadata and exemplar labels are references into it. Decoded within the same
//! heap budget as 1.0 (see `bounded`), element by element, and checked against the
//! specification's rules: the table starts with the empty string, label references come in
//! pairs and point into the table. Float samples, native histograms, exemplars and metadata
//! are kept.

use std::collections::HashSet;

use prost::Message;
use prost::bytes::Buf;
use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};
use strata_storage::{Labels, SeriesSamples};

use super::bounded::{Budget, HEAP_FLOOR, LABEL_OVERHEAD, check_series, take_len_delimited};
use super::{HEAP_PER_BODY_BYTE, Limits, MAX_METADATA_PER_REQUEST, MetricMetadata, Sample};
use crate::error::IngestError;

/// The `Content-Type` `proto=` value of Remote Write 2.0.
pub const PROTO: &str = "io.prometheus.write.v2.Request";

/// `io.prometheus.write.v2.Request`, for senders (the receiver decodes element by element).
#[derive(Clone, PartialEq, Message)]
pub struct Request {
    #[prost(string, repeated, tag = "4")]
    pub symbols: Vec<String>,
    #[prost(message, repeated, tag = "5")]
    pub timeseries: Vec<TimeSeries>,
}

/// `io.prometheus.write.v2.TimeSeries` (the fields Strata sends).
#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub histograms: Vec<crate::histogram_proto::Histogram>,
    #[prost(message, repeated, tag = "4")]
    pub exemplars: Vec<super::ExemplarV2>,
    #[prost(message, optional, tag = "5")]
    pub metadata: Option<Metadata>,
}

/// `io.prometheus.write.v2.Metadata`.
#[derive(Clone, PartialEq, Message)]
pub struct Metadata {
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(uint32, tag = "3")]
    pub help_ref: u32,
    #[prost(uint32, tag = "4")]
    pub unit_ref: u32,
}

/// A symbols table being built: the empty string first, each string once.
#[derive(Debug)]
pub struct Symbols {
    refs: std::collections::HashMap<String, u32>,
    list: Vec<String>,
}

impl Default for Symbols {
    fn default() -> Self {
        Symbols {
            refs: std::collections::HashMap::from([(String::new(), 0)]),
            list: vec![String::new()],
        }
    }
}

impl Symbols {
    /// The reference of `s`, added if new.
    pub fn get(&mut self, s: &str) -> u32 {
        if let Some(r) = self.refs.get(s) {
            return *r;
        }
        let r = self.list.len() as u32;
        self.refs.insert(s.to_string(), r);
        self.list.push(s.to_string());
        r
    }

    /// The table.
    pub fn into_list(self) -> Vec<String> {
        self.list
    }
}

/// A decoded 2.0 request.
#[derive(Debug, Default)]
pub struct DecodedV2 {
    /// Series with float samples.
    pub batch: Vec<SeriesSamples>,
    /// Metadata of the series that carried it (deduplicated).
    pub metadata: Vec<MetricMetadata>,
    /// Float samples carried.
    pub samples: usize,
    /// Native histogram samples carried.
    pub histograms: usize,
    /// Exemplars with their series (stored after the samples; refusals are not errors).
    pub exemplars: Vec<(Labels, strata_storage::Exemplar)>,
}

fn bad(msg: String) -> IngestError {
    IngestError::InvalidSeries {
        index: 0,
        labels: String::new(),
        reason: msg,
    }
}

/// Decompresses and decodes a 2.0 request body within the heap budget.
pub fn decode(body: &[u8], limits: &Limits) -> Result<DecodedV2, IngestError> {
    let raw = super::decompress(body)?;
    let mut budget = Budget {
        used: 0,
        cap: raw.len().saturating_mul(HEAP_PER_BODY_BYTE).max(HEAP_FLOOR),
    };
    let mut symbols: Vec<&str> = Vec::new();
    let mut series: Vec<&[u8]> = Vec::new();
    let mut buf: &[u8] = &raw;
    while buf.has_remaining() {
        let (tag, wt) = decode_key(&mut buf)?;
        match (tag, wt) {
            (4, WireType::LengthDelimited) => {
                let el = take_len_delimited(&mut buf)?;
                let s = std::str::from_utf8(el)
                    .map_err(|_| bad("a symbol is not valid UTF-8".into()))?;
                budget.take(16)?;
                symbols.push(s);
            }
            (5, WireType::LengthDelimited) => {
                budget.take(16)?;
                series.push(take_len_delimited(&mut buf)?);
            }
            _ => skip_field(wt, tag, &mut buf, DecodeContext::default())?,
        }
    }
    if symbols.first().is_some_and(|s| !s.is_empty()) {
        return Err(bad(
            "the symbols table must start with an empty string".into()
        ));
    }
    let mut out = DecodedV2::default();
    let mut seen_md: HashSet<(i32, String, String, String)> = HashSet::new();
    for (index, el) in series.into_iter().enumerate() {
        decode_series(
            el,
            index,
            &symbols,
            limits,
            &mut budget,
            &mut out,
            &mut seen_md,
        )?;
    }
    Ok(out)
}

/// The label pairs of `refs`.
fn resolve<'a>(
    refs: &[u32],
    symbols: &[&'a str],
    index: usize,
) -> Result<Vec<(&'a str, &'a str)>, IngestError> {
    if !refs.len().is_multiple_of(2) {
        return Err(IngestError::InvalidSeries {
            index,
            labels: String::new(),
            reason: format!("labels_refs has an odd length ({})", refs.len()),
        });
    }
    let sym = |r: u32| {
        symbols
            .get(r as usize)
            .copied()
            .ok_or_else(|| IngestError::InvalidSeries {
                index,
                labels: String::new(),
                reason: format!(
                    "labels_refs {r} is out of the symbols table (of {} entries)",
                    symbols.len()
                ),
            })
    };
    refs.chunks(2)
        .map(|p| Ok((sym(p[0])?, sym(p[1])?)))
        .collect()
}

/// Reads packed or unpacked `repeated uint32`.
fn read_refs(
    wt: WireType,
    buf: &mut &[u8],
    out: &mut Vec<u32>,
    budget: &mut Budget,
) -> Result<(), IngestError> {
    match wt {
        WireType::LengthDelimited => {
            let mut el = take_len_delimited(buf)?;
            while el.has_remaining() {
                budget.take(4)?;
                out.push(decode_varint(&mut el)? as u32);
            }
        }
        _ => {
            budget.take(4)?;
            out.push(decode_varint(buf)? as u32);
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn decode_series(
    mut buf: &[u8],
    index: usize,
    symbols: &[&str],
    limits: &Limits,
    budget: &mut Budget,
    out: &mut DecodedV2,
    seen_md: &mut HashSet<(i32, String, String, String)>,
) -> Result<(), IngestError> {
    let mut refs: Vec<u32> = Vec::new();
    let mut samples: Vec<(i64, f64)> = Vec::new();
    let mut histograms: Vec<(i64, std::sync::Arc<strata_vocab::FloatHistogram>)> = Vec::new();
    let mut invalid: Option<String> = None;
    let mut metadata: Option<(i32, u32, u32)> = None;
    let mut exemplars: Vec<(Vec<u32>, f64, i64)> = Vec::new();
    while buf.has_remaining() {
        let (tag, wt) = decode_key(&mut buf)?;
        match (tag, wt) {
            (1, _) => read_refs(wt, &mut buf, &mut refs, budget)?,
            (2, WireType::LengthDelimited) => {
                let el = take_len_delimited(&mut buf)?;
                let s = Sample::decode(el)?;
                budget.take(std::mem::size_of::<(i64, f64)>())?;
                samples.push((s.timestamp, s.value));
            }
            (3, WireType::LengthDelimited) => {
                let el = take_len_delimited(&mut buf)?;
                super::bounded::decode_histogram(el, budget, &mut histograms, &mut invalid)?;
            }
            (4, WireType::LengthDelimited) => {
                let el = take_len_delimited(&mut buf)?;
                let e = super::ExemplarV2::decode(el)?;
                budget.take(64 + 4 * e.labels_refs.len())?;
                exemplars.push((e.labels_refs, e.value, e.timestamp));
            }
            (5, WireType::LengthDelimited) => {
                let mut el = take_len_delimited(&mut buf)?;
                let (mut t, mut help, mut unit) = (0i32, 0u32, 0u32);
                while el.has_remaining() {
                    let (ftag, fwt) = decode_key(&mut el)?;
                    match (ftag, fwt) {
                        (1, WireType::Varint) => t = decode_varint(&mut el)? as i32,
                        (3, WireType::Varint) => help = decode_varint(&mut el)? as u32,
                        (4, WireType::Varint) => unit = decode_varint(&mut el)? as u32,
                        _ => skip_field(fwt, ftag, &mut el, DecodeContext::default())?,
                    }
                }
                metadata = Some((t, help, unit));
            }
            _ => skip_field(wt, tag, &mut buf, DecodeContext::default())?,
        }
    }
    let pairs = resolve(&refs, symbols, index)?;
    check_series(index, &pairs, limits)?;
    if let Some(reason) = invalid {
        return Err(IngestError::InvalidSeries {
            index,
            labels: super::describe(&pairs),
            reason: format!("invalid histogram: {reason}"),
        });
    }
    budget.take(
        pairs
            .iter()
            .map(|(n, v)| LABEL_OVERHEAD + n.len() + v.len())
            .sum(),
    )?;
    if let Some((t, help, unit)) = metadata
        && seen_md.len() < MAX_METADATA_PER_REQUEST
    {
        let name = pairs
            .iter()
            .find(|(n, _)| *n == strata_storage::METRIC_NAME)
            .map_or("", |(_, v)| *v);
        let text = |r: u32| symbols.get(r as usize).copied().unwrap_or_default();
        let md = MetricMetadata {
            r#type: t,
            metric_family_name: name.to_string(),
            help: text(help).to_string(),
            unit: text(unit).to_string(),
        };
        let key = (
            md.r#type,
            md.metric_family_name.clone(),
            md.help.clone(),
            md.unit.clone(),
        );
        if !name.is_empty()
            && (t != 0 || !md.help.is_empty() || !md.unit.is_empty())
            && seen_md.insert(key)
        {
            budget.take(md.help.len() + md.unit.len() + name.len() + 128)?;
            out.metadata.push(md);
        }
    }
    let series_labels = Labels::from_pairs(pairs.iter().copied());
    for (refs, value, ts) in exemplars {
        let epairs = resolve(&refs, symbols, index)?;
        let e = super::bounded::exemplar_of(index, &epairs, value, ts, budget)?;
        out.exemplars.push((series_labels.clone(), e));
    }
    if samples.is_empty() && histograms.is_empty() {
        return Ok(());
    }
    samples.sort_by_key(|s| s.0);
    histograms.sort_by_key(|s| s.0);
    out.samples += samples.len();
    out.histograms += histograms.len();
    out.batch.push(SeriesSamples {
        histograms,
        labels: series_labels,
        samples,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: usize, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// A request with the symbols `"", "__name__", "m"` and one series of `samples`
    /// encoded samples (each `sample` bytes).
    fn request(samples: usize, sample: &[u8]) -> Vec<u8> {
        let mut ts = vec![0x0a, 0x02, 0x01, 0x02];
        for _ in 0..samples {
            ts.push(0x12);
            varint(sample.len(), &mut ts);
            ts.extend_from_slice(sample);
        }
        let mut raw = vec![0x22, 0x00, 0x22, 0x08];
        raw.extend_from_slice(b"__name__");
        raw.extend_from_slice(&[0x22, 0x01, b'm', 0x2a]);
        varint(ts.len(), &mut raw);
        raw.extend_from_slice(&ts);
        snap::raw::Encoder::new()
            .compress_vec(&raw)
            .unwrap_or_default()
    }

    #[test]
    fn a_normal_request_decodes() {
        // value 1.5 (field 1, fixed64), timestamp 1000 (field 2, varint).
        let mut s = vec![0x09];
        s.extend_from_slice(&1.5f64.to_le_bytes());
        s.extend_from_slice(&[0x10, 0xe8, 0x07]);
        let d = decode(&request(3, &s), &Limits::default()).expect("valid");
        assert_eq!(d.samples, 3);
        assert_eq!(d.batch.len(), 1);
        assert_eq!(d.batch[0].samples[0], (1000, 1.5));
    }

    #[test]
    fn a_body_of_empty_samples_is_refused_by_its_heap() {
        // 4M empty samples: 8 MB on the wire, 64 MB decoded.
        let e = decode(&request(4 << 20, &[]), &Limits::default()).expect_err("too many");
        assert!(matches!(e, IngestError::TooManyElements { .. }), "{e}");
    }
}
