//! CloudWatch Logs subscription batches without AWS: events built byte for byte as CloudWatch
//! sends them (JSON, gzip, base64), log groups, and the parsers run over a batch's messages.

use std::io::Write;

use base64::Engine as _;
use flate2::write::GzEncoder;
use flate2::Compression;
use redshift_audit_forwarder::cloudwatch::{
    decode_data, decode_subscription, parse_log_group, BatchParser, CloudWatchError,
    CloudWatchProvenance, EventPosition, LogEvent, LogGroup, Origin, MAX_DECODED_BYTES,
};
use redshift_audit_forwarder::logs::{Body, LogType, Parser, Value};
use serde_json::{json, Value as Json};
use xxhash_rust::xxh3::xxh3_128;

/// A subscription event exactly as CloudWatch Logs delivers it to Lambda.
fn subscription(message_type: &str, group: &str, stream: &str, messages: &[&str]) -> Vec<u8> {
    let events: Vec<Json> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            json!({
                "id": format!("3800000000000000000000000000000000000000000000000{i:07}"),
                "timestamp": 1_709_254_512_000i64 + i as i64,
                "message": m,
            })
        })
        .collect();
    let data = json!({
        "messageType": message_type,
        "owner": "123456789012",
        "logGroup": group,
        "logStream": stream,
        "subscriptionFilters": ["redshift-audit-forwarder"],
        "logEvents": events,
    });
    wrap(serde_json::to_vec(&data).unwrap())
}

fn wrap(json: Vec<u8>) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&json).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
    serde_json::to_vec(&json!({"awslogs": {"data": b64}})).unwrap()
}

const CONN: &str = "authenticated |Mon, 7 Dec 2020 20:01:55:177|::ffff:10.0.0.5 |50112 |1073742045|dev |alice |password |0|TLSv1.2 |ECDHE-RSA-AES256-GCM-SHA384 |0| | | |psql |Linux |libpq |none |0|da9edc00-a1e6-44e0-8274-9417e5f355de";
const USER: &str =
    "1|rdsdb | |alter |1|1|1|9223372036854775807|14872|1061|Thu, 3 Dec 2020 10:18:38:416";
const ACT1: &str = "'2020-12-08T22:00:03Z UTC [ db=dev user=rdsdb pid=685 userid=1 xid=245578 ]' LOG: SET statement_timeout TO 120000";
const ACT2: &str = "'2020-12-08T22:01:55Z UTC [ db=dev user=alice pid=23170 userid=100 xid=245636 ]' LOG: SELECT  ss.node as node,";

/// Every record of a batch: (columns or parse error text, position).
fn records(
    log_type: LogType,
    events: &[LogEvent],
) -> Vec<(Result<Vec<String>, String>, EventPosition<'_>)> {
    let mut parser = BatchParser::new(log_type, events);
    let mut out = Vec::new();
    while let Some((record, position)) = parser.next_record().unwrap() {
        let body = match &record.body {
            Body::Columns(c) => Ok(c
                .iter()
                .map(|(_, v)| match v {
                    Value::Text(s) => s.to_string(),
                    Value::Int(n) => n.to_string(),
                    Value::Time(t) => t.as_str().to_string(),
                    Value::Null => "null".into(),
                    Value::Bool(b) => b.to_string(),
                })
                .collect()),
            Body::ParseError { reason, raw } => Err(format!("{reason}: {raw}")),
        };
        out.push((body, position));
    }
    out
}

#[test]
fn provisioned_and_serverless_groups_of_all_three_log_types_decode_and_parse() {
    let cases = [
        (
            "/aws/redshift/cluster/analytics-prod/connectionlog",
            Origin::Cluster("analytics-prod".into()),
            LogType::ConnectionLog,
            CONN,
        ),
        (
            "/aws/redshift/cluster/analytics-prod/userlog",
            Origin::Cluster("analytics-prod".into()),
            LogType::UserLog,
            USER,
        ),
        (
            "/aws/redshift/cluster/analytics-prod/useractivitylog",
            Origin::Cluster("analytics-prod".into()),
            LogType::UserActivityLog,
            ACT1,
        ),
        (
            "/aws/redshift/sales-ns/connectionlog",
            Origin::Namespace("sales-ns".into()),
            LogType::ConnectionLog,
            CONN,
        ),
        (
            "/aws/redshift/sales-ns/userlog",
            Origin::Namespace("sales-ns".into()),
            LogType::UserLog,
            USER,
        ),
        (
            "/aws/redshift/sales-ns/useractivitylog",
            Origin::Namespace("sales-ns".into()),
            LogType::UserActivityLog,
            ACT1,
        ),
    ];
    for (group, origin, log_type, line) in cases {
        let event = subscription("DATA_MESSAGE", group, "analytics-prod", &[line, line]);
        let data = decode_subscription(&event).unwrap();
        assert!(!data.is_control());
        assert_eq!(data.owner, "123456789012");
        assert_eq!(data.log_group, group);
        assert_eq!(data.log_events.len(), 2);
        assert_eq!(data.log_events[0].message, line);
        assert_eq!(data.log_events[1].timestamp, 1_709_254_512_001);
        let parsed = parse_log_group(&data.log_group).unwrap();
        assert_eq!(
            parsed,
            LogGroup {
                name: group.into(),
                origin: origin.clone(),
                log_type
            }
        );
        assert_eq!(
            parsed.is_serverless(),
            matches!(origin, Origin::Namespace(_))
        );
        let got = records(log_type, &data.log_events);
        assert_eq!(got.len(), 2, "{group}");
        for (i, (body, position)) in got.iter().enumerate() {
            let columns = body.as_ref().unwrap_or_else(|e| panic!("{group}: {e}"));
            // The same record as the line gives in a file.
            let mut file = Parser::new(log_type, line.as_bytes());
            let from_file = file.next_record().unwrap().unwrap();
            let Body::Columns(want) = &from_file.body else {
                panic!()
            };
            assert_eq!(columns.len(), want.iter().count());
            assert_eq!(position.index, i);
            assert_eq!(position.event_id, data.log_events[i].id);
            assert_eq!(position.ordinal, 0);
        }
    }
}

#[test]
fn a_statement_spanning_log_events_is_reassembled_and_keeps_its_first_event() {
    let event = subscription(
        "DATA_MESSAGE",
        "/aws/redshift/cluster/c1/useractivitylog",
        "c1",
        &[
            ACT1,
            ACT2,
            "        bc.temporary as temporary",
            "FROM    stv_slices as ss;\n",
            ACT1,
        ],
    );
    let data = decode_subscription(&event).unwrap();
    let got = records(LogType::UserActivityLog, &data.log_events);
    assert_eq!(got.len(), 3);
    let query = |i: usize| got[i].0.as_ref().unwrap()[6].clone();
    assert_eq!(query(0), "SET statement_timeout TO 120000");
    assert_eq!(
        query(1),
        "SELECT  ss.node as node,\n        bc.temporary as temporary\nFROM    stv_slices as ss;"
    );
    assert_eq!(got[1].0.as_ref().unwrap()[2], "alice");
    assert_eq!((got[1].1.index, got[1].1.ordinal), (1, 0));
    assert_eq!(got[1].1.event_id, data.log_events[1].id);
    assert_eq!((got[2].1.index, got[2].1.ordinal), (4, 0));
    // Only the batch's last statement may continue in the next batch.
    assert_eq!(
        got.iter().map(|r| r.1.batch_end).collect::<Vec<_>>(),
        [false, false, true]
    );
}

#[test]
fn a_statement_cut_by_the_end_of_a_batch_is_forwarded_flagged_and_its_rest_is_not_dropped() {
    let first = subscription(
        "DATA_MESSAGE",
        "/aws/redshift/ns1/useractivitylog",
        "s",
        &[ACT1, ACT2],
    );
    let data = decode_subscription(&first).unwrap();
    let got = records(LogType::UserActivityLog, &data.log_events);
    assert_eq!(got.len(), 2);
    assert!(!got[0].1.batch_end);
    assert!(got[1].1.batch_end);
    assert_eq!(got[1].0.as_ref().unwrap()[6], "SELECT  ss.node as node,");

    // The next batch starts with the rest: forwarded as a parse error, flagged too when it is
    // all the batch holds.
    let second = subscription(
        "DATA_MESSAGE",
        "/aws/redshift/ns1/useractivitylog",
        "s",
        &["FROM t;"],
    );
    let data = decode_subscription(&second).unwrap();
    let got = records(LogType::UserActivityLog, &data.log_events);
    assert_eq!(got.len(), 1);
    let err = got[0].0.as_ref().unwrap_err();
    assert!(
        err.contains("before the first record header") && err.contains("FROM t;"),
        "{err}"
    );
    assert!(got[0].1.batch_end);
}

#[test]
fn several_lines_in_one_message_get_ordinals_within_the_event() {
    let two = format!("{CONN}\n{CONN}\n");
    let event = subscription(
        "DATA_MESSAGE",
        "/aws/redshift/cluster/c1/connectionlog",
        "c1",
        &[&two, CONN, "", &format!("{CONN}\r\n{CONN}")],
    );
    let data = decode_subscription(&event).unwrap();
    let got = records(LogType::ConnectionLog, &data.log_events);
    let positions: Vec<(usize, u64)> = got.iter().map(|r| (r.1.index, r.1.ordinal)).collect();
    assert_eq!(positions, [(0, 0), (0, 1), (1, 0), (3, 0), (3, 1)]);
    assert!(got.iter().all(|r| r.0.is_ok() && !r.1.batch_end));
}

#[test]
fn control_messages_are_recognised() {
    let event = subscription(
        "CONTROL_MESSAGE",
        "testLogGroup",
        "testLogStream",
        &["CWL CONTROL MESSAGE: Checking health of destination Lambda."],
    );
    let data = decode_subscription(&event).unwrap();
    assert!(data.is_control());
    assert_eq!(data.log_group, "testLogGroup");
}

#[test]
fn other_log_groups_are_errors_naming_the_group() {
    for group in [
        "/aws/lambda/my-function",
        "/aws/redshift/cluster/c1/userlog/extra",
        "/aws/redshift/Cluster_1/userlog",
        "/aws/redshift//userlog",
        "aws/redshift/ns/userlog",
        "",
    ] {
        let err = parse_log_group(group).unwrap_err();
        assert!(
            matches!(err, CloudWatchError::UnknownGroup(ref g) if g == group),
            "{group}: {err}"
        );
        assert!(err.to_string().contains(&format!("{group:?}")), "{err}");
    }
    for (group, log_type) in [
        ("/aws/redshift/cluster/c1/querylog", "querylog"),
        ("/aws/redshift/cluster/c1", "c1"),
    ] {
        let err = parse_log_group(group).unwrap_err();
        assert!(
            matches!(err, CloudWatchError::UnknownLogType { .. }),
            "{err}"
        );
        assert!(
            err.to_string().contains(group) && err.to_string().contains(log_type),
            "{err}"
        );
    }
    // A Serverless namespace may be called "cluster": the segment count decides.
    assert_eq!(
        parse_log_group("/aws/redshift/cluster/userlog")
            .unwrap()
            .origin,
        Origin::Namespace("cluster".into())
    );
}

#[test]
fn malformed_payloads_are_clear_errors() {
    assert!(matches!(
        decode_subscription(b"{\"Records\":[]}"),
        Err(CloudWatchError::NotSubscription(_))
    ));
    assert!(matches!(
        decode_subscription(b"not json"),
        Err(CloudWatchError::NotSubscription(_))
    ));
    assert!(matches!(
        decode_data("@@not base64@@"),
        Err(CloudWatchError::Base64(_))
    ));
    let plain =
        base64::engine::general_purpose::STANDARD.encode(b"{\"messageType\":\"DATA_MESSAGE\"}");
    assert!(matches!(decode_data(&plain), Err(CloudWatchError::Gzip(_))));
    let wrong = wrap(b"{\"messageType\":\"DATA_MESSAGE\"}".to_vec());
    assert!(matches!(
        decode_subscription(&wrong),
        Err(CloudWatchError::Json(_))
    ));
    // A truncated gzip stream.
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&[b' '; 10_000]).unwrap();
    let gz = gz.finish().unwrap();
    let cut = base64::engine::general_purpose::STANDARD.encode(&gz[..gz.len() / 2]);
    assert!(matches!(decode_data(&cut), Err(CloudWatchError::Gzip(_))));
}

#[test]
fn a_gzip_bomb_is_refused_past_the_decompressed_bound() {
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    let zeros = vec![b' '; 1024 * 1024];
    for _ in 0..(MAX_DECODED_BYTES / zeros.len() + 1) {
        gz.write_all(&zeros).unwrap();
    }
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 200_000);
    let data = base64::engine::general_purpose::STANDARD.encode(gz);
    assert!(matches!(decode_data(&data), Err(CloudWatchError::TooLarge)));
}

#[test]
fn provenance_names_group_stream_and_event_and_ids_hash_the_documented_bytes() {
    let group = parse_log_group("/aws/redshift/cluster/c1/useractivitylog").unwrap();
    let prov = CloudWatchProvenance::new(&group, "123456789012", Some("eu-west-1"), "c1");
    let position = EventPosition {
        index: 2,
        event_id: "380000001",
        ordinal: 3,
        batch_end: false,
    };
    let mut out = b"{".to_vec();
    prov.write_fields(&mut out, &position);
    out.push(b'}');
    let v: Json = serde_json::from_slice(&out).unwrap();
    let mut input = [
        &b"/aws/redshift/cluster/c1/useractivitylog"[..],
        b"\0c1\0",
        b"380000001",
        b"\0",
    ]
    .concat();
    input.extend_from_slice(&3u64.to_le_bytes());
    let want = format!("{:032x}", xxh3_128(&input));
    assert_eq!(
        v,
        json!({
            "log_type": "useractivitylog", "account_id": "123456789012", "region": "eu-west-1",
            "cluster": "c1", "file_time": null,
            "source": {"log_group": "/aws/redshift/cluster/c1/useractivitylog", "log_stream": "c1", "event_id": "380000001"},
            "id": want,
        })
    );
    assert_ne!(
        prov.record_id("380000001", 4),
        prov.record_id("380000001", 3)
    );
    assert_ne!(
        prov.record_id("380000002", 3),
        prov.record_id("380000001", 3)
    );

    let serverless = parse_log_group("/aws/redshift/sales/userlog").unwrap();
    let prov = CloudWatchProvenance::new(&serverless, "123456789012", None, "stream");
    let mut out = b"{".to_vec();
    prov.write_fields(
        &mut out,
        &EventPosition {
            batch_end: true,
            ..position
        },
    );
    out.push(b'}');
    let v: Json = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["cluster"], Json::Null);
    assert_eq!(v["namespace"], "sales");
    assert_eq!(v["region"], Json::Null);
    assert_eq!(v["batch_end"], true);
}

#[test]
fn the_same_batch_gives_the_same_positions_every_time() {
    let event = subscription(
        "DATA_MESSAGE",
        "/aws/redshift/ns/useractivitylog",
        "s",
        &[ACT1, "more", ACT2, ACT1],
    );
    let data = decode_subscription(&event).unwrap();
    let a: Vec<_> = records(LogType::UserActivityLog, &data.log_events)
        .into_iter()
        .map(|r| (r.1.event_id.to_string(), r.1.ordinal))
        .collect();
    let b: Vec<_> = records(LogType::UserActivityLog, &data.log_events)
        .into_iter()
        .map(|r| (r.1.event_id.to_string(), r.1.ordinal))
        .collect();
    assert_eq!(a, b);
    assert_eq!(a.len(), 3);
}
