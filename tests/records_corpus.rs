//! Every record of the test corpus, of every source, in both formats, is read back with
//! duplicate-key detection, and every OCSF line is validated with pydantic-ocsf 1.1.0
//! (`scripts/ocsf_check.py`) (issue 17, "Prove it"; docs/RECORDS.md).
//!
//! The corpus runs through the real binary's `parse`: audit logs of the three types with
//! hostile and malformed lines (empty columns, secrets in any column, control bytes, invalid
//! UTF-8, over-long lines, extra columns, a file cut short), trail files as CloudTrail writes
//! them with events of unexpected field types, unreadable events, forged provenance names and
//! an event over the 1 MiB limit, and CloudWatch Logs subscription batches of each log type.

mod common;
#[path = "common/json_keys.rs"]
mod json_keys;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use redshift_audit_forwarder::logs::LogType;
use redshift_audit_forwarder::output::RECORD_FIELDS;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_redshift-audit-forwarder");
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn connection_lines() -> Vec<String> {
    let mut lines: Vec<String> = [
        "authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | |",
        "initiating session |Tue, 8 Dec 2020 20:01:55:177|::ffff:10.0.0.1 |5439 |5108|dev |rdsdb |password |0|TLSv1.2 |ECDHE-RSA-AES256-GCM-SHA384 |1500| | | |psql |Linux 5.4 |libpq 13 |",
        "authentication failure |Mon, 16 Mar 2022 08:18:14:766|::ffff:223.233.72.13 |1224 |1073742045|dev |alice |password |0|TLSv1.2 |ECDHE-RSA-AES256-GCM-SHA384 |0| | | | |Windows 10 10.0 amd64 |JDBC |none |0|da9edc00-a1e6-44e0-8274-9417e5f355de",
        "disconnecting session |Mon, 16 Mar 2022 09:18:14:766|10.1.2.3 |50000 |1073742045|dev |IAM:alice |IAM AssumeUser |3600000123|TLSv1.2 |x |0| | |guid | |Windows |JDBC |none |2|da9edc00|zstd |future column|another",
        "set application_name |Mon, 16 Mar 2022 09:18:14:766|2001:db8::1 |50000 |77|dev |bob |password |0| | |0| | | |my app |",
        // Empty and blank event columns.
        "|Mon, 16 Mar 2022 09:18:14:766|10.1.2.3 |50000 |77|dev |bob |password |0| | |0| | | |",
        "  |Mon, 16 Mar 2022 09:18:14:766| | |77| | | |0| | |0| | | |",
        // Hostile: a secret in the time column, a port out of range, quotes and backslashes.
        "authenticated |aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY AKIAIOSFODNN7EXAMPLE PASSWORD 'hunter2'|[local] | |1| | | |0| | |0| | |",
        "authenticated |Mon, 7 Dec 2020 20:01:55:177|not-an-ip \"q\" \\ |99999 |1|d\"b |u\\ser |x |0| | |0| | |",
        "authenticated |Mon, 7 Dec 2020 20:01:55:177|10.0.0.1 |-1 |1|dev |u |x |0| | |0| | |",
        "||||||||||||||",
        "not a connection line",
        "",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    lines.push(format!(
        "authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] |{} |1|dev |u |x |0| | |0| | |",
        "9".repeat(100_000)
    ));
    lines.push(format!("junk {}", "x".repeat(70 * 1024)));
    lines
}

fn user_lines() -> Vec<String> {
    [
        "100|bob | |create |0|0|0|9223372036854775807|14872|1061|Thu, 3 Dec 2020 10:18:38:416",
        "1|rdsdb | |alter |1|1|1|9223372036854775807|14872|1061|Thu, 3 Dec 2020 10:18:38:416",
        "100|robert |bob |rename |0|0|0| |14872|1062|Thu, 3 Dec 2020 10:18:39:416",
        "100|robert | |drop |0|0|0|2030-01-01 00:00:00|14872|1063|Thu, 3 Dec 2020 10:18:40:416",
        "100|bob | | |0|0|0| |14872|1061|Thu, 3 Dec 2020 10:18:38:416",
        "PASSWORD 'hunter2'|bob | |create |0|0|0| |14872|1061|Thu, 3 Dec 2020 10:18:38:416",
        "100|bob | |create |0|0|0| |14872|1061|Thu, 3 Dec 2020 10:18:38:416|extra|more",
        "garbage|",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn activity_text() -> String {
    let header = |xid: u32| {
        format!(
            "'2020-12-08T22:01:55Z UTC [ db=dev user=rdsdb pid=23170 userid=1 xid={xid} ]' LOG: "
        )
    };
    let statements = [
        "SELECT 1".to_string(),
        format!("copy t from 's3://b/p' credentials 'aws_access_key_id=AKIAIOSFODNN7EXAMPLE;aws_secret_access_key={SECRET}' csv"),
        "create user bob password 'Hunter2-is-my-password'".into(),
        "insert into t values ('\"quoted\" \\ backslash')".into(),
        "vacuum".into(),
        "".into(),
        format!("select '{}'", "long text\n".repeat(150_000)),
    ];
    let mut log = String::from("text before the first header\n");
    for (i, s) in statements.iter().enumerate() {
        log.push_str(&header(245_000 + i as u32));
        log.push_str(s);
        log.push('\n');
    }
    log
}

/// Control bytes and invalid UTF-8, which no audit log holds.
fn hostile_bytes(good: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&[0u8; 4096]);
    bytes.push(b'\n');
    bytes.extend_from_slice(b"\x1b[31m\x7f\x01|\xff\xfe|\xc3\n");
    bytes.extend_from_slice(good.as_bytes());
    bytes.extend_from_slice(b"\n\xff\xff\xff\n");
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn audit_name(log_type: &str, minute: u32) -> String {
    format!(
        "123456789012_redshift_us-east-1_analytics-prod_{log_type}_2024-03-01T00:{minute:02}.gz"
    )
}

fn trail_event(n: usize, edits: Value) -> String {
    let mut e = json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLE:alice", "arn": "arn:aws:sts::123456789012:assumed-role/Admin/alice",
            "accountId": "123456789012", "accessKeyId": "ASIAEXAMPLE",
            "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE", "arn": "arn:aws:iam::123456789012:role/Admin", "accountId": "123456789012", "userName": "Admin"},
                               "attributes": {"creationDate": "2024-03-01T00:00:00Z", "mfaAuthenticated": "false"}}},
        "eventTime": "2024-03-01T00:50:00Z",
        "eventSource": "redshift.amazonaws.com",
        "eventName": "CreateCluster",
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
    });
    for (k, v) in edits.as_object().unwrap() {
        e[k] = v.clone();
    }
    e.to_string()
}

/// Trail elements of every kind the renderings meet, as written.
fn trail_elements() -> Vec<Vec<u8>> {
    let mut elements: Vec<Vec<u8>> = vec![
        trail_event(1, json!({})),
        trail_event(2, json!({"eventName": null})),
        trail_event(3, json!({"requestID": {"a": 1}})),
        trail_event(4, json!({"errorCode": 500, "errorMessage": {"m": 1}})),
        trail_event(5, json!({"errorCode": "AccessDenied", "errorMessage": "no"})),
        trail_event(6, json!({"eventTime": "not a time", "eventID": 5, "awsRegion": [1]})),
        trail_event(7, json!({"userIdentity": {"type": 1, "principalId": {}, "sessionContext": 3}})),
        trail_event(8, json!({"id": "forged", "account_id": "999999999999", "log_type": "x",
                              "source": {"bucket": "evil"}, "region": "r", "cluster": "c", "file_time": "t",
                              "namespace": "n", "batch_end": true, "truncated": false, "event_fields": 1,
                              "raw": "r", "raw_bytes": 1, "raw_xxh3": "x", "part": 1, "parts": 2})),
        trail_event(9, json!({"eventSource": "redshift-data.amazonaws.com", "eventName": "ExecuteStatement",
                              "sourceIPAddress": "redshift.amazonaws.com", "userIdentity": {"type": "AWSService", "invokedBy": "redshift.amazonaws.com"}})),
        trail_event(10, json!({"eventSource": "s3.amazonaws.com"})),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    for raw in [
        r#"{"eventSource":"redshift.amazonaws.com","eventName":tru}"#,
        r#"{"eventSource":"redshift.amazonaws.com","n":1e400,"eventTime":"2024-03-01T00:51:00Z"}"#,
        r#"{"eventSource":"redshift.amazonaws.com","r":{"k":1,"k":2}}"#,
        r#"{"eventSource":"redshift.amazonaws.com","\u0069d":"escaped","eventTime":"2024-03-01T00:51:00Z"}"#,
        r#"{"eventName":"NoSource"}"#,
        "7",
        "\"text\"",
        "{\n  \"eventSource\": \"redshift.amazonaws.com\",\r\n  \"eventName\": \"Pretty\"\n}",
    ] {
        elements.push(raw.as_bytes().to_vec());
    }
    elements.push(
        format!(
            r#"{{"eventSource":"redshift.amazonaws.com","x":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        )
        .into_bytes(),
    );
    elements.push(
        format!(
            r#"{{"eventSource":"redshift.amazonaws.com","eventName":"Big","pad":"{}"}}"#,
            "\\u0001".repeat(300_000)
        )
        .into_bytes(),
    );
    let mut bad_utf8 =
        br#"{"eventSource":"redshift.amazonaws.com","eventName":"Bytes","v":""#.to_vec();
    bad_utf8.extend_from_slice(b"\xff\xfe");
    bad_utf8.extend_from_slice(br#""}"#);
    elements.push(bad_utf8);
    elements
}

/// A subscription event as CloudWatch Logs delivers it.
fn subscription(group: &str, messages: &[String]) -> Vec<u8> {
    let events: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            json!({"id": format!("38000000000000000000000000000000000000000000000000{i:06}"),
                   "timestamp": 1_709_254_512_000_i64 + i as i64, "message": m})
        })
        .collect();
    let data = json!({"messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": group,
                      "logStream": "stream-1", "subscriptionFilters": ["f"], "logEvents": events});
    let b64 =
        base64::engine::general_purpose::STANDARD.encode(gzip(&serde_json::to_vec(&data).unwrap()));
    serde_json::to_vec(&json!({"awslogs": {"data": b64}})).unwrap()
}

/// The corpus's files under `dir`: (path relative to `dir`, may the parse fail).
fn write_corpus(dir: &Path) -> Vec<(PathBuf, bool)> {
    let mut files = Vec::new();
    let mut put = |name: String, bytes: Vec<u8>, may_fail: bool| {
        let path = dir.join(&name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        files.push((PathBuf::from(name), may_fail));
    };
    let conn = connection_lines().join("\n");
    let user = user_lines().join("\n");
    let act = activity_text();
    put(audit_name("connectionlog", 1), gzip(conn.as_bytes()), false);
    put(audit_name("userlog", 1), gzip(user.as_bytes()), false);
    put(
        audit_name("useractivitylog", 1),
        gzip(act.as_bytes()),
        false,
    );
    put(
        audit_name("connectionlog", 2),
        gzip(&hostile_bytes(&connection_lines()[0])),
        false,
    );
    put(
        audit_name("userlog", 2),
        gzip(&hostile_bytes(&user_lines()[0])),
        false,
    );
    put(
        audit_name("useractivitylog", 2),
        gzip(&hostile_bytes(&act)),
        false,
    );
    // Cut short: the records before the cut, the one in hand with a -cut id.
    let whole = gzip(act.as_bytes());
    put(
        audit_name("useractivitylog", 3),
        whole[..whole.len() / 2].to_vec(),
        true,
    );
    // A file whose name is not Redshift's: provenance fields null.
    put(
        "local-connectionlog.log".into(),
        conn.clone().into_bytes(),
        false,
    );

    let elements = trail_elements();
    let records = |els: &[Vec<u8>]| {
        let mut text = b"{\"Records\":[".to_vec();
        text.extend_from_slice(&els.join(&b","[..]));
        text.extend_from_slice(b"]}");
        text
    };
    put(
        "AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/01/123456789012_CloudTrail_us-east-1_20240301T0055Z_Corpus0123456789.json.gz".into(),
        gzip(&records(&elements)),
        false,
    );
    let mut big = elements[..2].to_vec();
    big.push(
        format!(
            r#"{{"eventSource":"redshift.amazonaws.com","eventName":"Huge","pad":"{}"}}"#,
            "h".repeat(1200 * 1024)
        )
        .into_bytes(),
    );
    put(
        "AWSLogs/o-abcdef1234/210987654321/CloudTrail/eu-west-1/2024/03/02/210987654321_CloudTrail_eu-west-1_20240302T1200Z_Big0123456789.json.gz".into(),
        gzip(&records(&big)),
        false,
    );
    put(
        "123456789012_CloudTrail_ap-southeast-2_20240301T0000Z_plain.json".into(),
        records(&elements[..3]),
        false,
    );

    for (group, lines) in [
        ("/aws/redshift/cluster/prod/connectionlog", connection_lines()),
        ("/aws/redshift/cluster/prod/userlog", user_lines()),
        ("/aws/redshift/analytics-ns/useractivitylog", vec![
            "'2020-12-08T22:01:55Z UTC [ db=dev user=alice pid=1 userid=100 xid=2 ]' LOG: SELECT a,".to_string(),
            "  b FROM t;".to_string(),
            format!("'2020-12-08T22:01:56Z UTC [ db=dev user=alice pid=1 userid=100 xid=3 ]' LOG: copy t from 's3://b' credentials 'aws_secret_access_key={SECRET}'"),
            "'2020-12-08T22:01:57Z UTC [ db=dev user=alice pid=1 userid=100 xid=4 ]' LOG: select 'cut by the end".to_string(),
        ]),
    ] {
        let name = format!("cloudwatch-{}.json", group.rsplit('/').next().unwrap());
        put(name, subscription(group, &lines), false);
    }
    files
}

/// `parse --format <format>` of one corpus file: stdout.
fn parse(dir: &Path, file: &Path, may_fail: bool, format: &str) -> Vec<u8> {
    // A file whose name is not Redshift's needs its log type.
    let named = !file.to_string_lossy().starts_with("local-");
    let log_type: &[&str] = if named {
        &[]
    } else {
        &["--log-type", "connectionlog"]
    };
    let out = Command::new(BIN)
        .args(["parse", "--format", format])
        .args(log_type)
        .arg(file)
        .current_dir(dir)
        .env_remove("OUTPUT_FORMAT")
        .env_remove("REDACT_SECRETS")
        .env_remove("CLOUDTRAIL_EVENT_SOURCES")
        .env("AWS_REGION", "us-east-1")
        .stdin(Stdio::null())
        .output()
        .expect("run the binary");
    assert!(
        may_fail || out.status.success(),
        "{}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.stdout.is_empty(), "{} gave no records", file.display());
    out.stdout
}

#[test]
fn every_corpus_record_of_every_source_has_no_key_twice_and_every_ocsf_line_validates() {
    let dir = std::env::temp_dir().join(format!("records-corpus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let files = write_corpus(&dir);
    let mut raw = Vec::new();
    let mut ocsf = Vec::new();
    for (file, may_fail) in &files {
        for (format, all) in [("raw", &mut raw), ("ocsf", &mut ocsf)] {
            let out = parse(&dir, file, *may_fail, format);
            let problems = json_keys::check_lines(&out);
            assert!(
                problems.is_empty(),
                "{} ({format}): {problems:#?}",
                file.display()
            );
            all.extend_from_slice(&out);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    let (ok, report) = common::ocsf_check(&ocsf, "corpus");
    assert!(ok, "{report}");
    let lines = |nd: &[u8]| -> Vec<Value> {
        nd.split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    };
    let (raw, ocsf) = (lines(&raw), lines(&ocsf));
    assert!(report.contains(&format!("{} event(s) valid OCSF 1.1.0", ocsf.len())));
    assert!(
        raw.len() > 100 && ocsf.len() > 100,
        "{} {}",
        raw.len(),
        ocsf.len()
    );

    // The corpus reaches what it is for: every source, parse errors, cut records, forged names.
    for log_type in ["connectionlog", "userlog", "useractivitylog", "cloudtrail"] {
        assert!(raw.iter().any(|r| r["log_type"] == log_type), "{log_type}");
        assert!(
            ocsf.iter().any(|e| e["metadata"]["log_name"] == log_type),
            "{log_type}"
        );
    }
    assert!(raw.iter().any(|r| r["source"].get("log_group").is_some()));
    for class in [0, 3001, 3002, 6003, 6005] {
        assert!(
            ocsf.iter().any(|e| e["class_uid"] == class),
            "class {class}"
        );
    }
    let cut = |id: &Value| id.as_str().is_some_and(|s| s.ends_with("-cut"));
    assert!(raw
        .iter()
        .any(|r| r["log_type"] == "cloudtrail" && cut(&r["id"])));
    assert!(raw
        .iter()
        .any(|r| r["log_type"] != "cloudtrail" && cut(&r["id"])));
    assert!(ocsf.iter().any(|e| cut(&e["metadata"]["uid"])));
    assert!(raw.iter().any(|r| r.get("event_fields").is_some()));
    assert!(raw.iter().any(|r| r.get("raw_xxh3").is_some()));
    assert!(ocsf
        .iter()
        .any(|e| e["metadata"]["log_name"] == "cloudtrail" && e["class_uid"] == 0));
    // Every trail line in OCSF is an event of its class, never a raw-schema record.
    assert!(ocsf.iter().all(|e| e.get("parse_error").is_none()));

    // What the forwarder writes beside an audit record's columns is one of RECORD_FIELDS, the
    // names an event's own members are moved away from: that list is complete.
    for record in raw.iter().filter(|r| r["log_type"] != "cloudtrail") {
        let log_type: LogType = record["log_type"].as_str().unwrap().parse().unwrap();
        for key in record.as_object().unwrap().keys() {
            assert!(
                RECORD_FIELDS.contains(&key.as_str())
                    || log_type.columns().iter().any(|(name, _)| name == key),
                "{key} in {record}"
            );
        }
    }
}
