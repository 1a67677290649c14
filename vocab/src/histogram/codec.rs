//! A compact binary form of [`FloatHistogram`] for the WAL, the head and the engine's Arrow
//! columns: a header byte (hint), the schema, four floats, then positive and negative
//! buckets as (zig-zag index delta, count) and the custom bounds.
//!
//! ```text
//! u8 version(1)<<2 | hint · zigzag-varint schema · f64 zero_threshold, zero_count, count, sum
//! varint n · n × (zigzag-varint index delta, f64 count)      positive, then negative
//! varint m · m × f64                                          custom bounds
//! ```
//! Floats are little-endian.

use std::sync::Arc;

use super::{CounterResetHint, FloatHistogram};

const VERSION: u8 = 1;

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

    fn buckets(&mut self) -> Result<Vec<(i32, f64)>, DecodeError> {
        let n = self.len(9)?;
        let mut out = Vec::with_capacity(n);
        let mut idx: i64 = 0;
        for k in 0..n {
            let d = unzigzag(self.varint()?);
            idx = if k == 0 { d } else { idx.wrapping_add(d) };
            out.push((idx as i32, self.f64()?));
        }
        Ok(out)
    }
}

fn put_buckets(out: &mut Vec<u8>, b: &[(i32, f64)]) {
    put_varint(out, b.len() as u64);
    let mut prev = 0i64;
    for (k, &(i, c)) in b.iter().enumerate() {
        let d = if k == 0 {
            i64::from(i)
        } else {
            i64::from(i) - prev
        };
        put_varint(out, zigzag(d));
        out.extend_from_slice(&c.to_le_bytes());
        prev = i64::from(i);
    }
}

impl FloatHistogram {
    /// Appends the binary form to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(VERSION << 2 | self.hint as u8);
        put_varint(out, zigzag(i64::from(self.schema)));
        for f in [self.zero_threshold, self.zero_count, self.count, self.sum] {
            out.extend_from_slice(&f.to_le_bytes());
        }
        put_buckets(out, &self.positive);
        put_buckets(out, &self.negative);
        put_varint(out, self.custom_values.len() as u64);
        for v in self.custom_values.iter() {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// The binary form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48 + 12 * (self.positive.len() + self.negative.len()));
        self.encode_into(&mut out);
        out
    }

    /// Reads the binary form.
    pub fn decode(buf: &[u8]) -> Result<FloatHistogram, DecodeError> {
        let mut r = Reader { buf };
        let head = r.u8()?;
        if head >> 2 != VERSION {
            return Err(DecodeError::Version(head >> 2));
        }
        let schema = unzigzag(r.varint()?) as i32;
        let (zero_threshold, zero_count, count, sum) = (r.f64()?, r.f64()?, r.f64()?, r.f64()?);
        let positive = r.buckets()?;
        let negative = r.buckets()?;
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
