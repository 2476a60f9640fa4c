//! Trail records at the edges, through the real binary's `parse` on trail files built as
//! CloudTrail writes them (gzip `{"Records": [...]}` under an `AWSLogs/.../CloudTrail/...` key),
//! in both formats (issue 17, items 3 to 5; docs/RECORDS.md):
//!
//! - in `--format ocsf` every line is an OCSF event (API Activity, or a Base Event carrying the
//!   `parse_error` fields), and every one validates with pydantic-ocsf 1.1.0 whatever the types
//!   of the event's fields;
//! - an event's own members named like the provenance stay under `event_fields`: no record has
//!   a key twice, and the provenance is the forwarder's;
//! - an event over the 1 MiB event limit is cut as an audit record is (`raw_bytes`, `raw_xxh3`,
//!   `truncated`, the `-cut` id).

mod common;
#[path = "common/json_keys.rs"]
mod json_keys;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_redshift-audit-forwarder");
const KEY: &str = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/01/123456789012_CloudTrail_us-east-1_20240301T0055Z_Edges0123456789.json.gz";
/// 2024-03-01T00:55:00Z, the file name's time.
const FILE_TIME_MS: i64 = 1_709_254_500_000;

/// A Redshift API call as CloudTrail writes it, with `edits` applied (a null value is kept).
fn event(n: usize, edits: Value) -> String {
    let mut e = json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::123456789012:user/alice",
                         "accountId": "123456789012", "accessKeyId": "ASIAEXAMPLE", "userName": "alice"},
        "eventTime": "2024-03-01T00:50:00Z",
        "eventSource": "redshift.amazonaws.com",
        "eventName": "ModifyCluster",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "192.0.2.10",
        "userAgent": "aws-cli/2.15",
        "requestParameters": {"clusterIdentifier": "prod"},
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

/// Runs `parse` on a trail file of `elements` (each as written) in `format`: (stdout lines,
/// stderr).
fn parse(test: &str, elements: &[String], format: &str) -> (Vec<String>, String) {
    let dir = std::env::temp_dir().join(format!("trail-records-{}-{test}", std::process::id()));
    let path = dir.join(KEY);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let text = format!("{{\"Records\":[{}]}}", elements.join(","));
    std::fs::write(&path, common::gzip(&text)).unwrap();
    let out = Command::new(BIN)
        .args(["parse", "--format", format, KEY])
        .current_dir(&dir)
        .env_remove("OUTPUT_FORMAT")
        .env_remove("CLOUDTRAIL_EVENT_SOURCES")
        .stdin(Stdio::null())
        .output()
        .expect("run the binary");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 records");
    let problems = json_keys::check_lines(stdout.as_bytes());
    assert!(problems.is_empty(), "{test} {format}: {problems:#?}");
    (stdout.lines().map(String::from).collect(), stderr)
}

fn values(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `parse --format ocsf`, each event checked by `scripts/ocsf_check.py`.
fn ocsf(test: &str, elements: &[String]) -> Vec<Value> {
    let (lines, _) = parse(test, elements, "ocsf");
    let (ok, report) = common::ocsf_check((lines.join("\n") + "\n").as_bytes(), test);
    assert!(ok, "{report}");
    assert!(
        report.contains(&format!("{} event(s) valid", lines.len())),
        "{report}"
    );
    values(&lines)
}

fn raw(test: &str, elements: &[String]) -> Vec<Value> {
    values(&parse(test, elements, "raw").0)
}

#[test]
fn trail_fields_of_unexpected_types_stay_under_unmapped_and_every_event_validates() {
    let elements = vec![
        event(1, json!({"eventName": null})),
        event(2, json!({"requestID": {"nested": ["id"]}})),
        event(3, json!({"errorCode": 500})),
        event(
            4,
            json!({"errorMessage": {"text": "denied"}, "errorCode": "AccessDenied"}),
        ),
        event(
            5,
            json!({"eventName": 7, "eventID": ["x"], "awsRegion": false, "userAgent": 1.5,
                        "sourceIPAddress": {"ip": "192.0.2.1"}, "recipientAccountId": 123456789012_u64,
                        "apiVersion": [], "eventSource": "redshift-data.amazonaws.com"}),
        ),
        event(
            6,
            json!({"userIdentity": {"type": 3, "principalId": 42, "arn": null, "accountId": [],
                        "accessKeyId": {}, "userName": true, "invokedBy": 9,
                        "sessionContext": "not an object"}}),
        ),
        event(
            7,
            json!({"userIdentity": {"type": "AssumedRole", "sessionContext": {
            "attributes": {"creationDate": 5, "mfaAuthenticated": "maybe"},
            "sessionIssuer": {"arn": 1, "userName": {"n": 1}}}}}),
        ),
        event(8, json!({"userIdentity": "a string"})),
    ];
    let events = ocsf("types", &elements);
    assert_eq!(events.len(), 8);
    for e in &events {
        assert_eq!(e["class_uid"], 6003, "{e}");
    }
    // eventName null: still the API call, its operation unknown and the null kept.
    assert_eq!(events[0]["api"]["operation"], "Unknown");
    assert_eq!(events[0]["activity_id"], 99);
    assert_eq!(events[0]["unmapped"]["eventName"], Value::Null);
    assert_eq!(
        events[1]["unmapped"]["requestID"],
        json!({"nested": ["id"]})
    );
    assert_eq!(events[1]["api"].get("request"), None);
    // A numeric error code: the call failed; the code is kept, not typed.
    assert_eq!(events[2]["status_id"], 2);
    assert_eq!(events[2].get("status_code"), None);
    assert_eq!(events[2]["unmapped"]["errorCode"], 500);
    assert_eq!(events[3]["status_code"], "AccessDenied");
    assert_eq!(events[3].get("status_detail"), None);
    assert_eq!(
        events[3]["unmapped"]["errorMessage"],
        json!({"text": "denied"})
    );
    // An event without a string eventID is known by its record id.
    let uid = events[4]["metadata"]["uid"].as_str().unwrap();
    assert_eq!(uid, events[4]["unmapped"]["id"].as_str().unwrap());
    for field in [
        "eventName",
        "eventID",
        "awsRegion",
        "userAgent",
        "sourceIPAddress",
        "recipientAccountId",
        "apiVersion",
    ] {
        assert!(events[4]["unmapped"].get(field).is_some(), "{field}");
    }
    assert_eq!(events[5]["unmapped"]["userIdentity"]["principalId"], 42);
    assert_eq!(
        events[5]["unmapped"]["userIdentity"]["sessionContext"],
        "not an object"
    );
    assert_eq!(
        events[6]["unmapped"]["userIdentity"]["sessionContext"]["sessionIssuer"],
        json!({"arn": 1, "userName": {"n": 1}})
    );
    assert_eq!(events[7]["unmapped"]["userIdentity"], "a string");

    // `raw`: every event as written.
    let records = raw("types-raw", &elements);
    for (record, element) in records.iter().zip(&elements) {
        let element: Value = serde_json::from_str(element).unwrap();
        for (k, v) in element.as_object().unwrap() {
            assert_eq!(&record[k], v, "{k}");
        }
        assert!(record.get("parse_error").is_none());
    }
}

#[test]
fn unreadable_trail_events_are_base_events_in_ocsf_and_parse_errors_in_raw() {
    let deep = format!(
        r#"{{"eventSource":"redshift.amazonaws.com","eventTime":"2024-03-01T00:51:00Z","x":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let elements = vec![
        event(1, json!({})),
        r#"{"eventSource":"redshift.amazonaws.com","eventName":tru}"#.to_string(),
        format!(
            r#"{{"eventSource":"redshift.amazonaws.com","eventName":"X","pad":"{}"}}"#,
            "p".repeat(1024 * 1024)
        ),
        r#"{"eventSource":"redshift.amazonaws.com","eventTime":"2024-03-01T00:52:00Z","n":1e400}"#
            .to_string(),
        deep,
        r#"{"eventSource":"redshift.amazonaws.com","requestParameters":{"a":1,"a":2}}"#.to_string(),
        r#"{"eventSource":"redshift.amazonaws.com","eventSource":"redshift.amazonaws.com"}"#
            .to_string(),
        r#"{"eventName":"NoSource"}"#.to_string(),
        r#"["not","an","object"]"#.to_string(),
        event(10, json!({})),
    ];
    let events = ocsf("unreadable", &elements);
    assert_eq!(events.len(), elements.len());
    assert_eq!(events[0]["class_uid"], 6003);
    assert_eq!(events[9]["class_uid"], 6003, "reading goes on after them");
    for (i, e) in events.iter().enumerate().take(9).skip(1) {
        assert_eq!(e["class_uid"], 0, "element {}: {e}", i + 1);
        assert_eq!(e["activity_id"], 99);
        let detail = e["status_detail"].as_str().unwrap();
        assert!(detail.contains(&format!("event {}", i + 1)), "{detail}");
        assert!(e["raw_data"].is_string());
        assert_eq!(e["unmapped"]["source"]["event"], i + 1);
        assert_eq!(e["unmapped"]["log_type"], "cloudtrail");
    }
    // Each says why.
    let detail = |i: usize| events[i]["status_detail"].as_str().unwrap().to_string();
    assert!(detail(3).contains("out of range"), "{}", detail(3));
    assert!(detail(5).contains("\"a\" twice"), "{}", detail(5));
    // Time: the event's own when it could be read, else the file's.
    assert_eq!(events[3]["time"], 1_709_254_320_000_i64);
    assert_eq!(events[1]["time"], FILE_TIME_MS);

    let records = raw("unreadable-raw", &elements);
    assert_eq!(records.len(), elements.len());
    for (i, r) in records.iter().enumerate().take(9).skip(1) {
        let reason = r["parse_error"]
            .as_str()
            .unwrap_or_else(|| panic!("{i}: {r}"));
        assert!(reason.contains(&format!("event {}", i + 1)), "{reason}");
        assert!(r["raw"].as_str().unwrap().len() <= 64 * 1024);
    }
    assert!(records[0].get("parse_error").is_none());
}

#[test]
fn a_missing_or_malformed_event_time_takes_the_file_time() {
    let elements = vec![
        event(1, json!({"eventTime": null})),
        event(2, json!({"eventTime": "yesterday"})),
        event(3, json!({"eventTime": 1_709_254_000})),
        event(4, json!({"eventTime": "2024-13-01T00:00:00Z"})),
        event(5, json!({"eventTime": "2024-03-01T00:50:00.123Z"})),
    ];
    let mut missing: Value = serde_json::from_str(&event(6, json!({}))).unwrap();
    missing.as_object_mut().unwrap().remove("eventTime");
    let mut elements = elements;
    elements.push(missing.to_string());
    let events = ocsf("time", &elements);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["class_uid"], 6003, "{e}");
        let want = if i == 4 {
            1_709_254_200_123_i64
        } else {
            FILE_TIME_MS
        };
        assert_eq!(e["time"], want, "event {}", i + 1);
    }
    assert_eq!(
        events[1]["unmapped"]["eventTime"], "yesterday",
        "kept as written"
    );
    assert_eq!(events[2]["unmapped"]["eventTime"], 1_709_254_000);
}

#[test]
fn an_events_own_provenance_named_fields_go_under_event_fields_and_never_twice() {
    let forged = json!({
        "id": "00000000000000000000000000000000",
        "account_id": "999999999999",
        "log_type": "connectionlog",
        "source": {"bucket": "evil", "key": "x", "event": 1},
        "region": "xx-evil-1",
        "cluster": "forged",
        "file_time": "1999-01-01T00:00:00Z",
        "parse_error": "not really",
        "event_fields": "mine",
    });
    let mut elements = vec![event(1, forged.clone())];
    // An escaped spelling of `id` is the same name.
    elements.push(
        r#"{"eventSource":"redshift.amazonaws.com","eventTime":"2024-03-01T00:50:00Z","eventName":"X","\u0069d":"escaped"}"#
            .to_string(),
    );
    let records = raw("provenance", &elements);
    let r = &records[0];
    assert_eq!(r["log_type"], "cloudtrail");
    assert_eq!(r["account_id"], "123456789012");
    assert_eq!(r["region"], "us-east-1");
    assert_eq!(r["cluster"], Value::Null);
    assert_eq!(r["file_time"], "2024-03-01T00:55:00Z");
    assert_eq!(r["source"]["key"], KEY);
    assert_eq!(r["id"].as_str().unwrap().len(), 32);
    assert_ne!(r["id"], forged["id"]);
    assert!(
        r.get("parse_error").is_none(),
        "an event, not a parse error"
    );
    assert_eq!(r["event_fields"], forged);
    assert_eq!(
        r["eventName"], "ModifyCluster",
        "the rest stays where it was"
    );
    assert_eq!(records[1]["event_fields"], json!({"id": "escaped"}));
    assert_eq!(records[1]["id"].as_str().unwrap().len(), 32);

    let events = ocsf("provenance", &elements);
    let u = &events[0]["unmapped"];
    assert_eq!(u["account_id"], "123456789012");
    assert_eq!(u["id"], r["id"]);
    assert_eq!(u["event_fields"], forged);
    assert_eq!(events[0]["cloud"]["account"]["uid"], "123456789012");
    assert_eq!(
        events[1]["unmapped"]["event_fields"],
        json!({"id": "escaped"})
    );
}

#[test]
fn a_trail_event_over_the_1_mib_limit_is_cut_like_an_audit_record() {
    let big = format!(
        r#"{{"eventSource":"redshift.amazonaws.com","eventName":"ModifyCluster","eventTime":"2024-03-01T00:50:00Z","requestParameters":{{"pad":"{}"}}}}"#,
        "a".repeat(1536 * 1024)
    );
    let elements = vec![big.clone(), event(2, json!({}))];
    let xxh3 = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(big.as_bytes()));

    let records = raw("cut", &elements);
    let r = &records[0];
    assert!(r["parse_error"]
        .as_str()
        .unwrap()
        .contains("1048576-byte event limit"));
    assert_eq!(r["raw"].as_str().unwrap().len(), 64 * 1024);
    assert!(big.starts_with(r["raw"].as_str().unwrap()));
    assert_eq!(r["raw_bytes"], big.len());
    assert_eq!(r["raw_xxh3"], xxh3.as_str());
    assert_eq!(r["truncated"], true);
    let id = r["id"].as_str().unwrap();
    assert!(id.len() == 36 && id.ends_with("-cut"), "{id}");
    assert!(records[1].get("parse_error").is_none());
    assert_eq!(records[1]["id"].as_str().unwrap().len(), 32);

    let events = ocsf("cut", &elements);
    let e = &events[0];
    assert_eq!(e["class_uid"], 0);
    assert_eq!(e["metadata"]["uid"], id);
    assert_eq!(e["unmapped"]["id"], id);
    assert_eq!(e["unmapped"]["raw_bytes"], big.len());
    assert_eq!(e["unmapped"]["raw_xxh3"], xxh3.as_str());
    assert_eq!(e["unmapped"]["truncated"], true);
    assert_eq!(e["raw_data"].as_str().unwrap().len(), 64 * 1024);
}

/// An audit log file of `text` under a Redshift name, parsed in OCSF.
fn audit_ocsf(test: &str, log_type: &str, text: &str) -> Vec<Value> {
    let dir = std::env::temp_dir().join(format!("trail-records-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join(format!(
        "123456789012_redshift_us-east-1_analytics-prod_{log_type}_2024-03-01T00:53.gz"
    ));
    std::fs::write(&path, common::gzip(text)).unwrap();
    let out = Command::new(BIN)
        .args(["parse", "--format", "ocsf"])
        .arg(&path)
        .env_remove("OUTPUT_FORMAT")
        .stdin(Stdio::null())
        .output()
        .expect("run the binary");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success());
    let (ok, report) = common::ocsf_check(&out.stdout, test);
    assert!(ok, "{report}");
    values(
        &String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect::<Vec<_>>(),
    )
}

#[test]
fn an_empty_event_or_action_column_is_activity_other_not_unknown() {
    let events = audit_ocsf(
        "empty-event",
        "connectionlog",
        "|Mon, 16 Mar 2022 09:18:14:766|10.1.2.3 |50000 |77|dev |bob |password |0| | |0| | | |\n\
         \t |Mon, 16 Mar 2022 09:18:14:766|10.1.2.3 |50000 |77|dev |bob |password |0| | |0| | | |\n",
    );
    assert_eq!(events.len(), 2);
    for e in &events {
        assert_eq!(
            (&e["class_uid"], &e["activity_id"], &e["type_uid"]),
            (&3002.into(), &99.into(), &300299.into()),
            "{e}"
        );
    }
    let events = audit_ocsf(
        "empty-action",
        "userlog",
        "100|bob | | |0|0|0| |14872|1061|Thu, 3 Dec 2020 10:18:38:416\n",
    );
    assert_eq!(
        (&events[0]["class_uid"], &events[0]["activity_id"]),
        (&3001.into(), &99.into())
    );
}
