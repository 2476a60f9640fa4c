//! The calendar: RFC 3339 times, UTC days and their `YYYY-MM-DD` labels, for settings, events,
//! the backfill and the ledger. Built on `jiff`; the per-record Redshift timestamps
//! (`logs/time.rs`) keep their hand-written parser because they are on the hot path.
//!
//! Instants are milliseconds (or seconds) since the Unix epoch; days are whole UTC days since
//! 1970-01-01. Everything here is total: a value outside the calendar's range (years 1 to 9999
//! for labels) is an error or a plain number, never a panic, because state objects read back
//! from S3 may hold anything.

use std::fmt;

use jiff::civil::{Date, Time};
use jiff::tz::Offset;
use jiff::Timestamp;

/// Milliseconds in a UTC day.
pub const MS_PER_DAY: i64 = 86_400_000;
pub const MS_PER_HOUR: i64 = 3_600_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// An RFC 3339 time as given, and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartTime {
    /// Seconds since the epoch (a fraction of a second is dropped).
    pub unix_seconds: i64,
    /// The same instant as `YYYY-MM-DDTHH:MM:SSZ`.
    pub utc: String,
    /// As written.
    pub text: String,
}

impl StartTime {
    /// Parses an RFC 3339 `date-time`; the error says which part is wrong.
    pub fn parse(text: &str) -> Result<StartTime, String> {
        let unix_seconds = parse_rfc3339(text)?;
        Ok(StartTime {
            unix_seconds,
            utc: format_utc_seconds(unix_seconds),
            text: text.to_string(),
        })
    }

    /// Milliseconds since the epoch.
    pub fn unix_ms(&self) -> i64 {
        self.unix_seconds.saturating_mul(1000)
    }

    /// The UTC date (year, month, day).
    pub fn utc_date(&self) -> (i32, u32, u32) {
        date_of_day(self.unix_seconds.div_euclid(SECONDS_PER_DAY)).unwrap_or((1970, 1, 1))
    }
}

impl fmt::Display for StartTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.utc)
    }
}

/// Days in a month of the proleptic Gregorian calendar (0 for a month that does not exist).
pub const fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 0,
    }
}

/// RFC 3339 `date-time` (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, `t`/`z`/space accepted) to
/// Unix seconds, the fraction dropped. The checks are spelt out field by field so the error
/// names the part at fault; `jiff` does the calendar arithmetic.
pub fn parse_rfc3339(text: &str) -> Result<i64, String> {
    let s = text.as_bytes();
    if !text.is_ascii() {
        return Err("it contains a non-ASCII character".into());
    }
    let shape = "YYYY-MM-DDTHH:MM:SS";
    if s.len() < shape.len() {
        return Err("it is too short for YYYY-MM-DDTHH:MM:SS".into());
    }
    let digits = |range: std::ops::Range<usize>, field: &str| -> Result<i64, String> {
        let part = &s[range];
        if part.iter().all(u8::is_ascii_digit) {
            Ok(part.iter().fold(0i64, |n, &b| n * 10 + i64::from(b - b'0')))
        } else {
            Err(format!("the {field} is not all digits"))
        }
    };
    let year = digits(0..4, "year")?;
    let month = digits(5..7, "month")?;
    let day = digits(8..10, "day")?;
    let hour = digits(11..13, "hour")?;
    let minute = digits(14..16, "minute")?;
    let second = digits(17..19, "second")?;
    if s[4] != b'-' || s[7] != b'-' {
        return Err("the date is not YYYY-MM-DD".into());
    }
    if !matches!(s[10], b'T' | b't' | b' ') {
        return Err("the date and the time are not separated by 'T'".into());
    }
    if s[13] != b':' || s[16] != b':' {
        return Err("the time is not HH:MM:SS".into());
    }
    if !(1..=12).contains(&month) {
        return Err("month out of range".into());
    }
    if hour > 23 {
        return Err("hour out of range".into());
    }
    if minute > 59 {
        return Err("minute out of range".into());
    }
    // RFC 3339 allows a leap second (60); it counts as the next minute's first second.
    if second > 60 {
        return Err("second out of range".into());
    }
    let mut rest = &s[19..];
    if let Some(after_dot) = rest.strip_prefix(b".") {
        let n = after_dot.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 {
            return Err("the fraction of a second has no digits".into());
        }
        rest = &after_dot[n..];
    }
    let offset = zone_offset_seconds(rest)?;
    // Four digits and checked ranges: every value fits jiff's small integer types.
    let date = Date::new(year as i16, month as i8, day as i8)
        .map_err(|_| "day out of range for the month".to_string())?;
    let midnight = Offset::UTC
        .to_timestamp(date.to_datetime(Time::midnight()))
        .map_err(|e| format!("out of range: {e}"))?
        .as_second();
    Ok(midnight + hour * 3600 + minute * 60 + second - offset)
}

/// `Z` or `±HH:MM` to seconds east of UTC.
fn zone_offset_seconds(rest: &[u8]) -> Result<i64, String> {
    match rest {
        b"Z" | b"z" => Ok(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let two = |a: u8, b: u8| -> Option<i64> {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
            };
            let (Some(oh), Some(om)) = (two(*h1, *h2), two(*m1, *m2)) else {
                return Err("the zone offset is not +HH:MM or -HH:MM".into());
            };
            if oh > 23 || om > 59 {
                return Err("zone offset out of range".into());
            }
            let seconds = oh * 3600 + om * 60;
            Ok(if *sign == b'+' { seconds } else { -seconds })
        }
        [] => Err("the zone is missing (add Z for UTC)".into()),
        _ => Err("the zone is not Z, +HH:MM or -HH:MM".into()),
    }
}

/// Milliseconds since the epoch of an RFC 3339 time (whole seconds).
pub fn parse_rfc3339_ms(text: &str) -> Result<i64, String> {
    parse_rfc3339(text).map(|s| s.saturating_mul(1000))
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_utc_seconds(unix_seconds: i64) -> String {
    match Timestamp::from_second(unix_seconds) {
        Ok(t) => format!("{t:.0}"),
        Err(_) => format!("{unix_seconds} seconds since the epoch (outside the calendar)"),
    }
}

/// Milliseconds since the epoch as RFC 3339 UTC with milliseconds
/// (`2024-03-01T00:53:00.123Z`). An instant outside the calendar (a forged state value) is
/// written as its number, never a panic.
pub fn rfc3339_ms(ms: i64) -> String {
    match Timestamp::from_millisecond(ms) {
        Ok(t) => format!("{t:.3}"),
        Err(_) => format!("{ms} ms since the epoch (outside the calendar)"),
    }
}

/// The current time in milliseconds since the epoch (system clock).
pub fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

/// The current time as RFC 3339 UTC with milliseconds, for log lines.
pub fn now_rfc3339() -> String {
    rfc3339_ms(now_ms())
}

/// The UTC day (days since 1970-01-01) of an instant in milliseconds.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(MS_PER_DAY)
}

/// The start of the UTC hour of an instant (ms).
pub fn hour_start(ms: i64) -> i64 {
    ms - ms.rem_euclid(MS_PER_HOUR)
}

/// `YYYY-MM-DDTHH` of an instant: an hour's label.
pub fn hour_label(ms: i64) -> String {
    let mut text = rfc3339_ms(ms);
    text.truncate(13);
    text
}

/// (year, month, day) of a day number; `None` outside jiff's range (years -9999 to 9999).
pub fn date_of_day(day: i64) -> Option<(i32, u32, u32)> {
    let seconds = day.checked_mul(SECONDS_PER_DAY)?;
    let date = Offset::UTC
        .to_datetime(Timestamp::from_second(seconds).ok()?)
        .date();
    Some((
        i32::from(date.year()),
        date.month() as u32,
        date.day() as u32,
    ))
}

/// The day number of a date; `None` when the date does not exist or is out of range.
pub fn day_of_date(year: i64, month: u32, day: u32) -> Option<i64> {
    let date = Date::new(
        i16::try_from(year).ok()?,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
    )
    .ok()?;
    let seconds = Offset::UTC
        .to_timestamp(date.to_datetime(Time::midnight()))
        .ok()?
        .as_second();
    Some(seconds.div_euclid(SECONDS_PER_DAY))
}

/// `YYYY-MM-DD` of a day, or the plain number for a day outside the calendar.
pub fn day_label(day: i64) -> String {
    match date_of_day(day) {
        Some((y, m, d)) if y >= 0 => format!("{y:04}-{m:02}-{d:02}"),
        _ => format!("day {day} (outside the calendar)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_from_millis() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_709_254_380_123), "2024-03-01T00:53:00.123Z");
        assert_eq!(rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
        assert!(rfc3339_ms(i64::MAX).contains("outside the calendar"));
        assert!(rfc3339_ms(i64::MIN).contains("outside the calendar"));
    }

    #[test]
    fn now_is_rfc3339_with_milliseconds() {
        let now = now_rfc3339();
        assert_eq!(now.len(), 24);
        assert!(now.ends_with('Z') && now.as_bytes()[10] == b'T', "{now}");
    }

    #[test]
    fn day_numbers_round_trip_across_eras() {
        for day in [-719_162i64, -1, 0, 1, 10_957, 19_783, 2_932_800] {
            let (y, m, d) = date_of_day(day).unwrap();
            assert_eq!(day_of_date(y.into(), m, d), Some(day), "{day}");
        }
        assert_eq!(day_label(19_783), "2024-03-01");
        assert_eq!(day_of_date(2024, 3, 1), Some(19_783));
        assert_eq!(day_of_date(2023, 2, 29), None);
    }

    #[test]
    fn days_outside_the_calendar_are_errors_not_panics() {
        for day in [i64::MIN, i64::MIN / 2, i64::MAX, 3_000_000, -5_000_000] {
            assert_eq!(date_of_day(day), None, "{day}");
            assert!(day_label(day).contains("outside the calendar"), "{day}");
        }
        assert_eq!(day_of_date(i64::MAX, 1, 1), None);
    }

    #[test]
    fn days_in_month_follows_the_gregorian_leap_rule() {
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2023, 2), 28);
        assert_eq!(days_in_month(1900, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(days_in_month(2024, 4), 30);
        assert_eq!(days_in_month(2024, 13), 0);
    }

    #[test]
    fn leap_second_is_the_next_minute_and_offsets_apply() {
        assert_eq!(parse_rfc3339("2024-02-29T23:59:60Z"), Ok(1_709_251_200));
        assert_eq!(
            parse_rfc3339("2024-03-01T08:00:00+08:00"),
            Ok(1_709_251_200)
        );
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Ok(-1));
        assert_eq!(format_utc_seconds(1_709_251_200), "2024-03-01T00:00:00Z");
    }
}
