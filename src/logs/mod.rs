//! The three Redshift audit log formats: streaming parsers from bytes to typed records.
//!
//! Nothing here knows about AWS: a parser reads any `std::io::Read` and hands out one record at a
//! time, borrowing from its own buffers. Parsing is two steps: splitting, which must go in order
//! (lines, ordinals, runs of control bytes: [`Parser::next_split`]), and typing, which needs only
//! the record's own text ([`Split::record`]) and so can run anywhere.

use std::fmt;
use std::str::FromStr;

/// One of the Redshift audit log types, as named in object keys and in `LOG_TYPES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogType {
    ConnectionLog,
    UserLog,
    UserActivityLog,
}

impl LogType {
    pub const ALL: [LogType; 3] = [
        LogType::ConnectionLog,
        LogType::UserLog,
        LogType::UserActivityLog,
    ];

    /// The columns of this log type's records, in file order.
    pub fn columns(self) -> &'static [(&'static str, Kind)] {
        match self {
            LogType::ConnectionLog => CONNECTION_COLUMNS,
            LogType::UserLog => USER_COLUMNS,
            LogType::UserActivityLog => ACTIVITY_COLUMNS,
        }
    }

    /// The name used in file names, settings and the `log_type` field.
    pub fn as_str(self) -> &'static str {
        match self {
            LogType::ConnectionLog => "connectionlog",
            LogType::UserLog => "userlog",
            LogType::UserActivityLog => "useractivitylog",
        }
    }
}

impl fmt::Display for LogType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not one of the three log types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown log type {} (expected connectionlog, userlog or useractivitylog)",
    crate::mask::quote(.0)
)]
pub struct UnknownLogType(pub String);

impl FromStr for LogType {
    type Err = UnknownLogType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "connectionlog" => Ok(LogType::ConnectionLog),
            "userlog" => Ok(LogType::UserLog),
            "useractivitylog" => Ok(LogType::UserActivityLog),
            other => Err(UnknownLogType(other.to_string())),
        }
    }
}

mod activity;
mod connection;
mod fields;
pub mod lines;
mod parser;
mod split;
pub mod time;
mod user;

pub use activity::{render_activity, ACTIVITY_COLUMNS};
pub use connection::CONNECTION_COLUMNS;
pub use fields::{render_pipe_line, Kind, Value};
pub use parser::{mostly_control, Parser};
pub use split::{Split, TypedLine};
pub use time::Timestamp;
pub use user::USER_COLUMNS;

use std::borrow::Cow;

/// The longest record text kept whole. Redshift caps one SQL statement at 16 MB; past this the
/// record is cut, flagged `truncated`, and the rest follows as `parse_error` records. Budget of
/// the record stage: the activity log holds the statement being built and the one handed out
/// (2 x 20 MiB at worst, given back after a huge one by [`Parser::release`]), beside the line
/// reader's buffer; the pipe logs hold one line.
pub const MAX_RECORD_BYTES: usize = 20 * 1024 * 1024;

/// Most bytes of text a `parse_error` record keeps in `raw`: a real audit line that fails to
/// parse is a few KiB, so this keeps every byte of those while a hostile object's megabytes cost
/// 64 KiB a record (the whole text's length and hash come with it, [`WholeText`]). The pieces
/// of an over-long activity statement are the exception: they keep `MAX_RECORD_BYTES`.
pub const MAX_RAW_BYTES: usize = 64 * 1024;

/// Bytes kept as the sample of a run of control bytes (one record for the whole run).
pub const RUN_SAMPLE_BYTES: usize = 256;

/// The most columns any log type has (the connection log's 22).
pub const MAX_COLUMNS: usize = 22;

/// The typed values of one record: one slot per column of the longest table, unused ones null.
pub type Values<'a> = [Value<'a>; MAX_COLUMNS];

/// The typed columns of one audit record, in the order of the log type's column table.
#[derive(Debug, Clone, PartialEq)]
pub struct Columns<'a> {
    pub names: &'static [(&'static str, Kind)],
    /// Boxed: a record is handed from the parser through redaction to the writer, and the 22
    /// slots inline (704 bytes) cost about 1,100 instructions of copying a record on those
    /// moves, against about 100 for the allocation (scripts/bench_callgrind.sh).
    pub values: Box<Values<'a>>,
    /// Connection-log columns beyond the known ones, raw and `|`-separated.
    pub extra: Option<&'a str>,
}

impl<'a> Columns<'a> {
    /// The value of the named column, `None` if this log type has no such column.
    pub fn get(&self, name: &str) -> Option<&Value<'a>> {
        self.names
            .iter()
            .position(|(n, _)| *n == name)
            .map(|i| &self.values[i])
    }

    /// The record's time: the value of its one timestamp column, when present.
    pub fn record_time(&self) -> Option<Timestamp> {
        match self.values[time_column(self.names)?] {
            Value::Time(t) => Some(t),
            _ => None,
        }
    }

    /// (name, value) pairs in column order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Value<'a>)> {
        self.names
            .iter()
            .zip(self.values.iter())
            .map(|((n, _), v)| (*n, v))
    }

    /// Extra columns, trimmed.
    pub fn extra_columns(&self) -> impl Iterator<Item = &'a str> {
        extra_columns(self.extra)
    }
}

/// Columns beyond the known ones, raw and `|`-separated as a record keeps them, trimmed.
pub fn extra_columns(extra: Option<&str>) -> impl Iterator<Item = &str> {
    extra
        .into_iter()
        .flat_map(|e| e.split('|').map(fields::trim))
}

/// Where a column table keeps the record's time: its one timestamp column.
#[inline]
pub fn time_column(names: &[(&'static str, Kind)]) -> Option<usize> {
    // The three tables' time columns, known without a search (every record is counted).
    if std::ptr::eq(names, USER_COLUMNS) {
        Some(10)
    } else if std::ptr::eq(names, CONNECTION_COLUMNS) {
        Some(1)
    } else if std::ptr::eq(names, ACTIVITY_COLUMNS) {
        Some(0)
    } else {
        names.iter().position(|(_, kind)| *kind == Kind::Time)
    }
}

/// What one record holds: typed columns, or the text that could not be parsed and why.
#[derive(Debug, Clone, PartialEq)]
pub enum Body<'a> {
    Columns(Columns<'a>),
    ParseError { reason: Cow<'a, str>, raw: &'a str },
}

/// The whole text of a `parse_error` record whose `raw` holds only its start: its length and
/// XXH3-128 hash, over the bytes as read (lines joined by `\n`, line ends otherwise left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WholeText {
    pub bytes: u64,
    pub xxh3: u128,
}

impl WholeText {
    fn of(bytes: &[u8]) -> Self {
        WholeText {
            bytes: bytes.len() as u64,
            xxh3: xxhash_rust::xxh3::xxh3_128(bytes),
        }
    }
}

/// One record as it comes out of a parser, borrowing from the parser's buffers.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    pub log_type: LogType,
    pub body: Body<'a>,
    /// 1-based line the record starts on.
    pub line: u64,
    /// 0-based position of the record in its file; the stable `id` is derived from it.
    pub ordinal: u64,
    /// Bytes that were not UTF-8 were replaced with U+FFFD.
    pub invalid_utf8: bool,
    /// The record's text went past `MAX_RECORD_BYTES` (the rest follows as `parse_error`
    /// records), or the input failed inside it.
    pub truncated: bool,
    /// The input failed inside this record: it may be incomplete, so it is told apart from the
    /// whole record a retry sends (its id carries a `-cut` suffix).
    pub read_cut: bool,
    /// Secrets in the record's text were replaced (`crate::redact`); parsers always say `false`.
    pub redacted: bool,
    /// A `parse_error` whose `raw` is only the start of its text ([`MAX_RAW_BYTES`], or the
    /// sample of a run of control bytes): the whole text's length and hash.
    pub whole: Option<WholeText>,
}

impl<'a> Body<'a> {
    /// The columns; a test that expected a record and got a parse error fails with its reason.
    #[cfg(test)]
    pub(crate) fn expect_columns(self) -> Columns<'a> {
        match self {
            Body::Columns(c) => c,
            Body::ParseError { reason, raw } => panic!("{reason}: {raw:?}"),
        }
    }
}

impl Record<'_> {
    pub fn is_parse_error(&self) -> bool {
        matches!(self.body, Body::ParseError { .. })
    }
}

/// Shrinks a buffer a huge record grew back to `keep` bytes of capacity, so one hostile record
/// does not hold its memory for the rest of the object.
pub fn release<T: Shrink>(buf: &mut T, keep: usize) {
    if buf.capacity() > keep.saturating_mul(4) {
        buf.clear();
        buf.shrink_to(keep);
    }
}

/// A growable buffer [`release`] can shrink.
pub trait Shrink {
    fn capacity(&self) -> usize;
    fn clear(&mut self);
    fn shrink_to(&mut self, keep: usize);
}

impl Shrink for String {
    fn capacity(&self) -> usize {
        String::capacity(self)
    }
    fn clear(&mut self) {
        String::clear(self)
    }
    fn shrink_to(&mut self, keep: usize) {
        String::shrink_to(self, keep)
    }
}

impl Shrink for Vec<u8> {
    fn capacity(&self) -> usize {
        Vec::capacity(self)
    }
    fn clear(&mut self) {
        Vec::clear(self)
    }
    fn shrink_to(&mut self, keep: usize) {
        Vec::shrink_to(self, keep)
    }
}

#[cfg(test)]
mod tests;
