//! The loop for CloudTrail trail files: decode, stream the `Records` one event at a time
//! (`crate::cloudtrail::TrailEvents`), render the kept ones, count the others.
//!
//! - A kept event goes out `raw` (as CloudTrail wrote it, provenance spliced in, its own
//!   members named like the provenance under `event_fields`) or as OCSF API Activity; should
//!   OCSF's reading of an event fail all the same, it goes out as a `parse_error` record, with
//!   its text. In OCSF every `parse_error` record is a Base Event (class 0): the stream holds
//!   OCSF events only.
//! - An element that is not an event (not JSON, not UTF-8, not an object, a key twice in one
//!   object, nested deeper or a number larger than serde_json reads, no `eventSource`, over
//!   `cloudtrail::MAX_EVENT_BYTES`) goes out as a `parse_error` record, its
//!   text capped at `cloudtrail::MAX_ERROR_RAW_BYTES` with `raw_bytes` and `raw_xxh3` when it
//!   was longer, as an audit `parse_error`; an element over the event limit, which the
//!   forwarder never holds whole, is also cut as an audit record the input failed inside is:
//!   `truncated` and a `-cut` id (docs/RECORDS.md).
//! - Events of other sources are counted (`skipped_events`) and dropped.
//! - A rendered event longer than the line limit (one Firehose record) becomes a `parse_error`
//!   record with its text capped the same way. Real events are at most 256 KB (CloudTrail's own
//!   limit), well under Firehose's 1,000 KiB, so only a forged file or a very large OCSF
//!   rendering reaches it; trail events are never split into parts.
//! - Redaction masks secrets inside the events' JSON strings ([`crate::mask::redact_json`]),
//!   each string on its own so the event stays well-formed; everything else of the event is as
//!   CloudTrail wrote it. CloudTrail masks secrets in request parameters itself (passwords show
//!   as `HIDDEN_DUE_TO_SECURITY_REASONS`) and does not log Data API SQL, so a real event rarely
//!   changes; a forged or future one may. A `parse_error` record's text is whatever the file
//!   held, so its `raw` and its reason are masked ([`crate::mask`]) whatever the setting.
//!
//! `lines` counts the elements of `Records` read, `last_record_line` is the 1-based position of
//! the last record's event, and the record times are the events' `eventTime`s.

use std::io::Read;

use super::{Counts, Format, Stopped};
use crate::cloudtrail::ocsf::{write_trail_error_ocsf, write_trail_ocsf};
use crate::cloudtrail::{
    write_trail_error, write_trail_raw, EventSources, Kept, TrailError, TrailEvents,
    TrailProvenance,
};
use crate::decode;
use crate::logs::time::parse_iso_seconds;

/// Most bytes of a trail `parse_error`'s reason: the file's key (at most 1,024 bytes), the
/// event's position and why.
const REASON_BYTES: usize = 2048;

/// One run of the trail loop.
pub struct TrailSpec<'a> {
    /// Which `eventSource`s are kept.
    pub sources: &'a EventSources,
    pub format: Format,
    pub provenance: &'a TrailProvenance,
    /// How errors name the file (its key or path).
    pub name: &'a str,
    /// Longest line to emit; `None` writes every event whole (the command line).
    pub max_line: Option<usize>,
    /// Mask secrets in the events' strings ([`crate::mask::redact_json`]).
    pub redact: bool,
}

/// Runs the loop over a trail file's body; see the module documentation. Returns the counts in
/// every case, and why it stopped early if it did (the events before a read failure, such as a
/// file cut short, were emitted).
pub fn run_trail(
    body: impl Read + Send + 'static,
    spec: &TrailSpec<'_>,
    emit: &mut dyn FnMut(&[u8]) -> bool,
) -> (Counts, Result<(), Stopped>) {
    let mut counts = Counts::default();
    let reader = match decode::open(body) {
        Ok(reader) => reader,
        Err(e) => return (counts, Err(Stopped::Read(e))),
    };
    let mut events = TrailEvents::new(reader, spec.name, spec.sources.clone());
    let mut buf = Vec::new();
    let result = loop {
        let kept = match events.next_kept() {
            Ok(Some(kept)) => kept,
            Ok(None) => break Ok(()),
            Err(e) => break Err(Stopped::Read(e)),
        };
        buf.clear();
        let ordinal = match kept {
            Kept::Event {
                ordinal,
                bytes,
                fields,
                reserved,
            } => {
                let event = Event {
                    bytes,
                    reserved,
                    time: fields.event_time.as_deref(),
                };
                render_event(&mut buf, &event, ordinal, spec, &mut counts);
                if let Some(t) = fields
                    .event_time
                    .as_deref()
                    .and_then(|t| parse_iso_seconds(t.as_bytes()).ok())
                {
                    counts.first_time = Some(counts.first_time.map_or(t, |f| f.min(t)));
                    counts.last_time = Some(counts.last_time.map_or(t, |l| l.max(t)));
                }
                ordinal
            }
            Kept::Bad {
                ordinal,
                reason,
                raw,
                whole,
                time,
            } => {
                let error = TrailError::new(&reason, raw, whole);
                error_record(
                    &mut buf,
                    &error,
                    time.as_deref(),
                    ordinal,
                    spec,
                    &mut counts,
                );
                ordinal
            }
        };
        counts.records += 1;
        counts.last_record_line = ordinal + 1;
        if !emit(&buf) {
            break Err(Stopped::Emit);
        }
    };
    counts.skipped_events = events.skipped();
    counts.empty_trail = result.is_ok() && events.reader().held_nothing();
    counts.lines = events.reader().elements_read();
    counts.text_bytes = events.reader().bytes_read();
    (counts, result)
}

/// A kept event as the renderings take it.
struct Event<'a> {
    bytes: &'a [u8],
    /// Its top-level members named like the provenance.
    reserved: &'a [std::ops::Range<usize>],
    /// Its `eventTime`, when a string.
    time: Option<&'a str>,
}

/// Renders a kept event in the spec's format; a rendering OCSF refuses, or one over the line
/// limit, becomes a `parse_error` record.
fn render_event(
    buf: &mut Vec<u8>,
    event: &Event<'_>,
    ordinal: u64,
    spec: &TrailSpec<'_>,
    counts: &mut Counts,
) {
    let masked = spec
        .redact
        .then(|| crate::mask::redact_json(event.bytes))
        .flatten();
    counts.redacted += u64::from(masked.is_some());
    // Masking moves bytes: the reserved members are found again in the masked text (masking
    // changes string values only, so the same members are found).
    let rescanned = masked
        .as_deref()
        .map(|m| crate::cloudtrail::scan_members(m).unwrap_or_default());
    let event = &Event {
        bytes: masked.as_deref().unwrap_or(event.bytes),
        reserved: rescanned.as_deref().unwrap_or(event.reserved),
        time: event.time,
    };
    let refused = match spec.format {
        Format::Raw => {
            write_trail_raw(buf, event.bytes, event.reserved, ordinal, spec.provenance);
            None
        }
        Format::Ocsf => write_trail_ocsf(buf, event.bytes, ordinal, spec.provenance)
            .err()
            .map(|e| format!("{}: event {}: {e}", spec.name, ordinal + 1)),
    };
    let reason = refused.or_else(|| {
        spec.max_line.filter(|&max| buf.len() > max).map(|max| {
            format!(
                "{}: event {} is {} bytes once rendered, over the {max}-byte record limit",
                spec.name,
                ordinal + 1,
                buf.len()
            )
        })
    });
    if let Some(reason) = reason {
        buf.clear();
        let error = TrailError::new(&reason, event.bytes, None);
        error_record(buf, &error, event.time, ordinal, spec, counts);
    }
}

/// A `parse_error` record in the spec's format (OCSF: a Base Event).
fn error_record(
    buf: &mut Vec<u8>,
    error: &TrailError<'_>,
    time: Option<&str>,
    ordinal: u64,
    spec: &TrailSpec<'_>,
    counts: &mut Counts,
) {
    // The reason may quote the file (its key) or the event (a JSON error): an excerpt, masked;
    // the element's text is masked whatever REDACT_SECRETS says (it could not be read, so
    // nothing else could mask it).
    let reason = crate::mask::clean(error.reason, REASON_BYTES).to_string();
    let masked = crate::mask::redact(&error.text);
    let error = &TrailError {
        reason: &reason,
        text: masked.map_or_else(|| error.text.clone(), std::borrow::Cow::Owned),
        invalid_utf8: error.invalid_utf8,
        whole: error.whole,
        cut: error.cut,
    };
    match spec.format {
        Format::Raw => write_trail_error(buf, error, ordinal, spec.provenance),
        Format::Ocsf => write_trail_error_ocsf(buf, error, time, ordinal, spec.provenance),
    }
    counts.parse_errors += 1;
    if counts.first_error.is_none() {
        counts.first_error = Some((ordinal + 1, error.reason.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn event(source: &str, name: &str) -> String {
        format!(
            r#"{{"eventVersion":"1.08","eventTime":"2024-03-01T00:55:00Z","eventSource":"{source}","eventName":"{name}","awsRegion":"us-east-1","eventID":"e-{name}","requestID":"r","userIdentity":{{"type":"IAMUser","userName":"alice"}},"sourceIPAddress":"192.0.2.1"}}"#
        )
    }

    fn run_on(text: String, format: Format, max_line: Option<usize>) -> (Counts, Vec<String>) {
        let sources = EventSources::default();
        let provenance = TrailProvenance::new(None, Some("b"), "k.json.gz");
        let spec = TrailSpec {
            sources: &sources,
            format,
            provenance: &provenance,
            name: "s3://b/k.json.gz",
            max_line,
            redact: true,
        };
        let mut lines = Vec::new();
        let (counts, result) = run_trail(Cursor::new(text.into_bytes()), &spec, &mut |l| {
            lines.push(String::from_utf8(l.to_vec()).unwrap());
            true
        });
        assert!(result.is_ok(), "{result:?}");
        (counts, lines)
    }

    #[test]
    fn redshift_events_are_kept_and_others_counted_as_skipped() {
        let text = format!(
            r#"{{"Records":[{},{},{}]}}"#,
            event("redshift.amazonaws.com", "CreateCluster"),
            event("s3.amazonaws.com", "GetObject"),
            event("redshift-data.amazonaws.com", "ExecuteStatement")
        );
        let (counts, lines) = run_on(text, Format::Raw, None);
        assert_eq!(
            (counts.records, counts.skipped_events, counts.lines),
            (2, 1, 3)
        );
        assert_eq!(counts.last_record_line, 3);
        let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(first["eventName"], "CreateCluster");
        assert_eq!(first["log_type"], "cloudtrail");
        assert_eq!(first["source"]["event"], 1);
        assert_eq!(
            counts.first_time.map(|t| t.to_string()).as_deref(),
            Some("2024-03-01T00:55:00.000Z")
        );
    }

    #[test]
    fn ocsf_renders_api_activity_and_refusals_become_base_events() {
        let no_time = r#"{"eventSource":"redshift.amazonaws.com","eventName":"DeleteCluster"}"#;
        let huge = r#"{"eventSource":"redshift.amazonaws.com","eventTime":"2024-03-01T00:55:00Z","n":1e400}"#;
        let text = format!(
            r#"{{"Records":[{},{no_time},{huge}]}}"#,
            event("redshift.amazonaws.com", "DeleteCluster")
        );
        let (counts, lines) = run_on(text, Format::Ocsf, None);
        let ok: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(ok["class_uid"], 6003);
        // No eventTime: still an API call, at the file's time (none here: 0).
        let untimed: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(
            (&untimed["class_uid"], &untimed["time"]),
            (&6003.into(), &0.into())
        );
        let bad: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
        assert_eq!(bad["class_uid"], 0, "{bad}");
        assert!(
            bad["status_detail"].as_str().unwrap().contains("event 3"),
            "{bad}"
        );
        assert_eq!(bad["time"], 1_709_254_500_000_i64, "its own eventTime");
        assert_eq!(counts.parse_errors, 1);
    }

    #[test]
    fn an_event_over_the_line_limit_becomes_a_capped_parse_error() {
        let big = format!(
            r#"{{"eventTime":"2024-03-01T00:55:00Z","eventSource":"redshift.amazonaws.com","eventName":"ModifyCluster","pad":"{}"}}"#,
            "x".repeat(100_000)
        );
        let (counts, lines) = run_on(
            format!(r#"{{"Records":[{big}]}}"#),
            Format::Raw,
            Some(90_000),
        );
        assert_eq!(counts.parse_errors, 1);
        assert!(lines[0].len() <= 90_000, "{}", lines[0].len());
        let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert!(v["parse_error"].as_str().unwrap().contains("record limit"));
        // The event was read whole: its length and hash, as for a long audit parse_error.
        assert_eq!(v["raw_bytes"], big.len());
        assert_eq!(v.get("truncated"), None);
        assert_eq!(v["id"].as_str().unwrap().len(), 32);
    }
}
