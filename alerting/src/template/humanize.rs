//! Prometheus's `humanize*` functions and Go time rendering (`time.Time.String`,
//! `time.Duration.String`, Prometheus `model.ParseDuration`).

use strata_grammar::civil_from_unix;
use strata_grammar::format_go_float as format_float;

/// `fmt.Sprintf("%.4g", v)`.
fn g4(v: f64) -> String {
    format_float(v, 'g', Some(4))
}

/// Scales `v` by `step` while it is outside `[1, step)`, picking the matching prefix.
fn scale(mut v: f64, step: f64, up: bool, prefixes: &[&'static str]) -> String {
    let mut prefix = "";
    for p in prefixes {
        if (up && v.abs() < step) || (!up && v.abs() >= 1.0) {
            break;
        }
        prefix = p;
        v = if up { v / step } else { v * step };
    }
    format!("{}{prefix}", g4(v))
}

const BIG: [&str; 8] = ["k", "M", "G", "T", "P", "E", "Z", "Y"];
const SMALL: [&str; 8] = ["m", "u", "n", "p", "f", "a", "z", "y"];

/// `humanize`: SI prefixes with 4 significant digits.
pub(crate) fn humanize(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        g4(v)
    } else if v.abs() >= 1.0 {
        scale(v, 1000.0, true, &BIG)
    } else {
        scale(v, 1000.0, false, &SMALL)
    }
}

/// `humanize1024`: binary (IEC) prefixes.
pub(crate) fn humanize1024(v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return g4(v);
    }
    scale(
        v,
        1024.0,
        true,
        &["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"],
    )
}

/// `humanizeDuration`: seconds as `1d 2h 3m 4s`, `3.5s` or `1.2ms`.
pub(crate) fn humanize_duration(v: f64) -> String {
    if !v.is_finite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() < 1.0 {
        return format!("{}s", scale(v, 1000.0, false, &SMALL));
    }
    let (sign, v) = if v < 0.0 { ("-", -v) } else { ("", v) };
    let d = v as i64;
    let (days, hours, minutes, seconds) = (d / 86400, d / 3600 % 24, d / 60 % 60, d % 60);
    if days != 0 {
        format!("{sign}{days}d {hours}h {minutes}m {seconds}s")
    } else if hours != 0 {
        format!("{sign}{hours}h {minutes}m {seconds}s")
    } else if minutes != 0 {
        format!("{sign}{minutes}m {seconds}s")
    } else {
        format!("{sign}{}s", g4(v))
    }
}

/// `humanizePercentage`: a ratio as `12.34%`.
pub(crate) fn humanize_percentage(v: f64) -> String {
    format!("{}%", g4(v * 100.0))
}

/// `humanizeTimestamp`: Unix seconds as a UTC time string (NaN/Inf as numbers).
pub(crate) fn humanize_timestamp(v: f64) -> Result<String, String> {
    if !v.is_finite() {
        return Ok(g4(v));
    }
    float_to_time(v).map(go_time)
}

/// Unix seconds to Unix milliseconds the way Prometheus does (`model.TimeFromUnixNano`).
pub(crate) fn float_to_time(v: f64) -> Result<i64, String> {
    if !v.is_finite() {
        return Err("value is NaN or Inf".into());
    }
    let ns = v * 1e9;
    if ns > i64::MAX as f64 || ns < i64::MIN as f64 {
        let v = format_float(v, 'g', None);
        return Err(format!(
            "{v} cannot be represented as a nanoseconds timestamp since it overflows int64"
        ));
    }
    Ok(ns as i64 / 1_000_000)
}

/// Go's `time.Time.String()` of a UTC time given in Unix milliseconds.
pub(crate) fn go_time(ms: i64) -> String {
    let (secs, nanos) = (ms.div_euclid(1000), ms.rem_euclid(1000) * 1_000_000);
    let (year, month, day, hh, mm, ss) = civil_from_unix(secs);
    let mut s = format!("{year:04}-{month:02}-{day:02} {hh:02}:{mm:02}:{ss:02}");
    if nanos > 0 {
        s.push('.');
        s.push_str(format!("{nanos:09}").trim_end_matches('0'));
    }
    s + " +0000 UTC"
}

/// Go's `time.Duration.String()` of a duration in nanoseconds.
pub(crate) fn go_duration(d: i64) -> String {
    if d == 0 {
        return "0s".into();
    }
    let u = d.unsigned_abs();
    let frac = |prec: u32| {
        let p = 10u64.pow(prec);
        let digits = format!("{:0w$}", u % p, w = prec as usize);
        let digits = digits.trim_end_matches('0');
        (
            if digits.is_empty() {
                String::new()
            } else {
                format!(".{digits}")
            },
            u / p,
        )
    };
    let s = if u < 1_000_000_000 {
        let (unit, prec) = match u {
            0..1_000 => ("ns", 0),
            1_000..1_000_000 => ("µs", 3),
            _ => ("ms", 6),
        };
        let (f, int) = frac(prec);
        format!("{int}{f}{unit}")
    } else {
        let (f, secs) = frac(9);
        let (h, m, sec) = (secs / 3600, secs / 60 % 60, secs % 60);
        match (h, secs / 60) {
            (0, 0) => format!("{sec}{f}s"),
            (0, _) => format!("{m}m{sec}{f}s"),
            _ => format!("{h}h{m}m{sec}{f}s"),
        }
    };
    if d < 0 { format!("-{s}") } else { s }
}

/// Prometheus `model.ParseDuration` (`1y2w3d4h5m6s7ms`), returned in seconds.
pub(crate) fn parse_duration(s: &str) -> Result<f64, String> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    match s {
        "0" => return Ok(0.0),
        "" => return Err("empty duration string".into()),
        _ => {}
    }
    let bad = || format!("not a valid duration string: {s:?}");
    let (mut rest, mut next_unit, mut total_ms) = (s, 0, 0u64);
    while !rest.is_empty() {
        let n = rest.bytes().take_while(u8::is_ascii_digit).count();
        let v: u64 = rest[..n].parse().map_err(|_| bad())?;
        let m = rest[n..]
            .bytes()
            .take_while(|b| !b.is_ascii_digit())
            .count();
        let unit = &rest[n..n + m];
        rest = &rest[n + m..];
        let Some(i) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(if m == 0 {
                bad()
            } else {
                format!("unknown unit {unit:?} in duration {s:?}")
            });
        };
        if i < next_unit {
            return Err(bad());
        }
        next_unit = i + 1;
        total_ms = v
            .checked_mul(UNITS[i].1)
            .and_then(|x| x.checked_add(total_ms))
            .filter(|&x| x <= i64::MAX as u64 / 1_000_000)
            .ok_or("duration out of range")?;
    }
    Ok(total_ms as f64 / 1000.0)
}
