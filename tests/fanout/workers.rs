//! Workers that drain the backfill queue as Lambda's SQS event source mapping does: receive up
//! to ten messages, build the SQS event Lambda would pass (`Records[]` of `aws:sqs`), run the
//! binary's `invoke` on it, and delete the messages not named in `batchItemFailures`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use serde_json::{json, Value};

/// What the workers did, together.
#[derive(Debug, Default)]
pub struct Drained {
    pub invocations: AtomicU64,
    pub received: AtomicU64,
    pub deleted: AtomicU64,
    /// Messages named in `batchItemFailures` (handed back).
    pub handed_back: AtomicU64,
    /// The distinct messages deleted: a message whose visibility timeout ran out while a slow
    /// worker still had it is received (and deleted) twice, as SQS allows.
    pub deleted_ids: Mutex<BTreeSet<String>>,
    /// Each message's receives, and the body of each.
    pub receives: Mutex<HashMap<String, (u32, String)>>,
}

impl Drained {
    /// The bodies of the messages received more than once: their objects may have been sent
    /// by two workers at once (SQS redelivers a message whose visibility timeout ran out).
    pub fn received_twice(&self) -> Vec<String> {
        let receives = self.receives.lock().unwrap();
        receives
            .values()
            .filter(|(n, _)| *n > 1)
            .map(|(_, body)| body.clone())
            .collect()
    }

    /// Distinct messages deleted.
    pub fn done(&self) -> usize {
        self.deleted_ids.lock().unwrap().len()
    }
}

/// The SQS event of received messages, as the event source mapping builds it.
pub fn sqs_event(queue_arn: &str, messages: &[aws_sdk_sqs::types::Message]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m.message_id().unwrap_or_default(),
                "receiptHandle": m.receipt_handle().unwrap_or_default(),
                "body": m.body().unwrap_or_default(),
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body().unwrap_or_default(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    json!({ "Records": records })
}

/// One worker: until `stop()` says so, receives, invokes `command()` on the event, deletes what
/// succeeded. Returns when told to stop; `rounds` bounds a broken run.
#[allow(clippy::too_many_arguments)]
pub async fn worker(
    id: usize,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    queue_arn: String,
    dir: PathBuf,
    command: Arc<dyn Fn() -> Command + Send + Sync>,
    drained: Arc<Drained>,
    stop: Arc<dyn Fn() -> bool + Send + Sync>,
) {
    std::fs::create_dir_all(&dir).expect("worker folder");
    for round in 0..10_000u32 {
        if stop() {
            return;
        }
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("ReceiveMessage");
        let messages = received.messages();
        if messages.is_empty() {
            continue;
        }
        drained
            .received
            .fetch_add(messages.len() as u64, Ordering::SeqCst);
        {
            let mut receives = drained.receives.lock().unwrap();
            for m in messages {
                let entry = receives
                    .entry(m.message_id().unwrap_or_default().to_string())
                    .or_insert((0, m.body().unwrap_or_default().to_string()));
                entry.0 += 1;
            }
        }
        let event = sqs_event(&queue_arn, messages);
        let path = dir.join(format!("worker-{id}-{round}.json"));
        std::fs::write(&path, event.to_string()).expect("event file");
        let response = invoke(command(), &path).await;
        drained.invocations.fetch_add(1, Ordering::SeqCst);
        let failed: Vec<String> = response["batchItemFailures"]
            .as_array()
            .unwrap_or_else(|| panic!("no batchItemFailures: {response}"))
            .iter()
            .map(|f| f["itemIdentifier"].as_str().unwrap_or_default().to_string())
            .collect();
        drained
            .handed_back
            .fetch_add(failed.len() as u64, Ordering::SeqCst);
        let done: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .filter(|m| !failed.iter().any(|f| Some(f.as_str()) == m.message_id()))
            .enumerate()
            .map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()
                    .expect("id and handle")
            })
            .collect();
        drained.deleted_ids.lock().unwrap().extend(
            messages
                .iter()
                .filter(|m| !failed.iter().any(|f| Some(f.as_str()) == m.message_id()))
                .filter_map(|m| m.message_id().map(str::to_string)),
        );
        if !done.is_empty() {
            let n = done.len() as u64;
            sqs.delete_message_batch()
                .queue_url(&queue_url)
                .set_entries(Some(done))
                .send()
                .await
                .expect("DeleteMessageBatch");
            drained.deleted.fetch_add(n, Ordering::SeqCst);
        }
    }
}

/// `invoke` on the event file, in a blocking thread: the response on stdout (an error exit is
/// the whole batch failing, as Lambda would retry it: an empty response then).
async fn invoke(mut command: Command, path: &Path) -> Value {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let out = command
            .arg("invoke")
            .arg(&path)
            .output()
            .expect("run invoke");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "invoke {} failed: {stdout}\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {stdout}"))
    })
    .await
    .expect("invoke thread")
}
