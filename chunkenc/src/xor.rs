//! Prometheus's XOR chunk encoding of float samples (`tsdb/chunkenc/xor.go`, after
//! Facebook's Gorilla), bit for bit, as remote read's `STREAMED_XOR_CHUNKS` carries it:
//!
//! ```text
//! | sample count: u16 big-endian | samples as one bit stream, the last byte zero-padded |
//!
//! sample 0:  t as a zig-zag varint                | v as 64 bits
//! sample 1:  t − t₀ as a uvarint                  | v XOR-encoded against v₀
//! sample n:  dod = (tₙ − tₙ₋₁) − (tₙ₋₁ − tₙ₋₂):   | v XOR-encoded against vₙ₋₁
//!              0            dod = 0
//!              10   + 14 b  −8191 ≤ dod ≤ 8192
//!              110  + 17 b  −65535 ≤ dod ≤ 65536
//!              1110 + 20 b  −524287 ≤ dod ≤ 524288
//!              1111 + 64 b  otherwise
//!
//! value:  0                                   same bits as before
//!         10 + meaningful bits                XOR fits the previous leading/trailing zeros
//!         11 + 5 b leading zeros (≤ 31) + 6 b meaningful bit count (64 as 0) + the bits
//! ```
//!
//! Values travel as their bits, so NaN payloads (the stale marker `0x7ff0000000000002`)
//! come back unchanged. Decoding any input fails with a [`ChunkError`], never a panic.

#[cfg(test)]
mod tests;

use super::ChunkError;
use super::bits::{BitReader, BitWriter, write_uvarint, write_varint};

/// Bytes of the sample-count header.
const HEADER_BYTES: usize = 2;

/// At most how many bytes one [`XorEncoder::append`] adds: an escaped 64-bit delta of
/// delta (4 + 64 bits) and a value with new leading/trailing zeros (2 + 5 + 6 + 64 bits),
/// or a 10-byte varint and the same value (sample 1), plus a started byte.
pub const MAX_SAMPLE_BYTES: usize = 21;

/// Builds one XOR chunk, sample by sample (timestamps increasing, as in a series).
#[derive(Debug, Clone)]
pub struct XorEncoder {
    w: BitWriter,
    num: u16,
    t: i64,
    v: u64,
    t_delta: u64,
    /// Leading zeros of the last value XOR written with its own header (0xff: none yet).
    leading: u8,
    trailing: u8,
}

impl Default for XorEncoder {
    fn default() -> Self {
        XorEncoder::new()
    }
}

impl XorEncoder {
    /// An empty chunk.
    pub fn new() -> Self {
        XorEncoder {
            w: BitWriter::new(vec![0; HEADER_BYTES]),
            num: 0,
            t: i64::MIN,
            v: 0,
            t_delta: 0,
            leading: 0xff,
            trailing: 0,
        }
    }

    /// Samples appended.
    pub fn num_samples(&self) -> usize {
        usize::from(self.num)
    }

    /// Bytes of the chunk so far, header included.
    pub fn len(&self) -> usize {
        self.w.len()
    }

    /// Whether no sample was appended.
    pub fn is_empty(&self) -> bool {
        self.num == 0
    }

    /// Appends the sample `(t, v)` as `xorAppender.Append` does.
    pub fn append(&mut self, t: i64, v: f64) -> Result<(), ChunkError> {
        let bits = v.to_bits();
        let mut t_delta = 0u64;
        match self.num {
            0 => {
                write_varint(&mut self.w, t);
                self.w.write_bits(bits, 64);
            }
            1 => {
                t_delta = t.wrapping_sub(self.t) as u64;
                write_uvarint(&mut self.w, t_delta);
                self.write_value(bits);
            }
            u16::MAX => return Err(ChunkError::Full),
            _ => {
                t_delta = t.wrapping_sub(self.t) as u64;
                let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                if dod == 0 {
                    self.w.write_bit(false);
                } else if bit_range(dod, 14) {
                    self.w.write_bits(0b10, 2);
                    self.w.write_bits(dod as u64, 14);
                } else if bit_range(dod, 17) {
                    self.w.write_bits(0b110, 3);
                    self.w.write_bits(dod as u64, 17);
                } else if bit_range(dod, 20) {
                    self.w.write_bits(0b1110, 4);
                    self.w.write_bits(dod as u64, 20);
                } else {
                    self.w.write_bits(0b1111, 4);
                    self.w.write_bits(dod as u64, 64);
                }
                self.write_value(bits);
            }
        }
        self.t = t;
        self.v = bits;
        self.t_delta = t_delta;
        self.num += 1;
        let [hi, lo] = self.num.to_be_bytes();
        let header = self.w.bytes_mut();
        header[0] = hi;
        header[1] = lo;
        Ok(())
    }

    /// The chunk's bytes.
    pub fn finish(self) -> Vec<u8> {
        self.w.into_bytes()
    }

    fn write_value(&mut self, bits: u64) {
        write_value(
            &mut self.w,
            bits,
            self.v,
            &mut self.leading,
            &mut self.trailing,
        );
    }
}

/// `xorWrite`: `bits` XOR-encoded against `prev`, with the leading and trailing zeros of
/// the last value written with its own (0xff: none yet).
pub(crate) fn write_value(
    w: &mut BitWriter,
    bits: u64,
    prev: u64,
    leading: &mut u8,
    trailing: &mut u8,
) {
    let delta = bits ^ prev;
    if delta == 0 {
        w.write_bit(false);
        return;
    }
    w.write_bit(true);
    // At most 31 leading zeros fit the 5 bits that carry them.
    let lead = (delta.leading_zeros() as u8).min(31);
    let trail = delta.trailing_zeros() as u8;
    if *leading != 0xff && lead >= *leading && trail >= *trailing {
        w.write_bit(false);
        w.write_bits(
            delta >> *trailing,
            64 - u32::from(*leading) - u32::from(*trailing),
        );
        return;
    }
    *leading = lead;
    *trailing = trail;
    w.write_bit(true);
    w.write_bits(u64::from(lead), 5);
    // 64 meaningful bits are written as 0 (6 bits); 0 never occurs (delta != 0).
    let sig = 64 - u32::from(lead) - u32::from(trail);
    w.write_bits(u64::from(sig), 6);
    w.write_bits(delta >> trail, sig);
}

/// Whether `x` is within the `nbits` bucket of the delta of delta (Prometheus's
/// `bitRange`: one more on the positive side than two's complement holds).
fn bit_range(x: i64, nbits: u32) -> bool {
    -((1i64 << (nbits - 1)) - 1) <= x && x <= 1i64 << (nbits - 1)
}

/// The samples of the XOR chunk `data`, in order.
pub fn decode(data: &[u8]) -> Result<Vec<(i64, f64)>, ChunkError> {
    let [hi, lo, rest @ ..] = data else {
        return Err(ChunkError::Truncated);
    };
    let total = u16::from_be_bytes([*hi, *lo]);
    let mut r = BitReader::new(rest);
    let mut out = Vec::with_capacity(usize::from(total));
    let (mut t, mut v, mut t_delta) = (0i64, 0u64, 0u64);
    let (mut leading, mut trailing) = (0u8, 0u8);
    for i in 0..total {
        match i {
            0 => {
                t = r.read_varint()?;
                v = r.read_bits(64)?;
            }
            1 => {
                t_delta = r.read_uvarint()?;
                t = t.wrapping_add(t_delta as i64);
                read_value(&mut r, &mut v, &mut leading, &mut trailing)?;
            }
            _ => {
                let mut prefix = 0u8;
                for _ in 0..4 {
                    prefix <<= 1;
                    if !r.read_bit()? {
                        break;
                    }
                    prefix |= 1;
                }
                let size = match prefix {
                    0b0 => 0,
                    0b10 => 14,
                    0b110 => 17,
                    0b1110 => 20,
                    _ => 64,
                };
                let dod = match size {
                    0 => 0,
                    64 => r.read_bits(64)? as i64,
                    n => {
                        let mut b = r.read_bits(n)?;
                        // The bits are the low `n` of a two's complement number.
                        if b > 1 << (n - 1) {
                            b = b.wrapping_sub(1 << n);
                        }
                        b as i64
                    }
                };
                t_delta = (t_delta as i64).wrapping_add(dod) as u64;
                t = t.wrapping_add(t_delta as i64);
                read_value(&mut r, &mut v, &mut leading, &mut trailing)?;
            }
        }
        out.push((t, f64::from_bits(v)));
    }
    Ok(out)
}

/// `xorRead`: the next value from the XOR with `v` (also the histogram chunks' floats).
pub(crate) fn read_value(
    r: &mut BitReader<'_>,
    v: &mut u64,
    leading: &mut u8,
    trailing: &mut u8,
) -> Result<(), ChunkError> {
    if !r.read_bit()? {
        return Ok(());
    }
    let meaningful = if !r.read_bit()? {
        64 - u32::from(*leading) - u32::from(*trailing)
    } else {
        let lead = r.read_bits(5)? as u32;
        let sig = match r.read_bits(6)? as u32 {
            0 => 64,
            n => n,
        };
        if lead + sig > 64 {
            return Err(ChunkError::Corrupt(
                "more than 64 leading and meaningful bits",
            ));
        }
        *leading = lead as u8;
        *trailing = (64 - lead - sig) as u8;
        sig
    };
    let bits = r.read_bits(meaningful)?;
    *v ^= bits.checked_shl(u32::from(*trailing)).unwrap_or(0);
    Ok(())
}
