//! OTLP metrics ingestion (`POST /api/v1/otlp/v1/metrics`): an
//! `ExportMetricsServiceRequest` (protobuf, checked first for what its decoding would
//! allocate, `bound`; or OTLP/JSON, `json`; gzip is undone by the server) is decoded
//! (`proto`) and translated to series as Prometheus's OTLP receiver does (`translate`,
//! names in `names`).

mod bound;
mod json;
mod names;
pub mod proto;
mod translate;

use prost::Message;

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

/// Decodes an `ExportMetricsServiceRequest` and translates it with the `otlp` settings.
/// Protobuf is checked for the heap its decoding takes first; JSON is at least as large on
/// the wire as what it decodes to.
pub fn decode_and_translate(
    raw: &[u8],
    encoding: Encoding,
    cfg: &strata_config::OtlpConfig,
) -> Result<Translated, IngestError> {
    if raw.len() > MAX_REQUEST_BYTES {
        return Err(IngestError::TooLarge {
            size: raw.len(),
            limit: MAX_REQUEST_BYTES,
        });
    }
    let req = match encoding {
        Encoding::Protobuf => {
            bound::check(
                raw,
                raw.len().saturating_mul(HEAP_PER_BODY_BYTE).max(1 << 20),
            )?;
            proto::ExportMetricsServiceRequest::decode(raw)?
        }
        Encoding::Json => json::decode(raw)?,
    };
    Ok(translate::translate(&req, cfg))
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
