//! No planted secret leaves (issue 17, "Prove it"): secrets of every masked form (docs/SECRETS.md)
//! planted at random in every column of every log type, in CloudTrail event fields and in
//! CloudWatch Logs messages and stream names, then the real binary's `parse` in both formats:
//! neither stdout (records, reasons included) nor stderr (summary lines) holds any of them, or
//! any 8 characters of one in a row. One `parse` a format a case, over five files.

mod common;

use std::path::Path;
use std::process::Command;

use base64::Engine;
use proptest::prelude::*;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_redshift-audit-forwarder");

/// Case counts stay modest (each case runs the binary twice); `PROPTEST_CASES` overrides them.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        max_shrink_iters: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Base64-like key material, as AWS secret keys and tokens are.
fn key_material() -> impl Strategy<Value = String> {
    "[A-Z0-9/+]{12,40}"
}

/// A password: printable, no quote, pipe or backslash (a pipe would move the columns).
fn password() -> impl Strategy<Value = String> {
    "[A-Z0-9+/!#$%*()]{12,30}"
}

fn key_id() -> impl Strategy<Value = String> {
    ("(AKIA|ASIA)", "[A-Z0-9]{16}").prop_map(|(p, s)| p + &s)
}

fn cased(keyword: &str, mask: u64) -> String {
    keyword
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// One planted secret: its text (one line, no `|`) and the values that must not come out.
#[derive(Debug, Clone)]
struct Plant {
    text: String,
    secrets: Vec<String>,
}

/// Every masked form of docs/SECRETS.md, keywords in random case.
fn plant() -> impl Strategy<Value = Plant> {
    let forms = prop_oneof![
        // PASSWORD with every quote it may open with, and `=` or not.
        (
            password(),
            prop::sample::select(
                &[
                    "'|'",
                    "E'|'",
                    "e'|'",
                    "\u{ff07}|\u{ff07}",
                    "\u{2018}|\u{2019}"
                ][..]
            ),
            prop::sample::select(&[" ", " = ", "  "][..]),
        )
            .prop_map(|(pw, quotes, gap)| {
                let (open, close) = quotes.split_once('|').unwrap_or(("'", "'"));
                (format!("PASSWORD{gap}{open}{pw}{close}"), vec![pw])
            }),
        (
            prop::sample::select(
                &[
                    "ACCESS_KEY_ID",
                    "SECRET_ACCESS_KEY",
                    "SESSION_TOKEN",
                    "MASTER_SYMMETRIC_KEY"
                ][..]
            ),
            key_material(),
        )
            .prop_map(|(k, v)| (format!("{k} '{v}'"), vec![v])),
        (
            prop::sample::select(
                &[
                    "aws_access_key_id",
                    "aws_secret_access_key",
                    "session_token",
                    "master_symmetric_key"
                ][..]
            ),
            key_material(),
        )
            .prop_map(|(k, v)| (format!("{k}={v}"), vec![v])),
        (key_id(), key_material(), key_material()).prop_map(|(id, secret, token)| (
            format!(
                "CREDENTIALS 'aws_access_key_id={id};aws_secret_access_key={secret};token={token}'"
            ),
            vec![id, secret, token]
        )),
        key_id().prop_map(|id| (id.clone(), vec![id])),
        // A key id touching lower-case letters.
        (key_id(), "[a-z]{1,6}").prop_map(|(id, tail)| (format!("{id}{tail}"), vec![id])),
    ];
    (forms, any::<u64>()).prop_map(|((text, secrets), mask)| {
        // Keywords in random case (the values are kept as they are).
        let mut text = text;
        for keyword in [
            "PASSWORD",
            "ACCESS_KEY_ID",
            "SECRET_ACCESS_KEY",
            "SESSION_TOKEN",
            "MASTER_SYMMETRIC_KEY",
            "CREDENTIALS",
        ] {
            if let Some(at) = text.find(keyword) {
                text.replace_range(at..at + keyword.len(), &cased(keyword, mask));
            }
        }
        Plant { text, secrets }
    })
}

const CONNECTION: [&str; 22] = [
    "authentication failure",
    "Mon, 16 Mar 2022 08:18:14:766",
    "::ffff:223.233.72.13",
    "1224",
    "1073742045",
    "dev",
    "alice",
    "password",
    "0",
    "TLSv1.2",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "0",
    "",
    "",
    "",
    "",
    "Windows 10 10.0 amd64",
    "Amazon Redshift JDBC Driver 1.2.55.1083",
    "none",
    "0",
    "da9edc00-a1e6-44e0-8274-9417e5f355de",
    "",
];
const USER: [&str; 11] = [
    "1",
    "rdsdb",
    "",
    "alter",
    "1",
    "1",
    "1",
    "9223372036854775807",
    "14872",
    "1061",
    "Thu, 3 Dec 2020 10:18:38:416",
];
/// The user activity log's columns: time, db, user, pid, userid, xid, query.
const ACTIVITY: [&str; 7] = [
    "2020-12-08T22:00:03Z",
    "dev",
    "rdsdb",
    "685",
    "1",
    "245578",
    "select 1",
];

fn pipe_line(columns: &[&str], at: usize, plant: &str) -> String {
    let mut columns: Vec<&str> = columns.to_vec();
    let at = at % columns.len();
    columns[at] = plant;
    let mut line = columns.join("|");
    line.push('\n');
    line
}

fn activity_line(at: usize, plant: &str) -> String {
    let mut c: Vec<&str> = ACTIVITY.to_vec();
    let at = at % c.len();
    c[at] = plant;
    format!(
        "'{} UTC [ db={} user={} pid={} userid={} xid={} ]' LOG: {}\n",
        c[0], c[1], c[2], c[3], c[4], c[5], c[6]
    )
}

/// A Redshift trail event with `plant` in one of its fields (or as a key, or in an event that
/// cannot be read because of a duplicated key).
fn trail_event(at: usize, plant: &str) -> String {
    let mut event = json!({
        "eventVersion": "1.08",
        "eventSource": "redshift.amazonaws.com",
        "eventName": "ModifyCluster",
        "eventTime": "2024-03-01T00:50:00Z",
        "awsRegion": "us-east-1",
        "eventID": "e1",
        "requestID": "r1",
        "userAgent": "aws-cli/2",
        "userIdentity": {"type": "IAMUser", "userName": "alice", "arn": "arn:aws:iam::123456789012:user/alice"},
        "requestParameters": {"clusterIdentifier": "prod", "note": "x"},
        "errorMessage": "denied",
    });
    let plant = json!(plant);
    match at % 7 {
        0 => event["eventName"] = plant,
        1 => event["userAgent"] = plant,
        2 => event["userIdentity"]["userName"] = plant,
        3 => event["requestParameters"]["note"] = plant,
        4 => event["errorMessage"] = plant,
        5 => {
            let key = plant.as_str().unwrap_or_default().to_string();
            event["requestParameters"][key] = json!(1);
        }
        _ => {
            let text = event.to_string();
            return format!("{},\"requestID\":{plant}}}", &text[..text.len() - 1]);
        }
    }
    event.to_string()
}

/// A saved CloudWatch Logs subscription event for a provisioned cluster's connection log.
fn cloudwatch_event(stream: &str, messages: &[String]) -> String {
    let events: Vec<_> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| json!({"id": format!("{i}"), "timestamp": 1709251315000i64, "message": m}))
        .collect();
    let data = json!({
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/aws/redshift/cluster/prod/connectionlog",
        "logStream": stream,
        "subscriptionFilters": ["f"],
        "logEvents": events,
    });
    let gz = common::gzip(&data.to_string());
    json!({"awslogs": {"data": base64::engine::general_purpose::STANDARD.encode(gz)}}).to_string()
}

/// Every stretch of 8 characters of the secret.
fn fragments(secret: &str) -> Vec<String> {
    let chars: Vec<char> = secret.chars().collect();
    chars
        .windows(8)
        .map(|w| w.iter().collect::<String>())
        .collect()
}

/// Counts what the cases checked, by surface, and prints the running totals (`--nocapture`
/// shows them: the README's count of hostile cases).
fn tally(stdout: &str, stderr: &str, plants: usize) {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    static PLANTS: AtomicUsize = AtomicUsize::new(0);
    static RECORDS: AtomicUsize = AtomicUsize::new(0);
    static REASONS: AtomicUsize = AtomicUsize::new(0);
    static LOG_LINES: AtomicUsize = AtomicUsize::new(0);
    PLANTS.fetch_add(5 * plants, Relaxed);
    RECORDS.fetch_add(stdout.lines().count(), Relaxed);
    REASONS.fetch_add(
        stdout
            .lines()
            .filter(|l| l.contains("\"parse_error\"") || l.contains("\"status_detail\""))
            .count(),
        Relaxed,
    );
    LOG_LINES.fetch_add(stderr.lines().count(), Relaxed);
    eprintln!(
        "checked so far: {} planted secrets, {} records, {} reasons, {} log lines",
        PLANTS.load(Relaxed),
        RECORDS.load(Relaxed),
        REASONS.load(Relaxed),
        LOG_LINES.load(Relaxed)
    );
}

/// The lines of `text` that hold `piece`, for a failure's message.
fn lines_with(text: &str, piece: &str) -> String {
    text.lines()
        .filter(|l| l.contains(piece))
        .collect::<Vec<_>>()
        .join("\n")
}

fn scratch() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("leak_props")
        .join(format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn no_planted_secret_reaches_stdout_or_stderr_in_either_format(
        plants in prop::collection::vec((plant(), 0usize..64), 4..10),
    ) {
        let dir = scratch();
        let (mut conn, mut user, mut act, mut trail, mut messages) =
            (String::new(), String::new(), String::new(), Vec::new(), Vec::new());
        for (plant, at) in &plants {
            conn.push_str(&pipe_line(&CONNECTION, *at, &plant.text));
            user.push_str(&pipe_line(&USER, *at, &plant.text));
            act.push_str(&activity_line(*at, &plant.text));
            trail.push(trail_event(*at, &plant.text));
            messages.push(pipe_line(&CONNECTION, *at, &plant.text).trim_end().to_string());
        }
        let name = |t: &str| format!("123456789012_redshift_us-east-1_prod_{t}_2024-03-01T00:53.gz");
        let files = [
            (name("connectionlog"), common::gzip(&conn)),
            (name("userlog"), common::gzip(&user)),
            (name("useractivitylog"), common::gzip(&act)),
            (
                "123456789012_CloudTrail_us-east-1_20240301T0055Z_abc.json.gz".to_string(),
                common::gzip(&format!("{{\"Records\":[{}]}}", trail.join(","))),
            ),
            (
                "cloudwatch.json".to_string(),
                cloudwatch_event(&plants[0].0.text, &messages).into_bytes(),
            ),
        ];
        let mut paths = Vec::new();
        for (file, body) in &files {
            let path = dir.join(file);
            std::fs::write(&path, body).unwrap();
            paths.push(path);
        }
        for format in ["raw", "ocsf"] {
            let mut command = Command::new(BIN);
            for name in common::setting_names() {
                command.env_remove(name);
            }
            let output = command
                .env_remove("RUST_LOG")
                .env("AWS_REGION", "us-east-1")
                .args(["parse", "--format", format])
                .args(&paths)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            tally(&stdout, &stderr, plants.len());
            prop_assert!(stdout.lines().count() >= 4 * plants.len(), "{}: {}", format, stderr);
            for (plant, _) in &plants {
                for secret in &plant.secrets {
                    for piece in std::iter::once(secret.clone()).chain(fragments(secret)) {
                        prop_assert!(!stdout.contains(&piece), "{}: {:?} of {:?} on stdout:\n{}", format, piece, plant.text, lines_with(&stdout, &piece));
                        prop_assert!(!stderr.contains(&piece), "{}: {:?} of {:?} on stderr:\n{}", format, piece, plant.text, lines_with(&stderr, &piece));
                    }
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
