//! A compact binary form of [`FloatHistogram`] for the WAL and the engine's Arrow columns:
//! a header byte (form and hint), the schema, the scalars, then positive and negative
//! buckets as (zig-zag index delta, count) and the custom bounds. Two forms:
//!
//! ```text
//! float (1):   u8 1<<2 | hint · zigzag-varint schema · f64 zero_threshold, zero_count, count, sum
//!              varint n · n × (zigzag-varint index delta, f64 count)       positive, then negative
//! integer (2): u8 2<<2 | hint · zigzag-varint schema · f64 zero_threshold · varint zero_count,
//!              count · f64 sum
//!              varint n · n × (zigzag-varint index delta, zigzag-varint count delta)
//! both:        varint m · m × f64                                          custom bounds
//! ```
//! The integer form, Prometheus's integer histogram in effect (each count a delta from the
//! previous bucket's), is written when every count is a whole number below 2^53 that
//! reads back bit for bit: what client libraries send. It takes one or two bytes per
//! bucket instead of nine. Floats are little-endian.

use std::sync::Arc;

use super::{CounterResetHint, FloatHistogram};

/// The float form.
const VERSION: u8 = 1;
/// The integer form.
const INTEGER: u8 = 2;
/// Whole numbers up to this are exact in an `f64`.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

/// `c` as a whole count that reads back bit for bit.
fn whole(c: f64) -> Option<u64> {
    ((0.0..=MAX_EXACT).contains(&c) && (c as u64 as f64).to_bits() == c.to_bits())
        .then_some(c as u64)
}

/// A histogram encoding that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("histogram encoding truncated")]
    Truncated,
    #[error("unknown histogram encoding version {0}")]
    Version(u8),
    #[error("histogram encoding has {0} buckets, more than it has bytes")]
    TooLong(u64),
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn u8(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self.buf.split_first().ok_or(DecodeError::Truncated)?;
        self.buf = rest;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(DecodeError::Truncated)
    }

    fn f64(&mut self) -> Result<f64, DecodeError> {
        if self.buf.len() < 8 {
            return Err(DecodeError::Truncated);
        }
        let (a, rest) = self.buf.split_at(8);
        self.buf = rest;
        let mut b = [0u8; 8];
        b.copy_from_slice(a);
        Ok(f64::from_le_bytes(b))
    }

    /// A count that must fit in the bytes left (each item takes at least `min` bytes).
    fn len(&mut self, min: usize) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        if n.saturating_mul(min as u64) > self.buf.len() as u64 {
            return Err(DecodeError::TooLong(n));
        }
        Ok(n as usize)
    }

    fn buckets(&mut self, integer: bool) -> Result<Vec<(i32, f64)>, DecodeError> {
        let n = self.len(if integer { 2 } else { 9 })?;
        let mut out = Vec::with_capacity(n);
        let mut idx: i64 = 0;
        let mut count: i64 = 0;
        for k in 0..n {
            let d = unzigzag(self.varint()?);
            idx = if k == 0 { d } else { idx.wrapping_add(d) };
            let c = if integer {
                count = count.wrapping_add(unzigzag(self.varint()?));
                count as f64
            } else {
                self.f64()?
            };
            out.push((idx as i32, c));
        }
        Ok(out)
    }
}

fn put_buckets(out: &mut Vec<u8>, b: &[(i32, f64)], integer: bool) {
    put_varint(out, b.len() as u64);
    let mut prev = 0i64;
    let mut prev_count = 0i64;
    for (k, &(i, c)) in b.iter().enumerate() {
        let d = if k == 0 {
            i64::from(i)
        } else {
            i64::from(i) - prev
        };
        put_varint(out, zigzag(d));
        if integer {
            // Whole counts below 2^53 (checked by the caller): the delta fits.
            let count = c as i64;
            put_varint(out, zigzag(count - prev_count));
            prev_count = count;
        } else {
            out.extend_from_slice(&c.to_le_bytes());
        }
        prev = i64::from(i);
    }
}

impl FloatHistogram {
    /// Appends the binary form to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let integer = match (whole(self.zero_count), whole(self.count)) {
            (Some(z), Some(c))
                if self
                    .positive
                    .iter()
                    .chain(self.negative.iter())
                    .all(|b| whole(b.1).is_some()) =>
            {
                Some((z, c))
            }
            _ => None,
        };
        let form = if integer.is_some() { INTEGER } else { VERSION };
        out.push(form << 2 | self.hint as u8);
        put_varint(out, zigzag(i64::from(self.schema)));
        out.extend_from_slice(&self.zero_threshold.to_le_bytes());
        match integer {
            Some((z, c)) => {
                put_varint(out, z);
                put_varint(out, c);
            }
            None => {
                out.extend_from_slice(&self.zero_count.to_le_bytes());
                out.extend_from_slice(&self.count.to_le_bytes());
            }
        }
        out.extend_from_slice(&self.sum.to_le_bytes());
        put_buckets(out, &self.positive, integer.is_some());
        put_buckets(out, &self.negative, integer.is_some());
        put_varint(out, self.custom_values.len() as u64);
        for v in self.custom_values.iter() {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// The binary form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48 + 4 * (self.positive.len() + self.negative.len()));
        self.encode_into(&mut out);
        out
    }

    /// Reads the binary form.
    pub fn decode(buf: &[u8]) -> Result<FloatHistogram, DecodeError> {
        let mut r = Reader { buf };
        let head = r.u8()?;
        let integer = match head >> 2 {
            VERSION => false,
            INTEGER => true,
            v => return Err(DecodeError::Version(v)),
        };
        let schema = unzigzag(r.varint()?) as i32;
        let zero_threshold = r.f64()?;
        let (zero_count, count) = if integer {
            (r.varint()? as f64, r.varint()? as f64)
        } else {
            (r.f64()?, r.f64()?)
        };
        let sum = r.f64()?;
        let positive = r.buckets(integer)?;
        let negative = r.buckets(integer)?;
        let m = r.len(8)?;
        let mut cv = Vec::with_capacity(m);
        for _ in 0..m {
            cv.push(r.f64()?);
        }
        Ok(FloatHistogram {
            hint: CounterResetHint::from_u8(head & 3),
            schema,
            zero_threshold,
            zero_count,
            count,
            sum,
            positive,
            negative,
            custom_values: Arc::from(cv),
        })
    }
}
