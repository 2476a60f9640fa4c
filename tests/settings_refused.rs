//! Settings that cannot match anything are refused at start-up (issue 17, item 6): the real
//! binary, started with one bad variable, exits with status 2 before any AWS call, names the
//! variable and says why, and quotes a bad value only in excerpt. Each case of "Where it
//! stands" item 8 is here as the issue reproduced it.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

const BIN: &str = env!("CARGO_BIN_EXE_redshift-audit-forwarder");

/// An event file `invoke` can read (settings are checked before the event is handled), one per
/// call so that parallel tests never read a file another is writing.
fn event_file() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "settings-refused-{}-{}.json",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, b"{}").expect("write the event file");
    path
}

/// The binary's `args` with only `vars` set (plus a valid `DELIVERY_STREAM` unless given), no
/// AWS endpoint at all: a refusal must come before any call.
fn run(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    for name in common::setting_names() {
        command.env_remove(name);
    }
    command
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // Nothing listens here: a call that slipped past the settings would fail, not succeed.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("DELIVERY_STREAM", "audit-stream")
        .args(args);
    for (name, value) in vars {
        command.env(name, value);
    }
    command.output().expect("run the binary")
}

fn invoke(vars: &[(&str, &str)]) -> Output {
    let event = event_file();
    let out = run(&["invoke", event.to_str().unwrap_or_default()], vars);
    let _ = std::fs::remove_file(&event);
    out
}

/// Asserts exit status 2, one problem line naming `variable` with `words`, and nothing on stdout.
fn assert_refused(out: &Output, variable: &str, words: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{variable}: {stderr}");
    assert!(out.stdout.is_empty(), "{variable}: stdout {:?}", out.stdout);
    let line = stderr
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{variable}: ")))
        .unwrap_or_else(|| panic!("no line names {variable}: {stderr}"));
    assert!(
        line.contains(words),
        "{variable} should say {words:?}: {line}"
    );
    stderr
}

#[test]
fn prefixes_that_select_nothing_are_refused_naming_audit_prefix() {
    for (prefix, words) in [
        ("/AWSLogs", "starts with '/'"),
        ("AWSLogs//123456789012/redshift/us-east-1", "empty segment"),
        ("AWSLogs/../x", "\"..\" segment"),
        ("AWSLogs/./x", "\".\" segment"),
        (
            "AWSLogs/123456789012/redshift/us-east-1/2024/03/01",
            "ends in the date partition \"2024/03/01\"",
        ),
        (
            "AWSLogs/123456789012/redshift/us-east-1/2024/03/01/",
            "ends in the date partition",
        ),
        (
            "AWSLogs/123456789012/redshift/us-east-1/2024/03",
            "ends in the date partition \"2024/03\"",
        ),
        (
            "AWSLogs/123456789012/redshift/us-east-1/2024",
            "ends in the date partition \"2024\"",
        ),
    ] {
        assert_refused(&invoke(&[("AUDIT_PREFIX", prefix)]), "AUDIT_PREFIX", words);
    }
}

#[test]
fn a_date_partition_prefix_is_told_where_to_stop_and_how_to_start_later() {
    let out = invoke(&[(
        "AUDIT_PREFIX",
        "AWSLogs/123456789012/redshift/us-east-1/2024/03/01",
    )]);
    let stderr = assert_refused(&out, "AUDIT_PREFIX", "date partition");
    assert!(
        stderr.contains("\"AWSLogs/123456789012/redshift/us-east-1\"")
            && stderr.contains("BACKFILL_START_TIME"),
        "{stderr}"
    );
}

#[test]
fn bucket_names_s3_refuses_or_reserves_are_refused_naming_the_variable() {
    for (name, words) in [
        ("192.168.1.1", "IP address"),
        ("xn--audit-logs", "prefix S3 reserves"),
        ("sthree-audit", "prefix S3 reserves"),
        ("audit-logs-s3alias", "suffix S3 reserves"),
        ("audit-logs--ol-s3", "suffix S3 reserves"),
        ("audit-logs--x-s3", "suffix S3 reserves"),
        ("audit..logs", "adjacent periods"),
        ("ab", "3 to 255"),
        ("audit logs", "character other than"),
    ] {
        assert_refused(&invoke(&[("AUDIT_BUCKET", name)]), "AUDIT_BUCKET", words);
        assert_refused(&invoke(&[("STATE_BUCKET", name)]), "STATE_BUCKET", words);
    }
}

#[test]
fn metrics_namespaces_cloudwatch_refuses_are_refused() {
    for (namespace, words) in [
        (",,,", "not a CloudWatch namespace"),
        ("audit;logs", "not a CloudWatch namespace"),
        ("AWS/Redshift", "keeps for AWS services"),
    ] {
        assert_refused(
            &invoke(&[("METRICS_NAMESPACE", namespace)]),
            "METRICS_NAMESPACE",
            words,
        );
    }
}

#[test]
fn start_times_before_2012_or_in_the_future_are_refused() {
    for (time, words) in [
        ("2999-01-01T00:00:00Z", "in the future"),
        ("1900-01-01T00:00:00Z", "before 2012-01-01T00:00:00Z"),
        ("2011-12-31T23:59:59Z", "before 2012-01-01T00:00:00Z"),
    ] {
        assert_refused(
            &invoke(&[("BACKFILL_START_TIME", time)]),
            "BACKFILL_START_TIME",
            words,
        );
    }
}

#[test]
fn the_backfill_command_refuses_the_same_settings_with_exit_2() {
    assert_refused(
        &run(
            &["backfill", "--dry-run"],
            &[
                ("AUDIT_BUCKET", "audit"),
                ("AUDIT_PREFIX", "/AWSLogs"),
                ("STATE_BUCKET", "state"),
            ],
        ),
        "AUDIT_PREFIX",
        "starts with '/'",
    );
}

#[test]
fn a_100_kb_bad_value_is_quoted_in_excerpt_only() {
    let value = format!("/{}", "A".repeat(100_000));
    for variable in [
        "AUDIT_PREFIX",
        "AUDIT_BUCKET",
        "METRICS_NAMESPACE",
        "BACKFILL_START_TIME",
        "LOG_TYPES",
        "STALE_AFTER",
    ] {
        let out = invoke(&[(variable, &value)]);
        let stderr = assert_refused(&out, variable, "");
        assert!(
            stderr.len() < 1500,
            "{variable}: {} bytes of stderr",
            stderr.len()
        );
        assert!(
            !stderr.contains(&"A".repeat(100)),
            "{variable} echoed the value"
        );
    }
    // The excerpt says how long the value was.
    let stderr = String::from_utf8_lossy(&invoke(&[("AUDIT_BUCKET", &value)]).stderr).into_owned();
    assert!(stderr.contains("(100001 bytes)"), "{stderr}");
}

#[test]
fn valid_values_at_the_edges_are_taken() {
    // A custom folder that looks like a year, a legacy bucket name, CloudWatch's punctuation, and
    // the first day of Redshift audit logging: invoke gets past the settings (and fails later,
    // on the empty event or the missing endpoint, saying so).
    let out = invoke(&[
        ("AUDIT_PREFIX", "audit/2024"),
        ("AUDIT_BUCKET", "Legacy_Audit_Bucket"),
        ("AUDIT_BUCKET_REGION", "us-east-1"),
        ("METRICS_NAMESPACE", "Team #1/audit:logs_v2.x"),
        ("BACKFILL_START_TIME", "2012-01-01T00:00:00Z"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(!stderr.contains("invalid setting"), "{stderr}");
}

#[test]
fn backfill_since_takes_the_same_times_as_backfill_start_time() {
    for (since, words) in [
        ("2999-01-01T00:00:00Z", "in the future"),
        ("1900-01-01T00:00:00Z", "before 2012-01-01T00:00:00Z"),
        ("yesterday", "not an RFC 3339 time"),
    ] {
        let out = run(&["backfill", "--dry-run", "--since", since], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{since}: {stderr}");
        assert!(
            stderr.contains("--since") && stderr.contains(words),
            "{since}: {stderr}"
        );
    }
}
