//! Redshift's two timestamp spellings, converted to RFC 3339 UTC with milliseconds.
//!
//! Connection and user logs write `Mon, 7 Dec 2020 20:01:55:177` (UTC, no zone, day padded or
//! not, milliseconds after a colon); the user activity log writes `2020-12-08T22:00:03Z`.

use std::fmt;

use crate::time::days_in_month;

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// A UTC instant as RFC 3339 text with milliseconds: `2020-12-07T20:01:55.177Z` (24 bytes).
/// The text orders as the instants do.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp([u8; 24]);

impl Ord for Timestamp {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // As three big-endian words: the same order as the bytes', without a call to memcmp
        // (every record's time is compared twice, for the earliest and latest).
        let words = |t: &Timestamp| {
            let word = |i: usize| {
                let mut w = [0u8; 8];
                w.copy_from_slice(&t.0[i..i + 8]);
                u64::from_be_bytes(w)
            };
            (word(0), word(8), word(16))
        };
        words(self).cmp(&words(other))
    }
}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Timestamp {
    /// The 24 ASCII bytes of the RFC 3339 text.
    pub fn as_bytes(&self) -> &[u8; 24] {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        // Only ever built from ASCII digits and separators.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// Builds from validated parts; rejects out-of-range values.
    pub fn from_parts(
        year: u32,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
        milli: u32,
    ) -> Result<Timestamp, &'static str> {
        if !(1..=9999).contains(&year) {
            return Err("year out of range");
        }
        if !(1..=12).contains(&month) {
            return Err("month out of range");
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err("day out of range");
        }
        if hour > 23 || minute > 59 || second > 60 || milli > 999 {
            return Err("time of day out of range");
        }
        let mut b = *b"0000-00-00T00:00:00.000Z";
        put_digits(&mut b[0..4], year);
        put_digits(&mut b[5..7], month);
        put_digits(&mut b[8..10], day);
        put_digits(&mut b[11..13], hour);
        put_digits(&mut b[14..16], minute);
        put_digits(&mut b[17..19], second);
        put_digits(&mut b[20..23], milli);
        Ok(Timestamp(b))
    }

    /// The digit at place `i`, if it is one.
    #[inline]
    fn digit(&self, i: usize) -> Option<u32> {
        let d = self.0[i].wrapping_sub(b'0');
        (d <= 9).then_some(u32::from(d))
    }

    /// The two-digit number at places `i` and `i + 1`.
    #[inline]
    fn two(&self, i: usize) -> Option<u32> {
        Some(self.digit(i)? * 10 + self.digit(i + 1)?)
    }

    /// [`Timestamp::is_valid`] for the time of day alone (the date known valid).
    fn is_valid_time(&self) -> bool {
        let check = || {
            self.digit(20)?;
            self.digit(21)?;
            self.digit(22)?;
            Some(self.two(11)? <= 23 && self.two(14)? <= 59 && self.two(17)? <= 60)
        };
        check() == Some(true)
    }

    /// Whether every digit place holds a digit and the values are those
    /// [`Timestamp::from_parts`] accepts (for text copied in rather than built from numbers).
    fn is_valid(&self) -> bool {
        let date = || {
            let year = self.two(0)? * 100 + self.two(2)?;
            let (month, day) = (self.two(5)?, self.two(8)?);
            Some(
                year >= 1
                    && (1..=12).contains(&month)
                    && day >= 1
                    && day <= days_in_month(year, month),
            )
        };
        date() == Some(true) && self.is_valid_time()
    }

    fn field(&self, range: std::ops::Range<usize>) -> u32 {
        self.0[range]
            .iter()
            .fold(0, |n, d| n * 10 + u32::from(d - b'0'))
    }

    /// Renders in the connection/user log spelling, `Mon, 7 Dec 2020 20:01:55:177`.
    pub fn to_redshift_log(&self) -> String {
        let (y, m, d) = (self.field(0..4), self.field(5..7), self.field(8..10));
        let weekday = WEEKDAYS[weekday_index(y, m, d)];
        let month = std::str::from_utf8(MONTHS[(m - 1) as usize]).unwrap_or("Jan");
        format!(
            "{weekday}, {d} {month} {y:04} {}:{}:{}",
            &self.as_str()[11..16],
            &self.as_str()[17..19],
            &self.as_str()[20..23]
        )
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn put_digits(out: &mut [u8], mut n: u32) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Monday = 0. Sakamoto's method.
fn weekday_index(y: u32, m: u32, d: u32) -> usize {
    const T: [u32; 12] = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4];
    let y = if m < 3 { y - 1 } else { y };
    let sunday_based = (y + y / 4 - y / 100 + y / 400 + T[(m - 1) as usize] + d) % 7;
    ((sunday_based + 6) % 7) as usize
}

/// Parses all-digit text of 1..=max digits.
fn digits(s: &[u8], min: usize, max: usize) -> Option<u32> {
    if s.len() < min || s.len() > max || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
}

/// Parses `Mon, 7 Dec 2020 20:01:55:177`. The weekday is not checked against the date (it is
/// redundant, and a wrong one should not cost the record). Milliseconds: three digits as
/// written by Redshift; fewer are read as an unpadded millisecond count, more are a fraction
/// cut to milliseconds.
pub fn parse_log_time(s: &[u8]) -> Result<Timestamp, &'static str> {
    match parse_log_time_exact(s) {
        Some(t) => Ok(t),
        None => parse_log_time_general(s),
    }
}

/// [`parse_log_time`] for any spelling it accepts, saying what is wrong otherwise.
fn parse_log_time_general(s: &[u8]) -> Result<Timestamp, &'static str> {
    let mut parts = s
        .split(|&b| b == b' ')
        .filter(|p| !p.is_empty())
        .map(|p| p.strip_suffix(b",").unwrap_or(p));
    let (Some(weekday), Some(day), Some(month), Some(year), Some(clock), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err("timestamp is not `Www, D Mon YYYY HH:MM:SS:mmm`");
    };
    if weekday.len() != 3 || !weekday.iter().all(u8::is_ascii_alphabetic) {
        return Err("timestamp weekday is not three letters");
    }
    let day = digits(day, 1, 2).ok_or("timestamp day is not a number")?;
    let month = MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(month))
        .ok_or("timestamp month is not a month name")? as u32
        + 1;
    let year = digits(year, 4, 4).ok_or("timestamp year is not four digits")?;
    // HH:MM:SS:mmm (a '.' before the milliseconds is accepted too).
    if clock.len() < 10 || clock[2] != b':' || clock[5] != b':' || !matches!(clock[8], b':' | b'.')
    {
        return Err("timestamp time is not HH:MM:SS:mmm");
    }
    let hour = digits(&clock[0..2], 2, 2).ok_or("timestamp hour is not a number")?;
    let minute = digits(&clock[3..5], 2, 2).ok_or("timestamp minute is not a number")?;
    let second = digits(&clock[6..8], 2, 2).ok_or("timestamp second is not a number")?;
    let frac = &clock[9..];
    let milli = match frac.len() {
        1..=3 => digits(frac, 1, 3),
        4..=9 => digits(&frac[..3], 3, 3).filter(|_| frac.iter().all(u8::is_ascii_digit)),
        _ => None,
    }
    .ok_or("timestamp milliseconds are not a number")?;
    Timestamp::from_parts(year, month, day, hour, minute, second, milli)
}

/// The date part of the last timestamp read on this thread through the hot path: the length
/// of its text, the text up to the hour (`Www, D Mon YYYY `, 16 or 17 bytes, zero-padded),
/// and the valid date it gave.
/// Records come in time order, so nearly every one shares its date with the one before.
#[derive(Clone, Copy)]
struct LastDate {
    len: usize,
    text: [u8; 17],
    date: [u8; 10],
}

thread_local! {
    static LAST_DATE: std::cell::Cell<Option<LastDate>> = const { std::cell::Cell::new(None) };
}

/// The common spelling, exactly as Redshift writes it, read by position: the hot path. The
/// digits are checked and copied to their places rather than read into numbers and written
/// back; `None` whenever [`Timestamp::from_parts`] would refuse the values (the general path
/// then says why). A date like the last one's is taken as it was checked then.
fn parse_log_time_exact(s: &[u8]) -> Option<Timestamp> {
    if s.len() != 28 && s.len() != 29 {
        return None;
    }
    let mut text = [0u8; 17];
    text[..s.len() - 12].copy_from_slice(&s[..s.len() - 12]);
    let len = s.len();
    if let Some(last) = LAST_DATE
        .get()
        .filter(|last| last.len == len && last.text == text)
    {
        // rest: "HH:MM:SS:mmm", after the date and its space
        let clock = &s[s.len() - 12..];
        if clock[2] != b':' || clock[5] != b':' || clock[8] != b':' {
            return None;
        }
        let mut b = *b"0000-00-00T00:00:00.000Z";
        b[0..10].copy_from_slice(&last.date);
        b[11..13].copy_from_slice(&clock[0..2]);
        b[14..16].copy_from_slice(&clock[3..5]);
        b[17..19].copy_from_slice(&clock[6..8]);
        b[20..23].copy_from_slice(&clock[9..12]);
        let t = Timestamp(b);
        return t.is_valid_time().then_some(t);
    }
    let t = parse_log_time_positions(s)?;
    let mut date = [0u8; 10];
    date.copy_from_slice(&t.0[0..10]);
    LAST_DATE.set(Some(LastDate { len, text, date }));
    Some(t)
}

/// [`parse_log_time_exact`] without the last date.
fn parse_log_time_positions(s: &[u8]) -> Option<Timestamp> {
    // "Www, D Mon YYYY HH:MM:SS:mmm" (28 bytes) or with a two-digit day (29 bytes).
    let (day, rest) = match s.len() {
        28 => ([b'0', s[5]], &s[7..]),
        29 => ([s[5], s[6]], &s[8..]),
        _ => return None,
    };
    // rest: "Mon YYYY HH:MM:SS:mmm"
    let shape_ok = s[3] == b',' && s[4] == b' ' && s[s.len() - 22] == b' ';
    if !shape_ok
        || rest[3] != b' '
        || rest[8] != b' '
        || rest[11] != b':'
        || rest[14] != b':'
        || rest[17] != b':'
    {
        return None;
    }
    let month = month_digits(&rest[0..3])?;
    let mut b = *b"0000-00-00T00:00:00.000Z";
    b[0..4].copy_from_slice(&rest[4..8]);
    b[5..7].copy_from_slice(&month);
    b[8..10].copy_from_slice(&day);
    b[11..13].copy_from_slice(&rest[9..11]);
    b[14..16].copy_from_slice(&rest[12..14]);
    b[17..19].copy_from_slice(&rest[15..17]);
    b[20..23].copy_from_slice(&rest[18..21]);
    let t = Timestamp(b);
    t.is_valid().then_some(t)
}

/// The two digits of a month's number, from its English abbreviation (as Redshift writes it).
fn month_digits(name: &[u8]) -> Option<[u8; 2]> {
    let at = MONTHS.iter().position(|m| m[..] == *name)?;
    Some(MONTH_DIGITS[at])
}

const MONTH_DIGITS: [[u8; 2]; 12] = [
    *b"01", *b"02", *b"03", *b"04", *b"05", *b"06", *b"07", *b"08", *b"09", *b"10", *b"11", *b"12",
];

/// Parses the activity log's `2020-12-08T22:00:03Z`.
pub fn parse_iso_seconds(s: &[u8]) -> Result<Timestamp, &'static str> {
    const SHAPE: &[u8; 20] = b"0000-00-00T00:00:00Z";
    if s.len() != SHAPE.len()
        || !s.iter().zip(SHAPE).all(|(&c, &p)| {
            if p == b'0' {
                c.is_ascii_digit()
            } else {
                c == p
            }
        })
    {
        return Err("timestamp is not YYYY-MM-DDTHH:MM:SSZ");
    }
    let n = |r: std::ops::Range<usize>| s[r].iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'));
    Timestamp::from_parts(
        n(0..4),
        n(5..7),
        n(8..10),
        n(11..13),
        n(14..16),
        n(17..19),
        0,
    )
}

/// Milliseconds since the epoch of a record's timestamp (`YYYY-MM-DDTHH:MM:SS.mmmZ`): OCSF's
/// times, and the session join's, on the hot path.
pub fn epoch_ms(t: &Timestamp) -> i64 {
    let b = t.as_bytes();
    let n = |r: std::ops::Range<usize>| {
        b[r].iter()
            .fold(0i64, |n, d| n * 10 + i64::from(d.wrapping_sub(b'0')))
    };
    let days = days_from_civil(n(0..4), n(5..7) as u32, n(8..10) as u32);
    ((days * 24 + n(11..13)) * 60 + n(14..16)) * 60_000 + n(17..19) * 1000 + n(20..23)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`):
/// the per-record epoch milliseconds of OCSF output need it on the hot path, so it stays here,
/// by hand, beside the parser; everything else uses the calendar module (`crate::time`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_path_days_agree_with_the_calendar() {
        for day in [-719_162i64, -1, 0, 59, 19_782, 2_932_800] {
            let (y, m, d) = crate::time::date_of_day(day).unwrap();
            assert_eq!(days_from_civil(y.into(), m, d), day);
        }
    }

    #[test]
    fn unpadded_day_with_colon_milliseconds() {
        let t = parse_log_time(b"Mon, 7 Dec 2020 20:01:55:177").unwrap();
        assert_eq!(t.as_str(), "2020-12-07T20:01:55.177Z");
    }

    #[test]
    fn padded_day_is_accepted() {
        let t = parse_log_time(b"Mon, 07 Dec 2020 20:01:55:177").unwrap();
        assert_eq!(t.as_str(), "2020-12-07T20:01:55.177Z");
    }

    #[test]
    fn two_digit_day_and_every_month() {
        for (i, m) in [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ]
        .iter()
        .enumerate()
        {
            let t = parse_log_time(format!("Wed, 16 {m} 2022 08:18:14:766").as_bytes()).unwrap();
            assert_eq!(t.as_str(), format!("2022-{:02}-16T08:18:14.766Z", i + 1));
        }
    }

    #[test]
    fn short_and_long_fractions() {
        assert_eq!(
            parse_log_time(b"Mon, 7 Dec 2020 20:01:55:7")
                .unwrap()
                .as_str(),
            "2020-12-07T20:01:55.007Z"
        );
        assert_eq!(
            parse_log_time(b"Mon, 7 Dec 2020 20:01:55:177123")
                .unwrap()
                .as_str(),
            "2020-12-07T20:01:55.177Z"
        );
        assert_eq!(
            parse_log_time(b"Mon, 7 Dec 2020 20:01:55.177")
                .unwrap()
                .as_str(),
            "2020-12-07T20:01:55.177Z"
        );
    }

    #[test]
    fn bad_timestamps_are_errors() {
        for bad in [
            &b""[..],
            b"Mon, 7 Dec 2020",
            b"Mon, 32 Dec 2020 20:01:55:177",
            b"Mon, 29 Feb 2021 20:01:55:177",
            b"Mon, 7 Foo 2020 20:01:55:177",
            b"Mon, 7 Dec 2020 24:01:55:177",
            b"Mon, 7 Dec 2020 20:01:55",
            b"Mon, 7 Dec 2020 20:01:55:",
            b"Mon, 7 Dec 2020 20:01:55:17a",
            b"Mon, 7 Dec 20 20:01:55:177",
            b"Mon, 7 Dec 2020 20:01:55:177 extra",
        ] {
            assert!(
                parse_log_time(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn the_hot_path_agrees_with_the_general_one() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let pieces: [&[&str]; 8] = [
            &["Mon, ", "Xyz, ", "Mon,,", "Mon  "],
            &["7", "07", "29", "31", "0", "00", "32", "a", "3a", " 7", "1"],
            &[" Feb ", " Dec ", " Jan ", " jan ", " Foo ", " Feb,"],
            &["2024", "2023", "1900", "2000", "0000", "9999", "20a4"],
            &[" 23", " 24", " 00", " 0a", ":23"],
            &[":59", ":60", ":5a", ".59"],
            &[":60", ":61", ":00", ":0a"],
            &[":000", ":999", ":12a", ".123", ":1234", ":12"],
        ];
        // The spellings Redshift writes: the hot path must take every valid one of them.
        let canonical = [
            &[0][..],
            &[0, 1, 2, 3, 4, 5, 6, 7, 8, 10],
            &[0, 1, 2],
            &[0, 1, 2, 3, 4, 5, 6],
            &[0, 1, 2, 3],
            &[0, 1, 2],
            &[0, 1, 2, 3],
            &[0, 1, 2],
        ];
        let mut hot = 0;
        for _ in 0..200_000 {
            let picked: Vec<usize> = pieces
                .iter()
                .map(|options| next(options.len() as u64) as usize)
                .collect();
            let text: String = pieces.iter().zip(&picked).map(|(o, &i)| o[i]).collect();
            let s = text.as_bytes();
            let general = parse_log_time_general(s);
            match parse_log_time_exact(s) {
                Some(t) => {
                    hot += 1;
                    assert_eq!(Ok(t), general, "{text:?}");
                }
                None => {
                    let is_canonical = picked.iter().zip(canonical).all(|(i, ok)| ok.contains(i))
                        && picked[2] != 3;
                    assert!(
                        !(is_canonical && general.is_ok()),
                        "{text:?} left to the general path"
                    );
                }
            }
        }
        assert!(hot > 100, "{hot}");
    }

    #[test]
    fn timestamps_order_as_their_text() {
        let times = [
            "2020-12-07T20:01:55.177Z",
            "2020-12-07T20:01:55.178Z",
            "2020-12-07T20:01:56.000Z",
            "2021-01-01T00:00:00.000Z",
            "0999-12-31T23:59:59.999Z",
        ];
        for a in times {
            for b in times {
                let (ta, tb) = (
                    parse_log_time_general(a.as_bytes()).or_else(|_| iso(a)),
                    parse_log_time_general(b.as_bytes()).or_else(|_| iso(b)),
                );
                assert_eq!(ta.unwrap().cmp(&tb.unwrap()), a.cmp(b), "{a} {b}");
            }
        }
    }

    /// A timestamp from its own text.
    fn iso(s: &str) -> Result<Timestamp, &'static str> {
        let n = |r: std::ops::Range<usize>| s[r].parse::<u32>().map_err(|_| "not a number");
        Timestamp::from_parts(
            n(0..4)?,
            n(5..7)?,
            n(8..10)?,
            n(11..13)?,
            n(14..16)?,
            n(17..19)?,
            n(20..23)?,
        )
    }

    #[test]
    fn leap_day_is_valid() {
        assert_eq!(
            parse_log_time(b"Thu, 29 Feb 2024 00:00:00:000")
                .unwrap()
                .as_str(),
            "2024-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn iso_seconds_get_zero_milliseconds() {
        assert_eq!(
            parse_iso_seconds(b"2020-12-08T22:00:03Z").unwrap().as_str(),
            "2020-12-08T22:00:03.000Z"
        );
        assert!(parse_iso_seconds(b"2020-12-08T22:00:03").is_err());
        assert!(parse_iso_seconds(b"2020-13-08T22:00:03Z").is_err());
        assert!(parse_iso_seconds(b"2020-12-08 22:00:03Z").is_err());
    }

    #[test]
    fn renders_back_with_the_right_weekday() {
        let t = parse_log_time(b"Xxx, 7 Dec 2020 20:01:55:177").unwrap();
        assert_eq!(t.to_redshift_log(), "Mon, 7 Dec 2020 20:01:55:177");
        let t = parse_log_time(b"Thu, 3 Dec 2020 10:18:38:416").unwrap();
        assert_eq!(t.to_redshift_log(), "Thu, 3 Dec 2020 10:18:38:416");
    }
}
