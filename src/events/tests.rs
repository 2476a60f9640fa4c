//! Tests of the event envelopes, on the sample events and on hand-made ones.

use super::*;
use crate::key;
use proptest::prelude::*;
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};

mod batch_ops;
mod pinned;

const BUCKET: &str = "audit-bucket";
const DAY: &str = "AWSLogs/123456789012/redshift/us-east-1/2024/03/01/";
const CONN: &str =
    "123456789012_redshift_us-east-1_analytics-prod_connectionlog_2024-03-01T00:53.gz";
const USER: &str = "123456789012_redshift_us-east-1_analytics-prod_userlog_2024-03-01T00:53.gz";
const ACTIVITY: &str =
    "123456789012_redshift_us-east-1_analytics-prod_useractivitylog_2024-03-01T00:53.gz";

fn sample(name: &str) -> Value {
    let text = match name {
        "s3-direct" => include_str!("../../events/s3-direct.json"),
        "s3-sns" => include_str!("../../events/s3-sns.json"),
        "s3-sqs" => include_str!("../../events/s3-sqs.json"),
        "s3-eventbridge" => include_str!("../../events/s3-eventbridge.json"),
        "s3-test-event" => include_str!("../../events/s3-test-event.json"),
        "scheduled" => include_str!("../../events/scheduled.json"),
        "backfill-manual" => include_str!("../../events/backfill-manual.json"),
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
            alternate_key: None,
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
            alternate_key: None,
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
            dry_run: true,
            retry_set_aside: false,
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
        allowed_buckets: Vec::new(),
        cloudtrail: None,
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
fn s3_record_as_moto_sends_it_is_read() {
    // No userIdentity, requestParameters or responseElements, and a zoneless eventTime: fields
    // aws_lambda_events' S3EventRecord requires, which is why the record around `s3` is ours.
    let event = json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3",
        "awsRegion": "us-east-1", "eventTime": "2024-03-01T02:15:31.004000", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "c", "bucket": {"name": BUCKET, "arn": "arn:aws:s3:::audit-bucket"},
        "object": {"key": full(CONN).replace(':', "%3A"), "size": 3, "eTag": "e"}}}]});
    let got = objects(&event, &Filter::default());
    assert_eq!(keys(&got), vec![full(CONN)]);
    assert_eq!((got[0].size, got[0].etag.as_deref()), (Some(3), Some("e")));
}

#[test]
fn eventbridge_accepts_moto_unix_time() {
    // moto sends `time` as seconds since the epoch; AWS as RFC 3339. Neither is read.
    let mut event = sample("s3-eventbridge");
    event["time"] = json!(1_709_259_331.1);
    assert_eq!(
        keys(&objects(&event, &Filter::default())),
        vec![full(ACTIVITY)]
    );
}

#[test]
fn eventbridge_key_that_looks_encoded_offers_its_decoded_form() {
    let mut event = sample("s3-eventbridge");
    event["detail"]["object"]["key"] = json!(format!("audit+logs/{DAY}{ACTIVITY}"));
    let got = objects(&event, &Filter::default());
    assert_eq!(got[0].key, format!("audit+logs/{DAY}{ACTIVITY}"));
    assert_eq!(
        got[0].alternate_key.as_deref(),
        Some(format!("audit logs/{DAY}{ACTIVITY}").as_str())
    );
}

#[test]
fn eventbridge_alternate_key_is_offered_only_when_it_is_selected_too() {
    let filter = Filter {
        prefix: "audit+logs".into(),
        log_types: LogType::ALL.to_vec(),
        allowed_buckets: Vec::new(),
        cloudtrail: None,
    };
    let mut event = sample("s3-eventbridge");
    event["detail"]["object"]["key"] = json!(format!("audit+logs/{DAY}{ACTIVITY}"));
    let got = objects(&event, &filter);
    assert_eq!(got[0].key, format!("audit+logs/{DAY}{ACTIVITY}"));
    assert_eq!(got[0].alternate_key, None);
}

#[test]
fn eventbridge_key_selected_only_decoded_is_used_decoded_with_a_warning() {
    let mut event = sample("s3-eventbridge");
    let encoded = format!("{DAY}{}", ACTIVITY.replace(':', "%3A"));
    event["detail"]["object"]["key"] = json!(encoded);
    let mut got = Vec::new();
    let logs = capture_logs(|| got = objects(&event, &Filter::default()));
    assert_eq!(keys(&got), vec![full(ACTIVITY)]);
    assert_eq!(got[0].alternate_key, None);
    assert!(
        logs.contains("WARN") && logs.contains("looks URL-encoded"),
        "{logs}"
    );
    assert!(logs.contains(&encoded), "{logs}");
}

#[test]
fn eventbridge_key_that_looks_encoded_and_is_ignored_is_logged_at_warn() {
    let filter = Filter {
        prefix: "elsewhere".into(),
        log_types: LogType::ALL.to_vec(),
        allowed_buckets: Vec::new(),
        cloudtrail: None,
    };
    let mut event = sample("s3-eventbridge");
    event["detail"]["object"]["key"] = json!(format!("{DAY}{}", ACTIVITY.replace(':', "%3A")));
    let mut got = vec![];
    let logs = capture_logs(|| got = objects(&event, &filter));
    assert_eq!(got, vec![]);
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines.len(), 1, "{logs}");
    assert!(
        lines[0].contains("WARN") && lines[0].contains("outside the audit prefix"),
        "{logs}"
    );
    // A key that does not look encoded is ignored at INFO, as before.
    let mut plain = sample("s3-eventbridge");
    plain["detail"]["object"]["key"] = json!(full(ACTIVITY));
    let logs = capture_logs(|| got = objects(&plain, &filter));
    assert!(logs.contains("INFO") && !logs.contains("WARN"), "{logs}");
}

#[test]
fn typed_fields_name_their_path_and_kind() {
    let record = |object: Value| {
        s3_event(vec![
            json!({"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": BUCKET}, "object": object}}),
        ])
    };
    let eb = |object: Value| {
        json!({"source": "aws.s3", "detail-type": "Object Created",
            "detail": {"bucket": {"name": BUCKET}, "object": object}})
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            record(json!({"key": null})),
            "Records[0].s3.object.key missing",
        ),
        (
            record(json!({"key": full(CONN), "size": 1.5})),
            "Records[0].s3.object.size is not a non-negative integer",
        ),
        (
            record(json!({"key": full(CONN), "eTag": 5})),
            "Records[0].s3.object.eTag is not a string",
        ),
        (
            record(json!([])),
            "Records[0].s3.object is not a JSON object",
        ),
        (
            eb(json!({"key": full(CONN), "size": -1})),
            "detail.object.size is not a non-negative integer",
        ),
        (
            eb(json!({"key": full(CONN), "version-id": []})),
            "detail.object.version-id is not a string",
        ),
        (
            json!({"source": "aws.s3", "detail-type": "Object Created", "detail": {"object": {}}}),
            "detail.bucket missing",
        ),
        (
            json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": null}}]}),
            "Records[0].Sns.Message missing",
        ),
        (
            json!({"Records": [{"EventSource": "aws:sns", "Sns": []}]}),
            "Records[0].Sns is not a JSON object",
        ),
    ];
    for (event, expected) in cases {
        assert_eq!(error_text(&event), expected, "{event}");
    }
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
        allowed_buckets: Vec::new(),
        cloudtrail: None,
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
        allowed_buckets: Vec::new(),
        cloudtrail: None,
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
        allowed_buckets: Vec::new(),
        cloudtrail: None,
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
fn sqs_record_without_message_id_fails_alone_and_cannot_be_named() {
    let good = s3_event(vec![s3_record("ObjectCreated:Put", &full(CONN))]).to_string();
    let event = json!({"Records": [
        {"eventSource": "aws:sqs", "messageId": "ok", "body": good},
        {"eventSource": "aws:sqs", "body": good, "receiptHandle": "AQEBhandle", "md5OfBody": "d41d8cd9"},
        {"eventSource": "aws:sqs", "messageId": "", "body": good},
        {"eventSource": "aws:sqs", "messageId": 7, "body": good},
    ]});
    let Ok(Invocation::SqsBatch(messages)) = parse(&event) else {
        panic!("expected a batch")
    };
    assert_eq!(messages.len(), 4);
    assert!(messages[0].can_be_named());
    assert_eq!(
        messages[0].objects.as_ref().map(|o| keys(o)),
        Ok(vec![full(CONN).as_str()])
    );
    for (i, message) in messages.iter().enumerate().skip(1) {
        assert!(!message.can_be_named(), "{message:?}");
        assert_eq!(message.message_id, "");
        let Err(EventError::NoMessageId { path, .. }) = &message.objects else {
            panic!("expected NoMessageId, got {message:?}")
        };
        assert_eq!(path, &format!("Records[{i}].messageId"));
    }
    let text = messages[1].objects.as_ref().err().map(ToString::to_string);
    assert_eq!(
        text.as_deref(),
        Some(
            "Records[1].messageId missing (receiptHandle \"AQEBhandle\", md5OfBody \"d41d8cd9\"): \
             batchItemFailures cannot name this message, so the whole batch must be retried"
        )
    );
}

#[test]
fn sqs_identity_of_a_message_without_id_is_bounded() {
    let handle = "h".repeat(10_000);
    let event =
        json!({"Records": [{"eventSource": "aws:sqs", "body": "{}", "receiptHandle": handle}]});
    let Ok(Invocation::SqsBatch(messages)) = parse(&event) else {
        panic!("expected a batch")
    };
    let text = messages[0]
        .objects
        .as_ref()
        .err()
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(text.contains(&"h".repeat(80)), "{text}");
    assert!(!text.contains(&"h".repeat(81)), "{text}");
}

#[test]
fn sqs_record_with_a_malformed_field_we_do_not_use_fails_alone_under_its_id() {
    let good = s3_event(vec![s3_record("ObjectCreated:Put", &full(CONN))]).to_string();
    let event = json!({"Records": [
        {"eventSource": "aws:sqs", "messageId": "bad", "body": good, "attributes": {"SentTimestamp": 5}},
        {"eventSource": "aws:sqs", "messageId": "ok", "body": good},
    ]});
    let Ok(Invocation::SqsBatch(messages)) = parse(&event) else {
        panic!("expected a batch")
    };
    assert_eq!(messages[0].message_id, "bad");
    assert_eq!(
        messages[0]
            .objects
            .as_ref()
            .err()
            .map(ToString::to_string)
            .as_deref(),
        Some("Records[0].attributes.SentTimestamp is not a string")
    );
    assert!(messages[1].objects.is_ok());
}

#[test]
fn sqs_record_without_body_fails_alone() {
    let event = json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m"}]});
    let Ok(Invocation::SqsBatch(messages)) = parse(&event) else {
        panic!("expected a batch")
    };
    assert_eq!(
        messages[0].objects,
        Err(EventError::Missing {
            path: "Records[0].body".into()
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
            "backfill.dry-run: unknown field (expected since, dry_run, retry_set_aside)",
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
    let Ok(Selected::AuditLog(name)) = filter.select(&full(USER)) else {
        panic!("not selected as an audit log");
    };
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
