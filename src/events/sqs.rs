//! SQS batches and SNS envelopes: the wrappers around S3-originated messages.
//!
//! Each SQS record is read with `aws_lambda_events`' [`SqsMessage`], whose fields are all
//! optional: the checks that a message has an id and a body are ours. SNS records and the SNS
//! envelope in an SQS body are read with our own two-field types (see the module documentation
//! of `events` for why not `aws_lambda_events`' `SnsRecord`).

use aws_lambda_events::event::sqs::SqsMessage as AwsSqsMessage;
use serde::Deserialize;
use serde_json::Value;

use super::json_path::{
    as_object, expect_source, join, parse_json_string, required, typed, typed_field,
};
use super::{notification, Envelope, EventError, Filter, ObjectRef, SqsMessage};

/// Longest receipt handle or digest quoted to identify a message without an id.
const IDENTITY_CHARS: usize = 80;

/// One entry per record, in order. A record of another source fails the whole batch (the event
/// is not an SQS batch); anything else wrong with a record fails only that message.
pub(super) fn batch(records: &[Value], filter: &Filter) -> Result<Vec<SqsMessage>, EventError> {
    let mut messages = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        let path = format!("Records[{i}]");
        expect_source(record, &path, "aws:sqs")?;
        messages.push(message(record, &path, filter));
    }
    Ok(messages)
}

fn message(record: &Value, path: &str, filter: &Filter) -> SqsMessage {
    let parsed = typed::<AwsSqsMessage>(record, path);
    let message_id = match &parsed {
        Ok(m) => m.message_id.clone(),
        // Whatever else is wrong, an id that can be read still names the message.
        Err(_) => record
            .get("messageId")
            .and_then(Value::as_str)
            .map(str::to_string),
    }
    .filter(|id| !id.is_empty());
    let Some(message_id) = message_id else {
        return SqsMessage {
            message_id: String::new(),
            objects: Err(no_message_id(record, path)),
        };
    };
    let objects = parsed.and_then(|m| {
        let body_path = join(path, "body");
        body(&required(m.body, &body_path)?, &body_path, filter)
    });
    SqsMessage {
        message_id,
        objects,
    }
}

/// What identifies a message that has no usable `messageId`.
fn no_message_id(record: &Value, path: &str) -> EventError {
    let quoted = |name: &str| {
        record.get(name).and_then(Value::as_str).map(|v| {
            format!(
                "{name} {:?}",
                v.chars().take(IDENTITY_CHARS).collect::<String>()
            )
        })
    };
    let identity: Vec<String> = ["receiptHandle", "md5OfBody"]
        .iter()
        .filter_map(|name| quoted(name))
        .collect();
    EventError::NoMessageId {
        path: join(path, "messageId"),
        identity: if identity.is_empty() {
            "no receiptHandle or md5OfBody either".into()
        } else {
            identity.join(", ")
        },
    }
}

fn body(text: &str, path: &str, filter: &Filter) -> Result<Vec<ObjectRef>, EventError> {
    let body = parse_json_string(text, path)?;
    notification(as_object(&body, path)?, path, filter, Envelope::SqsBody)
}

/// The part of an SNS record we read: `Sns.Message`.
#[derive(Deserialize)]
struct SnsRecord {
    #[serde(rename = "Sns")]
    sns: SnsEnvelope,
}

/// An SNS notification: in a Lambda record's `Sns`, or as an SQS body without raw delivery.
#[derive(Deserialize)]
struct SnsEnvelope {
    #[serde(rename = "Message")]
    message: String,
}

/// The `Records[]` of an SNS event: every message must be an S3-originated one.
pub(super) fn sns_records(
    records: &[Value],
    filter: &Filter,
) -> Result<Vec<ObjectRef>, EventError> {
    let mut objects = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let path = format!("Records[{i}]");
        expect_source(record, &path, "aws:sns")?;
        let record: SnsRecord = typed(record, &path)?;
        let message_path = join(&join(&path, "Sns"), "Message");
        objects.extend(sns_message(&record.sns.message, &message_path, filter)?);
    }
    Ok(objects)
}

/// An SNS envelope (`"Type": "Notification"`) found in an SQS body at `path`.
pub(super) fn sns_envelope(
    envelope: &serde_json::Map<String, Value>,
    path: &str,
    filter: &Filter,
) -> Result<Vec<ObjectRef>, EventError> {
    let message_path = join(path, "Message");
    let text: String = typed_field(envelope, path, "Message")?;
    sns_message(&text, &message_path, filter)
}

fn sns_message(text: &str, path: &str, filter: &Filter) -> Result<Vec<ObjectRef>, EventError> {
    let inner = parse_json_string(text, path)?;
    notification(as_object(&inner, path)?, path, filter, Envelope::Bare)
}
