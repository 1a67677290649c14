//! The bit stream under Prometheus's chunk encodings (`tsdb/chunkenc/bstream.go`): bits
//! are appended most significant first, a new byte is started when the last one is full,
//! and the unused low bits of the last byte stay zero. Reading goes the same way and fails
//! with [`ChunkError::Truncated`] past the end; it never panics on any input.

use super::ChunkError;

/// Appends bits to a byte vector.
#[derive(Debug, Clone)]
pub(crate) struct BitWriter {
    bytes: Vec<u8>,
    /// Bits still free (low end) in the last byte; 0 when the next bit starts a new byte.
    free: u32,
}

impl BitWriter {
    /// A writer appending after `bytes` (a whole number of bytes, e.g. a chunk header).
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        BitWriter { bytes, free: 0 }
    }

    /// Bytes written so far (a partly filled last byte counts whole).
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The bytes written, the last one zero-padded.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes written, the last one zero-padded.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub(crate) fn write_bit(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    pub(crate) fn write_byte(&mut self, b: u8) {
        self.write_bits(u64::from(b), 8);
    }

    /// Appends the `n` (at most 64) low bits of `u`, the most significant first.
    pub(crate) fn write_bits(&mut self, u: u64, n: u32) {
        let mut left = n.min(64);
        while left > 0 {
            if self.free == 0 {
                self.bytes.push(0);
                self.free = 8;
            }
            let take = left.min(self.free);
            let part = (u >> (left - take)) & ((1u64 << take) - 1);
            if let Some(last) = self.bytes.last_mut() {
                *last |= (part as u8) << (self.free - take);
            }
            self.free -= take;
            left -= take;
        }
    }
}

/// Reads bits from a byte slice.
#[derive(Debug, Clone)]
pub(crate) struct BitReader<'a> {
    bytes: &'a [u8],
    /// The next bit to read, counted from the first byte's most significant bit.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        BitReader { bytes, pos: 0 }
    }

    /// Bits not read yet.
    pub(crate) fn bits_left(&self) -> usize {
        (self.bytes.len() * 8).saturating_sub(self.pos)
    }

    pub(crate) fn read_bit(&mut self) -> Result<bool, ChunkError> {
        Ok(self.read_bits(1)? == 1)
    }

    pub(crate) fn read_byte(&mut self) -> Result<u8, ChunkError> {
        Ok(self.read_bits(8)? as u8)
    }

    /// The next `n` (at most 64) bits as the low bits of a number.
    pub(crate) fn read_bits(&mut self, n: u32) -> Result<u64, ChunkError> {
        let n = n.min(64) as usize;
        if self.pos + n > self.bytes.len() * 8 {
            return Err(ChunkError::Truncated);
        }
        let mut out = 0u64;
        let mut left = n;
        while left > 0 {
            let byte = self.bytes[self.pos / 8];
            let used = self.pos % 8;
            let avail = 8 - used;
            let take = left.min(avail);
            let part = (u64::from(byte) >> (avail - take)) & ((1u64 << take) - 1);
            out = (out << take) | part;
            self.pos += take;
            left -= take;
        }
        Ok(out)
    }

    /// A Go `binary.ReadUvarint` read byte by byte from the bit stream.
    pub(crate) fn read_uvarint(&mut self) -> Result<u64, ChunkError> {
        let mut x = 0u64;
        let mut shift = 0u32;
        for i in 0..10 {
            let b = self.read_byte()?;
            if b < 0x80 {
                if i == 9 && b > 1 {
                    return Err(ChunkError::Corrupt("varint overflows 64 bits"));
                }
                return Ok(x | (u64::from(b) << shift));
            }
            x |= u64::from(b & 0x7f) << shift;
            shift += 7;
        }
        Err(ChunkError::Corrupt("varint overflows 64 bits"))
    }

    /// A Go `binary.ReadVarint` (zig-zag) read byte by byte from the bit stream.
    pub(crate) fn read_varint(&mut self) -> Result<i64, ChunkError> {
        let u = self.read_uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
}

/// Go's `binary.PutUvarint` onto `w`, byte by byte.
pub(crate) fn write_uvarint(w: &mut BitWriter, mut x: u64) {
    while x >= 0x80 {
        w.write_byte((x as u8) | 0x80);
        x >>= 7;
    }
    w.write_byte(x as u8);
}

/// Go's `binary.PutVarint` (zig-zag) onto `w`, byte by byte.
pub(crate) fn write_varint(w: &mut BitWriter, x: i64) {
    write_uvarint(w, ((x << 1) ^ (x >> 63)) as u64);
}
