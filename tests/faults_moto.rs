//! Faults end to end against a private moto server, through the binary's `backfill`:
//! a large plain object forwarded in several `--max-duration`-limited runs (progress within the
//! object, stops between Firehose calls), and a poison object set aside after `MAX_ATTEMPTS`,
//! listed by `--dry-run` and tried again by `--retry-set-aside`.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{
    create_bucket, create_delivery_stream_to_bucket, firehose_client, gzip, put_object,
    read_all_objects, s3_client, Moto,
};
use serde_json::Value;

fn bin() -> String {
    common::faults_bin()
}
const AUDIT: &str = "audit-bucket";
const TREE: &str = "AWSLogs/123456789012/redshift/us-east-1/";
const STATE_PREFIX: &str = "redshift-audit-forwarder/";
const MS_PER_DAY: i64 = 86_400_000;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A key in today's partition for a file of `log_type` at `hh:mm` (today's files are always in
/// the walk).
fn key_today(log_type: &str, hhmm: &str) -> String {
    let day = now_ms().div_euclid(MS_PER_DAY);
    let label = redshift_audit_forwarder::time::day_label(day);
    format!(
        "{TREE}{}/123456789012_redshift_us-east-1_analytics-prod_{log_type}_{label}T{hhmm}.gz",
        label.replace('-', "/")
    )
}

/// About `bytes` of user activity log text, statements of 200 to 1,200 bytes, every record
/// distinct; and its record count.
fn activity_log(bytes: usize) -> (Vec<u8>, usize) {
    let mut text = Vec::with_capacity(bytes + 2048);
    let mut records = 0;
    while text.len() < bytes {
        let width = 200 + records * 7919 % 1000;
        text.extend_from_slice(
            format!(
                "'2024-03-01T00:{:02}:{:02}Z UTC [ db=dev user=etl pid={} userid=104 xid={} ]' LOG: SELECT {} FROM sales WHERE id = {records};\n",
                records / 60 % 60,
                records % 60,
                20_000 + records % 10_000,
                records,
                "c".repeat(width)
            )
            .as_bytes(),
        );
        records += 1;
    }
    (text, records)
}

/// `lines` connection-log lines (~150 bytes each), every one distinct.
fn connection_log(lines: usize) -> Vec<u8> {
    let mut text = Vec::with_capacity(lines * 160);
    for i in 0..lines {
        text.extend_from_slice(
            format!(
                "authenticated |Mon, 7 Dec 2020 20:01:55:177|::ffff:10.0.{}.{} |{} |{}|dev |alice |password |0|TLSv1.2 |ECDHE-RSA-AES256-GCM-SHA384 |0| | | | |Linux |JDBC 2.1 |none |0|\n",
                i / 250 % 250,
                i % 250,
                40_000 + i % 20_000,
                10_000 + i
            )
            .as_bytes(),
        );
    }
    text
}

struct World {
    moto: Moto,
    s3: aws_sdk_s3::Client,
}

impl World {
    async fn new(stream: &str) -> World {
        let moto = Moto::start();
        let s3 = s3_client(&moto).await;
        let firehose = firehose_client(&moto).await;
        create_bucket(&s3, AUDIT).await;
        create_bucket(&s3, &format!("dest-{stream}")).await;
        create_delivery_stream_to_bucket(&firehose, stream, &format!("dest-{stream}")).await;
        World { moto, s3 }
    }

    fn command(&self, args: &[&str], vars: &[(&str, &str)]) -> Command {
        let mut command = Command::new(bin());
        command.args(args);
        common::isolate(&mut command, &self.moto);
        command
            .env("AUDIT_BUCKET", AUDIT)
            .env("AUDIT_PREFIX", TREE.trim_end_matches('/'))
            .env("METRICS", "false")
            // These pin deadlines and attempts; the join has tests/sessions_moto.rs.
            .env("SESSION_JOIN", "false")
            .envs(vars.iter().copied());
        command
    }

    /// Runs `backfill` with `args`: its summary, stdout, and how long it took.
    fn backfill(&self, args: &[&str], vars: &[(&str, &str)]) -> (Value, String, Duration) {
        let mut all = vec!["backfill"];
        all.extend_from_slice(args);
        let started = Instant::now();
        let out = self.command(&all, vars).output().expect("run the binary");
        let took = started.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = stdout.lines().last().unwrap_or_else(|| {
            panic!(
                "no summary; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let summary = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        (summary, stdout, took)
    }

    /// Records delivered to `stream` by id: (distinct ids, lines delivered more than once).
    async fn delivered(&self, stream: &str) -> (usize, usize) {
        let mut by_id: HashMap<Vec<u8>, u32> = HashMap::new();
        for (_, body) in read_all_objects(&self.s3, &format!("dest-{stream}"), "").await {
            for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let at = memchr::memmem::find(line, b"\"id\":\"").expect("every record has an id");
                let id = line[at + 6..at + 6 + 32].to_vec();
                *by_id.entry(id).or_default() += 1;
            }
        }
        let dups = by_id.values().map(|n| (n - 1) as usize).sum();
        (by_id.len(), dups)
    }
}

/// A large plain object, forwarded by runs of `--max-duration` seconds: each run stops inside
/// the object at a call boundary with its progress saved, the next goes on from there; no run
/// is longer than its limit plus one call, and no record arrives twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_object_is_forwarded_in_several_time_limited_runs_without_duplicates() {
    let lines: usize = std::env::var("FAULTS_BIG_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let text = connection_log(lines);
    forwarded_in_time_limited_runs("big", "connectionlog", text, lines, 8).await;
}

/// The same for a 1 GB plain user activity log (`FAULTS_LARGE_MB` sets the size), as
/// `scripts/bench_faults.sh` runs it: minutes of moto time, so not part of `make test`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: scripts/bench_faults.sh"]
async fn a_1_gb_object_is_forwarded_in_several_time_limited_runs_without_duplicates() {
    let mb: usize = std::env::var("FAULTS_LARGE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let (text, lines) = activity_log(mb * 1024 * 1024);
    forwarded_in_time_limited_runs("large", "useractivitylog", text, lines, 8).await;
}

async fn forwarded_in_time_limited_runs(
    stream: &str,
    log_type: &str,
    text: Vec<u8>,
    lines: usize,
    limit: u64,
) {
    let world = World::new(stream).await;
    let text_mb = text.len() as f64 / 1e6;
    put_object(&world.s3, AUDIT, &key_today(log_type, "00:53"), text).await;
    let vars = [("DELIVERY_STREAM", stream)];
    let mut runs = Vec::new();
    loop {
        assert!(runs.len() < 40, "every run makes progress: {runs:?}");
        let (summary, _, took) = world.backfill(&["--max-duration", &limit.to_string()], &vars);
        assert_eq!(summary["failed"], 0, "{summary}");
        runs.push((
            summary["stopped"].as_str().unwrap_or_default().to_string(),
            summary["paused"].as_u64().unwrap_or(0),
            took,
        ));
        if summary["sent"] == 1 {
            break;
        }
        assert_eq!(summary["stopped"], "deadline", "{summary}");
    }
    // At least one run stops inside the object and the next goes on from there. How many
    // stops there are depends on the machine's speed (a faster parser once made it one fewer),
    // so the count is reported, not pinned.
    let paused = runs.iter().filter(|r| r.1 == 1).count();
    assert!(paused >= 1, "stopped inside the object: {runs:?}");
    // One call of 4 MiB to moto takes well under 2 s; the process start and the state writes
    // (progress, cursor, lease) fit the 2 s the walk keeps before the deadline.
    let slowest = runs.iter().map(|r| r.2).max().unwrap_or_default();
    assert!(
        slowest <= Duration::from_secs(limit + 2),
        "a run took {slowest:?} with a limit of {limit} s: {runs:?}"
    );
    let (distinct, dups) = world.delivered(stream).await;
    assert_eq!(distinct, lines, "every record arrived");
    assert_eq!(
        dups, 0,
        "each stop waited for its call in flight: nothing resent"
    );
    let progress = read_all_objects(&world.s3, AUDIT, &format!("{STATE_PREFIX}progress/")).await;
    eprintln!(
        "faults_moto: {log_type} {text_mb:.0} MB of text, {lines} records, in {} runs of --max-duration {limit} (slowest {slowest:?}), {paused} stops inside the object, {dups} duplicates, {} progress record(s)",
        runs.len(),
        progress.len()
    );
}

/// A truncated gzip object fails every time: set aside after `MAX_ATTEMPTS`, skipped after
/// that, listed by `--dry-run` and by the doctor with its error, and tried again by
/// `--retry-set-aside`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_object_is_set_aside_after_max_attempts_and_retried_on_request() {
    let world = World::new("poison").await;
    let good = key_today("connectionlog", "01:53");
    let poison = key_today("connectionlog", "02:53");
    put_object(
        &world.s3,
        AUDIT,
        &good,
        gzip(&String::from_utf8(connection_log(3)).unwrap()),
    )
    .await;
    let whole = gzip(&String::from_utf8(connection_log(2_000)).unwrap());
    put_object(&world.s3, AUDIT, &poison, whole[..whole.len() / 2].to_vec()).await;
    let vars = [("DELIVERY_STREAM", "poison"), ("MAX_ATTEMPTS", "2")];

    let (first, _, _) = world.backfill(&[], &vars);
    assert_eq!(
        (first["sent"].as_u64(), first["failed"].as_u64()),
        (Some(1), Some(1)),
        "{first}"
    );
    assert_eq!(first["set_aside"], 0, "{first}");
    let (second, _, _) = world.backfill(&[], &vars);
    assert_eq!(second["failed"], 1, "{second}");
    assert_eq!(
        second["set_aside"], 1,
        "the second failure sets it aside: {second}"
    );
    let (third, _, _) = world.backfill(&["--since", "2020-01-01T00:00:00Z"], &vars);
    assert_eq!(third["failed"], 0, "set aside: not tried again: {third}");
    assert_eq!(third["skipped_set_aside"], 1, "{third}");

    let records = read_all_objects(&world.s3, AUDIT, &format!("{STATE_PREFIX}aside/")).await;
    assert_eq!(records.len(), 1, "one set-aside record");
    let record: Value = serde_json::from_slice(&records[0].1).unwrap();
    assert_eq!(record["key"], poison.as_str());
    assert_eq!(record["attempts"], 2);
    assert_eq!(record["v"], 1, "schema version");

    let (dry, stdout, _) = world.backfill(&["--dry-run"], &vars);
    assert_eq!(dry["set_aside_objects"][0]["key"], poison.as_str(), "{dry}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("\"set_aside\"") && l.contains(&poison)),
        "a line per set-aside object: {stdout}"
    );

    // The doctor names it, with its last error, through the real listing of the state prefix.
    let doctor = world
        .command(&["doctor", "--json"], &vars)
        .output()
        .expect("run the doctor");
    let report: Value = serde_json::from_slice(&doctor.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&doctor.stdout),
            String::from_utf8_lossy(&doctor.stderr)
        )
    });
    let check = &report["checks"][8];
    assert_eq!(check["name"], "set_aside", "{report}");
    assert_eq!(check["status"], "warning", "{report}");
    assert_eq!(check["objects"][0]["key"], poison.as_str(), "{report}");
    assert_eq!(check["objects"][0]["attempts"], 2, "{report}");
    assert!(
        check["detail"].as_str().unwrap().contains(&poison),
        "{report}"
    );

    let (retried, _, _) = world.backfill(&["--retry-set-aside"], &vars);
    assert_eq!(retried["retried_set_aside"], 1, "{retried}");
    assert_eq!(retried["failed"], 1, "still truncated: {retried}");
    let records = read_all_objects(&world.s3, AUDIT, &format!("{STATE_PREFIX}aside/")).await;
    let record: Value = serde_json::from_slice(&records[0].1).unwrap();
    assert_eq!(record["attempts"], 3, "the retry was counted");
    // What could be read before the truncation was sent once; only the record cut by the
    // failed read goes out again with each attempt (progress never passes it).
    let (distinct, dups) = world.delivered("poison").await;
    assert!(distinct > 3, "the readable part was sent");
    assert!(
        dups <= 2,
        "only the cut record resent per later attempt: {dups}"
    );
}
