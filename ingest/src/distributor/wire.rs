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

/// The span of the sample timestamps of one `TimeSeries` payload: its float samples
/// (field 2, timestamp field 2) and native histograms (field 4, timestamp field 15).
pub fn time_span(ts: &[u8]) -> Result<Option<(i64, i64)>, DistributorError> {
    let mut span: Option<(i64, i64)> = None;
    for (t, w, r) in fields(ts)? {
        let want = match (t, w) {
            (2, 2) => 2,
            (4, 2) => 15,
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

/// A `WriteRequest` of the given series and metadata payloads of `buf`, snappy-compressed.
pub fn frame<'a>(
    buf: &[u8],
    series: impl Iterator<Item = &'a Range<usize>>,
    metadata: &[Range<usize>],
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut put = |tag: u64, r: &Range<usize>| {
        prost::encoding::encode_key(
            tag as u32,
            prost::encoding::WireType::LengthDelimited,
            &mut out,
        );
        prost::encoding::encode_varint(r.len() as u64, &mut out);
        out.extend_from_slice(&buf[r.clone()]);
    };
    for r in series {
        put(1, r);
    }
    for r in metadata {
        put(3, r);
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
            time_span(&t.encode_to_vec()).unwrap(),
            Some((-5, 7_000_000_000_000))
        );
        assert_eq!(time_span(&[]).unwrap(), None);
        // Garbage is refused.
        assert!(split(&[0x0a, 0x05, 0x01]).is_err());
        assert!(split(&[0x0a, 0x00]).is_err());
    }
}
