//! [`Duration`]: Prometheus's duration syntax (`1h30m`, `4h`, `1d`, `1w`, `1y`, `0`), kept
//! as milliseconds and written back in Prometheus's canonical form.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A Prometheus duration in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub i64);

impl Duration {
    /// Milliseconds.
    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// Parses `30s`, `1h30m`, `0` …: each unit at most once, in decreasing order
    /// (`model.ParseDuration`).
    pub fn parse(s: &str) -> Result<Duration, String> {
        strata_vocab::duration::parse_ms(s)
            .map(Duration)
            .map_err(|e| e.to_string())
    }
}

impl fmt::Display for Duration {
    /// Prometheus's form: `0s`, `1h30m`, `1d`; years and weeks only when exact.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&strata_vocab::duration::format_ms(self.0))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 30s, 5m or 1h30m")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                Duration::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                self.visit_str(&v.to_string())
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_prometheus_durations() {
        for (s, ms, back) in [
            ("30s", 30_000, "30s"),
            ("5m", 300_000, "5m"),
            ("1h30m", 5_400_000, "1h30m"),
            ("90m", 5_400_000, "1h30m"),
            ("4h", 14_400_000, "4h"),
            ("1d", 86_400_000, "1d"),
            ("1w", 604_800_000, "1w"),
            ("1y", 31_536_000_000, "1y"),
            ("1s500ms", 1_500, "1s500ms"),
            ("0", 0, "0s"),
            ("0s", 0, "0s"),
        ] {
            let d = Duration::parse(s).unwrap();
            assert_eq!((d.as_millis(), d.to_string().as_str()), (ms, back), "{s}");
        }
        for bad in ["", "5", "m", "1m1h", "1h1h", "1.5h", "-1s", "5 m"] {
            assert!(Duration::parse(bad).is_err(), "{bad}");
        }
    }
}
