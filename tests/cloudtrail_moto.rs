//! CloudTrail trail files end to end against a private moto server: the real binary's `invoke`
//! on the direct S3, SQS and EventBridge envelopes and its `backfill`, with `LOG_TYPES`
//! naming `cloudtrail`; the records read back from the Firehose stream's destination bucket are
//! compared with what `parse` gives for the same file (with `source.bucket` set and `id`
//! recomputed for the bucket, as in `lambda_moto.rs`).

mod common;
#[path = "common/json_keys.rs"]
mod json_keys;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{put_object, Moto};
use redshift_audit_forwarder::cloudtrail::{parse_trail_key, TrailProvenance};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_redshift-audit-forwarder");
const BUCKET: &str = "trail-bucket";
const DEST: &str = "delivered";
const STREAM: &str = "redshift-audit";
const PREFIX: &str = "trails";
const TRAIL: &str = "trails/AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/01/123456789012_CloudTrail_us-east-1_20240301T0055Z_AbCdEf0123456789.json.gz";
const ORG_TRAIL: &str = "trails/AWSLogs/o-abcdef1234/210987654321/CloudTrail/eu-west-1/2024/03/02/210987654321_CloudTrail_eu-west-1_20240302T1200Z_ZyXw0987654321.json.gz";
const DIGEST: &str = "trails/AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2024/03/01/123456789012_CloudTrail-Digest_us-east-1_main_us-east-1_20240301T005500Z.json.gz";

fn event(n: usize, source: &str, name: &str) -> Value {
    json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDA", "arn": "arn:aws:iam::123456789012:user/alice",
                         "accountId": "123456789012", "userName": "alice"},
        "eventTime": format!("2024-03-01T00:{:02}:00Z", n % 60),
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "192.0.2.10",
        "userAgent": "aws-cli/2.15",
        "requestParameters": {"clusterIdentifier": "prod", "masterUserPassword": "HIDDEN_DUE_TO_SECURITY_REASONS"},
        "responseElements": null,
        "requestID": format!("req-{n}"),
        "eventID": format!("evt-{n}"),
        "readOnly": false,
        "eventType": "AwsApiCall",
        "recipientAccountId": "123456789012"
    })
}

/// A trail file: Redshift events among S3 and EC2 ones (3 kept, 2 skipped).
fn trail_body() -> Vec<u8> {
    common::gzip(&trail_text())
}

fn trail_text() -> String {
    let records = vec![
        event(1, "redshift.amazonaws.com", "CreateCluster"),
        event(2, "s3.amazonaws.com", "GetObject"),
        event(3, "redshift-data.amazonaws.com", "ExecuteStatement"),
        event(4, "ec2.amazonaws.com", "DescribeInstances"),
        event(5, "redshift-serverless.amazonaws.com", "CreateWorkgroup"),
    ];
    json!({ "Records": records }).to_string()
}

struct World {
    moto: Moto,
    s3: aws_sdk_s3::Client,
    dir: PathBuf,
}

impl World {
    async fn new(test: &str) -> World {
        let (moto, s3, dir) =
            common::stream_world("cloudtrail_moto", test, &[BUCKET], STREAM, DEST).await;
        World { moto, s3, dir }
    }

    async fn upload(&self, key: &str, body: Vec<u8>) {
        let local = self.dir.join("objects").join(key);
        std::fs::create_dir_all(local.parent().expect("folder")).expect("mkdir");
        std::fs::write(&local, &body).expect("write fixture");
        put_object(&self.s3, BUCKET, key, body).await;
    }

    fn event_file(&self, name: &str, event: &Value) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, event.to_string()).expect("write event");
        path
    }

    fn command(&self, args: &[&str], settings: &[(&str, &str)]) -> Output {
        let mut command = Command::new(BIN);
        command.args(args);
        common::isolate(&mut command, &self.moto);
        command
            .env("DELIVERY_STREAM", STREAM)
            .env("AUDIT_BUCKET", BUCKET)
            .env("AUDIT_PREFIX", PREFIX)
            .env("LOG_TYPES", "cloudtrail")
            .envs(settings.iter().copied());
        command.output().expect("run the binary")
    }

    fn invoke(&self, event: &Path) -> Output {
        self.command(&["invoke", &event.to_string_lossy()], &[])
    }

    /// `parse`'s records for the uploaded copy of `key`, with the bucket and its ids.
    fn expected(&self, key: &str) -> Vec<Value> {
        let output = Command::new(BIN)
            .args(["parse", key])
            .env_remove("CLOUDTRAIL_EVENT_SOURCES")
            .env_remove("OUTPUT_FORMAT")
            .current_dir(self.dir.join("objects"))
            .output()
            .expect("run parse");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let name = parse_trail_key(key).expect("trail key");
        let local = TrailProvenance::new(Some(&name), None, key);
        let lambda = TrailProvenance::new(Some(&name), Some(BUCKET), key);
        String::from_utf8(output.stdout)
            .expect("UTF-8")
            .lines()
            .map(|line| {
                let mut record: Value = serde_json::from_str(line).expect("JSON");
                let ordinal = record["source"]["event"].as_u64().expect("event number") - 1;
                assert_eq!(
                    record["id"].as_str(),
                    Some(hex(local.record_id(ordinal)).as_str())
                );
                record["source"]["bucket"] = json!(BUCKET);
                record["id"] = json!(hex(lambda.record_id(ordinal)));
                record
            })
            .collect()
    }

    async fn delivered(&self) -> Vec<Value> {
        common::delivered_lines(&self.s3, DEST)
            .await
            .iter()
            .map(|line| serde_json::from_str(line).expect("delivered JSON"))
            .collect()
    }
}

fn hex(id: [u8; 32]) -> String {
    String::from_utf8(id.to_vec()).expect("hex")
}

fn sorted(records: Vec<Value>) -> Vec<Value> {
    common::sorted_records(records)
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

fn s3_event(keys: &[&str]) -> Value {
    let records: Vec<Value> = keys
        .iter()
        .map(|key| common::s3_notification_record(BUCKET, key, "0"))
        .collect();
    json!({ "Records": records })
}

#[tokio::test]
async fn direct_event_delivers_redshift_events_of_trail_and_org_trail_files_and_skips_the_digest() {
    let world = World::new("direct").await;
    world.upload(TRAIL, trail_body()).await;
    world.upload(ORG_TRAIL, trail_body()).await;
    world
        .upload(DIGEST, common::gzip("{\"awsAccountId\":\"123456789012\"}"))
        .await;
    let event = world.event_file("direct.json", &s3_event(&[TRAIL, ORG_TRAIL, DIGEST]));
    let output = world.invoke(&event);
    let response = response(&output);
    let receipts = response["receipts"].as_array().expect("receipts");
    assert_eq!(receipts.len(), 2, "{response}");
    for receipt in receipts {
        assert_eq!(receipt["log_type"], "cloudtrail");
        assert_eq!(
            (
                receipt["records"].as_u64(),
                receipt["skipped_events"].as_u64()
            ),
            (Some(3), Some(2))
        );
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("digest"),
        "says why the digest is left out: {stderr}"
    );
    let delivered = world.delivered().await;
    let mut expected = world.expected(TRAIL);
    expected.extend(world.expected(ORG_TRAIL));
    assert_eq!(sorted(delivered.clone()), sorted(expected));
    let names: Vec<&str> = delivered
        .iter()
        .filter_map(|r| r["eventName"].as_str())
        .collect();
    assert!(
        !names.contains(&"GetObject") && names.contains(&"CreateWorkgroup"),
        "{names:?}"
    );
    assert!(delivered.iter().any(|r| r["account_id"] == "210987654321"));
}

#[tokio::test]
async fn sqs_sns_and_eventbridge_envelopes_deliver_trail_files() {
    let world = World::new("envelopes").await;
    world.upload(TRAIL, trail_body()).await;
    let sqs = json!({"Records": [{
        "messageId": "m-1", "receiptHandle": "h", "body": s3_event(&[TRAIL]).to_string(),
        "attributes": {}, "messageAttributes": {}, "md5OfBody": "x",
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
        "awsRegion": "us-east-1"}]});
    let response_sqs = response(&world.invoke(&world.event_file("sqs.json", &sqs)));
    assert_eq!(response_sqs, json!({"batchItemFailures": []}));
    let eventbridge = json!({
        "version": "0", "id": "e", "detail-type": "Object Created", "source": "aws.s3",
        "account": "123456789012", "time": "2024-03-01T02:14:07Z", "region": "us-east-1",
        "resources": [format!("arn:aws:s3:::{BUCKET}")],
        "detail": {"version": "0", "bucket": {"name": BUCKET},
                   "object": {"key": TRAIL, "size": 1, "etag": "0"}, "reason": "PutObject"}});
    let response_eb = response(&world.invoke(&world.event_file("eb.json", &eventbridge)));
    assert_eq!(response_eb["receipts"][0]["records"], 3);
    // An S3 notification through an SNS topic, as SNS delivers it to Lambda.
    let sns = json!({"Records": [{
        "EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:trail-events:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55",
        "Sns": {"Type": "Notification", "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
                "TopicArn": "arn:aws:sns:us-east-1:123456789012:trail-events",
                "Subject": "Amazon S3 Notification", "Message": s3_event(&[TRAIL]).to_string(),
                "Timestamp": "2024-03-01T02:14:09.512Z", "SignatureVersion": "1",
                "Signature": "EXAMPLE", "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/x.pem",
                "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
                "MessageAttributes": {}}}]});
    let response_sns = response(&world.invoke(&world.event_file("sns.json", &sns)));
    assert_eq!(response_sns["receipts"][0]["records"], 3, "{response_sns}");
    // Sent three times: the same records with the same ids.
    let delivered = world.delivered().await;
    let mut thrice = world.expected(TRAIL);
    thrice.extend(world.expected(TRAIL));
    thrice.extend(world.expected(TRAIL));
    assert_eq!(sorted(delivered), sorted(thrice));
}

#[tokio::test]
async fn a_truncated_trail_file_fails_naming_the_object_after_delivering_the_events_before_the_cut()
{
    let world = World::new("truncated").await;
    let text = trail_text();
    // Cut inside the fourth event: the first and third (Redshift) were complete.
    let cut = text.find("\"evt-4\"").expect("fourth event");
    world.upload(TRAIL, common::gzip(&text[..cut])).await;
    let output = world.invoke(&world.event_file("cut.json", &s3_event(&[TRAIL])));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(TRAIL), "names the object: {stderr}");
    let names: Vec<String> = world
        .delivered()
        .await
        .iter()
        .filter_map(|r| r["eventName"].as_str().map(str::to_string))
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names.contains(&"CreateCluster".to_string())
            && names.contains(&"ExecuteStatement".to_string())
    );
}

#[tokio::test]
async fn the_backfill_walks_trail_and_org_trail_trees() {
    let world = World::new("backfill").await;
    world.upload(TRAIL, trail_body()).await;
    world.upload(ORG_TRAIL, trail_body()).await;
    world.upload(DIGEST, common::gzip("{}")).await;
    let output = world.command(&["backfill", "--since", "2024-01-01T00:00:00Z"], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let mut expected = world.expected(TRAIL);
    expected.extend(world.expected(ORG_TRAIL));
    assert_eq!(sorted(world.delivered().await), sorted(expected));
    // Done markers: a second walk sends nothing.
    let again = world.command(&["backfill", "--since", "2024-01-01T00:00:00Z"], &[]);
    assert!(again.status.success());
    assert_eq!(world.delivered().await.len(), 6);
}

/// A trail file of about `mb` MB of JSON, gzip: one Redshift event in ten.
fn large_trail(mb: usize) -> Vec<u8> {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"{\"Records\":[").expect("gzip");
    let (mut written, mut n) = (0usize, 0usize);
    while written < mb << 20 {
        let source = if n % 10 == 0 {
            "redshift.amazonaws.com"
        } else {
            "s3.amazonaws.com"
        };
        let e = event(n, source, "DescribeClusters").to_string();
        if n > 0 {
            gz.write_all(b",").expect("gzip");
        }
        gz.write_all(e.as_bytes()).expect("gzip");
        written += e.len() + 1;
        n += 1;
    }
    gz.write_all(b"]}").expect("gzip");
    gz.finish().expect("gzip")
}

#[tokio::test]
async fn a_50_mb_trail_file_is_forwarded_with_bounded_memory() {
    let world = World::new("large").await;
    world.upload(TRAIL, large_trail(50)).await;
    let event = world.event_file("large.json", &s3_event(&[TRAIL]));
    let mut command = Command::new("/usr/bin/time");
    command
        .args(["-f", "peak_rss_kb=%M", BIN, "invoke"])
        .arg(&event);
    common::isolate(&mut command, &world.moto);
    command
        .env("DELIVERY_STREAM", STREAM)
        .env("AUDIT_BUCKET", BUCKET)
        .env("AUDIT_PREFIX", PREFIX)
        .env("LOG_TYPES", "cloudtrail");
    let output = command.output().expect("run under /usr/bin/time");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let response: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let receipt = &response["receipts"][0];
    assert!(
        receipt["text_bytes"].as_u64().unwrap() > 50 << 20,
        "{receipt}"
    );
    assert!(
        receipt["skipped_events"].as_u64().unwrap() > 9 * receipt["records"].as_u64().unwrap() - 10
    );
    let rss_kb: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak_rss_kb="))
        .and_then(|v| v.trim().parse().ok())
        .expect("peak RSS reported");
    eprintln!("50 MB trail file: peak RSS {} MiB", rss_kb / 1024);
    assert!(rss_kb < 100 * 1024, "peak RSS {rss_kb} kB for a 50 MB file");
}

// Fails today: src/cloudtrail/ocsf.rs writes actor.user.type as CloudTrail's userIdentity.type
// ("IAMUser") beside type_id 1, where OCSF wants the caption of type_id ("User", "Admin",
// "System", "Other"). Remove the ignore with that fix.
#[tokio::test]
async fn ocsf_output_delivers_api_activity_events_that_pass_the_ocsf_checker() {
    let world = World::new("ocsf").await;
    world.upload(TRAIL, trail_body()).await;
    let event = world.event_file("direct.json", &s3_event(&[TRAIL]));
    let output = world.command(
        &["invoke", &event.to_string_lossy()],
        &[("OUTPUT_FORMAT", "ocsf")],
    );
    let response = response(&output);
    assert_eq!(response["receipts"][0]["records"], 3, "{response}");
    let lines = common::delivered_lines(&world.s3, DEST).await;
    let delivered: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).expect("delivered JSON"))
        .collect();
    assert_eq!(delivered.len(), 3);
    let mut activities = Vec::new();
    for record in &delivered {
        assert_eq!(record["class_uid"], 6003, "API Activity: {record}");
        assert_eq!(record["category_uid"], 6);
        assert_eq!(record["cloud"]["region"], "us-east-1");
        assert_eq!(record["src_endpoint"]["ip"], "192.0.2.10");
        assert_eq!(record["actor"]["user"]["name"], "alice", "{record}");
        let operation = record["api"]["operation"].as_str().expect("operation");
        let n: &str = record["metadata"]["uid"]
            .as_str()
            .and_then(|uid| uid.strip_prefix("evt-"))
            .expect("metadata.uid is the eventID");
        assert_eq!(record["api"]["request"]["uid"], format!("req-{n}"));
        activities.push((
            operation.to_string(),
            record["api"]["service"]["name"]
                .as_str()
                .map(str::to_string),
            record["activity_id"].as_u64(),
        ));
    }
    activities.sort();
    assert_eq!(
        activities,
        [
            (
                "CreateCluster".to_string(),
                Some("redshift.amazonaws.com".to_string()),
                Some(1)
            ),
            (
                "CreateWorkgroup".to_string(),
                Some("redshift-serverless.amazonaws.com".to_string()),
                Some(1)
            ),
            (
                "ExecuteStatement".to_string(),
                Some("redshift-data.amazonaws.com".to_string()),
                Some(99)
            ),
        ]
    );
    let ndjson: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let (valid, report) = common::ocsf_check(ndjson.as_bytes(), "cloudtrail-moto");
    assert!(valid, "OCSF checker refuses the events:\n{report}");
}

/// A trail file as CloudTrail writes it, with the events issue 17 found at the edges: forged
/// provenance names, fields of unexpected types, an event that is not JSON, a number out of
/// range and an event over the 1 MiB event limit.
fn hostile_trail_text() -> String {
    let mut forged = event(1, "redshift.amazonaws.com", "CreateCluster");
    for (k, v) in [
        ("id", json!("00000000000000000000000000000000")),
        ("account_id", json!("999999999999")),
        ("log_type", json!("connectionlog")),
        ("source", json!({"bucket": "evil", "key": "x"})),
    ] {
        forged[k] = v;
    }
    let mut typed = event(2, "redshift.amazonaws.com", "ModifyCluster");
    typed["eventName"] = Value::Null;
    typed["requestID"] = json!({"id": 1});
    typed["errorCode"] = json!(500);
    typed["errorMessage"] = json!({"text": "denied"});
    let elements = [
        forged.to_string(),
        typed.to_string(),
        r#"{"eventSource":"redshift.amazonaws.com","eventName":tru}"#.to_string(),
        r#"{"eventSource":"redshift.amazonaws.com","n":1e400}"#.to_string(),
        format!(
            r#"{{"eventSource":"redshift.amazonaws.com","pad":"{}"}}"#,
            "x".repeat(1100 * 1024)
        ),
    ];
    format!("{{\"Records\":[{}]}}", elements.join(","))
}

#[tokio::test]
async fn hostile_trail_events_are_delivered_without_duplicate_keys_and_as_ocsf_only() {
    let world = World::new("hostile").await;
    let ocsf_key = TRAIL.replace("AbCdEf", "Ocsf00");
    world
        .upload(TRAIL, common::gzip(&hostile_trail_text()))
        .await;
    world
        .upload(&ocsf_key, common::gzip(&hostile_trail_text()))
        .await;
    for (key, format) in [(TRAIL, "raw"), (ocsf_key.as_str(), "ocsf")] {
        let event = world.event_file(&format!("{format}.json"), &s3_event(&[key]));
        let output = world.command(
            &["invoke", &event.to_string_lossy()],
            &[("OUTPUT_FORMAT", format)],
        );
        let response = response(&output);
        assert_eq!(response["receipts"][0]["records"], 5, "{response}");
        assert_eq!(response["receipts"][0]["parse_errors"], 3, "{response}");
    }
    let lines = common::delivered_lines(&world.s3, DEST).await;
    assert_eq!(lines.len(), 10);
    for line in &lines {
        json_keys::check(line.as_bytes()).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    let (ocsf, raw): (Vec<Value>, Vec<Value>) = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON"))
        .partition(|r| r.get("class_uid").is_some());
    assert_eq!(
        (ocsf.len(), raw.len()),
        (5, 5),
        "every OCSF line is an event"
    );
    let ndjson: String = ocsf.iter().map(|e| format!("{e}\n")).collect();
    let (valid, report) = common::ocsf_check(ndjson.as_bytes(), "cloudtrail-moto-hostile");
    assert!(valid, "{report}");

    let by_event = |records: &[Value], unmapped: bool, n: u64| -> Value {
        records
            .iter()
            .find(|r| {
                let r = if unmapped { &r["unmapped"] } else { *r };
                r["source"]["event"] == n
            })
            .cloned()
            .unwrap_or_else(|| panic!("event {n}"))
    };
    let forged = by_event(&raw, false, 1);
    assert_eq!(forged["account_id"], "123456789012");
    assert_eq!(forged["source"]["bucket"], BUCKET);
    assert_eq!(forged["event_fields"]["account_id"], "999999999999");
    let cut = by_event(&raw, false, 5);
    assert!(cut["id"].as_str().unwrap().ends_with("-cut"), "{cut}");
    assert!(cut["raw_bytes"].as_u64() > Some(1024 * 1024));
    assert_eq!(cut["raw_xxh3"].as_str().map(str::len), Some(32));
    let typed = by_event(&ocsf, true, 2);
    assert_eq!(typed["class_uid"], 6003);
    assert_eq!(typed["unmapped"]["errorCode"], 500);
    for n in [3, 4, 5] {
        assert_eq!(by_event(&ocsf, true, n)["class_uid"], 0, "event {n}");
    }
    assert!(by_event(&ocsf, true, 5)["metadata"]["uid"]
        .as_str()
        .unwrap()
        .ends_with("-cut"));
}
