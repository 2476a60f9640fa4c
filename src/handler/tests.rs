use std::collections::HashMap;

use super::*;
use crate::events::Filter;
use crate::forward::test_support::{gzip, Memory, Shared, KEY, LINE};
use crate::forward::Forwarder;
use crate::ports::ObjectRef;
use crate::sink::WriteSink;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_batch_reports_only_the_failed_message() {
    let store = Memory(HashMap::from([(
        KEY.to_string(),
        gzip(&format!("{LINE}\n")),
    )]));
    let missing = KEY.replace("T00:53", "T01:53");
    let body = |key: &str| {
        json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "audit-bucket"}, "object": {"key": key.replace(':', "%3A"), "size": 10}}}]})
        .to_string()
    };
    let event = json!({"Records": [
        {"messageId": "good", "eventSource": "aws:sqs", "body": body(KEY)},
        {"messageId": "bad", "eventSource": "aws:sqs", "body": body(&missing)},
    ]});
    let out = Shared::default();
    let handler = Handler {
        forwarder: Forwarder::new(Filter::default(), store, || WriteSink::new(out.clone())),
    };
    let response = handler.handle(&event).await.unwrap();
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": "bad"}]})
    );
    assert_eq!(out.lines().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_event_with_a_failed_object_fails_the_invocation() {
    let event: serde_json::Value =
        serde_json::from_str(include_str!("../../events/s3-direct.json")).unwrap();
    let handler = Handler {
        forwarder: Forwarder::new(Filter::default(), Memory::default(), || {
            WriteSink::new(Shared::default())
        }),
    };
    let err = handler.handle(&event).await.unwrap_err();
    assert!(
        matches!(
            err,
            HandlerError::Objects {
                failed: 1,
                total: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqs_record_without_message_id_fails_the_whole_batch_after_the_others_ran() {
    let store = Memory(HashMap::from([(
        KEY.to_string(),
        gzip(&format!("{LINE}\n")),
    )]));
    let body = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "audit-bucket"}, "object": {"key": KEY.replace(':', "%3A")}}}]})
    .to_string();
    let event = json!({"Records": [
        {"messageId": "good", "eventSource": "aws:sqs", "body": body},
        {"eventSource": "aws:sqs", "receiptHandle": "rh-1", "body": body},
    ]});
    let out = Shared::default();
    let handler = Handler {
        forwarder: Forwarder::new(Filter::default(), store, || WriteSink::new(out.clone())),
    };
    let err = handler.handle(&event).await.unwrap_err();
    assert!(
        matches!(
            err,
            HandlerError::UnnamedMessages {
                unnamed: 1,
                total: 2
            }
        ),
        "{err}"
    );
    assert!(err.is_retryable());
    // The named message was still forwarded before the batch was failed.
    assert_eq!(out.lines().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eventbridge_key_that_looked_encoded_is_read_decoded_when_missing_as_sent() {
    // The stored key has a "+" in a folder; the event sent it percent-encoded.
    let stored = format!("raw+copy/{KEY}");
    let decoded = stored.clone();
    let as_sent = format!("raw%2Bcopy/{KEY}");
    let store = Memory(HashMap::from([(
        stored.clone(),
        gzip(&format!("{LINE}\n")),
    )]));
    let out = Shared::default();
    let forwarder = Forwarder::new(Filter::default(), store, || WriteSink::new(out.clone()));
    let object = ObjectRef {
        bucket: "audit-bucket".into(),
        key: as_sent,
        size: None,
        etag: None,
        version_id: None,
        alternate_key: Some(decoded.clone()),
    };
    let receipt = forwarder.forward_quietly(&object).await.unwrap();
    assert_eq!(receipt.key, stored);
    assert_eq!(out.lines()[0]["source"]["key"], stored.as_str());
    // Without the alternative the object fails, naming the key as sent.
    let err = forwarder
        .forward_quietly(&ObjectRef {
            alternate_key: None,
            ..object
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("raw%2Bcopy/"), "{err}");
}

/// SQS with a ledger: an object larger than one invocation is handed back (its message in
/// `batchItemFailures`) and finished by the redeliveries without duplicates; a missing object is
/// set aside at once, its message failed that once and skipped after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_hands_back_an_object_stopped_at_the_deadline_and_not_one_set_aside() {
    use crate::ports::memory::{etag_of, ManualClock, MemoryBucket, MemorySink, MemoryStore};
    use crate::ports::Clock;
    use std::sync::{Arc, Mutex};

    const NOW: i64 = 1_709_337_600_000;
    let clock = Arc::new(ManualClock::new(NOW));
    let bucket = Arc::new(MemoryBucket::new(clock.clone()));
    let text = format!("{LINE}\n").repeat(3_000);
    bucket.put(KEY, &text, NOW - 60_000);
    let missing = KEY.replace("T00:53", "T01:53");
    let body = |key: &str, etag: &str| {
        json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "audit"}, "object": {"key": key.replace(':', "%3A"), "size": 10, "eTag": etag}}}]})
        .to_string()
    };
    let event = json!({"Records": [
        {"messageId": "big", "eventSource": "aws:sqs", "body": body(KEY, etag_of(text.as_bytes()).trim_matches('"'))},
        {"messageId": "gone", "eventSource": "aws:sqs", "body": body(&missing, "d41d8cd98f00b204e9800998ecf8427e")},
    ]});
    struct Fetching(Arc<MemoryBucket>);
    impl Fetch for Fetching {
        async fn fetch(
            &self,
            object: &ObjectRef,
        ) -> Result<crate::ports::Fetched, crate::ports::FetchError> {
            self.0.fetch(object).await
        }
    }
    let delivered = Arc::new(Mutex::new(Vec::<String>::new()));
    let (sink_out, sink_clock) = (delivered.clone(), clock.clone());
    let mut forwarder = Forwarder::new(Filter::default(), Fetching(bucket.clone()), move || {
        MemorySink::new(sink_out.clone(), 100).taking(sink_clock.clone(), 1_000)
    });
    forwarder.clock = clock.clone();
    let handler = Handler { forwarder };
    let ledger = Ledger::new(Arc::new(MemoryStore::default()), "state/").with_clock(clock.clone());
    let mut answers = Vec::new();
    for _ in 0..4 {
        // 10.5 s to send in each invocation (13.125 s left, a fifth of it kept as the margin):
        // eleven calls of 100 lines.
        let context = Context {
            ledger: Some(&ledger),
            deadline_ms: Some(clock.now_ms() + 13_125),
            ..Context::default()
        };
        let response = handler.handle_with(&event, context).await.unwrap();
        answers.push(response["batchItemFailures"].clone());
    }
    assert_eq!(
        answers[0],
        json!([{"itemIdentifier": "big"}, {"itemIdentifier": "gone"}])
    );
    assert_eq!(answers[1], json!([{"itemIdentifier": "big"}]));
    assert_eq!(answers[2], json!([]), "finished by the second redelivery");
    assert_eq!(answers[3], json!([]), "done, and the missing one set aside");
    let lines = delivered.lock().unwrap().clone();
    let ids: std::collections::HashSet<String> = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
        .collect();
    assert_eq!(
        (ids.len(), lines.len()),
        (3_000, 3_000),
        "every record once"
    );
    let aside = ledger
        .set_aside("audit", &missing, "d41d8cd98f00b204e9800998ecf8427e")
        .await
        .unwrap()
        .expect("set aside at once");
    assert!(!aside.retryable);
}

/// Counts the GETs made through it.
struct Counting {
    inner: Memory,
    gets: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}
impl crate::ports::Fetch for Counting {
    async fn fetch(
        &self,
        object: &ObjectRef,
    ) -> Result<crate::ports::Fetched, crate::ports::FetchError> {
        self.gets.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut fetched = self.inner.fetch(object).await?;
        // An ETag as S3 gives it, which the ledger's checks take.
        fetched.etag = Some(format!("\"{}\"", "0123456789abcdef".repeat(2)));
        Ok(fetched)
    }
}

/// A Batch Operations task names no ETag: the forwarder takes it from the one GET it makes for
/// the body, so a task is one GetObject whether the object is sent or found done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_operations_task_reads_its_object_once() {
    let gets = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let store = Counting {
        inner: Memory(HashMap::from([(
            KEY.to_string(),
            gzip(&format!("{LINE}\n{LINE}\n")),
        )])),
        gets: gets.clone(),
    };
    let out = Shared::default();
    let handler = Handler {
        forwarder: Forwarder::new(Filter::default(), store, || WriteSink::new(out.clone())),
    };
    let state = std::sync::Arc::new(crate::ports::memory::MemoryStore::default());
    let ledger = crate::ledger::Ledger::new(state, "state/");
    let event = json!({
        "invocationSchemaVersion": "2.0",
        "invocationId": "inv",
        "job": {"id": "job", "userArguments": {}},
        "tasks": [{"taskId": "t", "s3Bucket": "audit-bucket", "s3Key": KEY.replace(':', "%3A"), "s3VersionId": null}],
    });
    let context = || Context {
        ledger: Some(&ledger),
        ..Context::default()
    };
    let answer = handler.handle_with(&event, context()).await.unwrap();
    assert_eq!(answer["results"][0]["resultCode"], "Succeeded", "{answer}");
    assert_eq!(answer["results"][0]["resultString"], "forwarded 2 records");
    assert_eq!(gets.load(std::sync::atomic::Ordering::SeqCst), 1);
    let etag = format!("\"{}\"", "0123456789abcdef".repeat(2));
    assert!(ledger
        .done("audit-bucket", KEY, &etag)
        .await
        .unwrap()
        .is_some());

    let again = handler.handle_with(&event, context()).await.unwrap();
    assert_eq!(
        again["results"][0]["resultString"], "already done",
        "{again}"
    );
    assert_eq!(gets.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(out.lines().len(), 2, "sent once");
}
