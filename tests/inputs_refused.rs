//! Inputs that cannot be what they claim to be (issue 17, "Where it stands" item 9), through the
//! real binary: a CloudWatch Logs batch whose `owner` is not an account or whose log group is
//! longer than CloudWatch allows, an empty trail file, a trail file name whose time cannot
//! exist. `parse` on saved files, and `invoke` against a private moto server for the Lambda
//! path.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_redshift-audit-forwarder");
const CONN: &str =
    "authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | |";
const GROUP: &str = "/aws/redshift/cluster/prod/connectionlog";
const TRAIL_NAME: &str =
    "123456789012_CloudTrail_us-east-1_20240301T0055Z_AbCdEf0123456789.json.gz";

/// A subscription event as CloudWatch Logs sends it, from `owner` and `group`.
fn subscription(owner: &str, group: &str) -> Value {
    let payload = json!({"messageType": "DATA_MESSAGE", "owner": owner, "logGroup": group,
        "logStream": "stream-a", "subscriptionFilters": ["f"],
        "logEvents": [{"id": "37999999999999999999999999999999999999999999999999999990",
                       "timestamp": 1_709_251_201_000i64, "message": CONN}]});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(payload.to_string().as_bytes()).expect("gzip");
    let data = base64::engine::general_purpose::STANDARD.encode(gz.finish().expect("gzip"));
    json!({"awslogs": {"data": data}})
}

/// A folder of its own for a test's files, under cargo's temp dir.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("inputs_refused")
        .join(format!("{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

fn parse(file: &Path) -> Output {
    let mut command = Command::new(BIN);
    for name in common::setting_names() {
        command.env_remove(name);
    }
    command
        .arg("parse")
        .arg(file)
        .env("AWS_REGION", common::REGION)
        .output()
        .expect("run parse")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_batch_whose_owner_is_not_an_account_id_is_refused_naming_it() {
    let dir = scratch("owner");
    for owner in ["12345", "not-an-account", "1234567890123"] {
        let file = dir.join("batch.json");
        std::fs::write(&file, subscription(owner, GROUP).to_string()).unwrap();
        let out = parse(&file);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{owner}: {err}");
        assert!(out.stdout.is_empty(), "{owner}: a record went out");
        assert!(
            err.contains("not a 12-digit AWS account ID") && err.contains(owner),
            "{err}"
        );
    }
    // A 100 KB owner is quoted in excerpt.
    let file = dir.join("long.json");
    std::fs::write(&file, subscription(&"7".repeat(100_000), GROUP).to_string()).unwrap();
    let out = parse(&file);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.len() < 1000, "{} bytes", err.len());
    assert!(err.contains("(100000 bytes)"), "{err}");
}

#[test]
fn a_log_group_longer_than_cloudwatch_allows_is_refused_in_excerpt() {
    let dir = scratch("group");
    let group = format!("/aws/redshift/{}/connectionlog", "n".repeat(5000));
    let file = dir.join("batch.json");
    std::fs::write(&file, subscription("123456789012", &group).to_string()).unwrap();
    let out = parse(&file);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty());
    assert!(err.contains("CloudWatch Logs allows at most 512"), "{err}");
    assert!(!err.contains(&"n".repeat(100)), "the group is echoed whole");
}

#[test]
fn an_empty_trail_file_or_empty_gzip_warns_naming_it() {
    let dir = scratch("empty");
    for (what, body) in [
        ("empty file", Vec::new()),
        ("empty gzip", common::gzip("")),
        ("blank gzip", common::gzip("  \n")),
    ] {
        let file = dir.join(TRAIL_NAME);
        std::fs::write(&file, &body).unwrap();
        let out = parse(&file);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{what}: {err}");
        assert!(out.stdout.is_empty(), "{what}");
        let line = err
            .lines()
            .find(|l| l.contains("warning: empty"))
            .unwrap_or_else(|| panic!("{what}: no warning: {err:?}"));
        assert!(line.contains(TRAIL_NAME), "{what}: {line}");
    }
    // A trail file with no event at all is not empty: no warning.
    let file = dir.join(TRAIL_NAME);
    std::fs::write(&file, common::gzip(r#"{"Records": []}"#)).unwrap();
    let out = parse(&file);
    assert_eq!(out.status.code(), Some(0));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}

#[test]
fn a_trail_file_name_with_an_impossible_time_says_the_time_is_impossible() {
    let dir = scratch("time");
    for (time, reason) in [
        ("20240230T0055Z", "day out of range"),
        ("20240301T2500Z", "hour out of range"),
        ("20241301T0055Z", "month out of range"),
    ] {
        let name = format!("123456789012_CloudTrail_us-east-1_{time}_AbCdEf0123456789.json.gz");
        let file = dir.join(&name);
        std::fs::write(&file, common::gzip(r#"{"Records": []}"#)).unwrap();
        let out = parse(&file);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{time}: {err}");
        assert!(
            err.contains(&format!("file time \"{time}\"")) && err.contains(reason),
            "{time}: {err}"
        );
        assert!(!err.contains("not \"redshift\""), "{time}: {err}");
    }
}

const BUCKET: &str = "trail-bucket";
const DEST: &str = "delivered";
const STREAM: &str = "redshift-audit";

fn invoke(moto: &common::Moto, event: &Path, vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command.arg("invoke").arg(event);
    common::isolate(&mut command, moto);
    command
        .env("DELIVERY_STREAM", STREAM)
        .env("AUDIT_BUCKET", BUCKET)
        .envs(vars.iter().copied());
    command.output().expect("run the binary")
}

#[tokio::test]
async fn on_the_lambda_path_the_same_inputs_are_refused_or_warned_about() {
    let (moto, s3, dir) =
        common::stream_world("inputs_refused", "lambda", &[BUCKET], STREAM, DEST).await;

    // A batch owned by no account: the invocation fails naming the owner, nothing delivered.
    let event = dir.join("owner.json");
    std::fs::write(&event, subscription("12345", GROUP).to_string()).unwrap();
    let out = invoke(&moto, &event, &[]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("owner \"12345\" is not a 12-digit"), "{err}");

    // An empty trail object: forwarded as nothing, with a WARN line naming it.
    let key = format!("AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/01/{TRAIL_NAME}");
    common::put_object(&s3, BUCKET, &key, common::gzip("")).await;
    let event = dir.join("trail.json");
    let records = json!({"Records": [common::s3_notification_record(BUCKET, &key, "0")]});
    std::fs::write(&event, records.to_string()).unwrap();
    let out = invoke(&moto, &event, &[("LOG_TYPES", "cloudtrail")]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let warn = err
        .lines()
        .find(|l| l.contains("empty: no CloudTrail document"))
        .unwrap_or_else(|| panic!("no warning: {err}"));
    assert!(warn.contains(&key) && warn.contains("WARN"), "{warn}");
    assert!(common::delivered_lines(&s3, DEST).await.is_empty());
}
