//! The SQS adapter of the queue port: the backfill's fan-out sends with `SendMessageBatch`, and
//! the doctor reads the queue's depth and its dead-letter queue's (`GetQueueAttributes`).

use aws_config::SdkConfig;
use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};

use super::retry;
use crate::ports::{BoxFuture, FailedEntry, Queue, QueueEntry, QueueError, QueueStats};
use crate::settings::queue::queue_region;

/// The backfill's queue.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsQueue {
    /// A client for the queue at `url`, in the region its host names (else `base`'s).
    pub fn new(base: &SdkConfig, url: &str) -> SqsQueue {
        let mut config = aws_sdk_sqs::config::Builder::from(base)
            .timeout_config(super::clients::control_timeouts());
        if let Some(region) = queue_region(url) {
            config = config.region(aws_sdk_sqs::config::Region::new(region.to_string()));
        }
        SqsQueue {
            client: aws_sdk_sqs::Client::from_conf(config.build()),
            url: url.to_string(),
        }
    }

    fn error(&self, message: String, retryable: bool) -> QueueError {
        QueueError {
            queue: self.url.clone(),
            message,
            retryable,
        }
    }

    /// The queue's depth and in-flight count, and its dead-letter queue's ARN and depth.
    pub async fn stats(&self) -> Result<QueueStats, QueueError> {
        let mut stats = stats_of(&self.client, &self.url)
            .await
            .map_err(|(message, retryable)| self.error(message, retryable))?;
        if let Some(arn) = stats.dead_letter_arn.clone() {
            stats.dead_letters = Some(self.dead_letter_stats(&arn).await?.visible);
        }
        Ok(stats)
    }

    /// The dead-letter queue's depth, from its ARN (`arn:aws:sqs:REGION:ACCOUNT:NAME`).
    pub async fn dead_letter_stats(&self, arn: &str) -> Result<QueueStats, QueueError> {
        let mut parts = arn.split(':');
        let (Some("arn"), _, Some("sqs"), _, Some(account), Some(name), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(self.error(format!("{arn:?} is not an SQS queue ARN"), false));
        };
        let found = self
            .client
            .get_queue_url()
            .queue_name(name)
            .queue_owner_aws_account_id(account)
            .send()
            .await
            .map_err(|e| {
                let c = retry::classify(&e);
                self.error(
                    format!("GetQueueUrl {name}: {}: {}", c.code, c.message),
                    c.retryable,
                )
            })?;
        let url = found.queue_url().unwrap_or_default().to_string();
        stats_of(&self.client, &url)
            .await
            .map_err(|(message, retryable)| self.error(message, retryable))
    }
}

async fn stats_of(client: &aws_sdk_sqs::Client, url: &str) -> Result<QueueStats, (String, bool)> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .attribute_names(QueueAttributeName::MessageRetentionPeriod)
        .send()
        .await
        .map_err(|e| {
            let c = retry::classify(&e);
            (
                format!("GetQueueAttributes: {}: {}", c.code, c.message),
                c.retryable,
            )
        })?;
    let attributes = out.attributes();
    let read = |name: QueueAttributeName| {
        attributes
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let number = |name| read(name).unwrap_or(0);
    let dead_letter_arn = attributes
        .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
        .and_then(|policy| serde_json::from_str::<serde_json::Value>(policy).ok())
        .and_then(|policy| policy["deadLetterTargetArn"].as_str().map(str::to_string));
    Ok(QueueStats {
        visible: number(QueueAttributeName::ApproximateNumberOfMessages),
        in_flight: number(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        dead_letter_arn,
        dead_letters: None,
        retention_s: read(QueueAttributeName::MessageRetentionPeriod),
    })
}

impl Queue for SqsQueue {
    fn send_batch<'a>(
        &'a self,
        entries: &'a [QueueEntry],
    ) -> BoxFuture<'a, Result<Vec<FailedEntry>, QueueError>> {
        Box::pin(async move {
            let mut request = self.client.send_message_batch().queue_url(&self.url);
            for entry in entries {
                let built = SendMessageBatchRequestEntry::builder()
                    .id(&entry.id)
                    .message_body(&entry.body)
                    .build()
                    .map_err(|e| self.error(e.to_string(), false))?;
                request = request.entries(built);
            }
            let out = request.send().await.map_err(|e| {
                let c = retry::classify(&e);
                self.error(
                    format!("SendMessageBatch: {}: {}", c.code, c.message),
                    c.retryable,
                )
            })?;
            Ok(out
                .failed()
                .iter()
                .map(|f| FailedEntry {
                    id: f.id().to_string(),
                    code: f.code().to_string(),
                    message: f.message().unwrap_or_default().to_string(),
                    sender_fault: f.sender_fault(),
                })
                .collect())
        })
    }

    fn url(&self) -> &str {
        &self.url
    }

    fn stats(&self) -> BoxFuture<'_, Result<QueueStats, QueueError>> {
        Box::pin(SqsQueue::stats(self))
    }
}
