//! The scheduled backfill: walks the day partitions under the audit prefix in (last-modified,
//! key) order from a saved cursor, forwarding every audit log the ledger does not hold as done.
//!
//! One run ([`Backfill::run`]):
//!
//! 1. takes the lease (unless it is a dry run); when another walker holds it, returns at once
//!    with `stopped: "lease_held"`;
//! 2. finds the partition trees (`.../YYYY/MM/DD/` roots) under `AUDIT_PREFIX`: the prefix itself,
//!    or, for a prefix that stops at or above `AWSLogs/`, every `AWSLogs/<account>/redshift/<region>/`
//!    below it (delimiter listings). Each tree has its own cursor; trees are walked least advanced
//!    first;
//! 3. walks each tree's days from the first day (below) up to today in UTC, listing each day with
//!    `ListObjectsV2` (all pages of 1,000 keys) and keeping the keys [`Filter::select`] accepts
//!    whose file time passes the start time ([`starts_in_time`]);
//! 4. forwards the objects in (last-modified, key) order, skipping those with a done marker for
//!    the same ETag; after each forwarded object it writes the done marker and then the cursor
//!    (two state writes per object, none for an object found done, and one more per tree when
//!    a walk ends with the cursor's resume day moved);
//! 5. stops before starting an object when the time left is below the margin ([`margin_ms`]),
//!    and inside an object between Firehose calls [`IN_OBJECT_MARGIN_MS`] before the deadline
//!    (its progress saved, the cursor pinned before it: the next run goes on from the line
//!    where it stopped; `forward::resume`); saves the cursor, releases the lease, and reports one
//!    [`Summary`]. A run so ends within its limit plus the one call in flight.
//!
//! What the walk does with each object it decided on is one of three: forwarded (above), sent
//! as a message to the backfill queue (`fanout.rs`, with [`Backfill::queue`]: the cursor passes
//! an object once its message was taken), or written as a line of an S3 Batch Operations
//! manifest (`manifest.rs`, [`Backfill::manifest`]: a dry run whose objects become lines). The
//! walk itself (`walk.rs`) and one object's handling (`object.rs`) are the same for all three.
//!
//! Objects set aside (failed `MAX_ATTEMPTS` times, or once for good; `forward::resume`) are
//! skipped with one log line and counted in [`Summary::skipped_set_aside`]; a failure that sets
//! one aside counts as failed once and the cursor passes it. `--dry-run` lists every set-aside
//! record (a JSON line each and [`Summary::set_aside_objects`]); `--retry-set-aside` tries each
//! once more before the walk (records of objects done since are passed over).
//!
//! The first day is the `since` of a manual run, else the cursor's resume day minus
//! `BACKFILL_LOOKBACK_DAYS`, else the day of `BACKFILL_START_TIME`, else the earliest day in the
//! tree (found by listing years, months and days). The resume day is the first partition that
//! may still hold an object not handled: the day a complete walk ended on (today then), or the
//! earliest partition an interrupted walk left an object in, or a failed object's partition. A
//! start time never lets the look-back reach files before it. A manual run from a time after
//! the resume day moves neither the resume day nor the position, so the scheduled walk still
//! covers the days in between.
//!
//! Order across days: a file is never written before its partition day begins, so once days up
//! to D are listed, every object last modified before D+1 00:00 is known and those are forwarded
//! in order while later days are still unlisted. The walk lists only as far as it forwards,
//! which keeps memory and listing bounded on a years-long first run. (A bucket whose files were
//! all copied in recently breaks that assumption harmlessly: everything is held until the last
//! day is listed.)
//!
//! What is skipped without reading its marker: objects before the cursor by more than
//! [`CURSOR_GRACE_MS`]. Everything else in the walked days is checked against the ledger, so an
//! object that lands late, or in the same second as the cursor with a smaller key, is still sent.
//!
//! Failures: a sink failure (Firehose refusing or throttling past the retries) saves the
//! object's progress and stops the walk,
//! since every later object would fail the same way. A failure of one object (unreadable body,
//! deleted, denied) is reported and the walk goes on, but a retryable one pins the cursor before
//! it, so the next run tries it again. A crash mid-object leaves no marker and no cursor past it:
//! the next run sends that object again, with the same record ids.
//!
//! State that cannot be trusted (see `ledger::check`): a corrupt or forged done marker counts as
//! absent (the object is sent again) and is logged at WARN; a corrupt or forged cursor or lease
//! stops the run with [`BackfillError::is_state_refused`], naming the key to delete. Both are
//! counted in [`Summary::state_refused`]. No walk lists days before 2012 (`EARLIEST_DAY`).

mod discover;
mod fanout;
pub mod freshness;
mod manifest;
mod object;
mod pending;
mod rules;
mod summary;
mod walk;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::events::BackfillRequest;
use crate::forward::Forwarder;
use crate::ledger::{Cursor, HeldLease, LeaseOutcome, Ledger, Position, Versioned};
use crate::ports::{Clock, Fetch, ListObjects, Queue};
use crate::sink::Sink;
use crate::time::parse_rfc3339_ms as rfc3339_to_ms;
use crate::time::rfc3339_ms;

pub use crate::time::{day_label, day_of, MS_PER_DAY};
pub use freshness::{Freshness, NewestFile};
pub use rules::{
    day_folder, first_day_for_cursor, first_day_for_start, is_behind_cursor, margin_ms,
    starts_in_time,
};
use summary::Halt;
pub use summary::{BackfillError, Event, Stopped, Summary};

/// A file name's time has minute resolution (`...T00:53`): the file may hold records up to the
/// end of that minute, so a file is kept when its time plus this is after the start time.
pub const FILE_TIME_SLACK_MS: i64 = 60_000;

/// Objects sorting before the cursor but last modified less than this before it are still
/// checked against the ledger: S3 stamps last-modified to the second, with the time a PUT
/// started, so an object listed after the cursor moved can sort before it.
pub const CURSOR_GRACE_MS: i64 = 15 * 60_000;

/// Most margin kept before the deadline: enough for a large user activity log (about 50 MB of
/// text, a few hundred Firehose calls at the stream's default 5 MiB/s).
pub const MAX_MARGIN_MS: i64 = 60_000;

/// Time kept before the deadline when an object is stopped partway: the call in flight ends
/// after it, then the progress, the cursor and the lease are written.
pub const IN_OBJECT_MARGIN_MS: i64 = 2_000;

/// A lease lives this long unless renewed: longer than the longest Lambda run (15 minutes), so
/// a Lambda walker never needs to renew; the command line renews it between objects.
pub const LEASE_TTL_MS: i64 = 16 * 60_000;

/// A lease outlives its holder's deadline by this much: the walker is gone by then for sure.
pub const LEASE_SLACK_MS: i64 = 60_000;

// The ledger refuses leases running longer than this walk ever writes.
const _: () = assert!(LEASE_TTL_MS + LEASE_SLACK_MS <= crate::ledger::MAX_LEASE_MS);

/// Errors kept word for word in the summary; the rest are counted.
const MAX_REPORTED_ERRORS: usize = 10;

/// Deepest discovery below the prefix: `AWSLogs/<account>/redshift/<region>/` plus one custom
/// folder above it.
const MAX_DISCOVERY_DEPTH: usize = 5;

// --- the walk --------------------------------------------------------------------------------

/// Everything a walk needs besides the forwarder (which brings the filter, the fetch and the sink).
#[derive(Clone)]
pub struct Backfill {
    /// `AUDIT_BUCKET`.
    pub bucket: String,
    /// `AUDIT_PREFIX`.
    pub prefix: String,
    /// `BACKFILL_START_TIME`, in milliseconds since the epoch.
    pub start_time_ms: Option<i64>,
    /// `BACKFILL_LOOKBACK_DAYS`.
    pub lookback_days: u32,
    pub ledger: Ledger,
    pub list: Arc<dyn ListObjects>,
    pub clock: Arc<dyn Clock>,
    /// `BACKFILL_QUEUE_URL` (or `backfill --enqueue`): objects are sent to this queue as
    /// messages instead of being forwarded (`fanout.rs`).
    pub queue: Option<Arc<dyn Queue>>,
}

/// One run's options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Walk from this time (ms) instead of the cursor: every selected file at or after it that
    /// is not done is sent. The cursor still only moves forward.
    pub since_ms: Option<i64>,
    /// List what would be sent; send nothing, write no state, take no lease.
    pub dry_run: bool,
    /// Stop before this instant (ms since the epoch): the Lambda deadline or `--max-duration`.
    pub deadline_ms: Option<i64>,
    /// Stop after sending this many objects (tests, and runs by hand that want a small step).
    pub max_objects: Option<u64>,
    /// Who holds the lease: unique per run.
    pub owner: String,
    /// Try the set-aside objects once more before the walk; a dry run lists them anyway.
    pub retry_set_aside: bool,
}

impl RunOptions {
    /// Options for an invocation's request.
    pub fn from_request(
        request: &BackfillRequest,
        deadline_ms: Option<i64>,
    ) -> Result<RunOptions, BackfillError> {
        let since_ms = match &request.since {
            None => None,
            // Bounded like `--since` and BACKFILL_START_TIME: a time before Redshift audit
            // logging began or in the future is a mistake, not a walk of nothing.
            Some(text) => {
                crate::settings::bounded_start_time(text, crate::time::now_ms())
                    .map_err(|reason| BackfillError::Request(format!("since: {reason}")))?;
                Some(rfc3339_to_ms(text).map_err(|reason| {
                    BackfillError::Request(format!(
                        "since {text:?} is not an RFC 3339 time: {reason}"
                    ))
                })?)
            }
        };
        Ok(RunOptions {
            since_ms,
            dry_run: request.dry_run,
            deadline_ms,
            max_objects: None,
            owner: new_owner(),
            retry_set_aside: request.retry_set_aside,
        })
    }
}

/// A lease owner id unique to this run: process, time and a counter.
pub fn new_owner() -> String {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let nanos = crate::time::now_ms();
    let host = std::env::var("AWS_LAMBDA_LOG_STREAM_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "local".into());
    format!(
        "{host}/{}/{nanos:x}/{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    )
}

/// One run's mutable state.
struct Run<'r> {
    options: &'r RunOptions,
    summary: Summary,
    lease: Option<HeldLease>,
    started_ms: i64,
    slowest_ms: i64,
    on_event: &'r mut (dyn FnMut(Event<'_>) + Send),
    /// Objects waiting for the fan-out's next `SendMessageBatch` call.
    batch: Vec<fanout::Queued>,
    /// Where a manifest run writes its lines (`manifest.rs`).
    manifest: Option<&'r mut (dyn std::io::Write + Send + 'r)>,
}

impl Run<'_> {
    /// State calls made on the run's behalf, as the ledger counted them.
    fn count_calls(&mut self, calls: crate::ledger::traffic::Calls) {
        self.summary.state_reads += calls.reads;
        self.summary.state_writes += calls.writes;
    }
}

/// One tree's cursor as the walk moves it.
struct TreeCursor {
    tree: String,
    /// The folders under the tree, as discovery listed them.
    years: Vec<String>,
    stored: Option<Versioned<Cursor>>,
    /// The last object passed, in (last-modified, key) order.
    position: Option<Position>,
    /// The first partition day that may still hold an object this walk has not handled.
    resume_day: Option<i64>,
    /// Earliest partition day of an object that failed in a way worth retrying; while set, the
    /// position stays before that object.
    pinned_day: Option<i64>,
    /// A manual run that started after the stored resume day must not move it past days it did
    /// not walk.
    floor_day: Option<i64>,
}

impl Backfill {
    /// One backfill run; see the module documentation. Object failures are counted in the
    /// summary (check [`Summary::is_failure`]); an error means the walk could not go on (listing
    /// or state failed) after the cursor and lease were saved as far as possible.
    pub async fn run<F, M, S>(
        &self,
        forwarder: &Forwarder<F, M>,
        options: &RunOptions,
        on_event: &mut (dyn FnMut(Event<'_>) + Send),
    ) -> Result<Summary, BackfillError>
    where
        F: Fetch,
        M: Fn() -> S + Send + Sync,
        S: Sink,
    {
        self.run_writing(forwarder, options, None, on_event).await
    }

    /// [`Backfill::run`], writing a manifest line for each object a dry run would send.
    async fn run_writing<'r, F, M, S>(
        &self,
        forwarder: &Forwarder<F, M>,
        options: &'r RunOptions,
        manifest: Option<&'r mut (dyn std::io::Write + Send + 'r)>,
        on_event: &'r mut (dyn FnMut(Event<'_>) + Send + 'r),
    ) -> Result<Summary, BackfillError>
    where
        F: Fetch,
        M: Fn() -> S + Send + Sync,
        S: Sink,
    {
        let started_ms = self.clock.now_ms();
        let mut run = Run {
            options,
            summary: Summary {
                dry_run: options.dry_run,
                ..Summary::default()
            },
            lease: None,
            started_ms,
            slowest_ms: 0,
            on_event,
            batch: Vec::new(),
            manifest,
        };
        if !options.dry_run {
            let expires = self.lease_expiry(options, started_ms);
            run.summary.state_reads += 1;
            run.summary.state_writes += 1;
            let acquired = self
                .ledger
                .acquire_lease(&options.owner, started_ms, expires)
                .await;
            let acquired = match acquired {
                Ok(acquired) => acquired,
                Err(e) => {
                    let e = BackfillError::from(e);
                    run.summary.fail(&e);
                    let summary = self.finish(run);
                    tracing::error!(summary = %serde_json::to_string(&summary).unwrap_or_default(), error = %e, "backfill could not take the lease");
                    return Err(e);
                }
            };
            match acquired {
                LeaseOutcome::Acquired(held) => {
                    run.summary.took_over_from = held.took_over_from.clone();
                    run.lease = Some(held);
                }
                LeaseOutcome::Held {
                    owner,
                    expires_at_ms,
                } => {
                    run.summary.stopped = Stopped::LeaseHeld;
                    run.summary.lease_owner = Some(owner);
                    run.summary.lease_expires_at = Some(rfc3339_ms(expires_at_ms));
                    return Ok(self.finish(run));
                }
            }
        }
        let walked = self.walk(forwarder, &mut run).await;
        let mut outcome = match walked {
            Ok(()) => Ok(()),
            Err(Halt::Stop(stopped)) => {
                run.summary.stopped = stopped;
                Ok(())
            }
            Err(Halt::Error(e)) => {
                run.summary.fail(&e);
                Err(e)
            }
        };
        if let Some(held) = run.lease.take() {
            let now = self.clock.now_ms();
            run.summary.state_writes += 1;
            if let Err(e) = self.ledger.release_lease(&held, now).await {
                // The lease runs out by itself; the walk's work is saved already.
                tracing::warn!(error = %e, "could not release the backfill lease; it expires at {}", rfc3339_ms(held.lease.expires_at_ms));
                if outcome.is_ok() {
                    run.summary.error(format!("releasing the lease: {e}"));
                }
            }
        }
        let summary = self.finish(run);
        if !summary.dry_run {
            for document in freshness::run_documents(&summary) {
                forwarder.metrics.emit(&document);
            }
        }
        if let Err(e) = &mut outcome {
            tracing::error!(summary = %serde_json::to_string(&summary).unwrap_or_default(), error = %e, "backfill stopped");
        }
        outcome.map(|()| summary)
    }

    fn finish(&self, mut run: Run<'_>) -> Summary {
        let now = self.clock.now_ms();
        run.summary.duration_ms = now - run.started_ms;
        run.summary.time_left_ms = run.options.deadline_ms.map(|d| d - now);
        run.summary.freshness.finish(now);
        run.summary
    }

    fn lease_expiry(&self, options: &RunOptions, now_ms: i64) -> i64 {
        let ttl = now_ms + LEASE_TTL_MS;
        match options.deadline_ms {
            Some(deadline) => ttl.min(deadline + LEASE_SLACK_MS),
            None => ttl,
        }
    }
}

#[cfg(test)]
mod tests;
