//! The metric port: one statistic of one metric read back (CloudWatch in Lambda,
//! [`MemoryMetrics`] in tests). The doctor reads the backfill queue's oldest message age with
//! it: SQS does not say it through its own API, only as a metric.

use std::sync::Mutex;

use super::BoxFuture;

/// One metric with one dimension, e.g. `AWS/SQS` `ApproximateAgeOfOldestMessage`,
/// `QueueName` = the queue's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricQuery {
    pub namespace: String,
    pub name: String,
    pub dimension: (String, String),
    /// How far back to look, in seconds.
    pub window_s: i64,
    /// The length of one datapoint, in seconds.
    pub period_s: i32,
}

/// A datapoint read back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Datapoint {
    /// The start of its period, ms since the epoch.
    pub at_ms: i64,
    /// Its `Maximum` statistic.
    pub maximum: f64,
}

/// The call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MetricError {
    pub message: String,
    /// Access denied: the credentials lack the permission to read metrics.
    pub denied: bool,
}

/// Reads metrics back (CloudWatch in Lambda; tests use [`MemoryMetrics`]).
pub trait ReadMetrics: Send + Sync {
    /// The newest datapoint of `query` within its window (its `Maximum`); `None` when the
    /// window holds none (a queue idle for hours, or metrics not published yet).
    fn newest_maximum<'a>(
        &'a self,
        query: &'a MetricQuery,
    ) -> BoxFuture<'a, Result<Option<Datapoint>, MetricError>>;
}

/// Metrics in memory: answers what it is told, and keeps the queries asked.
#[derive(Debug, Default)]
pub struct MemoryMetrics {
    pub answer: Mutex<Option<Result<Option<Datapoint>, MetricError>>>,
    pub asked: Mutex<Vec<MetricQuery>>,
}

impl MemoryMetrics {
    /// A twin that answers `answer` to every query.
    pub fn answering(answer: Result<Option<Datapoint>, MetricError>) -> MemoryMetrics {
        MemoryMetrics {
            answer: Mutex::new(Some(answer)),
            asked: Mutex::default(),
        }
    }
}

impl ReadMetrics for MemoryMetrics {
    fn newest_maximum<'a>(
        &'a self,
        query: &'a MetricQuery,
    ) -> BoxFuture<'a, Result<Option<Datapoint>, MetricError>> {
        self.asked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(query.clone());
        let answer = self
            .answer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or(Ok(None));
        Box::pin(async move { answer })
    }
}
