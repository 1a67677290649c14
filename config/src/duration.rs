//! Prometheus duration strings (`model.Duration`): `1y2w3d4h5m6s7ms`, units in
//! that fixed order, each at most once, or the bare `0`. Years are 365 days
//! and weeks 7 days. Values are kept with millisecond precision.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A Prometheus duration (millisecond resolution).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(std::time::Duration);

impl Duration {
    /// The zero duration (Prometheus treats it as "unset" in most places).
    pub const ZERO: Duration = Duration(std::time::Duration::ZERO);

    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Duration(std::time::Duration::from_secs(secs))
    }

    /// A duration of `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Duration(std::time::Duration::from_millis(ms))
    }

    /// The value as a [`std::time::Duration`].
    pub const fn as_std(self) -> std::time::Duration {
        self.0
    }

    /// Whole milliseconds.
    pub fn as_millis(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }

    /// True for the zero duration.
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// Parses a Prometheus duration string (`model.ParseDuration`).
    pub fn parse(s: &str) -> Result<Self, String> {
        match strata_vocab::duration::parse_ms(s) {
            Ok(ms) => Ok(Duration::from_millis(ms.max(0) as u64)),
            Err(strata_vocab::duration::DurationError::Empty) => {
                Err(format!("not a valid duration string: {s:?}"))
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Self {
        Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

impl FromStr for Duration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Duration::parse(s)
    }
}

/// Prometheus's `model.Duration.String()`: years and weeks only when exact (`90d`).
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = i64::try_from(self.as_millis()).unwrap_or(i64::MAX);
        f.write_str(&strata_vocab::duration::format_ms(ms))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 15s, 1h30m or 2w")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                Duration::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                Duration::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                Duration::parse(&v.to_string()).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::Duration;

    #[test]
    fn parses_prometheus_forms() {
        let cases = [
            ("0", 0),
            ("15s", 15_000),
            ("1h30m", 5_400_000),
            ("1d", 86_400_000),
            ("2w", 14 * 86_400_000),
            ("1y", 365 * 86_400_000),
            ("250ms", 250),
            ("1m0s", 60_000),
        ];
        for (s, ms) in cases {
            assert_eq!(Duration::parse(s), Ok(Duration::from_millis(ms)), "{s}");
        }
        for bad in ["", "1", "1.5s", "1s1m", "1ss", "-1s", "1x", "s", "15 s"] {
            assert!(Duration::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn displays_like_prometheus() {
        assert_eq!(Duration::from_millis(5_400_000).to_string(), "1h30m");
        assert_eq!(Duration::ZERO.to_string(), "0s");
        assert_eq!(Duration::from_millis(90_061_001).to_string(), "1d1h1m1s1ms");
    }
}
