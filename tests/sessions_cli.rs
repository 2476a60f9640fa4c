//! The session join on the command line (issue 20, "Prove it"): `parse` given a generated day's
//! connection and activity logs, in either order on the command line, joins every statement to
//! the session the reference join (`sessions_day`) decides; `--no-join` leaves the records as
//! they are; the OCSF events validate with `src_endpoint` filled.

mod common;
mod sessions_day;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sessions_day::{Day, Expected, MISSING_HOUR};

const BIN: &str = env!("CARGO_BIN_EXE_redshift-audit-forwarder");

fn folder(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sessions-cli-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes the day's files; the connection log of `missing` is left out.
fn write_day(day: &Day, dir: &Path, missing: Option<i64>) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let write = |f: &sessions_day::File| {
        let path = dir.join(&f.name);
        std::fs::write(&path, &f.text).unwrap();
        path
    };
    let connection = day
        .connection
        .iter()
        .filter(|f| Some(f.hour) != missing)
        .map(write)
        .collect();
    let activity = day.activity.iter().map(write).collect();
    (connection, activity)
}

fn parse(args: &[&str], files: &[PathBuf]) -> Vec<Value> {
    let out = Command::new(BIN)
        .arg("parse")
        .args(args)
        .args(files)
        .env_remove("SESSION_JOIN")
        .env_remove("OUTPUT_FORMAT")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Each activity record's join, by its statement.
fn joins(records: &[Value]) -> Vec<(String, Expected)> {
    let mut joins: Vec<(String, Expected)> = records
        .iter()
        .filter(|r| r["log_type"] == "useractivitylog")
        .map(|r| {
            let o = r.as_object().unwrap();
            for key in ["remotehost", "remoteport", "session_start"] {
                assert!(o.contains_key(key), "{key} missing: {r}");
            }
            let text = |k: &str| r[k].as_str().map(String::from);
            let expected = Expected {
                remotehost: text("remotehost"),
                remoteport: r["remoteport"].as_i64(),
                session_start: text("session_start"),
            };
            (r["query"].as_str().unwrap().to_string(), expected)
        })
        .collect();
    joins.sort_by(|a, b| a.0.cmp(&b.0));
    joins
}

fn check(
    day: &Day,
    got: &[(String, Expected)],
    reference: &std::collections::HashMap<String, Expected>,
) -> usize {
    assert_eq!(got.len(), reference.len());
    let mut joined = 0;
    for (query, expected) in got {
        assert_eq!(Some(expected), reference.get(query), "{query}");
        joined += usize::from(expected.session_start.is_some());
    }
    assert!(day.sessions > 300, "{}", day.sessions);
    joined
}

#[test]
fn parse_joins_every_statement_to_its_session_in_either_file_order() {
    let day = sessions_day::generate(20);
    assert!(day.reused_pids > 20 && day.over_midnight > 5, "{day:?}");
    assert!(day.local > 20 && day.failures > 20, "{day:?}");
    let dir = folder("order");
    let (connection, activity) = write_day(&day, &dir, Some(MISSING_HOUR));
    let forward: Vec<PathBuf> = connection.iter().chain(&activity).cloned().collect();
    let mut backward: Vec<PathBuf> = activity.iter().chain(&connection).cloned().collect();
    backward.reverse();
    let first = joins(&parse(&[], &forward));
    let second = joins(&parse(&[], &backward));
    assert!(first == second, "the files' order changed a join");
    let joined = check(&day, &first, &day.without_missing);
    let total = first.len();
    // Statements of the missing hour's sessions go out unjoined; most others are joined.
    assert!(
        joined < total && joined * 10 > total * 8,
        "{joined} of {total}"
    );
    eprintln!("joined {joined} of {total} statements, the connection log of one hour missing");
}

#[test]
fn with_every_connection_log_every_statement_of_a_session_is_joined() {
    let day = sessions_day::generate(21);
    let dir = folder("all");
    let (connection, activity) = write_day(&day, &dir, None);
    let files: Vec<PathBuf> = activity.iter().chain(&connection).cloned().collect();
    let got = joins(&parse(&[], &files));
    let joined = check(&day, &got, &day.all);
    // Only the failed logins' probes find no session.
    assert_eq!(joined, got.len() - day.failures);
    eprintln!("joined {joined} of {} statements", got.len());
}

#[test]
fn no_join_leaves_activity_records_as_they_are() {
    let day = sessions_day::generate(22);
    let dir = folder("nojoin");
    let (connection, activity) = write_day(&day, &dir, None);
    let files: Vec<PathBuf> = connection.iter().chain(&activity).cloned().collect();
    let plain = parse(&["--no-join"], &files);
    let joined = parse(&[], &files);
    assert_eq!(plain.len(), joined.len());
    let mut activity_records = 0;
    for (p, j) in plain.iter().zip(&joined) {
        let (p, j) = (p.as_object().unwrap(), j.as_object().unwrap());
        if p["log_type"] == "useractivitylog" {
            activity_records += 1;
            assert!(!p.contains_key("session_start"));
            // The join adds its three fields and changes none.
            assert_eq!(j.len(), p.len() + 3);
        }
        for (key, value) in p {
            assert_eq!(&j[key], value, "{key}");
        }
    }
    assert!(activity_records > 500);
    // Without a connection log in the run no session is known: the fields are null.
    let alone = parse(&[], &activity[..3]);
    assert!(alone.len() > 10);
    assert!(alone
        .iter()
        .all(|r| r.get("session_start") == Some(&Value::Null) && r["remotehost"].is_null()));
}

#[test]
fn ocsf_datastore_events_carry_the_client_endpoint_and_validate() {
    let day = sessions_day::generate(23);
    let dir = folder("ocsf");
    let (connection, activity) = write_day(&day, &dir, None);
    let files: Vec<PathBuf> = connection.iter().chain(&activity[..8]).cloned().collect();
    let out = Command::new(BIN)
        .args(["parse", "--format", "ocsf"])
        .args(&files)
        .env_remove("SESSION_JOIN")
        .output()
        .unwrap();
    assert!(out.status.success());
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &Value| e["class_uid"] == 6005)
        .collect();
    let with_ip = events
        .iter()
        .filter(|e| e["src_endpoint"]["ip"].is_string())
        .count();
    let with_name = events
        .iter()
        .filter(|e| e["src_endpoint"]["hostname"] == "[local]")
        .count();
    let with_session = events
        .iter()
        .filter(|e| e["actor"]["session"]["created_time"].is_i64())
        .count();
    assert!(with_ip > 50 && with_name > 5, "{with_ip} {with_name}");
    assert_eq!(with_session, with_ip + with_name);
    let (ok, report) = common::ocsf_check(&out.stdout, "sessions-cli");
    assert!(ok, "{report}");
}
