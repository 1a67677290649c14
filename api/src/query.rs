//! `/api/v1/query` and `/api/v1/query_range`: Prometheus's parameters, checked in
//! Prometheus's order with its messages, and its JSON (values as strings, `NaN`/`±Inf`,
//! timestamps as seconds with millisecond fraction).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use strata_engine::{EngineError, PromValue, QueryOutcome};
use strata_storage::Labels;

use crate::AppState;
use crate::error::ApiError;
#[allow(unused_imports)]
use crate::openapi::*;
use crate::params::{Params, parse_time};

/// Prometheus's per-series point limit of range queries (the engine checks it too).
const MAX_POINTS: i64 = strata_engine::MAX_POINTS_PER_SERIES;

/// An engine failure rendered with Prometheus's `errorType` and status.
pub(crate) struct QueryError(pub(crate) EngineError);

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        let kind = self.0.error_type();
        let status = match kind {
            "bad_data" => StatusCode::BAD_REQUEST,
            "execution" => StatusCode::UNPROCESSABLE_ENTITY,
            "timeout" | "canceled" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let msg = match &self.0 {
            EngineError::Parse(e) => format!("invalid parameter \"query\": {e}"),
            other => other.to_string(),
        };
        crate::error::error_response(status, kind, &msg)
    }
}

/// Prometheus `parseDuration`: float seconds or a duration string like `1h30m`.
pub(crate) fn parse_duration(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        let ms = f * 1e3;
        if !ms.is_finite() || ms >= 9.223_372_036_854_776e15 || ms <= -9.223_372_036_854_776e15 {
            return Err(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok(ms.round() as i64);
    }
    prom_duration(s).ok_or_else(|| format!("cannot parse {s:?} to a valid duration"))
}

/// `model.ParseDuration`: `[0-9]+(y|w|d|h|m|s|ms)` units in descending order.
fn prom_duration(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("ms", 1),
        ("m", 60_000),
        ("s", 1000),
    ];
    let order = |u: &str| match u {
        "y" => 0,
        "w" => 1,
        "d" => 2,
        "h" => 3,
        "m" => 4,
        "s" => 5,
        _ => 6,
    };
    let mut rest = s;
    let mut total: i64 = 0;
    let mut last = -1;
    while !rest.is_empty() {
        let n = rest.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let v: i64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let (unit, mult) = UNITS.iter().find(|(u, _)| rest.starts_with(u))?;
        let o = order(unit);
        if o <= last {
            return None;
        }
        last = o;
        rest = &rest[unit.len()..];
        total = total.checked_add(v.checked_mul(*mult)?)?;
    }
    Some(total)
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) fn time_param(p: &Params, key: &str, default: Option<i64>) -> Result<i64, ApiError> {
    match (p.get(key), default) {
        (None | Some(""), Some(d)) => Ok(d),
        (v, _) => {
            let s = v.unwrap_or("");
            parse_time(s).ok_or_else(|| {
                ApiError::BadData(format!(
                    "invalid parameter \"{key}\": cannot parse \"{s}\" to a valid timestamp"
                ))
            })
        }
    }
}

fn timeout_param(p: &Params) -> Result<Option<Duration>, ApiError> {
    match p.get("timeout") {
        None | Some("") => Ok(None),
        Some(s) => parse_duration(s)
            .map(|ms| Some(Duration::from_millis(ms.max(0) as u64)))
            .map_err(|e| ApiError::BadData(format!("invalid parameter \"timeout\": {e}"))),
    }
}

fn lookback_param(p: &Params) -> Result<Option<i64>, ApiError> {
    match p.get("lookback_delta") {
        None | Some("") => Ok(None),
        Some(s) => parse_duration(s)
            .map(Some)
            .map_err(|e| ApiError::BadData(format!("error parsing lookback delta duration: {e}"))),
    }
}

/// `max_source_resolution` (Thanos's parameter): the coarsest downsampled resolution a
/// query may read: `auto` (the default: whatever gives the same answer), `0s`/`raw`
/// (raw data only), `5m` or `1h`.
pub(crate) fn resolution_param(p: &Params) -> Result<i64, ApiError> {
    match p.get("max_source_resolution") {
        None | Some("" | "auto") => Ok(strata_engine::AUTO_RESOLUTION),
        Some("raw") => Ok(0),
        Some(s) => parse_duration(s)
            .ok()
            .filter(|ms| *ms >= 0)
            .ok_or_else(|| {
                ApiError::BadData(format!(
                    "invalid parameter \"max_source_resolution\": {s:?} is not auto, raw or a duration (0s, 5m, 1h)"
                ))
            }),
    }
}

pub(crate) fn query_param(p: &Params) -> Result<String, ApiError> {
    Ok(p.get("query").unwrap_or("").to_string())
}

/// `GET|POST /api/v1/query`.
#[utoipa::path(
    method(get, post),
    path = "/api/v1/query",
    tag = "query",
    summary = "Evaluate an instant query",
    params(
        ("query" = String, Query, description = "PromQL expression"),
        ("time" = Option<String>, Query, description = "Evaluation time: RFC 3339 or Unix seconds (default: now)"),
        ("timeout" = Option<String>, Query, description = "Evaluation timeout (capped by --query.timeout)"),
        ("limit" = Option<i64>, Query, description = "Maximum number of returned items (0: no limit)"),
        ("lookback_delta" = Option<String>, Query, description = "Lookback delta for this query"),
        ("max_source_resolution" = Option<String>, Query, description = "Coarsest downsampled resolution the query may read: auto (default), 0s/raw, 5m or 1h")
    ),
    responses(
        (status = 200, description = "Success", body = QueryResponse),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 422, description = "Query execution failed (e.g. too many samples, matching errors)", body = ErrorBody),
        (status = 503, description = "Timeout, too many concurrent queries, or storage not ready", body = ErrorBody)
    )
)]
pub(crate) async fn query(State(st): State<Arc<AppState>>, p: Params) -> Response {
    let r = async {
        let t = time_param(&p, "time", Some(now_ms()))?;
        let timeout = timeout_param(&p)?;
        let lookback = lookback_param(&p)?;
        let limit = p.limit()?;
        let q = query_param(&p)?;
        let res = resolution_param(&p)?;
        let engine = st.engine()?;
        Ok::<_, ApiError>((engine, q, t, timeout, lookback, limit, res))
    }
    .await;
    let (engine, q, t, timeout, lookback, limit, res) = match r {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    match engine.instant_at(&q, t, lookback, timeout, res).await {
        Ok(out) => render(out, limit),
        Err(e) => QueryError(e).into_response(),
    }
}

/// `start`, `end` and `step` of a range query, checked as Prometheus checks them.
pub(crate) fn range_params(p: &Params) -> Result<(i64, i64, i64), ApiError> {
    let start = time_param(p, "start", None)?;
    let end = time_param(p, "end", None)?;
    if end < start {
        return Err(ApiError::BadData(
            "invalid parameter \"end\": end timestamp must not be before start time".into(),
        ));
    }
    let step = parse_duration(p.get("step").unwrap_or(""))
        .map_err(|e| ApiError::BadData(format!("invalid parameter \"step\": {e}")))?;
    if step <= 0 {
        return Err(ApiError::BadData(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
        ));
    }
    if (end - start) / step > MAX_POINTS {
        return Err(ApiError::BadData(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
        ));
    }
    Ok((start, end, step))
}

/// `GET|POST /api/v1/query_range`.
#[utoipa::path(
    method(get, post),
    path = "/api/v1/query_range",
    tag = "query",
    summary = "Evaluate a range query",
    params(
        ("query" = String, Query, description = "PromQL expression"),
        ("start" = String, Query, description = "Start: RFC 3339 or Unix seconds"),
        ("end" = String, Query, description = "End: RFC 3339 or Unix seconds"),
        ("step" = String, Query, description = "Resolution: duration or float seconds (at most 11,000 points per series)"),
        ("timeout" = Option<String>, Query, description = "Evaluation timeout (capped by --query.timeout)"),
        ("limit" = Option<i64>, Query, description = "Maximum number of returned items (0: no limit)"),
        ("lookback_delta" = Option<String>, Query, description = "Lookback delta for this query"),
        ("max_source_resolution" = Option<String>, Query, description = "Coarsest downsampled resolution the query may read: auto (default), 0s/raw, 5m or 1h")
    ),
    responses(
        (status = 200, description = "Success", body = QueryResponse),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 422, description = "Query execution failed (e.g. too many samples, matching errors)", body = ErrorBody),
        (status = 503, description = "Timeout, too many concurrent queries, or storage not ready", body = ErrorBody)
    )
)]
pub(crate) async fn query_range(State(st): State<Arc<AppState>>, p: Params) -> Response {
    let r = async {
        let (start, end, step) = range_params(&p)?;
        let timeout = timeout_param(&p)?;
        let lookback = lookback_param(&p)?;
        let limit = p.limit()?;
        let q = query_param(&p)?;
        let engine = st.engine()?;
        let params = strata_engine::QueryParams {
            start,
            end,
            interval: step,
            lookback: lookback.unwrap_or(engine.options().lookback),
            max_source_resolution: resolution_param(&p)?,
        };
        Ok::<_, ApiError>((engine, q, params, timeout, limit))
    }
    .await;
    let (engine, q, params, timeout, limit) = match r {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    match engine.range_params(&q, params, timeout).await {
        Ok(out) => render(out, limit),
        Err(e) => QueryError(e).into_response(),
    }
}

/// Go `strconv.AppendFloat` as Prometheus's `jsonutil.MarshalFloat` uses it: shortest
/// round-trip digits, plain decimal for 1e-6 ≤ |v| < 1e21, else `1e-07` / `1.5e+21`.
pub(crate) fn format_value(v: f64, out: &mut String) {
    let a = v.abs();
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if v.fract() == 0.0 && a < 1e15 {
        // Counters and most gauges: an integer (-0 prints as Go does, "-0").
        if v == 0.0 && v.is_sign_negative() {
            out.push_str("-0");
        } else {
            out.push_str(itoa::Buffer::new().format(v as i64));
        }
    } else if (1e-5..1e16).contains(&a) {
        // ryu prints plain decimal in this range, with the same shortest digits as Go.
        let mut b = ryu::Buffer::new();
        let s = b.format_finite(v);
        out.push_str(s.strip_suffix(".0").unwrap_or(s));
    } else if v != 0.0 && !(1e-6..1e21).contains(&a) {
        let s = format!("{v:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match e.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', e),
        };
        let _ = write!(out, "{m}e{sign}{digits:0>2}");
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest round-trip digits, written as a
/// plain decimal whatever the magnitude (`1e21` → `1000000000000000000000`).
pub(crate) fn format_plain(v: f64, out: &mut String) {
    out.push_str(&strata_grammar::format_float(v));
}

/// Prometheus `jsonutil.MarshalTimestamp`: seconds with a 3-digit fraction when needed.
pub(crate) fn format_ts(t: i64, out: &mut String) {
    if t < 0 {
        out.push('-');
    }
    let t = t.unsigned_abs();
    out.push_str(itoa::Buffer::new().format(t / 1000));
    let frac = t % 1000;
    if frac != 0 {
        out.push('.');
        if frac < 100 {
            out.push('0');
        }
        if frac < 10 {
            out.push('0');
        }
        out.push_str(itoa::Buffer::new().format(frac));
    }
}

/// A JSON string literal: copied as is when nothing in it needs escaping (label names and
/// values almost never do), else escaped by serde_json.
fn write_json_str(s: &str, out: &mut String) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    }
}

fn write_labels(labels: &Labels, out: &mut String) {
    let mut v: Vec<(&str, &str)> = labels.iter().map(|l| (&*l.name, &*l.value)).collect();
    v.sort_unstable();
    out.push('{');
    for (i, (n, val)) in v.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_str(n, out);
        out.push(':');
        write_json_str(val, out);
    }
    out.push('}');
}

fn write_point(t: i64, v: f64, out: &mut String) {
    out.push('[');
    format_ts(t, out);
    out.push_str(",\"");
    format_value(v, out);
    out.push_str("\"]");
}

/// Prometheus `jsonutil.MarshalHistogram`: count, sum and the populated buckets as
/// `[boundary rule, "lower", "upper", "count"]` in ascending order.
pub(crate) fn write_histogram(h: &strata_vocab::FloatHistogram, out: &mut String) {
    out.push_str("{\"count\":\"");
    format_value(h.count, out);
    out.push_str("\",\"sum\":\"");
    format_value(h.sum, out);
    out.push('"');
    let mut first = true;
    for b in h.all_buckets() {
        if b.count == 0.0 {
            continue;
        }
        out.push_str(if first { ",\"buckets\":[" } else { "," });
        first = false;
        out.push('[');
        out.push_str(itoa::Buffer::new().format(b.boundary_rule()));
        for v in [b.lower, b.upper, b.count] {
            out.push_str(",\"");
            format_value(v, out);
            out.push('"');
        }
        out.push(']');
    }
    if !first {
        out.push(']');
    }
    out.push('}');
}

fn write_hist_point(t: i64, h: &strata_vocab::FloatHistogram, out: &mut String) {
    out.push('[');
    format_ts(t, out);
    out.push(',');
    write_histogram(h, out);
    out.push(']');
}

/// Points from which a matrix is rendered on several threads.
const PARALLEL_RENDER_POINTS: usize = 100_000;

/// The series of a matrix, comma-separated; a large one rendered in slices on every core
/// and concatenated (the text is the same).
fn write_matrix(m: &[strata_engine::Series], points: usize, out: &mut String) {
    if points < PARALLEL_RENDER_POINTS || m.len() < 2 {
        write_series_list(m, out);
        return;
    }
    // Asked only for large matrices: it reads the cgroup's CPU limit from files.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 {
        write_series_list(m, out);
        return;
    }
    let per = m.len().div_ceil(threads);
    let parts: Vec<String> = std::thread::scope(|sc| {
        let handles: Vec<_> = m
            .chunks(per)
            .map(|chunk| {
                sc.spawn(move || {
                    let n: usize = chunk.iter().map(|s| s.points.len() + 4).sum();
                    let mut s = String::with_capacity(n * 40);
                    write_series_list(chunk, &mut s);
                    s
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(p);
    }
}

fn write_series_list(m: &[strata_engine::Series], s: &mut String) {
    for (i, ser) in m.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str("{\"metric\":");
        write_labels(&ser.labels, s);
        // As Prometheus: `values` and `histograms` only when the series has such points.
        if !ser.points.is_empty() || ser.histograms.is_empty() {
            s.push_str(",\"values\":[");
            for (j, (t, v)) in ser.points.iter().enumerate() {
                if j > 0 {
                    s.push(',');
                }
                write_point(*t, *v, s);
            }
            s.push(']');
        }
        if !ser.histograms.is_empty() {
            s.push_str(",\"histograms\":[");
            for (j, (t, h)) in ser.histograms.iter().enumerate() {
                if j > 0 {
                    s.push(',');
                }
                write_hist_point(*t, h, s);
            }
            s.push(']');
        }
        s.push('}');
    }
}

/// The success JSON of a query result.
pub(crate) fn render_json(out: &QueryOutcome, limit: Option<usize>) -> String {
    let points = match &out.value {
        PromValue::Matrix(m) => m
            .iter()
            .map(|s| s.points.len() + 8 * s.histograms.len() + 4)
            .sum::<usize>(),
        PromValue::Vector(v) => v.len() * 4,
        _ => 0,
    };
    let mut s = String::with_capacity(256 + points * 40);
    s.push_str("{\"status\":\"success\",\"data\":{\"resultType\":");
    match &out.value {
        PromValue::Scalar { t, v } => {
            // promql.Scalar marshals itself with strconv.FormatFloat(v, 'f', -1, 64): plain
            // decimal at any magnitude, unlike sample values.
            s.push_str("\"scalar\",\"result\":[");
            format_ts(*t, &mut s);
            s.push_str(",\"");
            format_plain(*v, &mut s);
            s.push_str("\"]");
        }
        PromValue::Str { t, s: text } => {
            s.push_str("\"string\",\"result\":[");
            format_ts(*t, &mut s);
            s.push(',');
            write_json_str(text, &mut s);
            s.push(']');
        }
        PromValue::Vector(v) => {
            s.push_str("\"vector\",\"result\":[");
            for (i, smp) in v.iter().take(limit.unwrap_or(usize::MAX)).enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push_str("{\"metric\":");
                write_labels(&smp.labels, &mut s);
                match &smp.h {
                    Some(h) => {
                        s.push_str(",\"histogram\":");
                        write_hist_point(smp.t, h, &mut s);
                    }
                    None => {
                        s.push_str(",\"value\":");
                        write_point(smp.t, smp.v, &mut s);
                    }
                }
                s.push('}');
            }
            s.push(']');
        }
        PromValue::Matrix(m) => {
            s.push_str("\"matrix\",\"result\":[");
            let m = &m[..m.len().min(limit.unwrap_or(usize::MAX))];
            write_matrix(m, points, &mut s);
            s.push(']');
        }
    }
    write_tail(&out.notes, &mut s);
    s
}

/// What follows the result: the end of `data`, warnings and infos, the end.
fn write_tail(notes: &strata_engine::Annotations, s: &mut String) {
    s.push('}');
    let list = |v: &[String]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    if !notes.warnings.is_empty() {
        s.push_str(",\"warnings\":");
        s.push_str(&list(&notes.warnings));
    }
    if !notes.infos.is_empty() {
        s.push_str(",\"infos\":");
        s.push_str(&list(&notes.infos));
    }
    s.push('}');
}

/// Points from which a matrix is sent as it is rendered, in chunks.
const STREAM_POINTS: usize = 200_000;
/// Bytes of JSON after which a chunk of a streamed matrix is sent.
const STREAM_CHUNK_BYTES: usize = 1 << 20;

fn render(out: QueryOutcome, limit: Option<usize>) -> Response {
    let large = match &out.value {
        PromValue::Matrix(m) => {
            m.iter()
                .map(|s| s.points.len() + 8 * s.histograms.len())
                .sum::<usize>()
                >= STREAM_POINTS
        }
        _ => false,
    };
    if large {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            axum::body::Body::from_stream(matrix_chunks(out, limit)),
        )
            .into_response();
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        render_json(&out, limit),
    )
        .into_response()
}

/// A matrix result's JSON in chunks of about a megabyte, rendered as the client takes
/// them: the same text as [`render_json`], without ever holding all of it (101 MB for
/// 4,500 series × 720 points) next to the result.
fn matrix_chunks(
    out: QueryOutcome,
    limit: Option<usize>,
) -> impl futures::Stream<Item = Result<String, std::convert::Infallible>> + Send {
    let n = match &out.value {
        PromValue::Matrix(m) => m.len().min(limit.unwrap_or(usize::MAX)),
        _ => 0,
    };
    let head = "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[";
    let mut s = String::with_capacity(STREAM_CHUNK_BYTES + (1 << 16));
    s.push_str(head);
    // The outcome (and its memory reservation) lives until the last chunk is sent.
    // State: the outcome, the next series, the chunk being filled, whether all is sent.
    futures::stream::unfold(
        (out, 0usize, s, false),
        move |(out, mut i, mut s, done)| async move {
            if done {
                return None;
            }
            if let PromValue::Matrix(series) = &out.value {
                while i < n && s.len() < STREAM_CHUNK_BYTES {
                    if i > 0 {
                        s.push(',');
                    }
                    write_series_list(&series[i..i + 1], &mut s);
                    i += 1;
                }
            }
            let last = i >= n;
            if last {
                s.push(']');
                write_tail(&out.notes, &mut s);
            }
            let next = String::with_capacity(if last { 0 } else { s.capacity() });
            Some((Ok(std::mem::replace(&mut s, next)), (out, i, s, last)))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_strings_are_json_as_serde_writes_them() {
        for s in [
            "",
            "plain",
            "ünï €",
            "a\"b",
            "back\\slash",
            "tab\there",
            "\u{1}",
            "\u{7f}",
        ] {
            let mut out = String::new();
            write_json_str(s, &mut out);
            assert_eq!(Some(out), serde_json::to_string(s).ok(), "{s:?}");
        }
    }

    #[tokio::test]
    async fn a_streamed_matrix_is_the_same_json() {
        use futures::StreamExt;
        let m: Vec<strata_engine::Series> = (0..3001)
            .map(|i| strata_engine::Series {
                histograms: Vec::new(),
                labels: Labels::from_pairs([("__name__", "m"), ("i", &i.to_string())]),
                points: (0..100)
                    .map(|k| (k * 15_000, (i * k) as f64 / 7.0))
                    .collect(),
            })
            .collect();
        for limit in [None, Some(2000)] {
            let mut notes = strata_engine::Annotations::default();
            notes.infos.push("an info".into());
            let out = QueryOutcome::new(PromValue::Matrix(m.clone()), notes);
            let whole = render_json(&out, limit);
            let chunks: Vec<String> = matrix_chunks(out, limit)
                .map(|c| c.unwrap_or_default())
                .collect()
                .await;
            assert!(chunks.len() > 2, "{} chunks", chunks.len());
            assert_eq!(chunks.concat(), whole);
        }
    }

    #[test]
    fn large_matrices_render_the_same_in_slices() {
        let m: Vec<strata_engine::Series> = (0..301)
            .map(|i| strata_engine::Series {
                histograms: Vec::new(),
                labels: Labels::from_pairs([("__name__", "m"), ("i", &i.to_string())]),
                points: (0..400)
                    .map(|k| (k * 15_000, (i * k) as f64 / 7.0))
                    .collect(),
            })
            .collect();
        let points = m.iter().map(|s| s.points.len() + 4).sum();
        assert!(points >= PARALLEL_RENDER_POINTS);
        let (mut sliced, mut one) = (String::new(), String::new());
        write_matrix(&m, points, &mut sliced);
        write_series_list(&m, &mut one);
        assert_eq!(sliced, one);
        let v: serde_json::Value = serde_json::from_str(&format!("[{sliced}]")).expect("json");
        assert_eq!(v.as_array().map(Vec::len), Some(301));
    }

    fn v(x: f64) -> String {
        let mut s = String::new();
        format_value(x, &mut s);
        s
    }

    fn t(x: i64) -> String {
        let mut s = String::new();
        format_ts(x, &mut s);
        s
    }

    #[test]
    fn scalars_format_plain_like_go() {
        let p = |x: f64| {
            let mut s = String::new();
            format_plain(x, &mut s);
            s
        };
        assert_eq!(p(1e21), "1000000000000000000000");
        assert_eq!(p(1.5e-7), "0.00000015");
        assert_eq!(p(-123.25), "-123.25");
        assert_eq!(p(0.1), "0.1");
        assert_eq!(p(42.0), "42");
        assert_eq!(p(f64::NAN), "NaN");
    }

    #[test]
    fn values_format_like_go() {
        assert_eq!(v(1.0), "1");
        assert_eq!(v(0.1), "0.1");
        assert_eq!(v(1e-7), "1e-07");
        assert_eq!(v(1.5e21), "1.5e+21");
        assert_eq!(v(123456789.0), "123456789");
        assert_eq!(v(f64::NAN), "NaN");
        assert_eq!(v(f64::NEG_INFINITY), "-Inf");
        assert_eq!(v(-0.0), "-0");
        assert_eq!(v(12.5), "12.5");
        assert_eq!(v(1e-5), "0.00001");
        assert_eq!(v(2e-6), "0.000002");
        assert_eq!(v(1e16), "10000000000000000");
        assert_eq!(v(1.2345e17), "123450000000000000");
        assert_eq!(v(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(v(-3.25), "-3.25");
    }

    #[test]
    fn timestamps_format_like_prometheus() {
        assert_eq!(t(1500), "1.500");
        assert_eq!(t(1000), "1");
        assert_eq!(t(-1500), "-1.500");
        assert_eq!(t(1005), "1.005");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1.5"), Ok(1500));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("100ms"), Ok(100));
        assert!(parse_duration("1x").is_err());
        assert!(parse_duration("30m1h").is_err());
    }
}
