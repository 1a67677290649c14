//! Decoding of Prometheus's native histogram chunks (`tsdb/chunkenc/histogram.go`,
//! `float_histogram.go`, `histogram_meta.go`), as a Prometheus server streams them:
//!
//! ```text
//! | sample count: u16 BE | flags: counter-reset header in the top 2 bits | bit stream |
//!
//! layout (once):  zero threshold (1 byte: 0, 2^(b−244), or 255 + 64 bits), schema
//!                 (varbit), positive and negative spans (varbit count, then varbit
//!                 length and offset each), custom bounds for schema −53 (varbit count,
//!                 then each as varbit (bound·1000 + 1), or 0 + 64 bits)
//! HISTOGRAM:        sample 0: t, count, zero count (varbit) | sum (64 bits) | bucket
//!                            deltas (varbit)
//!                   later:    delta of delta of t, count, zero count (varbit) | sum (XOR)
//!                             | delta of delta of each bucket delta (varbit)
//! FLOAT_HISTOGRAM:  sample 0: t (varbit) | count, zero count, sum, buckets (64 bits each)
//!                   later:    delta of delta of t (varbit) | each of them XOR-encoded
//! ```
//!
//! A sample whose sum is the stale marker carries nothing after it. The layout is the
//! same for every sample of a chunk (Prometheus cuts a new chunk when it changes). The
//! samples come out as remote write's `Histogram` messages (float counts), for the same
//! validation as a `SAMPLES` answer's; the counter-reset hint is Prometheus's: gauge for
//! a gauge chunk, else unknown for the first sample and "not a reset" for the others.

mod encode;
#[cfg(test)]
mod tests;

pub use encode::FloatHistogramEncoder;

use crate::histogram_proto::{BucketSpan, Count, Histogram, ZeroCount};
use strata_vocab::CounterResetHint;

use super::ChunkError;
use super::bits::BitReader;
use super::varbit::{read_int, read_uint};
use super::xor::read_value;

/// The counter-reset header of a gauge histogram chunk.
const GAUGE_HEADER: u8 = 0b1100_0000;
/// The schema of custom buckets.
const CUSTOM_BUCKETS_SCHEMA: i64 = -53;
/// Prometheus's stale marker.
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// Which histogram encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `HISTOGRAM`: integer counts.
    Integer,
    /// `FLOAT_HISTOGRAM`.
    Float,
}

/// What every sample of a chunk shares.
struct Layout {
    schema: i32,
    zero_threshold: f64,
    positive: Vec<BucketSpan>,
    negative: Vec<BucketSpan>,
    custom_values: Vec<f64>,
}

/// The counter-reset header of the histogram chunk `data` (`None` when shorter than its
/// header).
pub fn counter_reset_header(data: &[u8]) -> Option<CounterResetHint> {
    data.get(2).map(|flags| encode::header_hint(*flags))
}

/// The histograms of the chunk `data`, in order.
pub fn decode(kind: Kind, data: &[u8]) -> Result<Vec<Histogram>, ChunkError> {
    let [hi, lo, flags, rest @ ..] = data else {
        return Err(ChunkError::Truncated);
    };
    let total = usize::from(u16::from_be_bytes([*hi, *lo]));
    let gauge = flags & GAUGE_HEADER == GAUGE_HEADER;
    let mut r = BitReader::new(rest);
    let mut out = Vec::with_capacity(total);
    if total == 0 {
        return Ok(out);
    }
    let layout = read_layout(&mut r)?;
    let buckets = |spans: &[BucketSpan]| spans.iter().map(|s| s.length as usize).sum::<usize>();
    let (np, nn) = (buckets(&layout.positive), buckets(&layout.negative));
    // Every bucket of the first sample takes at least a bit: a larger count is corrupt
    // (and must not size an allocation).
    if np.saturating_add(nn) > r.bits_left() {
        return Err(ChunkError::Truncated);
    }
    let mut state = match kind {
        Kind::Integer => State::Integer(IntegerState::new(np, nn)),
        Kind::Float => State::Float(FloatState::new(np, nn)),
    };
    for i in 0..total {
        let sample = match &mut state {
            State::Integer(s) => s.next(&mut r, i)?,
            State::Float(s) => s.next(&mut r, i)?,
        };
        let hint = if gauge {
            CounterResetHint::Gauge
        } else if i == 0 {
            CounterResetHint::Unknown
        } else {
            CounterResetHint::NotReset
        };
        out.push(sample.message(&layout, hint));
    }
    Ok(out)
}

fn read_layout(r: &mut BitReader<'_>) -> Result<Layout, ChunkError> {
    let zero_threshold = match r.read_byte()? {
        0 => 0.0,
        255 => f64::from_bits(r.read_bits(64)?),
        // 0.5 · 2^(b − 243): a power of two, built from its exponent.
        b => f64::from_bits(((i64::from(b) - 244 + 1023) as u64) << 52),
    };
    let schema = read_int(r)?;
    let positive = read_spans(r)?;
    let negative = read_spans(r)?;
    let mut custom_values = Vec::new();
    if schema == CUSTOM_BUCKETS_SCHEMA {
        let n = read_uint(r)?;
        if n > r.bits_left() as u64 {
            return Err(ChunkError::Truncated);
        }
        for _ in 0..n {
            custom_values.push(match read_uint(r)? {
                0 => f64::from_bits(r.read_bits(64)?),
                b => (b - 1) as f64 / 1000.0,
            });
        }
    }
    Ok(Layout {
        schema: i32::try_from(schema).map_err(|_| ChunkError::Corrupt("schema out of range"))?,
        zero_threshold,
        positive,
        negative,
        custom_values,
    })
}

fn read_spans(r: &mut BitReader<'_>) -> Result<Vec<BucketSpan>, ChunkError> {
    let n = read_uint(r)?;
    // A span takes two bits at least.
    if n > r.bits_left() as u64 / 2 {
        return Err(ChunkError::Truncated);
    }
    let mut spans = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let length = read_uint(r)? as u32;
        let offset = read_int(r)? as i32;
        spans.push(BucketSpan { offset, length });
    }
    Ok(spans)
}

/// One decoded sample.
struct Sample {
    t: i64,
    count: f64,
    zero_count: f64,
    sum: f64,
    positive: Vec<f64>,
    negative: Vec<f64>,
}

impl Sample {
    fn message(self, layout: &Layout, hint: CounterResetHint) -> Histogram {
        if self.sum.to_bits() == STALE_NAN {
            // As Prometheus's iterators: a stale sample is its sum only.
            return Histogram {
                sum: self.sum,
                count: Some(Count::CountFloat(0.0)),
                zero_count: Some(ZeroCount::ZeroCountFloat(0.0)),
                timestamp: self.t,
                ..Histogram::default()
            };
        }
        Histogram {
            count: Some(Count::CountFloat(self.count)),
            sum: self.sum,
            schema: layout.schema,
            zero_threshold: layout.zero_threshold,
            zero_count: Some(ZeroCount::ZeroCountFloat(self.zero_count)),
            negative_spans: layout.negative.clone(),
            negative_deltas: Vec::new(),
            negative_counts: self.negative,
            positive_spans: layout.positive.clone(),
            positive_deltas: Vec::new(),
            positive_counts: self.positive,
            reset_hint: hint as i32,
            timestamp: self.t,
            custom_values: layout.custom_values.clone(),
        }
    }
}

enum State {
    Integer(IntegerState),
    Float(FloatState),
}

/// `histogramIterator`'s running values.
struct IntegerState {
    t: i64,
    t_delta: i64,
    count: u64,
    count_delta: i64,
    zero: u64,
    zero_delta: i64,
    sum: u64,
    leading: u8,
    trailing: u8,
    /// Per bucket: its delta to the previous bucket, and how that delta last changed.
    positive: Vec<(i64, i64)>,
    negative: Vec<(i64, i64)>,
}

impl IntegerState {
    fn new(np: usize, nn: usize) -> Self {
        IntegerState {
            t: 0,
            t_delta: 0,
            count: 0,
            count_delta: 0,
            zero: 0,
            zero_delta: 0,
            sum: 0,
            leading: 0,
            trailing: 0,
            positive: vec![(0, 0); np],
            negative: vec![(0, 0); nn],
        }
    }

    fn next(&mut self, r: &mut BitReader<'_>, i: usize) -> Result<Sample, ChunkError> {
        if i == 0 {
            self.t = read_int(r)?;
            self.count = read_uint(r)?;
            self.zero = read_uint(r)?;
            self.sum = r.read_bits(64)?;
            for b in self.positive.iter_mut().chain(self.negative.iter_mut()) {
                b.0 = read_int(r)?;
            }
        } else {
            self.t_delta = self.t_delta.wrapping_add(read_int(r)?);
            self.t = self.t.wrapping_add(self.t_delta);
            self.count_delta = self.count_delta.wrapping_add(read_int(r)?);
            self.count = (self.count as i64).wrapping_add(self.count_delta) as u64;
            self.zero_delta = self.zero_delta.wrapping_add(read_int(r)?);
            self.zero = (self.zero as i64).wrapping_add(self.zero_delta) as u64;
            read_value(r, &mut self.sum, &mut self.leading, &mut self.trailing)?;
            if self.sum != STALE_NAN {
                for b in self.positive.iter_mut().chain(self.negative.iter_mut()) {
                    b.1 = b.1.wrapping_add(read_int(r)?);
                    b.0 = b.0.wrapping_add(b.1);
                }
            }
        }
        let absolute = |deltas: &[(i64, i64)]| {
            let mut current = 0i64;
            deltas
                .iter()
                .map(|(d, _)| {
                    current = current.wrapping_add(*d);
                    current as f64
                })
                .collect()
        };
        Ok(Sample {
            t: self.t,
            count: self.count as f64,
            zero_count: self.zero as f64,
            sum: f64::from_bits(self.sum),
            positive: absolute(&self.positive),
            negative: absolute(&self.negative),
        })
    }
}

/// A float XOR-encoded against its previous value, and that encoding's zeros.
#[derive(Clone, Copy, Default)]
struct XorValue {
    bits: u64,
    leading: u8,
    trailing: u8,
}

impl XorValue {
    fn read_first(&mut self, r: &mut BitReader<'_>) -> Result<(), ChunkError> {
        self.bits = r.read_bits(64)?;
        Ok(())
    }

    fn read_next(&mut self, r: &mut BitReader<'_>) -> Result<(), ChunkError> {
        read_value(r, &mut self.bits, &mut self.leading, &mut self.trailing)
    }

    fn value(self) -> f64 {
        f64::from_bits(self.bits)
    }
}

/// `floatHistogramIterator`'s running values.
struct FloatState {
    t: i64,
    t_delta: i64,
    count: XorValue,
    zero: XorValue,
    sum: XorValue,
    positive: Vec<XorValue>,
    negative: Vec<XorValue>,
}

impl FloatState {
    fn new(np: usize, nn: usize) -> Self {
        FloatState {
            t: 0,
            t_delta: 0,
            count: XorValue::default(),
            zero: XorValue::default(),
            sum: XorValue::default(),
            positive: vec![XorValue::default(); np],
            negative: vec![XorValue::default(); nn],
        }
    }

    fn next(&mut self, r: &mut BitReader<'_>, i: usize) -> Result<Sample, ChunkError> {
        if i == 0 {
            self.t = read_int(r)?;
            for v in [&mut self.count, &mut self.zero, &mut self.sum] {
                v.read_first(r)?;
            }
            for v in self.positive.iter_mut().chain(self.negative.iter_mut()) {
                v.read_first(r)?;
            }
        } else {
            self.t_delta = self.t_delta.wrapping_add(read_int(r)?);
            self.t = self.t.wrapping_add(self.t_delta);
            for v in [&mut self.count, &mut self.zero, &mut self.sum] {
                v.read_next(r)?;
            }
            if self.sum.bits != STALE_NAN {
                for v in self.positive.iter_mut().chain(self.negative.iter_mut()) {
                    v.read_next(r)?;
                }
            }
        }
        Ok(Sample {
            t: self.t,
            count: self.count.value(),
            zero_count: self.zero.value(),
            sum: self.sum.value(),
            positive: self.positive.iter().map(|v| v.value()).collect(),
            negative: self.negative.iter().map(|v| v.value()).collect(),
        })
    }
}
