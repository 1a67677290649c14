//! OTLP metrics ingestion (`POST /api/v1/otlp/v1/metrics`): an
//! `ExportMetricsServiceRequest` (protobuf, checked first for what its decoding would
//! allocate, `bound`; or OTLP/JSON, `json`; gzip is undone by the server) is decoded
//! (`proto`) and translated to series as Prometheus's OTLP receiver does (`translate`,
//! names in `names`, exemplars in `exemplars`). With `otlp-deltatocumulative`, delta sums
//! and histograms are made cumulative in between by the server's accumulator (`delta`).

mod bound;
mod delta;
#[cfg(test)]
mod exemplar_tests;
mod exemplars;
mod json;
mod names;
pub mod proto;
mod translate;

use prost::Message;

pub use delta::{Applied, DeltaConfig, DeltaStats, DeltaToCumulative, Dropped};
pub use translate::Translated;

use crate::error::IngestError;
use crate::remote_write::HEAP_PER_BODY_BYTE;

/// Largest decoded (and decompressed) request accepted.
pub const MAX_REQUEST_BYTES: usize = 32 << 20;

/// The two encodings of OTLP/HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`.
    Json,
}

/// Decodes an `ExportMetricsServiceRequest` and translates it with the `otlp` settings,
/// delta sums and histograms made cumulative first by `delta` when given (else refused).
/// Protobuf is checked for the heap its decoding takes first; JSON is at least as large on
/// the wire as what it decodes to. Points the accumulator drops are reported as rejected.
pub fn decode_and_translate(
    raw: &[u8],
    encoding: Encoding,
    cfg: &strata_config::OtlpConfig,
    delta: Option<&DeltaToCumulative>,
) -> Result<Translated, IngestError> {
    if raw.len() > MAX_REQUEST_BYTES {
        return Err(IngestError::TooLarge {
            size: raw.len(),
            limit: MAX_REQUEST_BYTES,
        });
    }
    let mut req = match encoding {
        Encoding::Protobuf => {
            bound::check(
                raw,
                raw.len().saturating_mul(HEAP_PER_BODY_BYTE).max(1 << 20),
            )?;
            proto::ExportMetricsServiceRequest::decode(raw)?
        }
        Encoding::Json => json::decode(raw)?,
    };
    let applied = delta.map(|d| d.apply(&mut req));
    let mut t = translate::translate(&req, cfg);
    if let Some(a) = applied {
        t.rejected += a.dropped;
        for why in a.errors {
            t.reject(0, why.to_string());
        }
    }
    Ok(t)
}

/// The answer in the request's encoding: empty, or a partial success naming what was not
/// written.
pub fn response(t: &Translated, encoding: Encoding) -> Vec<u8> {
    let partial = (t.rejected > 0).then(|| proto::ExportMetricsPartialSuccess {
        rejected_data_points: t.rejected as i64,
        error_message: t.errors.join("; "),
    });
    match (encoding, partial) {
        (Encoding::Protobuf, partial) => proto::ExportMetricsServiceResponse {
            partial_success: partial,
        }
        .encode_to_vec(),
        (Encoding::Json, None) => b"{}".to_vec(),
        (Encoding::Json, Some(p)) => serde_json::json!({
            "partialSuccess": {
                "rejectedDataPoints": p.rejected_data_points.to_string(),
                "errorMessage": p.error_message,
            }
        })
        .to_string()
        .into_bytes(),
    }
}
