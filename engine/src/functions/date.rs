//! Calendar functions on Unix seconds, UTC (Go `time.Unix(int64(v), 0).UTC()`).

/// Days since 1970-01-01 → (year, month 1-12, day 1-31) (Howard Hinnant's civil_from_days).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// A calendar field.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, serde::Serialize, serde::Deserialize,
)]
pub enum DateFn {
    DayOfMonth,
    DayOfWeek,
    DayOfYear,
    DaysInMonth,
    Hour,
    Minute,
    Month,
    Year,
}

impl DateFn {
    /// The field of the instant `v` (Unix seconds).
    pub fn apply(self, v: f64) -> f64 {
        if !v.is_finite() {
            return f64::NAN;
        }
        let secs = v as i64;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let r = match self {
            DateFn::DayOfMonth => d as i64,
            DateFn::DayOfWeek => (days + 4).rem_euclid(7),
            DateFn::DayOfYear => {
                const CUM: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
                CUM[m as usize - 1] + d as i64 + i64::from(m > 2 && is_leap(y))
            }
            DateFn::DaysInMonth => match m {
                2 if is_leap(y) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            },
            DateFn::Hour => sod / 3600,
            DateFn::Minute => (sod % 3600) / 60,
            DateFn::Month => m as i64,
            DateFn::Year => y,
        };
        r as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_known_instants() {
        // 2024-02-29T13:45:00Z is 1709214300.
        let t = 1_709_214_300.0;
        assert_eq!(DateFn::Year.apply(t), 2024.0);
        assert_eq!(DateFn::Month.apply(t), 2.0);
        assert_eq!(DateFn::DayOfMonth.apply(t), 29.0);
        assert_eq!(DateFn::DaysInMonth.apply(t), 29.0);
        assert_eq!(DateFn::DayOfYear.apply(t), 60.0);
        assert_eq!(DateFn::DayOfWeek.apply(t), 4.0);
        assert_eq!(DateFn::Hour.apply(t), 13.0);
        assert_eq!(DateFn::Minute.apply(t), 45.0);
        assert_eq!(DateFn::DayOfWeek.apply(0.0), 4.0);
    }
}
