//! Objects that take more than one attempt: progress within an object, stops at the deadline,
//! failed attempts counted, poison objects set aside. The state objects are the ledger's
//! (`ledger::progress`); this is how forwarding uses them.
//!
//! One attempt at an object ([`Forwarder::forward_tracked`]):
//!
//! 1. a done marker for its ETag: skipped; a set-aside record for its ETag: skipped with one
//!    log line (unless `--retry-set-aside`);
//! 1. the object is claimed (`ledger::claim`) until the stop time plus a minute, and its done
//!    marker read again: a live claim of another attempt is [`ForwardError::Busy`] (retryable,
//!    not an attempt; nothing sent, nothing written); the claim is released when the attempt
//!    ends, whatever its outcome;
//! 2. its progress record for the same ETag and output gives `lines`: those lines are parsed
//!    and rendered again but not sent;
//! 3. while sending, the sink reports the prefix of lines accepted ([`crate::sink::Sink::accepted`]);
//!    progress is written when [`PROGRESS_EVERY_BYTES`] more were accepted, or
//!    [`PROGRESS_EVERY_MS`] passed with at least [`PROGRESS_MIN_BYTES`] more: at most one write
//!    per 10 MiB of payload (or per minute and MiB on a slow stream), none for an object under
//!    1 MiB of payload that completes;
//! 4. between Firehose calls (when one ended, and at each 256 KiB of lines handed over) the
//!    clock is checked against the stop time; past it, sending stops at a call boundary ([`crate::sink::Sink::stop`]:
//!    the calls in flight finish, nothing more is sent), progress is written, and the attempt
//!    ends with [`ForwardError::Paused`] (retryable; not a failed attempt);
//! 5. completed: the done marker is written (it supersedes the progress record); failed: the
//!    progress is written with the attempt counted and the error. After `MAX_ATTEMPTS` counted
//!    failures, or one that no retry can fix, the object is set aside. Failures of the
//!    destination (Firehose throttling or refusing) and stops at the deadline are not the
//!    object's and are not counted.
//!
//! Bounds. Duplicates per attempt: the lines of the calls in flight when it ended (with one
//! call in flight, at most one 4 MiB call), plus what was accepted since the last progress
//! write when the process died without writing (at most 10 MiB, or a minute of sending).
//! State writes per object: one progress write per 10 MiB of accepted payload (or minute),
//! one at each stop or failure, the done marker, the claim and its release; reads: done marker
//! (twice: before and after the claim), set-aside record, claim and progress record, once per
//! attempt.
//!
//! A record cut by a failed read (its id ends in `-cut`) is sent, but progress never passes its
//! first line: the retry reads the whole record at that place and must send it.

use memchr::memmem;
use tokio::sync::mpsc;

use super::{metrics, Forwarded, Forwarder, Lines, Receipt};
use crate::forward::ForwardError;
use crate::ledger::{
    new_holder, ClaimOutcome, DoneMarker, HeldClaim, Ledger, Progress, SetAside, CLAIM_MARGIN_MS,
    MAX_CLAIM_MS, PROGRESS_EVERY_BYTES, PROGRESS_EVERY_MS, PROGRESS_MIN_BYTES,
};
use crate::pipeline::Output;
use crate::ports::{Clock, Fetch, Fetched, ObjectRef, StateError};
use crate::sink::{Accepted, Sink, SinkError, SinkStats, Taken};
use crate::time::rfc3339_ms;

/// Most time kept before the Lambda deadline when an object is sent live: the call in flight
/// (one 4 MiB call takes about a second at the default quota; its retries could take longer,
/// then the last progress write stands) and the progress write. A short invocation keeps a fifth
/// of its time instead ([`live_margin_ms`]), so a function with a short timeout still sends.
pub const LIVE_MARGIN_MS: i64 = 10_000;

/// The margin kept before `deadline_ms` by an invocation with `left_ms` to go: a fifth of the
/// time left, at most [`LIVE_MARGIN_MS`].
pub fn live_margin_ms(left_ms: i64) -> i64 {
    (left_ms.max(0) / 5).min(LIVE_MARGIN_MS)
}

/// Longest error message kept in a record (`ledger::check` refuses longer ones).
const MAX_ERROR_BYTES: usize = crate::ledger::check::MAX_ERROR_BYTES;

/// How an attempt is tracked in the state store.
#[derive(Clone, Copy)]
pub struct Tracking<'a> {
    pub ledger: &'a Ledger,
    /// Stop sending at this instant (ms since the epoch), at a call boundary.
    pub stop_at_ms: Option<i64>,
    /// `stop_at_ms` is the Lambda deadline: stop [`live_margin_ms`] of the time left before it,
    /// as read on the attempt's clock when it starts.
    pub before_deadline: bool,
    pub via: metrics::Via,
    /// Forward objects even when set aside (`backfill --retry-set-aside`).
    pub retry_set_aside: bool,
    /// Read the done marker first (the backfill reads it itself).
    pub check_done: bool,
    /// The clock `stop_at_ms` is read on; `None`: the forwarder's.
    pub clock: Option<&'a dyn Clock>,
}

impl<'a> Tracking<'a> {
    /// The live path: done marker checked, set-aside objects skipped, stopping at
    /// `deadline_ms` minus the margin ([`live_margin_ms`] of the time left now).
    pub fn live(ledger: &'a Ledger, deadline_ms: Option<i64>) -> Tracking<'a> {
        Tracking {
            ledger,
            stop_at_ms: deadline_ms,
            before_deadline: true,
            via: metrics::Via::Live,
            retry_set_aside: false,
            check_done: true,
            clock: None,
        }
    }

    fn via_name(&self) -> &'static str {
        match self.via {
            metrics::Via::Live => "live",
            metrics::Via::Backfill => "backfill",
        }
    }
}

/// One attempt's view of the object's lines: what to skip, when to stop, how far it got.
pub(crate) struct Resume<'a> {
    /// Lines an earlier attempt had accepted: parsed, not sent.
    pub(crate) skip: u64,
    pub(crate) stop_at_ms: Option<i64>,
    clock: &'a dyn Clock,
    saver: Option<Saver<'a>>,
    /// Lines the parser handed over so far, skipped ones included.
    pub(crate) seen: u64,
    /// The prefix of the object's lines accepted, skipped ones included.
    pub(crate) accepted: Accepted,
    /// First line of a record cut by a failed read: progress stops before it.
    cut_at: Option<u64>,
    /// Sending stopped at the deadline.
    pub(crate) paused: bool,
}

/// Writes progress records at a bounded rate.
struct Saver<'a> {
    ledger: &'a Ledger,
    record: Progress,
    saved: Accepted,
    saved_at_ms: i64,
    writes: u64,
}

impl<'a> Resume<'a> {
    /// From the first line, no deadline, nothing saved.
    pub(crate) fn from_start(clock: &'a dyn Clock) -> Resume<'a> {
        Resume {
            skip: 0,
            stop_at_ms: None,
            clock,
            saver: None,
            seen: 0,
            accepted: Accepted::default(),
            cut_at: None,
            paused: false,
        }
    }

    /// Whether the stop time has come.
    fn past_stop(&self) -> bool {
        self.stop_at_ms
            .is_some_and(|stop| self.clock.now_ms() >= stop)
    }

    /// Progress records written so far.
    pub(crate) fn writes(&self) -> u64 {
        self.saver.as_ref().map_or(0, |s| s.writes)
    }

    /// The accepted prefix: the skipped lines plus what the sink accepted, never past a cut
    /// record.
    fn update(&mut self, base: Accepted, sink: Accepted) {
        let mut lines = base.lines + sink.lines;
        if let Some(cut) = self.cut_at {
            lines = lines.min(cut.max(base.lines));
        }
        self.accepted = Accepted {
            lines,
            bytes: (base.bytes + sink.bytes).max(lines),
        };
    }

    /// Writes the progress when due (or `force`d) and something new was accepted. A failed
    /// write is logged: the next attempt then resends more, nothing is lost.
    async fn save(&mut self, force: bool) {
        let accepted = self.accepted;
        let now = self.clock.now_ms();
        let Some(saver) = &mut self.saver else {
            return;
        };
        if accepted.lines <= saver.saved.lines {
            return;
        }
        let new_bytes = accepted.bytes.saturating_sub(saver.saved.bytes);
        let due = force
            || new_bytes >= PROGRESS_EVERY_BYTES
            || (now - saver.saved_at_ms >= PROGRESS_EVERY_MS && new_bytes >= PROGRESS_MIN_BYTES);
        if !due {
            return;
        }
        saver.record.lines = accepted.lines;
        saver.record.payload_bytes = accepted.bytes;
        saver.record.updated_at = rfc3339_ms(now);
        match saver.ledger.save_progress(&saver.record).await {
            Ok(()) => {
                saver.saved = accepted;
                saver.saved_at_ms = now;
                saver.writes += 1;
            }
            Err(e) => {
                tracing::warn!(bucket = %saver.record.bucket, key = %saver.record.key, lines = accepted.lines, error = %e, "cannot save the progress; a retry resends from the last saved point")
            }
        }
    }
}

/// The ids of records cut by a failed read end with this (`output::CUT_ID_SUFFIX`, then the
/// closing quote). A string value that happens to end so only stops progress early.
fn cut_pattern() -> Vec<u8> {
    let mut pattern = crate::output::CUT_ID_SUFFIX.as_bytes().to_vec();
    pattern.push(b'"');
    pattern
}

/// Sends the lines after the first `resume.skip` to `sink`, saving progress, stopping at the
/// stop time; see the module documentation.
pub(crate) async fn send_resuming<S: Sink>(
    mut lines: mpsc::Receiver<Lines>,
    mut sink: S,
    resume: &mut Resume<'_>,
) -> Result<SinkStats, SinkError> {
    let base = resume.accepted;
    let pattern = cut_pattern();
    let cut = memmem::Finder::new(&pattern);
    let mut last = Accepted::default();
    let mut stopping = false;
    let mut broken = false;
    'receive: while let Some(batch) = lines.recv().await {
        if batch.broken {
            broken = true;
            break;
        }
        let text = batch.bytes.as_slice();
        let mut start = 0;
        // Lines an earlier attempt had accepted: counted, not sent (only a retry's first
        // batches have any).
        while resume.seen < resume.skip && start < text.len() {
            let end = memchr::memchr(b'\n', &text[start..]).map_or(text.len(), |i| start + i);
            start = (end + 1).min(text.len());
            resume.seen += 1;
        }
        let rest = &text[start..];
        if resume.cut_at.is_none() {
            // The first line to send with a cut id: one search over the rest of the batch.
            if let Some(at) = cut.find(rest) {
                let before = memchr::memchr_iter(b'\n', &rest[..at]).count() as u64;
                resume.cut_at = Some(resume.seen + before);
            }
        }
        // The rest goes in runs: the sink hands back after each call that ended, so progress
        // is saved and the deadline checked between calls, as line by line.
        while start < text.len() {
            let sent = sink.send_run(&text[start..]).await.and_then(took_some);
            if let Ok(taken) = sent {
                resume.seen += taken.lines;
                start += taken.bytes;
            }
            let accepted = sink.accepted();
            let call_ended = accepted != last;
            if call_ended {
                last = accepted;
                resume.update(base, accepted);
                resume.save(false).await;
            }
            if let Err(e) = sent {
                // Stopped, not dropped: a destination holding uploads open (the lake's) aborts
                // them instead of leaving them to a lifecycle rule.
                drop(lines);
                let _ = sink.stop().await;
                return Err(e);
            }
            if call_ended && resume.past_stop() {
                stopping = true;
                break 'receive;
            }
        }
        if resume.past_stop() {
            stopping = true;
            break;
        }
    }
    if stopping {
        // The parser stops when its channel closes.
        drop(lines);
        let (stats, accepted) = sink.stop().await?;
        resume.update(base, accepted);
        resume.paused = true;
        resume.save(true).await;
        return Ok(stats);
    }
    if broken {
        // Reading failed: the input is retried. What the sink kept of its lines counts.
        let (stats, accepted) = sink.finish_broken().await?;
        resume.update(base, accepted);
        return Ok(stats);
    }
    let stats = sink.finish().await?;
    resume.update(
        base,
        Accepted {
            lines: stats.lines,
            bytes: stats.payload_bytes,
        },
    );
    Ok(stats)
}

/// A sink's answer to [`Sink::send_run`] on a run that is not empty: at least one line taken.
pub(super) fn took_some(taken: Taken) -> Result<Taken, SinkError> {
    if taken.bytes == 0 {
        Err(SinkError::Internal("the sink took no line of a run".into()))
    } else {
        Ok(taken)
    }
}

/// `output` as a progress record names it.
fn output_name(output: Output) -> String {
    if output.redact {
        output.format.as_str().to_string()
    } else {
        format!("{}+unmasked", output.format.as_str())
    }
}

/// `text` cut to at most `max` bytes on a character boundary.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// A state read that failed: logged, and the object handled as if the record were absent.
fn absent_on_error<T>(
    read: Result<Option<T>, StateError>,
    object: &ObjectRef,
    what: &str,
) -> Option<T> {
    match read {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(bucket = %object.bucket, key = %object.key, error = %e, "cannot read the {what}; going on as if there were none");
            None
        }
    }
}

impl<F: Fetch, M: Fn() -> S + Send + Sync, S: Sink> Forwarder<F, M> {
    /// One tracked attempt at `object`; see the module documentation. `Err` is an attempt that
    /// failed and was not set aside (try again later), or [`ForwardError::Paused`].
    pub async fn forward_tracked(
        &self,
        object: &ObjectRef,
        tracking: &Tracking<'_>,
    ) -> Result<Forwarded, ForwardError> {
        let ledger = tracking.ledger;
        // An event without an ETag (a Batch Operations task): the object is opened first and
        // the store's ETag used for the checks; the body opened is the one sent, so each
        // attempt makes one GET, and an object found done has its body dropped unread.
        let mut opened = None;
        let resolved;
        let object = match &object.etag {
            Some(_) => object,
            None => {
                let (fetched, key) = match super::fetch_once_more(&self.fetch, object).await {
                    Ok(found) => found,
                    Err(e) => {
                        let failed = Err(e);
                        metrics::emit_outcome(&self.metrics, object, &failed, tracking.via);
                        super::log_outcome(object, &failed);
                        return failed.map(Forwarded::Sent);
                    }
                };
                resolved = ObjectRef {
                    key,
                    alternate_key: None,
                    etag: fetched.etag.clone(),
                    size: fetched.size.or(object.size),
                    ..object.clone()
                };
                opened = Some(fetched);
                &resolved
            }
        };
        // The store named no ETag either: nothing to match a record with; forwarding is the
        // safe side.
        let Some(etag) = object.etag.clone() else {
            let mut resume = Resume::from_start(&*self.clock);
            let receipt = self
                .forward_resumed(object, tracking.via, &mut resume, opened)
                .await;
            super::log_outcome(object, &receipt);
            return receipt.map(Forwarded::Sent);
        };
        let (bucket, key) = (&object.bucket, &object.key);
        if tracking.check_done {
            let done = ledger.done(bucket, key, &etag).await;
            if let Some(marker) = absent_on_error(done, object, "done marker") {
                tracing::info!(bucket = %bucket, key = %key, etag = %etag, done_at = %marker.done_at, via = %marker.via, "skipped object: already forwarded");
                self.metrics.emit(&metrics::skipped_document(object));
                return Ok(Forwarded::AlreadyDone(marker));
            }
        }
        if !tracking.retry_set_aside {
            let aside = ledger.set_aside(bucket, key, &etag).await;
            if let Some(record) = absent_on_error(aside, object, "set-aside record") {
                tracing::warn!(bucket = %bucket, key = %key, etag = %etag, attempts = record.attempts, last_error = %record.last_error, "skipped object: set aside (backfill --retry-set-aside tries it again)");
                return Ok(Forwarded::SetAside { record, by: None });
            }
        }
        let claimed = self.claim(object, &etag, tracking).await?;
        if claimed.is_some() {
            // Another attempt may have finished the object between the first read and the
            // claim: this read, made while holding it, is the one that counts.
            let done = ledger.done(bucket, key, &etag).await;
            if let Some(marker) = absent_on_error(done, object, "done marker") {
                self.release(ledger, claimed.as_ref()).await;
                tracing::info!(bucket = %bucket, key = %key, etag = %etag, done_at = %marker.done_at, via = %marker.via, "skipped object: already forwarded");
                self.metrics.emit(&metrics::skipped_document(object));
                return Ok(Forwarded::AlreadyDone(marker));
            }
        }
        let result = self.forward_claimed(object, &etag, tracking, opened).await;
        self.release(ledger, claimed.as_ref()).await;
        result
    }

    /// Claims the object for this attempt until the stop time plus the margin. `Ok(None)`: the
    /// claim could not be read or written (the ledger only saves work: the object is sent
    /// anyway); `Err`: [`ForwardError::Busy`].
    async fn claim(
        &self,
        object: &ObjectRef,
        etag: &str,
        tracking: &Tracking<'_>,
    ) -> Result<Option<HeldClaim>, ForwardError> {
        let clock: &dyn Clock = tracking.clock.unwrap_or(&*self.clock);
        let expires_at_ms = match tracking.stop_at_ms {
            Some(stop) => stop.saturating_add(CLAIM_MARGIN_MS),
            None => clock.now_ms().saturating_add(MAX_CLAIM_MS),
        };
        let (bucket, key) = (&object.bucket, &object.key);
        let taken = tracking
            .ledger
            .take_claim(bucket, key, etag, &new_holder(), expires_at_ms)
            .await;
        match taken {
            Ok(ClaimOutcome::Taken(held)) => {
                if let Some(refused) = &held.refused {
                    tracing::warn!(bucket = %bucket, key = %key, error = %refused, "refused claim taken over");
                }
                if let Some(from) = &held.took_over_from {
                    tracing::info!(bucket = %bucket, key = %key, from = %from, "took over an expired claim: its holder stopped without releasing it");
                }
                Ok(Some(held))
            }
            Ok(ClaimOutcome::Busy {
                holder,
                expires_at_ms,
            }) => {
                tracing::info!(bucket = %bucket, key = %key, holder = %holder, until = %rfc3339_ms(expires_at_ms), "object busy: another invocation is sending it; retried later");
                Err(ForwardError::Busy {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    until: rfc3339_ms(expires_at_ms),
                })
            }
            Err(e) => {
                tracing::warn!(bucket = %bucket, key = %key, error = %e, "cannot claim the object; sending it unclaimed");
                Ok(None)
            }
        }
    }

    /// Releases the claim; a failure is logged (it expires by itself).
    async fn release(&self, ledger: &Ledger, held: Option<&HeldClaim>) {
        let Some(held) = held else {
            return;
        };
        if let Err(e) = ledger.release_claim(held).await {
            tracing::warn!(bucket = %held.claim.bucket, key = %held.claim.key, error = %e, "cannot release the claim; it expires by itself");
        }
    }

    /// The attempt once the object is claimed: progress, sending, done marker or failure.
    async fn forward_claimed(
        &self,
        object: &ObjectRef,
        etag: &str,
        tracking: &Tracking<'_>,
        opened: Option<Fetched>,
    ) -> Result<Forwarded, ForwardError> {
        let ledger = tracking.ledger;
        let (bucket, key) = (&object.bucket, &object.key);
        let etag = etag.to_string();
        let output = output_name(self.output);
        let progress = absent_on_error(
            ledger.progress(bucket, key, &etag).await,
            object,
            "progress record",
        );
        let mut record = progress.unwrap_or_else(|| Progress {
            bucket: bucket.clone(),
            key: key.clone(),
            etag: etag.clone(),
            lines: 0,
            payload_bytes: 0,
            output: output.clone(),
            attempts: 0,
            last_error: None,
            updated_at: String::new(),
        });
        if record.output != output {
            // Lines of another output do not line up with these: start over, keep the count.
            record.lines = 0;
            record.payload_bytes = 0;
            record.output = output;
        }
        let start = Accepted {
            lines: record.lines,
            bytes: record.payload_bytes,
        };
        if start.lines > 0 {
            tracing::info!(bucket = %bucket, key = %key, lines = start.lines, attempts = record.attempts, "resuming object after the lines already accepted");
        }
        let clock: &dyn Clock = tracking.clock.unwrap_or(&*self.clock);
        let mut resume = Resume::from_start(clock);
        resume.skip = start.lines;
        resume.accepted = start;
        resume.stop_at_ms = match tracking.stop_at_ms {
            Some(deadline) if tracking.before_deadline => {
                Some(deadline - live_margin_ms(deadline - clock.now_ms()))
            }
            stop => stop,
        };
        resume.saver = Some(Saver {
            ledger,
            record: record.clone(),
            saved: start,
            saved_at_ms: clock.now_ms(),
            writes: 0,
        });
        let result = self
            .forward_resumed(object, tracking.via, &mut resume, opened)
            .await;
        match result {
            Ok(receipt) => {
                if resume.seen < resume.skip {
                    tracing::warn!(bucket = %bucket, key = %key, lines = resume.seen, progress = resume.skip, "the progress record counted more lines than the object has");
                }
                if matches!(tracking.via, metrics::Via::Live) {
                    crate::report::object_forwarded(&receipt);
                }
                self.mark_done(ledger, &receipt, &etag, tracking).await;
                Ok(Forwarded::Sent(receipt))
            }
            Err(e @ ForwardError::Paused { .. }) => {
                tracing::info!(bucket = %bucket, key = %key, lines = resume.accepted.lines, "stopped before the deadline; the next attempt goes on from there");
                Err(e)
            }
            Err(e) if e.is_waiting() => {
                tracing::info!(bucket = %bucket, key = %key, reason = %e, "waiting for the sessions of its hour; the next attempt joins them");
                Err(e)
            }
            Err(e) => {
                if matches!(tracking.via, metrics::Via::Live) {
                    tracing::error!(bucket = %bucket, key = %key, retryable = e.is_retryable(), error = %e, "object failed");
                }
                self.on_failure(object, &etag, record, &resume, e, tracking)
                    .await
            }
        }
    }

    /// Writes the done marker; a failure is logged (the backfill may send the object again).
    async fn mark_done(
        &self,
        ledger: &Ledger,
        receipt: &Receipt,
        etag: &str,
        tracking: &Tracking<'_>,
    ) {
        let marker = DoneMarker {
            bucket: receipt.bucket.clone(),
            key: receipt.key.clone(),
            etag: receipt.etag.clone().unwrap_or_else(|| etag.to_string()),
            done_at: rfc3339_ms(self.clock.now_ms()),
            records: receipt.records,
            via: tracking.via_name().into(),
        };
        if let Err(e) = ledger.mark_done(&marker).await {
            tracing::warn!(bucket = %receipt.bucket, key = %receipt.key, error = %e, "forwarded, but the done marker could not be written; the object may be sent again");
        }
    }

    /// A failed attempt: progress saved with the attempt counted (when it is the object's), and
    /// the object set aside when its attempts ran out or no retry can help.
    async fn on_failure(
        &self,
        object: &ObjectRef,
        etag: &str,
        mut record: Progress,
        resume: &Resume<'_>,
        error: ForwardError,
        tracking: &Tracking<'_>,
    ) -> Result<Forwarded, ForwardError> {
        let counts = error.counts_as_attempt();
        let advanced = resume.accepted.lines > record.lines;
        if !counts && !advanced {
            return Err(error);
        }
        record.lines = record.lines.max(resume.accepted.lines);
        record.payload_bytes = record
            .payload_bytes
            .max(resume.accepted.bytes)
            .max(record.lines);
        record.updated_at = rfc3339_ms(self.clock.now_ms());
        if counts {
            record.attempts = record.attempts.saturating_add(1);
            record.last_error = Some(truncate(error.to_string(), MAX_ERROR_BYTES));
        }
        if let Err(e) = tracking.ledger.save_progress(&record).await {
            tracing::warn!(bucket = %object.bucket, key = %object.key, error = %e, "cannot save the progress and the failed attempt");
        }
        let final_error = !error.is_retryable();
        if !counts || (!final_error && record.attempts < self.max_attempts) {
            return Err(error);
        }
        let aside = SetAside {
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            etag: etag.to_string(),
            attempts: record.attempts,
            last_error: truncate(error.to_string(), MAX_ERROR_BYTES),
            retryable: !final_error,
            set_aside_at: rfc3339_ms(self.clock.now_ms()),
            via: tracking.via_name().into(),
        };
        if let Err(e) = tracking.ledger.mark_set_aside(&aside).await {
            tracing::warn!(bucket = %object.bucket, key = %object.key, error = %e, "cannot write the set-aside record; the object will be tried again");
            return Err(error);
        }
        tracing::error!(bucket = %object.bucket, key = %object.key, attempts = aside.attempts, retryable = aside.retryable, error = %error, "object set aside: no more attempts until backfill --retry-set-aside");
        self.metrics
            .emit(&metrics::set_aside_document(object, &aside));
        Ok(Forwarded::SetAside {
            record: aside,
            by: Some(error),
        })
    }
}

#[cfg(test)]
#[path = "resume_tests.rs"]
mod tests;
