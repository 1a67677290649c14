//! Go `time.Time` values for notification templates: `Time.Format` layouts, `Time.String`,
//! and `time.LoadLocation` for the `tz` function (UTC, fixed offsets, system zoneinfo).

use std::fmt::Write as _;
use std::rc::Rc;

use strata_grammar::civil_from_unix;

/// A Go `time.Time`: an instant (Unix milliseconds) viewed in a zone.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GoTime {
    /// Unix milliseconds.
    pub(crate) ms: i64,
    /// Zone offset east of UTC, in seconds.
    pub(crate) off: i32,
    /// Zone abbreviation (`UTC`, `CEST`); empty for unnamed fixed offsets.
    pub(crate) zone: Rc<str>,
}

/// Go's `time.Time.String` layout (without the monotonic clock reading).
const STRING_LAYOUT: &str = "2006-01-02 15:04:05.999999999 -0700 MST";

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// A `time.Format` layout element.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    Pm(bool),
    /// Numeric zone: `Z` prefix (ISO 8601), colons, with seconds, with minutes.
    Tz(bool, bool, bool, bool),
    ZoneName,
    /// Fractional seconds: separator, digits, trim trailing zeros (`.999`).
    Frac(char, usize, bool),
}

impl GoTime {
    /// A UTC time.
    pub(crate) fn utc(ms: i64) -> GoTime {
        GoTime {
            ms,
            off: 0,
            zone: "UTC".into(),
        }
    }

    /// `Time.String()`: `2006-01-02 15:04:05.999999999 -0700 MST`.
    pub(crate) fn string(&self) -> String {
        self.format(STRING_LAYOUT)
    }

    /// `Time.Format(layout)`.
    pub(crate) fn format(&self, layout: &str) -> String {
        let local = self.ms.div_euclid(1000) + i64::from(self.off);
        let nanos = self.ms.rem_euclid(1000) * 1_000_000;
        let (year, month, day, hour, min, sec) = civil_from_unix(local);
        let days = local.div_euclid(86_400);
        let weekday = (days + 4).rem_euclid(7) as usize;
        let yday = days - strata_grammar::days_from_civil(year, 1, 1) + 1;
        let mut out = String::new();
        let mut rest = layout;
        while !rest.is_empty() {
            let Some((start, std, len)) = next_std(rest) else {
                out.push_str(rest);
                break;
            };
            out.push_str(&rest[..start]);
            rest = &rest[start + len..];
            let month_name = MONTHS[(month - 1).clamp(0, 11) as usize];
            let _ = match std {
                Std::LongMonth => write!(out, "{month_name}"),
                Std::Month => write!(out, "{}", &month_name[..3]),
                Std::NumMonth => write!(out, "{month}"),
                Std::ZeroMonth => write!(out, "{month:02}"),
                Std::LongWeekDay => write!(out, "{}", DAYS[weekday]),
                Std::WeekDay => write!(out, "{}", &DAYS[weekday][..3]),
                Std::Day => write!(out, "{day}"),
                Std::UnderDay => write!(out, "{day:>2}"),
                Std::ZeroDay => write!(out, "{day:02}"),
                Std::UnderYearDay => write!(out, "{yday:>3}"),
                Std::ZeroYearDay => write!(out, "{yday:03}"),
                Std::Hour => write!(out, "{hour:02}"),
                Std::Hour12 => write!(out, "{}", (hour + 11) % 12 + 1),
                Std::ZeroHour12 => write!(out, "{:02}", (hour + 11) % 12 + 1),
                Std::Minute => write!(out, "{min}"),
                Std::ZeroMinute => write!(out, "{min:02}"),
                Std::Second => write!(out, "{sec}"),
                Std::ZeroSecond => write!(out, "{sec:02}"),
                Std::LongYear if year < 0 => write!(out, "-{:04}", -year),
                Std::LongYear => write!(out, "{year:04}"),
                Std::Year => write!(out, "{:02}", year.rem_euclid(100)),
                Std::Pm(upper) => {
                    let pm = if hour >= 12 { "PM" } else { "AM" };
                    let pm = if upper {
                        pm.to_string()
                    } else {
                        pm.to_lowercase()
                    };
                    write!(out, "{pm}")
                }
                Std::ZoneName if self.zone.is_empty() => {
                    write!(out, "{}", numeric_zone(self.off, false, false, true))
                }
                Std::ZoneName => write!(out, "{}", self.zone),
                Std::Tz(z, colon, secs, mins) => {
                    if z && self.off == 0 {
                        write!(out, "Z")
                    } else {
                        write!(out, "{}", numeric_zone(self.off, colon, secs, mins))
                    }
                }
                Std::Frac(sep, n, trim) => {
                    let digits = format!("{nanos:09}");
                    let digits = &digits[..n.min(9)];
                    let digits = if trim {
                        digits.trim_end_matches('0')
                    } else {
                        digits
                    };
                    if digits.is_empty() {
                        Ok(())
                    } else {
                        write!(out, "{sep}{digits}")
                    }
                }
            };
        }
        out
    }
}

/// `-0700`, `-07:00`, `-07:00:00` or `-07` for an offset in seconds.
fn numeric_zone(off: i32, colon: bool, secs: bool, mins: bool) -> String {
    let sign = if off < 0 { '-' } else { '+' };
    let a = off.unsigned_abs();
    let (h, m, s) = (a / 3600, a / 60 % 60, a % 60);
    let sep = if colon { ":" } else { "" };
    let mut out = format!("{sign}{h:02}");
    if mins || secs {
        let _ = write!(out, "{sep}{m:02}");
    }
    if secs {
        let _ = write!(out, "{sep}{s:02}");
    }
    out
}

/// Go's `nextStdChunk`: the first layout element in `s` as (offset, element, length).
fn next_std(s: &str) -> Option<(usize, Std, usize)> {
    let b = s.as_bytes();
    let at = |i: usize, p: &str| s.get(i..).is_some_and(|r| r.starts_with(p));
    let lower_after = |i: usize| b.get(i).is_some_and(u8::is_ascii_lowercase);
    for i in 0..b.len() {
        let found = match b[i] {
            b'J' if at(i, "January") => Some((Std::LongMonth, 7)),
            b'J' if at(i, "Jan") && !lower_after(i + 3) => Some((Std::Month, 3)),
            b'M' if at(i, "Monday") => Some((Std::LongWeekDay, 6)),
            b'M' if at(i, "Mon") && !lower_after(i + 3) => Some((Std::WeekDay, 3)),
            b'M' if at(i, "MST") => Some((Std::ZoneName, 3)),
            b'0' => match b.get(i + 1) {
                Some(b'1') => Some((Std::ZeroMonth, 2)),
                Some(b'2') => Some((Std::ZeroDay, 2)),
                Some(b'3') => Some((Std::ZeroHour12, 2)),
                Some(b'4') => Some((Std::ZeroMinute, 2)),
                Some(b'5') => Some((Std::ZeroSecond, 2)),
                Some(b'6') => Some((Std::Year, 2)),
                Some(b'0') if b.get(i + 2) == Some(&b'2') => Some((Std::ZeroYearDay, 3)),
                _ => None,
            },
            b'1' if b.get(i + 1) == Some(&b'5') => Some((Std::Hour, 2)),
            b'1' => Some((Std::NumMonth, 1)),
            b'2' if at(i, "2006") => Some((Std::LongYear, 4)),
            b'2' => Some((Std::Day, 1)),
            b'_' if at(i, "_2006") => return Some((i + 1, Std::LongYear, 4)),
            b'_' if at(i, "_2") => Some((Std::UnderDay, 2)),
            b'_' if at(i, "__2") => Some((Std::UnderYearDay, 3)),
            b'3' => Some((Std::Hour12, 1)),
            b'4' => Some((Std::Minute, 1)),
            b'5' => Some((Std::Second, 1)),
            b'P' if b.get(i + 1) == Some(&b'M') => Some((Std::Pm(true), 2)),
            b'p' if b.get(i + 1) == Some(&b'm') => Some((Std::Pm(false), 2)),
            c @ (b'-' | b'Z') => {
                let z = c == b'Z';
                [
                    ("070000", false, true),
                    ("07:00:00", true, true),
                    ("0700", false, false),
                    ("07:00", true, false),
                    ("07", false, false),
                ]
                .iter()
                .find(|(p, _, _)| at(i + 1, p))
                .map(|(p, colon, secs)| (Std::Tz(z, *colon, *secs, p.len() > 2), p.len() + 1))
            }
            c @ (b'.' | b',') if matches!(b.get(i + 1), Some(b'0' | b'9')) => {
                let d = b[i + 1];
                let n = b[i + 1..].iter().take_while(|&&x| x == d).count();
                let std = Std::Frac(char::from(c), n, d == b'9');
                (!b.get(i + 1 + n).is_some_and(u8::is_ascii_digit)).then_some((std, n + 1))
            }
            _ => None,
        };
        if let Some((std, len)) = found {
            return Some((i, std, len));
        }
    }
    None
}

/// A time zone loaded by `tz`.
#[derive(Debug, Clone)]
pub(crate) enum Zone {
    /// A fixed offset (seconds east of UTC) and its abbreviation.
    Fixed(i32, Rc<str>),
    /// Transitions (Unix seconds, offset, abbreviation) from a zoneinfo file; the first
    /// entry also applies before the first transition.
    Rules(Vec<(i64, i32, Rc<str>)>),
}

impl Zone {
    /// `t.In(zone)`.
    pub(crate) fn apply(&self, ms: i64) -> GoTime {
        let (off, zone) = match self {
            Zone::Fixed(off, name) => (*off, name.clone()),
            Zone::Rules(r) => {
                let secs = ms.div_euclid(1000);
                let i = r
                    .partition_point(|(at, _, _)| *at <= secs)
                    .saturating_sub(1);
                r.get(i)
                    .map_or((0, "UTC".into()), |(_, o, n)| (*o, n.clone()))
            }
        };
        GoTime { ms, off, zone }
    }
}

/// `time.LoadLocation`: `UTC`/`""`, `Local` (treated as UTC), IANA names from the system
/// zoneinfo database, and (an extension) fixed offsets such as `+02:00` or `-0530`.
pub(crate) fn load_location(name: &str) -> Result<Zone, String> {
    if name.is_empty() || name == "UTC" || name == "Local" {
        return Ok(Zone::Fixed(0, "UTC".into()));
    }
    if let Some(off) = fixed_offset(name) {
        return Ok(Zone::Fixed(off, "".into()));
    }
    if name.contains("..") || name.starts_with('/') || name.starts_with('\\') {
        return Err("time: invalid location name".into());
    }
    let dirs = std::env::var("ZONEINFO").into_iter().chain(
        [
            "/usr/share/zoneinfo",
            "/usr/share/lib/zoneinfo",
            "/usr/lib/locale/TZ",
        ]
        .map(String::from),
    );
    for dir in dirs {
        if let Ok(bytes) = std::fs::read(format!("{dir}/{name}")) {
            return parse_tzif(&bytes).ok_or_else(|| format!("unknown time zone {name}"));
        }
    }
    Err(format!("unknown time zone {name}"))
}

/// `+HH:MM`, `+HHMM` or `+HH` (and `-`) as seconds east of UTC.
fn fixed_offset(s: &str) -> Option<i32> {
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = s[1..].chars().filter(|&c| c != ':').collect();
    if !digits.bytes().all(|c| c.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let h: i32 = digits[..2].parse().ok()?;
    let m: i32 = digits.get(2..).map_or(Some(0), |m| m.parse().ok())?;
    (h <= 14 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

/// Parses a TZif file (version 1 data, or the 64-bit version 2+ block when present).
fn parse_tzif(b: &[u8]) -> Option<Zone> {
    let header = |at: usize| -> Option<[usize; 6]> {
        if b.get(at..at + 4)? != b"TZif" {
            return None;
        }
        let mut c = [0usize; 6];
        for (i, v) in c.iter_mut().enumerate() {
            let p = at + 20 + 4 * i;
            *v = u32::from_be_bytes(b.get(p..p + 4)?.try_into().ok()?) as usize;
        }
        Some(c)
    };
    let [isut, isstd, leap, timecnt, typecnt, charcnt] = header(0)?;
    let v1_len = timecnt * 5 + typecnt * 6 + charcnt + leap * 8 + isstd + isut;
    let (start, tsize, counts) = match b.get(4) {
        Some(v) if *v >= b'2' => (44 + v1_len + 44, 8, header(44 + v1_len)?),
        _ => (44, 4, [isut, isstd, leap, timecnt, typecnt, charcnt]),
    };
    let [_, _, _, timecnt, typecnt, charcnt] = counts;
    let int = |p: usize, n: usize| -> Option<i64> {
        let s = b.get(p..p + n)?;
        Some(if n == 8 {
            i64::from_be_bytes(s.try_into().ok()?)
        } else {
            i64::from(i32::from_be_bytes(s.try_into().ok()?))
        })
    };
    let idx_at = start + timecnt * tsize;
    let types_at = idx_at + timecnt;
    let chars_at = types_at + typecnt * 6;
    let chars = b.get(chars_at..chars_at + charcnt)?;
    let ty = |i: usize| -> Option<(i32, Rc<str>)> {
        let p = types_at + i * 6;
        let off = i32::try_from(int(p, 4)?).ok()?;
        let name_at = usize::from(*b.get(p + 5)?);
        let name = chars.get(name_at..)?;
        let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
        Some((off, String::from_utf8_lossy(&name[..end]).into()))
    };
    let first = (0..typecnt)
        .find(|&i| b.get(types_at + i * 6 + 4) == Some(&0))
        .unwrap_or(0);
    let (off, name) = ty(first)?;
    let mut rules = vec![(i64::MIN, off, name)];
    for i in 0..timecnt {
        let at = int(start + i * tsize, tsize)?;
        let (off, name) = ty(usize::from(*b.get(idx_at + i)?))?;
        rules.push((at, off, name));
    }
    Some(Zone::Rules(rules))
}
