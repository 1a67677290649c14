//! OTLP metrics ingestion (`POST /api/v1/otlp/v1/metrics`): an
//! `ExportMetricsServiceRequest` (protobuf; gzip is undone by the server) is checked for
//! what its decoding would allocate (`bound`), decoded (`proto`) and translated to series
//! as Prometheus's OTLP receiver does (`translate`, names in `names`).

mod bound;
mod names;
pub mod proto;
mod translate;

use prost::Message;

pub use translate::Translated;

use crate::error::IngestError;
use crate::remote_write::HEAP_PER_BODY_BYTE;

/// Largest decoded (and decompressed) request accepted.
pub const MAX_REQUEST_BYTES: usize = 32 << 20;

/// Decodes a protobuf `ExportMetricsServiceRequest` within the heap budget and translates
/// it with the `otlp` settings.
pub fn decode_and_translate(
    raw: &[u8],
    cfg: &strata_config::OtlpConfig,
) -> Result<Translated, IngestError> {
    if raw.len() > MAX_REQUEST_BYTES {
        return Err(IngestError::TooLarge {
            size: raw.len(),
            limit: MAX_REQUEST_BYTES,
        });
    }
    bound::check(
        raw,
        raw.len().saturating_mul(HEAP_PER_BODY_BYTE).max(1 << 20),
    )?;
    let req = proto::ExportMetricsServiceRequest::decode(raw)?;
    Ok(translate::translate(&req, cfg))
}

/// The protobuf answer: empty, or a partial success naming what was rejected.
pub fn response(t: &Translated) -> Vec<u8> {
    let partial = (t.rejected > 0).then(|| proto::ExportMetricsPartialSuccess {
        rejected_data_points: t.rejected as i64,
        error_message: t.errors.join("; "),
    });
    proto::ExportMetricsServiceResponse {
        partial_success: partial,
    }
    .encode_to_vec()
}
