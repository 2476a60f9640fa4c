use super::*;
use crate::logs::Parser;
use xxhash_rust::xxh3::xxh3_128;

fn name() -> LogFileName {
    crate::key::parse_file_name(
        "AWSLogs/123456789012/redshift/us-east-1/2024/03/01/123456789012_redshift_us-east-1_analytics-prod_connectionlog_2024-03-01T00:53.gz",
    )
    .unwrap()
}

fn lines(log_type: LogType, input: &str, provenance: &Provenance) -> Vec<serde_json::Value> {
    let mut parser = Parser::new(log_type, input.as_bytes());
    let mut out = Vec::new();
    while let Some(record) = parser.next_record().unwrap() {
        let mut buf = Vec::new();
        write_record(&mut buf, &record, provenance);
        out.push(serde_json::from_slice(&buf).unwrap());
    }
    out
}

const CONNECTION: &str = "authentication failure |Mon, 16 Mar 2022 08:18:14:766|::ffff:223.233.72.13 |1224 |1073742045|dev |alice |password |0|TLSv1.2 |ECDHE-RSA-AES256-GCM-SHA384 |0| | | | |Windows 10 10.0 amd64 |Amazon Redshift JDBC Driver 1.2.55.1083 |none |0|da9edc00-a1e6-44e0-8274-9417e5f355de\n";

#[test]
fn connection_record_has_typed_columns_and_provenance() {
    let name = name();
    let p = Provenance::new(
        LogType::ConnectionLog,
        Some(&name),
        Some("audit-bucket"),
        "AWSLogs/k.gz",
    );
    let v = &lines(LogType::ConnectionLog, CONNECTION, &p)[0];
    assert_eq!(v["event"], "authentication failure");
    assert_eq!(v["recordtime"], "2022-03-16T08:18:14.766Z");
    assert_eq!(v["remoteport"], 1224);
    assert_eq!(v["pid"], 1073742045);
    assert_eq!(v["sslcompression"], serde_json::Value::Null);
    assert_eq!(v["compression"], serde_json::Value::Null);
    assert_eq!(v["log_type"], "connectionlog");
    assert_eq!(v["account_id"], "123456789012");
    assert_eq!(v["region"], "us-east-1");
    assert_eq!(v["cluster"], "analytics-prod");
    assert_eq!(v["file_time"], "2024-03-01T00:53:00Z");
    assert_eq!(v["source"]["bucket"], "audit-bucket");
    assert_eq!(v["source"]["key"], "AWSLogs/k.gz");
    assert_eq!(v["source"]["line"], 1);
    assert_eq!(v["id"].as_str().unwrap().len(), 32);
    assert!(v.get("extra_columns").is_none());
    assert!(v.get("invalid_utf8").is_none());
}

#[test]
fn ids_are_stable_and_distinct() {
    let p = Provenance::new(LogType::ConnectionLog, None, Some("b"), "k");
    let input = CONNECTION.repeat(3);
    let first = lines(LogType::ConnectionLog, &input, &p);
    let again = lines(LogType::ConnectionLog, &input, &p);
    let ids: Vec<_> = first.iter().map(|v| v["id"].clone()).collect();
    assert_eq!(
        ids,
        again.iter().map(|v| v["id"].clone()).collect::<Vec<_>>()
    );
    assert_ne!(ids[0], ids[1]);
    assert_ne!(ids[1], ids[2]);
    let other_key = Provenance::new(LogType::ConnectionLog, None, Some("b"), "k2");
    assert_ne!(p.record_id(0), other_key.record_id(0));
    let other_bucket = Provenance::new(LogType::ConnectionLog, None, Some("b2"), "k");
    assert_ne!(p.record_id(0), other_bucket.record_id(0));
}

#[test]
fn id_is_xxh3_128_of_bucket_key_ordinal() {
    let p = Provenance::new(LogType::UserLog, None, Some("bucket"), "key");
    let mut input = b"bucket\0key\0".to_vec();
    input.extend_from_slice(&5u64.to_le_bytes());
    let want = format!("{:032x}", xxh3_128(&input));
    assert_eq!(std::str::from_utf8(&p.record_id(5)).unwrap(), want);
}

#[test]
fn file_without_redshift_name_has_null_provenance_fields() {
    let p = Provenance::new(LogType::ConnectionLog, None, None, "local.txt");
    let v = &lines(LogType::ConnectionLog, CONNECTION, &p)[0];
    assert_eq!(v["account_id"], serde_json::Value::Null);
    assert_eq!(v["cluster"], serde_json::Value::Null);
    assert_eq!(v["file_time"], serde_json::Value::Null);
    assert_eq!(v["source"]["bucket"], serde_json::Value::Null);
    assert_eq!(v["source"]["key"], "local.txt");
}

#[test]
fn parse_error_record_keeps_raw_text() {
    let p = Provenance::new(LogType::UserLog, None, None, "f");
    let v = &lines(LogType::UserLog, "garbage \"line\"\n", &p)[0];
    assert!(
        v["parse_error"].as_str().unwrap().contains("userid"),
        "{}",
        v["parse_error"]
    );
    assert_eq!(v["raw"], "garbage \"line\"");
    assert_eq!(v["log_type"], "userlog");
    assert_eq!(v["source"]["line"], 1);
}

#[test]
fn extra_columns_and_invalid_utf8_are_written() {
    let p = Provenance::new(LogType::ConnectionLog, None, None, "f");
    let mut input = CONNECTION.trim_end().as_bytes().to_vec();
    input.extend_from_slice(b"|zstd |new\xff | |\n");
    let mut parser = Parser::new(LogType::ConnectionLog, &input[..]);
    let record = parser.next_record().unwrap().unwrap();
    let mut buf = Vec::new();
    write_record(&mut buf, &record, &p);
    let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
    assert_eq!(v["compression"], "zstd");
    assert_eq!(v["extra_columns"], serde_json::json!(["new\u{fffd}", ""]));
    assert_eq!(v["invalid_utf8"], true);
}

#[test]
fn activity_query_keeps_newlines() {
    let p = Provenance::new(LogType::UserActivityLog, None, None, "f");
    let input = "'2020-12-08T22:01:55Z UTC [ db=dev user=rdsdb pid=23170 userid=1 xid=245636 ]' LOG: SELECT  ss.node as node,\n        bc.temporary as temporary\nFROM    stv_slices as ss;\n";
    let v = &lines(LogType::UserActivityLog, input, &p)[0];
    assert_eq!(
        v["query"],
        "SELECT  ss.node as node,\n        bc.temporary as temporary\nFROM    stv_slices as ss;"
    );
    assert_eq!(v["recordtime"], "2020-12-08T22:01:55.000Z");
    assert_eq!(v["xid"], 245636);
}

fn big_statement(len: usize) -> String {
    let query: String = "select \"x\", 'é'\n".chars().cycle().take(len).collect();
    format!("'2020-12-08T22:01:55Z UTC [ db=dev user=rdsdb pid=1 userid=1 xid=2 ]' LOG: {query}\n")
}

#[test]
fn small_record_is_one_part() {
    let p = Provenance::new(LogType::UserActivityLog, None, None, "f");
    let input = big_statement(100);
    let mut parser = Parser::new(LogType::UserActivityLog, input.as_bytes());
    let record = parser.next_record().unwrap().unwrap();
    let mut parts = Vec::new();
    let n = write_parts(&record, &p, 1_024_000, &mut Vec::new(), |b| {
        parts.push(b.to_vec())
    })
    .unwrap();
    assert_eq!(n, 1);
    let v: serde_json::Value = serde_json::from_slice(&parts[0]).unwrap();
    assert!(v.get("part").is_none());
}

#[test]
fn oversized_statement_splits_into_ordered_parts_that_rejoin() {
    let p = Provenance::new(LogType::UserActivityLog, None, Some("b"), "k");
    let input = big_statement(50_000);
    let mut parser = Parser::new(LogType::UserActivityLog, input.as_bytes());
    let record = parser.next_record().unwrap().unwrap();
    let full_query = match &record.body {
        Body::Columns(c) => c.get("query").unwrap().as_text().unwrap().to_string(),
        _ => panic!(),
    };
    let max = 4096;
    let mut parts = Vec::new();
    let n = write_parts(&record, &p, max, &mut Vec::new(), |b| {
        parts.push(b.to_vec())
    })
    .unwrap();
    assert!(n > 10, "{n}");
    let mut rejoined = String::new();
    let mut ids = std::collections::HashSet::new();
    for (i, part) in parts.iter().enumerate() {
        assert!(part.len() <= max, "part {i} is {} bytes", part.len());
        let v: serde_json::Value = serde_json::from_slice(part).unwrap();
        assert_eq!(v["part"], i + 1);
        assert_eq!(v["parts"], n);
        assert_eq!(v["xid"], 2);
        ids.insert(v["id"].as_str().unwrap().to_string());
        rejoined.push_str(v["query"].as_str().unwrap());
    }
    assert_eq!(ids.len(), 1, "parts share the statement's id");
    assert_eq!(rejoined, full_query);
}

#[test]
fn record_that_cannot_be_split_small_enough_is_an_error() {
    let p = Provenance::new(LogType::UserActivityLog, None, None, "f");
    let input = big_statement(1000);
    let mut parser = Parser::new(LogType::UserActivityLog, input.as_bytes());
    let record = parser.next_record().unwrap().unwrap();
    assert!(write_parts(&record, &p, 200, &mut Vec::new(), |_| {}).is_err());
}

#[test]
fn columns_of_another_log_type_still_get_their_own_names() {
    // Provenance built for the connection log, record from the user log.
    let p = Provenance::new(LogType::ConnectionLog, None, None, "f");
    let v = &lines(
        LogType::UserLog,
        "1|rdsdb | |alter |1|1|1|9223372036854775807|14872|1061|Thu, 3 Dec 2020 10:18:38:416\n",
        &p,
    )[0];
    assert_eq!(v["userid"], 1);
    assert_eq!(v["username"], "rdsdb");
    assert!(v.get("event").is_none());
}

// ---------------------------------------------------------------------------------------------
// Formats, OCSF and redaction

fn ocsf_events(log_type: LogType, input: &str, provenance: &Provenance) -> Vec<serde_json::Value> {
    let mut parser = Parser::new(log_type, input.as_bytes());
    let mut out = Vec::new();
    while let Some(record) = parser.next_record().unwrap() {
        let mut buf = Vec::new();
        Format::Ocsf.write_record(&mut buf, &record, provenance, Join::Off);
        out.push(serde_json::from_slice(&buf).unwrap());
    }
    out
}

/// Every string, number and boolean inside a JSON value, as text.
fn leaves(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => m.values().for_each(|v| leaves(v, out)),
        serde_json::Value::Array(a) => a.iter().for_each(|v| leaves(v, out)),
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Null => {}
        other => out.push(other.to_string()),
    }
}

#[test]
fn format_names_parse_in_any_case() {
    assert_eq!("raw".parse::<Format>(), Ok(Format::Raw));
    assert_eq!("OCSF".parse::<Format>(), Ok(Format::Ocsf));
    assert_eq!("Ocsf".parse::<Format>().map(Format::as_str), Ok("ocsf"));
    let err = "json".parse::<Format>().unwrap_err();
    assert!(err.to_string().contains("\"json\""), "{err}");
    assert_eq!(Format::default(), Format::Raw);
}

#[test]
fn ocsf_column_positions_match_the_column_tables() {
    use crate::logs::{ACTIVITY_COLUMNS, CONNECTION_COLUMNS, USER_COLUMNS};
    // The positions the OCSF writer reads, spelled out: a reordered table fails here.
    for (table, names) in [
        (
            CONNECTION_COLUMNS,
            &[
                (0, "event"),
                (1, "recordtime"),
                (2, "remotehost"),
                (3, "remoteport"),
                (4, "pid"),
                (5, "dbname"),
                (6, "username"),
                (8, "duration"),
                (20, "sessionid"),
            ][..],
        ),
        (
            USER_COLUMNS,
            &[
                (0, "userid"),
                (1, "username"),
                (3, "action"),
                (5, "usesuper"),
                (10, "recordtime"),
            ][..],
        ),
        (
            ACTIVITY_COLUMNS,
            &[
                (0, "recordtime"),
                (1, "db"),
                (2, "user"),
                (4, "userid"),
                (6, "query"),
            ][..],
        ),
    ] {
        for (i, name) in names {
            assert_eq!(table[*i].0, *name);
        }
    }
}

#[test]
fn ocsf_event_keeps_every_value_of_the_raw_record() {
    let name = name();
    let connection_2022 = CONNECTION.trim_end().to_string() + "|zstd |future |\n";
    for (log_type, input) in [
        (LogType::ConnectionLog, connection_2022.as_str()),
        (LogType::ConnectionLog, "disconnecting session |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |1234567| | |0| | |\n"),
        (LogType::UserLog, "1|rdsdb |old |rename |1|1|0|2030-01-01|14872|1061|Thu, 3 Dec 2020 10:18:38:416\n"),
        (LogType::UserActivityLog, "'2020-12-08T22:01:55Z UTC [ db=dev user=rdsdb pid=23170 userid=1 xid=245636 ]' LOG: vacuum t\n"),
    ] {
        let p = Provenance::new(log_type, Some(&name), Some("audit-bucket"), "AWSLogs/k.gz");
        let raw = &lines(log_type, input, &p)[0];
        let event = &ocsf_events(log_type, input, &p)[0];
        let mut have = Vec::new();
        leaves(event, &mut have);
        let mut want = Vec::new();
        for (key, value) in raw.as_object().unwrap() {
            match key.as_str() {
                // Converted: time to epoch ms, usesuper to user.type_id, log_type to log_name.
                "recordtime" | "usesuper" | "log_type" | "account_id" => {}
                // A known event or action is the activity (and status); others are its name.
                "event" | "action" if event["activity_id"] != 99 => {}
                _ => leaves(value, &mut want),
            }
        }
        for value in want {
            assert!(have.contains(&value), "{log_type}: {value:?} lost in {event}");
        }
        assert_eq!(event["metadata"]["uid"], raw["id"]);
        assert_eq!(event["metadata"]["log_name"], log_type.as_str());
        assert_eq!(event["cloud"]["account"]["uid"], "123456789012");
        assert_eq!(event["cloud"]["region"], "us-east-1");
        assert_eq!(event["unmapped"]["source"]["key"], "AWSLogs/k.gz");
        let recordtime = raw["recordtime"].as_str().unwrap();
        let (date, clock) = recordtime.split_once('T').unwrap();
        let ymd: Vec<i64> = date.split('-').map(|n| n.parse().unwrap()).collect();
        let days = crate::logs::time::days_from_civil(ymd[0], ymd[1] as u32, ymd[2] as u32);
        let hms: Vec<f64> = clock.trim_end_matches('Z').split(':').map(|n| n.parse().unwrap()).collect();
        let ms = days * 86_400_000 + (hms[0] * 3.6e6 + hms[1] * 6e4 + hms[2] * 1e3).round() as i64;
        assert_eq!(event["time"], ms, "{recordtime}");
    }
}

#[test]
fn connection_events_map_to_authentication_activities() {
    let p = Provenance::new(LogType::ConnectionLog, None, None, "f");
    let line = |event: &str, host: &str, port: &str| {
        format!("{event} |Mon, 7 Dec 2020 20:01:55:177|{host} |{port} |5108|dev |rdsdb |Ident |2500| | |0| | |\n")
    };
    let cases = [
        ("initiating session", 1, Some(0)),
        ("authenticated", 1, Some(1)),
        ("authentication failure", 1, Some(2)),
        ("disconnecting session", 2, None),
        ("set application_name", 99, None),
    ];
    for (event, activity, status) in cases {
        let e = &ocsf_events(LogType::ConnectionLog, &line(event, "10.0.0.1", "5439"), &p)[0];
        assert_eq!(e["class_uid"], 3002);
        assert_eq!(e["activity_id"], activity, "{event}");
        assert_eq!(e["type_uid"], 300200 + activity, "{event}");
        assert_eq!(
            e.get("status_id").and_then(|s| s.as_i64()),
            status,
            "{event}"
        );
        assert_eq!(e["user"]["name"], "rdsdb");
        assert_eq!(e["src_endpoint"]["ip"], "10.0.0.1");
        assert_eq!(e["src_endpoint"]["port"], 5439);
        assert_eq!(
            e["session"]["uid"], "5108",
            "pid when there is no sessionid"
        );
        assert_eq!(e["unmapped"]["pid"], 5108, "the pid joins the activity log");
    }
    let logoff = &ocsf_events(
        LogType::ConnectionLog,
        &line("disconnecting session", "[local]", ""),
        &p,
    )[0];
    assert_eq!(logoff["duration"], 2, "milliseconds");
    assert_eq!(
        logoff["unmapped"]["duration"], 2500,
        "microseconds, as logged"
    );
    assert_eq!(
        logoff["src_endpoint"],
        serde_json::json!({"hostname": "[local]"})
    );
    let other = &ocsf_events(
        LogType::ConnectionLog,
        &line("set application_name", "h", "1"),
        &p,
    )[0];
    assert_eq!(other["activity_name"], "set application_name");
    let failure = &ocsf_events(LogType::ConnectionLog, CONNECTION, &p)[0];
    assert_eq!(failure["status_detail"], "authentication failure");
    assert_eq!(
        failure["session"]["uid"],
        "da9edc00-a1e6-44e0-8274-9417e5f355de"
    );
    assert_eq!(failure["src_endpoint"]["ip"], "::ffff:223.233.72.13");
}

#[test]
fn user_events_map_to_account_changes() {
    let p = Provenance::new(LogType::UserLog, None, None, "f");
    let line = |action: &str, superuser: u8| {
        format!("7|bob | |{action} |0|{superuser}|0| |14872|1061|Thu, 3 Dec 2020 10:18:38:416\n")
    };
    for (action, activity, name) in [
        ("create", 1, "Create"),
        ("drop", 6, "Delete"),
        ("alter", 99, "alter"),
        ("rename", 99, "rename"),
    ] {
        let e = &ocsf_events(LogType::UserLog, &line(action, 0), &p)[0];
        assert_eq!(e["class_uid"], 3001);
        assert_eq!(e["activity_id"], activity, "{action}");
        assert_eq!(e["activity_name"], name, "{action}");
        assert_eq!(e["type_uid"], 300100 + activity);
        assert_eq!(
            e["user"],
            serde_json::json!({"name": "bob", "uid": "7", "type_id": 1, "type": "User"})
        );
    }
    let admin = &ocsf_events(LogType::UserLog, &line("create", 1), &p)[0];
    assert_eq!(admin["user"]["type_id"], 2);
}

#[test]
fn statements_are_classified_by_their_first_keyword() {
    use ocsf::first_keyword;
    assert_eq!(first_keyword("  select 1"), "select");
    assert_eq!(
        first_keyword("-- note\n/* a */ ((WITH x AS (select 1) select 1))"),
        "WITH"
    );
    assert_eq!(first_keyword("/* never closed"), "");
    assert_eq!(first_keyword("-- only a comment"), "");
    assert_eq!(first_keyword(""), "");
    assert_eq!(first_keyword("é"), "");
    let p = Provenance::new(LogType::UserActivityLog, None, None, "f");
    for (sql, activity, name) in [
        ("SELECT 1", 4, "Query"),
        ("with a as (select 1) select 1", 4, "Query"),
        ("show tables", 4, "Query"),
        ("explain select 1", 4, "Query"),
        ("insert into t values (1)", 5, "Write"),
        ("copy t from 's3://b/k'", 5, "Write"),
        ("merge into t using s on 1=1", 5, "Write"),
        ("update t set a=1", 2, "Update"),
        ("delete from t", 7, "Delete"),
        ("truncate t", 7, "Delete"),
        ("drop table t", 7, "Delete"),
        ("create table t (a int)", 6, "Create"),
        ("set query_group to 'x'", 99, "SET"),
        ("Vacuum", 99, "VACUUM"),
        ("123", 99, "Other"),
    ] {
        let input = format!(
            "'2020-12-08T22:01:55Z UTC [ db=dev user=rdsdb pid=1 userid=1 xid=2 ]' LOG: {sql}\n"
        );
        let e = &ocsf_events(LogType::UserActivityLog, &input, &p)[0];
        assert_eq!(e["class_uid"], 6005);
        assert_eq!(
            (e["activity_id"].as_i64(), e["activity_name"].as_str()),
            (Some(activity), Some(name)),
            "{sql}"
        );
        assert_eq!(e["type_uid"], 600500 + activity);
        assert_eq!(e["query_info"]["query_string"], sql);
        assert_eq!(
            e["database"],
            serde_json::json!({"name": "dev", "type_id": 1, "type": "Relational"})
        );
        assert_eq!(
            e["actor"]["user"],
            serde_json::json!({"name": "rdsdb", "uid": "1"})
        );
        assert_eq!(e["src_endpoint"], serde_json::json!({}), "nothing invented");
    }
}

#[test]
fn parse_errors_are_base_events_with_the_raw_text() {
    let name = name();
    let p = Provenance::new(LogType::UserLog, Some(&name), None, "k");
    let e = &ocsf_events(LogType::UserLog, "garbage \"line\"\n", &p)[0];
    assert_eq!(
        (e["class_uid"].as_i64(), e["category_uid"].as_i64()),
        (Some(0), Some(0))
    );
    assert_eq!(
        (e["activity_id"].as_i64(), e["type_uid"].as_i64()),
        (Some(99), Some(99))
    );
    assert_eq!(e["raw_data"], "garbage \"line\"");
    assert!(e["status_detail"].as_str().unwrap().contains("userid"));
    assert_eq!(
        e["time"], 1_709_254_380_000i64,
        "the file name's time, 2024-03-01T00:53:00Z"
    );
    let local = Provenance::new(LogType::UserLog, None, None, "k");
    assert_eq!(ocsf_events(LogType::UserLog, "x\n", &local)[0]["time"], 0);
}

#[test]
fn oversized_statement_splits_into_ocsf_parts_that_rejoin() {
    let p = Provenance::new(LogType::UserActivityLog, None, Some("b"), "k");
    let input = big_statement(50_000);
    let mut parser = Parser::new(LogType::UserActivityLog, input.as_bytes());
    let record = parser.next_record().unwrap().unwrap();
    let max = 4096;
    let mut parts = Vec::new();
    let n = Format::Ocsf
        .write_parts(&record, &p, Join::Off, max, &mut Vec::new(), |b| {
            parts.push(b.to_vec())
        })
        .unwrap();
    assert!(n > 10, "{n}");
    let mut rejoined = String::new();
    for (i, part) in parts.iter().enumerate() {
        assert!(part.len() <= max, "part {i} is {} bytes", part.len());
        let v: serde_json::Value = serde_json::from_slice(part).unwrap();
        assert_eq!(v["unmapped"]["part"], i + 1);
        assert_eq!(v["unmapped"]["parts"], n);
        assert_eq!(
            v["activity_id"], 4,
            "every part is classified by the whole statement"
        );
        assert_eq!(
            v["metadata"]["uid"],
            p.record_id(0)
                .iter()
                .map(|&b| b as char)
                .collect::<String>()
        );
        rejoined.push_str(v["query_info"]["query_string"].as_str().unwrap());
    }
    let Body::Columns(c) = &record.body else {
        panic!()
    };
    assert_eq!(rejoined, c.get("query").unwrap().as_text().unwrap());
}

#[test]
fn raw_record_says_when_it_was_redacted() {
    let p = Provenance::new(LogType::UserActivityLog, None, None, "f");
    let input = "'2020-12-08T22:01:55Z UTC [ db=dev user=rdsdb pid=1 userid=1 xid=2 ]' LOG: alter user u password 'p'\n'2020-12-08T22:01:55Z UTC [ db=dev user=rdsdb pid=1 userid=1 xid=2 ]' LOG: select 1\n";
    let mut parser = Parser::new(LogType::UserActivityLog, input.as_bytes());
    let mut scratch = String::new();
    let mut written = Vec::new();
    while let Some(record) = parser.next_record().unwrap() {
        let record = crate::redact::redact_record(record, &mut scratch);
        for format in [Format::Raw, Format::Ocsf] {
            let mut buf = Vec::new();
            format.write_record(&mut buf, &record, &p, Join::Off);
            written.push(serde_json::from_slice::<serde_json::Value>(&buf).unwrap());
        }
    }
    assert_eq!(written[0]["query"], "alter user u password '[REDACTED]'");
    assert_eq!(written[0]["redacted"], true);
    assert_eq!(
        written[1]["query_info"]["query_string"],
        "alter user u password '[REDACTED]'"
    );
    assert_eq!(written[1]["unmapped"]["redacted"], true);
    assert!(written[2].get("redacted").is_none());
    assert!(written[3]["unmapped"].get("redacted").is_none());
}

/// A statement of about 2 MB whose password sits across the point where `write_parts` cuts the
/// first part at `max_len`: found by splitting a filler statement of the same length first.
fn statement_with_secret_across_the_split(
    format: Format,
    p: &Provenance,
    max_len: usize,
    secret: &str,
) -> String {
    let header = "'2020-12-08T22:01:55Z UTC [ db=dev user=rdsdb pid=1 userid=1 xid=2 ]' LOG: ";
    let len = 2 * 1024 * 1024;
    let filler = format!("{header}select 1 /*{}*/\n", "x".repeat(len));
    let mut parser = Parser::new(LogType::UserActivityLog, filler.as_bytes());
    let record = parser.next_record().unwrap().unwrap();
    let mut first_len = None;
    format
        .write_parts(&record, p, Join::Off, max_len, &mut Vec::new(), |b| {
            let v: serde_json::Value = serde_json::from_slice(b).unwrap();
            let text = v.get("query").unwrap_or(&v["query_info"]["query_string"]);
            first_len.get_or_insert(text.as_str().unwrap().len());
        })
        .unwrap();
    let cut = first_len.unwrap();
    let lead = "select 1 /*";
    let sql = format!("*/ ALTER USER bob PASSWORD '{secret}' /*");
    // The secret's middle falls exactly at the cut, and the query keeps the filler's length.
    let pad = cut - secret.len() / 2 - sql.find(secret).unwrap() - lead.len();
    let total = lead.len() + len + 2;
    let rest = total - (lead.len() + pad + sql.len() + 2);
    format!(
        "{header}{lead}{}{sql}{}*/\n",
        "x".repeat(pad),
        "x".repeat(rest)
    )
}

#[test]
fn secret_across_the_split_of_a_2mb_statement_is_redacted_in_every_part() {
    let secret = "Zq8xW3kP9mN2vB7cT4yR6hJ1";
    let max_len = 1_000_000;
    for format in [Format::Raw, Format::Ocsf] {
        let p = Provenance::new(LogType::UserActivityLog, None, Some("b"), "k");
        let input = statement_with_secret_across_the_split(format, &p, max_len, secret);
        let parts_of = |redact: bool| {
            let mut parser = Parser::new(LogType::UserActivityLog, input.as_bytes());
            let mut scratch = String::new();
            let mut record = parser.next_record().unwrap().unwrap();
            if redact {
                record = crate::redact::redact_record(record, &mut scratch);
                assert!(record.redacted);
            }
            let mut parts = Vec::new();
            format
                .write_parts(&record, &p, Join::Off, max_len, &mut Vec::new(), |b| {
                    parts.push(String::from_utf8(b.to_vec()).unwrap())
                })
                .unwrap();
            parts
        };
        let (head, tail) = secret.split_at(secret.len() / 2);
        let plain = parts_of(false);
        assert!(plain.len() >= 3, "{format}: {} parts", plain.len());
        assert!(
            plain.iter().all(|p| !p.contains(secret)),
            "{format}: the secret is cut in two"
        );
        assert!(
            plain[0].contains(&format!("'{head}\"")) && plain[1].contains(&format!("\"{tail}'")),
            "{format}: the halves end part 1 and start part 2"
        );
        let redacted = parts_of(true);
        for (i, part) in redacted.iter().enumerate() {
            assert!(part.len() <= max_len);
            assert!(
                !part.contains(head) && !part.contains(tail),
                "{format}: part {i} leaks"
            );
        }
        let rejoined: String = redacted
            .iter()
            .map(|p| {
                let v: serde_json::Value = serde_json::from_str(p).unwrap();
                let text = v.get("query").unwrap_or(&v["query_info"]["query_string"]);
                text.as_str().unwrap().to_string()
            })
            .collect();
        assert!(rejoined.contains("PASSWORD '[REDACTED]'"), "{format}");
    }
}

#[test]
fn a_shortened_raw_text_carries_its_length_and_hash_in_both_formats() {
    let p = Provenance::new(LogType::ConnectionLog, Some(&name()), Some("b"), "k");
    let junk = "x".repeat(100_000);
    let input = format!("{junk}\n{CONNECTION}");
    let hash = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(junk.as_bytes()));
    let raw = lines(LogType::ConnectionLog, &input, &p);
    assert_eq!(raw[0]["raw"].as_str().map(str::len), Some(64 * 1024));
    assert_eq!(raw[0]["raw_bytes"], 100_000);
    assert_eq!(raw[0]["raw_xxh3"].as_str(), Some(hash.as_str()));
    assert!(
        raw[1].get("raw_bytes").is_none(),
        "a record has no raw_bytes"
    );
    let ocsf = ocsf_events(LogType::ConnectionLog, &input, &p);
    assert_eq!(ocsf[0]["raw_data"].as_str().map(str::len), Some(64 * 1024));
    assert_eq!(ocsf[0]["unmapped"]["raw_bytes"], 100_000);
    assert_eq!(
        ocsf[0]["unmapped"]["raw_xxh3"].as_str(),
        Some(hash.as_str())
    );
}

#[test]
fn a_statement_of_control_bytes_is_split_without_rendering_it_whole() {
    // 200,000 control bytes escape to 1.2 MB: split into parts that rejoin to the text.
    let p = Provenance::new(LogType::UserActivityLog, None, Some("b"), "k");
    let query = "\u{1}".repeat(200_000);
    let input =
        format!("'2024-03-01T00:00:00Z UTC [ db=d user=u pid=1 userid=2 xid=3 ]' LOG: {query}\n");
    let mut parser = Parser::new(LogType::UserActivityLog, input.as_bytes());
    let record = parser.next_record().unwrap().unwrap();
    assert!(!record.is_parse_error());
    for format in [Format::Raw, Format::Ocsf] {
        let mut parts = Vec::new();
        let n = format
            .write_parts(&record, &p, Join::Off, 100_000, &mut Vec::new(), |b| {
                parts.push(b.to_vec())
            })
            .unwrap();
        assert!(n >= 12, "{format}: {n}");
        let mut rejoined = String::new();
        for part in &parts {
            assert!(part.len() <= 100_000, "{format}: {}", part.len());
            let v: serde_json::Value = serde_json::from_slice(part).unwrap();
            let text = match format {
                Format::Raw => &v["query"],
                Format::Ocsf => &v["query_info"]["query_string"],
            };
            rejoined.push_str(text.as_str().unwrap_or_else(|| panic!("{format}: no text")));
        }
        assert_eq!(rejoined, query, "{format}");
    }
}
