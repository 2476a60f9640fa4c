//! The messages the backfill's fan-out sends: S3 notifications of one object each, so the
//! workers read them through the SQS path every other notification takes (`s3::records`).

use serde_json::json;

use crate::key::encode_event_key;

/// `configurationId` of the messages the fan-out sends: tells them from S3's own.
pub const FANOUT_CONFIGURATION: &str = "redshift-audit-forwarder-backfill";

/// One object as an S3 `ObjectCreated` notification body: the bucket, the encoded key, the
/// size and the ETag as listed (quotes dropped, as S3 sends it), `event_time` in RFC 3339.
pub fn object_created(bucket: &str, key: &str, size: u64, etag: &str, event_time: &str) -> String {
    json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "eventTime": event_time,
            "eventName": "ObjectCreated:Put",
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": FANOUT_CONFIGURATION,
                "bucket": { "name": bucket, "arn": format!("arn:aws:s3:::{bucket}") },
                "object": { "key": encode_event_key(key), "size": size, "eTag": etag.trim_matches('"') },
            },
        }]
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{parse_invocation, Filter, Invocation};

    #[test]
    fn encoded_keys_decode_to_themselves() {
        for key in [
            "AWSLogs/1/redshift/us-east-1/2024/03/01/1_redshift_us-east-1_c_userlog_2024-03-01T00:53.gz",
            "custom prefix/with+plus/é/%41.gz",
        ] {
            let encoded = encode_event_key(key);
            assert!(!encoded.contains([' ', '+', ':']), "{encoded}");
            assert_eq!(crate::key::decode_event_key(&encoded).unwrap(), key);
        }
    }

    #[test]
    fn a_fanout_message_in_an_sqs_record_reads_back_as_its_object() {
        let key = "AWSLogs/123456789012/redshift/us-east-1/2024/03/01/123456789012_redshift_us-east-1_c_connectionlog_2024-03-01T00:53.gz";
        let body = object_created("audit", key, 123, "\"abc\"", "2024-03-01T01:00:00.000Z");
        let event = json!({ "Records": [{
            "messageId": "m-1", "receiptHandle": "r", "body": body, "eventSource": "aws:sqs",
        }]});
        let Ok(Invocation::SqsBatch(messages)) = parse_invocation(&event, &Filter::default())
        else {
            panic!("not an SQS batch");
        };
        let objects = messages[0].objects.as_ref().expect("well formed");
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].bucket, "audit");
        assert_eq!(objects[0].key, key);
        assert_eq!(objects[0].size, Some(123));
        assert_eq!(objects[0].etag.as_deref(), Some("abc"));
    }
}
