//! Byte sizes as Prometheus parses them (`units.Base2Bytes`): `B`, `KB`/`KiB`,
//! `MB`/`MiB`, `GB`/`GiB`, `TB`/`TiB`, `PB`/`PiB`, `EB`/`EiB`, all powers of
//! 1024. Components may be chained (`1GiB512MiB`) and fractional (`1.5GB`);
//! a bare `0` is zero. Lower-case `kB` is rejected, as in Prometheus.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A size in bytes (`body_size_limit`, retention size). Zero means "no limit".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

fn unit_multiplier(unit: &str) -> Option<f64> {
    let base = match unit.strip_suffix("iB").or_else(|| unit.strip_suffix('B'))? {
        "" if unit == "B" => 0,
        "K" => 1,
        "M" => 2,
        "G" => 3,
        "T" => 4,
        "P" => 5,
        "E" => 6,
        _ => return None,
    };
    Some(1024f64.powi(base))
}

impl ByteSize {
    /// Number of bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// Parses a Prometheus (base-2) size string.
    pub fn parse(s: &str) -> Result<Self, String> {
        let invalid = || format!("invalid size {s:?} (expected e.g. 512MB, 1GiB)");
        if s == "0" {
            return Ok(ByteSize(0));
        }
        if s.is_empty() {
            return Err(invalid());
        }
        let mut rest = s;
        let mut total = 0f64;
        while !rest.is_empty() {
            let num_len = rest
                .bytes()
                .take_while(|b| b.is_ascii_digit() || *b == b'.')
                .count();
            let num = &rest[..num_len];
            if num.is_empty() || num == "." {
                return Err(invalid());
            }
            let value: f64 = num.parse().map_err(|_| invalid())?;
            rest = &rest[num_len..];
            let unit_len = rest
                .bytes()
                .take_while(|b| !(b.is_ascii_digit() || *b == b'.'))
                .count();
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let mult = unit_multiplier(unit)
                .ok_or_else(|| format!("unknown unit {unit:?} in size {s:?}"))?;
            total += value * mult;
        }
        if total >= 2f64.powi(63) {
            return Err(format!("size {s:?} overflows"));
        }
        // Truncation mirrors the Go implementation (int64(f)).
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(ByteSize(total as u64))
    }
}

impl fmt::Display for ByteSize {
    /// Renders like Go's `Base2Bytes.String()`: `512MiB`, `1GiB512MiB`, `0B`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const PREFIX: [&str; 7] = ["", "K", "M", "G", "T", "P", "E"];
        let mut n = self.0;
        if n == 0 {
            return f.write_str("0B");
        }
        let mut parts = Vec::new();
        for (i, p) in PREFIX.iter().enumerate() {
            let r = n % 1024;
            if r != 0 {
                let suffix = if i == 0 { "B" } else { "iB" };
                parts.push(format!("{r}{p}{suffix}"));
            }
            n /= 1024;
            if n == 0 {
                break;
            }
        }
        parts.reverse();
        f.write_str(&parts.concat())
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 512MB or 1GiB")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("negative size {v}")))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::ByteSize;

    #[test]
    fn parses_base2_units() {
        assert_eq!(ByteSize::parse("512MB"), Ok(ByteSize(512 << 20)));
        assert_eq!(ByteSize::parse("1GiB"), Ok(ByteSize(1 << 30)));
        assert_eq!(ByteSize::parse("1KB"), Ok(ByteSize(1024)));
        assert_eq!(ByteSize::parse("100B"), Ok(ByteSize(100)));
        assert_eq!(ByteSize::parse("1.5KiB"), Ok(ByteSize(1536)));
        assert_eq!(
            ByteSize::parse("1GiB512MiB"),
            Ok(ByteSize((1 << 30) + (512 << 20)))
        );
        assert_eq!(ByteSize::parse("0"), Ok(ByteSize(0)));
        for bad in ["", "1kB", "12", "MB", "1XB", "-1MB"] {
            assert!(ByteSize::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn displays_like_go() {
        assert_eq!(ByteSize(512 << 20).to_string(), "512MiB");
        assert_eq!(ByteSize((1 << 30) + 1).to_string(), "1GiB1B");
        assert_eq!(ByteSize(0).to_string(), "0B");
    }
}
