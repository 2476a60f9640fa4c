//! The queue port: where the backfill's fan-out sends one message per object (SQS in Lambda,
//! [`MemoryQueue`] in tests), and what the doctor reads of it.

use std::collections::VecDeque;
use std::sync::Mutex;

use super::BoxFuture;

/// Most entries one `SendMessageBatch` call takes (SQS quota).
pub const MAX_BATCH_ENTRIES: usize = 10;

/// One message to send: an id unique within its batch, and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    pub id: String,
    pub body: String,
}

/// An entry of a batch that the queue did not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedEntry {
    pub id: String,
    /// The queue's error code (`InternalError`, `ThrottlingException`, ...).
    pub code: String,
    pub message: String,
    /// The queue says the entry itself is at fault (too large, bad attribute): sending it
    /// again does not help.
    pub sender_fault: bool,
}

/// The call failed as a whole.
#[derive(Debug, Clone, thiserror::Error)]
#[error("queue {queue}: {message}")]
pub struct QueueError {
    pub queue: String,
    pub message: String,
    pub retryable: bool,
}

/// What the queue says about itself (the doctor's report).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Messages waiting (`ApproximateNumberOfMessages`).
    pub visible: u64,
    /// Messages received and not yet deleted (`ApproximateNumberOfMessagesNotVisible`).
    pub in_flight: u64,
    /// The dead-letter queue's ARN, from the redrive policy.
    pub dead_letter_arn: Option<String>,
    /// Messages waiting in the dead-letter queue, when it could be read.
    pub dead_letters: Option<u64>,
    /// How long SQS keeps a message before deleting it unread (`MessageRetentionPeriod`),
    /// in seconds, when it said.
    pub retention_s: Option<u64>,
}

/// A message queue (SQS in Lambda; tests use [`MemoryQueue`]).
pub trait Queue: Send + Sync {
    /// One `SendMessageBatch` call of at most [`MAX_BATCH_ENTRIES`] entries; the entries it
    /// did not take.
    fn send_batch<'a>(
        &'a self,
        entries: &'a [QueueEntry],
    ) -> BoxFuture<'a, Result<Vec<FailedEntry>, QueueError>>;
    /// The queue's URL, for messages.
    fn url(&self) -> &str;
    /// The queue's depth and its dead-letter queue's (the doctor).
    fn stats(&self) -> BoxFuture<'_, Result<QueueStats, QueueError>>;
}

/// A queue in memory: keeps what it took, and refuses entries as told.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    pub sent: Mutex<Vec<QueueEntry>>,
    /// Calls made.
    pub calls: Mutex<u64>,
    /// For each coming call, the positions of the entries to refuse (a plan, consumed in order).
    pub refuse: Mutex<VecDeque<Vec<usize>>>,
    /// Refuse every call as a whole.
    pub down: Mutex<bool>,
    /// What [`Queue::stats`] answers.
    pub stats: Mutex<QueueStats>,
}

impl MemoryQueue {
    /// The bodies taken, in order.
    pub fn bodies(&self) -> Vec<String> {
        let sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        sent.iter().map(|e| e.body.clone()).collect()
    }
}

impl Queue for MemoryQueue {
    fn send_batch<'a>(
        &'a self,
        entries: &'a [QueueEntry],
    ) -> BoxFuture<'a, Result<Vec<FailedEntry>, QueueError>> {
        *self.calls.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        if *self.down.lock().unwrap_or_else(|e| e.into_inner()) {
            return Box::pin(async move {
                Err(QueueError {
                    queue: "memory".into(),
                    message: "down".into(),
                    retryable: true,
                })
            });
        }
        let refused = self
            .refuse
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
            .unwrap_or_default();
        let mut failed = Vec::new();
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        for (i, entry) in entries.iter().enumerate() {
            if refused.contains(&i) {
                failed.push(FailedEntry {
                    id: entry.id.clone(),
                    code: "InternalError".into(),
                    message: "refused as planned".into(),
                    sender_fault: false,
                });
            } else {
                sent.push(entry.clone());
            }
        }
        Box::pin(async move { Ok(failed) })
    }

    fn url(&self) -> &str {
        "memory://backfill"
    }

    fn stats(&self) -> BoxFuture<'_, Result<QueueStats, QueueError>> {
        let stats = self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Box::pin(async move { Ok(stats) })
    }
}
