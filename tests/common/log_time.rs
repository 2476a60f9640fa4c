//! The clock and the audit logs' time spellings for generated files (backfill, fan-out and
//! session tests): partition days relative to today, since the walk lists up to today.

use std::time::{SystemTime, UNIX_EPOCH};

use redshift_audit_forwarder::backfill::{day_label, MS_PER_DAY};

pub const HOUR: i64 = 3_600_000;
pub const MINUTE: i64 = 60_000;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Today in UTC, as days since 1970-01-01.
pub fn today() -> i64 {
    now_ms().div_euclid(MS_PER_DAY)
}

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `Mon, 7 Dec 2020 20:01:55:177`, the connection and user log spelling.
pub fn log_time(ms: i64) -> String {
    let day = ms.div_euclid(MS_PER_DAY);
    let (y, m, d) = redshift_audit_forwarder::time::date_of_day(day).unwrap();
    let rem = ms.rem_euclid(MS_PER_DAY);
    format!(
        "{}, {d} {} {y} {:02}:{:02}:{:02}:{:03}",
        WEEKDAYS[day.rem_euclid(7) as usize],
        MONTHS[m as usize - 1],
        rem / HOUR,
        rem / MINUTE % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// `2020-12-08T22:00:03Z`, the user activity log spelling.
pub fn iso_time(ms: i64) -> String {
    let day = ms.div_euclid(MS_PER_DAY);
    let rem = ms.rem_euclid(MS_PER_DAY);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        day_label(day),
        rem / HOUR,
        rem / MINUTE % 60,
        rem / 1000 % 60
    )
}
