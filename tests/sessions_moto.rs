//! The session join on the Lambda path, against a private moto server through the real binary's
//! `invoke` (issue 20, "Prove it"): the connection log processed first; the activity log first
//! (it fails retryably, sends nothing, then joins once the connection log is done); the
//! connection log never arriving (past `SESSION_WAIT` the records go out unjoined and counted);
//! a forged shard refused; OCSF events validated with `src_endpoint` filled. File times are
//! chosen instead of waiting: a name an hour old waits, one from 2024 never does.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::session_lines::{conn_line, last_hour, rfc3339, statement_line, HOUR_MS};
use common::{put_object, Moto};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_redshift-audit-forwarder");
const BUCKET: &str = "audit-bucket";
const DEST: &str = "delivered";
const STREAM: &str = "redshift-audit";
const PREFIX: &str = "AWSLogs/123456789012/redshift/us-east-1";

/// The files of one hour: a connection log with `[local]`, IPv4, IPv6-mapped sessions, a reused
/// pid and a failed login, and an activity log of statements in them.
struct Hour {
    start: i64,
    conn_key: String,
    activity_key: String,
    conn: String,
    activity: String,
}

/// A session of the fixture: pid, host, port, opens at and closes at, minutes into the hour.
type FixtureSession = (i64, &'static str, Option<i64>, i64, Option<i64>);

const SESSIONS: [FixtureSession; 4] = [
    (101, "::ffff:10.0.0.1", Some(40001), 1, Some(20)),
    (101, "10.0.0.2", Some(40002), 25, None),
    (102, "[local]", None, 2, Some(50)),
    (1_073_742_045, "172.16.5.5", Some(5439), 3, None),
];

fn hour(start: i64) -> Hour {
    let label = &rfc3339(start)[..13];
    let (day, hh) = (&label[..10], &label[11..13]);
    let folder = format!("{PREFIX}/{}/", day.replace('-', "/"));
    let name = |t: &str| format!("123456789012_redshift_us-east-1_prod_{t}_{day}T{hh}:59.gz");
    let minute = |m: i64| start + m * 60_000;
    let mut conn = String::new();
    let line = |event: &str, at: i64, host: &str, port: Option<i64>, pid: i64, us: i64| {
        conn_line(event, at, host, port, pid, us) + "\n"
    };
    for (pid, host, port, opens, closes) in SESSIONS {
        conn.push_str(&line("authenticated", minute(opens), host, port, pid, 0));
        conn.push_str(&line(
            "initiating session",
            minute(opens) + 2,
            host,
            port,
            pid,
            0,
        ));
        if let Some(closes) = closes {
            let us = (closes - opens) * 60_000_000;
            conn.push_str(&line(
                "disconnecting session",
                minute(closes),
                host,
                port,
                pid,
                us,
            ));
        }
    }
    conn.push_str(&line(
        "initiating session",
        minute(30),
        "6.6.6.6",
        Some(1),
        103,
        0,
    ));
    conn.push_str(&line(
        "authentication failure",
        minute(30) + 3,
        "6.6.6.6",
        Some(1),
        103,
        0,
    ));
    let mut activity = String::new();
    // (pid, minute): in the first and the second session of pid 101, the local one, the long
    // one, the failed login's pid, and a pid the connection log never names.
    for (i, (pid, m)) in [
        (101, 5),
        (101, 30),
        (102, 10),
        (1_073_742_045, 40),
        (103, 31),
        (999, 12),
    ]
    .into_iter()
    .enumerate()
    {
        activity.push_str(&statement_line(minute(m), pid, i as i64));
        activity.push('\n');
    }
    Hour {
        start,
        conn_key: format!("{folder}{}", name("connectionlog")),
        activity_key: format!("{folder}{}", name("useractivitylog")),
        conn,
        activity,
    }
}

/// What each statement `select i` must be joined to: (remotehost, remoteport, session start).
fn expected(h: &Hour, joined: bool) -> Vec<(Value, Value, Value)> {
    let start = |m: i64| json!(rfc3339(h.start + m * 60_000));
    let null = || (Value::Null, Value::Null, Value::Null);
    if !joined {
        return (0..6).map(|_| null()).collect();
    }
    vec![
        (json!("::ffff:10.0.0.1"), json!(40001), start(1)),
        (json!("10.0.0.2"), json!(40002), start(25)),
        (json!("[local]"), Value::Null, start(2)),
        (json!("172.16.5.5"), json!(5439), start(3)),
        null(),
        null(),
    ]
}

struct World {
    moto: Moto,
    s3: aws_sdk_s3::Client,
    dir: PathBuf,
}

impl World {
    async fn new(test: &str) -> World {
        let (moto, s3, dir) =
            common::stream_world("sessions_moto", test, &[BUCKET], STREAM, DEST).await;
        World { moto, s3, dir }
    }

    async fn upload(&self, key: &str, text: &str) {
        put_object(&self.s3, BUCKET, key, common::gzip(text)).await;
    }

    /// `invoke` on a direct S3 notification of `key`: (success, stdout, stderr).
    fn invoke(&self, key: &str, settings: &[(&str, &str)]) -> (bool, String, String) {
        let event = json!({"Records": [common::s3_notification_record(BUCKET, key, "0")]});
        let path = self
            .dir
            .join(format!("event-{}.json", key.len() ^ settings.len()));
        std::fs::write(&path, event.to_string()).unwrap();
        let mut command = Command::new(BIN);
        command.arg("invoke").arg(&path);
        common::isolate(&mut command, &self.moto);
        command
            .env("DELIVERY_STREAM", STREAM)
            .env("AUDIT_BUCKET", BUCKET)
            .env("AUDIT_PREFIX", PREFIX)
            .envs(settings.iter().copied());
        let out = command.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn invoke_ok(&self, key: &str, settings: &[(&str, &str)]) -> String {
        let (ok, stdout, stderr) = self.invoke(key, settings);
        assert!(
            ok,
            "invoke {key} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        stderr
    }

    async fn delivered(&self) -> Vec<Value> {
        common::delivered_lines(&self.s3, DEST)
            .await
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The delivered activity records' joins, by statement number.
    async fn joins(&self) -> Vec<(Value, Value, Value)> {
        let mut records: Vec<Value> = self
            .delivered()
            .await
            .into_iter()
            .filter(|r| r["log_type"] == "useractivitylog")
            .collect();
        records.sort_by_key(|r| r["xid"].as_i64());
        records
            .iter()
            .map(|r| {
                for key in ["remotehost", "remoteport", "session_start"] {
                    assert!(r.get(key).is_some(), "{key} missing in {r}");
                }
                (
                    r["remotehost"].clone(),
                    r["remoteport"].clone(),
                    r["session_start"].clone(),
                )
            })
            .collect()
    }
}

fn receipt(stderr: &str, key: &str) -> Value {
    stderr
        .lines()
        .filter(|l| l.contains("\"receipt\":"))
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["receipt"].clone())
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("no receipt for {key}:\n{stderr}"))
}

#[tokio::test]
async fn connection_log_first_then_activity_is_joined() {
    let w = World::new("conn-first").await;
    let h = hour(last_hour());
    w.upload(&h.conn_key, &h.conn).await;
    w.upload(&h.activity_key, &h.activity).await;
    let stderr = w.invoke_ok(&h.conn_key, &[]);
    let conn = receipt(&stderr, &h.conn_key);
    assert_eq!(conn["session_state"]["writes"], 1, "{conn}");
    assert_eq!(conn["session_state"]["sessions"], 4, "{conn}");
    let stderr = w.invoke_ok(&h.activity_key, &[]);
    let activity = receipt(&stderr, &h.activity_key);
    assert_eq!(activity["joined_records"], 4, "{activity}");
    assert_eq!(activity["unjoined_records"], 2, "{activity}");
    assert_eq!(activity["session_state"]["reads"], 1, "{activity}");
    assert_eq!(w.joins().await, expected(&h, true));
}

#[tokio::test]
async fn activity_first_waits_then_joins_once_the_connection_log_is_done() {
    let w = World::new("activity-first").await;
    let h = hour(last_hour());
    w.upload(&h.conn_key, &h.conn).await;
    w.upload(&h.activity_key, &h.activity).await;
    let (ok, _, stderr) = w.invoke(&h.activity_key, &[]);
    assert!(!ok, "the activity file must wait:\n{stderr}");
    assert!(stderr.contains("SESSION_WAIT"), "{stderr}");
    // Counted as waiting, not as a failure (the failure alarm stays quiet).
    let metrics: Vec<&str> = stderr.lines().filter(|l| l.contains("\"_aws\"")).collect();
    assert!(
        metrics.iter().any(|l| l.contains("\"WaitingObjects\":1")),
        "{stderr}"
    );
    assert!(
        !metrics.iter().any(|l| l.contains("FailedObjects")),
        "{stderr}"
    );
    assert!(w.joins().await.is_empty(), "nothing is sent while it waits");
    w.invoke_ok(&h.conn_key, &[]);
    w.invoke_ok(&h.activity_key, &[]);
    assert_eq!(w.joins().await, expected(&h, true));
    // With the join off nothing waits and nothing is joined.
    let later = hour(last_hour() - 5 * HOUR_MS);
    w.upload(&later.activity_key, &later.activity).await;
    w.invoke_ok(&later.activity_key, &[("SESSION_JOIN", "false")]);
    let off: Vec<Value> = w
        .delivered()
        .await
        .into_iter()
        .filter(|r| r["source"]["key"] == later.activity_key.as_str())
        .collect();
    assert_eq!(off.len(), 6);
    assert!(off.iter().all(|r| r.get("session_start").is_none()));
}

#[tokio::test]
async fn a_connection_log_that_never_arrives_leaves_the_records_unjoined_and_counted() {
    let w = World::new("never").await;
    // A file time long past: its wait is over.
    let h = hour(1_709_287_200_000);
    w.upload(&h.activity_key, &h.activity).await;
    let stderr = w.invoke_ok(&h.activity_key, &[]);
    let r = receipt(&stderr, &h.activity_key);
    assert_eq!(
        (r["joined_records"].clone(), r["unjoined_records"].clone()),
        (json!(0), json!(6))
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("\"UnjoinedRecords\"") && l.contains("_aws")),
        "{stderr}"
    );
    assert_eq!(w.joins().await, expected(&h, false));
}

#[tokio::test]
async fn a_forged_session_shard_is_refused_naming_it_and_the_records_go_unjoined() {
    let w = World::new("forged").await;
    let h = hour(last_hour());
    w.upload(&h.conn_key, &h.conn).await;
    w.upload(&h.activity_key, &h.activity).await;
    w.invoke_ok(&h.conn_key, &[]);
    let label = &rfc3339(h.start)[..13];
    let forged = format!(
        "redshift-audit-forwarder/sessions/123456789012/us-east-1/prod/{label}/forged-0.json"
    );
    let body = json!({"v": 1, "cluster": "123456789012/us-east-1/prod", "hour": label, "source": "x",
        "part": 0, "parts": 1, "sessions": [[101, h.start + 60_000, null, "6.6.6.6\u{7}", 1, null, null, null, null, null, null]]});
    put_object(&w.s3, BUCKET, &forged, body.to_string()).await;
    let stderr = w.invoke_ok(&h.activity_key, &[]);
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("WARN") && l.contains("forged-0.json")),
        "{stderr}"
    );
    assert_eq!(receipt(&stderr, &h.activity_key)["unjoined_records"], 6);
    assert_eq!(w.joins().await, expected(&h, false));
}

#[tokio::test]
async fn ocsf_datastore_events_carry_the_client_endpoint_and_validate() {
    let w = World::new("ocsf").await;
    let h = hour(last_hour());
    w.upload(&h.conn_key, &h.conn).await;
    w.upload(&h.activity_key, &h.activity).await;
    let ocsf = [("OUTPUT_FORMAT", "ocsf")];
    w.invoke_ok(&h.conn_key, &ocsf);
    w.invoke_ok(&h.activity_key, &ocsf);
    let events: Vec<Value> = w
        .delivered()
        .await
        .into_iter()
        .filter(|e| e["class_uid"] == 6005)
        .collect();
    assert_eq!(events.len(), 6);
    let endpoints: Vec<Value> = events.iter().map(|e| e["src_endpoint"].clone()).collect();
    assert!(
        endpoints.contains(&json!({"ip": "::ffff:10.0.0.1", "port": 40001})),
        "{endpoints:?}"
    );
    assert!(
        endpoints.contains(&json!({"hostname": "[local]"})),
        "{endpoints:?}"
    );
    assert!(
        endpoints.contains(&json!({"ip": "172.16.5.5", "port": 5439})),
        "{endpoints:?}"
    );
    let sessions = events
        .iter()
        .filter(|e| e["actor"]["session"]["uid"].is_string())
        .count();
    assert_eq!(sessions, 4);
    let ndjson: Vec<u8> = events
        .iter()
        .flat_map(|e| (e.to_string() + "\n").into_bytes())
        .collect();
    let (ok, report) = common::ocsf_check(&ndjson, "sessions-moto");
    assert!(ok, "{report}");
}
