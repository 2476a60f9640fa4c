//! Typed column values and the pipe-separated layout shared by the connection and user logs.

use std::borrow::Cow;

use super::time::{parse_log_time, Timestamp};
use super::{Body, Columns, MAX_COLUMNS};

/// How a column's text is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Trimmed text; empty is null.
    Text,
    /// A whole number; empty is null.
    Int,
    /// `1`/`0` (also `t`/`f`, `true`/`false`) to a boolean; empty is null.
    Flag,
    /// `Mon, 7 Dec 2020 20:01:55:177` to RFC 3339.
    Time,
    /// The user log's password expiry: null when it never expires.
    ValidUntil,
}

/// One typed value.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Value<'a> {
    #[default]
    Null,
    Text(&'a str),
    Int(i64),
    Bool(bool),
    Time(Timestamp),
}

impl<'a> Value<'a> {
    pub fn as_text(&self) -> Option<&'a str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }
}

/// Values that mean "the password never expires".
const NEVER_EXPIRES: [&str; 3] = ["9223372036854775807", "infinity", ""];

/// Trims the padding Redshift writes around fields (a space after each text value).
pub fn trim(s: &str) -> &str {
    let (start, end) = trimmed(s.as_bytes());
    // Only ASCII bytes were skipped, so both ends are char boundaries.
    s.get(start..end).unwrap_or("")
}

/// Where the text of `b` starts and ends without the padding (`start == end` when it is all
/// padding).
#[inline]
fn trimmed(b: &[u8]) -> (usize, usize) {
    let pad = |c: u8| matches!(c, b' ' | b'\t' | b'\r');
    let mut start = 0;
    while start < b.len() && pad(b[start]) {
        start += 1;
    }
    let mut end = b.len();
    while end > start && pad(b[end - 1]) {
        end -= 1;
    }
    (start, end)
}

/// Parses a whole number; `Err` names what is wrong.
pub fn parse_int(s: &str) -> Result<i64, &'static str> {
    let (negative, digits) = match s.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        all => (false, all),
    };
    if digits.is_empty() {
        return Err("is not a whole number");
    }
    if digits.len() <= 18 {
        // 18 digits cannot overflow: no checks per digit.
        let mut n: i64 = 0;
        for &d in digits {
            let d = d.wrapping_sub(b'0');
            if d > 9 {
                return Err("is not a whole number");
            }
            n = n * 10 + i64::from(d);
        }
        return Ok(if negative { -n } else { n });
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err("is not a whole number");
        }
        let d = i64::from(d - b'0');
        n = n
            .checked_mul(10)
            .and_then(|n| {
                if negative {
                    n.checked_sub(d)
                } else {
                    n.checked_add(d)
                }
            })
            .ok_or("is out of range")?;
    }
    Ok(n)
}

#[inline]
fn parse_flag(s: &str) -> Result<bool, &'static str> {
    match s.as_bytes() {
        b"1" | b"t" | b"true" | b"TRUE" | b"True" => Ok(true),
        b"0" | b"f" | b"false" | b"FALSE" | b"False" => Ok(false),
        _ => Err("is not a flag (1 or 0)"),
    }
}

/// Whether a `valuntil` means "the password never expires".
fn never_expires(s: &str) -> bool {
    // The digits need no case folding: compare them as they are, the common case first.
    s == NEVER_EXPIRES[0] || NEVER_EXPIRES.iter().any(|n| s.eq_ignore_ascii_case(n))
}

/// Types one trimmed field.
#[inline(always)]
pub fn typed<'a>(kind: Kind, s: &'a str) -> Result<Value<'a>, Cow<'static, str>> {
    if s.is_empty() {
        return Ok(Value::Null);
    }
    Ok(match kind {
        Kind::Text => Value::Text(s),
        Kind::Int => Value::Int(parse_int(s).map_err(Cow::Borrowed)?),
        Kind::Flag => Value::Bool(parse_flag(s).map_err(Cow::Borrowed)?),
        Kind::Time => Value::Time(parse_log_time(s.as_bytes()).map_err(Cow::Borrowed)?),
        Kind::ValidUntil if never_expires(s) => Value::Null,
        Kind::ValidUntil => Value::Text(s),
    })
}

/// How a pipe-separated log lays out a line: its columns, how many must be present, and
/// whether columns past the known ones are kept (in `extra`) or make the line a parse error.
#[derive(Debug, Clone, Copy)]
pub struct PipeLayout {
    pub columns: &'static [(&'static str, Kind)],
    pub min_fields: usize,
    pub allow_extra: bool,
}

/// Splits a pipe-separated line into typed columns ([`type_pipe_line`]).
pub fn parse_pipe_line<'a>(line: &'a str, layout: &PipeLayout) -> Body<'a> {
    let mut values = Box::new([Value::Null; MAX_COLUMNS]);
    match type_pipe_line(line, layout, |at, value| values[at] = value) {
        Ok(extra) => Body::Columns(Columns {
            names: layout.columns,
            values,
            extra,
        }),
        Err(reason) => Body::ParseError {
            reason: Cow::Owned(reason),
            raw: line,
        },
    }
}

/// Types a pipe-separated line's columns in order, handing each to `column(index, value)` as it
/// is typed, and returns the text past the known columns; `Err` says why the line is no
/// record (`column` may have had some columns by then). A trailing `|` (older connection logs,
/// where even an empty text field is one space) ends the line rather than adding an empty
/// column. Missing trailing columns are not handed out (they are null); more than the layout's
/// columns are kept raw, unless it does not allow extra ones. At least `min_fields` must be
/// present.
#[inline]
pub fn type_pipe_line<'a>(
    line: &'a str,
    layout: &PipeLayout,
    mut column: impl FnMut(usize, Value<'a>),
) -> Result<Option<&'a str>, String> {
    let PipeLayout {
        columns,
        min_fields,
        allow_extra,
    } = *layout;
    let body = line.strip_suffix('|').unwrap_or(line);
    let bytes = body.as_bytes();
    let mut pipes = Pipes { bytes, at: 0 };
    // Where the text not yet taken starts; `None` once the last field was taken.
    let mut rest = Some(0);
    let mut count = 0;
    while count < columns.len() {
        let Some(start) = rest else {
            break;
        };
        let end = match pipes.next() {
            Some(i) => {
                rest = Some(i + 1);
                i
            }
            None => {
                rest = None;
                bytes.len()
            }
        };
        let (name, kind) = columns[count];
        let (a, b) = trimmed(&bytes[start..end]);
        // `|` and the padding are ASCII, so these are char boundaries.
        let field = body.get(start + a..start + b).unwrap_or("");
        match typed(kind, field) {
            Ok(v) => column(count, v),
            Err(why) => {
                let field = crate::mask::quote(field);
                return Err(format!("column {} ({name}) {why}: {field}", count + 1));
            }
        }
        count += 1;
    }
    let rest = rest.map(|start| body.get(start..).unwrap_or(""));
    if count < min_fields {
        return Err(format!(
            "{count} columns, expected at least {min_fields} separated by `|`"
        ));
    }
    if rest.is_some() && !allow_extra {
        let total = count + rest.map_or(0, |r| r.split('|').count());
        return Err(format!("{total} columns, expected {}", columns.len()));
    }
    Ok(rest)
}

/// Positions of `|` in a line, found eight bytes at a time: fields are short, so this beats
/// `memchr`'s per-call set-up, and it stays fast over long fields.
struct Pipes<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Iterator for Pipes<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGHS: u64 = 0x8080_8080_8080_8080;
        let b = self.bytes;
        let mut i = self.at;
        while i + 8 <= b.len() {
            let mut word = [0u8; 8];
            word.copy_from_slice(&b[i..i + 8]);
            let x = u64::from_le_bytes(word) ^ (ONES * u64::from(b'|'));
            let found = x.wrapping_sub(ONES) & !x & HIGHS;
            if found != 0 {
                let pos = i + (found.trailing_zeros() / 8) as usize;
                self.at = pos + 1;
                return Some(pos);
            }
            i += 8;
        }
        while i < b.len() {
            if b[i] == b'|' {
                self.at = i + 1;
                return Some(i);
            }
            i += 1;
        }
        self.at = b.len();
        None
    }
}

/// Renders columns back into the pipe-separated file format, the way Redshift pads them (text
/// followed by one space, numbers and times bare), writing the first `count` columns (older
/// connection logs have fewer). Used by tests and the corpus generator.
pub fn render_pipe_line(columns: &Columns<'_>, count: usize, trailing_pipe: bool) -> String {
    let mut out = String::new();
    let known = columns.names.iter().zip(columns.values.iter()).take(count);
    for (i, ((_, kind), value)) in known.enumerate() {
        if i > 0 {
            out.push('|');
        }
        match (kind, value) {
            (_, Value::Text(s)) => {
                out.push_str(s);
                out.push(' ');
            }
            (Kind::Int, Value::Null) | (Kind::Flag, Value::Null) | (Kind::Time, Value::Null) => {}
            (_, Value::Null) => out.push(' '),
            (_, Value::Int(n)) => out.push_str(&n.to_string()),
            (_, Value::Bool(b)) => out.push(if *b { '1' } else { '0' }),
            (_, Value::Time(t)) => out.push_str(&t.to_redshift_log()),
        }
    }
    if let Some(extra) = columns.extra {
        out.push('|');
        out.push_str(extra);
    }
    if trailing_pipe {
        out.push('|');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_padding() {
        assert_eq!(trim("dev "), "dev");
        assert_eq!(trim(" "), "");
        assert_eq!(trim("\tx \r"), "x");
    }

    #[test]
    fn ints() {
        assert_eq!(parse_int("1073742045"), Ok(1073742045));
        assert_eq!(parse_int("-1"), Ok(-1));
        assert_eq!(parse_int("007"), Ok(7));
        assert!(parse_int("12a").is_err());
        assert!(parse_int("-").is_err());
        assert!(parse_int("99999999999999999999").is_err());
    }

    #[test]
    fn valuntil_never_is_null() {
        assert_eq!(
            typed(Kind::ValidUntil, "9223372036854775807"),
            Ok(Value::Null)
        );
        assert_eq!(typed(Kind::ValidUntil, "infinity"), Ok(Value::Null));
        assert_eq!(typed(Kind::ValidUntil, ""), Ok(Value::Null));
        assert_eq!(
            typed(Kind::ValidUntil, "2025-01-01 00:00:00"),
            Ok(Value::Text("2025-01-01 00:00:00"))
        );
    }

    #[test]
    fn flags() {
        assert_eq!(typed(Kind::Flag, "1"), Ok(Value::Bool(true)));
        assert_eq!(typed(Kind::Flag, "0"), Ok(Value::Bool(false)));
        assert!(typed(Kind::Flag, "2").is_err());
    }
}
