//! Where records go: the [`Sink`] port, Firehose's limits and packing, and the stdout sink. The
//! Firehose adapter itself (calls, retry by index) is `aws::firehose`.
//!
//! A sink takes already-serialized NDJSON lines (without their newline) and knows nothing of the
//! record schema. The handler drives it through the [`Sink`] trait: `send` each line (or
//! `send_run` runs of lines, each with its newline), then `finish` to flush and wait for
//! everything in flight; the returned [`SinkStats`] feed the receipt. After any error the sink must be dropped: the object it was sending failed.
//!
//! Progress: [`Sink::accepted`] is the prefix of the lines sent so far that the destination has
//! taken, in send order. A Firehose record packs several lines and a call's failed entries are
//! re-sent alone, so a line counts only once every call carrying it or an earlier line has
//! been fully accepted; a retry that skips that many lines resends nothing that was accepted
//! except the calls in flight at the failure. [`Sink::stop`] ends sending at a call boundary
//! (the deadline): the calls in flight finish, what is buffered is dropped unsent.

pub mod backoff;
pub mod destinations;
pub mod lake;
pub(crate) mod pack;
mod stdout;

use std::future::Future;
use std::time::Duration;

pub use stdout::WriteSink;

/// Most records in one PutRecordBatch call (FORMAT.md, "Amazon Data Firehose"; cannot be raised).
pub const MAX_BATCH_RECORDS: usize = 500;

/// Most record bytes in one PutRecordBatch call, counted before base64 (FORMAT.md; the Kinesis
/// Agent and Vector count the raw data the same way).
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// Largest Firehose record: 1,000 KiB before base64 (FORMAT.md, "Amazon Data Firehose").
pub const MAX_RECORD_BYTES: usize = 1_024_000;

/// Longest line a sink accepts: it must fit one record together with the newline the sink adds.
/// Longer statements are split into parts by the caller (DESIGN.md, "Record schema").
pub const MAX_LINE_BYTES: usize = MAX_RECORD_BYTES - 1;

/// Firehose bills Direct PUT ingestion per record rounded up to 5 KB (FORMAT.md). AWS's "KB" in
/// Firehose limits is 1,024 bytes (1,000 KB = 1,024,000 bytes), so the unit is 5,120 bytes; a
/// full record (200 units) then bills exactly its size.
pub const BILLING_UNIT_BYTES: u64 = 5 * 1024;

/// PutRecordBatch calls one sink keeps in flight; `send` waits when this many are running. Each
/// call holds its ~5.6 MiB base64 JSON body (`aws::put_body`; the 4 MiB of records it was
/// written from are dropped once it is).
/// Measured (`scripts/bench_lambda.sh`, 1 GB object): one in flight peaks at ~46 MiB RSS (two
/// peaked at ~80 MiB and one at ~62 MiB while the SDK serialized a copy of the records), under
/// the 64 MiB target; and one 4 MiB call every ~200 ms already outruns a stream's default quota
/// of 5 MiB/s, while the parser keeps filling the next batch beside it.
pub const MAX_IN_FLIGHT: usize = 1;

/// Calls made for one batch before giving up, the first included: failed entries and retryable
/// call errors both spend one. With the delays below the worst case sleeps about 21 s in total,
/// well inside a Lambda invocation, and leaves the next invocation to try again.
pub const MAX_ATTEMPTS: u32 = 10;

/// Backoff before the first retry; it doubles every retry (full jitter: a uniform draw below it).
pub const BASE_DELAY: Duration = Duration::from_millis(100);

/// Ceiling of the backoff: Firehose quotas are per second, so waiting longer buys nothing.
pub const MAX_DELAY: Duration = Duration::from_secs(5);

/// Firehose bytes billed for one record of `len` bytes: rounded up to [`BILLING_UNIT_BYTES`].
pub fn billed_bytes(len: usize) -> u64 {
    (len as u64).div_ceil(BILLING_UNIT_BYTES) * BILLING_UNIT_BYTES
}

/// Where NDJSON lines go. Implemented by [`FirehoseSink`] and [`WriteSink`].
pub trait Sink: Send {
    /// Names the input whose lines follow (an S3 object's bucket, key and ETag; a CloudWatch
    /// Logs batch's group, stream and first event id), for a destination whose objects are
    /// named after their input (the lake). Called once, before the first line.
    fn begin(&mut self, _identity: &[&str]) {}

    /// Longest line the destination takes; `None` takes records whole (the lake: a Parquet
    /// cell holds a statement of any size, so records are not split into parts for it).
    fn max_line(&self) -> Option<usize> {
        Some(MAX_LINE_BYTES)
    }

    /// Queues one line (without its newline; the sink appends `\n`). May wait for a call in
    /// flight to finish, so memory stays bounded. A line longer than [`MAX_LINE_BYTES`] is refused
    /// by the Firehose sink.
    fn send<L>(&mut self, line: L) -> impl Future<Output = Result<(), SinkError>> + Send
    where
        L: AsRef<[u8]> + Send;

    /// Queues whole lines from the front of `run`, each followed by its newline, and says what
    /// it took: all of `run`, or less when a call ended meanwhile (when [`Sink::accepted`]
    /// moved), so the caller can save progress and watch its deadline between calls as it does
    /// after [`Sink::send`]. The lines are the ones `send` would take one by one, with the same
    /// limits; the Firehose sink copies runs of them at once.
    fn send_run(&mut self, run: &[u8]) -> impl Future<Output = Result<Taken, SinkError>> + Send {
        async move {
            let before = self.accepted();
            let mut taken = Taken::default();
            while taken.bytes < run.len() {
                let rest = &run[taken.bytes..];
                let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
                self.send(&rest[..end]).await?;
                taken.bytes += (end + 1).min(rest.len());
                taken.lines += 1;
                if self.accepted() != before {
                    break;
                }
            }
            Ok(taken)
        }
    }

    /// Sends what is still buffered and waits until every record was accepted (or failed).
    fn finish(self) -> impl Future<Output = Result<SinkStats, SinkError>> + Send
    where
        Self: Sized;

    /// Ends the lines of an input whose reading broke off (it fails and is retried): what the
    /// destination keeps of the lines sent, and how many of them count as accepted. Firehose
    /// delivers them, as `finish` does, so a retry skips them; the lake aborts its objects,
    /// which must hold a whole input, and accepts none.
    fn finish_broken(self) -> impl Future<Output = Result<(SinkStats, Accepted), SinkError>> + Send
    where
        Self: Sized,
    {
        async move {
            let stats = self.finish().await?;
            Ok((stats, Accepted::all(&stats)))
        }
    }

    /// The lines (and their bytes, newlines included) accepted so far: a prefix of the lines
    /// sent, in order, every one of them taken by the destination. Known once a call ended,
    /// which the sink notices at the next `send` or at `finish`/`stop`.
    fn accepted(&self) -> Accepted;

    /// Stops at a call boundary: waits for the calls in flight, sends nothing more, and returns
    /// the stats; [`Sink::accepted`] then covers every line that was sent in a call. Sinks
    /// without calls (stdout) write everything, as `finish` does.
    fn stop(self) -> impl Future<Output = Result<(SinkStats, Accepted), SinkError>> + Send
    where
        Self: Sized,
    {
        async move {
            let stats = self.finish().await?;
            Ok((stats, Accepted::all(&stats)))
        }
    }
}

/// What [`Sink::send_run`] took from the front of a run: bytes (newlines included) and lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Taken {
    pub bytes: usize,
    pub lines: u64,
}

/// A prefix of the lines sent that the destination accepted: how many, and their bytes
/// (newlines included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accepted {
    pub lines: u64,
    pub bytes: u64,
}

impl Accepted {
    /// Every line a sink wrote, as accepted.
    pub fn all(stats: &SinkStats) -> Accepted {
        Accepted {
            lines: stats.lines,
            bytes: stats.payload_bytes,
        }
    }
}

/// What one sink did, for the receipt.
///
/// Bytes and records count each record once, as Firehose bills it, however often it was sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SinkStats {
    /// NDJSON lines sent (`sent_lines` in receipts, beside the input's lines).
    #[serde(rename = "sent_lines")]
    pub lines: u64,
    /// Firehose records the lines were packed into (0 for the stdout sink).
    pub firehose_records: u64,
    /// Bytes of the records as sent, newlines included (for stdout: bytes written).
    pub payload_bytes: u64,
    /// Sum over records of the record's size rounded up to 5 KB: what Firehose ingestion bills.
    pub billed_bytes: u64,
    /// PutRecordBatch calls made, retries included.
    pub calls: u64,
    /// Calls that were retries: re-sending a batch's failed entries or a whole call that failed.
    pub retries: u64,
    /// Records carried by those retries (a record re-sent twice counts twice).
    pub resent_records: u64,
    /// What the Security Lake destination wrote (rows, objects, bytes, rows out of time order).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub lake: Option<crate::lake::LakeStats>,
}

/// Why a sink failed. [`SinkError::is_retryable`] tells whether sending the object again later
/// can help.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The caller must split the line first; sending it again cannot help.
    #[error("line of {len} bytes does not fit one Firehose record (at most {MAX_LINE_BYTES} bytes before the newline)")]
    LineTooLarge {
        /// The line's length without newline.
        len: usize,
    },
    /// Firehose kept failing (throttling, 5xx, timeouts) until the attempts ran out.
    #[error("Firehose stream {stream} did not accept {records} records ({lines} lines) after {attempts} attempts; last error: {code}: {message}")]
    RetriesExhausted {
        /// Delivery stream name.
        stream: String,
        /// Firehose records not accepted.
        records: usize,
        /// NDJSON lines in those records.
        lines: usize,
        /// Calls made for the batch.
        attempts: u32,
        /// Last error code (`ServiceUnavailableException`, `HTTP 503`, `Timeout`, ...).
        code: String,
        /// Last error message.
        message: String,
    },
    /// Firehose refused the call for a reason a retry does not fix (missing stream, access
    /// denied, invalid argument, KMS key): fix the setup, then send the object again.
    #[error(
        "Firehose stream {stream} refused {records} records ({lines} lines): {code}: {message}"
    )]
    Rejected {
        /// Delivery stream name.
        stream: String,
        /// Firehose records in the refused call.
        records: usize,
        /// NDJSON lines in those records.
        lines: usize,
        /// Error code (`ResourceNotFoundException`, `AccessDeniedException`, ...).
        code: String,
        /// Error message.
        message: String,
    },
    /// The Security Lake destination failed: a call to the lake's bucket (retryable as the
    /// call's error says), or lines it cannot write (not retryable).
    #[error("Security Lake: {reason}")]
    Lake { reason: String, retryable: bool },
    /// Writing to the output (stdout) failed.
    #[error("writing the output failed: {0}")]
    Write(#[from] std::io::Error),
    /// A bug rather than a Firehose condition: a call task panicked, or a request could not be
    /// built.
    #[error("internal error in the Firehose sink: {0}")]
    Internal(String),
}

impl SinkError {
    /// Whether sending the same object again later can succeed without changing anything.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SinkError::RetriesExhausted { .. }
                | SinkError::Lake {
                    retryable: true,
                    ..
                }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billed_bytes_round_up_to_5_kib() {
        assert_eq!(billed_bytes(1), 5_120);
        assert_eq!(billed_bytes(5_119), 5_120);
        assert_eq!(billed_bytes(5_120), 5_120);
        assert_eq!(billed_bytes(5_121), 10_240);
        // Two 1 KB records bill as 10 KB (FORMAT.md's example).
        assert_eq!(billed_bytes(1_024) + billed_bytes(1_024), 10_240);
    }

    #[test]
    fn a_full_record_bills_exactly_its_size() {
        assert_eq!(billed_bytes(MAX_RECORD_BYTES), MAX_RECORD_BYTES as u64);
    }

    #[test]
    fn only_exhausted_retries_are_retryable() {
        let exhausted = SinkError::RetriesExhausted {
            stream: "s".into(),
            records: 3,
            lines: 7,
            attempts: MAX_ATTEMPTS,
            code: "ServiceUnavailableException".into(),
            message: "Slow down.".into(),
        };
        assert!(exhausted.is_retryable());
        let text = exhausted.to_string();
        assert!(text.contains("3 records (7 lines)"), "{text}");
        assert!(text.contains("ServiceUnavailableException"), "{text}");
        assert!(!SinkError::LineTooLarge {
            len: MAX_RECORD_BYTES
        }
        .is_retryable());
        let rejected = SinkError::Rejected {
            stream: "s".into(),
            records: 1,
            lines: 1,
            code: "ResourceNotFoundException".into(),
            message: "no such stream".into(),
        };
        assert!(!rejected.is_retryable());
    }
}
