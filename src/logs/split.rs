//! Typing a record split in order: [`Split::record`] turns its text into a [`Record`], on any
//! thread, needing nothing but the record itself.

use std::borrow::Cow;

use super::{
    activity, connection, fields, user, Body, Kind, LogType, Record, Value, WholeText,
    MAX_RAW_BYTES,
};

/// A record as the ordered part of parsing leaves it: what depends on the records before it
/// (its line, its ordinal, whether it is a run of control bytes), its text not yet typed.
/// Plain data, so records can be split in order and typed elsewhere ([`Split::record`]),
/// batches of them on other threads.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub log_type: LogType,
    pub(super) kind: SplitKind,
    /// 1-based line the record starts on.
    pub line: u64,
    /// 0-based position of the record in its file.
    pub ordinal: u64,
    pub(super) truncated: bool,
    pub(super) read_cut: bool,
    /// The record size limit (named in the reasons of cut text).
    pub(super) limit: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum SplitKind {
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
pub(super) struct RunSplit {
    pub(super) reason: String,
    pub(super) invalid_utf8: bool,
    pub(super) whole: Option<WholeText>,
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
pub(super) fn pipe_body<'a>(
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
pub(super) fn piece_body<'a>(
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
