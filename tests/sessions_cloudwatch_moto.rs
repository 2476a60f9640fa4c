//! The session join of Redshift Serverless through CloudWatch Logs, against a private moto
//! server through the real binary's `invoke` (issue 20, item 1 of "Build": a Serverless
//! namespace's sessions): subscription events built byte for byte as CloudWatch Logs sends
//! them (the batch as JSON, gzip, base64 under `awslogs.data`). A connection batch writes its
//! namespace's sessions, an activity batch is joined with them at once; an activity batch that
//! comes first is forwarded at once, unjoined and counted (a batch never waits: CloudWatch Logs
//! retries an invocation twice, then drops it); a pid reused across batches finds each session.

mod common;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;

use base64::Engine as _;
use common::session_lines::{conn_line, last_hour, rfc3339, statement_line, HOUR_MS};
use common::Moto;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_redshift-audit-forwarder");
const DEST: &str = "delivered";
const STATE: &str = "state-bucket";
const STREAM: &str = "redshift-audit";
const OWNER: &str = "123456789012";
const CONN_GROUP: &str = "/aws/redshift/sales-ns/connectionlog";
const ACTIVITY_GROUP: &str = "/aws/redshift/sales-ns/useractivitylog";

/// One connection-log line (a log event's message) at `at`; port 0 is none (`[local]`).
fn conn(event: &str, at: i64, host: &str, port: i64, pid: i64, us: i64) -> (i64, String) {
    let port = (port != 0).then_some(port);
    (at, conn_line(event, at, host, port, pid, us))
}

/// A session opened at `opens` (both opening events) and, when `closes`, closed then.
fn session(pid: i64, host: &str, port: i64, opens: i64, closes: Option<i64>) -> Vec<(i64, String)> {
    let mut events = vec![
        conn("authenticated", opens, host, port, pid, 0),
        conn("initiating session", opens + 2, host, port, pid, 0),
    ];
    if let Some(closes) = closes {
        let us = (closes - opens) * 1000;
        events.push(conn("disconnecting session", closes, host, port, pid, us));
    }
    events
}

/// A statement of `pid` at `at` (whole seconds), `select <xid>`.
fn statement(at: i64, pid: i64, xid: i64) -> (i64, String) {
    (at, statement_line(at, pid, xid))
}

/// A subscription event as CloudWatch Logs sends it: ids are decimal strings of 56 digits,
/// distinct per batch (`batch` names them).
fn subscription(group: &str, stream: &str, batch: u32, events: &[(i64, String)]) -> Value {
    let events: Vec<Value> = events
        .iter()
        .enumerate()
        .map(|(i, (ts, m))| {
            json!({"id": format!("37{batch:020}{i:034}"), "timestamp": ts, "message": m})
        })
        .collect();
    let payload = json!({"messageType": "DATA_MESSAGE", "owner": OWNER, "logGroup": group,
        "logStream": stream, "subscriptionFilters": ["redshift-audit"], "logEvents": events});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(payload.to_string().as_bytes()).expect("gzip");
    let data = base64::engine::general_purpose::STANDARD.encode(gz.finish().expect("gzip"));
    json!({"awslogs": {"data": data}})
}

struct World {
    moto: Moto,
    s3: aws_sdk_s3::Client,
    dir: PathBuf,
    invocations: std::cell::Cell<u32>,
}

impl World {
    async fn new(test: &str) -> World {
        let (moto, s3, dir) =
            common::stream_world("sessions_cloudwatch_moto", test, &[STATE], STREAM, DEST).await;
        World {
            moto,
            s3,
            dir,
            invocations: std::cell::Cell::new(0),
        }
    }

    /// `invoke` on `event`: (success, stdout, stderr).
    fn invoke(&self, event: &Value, settings: &[(&str, &str)]) -> (bool, String, String) {
        let n = self.invocations.get() + 1;
        self.invocations.set(n);
        let path = self.dir.join(format!("event-{n}.json"));
        std::fs::write(&path, event.to_string()).unwrap();
        let mut command = Command::new(BIN);
        command.arg("invoke").arg(&path);
        common::isolate(&mut command, &self.moto);
        command
            .env("DELIVERY_STREAM", STREAM)
            .env("STATE_BUCKET", STATE)
            .envs(settings.iter().copied());
        let out = command.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The batch's receipt (from the response) and the log lines.
    fn invoke_ok(&self, event: &Value, settings: &[(&str, &str)]) -> (Value, String) {
        let (ok, stdout, stderr) = self.invoke(event, settings);
        assert!(ok, "invoke failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
        let response: Value = serde_json::from_str(&stdout).unwrap();
        (response["receipts"][0].clone(), stderr)
    }

    async fn delivered(&self) -> Vec<Value> {
        common::delivered_lines(&self.s3, DEST)
            .await
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The delivered activity records' joins by `xid`: (remotehost, remoteport, session_start).
    async fn joins(&self) -> Vec<(i64, Value, Value, Value)> {
        let mut joins: Vec<_> = self
            .delivered()
            .await
            .into_iter()
            .filter(|r| r["log_type"] == "useractivitylog")
            .map(|r| {
                for key in ["remotehost", "remoteport", "session_start"] {
                    assert!(r.get(key).is_some(), "{key} missing in {r}");
                }
                assert_eq!(r["namespace"], "sales-ns", "{r}");
                (
                    r["xid"].as_i64().unwrap(),
                    r["remotehost"].clone(),
                    r["remoteport"].clone(),
                    r["session_start"].clone(),
                )
            })
            .collect();
        joins.sort_by_key(|j| j.0);
        joins
    }

    /// Keys of the session shards in the state bucket.
    async fn shards(&self) -> Vec<String> {
        let listed = self
            .s3
            .list_objects_v2()
            .bucket(STATE)
            .send()
            .await
            .unwrap();
        listed
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .filter(|k| k.contains("/sessions/"))
            .collect()
    }
}

fn minute(hour: i64, m: i64) -> i64 {
    hour + m * 60_000
}

#[tokio::test]
async fn a_connection_batch_first_then_activity_is_joined_and_a_retry_rewrites_its_shard() {
    let w = World::new("conn-first").await;
    let h = last_hour();
    let mut events = session(201, "::ffff:10.0.0.1", 40001, minute(h, 1), None);
    events.extend(session(
        202,
        "10.0.0.2",
        40002,
        minute(h, 2),
        Some(minute(h, 9)),
    ));
    let conn_batch = subscription(CONN_GROUP, "sales-wg", 1, &events);
    let (receipt, _) = w.invoke_ok(&conn_batch, &[]);
    assert_eq!(receipt["session_state"]["writes"], 1, "{receipt}");
    assert_eq!(receipt["session_state"]["sessions"], 2, "{receipt}");
    assert!(receipt.get("unjoined_records").is_none(), "{receipt}");
    let shards = w.shards().await;
    assert_eq!(shards.len(), 1, "{shards:?}");
    let label = &rfc3339(h)[..13];
    assert!(
        shards[0].contains(&format!(
            "/sessions/{OWNER}/us-east-1/namespace=sales-ns/{label}/"
        )),
        "{shards:?}"
    );
    // The same batch again (Lambda's retry): the same object, rewritten.
    w.invoke_ok(&conn_batch, &[]);
    assert_eq!(w.shards().await, shards);

    let activity = [
        statement(minute(h, 5), 201, 1),
        statement(minute(h, 6), 202, 2),
        statement(minute(h, 12), 202, 3),
        statement(minute(h, 7), 999, 4),
    ];
    let (receipt, stderr) =
        w.invoke_ok(&subscription(ACTIVITY_GROUP, "sales-wg", 2, &activity), &[]);
    assert_eq!(
        (
            receipt["joined_records"].clone(),
            receipt["unjoined_records"].clone()
        ),
        (json!(2), json!(2)),
        "{receipt}"
    );
    assert_eq!(receipt["session_state"]["reads"], 1, "{receipt}");
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("_aws") && l.contains("\"UnjoinedRecords\":2")),
        "{stderr}"
    );
    let start = |m: i64| json!(rfc3339(minute(h, m)));
    assert_eq!(
        w.joins().await,
        vec![
            (1, json!("::ffff:10.0.0.1"), json!(40001), start(1)),
            (2, json!("10.0.0.2"), json!(40002), start(2)),
            (3, Value::Null, Value::Null, Value::Null),
            (4, Value::Null, Value::Null, Value::Null),
        ]
    );
}

#[tokio::test]
async fn an_activity_batch_first_goes_out_at_once_unjoined_and_counted() {
    let w = World::new("activity-first").await;
    let h = last_hour();
    let activity = [
        statement(minute(h, 5), 201, 1),
        statement(minute(h, 6), 201, 2),
    ];
    let batch = subscription(ACTIVITY_GROUP, "sales-wg", 1, &activity);
    let (ok, stdout, stderr) = w.invoke(&batch, &[]);
    assert!(ok, "an activity batch never waits:\n{stdout}\n{stderr}");
    let receipt = serde_json::from_str::<Value>(&stdout).unwrap()["receipts"][0].clone();
    assert_eq!(
        (
            receipt["joined_records"].clone(),
            receipt["unjoined_records"].clone()
        ),
        (json!(0), json!(2)),
        "{receipt}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("_aws") && l.contains("\"UnjoinedRecords\":2")),
        "{stderr}"
    );
    assert!(!stderr.contains("WaitingObjects"), "{stderr}");
    let joins = w.joins().await;
    assert_eq!(joins.len(), 2);
    assert!(
        joins.iter().all(|j| j.1.is_null() && j.3.is_null()),
        "{joins:?}"
    );
    // The connection batch after it joins the statements that come later.
    let conn = subscription(
        CONN_GROUP,
        "sales-wg",
        2,
        &session(201, "10.9.9.9", 5439, minute(h, 1), None),
    );
    w.invoke_ok(&conn, &[]);
    let later = subscription(
        ACTIVITY_GROUP,
        "sales-wg",
        3,
        &[statement(minute(h, 8), 201, 3)],
    );
    let (receipt, _) = w.invoke_ok(&later, &[]);
    assert_eq!(receipt["joined_records"], 1, "{receipt}");
    assert_eq!(w.joins().await[2].1, json!("10.9.9.9"));
    // With the join off, a batch has none of the fields and reads no state.
    let off = subscription(
        ACTIVITY_GROUP,
        "sales-wg",
        4,
        &[statement(minute(h, 9), 201, 9)],
    );
    let (receipt, _) = w.invoke_ok(&off, &[("SESSION_JOIN", "false")]);
    assert!(receipt.get("session_state").is_none(), "{receipt}");
    let delivered = w.delivered().await;
    let record = delivered.iter().find(|r| r["xid"] == 9).unwrap();
    assert!(record.get("remotehost").is_none(), "{record}");
}

#[tokio::test]
async fn a_pid_reused_across_batches_and_hours_finds_each_session() {
    let w = World::new("pid-reuse").await;
    let h = last_hour() - HOUR_MS;
    let next = h + HOUR_MS;
    // Batch 1 (hour h): pid 301 from 10.0.0.1, closed at minute 20; pid 302 opened and never
    // closed. Batch 2 (the next hour, another stream): pid 301 again, from 10.0.0.2.
    let mut first = session(301, "10.0.0.1", 1001, minute(h, 1), Some(minute(h, 20)));
    first.extend(session(302, "10.0.0.3", 1003, minute(h, 3), None));
    w.invoke_ok(&subscription(CONN_GROUP, "sales-wg", 1, &first), &[]);
    let second = session(301, "10.0.0.2", 1002, minute(next, 5), None);
    let (receipt, _) = w.invoke_ok(&subscription(CONN_GROUP, "sales-wg-2", 2, &second), &[]);
    // The hour's first batch carries the open session of the hour before.
    assert_eq!(receipt["session_state"]["sessions"], 2, "{receipt}");
    assert_eq!(w.shards().await.len(), 2);
    let in_h = [
        statement(minute(h, 10), 301, 1),
        statement(minute(h, 25), 301, 2),
    ];
    w.invoke_ok(&subscription(ACTIVITY_GROUP, "sales-wg", 3, &in_h), &[]);
    let in_next = [
        statement(minute(next, 10), 301, 3),
        statement(minute(next, 11), 302, 4),
    ];
    let (receipt, _) = w.invoke_ok(&subscription(ACTIVITY_GROUP, "sales-wg", 4, &in_next), &[]);
    assert_eq!(receipt["joined_records"], 2, "{receipt}");
    let hosts: Vec<(i64, Value)> = w.joins().await.into_iter().map(|j| (j.0, j.1)).collect();
    assert_eq!(
        hosts,
        vec![
            (1, json!("10.0.0.1")),
            (2, Value::Null),
            (3, json!("10.0.0.2")),
            (4, json!("10.0.0.3")),
        ]
    );
}

#[tokio::test]
async fn ocsf_events_of_a_joined_batch_carry_the_client_endpoint_and_validate() {
    let w = World::new("ocsf").await;
    let h = last_hour();
    let ocsf = [("OUTPUT_FORMAT", "ocsf")];
    let mut events = session(401, "172.16.5.5", 5439, minute(h, 1), None);
    events.extend(session(402, "[local]", 0, minute(h, 2), None));
    w.invoke_ok(&subscription(CONN_GROUP, "sales-wg", 1, &events), &ocsf);
    let activity = [
        statement(minute(h, 5), 401, 1),
        statement(minute(h, 6), 402, 2),
        statement(minute(h, 7), 999, 3),
    ];
    w.invoke_ok(
        &subscription(ACTIVITY_GROUP, "sales-wg", 2, &activity),
        &ocsf,
    );
    let events: Vec<Value> = w
        .delivered()
        .await
        .into_iter()
        .filter(|e| e["class_uid"] == 6005)
        .collect();
    assert_eq!(events.len(), 3);
    let endpoints: Vec<Value> = events.iter().map(|e| e["src_endpoint"].clone()).collect();
    assert!(
        endpoints.contains(&json!({"ip": "172.16.5.5", "port": 5439})),
        "{endpoints:?}"
    );
    assert!(
        endpoints.iter().any(|e| e["hostname"] == "[local]"),
        "{endpoints:?}"
    );
    assert!(endpoints.contains(&json!({})), "{endpoints:?}");
    assert_eq!(
        events
            .iter()
            .filter(|e| e["actor"]["session"]["uid"].is_string())
            .count(),
        2
    );
    let ndjson: Vec<u8> = events
        .iter()
        .flat_map(|e| (e.to_string() + "\n").into_bytes())
        .collect();
    let (ok, report) = common::ocsf_check(&ndjson, "sessions-cloudwatch-moto");
    assert!(ok, "{report}");
}
