//! The variable-width integers of the histogram chunks (`tsdb/chunkenc/varbit.go`): a
//! prefix of up to eight 1-bits ended by a 0 picks the width of what follows —
//!
//! ```text
//! 0                    the value 0
//! 10       + 3 bits    10     + 6 bits    110     + 9 bits     1110     + 12 bits
//! 111110   + 18 bits   1111110 + 25 bits  11111110 + 56 bits   11111111 + 64 bits
//! ```
//!
//! (the prefixes in order: `10`, `110`, `1110`, `11110`, `111110`, `1111110`, `11111110`,
//! `11111111` for 3, 6, 9, 12, 18, 25, 56 and 64 bits). Signed values are the low bits of
//! their two's complement, one more on the positive side (`−3..=4` in 3 bits).

use super::ChunkError;
use super::bits::{BitReader, BitWriter};

/// The width after a prefix of `ones` 1-bits (0 for the value 0).
fn width(r: &mut BitReader<'_>) -> Result<u32, ChunkError> {
    let mut ones = 0;
    while ones < 8 && r.read_bit()? {
        ones += 1;
    }
    Ok(match ones {
        0 => 0,
        1 => 3,
        2 => 6,
        3 => 9,
        4 => 12,
        5 => 18,
        6 => 25,
        7 => 56,
        _ => 64,
    })
}

/// `readVarbitInt`.
pub(crate) fn read_int(r: &mut BitReader<'_>) -> Result<i64, ChunkError> {
    let n = width(r)?;
    if n == 0 || n == 64 {
        return Ok(r.read_bits(n)? as i64);
    }
    let mut b = r.read_bits(n)?;
    if b > 1 << (n - 1) {
        b = b.wrapping_sub(1 << n);
    }
    Ok(b as i64)
}

/// `readVarbitUint`.
pub(crate) fn read_uint(r: &mut BitReader<'_>) -> Result<u64, ChunkError> {
    let n = width(r)?;
    r.read_bits(n)
}

/// The prefix of width `n`.
fn write_prefix(w: &mut BitWriter, n: u32) {
    let ones = match n {
        3 => 1,
        6 => 2,
        9 => 3,
        12 => 4,
        18 => 5,
        25 => 6,
        56 => 7,
        _ => 8,
    };
    w.write_bits((1u64 << ones) - 1, ones);
    if ones < 8 {
        w.write_bit(false);
    }
}

/// `putVarbitInt`.
pub(crate) fn write_int(w: &mut BitWriter, v: i64) {
    if v == 0 {
        w.write_bit(false);
        return;
    }
    let n = [3u32, 6, 9, 12, 18, 25, 56]
        .into_iter()
        .find(|&n| -((1i64 << (n - 1)) - 1) <= v && v <= 1i64 << (n - 1))
        .unwrap_or(64);
    write_prefix(w, n);
    w.write_bits(v as u64, n);
}

/// `putVarbitUint`.
pub(crate) fn write_uint(w: &mut BitWriter, v: u64) {
    if v == 0 {
        w.write_bit(false);
        return;
    }
    let n = [3u32, 6, 9, 12, 18, 25, 56]
        .into_iter()
        .find(|&n| v < 1u64 << n)
        .unwrap_or(64);
    write_prefix(w, n);
    w.write_bits(v, n);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn bucket_edges_round_trip() {
        let ints = [
            0i64,
            -3,
            4,
            5,
            -4,
            -31,
            32,
            33,
            -255,
            256,
            -2047,
            2048,
            131_072,
            16_777_216,
            1 << 55,
            (1 << 55) + 1,
            i64::MIN,
            i64::MAX,
        ];
        let mut w = BitWriter::new(Vec::new());
        for v in ints {
            write_int(&mut w, v);
        }
        let bytes = w.into_bytes();
        let mut r = BitReader::new(&bytes);
        for v in ints {
            assert_eq!(read_int(&mut r), Ok(v));
        }
    }

    #[test]
    fn widths_are_prometheus_buckets() {
        // 4 is `10` + 3 bits (5 bits), 5 is `110` + 6 bits (9 bits).
        let mut w = BitWriter::new(Vec::new());
        write_int(&mut w, 4);
        assert_eq!(w.into_bytes(), vec![0b1010_0000]);
        let mut w = BitWriter::new(Vec::new());
        write_int(&mut w, 5);
        assert_eq!(w.into_bytes(), vec![0b1100_0010, 0b1000_0000]);
        let mut w = BitWriter::new(Vec::new());
        write_uint(&mut w, 7);
        assert_eq!(w.into_bytes(), vec![0b1011_1000]);
    }

    proptest! {
        #[test]
        fn any_numbers_round_trip(ints in prop::collection::vec(any::<i64>(), 0..50),
                                  uints in prop::collection::vec(any::<u64>(), 0..50)) {
            let mut w = BitWriter::new(Vec::new());
            for v in &ints {
                write_int(&mut w, *v);
            }
            for v in &uints {
                write_uint(&mut w, *v);
            }
            let bytes = w.into_bytes();
            let mut r = BitReader::new(&bytes);
            for v in &ints {
                prop_assert_eq!(read_int(&mut r), Ok(*v));
            }
            for v in &uints {
                prop_assert_eq!(read_uint(&mut r), Ok(*v));
            }
        }
    }
}
