//! JSON access for event envelopes that names the field at fault (`Records[0].s3.object.key`).
//!
//! Two ways in: [`typed`] deserializes a part of the event into a serde type (ours or
//! `aws_lambda_events`') and turns serde's error into an [`EventError`] at the full path that
//! `serde_path_to_error` tracked; the small `Value` helpers read the few fields that decide what
//! kind of envelope this is before anything is deserialized.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use serde_path_to_error::Segment;

use super::EventError;

/// Deserializes `value`, found at `path`, into `T`. A missing or null required field is
/// [`EventError::Missing`], a value of the wrong JSON type [`EventError::WrongType`], anything
/// else serde refuses [`EventError::Invalid`] with serde's reason.
pub(super) fn typed<T: DeserializeOwned>(value: &Value, path: &str) -> Result<T, EventError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let at = full_path(path, e.path());
        from_serde(&e.inner().to_string(), at)
    })
}

/// Like [`typed`] for a field of `obj`: absent is the same as null.
pub(super) fn typed_field<T: DeserializeOwned>(
    obj: &Map<String, Value>,
    path: &str,
    name: &str,
) -> Result<T, EventError> {
    typed(obj.get(name).unwrap_or(&Value::Null), &join(path, name))
}

fn full_path(base: &str, path: &serde_path_to_error::Path) -> String {
    let mut out = base.to_string();
    for segment in path {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => out = join(&out, key),
            Segment::Enum { variant } => out = join(&out, variant),
            Segment::Unknown => out = join(&out, "?"),
        }
    }
    out
}

/// Serde's messages (`missing field `x``, `invalid type: integer `7`, expected a string`,
/// `invalid value: integer `-1`, expected u64`) are the stable texts of `serde::de::Error`'s
/// provided methods; anything else keeps serde's own words.
fn from_serde(message: &str, path: String) -> EventError {
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return EventError::Missing {
            path: join(&path, field),
        };
    }
    let path = display_path(&path);
    if let Some((unexpected, expected)) = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
        .and_then(|rest| rest.split_once(", expected "))
    {
        if unexpected == "null" {
            return EventError::Missing { path };
        }
        if let Some(expected) = json_kind(expected) {
            return EventError::WrongType { path, expected };
        }
    }
    // Serde also reads a struct from an array of its fields in order; events never have that
    // shape, and an array of the wrong length is reported as what it is: not an object.
    if message.starts_with("invalid length ") && message.contains(", expected struct ") {
        return EventError::WrongType {
            path,
            expected: "a JSON object",
        };
    }
    EventError::Invalid {
        path,
        reason: message.to_string(),
    }
}

/// What serde expected, in JSON's words.
fn json_kind(expected: &str) -> Option<&'static str> {
    match expected {
        "a string" => Some("a string"),
        "a boolean" => Some("true or false"),
        "a sequence" => Some("an array"),
        // The only numbers read from events are sizes.
        "i64" | "u64" => Some("a non-negative integer"),
        "a map" => Some("a JSON object"),
        s if s.starts_with("struct ") => Some("a JSON object"),
        _ => None,
    }
}

pub(super) fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

pub(super) fn display_path(path: &str) -> String {
    if path.is_empty() {
        "event".to_string()
    } else {
        path.to_string()
    }
}

pub(super) fn as_object<'a>(
    value: &'a Value,
    path: &str,
) -> Result<&'a Map<String, Value>, EventError> {
    value.as_object().ok_or_else(|| EventError::WrongType {
        path: display_path(path),
        expected: "a JSON object",
    })
}

/// A present, non-null string field.
pub(super) fn req_str<'a>(
    obj: &'a Map<String, Value>,
    path: &str,
    name: &str,
) -> Result<&'a str, EventError> {
    match obj.get(name) {
        None | Some(Value::Null) => Err(EventError::Missing {
            path: join(path, name),
        }),
        Some(value) => value.as_str().ok_or_else(|| EventError::WrongType {
            path: join(path, name),
            expected: "a string",
        }),
    }
}

/// A required field that serde left as `None` (absent or null).
pub(super) fn required<T>(value: Option<T>, path: &str) -> Result<T, EventError> {
    value.ok_or_else(|| EventError::Missing {
        path: path.to_string(),
    })
}

pub(super) fn non_empty<'a>(s: &'a str, path: &str) -> Result<&'a str, EventError> {
    if s.is_empty() {
        Err(EventError::Invalid {
            path: path.to_string(),
            reason: "empty".into(),
        })
    } else {
        Ok(s)
    }
}

/// Best-effort lookup for log lines and identification; never an error.
pub(super) fn str_at<'a>(obj: &'a Map<String, Value>, names: &[&str]) -> Option<&'a str> {
    let (last, parents) = names.split_last()?;
    let mut current = obj;
    for name in parents {
        current = current.get(*name)?.as_object()?;
    }
    current.get(*last)?.as_str()
}

/// `eventSource` (S3, SQS) or `EventSource` (SNS) of a record.
pub(super) fn record_source<'a>(record: &'a Value, path: &str) -> Result<&'a str, EventError> {
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

pub(super) fn expect_source(record: &Value, path: &str, expected: &str) -> Result<(), EventError> {
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

/// The JSON document inside a string field (an SQS body, an SNS message).
pub(super) fn parse_json_string(text: &str, path: &str) -> Result<Value, EventError> {
    serde_json::from_str(text).map_err(|e| EventError::NotJson {
        path: path.to_string(),
        reason: e.to_string(),
    })
}

/// Up to a few top-level field names, to say what an unrecognised event looked like.
pub(super) fn field_names(obj: &Map<String, Value>) -> String {
    const SHOWN: usize = 8;
    let mut names: Vec<&str> = obj.keys().take(SHOWN).map(String::as_str).collect();
    if obj.len() > SHOWN {
        names.push("...");
    }
    names.join(", ")
}
