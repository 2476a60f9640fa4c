//! Forged and corrupt state objects, and an event naming another bucket, against a private moto
//! server and the real binary (issue 13 "Prove it", issue 12 item 8).
//!
//! For each forged or corrupt state object: the walk reports it naming the key, fails (exit
//! status 1, or a non-retryable `BackfillStateRefused` Lambda error) where the object is a cursor
//! or the lease, and once the state is repaired (the object deleted) every record is delivered,
//! each once. A corrupt or refused done marker does not fail anything: it counts as absent.
//!
//! What no check can catch: a done marker for an object's current ETag written by whoever can
//! write the state prefix looks exactly like the function's own, and hides that object. The fix
//! is where the state lives: the template's state bucket of its own, which the log writers
//! cannot write. These tests keep the state in the audit bucket (the default without
//! `STATE_BUCKET`) because that is where such forgeries come from.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use common::{
    create_bucket, create_delivery_stream_to_bucket, delivered_lines, firehose_client, put_object,
    s3_client, sdk_config, Moto,
};
use redshift_audit_forwarder::aws::clients_from_config;
use redshift_audit_forwarder::key::parse_file_name;
use redshift_audit_forwarder::ledger::Ledger;
use redshift_audit_forwarder::output::Provenance;
use redshift_audit_forwarder::runtime::{diagnostic, live_from, Live};
use redshift_audit_forwarder::settings::Settings;
use redshift_audit_forwarder::time::{date_of_day, day_label, MS_PER_DAY};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_redshift-audit-forwarder");
const AUDIT: &str = "audit-bucket";
const FOREIGN: &str = "attacker-bucket";
const STREAM: &str = "audit-stream";
const DEST: &str = "dest-bucket";
const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const TREE: &str = "AWSLogs/123456789012/redshift/us-east-1/";
const MINUTE: i64 = 60_000;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn today() -> i64 {
    now_ms().div_euclid(MS_PER_DAY)
}

/// One generated connection log.
struct LogFile {
    key: String,
    gz: Vec<u8>,
}

/// A connection log of `day` at `minute` past midnight, three lines unique to it.
fn log_file(day: i64, minute: i64) -> LogFile {
    let (y, m, d) = date_of_day(day).expect("a calendar day");
    let key = format!(
        "{TREE}{y:04}/{m:02}/{d:02}/{ACCOUNT}_redshift_{REGION}_analytics-prod_connectionlog_{}T{:02}:{:02}.gz",
        day_label(day),
        minute / 60,
        minute % 60
    );
    let mut text = String::new();
    for i in 0..3 {
        let pid = 10_000 + minute * 10 + i + day % 1000 * 100_000;
        text.push_str(&format!(
            "authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |{pid}|dev |rdsdb |Ident |0| | |0| | |\n"
        ));
    }
    LogFile {
        gz: common::gzip(&text),
        key,
    }
}

/// Six files over yesterday and today.
fn files() -> Vec<LogFile> {
    let mut files = Vec::new();
    for day in [today() - 1, today()] {
        for minute in [13, 73, 133] {
            files.push(log_file(day, minute));
        }
    }
    files
}

/// A record without what depends on the bucket (`id`, `source.bucket`).
fn comparable(mut record: Value) -> Value {
    if let Some(map) = record.as_object_mut() {
        map.remove("id");
        if let Some(source) = map.get_mut("source").and_then(Value::as_object_mut) {
            source.remove("bucket");
        }
    }
    record
}

/// What `parse` gives for the files, comparable with delivered records, sorted.
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
            records.push(comparable(serde_json::from_slice(line).expect("JSON")));
        }
    }
    records.sort_by_cached_key(|r| r.to_string());
    records
}

struct World {
    moto: Moto,
    s3: aws_sdk_s3::Client,
    dir: PathBuf,
}

impl World {
    async fn new(test: &str) -> World {
        let moto = Moto::start();
        let s3 = s3_client(&moto).await;
        create_bucket(&s3, AUDIT).await;
        create_bucket(&s3, DEST).await;
        create_delivery_stream_to_bucket(&firehose_client(&moto).await, STREAM, DEST).await;
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("state_forgery")
            .join(format!("{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch folder");
        World { moto, s3, dir }
    }

    async fn upload(&self, files: &[LogFile]) {
        for file in files {
            put_object(&self.s3, AUDIT, &file.key, file.gz.clone()).await;
        }
    }

    /// The deployed wiring in this process, with the binary's settings.
    async fn live(&self) -> Live {
        let vars = BTreeMap::from([
            ("DELIVERY_STREAM", STREAM),
            ("AUDIT_BUCKET", AUDIT),
            ("AUDIT_PREFIX", TREE.trim_end_matches('/')),
        ]);
        let settings = Settings::from_vars(|name| vars.get(name).map(|v| v.to_string()))
            .expect("valid settings");
        let clients = clients_from_config(&sdk_config(&self.moto.endpoint).await, &settings)
            .await
            .expect("clients for moto");
        live_from(settings, &clients)
    }

    async fn ledger(&self) -> Ledger {
        self.live().await.ledger.expect("a state bucket")
    }

    /// The binary with this world's settings.
    fn run(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        let mut command = Command::new(BIN);
        command.args(args);
        common::isolate(&mut command, &self.moto);
        command
            .env("DELIVERY_STREAM", STREAM)
            .env("AUDIT_BUCKET", AUDIT)
            .env("AUDIT_PREFIX", TREE.trim_end_matches('/'))
            .envs(vars.iter().copied())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"))
    }

    /// `backfill`, expected to succeed: its summary line.
    fn backfill_ok(&self) -> Value {
        let out = self.run(&["backfill"], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "backfill failed: {stderr}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().last().expect("a summary line");
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    /// `backfill`, expected to fail with exit status 1: its stderr.
    fn backfill_fails(&self) -> String {
        let out = self.run(&["backfill"], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            String::from_utf8_lossy(&out.stdout).trim().is_empty(),
            "no summary of success: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
    }

    async fn forge(&self, key: &str, body: impl Into<Vec<u8>>) {
        put_object(&self.s3, AUDIT, key, body).await;
    }

    async fn read(&self, key: &str) -> Value {
        let body = self
            .s3
            .get_object()
            .bucket(AUDIT)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get {key}: {e:?}"))
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes();
        serde_json::from_slice(&body).expect("JSON state")
    }

    /// The repair the error messages name.
    async fn delete(&self, key: &str) {
        self.s3
            .delete_object()
            .bucket(AUDIT)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("delete {key}: {e:?}"));
    }

    async fn delivered(&self) -> Vec<Value> {
        let mut records: Vec<Value> = delivered_lines(&self.s3, DEST)
            .await
            .iter()
            .map(|l| serde_json::from_str(l).expect("JSON record"))
            .collect();
        let ids: BTreeSet<String> = records.iter().map(|r| r["id"].to_string()).collect();
        assert_eq!(ids.len(), records.len(), "a record was delivered twice");
        records = records.into_iter().map(comparable).collect();
        records.sort_by_cached_key(|r| r.to_string());
        records
    }

    async fn assert_delivered_once(&self, files: &[LogFile]) {
        let want = expected(&files.iter().collect::<Vec<_>>());
        let got = self.delivered().await;
        assert_eq!(got.len(), want.len(), "record count");
        assert!(got == want, "delivered records differ from parse's");
    }

    fn event_file(&self, name: &str, event: &Value) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, event.to_string()).expect("write the event");
        path
    }

    fn moto_log(&self) -> String {
        std::fs::read_to_string(&self.moto.log_path).unwrap_or_default()
    }
}

/// A direct S3 notification for `key` in `bucket`, as S3 sends it (key encoded, ETag bare).
fn s3_event(bucket: &str, key: &str, etag: &str) -> Value {
    json!({"Records": [common::s3_notification_record(bucket, &key.replace(':', "%3A"), etag)]})
}

async fn etag(world: &World, bucket: &str, key: &str) -> String {
    world
        .s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("head")
        .e_tag()
        .expect("etag")
        .to_string()
}

fn assert_names(stderr: &str, key: &str, says: &[&str]) {
    assert!(stderr.contains(&format!("s3://{AUDIT}/{key}")), "{stderr}");
    for s in says {
        assert!(stderr.contains(s), "{s:?} not in: {stderr}");
    }
}

// --- the lease -----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_expires_in_the_year_292278994_fails_every_walk_until_deleted() {
    let world = World::new("far-lease").await;
    let files = files();
    world.upload(&files).await;
    let live = world.live().await;
    let lease_key = live.ledger.as_ref().unwrap().lease_key();
    let forged = json!({
        "owner": "attacker",
        "acquired_at_ms": now_ms(),
        "expires_at_ms": i64::MAX,
        "released": false
    });
    world.forge(&lease_key, forged.to_string()).await;

    // The command line: exit status 1 and the key, never `lease_held` with status 0.
    let stderr = world.backfill_fails();
    assert_names(
        &stderr,
        &lease_key,
        &["further from now", "delete it once no backfill is running"],
    );
    assert!(!stderr.contains("lease_held"), "{stderr}");
    // The Lambda path: a failed invocation Lambda does not retry, of its own kind.
    let scheduled: Value =
        serde_json::from_str(include_str!("../events/scheduled.json")).expect("sample");
    let err = live
        .handler
        .handle_with(&scheduled, live.context(Some(now_ms() + 300_000)))
        .await
        .expect_err("the scheduled invocation fails");
    assert!(!err.is_retryable(), "{err}");
    assert_eq!(
        diagnostic(&err).error_type,
        "NotRetryable.BackfillStateRefused"
    );
    assert!(err.to_string().contains(&lease_key), "{err}");
    assert!(world.delivered().await.is_empty());

    // Repaired: everything is sent, once.
    world.delete(&lease_key).await;
    let summary = world.backfill_ok();
    assert_eq!(summary["sent"], files.len(), "{summary}");
    assert_eq!(summary["state_refused"], 0, "{summary}");
    world.assert_delivered_once(&files).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_renewed_by_one_owner_for_days_is_a_failure_not_lease_held() {
    let world = World::new("held-lease").await;
    let files = files();
    world.upload(&files).await;
    let lease_key = world.ledger().await.lease_key();
    // Expiring soon, as a renewing holder keeps it, but taken two days ago: no walk is that long.
    let forged = json!({
        "v": 1,
        "owner": "attacker",
        "acquired_at_ms": now_ms() - 2 * MS_PER_DAY,
        "expires_at_ms": now_ms() + 10 * MINUTE,
        "released": false
    });
    world.forge(&lease_key, forged.to_string()).await;
    let stderr = world.backfill_fails();
    assert_names(
        &stderr,
        &lease_key,
        &["held by \"attacker\"", "longer than any walk"],
    );
    assert!(world.delivered().await.is_empty());

    world.delete(&lease_key).await;
    assert_eq!(world.backfill_ok()["sent"], files.len());
    world.assert_delivered_once(&files).await;
}

// --- cursors -------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_moved_into_the_future_stops_the_walk_and_late_files_are_sent_once_repaired() {
    let world = World::new("future-cursor").await;
    let files = files();
    world.upload(&files[..3]).await;
    assert_eq!(world.backfill_ok()["sent"], 3);
    let cursor_key = world.ledger().await.cursor_key(AUDIT, TREE);
    let mut cursor = world.read(&cursor_key).await;
    assert_eq!(cursor["v"], 1, "written with its schema version: {cursor}");
    // Every later object would sort before this position and never be sent.
    cursor["position"]["last_modified_ms"] = json!(now_ms() + 365 * MS_PER_DAY);
    world.forge(&cursor_key, cursor.to_string()).await;
    world.upload(&files[3..]).await;

    let stderr = world.backfill_fails();
    assert_names(
        &stderr,
        &cursor_key,
        &["position.last_modified_ms", "is in the future", "delete it"],
    );
    world.assert_delivered_once(&files[..3]).await;

    world.delete(&cursor_key).await;
    let summary = world.backfill_ok();
    assert_eq!(summary["sent"], 3, "{summary}");
    assert_eq!(summary["skipped_done"], 3, "{summary}");
    world.assert_delivered_once(&files).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_with_the_smallest_resume_day_fails_instead_of_wrapping_the_days() {
    let world = World::new("min-day").await;
    let files = files();
    world.upload(&files).await;
    let cursor_key = world.ledger().await.cursor_key(AUDIT, TREE);
    let forged = json!({
        "v": 1,
        "bucket": AUDIT,
        "prefix": TREE,
        "position": null,
        "last_modified": null,
        "resume_day": i64::MIN,
        "resume_date": "1970-01-01",
        "updated_at": "2024-03-01T00:00:00.000Z",
        "owner": "attacker"
    });
    world.forge(&cursor_key, forged.to_string()).await;
    let stderr = world.backfill_fails();
    assert_names(
        &stderr,
        &cursor_key,
        &["resume_day -9223372036854775808", "delete it"],
    );
    assert!(world.delivered().await.is_empty());

    world.delete(&cursor_key).await;
    assert_eq!(world.backfill_ok()["sent"], files.len());
    world.assert_delivered_once(&files).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_cursor_stops_the_walk_rather_than_restarting_from_the_beginning() {
    let world = World::new("corrupt-cursor").await;
    let files = files();
    world.upload(&files).await;
    let cursor_key = world.ledger().await.cursor_key(AUDIT, TREE);
    world.forge(&cursor_key, "{\"bucket\": \"audit-bu").await;
    let stderr = world.backfill_fails();
    assert_names(&stderr, &cursor_key, &["not JSON", "delete it"]);
    // Too large to be one of ours: refused before its body is read.
    world.forge(&cursor_key, vec![b' '; 1 << 20]).await;
    let stderr = world.backfill_fails();
    assert_names(
        &stderr,
        &cursor_key,
        &["1048576 bytes, more than the 65536"],
    );
    assert!(world.delivered().await.is_empty());
    world.delete(&cursor_key).await;
    assert_eq!(world.backfill_ok()["sent"], files.len());
    world.assert_delivered_once(&files).await;
}

// --- done markers --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_and_forged_done_markers_count_as_absent_on_both_paths() {
    let world = World::new("markers").await;
    let files = files();
    world.upload(&files).await;
    let ledger = world.ledger().await;
    let done_key = |file: &LogFile| ledger.done_key(AUDIT, &file.key);
    let marker = |bucket: &str, key: &str, etag: &str| {
        json!({
            "v": 1, "bucket": bucket, "key": key, "etag": etag,
            "done_at": "2024-03-01T00:00:00.000Z", "records": 3, "via": "live"
        })
        .to_string()
    };
    // Not JSON: it used to stop the walk at this object for good.
    world
        .forge(&done_key(&files[0]), "\u{1f}\u{8b}garbage")
        .await;
    // A marker that names another bucket, another key, or carries no ETag.
    let etag1 = etag(&world, AUDIT, &files[1].key).await;
    world
        .forge(&done_key(&files[1]), marker(FOREIGN, &files[1].key, &etag1))
        .await;
    let etag2 = etag(&world, AUDIT, &files[2].key).await;
    world
        .forge(&done_key(&files[2]), marker(AUDIT, &files[3].key, &etag2))
        .await;
    world
        .forge(&done_key(&files[3]), marker(AUDIT, &files[3].key, "forged"))
        .await;

    // The live path sends the object anyway.
    let live = world.live().await;
    let response = live
        .handler
        .handle_with(&s3_event(AUDIT, &files[1].key, &etag1), live.context(None))
        .await
        .expect("live invocation");
    assert_eq!(
        response["receipts"].as_array().map(Vec::len),
        Some(1),
        "{response}"
    );

    // The backfill sends the rest, reports the three refused markers, and succeeds.
    let summary = world.backfill_ok();
    assert_eq!(summary["stopped"], "complete", "{summary}");
    assert_eq!(summary["state_refused"], 3, "{summary}");
    assert_eq!(summary["skipped_done"], 1, "{summary}");
    assert_eq!(summary["sent"], files.len() - 1, "{summary}");
    let errors = summary["errors"].to_string();
    for file in [&files[0], &files[2], &files[3]] {
        assert!(errors.contains(&done_key(file)), "{errors}");
    }
    world.assert_delivered_once(&files).await;

    // The markers written since replaced the bad ones.
    let since = format!("{}T00:00:00Z", day_label(today() - 1));
    let again = world.run(&["backfill", "--since", &since], &[]);
    assert!(again.status.success());
    let stdout = String::from_utf8_lossy(&again.stdout);
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["state_refused"], 0, "{summary}");
    assert_eq!(summary["skipped_done"], files.len(), "{summary}");
    for file in &files {
        assert_eq!(world.read(&done_key(file)).await["v"], 1);
    }
    world.assert_delivered_once(&files).await;
}

// --- events --------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_naming_another_bucket_is_refused_and_never_fetched() {
    let world = World::new("foreign").await;
    create_bucket(&world.s3, FOREIGN).await;
    let file = log_file(today(), 13);
    put_object(&world.s3, FOREIGN, &file.key, file.gz.clone()).await;
    let tag = etag(&world, FOREIGN, &file.key).await;
    let event = world.event_file("foreign.json", &s3_event(FOREIGN, &file.key, &tag));
    let gets = || {
        world
            .moto_log()
            .lines()
            .filter(|l| l.contains(&format!("\"GET /{FOREIGN}/")))
            .count()
    };

    let out = world.run(&["invoke", event.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "a skip, not a failure: {stderr}");
    let response: Value = serde_json::from_slice(&out.stdout).expect("a JSON response");
    assert_eq!(response, json!({"receipts": []}));
    let warned: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("WARN") && l.contains(FOREIGN))
        .collect();
    assert_eq!(warned.len(), 1, "one line naming the bucket: {stderr}");
    assert!(warned[0].contains("ALLOWED_BUCKETS"), "{}", warned[0]);
    assert_eq!(gets(), 0, "never fetched");
    assert!(world.delivered().await.is_empty());

    // Listed in ALLOWED_BUCKETS, the same event is fetched and sent: the check above could fail.
    let allowed = format!("{AUDIT},{FOREIGN}");
    let out = world.run(
        &["invoke", event.to_str().unwrap()],
        &[("ALLOWED_BUCKETS", allowed.as_str())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Moto logs a request after answering it: give its log a moment.
    for _ in 0..50 {
        if gets() > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(gets() > 0, "fetched once allowed: {}", world.moto_log());
    world
        .assert_delivered_once(std::slice::from_ref(&file))
        .await;
}
