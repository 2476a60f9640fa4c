//! Forwarding one CloudWatch Logs subscription batch: a `CONTROL_MESSAGE` is acknowledged and
//! produces nothing, a group that is not a Redshift audit log group fails naming it, a log type
//! not in `LOG_TYPES` is skipped with a log line, and every other batch goes through the
//! pipeline ([`crate::pipeline::run_batch`]) to a fresh sink. A batch the sink could not deliver
//! fails, so the invocation fails and CloudWatch Logs (through Lambda's retries) sends it again.
//! There is no ledger: a batch has no ETag, and the record ids make a resent batch's records
//! recognisable downstream.

use std::time::Instant;

use serde::Serialize;

use std::cell::RefCell;

use super::session_join::BatchJoin;
use super::{send_all, Forwarder, Lines, BATCHES_IN_FLIGHT, BATCH_BYTES};
use crate::cloudwatch::{batch_group, CloudWatchError, LogsData};
use crate::pipeline::{self, BatchSpec, Output, Stopped};
use crate::ports::Fetch;
use crate::report;
use crate::sessions::state::{SessionStore, Traffic};
use crate::sink::{Sink, SinkError, SinkStats};

/// What forwarding one batch did: logged as one JSON line like an object's receipt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BatchReceipt {
    pub log_group: String,
    pub log_stream: String,
    /// The batch's `owner`.
    pub account_id: String,
    pub log_type: &'static str,
    /// Log events in the batch.
    pub log_events: u64,
    /// Bytes of the log events' messages.
    pub text_bytes: u64,
    pub input_lines: u64,
    pub records: u64,
    pub parse_errors: u64,
    pub split_records: u64,
    pub redacted_records: u64,
    #[serde(flatten)]
    pub sink: SinkStats,
    /// With the session join: user activity records joined to their session, and those left
    /// without one (`crate::sessions`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joined_records: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unjoined_records: Option<u64>,
    /// The session state this batch read or wrote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_state: Option<Traffic>,
    pub first_record_time: Option<String>,
    pub last_record_time: Option<String>,
    pub duration_ms: u64,
}

/// What a batch came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batched {
    /// Its records were delivered.
    Sent(Box<BatchReceipt>),
    /// A `CONTROL_MESSAGE` (CloudWatch Logs checking the destination): nothing to forward.
    Control { log_group: String },
    /// Its log type is not selected in `LOG_TYPES`.
    Skipped { log_group: String, reason: String },
}

/// Why a batch could not be forwarded. Every variant names the log group.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Not a Redshift audit log group: subscribing the function to it is a mistake.
    #[error("{0}")]
    Group(CloudWatchError),
    #[error("log group {log_group}, stream {log_stream}: {source}")]
    Sink {
        log_group: String,
        log_stream: String,
        source: SinkError,
    },
    #[error("log group {log_group}, stream {log_stream}: {reason}")]
    Internal {
        log_group: String,
        log_stream: String,
        reason: String,
    },
}

impl BatchError {
    /// Whether sending the same batch again can succeed without a change. Undelivered records
    /// are worth another try (CloudWatch Logs sends the batch again when the invocation fails).
    pub fn is_retryable(&self) -> bool {
        !matches!(self, BatchError::Group(_))
    }
}

/// Sends a batch's records to `sink`; see the module documentation.
pub async fn forward_batch<S: Sink>(
    data: LogsData,
    log_types: &[crate::logs::LogType],
    region: Option<String>,
    output: Output,
    sessions: Option<&SessionStore>,
    mut sink: S,
) -> Result<Batched, BatchError> {
    let started = Instant::now();
    if data.is_control() {
        return Ok(Batched::Control {
            log_group: data.log_group,
        });
    }
    let group = batch_group(&data).map_err(BatchError::Group)?;
    if !log_types.contains(&group.log_type) {
        return Ok(Batched::Skipped {
            reason: format!("log type {} is not selected in LOG_TYPES", group.log_type),
            log_group: data.log_group,
        });
    }
    let (log_group, log_stream) = (data.log_group.clone(), data.log_stream.clone());
    let mut receipt = BatchReceipt {
        log_group: log_group.clone(),
        log_stream: log_stream.clone(),
        account_id: data.owner.clone(),
        log_type: group.log_type.as_str(),
        log_events: data.log_events.len() as u64,
        ..BatchReceipt::default()
    };
    let mut join = match sessions {
        Some(store) => BatchJoin::prepare(store, &data, &group, region.as_deref()).await,
        None => None,
    };
    let index = join.as_mut().and_then(|j| j.index.take());
    let builder = join.as_mut().and_then(|j| j.builder.take());
    let joining = index.is_some();
    let first_event = data.log_events.first().map_or("", |e| e.id.as_str());
    sink.begin(&[&log_group, &log_stream, first_event]);
    let max_line = sink.max_line();
    let (lines_tx, lines_rx) = tokio::sync::mpsc::channel::<Lines>(BATCHES_IN_FLIGHT);
    let parsing = tokio::task::spawn_blocking(move || {
        let collect = builder.map(RefCell::new);
        let spec = BatchSpec {
            group: &group,
            output,
            region: region.as_deref(),
            max_line,
            sessions: index.as_ref(),
            collect: collect.as_ref(),
        };
        let mut batch = Lines::default();
        let (counts, result) = pipeline::run_batch(&data, &spec, &mut |line| {
            batch.push(line);
            batch.bytes.len() < BATCH_BYTES
                || lines_tx.blocking_send(std::mem::take(&mut batch)).is_ok()
        });
        if !batch.is_empty() {
            let _ = lines_tx.blocking_send(batch);
        }
        // Messages are read from memory: only a stopped consumer ends the loop early, and
        // then the sink's error is the one reported.
        let failed = match result {
            Ok(()) | Err(Stopped::Emit) => None,
            Err(Stopped::Read(e)) => {
                let _ = lines_tx.blocking_send(Lines::broken());
                Some(e.to_string())
            }
        };
        (counts, failed, collect.map(RefCell::into_inner), data)
    });
    let sent = send_all(lines_rx, sink).await;
    let internal = |reason: String| BatchError::Internal {
        log_group: log_group.clone(),
        log_stream: log_stream.clone(),
        reason,
    };
    let (counts, failed, builder, data) = parsing.await.map_err(|e| internal(e.to_string()))?;
    let stats = sent.map_err(|source| BatchError::Sink {
        log_group: log_group.clone(),
        log_stream: log_stream.clone(),
        source,
    })?;
    if let Some(reason) = failed {
        return Err(internal(reason));
    }
    if let (Some(join), Some(store)) = (join.as_mut(), sessions) {
        join.finish(store, &data, builder).await;
    }
    receipt.joined_records = joining.then_some(counts.joined);
    receipt.unjoined_records = joining.then_some(counts.unjoined);
    receipt.session_state = join.map(|j| j.traffic);
    receipt.text_bytes = counts.text_bytes;
    receipt.input_lines = counts.lines;
    receipt.records = counts.records;
    receipt.parse_errors = counts.parse_errors;
    receipt.split_records = counts.split_records;
    receipt.redacted_records = counts.redacted;
    receipt.sink = stats;
    receipt.first_record_time = counts.first_time.map(|t| t.to_string());
    receipt.last_record_time = counts.last_time.map(|t| t.to_string());
    receipt.duration_ms = started.elapsed().as_millis() as u64;
    Ok(Batched::Sent(Box::new(receipt)))
}

impl<F: Fetch, M: Fn() -> S + Send + Sync, S: Sink> Forwarder<F, M> {
    /// Forwards a CloudWatch Logs batch to a fresh sink with this forwarder's log types,
    /// output and region, and logs what it came to: the receipt (`batch forwarded`), the
    /// acknowledged control message, the skipped log type, or the failure.
    pub async fn forward_log_batch(&self, data: LogsData) -> Result<Batched, BatchError> {
        let (group, stream) = (data.log_group.clone(), data.log_stream.clone());
        let result = forward_batch(
            data,
            &self.filter.log_types,
            self.region.clone(),
            self.output,
            self.sessions.as_ref(),
            (self.make_sink)(),
        )
        .await;
        match &result {
            Ok(Batched::Sent(receipt)) => {
                report::eprint(&report::line(
                    report::Level::Info,
                    "batch forwarded",
                    "receipt",
                    receipt,
                ));
                if let Some(document) = super::metrics::batch_document(receipt) {
                    self.metrics.emit(&document);
                }
            }
            Ok(Batched::Control { log_group }) => {
                tracing::info!(log_group = %log_group, "acknowledged CloudWatch Logs control message")
            }
            Ok(Batched::Skipped { log_group, reason }) => {
                tracing::info!(log_group = %log_group, log_stream = %stream, reason = %reason, "ignored log batch")
            }
            Err(e) => {
                tracing::error!(log_group = %group, log_stream = %stream, retryable = e.is_retryable(), error = %e, "log batch failed")
            }
        }
        result
    }
}
