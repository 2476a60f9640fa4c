//! The walk over state it cannot trust: a corrupt or forged done marker is sent past, a corrupt
//! or forged cursor or lease stops the run with an error naming the key.

use super::*;
use crate::ledger::check::encode;
use crate::ledger::{DoneMarker, Lease};
use crate::ports::ObjectRef;
use crate::ports::{Precondition, StateStore};

/// Three connection logs of 2024-03-01, one line each, last modified an hour after their time.
fn three_files(f: &Fixture) -> Vec<String> {
    (0..3)
        .map(|hour| {
            let key = log_key(TREE, MAR_1 + hour * HOUR + 53 * 60_000, "connectionlog");
            f.bucket
                .put(&key, &format!("{LINE}\n"), MAR_1 + (hour + 1) * HOUR);
            key
        })
        .collect()
}

async fn forge(f: &Fixture, key: &str, body: Vec<u8>) {
    f.store.put(key, body, Precondition::None).await.unwrap();
}

async fn run_err(f: &Fixture) -> BackfillError {
    let handler = f.handler();
    f.backfill
        .run(&handler, &options(), &mut |_| {})
        .await
        .expect_err("the walk stops")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_done_marker_no_longer_blocks_the_walk_and_is_replaced() {
    let f = fixture(MAR_1 + 6 * HOUR, TREE);
    let keys = three_files(&f);
    let marker_key = f.backfill.ledger.done_key(BUCKET, &keys[0]);
    forge(&f, &marker_key, b"{\"bucket\":\"aud".to_vec()).await;
    let summary = f.run(options()).await;
    assert_eq!(summary.stopped, Stopped::Complete, "{summary:?}");
    assert_eq!(summary.sent, 3, "{summary:?}");
    assert_eq!(summary.failed, 0, "{summary:?}");
    assert_eq!(summary.state_refused, 1, "{summary:?}");
    assert!(!summary.is_failure());
    assert!(
        summary.errors[0].contains(&marker_key) && summary.errors[0].contains("not JSON"),
        "{:?}",
        summary.errors
    );
    // The new marker replaced the corrupt one: a walk from the start finds all three done.
    let again = f
        .run(RunOptions {
            since_ms: Some(MAR_1),
            ..options()
        })
        .await;
    assert_eq!((again.sent, again.skipped_done), (0, 3), "{again:?}");
    assert_eq!(again.state_refused, 0);
    let mut delivered = f.out.keys();
    delivered.sort();
    assert_eq!(delivered, keys);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_done_marker_naming_another_object_or_no_etag_hides_nothing() {
    let f = fixture(MAR_1 + 6 * HOUR, TREE);
    let keys = three_files(&f);
    let object = ObjectRef {
        bucket: BUCKET.into(),
        key: keys[1].clone(),
        size: None,
        etag: None,
        version_id: None,
        alternate_key: None,
    };
    let etag = f.bucket.fetch(&object).await.unwrap().etag.unwrap();
    let forged = |bucket: &str, key: &str, etag: &str| DoneMarker {
        bucket: bucket.into(),
        key: key.into(),
        etag: etag.into(),
        done_at: rfc3339_ms(MAR_1 + 5 * HOUR),
        records: 1,
        via: "live".into(),
    };
    let ledger = &f.backfill.ledger;
    forge(
        &f,
        &ledger.done_key(BUCKET, &keys[0]),
        encode(&forged("other-bucket", &keys[0], &etag)),
    )
    .await;
    forge(
        &f,
        &ledger.done_key(BUCKET, &keys[1]),
        encode(&forged(BUCKET, &keys[1], "\"whatever\"")),
    )
    .await;
    let summary = f.run(options()).await;
    assert_eq!((summary.sent, summary.state_refused), (3, 2), "{summary:?}");
    assert_eq!(f.out.keys().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_with_the_smallest_resume_day_stops_the_walk_naming_its_key() {
    let f = fixture(MAR_1 + 6 * HOUR, TREE);
    three_files(&f);
    let cursor_key = f.backfill.ledger.cursor_key(BUCKET, TREE);
    let cursor = Cursor {
        bucket: BUCKET.into(),
        prefix: TREE.into(),
        position: None,
        last_modified: None,
        resume_day: i64::MIN,
        resume_date: "x".into(),
        updated_at: "x".into(),
        owner: "x".into(),
    };
    forge(&f, &cursor_key, encode(&cursor)).await;
    for _ in 0..2 {
        // Not "lease_held" the second time: the first run released its lease.
        let err = run_err(&f).await;
        assert!(err.is_state_refused(), "{err}");
        assert!(!err.is_retryable(), "{err}");
        let text = err.to_string();
        assert!(text.contains(&cursor_key), "{text}");
        assert!(text.contains("resume_day -9223372036854775808"), "{text}");
        assert!(text.contains("delete it"), "{text}");
    }
    assert!(
        f.out.keys().is_empty(),
        "nothing sent past a refused cursor"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_never_expires_is_a_failure_not_lease_held() {
    let f = fixture(MAR_1 + 6 * HOUR, TREE);
    three_files(&f);
    let lease_key = f.backfill.ledger.lease_key();
    let lease = Lease {
        owner: "attacker".into(),
        acquired_at_ms: MAR_1,
        expires_at_ms: i64::MAX,
        released: false,
    };
    forge(&f, &lease_key, encode(&lease)).await;
    let err = run_err(&f).await;
    assert!(err.is_state_refused(), "{err}");
    assert!(err.to_string().contains(&lease_key), "{err}");
    assert!(err.to_string().contains("further from now"), "{err}");
    // Renewed forever by the same owner: refused once held longer than any walk.
    let lease = Lease {
        owner: "attacker".into(),
        acquired_at_ms: MAR_1 - 2 * MS_PER_DAY,
        expires_at_ms: f.clock.now_ms() + 10 * 60_000,
        released: false,
    };
    forge(&f, &lease_key, encode(&lease)).await;
    let err = run_err(&f).await;
    assert!(err.to_string().contains("longer than any walk"), "{err}");
    assert!(f.out.keys().is_empty());
}
