//! CloudWatch Logs subscription batches (Redshift Serverless, or clusters logging to CloudWatch):
//! decode `{"awslogs": {"data": ...}}`, tell the log type and cluster or namespace from the log
//! group, and run the audit log parsers over a batch's messages as if they were one file.
//!
//! Each log event's `message` is text in the file format (FORMAT.md, "CloudWatch Logs"). The
//! messages of a batch are joined with `\n` (one trailing line break of a message is dropped
//! first), so a user activity statement that spans several log events is reassembled exactly
//! as in a file; each record still knows the log event its first line came from.

use std::io::{self, Read};

use base64::Engine as _;
use flate2::read::MultiGzDecoder;
use serde::Deserialize;
use xxhash_rust::xxh3::xxh3_128;

use crate::aws_names::is_account_id;
use crate::logs::{LogType, Parser, Record};
use crate::output::json::{write_opt_str, write_str};

/// Largest decompressed batch accepted. A subscription delivers at most about 1 MB of
/// compressed data a call (the Lambda payload limit); log data compresses about ten to one,
/// so this is generous and still bounds memory against a gzip bomb.
pub const MAX_DECODED_BYTES: usize = 32 * 1024 * 1024;

/// `messageType` of the batch CloudWatch Logs sends to check a new destination.
pub const CONTROL_MESSAGE: &str = "CONTROL_MESSAGE";
/// `messageType` of a batch of log events.
pub const DATA_MESSAGE: &str = "DATA_MESSAGE";

/// The decoded payload of a subscription event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogsData {
    pub message_type: String,
    /// The account that owns the log group.
    pub owner: String,
    pub log_group: String,
    pub log_stream: String,
    #[serde(default)]
    pub subscription_filters: Vec<String>,
    #[serde(default)]
    pub log_events: Vec<LogEvent>,
}

impl LogsData {
    /// A `CONTROL_MESSAGE`: acknowledge it and produce nothing.
    pub fn is_control(&self) -> bool {
        self.message_type == CONTROL_MESSAGE
    }
}

/// One log event of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LogEvent {
    /// CloudWatch's id of the event (a long decimal string), unique within the log group.
    pub id: String,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub message: String,
}

/// Why a subscription event or a log group was refused. Retrying never helps: the input
/// itself is wrong.
#[derive(Debug, thiserror::Error)]
pub enum CloudWatchError {
    #[error("not a CloudWatch Logs subscription event ({{\"awslogs\": {{\"data\": ...}}}}): {0}")]
    NotSubscription(String),
    #[error("CloudWatch Logs data is not base64: {0}")]
    Base64(base64::DecodeError),
    #[error("CloudWatch Logs data does not decompress: {0}")]
    Gzip(io::Error),
    #[error("CloudWatch Logs data is over {MAX_DECODED_BYTES} bytes once decompressed")]
    TooLarge,
    #[error("CloudWatch Logs data is not the expected JSON: {0}")]
    Json(serde_json::Error),
    #[error(
        "log group {0:?} is not a Redshift audit log group \
         (/aws/redshift/cluster/<cluster>/<log type> or /aws/redshift/<namespace>/<log type>)"
    )]
    UnknownGroup(String),
    #[error(
        "log group {group:?}: unknown log type {log_type:?} (expected connectionlog, userlog or useractivitylog)"
    )]
    UnknownLogType { group: String, log_type: String },
    #[error(
        "log group name of {chars} characters ({excerpt}); CloudWatch Logs allows at most \
         {MAX_LOG_GROUP_CHARS}"
    )]
    GroupTooLong { chars: usize, excerpt: String },
    #[error(
        "log group {group:?}: owner {owner} is not a 12-digit AWS account ID, so it cannot be \
         the records' account_id"
    )]
    BadOwner { group: String, owner: String },
}

/// Longest log group name CloudWatch Logs allows (`CreateLogGroup`, `logGroupName`).
pub const MAX_LOG_GROUP_CHARS: usize = 512;

/// Bytes of an input value an error quotes at most (cut on a character boundary).
const EXCERPT_CHARS: usize = 40;

/// `text` as an error quotes it: whole when short, else its first [`EXCERPT_CHARS`] bytes
/// and its length.
///
/// Through the one rule for text that leaves ([`crate::mask::clean`]).
fn excerpt(text: &str) -> String {
    crate::mask::quote_within(text, EXCERPT_CHARS)
}

/// The log group of a data batch, checked: a Redshift audit log group of at most
/// [`MAX_LOG_GROUP_CHARS`] characters, owned by a 12-digit account (the records' `account_id`).
pub fn batch_group(data: &LogsData) -> Result<LogGroup, CloudWatchError> {
    let group = parse_log_group(&data.log_group)?;
    if !is_account_id(&data.owner) {
        return Err(CloudWatchError::BadOwner {
            group: data.log_group.clone(),
            owner: excerpt(&data.owner),
        });
    }
    Ok(group)
}

#[derive(Deserialize)]
struct Envelope {
    awslogs: AwsLogs,
}

#[derive(Deserialize)]
struct AwsLogs {
    data: String,
}

/// Decodes a whole subscription event as Lambda receives it (or as `parse` reads a saved one).
pub fn decode_subscription(event: &[u8]) -> Result<LogsData, CloudWatchError> {
    let envelope: Envelope = serde_json::from_slice(event)
        .map_err(|e| CloudWatchError::NotSubscription(e.to_string()))?;
    decode_data(&envelope.awslogs.data)
}

/// Decodes `awslogs.data`: base64, then gzip, then JSON, refusing more than
/// `MAX_DECODED_BYTES` of decompressed data.
pub fn decode_data(data: &str) -> Result<LogsData, CloudWatchError> {
    let compressed = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(CloudWatchError::Base64)?;
    let mut json = Vec::new();
    MultiGzDecoder::new(&compressed[..])
        .take(MAX_DECODED_BYTES as u64 + 1)
        .read_to_end(&mut json)
        .map_err(CloudWatchError::Gzip)?;
    if json.len() > MAX_DECODED_BYTES {
        return Err(CloudWatchError::TooLarge);
    }
    serde_json::from_slice(&json).map_err(CloudWatchError::Json)
}

/// Where a log group's records come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `/aws/redshift/cluster/<cluster>/<log type>`
    Cluster(String),
    /// `/aws/redshift/<namespace>/<log type>` (Redshift Serverless)
    Namespace(String),
}

/// What a Redshift log group's name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogGroup {
    pub name: String,
    pub origin: Origin,
    pub log_type: LogType,
}

impl LogGroup {
    pub fn is_serverless(&self) -> bool {
        matches!(self.origin, Origin::Namespace(_))
    }

    /// The cluster identifier or the Serverless namespace.
    pub fn source_name(&self) -> &str {
        match &self.origin {
            Origin::Cluster(s) | Origin::Namespace(s) => s,
        }
    }
}

const GROUP_PREFIX: &str = "/aws/redshift/";

/// Parses `/aws/redshift/cluster/<cluster>/<log type>` or `/aws/redshift/<namespace>/<log type>`;
/// any other group is an error naming it.
pub fn parse_log_group(name: &str) -> Result<LogGroup, CloudWatchError> {
    let chars = name.chars().count();
    if chars > MAX_LOG_GROUP_CHARS {
        return Err(CloudWatchError::GroupTooLong {
            chars,
            excerpt: excerpt(name),
        });
    }
    let unknown = || CloudWatchError::UnknownGroup(name.to_string());
    let rest = name.strip_prefix(GROUP_PREFIX).ok_or_else(unknown)?;
    let parts: Vec<&str> = rest.split('/').collect();
    let (origin, log_type) = match parts[..] {
        ["cluster", cluster, log_type] if is_identifier(cluster) => {
            (Origin::Cluster(cluster.to_string()), log_type)
        }
        [namespace, log_type] if is_identifier(namespace) => {
            (Origin::Namespace(namespace.to_string()), log_type)
        }
        _ => return Err(unknown()),
    };
    let log_type = log_type
        .parse()
        .map_err(|_| CloudWatchError::UnknownLogType {
            group: name.to_string(),
            log_type: log_type.to_string(),
        })?;
    Ok(LogGroup {
        name: name.to_string(),
        origin,
        log_type,
    })
}

/// Cluster identifiers and Serverless namespace names: lowercase letters, digits, hyphens,
/// starting with a letter.
fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A message without one trailing line break (the join adds it back).
fn message_text(message: &str) -> &[u8] {
    let m = message.as_bytes();
    let m = m.strip_suffix(b"\n").unwrap_or(m);
    m.strip_suffix(b"\r").unwrap_or(m)
}

/// The messages of a batch as one text, each followed by `\n`, read without copying them.
pub struct Messages<'a> {
    events: &'a [LogEvent],
    index: usize,
    at: usize,
}

impl<'a> Messages<'a> {
    pub fn new(events: &'a [LogEvent]) -> Self {
        Messages {
            events,
            index: 0,
            at: 0,
        }
    }
}

impl Read for Messages<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            let Some(event) = self.events.get(self.index) else {
                break;
            };
            let text = message_text(&event.message);
            if self.at < text.len() {
                let take = (text.len() - self.at).min(buf.len() - n);
                buf[n..n + take].copy_from_slice(&text[self.at..self.at + take]);
                self.at += take;
                n += take;
            } else {
                buf[n] = b'\n';
                n += 1;
                self.index += 1;
                self.at = 0;
            }
        }
        Ok(n)
    }
}

/// Where a record of a batch came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPosition<'a> {
    /// Index of the log event the record's first line is in.
    pub index: usize,
    /// That log event's id.
    pub event_id: &'a str,
    /// 0-based position of the record among those starting in that log event.
    pub ordinal: u64,
    /// The record is (part of) the batch's last user activity statement, which the next batch
    /// may continue: it is forwarded as it stands. If the next batch does continue it, those
    /// lines come out there as a `parse_error` record ("text before the first record header").
    pub batch_end: bool,
}

/// The audit log parser run over one batch's messages.
pub struct BatchParser<'a> {
    parser: Parser<Messages<'a>>,
    events: &'a [LogEvent],
    /// 1-based line on which each event's message starts.
    starts: Vec<u64>,
    /// Records starting on or after this line are flagged `batch_end`.
    tail_line: u64,
    current: usize,
    ordinal: u64,
}

impl<'a> BatchParser<'a> {
    pub fn new(log_type: LogType, events: &'a [LogEvent]) -> Self {
        Self::with_parser(
            log_type,
            events,
            Parser::new(log_type, Messages::new(events)),
        )
    }

    /// A parser whose record size limit is `max_record` bytes (tests use small limits).
    pub fn with_limit(log_type: LogType, events: &'a [LogEvent], max_record: usize) -> Self {
        let parser = Parser::with_limit(log_type, Messages::new(events), max_record);
        Self::with_parser(log_type, events, parser)
    }

    fn with_parser(
        log_type: LogType,
        events: &'a [LogEvent],
        parser: Parser<Messages<'a>>,
    ) -> Self {
        let mut starts = Vec::with_capacity(events.len());
        let mut line = 1u64;
        for event in events {
            starts.push(line);
            let text = message_text(&event.message);
            line += memchr::memchr_iter(b'\n', text).count() as u64 + 1;
        }
        let tail_line = match log_type {
            LogType::UserActivityLog => last_header_line(events, &starts).unwrap_or(1),
            // One record a line: a batch never ends inside one.
            LogType::ConnectionLog | LogType::UserLog => u64::MAX,
        };
        BatchParser {
            parser,
            events,
            starts,
            tail_line,
            current: 0,
            ordinal: 0,
        }
    }

    /// The next record and the log event it starts in; `None` after the last.
    pub fn next_record(&mut self) -> io::Result<Option<(Record<'_>, EventPosition<'a>)>> {
        let Some(record) = self.parser.next_record()? else {
            return Ok(None);
        };
        let index = self
            .starts
            .partition_point(|&s| s <= record.line)
            .saturating_sub(1);
        if index != self.current {
            self.current = index;
            self.ordinal = 0;
        }
        let position = EventPosition {
            index,
            event_id: self.events.get(index).map_or("", |e| e.id.as_str()),
            ordinal: self.ordinal,
            batch_end: record.line >= self.tail_line,
        };
        self.ordinal += 1;
        Ok(Some((record, position)))
    }
}

/// The line of the batch's last user activity header, found from the end (only the last
/// statement's lines are looked at). The shape test is the parser's: optional spaces, a quote,
/// `YYYY-`, and `]' LOG:` later on the line.
fn last_header_line(events: &[LogEvent], starts: &[u64]) -> Option<u64> {
    for (event, &start) in events.iter().zip(starts).rev() {
        let text = message_text(&event.message);
        let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        for (i, line) in lines.iter().enumerate().rev() {
            if looks_like_header(line) {
                return Some(start + i as u64);
            }
        }
    }
    None
}

fn looks_like_header(line: &[u8]) -> bool {
    let lead = line.iter().take_while(|&&b| b == b' ').count();
    let rest = &line[lead..];
    rest.len() > 6
        && rest[0] == b'\''
        && rest[1..5].iter().all(u8::is_ascii_digit)
        && rest[5] == b'-'
        && memchr::memmem::find(rest, b"]' LOG:").is_some()
}

/// Where a batch's records came from: built once per batch.
///
/// The provenance members are `"log_type"`, `"account_id"` (the batch's `owner`), `"region"`
/// (the function's), `"cluster"` (the cluster, or `null` for Serverless), `"namespace"` (only
/// for Serverless), `"file_time":null`, `["batch_end":true,]`
/// `"source":{"log_group":…,"log_stream":…,"event_id":…}` and `"id"`.
///
/// `id` is XXH3-128, as 32 lowercase hex digits, of the bytes
/// `log_group \0 log_stream \0 event_id \0 ordinal`, the ordinal (the record's position among
/// those starting in that log event, 0-based) as 8 little-endian bytes.
#[derive(Debug, Clone)]
pub struct CloudWatchProvenance {
    /// `"log_type":…,"file_time":null`
    head: Vec<u8>,
    /// `,"source":{"log_group":…,"log_stream":…,"event_id":`
    source: Vec<u8>,
    /// `log_group \0 log_stream \0`
    id_prefix: Vec<u8>,
}

impl CloudWatchProvenance {
    pub fn new(group: &LogGroup, owner: &str, region: Option<&str>, log_stream: &str) -> Self {
        let mut head = Vec::with_capacity(256);
        head.extend_from_slice(b"\"log_type\":");
        write_str(&mut head, group.log_type.as_str());
        head.extend_from_slice(b",\"account_id\":");
        write_str(&mut head, owner);
        head.extend_from_slice(b",\"region\":");
        write_opt_str(&mut head, region);
        match &group.origin {
            Origin::Cluster(cluster) => {
                head.extend_from_slice(b",\"cluster\":");
                write_str(&mut head, cluster);
            }
            Origin::Namespace(namespace) => {
                head.extend_from_slice(b",\"cluster\":null,\"namespace\":");
                write_str(&mut head, namespace);
            }
        }
        head.extend_from_slice(b",\"file_time\":null");
        let mut source = Vec::with_capacity(128);
        source.extend_from_slice(b",\"source\":{\"log_group\":");
        write_str(&mut source, &group.name);
        source.extend_from_slice(b",\"log_stream\":");
        write_str(&mut source, log_stream);
        source.extend_from_slice(b",\"event_id\":");
        let mut id_prefix = Vec::with_capacity(group.name.len() + log_stream.len() + 2);
        id_prefix.extend_from_slice(group.name.as_bytes());
        id_prefix.push(0);
        id_prefix.extend_from_slice(log_stream.as_bytes());
        id_prefix.push(0);
        CloudWatchProvenance {
            head,
            source,
            id_prefix,
        }
    }

    /// The record id (see the type's documentation for the exact bytes hashed).
    pub fn record_id(&self, event_id: &str, ordinal: u64) -> [u8; 32] {
        let mut input = Vec::with_capacity(self.id_prefix.len() + event_id.len() + 9);
        input.extend_from_slice(&self.id_prefix);
        input.extend_from_slice(event_id.as_bytes());
        input.push(0);
        input.extend_from_slice(&ordinal.to_le_bytes());
        crate::output::hex32(xxh3_128(&input))
    }

    /// Appends the provenance members (no leading comma, no braces) for a record.
    pub fn write_fields(&self, out: &mut Vec<u8>, position: &EventPosition<'_>) {
        out.extend_from_slice(&self.head);
        if position.batch_end {
            out.extend_from_slice(b",\"batch_end\":true");
        }
        out.extend_from_slice(&self.source);
        write_str(out, position.event_id);
        out.extend_from_slice(b"},\"id\":\"");
        out.extend_from_slice(&self.record_id(position.event_id, position.ordinal));
        out.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(owner: &str, group: &str) -> LogsData {
        LogsData {
            message_type: DATA_MESSAGE.into(),
            owner: owner.into(),
            log_group: group.into(),
            log_stream: "s".into(),
            subscription_filters: Vec::new(),
            log_events: Vec::new(),
        }
    }

    const GROUP: &str = "/aws/redshift/cluster/prod/connectionlog";

    #[test]
    fn a_batch_owned_by_a_12_digit_account_gives_its_group() {
        let group = batch_group(&batch("123456789012", GROUP)).unwrap();
        assert_eq!(group.log_type, LogType::ConnectionLog);
    }

    #[test]
    fn an_owner_that_is_not_an_account_id_is_refused_in_excerpt() {
        for owner in ["12345", "CloudwatchLogs", "１２３４５６７８９０１２", ""] {
            let e = batch_group(&batch(owner, GROUP)).unwrap_err().to_string();
            assert!(e.contains("not a 12-digit AWS account ID"), "{e}");
            assert!(e.contains(GROUP), "{e}");
        }
        let long = "9".repeat(100_000);
        let e = batch_group(&batch(&long, GROUP)).unwrap_err().to_string();
        assert!(e.len() < 500, "{}", e.len());
        assert!(e.contains("(100000 bytes)"), "{e}");
    }

    #[test]
    fn a_log_group_over_512_characters_is_refused_in_excerpt() {
        let long = format!("/aws/redshift/{}/connectionlog", "n".repeat(5000));
        let e = parse_log_group(&long).unwrap_err().to_string();
        assert!(e.contains("CloudWatch Logs allows at most 512"), "{e}");
        assert!(e.len() < 500, "{}", e.len());
        let at_limit = format!("/aws/redshift/{}/connectionlog", "n".repeat(512 - 28));
        assert_eq!(at_limit.len(), 512);
        assert!(parse_log_group(&at_limit).is_ok());
    }
}
