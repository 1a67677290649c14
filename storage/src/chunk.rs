//! Gorilla-style compressed chunk for the head: delta-of-delta timestamps and XOR'd float
//! values in a bit stream, as Prometheus's XOR chunk. About 1–2 bytes per sample instead of
//! 16, which is what keeps head memory per active series low. Samples are appended in time
//! order only; out-of-order samples live beside the chunks (see `series`).

/// Samples per chunk before a new one is started (Prometheus uses 120).
pub(crate) const MAX_SAMPLES: u16 = 120;

#[derive(Debug, Clone, Default)]
struct BitWriter {
    buf: Vec<u8>,
    /// Bits used in the last byte (0 means the last byte is full or there is none).
    used: u8,
}

impl BitWriter {
    /// Makes room for `n` more bytes, growing the buffer by a quarter (at least 16 bytes)
    /// instead of doubling: a head holds one open chunk per series, and doubling left a
    /// third of the head's chunk memory unused.
    fn reserve(&mut self, n: usize) {
        let len = self.buf.len();
        if len + n > self.buf.capacity() {
            self.buf.reserve_exact((len / 4).max(16).max(n));
        }
    }

    fn write_bit(&mut self, bit: bool) {
        if self.used == 0 {
            self.reserve(1);
            self.buf.push(0);
        }
        if let (true, Some(last)) = (bit, self.buf.last_mut()) {
            *last |= 0x80 >> self.used;
        }
        self.used = (self.used + 1) % 8;
    }

    /// Appends the low `n` bits of `value` (1 ≤ n ≤ 64), most significant first: what
    /// fits goes into the last byte, the rest as whole bytes in one copy.
    fn write_bits(&mut self, value: u64, n: u8) {
        let mut left = n;
        if self.used != 0 {
            let free = 8 - self.used;
            let take = free.min(left);
            let chunk = ((value >> (left - take)) & ((1u64 << take) - 1)) as u8;
            if let Some(last) = self.buf.last_mut() {
                *last |= chunk << (free - take);
            }
            self.used = (self.used + take) % 8;
            left -= take;
            if left == 0 {
                return;
            }
        }
        // Byte-aligned: `left` bits, left-aligned in `bytes` whole bytes.
        let bytes = usize::from(left).div_ceil(8);
        let bits = u128::from(value) & ((1u128 << left) - 1);
        let aligned = (bits << (bytes * 8 - usize::from(left))) as u64;
        self.reserve(bytes);
        self.buf
            .extend_from_slice(&aligned.to_be_bytes()[8 - bytes..]);
        self.used = left % 8;
    }
}

/// Reads a chunk's bit stream, most significant bit first. A read loads the 64 bits at the
/// cursor with one unaligned big-endian load (zero past the end) and shifts out its field,
/// instead of looping over bytes: decoding was a quarter of a small head query's CPU.
struct BitReader<'a> {
    buf: &'a [u8],
    /// Cursor, in bits.
    pos: usize,
    /// Bits in `buf`.
    len: usize,
}

impl<'a> BitReader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        BitReader {
            buf,
            pos: 0,
            len: buf.len() * 8,
        }
    }

    /// The 64 bits from the cursor on, zero past the end.
    #[inline]
    fn peek(&self) -> u64 {
        let byte = self.pos >> 3;
        let word = match self.buf.get(byte..byte + 8) {
            Some(b) => <[u8; 8]>::try_from(b).map_or(0, u64::from_be_bytes),
            None => {
                let mut tmp = [0u8; 8];
                let rest = self.buf.get(byte..).unwrap_or(&[]);
                tmp[..rest.len()].copy_from_slice(rest);
                u64::from_be_bytes(tmp)
            }
        };
        let shift = (self.pos & 7) as u32;
        if shift == 0 {
            word
        } else {
            let next = u64::from(self.buf.get(byte + 8).copied().unwrap_or(0));
            (word << shift) | (next >> (8 - shift))
        }
    }

    /// Moves the cursor `n` bits on; `None` past the end of the stream.
    #[inline]
    fn skip(&mut self, n: usize) -> Option<()> {
        if self.pos + n > self.len {
            return None;
        }
        self.pos += n;
        Some(())
    }

    /// The next `n` bits (0 ≤ n ≤ 64) as an integer.
    #[inline]
    fn read_bits(&mut self, n: u8) -> Option<u64> {
        if n == 0 {
            return Some(0);
        }
        let v = self.peek() >> (64 - u32::from(n));
        self.skip(usize::from(n))?;
        Some(v)
    }
}

/// A compressed, append-only run of time-ordered samples.
#[derive(Debug, Clone)]
pub(crate) struct XorChunk {
    bits: BitWriter,
    count: u16,
    first_t: i64,
    first_v: u64,
    last_t: i64,
    last_delta: i64,
    last_v: u64,
    leading: u8,
    trailing: u8,
}

impl XorChunk {
    /// A chunk holding one sample.
    pub(crate) fn new(t: i64, v: f64) -> Self {
        XorChunk {
            bits: BitWriter::default(),
            count: 1,
            first_t: t,
            first_v: v.to_bits(),
            last_t: t,
            last_delta: 0,
            last_v: v.to_bits(),
            leading: 0xff,
            trailing: 0,
        }
    }

    pub(crate) fn len(&self) -> u16 {
        self.count
    }

    pub(crate) fn min_time(&self) -> i64 {
        self.first_t
    }

    pub(crate) fn max_time(&self) -> i64 {
        self.last_t
    }

    /// The newest value.
    pub(crate) fn last_value(&self) -> f64 {
        f64::from_bits(self.last_v)
    }

    pub(crate) fn is_full(&self) -> bool {
        self.count >= MAX_SAMPLES
    }

    /// Heap bytes used.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.bits.buf.capacity()
    }

    pub(crate) fn shrink(&mut self) {
        self.bits.buf.shrink_to_fit();
    }

    /// Appends a sample; the caller guarantees `t > max_time()`.
    pub(crate) fn append(&mut self, t: i64, v: f64) {
        let delta = t.wrapping_sub(self.last_t);
        let dod = delta.wrapping_sub(self.last_delta);
        let w = &mut self.bits;
        if dod == 0 {
            w.write_bit(false);
        } else if (-(1 << 13)..(1 << 13)).contains(&dod) {
            // The prefix and the delta in one write.
            w.write_bits((0b10 << 14) | (dod as u64 & ((1 << 14) - 1)), 16);
        } else if (-(1 << 16)..(1 << 16)).contains(&dod) {
            w.write_bits((0b110 << 17) | (dod as u64 & ((1 << 17) - 1)), 20);
        } else if (-(1 << 19)..(1 << 19)).contains(&dod) {
            w.write_bits((0b1110 << 20) | (dod as u64 & ((1 << 20) - 1)), 24);
        } else {
            w.write_bits(0b1111, 4);
            w.write_bits(dod as u64, 64);
        }
        let vb = v.to_bits();
        let xor = vb ^ self.last_v;
        if xor == 0 {
            w.write_bit(false);
        } else {
            w.write_bit(true);
            let lead = (xor.leading_zeros() as u8).min(31);
            let trail = xor.trailing_zeros() as u8;
            if self.leading != 0xff && lead >= self.leading && trail >= self.trailing {
                w.write_bit(false);
                let sig = 64 - self.leading - self.trailing;
                w.write_bits(xor >> self.trailing, sig);
            } else {
                w.write_bit(true);
                let sig = 64 - lead - trail;
                w.write_bits(lead as u64, 5);
                // sig is 1..=64; 64 is written as 0 in 6 bits.
                w.write_bits((sig % 64) as u64, 6);
                w.write_bits(xor >> trail, sig);
                self.leading = lead;
                self.trailing = trail;
            }
        }
        self.last_t = t;
        self.last_delta = delta;
        self.last_v = vb;
        self.count += 1;
    }

    /// Decodes every sample, in time order, into `out`.
    pub(crate) fn decode_into(&self, out: &mut Vec<(i64, f64)>) {
        self.decode_range_into(i64::MIN, i64::MAX, out);
    }

    /// Decodes the samples with `mint <= t <= maxt`, stopping at the first one past `maxt`
    /// (a short query window decodes a fraction of the chunk).
    pub(crate) fn decode_range_into(&self, mint: i64, maxt: i64, out: &mut Vec<(i64, f64)>) {
        let mut r = BitReader::new(&self.bits.buf);
        let mut t = self.first_t;
        let mut delta = 0i64;
        let mut v = self.first_v;
        if t > maxt {
            return;
        }
        if t >= mint {
            out.push((t, f64::from_bits(v)));
        }
        let (mut leading, mut trailing) = (0u8, 0u8);
        for _ in 1..self.count {
            let Some(dod) = read_dod(&mut r) else { return };
            delta = delta.wrapping_add(dod);
            t = t.wrapping_add(delta);
            // Value control bits: `0` same value, `10` XOR within the previous window,
            // `11` a new window (5 bits leading zeros, 6 bits significant bits).
            let w = r.peek();
            if w >> 63 == 0 {
                if r.skip(1).is_none() {
                    return;
                }
            } else {
                if (w >> 62) & 1 == 1 {
                    let Some(x) = r.skip(2).and_then(|()| r.read_bits(11)) else {
                        return;
                    };
                    let (l, s) = ((x >> 6) as u8, (x & 0x3f) as u8);
                    let sig = if s == 0 { 64 } else { s };
                    leading = l;
                    trailing = 64u8.saturating_sub(leading + sig);
                } else if r.skip(2).is_none() {
                    return;
                }
                let sig = 64 - leading - trailing;
                let Some(bits) = r.read_bits(sig) else { return };
                v ^= bits << trailing;
            }
            if t > maxt {
                return;
            }
            if t >= mint {
                out.push((t, f64::from_bits(v)));
            }
        }
    }
}

/// A timestamp's delta of deltas: a prefix of up to four `1` bits (ended by a `0` below
/// four) choosing 0, 14, 17, 20 or 64 bits of two's-complement value.
fn read_dod(r: &mut BitReader<'_>) -> Option<i64> {
    let w = r.peek();
    let ones = (!w).leading_zeros().min(4) as usize;
    let head = if ones < 4 { ones + 1 } else { 4 };
    let n: u8 = match ones {
        0 => {
            r.skip(1)?;
            return Some(0);
        }
        1 => 14,
        2 => 17,
        3 => 20,
        _ => 64,
    };
    if n == 64 {
        r.skip(head)?;
        return Some(r.read_bits(64)? as i64);
    }
    let raw = (w << head) >> (64 - u32::from(n));
    r.skip(head + usize::from(n))?;
    Some(sign_extend(raw, n))
}

fn sign_extend(raw: u64, n: u8) -> i64 {
    if n == 64 {
        return raw as i64;
    }
    let shift = 64 - n;
    ((raw << shift) as i64) >> shift
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(samples: &[(i64, f64)]) {
        let mut c = XorChunk::new(samples[0].0, samples[0].1);
        for &(t, v) in &samples[1..] {
            c.append(t, v);
        }
        let mut out = Vec::new();
        c.decode_into(&mut out);
        assert_eq!(out.len(), samples.len());
        for (a, b) in out.iter().zip(samples) {
            assert_eq!(a.0, b.0);
            assert_eq!(a.1.to_bits(), b.1.to_bits());
        }
        // A window decodes exactly the samples inside it.
        let (mint, maxt) = (
            samples[samples.len() / 3].0,
            samples[2 * samples.len() / 3].0,
        );
        let mut window = Vec::new();
        c.decode_range_into(mint, maxt, &mut window);
        let want: Vec<(i64, u64)> = samples
            .iter()
            .filter(|s| s.0 >= mint && s.0 <= maxt)
            .map(|s| (s.0, s.1.to_bits()))
            .collect();
        let got: Vec<(i64, u64)> = window.iter().map(|s| (s.0, s.1.to_bits())).collect();
        assert_eq!(got, want);
        // A stream cut short decodes a prefix of the samples and stops.
        for cut in [0, c.bits.buf.len() / 2, c.bits.buf.len().saturating_sub(1)] {
            let mut short = c.clone();
            short.bits.buf.truncate(cut);
            let mut prefix = Vec::new();
            short.decode_into(&mut prefix);
            assert!(prefix.len() <= samples.len());
            for (a, b) in prefix.iter().zip(samples) {
                assert_eq!((a.0, a.1.to_bits()), (b.0, b.1.to_bits()));
            }
        }
    }

    #[test]
    fn regular_counter() {
        let s: Vec<(i64, f64)> = (0..120)
            .map(|i| (1_700_000_000_000 + i * 15_000, (i * 3) as f64))
            .collect();
        roundtrip(&s);
    }

    #[test]
    fn irregular_and_special_values() {
        let s = vec![
            (-5, f64::NAN),
            (0, 1.5),
            (1, f64::INFINITY),
            (1_000_000_000, -0.0),
            (1_000_000_001, f64::from_bits(0x7ff0000000000002)),
            (i64::MAX / 2, 1e300),
            (i64::MAX / 2 + 7, f64::MIN_POSITIVE),
        ];
        roundtrip(&s);
    }

    proptest::proptest! {
        #[test]
        fn any_sorted_samples(mut ts in proptest::collection::vec(-1_000_000_000_000i64..1_000_000_000_000, 1..120),
                              vs in proptest::collection::vec(proptest::num::f64::ANY, 120)) {
            ts.sort_unstable();
            ts.dedup();
            let s: Vec<(i64, f64)> = ts.iter().zip(vs).map(|(t, v)| (*t, v)).collect();
            roundtrip(&s);
        }
    }
}
