//! Named time intervals (`time_intervals` and the deprecated `mute_time_intervals`) with
//! Alertmanager's parsing rules, evaluated on UTC unix milliseconds.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use super::locate::Locator;
use super::scalar::{or_default, strings};

/// A named list of time intervals; a time is in it when it is in any of them.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NamedTimeInterval {
    /// `name`, unique across both lists.
    pub name: String,
    /// `time_intervals`.
    #[serde(deserialize_with = "or_default")]
    pub time_intervals: Vec<TimeInterval>,
}

impl NamedTimeInterval {
    /// Whether `unix_ms` falls in any of the intervals.
    pub fn contains(&self, unix_ms: i64) -> bool {
        self.time_intervals.iter().any(|t| t.contains(unix_ms))
    }
}

/// One interval: every non-empty list must contain the time. Strings are as written.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeInterval {
    /// `times`: `start_time` inclusive, `end_time` exclusive.
    #[serde(deserialize_with = "or_default", skip_serializing_if = "Vec::is_empty")]
    pub times: Vec<TimeRange>,
    /// `weekdays`: `monday:friday`, `saturday` (inclusive).
    #[serde(deserialize_with = "strings", skip_serializing_if = "Vec::is_empty")]
    pub weekdays: Vec<String>,
    /// `days_of_month`: `1:5`, `-1` (negative counts from the month's end).
    #[serde(deserialize_with = "strings", skip_serializing_if = "Vec::is_empty")]
    pub days_of_month: Vec<String>,
    /// `months`: `january:march`, `12`.
    #[serde(deserialize_with = "strings", skip_serializing_if = "Vec::is_empty")]
    pub months: Vec<String>,
    /// `years`: `2020:2022`.
    #[serde(deserialize_with = "strings", skip_serializing_if = "Vec::is_empty")]
    pub years: Vec<String>,
    /// `location`: only `UTC` and `Local` (treated as UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip)]
    parsed: Parsed,
}

/// `{start_time: "HH:MM", end_time: "HH:MM"}`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeRange {
    /// `start_time`.
    pub start_time: String,
    /// `end_time` (`24:00` allowed).
    pub end_time: String,
}

/// Inclusive ranges (minutes of day: end exclusive).
#[derive(Clone, Debug, Default)]
struct Parsed {
    minutes: Vec<(i64, i64)>,
    weekdays: Vec<(i64, i64)>,
    days: Vec<(i64, i64)>,
    months: Vec<(i64, i64)>,
    years: Vec<(i64, i64)>,
}

const WEEKDAYS: &str = "sunday monday tuesday wednesday thursday friday saturday";

const MONTHS: &str =
    "january february march april may june july august september october november december";

impl TimeInterval {
    /// Whether `unix_ms` (UTC) is in the interval.
    pub fn contains(&self, unix_ms: i64) -> bool {
        let days = unix_ms.div_euclid(86_400_000);
        let minute = unix_ms.rem_euclid(86_400_000) / 60_000;
        let (year, month, day) = civil_from_days(days);
        let weekday = (days + 4).rem_euclid(7); // 1970-01-01 was a Thursday.
        let dim = days_in_month(year, month);
        let within = |ranges: &[(i64, i64)], v: i64| {
            ranges.is_empty() || ranges.iter().any(|&(b, e)| b <= v && v <= e)
        };
        let day_ok = self.parsed.days.is_empty()
            || self.parsed.days.iter().any(|&(b, e)| {
                let b = if b < 0 { dim + b + 1 } else { b };
                let e = if e < 0 { dim + e + 1 } else { e };
                b <= dim && b.clamp(-dim, dim) <= day && day <= e.clamp(-dim, dim)
            });
        (self.parsed.minutes.is_empty()
            || self
                .parsed
                .minutes
                .iter()
                .any(|&(s, e)| s <= minute && minute < e))
            && day_ok
            && within(&self.parsed.months, month)
            && within(&self.parsed.weekdays, weekday)
            && within(&self.parsed.years, year)
    }

    /// Parses and checks the strings; errors name `path.field[i]`.
    fn parse(&mut self, path: &str, loc: &Locator<'_>) -> Result<(), ConfigError> {
        let err = |field: &str, i: usize, msg: String| {
            let p = format!("{path}.{field}[{i}]");
            loc.err(&p, msg)
        };
        let mut p = Parsed::default();
        for (i, t) in self.times.iter().enumerate() {
            p.minutes
                .push(parse_times(t).map_err(|e| err("times", i, e))?);
        }
        let lists = [
            ("weekdays", &self.weekdays, &mut p.weekdays, Kind::Weekday),
            ("days_of_month", &self.days_of_month, &mut p.days, Kind::Day),
            ("months", &self.months, &mut p.months, Kind::Month),
            ("years", &self.years, &mut p.years, Kind::Year),
        ];
        for (field, strings, out, kind) in lists {
            for (i, s) in strings.iter().enumerate() {
                out.push(parse_range(s, kind).map_err(|e| err(field, i, e))?);
            }
        }
        if let Some(l) = self
            .location
            .as_deref()
            .filter(|l| *l != "UTC" && *l != "Local")
        {
            let msg = format!("time zone {l:?} is not supported by Strata (only UTC and Local)");
            return Err(loc.err(&format!("{path}.location"), msg));
        }
        self.parsed = p;
        Ok(())
    }
}

/// Checks names are unique and set, and parses every interval; returns the names.
pub(super) fn resolve(
    lists: [(&str, &mut [NamedTimeInterval]); 2],
    loc: &Locator<'_>,
) -> Result<HashSet<String>, ConfigError> {
    let mut names = HashSet::new();
    for (key, list) in lists {
        for (i, named) in list.iter_mut().enumerate() {
            let p = format!("{key}[{i}]");
            if named.name.is_empty() {
                return Err(loc.err(&p, "missing name in time interval"));
            }
            if !names.insert(named.name.clone()) {
                let msg = format!("time interval {:?} is not unique", named.name);
                return Err(loc.err_at(&p, &format!("{p}.name"), msg));
            }
            for (j, t) in named.time_intervals.iter_mut().enumerate() {
                t.parse(&format!("{p}.time_intervals[{j}]"), loc)?;
            }
        }
    }
    Ok(names)
}

#[derive(Clone, Copy)]
enum Kind {
    Weekday,
    Day,
    Month,
    Year,
}

fn parse_range(s: &str, kind: Kind) -> Result<(i64, i64), String> {
    let s = s.to_lowercase();
    let member = |m: &str| -> Result<i64, String> {
        let (names, offset) = match kind {
            Kind::Weekday => (WEEKDAYS, 0),
            Kind::Month => (MONTHS, 1),
            Kind::Day | Kind::Year => ("", 0),
        };
        match names.split(' ').position(|n| n == m) {
            Some(i) => Ok(i as i64 + offset),
            None if matches!(kind, Kind::Weekday) => Err(format!("{m} is not a valid weekday")),
            None => m
                .parse()
                .map_err(|_| format!("{m:?} is not a valid number")),
        }
    };
    let (b, e) = match s.split_once(':') {
        Some((_, e)) if e.contains(':') => {
            return Err(format!("couldn't parse range {s}, invalid format"));
        }
        Some((b, e)) => (member(b)?, member(e)?),
        None => (member(&s)?, member(&s)?),
    };
    match kind {
        Kind::Weekday if b > e => Err("start day cannot be before end day".to_owned()),
        Kind::Day => {
            if let Some(d) = [b, e]
                .into_iter()
                .find(|d| *d == 0 || !(-31..=31).contains(d))
            {
                return Err(format!("{d} is not a valid day of the month: out of range"));
            }
            if b < 0 && e > 0 {
                return Err("end day must be negative if start day is negative".to_owned());
            }
            let norm = |d: i64| if d < 0 { 28 + d } else { d };
            if norm(b) > norm(e) {
                return Err(format!("end day {e} is always before start day {b}"));
            }
            Ok((b, e))
        }
        Kind::Month if !(1..=12).contains(&b) || !(1..=12).contains(&e) => {
            Err(format!("{s} is not a valid month: out of range"))
        }
        Kind::Month if b > e => Err(format!("end month {e} is before start month {b}")),
        Kind::Year if b > e => Err(format!("end year {e} is before start year {b}")),
        _ => Ok((b, e)),
    }
}

/// `HH:MM` → minutes of the day; `00:00`…`23:59` or `24:00`.
fn parse_minute(s: &str) -> Result<i64, String> {
    let bad = || format!("couldn't parse timestamp {s}, invalid format");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 || !(h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit())) {
        return Err(bad());
    }
    let (h, m): (i64, i64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if (h < 24 && m < 60) || (h == 24 && m == 0) {
        Ok(h * 60 + m)
    } else {
        Err(bad())
    }
}

fn parse_times(t: &TimeRange) -> Result<(i64, i64), String> {
    if t.start_time.is_empty() || t.end_time.is_empty() {
        return Err("both start and end times must be provided".to_owned());
    }
    let (s, e) = (parse_minute(&t.start_time)?, parse_minute(&t.end_time)?);
    if s >= e {
        return Err("start time cannot be equal or greater than end time".to_owned());
    }
    Ok((s, e))
}

/// Days since 1970-01-01 → (year, month 1-12, day 1-31), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::Config;

    /// Unix ms of a UTC date and time.
    fn at(y: i64, mo: i64, d: i64, h: i64, mi: i64) -> i64 {
        // Days from civil (inverse of civil_from_days), for tests only.
        let (y2, m2) = if mo <= 2 {
            (y - 1, mo + 9)
        } else {
            (y, mo - 3)
        };
        let era = y2.div_euclid(400);
        let yoe = y2 - era * 400;
        let doy = (153 * m2 + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        ((days * 24 + h) * 60 + mi) * 60_000
    }

    fn cfg(intervals: &str) -> Config {
        let text = format!(
            "route: {{receiver: r}}\nreceivers: [{{name: r}}]\ntime_intervals:\n  - name: t\n    time_intervals:\n{intervals}"
        );
        Config::from_yaml_str(&text, "ti.yml").unwrap()
    }

    #[test]
    fn weekdays_and_times() {
        let c = cfg(
            "      - weekdays: ['Monday:Friday']\n        times: [{start_time: '09:00', end_time: '17:00'}]\n      - weekdays: [saturday]\n        times: [{start_time: '22:00', end_time: '24:00'}]\n",
        );
        let t = c.time_interval("t").unwrap();
        // 2024-06-03 is a Monday.
        assert!(t.contains(at(2024, 6, 3, 9, 0)));
        assert!(t.contains(at(2024, 6, 7, 16, 59)));
        assert!(!t.contains(at(2024, 6, 7, 17, 0)));
        assert!(!t.contains(at(2024, 6, 3, 8, 59)));
        assert!(!t.contains(at(2024, 6, 9, 12, 0)));
        assert!(t.contains(at(2024, 6, 8, 23, 59)));
        assert!(!t.contains(at(2024, 6, 8, 21, 59)));
    }

    #[test]
    fn days_of_month_months_and_years() {
        let c = cfg(
            "      - days_of_month: ['-1', '1:2']\n        months: ['january:february', 12]\n        years: ['2023:2024']\n        location: UTC\n",
        );
        let t = c.time_interval("t").unwrap();
        assert!(t.contains(at(2024, 2, 29, 12, 0)));
        assert!(!t.contains(at(2023, 2, 28, 12, 0) - 86_400_000));
        assert!(t.contains(at(2023, 2, 28, 0, 0)));
        assert!(t.contains(at(2024, 12, 31, 0, 0)));
        assert!(t.contains(at(2024, 1, 2, 23, 59)));
        assert!(!t.contains(at(2024, 1, 3, 0, 0)));
        assert!(!t.contains(at(2024, 3, 31, 0, 0)));
        assert!(!t.contains(at(2025, 1, 1, 0, 0)));
        let c = cfg("      - days_of_month: ['-3:-2']\n");
        let t = c.time_interval("t").unwrap();
        assert!(t.contains(at(2024, 4, 28, 0, 0)) && t.contains(at(2024, 4, 29, 23, 0)));
        assert!(!t.contains(at(2024, 4, 27, 0, 0)) && !t.contains(at(2024, 4, 30, 0, 0)));
    }

    #[test]
    fn rejects_bad_intervals() {
        for (bad, want) in [
            (
                "weekdays: ['friday:monday']",
                "start day cannot be before end day",
            ),
            ("weekdays: [funday]", "funday is not a valid weekday"),
            ("days_of_month: ['0']", "0 is not a valid day of the month"),
            ("days_of_month: ['-1:5']", "end day must be negative"),
            (
                "months: ['march:january']",
                "end month 1 is before start month 3",
            ),
            (
                "times: [{start_time: '10:00', end_time: '09:00'}]",
                "start time cannot be",
            ),
            (
                "times: [{start_time: '10:00', end_time: '24:01'}]",
                "couldn't parse timestamp",
            ),
            ("location: Europe/Berlin", "not supported by Strata"),
        ] {
            let text = format!(
                "route: {{receiver: r}}\nreceivers: [{{name: r}}]\ntime_intervals:\n  - name: t\n    time_intervals:\n      - {bad}\n"
            );
            let e = Config::from_yaml_str(&text, "ti.yml")
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("ti.yml:6:9: time_intervals[0].time_intervals[0]."),
                "{e}"
            );
            assert!(e.contains(want), "{e}");
        }
    }
}
