//! `/federate`: the newest sample (within the lookback window, not stale) of every series the
//! `match[]` selectors pick, with its timestamp, as Prometheus serves it to federating
//! servers. External labels are added where a series lacks them.
//!
//! The format is negotiated by `Accept` as Prometheus does (`expfmt.Negotiate`, see
//! [`strata_ingest::protofmt`]): the protobuf delimited format for a scraper that asks for
//! it (Prometheus with native histograms, Strata with `scrape_protocols: [PrometheusProto]`),
//! else the text format 0.0.4. Float samples form `untyped` families; native histograms
//! `histogram` families (`gauge histogram` for gauge histograms) with schema, zero bucket,
//! spans and counts (integer counts when every count is whole, else float counts), in the
//! protobuf format only: as in Prometheus's `federate.go`, the text format leaves them out,
//! except custom-bucket histograms (NHCB), which go out as classic histograms in either
//! format.
//!
//! Names and values are written by [`strata_ingest::expfmt`] as Prometheus 3.x writes them:
//! a name that is not legacy-valid is quoted (`{"my.metric","label.x"="v"}`) for a client
//! that asks for UTF-8 names (`escaping=allow-utf-8`) and underscore-escaped for others,
//! `\`, `"` and newlines escaped, so no stored label can forge or break a line of the
//! output.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use strata_ingest::expfmt;
use strata_ingest::protofmt::{self, Wire};
use strata_ingest::pushgateway::proto;
use strata_storage::METRIC_NAME;
use strata_vocab::histogram::CounterResetHint;

use crate::AppState;
use crate::error::ApiError;
#[allow(unused_imports)]
use crate::openapi::*;
use crate::params::Params;

/// The family a sample goes to: Prometheus starts a new family when the sample type
/// (float or histogram) or the histogram type (counter or gauge) changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Float,
    Histogram,
    GaugeHistogram,
}

/// `GET /federate?match[]=…`.
#[utoipa::path(
    method(get),
    path = "/federate",
    tag = "federation",
    summary = "Newest samples of the selected series (text format, or protobuf with native histograms by Accept)",
    params(
        ("match[]" = Vec<String>, Query, description = "Series selectors")
    ),
    responses(
        (status = 200, description = "Samples: text format 0.0.4, or protobuf delimited MetricFamily messages (native histograms included) when Accept asks for application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited", body = String, content_type = "text/plain"),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 503, description = "Storage not ready (WAL replay in progress)", body = ErrorBody)
    )
)]
pub(crate) async fn federate(
    State(s): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    p: Params,
) -> Result<Response, ApiError> {
    let format = protofmt::negotiate(headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()));
    let (utf8, protobuf) = (format.utf8, format.wire == Wire::ProtoDelimited);
    let db = s.db()?;
    let selectors = p.selectors()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let lookback = s.info.engine.lookback;
    // (name, kind) → (series as written → metric); sorted as Prometheus sorts the
    // families (by name), the series of a family by their text.
    let mut fams: BTreeMap<(String, Kind), BTreeMap<String, proto::Metric>> = BTreeMap::new();
    for sel in &selectors {
        for series in db.select(sel, now - lookback + 1, now).await? {
            let float = series.samples.last();
            let hist = series.histograms.last();
            // The newest sample, of either kind.
            let newest = match (float, hist) {
                (Some(f), Some(h)) if h.0 > f.0 => Err(h),
                (Some(f), _) => Ok(f),
                (None, Some(h)) => Err(h),
                (None, None) => continue,
            };
            let (t, kind, value) = match newest {
                Ok(&(t, v)) => {
                    if strata_storage::is_stale(v) {
                        continue;
                    }
                    (
                        t,
                        Kind::Float,
                        proto::Metric {
                            untyped: Some(proto::SimpleValue { value: Some(v) }),
                            ..Default::default()
                        },
                    )
                }
                Err((t, h)) => {
                    if strata_storage::is_stale(h.sum) {
                        continue;
                    }
                    let custom = h.uses_custom_buckets();
                    if !custom && !protobuf {
                        // The text format cannot carry a native histogram.
                        continue;
                    }
                    let kind = if h.hint == CounterResetHint::Gauge {
                        Kind::GaugeHistogram
                    } else {
                        Kind::Histogram
                    };
                    let ph = if custom {
                        protofmt::custom_bucket_histogram(h)
                    } else {
                        protofmt::native_histogram(h)
                    };
                    (
                        *t,
                        kind,
                        proto::Metric {
                            histogram: Some(ph),
                            ..Default::default()
                        },
                    )
                }
            };
            let metric = series.labels.metric_name();
            let name = if utf8 {
                metric.to_owned()
            } else {
                expfmt::underscore_escape(metric).into_owned()
            };
            let mut labels: BTreeMap<std::borrow::Cow<'_, str>, &str> = series
                .labels
                .iter()
                .filter(|l| &*l.name != METRIC_NAME)
                .map(|l| (label_name(utf8, &l.name), &*l.value))
                .collect();
            for (k, v) in &s.info.external_labels {
                labels.entry(label_name(utf8, k)).or_insert(v.as_str());
            }
            // As Prometheus: `instance` is always among the global labels, empty unless
            // an external label sets it, so a series lacking it gets `instance=""`.
            labels
                .entry(std::borrow::Cow::Borrowed("instance"))
                .or_insert("");
            let mut text = String::new();
            expfmt::write_series(&mut text, &name, labels.iter().map(|(k, v)| (&**k, *v)));
            let m = proto::Metric {
                label: labels
                    .iter()
                    .map(|(k, v)| proto::LabelPair {
                        name: Some(k.to_string()),
                        value: Some((*v).to_owned()),
                    })
                    .collect(),
                timestamp_ms: Some(t),
                ..value
            };
            fams.entry((name, kind)).or_default().insert(text, m);
        }
    }
    let fams: Vec<proto::MetricFamily> = fams
        .into_iter()
        .map(|((name, kind), metrics)| proto::MetricFamily {
            name: Some(name),
            help: None,
            r#type: Some(match kind {
                Kind::Float => 3,
                Kind::Histogram => 4,
                Kind::GaugeHistogram => 5,
            }),
            metric: metrics.into_values().collect(),
        })
        .collect();
    Ok((
        [(header::CONTENT_TYPE, format.content_type())],
        format.encode(&fams),
    )
        .into_response())
}

/// A label name as the client asked for it: as stored, or underscore-escaped.
fn label_name(utf8: bool, n: &str) -> std::borrow::Cow<'_, str> {
    if utf8 {
        std::borrow::Cow::Borrowed(n)
    } else {
        expfmt::underscore_escape_label(n)
    }
}
