//! One object of the walk: skipped when done, listed on a dry run, else forwarded, marked done
//! and the cursor saved; failures, the set-aside records and the cursor's writes.

use super::{Backfill, Event, Halt, Run, RunOptions, Stopped, TreeCursor, IN_OBJECT_MARGIN_MS};
use crate::forward::metrics::Via;
use crate::forward::{ForwardError, Forwarded, Forwarder, Tracking};
use crate::ledger::{Cursor, Position, Versioned};
use crate::ports::{Fetch, Listed, ObjectRef, StateError};
use crate::sink::Sink;
use crate::time::{day_label, rfc3339_ms};

impl Backfill {
    /// Handles one object: skipped when done, listed on a dry run, else forwarded, marked done
    /// and the cursor saved. The caller has checked the time.
    pub(super) async fn process<F, M, S>(
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
            return self.write_manifest_line(run, object);
        }
        if let Some(queue) = &self.queue {
            return self
                .enqueue(&**queue, run, cursor, position, object, day)
                .await;
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
        // The state calls of the attempt as made (set-aside, progress, claim, done marker
        // read again, its release, progress and done writes); the done marker was read above.
        let calls = self.ledger.calls();
        let forwarded = forwarder
            .forward_tracked(&object_ref, &self.tracking(run.options, false))
            .await;
        run.count_calls(self.ledger.calls().since(calls));
        run.slowest_ms = run.slowest_ms.max(self.clock.now_ms() - began);
        match forwarded {
            Ok(Forwarded::Sent(receipt)) => {
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
                run.summary.paused += 1;
                // The next run starts at or before it; its progress says from which line.
                cursor.pinned_day = Some(cursor.pinned_day.map_or(day, |d| d.min(day)));
                Err(Halt::Stop(Stopped::Deadline))
            }
            Err(ForwardError::Busy { .. }) => {
                // Another invocation is sending it: a later walk finds it done or free. The
                // cursor stays before it, and no attempt counts toward setting it aside.
                run.summary.busy += 1;
                cursor.pinned_day = Some(cursor.pinned_day.map_or(day, |d| d.min(day)));
                Ok(())
            }
            Err(e) => self.on_failure(run, cursor, position, object, day, &e),
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
    pub(super) async fn set_aside_objects<F, M, S>(
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
            let calls = self.ledger.calls();
            let forwarded = forwarder
                .forward_tracked(&object, &self.tracking(run.options, true))
                .await;
            run.count_calls(self.ledger.calls().since(calls));
            match forwarded {
                Ok(Forwarded::Sent(receipt)) => {
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
    pub(super) async fn save_cursor(
        &self,
        run: &mut Run<'_>,
        cursor: &mut TreeCursor,
    ) -> Result<(), Halt> {
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
pub(super) fn advance(cursor: &mut TreeCursor, position: Position) {
    if cursor.pinned_day.is_some() || cursor.floor_day.is_some() {
        return;
    }
    if cursor.position.as_ref().is_none_or(|p| position > *p) {
        cursor.position = Some(position);
    }
}
