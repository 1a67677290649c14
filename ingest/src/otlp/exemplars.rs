//! OTLP exemplars as Prometheus's OTLP translator makes them (`getPromExemplars`): labels
//! `trace_id` and `span_id` (lowercase hex, when set) and the filtered attributes (named
//! like other labels under the translation strategy, and only when all of them fit the
//! OpenMetrics limit of 128 characters: otherwise the ids alone), the value, and the
//! exemplar's time in milliseconds. Where an exemplar goes (the sample's series, a
//! `_bucket` series, the native histogram) is the translation's business; [`bucket_of`]
//! is the classic-histogram rule. A trace or span id of the wrong length refuses the
//! request, as Prometheus's decoder does.

use std::collections::BTreeMap;

use strata_config::OtlpConfig;
use strata_storage::{Exemplar, Labels};

use super::proto::{self, ExemplarValue};

const TRACE_ID: &str = "trace_id";
const SPAN_ID: &str = "span_id";
const TRACE_ID_BYTES: usize = 16;
const SPAN_ID_BYTES: usize = 8;

/// OpenMetrics' limit on an exemplar's label set (names and values), in characters.
const MAX_RUNES: usize = 128;

/// Why an exemplar cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum ExemplarError {
    #[error("invalid length for TraceID: {0} bytes, expected {TRACE_ID_BYTES}")]
    TraceId(usize),
    #[error("invalid length for SpanID: {0} bytes, expected {SPAN_ID_BYTES}")]
    SpanId(usize),
}

/// Lowercase hex, as Go's `hex.EncodeToString`.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// The id's label value, if it is set (an all-zero id is unset, as pdata's `IsEmpty`).
fn id(
    bytes: &[u8],
    want: usize,
    err: fn(usize) -> ExemplarError,
) -> Result<Option<String>, ExemplarError> {
    match bytes.len() {
        0 => Ok(None),
        n if n != want => Err(err(n)),
        _ if bytes.iter().all(|b| *b == 0) => Ok(None),
        _ => Ok(Some(hex(bytes))),
    }
}

/// The exemplar Prometheus stores for `e`; `None` for one without a value (Prometheus
/// cannot convert it either). One without a time takes its point's (`point_ts`), marked
/// as not carrying its own.
pub(super) fn convert(
    e: &proto::Exemplar,
    point_ts: i64,
    cfg: &OtlpConfig,
) -> Result<Option<Exemplar>, ExemplarError> {
    let trace = id(&e.trace_id, TRACE_ID_BYTES, ExemplarError::TraceId)?;
    let span = id(&e.span_id, SPAN_ID_BYTES, ExemplarError::SpanId)?;
    let value = match e.value {
        Some(ExemplarValue::AsDouble(d)) => d,
        Some(ExemplarValue::AsInt(i)) => i as f64,
        None => return Ok(None),
    };
    let mut attrs = BTreeMap::new();
    super::translate::attribute_labels(&e.filtered_attributes, cfg, &mut attrs);
    let chars = |k: &str, v: &str| k.chars().count() + v.chars().count();
    let mut runes = 0usize;
    if let Some(t) = &trace {
        runes += chars(TRACE_ID, t);
    }
    if let Some(s) = &span {
        runes += chars(SPAN_ID, s);
    }
    runes += attrs.iter().map(|(k, v)| chars(k, v)).sum::<usize>();
    if runes > MAX_RUNES {
        attrs.clear();
    }
    // The ids win over attributes of the same name.
    if let Some(t) = trace {
        attrs.insert(TRACE_ID.into(), t);
    }
    if let Some(s) = span {
        attrs.insert(SPAN_ID.into(), s);
    }
    let ts = super::translate::ms(e.time_unix_nano);
    Ok(Some(Exemplar {
        labels: Labels::from_pairs(attrs),
        value,
        ts: if ts != 0 { ts } else { point_ts },
        has_ts: ts != 0,
    }))
}

/// The bucket of a classic histogram an exemplar of `value` belongs to: the first whose
/// upper bound is at least the value (`bounds.len()`, the `+Inf` bucket, otherwise), as
/// Prometheus's `addExemplars`.
pub(super) fn bucket_of(value: f64, bounds: &[f64]) -> usize {
    bounds
        .iter()
        .position(|b| value <= *b)
        .unwrap_or(bounds.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::proto::{AnyValue, KeyValue, Value};

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(v.into())),
            }),
        }
    }

    fn labels(e: &Exemplar) -> Vec<(String, String)> {
        e.labels
            .iter()
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect()
    }

    #[test]
    fn ids_are_hex_labels_and_attributes_are_sanitized() {
        let e = proto::Exemplar {
            filtered_attributes: vec![kv("http.route", "/a")],
            time_unix_nano: 1_500_000_000,
            value: Some(ExemplarValue::AsInt(3)),
            span_id: vec![0xab; 8],
            trace_id: (0u8..16).collect(),
        };
        let got = convert(&e, 9, &OtlpConfig::default())
            .expect("valid")
            .expect("has a value");
        assert_eq!(
            labels(&got),
            vec![
                ("http_route".to_string(), "/a".to_string()),
                ("span_id".into(), "abababababababab".into()),
                ("trace_id".into(), "000102030405060708090a0b0c0d0e0f".into()),
            ]
        );
        assert_eq!((got.value, got.ts, got.has_ts), (3.0, 1500, true));
    }

    #[test]
    fn attributes_past_128_characters_are_left_out_and_bad_ids_refused() {
        let long = "x".repeat(100);
        let e = proto::Exemplar {
            filtered_attributes: vec![kv("user", &long)],
            value: Some(ExemplarValue::AsDouble(0.5)),
            trace_id: vec![1; 16],
            ..Default::default()
        };
        let got = convert(&e, 42, &OtlpConfig::default())
            .expect("valid")
            .expect("value");
        assert_eq!(
            labels(&got),
            vec![("trace_id".to_string(), "01".repeat(16))]
        );
        // No time of its own: the point's, not carried.
        assert_eq!((got.ts, got.has_ts), (42, false));
        let bad = proto::Exemplar {
            trace_id: vec![1; 3],
            value: Some(ExemplarValue::AsDouble(1.0)),
            ..Default::default()
        };
        assert_eq!(
            convert(&bad, 0, &OtlpConfig::default()),
            Err(ExemplarError::TraceId(3))
        );
        let no_value = proto::Exemplar::default();
        assert_eq!(convert(&no_value, 0, &OtlpConfig::default()), Ok(None));
    }

    #[test]
    fn an_exemplar_goes_to_the_first_bucket_holding_its_value() {
        let bounds = [1.0, 5.0, 10.0];
        assert_eq!(bucket_of(0.5, &bounds), 0);
        assert_eq!(bucket_of(1.0, &bounds), 0);
        assert_eq!(bucket_of(7.0, &bounds), 2);
        assert_eq!(bucket_of(11.0, &bounds), 3);
        assert_eq!(bucket_of(f64::NAN, &bounds), 3);
    }
}
