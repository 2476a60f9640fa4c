//! Records to JSON lines: the `raw` schema of DESIGN.md or OCSF 1.1.0 events ([`Format`]), the
//! provenance every record carries, its stable id, and the splitting of a record too large for
//! one Firehose record.

pub mod id;
pub mod json;
mod log_event;
pub mod ocsf;

use std::fmt;
use std::str::FromStr;

use crate::key::LogFileName;
use crate::logs::{
    extra_columns, Body, Columns, Kind, LogType, Record, Timestamp, TypedLine, Value,
};
pub use id::{hex32, RecordIds};
use json::{write_int, write_opt_str, write_str};
pub use log_event::LogEventOrigin;

/// Appended to the id of a record the input failed inside (DESIGN.md's ids stay 32 hex digits
/// for every whole record).
pub const CUT_ID_SUFFIX: &str = "-cut";

/// Every name the forwarder writes at the top level of a `raw` record, of any source: the
/// provenance (files, trail files and CloudWatch Logs batches), the `parse_error` fields and the
/// flags. An input that carries members of these names (a CloudTrail event is copied as
/// written) keeps them under `event_fields` instead (`crate::cloudtrail::members`), so a record
/// never holds a name twice and provenance is always the forwarder's.
pub const RECORD_FIELDS: &[&str] = &[
    "log_type",
    "account_id",
    "region",
    "cluster",
    "namespace",
    "file_time",
    "batch_end",
    "source",
    "id",
    "parse_error",
    "raw",
    "raw_bytes",
    "raw_xxh3",
    "extra_columns",
    "invalid_utf8",
    "truncated",
    "redacted",
    "part",
    "parts",
    // The session join's fields on a user activity record (the connection log's own names).
    "remotehost",
    "remoteport",
    "session_start",
];

/// Where a file's records came from: the same for every record of the file, so its JSON is
/// built once per file.
#[derive(Debug, Clone)]
pub struct Provenance {
    /// `,"log_type":…,"source":{"bucket":…,"key":…,"line":`
    head: Vec<u8>,
    /// The records' ids (`id.rs`).
    ids: RecordIds,
    /// The log type's column table, and `,"name":` for each of its columns, built once.
    table: &'static [(&'static str, Kind)],
    keys: Vec<Box<[u8]>>,
    /// The same keys for [`ColumnWriter`], the first without its comma, each padded to a
    /// block copied whole; `None` if a key does not fit one.
    key_blocks: Option<Box<[KeyBlock]>>,
    /// The same provenance as the OCSF writer puts it.
    ocsf: ocsf::FileParts,
    /// `source` ends with the record's line (files); a log event's source ends with its id,
    /// already in `head` ([`Provenance::for_log_events`]).
    line_in_source: bool,
    /// What a CloudWatch Logs batch's provenance is rebuilt from for each log event.
    log_events: Option<Box<log_event::Parts>>,
}

impl Provenance {
    /// `name` is the parsed file name when it is a Redshift one (fields it gives are null
    /// otherwise); `bucket` is `None` for local files.
    pub fn new(
        log_type: LogType,
        name: Option<&LogFileName>,
        bucket: Option<&str>,
        key: &str,
    ) -> Self {
        let mut head = Vec::with_capacity(256);
        head.extend_from_slice(b",\"log_type\":");
        write_str(&mut head, log_type.as_str());
        head.extend_from_slice(b",\"account_id\":");
        write_opt_str(&mut head, name.map(|n| n.account_id.as_str()));
        head.extend_from_slice(b",\"region\":");
        write_opt_str(&mut head, name.map(|n| n.region.as_str()));
        head.extend_from_slice(b",\"cluster\":");
        write_opt_str(&mut head, name.map(|n| n.cluster.as_str()));
        head.extend_from_slice(b",\"file_time\":");
        write_opt_str(&mut head, name.map(|n| n.file_time.as_str()));
        head.extend_from_slice(b",\"source\":{\"bucket\":");
        write_opt_str(&mut head, bucket);
        head.extend_from_slice(b",\"key\":");
        write_str(&mut head, key);
        head.extend_from_slice(b",\"line\":");
        let table = log_type.columns();
        let keys: Vec<Box<[u8]>> = table
            .iter()
            .map(|(name, _)| format!(",\"{name}\":").into_bytes().into_boxed_slice())
            .collect();
        let key_blocks = KeyBlock::all(&keys);
        Provenance {
            head,
            ids: RecordIds::for_object(bucket, key),
            table,
            keys,
            key_blocks,
            ocsf: ocsf::FileParts::new(log_type, name, bucket, key),
            line_in_source: true,
            log_events: None,
        }
    }

    /// The record id: XXH3-128 of `bucket \0 key \0 ordinal` (ordinal as 8 little-endian
    /// bytes), as 32 lowercase hex digits. The same object always yields the same ids.
    pub fn record_id(&self, ordinal: u64) -> [u8; 32] {
        self.ids.id(ordinal)
    }

    /// The record's id as written: 32 hex digits, with `-cut` after them for a record the input
    /// failed inside (so deduplicating by id never keeps the cut copy over the whole one).
    pub fn write_id(&self, out: &mut Vec<u8>, record: &Record<'_>) {
        out.extend_from_slice(&self.record_id(record.ordinal));
        if record.read_cut {
            out.extend_from_slice(CUT_ID_SUFFIX.as_bytes());
        }
    }

    fn write_tail(&self, out: &mut Vec<u8>, record: &Record<'_>) {
        self.write_tail_at(out, record.line, record.ordinal, record.read_cut);
    }

    fn write_tail_at(&self, out: &mut Vec<u8>, line: u64, ordinal: u64, read_cut: bool) {
        out.extend_from_slice(&self.head);
        if self.line_in_source {
            write_int(out, line as i64);
        }
        out.extend_from_slice(b"},\"id\":\"");
        out.extend_from_slice(&self.record_id(ordinal));
        if read_cut {
            out.extend_from_slice(CUT_ID_SUFFIX.as_bytes());
        }
        out.extend_from_slice(b"\"}");
    }

    /// Starts a `raw` record of the columns of `names` in `out`, to be written as they are
    /// typed; `None` when this provenance is for another column table.
    pub fn begin_columns(
        &self,
        out: &mut Vec<u8>,
        names: &'static [(&'static str, Kind)],
    ) -> Option<ColumnWriter<'_>> {
        let keys = self.key_blocks.as_deref()?;
        if !std::ptr::eq(names, self.table) {
            return None;
        }
        let start = out.len();
        out.push(b'{');
        Some(ColumnWriter {
            provenance: self,
            keys,
            start,
        })
    }
}

/// A column's key (`,"name":`) in a block of fixed size: appended by copying the whole block
/// and cutting back to the key, which takes a few moves where a copy of the key's own length
/// is a call to `memcpy` (callgrind: about 15 instructions less a column).
#[derive(Debug, Clone)]
struct KeyBlock {
    bytes: [u8; KeyBlock::SIZE],
    len: usize,
}

impl KeyBlock {
    const SIZE: usize = 32;

    /// Blocks for `keys`, the first without its comma; `None` if one is longer than a block.
    fn all(keys: &[Box<[u8]>]) -> Option<Box<[KeyBlock]>> {
        keys.iter()
            .enumerate()
            .map(|(i, key)| {
                let key = &key[usize::from(i == 0)..];
                let mut bytes = [0; KeyBlock::SIZE];
                bytes.get_mut(..key.len())?.copy_from_slice(key);
                Some(KeyBlock {
                    bytes,
                    len: key.len(),
                })
            })
            .collect()
    }

    #[inline(always)]
    fn append_to(&self, out: &mut Vec<u8>) {
        let end = out.len() + self.len;
        out.extend_from_slice(&self.bytes);
        out.truncate(end);
    }
}

/// A `raw` record written while its columns are typed
/// ([`crate::logs::Split::type_columns`]), from [`Provenance::begin_columns`]: the same bytes
/// [`write_record`] writes for the record.
pub struct ColumnWriter<'p> {
    provenance: &'p Provenance,
    keys: &'p [KeyBlock],
    /// Where the record starts in the output.
    start: usize,
}

impl ColumnWriter<'_> {
    /// Appends the column at `at`, the one after the last appended.
    #[inline(always)]
    pub fn column(&self, out: &mut Vec<u8>, at: usize, value: &Value<'_>) {
        if let Some(key) = self.keys.get(at) {
            key.append_to(out);
        }
        write_value(out, value);
    }

    /// Ends the record: the columns not handed out (null), then the rest of the record.
    pub fn finish(self, out: &mut Vec<u8>, line: &TypedLine<'_>) {
        for at in line.columns..line.names.len() {
            self.column(out, at, &Value::Null);
        }
        write_extra(out, line.extra);
        write_flags(out, line.invalid_utf8, line.truncated, false);
        self.provenance
            .write_tail_at(out, line.line, line.ordinal, line.read_cut);
    }

    /// Takes back what was written of the record.
    pub fn cancel(self, out: &mut Vec<u8>) {
        out.truncate(self.start);
    }
}

/// `,"raw_bytes":N,"raw_xxh3":"…"` when a parse error's `raw` holds only the start of its text.
fn write_whole(out: &mut Vec<u8>, record: &Record<'_>) {
    if let Some(whole) = record.whole {
        out.extend_from_slice(b",\"raw_bytes\":");
        write_int(out, i64::try_from(whole.bytes).unwrap_or(i64::MAX));
        out.extend_from_slice(b",\"raw_xxh3\":\"");
        out.extend_from_slice(&hex32(whole.xxh3));
        out.push(b'"');
    }
}

/// What the session join (`crate::sessions`) found for a user activity record: written after
/// its columns in `raw` (`remotehost`, `remoteport`, `session_start`), as `src_endpoint` and
/// `actor.session` in OCSF. The join adds fields, never changes the others.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Join<'a> {
    /// No join asked for: the record as it is without one.
    #[default]
    Off,
    /// Joined, and no session known: the fields are null (raw) or left out (OCSF).
    Unknown,
    Found(SessionFields<'a>),
}

/// The fields of a record's session, from the connection log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionFields<'a> {
    pub remotehost: Option<&'a str>,
    pub remoteport: Option<i64>,
    pub start: Timestamp,
    /// The connection log's `sessionid`, OCSF's `session.uid` (else the pid, as the connection
    /// log's own events have it).
    pub sessionid: Option<&'a str>,
    pub pid: i64,
}

/// `,"remotehost":…,"remoteport":…,"session_start":…` of a joined record.
fn write_join(out: &mut Vec<u8>, join: Join<'_>) {
    match join {
        Join::Off => {}
        Join::Unknown => out
            .extend_from_slice(b",\"remotehost\":null,\"remoteport\":null,\"session_start\":null"),
        Join::Found(s) => {
            out.extend_from_slice(b",\"remotehost\":");
            write_opt_str(out, s.remotehost);
            out.extend_from_slice(b",\"remoteport\":");
            match s.remoteport {
                Some(port) => write_int(out, port),
                None => out.extend_from_slice(b"null"),
            }
            out.extend_from_slice(b",\"session_start\":");
            write_value(out, &Value::Time(s.start));
        }
    }
}

/// One part of a record split across Firehose records: this part's share of the split text.
#[derive(Debug, Clone, Copy)]
struct Part<'a> {
    text: &'a str,
    part: usize,
    parts: usize,
}

/// Appends the record as one JSON object (no newline).
pub fn write_record(out: &mut Vec<u8>, record: &Record<'_>, provenance: &Provenance) {
    write_record_part(out, record, provenance, None, Join::Off);
}

fn write_record_part(
    out: &mut Vec<u8>,
    record: &Record<'_>,
    provenance: &Provenance,
    part: Option<Part<'_>>,
    join: Join<'_>,
) {
    out.push(b'{');
    match &record.body {
        Body::Columns(columns) => {
            // Keys built for the provenance's log type fit only columns of that same table.
            let keys =
                std::ptr::eq(columns.names, provenance.table).then_some(&provenance.keys[..]);
            write_columns(out, columns, keys, part.map(|p| p.text));
            write_join(out, join);
        }
        Body::ParseError { reason, raw } => {
            out.extend_from_slice(b"\"parse_error\":");
            write_str(out, reason);
            out.extend_from_slice(b",\"raw\":");
            write_str(out, part.map_or(raw, |p| p.text));
            write_whole(out, record);
        }
    }
    write_flags(out, record.invalid_utf8, record.truncated, record.redacted);
    if let Some(p) = part {
        out.extend_from_slice(b",\"part\":");
        write_int(out, p.part as i64);
        out.extend_from_slice(b",\"parts\":");
        write_int(out, p.parts as i64);
    }
    provenance.write_tail(out, record);
}

fn write_flags(out: &mut Vec<u8>, invalid_utf8: bool, truncated: bool, redacted: bool) {
    if invalid_utf8 {
        out.extend_from_slice(b",\"invalid_utf8\":true");
    }
    if truncated {
        out.extend_from_slice(b",\"truncated\":true");
    }
    if redacted {
        out.extend_from_slice(b",\"redacted\":true");
    }
}

/// Writes the columns; `split_text` replaces the value of the largest text column.
fn write_columns(
    out: &mut Vec<u8>,
    columns: &Columns<'_>,
    keys: Option<&[Box<[u8]>]>,
    split_text: Option<&str>,
) {
    let split_at = split_text.and_then(|_| largest_text_column(columns));
    for (i, (name, value)) in columns.iter().enumerate() {
        match keys {
            // The first key goes without its comma.
            Some(keys) => out.extend_from_slice(&keys[i][usize::from(i == 0)..]),
            None => {
                if i > 0 {
                    out.push(b',');
                }
                out.push(b'"');
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b"\":");
            }
        }
        match split_at == Some(i) {
            true => write_str(out, split_text.unwrap_or("")),
            false => write_value(out, value),
        }
    }
    write_extra(out, columns.extra);
}

/// `,"extra_columns":[…]` when there are columns past the known ones.
fn write_extra(out: &mut Vec<u8>, extra: Option<&str>) {
    if extra.is_some() {
        out.extend_from_slice(b",\"extra_columns\":[");
        for (i, column) in extra_columns(extra).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, column);
        }
        out.push(b']');
    }
}

/// Appends one typed value as JSON.
#[inline(always)]
fn write_value(out: &mut Vec<u8>, value: &Value<'_>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Text(s) => write_str(out, s),
        Value::Int(n) => write_int(out, *n),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Time(t) => {
            let mut quoted = [b'"'; 26];
            quoted[1..25].copy_from_slice(t.as_bytes());
            out.extend_from_slice(&quoted);
        }
    }
}

fn largest_text_column(columns: &Columns<'_>) -> Option<usize> {
    columns
        .values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.as_text().map(|s| (s.len(), i)))
        .max()
        .map(|(_, i)| i)
}

/// The text a split spreads over parts: the largest text column, or a parse error's raw text.
fn split_text<'a>(record: &Record<'a>) -> Option<&'a str> {
    match &record.body {
        Body::Columns(c) => largest_text_column(c).and_then(|i| c.values[i].as_text()),
        Body::ParseError { raw, .. } => Some(raw),
    }
}

/// The part fields of a part numbered 0 of 0, as measured by `write_parts` (the room below
/// replaces them).
const EMPTY_PART_FIELDS: &str = ",\"part\":0,\"parts\":0";

/// Room left for the `"part":N,"parts":N` fields.
const PART_FIELDS_ROOM: usize = 40;

/// Writes the record as one or more `raw` JSON lines of at most `max_len` bytes each, calling
/// `emit` for each: [`Format::write_parts`] with [`Format::Raw`].
pub fn write_parts(
    record: &Record<'_>,
    provenance: &Provenance,
    max_len: usize,
    buf: &mut Vec<u8>,
    emit: impl FnMut(&[u8]),
) -> Result<usize, TooLarge> {
    Format::Raw.write_parts(record, provenance, Join::Off, max_len, buf, emit)
}

/// The shape of the records written: chosen once at start-up (`OUTPUT_FORMAT`, `--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// The record schema of DESIGN.md.
    #[default]
    Raw,
    /// One OCSF 1.1.0 event per record ([`ocsf`]).
    Ocsf,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Ocsf => "ocsf",
        }
    }

    /// Appends the record as one JSON object (no newline).
    /// `join` is what the session join found for the record ([`Join::Off`]: nothing).
    pub fn write_record(
        self,
        out: &mut Vec<u8>,
        record: &Record<'_>,
        provenance: &Provenance,
        join: Join<'_>,
    ) {
        self.write_part(out, record, provenance, None, join);
    }

    fn write_part(
        self,
        out: &mut Vec<u8>,
        record: &Record<'_>,
        provenance: &Provenance,
        part: Option<Part<'_>>,
        join: Join<'_>,
    ) {
        match self {
            Format::Raw => write_record_part(out, record, provenance, part, join),
            Format::Ocsf => ocsf::write_event(out, record, provenance, part, join),
        }
    }

    /// Writes the record as one or more JSON lines of at most `max_len` bytes each, calling
    /// `emit` for each. A record that does not fit is split into ordered parts that share its id
    /// and carry `part` and `parts` (under `unmapped` in OCSF), each holding a consecutive piece
    /// of its largest text; nothing is dropped. Fails, before emitting anything, only if even an
    /// empty piece does not fit (the rest of the record is over `max_len`). Redact first
    /// (`crate::redact::redact_record`): a secret cut in two is no longer found. Every part
    /// carries what the session join found (`join`).
    pub fn write_parts(
        self,
        record: &Record<'_>,
        provenance: &Provenance,
        join: Join<'_>,
        max_len: usize,
        buf: &mut Vec<u8>,
        mut emit: impl FnMut(&[u8]),
    ) -> Result<usize, TooLarge> {
        buf.clear();
        let text = split_text(record);
        let overhead = match text {
            // Too long to fit however it escapes: measured without its text, never rendered
            // whole (a 20 MiB statement of control bytes would take 120 MiB as JSON).
            Some(text) if text.len() > max_len => {
                let empty = Part {
                    text: "",
                    part: 0,
                    parts: 0,
                };
                self.write_part(buf, record, provenance, Some(empty), join);
                (buf.len() + PART_FIELDS_ROOM)
                    .checked_sub(EMPTY_PART_FIELDS.len())
                    .ok_or(TooLarge(buf.len()))?
            }
            _ => {
                self.write_record(buf, record, provenance, join);
                if buf.len() <= max_len {
                    emit(buf);
                    return Ok(1);
                }
                let text = text.ok_or(TooLarge(buf.len()))?;
                buf.len()
                    .checked_sub(json::escaped_len(text))
                    .map(|rest| rest + 2 + PART_FIELDS_ROOM)
                    .ok_or(TooLarge(buf.len()))?
            }
        };
        let text = text.ok_or(TooLarge(overhead))?;
        let room = max_len
            .checked_sub(overhead)
            .filter(|&r| r >= 8)
            .ok_or(TooLarge(overhead))?;
        let pieces = split_escaped(text, room);
        let parts = pieces.len();
        for (i, piece) in pieces.into_iter().enumerate() {
            buf.clear();
            let part = Part {
                text: piece,
                part: i + 1,
                parts,
            };
            self.write_part(buf, record, provenance, Some(part), join);
            // Every piece fits its room, so the parts fit when the format writes the text once,
            // as the room assumes; should a part not, nothing has been emitted yet.
            if i == 0 && buf.len() > max_len {
                return Err(TooLarge(buf.len()));
            }
            emit(buf);
        }
        Ok(parts)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not an output format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown output format {} (expected raw or ocsf)", crate::mask::quote(.0))]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("raw") {
            Ok(Format::Raw)
        } else if s.eq_ignore_ascii_case("ocsf") {
            Ok(Format::Ocsf)
        } else {
            Err(UnknownFormat(s.to_string()))
        }
    }
}

/// The record would be this many bytes even without its largest text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("record cannot be split below the size limit: {0} bytes without its text")]
pub struct TooLarge(pub usize);

/// Cuts `text` at char boundaries into pieces whose escaped JSON body is at most `room` bytes.
fn split_escaped(text: &str, room: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut used = 0;
    for (i, ch) in text.char_indices() {
        let cost = if ch.is_ascii() {
            json::escaped_len(ch.encode_utf8(&mut [0; 4])) - 2
        } else {
            ch.len_utf8()
        };
        if used + cost > room && i > start {
            pieces.push(&text[start..i]);
            start = i;
            used = 0;
        }
        used += cost;
    }
    pieces.push(&text[start..]);
    pieces
}

#[cfg(test)]
mod tests;
