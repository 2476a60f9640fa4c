//! The user activity log: one record per SQL statement, starting with a header line
//! `'2020-12-08T22:00:03Z UTC [ db=dev user=rdsdb pid=685 userid=1 xid=245578 ]' LOG: <query>`;
//! every following line that does not start a new record belongs to the same query.

use std::borrow::Cow;

use super::fields::{parse_int, Kind};
use super::lines::Line;
use super::time::parse_iso_seconds;
use super::{Body, Columns, Value, MAX_COLUMNS};

/// The columns, in the order the seed lists them.
/// A `static`, not a `const`: one address, which `time_column` and the OCSF mapping compare
/// tables by (a `const` may be copied into each codegen unit that uses it).
pub static ACTIVITY_COLUMNS: &[(&str, Kind)] = &[
    ("recordtime", Kind::Time),
    ("db", Kind::Text),
    ("user", Kind::Text),
    ("pid", Kind::Int),
    ("userid", Kind::Int),
    ("xid", Kind::Int),
    ("query", Kind::Text),
];

const TIME_LEN: usize = "2020-12-08T22:00:03Z".len();
const AFTER_TIME: &[u8] = b" UTC [ ";
const HEADER_END: &[u8] = b"]' LOG:";

/// Where a header line's parts are: (fields between the brackets, time, query start).
struct Header {
    time: std::ops::Range<usize>,
    fields: std::ops::Range<usize>,
    query: usize,
}

/// Recognises a record header by its shape alone (quote, time, `UTC [`, `]' LOG:`), so a
/// header with a bad value still starts a record (which then becomes a `parse_error`).
fn split_header(line: &[u8]) -> Option<Header> {
    let lead = line.iter().take_while(|&&b| b == b' ').count();
    let rest = &line[lead..];
    if rest.first() != Some(&b'\'') || rest.len() < 1 + TIME_LEN + AFTER_TIME.len() {
        return None;
    }
    let time = &rest[1..1 + TIME_LEN];
    if !(time[4] == b'-'
        && time[10] == b'T'
        && time[19] == b'Z'
        && time[0..4].iter().all(u8::is_ascii_digit))
    {
        return None;
    }
    let after = 1 + TIME_LEN;
    if &rest[after..after + AFTER_TIME.len()] != AFTER_TIME {
        return None;
    }
    let fields_start = after + AFTER_TIME.len();
    let end = find_header_end(&rest[fields_start..])? + fields_start;
    let mut query = end + HEADER_END.len();
    if rest.get(query) == Some(&b' ') {
        query += 1;
    }
    Some(Header {
        time: lead + 1..lead + after,
        fields: lead + fields_start..lead + end,
        query: lead + query,
    })
}

/// Where `]' LOG:` first occurs: a check at each `]` (nearly always the first one), cheaper on
/// a short line than setting up a substring search for every line.
fn find_header_end(bytes: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = memchr::memchr(HEADER_END[0], &bytes[from..]) {
        let at = from + at;
        if bytes[at..].starts_with(HEADER_END) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Where `key` (which ends with `=`) last occurs in `s`: a check at each `=` from the right, as
/// the keys sit at the end of what is left of the header.
fn rfind_key(s: &str, key: &str) -> Option<usize> {
    let (bytes, key) = (s.as_bytes(), key.as_bytes());
    let mut end = bytes.len();
    while let Some(eq) = memchr::memrchr(b'=', &bytes[..end]) {
        if let Some(start) = (eq + 1).checked_sub(key.len()) {
            if &bytes[start..=eq] == key {
                return Some(start);
            }
        }
        end = eq;
    }
    None
}

/// Parses one whole record's text (header line plus any further query lines).
pub fn parse(text: &str) -> Body<'_> {
    let error = |reason: String| Body::ParseError {
        reason: Cow::Owned(reason),
        raw: text,
    };
    let Some(h) = split_header(text.as_bytes()) else {
        return error("not a user activity record header".to_string());
    };
    let time = match parse_iso_seconds(&text.as_bytes()[h.time.clone()]) {
        Ok(t) => t,
        Err(why) => return error(why.to_string()),
    };
    // `db=dev user=rdsdb pid=685 userid=1 xid=245578 `: taken apart from the right, so a space in
    // a database or user name does not shift the numbers.
    let mut rest = text[h.fields.clone()].trim_end();
    let mut take = |key: &str| -> Option<&str> {
        let at = rfind_key(rest, key)?;
        let value = &rest[at + key.len()..];
        rest = &rest[..at];
        Some(value)
    };
    let (Some(xid), Some(userid), Some(pid), Some(user)) = (
        take(" xid="),
        take(" userid="),
        take(" pid="),
        take(" user="),
    ) else {
        return error("header lacks one of db=, user=, pid=, userid=, xid=".to_string());
    };
    let Some(db) = rest.strip_prefix("db=") else {
        return error("header does not start with db=".to_string());
    };
    let mut values = Box::new([Value::Null; MAX_COLUMNS]);
    values[0] = Value::Time(time);
    values[1] = text_value(db);
    values[2] = text_value(user);
    for (slot, (name, raw)) in [("pid", pid), ("userid", userid), ("xid", xid)]
        .into_iter()
        .enumerate()
    {
        match parse_int(raw) {
            Ok(n) => values[3 + slot] = Value::Int(n),
            Err(why) => return error(format!("{name} {why}: {}", crate::mask::quote(raw))),
        }
    }
    values[6] = Value::Text(&text[h.query..]);
    Body::Columns(Columns {
        names: ACTIVITY_COLUMNS,
        values,
        extra: None,
    })
}

fn text_value(s: &str) -> Value<'_> {
    if s.is_empty() {
        Value::Null
    } else {
        Value::Text(s)
    }
}

/// Renders an activity record back into the file format (tests and the corpus generator).
pub fn render_activity(columns: &Columns<'_>) -> String {
    let text = |i: usize| columns.values[i].as_text().unwrap_or("");
    let int = |i: usize| {
        columns.values[i]
            .as_int()
            .map(|n| n.to_string())
            .unwrap_or_default()
    };
    let time = match &columns.values[0] {
        Value::Time(t) => format!("{}Z", &t.as_str()[..19]),
        _ => String::new(),
    };
    format!(
        "'{time} UTC [ db={} user={} pid={} userid={} xid={} ]' LOG: {}",
        text(1),
        text(2),
        int(3),
        int(4),
        int(5),
        text(6)
    )
}

/// What a finished piece of text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceKind {
    /// A header line and its query lines.
    Statement,
    /// Lines before the file's first header (the tail of a statement from an earlier file).
    Orphan,
    /// The rest of a statement past the record size limit.
    Continuation { of_line: u64 },
}

#[derive(Debug, Clone, Copy)]
pub struct Piece {
    pub kind: PieceKind,
    pub line: u64,
    pub truncated: bool,
    /// The input failed while this statement was being read.
    pub read_cut: bool,
    /// The piece starts a line (a continuation may start inside one, cut at the limit).
    pub new_line: bool,
}

/// Joins lines into statements. Each line is copied once, into the statement being built.
pub struct Assembler {
    max: usize,
    pending: Vec<u8>,
    pending_piece: Option<Piece>,
    ready: Vec<u8>,
    done: bool,
}

impl Assembler {
    pub fn new(max: usize) -> Self {
        Assembler {
            max,
            pending: Vec::new(),
            pending_piece: None,
            ready: Vec::new(),
            done: false,
        }
    }

    /// The text of the piece last returned by `push`.
    pub fn ready(&self) -> &[u8] {
        &self.ready
    }

    /// Takes the next line (`None` at the end of input). Returns `Some(Some(piece))` when a
    /// piece is finished (its text is in `ready()`), `Some(None)` when the input is exhausted,
    /// `None` when more lines are needed.
    pub fn push(&mut self, line: Option<Line<'_>>) -> Option<Option<Piece>> {
        let Some(line) = line else {
            if self.done {
                return Some(None);
            }
            self.done = true;
            return Some(self.finish_pending());
        };
        if !line.continuation && split_header(line.bytes).is_some() {
            let finished = self.finish_pending();
            self.start(PieceKind::Statement, &line);
            return finished.map(Some);
        }
        let Some(piece) = self.pending_piece.as_mut() else {
            if line.bytes.iter().all(u8::is_ascii_whitespace) && !line.continuation {
                return None; // blank lines before anything else
            }
            self.start(PieceKind::Orphan, &line);
            return None;
        };
        let separator = usize::from(!line.continuation);
        if self.pending.len() + separator + line.bytes.len() > self.max {
            piece.truncated = true;
            let of_line = match piece.kind {
                PieceKind::Continuation { of_line } => of_line,
                _ => piece.line,
            };
            let finished = self.finish_pending();
            self.start(PieceKind::Continuation { of_line }, &line);
            return finished.map(Some);
        }
        if separator == 1 {
            self.pending.push(b'\n');
        }
        self.pending.extend_from_slice(line.bytes);
        None
    }

    /// The input failed: finishes the statement in hand as truncated, so what was read of it
    /// is still handed out.
    pub fn abort(&mut self) -> Option<Piece> {
        if let Some(piece) = self.pending_piece.as_mut() {
            piece.truncated = true;
            piece.read_cut = true;
        }
        self.finish_pending()
    }

    fn start(&mut self, kind: PieceKind, line: &Line<'_>) {
        self.pending.clear();
        self.pending.extend_from_slice(line.bytes);
        self.pending_piece = Some(Piece {
            kind,
            line: line.number,
            truncated: false,
            read_cut: false,
            new_line: !line.continuation,
        });
    }

    /// Gives back the memory of a huge piece once it was handed out (its text is gone then).
    pub fn release(&mut self) {
        super::release(&mut self.ready, super::MAX_RAW_BYTES);
    }

    fn finish_pending(&mut self) -> Option<Piece> {
        let piece = self.pending_piece.take()?;
        std::mem::swap(&mut self.ready, &mut self.pending);
        self.pending.clear();
        Some(piece)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(text: &str) -> Columns<'_> {
        parse(text).expect_columns()
    }

    #[test]
    fn header_fields_are_typed() {
        let c = columns("'2020-12-08T22:00:03Z UTC [ db=dev user=rdsdb pid=685 userid=1 xid=245578 ]' LOG: SET statement_timeout TO 120000");
        assert!(matches!(c.values[0], Value::Time(t) if t.as_str() == "2020-12-08T22:00:03.000Z"));
        assert_eq!(c.get("db"), Some(&Value::Text("dev")));
        assert_eq!(c.get("user"), Some(&Value::Text("rdsdb")));
        assert_eq!(c.get("pid"), Some(&Value::Int(685)));
        assert_eq!(c.get("userid"), Some(&Value::Int(1)));
        assert_eq!(c.get("xid"), Some(&Value::Int(245578)));
        assert_eq!(
            c.get("query"),
            Some(&Value::Text("SET statement_timeout TO 120000"))
        );
    }

    #[test]
    fn leading_space_before_the_quote_is_tolerated() {
        let c = columns(" '2020-12-08T22:00:03Z UTC [ db=dev user=IAM:alice pid=685 userid=1 xid=2 ]' LOG: select 1");
        assert_eq!(c.get("user"), Some(&Value::Text("IAM:alice")));
        assert_eq!(c.get("query"), Some(&Value::Text("select 1")));
    }

    #[test]
    fn spaces_in_names_do_not_shift_numbers() {
        let c =
            columns("'2020-12-08T22:00:03Z UTC [ db=my db user=a b pid=1 userid=2 xid=3 ]' LOG: x");
        assert_eq!(c.get("db"), Some(&Value::Text("my db")));
        assert_eq!(c.get("user"), Some(&Value::Text("a b")));
        assert_eq!(c.get("xid"), Some(&Value::Int(3)));
    }

    #[test]
    fn empty_query() {
        let c = columns("'2020-12-08T22:00:03Z UTC [ db=dev user=u pid=1 userid=2 xid=3 ]' LOG:");
        assert_eq!(c.get("query"), Some(&Value::Text("")));
    }

    #[test]
    fn header_shape_with_bad_values_is_a_parse_error() {
        assert!(split_header(
            b"'2020-12-08T22:00:03Z UTC [ db=dev user=u pid=x userid=2 xid=3 ]' LOG: q"
        )
        .is_some());
        match parse("'2020-12-08T22:00:03Z UTC [ db=dev user=u pid=x userid=2 xid=3 ]' LOG: q") {
            Body::ParseError { reason, .. } => assert!(reason.contains("pid"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse("'2020-13-08T22:00:03Z UTC [ db=dev user=u pid=1 userid=2 xid=3 ]' LOG: q"),
            Body::ParseError { .. }
        ));
    }

    #[test]
    fn non_headers_are_not_headers() {
        for line in [
            &b"SELECT 1"[..],
            b"'2020-12-08T22:00:03Z UTC [ db=dev",
            b"'not a time at all here UTC [ db=x ]' LOG: q",
            b"",
            b"'",
        ] {
            assert!(
                split_header(line).is_none(),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn key_and_header_end_searches_agree_with_the_standard_ones() {
        for s in [
            "db=dev user=u pid=1 userid=2 xid=3",
            "db=a user=b pid= xid=x user=c pid=9",
            "= pid= pid",
            "pid=",
            "",
            "user=x",
        ] {
            for key in [" xid=", " userid=", " pid=", " user="] {
                assert_eq!(rfind_key(s, key), s.rfind(key), "{s:?} {key:?}");
            }
        }
        for s in [
            "a ]' LOG: b",
            "]]' LOG:",
            "] ' LOG: ]' LOG:",
            "]' LOG",
            "",
            "]' LOG:",
        ] {
            assert_eq!(find_header_end(s.as_bytes()), s.find("]' LOG:"), "{s:?}");
        }
    }

    #[test]
    fn renders_back() {
        let line = "'2020-12-08T22:00:03Z UTC [ db=dev user=rdsdb pid=685 userid=1 xid=245578 ]' LOG: SELECT 1\n  FROM t";
        assert_eq!(render_activity(&columns(line)), line);
    }
}
