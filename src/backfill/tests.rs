//! Unit tests of the walk against in-memory fakes: a bucket that lists and serves objects as S3
//! does, a state store with S3's conditional writes, a clock that moves only when told.

use std::io::{self, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use super::*;
use crate::events::Filter;
use crate::ports::memory::{ManualClock, MemoryBucket, MemoryStore};
use crate::ports::{FetchError, Fetched, ObjectRef};
use crate::sink::WriteSink;

mod fanout;
mod faults;
mod refused;

const BUCKET: &str = "audit";
const TREE: &str = "AWSLogs/123456789012/redshift/us-east-1/";
const LINE: &str =
    "authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | |";
/// 2024-03-01T00:00:00Z.
const MAR_1: i64 = 1_709_251_200_000;
const HOUR: i64 = 3_600_000;

/// Lines written by every sink of a test.
#[derive(Clone, Default)]
struct Out(Arc<Mutex<Vec<u8>>>);
impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
impl Out {
    /// `source.key` of every line, in the order sent.
    fn keys(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap().clone();
        bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_slice(l).unwrap();
                v["source"]["key"].as_str().unwrap().to_string()
            })
            .collect()
    }
}

struct Fixture {
    clock: Arc<ManualClock>,
    bucket: Arc<MemoryBucket>,
    store: Arc<MemoryStore>,
    out: Out,
    backfill: Backfill,
}

fn fixture(now_ms: i64, prefix: &str) -> Fixture {
    let clock = Arc::new(ManualClock::new(now_ms));
    let bucket = Arc::new(MemoryBucket::new(clock.clone()));
    let store = Arc::new(MemoryStore::default());
    let backfill = Backfill {
        bucket: BUCKET.into(),
        prefix: prefix.into(),
        start_time_ms: None,
        lookback_days: 1,
        ledger: Ledger::new(store.clone(), "state/"),
        list: bucket.clone(),
        clock: clock.clone(),
        queue: None,
    };
    Fixture {
        clock,
        bucket,
        store,
        out: Out::default(),
        backfill,
    }
}

impl Fixture {
    fn handler(&self) -> Forwarder<SharedBucket, impl Fn() -> WriteSink<Out> + Send + Sync> {
        let out = self.out.clone();
        Forwarder::new(
            Filter::default(),
            SharedBucket(self.bucket.clone()),
            move || WriteSink::new(out.clone()),
        )
    }

    async fn run(&self, options: RunOptions) -> Summary {
        let handler = self.handler();
        self.backfill
            .run(&handler, &options, &mut |_| {})
            .await
            .unwrap()
    }

    /// Keys in the order a run sent them.
    async fn run_sending(&self, options: RunOptions) -> (Summary, Vec<String>) {
        let handler = self.handler();
        let mut sent = Vec::new();
        let summary = self
            .backfill
            .run(&handler, &options, &mut |e| {
                if let Event::Sent(r) = e {
                    sent.push(r.key.clone())
                }
            })
            .await
            .unwrap();
        (summary, sent)
    }
}

/// The handler owns its fetch; tests keep a handle on the same bucket.
struct SharedBucket(Arc<MemoryBucket>);
impl Fetch for SharedBucket {
    async fn fetch(&self, object: &ObjectRef) -> Result<Fetched, FetchError> {
        self.0.fetch(object).await
    }
}

fn options() -> RunOptions {
    RunOptions {
        owner: new_owner(),
        ..RunOptions::default()
    }
}

/// `<tree>YYYY/MM/DD/<account>_redshift_<region>_c_connectionlog_<time>.gz` for a file time.
fn log_key(tree: &str, file_ms: i64, log_type: &str) -> String {
    let day = day_of(file_ms);
    let minutes = file_ms.rem_euclid(MS_PER_DAY) / 60_000;
    format!(
        "{}123456789012_redshift_us-east-1_c_{log_type}_{}T{:02}:{:02}.gz",
        day_folder(tree, day),
        day_label(day),
        minutes / 60,
        minutes % 60
    )
}

// --- pure rules ------------------------------------------------------------------------------

#[test]
fn days_round_trip_through_the_calendar() {
    for day in [-1, 0, 19_782, 19_783, 20_000, 30_000] {
        let (y, m, d) = crate::time::date_of_day(day).unwrap();
        assert_eq!(crate::time::day_of_date(y.into(), m, d), Some(day));
    }
    assert_eq!(day_of(MAR_1), 19_783);
    assert_eq!(day_of(MAR_1 - 1), 19_782);
    assert_eq!(day_label(19_783), "2024-03-01");
    assert_eq!(day_folder(TREE, 19_783), format!("{TREE}2024/03/01/"));
    assert_eq!(day_folder("", 19_783), "2024/03/01/");
}

#[test]
fn start_time_keeps_the_file_that_straddles_it() {
    let start = MAR_1 + 5 * HOUR; // 05:00:00
    let minute = 60_000;
    // 04:53 holds only records before 04:54: left out.
    assert!(!starts_in_time(start - 7 * minute, start));
    assert!(!starts_in_time(start - minute, start));
    // 05:00 and 05:13 hold records from before 05:00 and after: kept whole.
    assert!(starts_in_time(start, start));
    assert!(starts_in_time(start + 13 * minute, start));
    // A start within a minute: that minute's file may hold records after it.
    assert!(starts_in_time(start, start + 30_000));
    assert!(!starts_in_time(start, start + minute));
}

#[test]
fn first_day_of_a_start_just_after_midnight_is_the_day_before() {
    assert_eq!(first_day_for_start(MAR_1 + 5 * HOUR), day_of(MAR_1));
    assert_eq!(first_day_for_start(MAR_1), day_of(MAR_1) - 1);
    assert_eq!(first_day_for_start(MAR_1 + 60_000), day_of(MAR_1));
}

#[test]
fn resuming_starts_from_the_resume_day_minus_the_look_back() {
    let cursor = |resume_day: i64| Cursor {
        bucket: BUCKET.into(),
        prefix: TREE.into(),
        position: None,
        last_modified: None,
        resume_day,
        resume_date: day_label(resume_day),
        updated_at: String::new(),
        owner: String::new(),
    };
    let d = day_of(MAR_1);
    assert_eq!(first_day_for_cursor(&cursor(d), 1), d - 1);
    assert_eq!(first_day_for_cursor(&cursor(d), 0), d);
    assert_eq!(first_day_for_cursor(&cursor(d), 7), d - 7);
}

#[test]
fn only_objects_well_before_the_cursor_skip_the_ledger() {
    let p = |ms: i64, key: &str| Position {
        last_modified_ms: ms,
        key: key.into(),
    };
    let cursor = p(MAR_1, "m");
    assert!(is_behind_cursor(
        &p(MAR_1 - CURSOR_GRACE_MS - 1000, "z"),
        &cursor
    ));
    // Same second, smaller key: may have landed after the cursor moved.
    assert!(!is_behind_cursor(&p(MAR_1, "a"), &cursor));
    assert!(!is_behind_cursor(&p(MAR_1 - 60_000, "a"), &cursor));
    // After the cursor: never skipped.
    assert!(!is_behind_cursor(&p(MAR_1, "n"), &cursor));
    assert!(!is_behind_cursor(&p(MAR_1 + 1000, "a"), &cursor));
}

#[test]
fn margin_is_a_fifth_of_the_run_capped_but_never_below_twice_the_slowest_object() {
    assert_eq!(margin_ms(300_000, 0), 60_000);
    assert_eq!(margin_ms(900_000, 0), 60_000);
    assert_eq!(margin_ms(30_000, 0), 6_000);
    assert_eq!(margin_ms(30_000, 5_000), 10_000);
    assert_eq!(margin_ms(900_000, 45_000), 90_000);
}

// --- walks -----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_are_sent_in_last_modified_then_key_order_across_days() {
    let f = fixture(MAR_1 + 3 * MS_PER_DAY, TREE);
    let text = format!("{LINE}\n");
    // Day 1's last file is written after midnight, after day 2's first file.
    let a = log_key(TREE, MAR_1 + 23 * HOUR, "connectionlog");
    let b = log_key(TREE, MAR_1 + 24 * HOUR + 10 * 60_000, "connectionlog");
    let c = log_key(TREE, MAR_1 + 24 * HOUR + 10 * 60_000, "userlog");
    let d = log_key(TREE, MAR_1 + 25 * HOUR, "connectionlog");
    f.bucket.put(&d, &text, MAR_1 + 26 * HOUR);
    f.bucket.put(&a, &text, MAR_1 + 24 * HOUR + 20 * 60_000);
    // Same second: key order decides.
    f.bucket.put(&c, &text, MAR_1 + 24 * HOUR + 5 * 60_000);
    f.bucket.put(&b, &text, MAR_1 + 24 * HOUR + 5 * 60_000);
    let (summary, sent) = f.run_sending(options()).await;
    assert_eq!(sent, vec![b.clone(), c.clone(), a.clone(), d.clone()]);
    assert_eq!(summary.stopped, Stopped::Complete);
    assert_eq!(summary.sent, 4);
    assert_eq!(summary.records, 4);
    // Earliest day found by listing, then through today.
    assert_eq!(summary.days_walked, 4);
    // The tree's years (once, shared with discovery), March, its days; then a call per day.
    assert_eq!(summary.list_calls, 3 + 4);
    // Four state writes per object (its claim, the claim's release, its done marker and the
    // cursor), taking and releasing the lease, and the cursor once more when the walk
    // completed through today.
    assert_eq!(summary.state_writes, 4 * 4 + 2 + 1);
    // Five reads per object (its done marker before and after the claim, its set-aside
    // record, its claim, its progress record), and the lease and the cursor once each.
    assert_eq!(summary.state_reads, 5 * 4 + 2, "{summary:?}");
    let cursor = f
        .backfill
        .ledger
        .cursor(BUCKET, TREE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cursor.value.position.unwrap().key, d);
    // Complete through today: the next walk starts from today minus the look-back.
    assert_eq!(cursor.value.resume_day, day_of(MAR_1) + 3);
    assert_eq!(cursor.value.resume_date, "2024-03-04");
    // The next scheduled run lists only today and the look-back day.
    let again = f.run(options()).await;
    assert_eq!((again.sent, again.days_walked), (0, 2));
    // A manual run over everything finds every object done.
    let manual = f
        .run(RunOptions {
            since_ms: Some(MAR_1),
            ..options()
        })
        .await;
    assert_eq!(manual.sent, 0);
    assert_eq!(manual.skipped_done, 4);
    assert_eq!(f.out.keys().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_stops_before_the_margin_and_the_next_runs_finish_the_rest() {
    let f = fixture(MAR_1 + 2 * MS_PER_DAY, TREE);
    f.bucket.fetch_ms.store(10_000, Ordering::SeqCst);
    let text = format!("{LINE}\n{LINE}\n");
    let mut keys = Vec::new();
    for hour in 0..20 {
        let key = log_key(TREE, MAR_1 + hour * HOUR + 53 * 60_000, "connectionlog");
        f.bucket.put(&key, &text, MAR_1 + hour * HOUR + 55 * 60_000);
        keys.push(key);
    }
    let mut runs = 0;
    loop {
        runs += 1;
        assert!(runs < 10, "the walk makes progress");
        let now = f.clock.now_ms();
        // 100 s left: margin max(20 s, 2 x 10 s): objects start while 20 s or more are left.
        let summary = f
            .run(RunOptions {
                deadline_ms: Some(now + 100_000),
                ..options()
            })
            .await;
        if summary.stopped == Stopped::Complete {
            break;
        }
        assert_eq!(summary.stopped, Stopped::Deadline);
        assert_eq!(summary.sent, 9, "objects started with 100..20 s left");
        assert!(summary.time_left_ms.unwrap() >= 0, "{summary:?}");
        f.clock.advance(60_000);
    }
    assert_eq!(runs, 3);
    let mut delivered = f.out.keys();
    delivered.sort();
    let mut want: Vec<String> = keys.iter().flat_map(|k| [k.clone(), k.clone()]).collect();
    want.sort();
    assert_eq!(delivered, want, "every record once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_follows_every_page() {
    let f = fixture(MAR_1 + MS_PER_DAY / 2, TREE);
    f.bucket.page.store(3, Ordering::SeqCst);
    for minute in 0..10 {
        let key = log_key(TREE, MAR_1 + minute * 60_000, "userlog");
        f.bucket.put(&key, &format!("{LINE}\n"), MAR_1 + HOUR);
    }
    f.bucket
        .put(&format!("{TREE}2024/03/01/notes.txt"), "x", MAR_1);
    let summary = f
        .run(RunOptions {
            since_ms: Some(MAR_1 + 60_000),
            ..options()
        })
        .await;
    assert_eq!(summary.keys_listed, 11);
    assert_eq!(summary.objects_seen, 10);
    // Start 00:01: the file named 00:00 holds records before 00:01 only.
    assert_eq!(summary.skipped_before_start, 1);
    assert_eq!(summary.sent, 9);
    // Only day 1 (the start is a minute past midnight); 11 keys in pages of 3.
    assert_eq!(summary.days_walked, 1);
    assert_eq!(summary.list_calls, 1 + 4, "discovery + pages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trees_are_found_under_aws_logs_accounts_and_regions() {
    let f = fixture(MAR_1 + MS_PER_DAY / 2, "");
    let trees = [
        "AWSLogs/111111111111/redshift/us-east-1/",
        "AWSLogs/111111111111/redshift/eu-west-1/",
        "AWSLogs/222222222222/redshift/us-gov-west-1/",
    ];
    for tree in trees {
        f.bucket
            .put(&log_key(tree, MAR_1, "connectionlog"), LINE, MAR_1 + HOUR);
    }
    // Not partition trees of audit logs.
    f.bucket.put(
        "AWSLogs/111111111111/CloudTrail/us-east-1/2024/03/01/x.json.gz",
        "{}",
        MAR_1,
    );
    f.bucket
        .put("redshift-audit-forwarder/lease.json", "{}", MAR_1);
    let mut want: Vec<String> = trees.iter().map(|t| t.to_string()).collect();
    want.sort();
    for prefix in ["", "AWSLogs", "AWSLogs/"] {
        let backfill = Backfill {
            prefix: prefix.into(),
            ..f.backfill.clone()
        };
        let found = backfill
            .discover_trees(&mut Summary::default())
            .await
            .unwrap();
        assert_eq!(found, want, "prefix {prefix:?}");
    }
    let one_account = Backfill {
        prefix: "AWSLogs/111111111111".into(),
        ..f.backfill.clone()
    };
    assert_eq!(
        one_account
            .discover_trees(&mut Summary::default())
            .await
            .unwrap(),
        vec![want[0].clone(), want[1].clone()]
    );
    let one_tree = Backfill {
        prefix: trees[0].trim_end_matches('/').into(),
        ..f.backfill.clone()
    };
    assert_eq!(
        one_tree
            .discover_trees(&mut Summary::default())
            .await
            .unwrap(),
        vec![trees[0].to_string()]
    );
    // And a whole walk from the bucket root sends each tree's file, one cursor per tree.
    let summary = f.run(options()).await;
    assert_eq!(summary.trees, 3);
    assert_eq!(summary.sent, 3);
    for tree in trees {
        assert!(f
            .backfill
            .ledger
            .cursor(BUCKET, tree)
            .await
            .unwrap()
            .is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_file_in_an_older_partition_within_the_look_back_is_sent() {
    let f = fixture(MAR_1 + 3 * MS_PER_DAY + HOUR, TREE);
    let text = format!("{LINE}\n");
    for day in 0..4 {
        let key = log_key(TREE, MAR_1 + day * MS_PER_DAY + HOUR, "connectionlog");
        f.bucket
            .put(&key, &text, MAR_1 + day * MS_PER_DAY + 2 * HOUR);
    }
    assert_eq!(f.run(options()).await.sent, 4);
    // Lands after the cursor passed its day: one day back, and three days back.
    let late = log_key(TREE, MAR_1 + 2 * MS_PER_DAY + 5 * HOUR, "userlog");
    let too_late = log_key(TREE, MAR_1 + 5 * HOUR, "userlog");
    f.bucket
        .put(&late, &text, MAR_1 + 3 * MS_PER_DAY + 3 * HOUR);
    f.bucket
        .put(&too_late, &text, MAR_1 + 3 * MS_PER_DAY + 3 * HOUR);
    let (summary, sent) = f.run_sending(options()).await;
    assert_eq!(sent, vec![late], "within BACKFILL_LOOKBACK_DAYS only");
    assert_eq!(summary.days_walked, 2);
    // A manual run from a time finds the older one.
    let (_, sent) = f
        .run_sending(RunOptions {
            since_ms: Some(MAR_1),
            ..options()
        })
        .await;
    assert_eq!(sent, vec![too_late]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retryable_failure_pins_the_cursor_and_the_next_run_sends_it() {
    let f = fixture(MAR_1 + MS_PER_DAY / 2, TREE);
    let text = format!("{LINE}\n");
    let keys: Vec<String> = (0..4)
        .map(|h| log_key(TREE, MAR_1 + h * HOUR, "connectionlog"))
        .collect();
    for (i, key) in keys.iter().enumerate() {
        f.bucket.put(key, &text, MAR_1 + (i as i64 + 1) * HOUR);
    }
    f.bucket.broken.lock().unwrap().push(keys[1].clone());
    let first = f.run(options()).await;
    assert_eq!(first.sent, 3);
    assert_eq!(first.failed, 1);
    assert!(first.is_failure());
    assert!(first.errors[0].contains(&keys[1]), "{:?}", first.errors);
    let cursor = f
        .backfill
        .ledger
        .cursor(BUCKET, TREE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        cursor.value.position.unwrap().key,
        keys[0],
        "pinned before the failure"
    );
    assert_eq!(cursor.value.resume_day, day_of(MAR_1));
    f.bucket.broken.lock().unwrap().clear();
    let (second, sent) = f.run_sending(options()).await;
    assert_eq!(sent, vec![keys[1].clone()]);
    assert_eq!(
        second.skipped_done, 3,
        "the cursor's own object and the two after the failure"
    );
    assert!(!second.is_failure());
    let cursor = f
        .backfill
        .ledger
        .cursor(BUCKET, TREE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cursor.value.position.unwrap().key, keys[3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_lists_what_would_be_sent_and_writes_nothing() {
    let f = fixture(MAR_1 + MS_PER_DAY / 2, TREE);
    let key = log_key(TREE, MAR_1 + HOUR, "useractivitylog");
    f.bucket.put(&key, "x", MAR_1 + 2 * HOUR);
    let handler = f.handler();
    let mut listed = Vec::new();
    let summary = f
        .backfill
        .run(
            &handler,
            &RunOptions {
                dry_run: true,
                ..options()
            },
            &mut |e| {
                if let Event::WouldSend(o) = e {
                    listed.push((o.key.clone(), o.size, o.last_modified_ms));
                }
            },
        )
        .await
        .unwrap();
    assert_eq!(listed, vec![(key, 1, MAR_1 + 2 * HOUR)]);
    assert_eq!(summary.would_send, 1);
    assert_eq!(summary.sent, 0);
    assert_eq!(summary.state_writes, 0);
    assert!(f.store.snapshot().is_empty());
    assert!(f.out.keys().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lease_returns_at_once_and_an_expired_one_is_taken_over() {
    let f = fixture(MAR_1 + MS_PER_DAY / 2, TREE);
    f.bucket.put(
        &log_key(TREE, MAR_1 + HOUR, "connectionlog"),
        LINE,
        MAR_1 + 2 * HOUR,
    );
    let now = f.clock.now_ms();
    let LeaseOutcome::Acquired(_) = f
        .backfill
        .ledger
        .acquire_lease("crashed", now, now + LEASE_TTL_MS)
        .await
        .unwrap()
    else {
        panic!("free lease");
    };
    let held = f.run(options()).await;
    assert_eq!(held.stopped, Stopped::LeaseHeld);
    assert_eq!(held.lease_owner.as_deref(), Some("crashed"));
    assert_eq!(held.list_calls, 0, "returns before any work");
    assert_eq!(held.sent, 0);
    f.clock.advance(LEASE_TTL_MS);
    let taken = f.run(options()).await;
    assert_eq!(taken.stopped, Stopped::Complete);
    assert_eq!(taken.took_over_from.as_deref(), Some("crashed"));
    assert_eq!(taken.sent, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_run_without_deadline_renews_its_lease() {
    let f = fixture(MAR_1 + MS_PER_DAY / 2, TREE);
    f.bucket.fetch_ms.store(5 * 60_000, Ordering::SeqCst);
    for h in 0..6 {
        f.bucket.put(
            &log_key(TREE, MAR_1 + h * HOUR, "connectionlog"),
            LINE,
            MAR_1 + (h + 1) * HOUR,
        );
    }
    let summary = f.run(options()).await;
    assert_eq!(summary.sent, 6);
    // 30 minutes of work with a 16-minute lease renewed at half-life.
    let renewals = summary.state_writes - 4 * 6 - 2;
    assert!((2..=4).contains(&renewals), "{summary:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_time_applies_to_file_times_even_in_the_look_back() {
    let mut f = fixture(MAR_1 + 2 * MS_PER_DAY, TREE);
    f.backfill.start_time_ms = Some(MAR_1 + MS_PER_DAY + 5 * HOUR);
    let text = format!("{LINE}\n");
    let keys: Vec<String> = [4 * 60 + 53, 5 * 60 + 13, 6 * 60 + 13]
        .iter()
        .map(|m| log_key(TREE, MAR_1 + MS_PER_DAY + m * 60_000, "connectionlog"))
        .collect();
    for key in &keys {
        f.bucket.put(key, &text, MAR_1 + MS_PER_DAY + 7 * HOUR);
    }
    // Before the start, a day earlier: never listed.
    f.bucket.put(
        &log_key(TREE, MAR_1 + 23 * HOUR, "connectionlog"),
        &text,
        MAR_1 + MS_PER_DAY + 7 * HOUR,
    );
    let (summary, sent) = f.run_sending(options()).await;
    assert_eq!(
        sent,
        keys[1..].to_vec(),
        "04:53 is before 05:00; 05:13 straddles it"
    );
    assert_eq!(summary.skipped_before_start, 1);
    assert_eq!(summary.days_walked, 2);
    // Resuming with the look-back (day 0) still respects the start time.
    let again = f.run(options()).await;
    assert_eq!(again.sent, 0);
    assert_eq!(again.days_walked, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_walk_resumes_from_the_earliest_partition_left() {
    let mut f = fixture(MAR_1 + 2 * MS_PER_DAY, TREE);
    f.backfill.lookback_days = 0;
    let text = format!("{LINE}\n");
    // Day 2's first file is written before day 1's last one, which lands after midnight.
    let early = log_key(TREE, MAR_1 + MS_PER_DAY + 10 * 60_000, "connectionlog");
    let late = log_key(TREE, MAR_1 + 23 * HOUR + 53 * 60_000, "connectionlog");
    f.bucket
        .put(&early, &text, MAR_1 + MS_PER_DAY + 30 * 60_000);
    f.bucket.put(&late, &text, MAR_1 + MS_PER_DAY + HOUR);
    let one = RunOptions {
        max_objects: Some(1),
        ..options()
    };
    let (first, sent) = f.run_sending(one.clone()).await;
    assert_eq!(sent, vec![early.clone()]);
    assert_eq!(first.stopped, Stopped::ObjectBudget);
    let cursor = f
        .backfill
        .ledger
        .cursor(BUCKET, TREE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cursor.value.position.unwrap().key, early);
    assert_eq!(
        cursor.value.resume_day,
        day_of(MAR_1),
        "day 1 still holds a file"
    );
    // Even without a look-back, the next run lists day 1 again.
    let (_, sent) = f.run_sending(one).await;
    assert_eq!(sent, vec![late]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_whose_selected_files_are_rare_is_not_listed_from_its_beginning_again() {
    let f = fixture(MAR_1 + 100 * MS_PER_DAY, TREE);
    f.bucket.put(
        &log_key(TREE, MAR_1 + HOUR, "userlog"),
        &format!("{LINE}\n"),
        MAR_1 + 2 * HOUR,
    );
    let first = f.run(options()).await;
    assert_eq!(first.sent, 1);
    assert_eq!(first.days_walked, 101);
    let second = f.run(options()).await;
    assert_eq!(second.days_walked, 2, "today and the look-back day");
    assert_eq!(
        second.state_writes, 2,
        "the lease only: the cursor did not change"
    );
    f.clock.advance(MS_PER_DAY);
    let third = f.run(options()).await;
    assert_eq!(
        third.days_walked, 3,
        "from the last walk's day minus the look-back"
    );
    assert_eq!(
        third.state_writes, 3,
        "the lease and the cursor's new resume day"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_run_from_a_later_time_keeps_the_older_days_it_did_not_walk() {
    let f = fixture(MAR_1 + 10 * MS_PER_DAY, TREE);
    let text = format!("{LINE}\n");
    let keys: Vec<String> = (0..10)
        .map(|d| log_key(TREE, MAR_1 + d * MS_PER_DAY + HOUR, "connectionlog"))
        .collect();
    for (d, key) in keys.iter().enumerate() {
        f.bucket
            .put(key, &text, MAR_1 + d as i64 * MS_PER_DAY + 2 * HOUR);
    }
    // The scheduled walk stops after two days' files...
    let stopped = f
        .run(RunOptions {
            max_objects: Some(2),
            ..options()
        })
        .await;
    assert_eq!(stopped.sent, 2);
    // ...someone sends the last two days by hand...
    let manual = f
        .run(RunOptions {
            since_ms: Some(MAR_1 + 8 * MS_PER_DAY),
            ..options()
        })
        .await;
    assert_eq!(manual.sent, 2);
    // ...and the next scheduled walk still sends the six days in between.
    let (_, sent) = f.run_sending(options()).await;
    assert_eq!(sent, keys[2..8].to_vec());
}

#[test]
fn the_events_since_is_bounded_like_backfill_start_time() {
    let request = |since: &str| crate::events::BackfillRequest {
        since: Some(since.into()),
        dry_run: false,
        retry_set_aside: false,
    };
    for (since, says) in [
        ("2011-12-31T23:59:59Z", "before 2012-01-01"),
        ("2999-01-01T00:00:00Z", "in the future"),
        ("yesterday", "not an RFC 3339 time"),
    ] {
        let err = RunOptions::from_request(&request(since), None).unwrap_err();
        assert!(matches!(err, BackfillError::Request(_)), "{since}: {err}");
        assert!(err.to_string().contains(says), "{since}: {err}");
    }
    let options = RunOptions::from_request(&request("2024-03-01T01:00:00+01:00"), None).unwrap();
    assert_eq!(options.since_ms, Some(MAR_1));
}
