//! The backfill end to end against a private moto server: the walk, the ledger, the lease and
//! the live path share real S3 state and deliver through a real (moto) Firehose stream.
//!
//! Audit files are generated small (a few lines each) with partition days relative to today, so
//! the walk's "up to today" stays short. Moto stamps last-modified at upload time to the second,
//! so many objects share a second: the walk's order is (last-modified, key), total either way.
//!
//! Records are compared with what `parse` gives for the same bytes, without the two fields that
//! depend on the bucket (`source.bucket`, `id`); ids are checked separately to be 32 hex digits
//! and unique, or, where duplicates are expected, to repeat only within one object.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record as FirehoseRecord;
use common::log_time::{iso_time, log_time, now_ms, today, HOUR, MINUTE};
use common::{
    create_bucket, create_delivery_stream_to_bucket, delivered_lines, firehose_client, put_object,
    s3_client, sdk_config, Moto,
};
use redshift_audit_forwarder::aws::{self as settings, BucketClient, StateBucket};
use redshift_audit_forwarder::backfill::{
    day_label, new_owner, RunOptions, Stopped, Summary, LEASE_TTL_MS, MS_PER_DAY,
};
use redshift_audit_forwarder::forward::Forwarder;
use redshift_audit_forwarder::key::parse_file_name;
use redshift_audit_forwarder::ledger::LeaseOutcome;
use redshift_audit_forwarder::output::Provenance;
use redshift_audit_forwarder::ports::memory::ManualClock;
use redshift_audit_forwarder::ports::{Precondition, StateError, StateStore};
use redshift_audit_forwarder::runtime::{ledger_in, live_from, Live};
use redshift_audit_forwarder::settings::Settings;
use redshift_audit_forwarder::sink::{Accepted, Sink, SinkError, SinkStats};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_redshift-audit-forwarder");
const AUDIT: &str = "audit-bucket";
const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const TREE: &str = "AWSLogs/123456789012/redshift/us-east-1/";
const CLUSTER: &str = "analytics-prod";
const STATE_PREFIX: &str = "redshift-audit-forwarder/";

// --- generated audit files -------------------------------------------------------------------

/// One generated audit log file.
#[derive(Debug, Clone)]
struct LogFile {
    key: String,
    gz: Vec<u8>,
}

/// A few records, all from the 20 minutes before the file's time (a file holds records older
/// than its name), each line unique to the file.
fn log_text(log_type: &str, file_ms: i64, seq: u64) -> String {
    let mut text = String::new();
    for i in 0..3u64 {
        let t = file_ms - 20 * MINUTE + i as i64 * 7 * MINUTE + 1234;
        let pid = 10_000 + seq * 10 + i;
        let line = match log_type {
            "connectionlog" => format!(
                "authenticated |{}|::ffff:10.0.{}.{} |{} |{pid}|dev |alice |password |0|TLSv1.2 |ECDHE-RSA-AES256-GCM-SHA384 |0| | | | |Linux |JDBC 2.1 |none |0|{seq:08x}-0000-4000-8000-{i:012x}",
                log_time(t), seq % 250, i, 40_000 + i
            ),
            "userlog" => format!(
                "{}|user{seq} | |alter |1|0|0|9223372036854775807|{pid}|{}|{}",
                100 + i,
                5_000 + seq,
                log_time(t)
            ),
            _ => format!(
                "'{} UTC [ db=dev user=alice pid={pid} userid=100 xid={} ]' LOG: SELECT {seq} AS file,\n  {i} AS line;",
                iso_time(t),
                900_000 + seq * 10 + i
            ),
        };
        text.push_str(&line);
        text.push('\n');
    }
    text
}

/// The key of a Redshift audit file of `file_ms` under a tree.
fn log_key(account: &str, region: &str, log_type: &str, file_ms: i64) -> String {
    let day = file_ms.div_euclid(MS_PER_DAY);
    let (y, m, d) = redshift_audit_forwarder::time::date_of_day(day).unwrap();
    let rem = file_ms.rem_euclid(MS_PER_DAY);
    format!(
        "AWSLogs/{account}/redshift/{region}/{y:04}/{m:02}/{d:02}/{account}_redshift_{region}_{CLUSTER}_{log_type}_{}T{:02}:{:02}.gz",
        day_label(day),
        rem / HOUR,
        rem / MINUTE % 60
    )
}

/// Files for each day x hour x minute x log type, in time order (the order Redshift writes them).
fn corpus(
    account: &str,
    region: &str,
    days: impl IntoIterator<Item = i64>,
    hours: &[i64],
    minutes: &[i64],
    log_types: &[&str],
) -> Vec<LogFile> {
    let mut files = Vec::new();
    for day in days {
        for hour in hours {
            for minute in minutes {
                for log_type in log_types {
                    let file_ms = day * MS_PER_DAY + hour * HOUR + minute * MINUTE;
                    files.push(log_file(account, region, log_type, file_ms));
                }
            }
        }
    }
    files
}

fn log_file(account: &str, region: &str, log_type: &str, file_ms: i64) -> LogFile {
    let key = log_key(account, region, log_type, file_ms);
    // The key's hash keeps every file's lines unique.
    let seq = key
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        % 1_000_000;
    LogFile {
        gz: common::gzip(&log_text(log_type, file_ms, seq)),
        key,
    }
}

/// What `parse` gives for the files, comparable with delivered records (see the module docs).
fn expected(files: &[&LogFile]) -> Vec<Value> {
    let mut records = Vec::new();
    for file in files {
        let name = parse_file_name(&file.key).expect("generated names parse");
        let provenance = Provenance::new(name.log_type, Some(&name), None, &file.key);
        let mut out = Vec::new();
        redshift_audit_forwarder::cli::parse_stream(
            Box::new(std::io::Cursor::new(file.gz.clone())),
            name.log_type,
            redshift_audit_forwarder::pipeline::Output::default(),
            &provenance,
            &mut out,
        )
        .expect("generated files parse");
        for line in out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let record: Value = serde_json::from_slice(line).expect("parse writes JSON");
            assert!(record.get("parse_error").is_none(), "{record}");
            records.push(comparable(record));
        }
    }
    sort(records)
}

/// A record without `source.bucket` and `id`.
fn comparable(mut record: Value) -> Value {
    if let Some(map) = record.as_object_mut() {
        map.remove("id");
        if let Some(source) = map.get_mut("source").and_then(Value::as_object_mut) {
            source.remove("bucket");
        }
    }
    record
}

fn sort(mut records: Vec<Value>) -> Vec<Value> {
    records.sort_by_cached_key(|r| r.to_string());
    records
}

fn refs(files: &[LogFile]) -> Vec<&LogFile> {
    files.iter().collect()
}

// --- the world: moto, buckets, streams, settings ---------------------------------------------

struct World {
    moto: Moto,
    s3: aws_sdk_s3::Client,
    firehose: aws_sdk_firehose::Client,
}

impl World {
    async fn new() -> World {
        let moto = Moto::start();
        let s3 = s3_client(&moto).await;
        let firehose = firehose_client(&moto).await;
        create_bucket(&s3, AUDIT).await;
        World { moto, s3, firehose }
    }

    /// A delivery stream `name` into its own bucket `dest-<name>`.
    async fn stream(&self, name: &str) -> String {
        let dest = format!("dest-{name}");
        create_bucket(&self.s3, &dest).await;
        create_delivery_stream_to_bucket(&self.firehose, name, &dest).await;
        name.to_string()
    }

    /// Uploads in order, a few at a time (moto stamps each with its own upload time).
    async fn upload(&self, files: &[LogFile]) {
        for chunk in files.chunks(8) {
            let mut puts = tokio::task::JoinSet::new();
            for file in chunk {
                let (s3, key, body) = (self.s3.clone(), file.key.clone(), file.gz.clone());
                puts.spawn(async move { put_object(&s3, AUDIT, &key, body).await });
            }
            while let Some(done) = puts.join_next().await {
                done.expect("upload task");
            }
        }
    }

    /// The deployed wiring (handler, ledger, backfill) with these settings on top of the
    /// defaults: the stream, the audit bucket and `TREE` as the prefix.
    async fn live(&self, stream: &str, vars: &[(&str, &str)]) -> Live {
        let mut all: BTreeMap<String, String> = BTreeMap::from([
            ("DELIVERY_STREAM".into(), stream.into()),
            ("AUDIT_BUCKET".into(), AUDIT.into()),
            ("AUDIT_PREFIX".into(), TREE.trim_end_matches('/').into()),
            // These tests pin the walk against `parse` of each file alone; the session join has
            // its own (tests/sessions_moto.rs).
            ("SESSION_JOIN".into(), "false".into()),
        ]);
        for (name, value) in vars {
            all.insert(name.to_string(), value.to_string());
        }
        let settings = Settings::from_vars(|name| all.get(name).cloned()).expect("valid settings");
        let clients =
            settings::clients_from_config(&sdk_config(&self.moto.endpoint).await, &settings)
                .await
                .expect("clients for moto");
        live_from(settings, &clients)
    }

    /// What the stream delivered, comparable with [`expected`], and the ids.
    async fn delivered(&self, stream: &str) -> (Vec<Value>, Vec<String>) {
        let lines = delivered_lines(&self.s3, &format!("dest-{stream}")).await;
        let mut records = Vec::new();
        let mut ids = Vec::new();
        for line in lines {
            let record: Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            let id = record["id"]
                .as_str()
                .expect("every record has an id")
                .to_string();
            assert!(
                id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
                "{id}"
            );
            assert_eq!(record["source"]["bucket"], AUDIT);
            ids.push(id);
            records.push(comparable(record));
        }
        (sort(records), ids)
    }

    /// Asserts that the stream delivered exactly the records of `files`, each once.
    async fn assert_delivered_once(&self, stream: &str, files: &[&LogFile]) {
        let (records, ids) = self.delivered(stream).await;
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "a record was delivered twice");
        let want = expected(files);
        assert_eq!(records.len(), want.len(), "record count");
        assert!(records == want, "delivered records differ from parse's");
    }

    /// Keys of the state objects under a prefix of the audit bucket.
    async fn state_keys(&self, prefix: &str) -> Vec<String> {
        common::read_all_objects(&self.s3, AUDIT, prefix)
            .await
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    /// The binary with this world's AWS settings and the test settings.
    fn command(&self, args: &[&str], vars: &[(&str, &str)]) -> Command {
        let mut command = Command::new(BIN);
        command.args(args);
        common::isolate(&mut command, &self.moto);
        command
            .env("AUDIT_BUCKET", AUDIT)
            .env("AUDIT_PREFIX", TREE.trim_end_matches('/'))
            .env("SESSION_JOIN", "false")
            .envs(vars.iter().copied());
        command
    }
}

fn options() -> RunOptions {
    RunOptions {
        owner: new_owner(),
        ..RunOptions::default()
    }
}

async fn run(live: &Live, options: &RunOptions) -> Summary {
    live.backfill
        .as_ref()
        .expect("backfill configured")
        .run(&live.handler.forwarder, options, &mut |_| {})
        .await
        .unwrap_or_else(|e| panic!("backfill failed: {e}"))
}

/// The last stdout line of the binary: its summary.
fn summary_line(stdout: &[u8]) -> Value {
    let text = String::from_utf8_lossy(stdout);
    let line = text.lines().last().unwrap_or_else(|| panic!("no output"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("summary is not JSON ({e}): {line}"))
}

// --- tests -----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_from_a_start_time_sends_exactly_the_records_of_the_files_on_or_after_it_once() {
    let world = World::new().await;
    let stream = world.stream("start").await;
    let first = today() - 29;
    let mut files = corpus(
        ACCOUNT,
        REGION,
        first..=today(),
        &[0, 5, 23],
        &[13, 33, 53],
        &["connectionlog", "userlog", "useractivitylog"],
    );
    let start_day = today() - 15;
    let start_ms = start_day * MS_PER_DAY + 5 * HOUR;
    // Around the start: 04:53 and 04:59 hold only older records; 05:00 and 05:13 straddle it.
    for minute in [4 * 60 + 53, 4 * 60 + 59, 5 * 60] {
        files.push(log_file(
            ACCOUNT,
            REGION,
            "connectionlog",
            start_day * MS_PER_DAY + minute * MINUTE,
        ));
    }
    files.sort_by_key(|f| {
        parse_file_name(&f.key)
            .map(|n| n.file_time)
            .unwrap_or_default()
    });
    world.upload(&files).await;
    let wanted: Vec<&LogFile> = files
        .iter()
        .filter(|f| {
            let name = parse_file_name(&f.key).unwrap();
            redshift_audit_forwarder::settings::StartTime::parse(&name.file_time)
                .unwrap()
                .unix_seconds
                * 1000
                >= start_ms
        })
        .collect();
    assert_eq!(wanted.len(), 2 * 9 + 1 + 15 * 27, "test set-up");
    let start = format!("{}T05:00:00Z", day_label(start_day));
    let vars = [
        ("DELIVERY_STREAM", stream.as_str()),
        ("BACKFILL_START_TIME", start.as_str()),
    ];

    // A dry run lists exactly those files and writes nothing.
    let dry = world
        .command(&["backfill", "--dry-run"], &vars)
        .output()
        .expect("run the binary");
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let stdout = String::from_utf8_lossy(&dry.stdout).into_owned();
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    let (summary, listed) = lines.split_last().expect("a summary line");
    assert_eq!(summary["dry_run"], true);
    assert_eq!(summary["would_send"], wanted.len());
    let listed: BTreeSet<&str> = listed.iter().map(|l| l["key"].as_str().unwrap()).collect();
    let want_keys: BTreeSet<&str> = wanted.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(listed, want_keys);
    for line in lines.iter().take(3) {
        assert!(line["size"].as_u64().unwrap() > 0, "{line}");
        assert!(
            line["last_modified"].as_str().unwrap().ends_with('Z'),
            "{line}"
        );
    }
    assert!(
        world.state_keys(STATE_PREFIX).await.is_empty(),
        "a dry run writes no state"
    );
    assert!(world.delivered(&stream).await.0.is_empty());

    // No time at all: the walk stops before the first object, and says so.
    let out = world
        .command(&["backfill", "--max-duration", "0"], &vars)
        .output()
        .expect("run the binary");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = summary_line(&out.stdout);
    assert_eq!(summary["stopped"], "deadline", "{summary}");
    assert_eq!(summary["sent"], 0, "{summary}");
    assert!(summary["time_left_ms"].as_i64().unwrap() <= 0, "{summary}");
    assert!(world.delivered(&stream).await.0.is_empty());

    // The real run: the files on or after the start, each once, in one go.
    let out = world
        .command(&["backfill"], &vars)
        .output()
        .expect("run the binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("backfill: "),
        "progress on stderr: {stderr}"
    );
    let summary = summary_line(&out.stdout);
    assert_eq!(summary["stopped"], "complete", "{summary}");
    assert_eq!(summary["sent"], wanted.len(), "{summary}");
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["skipped_before_start"], 9 + 2, "{summary}");
    assert_eq!(summary["days_walked"], 16, "{summary}");
    world.assert_delivered_once(&stream, &wanted).await;

    // Nothing is left to send: the next run skips everything.
    let again = summary_line(
        &world
            .command(&["backfill"], &vars)
            .output()
            .expect("run the binary")
            .stdout,
    );
    assert_eq!(again["sent"], 0, "{again}");
    world.assert_delivered_once(&stream, &wanted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_walks_deliver_every_record_once_whatever_the_number_of_objects_per_run() {
    let world = World::new().await;
    let files = corpus(
        ACCOUNT,
        REGION,
        today() - 2..=today(),
        &[1, 13],
        &[13, 53],
        &["connectionlog", "userlog", "useractivitylog"],
    );
    world.upload(&files).await;
    let total = files.len() as u64;
    assert_eq!(total, 36);
    for k in [1u64, 2, 3, 5, 8, 13, 36, 50] {
        let stream = world.stream(&format!("budget-{k}")).await;
        let prefix = format!("state-{k}/");
        let live = world
            .live(&stream, &[("STATE_PREFIX", prefix.as_str())])
            .await;
        let mut runs = 0;
        let mut sent = 0;
        loop {
            runs += 1;
            assert!(runs <= total + 2, "k={k}: the walk makes progress");
            let summary = run(
                &live,
                &RunOptions {
                    max_objects: Some(k),
                    ..options()
                },
            )
            .await;
            sent += summary.sent;
            assert_eq!(summary.failed, 0);
            if summary.stopped == Stopped::Complete {
                assert!(summary.sent <= k);
                break;
            }
            assert_eq!(summary.stopped, Stopped::ObjectBudget, "k={k}");
            assert_eq!(summary.sent, k, "k={k}");
        }
        assert_eq!(sent, total, "k={k}");
        // Every object is last modified today, so the walk ends with today's listing: the run
        // that sends the last object also finds the walk complete.
        assert_eq!(runs, total.div_ceil(k), "k={k}");
        world.assert_delivered_once(&stream, &refs(&files)).await;
    }
}

/// A sink that sends each line in its own call (so an object is delivered line by line) and
/// fails for good after `left` lines: a process that dies in the middle of an object.
struct DyingSink {
    firehose: aws_sdk_firehose::Client,
    stream: String,
    left: Arc<AtomicI64>,
    stats: SinkStats,
}

impl Sink for DyingSink {
    async fn send<L>(&mut self, line: L) -> Result<(), SinkError>
    where
        L: AsRef<[u8]> + Send,
    {
        if self.left.fetch_sub(1, Ordering::SeqCst) <= 0 {
            return Err(SinkError::Internal("the process died".into()));
        }
        let mut data = line.as_ref().to_vec();
        data.push(b'\n');
        let record = FirehoseRecord::builder()
            .data(Blob::new(data))
            .build()
            .map_err(|e| SinkError::Internal(e.to_string()))?;
        self.firehose
            .put_record_batch()
            .delivery_stream_name(&self.stream)
            .records(record)
            .send()
            .await
            .map_err(|e| SinkError::Internal(e.to_string()))?;
        self.stats.lines += 1;
        Ok(())
    }

    async fn finish(self) -> Result<SinkStats, SinkError> {
        Ok(self.stats)
    }

    fn accepted(&self) -> Accepted {
        Accepted {
            lines: self.stats.lines,
            bytes: self.stats.payload_bytes,
        }
    }
}

/// Ids delivered more than once, and the keys whose records they are.
async fn duplicated_keys(world: &World, stream: &str) -> BTreeSet<String> {
    let lines = delivered_lines(&world.s3, &format!("dest-{stream}")).await;
    let mut by_id: BTreeMap<String, (u32, String)> = BTreeMap::new();
    for line in lines {
        let record: Value = serde_json::from_str(&line).expect("JSON");
        let entry = by_id
            .entry(record["id"].as_str().expect("id").to_string())
            .or_insert((
                0,
                record["source"]["key"].as_str().expect("key").to_string(),
            ));
        entry.0 += 1;
    }
    by_id
        .into_values()
        .filter(|(n, _)| *n > 1)
        .map(|(_, key)| key)
        .collect()
}

/// Every expected record was delivered at least once.
async fn assert_none_missing(world: &World, stream: &str, files: &[&LogFile]) {
    let (records, _) = world.delivered(stream).await;
    let delivered: BTreeSet<String> = records.iter().map(|r| r.to_string()).collect();
    for record in expected(files) {
        assert!(delivered.contains(&record.to_string()), "missing: {record}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_walk_whose_sink_dies_mid_object_resumes_it_without_duplicates() {
    let world = World::new().await;
    let files = corpus(
        ACCOUNT,
        REGION,
        today() - 1..=today(),
        &[2, 14],
        &[13, 53],
        &["connectionlog", "useractivitylog"],
    );
    world.upload(&files).await;
    for lines in [1i64, 5, 17] {
        let stream = world.stream(&format!("dies-{lines}")).await;
        let prefix = format!("state-dies-{lines}/");
        let live = world
            .live(&stream, &[("STATE_PREFIX", prefix.as_str())])
            .await;
        let left = Arc::new(AtomicI64::new(lines));
        let (firehose, name) = (world.firehose.clone(), stream.clone());
        let dying = Forwarder::new(
            live.handler.forwarder.filter.clone(),
            live.handler.forwarder.fetch.clone(),
            move || DyingSink {
                firehose: firehose.clone(),
                stream: name.clone(),
                left: left.clone(),
                stats: SinkStats::default(),
            },
        );
        let backfill = live.backfill.as_ref().expect("backfill");
        let mut in_flight = Vec::new();
        let died = backfill
            .run(&dying, &options(), &mut |event| {
                if let redshift_audit_forwarder::backfill::Event::Failed(object, _) = event {
                    in_flight.push(object.key.clone());
                }
            })
            .await
            .expect("the walk itself ends cleanly");
        assert_eq!(died.stopped, Stopped::Failed, "{died:?}");
        assert_eq!(died.failed, 1);
        assert_eq!(in_flight.len(), 1);
        // Each object has 3 lines: `lines` of them were delivered before the death.
        assert_eq!(died.sent as i64, lines / 3);

        let recovered = run(&live, &options()).await;
        assert_eq!(recovered.stopped, Stopped::Complete);
        assert_eq!(recovered.sent + died.sent, files.len() as u64);
        assert_none_missing(&world, &stream, &refs(&files)).await;
        // The failure saved the object's progress (every line the dying sink sent was
        // accepted, one call each): the next run skips those lines, so nothing repeats.
        let duplicated = duplicated_keys(&world, &stream).await;
        assert!(duplicated.is_empty(), "{duplicated:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_backfill_process_duplicates_at_most_the_object_in_flight() {
    let world = World::new().await;
    let files = corpus(
        ACCOUNT,
        REGION,
        today() - 2..=today(),
        &[1, 7, 13, 19],
        &[13, 53],
        &["connectionlog", "userlog", "useractivitylog"],
    );
    world.upload(&files).await;
    let stream = world.stream("killed").await;
    let mut child = world
        .command(&["backfill"], &[("DELIVERY_STREAM", stream.as_str())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the binary");
    let done = format!("{STATE_PREFIX}done/");
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no object was done within a minute"
        );
        if !world.state_keys(&done).await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        child.try_wait().expect("child status").is_none(),
        "the walk was still running when killed"
    );
    child.kill().expect("kill the backfill");
    let _ = child.wait();

    // Its lease outlives it; a run after the lease ran out takes over and finishes.
    let live = world.live(&stream, &[]).await;
    let mut backfill = live.backfill.clone().expect("backfill");
    backfill.clock = Arc::new(ManualClock::new(now_ms() + LEASE_TTL_MS + 1000));
    let held = run(&live, &options()).await;
    assert_eq!(held.stopped, Stopped::LeaseHeld, "{held:?}");
    let recovered = backfill
        .run(&live.handler.forwarder, &options(), &mut |_| {})
        .await
        .expect("recovery run");
    assert_eq!(recovered.stopped, Stopped::Complete);
    assert!(recovered.took_over_from.is_some(), "{recovered:?}");
    assert!(recovered.sent > 0 && recovered.sent < files.len() as u64);
    assert_none_missing(&world, &stream, &refs(&files)).await;
    let duplicated = duplicated_keys(&world, &stream).await;
    assert!(duplicated.len() <= 1, "{duplicated:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_file_in_an_older_partition_is_sent_by_the_next_run() {
    let world = World::new().await;
    let stream = world.stream("late").await;
    let mut files = corpus(
        ACCOUNT,
        REGION,
        today() - 4..=today(),
        &[3],
        &[53],
        &["connectionlog", "userlog"],
    );
    world.upload(&files).await;
    let live = world.live(&stream, &[]).await;
    assert_eq!(run(&live, &options()).await.sent, files.len() as u64);
    let ledger = live.ledger.as_ref().expect("ledger");
    let cursor = ledger.cursor(AUDIT, TREE).await.unwrap().expect("cursor");
    assert_eq!(cursor.value.resume_day, today());
    assert!(cursor.value.position.is_some());

    // Yesterday's partition gets a file after the cursor passed it.
    let late = log_file(
        ACCOUNT,
        REGION,
        "useractivitylog",
        (today() - 1) * MS_PER_DAY + 11 * HOUR + 53 * MINUTE,
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    world.upload(std::slice::from_ref(&late)).await;
    let mut sent = Vec::new();
    let summary = live
        .backfill
        .as_ref()
        .unwrap()
        .run(&live.handler.forwarder, &options(), &mut |e| {
            if let redshift_audit_forwarder::backfill::Event::Sent(r) = e {
                sent.push(r.key.clone());
            }
        })
        .await
        .unwrap();
    assert_eq!(sent, vec![late.key.clone()]);
    assert_eq!(summary.days_walked, 2, "today and the look-back day");
    files.push(late);
    world.assert_delivered_once(&stream, &refs(&files)).await;
}

/// A direct S3 notification as S3 sends it: the key URL-encoded, the ETag without quotes.
fn s3_event(objects: &[(&str, &str)]) -> Value {
    let records: Vec<Value> = objects
        .iter()
        .map(|(key, etag)| common::s3_notification_record(AUDIT, &key.replace(':', "%3A"), etag))
        .collect();
    json!({ "Records": records })
}

async fn etag(world: &World, key: &str) -> String {
    world
        .s3
        .head_object()
        .bucket(AUDIT)
        .key(key)
        .send()
        .await
        .expect("head")
        .e_tag()
        .expect("etag")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_path_and_backfill_never_send_the_same_object_twice() {
    let world = World::new().await;
    let stream = world.stream("shared").await;
    let mut files = corpus(
        ACCOUNT,
        REGION,
        today() - 1..=today(),
        &[4],
        &[13, 53],
        &["connectionlog", "useractivitylog"],
    );
    world.upload(&files).await;
    let live = world.live(&stream, &[]).await;

    // Live first: two notifications arrive before the backfill runs.
    let (a, b) = (files[0].key.clone(), files[5].key.clone());
    let event = s3_event(&[(&a, &etag(&world, &a).await), (&b, &etag(&world, &b).await)]);
    let response = live
        .handler
        .handle_with(&event, live.context(None))
        .await
        .expect("live invocation");
    assert_eq!(response["receipts"].as_array().unwrap().len(), 2);
    // Then the schedule fires (the Lambda path: an EventBridge Scheduled Event and a deadline).
    let scheduled: Value =
        serde_json::from_str(include_str!("../events/scheduled.json")).expect("sample event");
    let summary = live
        .handler
        .handle_with(&scheduled, live.context(Some(now_ms() + 300_000)))
        .await
        .expect("scheduled invocation");
    assert_eq!(summary["stopped"], "complete", "{summary}");
    assert_eq!(summary["skipped_done"], 2, "{summary}");
    assert_eq!(summary["sent"], files.len() - 2, "{summary}");
    assert!(
        summary["time_left_ms"].as_i64().unwrap() > 200_000,
        "{summary}"
    );
    world.assert_delivered_once(&stream, &refs(&files)).await;

    // Backfill first: a file whose notification comes late.
    let late = log_file(
        ACCOUNT,
        REGION,
        "userlog",
        today() * MS_PER_DAY + 6 * MINUTE,
    );
    world.upload(std::slice::from_ref(&late)).await;
    assert_eq!(run(&live, &options()).await.sent, 1);
    let event = s3_event(&[(&late.key, &etag(&world, &late.key).await)]);
    let response = live
        .handler
        .handle_with(&event, live.context(None))
        .await
        .expect("live invocation");
    assert_eq!(response["receipts"], json!([]), "{response}");
    assert_eq!(
        response["skipped"][0]["key"],
        late.key.as_str(),
        "{response}"
    );
    assert_eq!(response["skipped"][0]["via"], "backfill");
    files.push(late.clone());
    world.assert_delivered_once(&stream, &refs(&files)).await;

    // The same key overwritten with new content is a new object: sent again.
    let rewritten = LogFile {
        key: late.key.clone(),
        gz: common::gzip(&log_text(
            "userlog",
            today() * MS_PER_DAY + 6 * MINUTE,
            424_242,
        )),
    };
    world.upload(std::slice::from_ref(&rewritten)).await;
    let event = s3_event(&[(&late.key, &etag(&world, &late.key).await)]);
    let response = live
        .handler
        .handle_with(&event, live.context(None))
        .await
        .expect("live invocation");
    assert_eq!(
        response["receipts"].as_array().unwrap().len(),
        1,
        "{response}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_backfills_started_together_one_walks_and_the_other_returns_at_once() {
    let world = World::new().await;
    let stream = world.stream("together").await;
    let files = corpus(
        ACCOUNT,
        REGION,
        today() - 2..=today(),
        &[0, 6, 12, 18],
        &[13, 53],
        &["connectionlog", "userlog", "useractivitylog"],
    );
    world.upload(&files).await;
    let vars = [("DELIVERY_STREAM", stream.as_str())];
    let spawn = || {
        world
            .command(&["backfill"], &vars)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the binary")
    };
    let (first, second) = (spawn(), spawn());
    let outputs = [
        first.wait_with_output().expect("first"),
        second.wait_with_output().expect("second"),
    ];
    let summaries: Vec<Value> = outputs
        .iter()
        .map(|o| {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            summary_line(&o.stdout)
        })
        .collect();
    let stopped: BTreeSet<&str> = summaries
        .iter()
        .map(|s| s["stopped"].as_str().unwrap())
        .collect();
    assert_eq!(
        stopped,
        BTreeSet::from(["complete", "lease_held"]),
        "{summaries:?}"
    );
    let held = summaries
        .iter()
        .find(|s| s["stopped"] == "lease_held")
        .unwrap();
    assert_eq!(held["list_calls"], 0, "returned before any listing: {held}");
    assert_eq!(held["sent"], 0);
    assert!(
        held["lease_owner"].as_str().is_some_and(|o| !o.is_empty()),
        "{held}"
    );
    world.assert_delivered_once(&stream, &refs(&files)).await;

    // A walker that died holding the lease: held until it expires, then taken over.
    let more = log_file(
        ACCOUNT,
        REGION,
        "userlog",
        today() * MS_PER_DAY + 2 * MINUTE,
    );
    world.upload(std::slice::from_ref(&more)).await;
    let live = world.live(&stream, &[]).await;
    let ledger = live.ledger.as_ref().unwrap();
    let now = now_ms();
    assert!(matches!(
        ledger
            .acquire_lease("crashed-walker", now, now + 60_000)
            .await
            .unwrap(),
        LeaseOutcome::Acquired(_)
    ));
    let held = run(&live, &options()).await;
    assert_eq!(held.stopped, Stopped::LeaseHeld);
    assert_eq!(held.lease_owner.as_deref(), Some("crashed-walker"));
    let mut later = live.backfill.clone().unwrap();
    later.clock = Arc::new(ManualClock::new(now + 60_000));
    let taken = later
        .run(&live.handler.forwarder, &options(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(taken.stopped, Stopped::Complete);
    assert_eq!(taken.took_over_from.as_deref(), Some("crashed-walker"));
    assert_eq!(taken.sent, 1);
    let mut all = refs(&files);
    all.push(&more);
    world.assert_delivered_once(&stream, &all).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_accounts_and_regions_under_aws_logs_are_walked_completely() {
    let world = World::new().await;
    let stream = world.stream("accounts").await;
    let trees = [
        ("111111111111", "us-east-1"),
        ("111111111111", "eu-west-1"),
        ("222222222222", "us-gov-west-1"),
        ("222222222222", "ap-southeast-2"),
    ];
    let mut files = Vec::new();
    for (account, region) in trees {
        files.extend(corpus(
            account,
            region,
            today() - 2..=today(),
            &[2],
            &[13, 53],
            &["connectionlog", "useractivitylog"],
        ));
    }
    world.upload(&files).await;
    // Beside them: CloudTrail, a Redshift file of an unselected folder shape, the state.
    put_object(
        &world.s3,
        AUDIT,
        "AWSLogs/111111111111/CloudTrail/us-east-1/2024/03/01/111111111111_CloudTrail_us-east-1_20240301T0000Z_x.json.gz",
        common::gzip("{}"),
    )
    .await;
    put_object(&world.s3, AUDIT, "AWSLogs/readme.txt", b"x".to_vec()).await;
    let live = world.live(&stream, &[("AUDIT_PREFIX", "AWSLogs")]).await;
    let summary = run(&live, &options()).await;
    assert_eq!(summary.trees, 4, "{summary:?}");
    assert_eq!(summary.sent, files.len() as u64);
    assert_eq!(summary.days_walked, 4 * 3);
    world.assert_delivered_once(&stream, &refs(&files)).await;
    let ledger = live.ledger.as_ref().unwrap();
    for (account, region) in trees {
        let tree = format!("AWSLogs/{account}/redshift/{region}/");
        assert!(
            ledger.cursor(AUDIT, &tree).await.unwrap().is_some(),
            "one cursor per tree: {tree}"
        );
    }
    assert_eq!(run(&live, &options()).await.sent, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_writes_are_conditional_on_s3_as_the_ledger_expects() {
    // Moto 5.2.5 answers like S3: 412 PreconditionFailed for If-None-Match: * on an existing key
    // and for If-Match with a stale ETag, 404 NoSuchKey for If-Match on a missing key.
    let world = World::new().await;
    let state = StateBucket {
        s3: BucketClient::new(world.s3.clone(), REGION, None),
        bucket: AUDIT.into(),
        prefix: STATE_PREFIX.into(),
    };
    let key = format!("{STATE_PREFIX}probe.json");
    let first = state
        .put(&key, b"1".to_vec(), Precondition::IfAbsent)
        .await
        .expect("create");
    let again = state.put(&key, b"2".to_vec(), Precondition::IfAbsent).await;
    assert!(
        matches!(again, Err(StateError::Conflict { .. })),
        "{again:?}"
    );
    let second = state
        .put(&key, b"3".to_vec(), Precondition::IfMatch(first.clone()))
        .await
        .expect("matching ETag");
    let stale = state
        .put(&key, b"4".to_vec(), Precondition::IfMatch(first))
        .await;
    assert!(
        matches!(stale, Err(StateError::Conflict { .. })),
        "{stale:?}"
    );
    let missing = state
        .put(
            &format!("{STATE_PREFIX}gone.json"),
            b"5".to_vec(),
            Precondition::IfMatch(second.clone()),
        )
        .await;
    assert!(
        matches!(missing, Err(StateError::Conflict { .. })),
        "{missing:?}"
    );
    let stored = state.get(&key).await.unwrap().expect("stored");
    assert_eq!((stored.body, stored.etag), (b"3".to_vec(), second));
    assert!(state.get("absent.json").await.unwrap().is_none());

    // Two walkers racing for a free lease: exactly one gets it.
    let ledger = ledger_in(state);
    let now = now_ms();
    let (a, b) = tokio::join!(
        ledger.acquire_lease("a", now, now + 60_000),
        ledger.acquire_lease("b", now, now + 60_000)
    );
    let acquired = [a.unwrap(), b.unwrap()]
        .iter()
        .filter(|o| matches!(o, LeaseOutcome::Acquired(_)))
        .count();
    assert_eq!(acquired, 1);
}

// --- benchmark (not a test): `scripts/bench_backfill.sh` --------------------------------------

/// Requests in moto's log after line `from` whose request line contains every one of `parts`.
fn count_requests(log: &str, from: usize, parts: &[&str]) -> usize {
    log.lines()
        .skip(from)
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: scripts/bench_backfill.sh"]
async fn bench_listing_cost_of_a_walk_over_10000_objects() {
    let objects: usize = std::env::var("BENCH_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let days: i64 = 7;
    let world = World::new().await;
    let stream = world.stream("bench").await;
    create_bucket(&world.s3, "state-bucket").await;
    // Files spread evenly over `days` days, several log types and minutes an hour.
    let per_day = objects.div_ceil(days as usize);
    let mut files = Vec::with_capacity(objects);
    'fill: for day in today() - days + 1..=today() {
        for i in 0..per_day {
            if files.len() == objects {
                break 'fill;
            }
            let log_type = ["connectionlog", "userlog", "useractivitylog"][i % 3];
            let slot = (i / 3) as i64; // minutes of the day
            files.push(log_file(
                ACCOUNT,
                REGION,
                log_type,
                day * MS_PER_DAY + slot * MINUTE,
            ));
        }
    }
    let began = Instant::now();
    world.upload(&files).await;
    eprintln!(
        "uploaded {} objects in {:.1} s",
        files.len(),
        began.elapsed().as_secs_f64()
    );
    let live = world
        .live(&stream, &[("STATE_BUCKET", "state-bucket")])
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = std::fs::read_to_string(&world.moto.log_path)
        .unwrap_or_default()
        .lines()
        .count();
    let began = Instant::now();
    let summary = run(&live, &options()).await;
    let elapsed = began.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = std::fs::read_to_string(&world.moto.log_path).unwrap_or_default();
    assert_eq!(summary.sent, files.len() as u64, "{summary:?}");
    let lists = count_requests(&log, before, &["GET /audit-bucket", "list-type=2"]);
    let state_puts = count_requests(&log, before, &["PUT /state-bucket/"]);
    let state_gets = count_requests(&log, before, &["GET /state-bucket/"]);
    let bodies = count_requests(&log, before, &["GET /audit-bucket/AWSLogs/"]);
    let firehose = count_requests(&log, before, &["POST / "]);
    let n = files.len() as f64;
    let minimum = (files.len().div_ceil(1000)) as i64 + days;
    let line = json!({
        "objects": files.len(),
        "days": days,
        "list_requests": lists,
        "list_minimum_pages_plus_days": minimum,
        "list_requests_per_10000_objects": lists as f64 * 10_000.0 / n,
        "list_over_minimum": lists as f64 / minimum as f64,
        "state_writes": state_puts,
        "state_writes_per_object": state_puts as f64 / n,
        "state_reads_per_object": state_gets as f64 / n,
        "object_gets": bodies,
        "firehose_calls": firehose,
        "walk_seconds": elapsed,
        "objects_per_second": n / elapsed,
        "summary_list_calls": summary.list_calls,
        "summary_state_writes": summary.state_writes,
        "summary_state_reads": summary.state_reads,
    });
    println!("BENCH {line}");
    // The budget: listing within a few percent of the minimum, at most four state
    // writes per object (its claim and the claim's release, its done marker, the cursor).
    assert!(lists as i64 <= minimum + 5, "{line}");
    assert!(state_puts as f64 / n <= 4.0 + 10.0 / n, "{line}");
    // The summary counts the state calls made, as moto saw them.
    assert_eq!(summary.state_writes, state_puts as u64, "{line}");
    assert_eq!(summary.state_reads, state_gets as u64, "{line}");
}
