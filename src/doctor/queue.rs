//! The doctor's tenth check, `backfill_queue`, when `BACKFILL_QUEUE_URL` is set: the backfill
//! queue's depth (waiting and in flight) and its dead-letter queue's. Messages in the
//! dead-letter queue are objects the workers failed on `maxReceiveCount` times: a warning,
//! since the rest of the deployment works. How old the oldest message is, SQS does not say
//! through its API: CloudWatch's `ApproximateAgeOfOldestMessage` metric of the queue does.

use super::{Check, Doctor, Status};

/// The check's number and name.
const NUMBER: u8 = 10;
const NAME: &str = "backfill_queue";

impl Doctor {
    /// 10: the backfill queue; `None` without one.
    pub(super) async fn backfill_queue(&self) -> Option<Check> {
        let queue = self.queue.as_ref()?;
        let url = crate::redact::redact(queue.url()).unwrap_or_else(|| queue.url().to_string());
        Some(match queue.stats().await {
            Err(e) => Check::not_ok(
                NUMBER,
                NAME,
                Status::Failed,
                format!("cannot read the backfill queue: {e}"),
                "Check BACKFILL_QUEUE_URL and that the function may call sqs:GetQueueAttributes on the queue and sqs:GetQueueUrl and sqs:GetQueueAttributes on its dead-letter queue.",
            ),
            Ok(stats) => {
                let waiting = format!(
                    "{url}: {} messages waiting, {} in flight (their age: the queue's ApproximateAgeOfOldestMessage metric)",
                    stats.visible, stats.in_flight
                );
                match (&stats.dead_letter_arn, stats.dead_letters) {
                    (None, _) => Check::not_ok(
                        NUMBER,
                        NAME,
                        Status::Warning,
                        format!("{waiting}; no dead-letter queue"),
                        "Give the queue a redrive policy (the template's BackfillFanOut does): a message that fails every time is otherwise received again until it expires.",
                    ),
                    (Some(_), Some(0) | None) => Check::ok(
                        NUMBER,
                        NAME,
                        format!("{waiting}; the dead-letter queue is empty"),
                    ),
                    (Some(arn), Some(dead)) => Check::not_ok(
                        NUMBER,
                        NAME,
                        Status::Warning,
                        format!("{waiting}; {dead} messages in the dead-letter queue {arn}"),
                        "Read a message of the dead-letter queue to find the object and the function's log lines for its key; once fixed, redrive the messages to the backfill queue (aws sqs start-message-move-task).",
                    ),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::ports::queue::MemoryQueue;
    use crate::ports::{
        BoxFuture, BucketFacts, Identity, InspectError, Notifications, QueueStats, StreamFacts,
    };

    fn doctor(queue: Option<Arc<MemoryQueue>>) -> super::Doctor {
        let settings = crate::settings::Settings::from_vars(|name| {
            (name == "DELIVERY_STREAM").then(|| "s".to_string())
        })
        .unwrap();
        super::Doctor {
            settings,
            inspect: Arc::new(Unused),
            list: Arc::new(crate::ports::memory::MemoryBucket::new(Arc::new(
                crate::ports::memory::ManualClock::new(0),
            ))),
            state: None,
            clock: Arc::new(crate::ports::memory::ManualClock::new(0)),
            setup_problems: Vec::new(),
            queue: queue.map(|q| q as Arc<dyn crate::ports::Queue>),
            lake: None,
        }
    }

    /// The other checks' questions, never asked here.
    struct Unused;
    fn unused<'a, T: Send + 'a>() -> BoxFuture<'a, Result<T, InspectError>> {
        Box::pin(async { Err(InspectError::Failed("not asked".into())) })
    }
    impl crate::ports::Inspect for Unused {
        fn caller_identity(&self) -> BoxFuture<'_, Result<Identity, InspectError>> {
            unused()
        }
        fn bucket<'a>(
            &'a self,
            _: &'a str,
            _: Option<&'a str>,
        ) -> BoxFuture<'a, Result<BucketFacts, InspectError>> {
            unused()
        }
        fn bucket_policy<'a>(
            &'a self,
            _: &'a str,
        ) -> BoxFuture<'a, Result<Option<String>, InspectError>> {
            unused()
        }
        fn bucket_notifications<'a>(
            &'a self,
            _: &'a str,
        ) -> BoxFuture<'a, Result<Notifications, InspectError>> {
            unused()
        }
        fn stream<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<StreamFacts, InspectError>> {
            unused()
        }
    }

    #[tokio::test]
    async fn dead_letters_are_a_warning_naming_their_count_and_no_queue_is_no_check() {
        assert!(doctor(None).backfill_queue().await.is_none());
        let queue = Arc::new(MemoryQueue::default());
        *queue.stats.lock().unwrap() = QueueStats {
            visible: 120,
            in_flight: 20,
            dead_letter_arn: Some("arn:aws:sqs:us-east-1:123456789012:dlq".into()),
            dead_letters: Some(0),
        };
        let check = doctor(Some(queue.clone())).backfill_queue().await.unwrap();
        assert_eq!(check.status, super::Status::Ok, "{check:?}");
        assert!(
            check.detail.contains("120 messages waiting, 20 in flight"),
            "{}",
            check.detail
        );
        queue.stats.lock().unwrap().dead_letters = Some(3);
        let check = doctor(Some(queue)).backfill_queue().await.unwrap();
        assert_eq!(check.status, super::Status::Warning);
        assert!(
            check.detail.contains("3 messages in the dead-letter queue"),
            "{}",
            check.detail
        );
        assert!(check.fix.unwrap().contains("redrive"));
    }
}
