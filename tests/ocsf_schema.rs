//! OCSF output validates against OCSF 1.1.0 (issue 8, "Prove it"): records of every log type,
//! every mapped activity, parse errors and split parts go through the library's parser,
//! redaction and OCSF writer, and `scripts/ocsf_check.py` (pydantic-ocsf plus the project's own
//! checks) must accept every event and refuse broken ones.

mod common;

use redshift_audit_forwarder::key::parse_file_name;
use redshift_audit_forwarder::logs::{LogType, Parser};
use redshift_audit_forwarder::output::{Format, Join, Provenance};
use redshift_audit_forwarder::redact::redact_record;

const CONNECTION: &[&str] = &[
    // 2018, 2020 and 2022 layouts; every event Redshift writes; [local], IPv6-mapped and plain hosts.
    "authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | |",
    "initiating session |Tue, 8 Dec 2020 20:01:55:177|::ffff:10.0.0.1 |5439 |5108|dev |rdsdb |password |0|TLSv1.2 |ECDHE-RSA-AES256-GCM-SHA384 |1500| | | |psql |Linux 5.4 |libpq 13 |",
    "authentication failure |Mon, 16 Mar 2022 08:18:14:766|::ffff:223.233.72.13 |1224 |1073742045|dev |alice |password |0|TLSv1.2 |ECDHE-RSA-AES256-GCM-SHA384 |0| | | | |Windows 10 10.0 amd64 |Amazon Redshift JDBC Driver 1.2.55.1083 |none |0|da9edc00-a1e6-44e0-8274-9417e5f355de",
    "disconnecting session |Mon, 16 Mar 2022 09:18:14:766|10.1.2.3 |50000 |1073742045|dev |IAM:alice |IAM AssumeUser |3600000123|TLSv1.2 |ECDHE-RSA-AES256-GCM-SHA384 |0| | |guid | |Windows 10 10.0 amd64 |JDBC |none |2|da9edc00-a1e6-44e0-8274-9417e5f355de|zstd |future column",
    "set application_name |Mon, 16 Mar 2022 09:18:14:766|2001:db8::1 |50000 |77|dev |bob |password |0| | |0| | | |my app |",
    "authenticated |Mon, 16 Mar 2022 09:18:14:766| | |77| | | |0| | |0| | | |",
    // An empty event column: activity Other (99), which Authentication allows; Unknown it does not.
    "|Mon, 16 Mar 2022 09:18:14:766|10.1.2.3 |50000 |77|dev |bob |password |0| | |0| | | |",
    "not a connection line",
];

const USER: &[&str] = &[
    "100|bob | |create |0|0|0|9223372036854775807|14872|1061|Thu, 3 Dec 2020 10:18:38:416",
    "1|rdsdb | |alter |1|1|1|9223372036854775807|14872|1061|Thu, 3 Dec 2020 10:18:38:416",
    "100|robert |bob |rename |0|0|0| |14872|1062|Thu, 3 Dec 2020 10:18:39:416",
    "100|robert | |drop |0|0|0|2030-01-01 00:00:00|14872|1063|Thu, 3 Dec 2020 10:18:40:416",
    "101|carol | |lock |0| |0| |14872|1064|Thu, 3 Dec 2020 10:18:41:416",
    "102|dave | | |0|0|0| |14872|1065|Thu, 3 Dec 2020 10:18:42:416",
    "garbage|",
];

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const PASSWORD: &str = "Hunter2-is-my-password";

fn activity_log() -> String {
    let header = |xid: u32| {
        format!(
            "'2020-12-08T22:01:55Z UTC [ db=dev user=rdsdb pid=23170 userid=1 xid={xid} ]' LOG: "
        )
    };
    let statements = [
        "SELECT  ss.node as node,\n        bc.temporary as temporary\nFROM    stv_slices as ss;".to_string(),
        "with x as (select 1) select * from x".into(),
        "show search_path".into(),
        "explain select 1".into(),
        "insert into t values (1)".into(),
        format!("copy t from 's3://b/p' credentials 'aws_access_key_id=AKIAIOSFODNN7EXAMPLE;aws_secret_access_key={SECRET}' csv"),
        "merge into t using s on t.id = s.id when matched then delete".into(),
        "update t set a = 1".into(),
        "delete from t".into(),
        "truncate t".into(),
        "drop table t".into(),
        format!("create user bob password '{PASSWORD}'"),
        "SET statement_timeout TO 120000".into(),
        "  -- leading comment\n/* block */ (SELECT 1)".into(),
        "vacuum".into(),
        "".into(),
    ];
    let mut log = String::from("text before the first header\n");
    for (i, s) in statements.iter().enumerate() {
        log.push_str(&header(245_000 + i as u32));
        log.push_str(s);
        log.push('\n');
    }
    log
}

/// OCSF lines of every record of `input`, redacted, split at `max_len`.
fn ocsf_lines(log_type: LogType, input: &[u8], provenance: &Provenance, max_len: usize) -> Vec<u8> {
    let mut parser = Parser::new(log_type, input);
    let mut scratch = String::new();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while let Some(record) = parser.next_record().unwrap() {
        let record = redact_record(record, &mut scratch);
        Format::Ocsf
            .write_parts(&record, provenance, Join::Off, max_len, &mut buf, |line| {
                out.extend_from_slice(line);
                out.push(b'\n');
            })
            .unwrap();
    }
    out
}

fn provenance(log_type: LogType, named: bool) -> Provenance {
    let key = format!(
        "AWSLogs/123456789012/redshift/us-east-1/2024/03/01/123456789012_redshift_us-east-1_analytics-prod_{log_type}_2024-03-01T00:53.gz"
    );
    if named {
        let name = parse_file_name(&key).unwrap();
        Provenance::new(log_type, Some(&name), Some("audit-bucket"), &key)
    } else {
        Provenance::new(log_type, None, None, "local.log")
    }
}

fn all_events() -> Vec<u8> {
    let mut out = Vec::new();
    for named in [true, false] {
        let lines = |l: &[&str]| l.join("\n").into_bytes();
        let conn = provenance(LogType::ConnectionLog, named);
        out.extend(ocsf_lines(
            LogType::ConnectionLog,
            &lines(CONNECTION),
            &conn,
            1_000_000,
        ));
        let user = provenance(LogType::UserLog, named);
        out.extend(ocsf_lines(LogType::UserLog, &lines(USER), &user, 1_000_000));
        let mut invalid =
            b"1|b\xffob | |create |0|0|0| |1|2|Thu, 3 Dec 2020 10:18:38:416\n".to_vec();
        invalid.extend_from_slice(b"\xff\xfe|\n");
        out.extend(ocsf_lines(LogType::UserLog, &invalid, &user, 1_000_000));
        let act = provenance(LogType::UserActivityLog, named);
        out.extend(ocsf_lines(
            LogType::UserActivityLog,
            activity_log().as_bytes(),
            &act,
            1_000_000,
        ));
        // Small parts: every statement over 2 KB is split, and each part is an event.
        let long = format!(
            "'2020-12-08T22:01:55Z UTC [ db=dev user=rdsdb pid=1 userid=1 xid=2 ]' LOG: select '{}'\n",
            "long \"quoted\" text\n".repeat(500)
        );
        out.extend(ocsf_lines(
            LogType::UserActivityLog,
            long.as_bytes(),
            &act,
            2048,
        ));
    }
    out
}

/// Runs the checker on `events`: (success, stdout + stderr).
fn check(events: &[u8], test: &str) -> (bool, String) {
    common::ocsf_check(events, &format!("schema-{test}"))
}

#[test]
fn every_event_the_writer_produces_validates_against_ocsf_1_1_0() {
    let events = all_events();
    let count = events
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    assert!(count > 80, "{count} events");
    let (ok, report) = check(&events, "all");
    assert!(ok, "{report}");
    assert!(
        report.contains(&format!("{count} event(s) valid OCSF 1.1.0")),
        "{report}"
    );
}

#[test]
fn every_class_and_split_parts_are_among_the_checked_events() {
    let events: Vec<serde_json::Value> = all_events()
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    for class in [0, 3001, 3002, 6005] {
        assert!(
            events.iter().any(|e| e["class_uid"] == class),
            "class {class}"
        );
    }
    for (class, activity) in [
        (3002, 1),
        (3002, 2),
        (3002, 99),
        (3001, 1),
        (3001, 6),
        (3001, 99),
    ] {
        assert!(
            events
                .iter()
                .any(|e| e["class_uid"] == class && e["activity_id"] == activity),
            "{class} {activity}"
        );
    }
    for activity in [2, 4, 5, 6, 7, 99] {
        assert!(events
            .iter()
            .any(|e| e["class_uid"] == 6005 && e["activity_id"] == activity));
    }
    assert!(events
        .iter()
        .any(|e| e["unmapped"]["parts"].as_u64() > Some(5)));
    assert!(events.iter().any(|e| e["unmapped"]["redacted"] == true));
    assert!(
        events.iter().all(|e| e["activity_id"] != 0),
        "an unknown activity is Other (99)"
    );
    assert!(events.iter().any(|e| e["unmapped"]["invalid_utf8"] == true));
    assert!(
        events.iter().any(|e| e["cloud"].get("account").is_none()),
        "a file without a Redshift name"
    );
}

#[test]
fn no_secret_reaches_an_ocsf_event() {
    let events = String::from_utf8(all_events()).unwrap();
    for secret in [SECRET, PASSWORD, "AKIAIOSFODNN7EXAMPLE"] {
        assert!(!events.contains(secret), "{secret} leaked");
    }
    assert!(events.contains("aws_secret_access_key=[REDACTED]"));
}

#[test]
fn broken_events_are_refused_with_line_and_reason() {
    let events = all_events();
    let first = events.split(|b| *b == b'\n').next().unwrap();
    let good: serde_json::Value = serde_json::from_slice(first).unwrap();
    assert_eq!(
        good["class_uid"], 3002,
        "the first event is a connection record"
    );
    let broken = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut e = good.clone();
        edit(&mut e);
        serde_json::to_vec(&e).unwrap()
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (broken(&|e| e["type_uid"] = 300299.into()), "type_uid"),
        (
            broken(&|e| e["time"] = "2020-12-07T20:01:55Z".into()),
            "time",
        ),
        (broken(&|e| e["category_uid"] = 6.into()), "category_uid"),
        (broken(&|e| e["severity_id"] = 9.into()), "severity_id"),
        (
            broken(&|e| e["metadata"]["version"] = "1.0.0".into()),
            "metadata.version",
        ),
        (
            broken(&|e| {
                e.as_object_mut().unwrap().remove("user");
            }),
            "user",
        ),
        (
            broken(&|e| e["src_endpoint"]["ip"] = "not-an-ip".into()),
            "src_endpoint.ip",
        ),
        (b"{not json".to_vec(), "not JSON"),
    ];
    for (event, reason) in cases {
        let mut input = first.to_vec();
        input.push(b'\n');
        input.extend_from_slice(&event);
        input.push(b'\n');
        let (ok, report) = check(&input, "broken");
        assert!(!ok, "{reason}: accepted\n{report}");
        assert!(
            report.contains(":2: "),
            "{reason}: line not named\n{report}"
        );
        assert!(
            !report.contains(":1: "),
            "{reason}: the good line was refused\n{report}"
        );
        assert!(
            report.contains(reason),
            "{reason}: reason not named\n{report}"
        );
    }
}
