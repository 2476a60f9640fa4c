//! The walk's pure rules: which files a start time keeps, where a walk starts, what counts as
//! well behind the cursor, and how much time to keep in hand.

use super::FILE_TIME_SLACK_MS;
use super::{CURSOR_GRACE_MS, MAX_MARGIN_MS};
use crate::key;
use crate::ledger::{Cursor, Position};
use crate::time::{day_label, day_of};

/// The partition folder of `day` under a tree. A day outside the calendar (only a forged
/// cursor can hold one) names a folder that holds nothing.
pub fn day_folder(tree: &str, day: i64) -> String {
    match crate::time::date_of_day(day) {
        Some((y, m, d)) => key::day_prefix(tree, y, m, d),
        None => format!("{tree}{}/", day_label(day)),
    }
}

/// Whether a file whose name says `file_time_ms` may hold records at or after `start_ms`.
///
/// A file holds records older than its name's time (FORMAT.md), up to the end of the name's
/// minute, so a file named before the start's minute holds nothing from the start on and is
/// left out, and the first file named at or after it (which also holds older records: it
/// straddles the start) is kept whole.
pub fn starts_in_time(file_time_ms: i64, start_ms: i64) -> bool {
    file_time_ms + FILE_TIME_SLACK_MS > start_ms
}

/// The first day to list for a start time: a file of the start's minute may sit in the
/// previous day's partition when the start is just after midnight.
pub fn first_day_for_start(start_ms: i64) -> i64 {
    day_of(start_ms.saturating_sub(FILE_TIME_SLACK_MS))
}

/// The first day to list when resuming from a cursor: its resume day (the first partition that
/// may hold an object not handled yet) minus the look-back, for files that land late. The
/// ledger refuses resume days outside the walked range; the arithmetic saturates all the same.
pub fn first_day_for_cursor(cursor: &Cursor, lookback_days: u32) -> i64 {
    cursor.resume_day.saturating_sub(i64::from(lookback_days))
}

/// Whether an object at `position` is old enough, compared with the cursor, to be skipped
/// without reading its done marker.
pub fn is_behind_cursor(position: &Position, cursor: &Position) -> bool {
    position <= cursor && position.last_modified_ms < cursor.last_modified_ms - CURSOR_GRACE_MS
}

/// Time kept in hand before the deadline: a fifth of the run's time, at most [`MAX_MARGIN_MS`],
/// and at least twice the slowest object so far (so the object started last can finish).
pub fn margin_ms(run_ms: i64, slowest_object_ms: i64) -> i64 {
    (run_ms / 5).min(MAX_MARGIN_MS).max(2 * slowest_object_ms)
}
