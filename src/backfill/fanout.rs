//! The fan-out: with a queue (`BACKFILL_QUEUE_URL`, `backfill --enqueue`), the walk sends each
//! object it decided on as an S3 notification of that object (`events::notify`) instead of
//! forwarding it, and workers consume the queue through the SQS path of the handler.
//!
//! Objects are batched ten to a `SendMessageBatch` call, in walk order; entries the queue did
//! not take are re-sent alone, [`RESEND_ATTEMPTS`] times with backoff. The cursor passes an
//! object only once its message was taken, and is saved after each call: a walk stopped at any
//! point has enqueued everything before its cursor. An entry still refused pins the cursor
//! before it (the next walk sends it again) and stops the walk, as a failing sink does: every
//! later message would fail the same way. A walk sends no message for an object done (its done
//! marker, read as for forwarding), so a walk after a fan-out whose messages were all handled
//! enqueues nothing; one that runs before the workers are through may enqueue again the objects
//! of the cursor's last [`CURSOR_GRACE_MS`](super::CURSOR_GRACE_MS), which the workers' done
//! markers then skip.

use std::time::Duration;

use super::object::advance;
use super::{Backfill, Event, Halt, Run, Stopped, TreeCursor};
use crate::events::notify;
use crate::ledger::Position;
use crate::ports::queue::MAX_BATCH_ENTRIES;
use crate::ports::{FailedEntry, Listed, Queue, QueueEntry};
use crate::sink::backoff::full_jitter;
use crate::time::rfc3339_ms;

/// Times an entry the queue did not take is sent again alone before the walk gives up on it.
pub const RESEND_ATTEMPTS: u32 = 3;

/// Ceiling of the first pause before an entry is sent again alone; doubled at each attempt
/// (full jitter, `sink::backoff`, as the Firehose sink's retries).
const RESEND_BASE: Duration = Duration::from_millis(100);
/// Largest ceiling: SQS throttling is per second, waiting longer buys nothing.
const RESEND_MAX: Duration = Duration::from_secs(5);

/// An object waiting in the batch.
pub(super) struct Queued {
    position: Position,
    object: Listed,
    day: i64,
}

impl Backfill {
    /// Adds an object to the batch and sends the batch once it holds ten.
    pub(super) async fn enqueue(
        &self,
        queue: &dyn Queue,
        run: &mut Run<'_>,
        cursor: &mut TreeCursor,
        position: Position,
        object: &Listed,
        day: i64,
    ) -> Result<(), Halt> {
        run.batch.push(Queued {
            position,
            object: object.clone(),
            day,
        });
        if run.batch.len() >= MAX_BATCH_ENTRIES {
            self.flush(queue, run, cursor).await?;
        }
        Ok(())
    }

    /// Sends the batch; the cursor passes each object whose message was taken, in order, and
    /// is saved. See the module documentation.
    pub(super) async fn flush(
        &self,
        queue: &dyn Queue,
        run: &mut Run<'_>,
        cursor: &mut TreeCursor,
    ) -> Result<(), Halt> {
        let batch = std::mem::take(&mut run.batch);
        if batch.is_empty() {
            return Ok(());
        }
        let now = rfc3339_ms(self.clock.now_ms());
        let entries: Vec<QueueEntry> = batch
            .iter()
            .enumerate()
            .map(|(i, q)| QueueEntry {
                id: i.to_string(),
                body: notify::object_created(
                    &self.bucket,
                    &q.object.key,
                    q.object.size,
                    &q.object.etag,
                    &now,
                ),
            })
            .collect();
        run.summary.queue_calls += 1;
        let failed: Vec<FailedEntry> = match queue.send_batch(&entries).await {
            Ok(failed) => failed,
            Err(e) if e.retryable => entries
                .iter()
                .map(|entry| FailedEntry {
                    id: entry.id.clone(),
                    code: "CallFailed".into(),
                    message: e.message.clone(),
                    sender_fault: false,
                })
                .collect(),
            Err(e) => {
                // Access denied, no such queue: nothing of this walk can go through.
                run.summary.failed += batch.len() as u64;
                run.summary.error(e.to_string());
                let first = batch.iter().map(|q| q.day).min();
                cursor.pinned_day = cursor.pinned_day.min(first).or(first);
                self.save_cursor(run, cursor).await?;
                return Err(Halt::Stop(Stopped::Failed));
            }
        };
        let mut queue_failed = false;
        for (entry, queued) in entries.iter().zip(batch) {
            let refused = failed.iter().find(|f| f.id == entry.id);
            let taken = match refused {
                None => Ok(()),
                Some(first) => self.resend_alone(queue, run, entry, first).await,
            };
            match taken {
                Ok(()) => {
                    run.summary.enqueued += 1;
                    run.summary.bytes += queued.object.size;
                    (run.on_event)(Event::Enqueued(&queued.object));
                    advance(cursor, queued.position);
                }
                Err(reason) => {
                    tracing::error!(queue = %queue.url(), key = %queued.object.key, error = %reason, "the backfill queue did not take an object's message");
                    run.summary.failed += 1;
                    run.summary.error(format!(
                        "s3://{}/{}: not enqueued to {}: {reason}",
                        self.bucket,
                        queued.object.key,
                        queue.url()
                    ));
                    // The next walk starts at or before it and sends it again.
                    cursor.pinned_day =
                        Some(cursor.pinned_day.map_or(queued.day, |d| d.min(queued.day)));
                    queue_failed = true;
                }
            }
        }
        self.save_cursor(run, cursor).await?;
        if queue_failed {
            return Err(Halt::Stop(Stopped::Failed));
        }
        Ok(())
    }

    /// One entry sent again alone until it is taken; the last refusal when it never is.
    async fn resend_alone(
        &self,
        queue: &dyn Queue,
        run: &mut Run<'_>,
        entry: &QueueEntry,
        first: &FailedEntry,
    ) -> Result<(), String> {
        let mut last = format!("{}: {}", first.code, first.message);
        if first.sender_fault {
            return Err(last);
        }
        for attempt in 1..=RESEND_ATTEMPTS {
            let draw = crate::sink::backoff::jitter_draw();
            tokio::time::sleep(full_jitter(RESEND_BASE, RESEND_MAX, attempt, draw)).await;
            run.summary.queue_calls += 1;
            match queue.send_batch(std::slice::from_ref(entry)).await {
                Ok(failed) => match failed.into_iter().next() {
                    None => return Ok(()),
                    Some(f) if f.sender_fault => return Err(format!("{}: {}", f.code, f.message)),
                    Some(f) => last = format!("{}: {}", f.code, f.message),
                },
                Err(e) if e.retryable => last = e.message,
                Err(e) => return Err(e.message),
            }
        }
        Err(last)
    }
}
