use super::*;
use crate::logs::Parser;

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
