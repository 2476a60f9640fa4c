//! Attempts at one object over the in-memory twins: a sink that fails after N calls, a clock
//! that passes the deadline mid-object, bodies that break, a state store that remembers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use super::*;
use crate::events::Filter;
use crate::forward::test_support::{KEY, LINE};
use crate::ports::memory::{etag_of, ManualClock, MemoryBucket, MemorySink, MemoryStore};
use crate::ports::{FetchError, Fetched};

/// 2024-03-02T00:00:00Z.
const NOW: i64 = 1_709_337_600_000;

/// The forwarder owns its fetch; the test keeps a handle on the same bucket.
struct Shared(Arc<MemoryBucket>);
impl Fetch for Shared {
    async fn fetch(&self, object: &ObjectRef) -> Result<Fetched, FetchError> {
        self.0.fetch(object).await
    }
}

struct World {
    clock: Arc<ManualClock>,
    bucket: Arc<MemoryBucket>,
    store: Arc<MemoryStore>,
    ledger: Ledger,
    delivered: Arc<Mutex<Vec<String>>>,
    /// Calls the sinks may still make before failing (shared by every attempt).
    calls_left: Arc<AtomicI64>,
    /// The object's text as stored.
    body: Mutex<String>,
    /// How long a call takes.
    call_ms: Arc<AtomicI64>,
}

fn world(lines: usize) -> World {
    let clock = Arc::new(ManualClock::new(NOW));
    let bucket = Arc::new(MemoryBucket::new(clock.clone()));
    let body = format!("{LINE}\n").repeat(lines);
    bucket.put(KEY, &body, NOW - 3_600_000);
    let store = Arc::new(MemoryStore::default());
    let ledger = Ledger::new(store.clone(), "state/").with_clock(clock.clone());
    World {
        clock,
        bucket,
        store,
        ledger,
        delivered: Arc::default(),
        calls_left: Arc::new(AtomicI64::new(i64::MAX)),
        body: Mutex::new(body),
        call_ms: Arc::new(AtomicI64::new(1_000)),
    }
}

impl World {
    /// A forwarder whose sinks send 100 lines a call, each call taking a second.
    fn forwarder(&self) -> Forwarder<Shared, impl Fn() -> MemorySink + Send + Sync> {
        let (delivered, clock, left) = (
            self.delivered.clone(),
            self.clock.clone(),
            self.calls_left.clone(),
        );
        let call_ms = self.call_ms.load(Ordering::SeqCst);
        let mut forwarder =
            Forwarder::new(Filter::default(), Shared(self.bucket.clone()), move || {
                MemorySink::new(delivered.clone(), 100)
                    .taking(clock.clone(), call_ms)
                    .failing_after(left.clone())
            });
        forwarder.clock = self.clock.clone();
        forwarder.max_attempts = 3;
        forwarder
    }

    fn object(&self) -> ObjectRef {
        let body = self.body.lock().unwrap().clone();
        ObjectRef {
            bucket: "audit".into(),
            key: KEY.into(),
            size: None,
            etag: Some(etag_of(body.as_bytes())),
            version_id: None,
            alternate_key: None,
        }
    }

    /// Stores `text` as the object (a new version).
    fn put(&self, text: &str) {
        self.bucket.put(KEY, text, NOW - 1_000);
        *self.body.lock().unwrap() = text.to_string();
    }

    fn tracking(&self, stop_at_ms: Option<i64>) -> Tracking<'_> {
        Tracking {
            stop_at_ms,
            before_deadline: false,
            ..Tracking::live(&self.ledger, None)
        }
    }

    /// Delivered records by id: (distinct ids, lines delivered more than once).
    fn tally(&self) -> (usize, usize) {
        let delivered = self.delivered.lock().unwrap();
        let mut by_id: HashMap<String, usize> = HashMap::new();
        for line in delivered.iter() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            *by_id
                .entry(v["id"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
        let dups = by_id.values().map(|n| n - 1).sum();
        (by_id.len(), dups)
    }

    async fn progress(&self) -> Option<crate::ledger::Progress> {
        let etag = self.object().etag.unwrap();
        self.ledger.progress("audit", KEY, &etag).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_failed_call_resends_only_that_call() {
    let w = world(1_000);
    let forwarder = w.forwarder();
    // Three calls go through, the fourth fails (half of it was taken, its answer lost).
    w.calls_left.store(3, Ordering::SeqCst);
    let err = forwarder
        .forward_tracked(&w.object(), &w.tracking(None))
        .await
        .unwrap_err();
    assert!(matches!(err, ForwardError::Sink { .. }), "{err}");
    let progress = w.progress().await.expect("progress saved at the failure");
    assert_eq!(
        progress.lines, 300,
        "three calls of 100 lines were accepted"
    );
    assert_eq!(
        progress.attempts, 0,
        "a failing stream is not the object's fault"
    );
    w.calls_left.store(i64::MAX, Ordering::SeqCst);
    let Forwarded::Sent(receipt) = forwarder
        .forward_tracked(&w.object(), &w.tracking(None))
        .await
        .unwrap()
    else {
        panic!("the retry completes");
    };
    assert_eq!(receipt.skipped_lines, 300);
    assert_eq!(receipt.sink.lines, 700);
    let (distinct, dups) = w.tally();
    assert_eq!(distinct, 1_000, "every record arrived");
    assert_eq!(
        dups, 50,
        "only the lines of the call in flight at the failure"
    );
    let marker = w.ledger.done("audit", KEY, &w.object().etag.unwrap()).await;
    assert!(marker.unwrap().is_some(), "the done marker is written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_stops_between_calls_and_the_next_attempt_goes_on() {
    let w = world(3_000);
    let forwarder = w.forwarder();
    let mut attempts = 0;
    loop {
        attempts += 1;
        assert!(attempts < 10, "every attempt makes progress");
        let stop_at = w.clock.now_ms() + 10_500;
        match forwarder
            .forward_tracked(&w.object(), &w.tracking(Some(stop_at)))
            .await
        {
            Ok(Forwarded::Sent(_)) => break,
            Err(ForwardError::Paused { lines, .. }) => {
                // The call that crossed the stop time is the last one: one second past it.
                assert!(w.clock.now_ms() <= stop_at + 1_000, "ended within one call");
                assert_eq!(lines % 100, 0, "stopped at a call boundary");
                assert_eq!(w.progress().await.unwrap().lines, lines);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(attempts, 3, "eleven calls of 100 lines an attempt");
    assert_eq!(w.tally(), (3_000, 0), "every record once");
    let progress = w.progress().await.unwrap();
    assert_eq!(
        progress.attempts, 0,
        "a stop at the deadline is not a failed attempt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_of_another_version_is_ignored() {
    let w = world(500);
    let forwarder = w.forwarder();
    w.calls_left.store(2, Ordering::SeqCst);
    forwarder
        .forward_tracked(&w.object(), &w.tracking(None))
        .await
        .unwrap_err();
    // The object is overwritten with other text: its old progress must not skip anything.
    w.put(&format!("{LINE}\n").repeat(400));
    w.calls_left.store(i64::MAX, Ordering::SeqCst);
    w.delivered.lock().unwrap().clear();
    let Forwarded::Sent(receipt) = forwarder
        .forward_tracked(&w.object(), &w.tracking(None))
        .await
        .unwrap()
    else {
        panic!("the new version is sent");
    };
    assert_eq!(receipt.skipped_lines, 0);
    assert_eq!(w.tally(), (400, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_that_keeps_failing_is_set_aside_after_max_attempts() {
    let w = world(10);
    w.bucket.broken.lock().unwrap().push(KEY.into());
    let mut forwarder = w.forwarder();
    let (metrics, documents) = crate::metrics::Metrics::in_memory("Ns", false);
    forwarder.metrics = metrics;
    let count = |metric: &str| {
        documents
            .lock()
            .unwrap()
            .iter()
            .filter(|d| serde_json::from_str::<serde_json::Value>(d).unwrap()[metric] == 1)
            .count()
    };
    for attempt in 1..=2 {
        let err = forwarder
            .forward_tracked(&w.object(), &w.tracking(None))
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert_eq!(w.progress().await.unwrap().attempts, attempt);
    }
    let Forwarded::SetAside { record, by } = forwarder
        .forward_tracked(&w.object(), &w.tracking(None))
        .await
        .unwrap()
    else {
        panic!("the third failure sets it aside");
    };
    assert!(by.is_some());
    assert_eq!(record.attempts, 3);
    assert!(record.last_error.contains("reset"), "{}", record.last_error);
    assert!(record.retryable);
    // Each failure counts as a failed object; the one that set it aside also as set aside.
    assert_eq!(count("FailedObjects"), 3);
    assert_eq!(count("SetAsideObjects"), 1);
    // From now on it is skipped without being read.
    let fetches = w.store.snapshot().len();
    w.bucket.broken.lock().unwrap().clear();
    let skipped = forwarder
        .forward_tracked(&w.object(), &w.tracking(None))
        .await
        .unwrap();
    assert!(matches!(skipped, Forwarded::SetAside { by: None, .. }));
    assert_eq!(count("SetAsideObjects"), 1, "a skip is not a new set-aside");
    assert_eq!(w.store.snapshot().len(), fetches, "nothing written");
    assert!(w.delivered.lock().unwrap().is_empty());
    // Retried on request: it goes through now, and its done marker wins over the record.
    let retry = Tracking {
        retry_set_aside: true,
        ..w.tracking(None)
    };
    let sent = forwarder
        .forward_tracked(&w.object(), &retry)
        .await
        .unwrap();
    assert!(matches!(sent, Forwarded::Sent(_)));
    assert_eq!(w.tally(), (10, 0));
    let again = forwarder
        .forward_tracked(&w.object(), &w.tracking(None))
        .await
        .unwrap();
    assert!(matches!(again, Forwarded::AlreadyDone(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_no_retry_can_fix_sets_the_object_aside_at_once() {
    let w = world(0);
    // bzip2's magic bytes: a foreign format, never read differently.
    w.put("BZh91AY&SY");
    let forwarder = w.forwarder();
    let Forwarded::SetAside { record, by } = forwarder
        .forward_tracked(&w.object(), &w.tracking(None))
        .await
        .unwrap()
    else {
        panic!("set aside at the first failure");
    };
    assert!(!by.unwrap().is_retryable());
    assert_eq!(record.attempts, 1);
    assert!(!record.retryable);
    let listed = w.ledger.list_set_aside().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].as_ref().unwrap().key, KEY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_written_at_most_once_per_10_mib_of_payload() {
    // About 40,000 lines of ~400 bytes: ~16 MB of NDJSON, one progress write on the way.
    let w = world(40_000);
    // A fast stream: the minute-based writes do not come into it.
    w.call_ms.store(0, Ordering::SeqCst);
    let forwarder = w.forwarder();
    let Forwarded::Sent(receipt) = forwarder
        .forward_tracked(&w.object(), &w.tracking(None))
        .await
        .unwrap()
    else {
        panic!("sent");
    };
    let payload = receipt.sink.payload_bytes;
    assert!(payload > PROGRESS_EVERY_BYTES, "{payload}");
    assert!(receipt.progress_writes >= 1);
    assert!(
        receipt.progress_writes <= payload / PROGRESS_EVERY_BYTES,
        "at most one write per 10 MiB accepted: {} for {payload} bytes",
        receipt.progress_writes
    );
    // A small object writes none: the claim, its release and the done marker are its only
    // state writes.
    let small = world(50);
    let before = small.store.writes.load(Ordering::Relaxed);
    let forwarder = small.forwarder();
    forwarder
        .forward_tracked(&small.object(), &small.tracking(None))
        .await
        .unwrap();
    assert_eq!(small.store.writes.load(Ordering::Relaxed) - before, 3);
    assert_eq!(small.progress().await, None);
}

#[test]
fn progress_never_passes_a_record_cut_by_a_failed_read() {
    let clock = ManualClock::new(NOW);
    let mut resume = Resume::from_start(&clock);
    resume.cut_at = Some(7);
    resume.update(
        Accepted::default(),
        Accepted {
            lines: 9,
            bytes: 900,
        },
    );
    assert_eq!(resume.accepted.lines, 7);
    resume.cut_at = None;
    resume.update(
        Accepted {
            lines: 5,
            bytes: 50,
        },
        Accepted {
            lines: 4,
            bytes: 40,
        },
    );
    assert_eq!(
        resume.accepted,
        Accepted {
            lines: 9,
            bytes: 90
        }
    );
    assert_eq!(cut_pattern(), b"-cut\"");
}

/// The first line after the skipped ones that holds a cut id, wherever it lies in the batches.
#[tokio::test]
async fn the_first_cut_record_after_the_skipped_lines_is_found() {
    async fn cut_at(batches: &[&[&str]], skip: u64) -> (Option<u64>, Vec<String>) {
        let (tx, rx) = mpsc::channel(batches.len().max(1));
        for batch in batches {
            let mut lines = Lines::default();
            for line in *batch {
                lines.push(line.as_bytes());
            }
            tx.send(lines).await.unwrap();
        }
        drop(tx);
        let clock = ManualClock::new(NOW);
        let mut resume = Resume::from_start(&clock);
        resume.skip = skip;
        let delivered = Arc::new(Mutex::new(Vec::new()));
        send_resuming(
            rx,
            MemorySink::new(Arc::clone(&delivered), 100),
            &mut resume,
        )
        .await
        .unwrap();
        let sent = delivered.lock().unwrap().clone();
        (resume.cut_at, sent)
    }
    let cut = r#"{"id":"1f-cut"}"#;
    let whole = r#"{"id":"1f"}"#;
    let batches: &[&[&str]] = &[&[whole, cut, whole], &[whole, cut, cut], &[whole]];
    assert_eq!(cut_at(batches, 0).await.0, Some(1));
    // The cut line of the first batch is skipped: the next one counts, in the same batch or not.
    assert_eq!(cut_at(batches, 2).await.0, Some(4));
    assert_eq!(cut_at(batches, 5).await.0, Some(5));
    let (at, sent) = cut_at(batches, 6).await;
    assert_eq!((at, sent.len()), (None, 1));
    let (at, sent) = cut_at(&[&[whole, whole], &[whole]], 0).await;
    assert_eq!((at, sent.len()), (None, 3));
    // Nothing is skipped in the lines sent.
    assert_eq!(cut_at(batches, 4).await.1.len(), 3);
}

/// A read that breaks off after some lines ends the sink with `finish_broken`: the lake keeps
/// no object of the input (the lines so far are not a whole object) and counts none of them
/// accepted, so the retry rewrites the objects whole; a read that ends well completes them.
#[tokio::test]
async fn a_read_that_breaks_off_leaves_the_lake_no_object_and_nothing_accepted() {
    use crate::lake::Class;
    use crate::sink::lake::{LakeSink, Location, MemoryLake};
    let line = r#"{"metadata":{"uid":"a"},"class_uid":3002,"time":5}"#;
    for broken in [false, true] {
        let store = Arc::new(MemoryLake::default());
        let locations = Class::ALL
            .iter()
            .map(|&class| Location {
                class,
                bucket: "lake".into(),
                prefix: String::new(),
            })
            .collect();
        let mut sink = LakeSink::new(store.clone(), Arc::new(locations));
        sink.begin(&["audit", KEY, "etag"]);
        let (tx, rx) = mpsc::channel(2);
        let mut lines = Lines::default();
        lines.push(line.as_bytes());
        lines.push(line.as_bytes());
        tx.send(lines).await.unwrap();
        if broken {
            tx.send(Lines::broken()).await.unwrap();
        }
        drop(tx);
        let clock = ManualClock::new(NOW);
        let mut resume = Resume::from_start(&clock);
        let stats = send_resuming(rx, sink, &mut resume).await.unwrap();
        assert_eq!(stats.lines, 2);
        assert_eq!(
            store.objects().len(),
            usize::from(!broken),
            "broken: {broken}"
        );
        assert_eq!(store.open_uploads(), 0);
        assert_eq!(resume.accepted.lines, if broken { 0 } else { 2 });
    }
}

#[test]
fn a_short_invocation_keeps_a_fifth_of_its_time_a_long_one_ten_seconds() {
    assert_eq!(live_margin_ms(900_000), LIVE_MARGIN_MS);
    assert_eq!(live_margin_ms(50_000), LIVE_MARGIN_MS);
    assert_eq!(live_margin_ms(15_000), 3_000);
    assert_eq!(live_margin_ms(0), 0);
    assert_eq!(live_margin_ms(-5), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_forwarders_starting_one_object_at_once_send_it_once() {
    let w = world(500);
    let (a, b) = (w.forwarder(), w.forwarder());
    let (object, tracking) = (w.object(), w.tracking(None));
    // Polled in turn: the first claims the object before it waits on its first call.
    let (first, second) = tokio::join!(
        a.forward_tracked(&object, &tracking),
        b.forward_tracked(&object, &tracking)
    );
    assert!(matches!(first, Ok(Forwarded::Sent(_))), "{first:?}");
    let busy = second.unwrap_err();
    assert!(matches!(busy, ForwardError::Busy { .. }), "{busy}");
    assert!(busy.is_retryable() && !busy.counts_as_attempt());
    assert!(busy.to_string().contains("busy elsewhere"), "{busy}");
    assert_eq!(w.tally(), (500, 0), "every record once");
    // Retried later (the message comes back), it finds the object done.
    let again = b.forward_tracked(&object, &tracking).await.unwrap();
    assert!(matches!(again, Forwarded::AlreadyDone(_)), "{again:?}");
    assert_eq!(w.tally(), (500, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_claim_of_another_invocation_makes_the_object_busy_until_it_expires() {
    let w = world(300);
    let forwarder = w.forwarder();
    let etag = w.object().etag.unwrap();
    let taken = w
        .ledger
        .take_claim("audit", KEY, &etag, "other-invocation", NOW + 60_000)
        .await
        .unwrap();
    assert!(matches!(taken, crate::ledger::ClaimOutcome::Taken(_)));
    let err = forwarder
        .forward_tracked(&w.object(), &w.tracking(None))
        .await
        .unwrap_err();
    assert!(matches!(err, ForwardError::Busy { .. }), "{err}");
    assert_eq!(w.tally(), (0, 0), "nothing sent");
    assert_eq!(w.progress().await, None, "no attempt recorded");
    // The holder crashed: once its claim expired the object is taken over and sent.
    w.clock.set(NOW + 60_000);
    let sent = forwarder
        .forward_tracked(&w.object(), &w.tracking(None))
        .await
        .unwrap();
    assert!(matches!(sent, Forwarded::Sent(_)), "{sent:?}");
    assert_eq!(w.tally(), (300, 0));
    // And released: another attempt may claim it at once.
    let next = w
        .ledger
        .take_claim("audit", KEY, &etag, "next", w.clock.now_ms() + 1_000)
        .await
        .unwrap();
    assert!(matches!(next, crate::ledger::ClaimOutcome::Taken(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_done_marker_is_read_again_once_the_object_is_claimed() {
    let w = world(200);
    let forwarder = w.forwarder();
    forwarder
        .forward_tracked(&w.object(), &w.tracking(None))
        .await
        .unwrap();
    // The backfill reads the marker before its attempt (`check_done: false`); one written
    // between that read and the claim is still seen.
    let tracking = Tracking {
        check_done: false,
        ..w.tracking(None)
    };
    let again = forwarder
        .forward_tracked(&w.object(), &tracking)
        .await
        .unwrap();
    assert!(matches!(again, Forwarded::AlreadyDone(_)), "{again:?}");
    assert_eq!(w.tally(), (200, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_claim_never_blocks_the_object() {
    let w = world(100);
    let key = w.ledger.claim_key("audit", KEY);
    let forged = format!(
        r#"{{"v":1,"bucket":"audit","key":"{KEY}","etag":"{}","holder":"squatter","claimed_at_ms":{NOW},"expires_at_ms":{},"released":false}}"#,
        crate::ledger::normalize_etag(&w.object().etag.unwrap()),
        NOW + 365 * 86_400_000
    );
    crate::ports::StateStore::put(
        &*w.store,
        &key,
        forged.into_bytes(),
        crate::ports::Precondition::None,
    )
    .await
    .unwrap();
    let sent = w
        .forwarder()
        .forward_tracked(&w.object(), &w.tracking(None))
        .await
        .unwrap();
    assert!(matches!(sent, Forwarded::Sent(_)), "{sent:?}");
    assert_eq!(w.tally(), (100, 0));
}

/// A forwarder writing OCSF to the lake (in memory), in parts of 16 KiB.
fn lake_forwarder(
    w: &World,
    lake: &Arc<crate::sink::lake::MemoryLake>,
) -> Forwarder<
    Shared,
    impl Fn() -> crate::sink::lake::LakeSink<crate::sink::lake::MemoryLake> + Send + Sync,
> {
    use crate::lake::{Class, Limits};
    use crate::sink::lake::{LakeSink, Location};
    let locations: Arc<Vec<Location>> = Arc::new(
        Class::ALL
            .iter()
            .map(|&class| Location {
                class,
                bucket: "lake".into(),
                prefix: format!("ext/{}/", class.name()),
            })
            .collect(),
    );
    let lake = lake.clone();
    let mut forwarder = Forwarder::new(Filter::default(), Shared(w.bucket.clone()), move || {
        LakeSink::new(lake.clone(), locations.clone())
            .with_part_bytes(16 * 1024)
            .with_limits(Limits {
                row_group_bytes: 32 * 1024,
                ..Limits::default()
            })
    });
    forwarder.output.format = crate::output::Format::Ocsf;
    forwarder.clock = w.clock.clone();
    forwarder.max_attempts = 3;
    forwarder
}

/// The lake's time budget: an input stopped at the deadline keeps nothing in the lake (no
/// object, no upload left open, no progress that would let a retry skip lines), and the next
/// attempt writes the whole object, the same as a run that was never stopped. (Where in the
/// object the stop comes depends on how the parser's batches fall; `sink/lake/tests.rs` stops
/// a sink with uploads open.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lake_stopped_at_the_deadline_aborts_and_the_next_attempt_writes_the_whole_object() {
    use crate::sink::lake::MemoryLake;
    let w = world(0);
    // Users that do not compress, so the first batch's rows fill parts before the end.
    let body: String = (0..10_000u64)
        .map(|i| {
            let user: String = (0..4u64)
                .map(|k| format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&(i * 4 + k).to_le_bytes())))
                .collect();
            format!("authenticated |Mon, 7 Dec 2020 20:01:55:177|10.0.0.1 |5432 |{}|dev |u{user} |password |0| | |0| | |\n", 1_000 + i)
        })
        .collect();
    w.put(&body);
    let clean = Arc::new(MemoryLake::default());
    lake_forwarder(&w, &clean)
        .forward(&w.object())
        .await
        .unwrap();
    assert!(!clean.objects().is_empty());

    let store = Arc::new(MemoryLake::default());
    let forwarder = lake_forwarder(&w, &store);
    // The deadline has passed: the forwarder stops after the first batch it hands the sink.
    let stopped = forwarder
        .forward_tracked(&w.object(), &w.tracking(Some(w.clock.now_ms() - 1)))
        .await;
    let Err(ForwardError::Paused { lines, .. }) = stopped else {
        panic!("stopped at the deadline: {stopped:?}");
    };
    assert_eq!(
        lines, 0,
        "the lake accepts nothing before an input is complete"
    );
    assert!(
        store.objects().is_empty(),
        "nothing of a stopped input in the lake"
    );
    assert_eq!(store.open_uploads(), 0, "its uploads aborted");
    assert!(
        w.ledger
            .done("audit", KEY, &w.object().etag.unwrap())
            .await
            .unwrap()
            .is_none(),
        "not done"
    );
    let Forwarded::Sent(receipt) = forwarder
        .forward_tracked(&w.object(), &w.tracking(None))
        .await
        .unwrap()
    else {
        panic!("the next attempt completes");
    };
    assert_eq!(receipt.skipped_lines, 0, "the whole object again");
    assert_eq!(
        store.objects(),
        clean.objects(),
        "the objects of a clean run"
    );
}
