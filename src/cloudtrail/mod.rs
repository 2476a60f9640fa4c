//! Redshift's API calls from CloudTrail trail files: which keys are event files, a streaming
//! reader for `{"Records": [...]}`, the event-source filter, and the `raw` and OCSF renderings.
//!
//! Nothing here knows about AWS clients: the caller opens the object with `crate::decode::open`
//! and hands over a `Read`; records come out as JSON lines.

pub mod key;
pub mod members;
pub mod ocsf;
pub mod reader;

use std::borrow::Cow;
use std::io::{self, Read};
use std::ops::Range;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::output::json::{write_int, write_opt_str, write_str};
use crate::output::{hex32, RecordIds, CUT_ID_SUFFIX};
pub use key::{has_trail_name, parse_trail_key, NotEvents, TrailFileName, TrailKeyError};
pub use members::{scan as scan_members, EVENT_FIELDS};
pub use reader::{TrailItem, TrailReader, WholeElement, MAX_EVENT_BYTES};

/// What is said of a trail file that holds nothing (an empty file, an empty gzip): CloudTrail
/// always writes a `{"Records": [...]}` document, so it is not a trail file as written.
pub const EMPTY_TRAIL: &str = "empty: no CloudTrail document ({\"Records\": [...]}) once \
    decompressed, so nothing was forwarded; CloudTrail never writes an empty file";

/// The `log_type` of every record from a trail file.
pub const LOG_TYPE: &str = "cloudtrail";

/// Redshift's event sources (seeds 001 and 004): the provisioned and Serverless control planes,
/// the Data API and Query Editor v2.
pub const DEFAULT_EVENT_SOURCES: [&str; 4] = [
    "redshift.amazonaws.com",
    "redshift-serverless.amazonaws.com",
    "redshift-data.amazonaws.com",
    "sqlworkbench.amazonaws.com",
];

/// Which `eventSource` values are kept; every other event is counted and dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSources(Vec<String>);

impl Default for EventSources {
    fn default() -> Self {
        EventSources(
            DEFAULT_EVENT_SOURCES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        )
    }
}

/// `CLOUDTRAIL_EVENT_SOURCES` is set but names nothing usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventSourcesError {
    #[error("the list of CloudTrail event sources is empty")]
    Empty,
    #[error(
        "{} is not a CloudTrail event source (expected a host name like redshift.amazonaws.com)",
        crate::mask::quote(.0)
    )]
    Bad(String),
}

impl EventSources {
    /// A comma-separated list (`CLOUDTRAIL_EVENT_SOURCES`): it replaces the default. Spaces
    /// around names and empty items are ignored; a name must be a lowercase host name.
    pub fn from_list(list: &str) -> Result<Self, EventSourcesError> {
        let mut sources = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let host_like = item.contains('.')
                && item
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b));
            if !host_like {
                return Err(EventSourcesError::Bad(item.to_string()));
            }
            if !sources.iter().any(|s| s == item) {
                sources.push(item.to_string());
            }
        }
        if sources.is_empty() {
            return Err(EventSourcesError::Empty);
        }
        Ok(EventSources(sources))
    }

    pub fn keeps(&self, event_source: &str) -> bool {
        self.0.iter().any(|s| s == event_source)
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

/// The fields of a CloudTrail event that the filter and the renderings read. Borrowed where
/// the JSON has no escapes. A field that is not a string (`"eventName": null`, an object) reads
/// as absent: the event is still an event, and its renderings keep the value as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventFields<'a> {
    #[serde(borrow, default, deserialize_with = "text_or_none")]
    pub event_source: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text_or_none")]
    pub event_name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text_or_none")]
    pub event_time: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "eventID", deserialize_with = "text_or_none")]
    pub event_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text_or_none")]
    pub aws_region: Option<Cow<'a, str>>,
}

/// A string field's text, or `None` for any other JSON value (read through and dropped).
fn text_or_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    struct TextOrNone;
    impl<'de> Visitor<'de> for TextOrNone {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v)))
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
    d.deserialize_any(TextOrNone)
}

impl<'a> EventFields<'a> {
    /// Parses the event (the whole object is checked to be JSON; unread fields are skipped).
    pub fn parse(event: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(event)
    }
}

/// One element of a trail file after the filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept<'a> {
    /// An event whose source is kept: `bytes` exactly as written; `reserved`, the ranges of
    /// `bytes` of its top-level members whose names are the forwarder's, which the renderings
    /// put under [`EVENT_FIELDS`] ([`members::scan`]).
    Event {
        ordinal: u64,
        bytes: &'a [u8],
        fields: EventFields<'a>,
        reserved: &'a [Range<usize>],
    },
    /// An element that could not be read as an event (too large, not an object, not JSON, a
    /// key repeated in one object, no `eventSource`): forwarded as a `parse_error` record so
    /// nothing is lost silently. `whole` is set when `raw` is only the start of the element
    /// (over [`MAX_EVENT_BYTES`]); `time` is the event's own `eventTime` when it could be read.
    Bad {
        ordinal: u64,
        reason: String,
        raw: &'a [u8],
        whole: Option<WholeElement>,
        time: Option<Cow<'a, str>>,
    },
}

/// The events of one trail file that the filter keeps, one at a time, counting the others.
pub struct TrailEvents<R> {
    reader: TrailReader<R>,
    sources: EventSources,
    skipped: u64,
    /// The fields of the current event, as positions in its bytes (parsed once per event).
    fields: Result<[Slot; 5], String>,
    /// Why the current event, whose fields were read, cannot be copied as it stands; or its
    /// reserved members ([`members::scan`]).
    members: Result<Vec<Range<usize>>, String>,
}

/// Where one field's text is: a range of the event's bytes, or decoded (it had escapes).
#[derive(Debug, Clone, Default)]
enum Slot {
    #[default]
    Absent,
    At(usize, usize),
    Owned(String),
}

impl Slot {
    fn of(field: &Option<Cow<'_, str>>, base: &[u8]) -> Slot {
        match field {
            None => Slot::Absent,
            Some(Cow::Borrowed(s)) => {
                let at = (s.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
                if at <= base.len() && s.len() <= base.len() - at {
                    Slot::At(at, at + s.len())
                } else {
                    Slot::Owned(s.to_string())
                }
            }
            Some(Cow::Owned(s)) => Slot::Owned(s.clone()),
        }
    }

    fn get<'a>(&'a self, base: &'a [u8]) -> Option<Cow<'a, str>> {
        match self {
            Slot::Absent => None,
            Slot::At(a, b) => base
                .get(*a..*b)
                .and_then(|s| std::str::from_utf8(s).ok())
                .map(Cow::Borrowed),
            Slot::Owned(s) => Some(Cow::Borrowed(s.as_str())),
        }
    }
}

impl<R: Read> TrailEvents<R> {
    /// `name` is how errors refer to the file (its key, or a path).
    pub fn new(input: R, name: impl Into<String>, sources: EventSources) -> Self {
        Self::from_reader(TrailReader::new(input, name), sources)
    }

    pub fn from_reader(reader: TrailReader<R>, sources: EventSources) -> Self {
        TrailEvents {
            reader,
            sources,
            skipped: 0,
            fields: Err(String::new()),
            members: Ok(Vec::new()),
        }
    }

    /// Events read whose source is not kept.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    pub fn reader(&self) -> &TrailReader<R> {
        &self.reader
    }

    /// The next kept event or bad element, `None` at the end of the file. An `Err` is what
    /// [`TrailReader::next_item`] returns: the events before it were handed out already.
    pub fn next_kept(&mut self) -> io::Result<Option<Kept<'_>>> {
        loop {
            // Decide with the item's borrow ended, then hand it out again from `current`.
            let keep = match self.reader.next_item()? {
                None => return Ok(None),
                Some(TrailItem::Bad { .. }) => true,
                Some(TrailItem::Event { bytes, .. }) => match EventFields::parse(bytes) {
                    Ok(f) => {
                        let keep = f
                            .event_source
                            .as_deref()
                            .is_none_or(|s| self.sources.keeps(s));
                        self.fields = Ok([
                            Slot::of(&f.event_source, bytes),
                            Slot::of(&f.event_name, bytes),
                            Slot::of(&f.event_time, bytes),
                            Slot::of(&f.event_id, bytes),
                            Slot::of(&f.aws_region, bytes),
                        ]);
                        if keep {
                            self.members = members::scan(bytes);
                        }
                        keep
                    }
                    Err(e) => {
                        self.fields = Err(format!("is not valid JSON: {e}"));
                        true
                    }
                },
            };
            if keep {
                return Ok(self.current());
            }
            self.skipped += 1;
        }
    }

    fn current(&self) -> Option<Kept<'_>> {
        let item = self.reader.current()?;
        let ordinal = item.ordinal();
        let name = self.reader.name();
        Some(match (item, &self.fields) {
            (
                TrailItem::Bad {
                    reason,
                    head,
                    whole,
                    ..
                },
                _,
            ) => Kept::Bad {
                ordinal,
                reason,
                raw: head,
                whole,
                time: None,
            },
            (TrailItem::Event { bytes, .. }, Err(e)) => Kept::Bad {
                ordinal,
                reason: format!("{name}: event {} {e}", ordinal + 1),
                raw: bytes,
                whole: None,
                time: None,
            },
            (TrailItem::Event { bytes, .. }, Ok(slots)) => {
                let [source, event_name, time, id, region] = slots;
                let fields = EventFields {
                    event_source: source.get(bytes),
                    event_name: event_name.get(bytes),
                    event_time: time.get(bytes),
                    event_id: id.get(bytes),
                    aws_region: region.get(bytes),
                };
                let bad = |reason: String| Kept::Bad {
                    ordinal,
                    reason: format!("{name}: event {} {reason}", ordinal + 1),
                    raw: bytes,
                    whole: None,
                    time: time.get(bytes),
                };
                match &self.members {
                    _ if fields.event_source.is_none() => {
                        bad("has no eventSource (a string)".into())
                    }
                    Err(why) => bad(why.clone()),
                    Ok(reserved) => Kept::Event {
                        ordinal,
                        bytes,
                        fields,
                        reserved,
                    },
                }
            }
        })
    }
}

/// Where a trail file's records came from: built once per file.
///
/// The provenance fields are `"log_type":"cloudtrail"`, `account_id`, `region`, `cluster`
/// (always `null`), `file_time`, `source` `{"bucket", "key", "event"}` and `id`. `event` is the
/// 1-based position of the event in the file's `Records` array (the trail counterpart of an
/// audit file's `line`); `id` is XXH3-128 of `bucket \0 key \0 ordinal`, the ordinal 0-based as
/// 8 little-endian bytes: the same hash as `crate::output::Provenance::record_id`.
#[derive(Debug, Clone)]
pub struct TrailProvenance {
    /// `"log_type":…,"source":{"bucket":…,"key":…,"event":`
    head: Vec<u8>,
    ids: RecordIds,
    /// The account and region of the file name (OCSF `cloud`).
    pub(crate) account_region: Option<(String, String)>,
    /// The file name's time in epoch milliseconds: the OCSF `time` of an event without a
    /// readable `eventTime` of its own.
    pub(crate) file_time_ms: Option<i64>,
}

impl TrailProvenance {
    /// `name` is the parsed key when it is a CloudTrail one (its fields are null otherwise);
    /// `bucket` is `None` for local files.
    pub fn new(name: Option<&TrailFileName>, bucket: Option<&str>, key: &str) -> Self {
        let mut head = Vec::with_capacity(256);
        head.extend_from_slice(b"\"log_type\":");
        write_str(&mut head, LOG_TYPE);
        head.extend_from_slice(b",\"account_id\":");
        write_opt_str(&mut head, name.map(|n| n.account_id.as_str()));
        head.extend_from_slice(b",\"region\":");
        write_opt_str(&mut head, name.map(|n| n.region.as_str()));
        head.extend_from_slice(b",\"cluster\":null,\"file_time\":");
        write_opt_str(&mut head, name.map(|n| n.file_time.as_str()));
        head.extend_from_slice(b",\"source\":{\"bucket\":");
        write_opt_str(&mut head, bucket);
        head.extend_from_slice(b",\"key\":");
        write_str(&mut head, key);
        head.extend_from_slice(b",\"event\":");
        TrailProvenance {
            head,
            ids: RecordIds::for_object(bucket, key),
            account_region: name.map(|n| (n.account_id.clone(), n.region.clone())),
            file_time_ms: name.and_then(|n| ocsf::epoch_ms(&n.file_time)),
        }
    }

    /// The record id of the event at `ordinal` (0-based), as 32 lowercase hex digits.
    pub fn record_id(&self, ordinal: u64) -> [u8; 32] {
        self.ids.id(ordinal)
    }

    /// Appends the provenance members (no leading comma, no braces) for the event at `ordinal`.
    pub fn write_fields(&self, out: &mut Vec<u8>, ordinal: u64) {
        self.write_fields_cut(out, ordinal, false);
    }

    /// [`TrailProvenance::write_fields`], with `-cut` after the id when `cut` (the event was
    /// over the event limit: the forwarder never held it whole).
    pub fn write_fields_cut(&self, out: &mut Vec<u8>, ordinal: u64, cut: bool) {
        out.extend_from_slice(&self.head);
        write_int(out, ordinal.saturating_add(1) as i64);
        out.extend_from_slice(b"},\"id\":\"");
        out.extend_from_slice(&self.record_id(ordinal));
        if cut {
            out.extend_from_slice(CUT_ID_SUFFIX.as_bytes());
        }
        out.push(b'"');
    }
}

/// Appends one `raw` record (no newline): the event as CloudTrail wrote it, with the
/// provenance members spliced in before its closing `}`. The event's own bytes are not
/// reparsed; the only changes are that a line break between tokens (a pretty-printed file)
/// becomes a space, so the record stays one line, and that the members at `reserved` (top-level
/// members named like the forwarder's own fields, [`Kept::Event`]) move, as written, into one
/// [`EVENT_FIELDS`] object. `event` must be a [`Kept::Event`]'s bytes (an object from `{` to
/// `}`).
pub fn write_trail_raw(
    out: &mut Vec<u8>,
    event: &[u8],
    reserved: &[Range<usize>],
    ordinal: u64,
    provenance: &TrailProvenance,
) {
    let body = event
        .strip_prefix(b"{")
        .and_then(|e| e.strip_suffix(b"}"))
        .unwrap_or(event);
    out.reserve(event.len() + 256);
    out.push(b'{');
    let start = out.len();
    if reserved.is_empty() {
        out.extend_from_slice(body);
    } else {
        // The members between the moved ones, each run trimmed of the commas that joined it
        // to them; then the moved ones in their object.
        let mut from = 1;
        let mut runs = Vec::with_capacity(reserved.len() + 1);
        for r in reserved
            .iter()
            .chain(std::iter::once(&(event.len().saturating_sub(1)..0)))
        {
            let run = event.get(from..r.start).unwrap_or_default();
            let run = trim_members(run);
            if !run.is_empty() {
                runs.push(run);
            }
            from = r.end;
        }
        for run in runs {
            out.extend_from_slice(run);
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(EVENT_FIELDS.as_bytes());
        out.extend_from_slice(b"\":{");
        for (i, r) in reserved.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(event.get(r.clone()).unwrap_or_default());
        }
        out.push(b'}');
    }
    if memchr::memchr2(b'\n', b'\r', &out[start..]).is_some() {
        for b in &mut out[start..] {
            if *b == b'\n' || *b == b'\r' {
                *b = b' ';
            }
        }
    }
    if out[start..]
        .iter()
        .any(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        out.push(b',');
    }
    provenance.write_fields(out, ordinal);
    out.push(b'}');
}

/// Members between two moved ones: without the whitespace and commas at either end.
fn trim_members(mut run: &[u8]) -> &[u8] {
    let edge = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b',');
    while let [first, rest @ ..] = run {
        if !edge(first) {
            break;
        }
        run = rest;
    }
    while let [rest @ .., last] = run {
        if !edge(last) {
            break;
        }
        run = rest;
    }
    run
}

/// Most bytes of a bad element kept in its `parse_error` record's `raw` (the record must fit
/// one Firehose record; an event over the event limit is never forwarded whole).
pub const MAX_ERROR_RAW_BYTES: usize = 64 * 1024;

/// What a trail `parse_error` record says of its element: the reason, the text kept, and, when
/// that is not all of it, the whole element's length and hash.
#[derive(Debug, Clone)]
pub struct TrailError<'a> {
    pub reason: &'a str,
    /// `raw`: the element's text (invalid UTF-8 replaced), at most [`MAX_ERROR_RAW_BYTES`].
    pub text: Cow<'a, str>,
    pub invalid_utf8: bool,
    /// The whole element's length and hash when `text` is only its start.
    pub whole: Option<WholeElement>,
    /// The forwarder did not keep the whole element (over [`MAX_EVENT_BYTES`]): the record is
    /// cut, as an audit record the input failed inside is (`truncated`, the `-cut` id).
    pub cut: bool,
}

impl<'a> TrailError<'a> {
    /// `raw` is what was kept of the element; `whole` is set when that is already only its
    /// start (the reader's event limit: the record is cut). `raw` is cut to
    /// [`MAX_ERROR_RAW_BYTES`] (at a char boundary), and `whole` computed, if it is longer, as
    /// an audit `parse_error`'s text is (`raw_bytes` and `raw_xxh3`, not cut).
    pub fn new(reason: &'a str, raw: &'a [u8], whole: Option<WholeElement>) -> Self {
        let mut end = raw.len().min(MAX_ERROR_RAW_BYTES);
        let cut = whole.is_some();
        let whole = whole.or_else(|| {
            (end < raw.len()).then(|| WholeElement {
                bytes: raw.len() as u64,
                xxh3: xxhash_rust::xxh3::xxh3_128(raw),
            })
        });
        // Do not cut a UTF-8 sequence in two (it would read as invalid).
        if end < raw.len() {
            for _ in 0..3 {
                if end > 0 && (raw[end] & 0xC0) == 0x80 {
                    end -= 1;
                }
            }
        }
        let kept = &raw[..end];
        TrailError {
            reason,
            text: String::from_utf8_lossy(kept),
            invalid_utf8: std::str::from_utf8(kept).is_err(),
            whole,
            cut,
        }
    }

    pub fn cut(&self) -> bool {
        self.cut
    }

    /// `,"raw_bytes":N,"raw_xxh3":"…"` when `raw` is only the start of the element,
    /// `,"invalid_utf8":true` when bytes were replaced, `,"truncated":true` for a cut element.
    pub(crate) fn write_flags(&self, out: &mut Vec<u8>) {
        if let Some(whole) = self.whole {
            out.extend_from_slice(b",\"raw_bytes\":");
            write_int(out, i64::try_from(whole.bytes).unwrap_or(i64::MAX));
            out.extend_from_slice(b",\"raw_xxh3\":\"");
            out.extend_from_slice(&hex32(whole.xxh3));
            out.push(b'"');
        }
        if self.invalid_utf8 {
            out.extend_from_slice(b",\"invalid_utf8\":true");
        }
        if self.cut() {
            out.extend_from_slice(b",\"truncated\":true");
        }
    }
}

/// Appends one `parse_error` record (no newline) for a [`Kept::Bad`] or an event that could not
/// be rendered: `{"parse_error":…,"raw":…[,"raw_bytes":…,"raw_xxh3":…][,"invalid_utf8":true]
/// [,"truncated":true],<provenance>}`; the id ends in `-cut` when the element was over the
/// event limit (the forwarder never held it whole), as for an audit record cut short.
pub fn write_trail_error(
    out: &mut Vec<u8>,
    error: &TrailError<'_>,
    ordinal: u64,
    provenance: &TrailProvenance,
) {
    out.extend_from_slice(b"{\"parse_error\":");
    write_str(out, error.reason);
    out.extend_from_slice(b",\"raw\":");
    write_str(out, &error.text);
    error.write_flags(out);
    out.push(b',');
    provenance.write_fields_cut(out, ordinal, error.cut());
    out.push(b'}');
}
