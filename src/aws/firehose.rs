//! Firehose sink: PutRecordBatch calls, a bounded number in flight, re-sending only failed entries.
//!
//! Retries are owned here, not by the SDK: each call disables the SDK's retry layer. One budget
//! ([`RetryPolicy::max_attempts`]) then covers both failed entries of a successful call (which the
//! SDK never retries) and whole-call errors, instead of SDK attempts multiplying ours; the worst
//! case stays known against the Lambda deadline, and the error names the last code seen.
//!
//! Progress ([`Sink::accepted`]): each batch is numbered when dispatched and carries a
//! consecutive run of lines; a batch counts once every entry of it was accepted, and the
//! accepted prefix grows only over the leading run of such batches, so calls that end out of
//! order (more than one in flight) never count lines past one still pending.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_firehose::config::http::HttpResponse;
use aws_sdk_firehose::config::retry::RetryConfig;
use aws_sdk_firehose::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_firehose::operation::put_record_batch::{PutRecordBatchError, PutRecordBatchOutput};
use aws_sdk_firehose::Client;
use aws_smithy_types::body::SdkBody;
use tokio::task::{JoinError, JoinSet};

use super::put_body::PutBody;
use super::retry;
use crate::sink::pack::{Batch, Packer};
use crate::sink::{
    Accepted, Sink, SinkError, SinkStats, Taken, BASE_DELAY, MAX_ATTEMPTS, MAX_DELAY, MAX_IN_FLIGHT,
};

/// How often and how patiently a batch is re-sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Calls per batch, the first included (at least 1).
    pub max_attempts: u32,
    /// Backoff ceiling before the first retry; doubles each retry.
    pub base_delay: Duration,
    /// Largest backoff ceiling.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: MAX_ATTEMPTS,
            base_delay: BASE_DELAY,
            max_delay: MAX_DELAY,
        }
    }
}

impl RetryPolicy {
    /// Wait before retry number `retry` (1 = first retry): "full jitter", a uniform draw in
    /// `[0, min(max_delay, base_delay * 2^(retry-1))]`, so concurrent callers spread out.
    /// `draw` is a uniform random `u64`.
    fn backoff(&self, retry: u32, draw: u64) -> Duration {
        crate::sink::backoff::full_jitter(self.base_delay, self.max_delay, retry, draw)
    }
}

/// Sends NDJSON lines to one Firehose delivery stream.
///
/// Lines are packed into records (or one record each when `pack` is false), records into calls
/// of at most 500 records and 4 MiB, and at most [`MAX_IN_FLIGHT`] calls run at once. Must be
/// used inside a Tokio runtime: calls run as tasks.
#[derive(Debug)]
pub struct FirehoseSink {
    client: Client,
    stream: Arc<str>,
    policy: RetryPolicy,
    max_in_flight: usize,
    packer: Packer,
    in_flight: JoinSet<(u64, Result<CallStats, SinkError>)>,
    calls: CallStats,
    /// Batches dispatched and not yet counted: number, lines and bytes, and whether all their
    /// entries were accepted.
    pending: VecDeque<(u64, Accepted, bool)>,
    next_batch: u64,
    accepted: Accepted,
    /// What the dispatched batches hold (records, payload, billed bytes).
    dispatched: SinkStats,
}

impl FirehoseSink {
    /// A sink for `stream`; `pack` is the `PACK_RECORDS` setting.
    pub fn new(client: Client, stream: impl Into<String>, pack: bool) -> Self {
        FirehoseSink {
            client,
            stream: Arc::from(stream.into()),
            policy: RetryPolicy::default(),
            max_in_flight: MAX_IN_FLIGHT,
            packer: Packer::new(pack),
            in_flight: JoinSet::new(),
            calls: CallStats::default(),
            pending: VecDeque::new(),
            next_batch: 0,
            accepted: Accepted::default(),
            dispatched: SinkStats::default(),
        }
    }

    /// Replaces the default retry policy (tests use zero delays).
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Replaces [`MAX_IN_FLIGHT`]; at least one call is always allowed.
    pub fn with_max_in_flight(mut self, calls: usize) -> Self {
        self.max_in_flight = calls.max(1);
        self
    }

    /// Starts a call for `batch`, first waiting for a free slot.
    async fn dispatch(&mut self, batch: Batch) -> Result<(), SinkError> {
        // Collect calls that already ended, so a failure stops the sender early.
        while let Some(done) = self.in_flight.try_join_next() {
            self.absorb(done)?;
        }
        while self.in_flight.len() >= self.max_in_flight {
            match self.in_flight.join_next().await {
                Some(done) => self.absorb(done)?,
                None => break,
            }
        }
        let number = self.next_batch;
        self.next_batch += 1;
        let size = Accepted {
            lines: batch.lines,
            bytes: batch.bytes as u64,
        };
        self.pending.push_back((number, size, false));
        self.dispatched.lines += batch.lines;
        self.dispatched.firehose_records += batch.records.len() as u64;
        self.dispatched.payload_bytes += batch.bytes as u64;
        self.dispatched.billed_bytes += batch.billed;
        // Encoded here, once: the call keeps the body, not the records.
        let body = PutBody::new(&self.stream, &batch.records, &batch.record_lines);
        let call = put_batch(
            self.client.clone(),
            Arc::clone(&self.stream),
            body,
            self.policy,
        );
        self.in_flight.spawn(async move { (number, call.await) });
        Ok(())
    }

    fn absorb(
        &mut self,
        done: Result<(u64, Result<CallStats, SinkError>), JoinError>,
    ) -> Result<(), SinkError> {
        let (number, result) = done.map_err(|e| SinkError::Internal(format!("call task: {e}")))?;
        self.calls.add(result?);
        if let Some(entry) = self.pending.iter_mut().find(|(n, _, _)| *n == number) {
            entry.2 = true;
        }
        while let Some(&(_, size, true)) = self.pending.front() {
            self.accepted.lines += size.lines;
            self.accepted.bytes += size.bytes;
            self.pending.pop_front();
        }
        Ok(())
    }

    /// Waits for every call in flight.
    async fn drain(&mut self) -> Result<(), SinkError> {
        while let Some(done) = self.in_flight.join_next().await {
            self.absorb(done)?;
        }
        Ok(())
    }
}

impl Sink for FirehoseSink {
    async fn send<L>(&mut self, line: L) -> Result<(), SinkError>
    where
        L: AsRef<[u8]> + Send,
    {
        if let Some(batch) = self.packer.push(line.as_ref())? {
            self.dispatch(batch).await?;
        }
        Ok(())
    }

    async fn send_run(&mut self, run: &[u8]) -> Result<Taken, SinkError> {
        let mut taken = Taken::default();
        while taken.bytes < run.len() {
            let (more, batch) = self.packer.push_run(&run[taken.bytes..])?;
            taken.bytes += more.bytes;
            taken.lines += more.lines;
            if let Some(batch) = batch {
                let before = self.accepted;
                self.dispatch(batch).await?;
                if self.accepted != before {
                    break;
                }
            }
        }
        Ok(taken)
    }

    async fn finish(mut self) -> Result<SinkStats, SinkError> {
        let (batches, mut stats) = self.packer.finish();
        for batch in batches {
            self.dispatch(batch).await?;
        }
        self.drain().await?;
        stats.calls = self.calls.calls;
        stats.retries = self.calls.retries;
        stats.resent_records = self.calls.resent_records;
        Ok(stats)
    }

    fn accepted(&self) -> Accepted {
        self.accepted
    }

    async fn stop(mut self) -> Result<(SinkStats, Accepted), SinkError> {
        self.drain().await?;
        let mut stats = self.dispatched;
        stats.calls = self.calls.calls;
        stats.retries = self.calls.retries;
        stats.resent_records = self.calls.resent_records;
        Ok((stats, self.accepted))
    }
}

/// What the calls for one batch cost.
#[derive(Debug, Clone, Copy, Default)]
struct CallStats {
    calls: u64,
    retries: u64,
    resent_records: u64,
}

impl CallStats {
    fn add(&mut self, other: CallStats) {
        self.calls += other.calls;
        self.retries += other.retries;
        self.resent_records += other.resent_records;
    }
}

/// Why a call (or some of its entries) did not go through.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    code: String,
    message: String,
    retryable: bool,
}

/// Sends one batch until every record is accepted, re-sending only the failed entries.
async fn put_batch(
    client: Client,
    stream: Arc<str>,
    body: PutBody,
    policy: RetryPolicy,
) -> Result<CallStats, SinkError> {
    let mut pending = body;
    let mut stats = CallStats::default();
    let max_attempts = policy.max_attempts.max(1);
    let mut attempt = 0;
    loop {
        attempt += 1;
        stats.calls += 1;
        if attempt > 1 {
            stats.retries += 1;
            stats.resent_records += pending.records() as u64;
        }
        let failure = match call(&client, &stream, &pending).await? {
            Ok(output) => {
                let failed = failed_entries(&output, pending.records());
                let Some(&first) = failed.first() else {
                    return Ok(stats);
                };
                let failure = entry_failure(&output, first, failed.len());
                tracing::warn!(
                    stream = %stream,
                    attempt,
                    failed = failed.len(),
                    of = pending.records(),
                    code = %failure.code,
                    "Firehose did not accept some records; re-sending those"
                );
                pending = pending.keep(&stream, &failed);
                failure
            }
            Err(err) => {
                let failure = classify(&err);
                if !failure.retryable {
                    return Err(SinkError::Rejected {
                        stream: stream.to_string(),
                        records: pending.records(),
                        lines: pending.lines(),
                        code: failure.code,
                        message: failure.message,
                    });
                }
                tracing::warn!(
                    stream = %stream,
                    attempt,
                    records = pending.records(),
                    code = %failure.code,
                    "PutRecordBatch failed; retrying the call"
                );
                failure
            }
        };
        if attempt >= max_attempts {
            return Err(SinkError::RetriesExhausted {
                stream: stream.to_string(),
                records: pending.records(),
                lines: pending.lines(),
                attempts: attempt,
                code: failure.code,
                message: failure.message,
            });
        }
        tokio::time::sleep(policy.backoff(attempt, crate::sink::backoff::jitter_draw())).await;
    }
}

/// One PutRecordBatch call with the SDK's retries off (see the module doc). The outer error is a
/// request that could not be built; the inner one is what the call returned.
///
/// The body is written by hand ([`PutBody`]): the SDK serializes an input without records, and
/// the request is given the real body before it is signed, so SigV4 hashes what is sent; the
/// endpoint, credentials, signing, timeouts and the parsing of the answer stay the SDK's.
async fn call(
    client: &Client,
    stream: &str,
    body: &PutBody,
) -> Result<Result<PutRecordBatchOutput, SdkError<PutRecordBatchError, HttpResponse>>, SinkError> {
    let json = body.bytes();
    let length = json.len().to_string();
    let no_retries = aws_sdk_firehose::Config::builder().retry_config(RetryConfig::disabled());
    Ok(client
        .put_record_batch()
        .delivery_stream_name(stream)
        .set_records(Some(Vec::new()))
        .customize()
        .config_override(no_retries)
        .mutate_request(move |request| {
            *request.body_mut() = SdkBody::from(json.clone());
            request
                .headers_mut()
                .insert("content-length", length.clone());
        })
        .send()
        .await)
}

/// Indexes (into the request's records) of the entries Firehose did not accept, ascending.
///
/// `RequestResponses` has one entry per record, in order; a failed one carries an `ErrorCode`.
/// Should the response not say which entries failed while `FailedPutCount` is positive, every
/// record counts as failed: duplicates are preferred over loss.
fn failed_entries(output: &PutRecordBatchOutput, sent: usize) -> Vec<usize> {
    let responses = output.request_responses();
    let any_error = responses.iter().any(|e| e.error_code().is_some());
    if output.failed_put_count() <= 0 && !any_error {
        return Vec::new();
    }
    let failed: Vec<usize> = (0..sent)
        .filter(|&i| responses.get(i).is_none_or(|e| e.error_code().is_some()))
        .collect();
    if failed.is_empty() {
        (0..sent).collect()
    } else {
        failed
    }
}

/// The failure to report for a partly failed call: the first failed entry's code and message.
fn entry_failure(output: &PutRecordBatchOutput, first: usize, failed: usize) -> Failure {
    let entry = output.request_responses().get(first);
    Failure {
        code: entry
            .and_then(|e| e.error_code())
            .unwrap_or("FailedPutCount")
            .to_owned(),
        message: entry
            .and_then(|e| e.error_message())
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{failed} entries failed without an error message")),
        retryable: true,
    }
}

/// Whether a whole-call error is worth another try, with the code to report: the shared
/// classifier ([`retry::classify`]), with the codes and messages of modeled errors whose
/// metadata carries none (as when built by hand).
fn classify(err: &SdkError<PutRecordBatchError, HttpResponse>) -> Failure {
    let mut c = retry::classify(err);
    if let SdkError::ServiceError(service) = err {
        let error = service.err();
        if error.code().is_none() {
            if let Some(code) = modeled_code(error) {
                c.code = code.to_owned();
                c.retryable = retry::is_retryable_answer(c.status.unwrap_or(0), Some(code));
            }
        }
        if error.message().is_none() {
            if let Some(message) = modeled_message(error) {
                c.message = message.to_owned();
            }
        }
    }
    Failure {
        code: c.code,
        message: c.message,
        retryable: c.retryable,
    }
}

/// The code of a modeled error whose metadata carries none (as when built by hand).
fn modeled_code(error: &PutRecordBatchError) -> Option<&'static str> {
    match error {
        PutRecordBatchError::InvalidArgumentException(_) => Some("InvalidArgumentException"),
        PutRecordBatchError::InvalidKmsResourceException(_) => Some("InvalidKMSResourceException"),
        PutRecordBatchError::InvalidSourceException(_) => Some("InvalidSourceException"),
        PutRecordBatchError::ResourceNotFoundException(_) => Some("ResourceNotFoundException"),
        PutRecordBatchError::ServiceUnavailableException(_) => Some("ServiceUnavailableException"),
        _ => None,
    }
}

/// The message of a modeled error whose metadata carries none.
fn modeled_message(error: &PutRecordBatchError) -> Option<&str> {
    match error {
        PutRecordBatchError::InvalidArgumentException(e) => e.message(),
        PutRecordBatchError::InvalidKmsResourceException(e) => e.message(),
        PutRecordBatchError::InvalidSourceException(e) => e.message(),
        PutRecordBatchError::ResourceNotFoundException(e) => e.message(),
        PutRecordBatchError::ServiceUnavailableException(e) => e.message(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_firehose::error::ErrorMetadata;
    use aws_sdk_firehose::types::error::{ResourceNotFoundException, ServiceUnavailableException};
    use aws_sdk_firehose::types::PutRecordBatchResponseEntry;

    fn service_error(
        error: PutRecordBatchError,
        status: u16,
    ) -> SdkError<PutRecordBatchError, HttpResponse> {
        let status = status.try_into().expect("valid status");
        SdkError::service_error(error, HttpResponse::new(status, "".into()))
    }

    fn generic(code: &str) -> PutRecordBatchError {
        PutRecordBatchError::generic(ErrorMetadata::builder().code(code).message("m").build())
    }

    #[test]
    fn throttling_and_server_errors_are_retried() {
        let throttled = PutRecordBatchError::ServiceUnavailableException(
            ServiceUnavailableException::builder()
                .message("Slow down.")
                .build(),
        );
        let failure = classify(&service_error(throttled, 400));
        assert!(failure.retryable);
        assert_eq!(failure.code, "ServiceUnavailableException");
        assert_eq!(failure.message, "Slow down.");
        assert!(classify(&service_error(generic("ThrottlingException"), 400)).retryable);
        assert!(classify(&service_error(generic("InternalFailure"), 500)).retryable);
        let unknown_503 = classify(&service_error(
            PutRecordBatchError::generic(ErrorMetadata::builder().build()),
            503,
        ));
        assert!(unknown_503.retryable);
        assert_eq!(unknown_503.code, "HTTP 503");
        assert_eq!(unknown_503.message, "unhandled error");
        let garbled: SdkError<PutRecordBatchError, HttpResponse> = SdkError::response_error(
            "no error code in body",
            HttpResponse::new(502.try_into().expect("valid status"), "<html>".into()),
        );
        let failure = classify(&garbled);
        assert!(failure.retryable);
        assert_eq!(failure.code, "HTTP 502");
        assert_eq!(failure.message, "response error: no error code in body");
        let timeout: SdkError<PutRecordBatchError, HttpResponse> =
            SdkError::timeout_error("read timed out");
        assert!(classify(&timeout).retryable);
    }

    #[test]
    fn setup_errors_fail_at_once() {
        let missing = PutRecordBatchError::ResourceNotFoundException(
            ResourceNotFoundException::builder()
                .message("no stream")
                .build(),
        );
        let failure = classify(&service_error(missing, 400));
        assert!(!failure.retryable);
        assert_eq!(failure.code, "ResourceNotFoundException");
        assert!(!classify(&service_error(generic("AccessDeniedException"), 400)).retryable);
        assert!(!classify(&service_error(generic("InvalidArgumentException"), 400)).retryable);
        let construction: SdkError<PutRecordBatchError, HttpResponse> =
            SdkError::construction_failure("bad input");
        assert!(!classify(&construction).retryable);
    }

    #[test]
    fn backoff_is_the_shared_full_jitter_with_the_policys_delays() {
        // The curve itself is tested in sink/backoff.rs; here, that the policy's delays feed it.
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
        };
        for (retry, draw) in [(1, u64::MAX), (3, u64::MAX / 2), (7, u64::MAX), (3, 0)] {
            assert_eq!(
                policy.backoff(retry, draw),
                crate::sink::backoff::full_jitter(policy.base_delay, policy.max_delay, retry, draw)
            );
        }
        assert!(policy.backoff(7, u64::MAX) > Duration::from_millis(4_999));
    }

    fn output(entries: &[Option<&str>], failed: i32) -> PutRecordBatchOutput {
        let entries = entries
            .iter()
            .map(|code| match code {
                Some(code) => PutRecordBatchResponseEntry::builder()
                    .error_code(*code)
                    .error_message("Slow down.")
                    .build(),
                None => PutRecordBatchResponseEntry::builder()
                    .record_id("id")
                    .build(),
            })
            .collect();
        PutRecordBatchOutput::builder()
            .failed_put_count(failed)
            .set_request_responses(Some(entries))
            .build()
            .expect("complete output")
    }

    #[test]
    fn failed_entries_are_found_by_index() {
        let sue = Some("ServiceUnavailableException");
        let out = output(&[None, sue, None, sue, Some("InternalFailure")], 3);
        assert_eq!(failed_entries(&out, 5), [1, 3, 4]);
        let failure = entry_failure(&out, 1, 3);
        assert_eq!(failure.code, "ServiceUnavailableException");
        assert_eq!(failure.message, "Slow down.");
    }

    #[test]
    fn a_clean_response_has_no_failed_entries() {
        assert!(failed_entries(&output(&[None, None], 0), 2).is_empty());
        // A response without entries but FailedPutCount 0 is trusted.
        assert!(failed_entries(&output(&[], 0), 2).is_empty());
    }

    #[test]
    fn unidentified_failures_resend_everything_missing_or_all() {
        // Entries missing from the response count as failed.
        assert_eq!(failed_entries(&output(&[None], 1), 3), [1, 2]);
        // A positive count with no entry flagged: re-send all rather than lose one.
        assert_eq!(failed_entries(&output(&[None, None], 1), 2), [0, 1]);
    }
}
