//! Nothing secret, nothing unbounded leaves (issue 17, "One rule for everything that leaves"):
//! the places where text from an input can reach an output or a log are listed and checked to
//! go through `mask` (the grep-style tests), and the hostile cases that found the leaks are
//! replayed through the real binary: `parse` in both formats, `backfill` and `doctor` with bad
//! settings, and `invoke` on moto.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::put_object;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_redshift-audit-forwarder");

/// The secrets planted by these tests: none of these strings may appear in any output.
const SECRETS: [&str; 4] = [
    "hunter2",
    "wJalrXUtnFEMI",
    "IOSFODNN7EXAMPLE",
    "FQoGZXIvYXdzE",
];
/// Firehose's record limit (FORMAT.md): no output line may exceed it.
const RECORD_LIMIT: usize = 1000 * 1024;

/// A connection-log time column holding three secrets (issue 17, "Where it stands" 1).
const SECRET_TIME: &str =
    "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG AKIAIOSFODNN7EXAMPLE PASSWORD 'hunter2'";

// ---------------------------------------------------------------------------------------------
// The places, by grep

/// Non-test source of the crate: (path, text), each file cut at its trailing test module.
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "tests") {
                    walk(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "rs")
                && path.file_name().is_some_and(|n| n != "tests.rs")
            {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    walk(&root.join("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read source");
            let text = match text.find("#[cfg(test)]\nmod tests") {
                Some(at) => text[..at].to_string(),
                None => text,
            };
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            (rel, text)
        })
        .collect()
}

#[test]
fn every_line_to_stderr_goes_through_report_eprint() {
    for (path, text) in sources() {
        if path == "src/report.rs" {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            assert!(
                !line.contains("eprintln!") && !line.contains("eprint!("),
                "{path}:{}: stderr written directly, not through report::eprint: {line}",
                n + 1
            );
        }
    }
    let report =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/report.rs"))
            .unwrap();
    let direct: Vec<&str> = report
        .lines()
        .filter(|l| l.contains("writeln!(") || l.contains("eprintln!"))
        .collect();
    assert_eq!(
        direct.len(),
        1,
        "report.rs writes stderr in one place: {direct:?}"
    );
}

#[test]
fn every_print_to_stdout_other_than_records_is_cleaned() {
    // Records go out through the sinks (masked by `redact`); anything else printed is a
    // document or a text made of inputs, cleaned first.
    let mut prints = 0;
    for (path, text) in sources() {
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            if line.contains("println!(") || line.contains("print!(") {
                prints += 1;
                // The statement: this line and, when rustfmt broke it, the next two.
                let statement = lines[n..lines.len().min(n + 3)].concat();
                assert!(
                    statement.contains("clean"),
                    "{path}:{}: printed without mask::clean or report::clean_document: {line}",
                    n + 1
                );
            }
        }
    }
    assert_eq!(
        prints, 5,
        "the doctor's two, invoke's response, backfill's summary, parse --format parquet's objects"
    );
}

#[test]
fn tracing_writes_through_the_masking_writer() {
    let writers: Vec<(String, String)> = sources()
        .into_iter()
        .flat_map(|(path, text)| {
            text.lines()
                .filter(|l| l.contains("with_writer("))
                .map(|l| (path.clone(), l.trim().to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        writers.len(),
        2,
        "the command line's and Lambda's: {writers:?}"
    );
    for (path, line) in writers {
        assert!(line.contains("report::Stderr"), "{path}: {line}");
    }
    for (path, text) in sources() {
        assert!(
            !text.contains("init_default_subscriber()"),
            "{path}: Lambda's subscriber writes stdout unmasked"
        );
    }
}

#[test]
fn reasons_quote_inputs_only_through_mask_quote() {
    // The files that build `parse_error` reasons: no value is formatted with `{:?}` (whole and
    // unmasked); they quote with `mask::quote` or clean the reason.
    let builders = [
        "src/logs/",
        "src/cloudtrail/mod.rs",
        "src/cloudtrail/reader.rs",
        "src/pipeline.rs",
        "src/pipeline/",
        "src/output/mod.rs",
    ];
    // A single byte shown as a char: bounded, and no secret; a test helper's panic.
    let allowed = ["format!(\"{:?}\", char::from(*b))", "panic!("];
    for (path, text) in sources() {
        if !builders.iter().any(|b| path.starts_with(b)) {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.starts_with("//") || allowed.iter().any(|a| line.contains(a)) {
                continue;
            }
            assert!(
                !line.contains(":?}"),
                "{path}:{}: an input formatted whole into a reason or error: {line}",
                n + 1
            );
        }
    }
}

#[test]
fn the_places_that_quote_inputs_call_the_one_rule() {
    // (file, what it must call): the table of the places where input text meets an output.
    let places = [
        ("src/logs/fields.rs", "mask::quote("), // a column that does not type
        ("src/logs/activity.rs", "mask::quote("), // a header number that does not type
        ("src/logs/mod.rs", "mask::quote("),    // an unknown log type
        ("src/output/mod.rs", "mask::quote("),  // an unknown output format
        ("src/cloudtrail/mod.rs", "mask::quote("), // a bad CLOUDTRAIL_EVENT_SOURCES entry
        ("src/pipeline/trail.rs", "mask::clean("), // a trail parse_error's reason
        ("src/pipeline/trail.rs", "mask::redact("), // a trail parse_error's raw
        ("src/pipeline/trail.rs", "mask::redact_json("), // a trail event's strings
        ("src/redact.rs", "redact_into("),      // every column and parse_error raw
        ("src/settings.rs", "mask::quote("),    // a setting's bad value
        ("src/settings.rs", "mask::clean("),    // a setting's problem
        ("src/cli.rs", "value_problem("),       // OUTPUT_FORMAT / REDACT_SECRETS for parse
        ("src/metrics.rs", "mask::clean("),     // dimension values
        ("src/metrics.rs", "mask::clean_json("), // document fields
        ("src/report.rs", "clean_json("),       // JSON log lines
        ("src/report.rs", "clean(line"),        // every stderr line
        ("src/diagnose.rs", "mask::clean("),    // the doctor's text
        ("src/diagnose.rs", "clean_document("), // the doctor's JSON
        ("src/runtime.rs", "report::Stderr"),   // tracing's lines
        ("src/runtime.rs", "mask::clean("),     // the error Lambda reports
    ];
    let sources = sources();
    for (file, call) in places {
        let (_, text) = sources
            .iter()
            .find(|(p, _)| p == file)
            .unwrap_or_else(|| panic!("{file} is gone"));
        assert!(text.contains(call), "{file} no longer calls {call}");
    }
}

// ---------------------------------------------------------------------------------------------
// The reproductions, through the binary

fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("leaks")
        .join(format!("{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn audit_file(dir: &Path, log_type: &str, text: &str) -> PathBuf {
    let path = dir.join(format!(
        "123456789012_redshift_us-east-1_prod_{log_type}_2024-03-01T00:53.gz"
    ));
    std::fs::write(&path, common::gzip(text)).unwrap();
    path
}

fn trail_file(dir: &Path, json: &str) -> PathBuf {
    let path = dir.join("123456789012_CloudTrail_us-east-1_20240301T0055Z_abc123.json.gz");
    std::fs::write(&path, common::gzip(json)).unwrap();
    path
}

/// The binary with none of the developer's settings, and `env` set.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    for name in common::setting_names() {
        command.env_remove(name);
    }
    command
        .env_remove("RUST_LOG")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(args)
        .envs(env.iter().copied());
    command.output().expect("run the binary")
}

/// Stdout and stderr hold none of the planted secrets, and no stdout line is over the record
/// limit; returns (stdout, stderr).
fn assert_clean(output: &Output, what: &str) -> (String, String) {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    for secret in SECRETS {
        assert!(
            !stdout.contains(secret),
            "{what}: {secret} on stdout:\n{stdout}"
        );
        assert!(
            !stderr.contains(secret),
            "{what}: {secret} on stderr:\n{stderr}"
        );
    }
    for line in stdout.lines() {
        assert!(
            line.len() <= RECORD_LIMIT,
            "{what}: a {}-byte line",
            line.len()
        );
    }
    (stdout, stderr)
}

fn parse(path: &Path, format: &str) -> (Vec<Value>, String) {
    let output = run(&["parse", "--format", format, path.to_str().unwrap()], &[]);
    assert!(output.status.success(), "{format}: {output:?}");
    let (stdout, stderr) = assert_clean(&output, &format!("{} {format}", path.display()));
    let records = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON record"))
        .collect();
    (records, stderr)
}

/// The reason of a `parse_error` record in either format.
fn reason(record: &Value) -> &str {
    record["parse_error"]
        .as_str()
        .or_else(|| record["status_detail"].as_str())
        .unwrap_or_else(|| panic!("no reason in {record}"))
}

#[test]
fn a_connection_log_time_column_of_secrets_is_masked_in_the_reason_the_record_and_stderr() {
    let dir = scratch("connection-time");
    let line =
        format!("authenticated |{SECRET_TIME}|[local] | |5108|dev |rdsdb |Ident |0| | |0| | | |\n");
    let path = audit_file(&dir, "connectionlog", &line);
    for format in ["raw", "ocsf"] {
        let (records, stderr) = parse(&path, format);
        assert_eq!(records.len(), 1);
        let reason = reason(&records[0]);
        assert!(reason.starts_with("column 2 (recordtime)"), "{reason}");
        assert!(reason.contains("PASSWORD '[REDACTED]'"), "{reason}");
        assert!(reason.contains("AKIA[REDACTED]"), "{reason}");
        assert!(
            stderr.contains("aws_secret_access_key=[REDACTED]"),
            "{stderr}"
        );
    }
}

#[test]
fn a_user_log_numeric_column_of_secrets_is_masked_in_both_formats() {
    let dir = scratch("user-numeric");
    let line = "1|rdsdb | |alter |PASSWORD 'hunter2' AKIAIOSFODNN7EXAMPLE|1|1|9223372036854775807|14872|1061|Thu, 3 Dec 2020 10:18:38:416\n";
    let path = audit_file(&dir, "userlog", line);
    for format in ["raw", "ocsf"] {
        let (records, _) = parse(&path, format);
        assert!(reason(&records[0]).starts_with("column 5 (usecreatedb)"));
    }
}

#[test]
fn an_unreadable_trail_event_with_copy_credentials_is_masked_in_raw_and_ocsf() {
    let dir = scratch("trail-duplicate");
    let event = r#"{"eventVersion":"1.08","eventSource":"redshift-data.amazonaws.com","eventName":"ExecuteStatement","eventName":"x","eventTime":"2024-03-01T00:50:00Z","requestParameters":{"sql":"COPY t FROM 's3://b/p' CREDENTIALS 'aws_access_key_id=AKIAIOSFODNN7EXAMPLE;aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'"}}"#;
    let path = trail_file(&dir, &format!(r#"{{"Records":[{event}]}}"#));
    for format in ["raw", "ocsf"] {
        let (records, stderr) = parse(&path, format);
        assert_eq!(records.len(), 1, "{format}");
        assert!(reason(&records[0]).contains("duplicate field"), "{format}");
        let text = records[0].to_string();
        assert!(
            text.contains("aws_secret_access_key=[REDACTED]"),
            "{format}: {text}"
        );
        assert!(stderr.contains("could not be parsed"), "{stderr}");
    }
}

#[test]
fn a_readable_trail_event_has_its_strings_masked_and_stays_json() {
    let dir = scratch("trail-event");
    let event = r#"{"eventVersion":"1.08","eventSource":"redshift.amazonaws.com","eventName":"CreateCluster","eventTime":"2024-03-01T00:50:00Z","awsRegion":"us-east-1","eventID":"e1","requestID":"r1","userIdentity":{"type":"IAMUser","accessKeyId":"AKIAIOSFODNN7EXAMPLE"},"requestParameters":{"note":"PASSWORD 'hunter2"}}"#;
    let path = trail_file(&dir, &format!(r#"{{"Records":[{event}]}}"#));
    let (records, _) = parse(&path, "raw");
    assert_eq!(records[0]["userIdentity"]["accessKeyId"], "AKIA[REDACTED]");
    assert_eq!(
        records[0]["requestParameters"]["note"],
        "PASSWORD '[REDACTED]"
    );
    let (records, _) = parse(&path, "ocsf");
    assert_eq!(records[0]["class_uid"], 6003);
}

#[test]
fn a_10_mib_column_that_does_not_type_gives_a_bounded_reason_record_and_log_line() {
    let dir = scratch("ten-mib");
    let big = "9".repeat(10 << 20);
    let line = format!("authenticated |{big}|[local] | |5108|dev |rdsdb |Ident |0| | |0| | | |\n");
    let path = audit_file(&dir, "connectionlog", &line.repeat(3));
    for format in ["raw", "ocsf"] {
        let output = run(&["parse", "--format", format, path.to_str().unwrap()], &[]);
        let (stdout, stderr) = assert_clean(&output, format);
        assert_eq!(stdout.lines().count(), 3);
        for line in stdout.lines() {
            assert!(line.len() < 70 * 1024, "{format}: {} bytes", line.len());
            let record: Value = serde_json::from_str(line).unwrap();
            let reason = reason(&record);
            assert!(reason.len() < 400, "{format}: {} bytes", reason.len());
            assert!(
                reason.ends_with(&format!("…\" ({} bytes)", big.len())),
                "{reason}"
            );
        }
        assert!(
            stderr.len() < 1024,
            "{format}: {} bytes of stderr",
            stderr.len()
        );
    }
}

/// A 100 KB bad value carrying a secret.
fn hostile_value() -> String {
    format!("PASSWORD 'hunter2' {}", "b".repeat(100_000))
}

#[test]
fn a_100_kb_bad_setting_is_quoted_in_excerpt_only() {
    let value = hostile_value();
    for (args, name) in [
        (vec!["backfill"], "AUDIT_BUCKET"),
        (vec!["backfill"], "METRICS_NAMESPACE"),
        (vec!["parse", "x.gz"], "REDACT_SECRETS"),
        (vec!["parse", "x.gz"], "OUTPUT_FORMAT"),
    ] {
        let output = run(
            &args,
            &[
                (name, value.as_str()),
                ("DELIVERY_STREAM", "s"),
                (
                    "AUDIT_BUCKET",
                    if name == "AUDIT_BUCKET" { &value } else { "b" },
                ),
            ],
        );
        assert_eq!(output.status.code(), Some(2), "{name}: {output:?}");
        let (_, stderr) = assert_clean(&output, name);
        assert!(stderr.contains(name), "{stderr}");
        assert!(stderr.len() < 2048, "{name}: {} bytes", stderr.len());
    }
}

#[test]
fn the_doctor_quotes_a_bad_setting_in_excerpt_in_text_and_json() {
    let value = hostile_value();
    for args in [vec!["doctor"], vec!["doctor", "--json"]] {
        let output = run(&args, &[("AUDIT_BUCKET", &value), ("DELIVERY_STREAM", "s")]);
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        let (stdout, _) = assert_clean(&output, "doctor");
        assert!(stdout.contains("AUDIT_BUCKET"), "{stdout}");
        assert!(stdout.len() < 4096, "{args:?}: {} bytes", stdout.len());
    }
}

// ---------------------------------------------------------------------------------------------
// invoke on moto

const BUCKET: &str = "audit-bucket";
const DEST: &str = "delivered";
const STREAM: &str = "redshift-audit";
const DAY: &str = "AWSLogs/123456789012/redshift/us-east-1/2024/03/01/";

#[tokio::test]
async fn invoke_delivers_and_logs_nothing_secret_and_nothing_over_the_record_limit() {
    let (moto, s3, dir) = common::stream_world("leaks", "invoke", &[BUCKET], STREAM, DEST).await;
    let big = "9".repeat(2 << 20);
    let text = format!(
        "authenticated |{SECRET_TIME}|[local] | |5108|dev |rdsdb |Ident |0| | |0| | | |\n\
         authenticated |{big}|[local] | |5108|dev |rdsdb |Ident |0| | |0| | | |\n\
         authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | | |session_token=FQoGZXIvYXdzE |\n"
    );
    let key =
        format!("{DAY}123456789012_redshift_us-east-1_prod_connectionlog_2024-03-01T00:53.gz");
    put_object(&s3, BUCKET, &key, common::gzip(&text)).await;
    let event = json!({"Records": [common::s3_notification_record(BUCKET, &key, "0")]});
    let event_path = dir.join("event.json");
    std::fs::write(&event_path, event.to_string()).unwrap();
    for format in ["raw", "ocsf"] {
        let mut command = Command::new(BIN);
        command.arg("invoke").arg(&event_path);
        common::isolate(&mut command, &moto);
        let output = command
            .env("DELIVERY_STREAM", STREAM)
            .env("AUDIT_BUCKET", BUCKET)
            .env("OUTPUT_FORMAT", format)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let (stdout, stderr) = assert_clean(&output, &format!("invoke {format}"));
        let response: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(response["receipts"][0]["parse_errors"], 2, "{stdout}");
        assert_eq!(response["receipts"][0]["redacted_records"], 2, "{stdout}");
        assert!(stderr.contains("object forwarded"), "{stderr}");
        assert!(stderr.lines().all(|l| l.len() < 16 * 1024));
    }
    let delivered = common::delivered_lines(&s3, DEST).await;
    assert_eq!(delivered.len(), 6);
    for line in &delivered {
        assert!(line.len() <= RECORD_LIMIT, "{} bytes", line.len());
        for secret in SECRETS {
            assert!(!line.contains(secret), "{secret} delivered: {line}");
        }
    }
    drop(moto);
}
