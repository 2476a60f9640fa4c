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
//! | `{"backfill": {"since": "<RFC 3339>", "dry_run": true}}` (both optional) | [`Invocation::Backfill`] |
//!
//! Keys from S3 notifications (direct, SNS, SQS) are URL-encoded and decoded here. Keys from
//! EventBridge are taken as they are: the S3 guide's notification page says its keys are
//! URL-encoded, its EventBridge message page says nothing of the kind, and moto encodes the former
//! only. Objects that are not created, lie outside the audit prefix, or are not audit logs of a
//! selected type are left out with one `info` log line each saying why. The values are read
//! straight from JSON, not through `aws_lambda_events`, so that an error can name the exact field.

use serde_json::{Map, Value};

use crate::key::{self, KeyError, LogFileName};
use crate::logs::LogType;

/// `eventName` prefix of every S3 notification for a new object (`ObjectCreated:Put`, `...:Copy`).
const OBJECT_CREATED: &str = "ObjectCreated:";
/// EventBridge `detail-type` for a new S3 object.
const EB_OBJECT_CREATED: &str = "Object Created";
/// EventBridge `detail-type` of a schedule rule's event.
const EB_SCHEDULED: &str = "Scheduled Event";
/// `Event` of the message S3 sends when a notification is first configured.
const S3_TEST_EVENT: &str = "s3:TestEvent";

pub use crate::ports::ObjectRef;

/// Which objects to forward: the `AUDIT_PREFIX` and `LOG_TYPES` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Folder the audit logs live under; empty for the whole bucket. A trailing `/` is optional.
    pub prefix: String,
    /// Selected log types; an empty list selects nothing.
    pub log_types: Vec<LogType>,
}

impl Default for Filter {
    /// Every log type anywhere in the bucket, as the settings' defaults say.
    fn default() -> Self {
        Filter {
            prefix: String::new(),
            log_types: LogType::ALL.to_vec(),
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
}

impl Filter {
    /// Decides whether a decoded key is forwarded; on success, what its file name says.
    /// The backfill walk uses the same test, so both paths select the same objects.
    pub fn select(&self, key: &str) -> Result<LogFileName, Skip> {
        if !key::is_under_prefix(key, &self.prefix) {
            return Err(Skip::OutsidePrefix {
                prefix: self.prefix.clone(),
            });
        }
        let name = key::parse_file_name(key).map_err(Skip::NotAuditLog)?;
        if !self.log_types.contains(&name.log_type) {
            return Err(Skip::LogTypeNotSelected(name.log_type));
        }
        Ok(name)
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
}

/// One SQS message of a batch. A malformed message fails only itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsMessage {
    /// `messageId`, the identifier `batchItemFailures` needs.
    pub message_id: String,
    pub objects: Result<Vec<ObjectRef>, EventError>,
}

/// A backfill walk: from a schedule (all defaults) or asked for by hand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackfillRequest {
    /// RFC 3339 time to start from instead of the saved cursor, as given (syntax checked).
    pub since: Option<String>,
    /// List what would be sent without sending or saving anything.
    pub dry_run: bool,
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
    if top.contains_key("backfill") {
        return parse_backfill(top).map(Invocation::Backfill);
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

fn parse_records(records: &Value, filter: &Filter) -> Result<Invocation, EventError> {
    let records = records.as_array().ok_or_else(|| EventError::WrongType {
        path: "Records".into(),
        expected: "an array",
    })?;
    let Some(first) = records.first() else {
        return Err(EventError::Invalid {
            path: "Records".into(),
            reason: "empty".into(),
        });
    };
    match record_source(first, "Records[0]")? {
        "aws:sqs" => {
            let mut messages = Vec::with_capacity(records.len());
            for (i, record) in records.iter().enumerate() {
                let path = format!("Records[{i}]");
                expect_source(record, &path, "aws:sqs")?;
                let message_id =
                    req_str(as_object(record, &path)?, &path, "messageId")?.to_string();
                let objects = sqs_body(record, &path, filter);
                messages.push(SqsMessage {
                    message_id,
                    objects,
                });
            }
            Ok(Invocation::SqsBatch(messages))
        }
        "aws:sns" => {
            let mut objects = Vec::new();
            for (i, record) in records.iter().enumerate() {
                let path = format!("Records[{i}]");
                expect_source(record, &path, "aws:sns")?;
                let sns = req_obj(as_object(record, &path)?, &path, "Sns")?;
                let sns_path = join(&path, "Sns");
                let message = parse_json_string(
                    req_str(sns, &sns_path, "Message")?,
                    &join(&sns_path, "Message"),
                )?;
                let message_path = join(&sns_path, "Message");
                objects.extend(notification(
                    as_object(&message, &message_path)?,
                    &message_path,
                    filter,
                    Envelope::Bare,
                )?);
            }
            Ok(Invocation::Objects(objects))
        }
        "aws:s3" => s3_records(records, "", filter).map(Invocation::Objects),
        other => Err(EventError::Invalid {
            path: "Records[0].eventSource".into(),
            reason: format!(
                "unsupported event source {other:?} (expected aws:s3, aws:sns or aws:sqs)"
            ),
        }),
    }
}

fn sqs_body(record: &Value, path: &str, filter: &Filter) -> Result<Vec<ObjectRef>, EventError> {
    let body_path = join(path, "body");
    let body = parse_json_string(req_str(as_object(record, path)?, path, "body")?, &body_path)?;
    notification(
        as_object(&body, &body_path)?,
        &body_path,
        filter,
        Envelope::SqsBody,
    )
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
        let records_path = join(path, "Records");
        let records = records.as_array().ok_or_else(|| EventError::WrongType {
            path: records_path.clone(),
            expected: "an array",
        })?;
        if records.is_empty() {
            return Err(EventError::Invalid {
                path: records_path,
                reason: "empty".into(),
            });
        }
        return s3_records(records, path, filter);
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
        return Ok(eventbridge_object(msg, path, filter)?.into_iter().collect());
    }
    if envelope == Envelope::SqsBody && str_at(msg, &["Type"]) == Some("Notification") {
        let message_path = join(path, "Message");
        let inner = parse_json_string(req_str(msg, path, "Message")?, &message_path)?;
        return notification(
            as_object(&inner, &message_path)?,
            &message_path,
            filter,
            Envelope::Bare,
        );
    }
    Err(EventError::Unrecognised {
        path: display_path(path),
        fields: field_names(msg),
    })
}

fn s3_records(
    records: &[Value],
    path: &str,
    filter: &Filter,
) -> Result<Vec<ObjectRef>, EventError> {
    let mut objects = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        let record_path = format!("{}[{i}]", join(path, "Records"));
        if let Some(object) = s3_record(record, &record_path, filter)? {
            objects.push(object);
        }
    }
    Ok(objects)
}

/// One `Records[]` entry of an S3 notification; `None` when it is ignored.
fn s3_record(record: &Value, path: &str, filter: &Filter) -> Result<Option<ObjectRef>, EventError> {
    expect_source(record, path, "aws:s3")?;
    let record = as_object(record, path)?;
    let event_name = req_str(record, path, "eventName")?;
    if !event_name.starts_with(OBJECT_CREATED) {
        tracing::info!(
            bucket = str_at(record, &["s3", "bucket", "name"]).unwrap_or(""),
            key = str_at(record, &["s3", "object", "key"]).unwrap_or(""),
            reason = %format!("event {event_name} is not an object creation"),
            "ignored object"
        );
        return Ok(None);
    }
    let s3_path = join(path, "s3");
    let s3 = req_obj(record, path, "s3")?;
    let bucket_path = join(&s3_path, "bucket");
    let bucket = req_str(req_obj(s3, &s3_path, "bucket")?, &bucket_path, "name")?;
    let object_path = join(&s3_path, "object");
    let object = req_obj(s3, &s3_path, "object")?;
    let key_path = join(&object_path, "key");
    let key = key::decode_event_key(req_str(object, &object_path, "key")?).map_err(|source| {
        EventError::Key {
            path: key_path.clone(),
            source,
        }
    })?;
    let object_ref = ObjectRef {
        bucket: non_empty(bucket, &join(&bucket_path, "name"))?.to_string(),
        key: non_empty(&key, &key_path)?.to_string(),
        size: opt_u64(object, &object_path, "size")?,
        etag: opt_str(object, &object_path, &["eTag", "etag"])?,
        version_id: opt_str(object, &object_path, &["versionId"])?,
    };
    Ok(admit(object_ref, filter))
}

/// An EventBridge event from S3; `None` when it is ignored. Its key is not URL-encoded.
fn eventbridge_object(
    msg: &Map<String, Value>,
    path: &str,
    filter: &Filter,
) -> Result<Option<ObjectRef>, EventError> {
    let detail_type = req_str(msg, path, "detail-type")?;
    if detail_type != EB_OBJECT_CREATED {
        tracing::info!(
            bucket = str_at(msg, &["detail", "bucket", "name"]).unwrap_or(""),
            key = str_at(msg, &["detail", "object", "key"]).unwrap_or(""),
            reason = %format!("EventBridge {detail_type:?} is not {EB_OBJECT_CREATED:?}"),
            "ignored object"
        );
        return Ok(None);
    }
    let detail_path = join(path, "detail");
    let detail = req_obj(msg, path, "detail")?;
    let bucket_path = join(&detail_path, "bucket");
    let bucket = req_str(
        req_obj(detail, &detail_path, "bucket")?,
        &bucket_path,
        "name",
    )?;
    let object_path = join(&detail_path, "object");
    let object = req_obj(detail, &detail_path, "object")?;
    let key = req_str(object, &object_path, "key")?;
    let object_ref = ObjectRef {
        bucket: non_empty(bucket, &join(&bucket_path, "name"))?.to_string(),
        key: non_empty(key, &join(&object_path, "key"))?.to_string(),
        size: opt_u64(object, &object_path, "size")?,
        // AWS documents `etag`; moto sends `eTag`.
        etag: opt_str(object, &object_path, &["etag", "eTag"])?,
        version_id: opt_str(object, &object_path, &["version-id"])?,
    };
    Ok(admit(object_ref, filter))
}

/// Applies the filter, logging why an object is left out.
fn admit(object: ObjectRef, filter: &Filter) -> Option<ObjectRef> {
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
            // A misspelt `dry_run` must not turn a dry run into a real one.
            _ => {
                return Err(EventError::Invalid {
                    path,
                    reason: "unknown field (expected since, dry_run)".into(),
                })
            }
        }
    }
    Ok(request)
}

/// An RFC 3339 time with every field in range (the calendar module's rules).
fn is_rfc3339(s: &str) -> bool {
    crate::time::parse_rfc3339(s).is_ok()
}

// --- JSON access that names the field at fault ---------------------------------------------

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn display_path(path: &str) -> String {
    if path.is_empty() {
        "event".to_string()
    } else {
        path.to_string()
    }
}

fn as_object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, EventError> {
    value.as_object().ok_or_else(|| EventError::WrongType {
        path: display_path(path),
        expected: "a JSON object",
    })
}

/// A present, non-null field.
fn req<'a>(obj: &'a Map<String, Value>, path: &str, name: &str) -> Result<&'a Value, EventError> {
    match obj.get(name) {
        None | Some(Value::Null) => Err(EventError::Missing {
            path: join(path, name),
        }),
        Some(value) => Ok(value),
    }
}

fn req_str<'a>(obj: &'a Map<String, Value>, path: &str, name: &str) -> Result<&'a str, EventError> {
    req(obj, path, name)?
        .as_str()
        .ok_or_else(|| EventError::WrongType {
            path: join(path, name),
            expected: "a string",
        })
}

fn req_obj<'a>(
    obj: &'a Map<String, Value>,
    path: &str,
    name: &str,
) -> Result<&'a Map<String, Value>, EventError> {
    as_object(req(obj, path, name)?, &join(path, name))
}

/// The first of `names` present; absent or null is `None`.
fn opt_str(
    obj: &Map<String, Value>,
    path: &str,
    names: &[&str],
) -> Result<Option<String>, EventError> {
    for name in names {
        match obj.get(*name) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => return Ok(Some(s.clone())),
            Some(_) => {
                return Err(EventError::WrongType {
                    path: join(path, name),
                    expected: "a string",
                })
            }
        }
    }
    Ok(None)
}

fn opt_u64(obj: &Map<String, Value>, path: &str, name: &str) -> Result<Option<u64>, EventError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .map(Some)
            .ok_or_else(|| EventError::WrongType {
                path: join(path, name),
                expected: "a non-negative integer",
            }),
    }
}

fn non_empty<'a>(s: &'a str, path: &str) -> Result<&'a str, EventError> {
    if s.is_empty() {
        Err(EventError::Invalid {
            path: path.to_string(),
            reason: "empty".into(),
        })
    } else {
        Ok(s)
    }
}

/// Best-effort lookup for log lines about ignored events; never an error.
fn str_at<'a>(obj: &'a Map<String, Value>, names: &[&str]) -> Option<&'a str> {
    let (last, parents) = names.split_last()?;
    let mut current = obj;
    for name in parents {
        current = current.get(*name)?.as_object()?;
    }
    current.get(*last)?.as_str()
}

/// `eventSource` (S3, SQS) or `EventSource` (SNS) of a record.
fn record_source<'a>(record: &'a Value, path: &str) -> Result<&'a str, EventError> {
    let record = as_object(record, path)?;
    let name = if record.contains_key("eventSource") {
        "eventSource"
    } else {
        "EventSource"
    };
    req_str(record, path, name).map_err(|e| match e {
        EventError::Missing { .. } => EventError::Missing {
            path: join(path, "eventSource"),
        },
        other => other,
    })
}

fn expect_source(record: &Value, path: &str, expected: &str) -> Result<(), EventError> {
    let source = record_source(record, path)?;
    if source == expected {
        Ok(())
    } else {
        Err(EventError::Invalid {
            path: join(path, "eventSource"),
            reason: format!(
                "{source:?} where {expected:?} was expected (records of one event share a source)"
            ),
        })
    }
}

fn parse_json_string(text: &str, path: &str) -> Result<Value, EventError> {
    serde_json::from_str(text).map_err(|e| EventError::NotJson {
        path: path.to_string(),
        reason: e.to_string(),
    })
}

/// Up to a few top-level field names, to say what an unrecognised event looked like.
fn field_names(obj: &Map<String, Value>) -> String {
    const SHOWN: usize = 8;
    let mut names: Vec<&str> = obj.keys().take(SHOWN).map(String::as_str).collect();
    if obj.len() > SHOWN {
        names.push("...");
    }
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    const BUCKET: &str = "audit-bucket";
    const DAY: &str = "AWSLogs/123456789012/redshift/us-east-1/2024/03/01/";
    const CONN: &str =
        "123456789012_redshift_us-east-1_analytics-prod_connectionlog_2024-03-01T00:53.gz";
    const USER: &str = "123456789012_redshift_us-east-1_analytics-prod_userlog_2024-03-01T00:53.gz";
    const ACTIVITY: &str =
        "123456789012_redshift_us-east-1_analytics-prod_useractivitylog_2024-03-01T00:53.gz";

    fn sample(name: &str) -> Value {
        let text = match name {
            "s3-direct" => include_str!("../events/s3-direct.json"),
            "s3-sns" => include_str!("../events/s3-sns.json"),
            "s3-sqs" => include_str!("../events/s3-sqs.json"),
            "s3-eventbridge" => include_str!("../events/s3-eventbridge.json"),
            "s3-test-event" => include_str!("../events/s3-test-event.json"),
            "scheduled" => include_str!("../events/scheduled.json"),
            "backfill-manual" => include_str!("../events/backfill-manual.json"),
            other => panic!("no sample {other}"),
        };
        serde_json::from_str(text).expect("sample is JSON")
    }

    fn parse(event: &Value) -> Result<Invocation, EventError> {
        parse_invocation(event, &Filter::default())
    }

    fn objects(event: &Value, filter: &Filter) -> Vec<ObjectRef> {
        match parse_invocation(event, filter) {
            Ok(Invocation::Objects(objects)) => objects,
            other => panic!("expected objects, got {other:?}"),
        }
    }

    fn keys(objects: &[ObjectRef]) -> Vec<&str> {
        objects.iter().map(|o| o.key.as_str()).collect()
    }

    fn full(name: &str) -> String {
        format!("{DAY}{name}")
    }

    fn error_text(event: &Value) -> String {
        match parse(event) {
            Err(e) => e.to_string(),
            Ok(ok) => panic!("expected an error, got {ok:?}"),
        }
    }

    /// An S3 notification record; `key` is given as S3 would send it (encoded).
    fn s3_record(event_name: &str, encoded_key: &str) -> Value {
        json!({
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventName": event_name,
            "s3": {
                "s3SchemaVersion": "1.0",
                "bucket": {"name": BUCKET, "arn": "arn:aws:s3:::audit-bucket"},
                "object": {"key": encoded_key, "size": 10, "eTag": "abc", "sequencer": "00"}
            }
        })
    }

    fn s3_event(records: Vec<Value>) -> Value {
        json!({ "Records": records })
    }

    fn sqs_event(bodies: &[(&str, String)]) -> Value {
        let records: Vec<Value> = bodies
            .iter()
            .map(|(id, body)| json!({"messageId": id, "body": body, "eventSource": "aws:sqs"}))
            .collect();
        json!({ "Records": records })
    }

    // --- the sample files -------------------------------------------------------------------

    #[test]
    fn sample_s3_direct_yields_the_decoded_connectionlog() {
        assert_eq!(
            objects(&sample("s3-direct"), &Filter::default()),
            vec![ObjectRef {
                bucket: BUCKET.into(),
                key: full(CONN),
                size: Some(18_432),
                etag: Some("4f2c1a9e8b7d6c5e4f3a2b1c0d9e8f7a".into()),
                version_id: None,
            }]
        );
    }

    #[test]
    fn sample_s3_sns_yields_the_userlog() {
        let got = objects(&sample("s3-sns"), &Filter::default());
        assert_eq!(keys(&got), vec![full(USER)]);
        assert_eq!(got[0].bucket, BUCKET);
        assert_eq!(got[0].size, Some(1_024));
    }

    #[test]
    fn sample_s3_sqs_yields_one_entry_per_message() {
        let Ok(Invocation::SqsBatch(messages)) = parse(&sample("s3-sqs")) else {
            panic!("expected an SQS batch");
        };
        let got: Vec<(&str, Vec<&str>)> = messages
            .iter()
            .map(|m| {
                (
                    m.message_id.as_str(),
                    m.objects.as_ref().map(|o| keys(o)).unwrap_or_default(),
                )
            })
            .collect();
        let (activity, conn) = (full(ACTIVITY), full(CONN));
        assert_eq!(
            got,
            vec![
                (
                    "0b7e5c1a-3d2f-4e6a-9b8c-1f2e3d4c5b6a",
                    vec![activity.as_str()]
                ),
                ("5d6e7f80-9a1b-4c2d-8e3f-a0b1c2d3e4f5", vec![conn.as_str()]),
            ]
        );
        assert!(messages.iter().all(|m| m.objects.is_ok()));
    }

    #[test]
    fn sample_s3_eventbridge_yields_the_useractivitylog_undecoded() {
        assert_eq!(
            objects(&sample("s3-eventbridge"), &Filter::default()),
            vec![ObjectRef {
                bucket: BUCKET.into(),
                key: full(ACTIVITY),
                size: Some(5_242_880),
                etag: Some("9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d-1".into()),
                version_id: None,
            }]
        );
    }

    #[test]
    fn sample_test_event_yields_nothing() {
        assert_eq!(
            parse(&sample("s3-test-event")),
            Ok(Invocation::Objects(vec![]))
        );
    }

    #[test]
    fn sample_scheduled_event_asks_for_a_backfill_from_the_cursor() {
        assert_eq!(
            parse(&sample("scheduled")),
            Ok(Invocation::Backfill(BackfillRequest::default()))
        );
    }

    #[test]
    fn sample_manual_backfill_carries_since_and_dry_run() {
        assert_eq!(
            parse(&sample("backfill-manual")),
            Ok(Invocation::Backfill(BackfillRequest {
                since: Some("2024-03-01T00:00:00Z".into()),
                dry_run: true
            }))
        );
    }

    #[test]
    fn sample_keys_are_all_audit_logs_of_the_sample_cluster() {
        for name in [CONN, USER, ACTIVITY] {
            let parsed = key::parse_file_name(&full(name)).expect("sample key parses");
            assert_eq!(parsed.cluster, "analytics-prod");
            assert_eq!(parsed.account_id, "123456789012");
            assert_eq!(parsed.file_time, "2024-03-01T00:53:00Z");
        }
    }

    // --- keys ----------------------------------------------------------------------------------

    #[test]
    fn notification_keys_are_decoded_before_filtering() {
        // Space as '+', literal '+' as %2B, '=' as %3D, '%' as %25 and 'é' as %C3%A9.
        let prefix = "audit logs/dt=2024/a+b/100%/café";
        let encoded = format!(
            "audit+logs/dt%3D2024/a%2Bb/100%25/caf%C3%A9/2024/03/01/{}",
            CONN.replace(':', "%3A")
        );
        let filter = Filter {
            prefix: prefix.into(),
            log_types: LogType::ALL.to_vec(),
        };
        let got = objects(
            &s3_event(vec![s3_record("ObjectCreated:Put", &encoded)]),
            &filter,
        );
        assert_eq!(keys(&got), vec![format!("{prefix}/2024/03/01/{CONN}")]);
    }

    #[test]
    fn eventbridge_keys_are_not_decoded() {
        let mut event = sample("s3-eventbridge");
        event["detail"]["object"]["key"] = json!(format!("a+b/%41/{CONN}"));
        assert_eq!(
            keys(&objects(&event, &Filter::default())),
            vec![format!("a+b/%41/{CONN}")]
        );
    }

    #[test]
    fn eventbridge_accepts_moto_field_spelling() {
        let mut event = sample("s3-eventbridge");
        let object = event["detail"]["object"].as_object_mut().expect("object");
        object.remove("etag");
        object.insert("eTag".into(), json!("moto-etag"));
        object.insert("version-id".into(), json!("v1"));
        let got = objects(&event, &Filter::default());
        assert_eq!(got[0].etag.as_deref(), Some("moto-etag"));
        assert_eq!(got[0].version_id.as_deref(), Some("v1"));
    }

    #[test]
    fn bad_escape_in_key_is_an_error_naming_field_and_key() {
        let text = error_text(&s3_event(vec![s3_record(
            "ObjectCreated:Put",
            "AWSLogs/%G1/x.gz",
        )]));
        assert!(text.starts_with("Records[0].s3.object.key: "), "{text}");
        assert!(text.contains("AWSLogs/%G1/x.gz"), "{text}");
    }

    // --- ignoring ------------------------------------------------------------------------------

    #[test]
    fn ignored_objects_are_left_out_and_the_rest_kept() {
        let filter = Filter {
            prefix: "AWSLogs/123456789012/redshift/us-east-1".into(),
            log_types: vec![LogType::ConnectionLog, LogType::UserActivityLog],
        };
        let event = s3_event(vec![
            s3_record("ObjectCreated:Put", &full(CONN)),
            s3_record("ObjectRemoved:Delete", &full(ACTIVITY)),
            s3_record("ObjectCreated:Put", &format!("elsewhere/2024/03/01/{CONN}")),
            // A sibling folder sharing the prefix's text is outside it.
            s3_record(
                "ObjectCreated:Put",
                &format!("AWSLogs/123456789012/redshift/us-east-10/{CONN}"),
            ),
            s3_record("ObjectCreated:Put", &full(USER)),
            s3_record(
                "ObjectCreated:Copy",
                &format!("{DAY}redshift-audit-forwarder-cursor.json"),
            ),
            s3_record("ObjectCreated:CompleteMultipartUpload", &full(ACTIVITY)),
        ]);
        assert_eq!(
            keys(&objects(&event, &filter)),
            vec![full(CONN), full(ACTIVITY)]
        );
    }

    #[test]
    fn empty_log_type_list_selects_nothing() {
        let filter = Filter {
            prefix: String::new(),
            log_types: vec![],
        };
        assert_eq!(objects(&sample("s3-direct"), &filter), vec![]);
    }

    #[test]
    fn test_events_are_ignored_however_wrapped() {
        let test = sample("s3-test-event").to_string();
        let sns = json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Type": "Notification", "Message": test}}]});
        assert_eq!(parse(&sns), Ok(Invocation::Objects(vec![])));
        let envelope = json!({"Type": "Notification", "Message": test}).to_string();
        let sqs = sqs_event(&[("m1", test.clone()), ("m2", envelope)]);
        assert_eq!(
            parse(&sqs),
            Ok(Invocation::SqsBatch(vec![
                SqsMessage {
                    message_id: "m1".into(),
                    objects: Ok(vec![])
                },
                SqsMessage {
                    message_id: "m2".into(),
                    objects: Ok(vec![])
                },
            ]))
        );
    }

    #[test]
    fn eventbridge_events_other_than_object_created_are_ignored() {
        let mut event = sample("s3-eventbridge");
        event["detail-type"] = json!("Object Deleted");
        event.as_object_mut().expect("object").remove("detail");
        assert_eq!(parse(&event), Ok(Invocation::Objects(vec![])));
    }

    #[test]
    fn sqs_body_may_be_an_eventbridge_event() {
        let event = sqs_event(&[("m1", sample("s3-eventbridge").to_string())]);
        let Ok(Invocation::SqsBatch(messages)) = parse(&event) else {
            panic!("expected a batch")
        };
        assert_eq!(
            messages[0].objects.as_ref().map(|o| keys(o)),
            Ok(vec![full(ACTIVITY).as_str()])
        );
    }

    #[test]
    fn each_ignored_key_is_logged_once_with_its_reason() {
        let filter = Filter {
            prefix: "AWSLogs".into(),
            log_types: vec![LogType::ConnectionLog],
        };
        let event = s3_event(vec![
            s3_record("ObjectRemoved:Delete", &full(CONN)),
            s3_record("ObjectCreated:Put", &format!("other/{CONN}")),
            s3_record("ObjectCreated:Put", &format!("{DAY}notes.txt")),
            s3_record("ObjectCreated:Put", &full(USER)),
        ]);
        let logs = capture_logs(|| {
            let _ = parse_invocation(&event, &filter);
        });
        let lines: Vec<&str> = logs.lines().collect();
        assert_eq!(lines.len(), 4, "{logs}");
        assert!(
            lines[0].contains("ObjectRemoved:Delete is not an object creation"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].contains("outside the audit prefix") && lines[1].contains("other/"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].contains("not a Redshift audit log") && lines[2].contains("notes.txt"),
            "{}",
            lines[2]
        );
        assert!(
            lines[3].contains("log type userlog is not selected"),
            "{}",
            lines[3]
        );
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn capture_logs(f: impl FnOnce()) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = captured.0.lock().expect("lock").clone();
        String::from_utf8(bytes).expect("utf-8 logs")
    }

    // --- SQS -----------------------------------------------------------------------------------

    #[test]
    fn malformed_sqs_message_fails_only_itself() {
        let good = s3_event(vec![s3_record("ObjectCreated:Put", &full(CONN))]).to_string();
        let event = sqs_event(&[
            ("ok", good),
            ("not-json", "{oops".into()),
            ("no-key", json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {}}}]}).to_string()),
            ("stranger", json!({"hello": "world"}).to_string()),
        ]);
        let Ok(Invocation::SqsBatch(messages)) = parse(&event) else {
            panic!("expected a batch")
        };
        assert_eq!(messages.len(), 4);
        assert_eq!(
            messages[0].objects.as_ref().map(|o| keys(o)),
            Ok(vec![full(CONN).as_str()])
        );
        let errors: Vec<String> = messages[1..]
            .iter()
            .map(|m| {
                m.objects
                    .as_ref()
                    .err()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            })
            .collect();
        assert!(
            errors[0].starts_with("Records[1].body is not JSON"),
            "{}",
            errors[0]
        );
        assert_eq!(
            errors[1],
            "Records[2].body.Records[0].s3.object.key missing"
        );
        assert!(
            errors[2].starts_with("Records[3].body: unrecognised event with fields [hello]"),
            "{}",
            errors[2]
        );
    }

    #[test]
    fn sns_envelope_in_sqs_body_names_its_path_in_errors() {
        let inner = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"object": {"key": "k"}}}]});
        let envelope = json!({"Type": "Notification", "Message": inner.to_string()}).to_string();
        let Ok(Invocation::SqsBatch(messages)) = parse(&sqs_event(&[("m", envelope)])) else {
            panic!("expected a batch")
        };
        assert_eq!(
            messages[0].objects,
            Err(EventError::Missing {
                path: "Records[0].body.Message.Records[0].s3.bucket".into()
            })
        );
    }

    #[test]
    fn sqs_record_without_message_id_fails_the_batch() {
        let event = json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]});
        assert_eq!(
            parse(&event),
            Err(EventError::Missing {
                path: "Records[0].messageId".into()
            })
        );
    }

    // --- malformed events ------------------------------------------------------------------------

    #[test]
    fn malformed_events_name_what_is_wrong() {
        let no_key = s3_event(vec![
            json!({"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": BUCKET}, "object": {"size": 1}}}),
        ]);
        let key_number = s3_event(vec![
            json!({"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": BUCKET}, "object": {"key": 7}}}),
        ]);
        let empty_bucket = s3_event(vec![
            json!({"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": ""}, "object": {"key": "k"}}}),
        ]);
        let bad_size = s3_event(vec![
            json!({"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": BUCKET}, "object": {"key": full(CONN), "size": -1}}}),
        ]);
        let cases: Vec<(Value, &str)> = vec![
            (json!([]), "event is not a JSON object"),
            (json!("text"), "event is not a JSON object"),
            (json!({"Records": {}}), "Records is not an array"),
            (json!({"Records": []}), "Records: empty"),
            (json!({"Records": [1]}), "Records[0] is not a JSON object"),
            (json!({"Records": [{}]}), "Records[0].eventSource missing"),
            (json!({"Records": [{"eventSource": "aws:kinesis"}]}), "Records[0].eventSource: unsupported event source \"aws:kinesis\" (expected aws:s3, aws:sns or aws:sqs)"),
            (no_key, "Records[0].s3.object.key missing"),
            (key_number, "Records[0].s3.object.key is not a string"),
            (empty_bucket, "Records[0].s3.bucket.name: empty"),
            (bad_size, "Records[0].s3.object.size is not a non-negative integer"),
            (json!({"Records": [{"eventSource": "aws:s3", "s3": {}}]}), "Records[0].eventName missing"),
            (
                json!({"Records": [s3_record("ObjectCreated:Put", &full(CONN)), {"eventSource": "aws:sqs"}]}),
                "Records[1].eventSource: \"aws:sqs\" where \"aws:s3\" was expected (records of one event share a source)",
            ),
            (json!({"Records": [{"EventSource": "aws:sns"}]}), "Records[0].Sns missing"),
            (json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "nope"}}]}), "Records[0].Sns.Message is not JSON"),
            (json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "[1]"}}]}), "Records[0].Sns.Message is not a JSON object"),
            (json!({"source": "aws.s3", "detail-type": "Object Created"}), "detail missing"),
            (json!({"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {"name": "b"}, "object": {}}}), "detail.object.key missing"),
            (json!({"source": "aws.events", "detail-type": "Something"}), "detail-type: \"Something\" from aws.events is not a \"Scheduled Event\""),
            (json!({"Event": "s3:Other"}), "Event: \"s3:Other\" is not \"s3:TestEvent\""),
            (json!({}), "event: unrecognised event with fields []"),
            (json!({"foo": 1}), "event: unrecognised event with fields [foo]"),
            // SNS envelopes are only unwrapped inside SQS bodies, where they occur.
            (json!({"Type": "Notification", "Message": "{}"}), "event: unrecognised event"),
        ];
        for (event, expected) in cases {
            let text = error_text(&event);
            assert!(
                text.starts_with(expected),
                "{event}: got {text:?}, expected {expected:?}"
            );
        }
    }

    #[test]
    fn backfill_requests_are_checked() {
        let ok = |event: Value| match parse(&event) {
            Ok(Invocation::Backfill(request)) => request,
            other => panic!("{event}: {other:?}"),
        };
        assert_eq!(ok(json!({"backfill": {}})), BackfillRequest::default());
        assert_eq!(
            ok(json!({"backfill": {"since": null, "dry_run": null}})),
            BackfillRequest::default()
        );
        assert_eq!(
            ok(json!({"backfill": {"since": "2021-07-18T00:53:00.123+02:00"}}))
                .since
                .as_deref(),
            Some("2021-07-18T00:53:00.123+02:00")
        );
        let cases: Vec<(Value, &str)> = vec![
            (json!({"backfill": true}), "backfill is not a JSON object"),
            (
                json!({"backfill": {}, "extra": 1}),
                "extra: unexpected field beside backfill",
            ),
            (
                json!({"backfill": {"dry-run": true}}),
                "backfill.dry-run: unknown field (expected since, dry_run)",
            ),
            (
                json!({"backfill": {"dry_run": "yes"}}),
                "backfill.dry_run is not true or false",
            ),
            (
                json!({"backfill": {"since": 5}}),
                "backfill.since is not a string",
            ),
            (
                json!({"backfill": {"since": "yesterday"}}),
                "backfill.since: \"yesterday\" is not an RFC 3339 time",
            ),
        ];
        for (event, expected) in cases {
            let text = error_text(&event);
            assert!(text.starts_with(expected), "{event}: got {text:?}");
        }
    }

    #[test]
    fn rfc3339_times_are_checked_field_by_field() {
        for good in [
            "2024-03-01T00:00:00Z",
            // RFC 3339 (5.6, note) allows a space for readability; settings and events agree.
            "2024-03-01 00:00:00Z",
            "2024-03-01t00:00:00z",
            "2024-02-29T23:59:60Z",
            "2024-03-01T00:00:00.5Z",
            "2024-03-01T00:00:00.123456789-05:30",
            "2024-03-01T00:00:00+00:00",
        ] {
            assert!(is_rfc3339(good), "{good}");
        }
        for bad in [
            "",
            "2024-03-01",
            "2024-03-01T00:00Z",
            "2024-03-01T00:00:00",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-03-01T24:00:00Z",
            "2024-03-01T00:60:00Z",
            "2024-03-01T00:00:61Z",
            "2024-03-01T00:00:00.Z",
            "2024-03-01T00:00:00+0100",
            "2024-03-01T00:00:00+24:00",
            "2024-03-01T00:00:00Zjunk",
            "2024-03-01T00:00:00\u{e9}",
            "\u{e9}024-03-01T00:00:00Z",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }

    #[test]
    fn filter_select_reports_what_the_file_name_says() {
        let filter = Filter::default();
        let name = filter.select(&full(USER)).expect("selected");
        assert_eq!(name.log_type, LogType::UserLog);
        assert_eq!(
            Filter {
                prefix: "x".into(),
                ..Filter::default()
            }
            .select(&full(USER)),
            Err(Skip::OutsidePrefix { prefix: "x".into() })
        );
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            prop_oneof![
                Just("aws:s3".to_string()),
                Just("aws:sqs".to_string()),
                Just("aws:sns".to_string()),
                Just("aws.s3".to_string()),
                Just("aws.events".to_string()),
                Just("ObjectCreated:Put".to_string()),
                Just("Object Created".to_string()),
                Just("Scheduled Event".to_string()),
                Just("Notification".to_string()),
                Just("s3:TestEvent".to_string()),
                Just(full(CONN)),
                Just(r#"{"Records":[]}"#.to_string()),
                ".{0,12}",
            ]
            .prop_map(Value::String),
        ];
        let names = prop_oneof![
            Just("Records"),
            Just("eventSource"),
            Just("EventSource"),
            Just("eventName"),
            Just("s3"),
            Just("bucket"),
            Just("name"),
            Just("object"),
            Just("key"),
            Just("size"),
            Just("Sns"),
            Just("Message"),
            Just("body"),
            Just("messageId"),
            Just("source"),
            Just("detail-type"),
            Just("detail"),
            Just("Event"),
            Just("Type"),
            Just("backfill"),
            Just("since"),
            Just("dry_run"),
        ];
        leaf.prop_recursive(5, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((names.clone(), inner), 0..6).prop_map(|fields| {
                    Value::Object(
                        fields
                            .into_iter()
                            .map(|(k, v)| (k.to_string(), v))
                            .collect(),
                    )
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn no_json_makes_it_panic(event in arb_json()) {
            let _ = parse_invocation(&event, &Filter::default());
            // The same shapes as SQS bodies and SNS messages.
            let text = event.to_string();
            let _ = parse(&sqs_event(&[("m", text.clone())]));
            let _ = parse(&json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": text}}]}));
        }
    }
}
