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
pub mod freshness;
mod pending;
mod rules;
mod summary;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::events::BackfillRequest;
use crate::forward::metrics::Via;
use crate::forward::{ForwardError, Forwarded, Forwarder, Tracking};
use crate::ledger::{Cursor, HeldLease, LeaseOutcome, Ledger, Position, Versioned};
use crate::ports::{Clock, Fetch, ListObjects, Listed, ObjectRef, StateError};
use crate::sink::Sink;
use crate::time::parse_rfc3339_ms as rfc3339_to_ms;
use crate::time::rfc3339_ms;
use pending::Pending;

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
            Some(text) => Some(rfc3339_to_ms(text).map_err(|reason| {
                BackfillError::Request(format!("since {text:?} is not an RFC 3339 time: {reason}"))
            })?),
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

    async fn walk<F, M, S>(
        &self,
        forwarder: &Forwarder<F, M>,
        run: &mut Run<'_>,
    ) -> Result<(), Halt>
    where
        F: Fetch,
        M: Fn() -> S + Send + Sync,
        S: Sink,
    {
        if run.options.dry_run || run.options.retry_set_aside {
            self.set_aside_objects(forwarder, run).await?;
        }
        let trails = forwarder.filter.cloudtrail.is_some();
        let trees = self.find_trees(&mut run.summary, trails).await?;
        run.summary.trees = trees.len() as u64;
        if trees.is_empty() {
            tracing::warn!(bucket = %self.bucket, prefix = %self.prefix, "no day partitions (YYYY/MM/DD/) found under the audit prefix");
        }
        let mut cursors = Vec::with_capacity(trees.len());
        for (tree, years) in trees {
            run.summary.state_reads += 1;
            let stored = self.ledger.cursor(&self.bucket, &tree).await?;
            cursors.push(TreeCursor {
                position: stored.as_ref().and_then(|c| c.value.position.clone()),
                tree,
                years,
                stored,
                resume_day: None,
                pinned_day: None,
                floor_day: None,
            });
        }
        // Least advanced first, so a tree with a long history does not keep the others waiting.
        cursors.sort_by_key(|c| c.stored.as_ref().map(|s| s.value.resume_day));
        for mut cursor in cursors {
            let walked = self.walk_tree(forwarder, run, &mut cursor).await;
            let saved = self.save_cursor(run, &mut cursor).await;
            walked?;
            saved?;
        }
        Ok(())
    }

    async fn walk_tree<F, M, S>(
        &self,
        forwarder: &Forwarder<F, M>,
        run: &mut Run<'_>,
        cursor: &mut TreeCursor,
    ) -> Result<(), Halt>
    where
        F: Fetch,
        M: Fn() -> S + Send + Sync,
        S: Sink,
    {
        let options = run.options;
        let start_ms = options.since_ms.or(self.start_time_ms);
        let stored = cursor.stored.as_ref().map(|s| s.value.clone());
        // A manual run from a time walks from there and ignores the cursor's position.
        let resume_from = stored.as_ref().filter(|_| options.since_ms.is_none());
        let Some(first_day) = self.first_day(run, cursor, resume_from).await? else {
            return Ok(());
        };
        let first_day = first_day.max(crate::ledger::EARLIEST_DAY);
        if let Some(c) = &stored {
            if first_day > c.resume_day {
                cursor.floor_day = Some(c.resume_day);
            }
        }
        let behind = resume_from.and_then(|c| c.position.clone());
        let today = day_of(self.clock.now_ms());
        let mut pending = Pending::default();
        for day in first_day..=today {
            // Not handled yet: what is pending, and this day onwards.
            cursor.resume_day = Some(pending.earliest_day().map_or(day, |d| d.min(day)));
            self.check_time(run)
                .await
                .inspect_err(|_| run.summary.freshness.left_behind(&pending))?;
            (run.on_event)(Event::Day {
                tree: &cursor.tree,
                day,
            });
            let folder = day_folder(&cursor.tree, day);
            let (objects, _) = self.list_all(&folder, None, &mut run.summary).await?;
            run.summary.days_walked += 1;
            run.summary.keys_listed += objects.len() as u64;
            let (mut admitted, mut admitted_bytes) = (0, 0);
            for object in objects {
                if let Some(position) =
                    self.admit(forwarder, run, &object, start_ms, behind.as_ref())
                {
                    admitted += 1;
                    admitted_bytes += object.size;
                    pending.insert(position, object, day);
                }
            }
            (run.on_event)(Event::Listed {
                objects: admitted,
                bytes: admitted_bytes,
            });
            // Everything last modified before the next day began is known now.
            let horizon = if day == today {
                i64::MAX
            } else {
                (day + 1) * MS_PER_DAY
            };
            while pending.first_before(horizon) {
                self.check_time(run)
                    .await
                    .inspect_err(|_| run.summary.freshness.left_behind(&pending))?;
                let Some((position, object, object_day)) = pending.pop_first() else {
                    break;
                };
                // Today's partition stays open: the next walk lists it again.
                let next = pending.earliest_day().map_or(day + 1, |d| d.min(day + 1));
                cursor.resume_day = Some(next.min(today));
                self.process(forwarder, run, cursor, position, &object, object_day)
                    .await?;
            }
        }
        cursor.resume_day = Some(today);
        Ok(())
    }

    /// The first day to list in a tree; see the module documentation. `None` when the tree
    /// holds no day partition at all.
    async fn first_day(
        &self,
        run: &mut Run<'_>,
        cursor: &mut TreeCursor,
        resume_from: Option<&Cursor>,
    ) -> Result<Option<i64>, Halt> {
        Ok(
            match (run.options.since_ms, resume_from, self.start_time_ms) {
                (Some(since), _, _) => Some(first_day_for_start(since)),
                (None, Some(c), start) => {
                    let from_cursor = first_day_for_cursor(c, self.lookback_days);
                    Some(start.map_or(from_cursor, |s| from_cursor.max(first_day_for_start(s))))
                }
                (None, None, Some(start)) => Some(first_day_for_start(start)),
                (None, None, None) => {
                    let years = std::mem::take(&mut cursor.years);
                    self.earliest_day(&cursor.tree, &years, &mut run.summary)
                        .await?
                }
            },
        )
    }

    /// Whether a listed object is one to handle in this walk (selected, in time, not well
    /// behind the cursor), counted either way; its position when it is.
    fn admit<F, M>(
        &self,
        forwarder: &Forwarder<F, M>,
        run: &mut Run<'_>,
        object: &Listed,
        start_ms: Option<i64>,
        behind: Option<&Position>,
    ) -> Option<Position> {
        let name = forwarder.filter.select(&object.key).ok()?;
        run.summary.objects_seen += 1;
        if let crate::events::Selected::AuditLog(audit) = &name {
            run.summary.freshness.see(audit);
        }
        if let Some(start) = start_ms {
            // A name that passed the filter always has a valid time.
            let file_ms = rfc3339_to_ms(name.file_time()).unwrap_or(i64::MAX);
            if !starts_in_time(file_ms, start) {
                run.summary.skipped_before_start += 1;
                return None;
            }
        }
        let position = Position {
            last_modified_ms: object.last_modified_ms,
            key: object.key.clone(),
        };
        if behind.is_some_and(|c| is_behind_cursor(&position, c)) {
            run.summary.skipped_before_cursor += 1;
            return None;
        }
        Some(position)
    }

    /// Checks the limits before starting another object; renews the lease when it runs low.
    async fn check_time(&self, run: &mut Run<'_>) -> Result<(), Halt> {
        if let Some(max) = run.options.max_objects {
            if run.summary.sent >= max {
                return Err(Halt::Stop(Stopped::ObjectBudget));
            }
        }
        let now = self.clock.now_ms();
        if let Some(deadline) = run.options.deadline_ms {
            let margin = margin_ms(deadline - run.started_ms, run.slowest_ms);
            if deadline - now < margin {
                return Err(Halt::Stop(Stopped::Deadline));
            }
        }
        if let Some(held) = &mut run.lease {
            let wanted = self.lease_expiry(run.options, now);
            if held.lease.expires_at_ms - now < LEASE_TTL_MS / 2
                && wanted > held.lease.expires_at_ms
            {
                run.summary.state_writes += 1;
                self.ledger.renew_lease(held, wanted).await?;
            }
        }
        Ok(())
    }

    /// Handles one object: skipped when done, listed on a dry run, else forwarded, marked done
    /// and the cursor saved. The caller has checked the time.
    async fn process<F, M, S>(
        &self,
        forwarder: &Forwarder<F, M>,
        run: &mut Run<'_>,
        cursor: &mut TreeCursor,
        position: Position,
        object: &Listed,
        day: i64,
    ) -> Result<(), Halt>
    where
        F: Fetch,
        M: Fn() -> S + Send + Sync,
        S: Sink,
    {
        run.summary.state_reads += 1;
        let done = match self
            .ledger
            .done(&self.bucket, &object.key, &object.etag)
            .await
        {
            // Not to be trusted: as if absent (sent again; its new marker replaces this one).
            Err(e @ StateError::Corrupt { .. }) => {
                run.summary.marker_refused(&e);
                None
            }
            done => done?,
        };
        if done.is_some() {
            run.summary.skipped_done += 1;
            (run.on_event)(Event::SkippedDone(object));
            advance(cursor, position);
            return Ok(());
        }
        if run.options.dry_run {
            run.summary.state_reads += 1;
            let aside = self
                .ledger
                .set_aside(&self.bucket, &object.key, &object.etag)
                .await;
            if matches!(aside, Ok(Some(_))) && !run.options.retry_set_aside {
                run.summary.skipped_set_aside += 1;
                return Ok(());
            }
            run.summary.would_send += 1;
            run.summary.bytes += object.size;
            (run.on_event)(Event::WouldSend(object));
            return Ok(());
        }
        let object_ref = ObjectRef {
            bucket: self.bucket.clone(),
            key: object.key.clone(),
            size: Some(object.size),
            etag: Some(object.etag.clone()),
            version_id: None,
            alternate_key: None,
        };
        let began = self.clock.now_ms();
        // Set-aside and progress records are read; the done marker was read above.
        run.summary.state_reads += 2;
        let forwarded = forwarder
            .forward_tracked(&object_ref, &self.tracking(run.options, false))
            .await;
        run.slowest_ms = run.slowest_ms.max(self.clock.now_ms() - began);
        match forwarded {
            Ok(Forwarded::Sent(receipt)) => {
                run.summary.state_writes += 1 + receipt.progress_writes;
                run.summary.sent += 1;
                run.summary.records += receipt.records;
                run.summary.bytes += receipt.object_bytes.unwrap_or(object.size);
                (run.on_event)(Event::Sent(&receipt));
                advance(cursor, position);
                self.save_cursor(run, cursor).await
            }
            Ok(Forwarded::AlreadyDone(_)) => {
                run.summary.skipped_done += 1;
                (run.on_event)(Event::SkippedDone(object));
                advance(cursor, position);
                Ok(())
            }
            Ok(Forwarded::SetAside { by, .. }) => {
                match by {
                    None => run.summary.skipped_set_aside += 1,
                    Some(e) => {
                        run.summary.state_writes += 2;
                        run.summary.set_aside += 1;
                        run.summary.failed += 1;
                        run.summary.error(e.to_string());
                        (run.on_event)(Event::Failed(object, &e));
                    }
                }
                // Handled: the record keeps it, and `--retry-set-aside` finds it there.
                advance(cursor, position);
                Ok(())
            }
            Err(ForwardError::Paused { .. }) => {
                run.summary.state_writes += 1;
                run.summary.paused += 1;
                // The next run starts at or before it; its progress says from which line.
                cursor.pinned_day = Some(cursor.pinned_day.map_or(day, |d| d.min(day)));
                Err(Halt::Stop(Stopped::Deadline))
            }
            Err(e) => {
                if e.counts_as_attempt() {
                    run.summary.state_writes += 1;
                }
                self.on_failure(run, cursor, position, object, day, &e)
            }
        }
    }

    /// How the walk tracks an object: stopping [`IN_OBJECT_MARGIN_MS`] before the deadline.
    fn tracking<'a>(&'a self, options: &RunOptions, retry_set_aside: bool) -> Tracking<'a> {
        Tracking {
            ledger: &self.ledger,
            stop_at_ms: options.deadline_ms.map(|d| d - IN_OBJECT_MARGIN_MS),
            before_deadline: false,
            via: Via::Backfill,
            retry_set_aside,
            check_done: false,
            clock: Some(&*self.clock),
        }
    }

    /// The set-aside records: listed on a dry run, else tried once more
    /// (`--retry-set-aside`). Records of objects done since are passed over.
    async fn set_aside_objects<F, M, S>(
        &self,
        forwarder: &Forwarder<F, M>,
        run: &mut Run<'_>,
    ) -> Result<(), Halt>
    where
        F: Fetch,
        M: Fn() -> S + Send + Sync,
        S: Sink,
    {
        let records = self.ledger.list_set_aside().await?;
        run.summary.state_reads += 1 + records.len() as u64;
        for record in records {
            let record = match record {
                Ok(record) => record,
                Err(e) => {
                    tracing::warn!(error = %e, "set-aside record refused");
                    run.summary.state_refused += 1;
                    run.summary.error(e.to_string());
                    continue;
                }
            };
            run.summary.state_reads += 1;
            let done = self
                .ledger
                .done(&record.bucket, &record.key, &record.etag)
                .await;
            if matches!(done, Ok(Some(_))) {
                continue;
            }
            if run.options.dry_run {
                (run.on_event)(Event::SetAside(&record));
                run.summary.set_aside_objects.push(record);
                continue;
            }
            self.check_time(run).await?;
            run.summary.retried_set_aside += 1;
            let object = ObjectRef {
                bucket: record.bucket.clone(),
                key: record.key.clone(),
                size: None,
                etag: Some(record.etag.clone()),
                version_id: None,
                alternate_key: None,
            };
            match forwarder
                .forward_tracked(&object, &self.tracking(run.options, true))
                .await
            {
                Ok(Forwarded::Sent(receipt)) => {
                    run.summary.state_writes += 1 + receipt.progress_writes;
                    run.summary.recovered_set_aside += 1;
                    run.summary.sent += 1;
                    run.summary.records += receipt.records;
                    (run.on_event)(Event::Sent(&receipt));
                }
                Ok(Forwarded::SetAside { by: Some(e), .. }) => {
                    // Still failing: its record was rewritten with this error.
                    run.summary.failed += 1;
                    run.summary.error(e.to_string());
                }
                Ok(_) => {}
                Err(ForwardError::Paused { .. }) => {
                    run.summary.paused += 1;
                    return Err(Halt::Stop(Stopped::Deadline));
                }
                Err(e) => {
                    // Still failing: its record was rewritten with this error.
                    run.summary.failed += 1;
                    run.summary.error(e.to_string());
                    if matches!(e, ForwardError::Sink { .. }) {
                        return Err(Halt::Stop(Stopped::Failed));
                    }
                }
            }
        }
        Ok(())
    }

    /// One object failed: counted and reported; a retryable failure pins the cursor before it,
    /// a failing sink stops the walk.
    fn on_failure(
        &self,
        run: &mut Run<'_>,
        cursor: &mut TreeCursor,
        position: Position,
        object: &Listed,
        day: i64,
        e: &ForwardError,
    ) -> Result<(), Halt> {
        run.summary.failed += 1;
        run.summary.error(e.to_string());
        (run.on_event)(Event::Failed(object, e));
        tracing::error!(bucket = %self.bucket, key = %object.key, retryable = e.is_retryable(), error = %e, "backfill could not forward an object");
        let sink_failed = matches!(e, ForwardError::Sink { .. });
        if sink_failed || e.is_retryable() {
            // The next run starts at or before it and tries it again.
            cursor.pinned_day = Some(cursor.pinned_day.map_or(day, |d| d.min(day)));
        } else {
            // Gone or refused for good: reported, and passed.
            advance(cursor, position);
        }
        if sink_failed {
            // The destination is failing: every later object would fail the same way.
            return Err(Halt::Stop(Stopped::Failed));
        }
        Ok(())
    }

    /// Writes the tree's cursor when it changed (never on a dry run). A conflict means another
    /// walker moved it: the caller stops.
    async fn save_cursor(&self, run: &mut Run<'_>, cursor: &mut TreeCursor) -> Result<(), Halt> {
        if run.options.dry_run {
            return Ok(());
        }
        let stored = cursor.stored.as_ref().map(|s| &s.value);
        let resume_day = [
            cursor.resume_day.or(stored.map(|s| s.resume_day)),
            cursor.pinned_day,
            cursor.floor_day,
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(resume_day) = resume_day else {
            return Ok(());
        };
        if stored.is_some_and(|s| s.position == cursor.position && s.resume_day == resume_day) {
            return Ok(());
        }
        let value = Cursor {
            bucket: self.bucket.clone(),
            prefix: cursor.tree.clone(),
            last_modified: cursor
                .position
                .as_ref()
                .map(|p| rfc3339_ms(p.last_modified_ms)),
            position: cursor.position.clone(),
            resume_day,
            resume_date: day_label(resume_day),
            updated_at: rfc3339_ms(self.clock.now_ms()),
            owner: run.options.owner.clone(),
        };
        run.summary.state_writes += 1;
        let previous = cursor.stored.as_ref().map(|s| s.etag.as_str());
        let etag = self.ledger.save_cursor(&value, previous).await?;
        cursor.stored = Some(Versioned { value, etag });
        Ok(())
    }
}

/// Moves the position forward (never back), unless a failure pinned it or the walk did not
/// cover the days before it (a manual run from a later time): the position promises that
/// everything before it was handled.
fn advance(cursor: &mut TreeCursor, position: Position) {
    if cursor.pinned_day.is_some() || cursor.floor_day.is_some() {
        return;
    }
    if cursor.position.as_ref().is_none_or(|p| position > *p) {
        cursor.position = Some(position);
    }
}

#[cfg(test)]
mod tests;
