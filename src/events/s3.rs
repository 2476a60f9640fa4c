//! S3-originated messages: notification records (`Records[].s3`) and EventBridge `aws.s3` events.
//!
//! A record's `s3` part is read with `aws_lambda_events`' [`S3Entity`]; the record around it is
//! not (see the module documentation of `events` for why), nor is the EventBridge envelope.

use aws_lambda_events::event::s3::S3Entity;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::json_path::{
    as_object, expect_source, join, non_empty, req_str, required, str_at, typed_field,
};
use super::{admit, bucket_allowed, EventError, Filter, ObjectRef};
use crate::key;

/// `eventName` prefix of every S3 notification for a new object (`ObjectCreated:Put`, `...:Copy`).
const OBJECT_CREATED: &str = "ObjectCreated:";
/// EventBridge `detail-type` for a new S3 object.
const EB_OBJECT_CREATED: &str = "Object Created";

/// The `Records[]` of an S3 notification found at `path`; ignored records are left out.
pub(super) fn records(
    records: &[Value],
    path: &str,
    filter: &Filter,
) -> Result<Vec<ObjectRef>, EventError> {
    let mut objects = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        let record_path = format!("{}[{i}]", join(path, "Records"));
        if let Some(object) = record_object(record, &record_path, filter)? {
            objects.push(object);
        }
    }
    Ok(objects)
}

/// One `Records[]` entry of an S3 notification; `None` when it is ignored.
fn record_object(
    record: &Value,
    path: &str,
    filter: &Filter,
) -> Result<Option<ObjectRef>, EventError> {
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
    let s3: S3Entity = typed_field(record, path, "s3")?;
    let bucket_path = join(&join(&s3_path, "bucket"), "name");
    let bucket = required(s3.bucket.name, &bucket_path)?;
    let object_path = join(&s3_path, "object");
    let key_path = join(&object_path, "key");
    let key = key::decode_event_key(&required(s3.object.key, &key_path)?).map_err(|source| {
        EventError::Key {
            path: key_path.clone(),
            source,
        }
    })?;
    // `eTag` is what S3 sends; `etag` was accepted before these types and still is.
    let etag = match s3.object.e_tag {
        Some(etag) => Some(etag),
        None => str_at(record, &["s3", "object", "etag"]).map(str::to_string),
    };
    let object_ref = ObjectRef {
        bucket: non_empty(&bucket, &bucket_path)?.to_string(),
        key: non_empty(&key, &key_path)?.to_string(),
        size: size(s3.object.size, &join(&object_path, "size"))?,
        etag,
        version_id: s3.object.version_id,
        alternate_key: None,
    };
    Ok(admit(object_ref, filter))
}

/// `aws_lambda_events` reads sizes as `i64`; a negative one is no size.
fn size(size: Option<i64>, path: &str) -> Result<Option<u64>, EventError> {
    size.map(|n| {
        u64::try_from(n).map_err(|_| EventError::WrongType {
            path: path.to_string(),
            expected: "a non-negative integer",
        })
    })
    .transpose()
}

/// The `detail` of an EventBridge event from S3. `aws_lambda_events` has no type for it.
#[derive(Deserialize)]
struct Detail {
    bucket: Bucket,
    object: Object,
}

#[derive(Deserialize)]
struct Bucket {
    name: Option<String>,
}

#[derive(Deserialize)]
struct Object {
    key: Option<String>,
    size: Option<u64>,
    /// AWS documents `etag`; moto sends `eTag`.
    etag: Option<String>,
    #[serde(rename = "eTag")]
    moto_etag: Option<String>,
    #[serde(rename = "version-id")]
    version_id: Option<String>,
}

/// An EventBridge event from S3; `None` when it is ignored. Its key is taken as it is; when it
/// looks URL-encoded the decoded form is offered too (see [`eventbridge_key`]).
pub(super) fn eventbridge_object(
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
    let detail: Detail = typed_field(msg, path, "detail")?;
    let bucket_path = join(&join(&detail_path, "bucket"), "name");
    let bucket = required(detail.bucket.name, &bucket_path)?;
    let object_path = join(&detail_path, "object");
    let key_path = join(&object_path, "key");
    let key = required(detail.object.key, &key_path)?;
    let object_ref = ObjectRef {
        bucket: non_empty(&bucket, &bucket_path)?.to_string(),
        key: non_empty(&key, &key_path)?.to_string(),
        size: detail.object.size,
        etag: detail.object.etag.or(detail.object.moto_etag),
        version_id: detail.object.version_id,
        alternate_key: None,
    };
    Ok(eventbridge_key(object_ref, filter))
}

/// Applies the filter to an EventBridge key, which may or may not be URL-encoded (see the
/// module documentation of `events`). When it looks encoded (`decode_event_key` changes it):
/// - the key as given is selected: kept, with the decoded key as `alternate_key` when that is
///   selected too, for the fetch to try once if the key as given names no object;
/// - only the decoded key is selected: the decoded key is used, with a WARN line, since the key
///   as given is no audit log of ours;
/// - neither is: ignored, with a WARN line instead of the usual INFO one.
fn eventbridge_key(mut object: ObjectRef, filter: &Filter) -> Option<ObjectRef> {
    if !bucket_allowed(&object, filter) {
        return None;
    }
    let decoded = key::decode_event_key(&object.key)
        .ok()
        .filter(|decoded| *decoded != object.key);
    let Some(decoded) = decoded else {
        return admit(object, filter);
    };
    let decoded_selected = filter.select(&decoded).is_ok();
    match filter.select(&object.key) {
        Ok(_) => {
            object.alternate_key = decoded_selected.then_some(decoded);
            Some(object)
        }
        Err(_) if decoded_selected => {
            tracing::warn!(bucket = %object.bucket, key = %object.key, decoded = %decoded,
                "EventBridge key looks URL-encoded and only its decoded form is an audit log of ours; using the decoded key");
            object.key = decoded;
            Some(object)
        }
        Err(skip) => {
            tracing::warn!(bucket = %object.bucket, key = %object.key, decoded = %decoded,
                reason = %skip, "ignored object (its key looks URL-encoded, and its decoded form is not selected either)");
            None
        }
    }
}
