//! The Firehose sink against the real `aws_sdk_firehose::Client`, its HTTP requests answered in
//! process: partial failures, throttling and 5xx, exhausted retries, and what moto cannot fake.
//!
//! One answering function stands in for Firehose at the HTTP level (the SDK's test HTTP client),
//! so the tests see the request exactly as it would go on the wire: it decodes the body the sink
//! wrote (the JSON and base64 of each record), takes the next scripted reply (accept all when
//! the script is empty), answers as Firehose does (a JSON body, or an error with its
//! `__type`), and notes which records were accepted, so each test can check that every line
//! was accepted exactly once. Retry delays are zero and no assertion depends on timing.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_firehose::Client;
use aws_smithy_http_client::test_util::infallible_client_fn;
use base64::Engine;
use redshift_audit_forwarder::aws::{FirehoseSink, RetryPolicy};
use redshift_audit_forwarder::sink::{Sink, SinkError, SinkStats, MAX_BATCH_RECORDS};

const STREAM: &str = "audit-stream";

/// What the fake Firehose answers to one call.
#[derive(Debug, Clone)]
enum Reply {
    /// Every entry accepted.
    Accept,
    /// The call succeeds but these entries fail with `ServiceUnavailableException`.
    FailEntries(Vec<usize>),
    /// A bare HTTP error status (e.g. 503) with no error code.
    Status(u16),
    /// The whole call is throttled (`ServiceUnavailableException`, HTTP 400).
    Throttle,
    /// The stream does not exist.
    NotFound,
}

/// One call as the fake Firehose saw it.
#[derive(Debug, Clone)]
struct Request {
    stream: Option<String>,
    records: Vec<Vec<u8>>,
    accepted: Vec<bool>,
}

struct FakeFirehose {
    client: Client,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl FakeFirehose {
    fn new(script: Vec<Reply>) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let seen = Arc::clone(&requests);
        let http = infallible_client_fn(move |request: http::Request<_>| {
            let (stream, records) = decode_request(&request);
            let reply = script.lock().unwrap().pop_front().unwrap_or(Reply::Accept);
            let (response, accepted) = respond(&reply, records.len());
            seen.lock().unwrap().push(Request {
                stream,
                records,
                accepted,
            });
            response
        });
        let config = aws_sdk_firehose::Config::builder()
            .with_test_defaults_v2()
            .credentials_provider(test_credentials())
            .region(aws_sdk_firehose::config::Region::new("us-east-1"))
            .http_client(http)
            .build();
        FakeFirehose {
            client: Client::from_conf(config),
            requests,
        }
    }

    fn sink(&self, pack: bool, max_attempts: u32) -> FirehoseSink {
        FirehoseSink::new(self.client.clone(), STREAM, pack).with_retry_policy(RetryPolicy {
            max_attempts,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        })
    }

    fn requests(&self) -> Vec<Request> {
        let requests = self.requests.lock().unwrap().clone();
        assert!(requests.iter().all(|r| r.stream.as_deref() == Some(STREAM)));
        requests
    }

    /// How often each line was accepted, across all calls.
    fn accepted_lines(&self) -> HashMap<Vec<u8>, usize> {
        let mut counts = HashMap::new();
        for request in self.requests() {
            for (record, accepted) in request.records.iter().zip(&request.accepted) {
                if *accepted {
                    for line in split_lines(record) {
                        *counts.entry(line).or_insert(0) += 1;
                    }
                }
            }
        }
        counts
    }

    /// Asserts that every line was accepted exactly once and nothing else was.
    fn assert_each_line_accepted_once(&self, lines: &[Vec<u8>]) {
        let counts = self.accepted_lines();
        for line in lines {
            assert_eq!(
                counts.get(line),
                Some(&1),
                "line {:?}",
                String::from_utf8_lossy(line)
            );
        }
        assert_eq!(counts.len(), lines.len(), "no unexpected lines");
    }
}

/// The stream and records of a PutRecordBatch request, checked as Firehose would: the target
/// header, the content length, and one base64 `Data` per record.
fn decode_request(
    request: &http::Request<aws_smithy_types::body::SdkBody>,
) -> (Option<String>, Vec<Vec<u8>>) {
    assert_eq!(
        request.headers()["x-amz-target"],
        "Firehose_20150804.PutRecordBatch"
    );
    let body = request.body().bytes().expect("an in-memory body");
    assert_eq!(
        request.headers()["content-length"],
        body.len().to_string().as_str(),
        "the length sent is the body's"
    );
    assert_signed_over_the_body_sent(request, body);
    let json: serde_json::Value = serde_json::from_slice(body).expect("the body is JSON");
    let stream = json["DeliveryStreamName"].as_str().map(str::to_owned);
    let records = json["Records"]
        .as_array()
        .expect("Records")
        .iter()
        .map(|record| {
            base64::engine::general_purpose::STANDARD
                .decode(record["Data"].as_str().expect("Data is a string"))
                .expect("Data is base64")
        })
        .collect();
    (stream, records)
}

/// The request's SigV4 signature, computed again over the body as received: equal only if the
/// sink gave the SDK its body before signing (the payload hash is part of the signature).
fn assert_signed_over_the_body_sent(
    request: &http::Request<aws_smithy_types::body::SdkBody>,
    body: &[u8],
) {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;
    let header = |name: &str| request.headers()[name].to_str().unwrap();
    let authorization = header("authorization");
    let field = |name: &str| {
        authorization
            .split([' ', ','])
            .find_map(|part| part.strip_prefix(name))
            .unwrap_or_else(|| panic!("{name} in {authorization}"))
    };
    let signed: Vec<&str> = field("SignedHeaders=").split(';').collect();
    let signature = field("Signature=");
    let time = format!("{}+0000", header("x-amz-date"));
    let time = jiff::Timestamp::strptime("%Y%m%dT%H%M%SZ%z", time).unwrap();
    let identity = test_credentials().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("firehose")
        .time(std::time::UNIX_EPOCH + std::time::Duration::from_secs(time.as_second() as u64))
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let resign = |payload: &[u8]| {
        let headers = request
            .headers()
            .iter()
            .filter(|(name, _)| signed.contains(&name.as_str()))
            .map(|(name, value)| (name.as_str(), value.to_str().unwrap()));
        let uri = request.uri().to_string();
        let signable =
            SignableRequest::new("POST", uri, headers, SignableBody::Bytes(payload)).unwrap();
        sign(signable, &params).unwrap().signature().to_owned()
    };
    assert_eq!(
        resign(body),
        signature,
        "the signature covers the body sent"
    );
    assert_ne!(resign(b"{}"), signature, "and would not cover another");
}

fn test_credentials() -> aws_sdk_firehose::config::Credentials {
    aws_sdk_firehose::config::Credentials::new("AKIDSINKTEST", "sink-test-secret", None, None, "t")
}

fn respond(reply: &Reply, n: usize) -> (http::Response<String>, Vec<bool>) {
    let answer = |status: u16, body: String| {
        http::Response::builder()
            .status(status)
            .header("content-type", "application/x-amz-json-1.1")
            .body(body)
            .unwrap()
    };
    let error = |status: u16, code: &str, message: &str| {
        let body = serde_json::json!({ "__type": code, "message": message });
        (answer(status, body.to_string()), vec![false; n])
    };
    match reply {
        Reply::Accept => (answer(200, output(n, &[])), vec![true; n]),
        Reply::FailEntries(failed) => {
            // A scripted index past this call's records (a short re-send) fails nothing.
            let failed: Vec<usize> = failed.iter().copied().filter(|&i| i < n).collect();
            let accepted = (0..n).map(|i| !failed.contains(&i)).collect();
            (answer(200, output(n, &failed)), accepted)
        }
        Reply::Status(status) => (
            answer(*status, r#"{"message":"Service Unavailable"}"#.to_owned()),
            vec![false; n],
        ),
        Reply::Throttle => error(400, "ServiceUnavailableException", "Slow down."),
        Reply::NotFound => error(
            400,
            "ResourceNotFoundException",
            "Firehose audit-stream not found",
        ),
    }
}

/// A successful PutRecordBatch answer for `n` records of which those at `failed` failed.
fn output(n: usize, failed: &[usize]) -> String {
    let entries: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            if failed.contains(&i) {
                serde_json::json!({
                    "ErrorCode": "ServiceUnavailableException",
                    "ErrorMessage": "Slow down."
                })
            } else {
                serde_json::json!({ "RecordId": format!("record-{i}") })
            }
        })
        .collect();
    serde_json::json!({
        "FailedPutCount": failed.len(),
        "Encrypted": false,
        "RequestResponses": entries,
    })
    .to_string()
}

fn split_lines(record: &[u8]) -> Vec<Vec<u8>> {
    assert_eq!(
        record.last(),
        Some(&b'\n'),
        "every record ends with a newline"
    );
    record[..record.len() - 1]
        .split(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// Distinct NDJSON lines, `len` bytes each (at least 25).
fn lines(count: usize, len: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let mut line = format!("{{\"n\":{i:>10},\"pad\":\"").into_bytes();
            line.resize(len - 2, b'x');
            line.extend_from_slice(b"\"}");
            line
        })
        .collect()
}

async fn send_all(mut sink: FirehoseSink, lines: &[Vec<u8>]) -> Result<SinkStats, SinkError> {
    for line in lines {
        sink.send(line).await?;
    }
    sink.finish().await
}

#[tokio::test]
async fn failed_entries_are_resent_alone_by_index() {
    let firehose = FakeFirehose::new(vec![Reply::FailEntries(vec![1, 4, 7])]);
    let input = lines(10, 50);
    let stats = send_all(firehose.sink(false, 5), &input).await.unwrap();

    let requests = firehose.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].records.len(), 10);
    let expected: Vec<Vec<u8>> = [1, 4, 7]
        .iter()
        .map(|&i| [input[i].as_slice(), b"\n"].concat())
        .collect();
    assert_eq!(requests[1].records, expected);
    let failed_first: Vec<Vec<u8>> = [1, 4, 7]
        .iter()
        .map(|&i| requests[0].records[i].clone())
        .collect();
    assert_eq!(requests[1].records, failed_first);
    assert_eq!(stats.calls, 2);
    assert_eq!(stats.retries, 1);
    assert_eq!(stats.resent_records, 3);
    assert_eq!(stats.firehose_records, 10);
    assert_eq!(stats.lines, 10);
    firehose.assert_each_line_accepted_once(&input);
}

#[tokio::test]
async fn repeated_partial_failures_narrow_to_the_still_failing_entries() {
    // Call 2 re-sends entries 0, 2, 3 of call 1; its entry 1 (call 1's entry 2) fails again.
    let firehose = FakeFirehose::new(vec![
        Reply::FailEntries(vec![0, 2, 3]),
        Reply::FailEntries(vec![1]),
    ]);
    let input = lines(5, 40);
    let stats = send_all(firehose.sink(false, 5), &input).await.unwrap();

    let requests = firehose.requests();
    let sent: Vec<usize> = requests.iter().map(|r| r.records.len()).collect();
    assert_eq!(sent, [5, 3, 1]);
    assert_eq!(requests[2].records, [[input[2].as_slice(), b"\n"].concat()]);
    assert_eq!(
        (stats.calls, stats.retries, stats.resent_records),
        (3, 2, 4)
    );
    firehose.assert_each_line_accepted_once(&input);
}

#[tokio::test]
async fn a_503_and_a_throttled_call_are_retried_then_succeed() {
    let firehose = FakeFirehose::new(vec![Reply::Status(503), Reply::Throttle]);
    let input = lines(20, 100);
    let stats = send_all(firehose.sink(true, 5), &input).await.unwrap();

    let requests = firehose.requests();
    assert_eq!(requests.len(), 3);
    // The whole call is repeated unchanged: one packed record holding all 20 lines.
    assert!(requests.iter().all(|r| r.records == requests[0].records));
    assert_eq!(requests[0].records.len(), 1);
    assert_eq!(
        (stats.calls, stats.retries, stats.resent_records),
        (3, 2, 2)
    );
    firehose.assert_each_line_accepted_once(&input);
}

#[tokio::test]
async fn exhausted_entry_retries_fail_with_count_and_last_code() {
    let firehose = FakeFirehose::new(vec![
        Reply::FailEntries(vec![0, 2]),
        Reply::FailEntries(vec![1]),
        Reply::FailEntries(vec![0]),
    ]);
    let input = lines(4, 30);
    let err = send_all(firehose.sink(false, 3), &input).await.unwrap_err();

    match &err {
        SinkError::RetriesExhausted {
            stream,
            records,
            lines,
            attempts,
            code,
            ..
        } => {
            assert_eq!(stream, STREAM);
            assert_eq!((*records, *lines, *attempts), (1, 1, 3));
            assert_eq!(code, "ServiceUnavailableException");
        }
        other => panic!("expected RetriesExhausted, got {other:?}"),
    }
    assert!(err.is_retryable());
    assert!(
        err.to_string().contains("did not accept 1 records"),
        "{err}"
    );
    let sent: Vec<usize> = firehose
        .requests()
        .iter()
        .map(|r| r.records.len())
        .collect();
    assert_eq!(sent, [4, 2, 1]);
    // The one line never accepted is input[2]; the others went through once.
    let counts = firehose.accepted_lines();
    assert_eq!(counts.get(&input[2]), None);
    for i in [0, 1, 3] {
        assert_eq!(counts.get(&input[i]), Some(&1));
    }
}

#[tokio::test]
async fn exhausted_call_retries_fail_with_the_last_status() {
    let firehose = FakeFirehose::new(vec![
        Reply::Throttle,
        Reply::Status(503),
        Reply::Status(503),
    ]);
    let input = lines(3, 30);
    let err = send_all(firehose.sink(false, 3), &input).await.unwrap_err();

    match &err {
        SinkError::RetriesExhausted {
            records,
            lines,
            attempts,
            code,
            ..
        } => {
            assert_eq!((*records, *lines, *attempts), (3, 3, 3));
            assert_eq!(code, "HTTP 503", "{err}");
        }
        other => panic!("expected RetriesExhausted, got {other:?}"),
    }
    assert_eq!(firehose.requests().len(), 3);
    assert!(firehose.accepted_lines().is_empty());
}

#[tokio::test]
async fn a_missing_stream_fails_at_once_without_retrying() {
    let firehose = FakeFirehose::new(vec![Reply::NotFound]);
    let input = lines(3, 30);
    let err = send_all(firehose.sink(true, 5), &input).await.unwrap_err();

    match &err {
        SinkError::Rejected {
            records,
            lines,
            code,
            ..
        } => {
            assert_eq!((*records, *lines), (1, 3));
            assert_eq!(code, "ResourceNotFoundException");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert_eq!(firehose.requests().len(), 1);
}

#[tokio::test]
async fn a_failed_call_stops_later_sends() {
    // One call in flight at a time: the second batch waits for the first, which failed.
    let firehose = FakeFirehose::new(vec![Reply::NotFound]);
    let input = lines(3 * MAX_BATCH_RECORDS, 30);
    let mut sink = firehose.sink(false, 5).with_max_in_flight(1);
    let mut failed_at = None;
    for (i, line) in input.iter().enumerate() {
        if let Err(err) = sink.send(line).await {
            assert!(matches!(err, SinkError::Rejected { .. }));
            failed_at = Some(i);
            break;
        }
    }
    // Line 1,000 starts the second batch after the first was handed out at line 500.
    assert_eq!(failed_at, Some(2 * MAX_BATCH_RECORDS));
    assert_eq!(firehose.requests().len(), 1);
}

#[tokio::test]
async fn nothing_is_sent_twice_under_mixed_failures_and_concurrency() {
    // Several batches in flight at once; replies go to whichever call comes first, so the
    // interleaving varies, but each line must still be accepted exactly once.
    let firehose = FakeFirehose::new(vec![
        Reply::FailEntries(vec![0, 3, 99, 250, 499]),
        Reply::Status(503),
        Reply::FailEntries(vec![0]),
        Reply::Throttle,
        Reply::FailEntries(vec![1, 2]),
        Reply::Status(500),
    ]);
    let input = lines(2_345, 60);
    let stats = send_all(firehose.sink(false, 10).with_max_in_flight(3), &input)
        .await
        .unwrap();

    firehose.assert_each_line_accepted_once(&input);
    let requests = firehose.requests();
    assert_eq!(stats.calls, requests.len() as u64);
    assert_eq!(stats.firehose_records, 2_345);
    let sent: u64 = requests.iter().map(|r| r.records.len() as u64).sum();
    assert_eq!(sent, stats.firehose_records + stats.resent_records);
    // Five replies fail something whatever call they meet (only `FailEntries([1, 2])` can miss).
    assert!(stats.retries >= 5, "{stats:?}");
}

#[tokio::test]
async fn packing_on_and_off_give_the_expected_records_and_calls() {
    // 3,000 lines of 1,000 bytes (1,001 with the newline).
    let input = lines(3_000, 1_000);

    let packed = FakeFirehose::new(vec![]);
    let on = send_all(packed.sink(true, 5), &input).await.unwrap();
    // 1,022 lines fill a record (1,023,022 bytes): records of 1,022, 1,022 and 956 lines,
    // 3,003,000 bytes in all, so one call.
    let requests = packed.requests();
    assert_eq!(requests.len(), 1);
    let sizes: Vec<usize> = requests[0].records.iter().map(Vec::len).collect();
    assert_eq!(sizes, [1_023_022, 1_023_022, 956_956]);
    assert_eq!(
        on,
        SinkStats {
            lines: 3_000,
            firehose_records: 3,
            payload_bytes: 3_003_000,
            billed_bytes: 2 * 1_024_000 + 187 * 5_120,
            calls: 1,
            retries: 0,
            resent_records: 0,
            lake: None,
        }
    );
    packed.assert_each_line_accepted_once(&input);

    let unpacked = FakeFirehose::new(vec![]);
    let off = send_all(unpacked.sink(false, 5), &input).await.unwrap();
    let requests = unpacked.requests();
    assert_eq!(requests.len(), 6);
    assert!(requests
        .iter()
        .all(|r| r.records.len() == MAX_BATCH_RECORDS));
    assert_eq!(
        off,
        SinkStats {
            lines: 3_000,
            firehose_records: 3_000,
            payload_bytes: 3_003_000,
            billed_bytes: 3_000 * 5_120,
            calls: 6,
            retries: 0,
            resent_records: 0,
            lake: None,
        }
    );
    unpacked.assert_each_line_accepted_once(&input);
}

#[tokio::test]
async fn an_empty_input_makes_no_call() {
    let firehose = FakeFirehose::new(vec![]);
    let stats = send_all(firehose.sink(true, 5), &[]).await.unwrap();
    assert_eq!(stats, SinkStats::default());
    assert!(firehose.requests().is_empty());
}

/// Runs of NDJSON, as the forwarder hands them over.
async fn send_runs(
    mut sink: FirehoseSink,
    lines: &[Vec<u8>],
    run_bytes: usize,
) -> Result<(SinkStats, usize), SinkError> {
    let text: Vec<u8> = lines
        .iter()
        .flat_map(|l| [l.as_slice(), b"\n"].concat())
        .collect();
    let mut handed_back = 0;
    let mut start = 0;
    while start < text.len() {
        let limit = (start + run_bytes).min(text.len());
        let end = text[start..limit]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(limit, |i| start + i + 1);
        let mut at = start;
        while at < end {
            let taken = sink.send_run(&text[at..end]).await?;
            assert!(taken.bytes > 0);
            let newlines = text[at..at + taken.bytes].iter().filter(|&&b| b == b'\n');
            assert_eq!(taken.lines, newlines.count() as u64);
            at += taken.bytes;
            if at < end {
                handed_back += 1;
            }
        }
        start = end;
    }
    Ok((sink.finish().await?, handed_back))
}

#[tokio::test]
async fn runs_of_lines_make_the_same_calls_as_lines_one_by_one() {
    let input = lines(2_345, 120);
    for pack in [true, false] {
        let one_by_one = FakeFirehose::new(vec![Reply::FailEntries(vec![0, 7])]);
        let expected = send_all(one_by_one.sink(pack, 5), &input).await.unwrap();
        let in_runs = FakeFirehose::new(vec![Reply::FailEntries(vec![0, 7])]);
        let (stats, handed_back) = send_runs(in_runs.sink(pack, 5), &input, 64 * 1024)
            .await
            .unwrap();
        assert_eq!(stats, expected, "pack={pack}");
        let records = |f: &FakeFirehose| -> Vec<Vec<Vec<u8>>> {
            f.requests().into_iter().map(|r| r.records).collect()
        };
        assert_eq!(records(&in_runs), records(&one_by_one), "pack={pack}");
        in_runs.assert_each_line_accepted_once(&input);
        if !pack {
            // Five calls of 500 records: each call after the first waits for the one before,
            // and the run hands back there, mid-run, so the caller can check its deadline.
            assert!(handed_back >= 3, "{handed_back}");
        }
    }
}
