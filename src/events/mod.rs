//! Lambda event envelopes (S3, SNS, SQS, EventBridge, schedule) to object refs.
//!
//! [`parse_invocation`] reads the raw event JSON and says what the handler must do:
//!
//! | event | result |
//! |---|---|
//! | S3 notification (`Records[].eventSource == "aws:s3"`) | [`Invocation::Objects`] |
//! | SNS (`Records[].Sns.Message` is an S3 notification or `s3:TestEvent`) | [`Invocation::Objects`] |
//! | EventBridge from S3 (`source: aws.s3`) | [`Invocation::Objects`] |
//! | `{"Event": "s3:TestEvent", ...}` | [`Invocation::Objects`], empty |
//! | SQS (`Records[].body` is any of the above, or an SNS envelope of one) | [`Invocation::SqsBatch`] |
//! | EventBridge `Scheduled Event` (`source: aws.events`) | [`Invocation::Backfill`] |
//! | `{"backfill": {"since": "<RFC 3339>", "dry_run": true, "retry_set_aside": true}}` (all optional) | [`Invocation::Backfill`] |
//! | `{"doctor": {}}` | [`Invocation::Doctor`] |
//! | S3 Batch Operations (`invocationSchemaVersion` 1.0 or 2.0, `tasks`) | [`Invocation::BatchJob`] (`batch_ops`) |
//!
//! Keys from S3 notifications (direct, SNS, SQS) are URL-encoded and decoded here, strictly (a
//! bad escape is an error naming the field and the key). Keys from EventBridge are taken as they
//! are: the S3 guide's notification page says its keys are URL-encoded, its EventBridge message
//! page says nothing of the kind, and moto encodes the former only. An EventBridge key that looks
//! encoded carries its decoded form too ([`ObjectRef::alternate_key`]). Objects that are not
//! created, lie outside the audit prefix, or are not audit logs of a selected type are left out
//! with one `info` log line each saying why.
//!
//! # Pinned to the audit bucket
//!
//! An object of a bucket that is not `AUDIT_BUCKET` (or in `ALLOWED_BUCKETS`) is refused with
//! one WARN line naming the bucket and never fetched: nothing else stands between a forged or
//! misrouted event and the function's read access (and with `SOURCE_ROLE_ARN` or static keys,
//! IAM does not either). It is a skip, not an error: the same event names the same bucket
//! every time, so failing the invocation would only make Lambda (or SQS) deliver it again and
//! again before it lands in the failure destination. The WARN line is the signal.
//!
//! # How envelopes are read
//!
//! The kind of envelope is decided from a few fields of the JSON (`Records[0].eventSource`,
//! `source`, `Event`, `Type`, `backfill`); then its parts are deserialized with serde through
//! `serde_path_to_error`, so every error names the field at fault
//! (`Records[2].body.Records[0].s3.object.key missing`). `aws_lambda_events`' types are used
//! where they accept every event AWS and moto send, and ours where they do not:
//!
//! - S3 records: `Records[].s3` is `aws_lambda_events`' `S3Entity`. Its `bucket.name` and
//!   `object.key` are optional there, so "missing" and "empty" are our checks, as is the
//!   non-negative size (it reads `i64`). The record around it is not `S3EventRecord`: that one
//!   requires `eventTime` as RFC 3339 with a zone, `userIdentity` and `requestParameters`, none
//!   of which we use, and moto's notifications have no `userIdentity` or `requestParameters`.
//!   `eventName` is checked first, so a deletion is ignored however its `s3` part looks.
//!   `S3Object::url_decoded_key` is never read: S3 does not fill it.
//! - SQS records: `aws_lambda_events`' `SqsMessage`, whose fields are all optional; that a
//!   record has a `messageId` and a `body` is our check, per message.
//! - SNS: `SnsRecord` and `SnsMessage` require a dozen fields (signature, certificate URL,
//!   timestamp, ...) that we do not use and that the SNS envelopes in SQS bodies and our test
//!   events do not all carry; we read `Sns.Message` with a two-field type of our own.
//! - EventBridge: `EventBridgeEvent` requires `time` to be an RFC 3339 string, and moto sends a
//!   Unix number; `aws_lambda_events` has no type for S3's `detail` either. Both are ours
//!   (`detail-type` first, then `detail.bucket.name`, `detail.object.key`, `size`, `etag` or
//!   moto's `eTag`, `version-id`).
//! - Serde reads a struct from an array of its fields in order as well as from an object; no
//!   event has that shape and every field is still type-checked, so this is left as it is.
//! - `s3:TestEvent`, `Scheduled Event` and `{"backfill": ...}` have no type there; they are read
//!   as JSON, with a backfill's unknown fields refused (a misspelt `dry_run` must not turn a dry
//!   run into a real one).
//!
//! # SQS messages
//!
//! A record of another source fails the whole batch: the event is not what it says. Anything
//! else wrong with a record (not JSON, no key, an unrecognised body, a field of the wrong type)
//! fails that message only, and `batchItemFailures` names it. A record without a `messageId` (or
//! an empty one) cannot be named there, and a message missing from `batchItemFailures` counts as
//! processed and is deleted: so it comes out as [`SqsMessage::can_be_named`] false, with an
//! [`EventError::NoMessageId`] quoting its `receiptHandle` and `md5OfBody`, for the handler to
//! log at ERROR and to fail the whole batch (the other messages are still processed first;
//! their done markers make the retry cheap). Listing it with an empty `itemIdentifier`, as a
//! handler that lists every failed message's id does, has the same effect: Lambda treats an
//! empty `itemIdentifier` as the failure of the whole batch. SQS itself always sends an id, so
//! such a record means a hand-made or forged event; after `maxReceiveCount` receipts the batch's
//! messages go to the dead-letter queue, never silently away.

use serde_json::{Map, Value};

use crate::cloudtrail::{EventSources, TrailKeyError};
use crate::key::KeyError;
use crate::logs::LogType;

mod batch_ops;
mod json_path;
mod logs;
pub mod notify;
mod s3;
mod select;
mod sqs;
#[cfg(test)]
mod tests;

use json_path::{as_object, display_path, field_names, join, record_source, req_str, str_at};

/// EventBridge `detail-type` of a schedule rule's event.
const EB_SCHEDULED: &str = "Scheduled Event";
/// `Event` of the message S3 sends when a notification is first configured.
const S3_TEST_EVENT: &str = "s3:TestEvent";

pub use crate::ports::ObjectRef;
pub use batch_ops::{
    answer as batch_job_answer, result_string, BatchJob, BatchTask, ResultCode, TaskRefusal,
    TaskResult,
};
pub use logs::{decode_log_batch, LogBatch};
pub use select::Selected;

/// Which objects to forward: the `AUDIT_PREFIX`, `LOG_TYPES` and `ALLOWED_BUCKETS` (else
/// `AUDIT_BUCKET`) settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Folder the audit logs live under; empty for the whole bucket. A trailing `/` is optional.
    pub prefix: String,
    /// Selected log types; an empty list selects nothing.
    pub log_types: Vec<LogType>,
    /// Buckets whose objects events may name; empty for any bucket (`invoke` without
    /// `AUDIT_BUCKET`).
    pub allowed_buckets: Vec<String>,
    /// `cloudtrail` in `LOG_TYPES`: trail files are selected too, keeping these event sources.
    pub cloudtrail: Option<EventSources>,
}

impl Default for Filter {
    /// Every log type anywhere in any bucket, as the settings' defaults say without
    /// `AUDIT_BUCKET`.
    fn default() -> Self {
        Filter {
            prefix: String::new(),
            log_types: LogType::ALL.to_vec(),
            allowed_buckets: Vec::new(),
            cloudtrail: None,
        }
    }
}

/// Why a (decoded) key is not forwarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    #[error("outside the audit prefix {prefix:?}")]
    OutsidePrefix { prefix: String },
    #[error("not a Redshift audit log: {0}")]
    NotAuditLog(KeyError),
    #[error("log type {0} is not selected in LOG_TYPES")]
    LogTypeNotSelected(LogType),
    #[error("bucket {bucket:?} is not AUDIT_BUCKET nor in ALLOWED_BUCKETS")]
    ForeignBucket { bucket: String },
    /// A trail's file that holds no events (digest, Insights), or a malformed trail file name.
    #[error("{0}")]
    NotTrailEvents(TrailKeyError),
}

impl Filter {
    /// Whether events may name objects of `bucket`.
    pub fn allows_bucket(&self, bucket: &str) -> Result<(), Skip> {
        if self.allowed_buckets.is_empty() || self.allowed_buckets.iter().any(|b| b == bucket) {
            Ok(())
        } else {
            Err(Skip::ForeignBucket {
                bucket: bucket.to_string(),
            })
        }
    }
}

/// What one Lambda invocation asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// Process these objects (may be empty: everything was ignored); any failure fails the
    /// invocation, so Lambda retries it.
    Objects(Vec<ObjectRef>),
    /// An SQS batch, one entry per message in order: answer with `batchItemFailures` (even when
    /// empty) naming the messages whose objects failed or whose body was malformed.
    SqsBatch(Vec<SqsMessage>),
    /// Walk the day partitions.
    Backfill(BackfillRequest),
    /// Check the deployment and answer with the doctor's report.
    Doctor,
    /// A CloudWatch Logs subscription batch (`{"awslogs": {"data": ...}}`), decoded.
    LogBatch(LogBatch),
    /// An S3 Batch Operations invocation: answer with one result per task
    /// ([`batch_job_answer`]).
    BatchJob(BatchJob),
}

/// One SQS message of a batch. A malformed message fails only itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsMessage {
    /// `messageId`, the identifier `batchItemFailures` needs; empty when the record has none,
    /// and then `objects` is [`EventError::NoMessageId`].
    pub message_id: String,
    pub objects: Result<Vec<ObjectRef>, EventError>,
}

impl SqsMessage {
    /// Whether `batchItemFailures` can name this message. When one cannot, the batch must be
    /// reported failed as a whole (see the module documentation): a message left out of
    /// `batchItemFailures` counts as processed and is deleted.
    pub fn can_be_named(&self) -> bool {
        !self.message_id.is_empty()
    }
}

/// A backfill walk: from a schedule (all defaults) or asked for by hand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackfillRequest {
    /// RFC 3339 time to start from instead of the saved cursor, as given (syntax checked).
    pub since: Option<String>,
    /// List what would be sent without sending or saving anything.
    pub dry_run: bool,
    /// Try the objects set aside once more before the walk.
    pub retry_set_aside: bool,
}

/// A malformed event, naming the field at fault (`Records[0].s3.object.key missing`).
/// Retrying never helps: the same event fails the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("{path} missing")]
    Missing { path: String },
    #[error("{path} is not {expected}")]
    WrongType {
        path: String,
        expected: &'static str,
    },
    #[error("{path} is not JSON: {reason}")]
    NotJson { path: String, reason: String },
    #[error("{path}: {source}")]
    Key {
        path: String,
        #[source]
        source: KeyError,
    },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
    /// An SQS record without a usable `messageId`, identified as well as the record allows.
    #[error(
        "{path} missing ({identity}): batchItemFailures cannot name this message, so the whole \
         batch must be retried"
    )]
    NoMessageId { path: String, identity: String },
    #[error(
        "{path}: unrecognised event with fields [{fields}]; expected an S3 notification (direct, \
         SNS, SQS or EventBridge), an s3:TestEvent, a Scheduled Event or {{\"backfill\": {{...}}}}"
    )]
    Unrecognised { path: String, fields: String },
}

/// Turns a Lambda event into what the handler must do; see the module documentation.
pub fn parse_invocation(event: &Value, filter: &Filter) -> Result<Invocation, EventError> {
    let top = as_object(event, "event")?;
    if let Some(records) = top.get("Records") {
        return parse_records(records, filter);
    }
    if let Some(awslogs) = top.get("awslogs") {
        return logs::invocation(awslogs).map(Invocation::LogBatch);
    }
    if top.contains_key("backfill") {
        return parse_backfill(top).map(Invocation::Backfill);
    }
    if top.contains_key("doctor") {
        return parse_doctor(top);
    }
    if batch_ops::is_batch_job(top) {
        return batch_ops::batch_job(top, filter).map(Invocation::BatchJob);
    }
    if str_at(top, &["source"]) == Some("aws.events") {
        let detail_type = req_str(top, "", "detail-type")?;
        if detail_type == EB_SCHEDULED {
            return Ok(Invocation::Backfill(BackfillRequest::default()));
        }
        return Err(EventError::Invalid {
            path: "detail-type".into(),
            reason: format!("{detail_type:?} from aws.events is not a {EB_SCHEDULED:?}"),
        });
    }
    notification(top, "", filter, Envelope::Bare).map(Invocation::Objects)
}

/// Where a notification was found, which decides what may wrap it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Envelope {
    /// Top-level event or an SNS message: no further wrapping.
    Bare,
    /// An SQS body: may also be an SNS envelope (SNS to SQS without raw delivery).
    SqsBody,
}

/// A top-level `Records`: the first record's source says which kind of batch it is.
fn parse_records(records: &Value, filter: &Filter) -> Result<Invocation, EventError> {
    let records = non_empty_records(records, "Records")?;
    match record_source(&records[0], "Records[0]")? {
        "aws:sqs" => sqs::batch(records, filter).map(Invocation::SqsBatch),
        "aws:sns" => sqs::sns_records(records, filter).map(Invocation::Objects),
        "aws:s3" => s3::records(records, "", filter).map(Invocation::Objects),
        other => Err(EventError::Invalid {
            path: "Records[0].eventSource".into(),
            reason: format!(
                "unsupported event source {other:?} (expected aws:s3, aws:sns or aws:sqs)"
            ),
        }),
    }
}

fn non_empty_records<'a>(records: &'a Value, path: &str) -> Result<&'a [Value], EventError> {
    let records = records.as_array().ok_or_else(|| EventError::WrongType {
        path: path.to_string(),
        expected: "an array",
    })?;
    if records.is_empty() {
        return Err(EventError::Invalid {
            path: path.to_string(),
            reason: "empty".into(),
        });
    }
    Ok(records)
}

/// One S3-originated message: an S3 notification, a test event, an EventBridge event from S3, or
/// (in an SQS body) an SNS envelope around one of those.
fn notification(
    msg: &Map<String, Value>,
    path: &str,
    filter: &Filter,
    envelope: Envelope,
) -> Result<Vec<ObjectRef>, EventError> {
    if let Some(records) = msg.get("Records") {
        let records = non_empty_records(records, &join(path, "Records"))?;
        return s3::records(records, path, filter);
    }
    if let Some(event) = msg.get("Event") {
        if event.as_str() == Some(S3_TEST_EVENT) {
            tracing::info!(
                bucket = str_at(msg, &["Bucket"]).unwrap_or(""),
                "ignored s3:TestEvent"
            );
            return Ok(Vec::new());
        }
        return Err(EventError::Invalid {
            path: join(path, "Event"),
            reason: format!("{event} is not {S3_TEST_EVENT:?}"),
        });
    }
    if str_at(msg, &["source"]) == Some("aws.s3") {
        return Ok(s3::eventbridge_object(msg, path, filter)?
            .into_iter()
            .collect());
    }
    if envelope == Envelope::SqsBody && str_at(msg, &["Type"]) == Some("Notification") {
        return sqs::sns_envelope(msg, path, filter);
    }
    Err(EventError::Unrecognised {
        path: display_path(path),
        fields: field_names(msg),
    })
}

/// Refuses an object of a bucket the filter does not allow, with one WARN line naming it (see
/// the module documentation); true when the bucket is allowed.
fn bucket_allowed(object: &ObjectRef, filter: &Filter) -> bool {
    match filter.allows_bucket(&object.bucket) {
        Ok(()) => true,
        Err(skip) => {
            tracing::warn!(bucket = %object.bucket, key = %object.key, reason = %skip, "refused object of a bucket not allowed; not fetched");
            false
        }
    }
}

/// Applies the filter, logging why an object is left out.
fn admit(object: ObjectRef, filter: &Filter) -> Option<ObjectRef> {
    if !bucket_allowed(&object, filter) {
        return None;
    }
    match filter.select(&object.key) {
        Ok(_) => Some(object),
        Err(skip) => {
            tracing::info!(bucket = %object.bucket, key = %object.key, reason = %skip, "ignored object");
            None
        }
    }
}

fn parse_backfill(top: &Map<String, Value>) -> Result<BackfillRequest, EventError> {
    if let Some(other) = top.keys().find(|k| *k != "backfill") {
        return Err(EventError::Invalid {
            path: other.clone(),
            reason: "unexpected field beside backfill".into(),
        });
    }
    let body = as_object(top.get("backfill").unwrap_or(&Value::Null), "backfill")?;
    let mut request = BackfillRequest::default();
    for (name, value) in body {
        let path = join("backfill", name);
        match name.as_str() {
            "since" => match value {
                Value::Null => {}
                Value::String(since) if is_rfc3339(since) => request.since = Some(since.clone()),
                Value::String(since) => {
                    return Err(EventError::Invalid {
                        path,
                        reason: format!(
                            "{since:?} is not an RFC 3339 time like 2024-03-01T00:00:00Z"
                        ),
                    })
                }
                _ => {
                    return Err(EventError::WrongType {
                        path,
                        expected: "a string",
                    })
                }
            },
            "dry_run" => match value {
                Value::Null => {}
                Value::Bool(dry_run) => request.dry_run = *dry_run,
                _ => {
                    return Err(EventError::WrongType {
                        path,
                        expected: "true or false",
                    })
                }
            },
            "retry_set_aside" => match value {
                Value::Null => {}
                Value::Bool(retry) => request.retry_set_aside = *retry,
                _ => {
                    return Err(EventError::WrongType {
                        path,
                        expected: "true or false",
                    })
                }
            },
            // A misspelt `dry_run` must not turn a dry run into a real one.
            _ => {
                return Err(EventError::Invalid {
                    path,
                    reason: "unknown field (expected since, dry_run, retry_set_aside)".into(),
                })
            }
        }
    }
    Ok(request)
}

/// `{"doctor": {}}`: nothing beside it, nothing inside it.
fn parse_doctor(top: &Map<String, Value>) -> Result<Invocation, EventError> {
    if let Some(other) = top.keys().find(|k| *k != "doctor") {
        return Err(EventError::Invalid {
            path: other.clone(),
            reason: "unexpected field beside doctor".into(),
        });
    }
    let body = as_object(top.get("doctor").unwrap_or(&Value::Null), "doctor")?;
    match body.keys().next() {
        None => Ok(Invocation::Doctor),
        Some(name) => Err(EventError::Invalid {
            path: join("doctor", name),
            reason: "unknown field (the doctor takes none)".into(),
        }),
    }
}

/// An RFC 3339 time with every field in range (the calendar module's rules).
fn is_rfc3339(s: &str) -> bool {
    crate::time::parse_rfc3339(s).is_ok()
}
