//! Prometheus durations (`model.ParseDuration`, `model.Duration.String`): `1h30m`, `5m`,
//! `100ms`; units `y w d h m s ms`, each at most once and from the largest down.

/// A duration that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not of the form `[0-9]+(y|w|d|h|m|s|ms)` repeated with decreasing units.
    #[error("not a valid duration string: {0:?}")]
    Invalid(String),
    /// The empty string.
    #[error("empty duration string")]
    Empty,
    /// Larger than Prometheus's nanosecond `time.Duration` holds.
    #[error("duration out of range")]
    OutOfRange,
}

const UNITS: [(&str, i64); 7] = [
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
];

/// Parses a Prometheus duration into milliseconds (`0` alone is zero).
pub fn parse_ms(s: &str) -> Result<i64, DurationError> {
    match s {
        "0" => return Ok(0),
        "" => return Err(DurationError::Empty),
        _ => {}
    }
    let invalid = || DurationError::Invalid(s.to_string());
    let mut rest = s;
    let mut total: i64 = 0;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let value: i64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::OutOfRange)?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let idx = UNITS
            .iter()
            .position(|(u, _)| *u == unit)
            .filter(|&i| i >= next_unit)
            .ok_or_else(invalid)?;
        next_unit = idx + 1;
        let ms = value
            .checked_mul(UNITS[idx].1)
            .and_then(|v| v.checked_add(total))
            .ok_or(DurationError::OutOfRange)?;
        // Durations are nanoseconds in Prometheus.
        if ms > i64::MAX / 1_000_000 {
            return Err(DurationError::OutOfRange);
        }
        total = ms;
    }
    Ok(total)
}

/// Formats milliseconds like `model.Duration.String()`: `1h30m`, `0s`; years and weeks
/// only when they divide the duration exactly (`90d`, not `12w6d`).
pub fn format_ms(ms: i64) -> String {
    use std::fmt::Write as _;
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms.unsigned_abs();
    if ms < 0 {
        out.push('-');
    }
    for (i, (unit, mult)) in UNITS.iter().enumerate() {
        let mult = *mult as u64;
        let exact_only = i < 2;
        if exact_only && !rest.is_multiple_of(mult) {
            continue;
        }
        let v = rest / mult;
        if v > 0 {
            let _ = write!(out, "{v}{unit}");
            rest -= v * mult;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_like_prometheus() {
        assert_eq!(parse_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_ms("0"), Ok(0));
        assert_eq!(parse_ms("100ms"), Ok(100));
        assert_eq!(parse_ms("1y"), Ok(365 * 86_400_000));
        assert!(parse_ms("1m1h").is_err());
        assert!(parse_ms("1.5h").is_err());
        assert!(parse_ms("5").is_err());
        assert_eq!(parse_ms(""), Err(DurationError::Empty));
        assert_eq!(parse_ms("300y"), Err(DurationError::OutOfRange));
        assert_eq!(format_ms(5_400_000), "1h30m");
        assert_eq!(format_ms(90 * 86_400_000), "90d");
        assert_eq!(format_ms(14 * 86_400_000), "2w");
        assert_eq!(format_ms(8 * 86_400_000), "8d");
        assert_eq!(format_ms(0), "0s");
        assert_eq!(format_ms(-60_000), "-1m");
        assert_eq!(format_ms(1500), "1s500ms");
    }
}
