//! What decoding an OTLP request would allocate, estimated from its wire form before it is
//! decoded: protobuf elements can be tiny on the wire and large in memory (an empty data
//! point is 2 bytes and over a hundred decoded), so every message and string of the
//! request's schema is counted, and a request whose estimate passes
//! [`HEAP_PER_BODY_BYTE`](crate::remote_write::HEAP_PER_BODY_BYTE) × its size is refused.
//! Exemplars are counted twice over: decoded, and as the labelled exemplar the translation
//! makes of each (its trace and span ids become hex label values).

use prost::bytes::Buf;
use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};

use crate::error::IngestError;

/// Estimated heap of one decoded message (the largest structs are about this size).
const MESSAGE_BYTES: usize = 128;
/// Estimated heap of the exemplar the translation makes of an `Exemplar` message (the
/// stored exemplar and its label set), besides the decoded message.
const EXEMPLAR_OUT_BYTES: usize = 96;
/// Deepest nesting walked (attribute values may nest).
const MAX_DEPTH: usize = 64;

/// The message types of the metrics schema that contain other messages.
#[derive(Clone, Copy)]
enum Kind {
    Request,
    ResourceMetrics,
    Resource,
    ScopeMetrics,
    Scope,
    Metric,
    Points,
    NumberPoint,
    HistogramPoint,
    ExpPoint,
    /// `ExponentialHistogramDataPoint.Buckets`: its packed counts decode to 16 bytes each.
    ExpBuckets,
    /// `Exemplar`: filtered attributes, and ids that become hex labels.
    Exemplar,
    SummaryPoint,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
    Leaf,
}

/// The kind of field `tag` of a `kind` message, if it is a message.
fn child(kind: Kind, tag: u32) -> Option<Kind> {
    use Kind::*;
    Some(match (kind, tag) {
        (Request, 1) => ResourceMetrics,
        (ResourceMetrics, 1) => Resource,
        (ResourceMetrics, 2) => ScopeMetrics,
        (Resource, 1) | (Scope, 3) => KeyValue,
        (ScopeMetrics, 1) => Scope,
        (ScopeMetrics, 2) => Metric,
        (Metric, 5 | 7 | 9 | 10 | 11) => Points,
        (NumberPoint, 7) | (HistogramPoint, 9) | (SummaryPoint, 7) | (ExpPoint, 1) => KeyValue,
        (ExpPoint, 8 | 9) => ExpBuckets,
        (NumberPoint, 5) | (HistogramPoint, 8) | (ExpPoint, 11) => Exemplar,
        (Exemplar, 7) => KeyValue,
        (SummaryPoint, 6) => Leaf,
        (KeyValue, 2) => AnyValue,
        (AnyValue, 5) => ArrayValue,
        (AnyValue, 6) => KeyValueList,
        (ArrayValue, 1) => AnyValue,
        (KeyValueList, 1) => KeyValue,
        _ => return None,
    })
}

/// The estimated decoded heap of a request, or an error once it passes `cap`.
pub(super) fn check(raw: &[u8], cap: usize) -> Result<usize, IngestError> {
    let mut used = 0usize;
    walk(raw, Kind::Request, None, 0, &mut used, cap)?;
    Ok(used)
}

fn walk(
    mut buf: &[u8],
    kind: Kind,
    points: Option<Kind>,
    depth: usize,
    used: &mut usize,
    cap: usize,
) -> Result<(), IngestError> {
    if depth > MAX_DEPTH {
        return Err(IngestError::Truncated);
    }
    let take = |n: usize, used: &mut usize| {
        *used = used.saturating_add(n);
        if *used > cap {
            return Err(IngestError::TooManyElements {
                estimated: *used,
                limit: cap,
            });
        }
        Ok(())
    };
    take(MESSAGE_BYTES, used)?;
    if matches!(kind, Kind::Exemplar) {
        take(EXEMPLAR_OUT_BYTES, used)?;
    }
    while buf.has_remaining() {
        let (tag, wt) = decode_key(&mut buf)?;
        if wt != WireType::LengthDelimited {
            skip_field(wt, tag, &mut buf, DecodeContext::default())?;
            continue;
        }
        let len = usize::try_from(decode_varint(&mut buf)?)
            .ok()
            .filter(|&l| l <= buf.len())
            .ok_or(IngestError::Truncated)?;
        let (el, rest) = buf.split_at(len);
        buf = rest;
        // A Gauge/Sum/Histogram/Summary's field 1 holds its points.
        let sub = match (kind, tag, points) {
            (Kind::Points, 1, Some(p)) => Some(p),
            _ => child(kind, tag),
        };
        match sub {
            Some(k) => {
                let points = match (kind, tag) {
                    (Kind::Metric, 5 | 7) => Some(Kind::NumberPoint),
                    (Kind::Metric, 9) => Some(Kind::HistogramPoint),
                    (Kind::Metric, 10) => Some(Kind::ExpPoint),
                    (Kind::Metric, 11) => Some(Kind::SummaryPoint),
                    (Kind::Metric, _) => Some(Kind::Leaf),
                    _ => None,
                };
                walk(el, k, points, depth + 1, used, cap)?;
            }
            // Bucket counts: a varint each on the wire, a sparse bucket (16 bytes) decoded;
            // as in remote write, histogram bytes may take `HEAP_PER_HISTOGRAM_BYTE` each,
            // so beyond the body's own allowance they are charged the difference only.
            None if matches!(kind, Kind::ExpBuckets) => {
                let per = 16usize.saturating_sub(
                    crate::remote_write::HEAP_PER_HISTOGRAM_BYTE
                        - crate::remote_write::HEAP_PER_BODY_BYTE,
                );
                take(len.saturating_mul(per.max(1)) + 24, used)?
            }
            // Span and trace ids: the bytes, then their hex label (name, value, header).
            None if matches!(kind, Kind::Exemplar) && matches!(tag, 4 | 5) => {
                take(len.saturating_mul(3) + 24 + 64, used)?
            }
            // Strings, bytes, packed numbers: their own size and a header.
            None => take(len + 24, used)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(tag: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![(tag << 3) | 2];
        let mut n = payload.len();
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out.extend_from_slice(payload);
        out
    }

    /// One gauge of `points` empty data points (2 bytes each on the wire).
    fn gauge(points: usize) -> Vec<u8> {
        let dps: Vec<u8> = std::iter::repeat_n([0x0a, 0x00], points)
            .flatten()
            .collect();
        let metric = [ld(1, b"m"), ld(5, &dps)].concat();
        let scope = ld(2, &metric);
        ld(1, &ld(2, &scope))
    }

    /// One sum point carrying `n` exemplars, each with `trace_id`.
    fn exemplars(n: usize, trace_id: &[u8]) -> Vec<u8> {
        let ex = ld(5, trace_id);
        let exs: Vec<u8> = std::iter::repeat_n(ld(5, &ex), n).flatten().collect();
        let sum = ld(1, &exs);
        let metric = [ld(1, b"m"), ld(7, &sum)].concat();
        ld(1, &ld(2, &ld(2, &metric)))
    }

    #[test]
    fn exemplars_count_against_the_same_bound() {
        let cap = |raw: &[u8]| raw.len() * crate::remote_write::HEAP_PER_BODY_BYTE;
        // A few exemplars with trace ids pass.
        let few = exemplars(10, &[7; 16]);
        assert!(check(&few, 1 << 20).is_ok());
        // Many empty exemplars (2 bytes each) decode and translate to far more than
        // their wire size allows.
        let empty = exemplars(100_000, &[]);
        let e = check(&empty, cap(&empty)).expect_err("refused");
        assert!(matches!(e, IngestError::TooManyElements { .. }), "{e}");
        // Exemplars with ids are charged for the hex labels they become.
        let ids = exemplars(1, &[7; 16]);
        let used = check(&ids, usize::MAX).expect("estimate");
        assert!(
            used >= 2 * MESSAGE_BYTES + EXEMPLAR_OUT_BYTES + 16 * 3,
            "{used}"
        );
    }

    #[test]
    fn empty_data_points_are_counted_before_they_are_decoded() {
        let small = gauge(10);
        assert!(check(&small, 1 << 20).is_ok());
        // 1M empty points: 2 MB on the wire, over 100 MB decoded.
        let bomb = gauge(1 << 20);
        let cap = bomb.len() * crate::remote_write::HEAP_PER_BODY_BYTE;
        let e = check(&bomb, cap).expect_err("refused");
        assert!(matches!(e, IngestError::TooManyElements { .. }), "{e}");
    }
}
