//! One Lambda event to its response: object notifications are forwarded (through the
//! [`Forwarder`], with the ledger when there is one), an SQS batch answers with
//! `batchItemFailures`, an S3 Batch Operations invocation answers with one result per task
//! (`batch_ops.rs`), a scheduled or manual backfill event runs the walk.
//!
//! With a ledger, each object is tracked (`forward::resume`): one stopped before the deadline
//! (at most [`LIVE_MARGIN_MS`](crate::forward::LIVE_MARGIN_MS) before it) with its progress
//! saved is handed back (its SQS message in `batchItemFailures`; a direct or EventBridge
//! invocation fails with a retryable error, and the scheduled backfill picks it up too). The
//! attempt that sets an object aside fails as before (once: the error says whether a retry
//! helps); every later delivery skips it, answered under `set_aside`, not handed back.

use serde_json::{json, Value};

use crate::backfill::{Backfill, BackfillError, Event, RunOptions};
use crate::doctor::Doctor;
use crate::events::{self, Invocation};
use crate::forward::{BatchError, Batched, ForwardError, Forwarded, Forwarder, Tracking};
use crate::ledger::Ledger;
use crate::ports::Fetch;
use crate::report;
use crate::sink::Sink;

/// Everything one invocation needs besides its [`Context`], built once at start-up.
pub struct Handler<F, M> {
    pub forwarder: Forwarder<F, M>,
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
    /// SQS records without a `messageId`: `batchItemFailures` cannot name them, so the whole
    /// batch fails and comes back.
    #[error("{unnamed} of {total} SQS records have no messageId; the whole batch is failed so none is lost")]
    UnnamedMessages { unnamed: usize, total: usize },
    #[error("{0}")]
    Backfill(#[from] BackfillError),
    /// A CloudWatch Logs batch failed (its group is unknown, or the sink did not take it).
    #[error("{0}")]
    LogBatch(#[from] BatchError),
    /// The walk ran but some objects (or the walk itself) failed; the summary says which.
    #[error("backfill: {failed} objects failed; first error: {first}")]
    BackfillObjects { failed: u64, first: String },
}

impl HandlerError {
    /// Whether invoking again with the same event can succeed without a change: Lambda's error
    /// type says so (`runtime::diagnostic`).
    pub fn is_retryable(&self) -> bool {
        match self {
            HandlerError::Event(_) | HandlerError::Unsupported(_) => false,
            // The batch comes back after the visibility timeout, then goes to the DLQ.
            HandlerError::UnnamedMessages { .. } => true,
            HandlerError::Objects { first, .. } => first.is_retryable(),
            HandlerError::Backfill(e) => e.is_retryable(),
            HandlerError::LogBatch(e) => e.is_retryable(),
            // Failed objects pin the cursor before them: the next run tries them again.
            HandlerError::BackfillObjects { .. } => true,
        }
    }

    /// A short name of the failure's kind, for Lambda's error type.
    pub fn kind(&self) -> &'static str {
        match self {
            HandlerError::Event(_) => "MalformedEvent",
            HandlerError::Objects { .. } => "ObjectsFailed",
            HandlerError::Unsupported(_) => "Unsupported",
            HandlerError::UnnamedMessages { .. } => "UnnamedSqsMessages",
            // A corrupt or forged cursor or lease: its own kind, to alarm on.
            HandlerError::Backfill(e) if e.is_state_refused() => "BackfillStateRefused",
            HandlerError::Backfill(_) => "BackfillFailed",
            HandlerError::LogBatch(_) => "LogBatchFailed",
            HandlerError::BackfillObjects { .. } => "BackfillObjectsFailed",
        }
    }
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
    /// Answers `{"doctor": {}}`; without it that event fails as unsupported.
    pub doctor: Option<&'a Doctor>,
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
        match events::parse_invocation(event, &self.forwarder.filter)? {
            Invocation::Objects(objects) => {
                let mut receipts = Vec::new();
                let mut skipped = Vec::new();
                let mut set_aside = Vec::new();
                let mut failures = Vec::new();
                for object in &objects {
                    match self.forward_live(object, &context).await {
                        Ok(Forwarded::Sent(receipt)) => receipts.push(receipt),
                        Ok(Forwarded::AlreadyDone(marker)) => skipped.push(marker),
                        // Set aside by this attempt: the failure is reported once (the error
                        // says no retry helps); every later delivery skips it.
                        Ok(Forwarded::SetAside { by: Some(e), .. }) => failures.push(e),
                        Ok(Forwarded::SetAside { record, by: None }) => set_aside.push(record),
                        Err(e) => failures.push(e),
                    }
                }
                let total = objects.len();
                let handled = receipts.len() + skipped.len() + set_aside.len();
                match failures.into_iter().next() {
                    None => {
                        let mut response = json!({ "receipts": receipts });
                        if !skipped.is_empty() {
                            response["skipped"] = json!(skipped);
                        }
                        if !set_aside.is_empty() {
                            response["set_aside"] = json!(set_aside);
                        }
                        Ok(response)
                    }
                    // A stop at the deadline is retryable: the retry goes on from the progress.
                    Some(first) => Err(HandlerError::Objects {
                        failed: total - handled,
                        total,
                        first,
                    }),
                }
            }
            Invocation::SqsBatch(messages) => self.sqs_batch(&messages, context).await,
            Invocation::BatchJob(job) => Ok(self.batch_job(&job, context).await),
            // The report is the answer, failed checks included: retrying would not fix them.
            Invocation::Doctor => match context.doctor {
                Some(doctor) => Ok(json!(doctor.run(&self.forwarder.fetch).await)),
                None => Err(HandlerError::Unsupported(
                    "the doctor is not wired into this handler".to_string(),
                )),
            },
            Invocation::LogBatch(batch) => {
                Ok(match self.forwarder.forward_log_batch(batch.data).await? {
                    Batched::Sent(receipt) => json!({ "receipts": [receipt] }),
                    Batched::Control { log_group } => {
                        json!({ "control_message": true, "log_group": log_group })
                    }
                    Batched::Skipped { log_group, reason } => {
                        json!({ "skipped": [{ "log_group": log_group, "reason": reason }] })
                    }
                })
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
                let summary = backfill
                    .run(&self.forwarder, &options, &mut log_walk_event)
                    .await?;
                report::backfill_finished(&summary, summary.is_failure());
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

    /// One object of a notification: with a ledger, tracked (done marker, set-aside record,
    /// progress, a stop at most [`LIVE_MARGIN_MS`](crate::forward::LIVE_MARGIN_MS) before the
    /// deadline); without one, forwarded from its start.
    async fn forward_live(
        &self,
        object: &crate::ports::ObjectRef,
        context: &Context<'_>,
    ) -> Result<Forwarded, ForwardError> {
        match context.ledger {
            Some(ledger) => {
                let tracking = Tracking::live(ledger, context.deadline_ms);
                self.forwarder.forward_tracked(object, &tracking).await
            }
            None => self.forwarder.forward(object).await.map(Forwarded::Sent),
        }
    }

    /// An SQS batch: each message's objects forwarded; the answer names the messages whose
    /// objects failed or whose body was malformed.
    async fn sqs_batch(
        &self,
        messages: &[events::SqsMessage],
        context: Context<'_>,
    ) -> Result<Value, HandlerError> {
        let mut failed = Vec::new();
        for message in messages {
            let ok = match &message.objects {
                Err(e) => {
                    tracing::error!(message_id = %message.message_id, error = %e, "malformed SQS message");
                    false
                }
                Ok(objects) => {
                    let mut all = true;
                    for object in objects {
                        // Later objects of a failed message are still tried: each one
                        // that succeeds is one less to send again. One set aside before is
                        // handled (its record keeps it); one set aside now fails its message
                        // once, and one stopped at the deadline comes back to go on.
                        all &= matches!(
                            self.forward_live(object, &context).await,
                            Ok(Forwarded::Sent(_)
                                | Forwarded::AlreadyDone(_)
                                | Forwarded::SetAside { by: None, .. })
                        );
                    }
                    all
                }
            };
            if !ok {
                failed.push(json!({ "itemIdentifier": message.message_id }));
            }
        }
        let unnamed = messages.iter().filter(|m| !m.can_be_named()).count();
        if unnamed > 0 {
            // Left out of batchItemFailures it would count as done and be deleted: fail
            // the whole batch instead (the others' done markers make the retry cheap).
            return Err(HandlerError::UnnamedMessages {
                unnamed,
                total: messages.len(),
            });
        }
        Ok(json!({ "batchItemFailures": failed }))
    }
}

/// The walk's events in the function's log: a receipt per object sent, a line per object a dry
/// run would send.
fn log_walk_event(event: Event<'_>) {
    match event {
        Event::Sent(receipt) => report::object_forwarded(receipt),
        Event::WouldSend(object) => {
            report::would_send(&object.key, object.size, object.last_modified_ms)
        }
        Event::SetAside(record) => {
            tracing::warn!(bucket = %record.bucket, key = %record.key, attempts = record.attempts, last_error = %record.last_error, set_aside_at = %record.set_aside_at, "set aside")
        }
        Event::Day { .. }
        | Event::Listed { .. }
        | Event::SkippedDone(_)
        | Event::Failed(..)
        | Event::Enqueued(_) => {}
    }
}

mod batch_ops;

#[cfg(test)]
mod tests;
