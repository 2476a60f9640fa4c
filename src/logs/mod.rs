//! The three Redshift audit log formats: streaming parsers from bytes to typed records.
//!
//! Nothing here knows about AWS: a parser reads any `std::io::Read` and hands out one record at a
//! time, borrowing from its own buffers.

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
#[error("unknown log type {0:?} (expected connectionlog, userlog or useractivitylog)")]
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
pub mod time;
mod user;

pub use activity::{render_activity, ACTIVITY_COLUMNS};
pub use connection::CONNECTION_COLUMNS;
pub use fields::{render_pipe_line, Kind, Value};
pub use time::Timestamp;
pub use user::USER_COLUMNS;

use std::borrow::Cow;
use std::io::{self, Read};

use lines::{Line, LineReader};

/// The longest record text kept whole. Redshift caps one SQL statement at 16 MB; past this the
/// record is cut, flagged `truncated`, and the rest follows as `parse_error` records.
pub const MAX_RECORD_BYTES: usize = 20 * 1024 * 1024;

/// The most columns any log type has (the connection log's 22).
pub const MAX_COLUMNS: usize = 22;

/// The typed columns of one audit record, in the order of the log type's column table.
#[derive(Debug, Clone, PartialEq)]
pub struct Columns<'a> {
    pub names: &'static [(&'static str, Kind)],
    pub values: [Value<'a>; MAX_COLUMNS],
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
        let at = self
            .names
            .iter()
            .position(|(_, kind)| *kind == Kind::Time)?;
        match self.values[at] {
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
        self.extra
            .into_iter()
            .flat_map(|e| e.split('|').map(fields::trim))
    }
}

/// What one record holds: typed columns, or the text that could not be parsed and why.
#[derive(Debug, Clone, PartialEq)]
// Columns are kept inline on purpose: a record lives on the stack for one step, and boxing
// would cost an allocation per record on the hot path.
#[allow(clippy::large_enum_variant)]
pub enum Body<'a> {
    Columns(Columns<'a>),
    ParseError { reason: Cow<'a, str>, raw: &'a str },
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

/// A streaming parser for one audit log file of a known type.
pub struct Parser<R> {
    log_type: LogType,
    lines: LineReader<R>,
    ordinal: u64,
    /// Decoded text of the record being handed out (when it needed replacing or joining).
    text: String,
    activity: activity::Assembler,
    /// A read error held back until the statement read before it is handed out.
    failed: Option<io::Error>,
    /// The record size limit.
    limit: usize,
}

impl<R: Read> Parser<R> {
    pub fn new(log_type: LogType, input: R) -> Self {
        Self::with_limit(log_type, input, MAX_RECORD_BYTES)
    }

    /// A parser whose record size limit is `max_record` bytes (tests use small limits).
    pub fn with_limit(log_type: LogType, input: R, max_record: usize) -> Self {
        Parser {
            log_type,
            lines: LineReader::new(input, max_record),
            ordinal: 0,
            text: String::new(),
            activity: activity::Assembler::new(max_record),
            failed: None,
            limit: max_record,
        }
    }

    pub fn log_type(&self) -> LogType {
        self.log_type
    }

    /// Lines of input read so far.
    pub fn lines_read(&self) -> u64 {
        self.lines.lines_read()
    }

    /// Bytes of (decompressed) input read so far.
    pub fn bytes_read(&self) -> u64 {
        self.lines.bytes_read()
    }

    /// The next record, or `None` at the end of the input. Unparsable text comes out as a
    /// `parse_error` record; only an I/O error (say, a truncated gzip stream) is an `Err`.
    pub fn next_record(&mut self) -> io::Result<Option<Record<'_>>> {
        let record = match self.log_type {
            LogType::ConnectionLog | LogType::UserLog => self.next_pipe_record()?,
            LogType::UserActivityLog => self.next_activity_record()?,
        };
        Ok(record)
    }

    fn next_pipe_record(&mut self) -> io::Result<Option<Record<'_>>> {
        let meta = loop {
            let Some(meta) = self.lines.advance()? else {
                return Ok(None);
            };
            let line = self.lines.line(&meta);
            // Blank lines are not records.
            if line.continuation || !line.bytes.iter().all(u8::is_ascii_whitespace) {
                break meta;
            }
        };
        let ordinal = self.ordinal;
        self.ordinal += 1;
        let Line {
            bytes,
            number,
            continuation,
            cut,
            at_failure,
        } = self.lines.line(&meta);
        let (text, invalid_utf8) = decode(bytes, &mut self.text);
        let limit = self.limit;
        let body = if continuation {
            Body::ParseError {
                reason: Cow::Owned(continuation_reason(number, limit)),
                raw: text,
            }
        } else if cut {
            // Typing a cut line would give wrong values (a port cut mid-number): keep it raw.
            Body::ParseError {
                reason: Cow::Owned(cut_reason(limit)),
                raw: text,
            }
        } else if self.log_type == LogType::ConnectionLog {
            connection::parse(text)
        } else {
            user::parse(text)
        };
        Ok(Some(Record {
            log_type: self.log_type,
            body,
            line: number,
            ordinal,
            invalid_utf8,
            truncated: cut,
            read_cut: at_failure,
            redacted: false,
        }))
    }

    fn next_activity_record(&mut self) -> io::Result<Option<Record<'_>>> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let piece = loop {
            match self.lines.next_line() {
                Ok(line) => {
                    if let Some(piece) = self.activity.push(line) {
                        break piece;
                    }
                }
                Err(e) => match self.activity.abort() {
                    Some(piece) => {
                        self.failed = Some(e);
                        break Some(piece);
                    }
                    None => return Err(e),
                },
            }
        };
        let Some(piece) = piece else { return Ok(None) };
        let ordinal = self.ordinal;
        self.ordinal += 1;
        let (text, invalid_utf8) = decode(self.activity.ready(), &mut self.text);
        let body = match piece.kind {
            activity::PieceKind::Statement => activity::parse(text),
            activity::PieceKind::Orphan => Body::ParseError {
                reason: Cow::Borrowed("text before the first record header"),
                raw: text,
            },
            activity::PieceKind::Continuation { of_line } => Body::ParseError {
                reason: Cow::Owned(continuation_reason(of_line, self.limit)),
                raw: text,
            },
        };
        Ok(Some(Record {
            log_type: self.log_type,
            body,
            line: piece.line,
            ordinal,
            invalid_utf8,
            truncated: piece.truncated,
            read_cut: piece.read_cut,
            redacted: false,
        }))
    }
}

fn continuation_reason(line: u64, limit: usize) -> String {
    format!("continuation of the record at line {line}, which is longer than the {limit}-byte record limit")
}

fn cut_reason(limit: usize) -> String {
    format!("line cut short: longer than the {limit}-byte record limit (the rest follows), or the input ended in it")
}

/// The text of `bytes`, borrowed when it is valid UTF-8, else with U+FFFD replacements in
/// `scratch`. The flag says whether anything was replaced.
fn decode<'a>(bytes: &'a [u8], scratch: &'a mut String) -> (&'a str, bool) {
    if bytes.is_ascii() {
        // SAFETY: ASCII is valid UTF-8. (`is_ascii` is a word-at-a-time check, several times
        // faster than full validation, and nearly every audit log line is ASCII.)
        return (unsafe { std::str::from_utf8_unchecked(bytes) }, false);
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => (s, false),
        Err(_) => {
            scratch.clear();
            scratch.push_str(&String::from_utf8_lossy(bytes));
            (scratch.as_str(), true)
        }
    }
}

#[cfg(test)]
mod tests;
