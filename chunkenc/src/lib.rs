//! Prometheus's chunk encodings (`tsdb/chunkenc`): [`xor`] (float samples) and
//! [`histogram`] (native histograms: integer `HISTOGRAM` and `FLOAT_HISTOGRAM` chunks,
//! written and read). Each one is bit for bit Prometheus's; decoding any bytes ends in a
//! value or a [`ChunkError`], never a panic. Remote read's `STREAMED_XOR_CHUNKS` answers
//! carry them (`FLOAT_HISTOGRAM` from Strata's server), and the head keeps its native
//! histogram samples in them (`HISTOGRAM` while the counts are whole).
//!
//! The crate also holds [`histogram_proto`], the native histogram message of the
//! remote-write protos: the histogram chunk codec takes and gives that message (spans and
//! counts as on the wire), so it lives below both the ingest crate (which re-exports it)
//! and the storage crate (which encodes its head chunks with it).

mod bits;
pub mod histogram;
pub mod histogram_proto;
mod varbit;
pub mod xor;

/// Why a chunk could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The bit stream ends before the sample count its header gives.
    #[error("chunk ends before the sample count in its header")]
    Truncated,
    /// Bits that no encoder writes.
    #[error("chunk is corrupt: {0}")]
    Corrupt(&'static str),
    /// A sample that cannot be encoded (say, a histogram whose buckets do not match its
    /// spans).
    #[error("cannot encode the sample: {0}")]
    Invalid(&'static str),
    /// A chunk holds at most `u16::MAX` samples.
    #[error("chunk is full ({} samples)", u16::MAX)]
    Full,
}
