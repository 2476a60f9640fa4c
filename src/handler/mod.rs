//! One object ref to one receipt: fetches the body, parses it on a blocking thread, and sends
//! every record to the sink; and one Lambda event to its response.

use std::future::Future;
use std::io::{self, Read};
use std::time::Instant;

use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::backfill::{Backfill, BackfillError, Event, RunOptions};
use crate::decode;
use crate::events::{self, Filter, Invocation, ObjectRef};
use crate::ledger::{rfc3339_ms, DoneMarker, Ledger};
use crate::logs::{Body, LogType, Parser, Record, Timestamp};
use crate::output::{write_parts, write_record, Provenance};
use crate::sink::{Sink, SinkError, SinkStats, MAX_LINE_BYTES};

/// Lines handed from the parsing thread to the sink in one buffer: the bytes, and where each line
/// ends. One allocation a batch, not one a line.
#[derive(Debug, Default)]
struct Lines {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Lines {
    fn push(&mut self, line: &[u8]) {
        self.bytes.extend_from_slice(line);
        self.ends.push(self.bytes.len());
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(a, b)| &self.bytes[a..b])
    }
}

/// Lines handed from the parsing thread to the sink in batches of about this many bytes.
const BATCH_BYTES: usize = 256 * 1024;
/// Batches in flight between the threads: with the sink's calls in flight, this bounds memory.
const BATCHES_IN_FLIGHT: usize = 4;

/// An object's body, ready to read, and what the store said about it.
pub struct Fetched {
    pub body: Box<dyn Read + Send>,
    /// Stored size in bytes.
    pub size: Option<u64>,
    pub etag: Option<String>,
}

/// Why fetching failed, and whether trying again later can help. The message names the object.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FetchError {
    pub message: String,
    pub retryable: bool,
}

/// Where object bodies come from (S3 in Lambda; tests may use anything).
pub trait Fetch: Send + Sync {
    fn fetch(&self, object: &ObjectRef)
        -> impl Future<Output = Result<Fetched, FetchError>> + Send;
}

/// What forwarding one object did: logged as one JSON line and returned by `invoke`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Receipt {
    pub bucket: String,
    pub key: String,
    pub log_type: Option<LogType>,
    pub etag: Option<String>,
    /// Stored (usually compressed) size of the object.
    pub object_bytes: Option<u64>,
    /// Decompressed bytes read.
    pub text_bytes: u64,
    /// Lines of text read.
    pub input_lines: u64,
    /// Audit records, parse errors included.
    pub records: u64,
    pub parse_errors: u64,
    /// Records split into parts because one Firehose record could not hold them.
    pub split_records: u64,
    /// What the sink did: lines, Firehose records, payload and billed bytes, calls, retries.
    #[serde(flatten)]
    pub sink: SinkStats,
    /// Earliest and latest `recordtime` among the records.
    pub first_record_time: Option<String>,
    pub last_record_time: Option<String>,
    pub duration_ms: u64,
}

/// Why an object could not be forwarded completely. Every variant names the object.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The fetch error's message names the object already.
    #[error("{source}")]
    Fetch {
        bucket: String,
        key: String,
        source: FetchError,
    },
    #[error("s3://{bucket}/{key}: reading failed after line {line}: {source}")]
    Read {
        bucket: String,
        key: String,
        line: u64,
        source: io::Error,
    },
    #[error("s3://{bucket}/{key}: {source}")]
    Sink {
        bucket: String,
        key: String,
        source: SinkError,
    },
    #[error("s3://{bucket}/{key}: not a Redshift audit log: {reason}")]
    NotAuditLog {
        bucket: String,
        key: String,
        reason: String,
    },
    #[error("s3://{bucket}/{key}: parsing thread failed: {reason}")]
    Internal {
        bucket: String,
        key: String,
        reason: String,
    },
}

impl ForwardError {
    /// Whether forwarding the same object again later can succeed without a change.
    pub fn is_retryable(&self) -> bool {
        match self {
            ForwardError::Fetch { source, .. } => source.retryable,
            // A broken connection mid-body is worth another try; a corrupt gzip is not, but
            // the two cannot always be told apart, so the invocation is retried either way.
            ForwardError::Read { .. } => true,
            ForwardError::Sink { source, .. } => source.is_retryable(),
            ForwardError::NotAuditLog { .. } => false,
            ForwardError::Internal { .. } => true,
        }
    }
}

/// What the parsing thread counted.
#[derive(Debug, Default)]
struct ParseSummary {
    text_bytes: u64,
    lines: u64,
    records: u64,
    parse_errors: u64,
    split_records: u64,
    first_time: Option<Timestamp>,
    last_time: Option<Timestamp>,
}

impl ParseSummary {
    fn count(&mut self, record: &Record<'_>) {
        self.records += 1;
        match &record.body {
            Body::ParseError { .. } => self.parse_errors += 1,
            Body::Columns(c) => {
                if let Some(t) = c.record_time() {
                    self.first_time = Some(self.first_time.map_or(t, |f| f.min(t)));
                    self.last_time = Some(self.last_time.map_or(t, |l| l.max(t)));
                }
            }
        }
    }
}

/// Sends every record of `object` to `sink` and returns the receipt. Fails, naming the object,
/// when the body could not be read to its end or the sink did not accept every record.
pub async fn forward_object<F: Fetch, S: Sink>(
    fetch: &F,
    object: &ObjectRef,
    sink: S,
) -> Result<Receipt, ForwardError> {
    let started = Instant::now();
    let (bucket, key) = (object.bucket.clone(), object.key.clone());
    let name = object.file_name().map_err(|e| ForwardError::NotAuditLog {
        bucket: bucket.clone(),
        key: key.clone(),
        reason: e.to_string(),
    })?;
    let fetched = fetch
        .fetch(object)
        .await
        .map_err(|source| ForwardError::Fetch {
            bucket: bucket.clone(),
            key: key.clone(),
            source,
        })?;
    let log_type = name.log_type;
    let provenance = Provenance::new(log_type, Some(&name), Some(&bucket), &key);
    let (lines_tx, lines_rx) = mpsc::channel::<Lines>(BATCHES_IN_FLIGHT);
    let body = fetched.body;
    let parsing =
        tokio::task::spawn_blocking(move || parse_into(body, log_type, &provenance, &lines_tx));
    let sent = send_all(lines_rx, sink).await;
    let parsed = parsing.await.map_err(|e| ForwardError::Internal {
        bucket: bucket.clone(),
        key: key.clone(),
        reason: e.to_string(),
    })?;
    // A sink failure stops the parser (its channel closes), so it is the error to report.
    let stats = sent.map_err(|source| ForwardError::Sink {
        bucket: bucket.clone(),
        key: key.clone(),
        source,
    })?;
    let summary = parsed.map_err(|(line, source)| ForwardError::Read {
        bucket: bucket.clone(),
        key: key.clone(),
        line,
        source,
    })?;
    Ok(Receipt {
        bucket,
        key,
        log_type: Some(log_type),
        etag: fetched.etag.or_else(|| object.etag.clone()),
        object_bytes: fetched.size.or(object.size),
        text_bytes: summary.text_bytes,
        input_lines: summary.lines,
        records: summary.records,
        parse_errors: summary.parse_errors,
        split_records: summary.split_records,
        sink: stats,
        first_record_time: summary.first_time.map(|t| t.to_string()),
        last_record_time: summary.last_time.map(|t| t.to_string()),
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

async fn send_all<S: Sink>(
    mut lines: mpsc::Receiver<Lines>,
    mut sink: S,
) -> Result<SinkStats, SinkError> {
    while let Some(batch) = lines.recv().await {
        for line in batch.iter() {
            sink.send(line).await?;
        }
    }
    sink.finish().await
}

/// Runs on a blocking thread: decompress, parse, render each record as lines that fit one
/// Firehose record, and hand them over in batches. Returns the counts, or the line after
/// which reading failed.
fn parse_into(
    body: Box<dyn Read + Send>,
    log_type: LogType,
    provenance: &Provenance,
    lines: &mpsc::Sender<Lines>,
) -> Result<ParseSummary, (u64, io::Error)> {
    let mut summary = ParseSummary::default();
    let reader = decode::open(body).map_err(|e| (0, e))?;
    let mut parser = Parser::new(log_type, reader);
    let mut batch = Lines::default();
    let mut buf = Vec::new();
    loop {
        let record = match parser.next_record() {
            Ok(Some(record)) => record,
            Ok(None) => break,
            Err(e) => {
                let line = parser.lines_read();
                // What was parsed before the failure still goes out.
                let _ = lines.blocking_send(batch);
                return Err((line, e));
            }
        };
        summary.count(&record);
        let mut emit = |line: &[u8]| {
            batch.push(line);
        };
        match write_parts(&record, provenance, MAX_LINE_BYTES, &mut buf, &mut emit) {
            Ok(1) => {}
            Ok(_) => summary.split_records += 1,
            Err(_) => {
                // Even without its largest text the record is over the limit (thousands of
                // extra columns): forward its JSON as the raw text of a parse error instead.
                buf.clear();
                write_record(&mut buf, &record, provenance);
                let raw = String::from_utf8_lossy(&buf).into_owned();
                let fallback = Record {
                    body: Body::ParseError {
                        reason: "record too large for one Firehose record".into(),
                        raw: &raw,
                    },
                    ..record
                };
                let mut spare = Vec::new();
                if write_parts(&fallback, provenance, MAX_LINE_BYTES, &mut spare, &mut emit).is_ok()
                {
                    summary.split_records += 1;
                }
            }
        }
        // A failed send means the sink failed; its error is the one reported.
        if batch.bytes.len() >= BATCH_BYTES
            && lines.blocking_send(std::mem::take(&mut batch)).is_err()
        {
            break;
        }
    }
    if !batch.ends.is_empty() {
        let _ = lines.blocking_send(batch);
    }
    summary.lines = parser.lines_read();
    summary.text_bytes = parser.bytes_read();
    Ok(summary)
}

/// Everything one invocation needs, built once at start-up.
pub struct Handler<F, M> {
    pub filter: Filter,
    pub fetch: F,
    /// Makes a fresh sink for each object.
    pub make_sink: M,
}

/// An invocation that failed as a whole (Lambda retries it, or sends it to the failure
/// destination).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("malformed event: {0}")]
    Event(#[from] events::EventError),
    #[error("{failed} of {total} objects failed; first: {first}")]
    Objects {
        failed: usize,
        total: usize,
        first: ForwardError,
    },
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Backfill(#[from] BackfillError),
    /// The walk ran but some objects (or the walk itself) failed; the summary says which.
    #[error("backfill: {failed} objects failed; first error: {first}")]
    BackfillObjects { failed: u64, first: String },
}

/// What an invocation may use besides the handler: the ledger shared by the live path and the
/// backfill, the walk, and the Lambda deadline. [`Handler::handle`] runs without any of them.
#[derive(Clone, Copy, Default)]
pub struct Context<'a> {
    /// Done markers: objects already forwarded are skipped, forwarded ones are marked.
    pub ledger: Option<&'a Ledger>,
    /// Runs scheduled and manual backfill events; without it they fail as unsupported.
    pub backfill: Option<&'a Backfill>,
    /// Milliseconds since the epoch at which Lambda stops the invocation.
    pub deadline_ms: Option<i64>,
}

/// What forwarding one object came to.
enum Forwarded {
    Sent(Receipt),
    /// Its done marker matches: sent before, by either path.
    AlreadyDone(DoneMarker),
}

impl<F: Fetch, M: Fn() -> S + Send + Sync, S: Sink> Handler<F, M> {
    /// Handles one Lambda event and returns the response: `batchItemFailures` for SQS, else
    /// the receipts. Without a ledger or a backfill; see [`Handler::handle_with`].
    pub async fn handle(&self, event: &Value) -> Result<Value, HandlerError> {
        self.handle_with(event, Context::default()).await
    }

    /// Handles one Lambda event with the ledger and the backfill of `context`. Objects with a
    /// matching done marker are skipped and listed under `skipped` in the response (present only
    /// when something was skipped); a backfill event returns the walk's summary.
    pub async fn handle_with(
        &self,
        event: &Value,
        context: Context<'_>,
    ) -> Result<Value, HandlerError> {
        match events::parse_invocation(event, &self.filter)? {
            Invocation::Objects(objects) => {
                let mut receipts = Vec::new();
                let mut skipped = Vec::new();
                let mut failures = Vec::new();
                for object in &objects {
                    match self.forward_once(object, context.ledger).await {
                        Ok(Forwarded::Sent(receipt)) => receipts.push(receipt),
                        Ok(Forwarded::AlreadyDone(marker)) => skipped.push(marker),
                        Err(e) => failures.push(e),
                    }
                }
                let total = objects.len();
                match failures.into_iter().next() {
                    None if skipped.is_empty() => Ok(json!({ "receipts": receipts })),
                    None => Ok(json!({ "receipts": receipts, "skipped": skipped })),
                    Some(first) => Err(HandlerError::Objects {
                        failed: total - receipts.len() - skipped.len(),
                        total,
                        first,
                    }),
                }
            }
            Invocation::SqsBatch(messages) => {
                let mut failed = Vec::new();
                for message in &messages {
                    let ok = match &message.objects {
                        Err(e) => {
                            tracing::error!(message_id = %message.message_id, error = %e, "malformed SQS message");
                            false
                        }
                        Ok(objects) => {
                            let mut all = true;
                            for object in objects {
                                // Later objects of a failed message are still tried: each one
                                // that succeeds is one less to send again.
                                all &= self.forward_once(object, context.ledger).await.is_ok();
                            }
                            all
                        }
                    };
                    if !ok {
                        failed.push(json!({ "itemIdentifier": message.message_id }));
                    }
                }
                Ok(json!({ "batchItemFailures": failed }))
            }
            Invocation::Backfill(request) => {
                let Some(backfill) = context.backfill else {
                    return Err(HandlerError::Unsupported(
                        "the backfill needs AUDIT_BUCKET and a state bucket (STATE_BUCKET, or \
                         the audit bucket)"
                            .to_string(),
                    ));
                };
                let options = RunOptions::from_request(&request, context.deadline_ms)?;
                let summary = backfill.run(self, &options, &mut log_walk_event).await?;
                eprintln!(
                    "{}",
                    json!({
                        "timestamp": crate::runtime::now_rfc3339(),
                        "level": if summary.is_failure() { "ERROR" } else { "INFO" },
                        "message": "backfill finished",
                        "summary": summary,
                    })
                );
                if summary.is_failure() {
                    return Err(HandlerError::BackfillObjects {
                        failed: summary.failed,
                        first: summary.errors.first().cloned().unwrap_or_default(),
                    });
                }
                Ok(json!(summary))
            }
        }
    }

    /// Forwards an object unless the ledger holds it as done for the same ETag, and marks it
    /// done once every record was accepted. The ledger only saves work: when it cannot be read
    /// the object is forwarded anyway, and when the marker cannot be written the invocation
    /// still succeeds (failing it would resend records that were delivered); at worst the
    /// backfill sends the object again, with the same record ids.
    async fn forward_once(
        &self,
        object: &ObjectRef,
        ledger: Option<&Ledger>,
    ) -> Result<Forwarded, ForwardError> {
        let Some(ledger) = ledger else {
            return self.forward(object).await.map(Forwarded::Sent);
        };
        // Events without an ETag cannot be matched to a marker: forwarding is the safe side.
        if let Some(etag) = &object.etag {
            match ledger.done(&object.bucket, &object.key, etag).await {
                Ok(Some(marker)) => {
                    tracing::info!(bucket = %object.bucket, key = %object.key, etag = %etag, done_at = %marker.done_at, via = %marker.via, "skipped object: already forwarded");
                    return Ok(Forwarded::AlreadyDone(marker));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(bucket = %object.bucket, key = %object.key, error = %e, "cannot read the done marker; forwarding anyway")
                }
            }
        }
        let receipt = self.forward(object).await?;
        if let Some(etag) = &receipt.etag {
            let marker = DoneMarker {
                bucket: receipt.bucket.clone(),
                key: receipt.key.clone(),
                etag: etag.clone(),
                done_at: crate::runtime::now_rfc3339(),
                records: receipt.records,
                via: "live".into(),
            };
            if let Err(e) = ledger.mark_done(&marker).await {
                tracing::warn!(bucket = %object.bucket, key = %object.key, error = %e, "forwarded, but the done marker could not be written; the backfill may send the object again");
            }
        }
        Ok(Forwarded::Sent(receipt))
    }

    async fn forward(&self, object: &ObjectRef) -> Result<Receipt, ForwardError> {
        let result = forward_object(&self.fetch, object, (self.make_sink)()).await;
        match &result {
            Ok(receipt) => log_receipt(receipt),
            Err(e) => {
                tracing::error!(bucket = %object.bucket, key = %object.key, retryable = e.is_retryable(), error = %e, "object failed")
            }
        }
        result
    }
}

/// The walk's events in the function's log: a receipt per object sent, a line per object a dry
/// run would send.
fn log_walk_event(event: Event<'_>) {
    match event {
        Event::Sent(receipt) => log_receipt(receipt),
        Event::WouldSend(object) => eprintln!(
            "{}",
            json!({
                "timestamp": crate::runtime::now_rfc3339(),
                "level": "INFO",
                "message": "would send",
                "key": object.key,
                "size": object.size,
                "last_modified": rfc3339_ms(object.last_modified_ms),
            })
        ),
        Event::Day { .. } | Event::SkippedDone(_) | Event::Failed(..) => {}
    }
}

/// One JSON line per object, in the function's log (stderr, which Lambda captures): the receipt
/// as a nested object, so log queries can filter on its fields.
fn log_receipt(receipt: &Receipt) {
    let line = json!({
        "timestamp": crate::runtime::now_rfc3339(),
        "level": "INFO",
        "message": "object forwarded",
        "receipt": receipt,
    });
    eprintln!("{line}");
}

#[cfg(test)]
mod tests;
