//! Float samples as decimals: `value = mantissa × 2^shift × 10^exponent`, exactly.
//!
//! Monitoring values are nearly always short decimals (counters, byte and bucket counts,
//! milliseconds summed as seconds with three decimals). Stored as an integer mantissa per
//! sample and one decimal exponent per series, a series' consecutive values differ by small
//! integers, which Parquet's `DELTA_BINARY_PACKED` packs into a few bits each, where the
//! IEEE-754 bits of the same values (even byte-stream-split and ZSTD-compressed) cost 1.3
//! bytes (VictoriaMetrics stores values the same way). A series whose mantissas share
//! trailing zero bits (byte counts in pages of 4096) stores them shifted right by a
//! per-series `shift`.
//!
//! The round trip is bit-exact: a value is stored as a decimal only when decoding gives the
//! same bits back, and decoding is one correctly rounded IEEE-754 operation on two exact
//! operands (`m = mantissa × 2^shift`, an integer with `|m| < 2^53`, and `10^|exponent| ≤
//! 10^22`):
//!
//! ```text
//! exponent ≥ 0:  value = m as f64 * 10^exponent
//! exponent < 0:  value = m as f64 / 10^-exponent
//! ```
//!
//! so the result is the double nearest to `m × 10^exponent`, which is the stored value. NaN (stale markers among them, with their bit patterns), ±Inf, `-0.0` and values
//! with more than about 15 significant digits are not decimals: they stay IEEE-754 floats.

/// `10^k` for `k` in `0..=22`: every one is exact in an `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Mantissas are below 2^53 in magnitude, so they are exact in an `f64`.
const MANTISSA_LIMIT: i64 = 1 << 53;
const MANTISSA_LIMIT_F: f64 = MANTISSA_LIMIT as f64;

/// The exponent that marks a value stored as a float, not a decimal.
pub const FLOAT_EXPONENT: i8 = i8::MIN;

/// The value of `mantissa × 2^shift × 10^exponent`; `None` when it is outside the
/// encoding (a corrupt file).
#[inline]
pub fn decode(mantissa: i64, shift: i8, exponent: i8) -> Option<f64> {
    if shift == 0 && exponent == 0 {
        // Integers, most monitoring values.
        return (-MANTISSA_LIMIT < mantissa && mantissa < MANTISSA_LIMIT)
            .then_some(mantissa as f64);
    }
    // `shift` < 53 and `|mantissa| < 2^(53 - shift)`: the shifted mantissa is below 2^53.
    let room = MANTISSA_LIMIT.checked_shr(u32::try_from(shift).ok()?)?;
    if !(-room < mantissa && mantissa < room) {
        return None;
    }
    let mantissa = mantissa << shift;
    let p = *POW10.get(exponent.unsigned_abs() as usize)?;
    Some(if exponent >= 0 {
        mantissa as f64 * p
    } else {
        mantissa as f64 / p
    })
}

/// A decimal `(mantissa, exponent)` that decodes to exactly `v`, if any: the one with the
/// fewest digits after the point, or for a magnitude of 2^53 or more the smallest exponent.
pub fn to_decimal(v: f64) -> Option<(i64, i8)> {
    if !v.is_finite() || (v == 0.0 && v.is_sign_negative()) {
        return None;
    }
    if v.fract() == 0.0 && v.abs() < MANTISSA_LIMIT_F {
        return Some((v as i64, 0));
    }
    if v.abs() >= MANTISSA_LIMIT_F {
        // Large integers: a short mantissa times a power of ten.
        for (k, p) in POW10.iter().enumerate().skip(1) {
            let m = (v / p).round();
            if m.abs() < MANTISSA_LIMIT_F && m * p == v {
                return Some((m as i64, k as i8));
            }
        }
        return None;
    }
    for (k, p) in POW10.iter().enumerate().skip(1) {
        let m = (v * p).round();
        if m.abs() >= MANTISSA_LIMIT_F {
            // More digits can only make the mantissa larger.
            return None;
        }
        if m / p == v {
            return Some((m as i64, -(k as i8)));
        }
    }
    None
}

/// A series' values as decimals with one shift and exponent: `mantissas[i]` is `None`
/// where `values[i]` stays a float.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesDecimals {
    pub shift: i8,
    pub exponent: i8,
    pub mantissas: Vec<Option<i64>>,
}

/// Encodes a series' values with the exponent that keeps all but at most 1/64 of its
/// decimal values (the finest one most values need): a few odd values with many digits
/// stay floats rather than widening every mantissa.
pub fn encode_series(values: &[f64]) -> SeriesDecimals {
    let decs: Vec<Option<(i64, i8)>> = values.iter().map(|&v| to_decimal(v)).collect();
    let mut exps: Vec<i8> = decs.iter().flatten().map(|d| d.1).collect();
    if exps.is_empty() {
        return SeriesDecimals {
            shift: 0,
            exponent: 0,
            mantissas: vec![None; values.len()],
        };
    }
    exps.sort_unstable();
    let exponent = exps[exps.len() / 64];
    let mut mantissas: Vec<Option<i64>> = decs
        .into_iter()
        .map(|d| {
            let (m, e) = d?;
            let shift = usize::try_from(e.checked_sub(exponent)?).ok()?;
            // `e ≥ exponent`: scale the mantissa up to the series' exponent.
            let scale = 10i64.checked_pow(u32::try_from(shift).ok()?)?;
            let m = m.checked_mul(scale)?;
            (-MANTISSA_LIMIT < m && m < MANTISSA_LIMIT).then_some(m)
        })
        .collect();
    // Trailing zero bits every mantissa has (0 has them all).
    let shift = mantissas
        .iter()
        .flatten()
        .map(|m| m.trailing_zeros())
        .min()
        .unwrap_or(0)
        .min(52);
    if shift > 0 {
        for m in mantissas.iter_mut().flatten() {
            *m >>= shift;
        }
    }
    SeriesDecimals {
        shift: shift as i8,
        exponent,
        mantissas,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn round_trips(v: f64) -> bool {
        match to_decimal(v) {
            Some((m, e)) => decode(m, 0, e).map(f64::to_bits) == Some(v.to_bits()),
            None => true,
        }
    }

    #[test]
    fn monitoring_values_are_short_decimals() {
        assert_eq!(to_decimal(0.0), Some((0, 0)));
        assert_eq!(to_decimal(42.0), Some((42, 0)));
        assert_eq!(to_decimal(-7.0), Some((-7, 0)));
        assert_eq!(to_decimal(1234.567), Some((1_234_567, -3)));
        assert_eq!(to_decimal(0.1), Some((1, -1)));
        assert_eq!(to_decimal(1e-9), Some((1, -9)));
        assert_eq!(to_decimal(1e20), Some((1_000_000_000_000_000, 5)));
        assert_eq!(to_decimal(17_179_869_184.0), Some((17_179_869_184, 0)));
    }

    #[test]
    fn non_decimals_stay_floats() {
        assert_eq!(to_decimal(f64::NAN), None);
        assert_eq!(to_decimal(f64::from_bits(0x7ff0_0000_0000_0002)), None);
        assert_eq!(to_decimal(f64::INFINITY), None);
        assert_eq!(to_decimal(f64::NEG_INFINITY), None);
        assert_eq!(to_decimal(-0.0), None);
        assert_eq!(to_decimal(0.1 + 0.2), None);
        assert_eq!(to_decimal(f64::from_bits(0x3ff0_0000_0000_0001)), None);
        assert_eq!(to_decimal(f64::MAX), None);
        assert_eq!(to_decimal(f64::MIN_POSITIVE), None);
    }

    #[test]
    fn decode_refuses_what_the_encoder_never_writes() {
        assert_eq!(decode(1 << 53, 0, 0), None);
        assert_eq!(decode(-(1 << 53), 0, 0), None);
        assert_eq!(decode(1 << 43, 10, 0), None);
        assert_eq!(
            decode((1 << 43) - 1, 10, 0),
            Some(((1u64 << 53) - 1024) as f64)
        );
        assert_eq!(decode(1, 53, 0), None);
        assert_eq!(decode(1, -1, 0), None);
        assert_eq!(decode(1, 0, 23), None);
        assert_eq!(decode(1, 0, -23), None);
        assert_eq!(decode(1, 0, i8::MIN), None);
    }

    #[test]
    fn a_series_takes_the_exponent_most_values_need() {
        let s = encode_series(&[1.5, 2.0, 3.25, f64::NAN]);
        assert_eq!((s.shift, s.exponent), (0, -2));
        assert_eq!(s.mantissas, vec![Some(150), Some(200), Some(325), None]);
        // Pages of 4096 bytes: twelve trailing zero bits shifted out.
        let s = encode_series(&[8192.0, 0.0, 4096.0 * 3.0]);
        assert_eq!((s.shift, s.exponent), (12, 0));
        assert_eq!(s.mantissas, vec![Some(2), Some(0), Some(3)]);
        // One odd value among many does not widen the others.
        let mut v: Vec<f64> = (0..100).map(f64::from).collect();
        v[50] = 0.123_456_789;
        let s = encode_series(&v);
        assert_eq!(s.exponent, 0);
        assert_eq!(s.mantissas[50], None);
        assert_eq!(s.mantissas[99], Some(99));
        // Scaling up past 2^53 leaves the value a float.
        let s = encode_series(&[0.5, 0.25, 1e15]);
        assert_eq!((s.shift, s.exponent), (0, -2));
        assert_eq!(s.mantissas, vec![Some(50), Some(25), None]);
    }

    proptest! {
        #[test]
        fn every_float_round_trips(bits in any::<u64>()) {
            prop_assert!(round_trips(f64::from_bits(bits)));
        }

        #[test]
        fn short_decimals_are_found(m in -(1i64 << 40)..(1i64 << 40), k in 0u32..10) {
            let v = m as f64 / 10f64.powi(k as i32);
            let (dm, de) = to_decimal(v).unwrap();
            prop_assert_eq!(decode(dm, 0, de).unwrap().to_bits(), v.to_bits());
            prop_assert!(de >= -(k as i8));
        }

        #[test]
        fn series_round_trip(vals in proptest::collection::vec(
            prop_oneof![
                (-1_000_000i64..1_000_000).prop_map(|m| m as f64 / 1000.0),
                (0u64..1 << 40).prop_map(|m| m as f64),
                any::<u64>().prop_map(f64::from_bits),
            ], 0..200)) {
            let s = encode_series(&vals);
            for (v, m) in vals.iter().zip(&s.mantissas) {
                if let Some(m) = m {
                    prop_assert_eq!(decode(*m, s.shift, s.exponent).unwrap().to_bits(), v.to_bits());
                }
            }
        }
    }
}
