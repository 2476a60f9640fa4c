//! The doctor's tenth check, `backfill_queue`, when `BACKFILL_QUEUE_URL` is set: the backfill
//! queue's depth (waiting and in flight), how old its oldest message is, and its dead-letter
//! queue's depth. Messages in the dead-letter queue are objects the workers failed on
//! `maxReceiveCount` times: a warning, since the rest of the deployment works.
//!
//! SQS does not say through its API how old the oldest message is; CloudWatch's
//! `ApproximateAgeOfOldestMessage` metric of the queue does (`AWS/SQS`, dimension `QueueName`,
//! published every minute while the queue is active). The check reads the newest one-minute
//! `Maximum` of the last [`AGE_WINDOW_S`]: the newest, not the largest of the window, so a
//! backlog drained minutes ago is not reported as current. No datapoint is "no data yet", not a
//! problem: SQS stops publishing for a queue idle for hours, and a new queue has none.
//!
//! The age is a warning from half the queue's message retention on. A backfill
//! of a year legitimately keeps messages waiting for days (the walk enqueues faster than the
//! stream's quota lets workers drain), so a fixed day would cry wolf; but SQS deletes a message
//! at the end of its retention without sending it to the dead-letter queue, and the walk's
//! cursor has already moved past its object: that object is then left to `backfill --manifest`
//! or a walk from an earlier `--since`. At half the retention the oldest message has as long
//! left as it has waited: time to raise `BackfillConcurrency` or the stream's quota, or to
//! lengthen the retention (the template's 14 days warns at 7; SQS's default 4 days at 2).

use super::{age_text, Check, Doctor, Status};
use crate::ports::{Datapoint, MetricError, MetricQuery};

/// The check's number and name.
const NUMBER: u8 = 10;
const NAME: &str = "backfill_queue";

/// How far back the age is looked for: a quarter of an hour of one-minute datapoints.
const AGE_WINDOW_S: i64 = 15 * 60;
/// SQS's default retention, for a queue that did not say its own.
const DEFAULT_RETENTION_S: u64 = 4 * 86_400;

/// The CloudWatch query of a queue's oldest message age.
fn age_query(queue_name: &str) -> MetricQuery {
    MetricQuery {
        namespace: "AWS/SQS".into(),
        name: "ApproximateAgeOfOldestMessage".into(),
        dimension: ("QueueName".into(), queue_name.into()),
        window_s: AGE_WINDOW_S,
        period_s: 60,
    }
}

/// The detail and, when not ok, the fix, of the age read back.
fn age_part(
    age: Option<Result<Option<Datapoint>, MetricError>>,
    retention_s: Option<u64>,
) -> (String, Option<&'static str>) {
    match age {
        None => ("oldest message age not read".into(), None),
        Some(Ok(None)) => (
            format!(
                "oldest message age: no data yet (no ApproximateAgeOfOldestMessage datapoint in the last {})",
                age_text(AGE_WINDOW_S)
            ),
            None,
        ),
        Some(Ok(Some(point))) => {
            // Seconds as CloudWatch reports them; `as` saturates (and a NaN is 0).
            let age_s = point.maximum.max(0.0) as u64;
            let retention = retention_s.unwrap_or(DEFAULT_RETENTION_S);
            let shown = age_text(i64::try_from(age_s).unwrap_or(i64::MAX));
            // A warning from half the retention on.
            if age_s >= retention / 2 {
                let retention = age_text(i64::try_from(retention).unwrap_or(i64::MAX));
                (
                    format!(
                        "oldest message {shown} old, past half the retention of {retention} (SQS deletes it unread at {retention})"
                    ),
                    Some("The workers drain the queue slower than it fills: raise BackfillConcurrency and the stream's quota (docs/BACKFILL_AT_SCALE.md), or lengthen the queue's MessageRetentionPeriod; an object whose message expires is found again by backfill --manifest."),
                )
            } else {
                (format!("oldest message {shown} old"), None)
            }
        }
        Some(Err(e)) if e.denied => (
            format!("oldest message age unknown: {e}"),
            Some("Let the doctor's credentials call cloudwatch:GetMetricData (the template grants it to the function with BackfillFanOut)."),
        ),
        Some(Err(e)) => (
            format!("oldest message age unknown: {e}"),
            Some("Run the doctor again; CloudWatch did not answer."),
        ),
    }
}

impl Doctor {
    /// 10: the backfill queue; `None` without one.
    pub(super) async fn backfill_queue(&self) -> Option<Check> {
        let queue = self.queue.as_ref()?;
        let url = crate::redact::redact(queue.url()).unwrap_or_else(|| queue.url().to_string());
        let stats = match queue.stats().await {
            Ok(stats) => stats,
            Err(e) => {
                return Some(Check::not_ok(
                    NUMBER,
                    NAME,
                    Status::Failed,
                    format!("cannot read the backfill queue: {e}"),
                    "Check BACKFILL_QUEUE_URL and that the function may call sqs:GetQueueAttributes on the queue and sqs:GetQueueUrl and sqs:GetQueueAttributes on its dead-letter queue.",
                ))
            }
        };
        let age = match &self.queue_age {
            Some(metrics) => {
                let query = age_query(crate::settings::queue::queue_name(queue.url()));
                Some(metrics.newest_maximum(&query).await)
            }
            None => None,
        };
        let (age, age_fix) = age_part(age, stats.retention_s);
        let mut detail = format!(
            "{url}: {} messages waiting, {} in flight; {age}",
            stats.visible, stats.in_flight
        );
        let mut fixes: Vec<&str> = age_fix.into_iter().collect();
        match (&stats.dead_letter_arn, stats.dead_letters) {
            (None, _) => {
                detail.push_str("; no dead-letter queue");
                fixes.push("Give the queue a redrive policy (the template's BackfillFanOut does): a message that fails every time is otherwise received again until it expires.");
            }
            (Some(_), Some(0) | None) => detail.push_str("; the dead-letter queue is empty"),
            (Some(arn), Some(dead)) => {
                detail.push_str(&format!("; {dead} messages in the dead-letter queue {arn}"));
                fixes.push("Read a message of the dead-letter queue to find the object and the function's log lines for its key; once fixed, redrive the messages to the backfill queue (aws sqs start-message-move-task).");
            }
        }
        Some(if fixes.is_empty() {
            Check::ok(NUMBER, NAME, detail)
        } else {
            Check::not_ok(NUMBER, NAME, Status::Warning, detail, fixes.join(" "))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::ports::metric::MemoryMetrics;
    use crate::ports::queue::MemoryQueue;
    use crate::ports::{
        BoxFuture, BucketFacts, Datapoint, Identity, InspectError, MetricError, Notifications,
        QueueStats, StreamFacts,
    };

    fn doctor(queue: Option<Arc<MemoryQueue>>) -> super::Doctor {
        doctor_with_age(queue, None)
    }

    fn doctor_with_age(
        queue: Option<Arc<MemoryQueue>>,
        age: Option<Arc<MemoryMetrics>>,
    ) -> super::Doctor {
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
            queue_age: age.map(|a| a as Arc<dyn crate::ports::ReadMetrics>),
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
            retention_s: Some(1_209_600),
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

    /// A queue with an empty dead-letter queue and the template's 14 days of retention.
    fn healthy_queue() -> Arc<MemoryQueue> {
        let queue = Arc::new(MemoryQueue::default());
        *queue.stats.lock().unwrap() = QueueStats {
            visible: 7,
            in_flight: 1,
            dead_letter_arn: Some("arn:aws:sqs:us-east-1:123456789012:dlq".into()),
            dead_letters: Some(0),
            retention_s: Some(14 * 86_400),
        };
        queue
    }

    async fn check_with(
        answer: Result<Option<Datapoint>, MetricError>,
    ) -> (super::Check, Arc<MemoryMetrics>) {
        let metrics = Arc::new(MemoryMetrics::answering(answer));
        let check = doctor_with_age(Some(healthy_queue()), Some(metrics.clone()))
            .backfill_queue()
            .await
            .unwrap();
        (check, metrics)
    }

    fn point(age_s: f64) -> Result<Option<Datapoint>, MetricError> {
        Ok(Some(Datapoint {
            at_ms: 0,
            maximum: age_s,
        }))
    }

    #[tokio::test]
    async fn the_oldest_message_age_is_read_from_the_queues_metric_and_reported() {
        let (check, metrics) = check_with(point(17.0 * 60.0 + 5.0)).await;
        assert_eq!(check.status, super::Status::Ok, "{check:?}");
        assert!(
            check.detail.contains("oldest message 17 min old"),
            "{}",
            check.detail
        );
        let asked = metrics.asked.lock().unwrap().clone();
        assert_eq!(asked, vec![super::age_query("backfill")]);
        assert_eq!(asked[0].namespace, "AWS/SQS");
        assert_eq!(asked[0].name, "ApproximateAgeOfOldestMessage");
        assert_eq!(asked[0].dimension, ("QueueName".into(), "backfill".into()));
    }

    #[tokio::test]
    async fn no_datapoint_is_no_data_yet_and_not_a_problem() {
        let (check, _) = check_with(Ok(None)).await;
        assert_eq!(check.status, super::Status::Ok, "{check:?}");
        assert!(
            check.detail.contains("oldest message age: no data yet"),
            "{}",
            check.detail
        );
    }

    #[tokio::test]
    async fn a_message_older_than_half_the_retention_is_a_warning_naming_the_retention() {
        // 14 days of retention: 6 days 23 hours is fine, 7 days is a warning.
        let (check, _) = check_with(point(7.0 * 86_400.0 - 3600.0)).await;
        assert_eq!(check.status, super::Status::Ok, "{check:?}");
        let (check, _) = check_with(point(7.0 * 86_400.0)).await;
        assert_eq!(check.status, super::Status::Warning, "{check:?}");
        assert!(
            check
                .detail
                .contains("oldest message 7 d 0 h old, past half the retention of 14 d 0 h"),
            "{}",
            check.detail
        );
        assert!(check.fix.unwrap().contains("BackfillConcurrency"));
        // A queue that does not say its retention: SQS's default 4 days, so 2 days warns.
        assert!(super::age_part(Some(point(2.0 * 86_400.0)), None)
            .1
            .is_some());
        assert!(super::age_part(Some(point(2.0 * 86_400.0 - 1.0)), None)
            .1
            .is_none());
    }

    #[tokio::test]
    async fn metrics_denied_is_a_warning_naming_the_permission_and_the_depth_is_still_reported() {
        let denied = MetricError {
            message: "GetMetricData ApproximateAgeOfOldestMessage: AccessDenied: not allowed"
                .into(),
            denied: true,
        };
        let (check, _) = check_with(Err(denied)).await;
        assert_eq!(check.status, super::Status::Warning, "{check:?}");
        assert!(
            check.detail.contains("7 messages waiting, 1 in flight")
                && check.detail.contains("oldest message age unknown"),
            "{}",
            check.detail
        );
        assert!(check.fix.unwrap().contains("cloudwatch:GetMetricData"));
    }
}
