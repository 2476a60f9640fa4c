//! CloudWatch Logs subscription events: `{"awslogs": {"data": "<base64 of gzip JSON>"}}`
//! decoded into the batch (`crate::cloudwatch::decode_data`). What the batch's log group means is
//! the handler's business; here only the envelope is read.

use serde_json::Value;

use super::EventError;
use crate::cloudwatch::{decode_data, decode_subscription, LogsData};

/// A decoded subscription batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogBatch {
    pub data: LogsData,
}

/// `awslogs` of a Lambda event.
pub(super) fn invocation(awslogs: &Value) -> Result<LogBatch, EventError> {
    let data = awslogs
        .get("data")
        .ok_or_else(|| EventError::Missing {
            path: "awslogs.data".into(),
        })?
        .as_str()
        .ok_or(EventError::WrongType {
            path: "awslogs.data".into(),
            expected: "a string",
        })?;
    decode_data(data)
        .map(|data| LogBatch { data })
        .map_err(|e| EventError::Invalid {
            path: "awslogs.data".into(),
            reason: e.to_string(),
        })
}

/// A saved subscription batch, as `parse` reads it: the event Lambda receives
/// (`{"awslogs": ...}`) or its decoded payload (`{"messageType": ..., "logEvents": [...]}`).
/// `None` when the text is neither (it is then read as an audit log or a trail file).
pub fn decode_log_batch(text: &[u8]) -> Option<Result<LogBatch, String>> {
    let start = text.iter().position(|b| !b.is_ascii_whitespace())?;
    if text[start] != b'{' {
        return None;
    }
    let value: Value = serde_json::from_slice(text).ok()?;
    let object = value.as_object()?;
    if object.contains_key("awslogs") {
        return Some(
            decode_subscription(text)
                .map(|data| LogBatch { data })
                .map_err(|e| e.to_string()),
        );
    }
    if object.contains_key("logEvents") {
        return Some(
            serde_json::from_value::<LogsData>(value)
                .map(|data| LogBatch { data })
                .map_err(|e| format!("not a CloudWatch Logs batch: {e}")),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use base64::Engine as _;
    use serde_json::json;

    use super::*;
    use crate::events::{parse_invocation, Filter, Invocation};

    fn encoded(payload: &Value) -> String {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(payload.to_string().as_bytes()).unwrap();
        base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap())
    }

    fn payload() -> Value {
        json!({"messageType": "DATA_MESSAGE", "owner": "123456789012",
               "logGroup": "/aws/redshift/cluster/prod/userlog", "logStream": "s",
               "subscriptionFilters": ["f"],
               "logEvents": [{"id": "1", "timestamp": 1, "message": "m"}]})
    }

    #[test]
    fn a_subscription_event_is_a_log_batch() {
        let event = json!({"awslogs": {"data": encoded(&payload())}});
        let Ok(Invocation::LogBatch(batch)) = parse_invocation(&event, &Filter::default()) else {
            panic!("not a log batch");
        };
        assert_eq!(batch.data.log_group, "/aws/redshift/cluster/prod/userlog");
        assert_eq!(batch.data.log_events.len(), 1);
    }

    #[test]
    fn bad_data_is_an_error_naming_the_field() {
        for event in [json!({"awslogs": {}}), json!({"awslogs": {"data": "!!"}})] {
            let e = parse_invocation(&event, &Filter::default()).unwrap_err();
            assert!(e.to_string().contains("awslogs.data"), "{e}");
        }
    }

    #[test]
    fn parse_reads_a_saved_event_or_its_decoded_payload() {
        let event = json!({"awslogs": {"data": encoded(&payload())}}).to_string();
        let from_event = decode_log_batch(event.as_bytes()).unwrap().unwrap();
        let from_payload = decode_log_batch(payload().to_string().as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(from_event, from_payload);
        assert!(decode_log_batch(b"{\"Records\": []}").is_none());
        assert!(decode_log_batch(b"not json").is_none());
    }
}
