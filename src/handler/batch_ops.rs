//! An S3 Batch Operations invocation: each task's object forwarded as a live notification's is
//! (tracked with the ledger, stopped before the deadline), and its outcome mapped to the result
//! code Batch Operations acts on:
//!
//! | outcome | code | Batch Operations then |
//! |---|---|---|
//! | forwarded, or already done (done marker for its ETag) | `Succeeded` | done |
//! | a retry can fix it: throttling, 5xx, a deadline reached with progress saved | `TemporaryFailure` | tries again later; the retry goes on from the progress |
//! | no retry can: a foreign format, a key that is no audit log or trail file, a bucket not allowed, an object set aside | `PermanentFailure` | reports it |
//!
//! Each `resultString` is short, masked and bounded (`events::result_string`).

use serde_json::Value;

use super::{Context, Handler};
use crate::events::{batch_job_answer, BatchJob, ResultCode, TaskResult};
use crate::forward::{ForwardError, Forwarded};
use crate::ports::{Fetch, ObjectRef};
use crate::sink::Sink;

impl<F: Fetch, M: Fn() -> S + Send + Sync, S: Sink> Handler<F, M> {
    /// Answers a Batch Operations invocation with one result per task, in order.
    pub(super) async fn batch_job(&self, job: &BatchJob, context: Context<'_>) -> Value {
        let mut results = Vec::with_capacity(job.tasks.len());
        for task in &job.tasks {
            let (code, text) = match &task.object {
                Err(refusal) => {
                    tracing::warn!(task_id = %task.task_id, reason = %refusal, "Batch Operations task refused");
                    (ResultCode::PermanentFailure, refusal.to_string())
                }
                Ok(object) => self.task(object, &context).await,
            };
            results.push(TaskResult {
                task_id: task.task_id.clone(),
                code,
                text,
            });
        }
        let failed = results
            .iter()
            .filter(|r| r.code != ResultCode::Succeeded)
            .count();
        tracing::info!(
            invocation_id = %job.invocation_id,
            job_id = job.job_id.as_deref().unwrap_or(""),
            tasks = results.len(),
            failed,
            "Batch Operations invocation answered"
        );
        batch_job_answer(job, &results)
    }
}

impl<F: Fetch, M: Fn() -> S + Send + Sync, S: Sink> Handler<F, M> {
    /// One task's object forwarded; its result code and text. Tasks name no ETag and done
    /// markers are per ETag: the forwarder reads it from the one GET it makes
    /// ([`crate::forward::Forwarder::forward_tracked`]), so an object done is skipped, not sent
    /// again, and one not done is read once.
    async fn task(&self, object: &ObjectRef, context: &Context<'_>) -> (ResultCode, String) {
        outcome(self.forward_live(object, context).await)
    }
}

/// One task's forwarding outcome to its result code and text.
pub(super) fn outcome(forwarded: Result<Forwarded, ForwardError>) -> (ResultCode, String) {
    match forwarded {
        Ok(Forwarded::Sent(receipt)) => (
            ResultCode::Succeeded,
            format!("forwarded {} records", receipt.records),
        ),
        Ok(Forwarded::AlreadyDone(_)) => (ResultCode::Succeeded, "already done".to_string()),
        // Set aside by an earlier attempt: its record keeps it for `--retry-set-aside`.
        Ok(Forwarded::SetAside { record, by: None }) => (
            ResultCode::PermanentFailure,
            format!("set aside: {}", record.last_error),
        ),
        Ok(Forwarded::SetAside { by: Some(e), .. }) => {
            (ResultCode::PermanentFailure, format!("set aside: {e}"))
        }
        Err(e) if e.is_retryable() => (ResultCode::TemporaryFailure, e.to_string()),
        Err(e) => (ResultCode::PermanentFailure, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::SinkError;

    fn code(e: ForwardError) -> ResultCode {
        outcome(Err(e)).0
    }

    #[test]
    fn throttling_past_the_retries_and_a_deadline_stop_are_temporary_failures() {
        let throttled = ForwardError::Sink {
            bucket: "b".into(),
            key: "k".into(),
            source: SinkError::RetriesExhausted {
                stream: "s".into(),
                records: 3,
                lines: 9,
                attempts: 6,
                code: "ServiceUnavailableException".into(),
                message: "Slow down.".into(),
            },
        };
        assert_eq!(code(throttled), ResultCode::TemporaryFailure);
        let paused = ForwardError::Paused {
            bucket: "b".into(),
            key: "k".into(),
            lines: 1000,
        };
        assert_eq!(code(paused), ResultCode::TemporaryFailure);
        let busy = ForwardError::Busy {
            bucket: "b".into(),
            key: "k".into(),
            until: "2024-03-01T00:16:00.000Z".into(),
        };
        assert_eq!(code(busy), ResultCode::TemporaryFailure);
    }

    #[test]
    fn a_refusing_stream_and_a_key_that_is_no_audit_log_are_permanent_failures() {
        let refused = ForwardError::Sink {
            bucket: "b".into(),
            key: "k".into(),
            source: SinkError::LineTooLarge { len: 2_000_000 },
        };
        assert_eq!(code(refused), ResultCode::PermanentFailure);
        let not_audit = ForwardError::NotAuditLog {
            bucket: "b".into(),
            key: "k".into(),
            reason: "no log type".into(),
        };
        assert_eq!(code(not_audit), ResultCode::PermanentFailure);
    }
}
