//! Forwarding one object: fetch its body, run the pipeline on a blocking thread, send every line
//! to a fresh sink, and return the receipt; with a ledger, skip objects already done and mark the
//! ones forwarded. The live path and the backfill both forward through a [`Forwarder`].

use std::cell::RefCell;
use std::io;
use std::time::Instant;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::cloudtrail::{has_trail_name, parse_trail_key, EventSources, TrailProvenance};
use crate::events::Filter;
use crate::ledger::{DoneMarker, Ledger};
use crate::metrics::Metrics;
use crate::output::Provenance;
use crate::pipeline::{self, Input, Output, Spec, Stopped, TrailSpec};
use crate::ports::{Clock, Fetch, FetchError, ObjectRef, SystemClock};
use crate::report;
use crate::sessions::state::{SessionError, SessionStore, Traffic};
use crate::sink::{Sink, SinkError, SinkStats};
use lines::{Buffers, Lines, BATCHES_IN_FLIGHT, BATCH_BYTES};
use session_join::FileJoin;

mod batch;
mod lines;
mod resume;
mod session_join;
pub use batch::{forward_batch, BatchError, BatchReceipt, Batched};
use resume::Resume;
pub use resume::{Tracking, LIVE_MARGIN_MS};

/// What forwarding one object did: logged as one JSON line and returned by `invoke`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Receipt {
    pub bucket: String,
    pub key: String,
    /// `connectionlog`, `userlog`, `useractivitylog` or `cloudtrail`.
    pub log_type: Option<&'static str>,
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
    /// Trail events left out because their `eventSource` is not selected (trail files only).
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped_events: u64,
    /// Records split into parts because one Firehose record could not hold them.
    pub split_records: u64,
    /// Records whose SQL text (or unparsable text) had a secret masked.
    pub redacted_records: u64,
    /// What the sink did: lines, Firehose records, payload and billed bytes, calls, retries.
    #[serde(flatten)]
    pub sink: SinkStats,
    /// Lines parsed but not sent: an earlier attempt's progress said they were accepted.
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped_lines: u64,
    /// Progress records written while sending (see `resume.rs`).
    #[serde(skip_serializing_if = "is_zero")]
    pub progress_writes: u64,
    /// With the session join: user activity records joined to their session, and those left
    /// without one (`crate::sessions`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joined_records: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unjoined_records: Option<u64>,
    /// The session state this file read or wrote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_state: Option<Traffic>,
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
    /// The session join could not go on: the activity file waits for its hour's connection log,
    /// or the session state could not be read or written.
    #[error("s3://{bucket}/{key}: {source}")]
    Sessions {
        bucket: String,
        key: String,
        source: SessionError,
    },
    /// Another invocation holds the object's claim (`ledger::claim`): nothing was sent; the
    /// object is tried again later, when that invocation is done or its claim has expired.
    #[error("s3://{bucket}/{key}: busy elsewhere: another invocation is sending it (its claim expires by {until}); try again later")]
    Busy {
        bucket: String,
        key: String,
        until: String,
    },
    /// Sending stopped at a call boundary before the deadline, with the progress saved: the
    /// next attempt goes on from line `lines`.
    #[error("s3://{bucket}/{key}: stopped before the deadline after {lines} accepted lines; the next attempt goes on from there")]
    Paused {
        bucket: String,
        key: String,
        lines: u64,
    },
}

impl ForwardError {
    /// Whether forwarding the same object again later can succeed without a change.
    pub fn is_retryable(&self) -> bool {
        match self {
            ForwardError::Fetch { source, .. } => source.retryable,
            // A broken connection mid-body is worth another try; a corrupt gzip is not, but
            // the two cannot always be told apart, so the invocation is retried either way.
            // An object in another format (bzip2, zstd, ...) or with trailing garbage never
            // reads differently: final.
            ForwardError::Read { source, .. } => !crate::decode::not_retryable(source),
            ForwardError::Sink { source, .. } => source.is_retryable(),
            ForwardError::NotAuditLog { .. } => false,
            ForwardError::Internal { .. } => true,
            ForwardError::Paused { .. } => true,
            ForwardError::Sessions { source, .. } => source.is_retryable(),
            ForwardError::Busy { .. } => true,
        }
    }

    /// Whether the object waits for its hour's connection log (the session join): not a
    /// failure, a later attempt forwards it.
    pub fn is_waiting(&self) -> bool {
        matches!(
            self,
            ForwardError::Sessions {
                source: SessionError::Waiting { .. },
                ..
            }
        )
    }

    /// Whether the failure is the object's own, so it counts towards `MAX_ATTEMPTS`: not a
    /// failing destination (every object would fail alike) and not a stop at the deadline.
    pub fn counts_as_attempt(&self) -> bool {
        !matches!(
            self,
            ForwardError::Sink { .. }
                | ForwardError::Paused { .. }
                | ForwardError::Sessions { .. }
                | ForwardError::Busy { .. }
        )
    }
}

/// Sends every record of `object` to `sink` and returns the receipt. Fails, naming the object,
/// when the body could not be read to its end or the sink did not accept every record. A trail
/// file keeps Redshift's default event sources; see [`forward_with_sources`].
pub async fn forward_object<F: Fetch, S: Sink>(
    fetch: &F,
    object: &ObjectRef,
    sink: S,
    output: Output,
) -> Result<Receipt, ForwardError> {
    forward_with_sources(fetch, object, &EventSources::default(), sink, output).await
}

/// What a key is, which decides the pipeline's input.
enum Kind {
    AuditLog(crate::key::LogFileName),
    Trail(crate::cloudtrail::TrailFileName),
}

/// [`forward_object`], the pipeline's input picked by the key: a Redshift audit log file, or a
/// CloudTrail event file whose events from `sources` are kept.
pub async fn forward_with_sources<F: Fetch, S: Sink>(
    fetch: &F,
    object: &ObjectRef,
    sources: &EventSources,
    sink: S,
    output: Output,
) -> Result<Receipt, ForwardError> {
    let clock = SystemClock;
    let mut resume = Resume::from_start(&clock);
    forward_resuming(
        fetch,
        object,
        sources,
        sink,
        output,
        None,
        &mut resume,
        None,
    )
    .await
}

/// [`forward_with_sources`] skipping the lines an earlier attempt had accepted, stopping at the
/// deadline and saving progress as `resume` says; `resume.accepted` tells afterwards how far the
/// object got, also when it failed. `opened`: the object's body, already opened under
/// `object.key` (the caller needed its ETag first), read instead of a second GET.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn forward_resuming<F: Fetch, S: Sink>(
    fetch: &F,
    object: &ObjectRef,
    sources: &EventSources,
    mut sink: S,
    output: Output,
    sessions: Option<&SessionStore>,
    resume: &mut Resume<'_>,
    opened: Option<crate::ports::Fetched>,
) -> Result<Receipt, ForwardError> {
    let started = Instant::now();
    let (bucket, key) = (object.bucket.clone(), object.key.clone());
    let kind = match (object.file_name(), parse_trail_key(&key)) {
        (Ok(name), _) => Kind::AuditLog(name),
        (Err(_), Ok(name)) => Kind::Trail(name),
        (Err(e), Err(trail)) => {
            // A trail-shaped name (a bad time, say) is best explained by the trail parser.
            let reason = if has_trail_name(&key) {
                trail.to_string()
            } else {
                e.to_string()
            };
            return Err(ForwardError::NotAuditLog {
                bucket,
                key,
                reason,
            });
        }
    };
    let (fetched, key) = match opened {
        Some(fetched) => (fetched, object.key.clone()),
        None => fetch_once_more(fetch, object).await?,
    };
    let mut joined = match (&kind, sessions) {
        (Kind::AuditLog(name), Some(sessions)) => {
            FileJoin::prepare(object, name, &fetched, sessions).await?
        }
        _ => None,
    };
    let index = joined.as_ref().and_then(FileJoin::index);
    let builder = joined.as_mut().and_then(FileJoin::take_builder);
    let etag = fetched
        .etag
        .as_deref()
        .or(object.etag.as_deref())
        .unwrap_or("");
    sink.begin(&[&bucket, &key, etag]);
    let max_line = sink.max_line();
    let (lines_tx, lines_rx) = mpsc::channel::<Lines>(BATCHES_IN_FLIGHT);
    let body = fetched.body;
    let log_type = match &kind {
        Kind::AuditLog(name) => name.log_type.as_str(),
        Kind::Trail(_) => crate::cloudtrail::LOG_TYPE,
    };
    let parsing = match kind {
        Kind::AuditLog(name) => {
            let provenance = Provenance::new(name.log_type, Some(&name), Some(&bucket), &key);
            let index = index.clone();
            tokio::task::spawn_blocking(move || {
                let collect = builder.map(RefCell::new);
                let spec = Spec {
                    input: Input::AuditLog(name.log_type),
                    output,
                    provenance: &provenance,
                    max_line,
                    sessions: index.as_deref(),
                    collect: collect.as_ref(),
                };
                let parsed = parse_into(&lines_tx, true, |emit| {
                    pipeline::run_blocks(body, &spec, emit)
                });
                (parsed, collect.map(RefCell::into_inner))
            })
        }
        Kind::Trail(name) => {
            let provenance = TrailProvenance::new(Some(&name), Some(&bucket), &key);
            let (sources, shown) = (sources.clone(), format!("s3://{bucket}/{key}"));
            tokio::task::spawn_blocking(move || {
                let spec = TrailSpec {
                    sources: &sources,
                    format: output.format,
                    provenance: &provenance,
                    name: &shown,
                    max_line,
                    redact: output.redact,
                };
                let parsed = parse_into(&lines_tx, false, |emit| {
                    pipeline::run_trail(body, &spec, emit)
                });
                (parsed, None)
            })
        }
    };
    let sent = resume::send_resuming(lines_rx, sink, resume).await;
    let (parsed, collected) = parsing.await.map_err(|e| ForwardError::Internal {
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
    if resume.paused {
        return Err(ForwardError::Paused {
            bucket,
            key,
            lines: resume.accepted.lines,
        });
    }
    let summary = parsed.map_err(|(line, source)| ForwardError::Read {
        bucket: bucket.clone(),
        key: key.clone(),
        line,
        source,
    })?;
    let session_state = match (joined, sessions) {
        (Some(join), Some(store)) => Some(join.finish(store, object, collected).await?),
        _ => None,
    };
    if summary.empty_trail {
        tracing::warn!(bucket = %bucket, key = %key, "{}", crate::cloudtrail::EMPTY_TRAIL);
    }
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
        skipped_events: summary.skipped_events,
        split_records: summary.split_records,
        redacted_records: summary.redacted,
        sink: stats,
        skipped_lines: resume.skip.min(resume.seen),
        progress_writes: resume.writes(),
        joined_records: index.as_ref().map(|_| summary.joined),
        unjoined_records: index.as_ref().map(|_| summary.unjoined),
        session_state,
        first_record_time: summary.first_time.map(|t| t.to_string()),
        last_record_time: summary.last_time.map(|t| t.to_string()),
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Fetches the object; when that fails for good and the event offered a decoded alternative of
/// a key that looked URL-encoded (EventBridge), tries that once. Returns the body and the key
/// it was read from.
async fn fetch_once_more<F: Fetch>(
    fetch: &F,
    object: &ObjectRef,
) -> Result<(crate::ports::Fetched, String), ForwardError> {
    let failed = |source| ForwardError::Fetch {
        bucket: object.bucket.clone(),
        key: object.key.clone(),
        source,
    };
    let first = match fetch.fetch(object).await {
        Ok(fetched) => return Ok((fetched, object.key.clone())),
        Err(e) => e,
    };
    let Some(alternate) = object.alternate_key.as_ref().filter(|_| !first.retryable) else {
        return Err(failed(first));
    };
    let decoded = ObjectRef {
        key: alternate.clone(),
        alternate_key: None,
        ..object.clone()
    };
    match fetch.fetch(&decoded).await {
        Ok(fetched) => {
            tracing::warn!(bucket = %object.bucket, key = %object.key, decoded = %alternate, "the key as sent could not be read; read its URL-decoded form instead");
            Ok((fetched, alternate.clone()))
        }
        Err(second) => {
            tracing::warn!(bucket = %object.bucket, key = %object.key, decoded = %alternate, error = %second, "neither the key as sent nor its URL-decoded form could be read");
            Err(failed(first))
        }
    }
}

async fn send_all<S: Sink>(
    mut lines: mpsc::Receiver<Lines>,
    mut sink: S,
) -> Result<SinkStats, SinkError> {
    while let Some(batch) = lines.recv().await {
        if batch.broken {
            return Ok(sink.finish_broken().await?.0);
        }
        let mut start = 0;
        while start < batch.bytes.len() {
            start += sink
                .send_run(&batch.bytes[start..])
                .await
                .and_then(resume::took_some)?
                .bytes;
        }
    }
    sink.finish().await
}

/// Runs on a blocking thread: a pipeline loop (`run`, given the emit callback, which takes one
/// line at a time, or runs of NDJSON when `blocks`), its lines handed over in batches. Returns
/// the counts, or the line after which reading failed.
fn parse_into(
    lines: &mpsc::Sender<Lines>,
    blocks: bool,
    run: impl FnOnce(&mut dyn FnMut(&[u8]) -> bool) -> (pipeline::Counts, Result<(), Stopped>),
) -> Result<pipeline::Counts, (u64, io::Error)> {
    let buffers = Buffers::default();
    let mut batch = buffers.lines();
    let (counts, result) = run(&mut |text| {
        if !blocks {
            batch.push(text);
            // A failed send means the sink failed; its error is the one reported.
            return batch.bytes.len() < BATCH_BYTES
                || lines
                    .blocking_send(std::mem::replace(&mut batch, buffers.lines()))
                    .is_ok();
        }
        let mut rest = text;
        while !rest.is_empty() {
            rest = batch.take_from(rest, BATCH_BYTES);
            if batch.bytes.len() >= BATCH_BYTES
                && lines
                    .blocking_send(std::mem::replace(&mut batch, buffers.lines()))
                    .is_err()
            {
                return false;
            }
        }
        true
    });
    // What was parsed before a failure still goes out (Firehose keeps it; the lake drops it).
    if !batch.is_empty() {
        let _ = lines.blocking_send(batch);
    }
    match result {
        Ok(()) | Err(Stopped::Emit) => Ok(counts),
        Err(Stopped::Read(e)) => {
            let _ = lines.blocking_send(Lines::broken());
            Err((counts.lines, e))
        }
    }
}

/// What forwarding needs, built once at start-up: which objects, where their bodies come from,
/// where their records go, and in which format.
pub struct Forwarder<F, M> {
    pub filter: Filter,
    pub fetch: F,
    /// Makes a fresh sink for each object.
    pub make_sink: M,
    /// Format and redaction of the records.
    pub output: Output,
    /// Embedded-metric documents per object (`metrics.rs`); off unless set.
    pub metrics: Metrics,
    /// The function's region (`AWS_REGION`): CloudWatch Logs batches do not name theirs.
    pub region: Option<String>,
    /// `MAX_ATTEMPTS`: failed attempts after which an object is set aside.
    pub max_attempts: u32,
    /// Deadlines and progress timing.
    pub clock: std::sync::Arc<dyn Clock>,
    /// The session join's state (`SESSION_JOIN`); `None`: nothing joined, nothing waits.
    pub sessions: Option<SessionStore>,
}

/// What forwarding one object came to.
#[derive(Debug)]
pub enum Forwarded {
    Sent(Receipt),
    /// Its done marker matches: sent before, by either path.
    AlreadyDone(DoneMarker),
    /// It is set aside: skipped now (`by` is `None`), or set aside by this attempt's failure
    /// (`by`, which the caller does not retry).
    SetAside {
        record: crate::ledger::SetAside,
        by: Option<ForwardError>,
    },
}

impl<F, M> Forwarder<F, M> {
    /// A forwarder with the default output (`raw`, secrets masked).
    pub fn new(filter: Filter, fetch: F, make_sink: M) -> Self {
        Forwarder {
            filter,
            fetch,
            make_sink,
            output: Output::default(),
            metrics: Metrics::off(),
            region: None,
            max_attempts: crate::settings::DEFAULT_MAX_ATTEMPTS,
            clock: std::sync::Arc::new(SystemClock),
            sessions: None,
        }
    }
}

impl<F: Fetch, M: Fn() -> S + Send + Sync, S: Sink> Forwarder<F, M> {
    /// Forwards an object to a fresh sink, without a log line (the backfill's way; its metrics
    /// are emitted).
    pub async fn forward_quietly(&self, object: &ObjectRef) -> Result<Receipt, ForwardError> {
        self.forward_via(object, metrics::Via::Backfill).await
    }

    async fn forward_via(
        &self,
        object: &ObjectRef,
        via: metrics::Via,
    ) -> Result<Receipt, ForwardError> {
        let mut resume = Resume::from_start(&*self.clock);
        self.forward_resumed(object, via, &mut resume, None).await
    }

    /// Forwards `object` as `resume` says, and emits its metrics (none for a stop at the
    /// deadline: the object is not done, nor failed).
    async fn forward_resumed(
        &self,
        object: &ObjectRef,
        via: metrics::Via,
        resume: &mut Resume<'_>,
        opened: Option<crate::ports::Fetched>,
    ) -> Result<Receipt, ForwardError> {
        let default_sources;
        let sources = match &self.filter.cloudtrail {
            Some(sources) => sources,
            None => {
                default_sources = EventSources::default();
                &default_sources
            }
        };
        let result = forward_resuming(
            &self.fetch,
            object,
            sources,
            (self.make_sink)(),
            self.output,
            self.sessions.as_ref(),
            resume,
            opened,
        )
        .await;
        if !matches!(result, Err(ForwardError::Paused { .. })) {
            metrics::emit_outcome(&self.metrics, object, &result, via);
        }
        result
    }

    /// Forwards an object unless the ledger holds it as done for the same ETag, and marks it
    /// done once every record was accepted; with progress, attempts and set-aside records as
    /// [`Forwarder::forward_tracked`] keeps them (the live path, no deadline). The ledger only
    /// saves work: when it cannot be read the object is forwarded anyway, and when the marker
    /// cannot be written the invocation still succeeds (failing it would resend records that
    /// were delivered); at worst the backfill sends the object again, with the same record ids.
    pub async fn forward_once(
        &self,
        object: &ObjectRef,
        ledger: Option<&Ledger>,
    ) -> Result<Forwarded, ForwardError> {
        let Some(ledger) = ledger else {
            return self.forward(object).await.map(Forwarded::Sent);
        };
        self.forward_tracked(object, &Tracking::live(ledger, None))
            .await
    }

    /// Forwards an object (no ledger) and logs its receipt or its failure.
    pub async fn forward(&self, object: &ObjectRef) -> Result<Receipt, ForwardError> {
        let result = self.forward_via(object, metrics::Via::Live).await;
        log_outcome(object, &result);
        result
    }
}

/// Logs an object's receipt, its wait for the sessions of its hour, or its failure.
fn log_outcome(object: &ObjectRef, result: &Result<Receipt, ForwardError>) {
    match result {
        Ok(receipt) => report::object_forwarded(receipt),
        Err(e) if e.is_waiting() => {
            tracing::info!(bucket = %object.bucket, key = %object.key, reason = %e, "waiting for the sessions of its hour")
        }
        Err(e) => {
            tracing::error!(bucket = %object.bucket, key = %object.key, retryable = e.is_retryable(), error = %e, "object failed")
        }
    }
}

pub mod metrics;
#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) mod test_support;
