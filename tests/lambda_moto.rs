//! The Lambda path end to end against a private moto server: the real binary's `invoke` on each
//! event envelope, the records read back from the Firehose stream's destination bucket and
//! compared with what `parse` gives for the same files.
//!
//! How delivered records are compared with `parse`: the fixtures are written to a scratch folder
//! under the same relative path as their S3 key and `parse` runs there on that path, so its
//! `source.key` is the S3 key. Two fields still differ by design: `source.bucket` (`null` for a
//! local file) and `id` (a hash of bucket, key and record ordinal, so a different bucket gives a
//! different id). The expected record is `parse`'s with `source.bucket` set to the bucket and
//! `id` recomputed through the library's own `Provenance::record_id` for (bucket, key, ordinal);
//! `parse`'s own ids are first checked against the same function with no bucket, which pins the
//! ordinal each `parse` line stands for. Everything else must be equal as JSON values. That the
//! same object sent twice yields the same ids is checked separately, on the wire.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{put_object, Moto};
use redshift_audit_forwarder::key::parse_file_name;
use redshift_audit_forwarder::output::Provenance;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_redshift-audit-forwarder");
const BUCKET: &str = "audit-bucket";
const DEST: &str = "delivered";
const STREAM: &str = "redshift-audit";
const PREFIX: &str = "AWSLogs/123456789012/redshift/us-east-1";
const DAY: &str = "AWSLogs/123456789012/redshift/us-east-1/2024/03/01/";
const CONN: &str =
    "123456789012_redshift_us-east-1_analytics-prod_connectionlog_2024-03-01T00:53.gz";
const USER: &str = "123456789012_redshift_us-east-1_analytics-prod_userlog_2024-03-01T00:53.gz";
const ACTIVITY: &str =
    "123456789012_redshift_us-east-1_analytics-prod_useractivitylog_2024-03-01T00:53.gz";
/// `messageId`s of the two messages in `events/s3-sqs.json`: the first names ACTIVITY, the second
/// (an SNS envelope inside the SQS body) names CONN.
const SQS_ACTIVITY_MESSAGE: &str = "0b7e5c1a-3d2f-4e6a-9b8c-1f2e3d4c5b6a";
const SQS_CONN_MESSAGE: &str = "5d6e7f80-9a1b-4c2d-8e3f-a0b1c2d3e4f5";

// --- fixtures ----------------------------------------------------------------------------------

/// A connection log of `n` records in the three column layouts (2018, 2020, 2022+), with a line
/// that is no connection log record at all in the middle (forwarded as a parse error).
fn connection_log(n: usize) -> String {
    let mut text = String::new();
    for i in 0..n {
        let (second, ms) = (i % 60, (i * 37) % 1000);
        let line = match i % 3 {
            0 => format!(
                "authenticated |Fri, 1 Mar 2024 00:{:02}:{second:02}:{ms:03}|[local] | |{}|dev \
                 |rdsdb |Ident |0| | |0| | | |\n",
                i % 53,
                5108 + i
            ),
            1 => format!(
                "initiating session |Fri, 1 Mar 2024 00:{:02}:{second:02}:{ms:03}|::ffff:10.0.0.{} \
                 |{} |{}|dev |alice |password |0|TLSv1.2 |ECDHE-RSA-AES256-GCM-SHA384 |0| | | \
                 | |Linux 5.10 amd64 |Amazon Redshift JDBC Driver 2.1.0.26 |\n",
                i % 53,
                i % 250,
                40000 + i,
                1_073_742_045 + i
            ),
            _ => format!(
                "disconnecting session |Fri, 1 Mar 2024 00:{:02}:{second:02}:{ms:03}|10.1.2.{} \
                 |{} |{}|analytics |IAM:bob |IAM AssumeUser |{}|TLSv1.3 |TLS_AES_256_GCM_SHA384 \
                 |1500| | | |psql café |Windows 10 10.0 amd64 |libpq 16 |none \
                 |3|da9edc00-a1e6-44e0-8274-{:012}\n",
                i % 53,
                i % 250,
                50000 + i,
                9000 + i,
                i * 1_000_003,
                i
            ),
        };
        text.push_str(&line);
        if i == n / 2 {
            text.push_str("this line is no connection log record\n");
        }
    }
    text
}

fn user_log() -> String {
    [
        "1|rdsdb | |alter |1|1|1|9223372036854775807|14872|1061|Thu, 3 Dec 2020 10:18:38:416",
        "104|alice | |create |0|0|0| |14873|1062|Fri, 1 Mar 2024 00:10:00:001",
        "104|alice-renamed |alice |rename |0|0|0|infinity|14874|1063|Fri, 1 Mar 2024 00:11:00:002",
        "105|IAM:bob | |drop |0|0|0|2025-01-01 00:00:00|14875|1064|Fri, 1 Mar 2024 00:12:00:003",
    ]
    .join("\n")
        + "\n"
}

fn activity_log() -> String {
    "'2024-03-01T00:00:03Z UTC [ db=dev user=rdsdb pid=685 userid=1 xid=245578 ]' LOG: SET \
     statement_timeout TO 120000\n\
     '2024-03-01T00:01:55Z UTC [ db=dev user=rdsdb pid=23170 userid=1 xid=245636 ]' LOG: SELECT  \
     ss.node as node,\n        bc.temporary as temporary\nFROM    stv_slices as ss;\n\
     '2024-03-01T00:02:10Z UTC [ db=analytics user=IAM:bob pid=23171 userid=105 xid=245637 ]' \
     LOG: SELECT 'café' AS \"naïve\", '|' AS pipe\n\
     '2024-03-01T00:03:00Z UTC [ db=analytics user=alice pid=23172 userid=104 xid=245638 ]' LOG: \
     \n"
    .to_string()
}

/// The gzip body of a fixture for `file` (a Redshift file name), chosen by its log type.
fn fixture(file: &str) -> Vec<u8> {
    if file.contains("_connectionlog_") {
        common::gzip(&connection_log(12))
    } else if file.contains("_useractivitylog_") {
        common::gzip(&activity_log())
    } else {
        common::gzip(&user_log())
    }
}

// --- one test's world ----------------------------------------------------------------------------

/// A moto server with the audit bucket, the destination bucket and the delivery stream, and a
/// scratch folder that mirrors what was uploaded (for `parse`) and holds generated events.
struct World {
    moto: Moto,
    s3: aws_sdk_s3::Client,
    dir: PathBuf,
}

impl World {
    async fn new(test: &str) -> World {
        let (moto, s3, dir) =
            common::stream_world("lambda_moto", test, &[BUCKET], STREAM, DEST).await;
        World { moto, s3, dir }
    }

    /// Uploads `body` under `key` and keeps a copy at the same relative path for `parse`.
    async fn upload(&self, key: &str, body: Vec<u8>) {
        let local = self.dir.join("objects").join(key);
        std::fs::create_dir_all(local.parent().expect("key has a folder")).expect("mkdir");
        std::fs::write(&local, &body).expect("write fixture");
        put_object(&self.s3, BUCKET, key, body).await;
    }

    /// Uploads the fixture for a key in the sample day partition; returns the key.
    async fn upload_fixture(&self, file: &str) -> String {
        let key = format!("{DAY}{file}");
        self.upload(&key, fixture(file)).await;
        key
    }

    /// Writes a generated event into the scratch folder.
    fn event_file(&self, name: &str, event: &Value) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, serde_json::to_vec_pretty(event).expect("JSON")).expect("write");
        path
    }

    /// Runs `invoke EVENT` with the default settings, then `settings` on top.
    fn invoke(&self, event: &Path, settings: &[(&str, &str)]) -> Invoked {
        let mut command = Command::new(BIN);
        command.arg("invoke").arg(event);
        common::isolate(&mut command, &self.moto);
        command
            .env("DELIVERY_STREAM", STREAM)
            .env("AUDIT_BUCKET", BUCKET)
            .env("AUDIT_PREFIX", PREFIX)
            .envs(settings.iter().copied());
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
        Invoked::new(event, output)
    }

    /// What `parse` gives for the uploaded copies of `keys`, made comparable with the Lambda's
    /// records as the module documentation says.
    fn expected(&self, keys: &[&str]) -> Vec<Value> {
        let mut records = Vec::new();
        for key in keys {
            let output = Command::new(BIN)
                .arg("parse")
                .arg(key)
                .current_dir(self.dir.join("objects"))
                .output()
                .unwrap_or_else(|e| panic!("cannot run {BIN} parse: {e}"));
            assert!(
                output.status.success(),
                "parse {key} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let name = parse_file_name(key).expect("fixture keys are audit log names");
            let local = Provenance::new(name.log_type, Some(&name), None, key);
            let lambda = Provenance::new(name.log_type, Some(&name), Some(BUCKET), key);
            let lines = String::from_utf8(output.stdout).expect("parse writes UTF-8");
            for (ordinal, line) in lines.lines().enumerate() {
                let mut record: Value = serde_json::from_str(line).expect("parse writes JSON");
                assert!(
                    record.get("part").is_none(),
                    "fixtures are small: no record is split"
                );
                let ordinal = ordinal as u64;
                assert_eq!(
                    record["id"].as_str(),
                    Some(hex(local.record_id(ordinal)).as_str()),
                    "parse's id of {key} record {ordinal} is the id of (no bucket, key, ordinal)"
                );
                assert_eq!(record["source"]["bucket"], Value::Null, "parse: {record}");
                assert_eq!(record["source"]["key"].as_str(), Some(*key));
                record["source"]["bucket"] = json!(BUCKET);
                record["id"] = json!(hex(lambda.record_id(ordinal)));
                records.push(record);
            }
        }
        common::sorted_records(records)
    }

    /// The records the stream delivered, parsed, sorted.
    async fn delivered(&self) -> Vec<Value> {
        common::sorted_records(
            common::delivered_lines(&self.s3, DEST)
                .await
                .iter()
                .map(|line| {
                    serde_json::from_str(line)
                        .unwrap_or_else(|e| panic!("delivered line is not JSON ({e}): {line}"))
                })
                .collect(),
        )
    }
}

/// What one run of `invoke` did.
struct Invoked {
    event: PathBuf,
    success: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Invoked {
    fn new(event: &Path, output: Output) -> Invoked {
        Invoked {
            event: event.to_path_buf(),
            success: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts the run succeeded and returns the handler's response.
    fn response(&self) -> Value {
        assert!(
            self.success,
            "invoke {} exited with {:?}\nstdout:\n{}\nstderr:\n{}",
            self.event.display(),
            self.code,
            self.stdout,
            self.stderr
        );
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "invoke {} printed no JSON response ({e}):\n{}",
                self.event.display(),
                self.stdout
            )
        })
    }

    /// The receipts logged on stderr (one JSON line each, with a nested `receipt`).
    fn receipts(&self) -> Vec<Value> {
        self.stderr
            .lines()
            .filter(|line| line.contains("\"receipt\":"))
            .map(|line| {
                let log: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("receipt line is not JSON ({e}): {line}"));
                log["receipt"].clone()
            })
            .collect()
    }

    /// The receipt of `key`; there must be exactly one.
    fn receipt(&self, key: &str) -> Value {
        let found: Vec<Value> = self
            .receipts()
            .into_iter()
            .filter(|r| r["key"].as_str() == Some(key))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one receipt for {key}; stderr:\n{}",
            self.stderr
        );
        found.into_iter().next().expect("one receipt")
    }
}

fn hex(id: [u8; 32]) -> String {
    String::from_utf8(id.to_vec()).expect("hex digits")
}

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("events")
        .join(name)
}

/// A direct S3 notification for `keys`, each given as S3 would send it (URL-encoded).
fn s3_event(encoded_keys: &[&str]) -> Value {
    let records: Vec<Value> = encoded_keys
        .iter()
        .map(|key| common::s3_notification_record(BUCKET, key, "0"))
        .collect();
    json!({ "Records": records })
}

/// A key as S3 notifications carry it: a space as `+`, `/` and unreserved characters as they
/// are, every other byte (UTF-8 ones included) as `%XX`.
fn s3_url_encode(key: &str) -> String {
    let mut out = String::new();
    for &b in key.as_bytes() {
        match b {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'*' | b'/' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Asserts the delivered records are exactly `parse`'s for `keys` (see the module docs), and
/// that their ids look like ids and are unique.
async fn assert_delivered_equals_parse(world: &World, keys: &[&str]) {
    let expected = world.expected(keys);
    assert!(!expected.is_empty(), "the fixtures hold records");
    let delivered = world.delivered().await;
    assert_eq!(
        delivered.len(),
        expected.len(),
        "delivered as many records as parse gives for {keys:?}"
    );
    for (got, want) in delivered.iter().zip(&expected) {
        assert_eq!(got, want, "delivered record differs from parse's");
    }
    assert_ids_are_unique_hex(&delivered);
}

fn assert_ids_are_unique_hex(records: &[Value]) {
    let mut seen = HashSet::new();
    for record in records {
        let id = record["id"].as_str().expect("every record has an id");
        assert!(
            id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            "id is 32 lowercase hex digits: {id:?}"
        );
        assert!(seen.insert(id.to_string()), "id {id} is not unique");
    }
}

// --- envelopes ---------------------------------------------------------------------------------

#[tokio::test]
async fn direct_s3_event_delivers_what_parse_gives_and_the_same_ids_when_sent_again() {
    let world = World::new("direct").await;
    let key = world.upload_fixture(CONN).await;

    let first = world.invoke(&sample("s3-direct.json"), &[]);
    let response = first.response();
    let receipts = response["receipts"].as_array().expect("receipts");
    assert_eq!(receipts.len(), 1, "{response}");
    assert_eq!(receipts[0]["bucket"], BUCKET);
    assert_eq!(receipts[0]["key"].as_str(), Some(key.as_str()));
    assert_eq!(receipts[0]["records"], 13, "12 records and 1 parse error");
    assert_eq!(receipts[0]["parse_errors"], 1);
    assert_eq!(receipts[0], first.receipt(&key), "stdout and log agree");
    assert_delivered_equals_parse(&world, &[&key]).await;
    let once = world.delivered().await;

    // The same object sent again (S3 delivers at least once; the backfill may resend): every
    // record comes again, ids included, so a consumer can drop the duplicates. A fresh ledger
    // (STATE_PREFIX) makes sure the object is sent, not skipped as already done.
    world
        .invoke(
            &sample("s3-direct.json"),
            &[("STATE_PREFIX", "resend-state/")],
        )
        .response();
    let twice = world.delivered().await;
    let doubled = common::sorted_records(once.iter().chain(&once).cloned().collect());
    assert_eq!(
        twice, doubled,
        "the second delivery repeats the first exactly"
    );
}

#[tokio::test]
async fn sns_wrapped_event_delivers_what_parse_gives() {
    let world = World::new("sns").await;
    let key = world.upload_fixture(USER).await;
    let invoked = world.invoke(&sample("s3-sns.json"), &[]);
    let response = invoked.response();
    assert_eq!(response["receipts"][0]["key"].as_str(), Some(key.as_str()));
    assert_eq!(invoked.receipt(&key)["records"], 4);
    assert_delivered_equals_parse(&world, &[&key]).await;
}

#[tokio::test]
async fn sqs_batch_of_two_messages_delivers_both_objects_and_fails_none() {
    let world = World::new("sqs").await;
    let activity = world.upload_fixture(ACTIVITY).await;
    let conn = world.upload_fixture(CONN).await;
    let invoked = world.invoke(&sample("s3-sqs.json"), &[]);
    assert_eq!(invoked.response(), json!({ "batchItemFailures": [] }));
    assert_eq!(invoked.receipt(&activity)["records"], 4);
    assert_eq!(invoked.receipt(&conn)["records"], 13);
    assert_delivered_equals_parse(&world, &[&activity, &conn]).await;
}

#[tokio::test]
async fn eventbridge_object_created_delivers_what_parse_gives() {
    let world = World::new("eventbridge").await;
    let key = world.upload_fixture(ACTIVITY).await;
    let invoked = world.invoke(&sample("s3-eventbridge.json"), &[]);
    let response = invoked.response();
    assert_eq!(response["receipts"][0]["key"].as_str(), Some(key.as_str()));
    assert_eq!(invoked.receipt(&key)["records"], 4);
    assert_delivered_equals_parse(&world, &[&key]).await;
}

#[tokio::test]
async fn s3_test_event_is_ignored_and_delivers_nothing() {
    let world = World::new("test-event").await;
    // An object is there, so anything forwarded would show up.
    world.upload_fixture(CONN).await;
    let invoked = world.invoke(&sample("s3-test-event.json"), &[]);
    assert_eq!(invoked.response(), json!({ "receipts": [] }));
    assert!(invoked.receipts().is_empty(), "{}", invoked.stderr);
    assert!(
        invoked.stderr.contains("s3:TestEvent"),
        "says why: {}",
        invoked.stderr
    );
    assert!(world.delivered().await.is_empty());
}

// --- keys ----------------------------------------------------------------------------------------

#[tokio::test]
async fn url_encoded_keys_are_decoded_to_the_real_key() {
    let world = World::new("encoded-keys").await;
    // `=`, `+` and `%` in the (ASCII) audit prefix; a space and non-ASCII below it.
    let prefix = "custom=prefix+x%y";
    let conn = format!("{prefix}/a b/é/{DAY}{CONN}");
    let user = format!("{prefix}/a b/é/{DAY}{USER}");
    world.upload(&conn, fixture(CONN)).await;
    world.upload(&user, fixture(USER)).await;
    let (conn_encoded, user_encoded) = (s3_url_encode(&conn), s3_url_encode(&user));
    assert!(
        conn_encoded.starts_with("custom%3Dprefix%2Bx%25y/a+b/%C3%A9/AWSLogs/")
            && conn_encoded.ends_with("T00%3A53.gz"),
        "encoded as S3 does: {conn_encoded}"
    );
    let event = world.event_file("encoded.json", &s3_event(&[&conn_encoded, &user_encoded]));

    let invoked = world.invoke(&event, &[("AUDIT_PREFIX", prefix)]);
    let response = invoked.response();
    let keys: Vec<&str> = response["receipts"]
        .as_array()
        .expect("receipts")
        .iter()
        .filter_map(|r| r["key"].as_str())
        .collect();
    assert_eq!(keys, vec![conn.as_str(), user.as_str()]);
    let delivered = world.delivered().await;
    let delivered_keys: HashSet<&str> = delivered
        .iter()
        .filter_map(|r| r["source"]["key"].as_str())
        .collect();
    assert_eq!(
        delivered_keys,
        HashSet::from([conn.as_str(), user.as_str()])
    );
    assert_delivered_equals_parse(&world, &[&conn, &user]).await;
}

// --- bodies ------------------------------------------------------------------------------------

#[tokio::test]
async fn zero_byte_object_succeeds_with_zero_records() {
    let world = World::new("zero-bytes").await;
    let key = format!("{DAY}{CONN}");
    world.upload(&key, Vec::new()).await;
    let invoked = world.invoke(&sample("s3-direct.json"), &[]);
    let response = invoked.response();
    let receipt = &response["receipts"][0];
    assert_eq!(receipt["key"].as_str(), Some(key.as_str()), "{response}");
    assert_eq!(receipt["records"], 0);
    assert_eq!(receipt["sent_lines"], 0);
    assert_eq!(receipt["firehose_records"], 0);
    assert_eq!(receipt["object_bytes"], 0);
    assert_eq!(invoked.receipt(&key)["records"], 0);
    assert!(world.delivered().await.is_empty());
}

#[tokio::test]
async fn missing_object_fails_a_direct_invocation_naming_it() {
    let world = World::new("missing-direct").await;
    let invoked = world.invoke(&sample("s3-direct.json"), &[]);
    assert!(
        !invoked.success,
        "a missing object fails the invocation; stdout:\n{}",
        invoked.stdout
    );
    let url = format!("s3://{BUCKET}/{DAY}{CONN}");
    assert!(
        invoked.stderr.contains(&url),
        "the error names {url}:\n{}",
        invoked.stderr
    );
    assert!(invoked.stdout.trim().is_empty(), "no response on failure");
    assert!(world.delivered().await.is_empty());
}

#[tokio::test]
async fn missing_object_in_sqs_batch_fails_only_its_message() {
    let world = World::new("missing-sqs").await;
    // The first message's object (the activity log) is missing; the second's is there.
    let conn = world.upload_fixture(CONN).await;
    let invoked = world.invoke(&sample("s3-sqs.json"), &[]);
    assert_eq!(
        invoked.response(),
        json!({ "batchItemFailures": [{ "itemIdentifier": SQS_ACTIVITY_MESSAGE }] })
    );
    assert!(
        invoked
            .stderr
            .contains(&format!("s3://{BUCKET}/{DAY}{ACTIVITY}")),
        "the log names the missing object:\n{}",
        invoked.stderr
    );
    assert_eq!(invoked.receipt(&conn)["records"], 13);
    assert!(!invoked.stdout.contains(SQS_CONN_MESSAGE));
    assert_delivered_equals_parse(&world, &[&conn]).await;
}

// --- packing -----------------------------------------------------------------------------------

#[tokio::test]
async fn packed_and_unpacked_deliver_the_same_records_in_fewer_firehose_records() {
    let world = World::new("packing").await;
    let conn = format!("{DAY}{CONN}");
    world.upload(&conn, common::gzip(&connection_log(60))).await;
    let user = world.upload_fixture(USER).await;
    let event = world.event_file("two.json", &s3_event(&[&conn, &user]));
    let records = |key: &str| if key == conn { 61 } else { 4 };

    // Each run has a ledger of its own (STATE_PREFIX), so neither skips the objects as done.
    let unpacked = world.invoke(
        &event,
        &[
            ("PACK_RECORDS", "false"),
            ("STATE_PREFIX", "unpacked-state/"),
        ],
    );
    unpacked.response();
    let unpacked_lines = common::delivered_lines(&world.s3, DEST).await;
    // Clear the destination so the packed run's delivery can be read alone.
    for (key, _) in common::read_all_objects(&world.s3, DEST, "").await {
        world
            .s3
            .delete_object()
            .bucket(DEST)
            .key(&key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("delete {key}: {e:?}"));
    }
    assert!(world.delivered().await.is_empty());
    let packed = world.invoke(
        &event,
        &[("PACK_RECORDS", "true"), ("STATE_PREFIX", "packed-state/")],
    );
    packed.response();
    let packed_lines = common::delivered_lines(&world.s3, DEST).await;

    assert_eq!(unpacked_lines.len(), 65);
    assert_eq!(
        packed_lines, unpacked_lines,
        "the same lines, packed or not"
    );
    assert_delivered_equals_parse(&world, &[&conn, &user]).await;

    for key in [conn.as_str(), user.as_str()] {
        let (u, p) = (unpacked.receipt(key), packed.receipt(key));
        let n = records(key);
        let num = |r: &Value, field: &str| {
            r[field]
                .as_u64()
                .unwrap_or_else(|| panic!("{field} in {r}"))
        };
        assert_eq!(num(&u, "records"), n);
        assert_eq!(num(&p, "records"), n);
        assert_eq!(num(&u, "sent_lines"), n);
        assert_eq!(num(&p, "sent_lines"), n);
        // One line a Firehose record without packing; all of them in one record with it (they
        // are far below the 1,000 KiB record limit).
        assert_eq!(num(&u, "firehose_records"), n, "{u}");
        assert_eq!(num(&p, "firehose_records"), 1, "{p}");
        assert_eq!(num(&u, "payload_bytes"), num(&p, "payload_bytes"));
        // Billing rounds each record up to 5 KiB: every small line bills a whole unit unpacked;
        // packed, the payload is billed about once.
        let payload = num(&p, "payload_bytes");
        assert_eq!(num(&u, "billed_bytes"), n * 5 * 1024, "{u}");
        assert_eq!(
            num(&p, "billed_bytes"),
            payload.div_ceil(5 * 1024) * 5 * 1024
        );
        assert!(num(&p, "billed_bytes") < num(&u, "billed_bytes"));
    }
}

// --- filtering ---------------------------------------------------------------------------------

#[tokio::test]
async fn key_outside_audit_prefix_delivers_nothing() {
    let world = World::new("outside-prefix").await;
    world.upload_fixture(CONN).await;
    let direct = sample("s3-direct.json");
    // A string prefix of the key that is not one of its folders, and another account's folder.
    for prefix in [
        "AWSLogs/123456789012/redshift/us-east",
        "AWSLogs/999999999999/redshift/us-east-1",
    ] {
        let invoked = world.invoke(&direct, &[("AUDIT_PREFIX", prefix)]);
        assert_eq!(invoked.response(), json!({ "receipts": [] }), "{prefix}");
        assert!(
            invoked.stderr.contains("outside the audit prefix"),
            "says why: {}",
            invoked.stderr
        );
        assert!(world.delivered().await.is_empty(), "{prefix}");
    }
    // The same event under the right prefix is forwarded: the set-up above could deliver.
    world
        .invoke(&direct, &[("AUDIT_PREFIX", PREFIX)])
        .response();
    assert!(!world.delivered().await.is_empty());
}

#[tokio::test]
async fn log_type_not_selected_delivers_nothing() {
    let world = World::new("log-types").await;
    world.upload_fixture(USER).await;
    let sns = sample("s3-sns.json");
    let invoked = world.invoke(&sns, &[("LOG_TYPES", "connectionlog,useractivitylog")]);
    assert_eq!(invoked.response(), json!({ "receipts": [] }));
    assert!(
        invoked.stderr.contains("not selected in LOG_TYPES"),
        "says why: {}",
        invoked.stderr
    );
    assert!(world.delivered().await.is_empty());
    world.invoke(&sns, &[("LOG_TYPES", "userlog")]).response();
    assert!(!world.delivered().await.is_empty());
}

// --- output format and redaction (issue 8) -------------------------------------------------------

#[tokio::test]
async fn output_format_ocsf_delivers_events_that_validate_with_the_records_ids() {
    let world = World::new("ocsf").await;
    let keys = [
        world.upload_fixture(CONN).await,
        world.upload_fixture(USER).await,
        world.upload_fixture(ACTIVITY).await,
    ];
    let encoded: Vec<&str> = keys.iter().map(String::as_str).collect();
    let event = world.event_file("ocsf.json", &s3_event(&encoded));
    world
        .invoke(
            &event,
            &[("OUTPUT_FORMAT", "ocsf"), ("PACK_RECORDS", "false")],
        )
        .response();
    let lines = common::delivered_lines(&world.s3, DEST).await;
    let (ok, report) = common::ocsf_check((lines.join("\n") + "\n").as_bytes(), "lambda-ocsf");
    assert!(ok, "{report}");
    // One event per record parse gives, each carrying that record's id as metadata.uid.
    let expected: HashSet<String> = world
        .expected(&encoded)
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_string())
        .collect();
    let uids: HashSet<String> = lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("JSON");
            v["metadata"]["uid"]
                .as_str()
                .expect("metadata.uid")
                .to_string()
        })
        .collect();
    assert_eq!(lines.len(), expected.len());
    assert_eq!(uids, expected);
}

#[tokio::test]
async fn secrets_in_statements_never_reach_firehose_and_the_receipt_counts_them() {
    let world = World::new("redact").await;
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let text = format!(
        "'2024-03-01T00:10:00Z UTC [ db=dev user=etl pid=1 userid=100 xid=7 ]' LOG: COPY t FROM 's3://b/k'\n\
         ACCESS_KEY_ID 'AKIAIOSFODNN7EXAMPLE'\nSECRET_ACCESS_KEY '{secret}';\n\
         '2024-03-01T00:10:01Z UTC [ db=dev user=etl pid=1 userid=100 xid=8 ]' LOG: SELECT 1\n"
    );
    let key = format!("{DAY}{ACTIVITY}");
    world.upload(&key, common::gzip(&text)).await;
    let event = world.event_file("redact.json", &s3_event(&[key.as_str()]));
    let invoked = world.invoke(&event, &[]);
    invoked.response();
    let receipt = invoked.receipt(&key);
    assert_eq!(receipt["records"], 2);
    assert_eq!(receipt["redacted_records"], 1);
    let delivered = common::delivered_lines(&world.s3, DEST).await.join("\n");
    assert!(!delivered.contains(secret), "{delivered}");
    assert!(!delivered.contains("IOSFODNN7EXAMPLE"), "{delivered}");
    assert!(
        delivered.contains("SECRET_ACCESS_KEY '[REDACTED]'"),
        "{delivered}"
    );
}
