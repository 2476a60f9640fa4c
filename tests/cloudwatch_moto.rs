//! CloudWatch Logs subscriptions end to end against a private moto server's Firehose: events
//! built exactly as CloudWatch Logs sends them (the batch as JSON, gzip, base64 under
//! `awslogs.data`) through the real binary's `invoke`, and `parse` on a saved event giving the
//! same records.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use common::Moto;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_redshift-audit-forwarder");
const DEST: &str = "delivered";
const STREAM: &str = "redshift-audit";
const OWNER: &str = "123456789012";

const CONN: &str = "authenticated |Fri, 1 Mar 2024 00:00:01:177|10.0.0.1 |5432 |5108|dev |alice |password |0|TLSv1.3 |TLS_AES_256_GCM_SHA384 |0| | | | |Linux |JDBC |";
const USER: &str = "104|alice | |create |0|0|0| |14873|1062|Fri, 1 Mar 2024 00:10:00:001";

/// A subscription event as CloudWatch Logs sends it.
fn subscription(message_type: &str, group: &str, messages: &[&str]) -> Value {
    let events: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            json!({"id": format!("3799999999999999999999999999999999999999999999999999990{i}"),
                   "timestamp": 1_709_251_201_000i64 + i as i64, "message": m})
        })
        .collect();
    let payload = json!({"messageType": message_type, "owner": OWNER, "logGroup": group,
        "logStream": "stream-a", "subscriptionFilters": ["redshift-audit"], "logEvents": events});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(payload.to_string().as_bytes()).expect("gzip");
    let data = base64::engine::general_purpose::STANDARD.encode(gz.finish().expect("gzip"));
    json!({"awslogs": {"data": data}})
}

struct World {
    moto: Moto,
    s3: aws_sdk_s3::Client,
    dir: PathBuf,
}

impl World {
    async fn new(test: &str) -> World {
        let (moto, s3, dir) =
            common::stream_world("cloudwatch_moto", test, &[], STREAM, DEST).await;
        World { moto, s3, dir }
    }

    fn event_file(&self, name: &str, event: &Value) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, event.to_string()).expect("write event");
        path
    }

    fn invoke(&self, event: &Path, settings: &[(&str, &str)]) -> Output {
        let mut command = Command::new(BIN);
        command.arg("invoke").arg(event);
        common::isolate(&mut command, &self.moto);
        command
            .env("DELIVERY_STREAM", STREAM)
            .envs(settings.iter().copied());
        command.output().expect("run the binary")
    }

    async fn delivered(&self) -> Vec<Value> {
        common::delivered_lines(&self.s3, DEST)
            .await
            .iter()
            .map(|line| serde_json::from_str(line).expect("delivered JSON"))
            .collect()
    }
}

fn response(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON response")
}

/// `parse` on a saved event, with the function's region.
fn parse(event: &Path, format: &str) -> Vec<Value> {
    let output = Command::new(BIN)
        .args(["parse", "--format", format])
        .arg(event)
        .env("AWS_REGION", common::REGION)
        .env_remove("OUTPUT_FORMAT")
        .output()
        .expect("run parse");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect()
}

#[tokio::test]
async fn batches_of_all_three_log_types_from_clusters_and_serverless_deliver_what_parse_gives() {
    let world = World::new("three-types").await;
    let batches = [
        ("conn.json", subscription("DATA_MESSAGE", "/aws/redshift/cluster/prod/connectionlog", &[CONN, CONN])),
        ("user.json", subscription("DATA_MESSAGE", "/aws/redshift/sales-ns/userlog", &[USER])),
        ("activity.json", subscription("DATA_MESSAGE", "/aws/redshift/cluster/prod/useractivitylog", &[
            "'2024-03-01T00:01:55Z UTC [ db=dev user=alice pid=23170 userid=104 xid=245636 ]' LOG: SELECT a,",
            "       b FROM t",
            "WHERE password = 'hunter2';",
            "'2024-03-01T00:02:10Z UTC [ db=dev user=alice pid=23171 userid=104 xid=245637 ]' LOG: select 1",
        ])),
    ];
    let mut expected = Vec::new();
    for (name, event) in &batches {
        let path = world.event_file(name, event);
        let response = response(&world.invoke(&path, &[]));
        let receipt = &response["receipts"][0];
        assert_eq!(receipt["log_stream"], "stream-a", "{response}");
        expected.extend(parse(&path, "raw"));
    }
    let delivered = world.delivered().await;
    assert_eq!(
        common::sorted_records(delivered.clone()),
        common::sorted_records(expected)
    );
    assert_eq!(delivered.len(), 5);
    let activity: Vec<&Value> = delivered
        .iter()
        .filter(|r| r["log_type"] == "useractivitylog")
        .collect();
    let statement = activity
        .iter()
        .find(|r| r["query"].as_str().is_some_and(|q| q.contains("FROM t")))
        .expect("joined");
    assert!(
        statement["query"]
            .as_str()
            .unwrap()
            .contains("WHERE password"),
        "spans log events: {statement}"
    );
    assert_eq!(statement["redacted"], true, "secrets masked as for files");
    let serverless = delivered
        .iter()
        .find(|r| r["log_type"] == "userlog")
        .expect("userlog");
    assert_eq!(
        (
            serverless["namespace"].as_str(),
            serverless["account_id"].as_str()
        ),
        (Some("sales-ns"), Some(OWNER))
    );
    assert_eq!(serverless["region"], common::REGION);
    assert_eq!(
        serverless["source"]["log_group"],
        "/aws/redshift/sales-ns/userlog"
    );
}

#[tokio::test]
async fn ocsf_batches_are_the_same_classes_as_files() {
    let world = World::new("ocsf").await;
    let event = subscription(
        "DATA_MESSAGE",
        "/aws/redshift/cluster/prod/connectionlog",
        &[CONN],
    );
    let path = world.event_file("conn.json", &event);
    response(&world.invoke(&path, &[("OUTPUT_FORMAT", "ocsf")]));
    let delivered = world.delivered().await;
    assert_eq!(delivered, parse(&path, "ocsf"));
    assert_eq!(delivered[0]["class_uid"], 3002);
    assert_eq!(delivered[0]["cloud"]["account"]["uid"], OWNER);
}

#[tokio::test]
async fn a_control_message_is_acknowledged_and_delivers_nothing() {
    let world = World::new("control").await;
    let event = subscription(
        "CONTROL_MESSAGE",
        "testLogGroup",
        &["CWL CONTROL MESSAGE: Checking health of destination Firehose."],
    );
    let response = response(&world.invoke(&world.event_file("control.json", &event), &[]));
    assert_eq!(response["control_message"], true);
    assert!(world.delivered().await.is_empty());
}

#[tokio::test]
async fn an_unknown_group_fails_naming_it_and_an_unselected_log_type_is_skipped() {
    let world = World::new("unknown").await;
    let event = subscription("DATA_MESSAGE", "/aws/lambda/something", &[CONN]);
    let output = world.invoke(&world.event_file("unknown.json", &event), &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/aws/lambda/something"), "{stderr}");
    let event = subscription(
        "DATA_MESSAGE",
        "/aws/redshift/cluster/prod/userlog",
        &[USER],
    );
    let output = world.invoke(
        &world.event_file("skipped.json", &event),
        &[("LOG_TYPES", "connectionlog")],
    );
    let response = response(&output);
    assert!(
        response["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("userlog"),
        "{response}"
    );
    assert!(world.delivered().await.is_empty());
}

#[tokio::test]
async fn an_undeliverable_batch_fails_the_invocation() {
    let world = World::new("undeliverable").await;
    let event = subscription(
        "DATA_MESSAGE",
        "/aws/redshift/cluster/prod/connectionlog",
        &[CONN],
    );
    let output = world.invoke(
        &world.event_file("conn.json", &event),
        &[("DELIVERY_STREAM", "no-such-stream")],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/aws/redshift/cluster/prod/connectionlog"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_sample_event_in_events_is_a_serverless_batch_as_cloudwatch_sends_it() {
    let world = World::new("sample").await;
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("events/cloudwatch-logs.json");
    let event: Value =
        serde_json::from_slice(&std::fs::read(&sample).expect("events/cloudwatch-logs.json"))
            .expect("JSON");
    let gz = base64::engine::general_purpose::STANDARD
        .decode(event["awslogs"]["data"].as_str().expect("awslogs.data"))
        .expect("base64");
    // Java's GZIPOutputStream header, as CloudWatch Logs writes it: no name, no mtime, OS 0.
    assert_eq!(gz[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0]);
    let response = response(&world.invoke(&sample, &[]));
    assert_eq!(
        response["receipts"][0]["log_group"], "/aws/redshift/sales-ns/useractivitylog",
        "{response}"
    );
    let delivered = world.delivered().await;
    assert_eq!(
        delivered.len(),
        3,
        "three statements, one across two log events"
    );
    assert_eq!(
        common::sorted_records(delivered.clone()),
        common::sorted_records(parse(&sample, "raw"))
    );
    assert!(delivered
        .iter()
        .all(|r| r["namespace"] == "sales-ns" && r["account_id"] == OWNER));
}
