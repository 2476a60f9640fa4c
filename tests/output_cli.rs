//! Choosing the output on the command line (issue 8, "Choosing"): `parse --format raw|ocsf`,
//! `--no-redact`, and the `OUTPUT_FORMAT` / `REDACT_SECRETS` variables, on the real binary. OCSF
//! output is checked with the schema checker users would use (`scripts/ocsf_check.py`, over
//! pydantic-ocsf's OCSF 1.1.0 models).

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_redshift-audit-forwarder");

const CONNECTION: &str = "authentication failure |Mon, 16 Mar 2022 08:18:14:766|::ffff:223.233.72.13 |1224 |1073742045|dev |alice |password |0|TLSv1.2 |ECDHE-RSA-AES256-GCM-SHA384 |0| | | | |Windows 10 10.0 amd64 |Amazon Redshift JDBC Driver 1.2.55.1083 |none |0|da9edc00-a1e6-44e0-8274-9417e5f355de\n\
authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | |\n\
not a connection log line\n";
const USER: &str =
    "1|rdsdb | |alter |1|1|1|9223372036854775807|14872|1061|Thu, 3 Dec 2020 10:18:38:416\n\
101|alice | |create |0|0|0| |14873|1062|Thu, 3 Dec 2020 10:19:38:416\n";
/// A COPY with keys across lines, a CREATE USER with a password, and a plain query.
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const PASSWORD: &str = "Sup3r''Secret";
fn activity() -> String {
    format!(
        "'2020-12-08T22:00:03Z UTC [ db=dev user=rdsdb pid=685 userid=1 xid=245578 ]' LOG: copy t from 's3://b/k'\n\
         credentials\n  'aws_access_key_id={KEY_ID};aws_secret_access_key={SECRET_KEY}';\n\
         '2020-12-08T22:00:04Z UTC [ db=dev user=rdsdb pid=686 userid=1 xid=245579 ]' LOG: CREATE USER bob PASSWORD '{PASSWORD}';\n\
         '2020-12-08T22:00:05Z UTC [ db=dev user=rdsdb pid=687 userid=1 xid=245580 ]' LOG: SELECT 1\n"
    )
}

fn name(log_type: &str) -> String {
    format!("123456789012_redshift_us-east-1_analytics-prod_{log_type}_2024-03-01T00:53.gz")
}

/// A scratch file of its own.
fn file(test: &str, log_type: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("output-cli-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name(log_type));
    std::fs::write(&path, text).unwrap();
    path
}

fn run(args: &[&str], env: &[(&str, &str)], files: &[PathBuf]) -> Output {
    let mut command = Command::new(BIN);
    command
        .arg("parse")
        .args(args)
        .args(files)
        .env_remove("OUTPUT_FORMAT")
        .env_remove("REDACT_SECRETS")
        .stdin(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run the binary")
}

fn records(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn every_log(test: &str) -> Vec<PathBuf> {
    vec![
        file(test, "connectionlog", CONNECTION),
        file(test, "userlog", USER),
        file(test, "useractivitylog", &activity()),
    ]
}

#[test]
fn format_ocsf_writes_events_that_validate_against_ocsf_1_1_0() {
    let files = every_log("ocsf");
    let out = run(&["--format", "ocsf"], &[], &files);
    let events = records(&out);
    assert_eq!(events.len(), 8, "one event per record");
    let classes: Vec<u64> = events
        .iter()
        .map(|e| e["class_uid"].as_u64().unwrap())
        .collect();
    assert_eq!(classes, [3002, 3002, 0, 3001, 3001, 6005, 6005, 6005]);
    let (ok, report) = common::ocsf_check(&out.stdout, "cli-ocsf");
    assert!(ok, "{report}");
    // The same records in raw carry the same ids as the OCSF events' metadata.uid.
    let raw = records(&run(&[], &[], &files));
    for (r, e) in raw.iter().zip(&events) {
        assert_eq!(r["id"], e["metadata"]["uid"]);
    }
}

#[test]
fn output_format_variable_chooses_the_format_and_the_flag_wins() {
    let files = vec![file("env", "userlog", USER)];
    let by_env = records(&run(&[], &[("OUTPUT_FORMAT", "OCSF")], &files));
    assert!(by_env.iter().all(|e| e["class_uid"] == 3001));
    let by_flag = records(&run(
        &["--format", "raw"],
        &[("OUTPUT_FORMAT", "ocsf")],
        &files,
    ));
    assert!(by_flag
        .iter()
        .all(|r| r["log_type"] == "userlog" && r.get("class_uid").is_none()));
}

#[test]
fn a_bad_format_is_refused_before_reading() {
    let files = vec![file("bad", "userlog", USER)];
    let out = run(&["--format", "json"], &[], &files);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let bad_env = run(&[], &[("OUTPUT_FORMAT", "xml")], &files);
    assert_eq!(bad_env.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad_env.stderr).contains("OUTPUT_FORMAT"),
        "{}",
        String::from_utf8_lossy(&bad_env.stderr)
    );
}

#[test]
fn secrets_are_masked_by_default_in_both_formats() {
    let files = vec![file("masked", "useractivitylog", &activity())];
    for format in ["raw", "ocsf"] {
        let out = run(&["--format", format], &[], &files);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        for secret in [SECRET_KEY, &KEY_ID[4..], "Sup3r", "Secret"] {
            assert!(!text.contains(secret), "{format}: {secret} leaked: {text}");
        }
        assert!(text.contains("[REDACTED]"), "{format}");
        let records = records(&out);
        let flagged: Vec<bool> = records
            .iter()
            .map(|r| {
                r["redacted"].as_bool().unwrap_or(false)
                    || r["unmapped"]["redacted"].as_bool().unwrap_or(false)
            })
            .collect();
        if format == "raw" {
            assert_eq!(flagged, [true, true, false]);
            // The statement stays readable: keyword and quotes kept, the rest untouched.
            let query = records[1]["query"].as_str().unwrap();
            assert_eq!(query, "CREATE USER bob PASSWORD '[REDACTED]';");
            assert_eq!(records[2]["query"], "SELECT 1");
        }
    }
}

#[test]
fn no_redact_and_redact_secrets_false_keep_the_text() {
    let files = vec![file("kept", "useractivitylog", &activity())];
    for (args, env) in [
        (vec!["--no-redact"], vec![]),
        (vec![], vec![("REDACT_SECRETS", "false")]),
    ] {
        let text = String::from_utf8_lossy(&run(&args, &env, &files).stdout).into_owned();
        assert!(
            text.contains(SECRET_KEY) && text.contains(KEY_ID),
            "{args:?} {env:?}"
        );
        assert!(!text.contains("redacted"), "{args:?} {env:?}");
    }
}
