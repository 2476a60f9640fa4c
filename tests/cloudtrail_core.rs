//! The CloudTrail core without AWS: trail keys, the streaming `Records` reader, the event-source
//! filter, and the `raw` and OCSF renderings.

use std::io::{self, Read, Write};

use flate2::write::GzEncoder;
use flate2::Compression;
use proptest::prelude::*;
use redshift_audit_forwarder::cloudtrail::ocsf::{
    activity_of, epoch_ms, write_trail_ocsf, Activity,
};
use redshift_audit_forwarder::cloudtrail::{
    parse_trail_key, write_trail_error, write_trail_raw, EventSources, EventSourcesError, Kept,
    NotEvents, TrailError, TrailEvents, TrailFileName, TrailItem, TrailKeyError, TrailProvenance,
    TrailReader, WholeElement, MAX_ERROR_RAW_BYTES, MAX_EVENT_BYTES,
};
use serde_json::Value;

const KEY: &str = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/01/123456789012_CloudTrail_us-east-1_20240301T0055Z_AbCdEf0123456789.json.gz";

fn name(account: &str, region: &str, time: &str, org: Option<&str>) -> TrailFileName {
    TrailFileName {
        account_id: account.into(),
        region: region.into(),
        file_time: time.into(),
        organization_id: org.map(String::from),
    }
}

// ---------------------------------------------------------------- keys

#[test]
fn trail_keys_give_account_region_and_time_from_the_file_name() {
    let cases: &[(&str, TrailFileName)] = &[
        (KEY, name("123456789012", "us-east-1", "2024-03-01T00:55:00Z", None)),
        (
            "my/custom/prefix/AWSLogs/123456789012/CloudTrail/eu-west-1/2023/12/31/123456789012_CloudTrail_eu-west-1_20231231T2359Z_x1.json.gz",
            name("123456789012", "eu-west-1", "2023-12-31T23:59:00Z", None),
        ),
        (
            "AWSLogs/o-abc123def4/210987654321/CloudTrail/us-gov-east-1/2024/02/29/210987654321_CloudTrail_us-gov-east-1_20240229T1200Z_Zz9.json.gz",
            name("210987654321", "us-gov-east-1", "2024-02-29T12:00:00Z", Some("o-abc123def4")),
        ),
        (
            "trails/AWSLogs/o-abc123def4/210987654321/CloudTrail/cn-northwest-1/2024/01/02/210987654321_CloudTrail_cn-northwest-1_20240102T0305Z_a.json.gz",
            name("210987654321", "cn-northwest-1", "2024-01-02T03:05:00Z", Some("o-abc123def4")),
        ),
        // A bare name, and a local plain copy.
        (
            "123456789012_CloudTrail_ap-southeast-2_20240301T0000Z_q.json",
            name("123456789012", "ap-southeast-2", "2024-03-01T00:00:00Z", None),
        ),
        // Folders that disagree with the name: the name decides.
        (
            "AWSLogs/999999999999/CloudTrail/us-west-2/2024/03/01/123456789012_CloudTrail_us-east-1_20240301T0055Z_u.json.gz",
            name("123456789012", "us-east-1", "2024-03-01T00:55:00Z", None),
        ),
    ];
    for (key, want) in cases {
        assert_eq!(parse_trail_key(key).as_ref(), Ok(want), "{key}");
    }
}

#[test]
fn digest_and_insight_files_are_not_events_with_a_typed_reason() {
    let cases = [
        ("AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2024/03/01/123456789012_CloudTrail-Digest_us-east-1_mytrail_us-east-1_20240301T005512Z.json.gz", NotEvents::Digest),
        // A digest name outside its usual folder.
        ("copies/123456789012_CloudTrail-Digest_us-east-1_my_trail_us-east-1_20240301T005512Z.json.gz", NotEvents::Digest),
        ("AWSLogs/o-abc123def4/123456789012/CloudTrail-Digest/us-east-1/2024/03/01/x.json.gz", NotEvents::Digest),
        ("AWSLogs/123456789012/CloudTrail-Insight/us-east-1/2024/03/01/123456789012_CloudTrail-Insight_us-east-1_20240301T0055Z_abc.json.gz", NotEvents::Insight),
    ];
    for (key, kind) in cases {
        let err = parse_trail_key(key).err();
        assert_eq!(
            err,
            Some(TrailKeyError::NotEvents {
                key: key.to_string(),
                kind
            }),
            "{key}"
        );
        let err = err.unwrap();
        assert!(err.is_not_events());
        let text = err.to_string();
        assert!(text.contains(key), "{text}");
        assert!(
            text.contains(if kind == NotEvents::Digest {
                "digest"
            } else {
                "Insights"
            }),
            "{text}"
        );
    }
}

#[test]
fn keys_that_are_not_trail_files_are_refused_naming_what_is_wrong() {
    type Check = fn(&TrailKeyError) -> bool;
    let cases: &[(&str, Check)] = &[
        ("", |e| matches!(e, TrailKeyError::NoFileName { .. })),
        ("AWSLogs/123456789012/CloudTrail/", |e| matches!(e, TrailKeyError::NoFileName { .. })),
        ("AWSLogs/123456789012/redshift/us-east-1/2024/03/01/123456789012_redshift_us-east-1_c1_userlog_2024-03-01T00:53.gz", |e| matches!(e, TrailKeyError::Shape { .. })),
        ("123456789012_CloudTrail_us-east-1_20240301T0055Z_abc.txt", |e| matches!(e, TrailKeyError::Shape { .. })),
        ("123456789012_CloudTrail_us-east-1_20240301T0055Z.json.gz", |e| matches!(e, TrailKeyError::Shape { .. })),
        ("123456789012_CloudTrail_us-east-1_20240301T0055Z_.json.gz", |e| matches!(e, TrailKeyError::Shape { .. })),
        ("123456789012_CloudTrail_us-east-1_20240301T0055Z_a-b.json.gz", |e| matches!(e, TrailKeyError::Shape { .. })),
        ("123456789012_cloudtrail_us-east-1_20240301T0055Z_abc.json.gz", |e| matches!(e, TrailKeyError::Shape { .. })),
        ("12345678901_CloudTrail_us-east-1_20240301T0055Z_abc.json.gz", |e| matches!(e, TrailKeyError::BadAccount { .. })),
        ("o-abc_CloudTrail_us-east-1_20240301T0055Z_abc.json.gz", |e| matches!(e, TrailKeyError::BadAccount { .. })),
        ("123456789012_CloudTrail_useast1_20240301T0055Z_abc.json.gz", |e| matches!(e, TrailKeyError::BadRegion { .. })),
        ("123456789012_CloudTrail_us-east-1_2024-03-01T00:55Z_abc.json.gz", |e| matches!(e, TrailKeyError::BadTime { .. })),
        ("123456789012_CloudTrail_us-east-1_20240301T0055_abc.json.gz", |e| matches!(e, TrailKeyError::BadTime { .. })),
        ("123456789012_CloudTrail_us-east-1_20241301T0055Z_abc.json.gz", |e| matches!(e, TrailKeyError::BadTime { reason: "month out of range", .. })),
        ("123456789012_CloudTrail_us-east-1_20230229T0055Z_abc.json.gz", |e| matches!(e, TrailKeyError::BadTime { reason: "day out of range for the month", .. })),
        ("123456789012_CloudTrail_us-east-1_20240300T0055Z_abc.json.gz", |e| matches!(e, TrailKeyError::BadTime { reason: "day out of range for the month", .. })),
        ("123456789012_CloudTrail_us-east-1_20240301T2400Z_abc.json.gz", |e| matches!(e, TrailKeyError::BadTime { reason: "hour out of range", .. })),
        ("123456789012_CloudTrail_us-east-1_20240301T0060Z_abc.json.gz", |e| matches!(e, TrailKeyError::BadTime { reason: "minute out of range", .. })),
    ];
    for (key, check) in cases {
        match parse_trail_key(key) {
            Ok(parsed) => panic!("{key:?} parsed as {parsed:?}"),
            Err(e) => {
                assert!(check(&e), "{key:?} gave {e:?}");
                assert!(!e.is_not_events(), "{key:?}");
                let file = key.rsplit('/').next().unwrap_or(key);
                assert!(e.to_string().contains(file), "{e}");
            }
        }
    }
}

proptest! {
    #[test]
    fn key_parsing_never_panics(s in any::<String>()) {
        let _ = parse_trail_key(&s);
    }

    #[test]
    fn valid_trail_names_round_trip(
        account in "[0-9]{12}",
        region in "(us|eu|ap|cn)(-gov)?-(east|west|northwest)-[1-9]",
        (y, mo, d, h, mi) in (1990u32..2100, 1u32..=12, 1u32..=28, 0u32..24, 0u32..60),
        unique in "[A-Za-z0-9]{1,16}",
    ) {
        let key = format!("p/AWSLogs/{account}/CloudTrail/{region}/{y:04}/{mo:02}/{d:02}/{account}_CloudTrail_{region}_{y:04}{mo:02}{d:02}T{h:02}{mi:02}Z_{unique}.json.gz");
        prop_assert_eq!(parse_trail_key(&key), Ok(name(&account, &region, &format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:00Z"), None)));
    }
}

// ---------------------------------------------------------------- reader

fn event(source: &str, name: &str, n: usize) -> String {
    format!(
        r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::123456789012:user/alice","accountId":"123456789012","accessKeyId":"AKIAEXAMPLE","userName":"alice"}},"eventTime":"2024-03-01T00:4{}:0{}Z","eventSource":"{source}","eventName":"{name}","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.{}","userAgent":"aws-cli/2.15","requestParameters":{{"clusterIdentifier":"c-{n}","note":"braces }} ]] and \"quotes\" and \\ slashes"}},"responseElements":null,"requestID":"req-{n}","eventID":"ev-{n}","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management"}}"#,
        n % 10,
        n % 10,
        n % 250
    )
}

fn trail(events: &[String]) -> String {
    format!("{{\"Records\":[{}]}}", events.join(","))
}

/// Reads every item; returns (events as strings, bad reasons, final error).
fn read_all<R: Read>(
    reader: &mut TrailReader<R>,
) -> (Vec<String>, Vec<(u64, String)>, Option<io::Error>) {
    let mut events = Vec::new();
    let mut bad = Vec::new();
    loop {
        match reader.next_item() {
            Ok(Some(TrailItem::Event { ordinal, bytes })) => {
                assert_eq!(ordinal as usize, events.len() + bad.len());
                events.push(String::from_utf8(bytes.to_vec()).unwrap());
            }
            Ok(Some(TrailItem::Bad {
                ordinal, reason, ..
            })) => bad.push((ordinal, reason)),
            Ok(None) => return (events, bad, None),
            Err(e) => {
                // Nothing more after an error.
                assert!(matches!(reader.next_item(), Ok(None)));
                return (events, bad, Some(e));
            }
        }
    }
}

/// Hands out its input `step` bytes per read.
struct Dribble<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn events_come_out_byte_for_byte_as_written() {
    let events: Vec<String> = (0..5)
        .map(|n| event("redshift.amazonaws.com", "CreateCluster", n))
        .collect();
    let file = trail(&events);
    let (got, bad, err) = read_all(&mut TrailReader::new(file.as_bytes(), "f"));
    assert_eq!(got, events);
    assert!(bad.is_empty() && err.is_none());
}

#[test]
fn chunk_boundaries_anywhere_give_the_same_events() {
    let events: Vec<String> = (0..3)
        .map(|n| event("redshift.amazonaws.com", "ModifyCluster", n))
        .collect();
    let file = format!(
        " \n{{ \"other\" : {{\"a\":[1,2,{{\"b\":\"]}}\\\"\"}}]}} ,\n \"Records\" : [\n  {} ,\n{}\n,{}  ] , \"tail\": \"x\", \"n\": -1.5e3, \"t\": true }}\n",
        events[0], events[1], events[2]
    );
    for step in [1, 2, 3, 7, 64, 4096] {
        let (got, bad, err) = read_all(&mut TrailReader::new(
            Dribble {
                data: file.as_bytes(),
                step,
            },
            "f",
        ));
        assert_eq!(got, events, "step {step}");
        assert!(bad.is_empty(), "step {step}");
        assert!(err.is_none(), "step {step}: {err:?}");
    }
}

#[test]
fn keys_before_and_after_records_are_skipped_whatever_their_shape() {
    let e = event("redshift.amazonaws.com", "DeleteCluster", 1);
    let long_key = "k".repeat(500);
    let file = format!(
        r#"{{"Records2":[{{"eventID":"not me"}}],"{long_key}":"Records","Rec\"ords":[1],"deep":[[[[{{"x":["[","{{"]}}]]]],"Records":[{e}],"z":null}}"#
    );
    let (got, bad, err) = read_all(&mut TrailReader::new(file.as_bytes(), "f"));
    assert_eq!(got, vec![e]);
    assert!(bad.is_empty() && err.is_none(), "{bad:?} {err:?}");
}

#[test]
fn empty_records_and_empty_input_yield_nothing() {
    for file in ["{\"Records\":[]}", "{ \"Records\" : [ ] }\n", "", "  \n"] {
        let (got, bad, err) = read_all(&mut TrailReader::new(file.as_bytes(), "f"));
        assert!(got.is_empty() && bad.is_empty(), "{file:?}");
        assert!(err.is_none(), "{file:?}: {err:?}");
    }
}

#[test]
fn files_that_are_not_records_objects_are_clear_errors_naming_the_file() {
    let cases = [
        ("hello world", "expected '{'"),
        ("[{\"eventID\":\"1\"}]", "expected '{'"),
        ("{}", "no \"Records\" array"),
        (
            "{\"digestStartTime\":\"2024-03-01T00:00:00Z\",\"logFiles\":[]}",
            "no \"Records\" array",
        ),
        ("{\"Records\":{\"a\":1}}", "Records is an array"),
        ("{\"Records\":[]} trailing", "nothing after the closing"),
        ("{\"Records\":[{}] \"x\"}", "',' or '}' after a member"),
        ("{\"Records\":[{} {}]}", "',' or ']' after an event"),
        ("{\"Records\" [] }", "':'"),
        ("{\"Records\":[,]}", "an event"),
        ("{\"a\":,\"Records\":[]}", "a value"),
        ("{5:1}", "a key"),
    ];
    for (file, want) in cases {
        let (_, _, err) = read_all(&mut TrailReader::new(file.as_bytes(), "bucket/k.json.gz"));
        let err = err.unwrap_or_else(|| panic!("{file:?} read without error"));
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{file:?}");
        let text = err.to_string();
        assert!(text.contains("bucket/k.json.gz"), "{text}");
        assert!(text.contains(want), "{file:?}: {text}");
    }
}

#[test]
fn a_cut_file_yields_the_events_before_the_cut_then_an_error() {
    let events: Vec<String> = (0..4)
        .map(|n| event("redshift.amazonaws.com", "CreateCluster", n))
        .collect();
    let file = trail(&events);
    let third_starts = file.find(&events[2]).unwrap();
    for cut in [
        third_starts + 10,
        third_starts + events[2].len() - 1,
        third_starts,
        third_starts - 1,
    ] {
        let (got, bad, err) = read_all(&mut TrailReader::new(&file.as_bytes()[..cut], "k.json.gz"));
        assert_eq!(got, events[..2].to_vec(), "cut at {cut}");
        assert!(bad.is_empty());
        let err = err.expect("a cut file is an error");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "cut at {cut}");
        let text = err.to_string();
        assert!(
            text.contains("k.json.gz") && text.contains("cut short"),
            "{text}"
        );
        assert!(text.contains("2 events before the cut"), "{text}");
    }
    // Cut inside the third event: the message says which.
    let (_, _, err) = read_all(&mut TrailReader::new(
        &file.as_bytes()[..third_starts + 10],
        "k",
    ));
    assert!(err.unwrap().to_string().contains("inside event 3"));
    // Cut after the array but before the closing brace.
    let (got, _, err) = read_all(&mut TrailReader::new(
        &file.as_bytes()[..file.len() - 1],
        "k",
    ));
    assert_eq!(got.len(), 4);
    assert!(err.unwrap().to_string().contains("before the closing '}'"));
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[test]
fn a_truncated_gzip_trail_file_delivers_the_events_before_the_cut_then_an_io_error() {
    // Enough events that the good part spans many read-ahead chunks.
    let events: Vec<String> = (0..20_000)
        .map(|n| event("redshift.amazonaws.com", "DescribeClusters", n))
        .collect();
    let gz = gzip(trail(&events).as_bytes());
    let cut = gz[..gz.len() / 2].to_vec();
    let input = redshift_audit_forwarder::decode::open(io::Cursor::new(cut)).unwrap();
    let mut reader = TrailReader::new(input, "AWSLogs/x.json.gz");
    let (got, bad, err) = read_all(&mut reader);
    assert!(
        got.len() > 1000 && got.len() < events.len(),
        "{}",
        got.len()
    );
    assert_eq!(got[..], events[..got.len()]);
    assert!(bad.is_empty());
    let err = err.expect("truncated gzip is an error");
    assert!(err.to_string().contains("AWSLogs/x.json.gz"), "{err}");
}

#[test]
fn an_event_over_the_limit_is_a_bad_item_naming_file_and_ordinal_and_reading_goes_on() {
    let small = event("redshift.amazonaws.com", "CreateCluster", 1);
    let big = format!(
        "{{\"eventSource\":\"redshift.amazonaws.com\",\"pad\":\"{}\"}}",
        "x".repeat(5000)
    );
    let file = trail(&[small.clone(), big, small.clone()]);
    let limit = 2000;
    let mut reader = TrailReader::with_limit(
        Dribble {
            data: file.as_bytes(),
            step: 333,
        },
        "b/k.json.gz",
        limit,
    );
    let (got, bad, err) = read_all(&mut reader);
    assert_eq!(got, vec![small.clone(), small]);
    assert!(err.is_none());
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].0, 1);
    assert!(
        bad[0].1.contains("b/k.json.gz")
            && bad[0].1.contains("event 2")
            && bad[0].1.contains("2000-byte"),
        "{}",
        bad[0].1
    );
    assert!(
        reader.buffer_high_water() <= limit,
        "{}",
        reader.buffer_high_water()
    );
}

#[test]
fn elements_that_are_not_objects_are_bad_items() {
    let e = event("redshift.amazonaws.com", "CreateCluster", 1);
    let file = format!("{{\"Records\":[1,\"two\",{e},null,[3]]}}");
    let (got, bad, err) = read_all(&mut TrailReader::new(file.as_bytes(), "k"));
    assert_eq!(got, vec![e]);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        bad.iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![0, 1, 3, 4]
    );
    assert!(bad.iter().all(|b| b.1.contains("not a JSON object")));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn reader_never_panics_and_stays_bounded(data in proptest::collection::vec(any::<u8>(), 0..400), step in 1usize..50) {
        let mut reader = TrailReader::with_limit(Dribble { data: &data, step }, "k", 64);
        for _ in 0..1000 {
            match reader.next_item() {
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        prop_assert!(reader.buffer_high_water() <= 64);
    }

    #[test]
    fn reader_never_panics_on_json_shaped_bytes(s in r#"[{}\[\]",:\\ a0Records]{0,200}"#, step in 1usize..20) {
        let mut reader = TrailReader::with_limit(Dribble { data: s.as_bytes(), step }, "k", 32);
        for _ in 0..1000 {
            match reader.next_item() {
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        prop_assert!(reader.buffer_high_water() <= 32);
    }

    #[test]
    fn split_reads_never_change_the_events(step in 1usize..200, n in 0usize..6) {
        let events: Vec<String> = (0..n).map(|i| event("redshift-data.amazonaws.com", "ExecuteStatement", i)).collect();
        let file = trail(&events);
        let (got, bad, err) = read_all(&mut TrailReader::new(Dribble { data: file.as_bytes(), step }, "k"));
        prop_assert_eq!(got, events);
        prop_assert!(bad.is_empty() && err.is_none());
    }
}

/// A trail file of `target` bytes, generated as it is read (the test never holds it whole).
struct BigTrail {
    target: usize,
    written: usize,
    n: usize,
    pending: Vec<u8>,
    at: usize,
    done: bool,
}

impl BigTrail {
    fn new(target: usize) -> Self {
        BigTrail {
            target,
            written: 0,
            n: 0,
            pending: b"{\"Records\":[".to_vec(),
            at: 0,
            done: false,
        }
    }
}

impl Read for BigTrail {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.pending.len() {
            if self.done {
                return Ok(0);
            }
            self.pending.clear();
            self.at = 0;
            if self.written >= self.target {
                self.pending.extend_from_slice(b"]}");
                self.done = true;
            } else {
                if self.n > 0 {
                    self.pending.push(b',');
                }
                // One Redshift event in ten; the rest are other services.
                let source = if self.n % 10 == 0 {
                    "redshift.amazonaws.com"
                } else {
                    "s3.amazonaws.com"
                };
                self.pending
                    .extend_from_slice(event(source, "GetObject", self.n).as_bytes());
                self.n += 1;
            }
        }
        let take = (self.pending.len() - self.at).min(buf.len());
        buf[..take].copy_from_slice(&self.pending[self.at..self.at + take]);
        self.at += take;
        self.written += take;
        Ok(take)
    }
}

#[test]
fn a_50_mb_trail_file_streams_with_bounded_memory() {
    const SIZE: usize = 50 * 1024 * 1024;
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    io::copy(&mut BigTrail::new(SIZE), &mut gz).unwrap();
    let gz = gz.finish().unwrap();
    let input = redshift_audit_forwarder::decode::open(io::Cursor::new(gz)).unwrap();
    let mut events = TrailEvents::new(input, "big.json.gz", EventSources::default());
    let mut kept = 0u64;
    while let Some(item) = events.next_kept().unwrap() {
        match item {
            Kept::Event { fields, .. } => {
                assert_eq!(
                    fields.event_source.as_deref(),
                    Some("redshift.amazonaws.com")
                );
                kept += 1;
            }
            Kept::Bad { reason, .. } => panic!("{reason}"),
        }
    }
    let total = events.reader().elements_read();
    assert!(events.reader().bytes_read() >= SIZE as u64);
    assert!(total > 50_000, "{total}");
    assert_eq!(kept, total.div_ceil(10));
    assert_eq!(events.skipped(), total - kept);
    // One event is about 700 bytes: the buffer never grew past a few of them.
    let high = events.reader().buffer_high_water();
    assert!(high <= 4096, "event buffer reached {high} bytes");
    assert!(high <= MAX_EVENT_BYTES);
}

// ---------------------------------------------------------------- filter

#[test]
fn event_sources_default_to_redshifts_four_and_a_list_replaces_them() {
    let default = EventSources::default();
    for s in [
        "redshift.amazonaws.com",
        "redshift-serverless.amazonaws.com",
        "redshift-data.amazonaws.com",
        "sqlworkbench.amazonaws.com",
    ] {
        assert!(default.keeps(s), "{s}");
    }
    assert!(!default.keeps("s3.amazonaws.com"));
    assert!(!default.keeps("Redshift.amazonaws.com"));

    let list =
        EventSources::from_list(" redshift.amazonaws.com, kms.amazonaws.com ,,kms.amazonaws.com")
            .unwrap();
    assert_eq!(
        list.as_slice(),
        ["redshift.amazonaws.com", "kms.amazonaws.com"]
    );
    assert!(list.keeps("kms.amazonaws.com"));
    assert!(!list.keeps("redshift-data.amazonaws.com"));

    assert_eq!(
        EventSources::from_list(" , "),
        Err(EventSourcesError::Empty)
    );
    assert_eq!(EventSources::from_list(""), Err(EventSourcesError::Empty));
    let err = EventSources::from_list("redshift.amazonaws.com,Not A Source").unwrap_err();
    assert_eq!(err, EventSourcesError::Bad("Not A Source".into()));
    assert!(err.to_string().contains("Not A Source"));
}

#[test]
fn non_redshift_events_are_counted_not_kept() {
    let events = vec![
        event("s3.amazonaws.com", "GetObject", 0),
        event("redshift.amazonaws.com", "CreateCluster", 1),
        event("kms.amazonaws.com", "Decrypt", 2),
        event("redshift-serverless.amazonaws.com", "CreateWorkgroup", 3),
        event("redshift-data.amazonaws.com", "ExecuteStatement", 4),
        event("sqlworkbench.amazonaws.com", "GetQueryExecution", 5),
        event("ec2.amazonaws.com", "RunInstances", 6),
    ];
    let file = trail(&events);
    let mut kept = TrailEvents::new(file.as_bytes(), "k", EventSources::default());
    let mut got = Vec::new();
    while let Some(item) = kept.next_kept().unwrap() {
        let Kept::Event {
            ordinal,
            bytes,
            fields,
            ..
        } = item
        else {
            panic!("{item:?}")
        };
        assert_eq!(bytes, events[ordinal as usize].as_bytes());
        assert_eq!(
            fields.event_id.as_deref(),
            Some(format!("ev-{ordinal}").as_str())
        );
        assert_eq!(fields.aws_region.as_deref(), Some("us-east-1"));
        assert!(fields.event_time.is_some());
        got.push((ordinal, fields.event_name.unwrap().into_owned()));
    }
    assert_eq!(
        got,
        vec![
            (1, "CreateCluster".to_string()),
            (3, "CreateWorkgroup".into()),
            (4, "ExecuteStatement".into()),
            (5, "GetQueryExecution".into())
        ]
    );
    assert_eq!(kept.skipped(), 3);

    let mut kms = TrailEvents::new(
        file.as_bytes(),
        "k",
        EventSources::from_list("kms.amazonaws.com").unwrap(),
    );
    let mut n = 0;
    while let Some(item) = kms.next_kept().unwrap() {
        assert!(matches!(item, Kept::Event { ordinal: 2, .. }), "{item:?}");
        n += 1;
    }
    assert_eq!((n, kms.skipped()), (1, 6));
}

#[test]
fn escaped_fields_are_decoded_and_borrowed_ones_point_into_the_event() {
    let file = r#"{"Records":[{"eventSource":"redshift.amazonaws.com","eventName":"Create\u0043luster","eventID":"a\"b"}]}"#;
    let mut kept = TrailEvents::new(file.as_bytes(), "k", EventSources::default());
    let Some(Kept::Event { fields, .. }) = kept.next_kept().unwrap() else {
        panic!()
    };
    assert_eq!(fields.event_name.as_deref(), Some("CreateCluster"));
    assert_eq!(fields.event_id.as_deref(), Some("a\"b"));
    assert_eq!(
        fields.event_source.as_deref(),
        Some("redshift.amazonaws.com")
    );
    assert_eq!(fields.event_time, None);
}

#[test]
fn events_that_are_not_json_or_lack_a_source_are_kept_as_bad_items() {
    let good = event("redshift.amazonaws.com", "CreateCluster", 0);
    let file = format!(
        r#"{{"Records":[{{"eventSource":"redshift.amazonaws.com","x":tru}},{{"eventName":"X"}},{good},7]}}"#
    );
    let mut kept = TrailEvents::new(file.as_bytes(), "b/k", EventSources::default());
    let mut seen = Vec::new();
    while let Some(item) = kept.next_kept().unwrap() {
        match item {
            Kept::Bad {
                ordinal, reason, ..
            } => {
                assert!(reason.contains("b/k"), "{reason}");
                seen.push((ordinal, reason));
            }
            Kept::Event { ordinal, .. } => seen.push((ordinal, "ok".into())),
        }
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(
        seen[0].1.contains("event 1 is not valid JSON"),
        "{}",
        seen[0].1
    );
    assert!(
        seen[1].1.contains("event 2 has no eventSource"),
        "{}",
        seen[1].1
    );
    assert_eq!(seen[2], (2, "ok".to_string()));
    assert!(
        seen[3].1.contains("event 4 is not a JSON object"),
        "{}",
        seen[3].1
    );
    assert_eq!(kept.skipped(), 0);
}

// ---------------------------------------------------------------- raw

fn provenance() -> TrailProvenance {
    TrailProvenance::new(
        parse_trail_key(KEY).ok().as_ref(),
        Some("trail-bucket"),
        KEY,
    )
}

#[test]
fn raw_record_is_the_event_as_written_plus_provenance() {
    let e = event("redshift.amazonaws.com", "CreateCluster", 3);
    let mut out = Vec::new();
    write_trail_raw(&mut out, e.as_bytes(), &[], 6, &provenance());
    // The event's bytes are untouched: the output starts with them, minus the closing brace.
    assert!(out.starts_with(&e.as_bytes()[..e.len() - 1]));
    assert!(!out.contains(&b'\n'));
    let v: Value = serde_json::from_slice(&out).unwrap();
    let original: Value = serde_json::from_str(&e).unwrap();
    for (k, val) in original.as_object().unwrap() {
        assert_eq!(&v[k], val, "{k}");
    }
    assert_eq!(v["log_type"], "cloudtrail");
    assert_eq!(v["account_id"], "123456789012");
    assert_eq!(v["region"], "us-east-1");
    assert_eq!(v["cluster"], Value::Null);
    assert_eq!(v["file_time"], "2024-03-01T00:55:00Z");
    assert_eq!(
        v["source"],
        serde_json::json!({"bucket": "trail-bucket", "key": KEY, "event": 7})
    );
    assert_eq!(v["id"].as_str().unwrap().len(), 32);
}

#[test]
fn ids_use_the_same_hash_as_audit_records() {
    let audit = redshift_audit_forwarder::output::Provenance::new(
        redshift_audit_forwarder::logs::LogType::UserLog,
        None,
        Some("trail-bucket"),
        KEY,
    );
    let trail = provenance();
    for ordinal in [0, 1, 41, u64::MAX - 1] {
        assert_eq!(trail.record_id(ordinal), audit.record_id(ordinal));
    }
    assert_ne!(trail.record_id(0), trail.record_id(1));
    let other = TrailProvenance::new(None, Some("trail-bucket"), "other-key");
    assert_ne!(other.record_id(0), trail.record_id(0));
}

#[test]
fn raw_handles_empty_and_pretty_printed_events_and_unknown_keys() {
    let prov = TrailProvenance::new(None, None, "local.json");
    let mut out = Vec::new();
    write_trail_raw(&mut out, b"{ \n }", &[], 0, &prov);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["account_id"], Value::Null);
    assert_eq!(
        v["source"],
        serde_json::json!({"bucket": null, "key": "local.json", "event": 1})
    );
    assert!(!out.contains(&b'\n'));

    out.clear();
    write_trail_raw(
        &mut out,
        b"{\n  \"eventName\": \"A\",\r\n  \"n\": [1,\n2]\n}",
        &[],
        4,
        &prov,
    );
    assert!(!out.contains(&b'\n') && !out.contains(&b'\r'));
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["eventName"], "A");
    assert_eq!(v["n"], serde_json::json!([1, 2]));
    assert_eq!(v["source"]["event"], 5);
}

#[test]
fn bad_elements_become_parse_error_records_with_bounded_raw() {
    let prov = provenance();
    let mut out = Vec::new();
    let error = TrailError::new("k: event 2 is not valid JSON", b"{\"a\":tru}", None);
    write_trail_error(&mut out, &error, 1, &prov);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["parse_error"], "k: event 2 is not valid JSON");
    assert_eq!(v["raw"], "{\"a\":tru}");
    assert_eq!(v.get("truncated"), None);
    assert_eq!(v["source"]["event"], 2);
    assert_eq!(v["id"].as_str().unwrap().as_bytes(), prov.record_id(1));

    out.clear();
    let big = vec![b'x'; MAX_ERROR_RAW_BYTES + 10];
    write_trail_error(&mut out, &TrailError::new("too big", &big, None), 0, &prov);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["raw"].as_str().unwrap().len(), MAX_ERROR_RAW_BYTES);
    // As an audit parse_error over 64 KiB: the whole text's length and hash, not cut.
    assert_eq!(v["raw_bytes"], big.len());
    assert_eq!(
        v["raw_xxh3"].as_str().unwrap(),
        format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&big))
    );
    assert_eq!(v.get("truncated"), None);
    assert_eq!(v["id"].as_str().unwrap().as_bytes(), prov.record_id(0));

    // An element over the event limit, of which the reader kept only the start, is cut.
    out.clear();
    let whole = WholeElement {
        bytes: 5 << 20,
        xxh3: 7,
    };
    let error = TrailError::new("over the limit", &big, Some(whole));
    write_trail_error(&mut out, &error, 0, &prov);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["raw_bytes"], 5 << 20);
    assert_eq!(v["truncated"], true);
    assert_eq!(v["raw_xxh3"], format!("{:032x}", 7));
    let id = format!("{}-cut", String::from_utf8_lossy(&prov.record_id(0)));
    assert_eq!(
        v["id"],
        id.as_str(),
        "a record that never held its whole event is cut"
    );
}

// ---------------------------------------------------------------- OCSF

#[test]
fn activity_follows_the_verb_that_starts_the_event_name() {
    let cases = [
        ("CreateCluster", Activity::Create),
        ("RunQuery", Activity::Create),
        ("GenerateDataKey", Activity::Create),
        ("CopyClusterSnapshot", Activity::Create),
        ("RestoreFromClusterSnapshot", Activity::Create),
        ("GetClusterCredentials", Activity::Read),
        ("GetClusterCredentialsWithIAM", Activity::Read),
        ("ListDatabases", Activity::Read),
        ("DescribeClusters", Activity::Read),
        ("SearchTables", Activity::Read),
        ("LookupEvents", Activity::Read),
        ("BatchGetSomething", Activity::Read),
        ("ModifyClusterParameterGroup", Activity::Update),
        ("DisableLogging", Activity::Update),
        ("EnableLogging", Activity::Update),
        ("PauseCluster", Activity::Update),
        ("ResumeCluster", Activity::Update),
        ("RebootCluster", Activity::Update),
        ("ResizeCluster", Activity::Update),
        ("AuthorizeClusterSecurityGroupIngress", Activity::Update),
        ("RevokeSnapshotAccess", Activity::Update),
        ("RotateEncryptionKey", Activity::Update),
        ("CancelStatement", Activity::Update),
        ("TagResource", Activity::Update),
        ("UntagResource", Activity::Update),
        ("PutResourcePolicy", Activity::Update),
        ("DeleteCluster", Activity::Delete),
        ("TerminateSession", Activity::Delete),
        ("PurgeQueue", Activity::Delete),
        ("BatchDeleteClusterSnapshots", Activity::Delete),
        ("ExecuteStatement", Activity::Other),
        ("BatchExecuteStatement", Activity::Other),
        ("Getaway", Activity::Other),
        ("Created", Activity::Other),
        ("", Activity::Other),
        ("get", Activity::Other),
    ];
    for (name, want) in cases {
        assert_eq!(activity_of(name), want, "{name}");
    }
    assert_eq!(
        (
            Activity::Create.id(),
            Activity::Read.id(),
            Activity::Update.id(),
            Activity::Delete.id(),
            Activity::Other.id()
        ),
        (1, 2, 3, 4, 99)
    );
}

#[test]
fn event_times_become_epoch_milliseconds() {
    assert_eq!(epoch_ms("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(epoch_ms("2024-03-01T00:55:12Z"), Some(1_709_254_512_000));
    assert_eq!(epoch_ms("2024-03-01T00:55:12.5Z"), Some(1_709_254_512_500));
    assert_eq!(
        epoch_ms("2024-03-01T00:55:12.123456Z"),
        Some(1_709_254_512_123)
    );
    for bad in [
        "",
        "2024-03-01",
        "2024-03-01T00:55:12",
        "2024-13-01T00:55:12Z",
        "2024-03-01 00:55:12Z",
        "2024-03-01T00:55:12.Z",
        "2024-03-01T00:55:12+01:00",
    ] {
        assert_eq!(epoch_ms(bad), None, "{bad}");
    }
}

const ASSUMED_ROLE_FAILURE: &str = r#"{"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLE:bob","arn":"arn:aws:sts::123456789012:assumed-role/Admin/bob","accountId":"123456789012","accessKeyId":"ASIAEXAMPLE","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROAEXAMPLE","arn":"arn:aws:iam::123456789012:role/Admin","accountId":"123456789012","userName":"Admin"},"webIdFederationData":{},"attributes":{"creationDate":"2024-03-01T00:10:00Z","mfaAuthenticated":"true"}}},"eventTime":"2024-03-01T00:40:00Z","eventSource":"redshift.amazonaws.com","eventName":"ModifyCluster","awsRegion":"eu-west-1","sourceIPAddress":"198.51.100.7","userAgent":"console.amazonaws.com","errorCode":"InvalidClusterState","errorMessage":"The cluster is being resized","requestParameters":{"clusterIdentifier":"prod","masterUserPassword":"****"},"responseElements":null,"requestID":"r-1","eventID":"e-1","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management","tlsDetails":{"tlsVersion":"TLSv1.3"}}"#;

#[test]
fn ocsf_maps_an_api_call_to_api_activity() {
    let mut out = Vec::new();
    write_trail_ocsf(&mut out, ASSUMED_ROLE_FAILURE.as_bytes(), 2, &provenance()).unwrap();
    assert!(!out.contains(&b'\n'));
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["class_uid"], 6003);
    assert_eq!(v["category_uid"], 6);
    assert_eq!(v["activity_id"], 3);
    assert_eq!(v["type_uid"], 600303);
    assert_eq!(v["severity_id"], 1);
    assert_eq!(v["status_id"], 2);
    assert_eq!(v["time"], 1_709_253_600_000i64);
    assert_eq!(v["metadata"]["version"], "1.1.0");
    assert_eq!(v["metadata"]["uid"], "e-1");
    assert_eq!(
        v["metadata"]["product"],
        serde_json::json!({"name": "Amazon Redshift", "vendor_name": "AWS"})
    );
    assert_eq!(v["api"]["operation"], "ModifyCluster");
    assert_eq!(v["api"]["service"]["name"], "redshift.amazonaws.com");
    assert_eq!(v["api"]["request"]["uid"], "r-1");
    assert_eq!(v["api"]["response"]["error"], "InvalidClusterState");
    assert_eq!(
        v["api"]["response"]["message"],
        "The cluster is being resized"
    );
    assert_eq!(v["cloud"]["region"], "eu-west-1");
    assert_eq!(v["cloud"]["provider"], "AWS");
    assert_eq!(v["src_endpoint"]["ip"], "198.51.100.7");
    let user = &v["actor"]["user"];
    // OCSF's caption for type_id 99; CloudTrail's own type stays in unmapped.
    assert_eq!(user["type"], "Other");
    assert_eq!(user["type_id"], 99);
    assert_eq!(v["unmapped"]["userIdentity"]["type"], "AssumedRole");
    assert_eq!(user["uid"], "AROAEXAMPLE:bob");
    assert_eq!(
        user["uid_alt"],
        "arn:aws:sts::123456789012:assumed-role/Admin/bob"
    );
    assert_eq!(user["name"], "Admin");
    assert_eq!(user["account"]["uid"], "123456789012");
    assert_eq!(user["credential_uid"], "ASIAEXAMPLE");
    assert_eq!(v["actor"]["session"]["is_mfa"], true);
    assert_eq!(v["actor"]["session"]["created_time"], 1_709_251_800_000i64);
    assert_eq!(
        v["actor"]["session"]["issuer"],
        "arn:aws:iam::123456789012:role/Admin"
    );
    // What has no OCSF home is under `unmapped`, with the provenance.
    let unmapped = &v["unmapped"];
    assert_eq!(unmapped["requestParameters"]["clusterIdentifier"], "prod");
    assert_eq!(unmapped["tlsDetails"]["tlsVersion"], "TLSv1.3");
    assert_eq!(unmapped["eventVersion"], "1.09");
    assert_eq!(unmapped["eventTime"], "2024-03-01T00:40:00Z");
    assert_eq!(
        unmapped["userIdentity"]["sessionContext"]["sessionIssuer"]["type"],
        "Role"
    );
    assert_eq!(unmapped["userIdentity"].get("arn"), None);
    assert_eq!(unmapped["log_type"], "cloudtrail");
    assert_eq!(unmapped["source"]["event"], 3);
    assert_eq!(
        unmapped["id"].as_str().unwrap().as_bytes(),
        provenance().record_id(2)
    );
    for mapped in [
        "eventName",
        "eventSource",
        "eventID",
        "requestID",
        "awsRegion",
        "sourceIPAddress",
        "errorCode",
    ] {
        assert_eq!(unmapped.get(mapped), None, "{mapped}");
    }
}

#[test]
fn ocsf_success_service_caller_and_missing_time() {
    let e = r#"{"eventTime":"2024-03-01T00:40:00Z","eventSource":"redshift-data.amazonaws.com","eventName":"DescribeStatement","awsRegion":"us-east-1","sourceIPAddress":"redshift.amazonaws.com","userIdentity":{"type":"AWSService","invokedBy":"redshift.amazonaws.com"},"eventID":"e"}"#;
    let mut out = Vec::new();
    write_trail_ocsf(&mut out, e.as_bytes(), 0, &provenance()).unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["activity_id"], 2);
    assert_eq!(v["type_uid"], 600302);
    assert_eq!(v["status_id"], 1);
    assert_eq!(v["api"].get("response"), None);
    assert_eq!(
        v["src_endpoint"],
        serde_json::json!({"domain": "redshift.amazonaws.com"})
    );
    assert_eq!(v["actor"]["user"]["type_id"], 3);
    assert_eq!(v["actor"]["user"]["name"], "redshift.amazonaws.com");
    assert_eq!(v["actor"]["invoked_by"], "redshift.amazonaws.com");
    // Only CloudTrail's own identity type is left of userIdentity: it stays, unmapped.
    assert_eq!(
        v["unmapped"]["userIdentity"],
        serde_json::json!({"type": "AWSService"})
    );

    // No eventTime: the file name's time (2024-03-01T00:55:00Z), the event kept.
    out.clear();
    write_trail_ocsf(&mut out, br#"{"eventName":"X"}"#, 0, &provenance()).unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["time"], 1_709_254_500_000_i64);
    let before = out.len();
    assert!(write_trail_ocsf(&mut out, b"[1]", 0, &provenance()).is_err());
    assert_eq!(out.len(), before, "nothing written on error");
}

// ---------------------------------------------------------------- provenance names

/// JSON values whose objects use provenance names among others, at any depth.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<i32>().prop_map(Value::from),
        "[a-z \"\\\\]{0,6}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(json_key(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "id",
        "source",
        "account_id",
        "log_type",
        "region",
        "event_fields",
        "parse_error",
        "eventName",
        "requestParameters",
        "x",
        "a_b",
    ])
    .prop_map(String::from)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever names an event uses and however it is laid out, its `raw` record is one JSON
    /// line with no key twice, the provenance is the forwarder's, the event's own members of
    /// provenance names are under `event_fields` as written, and every other member is kept.
    #[test]
    fn raw_records_keep_every_member_once_and_the_provenance_the_forwarders(
        members in proptest::collection::btree_map(json_key(), json_value(), 0..8),
        pretty in any::<bool>(),
    ) {
        let mut event = serde_json::Map::new();
        event.insert("eventSource".into(), "redshift.amazonaws.com".into());
        event.extend(members);
        let event = Value::Object(event);
        let text = if pretty {
            serde_json::to_string_pretty(&event).unwrap()
        } else {
            event.to_string()
        };
        let file = format!("{{\"Records\":[{text}]}}");
        let mut kept = TrailEvents::new(file.as_bytes(), "k", EventSources::default());
        let Some(Kept::Event { bytes, reserved, .. }) = kept.next_kept().unwrap() else {
            panic!("not an event: {text}");
        };
        let mut out = Vec::new();
        write_trail_raw(&mut out, bytes, reserved, 0, &provenance());
        prop_assert!(!out.contains(&b'\n'));
        let record: Value = serde_json::from_slice(&out).unwrap();
        // serde_json keeps the last of two equal keys: count the keys in the text too.
        let keys = record.as_object().unwrap();
        let written = out.windows(2).filter(|w| w == b"\":").count();
        let nested = |v: &Value| v.to_string().matches("\":").count();
        prop_assert_eq!(written, keys.len() + keys.values().map(nested).sum::<usize>(), "{}", String::from_utf8_lossy(&out));
        prop_assert_eq!(&record["account_id"], "123456789012");
        prop_assert_eq!(record["id"].as_str().unwrap().as_bytes(), &provenance().record_id(0));
        for (name, value) in event.as_object().unwrap() {
            let moved = redshift_audit_forwarder::cloudtrail::members::is_reserved(name);
            let found = if moved { &record["event_fields"][name] } else { &record[name] };
            prop_assert_eq!(found, value, "{}", name);
        }
    }

    #[test]
    fn the_member_scan_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = redshift_audit_forwarder::cloudtrail::members::scan(&data);
    }

    #[test]
    fn the_member_scan_never_panics_on_json_shaped_bytes(s in r#"[{}\[\]",:\\ a0e1-]{0,120}"#) {
        let _ = redshift_audit_forwarder::cloudtrail::members::scan(s.as_bytes());
    }
}
