//! The fan-out and the manifest against in-memory fakes: what is enqueued, in which order, how
//! the cursor follows the messages taken, and what a manifest lists.

use super::*;
use crate::ports::queue::MemoryQueue;

/// A fixture whose walk enqueues to a memory queue; `n` objects of MAR_1.
fn fanout_fixture(n: i64) -> (Fixture, Arc<MemoryQueue>, Vec<String>) {
    let mut f = fixture(MAR_1 + MS_PER_DAY / 2, TREE);
    let queue = Arc::new(MemoryQueue::default());
    f.backfill.queue = Some(queue.clone());
    let text = format!("{LINE}\n");
    let keys: Vec<String> = (0..n)
        .map(|h| log_key(TREE, MAR_1 + h * 10 * 60_000, "connectionlog"))
        .collect();
    for (i, key) in keys.iter().enumerate() {
        // 20 minutes apart in last-modified: beyond the cursor's grace of 15.
        f.bucket.put(key, &text, MAR_1 + (i as i64) * 20 * 60_000);
    }
    (f, queue, keys)
}

/// The keys of the enqueued messages, decoded, in order.
fn enqueued_keys(queue: &MemoryQueue) -> Vec<String> {
    queue
        .bodies()
        .iter()
        .map(|body| {
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            let record = &v["Records"][0];
            assert_eq!(record["eventSource"], "aws:s3");
            assert_eq!(record["s3"]["bucket"]["name"], BUCKET);
            crate::key::decode_event_key(record["s3"]["object"]["key"].as_str().unwrap()).unwrap()
        })
        .collect()
}

async fn position(f: &Fixture) -> Option<String> {
    f.backfill
        .ledger
        .cursor(BUCKET, TREE)
        .await
        .unwrap()
        .and_then(|c| c.value.position)
        .map(|p| p.key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_walk_with_a_queue_enqueues_every_object_in_order_ten_a_call_and_forwards_nothing() {
    let (f, queue, keys) = fanout_fixture(23);
    let summary = f.run(options()).await;
    assert_eq!(summary.enqueued, 23);
    assert_eq!(summary.sent, 0);
    assert_eq!(summary.queue_calls, 3, "10 + 10 + 3");
    assert_eq!(*queue.calls.lock().unwrap(), 3);
    assert_eq!(enqueued_keys(&queue), keys);
    assert!(f.out.keys().is_empty(), "nothing forwarded");
    assert_eq!(position(&f).await.as_deref(), Some(keys[22].as_str()));
    assert!(!summary.is_failure());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_the_queue_refused_are_resent_alone_and_the_walk_goes_on() {
    let (f, queue, keys) = fanout_fixture(12);
    // First call: entries 2 and 7 refused; their resends alone go through.
    queue.refuse.lock().unwrap().push_back(vec![2, 7]);
    let summary = f.run(options()).await;
    assert_eq!(summary.enqueued, 12);
    assert_eq!(
        summary.queue_calls, 4,
        "the batch, two resends, the last two"
    );
    let mut sorted = enqueued_keys(&queue);
    sorted.sort();
    assert_eq!(sorted, keys, "each object once");
    assert_eq!(position(&f).await.as_deref(), Some(keys[11].as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_never_taken_pins_the_cursor_before_it_and_the_next_walk_sends_it() {
    let (f, queue, keys) = fanout_fixture(5);
    // Entry 3 refused in the batch and in every resend alone.
    {
        let mut plan = queue.refuse.lock().unwrap();
        plan.push_back(vec![3]);
        for _ in 0..crate::backfill::fanout::RESEND_ATTEMPTS {
            plan.push_back(vec![0]);
        }
    }
    let first = f.run(options()).await;
    assert_eq!(first.enqueued, 4);
    assert_eq!(first.failed, 1);
    assert_eq!(first.stopped, Stopped::Failed);
    assert!(first.errors[0].contains(&keys[3]), "{:?}", first.errors);
    assert_eq!(
        position(&f).await.as_deref(),
        Some(keys[2].as_str()),
        "pinned before the refused object"
    );
    queue.sent.lock().unwrap().clear();
    let second = f.run(options()).await;
    // The cursor's own object is checked again (not done: no worker ran), then 3 and 4.
    assert_eq!(
        enqueued_keys(&queue),
        vec![keys[2].clone(), keys[3].clone(), keys[4].clone()]
    );
    assert!(!second.is_failure());
    assert_eq!(position(&f).await.as_deref(), Some(keys[4].as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_that_is_down_stops_the_walk_with_the_cursor_unmoved() {
    let (f, queue, _) = fanout_fixture(3);
    *queue.down.lock().unwrap() = true;
    let summary = f.run(options()).await;
    assert_eq!(summary.enqueued, 0);
    assert_eq!(summary.failed, 3);
    assert_eq!(summary.stopped, Stopped::Failed);
    assert_eq!(position(&f).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_done_are_not_enqueued() {
    let (mut f, queue, keys) = fanout_fixture(4);
    // Forward the first two (no queue): their done markers are written.
    let queue_kept = f.backfill.queue.take();
    let summary = f
        .run(RunOptions {
            max_objects: Some(2),
            ..options()
        })
        .await;
    assert_eq!(summary.sent, 2);
    f.backfill.queue = queue_kept;
    let summary = f
        .run(RunOptions {
            since_ms: Some(MAR_1 - HOUR),
            ..options()
        })
        .await;
    assert_eq!(summary.skipped_done, 2);
    assert_eq!(enqueued_keys(&queue), keys[2..].to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_lists_exactly_the_objects_not_done_and_writes_no_state() {
    let (mut f, _, keys) = fanout_fixture(5);
    f.backfill.queue = None;
    let summary = f
        .run(RunOptions {
            max_objects: Some(2),
            ..options()
        })
        .await;
    assert_eq!(summary.sent, 2);
    let writes = f.store.writes.load(Ordering::SeqCst);
    let mut out = Vec::new();
    let handler = f.handler();
    let summary = f
        .backfill
        .manifest(
            &handler,
            &RunOptions {
                since_ms: Some(MAR_1 - HOUR),
                ..options()
            },
            &mut out,
            &mut |_| {},
        )
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    let want: Vec<String> = keys[2..]
        .iter()
        .map(|k| format!("{BUCKET},{}", k.replace(':', "%3A")))
        .collect();
    assert_eq!(text.lines().collect::<Vec<_>>(), want);
    assert_eq!(summary.would_send, 3);
    assert_eq!(summary.skipped_done, 2);
    assert_eq!(
        f.store.writes.load(Ordering::SeqCst),
        writes,
        "no state written"
    );
    assert_eq!(f.out.keys().len(), 2, "nothing more forwarded");
}
