//! Prometheus's chunk encodings (`tsdb/chunkenc`) as remote read's `STREAMED_XOR_CHUNKS`
//! answers carry them: [`xor`] (float samples) and [`histogram`] (native histograms:
//! `FLOAT_HISTOGRAM` chunks written by Strata's server and read by its client, integer
//! `HISTOGRAM` chunks read only). Each one is bit for bit Prometheus's; decoding any bytes
//! ends in a value or a [`ChunkError`], never a panic.

mod bits;
pub mod histogram;
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
