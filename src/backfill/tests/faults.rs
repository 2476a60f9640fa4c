//! The walk over objects that take more than one run or never go through: a large object
//! stopped at the deadline between calls and finished by the next run, a poison object set
//! aside, listed by a dry run and retried on request.

use std::collections::HashMap;

use super::*;
use crate::ports::memory::MemorySink;

/// A forwarder over the fixture's bucket whose sinks send 100 lines a call, each call taking
/// `call_ms` on the fixture's clock.
fn slow_forwarder(
    f: &Fixture,
    delivered: &Arc<Mutex<Vec<String>>>,
    call_ms: i64,
) -> Forwarder<SharedBucket, impl Fn() -> MemorySink + Send + Sync> {
    let (delivered, clock) = (delivered.clone(), f.clock.clone());
    let mut forwarder = Forwarder::new(
        Filter::default(),
        SharedBucket(f.bucket.clone()),
        move || MemorySink::new(delivered.clone(), 100).taking(clock.clone(), call_ms),
    );
    forwarder.clock = f.clock.clone();
    forwarder
}

/// Distinct ids delivered, and lines delivered more than once.
fn tally(delivered: &Mutex<Vec<String>>) -> (usize, usize) {
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for line in delivered.lock().unwrap().iter() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        *by_id.entry(v["id"].as_str().unwrap().into()).or_default() += 1;
    }
    (by_id.len(), by_id.values().map(|n| n - 1).sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_object_stops_at_the_deadline_between_calls_and_the_next_run_finishes_it() {
    let f = fixture(MAR_1 + 2 * MS_PER_DAY, TREE);
    let key = log_key(TREE, MAR_1 + 53 * 60_000, "connectionlog");
    f.bucket
        .put(&key, &format!("{LINE}\n").repeat(3_000), MAR_1 + HOUR);
    let delivered = Arc::new(Mutex::new(Vec::new()));
    // 30 calls of 5 s: 150 s of sending, in runs of 100 s.
    let forwarder = slow_forwarder(&f, &delivered, 5_000);
    let mut runs = Vec::new();
    loop {
        assert!(runs.len() < 5, "every run makes progress");
        let deadline = f.clock.now_ms() + 100_000;
        let summary = f
            .backfill
            .run(
                &forwarder,
                &RunOptions {
                    deadline_ms: Some(deadline),
                    ..options()
                },
                &mut |_| {},
            )
            .await
            .unwrap();
        // Stopped in time: at most one call past the in-object stop, before the deadline.
        assert!(summary.time_left_ms.unwrap() >= 0, "{summary:?}");
        runs.push((summary.stopped, summary.paused, summary.sent));
        if summary.stopped == Stopped::Complete {
            break;
        }
    }
    assert_eq!(
        runs[0],
        (Stopped::Deadline, 1, 0),
        "stopped inside the object"
    );
    // The next run finishes it (and may stop before listing the days after it: its margin is
    // twice its slowest object).
    assert_eq!(runs[1].2, 1, "{runs:?}");
    assert_eq!(tally(&delivered), (3_000, 0), "every record once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_object_is_set_aside_listed_by_a_dry_run_and_retried_on_request() {
    let f = fixture(MAR_1 + 2 * MS_PER_DAY, TREE);
    let keys: Vec<String> = (0..2)
        .map(|h| {
            let key = log_key(TREE, MAR_1 + h * HOUR + 53 * 60_000, "connectionlog");
            f.bucket
                .put(&key, &format!("{LINE}\n"), MAR_1 + (h + 1) * HOUR);
            key
        })
        .collect();
    f.bucket.broken.lock().unwrap().push(keys[0].clone());
    let delivered = Arc::new(Mutex::new(Vec::new()));
    let mut forwarder = slow_forwarder(&f, &delivered, 0);
    forwarder.max_attempts = 2;
    let (f, forwarder) = (&f, &forwarder);
    let run = |options: RunOptions| async move {
        f.backfill
            .run(forwarder, &options, &mut |_| {})
            .await
            .unwrap()
    };
    // First failure: retryable, the cursor stays before it.
    let first = run(options()).await;
    assert_eq!((first.failed, first.set_aside, first.sent), (1, 0, 1));
    // Second failure: MAX_ATTEMPTS reached, set aside; the walk passes it.
    let second = run(options()).await;
    assert_eq!((second.failed, second.set_aside), (1, 1));
    let third = run(options()).await;
    assert_eq!(third.failed, 0, "set aside: not tried again");
    // A dry run lists it, with its error.
    let dry = run(RunOptions {
        dry_run: true,
        ..options()
    })
    .await;
    assert_eq!(dry.set_aside_objects.len(), 1);
    assert_eq!(dry.set_aside_objects[0].key, keys[0]);
    assert!(dry.set_aside_objects[0].last_error.contains("reset"));
    // The cause is fixed; --retry-set-aside sends it.
    f.bucket.broken.lock().unwrap().clear();
    let retried = run(RunOptions {
        retry_set_aside: true,
        ..options()
    })
    .await;
    assert_eq!(
        (retried.retried_set_aside, retried.recovered_set_aside),
        (1, 1)
    );
    assert_eq!(tally(&delivered), (2, 0));
    let dry = run(RunOptions {
        dry_run: true,
        ..options()
    })
    .await;
    assert!(dry.set_aside_objects.is_empty(), "done since: not listed");
}
