//! `parse --format parquet --out DIR` (issue 18): the Security Lake objects of every input kind,
//! read back with pyarrow and DuckDB and checked against `parse --format ocsf` of the same files
//! by `scripts/lake_check.py` (same records, OCSF 1.1.0 valid, one class per object, one schema
//! per class, zstd, partitions matching each row).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_redshift-audit-forwarder");

const CONNECTION: &str = "authentication failure |Mon, 16 Mar 2022 08:18:14:766|::ffff:223.233.72.13 |1224 |1073742045|dev |alice |password |0|TLSv1.2 |ECDHE-RSA-AES256-GCM-SHA384 |0| | | | |Windows 10 10.0 amd64 |Amazon Redshift JDBC Driver 1.2.55.1083 |none |0|da9edc00-a1e6-44e0-8274-9417e5f355de\n\
authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | |\n\
not a connection log line\n\
disconnecting session |Mon, 7 Dec 2020 23:59:59:999|10.0.0.1 |5432 |5108|dev |rdsdb |Ident |120000| | |0| | |\n\
initiating session |Tue, 8 Dec 2020 00:00:00:001|10.0.0.2 |5433 |5109|dev |bob |password |0| | |0| | |\n";
const USER: &str =
    "1|rdsdb | |alter |1|1|1|9223372036854775807|14872|1061|Thu, 3 Dec 2020 10:18:38:416\n\
101|alice | |create |0|0|0| |14873|1062|Thu, 3 Dec 2020 10:19:38:416\n";
const ACTIVITY: &str = "'2020-12-08T22:00:03Z UTC [ db=dev user=rdsdb pid=685 userid=1 xid=245578 ]' LOG: copy t from 's3://b/k'\n  credentials 'aws_access_key_id=AKIAIOSFODNN7EXAMPLE;aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';\n\
'2020-12-08T22:00:05Z UTC [ db=dev user=rdsdb pid=687 userid=1 xid=245580 ]' LOG: SELECT 1\n\
'2020-12-08T21:00:05Z UTC [ db=dev user=rdsdb pid=687 userid=1 xid=245581 ]' LOG: select \"x\" from t where y = '{\\\"a\\\": [1]}'\n";

fn trail() -> String {
    let event = |n: usize, name: &str, extra: &str| {
        format!(
            r#"{{"eventVersion":"1.09","userIdentity":{{"type":"AssumedRole","principalId":"AROA:x","arn":"arn:aws:sts::123456789012:assumed-role/r/x","accountId":"123456789012","accessKeyId":"ASIAEXAMPLE","sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"AROA","arn":"arn:aws:iam::123456789012:role/r","accountId":"123456789012","userName":"r"}},"attributes":{{"creationDate":"2024-03-01T00:00:00Z","mfaAuthenticated":"false"}}}}}},"eventTime":"2024-03-01T00:4{n}:00Z","eventSource":"redshift.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.{n}","userAgent":"aws-cli/2.15","requestParameters":{{"clusterIdentifier":"c-{n}"}},"responseElements":null,"requestID":"req-{n}","eventID":"ev-{n}","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management"{extra}}}"#
        )
    };
    format!(
        "{{\"Records\":[{},{},{}]}}",
        event(1, "CreateCluster", ""),
        event(
            2,
            "DescribeClusters",
            r#","errorCode":"AccessDenied","errorMessage":"no""#
        ),
        event(3, "PauseCluster", "")
    )
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("lake-cli-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("in")).unwrap();
        Scratch(dir)
    }

    fn inputs(&self) -> Vec<PathBuf> {
        let name = |t: &str| {
            format!("123456789012_redshift_us-east-1_analytics-prod_{t}_2024-03-01T00:53")
        };
        let mut files = Vec::new();
        for (t, text) in [
            ("connectionlog", CONNECTION),
            ("userlog", USER),
            ("useractivitylog", ACTIVITY),
        ] {
            let path = self.0.join("in").join(name(t));
            std::fs::write(&path, text).unwrap();
            files.push(path);
        }
        let path = self
            .0
            .join("in")
            .join("123456789012_CloudTrail_us-east-1_20240301T0055Z_AbCdEf0123456789.json");
        std::fs::write(&path, trail()).unwrap();
        files.push(path);
        files
    }

    fn out(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn parse(args: &[&str], files: &[PathBuf]) -> Output {
    Command::new(BIN)
        .arg("parse")
        .args(args)
        .args(files)
        .env_remove("OUTPUT_FORMAT")
        .env_remove("REDACT_SECRETS")
        .stdin(Stdio::null())
        .output()
        .expect("run the binary")
}

/// `scripts/lake_check.py DIR EVENTS`: (passed, its report).
pub fn lake_check(dir: &Path, events: &[u8]) -> (bool, String) {
    let path = dir.with_extension("events.ndjson");
    std::fs::write(&path, events).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/lake_check.py");
    let out = Command::new(common::python())
        .arg(script)
        .arg(dir)
        .arg(&path)
        .output()
        .expect("run scripts/lake_check.py (pyarrow, duckdb from requirements-dev.txt)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn objects(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn parquet_objects_hold_exactly_the_ocsf_events_of_every_input_kind() {
    let scratch = Scratch::new("every-kind");
    let files = scratch.inputs();
    let ocsf = parse(&["--format", "ocsf"], &files);
    assert!(
        ocsf.status.success(),
        "{}",
        String::from_utf8_lossy(&ocsf.stderr)
    );
    let dir = scratch.out("lake");
    let out = parse(
        &["--format", "parquet", "--out", dir.to_str().unwrap()],
        &files,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, report) = lake_check(&dir, &ocsf.stdout);
    assert!(ok, "{report}");
    assert!(report.contains("\"rows\": 13"), "{report}");
    let written: Vec<String> = objects(&dir).into_iter().map(|(p, _)| p).collect();
    // The connection log runs across midnight: two objects, one per event day; its parse error
    // goes to base_event; the trail file to api_activity.
    let folders: Vec<String> = written
        .iter()
        .map(|p| p.rsplit_once('/').unwrap().0.to_string())
        .collect();
    assert_eq!(
        folders,
        [
            "account_change/region=us-east-1/accountId=123456789012/eventDay=20201203",
            "api_activity/region=us-east-1/accountId=123456789012/eventDay=20240301",
            "authentication/region=us-east-1/accountId=123456789012/eventDay=20201207",
            "authentication/region=us-east-1/accountId=123456789012/eventDay=20201208",
            "authentication/region=us-east-1/accountId=123456789012/eventDay=20220316",
            "base_event/region=us-east-1/accountId=123456789012/eventDay=20240301",
            "datastore_activity/region=us-east-1/accountId=123456789012/eventDay=20201208",
        ]
    );
    // stdout lists the objects written; stderr counts the activity log's row out of time order.
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 7);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("3 rows in 1 objects") && stderr.contains("1 rows out of time order"),
        "{stderr}"
    );
}

#[test]
fn two_runs_over_the_same_input_write_the_same_objects_byte_for_byte() {
    let scratch = Scratch::new("deterministic");
    let files = scratch.inputs();
    let (a, b) = (scratch.out("a"), scratch.out("b"));
    for dir in [&a, &b] {
        let out = parse(
            &["--format", "parquet", "--out", dir.to_str().unwrap()],
            &files,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (first, second) = (objects(&a), objects(&b));
    assert!(!first.is_empty());
    assert_eq!(first, second);
    // And again into the same directory: the same keys, nothing added.
    let out = parse(
        &["--format", "parquet", "--out", a.to_str().unwrap()],
        &files,
    );
    assert!(out.status.success());
    assert_eq!(objects(&a), first);
}

#[test]
fn parquet_needs_out_and_out_needs_parquet() {
    let scratch = Scratch::new("flags");
    let files = scratch.inputs();
    let out = parse(&["--format", "parquet"], &files[..1]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out DIR"));
    let dir = scratch.out("x");
    let out = parse(
        &["--format", "ocsf", "--out", dir.to_str().unwrap()],
        &files[..1],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(!dir.exists());
}

#[test]
fn an_input_that_cannot_be_read_leaves_no_object_behind() {
    let scratch = Scratch::new("bad-input");
    let bad = scratch
        .0
        .join("in")
        .join("123456789012_redshift_us-east-1_c_connectionlog_2024-03-01T00:53.gz");
    // Records, then garbage after the gzip member: the records before the failure are not kept
    // as objects.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, CONNECTION.as_bytes()).unwrap();
    let mut bytes = gz.finish().unwrap();
    bytes.extend_from_slice(&[0xff; 64]);
    std::fs::write(&bad, bytes).unwrap();
    let dir = scratch.out("lake");
    let out = parse(
        &["--format", "parquet", "--out", dir.to_str().unwrap()],
        &[bad],
    );
    assert!(!out.status.success());
    assert!(
        objects(&dir).is_empty(),
        "{:?}",
        objects(&dir).into_iter().map(|o| o.0).collect::<Vec<_>>()
    );
}
