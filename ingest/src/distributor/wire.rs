//! A remote-write 1.0 `WriteRequest` cut at the wire level: each `TimeSeries` kept as the
//! bytes it arrived in (labels, samples, exemplars, native histograms, created timestamps:
//! whatever it holds is forwarded untouched), with the hash of its label set; `metadata`
//! entries likewise. Requests for ingesters are re-framed from these slices.

use std::ops::Range;

use prost::Message;

use super::DistributorError;
use crate::remote_write::Label;

/// A request cut into its fields.
#[derive(Debug, Default)]
pub struct Split {
    /// Per `TimeSeries`: the hash of its labels and the byte range of its payload.
    pub series: Vec<(u64, Range<usize>)>,
    /// The byte ranges of the `MetricMetadata` payloads.
    pub metadata: Vec<Range<usize>>,
}

fn varint(buf: &[u8], at: &mut usize) -> Result<u64, DistributorError> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *buf
            .get(*at)
            .ok_or(DistributorError::Malformed("truncated varint"))?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(DistributorError::Malformed("varint too long"))
}

/// The fields of a message: `(tag, wire type, payload range)` (the payload of a varint or
/// fixed field is its bytes).
fn fields(buf: &[u8]) -> Result<Vec<(u64, u8, Range<usize>)>, DistributorError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let key = varint(buf, &mut at)?;
        let (tag, wt) = (key >> 3, (key & 7) as u8);
        let start = at;
        match wt {
            0 => {
                varint(buf, &mut at)?;
            }
            1 => at += 8,
            2 => {
                let len = usize::try_from(varint(buf, &mut at)?)
                    .map_err(|_| DistributorError::Malformed("length overflow"))?;
                let s = at;
                at = at
                    .checked_add(len)
                    .ok_or(DistributorError::Malformed("length overflow"))?;
                if at > buf.len() {
                    return Err(DistributorError::Malformed("truncated field"));
                }
                out.push((tag, wt, s..at));
                continue;
            }
            5 => at += 4,
            _ => return Err(DistributorError::Malformed("unsupported wire type")),
        }
        if at > buf.len() {
            return Err(DistributorError::Malformed("truncated field"));
        }
        out.push((tag, wt, start..at));
    }
    Ok(out)
}

/// The hash of a label set (labels sorted by name; the order they arrive in does not
/// matter).
pub fn labels_hash(labels: &mut [Label]) -> u64 {
    strata_ring::labels_hash(labels.iter().map(|l| (l.name.as_str(), l.value.as_str())))
}

/// Cuts a decompressed `WriteRequest`.
pub fn split(buf: &[u8]) -> Result<Split, DistributorError> {
    let mut out = Split::default();
    for (tag, wt, r) in fields(buf)? {
        match (tag, wt) {
            (1, 2) => {
                let ts = &buf[r.clone()];
                let mut labels = Vec::new();
                for (t, w, lr) in fields(ts)? {
                    if (t, w) == (1, 2) {
                        labels.push(
                            Label::decode(&ts[lr])
                                .map_err(|_| DistributorError::Malformed("bad label"))?,
                        );
                    }
                }
                if labels.is_empty() {
                    return Err(DistributorError::Malformed("a series without labels"));
                }
                out.series.push((labels_hash(&mut labels), r));
            }
            (3, 2) => out.metadata.push(r),
            _ => {}
        }
    }
    Ok(out)
}

/// The span of the sample timestamps of one `TimeSeries` payload (2.0's when `v2`): its
/// float samples (field 2, timestamp field 2) and native histograms (field 4 in 1.0, 3 in
/// 2.0; timestamp field 15).
pub fn time_span(ts: &[u8], v2: bool) -> Result<Option<(i64, i64)>, DistributorError> {
    let histograms = if v2 { 3 } else { 4 };
    let mut span: Option<(i64, i64)> = None;
    for (t, w, r) in fields(ts)? {
        let want = match (t, w) {
            (2, 2) => 2,
            (h, 2) if h == histograms => 15,
            _ => continue,
        };
        let msg = &ts[r];
        for (f, fw, fr) in fields(msg)? {
            if (f, fw) == (want, 0) {
                let mut at = fr.start;
                let v = varint(msg, &mut at)? as i64;
                span = Some(span.map_or((v, v), |(a, b)| (a.min(v), b.max(v))));
            }
        }
    }
    Ok(span)
}

/// A remote-write 2.0 `Request` cut into its fields: the symbols table (kept whole, so
/// that series are forwarded as the bytes they came in, their references unchanged) and
/// each `TimeSeries` with the hash of its resolved labels.
#[derive(Debug, Default)]
pub struct SplitV2 {
    /// The byte ranges of the `symbols` entries, in order.
    pub symbols: Vec<Range<usize>>,
    /// Per `TimeSeries`: the hash of its labels and the byte range of its payload.
    pub series: Vec<(u64, Range<usize>)>,
    /// Float samples, native histograms and exemplars the request carries.
    pub written: (usize, usize, usize),
}

/// Cuts a decompressed 2.0 `Request`.
pub fn split_v2(buf: &[u8]) -> Result<SplitV2, DistributorError> {
    let mut out = SplitV2::default();
    let mut series = Vec::new();
    for (tag, wt, r) in fields(buf)? {
        match (tag, wt) {
            (4, 2) => out.symbols.push(r),
            (5, 2) => series.push(r),
            _ => {}
        }
    }
    let symbol = |i: u64| -> Result<&str, DistributorError> {
        let r = usize::try_from(i)
            .ok()
            .and_then(|i| out.symbols.get(i))
            .ok_or(DistributorError::Malformed(
                "a label reference outside the symbols table",
            ))?;
        std::str::from_utf8(&buf[r.clone()])
            .map_err(|_| DistributorError::Malformed("a symbol that is not UTF-8"))
    };
    if out.symbols.first().is_some_and(|r| !r.is_empty()) {
        return Err(DistributorError::Malformed(
            "the symbols table must start with an empty string",
        ));
    }
    for r in series {
        let ts = &buf[r.clone()];
        let mut refs: Vec<u64> = Vec::new();
        for (t, w, fr) in fields(ts)? {
            match (t, w) {
                (1, 2) => {
                    let mut at = fr.start;
                    while at < fr.end {
                        refs.push(varint(ts, &mut at)?);
                    }
                }
                (1, 0) => {
                    let mut at = fr.start;
                    refs.push(varint(ts, &mut at)?);
                }
                (2, 2) => out.written.0 += 1,
                (3, 2) => out.written.1 += 1,
                (4, 2) => out.written.2 += 1,
                _ => {}
            }
        }
        if refs.is_empty() || !refs.len().is_multiple_of(2) {
            return Err(DistributorError::Malformed(
                "a series without label reference pairs",
            ));
        }
        let mut pairs = Vec::with_capacity(refs.len() / 2);
        for p in refs.chunks(2) {
            pairs.push((symbol(p[0])?, symbol(p[1])?));
        }
        out.series.push((strata_ring::labels_hash(pairs), r));
    }
    Ok(out)
}

/// A 2.0 `Request` of the whole symbols table and the given series of `buf`,
/// snappy-compressed.
pub fn frame_v2<'a>(
    buf: &[u8],
    symbols: &[Range<usize>],
    series: impl Iterator<Item = &'a Range<usize>>,
) -> Vec<u8> {
    let mut out = Vec::new();
    for r in symbols {
        put(&mut out, 4, buf, r);
    }
    for r in series {
        put(&mut out, 5, buf, r);
    }
    snap::raw::Encoder::new()
        .compress_vec(&out)
        .unwrap_or_default()
}

/// Appends field `tag` with the payload `buf[r]`.
fn put(out: &mut Vec<u8>, tag: u32, buf: &[u8], r: &Range<usize>) {
    prost::encoding::encode_key(tag, prost::encoding::WireType::LengthDelimited, out);
    prost::encoding::encode_varint(r.len() as u64, out);
    out.extend_from_slice(&buf[r.clone()]);
}

/// A `WriteRequest` of the given series and metadata payloads of `buf`, snappy-compressed.
pub fn frame<'a>(
    buf: &[u8],
    series: impl Iterator<Item = &'a Range<usize>>,
    metadata: &[Range<usize>],
) -> Vec<u8> {
    let mut out = Vec::new();
    for r in series {
        put(&mut out, 1, buf, r);
    }
    for r in metadata {
        put(&mut out, 3, buf, r);
    }
    snap::raw::Encoder::new()
        .compress_vec(&out)
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::remote_write::{MetricMetadata, Sample, TimeSeries, WriteRequest};

    #[test]
    fn split_and_frame_round_trip() {
        let ts = |i: usize| TimeSeries {
            labels: vec![
                Label {
                    name: "job".into(),
                    value: "x".into(),
                },
                Label {
                    name: "__name__".into(),
                    value: format!("m{i}"),
                },
            ],
            samples: vec![Sample {
                value: i as f64,
                timestamp: 1000,
            }],
        };
        let req = WriteRequest {
            timeseries: (0..5).map(ts).collect(),
            metadata: vec![MetricMetadata {
                r#type: 1,
                metric_family_name: "m0".into(),
                help: "h".into(),
                unit: String::new(),
            }],
        };
        let raw = req.encode_to_vec();
        let s = split(&raw).unwrap();
        assert_eq!(s.series.len(), 5);
        assert_eq!(s.metadata.len(), 1);
        // The hash ignores label order.
        let mut a = ts(3).labels;
        let mut b: Vec<Label> = a.iter().rev().cloned().collect();
        assert_eq!(labels_hash(&mut a), labels_hash(&mut b));
        assert_eq!(s.series[3].0, labels_hash(&mut ts(3).labels));
        // Series 1 and 3 with the metadata, re-framed.
        let body = frame(
            &raw,
            [&s.series[1].1, &s.series[3].1].into_iter(),
            &s.metadata,
        );
        let back = crate::remote_write::decode(&body).unwrap();
        assert_eq!(back.timeseries, vec![ts(1), ts(3)]);
        assert_eq!(back.metadata, req.metadata);
        // The span of a series' sample times (negative ones included).
        let mut t = ts(2);
        t.samples.push(Sample {
            value: 1.0,
            timestamp: -5,
        });
        t.samples.push(Sample {
            value: 1.0,
            timestamp: 7_000_000_000_000,
        });
        assert_eq!(
            time_span(&t.encode_to_vec(), false).unwrap(),
            Some((-5, 7_000_000_000_000))
        );
        assert_eq!(time_span(&[], false).unwrap(), None);
        // 2.0: the symbols table kept whole, series as they came, labels hashed resolved.
        let mut sy = crate::remote_write::v2::Symbols::default();
        let v2 = |i: usize, sy: &mut crate::remote_write::v2::Symbols| {
            crate::remote_write::v2::TimeSeries {
                labels_refs: vec![
                    sy.get("__name__"),
                    sy.get(&format!("m{i}")),
                    sy.get("job"),
                    sy.get("x"),
                ],
                samples: vec![Sample {
                    value: 1.0,
                    timestamp: 5,
                }],
                histograms: vec![],
                exemplars: vec![],
                metadata: None,
            }
        };
        let series: Vec<_> = (0..4).map(|i| v2(i, &mut sy)).collect();
        let req2 = crate::remote_write::v2::Request {
            symbols: sy.into_list(),
            timeseries: series.clone(),
        };
        let raw2 = req2.encode_to_vec();
        let s2 = split_v2(&raw2).unwrap();
        assert_eq!(s2.series.len(), 4);
        assert_eq!(s2.written, (4, 0, 0));
        assert_eq!(s2.series[3].0, labels_hash(&mut ts(3).labels));
        let body = frame_v2(&raw2, &s2.symbols, [&s2.series[2].1].into_iter());
        let back = crate::remote_write::v2::Request::decode(
            &snap::raw::Decoder::new().decompress_vec(&body).unwrap()[..],
        )
        .unwrap();
        assert_eq!(back.symbols, req2.symbols);
        assert_eq!(back.timeseries, vec![series[2].clone()]);
        // References outside the table, odd ones, a table not starting empty: refused.
        let mut bad = req2.clone();
        bad.timeseries[0].labels_refs.push(99);
        bad.timeseries[0].labels_refs.push(1);
        assert!(split_v2(&bad.encode_to_vec()).is_err());
        bad.timeseries[0].labels_refs.pop();
        assert!(split_v2(&bad.encode_to_vec()).is_err());
        let mut bad = req2.clone();
        bad.symbols[0] = "x".into();
        assert!(split_v2(&bad.encode_to_vec()).is_err());
        // Garbage is refused.
        assert!(split(&[0x0a, 0x05, 0x01]).is_err());
        assert!(split(&[0x0a, 0x00]).is_err());
    }
}
