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

/// A streaming parser for one audit log file of a known type.
pub struct Parser<R> {
    log_type: LogType,
    lines: LineReader<R>,
    ordinal: u64,
    /// Decoded text of the record being handed out (when it needed replacing or joining).
    text: String,
    activity: activity::Assembler,
    /// A read error held back until the record read before it is handed out.
    failed: Option<io::Error>,
    /// The record size limit.
    limit: usize,
    /// The sample of a run of control bytes (the run's record borrows it).
    sample: String,
    /// A line (pipe logs) or piece (activity log) read past the end of a run, handed out next;
    /// its bytes are still where the reader left them.
    held_line: Option<lines::LineMeta>,
    held_piece: Option<activity::Piece>,
    /// Where the text of the record last split is ([`Parser::split_text`]).
    last: Option<TextAt>,
}

/// A run of control bytes being gathered into one record.
struct Run {
    line: u64,
    last_line: u64,
    hasher: xxhash_rust::xxh3::Xxh3Default,
    bytes: u64,
    invalid_utf8: bool,
    read_cut: bool,
}

impl Run {
    fn new(line: u64, bytes: &[u8], sample: &mut String) -> Self {
        let head = &bytes[..bytes.len().min(RUN_SAMPLE_BYTES)];
        sample.clear();
        sample.push_str(&String::from_utf8_lossy(head));
        let mut hasher = xxhash_rust::xxh3::Xxh3Default::new();
        hasher.update(bytes);
        Run {
            line,
            last_line: line,
            hasher,
            bytes: bytes.len() as u64,
            invalid_utf8: std::str::from_utf8(bytes).is_err(),
            read_cut: false,
        }
    }

    fn add(&mut self, line: u64, new_line: bool, bytes: &[u8]) {
        if new_line {
            self.hasher.update(b"\n");
            self.bytes += 1;
        }
        self.hasher.update(bytes);
        self.bytes += bytes.len() as u64;
        self.last_line = line;
    }

    /// The run's record as split: its text is the sample, `whole` set when the sample is not
    /// all of it.
    fn split(self, log_type: LogType, ordinal: u64, sample_len: usize) -> Split {
        let reason = format!(
            "text of control bytes (NUL and the like, no audit record), {} bytes on lines {} to \
             {}: one record for the run, raw holds its first {} bytes",
            self.bytes, self.line, self.last_line, RUN_SAMPLE_BYTES
        );
        let whole = (self.bytes > sample_len as u64).then(|| WholeText {
            bytes: self.bytes,
            xxh3: self.hasher.digest128(),
        });
        Split {
            log_type,
            kind: SplitKind::Run(Box::new(RunSplit {
                reason,
                invalid_utf8: self.invalid_utf8,
                whole,
            })),
            line: self.line,
            ordinal,
            truncated: false,
            read_cut: self.read_cut,
            limit: 0,
        }
    }
}

/// A record as the ordered part of parsing leaves it: what depends on the records before it
/// (its line, its ordinal, whether it is a run of control bytes), its text not yet typed.
/// Plain data, so records can be split in order and typed elsewhere ([`Split::record`]),
/// batches of them on other threads.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub log_type: LogType,
    kind: SplitKind,
    /// 1-based line the record starts on.
    pub line: u64,
    /// 0-based position of the record in its file.
    pub ordinal: u64,
    truncated: bool,
    read_cut: bool,
    /// The record size limit (named in the reasons of cut text).
    limit: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum SplitKind {
    /// A line of a pipe-separated log.
    PipeLine { continuation: bool, cut: bool },
    /// A piece of the activity log.
    Piece(activity::PieceKind),
    /// A run of control bytes, gathered whole: the text is its sample. Boxed: runs are rare,
    /// and every split is moved into a batch and back out.
    Run(Box<RunSplit>),
}

/// What a run of control bytes' record carries beyond its sample.
#[derive(Debug, Clone, PartialEq)]
struct RunSplit {
    reason: String,
    invalid_utf8: bool,
    whole: Option<WholeText>,
}

impl Split {
    /// Types the record's text (as [`Parser::next_split`] handed it out): the part of parsing
    /// that needs nothing but the record itself. `scratch` holds the text when it is not valid
    /// UTF-8.
    pub fn record<'a>(&self, text: &'a [u8], scratch: &'a mut String) -> Record<'a> {
        let (body, invalid_utf8, whole) = match &self.kind {
            SplitKind::PipeLine { continuation, cut } => {
                let (mut body, invalid_utf8) = pipe_body(
                    self.log_type,
                    text,
                    self.line,
                    *continuation,
                    *cut,
                    scratch,
                    self.limit,
                );
                let whole = cap_raw(&mut body, text);
                (body, invalid_utf8, whole)
            }
            SplitKind::Piece(kind) => {
                let (mut body, invalid_utf8) = piece_body(*kind, text, scratch, self.limit);
                // The pieces of an over-long statement keep the record limit: they are its text.
                let whole = match kind {
                    activity::PieceKind::Continuation { .. } => None,
                    _ => cap_raw(&mut body, text),
                };
                (body, invalid_utf8, whole)
            }
            SplitKind::Run(run) => {
                let RunSplit {
                    reason,
                    invalid_utf8,
                    whole,
                } = &**run;
                // The sample was made valid UTF-8 when it was taken.
                let (raw, _) = decode(text, scratch);
                let body = Body::ParseError {
                    reason: Cow::Owned(reason.clone()),
                    raw,
                };
                (body, *invalid_utf8, *whole)
            }
        };
        Record {
            log_type: self.log_type,
            body,
            line: self.line,
            ordinal: self.ordinal,
            invalid_utf8,
            truncated: self.truncated,
            read_cut: self.read_cut,
            redacted: false,
            whole,
        }
    }
}

/// A whole line of a pipe log as [`Split::type_columns`] leaves it: everything of its
/// [`Record`] but the columns, which were handed out as they were typed.
#[derive(Debug, Clone, PartialEq)]
pub struct TypedLine<'a> {
    pub log_type: LogType,
    /// The column table the columns were typed by.
    pub names: &'static [(&'static str, Kind)],
    /// How many columns were handed out (the rest are null).
    pub columns: usize,
    /// Columns past the known ones, raw and `|`-separated.
    pub extra: Option<&'a str>,
    pub line: u64,
    pub ordinal: u64,
    pub invalid_utf8: bool,
    pub truncated: bool,
    pub read_cut: bool,
}

impl Split {
    /// Types a whole line of a pipe log column by column, handing each to `column(index,
    /// value)` as [`Split::record`] would have typed it, rather than into a record: for a
    /// writer that renders them as they come. `None` when the record is anything else (the
    /// activity log, a cut line, a run of control bytes) or a column does not type, after
    /// `column` may have had some: [`Split::record`] then gives its `parse_error`.
    #[inline]
    pub fn type_columns<'a>(
        &self,
        text: &'a [u8],
        scratch: &'a mut String,
        mut column: impl FnMut(usize, Value<'a>),
    ) -> Option<TypedLine<'a>> {
        let SplitKind::PipeLine {
            continuation: false,
            cut: false,
        } = self.kind
        else {
            return None;
        };
        let layout = pipe_layout(self.log_type)?;
        let (text, invalid_utf8) = decode(text, scratch);
        let mut columns = 0;
        let extra = fields::type_pipe_line(text, layout, |at, value| {
            columns = at + 1;
            column(at, value);
        })
        .ok()?;
        Some(TypedLine {
            log_type: self.log_type,
            names: layout.columns,
            columns,
            extra,
            line: self.line,
            ordinal: self.ordinal,
            invalid_utf8,
            truncated: self.truncated,
            read_cut: self.read_cut,
        })
    }
}

/// The layout of a pipe-separated log's lines; `None` for the activity log.
fn pipe_layout(log_type: LogType) -> Option<&'static fields::PipeLayout> {
    match log_type {
        LogType::ConnectionLog => Some(&connection::CONNECTION_LAYOUT),
        LogType::UserLog => Some(&user::USER_LAYOUT),
        LogType::UserActivityLog => None,
    }
}

/// The body of a pipe-log line (borrowing `bytes`, or `scratch` when it needed replacing).
fn pipe_body<'a>(
    log_type: LogType,
    bytes: &'a [u8],
    line: u64,
    continuation: bool,
    cut: bool,
    scratch: &'a mut String,
    limit: usize,
) -> (Body<'a>, bool) {
    let (text, invalid_utf8) = decode(bytes, scratch);
    let body = if continuation {
        Body::ParseError {
            reason: Cow::Owned(continuation_reason(line, limit)),
            raw: text,
        }
    } else if cut {
        // Typing a cut line would give wrong values (a port cut mid-number): keep it raw.
        Body::ParseError {
            reason: Cow::Owned(cut_reason(limit)),
            raw: text,
        }
    } else if log_type == LogType::ConnectionLog {
        connection::parse(text)
    } else {
        user::parse(text)
    };
    (body, invalid_utf8)
}

/// The body of an activity-log piece whose text is `bytes`.
fn piece_body<'a>(
    kind: activity::PieceKind,
    bytes: &'a [u8],
    scratch: &'a mut String,
    limit: usize,
) -> (Body<'a>, bool) {
    let (text, invalid_utf8) = decode(bytes, scratch);
    let body = match kind {
        activity::PieceKind::Statement => activity::parse(text),
        activity::PieceKind::Orphan => Body::ParseError {
            reason: Cow::Borrowed("text before the first record header"),
            raw: text,
        },
        activity::PieceKind::Continuation { of_line } => Body::ParseError {
            reason: Cow::Owned(continuation_reason(of_line, limit)),
            raw: text,
        },
    };
    (body, invalid_utf8)
}

/// Which of the parser's buffers holds the text of the record last split.
#[derive(Debug, Clone)]
enum TextAt {
    Line(lines::LineMeta),
    Ready,
    Sample,
}

/// Whether more than half the bytes are control bytes other than tab and line ends (NUL,
/// escape, DEL, ...): text no audit log holds, and which JSON escaping grows sixfold.
pub fn mostly_control(bytes: &[u8]) -> bool {
    // Every line of every object goes through here, and nearly no line holds a byte below 0x20
    // or DEL: eight bytes at a time, a word without one is passed over (the has-less and
    // has-zero tricks, exact as to whether any byte is one); the bytes are counted only once
    // one turns up (a tab, or the line ends of a statement of several lines, will do).
    // First 32 bytes at a time, in a form the compiler turns into SIMD (a 100-byte line of a
    // pipe log is three such blocks), then a word at a time.
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        let Ok(block) = <&[u8; 32]>::try_from(block) else {
            break;
        };
        let low_or_del = block.iter().fold(0u8, |any, &b| {
            any | u8::from(b < 0x20) | u8::from(b == 0x7f)
        });
        if low_or_del != 0 {
            return count_control(bytes) * 2 > bytes.len();
        }
    }
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut words = blocks.remainder().chunks_exact(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let w = u64::from_le_bytes(w);
        let del = w ^ (ONES * 0x7f);
        let low_or_del = (w.wrapping_sub(ONES * 0x20) & !w) | (del.wrapping_sub(ONES) & !del);
        if low_or_del & HIGHS != 0 {
            return count_control(bytes) * 2 > bytes.len();
        }
    }
    words.remainder().iter().any(|&b| is_control(b)) && count_control(bytes) * 2 > bytes.len()
}

/// A control byte other than tab and line ends.
#[inline]
fn is_control(b: u8) -> bool {
    ((b < 0x20) & (b != b'\t') & (b != b'\n') & (b != b'\r')) | (b == 0x7f)
}

/// Control bytes other than tab and line ends: branch-free counts in chunks of 255, which the
/// compiler turns into SIMD.
fn count_control(bytes: &[u8]) -> usize {
    let mut control = 0usize;
    for chunk in bytes.chunks(255) {
        let mut n = 0u8;
        for &b in chunk {
            n += u8::from(is_control(b));
        }
        control += usize::from(n);
    }
    control
}

/// Cuts a parse error's `raw` to [`MAX_RAW_BYTES`] (at a char boundary), returning the whole
/// text's length and hash when it did.
fn cap_raw(body: &mut Body<'_>, bytes: &[u8]) -> Option<WholeText> {
    let Body::ParseError { raw, .. } = body else {
        return None;
    };
    if raw.len() <= MAX_RAW_BYTES {
        return None;
    }
    let mut end = MAX_RAW_BYTES;
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    *raw = &raw[..end];
    Some(WholeText::of(bytes))
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
            sample: String::new(),
            held_line: None,
            held_piece: None,
            last: None,
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

    /// Gives back memory a huge record left in the parser's buffers (call between records).
    pub fn release(&mut self) {
        // The last split's text may go with the memory (a long line's, say).
        self.last = None;
        release(&mut self.text, MAX_RAW_BYTES);
        // A held piece's text is still in the assembler, a held line's in the reader.
        if self.held_piece.is_none() {
            self.activity.release();
        }
        if self.held_line.is_none() {
            self.lines.release();
        }
    }

    /// The next record, or `None` at the end of the input. Unparsable text comes out as a
    /// `parse_error` record; only an I/O error (say, a truncated gzip stream) is an `Err`.
    pub fn next_record(&mut self) -> io::Result<Option<Record<'_>>> {
        self.last = None;
        let Some((split, at)) = self.split_next()? else {
            return Ok(None);
        };
        let text = match &at {
            TextAt::Line(meta) => self.lines.line(meta).bytes,
            TextAt::Ready => self.activity.ready(),
            TextAt::Sample => self.sample.as_bytes(),
        };
        Ok(Some(split.record(text, &mut self.text)))
    }

    /// The next record split but not typed, with its text (until the next call), or `None` at
    /// the end of the input; [`Split::record`] types it. Errors as for [`Parser::next_record`].
    pub fn next_split(&mut self) -> io::Result<Option<(Split, &[u8])>> {
        self.last = None;
        let Some((split, at)) = self.split_next()? else {
            return Ok(None);
        };
        self.last = Some(at);
        Ok(Some((split, self.split_text())))
    }

    /// The text of the record [`Parser::next_split`] handed out last, until the parser is
    /// called again (empty when there is none).
    pub fn split_text(&self) -> &[u8] {
        match &self.last {
            Some(TextAt::Line(meta)) => self.lines.line(meta).bytes,
            Some(TextAt::Ready) => self.activity.ready(),
            Some(TextAt::Sample) => self.sample.as_bytes(),
            None => &[],
        }
    }

    fn split_next(&mut self) -> io::Result<Option<(Split, TextAt)>> {
        match self.log_type {
            LogType::ConnectionLog | LogType::UserLog => self.split_pipe_record(),
            LogType::UserActivityLog => self.split_activity_record(),
        }
    }

    /// The next line that is not blank (a later piece of a long line always counts).
    fn next_pipe_line(&mut self) -> io::Result<Option<lines::LineMeta>> {
        if let Some(meta) = self.held_line.take() {
            return Ok(Some(meta));
        }
        loop {
            let Some(meta) = self.lines.advance()? else {
                return Ok(None);
            };
            let line = self.lines.line(&meta);
            if line.continuation || !line.bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(Some(meta));
            }
        }
    }

    fn split_pipe_record(&mut self) -> io::Result<Option<(Split, TextAt)>> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let Some(meta) = self.next_pipe_line()? else {
            return Ok(None);
        };
        let ordinal = self.ordinal;
        self.ordinal += 1;
        let line = self.lines.line(&meta);
        if line_is_control(self.log_type, &line, &mut self.text, self.limit) {
            let mut run = Run::new(meta.number, line.bytes, &mut self.sample);
            run.read_cut = meta.at_failure;
            self.gather_pipe_run(&mut run);
            let split = run.split(self.log_type, ordinal, self.sample.len());
            return Ok(Some((split, TextAt::Sample)));
        }
        let split = Split {
            log_type: self.log_type,
            kind: SplitKind::PipeLine {
                continuation: meta.continuation,
                cut: meta.cut,
            },
            line: meta.number,
            ordinal,
            truncated: meta.cut,
            read_cut: meta.at_failure,
            limit: self.limit,
        };
        Ok(Some((split, TextAt::Line(meta))))
    }

    /// Adds the lines that go on a run of control bytes; the first that does not is held.
    fn gather_pipe_run(&mut self, run: &mut Run) {
        loop {
            let meta = match self.next_pipe_line() {
                Ok(Some(meta)) => meta,
                Ok(None) => return,
                Err(e) => {
                    self.failed = Some(e);
                    run.read_cut = true;
                    return;
                }
            };
            let line = self.lines.line(&meta);
            let goes_on = line.continuation
                || line_is_control(self.log_type, &line, &mut self.text, self.limit);
            if !goes_on {
                self.held_line = Some(meta);
                return;
            }
            run.add(meta.number, !line.continuation, line.bytes);
            run.read_cut |= meta.at_failure;
        }
    }

    /// The next finished piece of the activity log, the held one first.
    fn next_piece(&mut self) -> io::Result<Option<activity::Piece>> {
        if let Some(piece) = self.held_piece.take() {
            return Ok(Some(piece));
        }
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        loop {
            match self.lines.next_line() {
                Ok(line) => {
                    if let Some(piece) = self.activity.push(line) {
                        return Ok(piece);
                    }
                }
                Err(e) => {
                    return match self.activity.abort() {
                        Some(piece) => {
                            self.failed = Some(e);
                            Ok(Some(piece))
                        }
                        None => Err(e),
                    }
                }
            }
        }
    }

    /// Whether the piece in the assembler is a parse error of control bytes.
    fn piece_is_control(&mut self, piece: &activity::Piece) -> bool {
        let ready = self.activity.ready();
        match piece.kind {
            activity::PieceKind::Statement => {
                mostly_control(ready) && {
                    let (body, _) = piece_body(piece.kind, ready, &mut self.text, self.limit);
                    body_is_error(&body)
                }
            }
            _ => mostly_control(ready),
        }
    }

    fn split_activity_record(&mut self) -> io::Result<Option<(Split, TextAt)>> {
        let Some(piece) = self.next_piece()? else {
            return Ok(None);
        };
        let ordinal = self.ordinal;
        self.ordinal += 1;
        if self.piece_is_control(&piece) {
            let mut run = Run::new(piece.line, self.activity.ready(), &mut self.sample);
            run.read_cut = piece.read_cut;
            self.gather_activity_run(&mut run);
            let split = run.split(self.log_type, ordinal, self.sample.len());
            return Ok(Some((split, TextAt::Sample)));
        }
        let split = Split {
            log_type: self.log_type,
            kind: SplitKind::Piece(piece.kind),
            line: piece.line,
            ordinal,
            truncated: piece.truncated,
            read_cut: piece.read_cut,
            limit: self.limit,
        };
        Ok(Some((split, TextAt::Ready)))
    }

    /// Adds the pieces that go on a run of control bytes; the first that does not is held.
    fn gather_activity_run(&mut self, run: &mut Run) {
        loop {
            let piece = match self.next_piece() {
                Ok(Some(piece)) => piece,
                Ok(None) => return,
                Err(e) => {
                    self.failed = Some(e);
                    run.read_cut = true;
                    return;
                }
            };
            if !self.piece_is_control(&piece) {
                self.held_piece = Some(piece);
                return;
            }
            run.add(piece.line, piece.new_line, self.activity.ready());
            run.read_cut |= piece.read_cut;
        }
    }
}

/// Whether a pipe-log line is part of a run of control bytes: mostly control bytes, and no
/// record. Counting is cheaper than parsing: a line is parsed here only when it is mostly
/// control bytes.
fn line_is_control(log_type: LogType, line: &Line<'_>, scratch: &mut String, limit: usize) -> bool {
    mostly_control(line.bytes) && {
        let (body, _) = pipe_body(
            log_type,
            line.bytes,
            line.number,
            line.continuation,
            line.cut,
            scratch,
            limit,
        );
        body_is_error(&body)
    }
}

fn body_is_error(body: &Body<'_>) -> bool {
    matches!(body, Body::ParseError { .. })
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

fn continuation_reason(line: u64, limit: usize) -> String {
    format!("continuation of the record at line {line}, which is longer than the {limit}-byte record limit")
}

fn cut_reason(limit: usize) -> String {
    format!("line cut short: longer than the {limit}-byte record limit (the rest follows), or the input ended in it")
}

/// The text of `bytes`, borrowed when it is valid UTF-8, else with U+FFFD replacements in
/// `scratch`. The flag says whether anything was replaced.
fn decode<'a>(bytes: &'a [u8], scratch: &'a mut String) -> (&'a str, bool) {
    // Validation takes its own ASCII fast path: on a 110-byte line it costs about half of
    // `is_ascii` (callgrind), so no unchecked shortcut is needed.
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
