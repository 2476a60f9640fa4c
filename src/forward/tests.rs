use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::test_support::{gzip, Memory, Shared, KEY, LINE};
use super::*;
use crate::logs::Parser;
use crate::output::write_record;
use crate::sink::{WriteSink, MAX_LINE_BYTES};

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

#[test]
fn a_batch_done_with_gives_its_buffer_to_the_next_one() {
    let buffers = Buffers::default();
    let mut first = buffers.lines();
    first.push(b"{\"a\":1}");
    let address = first.bytes.as_ptr();
    drop(first);
    let second = buffers.lines();
    assert_eq!(second.bytes.as_ptr(), address, "the same allocation");
    assert!(second.is_empty(), "and empty");
    // At most BATCHES_IN_FLIGHT + 2 are kept, and none grown past what a batch may hold.
    let many: Vec<Lines> = (0..BATCHES_IN_FLIGHT + 5)
        .map(|_| buffers.lines())
        .collect();
    drop(many);
    assert_eq!(buffers.0.lock().unwrap().len(), BATCHES_IN_FLIGHT + 2);
    let mut huge = Buffers::default().lines();
    let pool = huge.buffers.clone().unwrap();
    huge.bytes.reserve(BATCH_BYTES + MAX_LINE_BYTES + 2);
    drop(huge);
    assert!(pool.0.lock().unwrap().is_empty());
    // A batch made without the pool returns nothing anywhere.
    drop(Lines::default());
}

#[test]
fn runs_of_lines_are_taken_whole_up_to_the_batch_size() {
    let block = b"aaaa\nbb\ncccccc\nd\n";
    let mut lines = Lines::default();
    // Under the size: the whole run.
    assert_eq!(lines.take_from(block, 100), b"");
    assert_eq!(lines.iter().count(), 4);
    // Over it: the lines that fit, and at least one however long.
    let mut lines = Lines::default();
    let rest = lines.take_from(block, 8);
    assert_eq!(
        (lines.bytes.as_slice(), rest),
        (&b"aaaa\nbb\n"[..], &b"cccccc\nd\n"[..])
    );
    let mut lines = Lines::default();
    let rest = lines.take_from(block, 2);
    assert_eq!(
        (lines.bytes.as_slice(), rest),
        (&b"aaaa\n"[..], &b"bb\ncccccc\nd\n"[..])
    );
    let got: Vec<&[u8]> = lines.iter().collect();
    assert_eq!(got, vec![&b"aaaa"[..]]);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_cut_by_a_failed_read_never_shares_its_id_with_the_whole_one() {
    let key = KEY.replace("connectionlog", "useractivitylog");
    let statement = |n: usize| {
        format!(
            "'2020-12-08T22:00:03Z UTC [ db=dev user=u pid={n} userid=2 xid=3 ]' LOG: SELECT {n}\n{}\n",
            "  , some_column".repeat(2000)
        )
    };
    let text: String = (0..200).map(statement).collect();
    let whole = gzip(&text);
    // The same object cut in the middle, as a dropped connection would leave it.
    let cut = whole[..whole.len() / 2].to_vec();
    let read = |bytes: Vec<u8>| async {
        let store = Memory(HashMap::from([(key.clone(), bytes)]));
        let out = Shared::default();
        let result = forward_object(
            &store,
            &object(&key),
            WriteSink::new(out.clone()),
            Output::default(),
        )
        .await;
        (result.is_ok(), out.lines())
    };
    let (cut_ok, cut_lines) = read(cut).await;
    let (whole_ok, whole_lines) = read(whole).await;
    assert!(!cut_ok && whole_ok);
    let last = cut_lines.last().expect("records before the cut were sent");
    assert_eq!(last["truncated"], true, "{last}");
    let cut_id = last["id"].as_str().unwrap();
    assert!(cut_id.ends_with("-cut"), "{cut_id}");
    // The whole record at the same position has the plain id; every other record agrees.
    let at = cut_lines.len() - 1;
    let whole_id = whole_lines[at]["id"].as_str().unwrap();
    assert_eq!(whole_id.len(), 32);
    assert_eq!(&cut_id[..32], whole_id);
    assert_ne!(cut_id, whole_id);
    for (c, w) in cut_lines[..at].iter().zip(&whole_lines) {
        assert_eq!(c, w, "records before the cut are the same records");
    }
}

/// Objects in memory, counting the `GetObject`s.
#[derive(Default)]
struct Counted(Memory, std::sync::atomic::AtomicUsize);

impl Fetch for Counted {
    async fn fetch(
        &self,
        object: &ObjectRef,
    ) -> Result<crate::ports::Fetched, crate::ports::FetchError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.fetch(object).await
    }
}

/// A state store in memory that remembers the order of its writes.
#[derive(Default)]
struct Ordered(crate::ports::memory::MemoryStore, Mutex<Vec<String>>);

impl crate::ports::StateStore for Ordered {
    fn get<'a>(
        &'a self,
        key: &'a str,
    ) -> crate::ports::BoxFuture<'a, Result<Option<crate::ports::Stored>, crate::ports::StateError>>
    {
        self.0.get(key)
    }
    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Vec<u8>,
        condition: crate::ports::Precondition,
    ) -> crate::ports::BoxFuture<'a, Result<String, crate::ports::StateError>> {
        self.1.lock().unwrap().push(key.to_string());
        self.0.put(key, body, condition)
    }
    fn list<'a>(
        &'a self,
        prefix: &'a str,
        max: usize,
    ) -> crate::ports::BoxFuture<'a, Result<Vec<String>, crate::ports::StateError>> {
        self.0.list(prefix, max)
    }
    fn location(&self, key: &str) -> String {
        self.0.location(key)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_log_is_read_once_and_its_sessions_are_written_before_it_is_marked_done() {
    // Two sessions, one of them closed, in the key's hour (2024-03-01T00).
    let text = "\
authenticated |Fri, 1 Mar 2024 00:10:00:001|10.0.0.1 |5439 |42|dev |alice |password |0|TLSv1.2 |x |0| | | |psql |l |d |none |0|s1
initiating session |Fri, 1 Mar 2024 00:10:00:003|10.0.0.1 |5439 |42|dev |alice |password |0|TLSv1.2 |x |0| | | |psql |l |d |none |0|s1
authenticated |Fri, 1 Mar 2024 00:11:00:001|[local] | |43|dev |rdsdb |Ident |0| | |0| | | | | | | |0|
disconnecting session |Fri, 1 Mar 2024 00:20:00:001|[local] | |43|dev |rdsdb |Ident |539000000| | |0| | | | | | | |0|
";
    let fetch = Counted(
        Memory(HashMap::from([(KEY.to_string(), gzip(text))])),
        Default::default(),
    );
    let state = Arc::new(Ordered::default());
    let clock = Arc::new(crate::ports::memory::ManualClock::new(1_709_300_000_000));
    let out = Shared::default();
    let mut forwarder = Forwarder::new(Filter::default(), fetch, || WriteSink::new(out.clone()));
    forwarder.sessions = Some(SessionStore::new(
        state.clone(),
        "state/",
        std::time::Duration::from_secs(1800),
        clock,
    ));
    let ledger = Ledger::new(state.clone(), "state/");
    let mut with_etag = object(KEY);
    with_etag.etag = Some("\"etag\"".into());
    let forwarded = forwarder
        .forward_once(&with_etag, Some(&ledger))
        .await
        .unwrap();
    let Forwarded::Sent(receipt) = forwarded else {
        panic!("{forwarded:?}");
    };
    assert_eq!(receipt.records, 4);
    assert_eq!(out.lines().len(), 4);
    assert_eq!(
        forwarder.fetch.1.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one GetObject serves the records and the sessions"
    );
    let traffic = receipt.session_state.unwrap();
    assert_eq!((traffic.writes, traffic.sessions), (1, 2));
    let writes = state.1.lock().unwrap().clone();
    let shard = writes
        .iter()
        .position(|k| {
            k.starts_with("state/sessions/123456789012/us-east-1/analytics-prod/2024-03-01T00/")
        })
        .unwrap_or_else(|| panic!("no shard written: {writes:?}"));
    let done = writes
        .iter()
        .position(|k| k.contains("done"))
        .unwrap_or_else(|| panic!("no done marker: {writes:?}"));
    assert!(shard < done, "{writes:?}");
}
