//! Redshift's API calls from CloudTrail trail files: which keys are event files, a streaming
//! reader for `{"Records": [...]}`, the event-source filter, and the `raw` and OCSF renderings.
//!
//! Nothing here knows about AWS clients: the caller opens the object with `crate::decode::open`
//! and hands over a `Read`; records come out as JSON lines.

pub mod key;
pub mod ocsf;
pub mod reader;

use std::borrow::Cow;
use std::io::{self, Read};

use serde::Deserialize;

use crate::output::json::{write_int, write_opt_str, write_str};
use crate::output::RecordIds;
pub use key::{parse_trail_key, NotEvents, TrailFileName, TrailKeyError};
pub use reader::{TrailItem, TrailReader, MAX_EVENT_BYTES};

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
/// the JSON has no escapes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventFields<'a> {
    #[serde(borrow)]
    pub event_source: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub event_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub event_time: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "eventID")]
    pub event_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub aws_region: Option<Cow<'a, str>>,
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
    /// An event whose source is kept: `bytes` exactly as written.
    Event {
        ordinal: u64,
        bytes: &'a [u8],
        fields: EventFields<'a>,
    },
    /// An element that could not be read as an event (too large, not an object, not JSON, no
    /// `eventSource`): forwarded as a `parse_error` record so nothing is lost silently.
    Bad {
        ordinal: u64,
        reason: String,
        raw: &'a [u8],
    },
}

/// The events of one trail file that the filter keeps, one at a time, counting the others.
pub struct TrailEvents<R> {
    reader: TrailReader<R>,
    sources: EventSources,
    skipped: u64,
    /// The fields of the current event, as positions in its bytes (parsed once per event).
    fields: Result<[Slot; 5], String>,
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
                        keep
                    }
                    Err(e) => {
                        self.fields = Err(e.to_string());
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
            (TrailItem::Bad { reason, head, .. }, _) => Kept::Bad {
                ordinal,
                reason,
                raw: head,
            },
            (TrailItem::Event { bytes, .. }, Err(e)) => Kept::Bad {
                ordinal,
                reason: format!("{name}: event {} is not valid JSON: {e}", ordinal + 1),
                raw: bytes,
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
                if fields.event_source.is_none() {
                    Kept::Bad {
                        ordinal,
                        reason: format!("{name}: event {} has no eventSource", ordinal + 1),
                        raw: bytes,
                    }
                } else {
                    Kept::Event {
                        ordinal,
                        bytes,
                        fields,
                    }
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
        }
    }

    /// The record id of the event at `ordinal` (0-based), as 32 lowercase hex digits.
    pub fn record_id(&self, ordinal: u64) -> [u8; 32] {
        self.ids.id(ordinal)
    }

    /// Appends the provenance members (no leading comma, no braces) for the event at `ordinal`.
    pub fn write_fields(&self, out: &mut Vec<u8>, ordinal: u64) {
        out.extend_from_slice(&self.head);
        write_int(out, ordinal.saturating_add(1) as i64);
        out.extend_from_slice(b"},\"id\":\"");
        out.extend_from_slice(&self.record_id(ordinal));
        out.push(b'"');
    }
}

/// Appends one `raw` record (no newline): the event as CloudTrail wrote it, with the
/// provenance members spliced in before its closing `}`. The event's own bytes are not
/// reparsed; the only change is that a line break between tokens (a pretty-printed file)
/// becomes a space, so the record stays one line. `event` must be a [`Kept::Event`]'s bytes
/// (an object from `{` to `}`).
pub fn write_trail_raw(
    out: &mut Vec<u8>,
    event: &[u8],
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
    out.extend_from_slice(body);
    if memchr::memchr2(b'\n', b'\r', body).is_some() {
        for b in &mut out[start..] {
            if *b == b'\n' || *b == b'\r' {
                *b = b' ';
            }
        }
    }
    if body
        .iter()
        .any(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        out.push(b',');
    }
    provenance.write_fields(out, ordinal);
    out.push(b'}');
}

/// Most bytes of a bad element kept in its `parse_error` record's `raw` (the record must fit
/// one Firehose record; an event over the event limit is never forwarded whole).
pub const MAX_ERROR_RAW_BYTES: usize = 64 * 1024;

/// Appends one `parse_error` record (no newline) for a [`Kept::Bad`]:
/// `{"parse_error":…,"raw":…,["truncated":true,]<provenance>}`. `raw` is the element's text
/// (invalid UTF-8 replaced), cut to `MAX_ERROR_RAW_BYTES` and flagged `truncated` if longer.
pub fn write_trail_error(
    out: &mut Vec<u8>,
    reason: &str,
    raw: &[u8],
    ordinal: u64,
    provenance: &TrailProvenance,
) {
    let cut = raw.len() > MAX_ERROR_RAW_BYTES;
    let text = String::from_utf8_lossy(&raw[..raw.len().min(MAX_ERROR_RAW_BYTES)]);
    out.extend_from_slice(b"{\"parse_error\":");
    write_str(out, reason);
    out.extend_from_slice(b",\"raw\":");
    write_str(out, &text);
    if cut {
        out.extend_from_slice(b",\"truncated\":true");
    }
    out.push(b',');
    provenance.write_fields(out, ordinal);
    out.push(b'}');
}
