use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use flate2::write::GzEncoder;

use super::*;
use crate::logs::Parser;
use crate::output::write_record;
use crate::ports::Fetched;
use crate::sink::WriteSink;

const KEY: &str = "AWSLogs/123456789012/redshift/us-east-1/2024/03/01/123456789012_redshift_us-east-1_analytics-prod_connectionlog_2024-03-01T00:53.gz";
const LINE: &str =
    "authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | |";

/// Objects in memory, by key.
#[derive(Default)]
struct Memory(HashMap<String, Vec<u8>>);

impl Fetch for Memory {
    async fn fetch(&self, object: &ObjectRef) -> Result<Fetched, FetchError> {
        match self.0.get(&object.key) {
            Some(bytes) => Ok(Fetched {
                body: Box::new(io::Cursor::new(bytes.clone())),
                size: Some(bytes.len() as u64),
                etag: Some("\"etag\"".into()),
            }),
            None => Err(FetchError {
                message: format!("s3://{}/{} does not exist", object.bucket, object.key),
                retryable: false,
            }),
        }
    }
}

/// A `Write` the test keeps a handle to.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);
impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
impl Shared {
    fn lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().unwrap().clone();
        bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }
}

fn gzip(text: &str) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap()
}

fn object(key: &str) -> ObjectRef {
    ObjectRef {
        bucket: "audit-bucket".into(),
        key: key.into(),
        size: None,
        etag: None,
        version_id: None,
        alternate_key: None,
    }
}

/// What `parse` gives for the same bytes, with the object's provenance.
fn expected(text: &str, key: &str) -> Vec<serde_json::Value> {
    let name = crate::key::parse_file_name(key).unwrap();
    let p = Provenance::new(name.log_type, Some(&name), Some("audit-bucket"), key);
    let mut parser = Parser::new(name.log_type, text.as_bytes());
    let mut out = Vec::new();
    while let Some(r) = parser.next_record().unwrap() {
        let mut buf = Vec::new();
        write_record(&mut buf, &r, &p);
        out.push(serde_json::from_slice(&buf).unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_of_the_object_reaches_the_sink() {
    let text = format!("{LINE}\nnot a record\n{LINE}\n");
    let store = Memory(HashMap::from([(KEY.to_string(), gzip(&text))]));
    let out = Shared::default();
    let receipt = forward_object(
        &store,
        &object(KEY),
        WriteSink::new(out.clone()),
        Output::default(),
    )
    .await
    .unwrap();
    assert_eq!(out.lines(), expected(&text, KEY));
    assert_eq!(receipt.records, 3);
    assert_eq!(receipt.parse_errors, 1);
    assert_eq!(receipt.input_lines, 3);
    assert_eq!(receipt.text_bytes, text.len() as u64);
    assert_eq!(receipt.log_type, Some("connectionlog"));
    assert_eq!(receipt.sink.lines, 3);
    assert_eq!(
        receipt.first_record_time.as_deref(),
        Some("2020-12-07T20:01:55.177Z")
    );
    assert_eq!(receipt.etag.as_deref(), Some("\"etag\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_object_names_the_object_and_is_not_retryable() {
    let err = forward_object(
        &Memory::default(),
        &object(KEY),
        WriteSink::new(Shared::default()),
        Output::default(),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("s3://audit-bucket/{KEY}")),
        "{err}"
    );
    assert!(!err.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_gzip_fails_after_sending_what_was_read() {
    let text: String = (0..20_000).map(|_| format!("{LINE}\n")).collect();
    let gz = gzip(&text);
    let store = Memory(HashMap::from([(
        KEY.to_string(),
        gz[..gz.len() / 2].to_vec(),
    )]));
    let out = Shared::default();
    let err = forward_object(
        &store,
        &object(KEY),
        WriteSink::new(out.clone()),
        Output::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ForwardError::Read { .. }), "{err}");
    assert!(
        err.to_string().contains("reading failed after line"),
        "{err}"
    );
    let sent = out.lines().len();
    assert!(
        sent > 100 && sent < 20_000,
        "{sent} records before the cut were sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_too_large_for_one_record_is_split_in_parts() {
    let key = KEY.replace("connectionlog", "useractivitylog");
    let query: String = "x".repeat(2_500_000);
    let text =
        format!("'2020-12-08T22:00:03Z UTC [ db=dev user=u pid=1 userid=2 xid=3 ]' LOG: {query}\n");
    let store = Memory(HashMap::from([(key.clone(), gzip(&text))]));
    let out = Shared::default();
    let receipt = forward_object(
        &store,
        &object(&key),
        WriteSink::new(out.clone()),
        Output::default(),
    )
    .await
    .unwrap();
    let lines = out.lines();
    assert_eq!(receipt.records, 1);
    assert_eq!(receipt.split_records, 1);
    assert_eq!(lines.len(), 3);
    let rejoined: String = lines.iter().map(|l| l["query"].as_str().unwrap()).collect();
    assert_eq!(rejoined, query);
    assert!(lines
        .iter()
        .all(|l| l["parts"] == 3 && l["id"] == lines[0]["id"]));
}

#[test]
fn a_batch_of_lines_gives_back_each_line_in_order() {
    let mut lines = Lines::default();
    for line in [&b"{\"a\":1}"[..], b"", b"{\"b\":2}"] {
        lines.push(line);
    }
    let got: Vec<&[u8]> = lines.iter().collect();
    assert_eq!(got, vec![&b"{\"a\":1}"[..], b"", b"{\"b\":2}"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_in_another_format_fails_for_good_and_sends_nothing() {
    let bzip2 = b"BZh91AY&SY\x00\x00\x00\x00 the rest".to_vec();
    let store = Memory(HashMap::from([(KEY.to_string(), bzip2)]));
    let out = Shared::default();
    let err = forward_object(
        &store,
        &object(KEY),
        WriteSink::new(out.clone()),
        Output::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ForwardError::Read { .. }), "{err}");
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains("bzip2"), "{err}");
    assert!(out.lines().is_empty());
}
