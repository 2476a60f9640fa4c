use std::sync::atomic::Ordering;

use super::memory::Fault;
use super::*;

fn line(i: usize, time: i64) -> String {
    // Text that does not compress: objects of several parts at small part sizes.
    let noise: String = (0..6u64)
        .map(|k| {
            format!(
                "{:016x}",
                xxhash_rust::xxh3::xxh3_64(&((i as u64) * 8 + k).to_le_bytes())
            )
        })
        .collect();
    format!(
        r#"{{"metadata":{{"version":"1.1.0","uid":"id{i}"}},"cloud":{{"provider":"AWS","account":{{"uid":"123456789012"}},"region":"us-east-1"}},"class_uid":3002,"time":{time},"user":{{"name":"{noise}"}}}}"#
    )
}

fn locations() -> Arc<Vec<Location>> {
    Arc::new(
        Class::ALL
            .iter()
            .map(|&class| Location {
                class,
                bucket: "lake".into(),
                prefix: format!("ext/{}/1.0/", class.name()),
            })
            .collect(),
    )
}

fn small_groups() -> Limits {
    Limits {
        row_group_bytes: 32 * 1024,
        ..Limits::default()
    }
}

const DAY: i64 = 86_400_000;

/// Sends `lines` through a fresh sink; the result of `finish`.
async fn run(
    store: &Arc<MemoryLake>,
    lines: &[String],
    part: usize,
) -> Result<SinkStats, SinkError> {
    let mut sink = LakeSink::new(store.clone(), locations())
        .with_part_bytes(part)
        .with_limits(small_groups());
    sink.begin(&["audit", "AWSLogs/x/connectionlog.gz", "\"etag\""]);
    for l in lines {
        sink.send(l).await?;
        assert_eq!(
            sink.accepted(),
            Accepted::default(),
            "nothing is accepted before the end"
        );
    }
    sink.finish().await
}

fn lines(n: usize) -> Vec<String> {
    // Across midnight: two objects.
    (0..n)
        .map(|i| line(i, 20 * DAY - 1000 + i as i64 * 10))
        .collect()
}

#[tokio::test]
async fn small_objects_go_up_in_one_put_under_their_partition() {
    let store = Arc::new(MemoryLake::default());
    let stats = run(&store, &lines(200), PART_BYTES).await.unwrap();
    let keys: Vec<String> = store.objects().into_keys().map(|(_, k)| k).collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys[0].starts_with("ext/authentication/1.0/region=us-east-1/accountId=123456789012/eventDay=19700120/connectionlog-"), "{keys:?}");
    assert!(keys[1].contains("/eventDay=19700121/"), "{keys:?}");
    let lake = stats.lake.unwrap();
    assert_eq!((lake.lake_rows, lake.lake_objects), (200, 2));
    assert_eq!(stats.calls, 2);
    assert_eq!(store.open_uploads(), 0);
}

#[tokio::test]
async fn large_objects_go_up_in_parts_and_read_back_the_same_as_one_put() {
    let (one, parts) = (
        Arc::new(MemoryLake::default()),
        Arc::new(MemoryLake::default()),
    );
    let input = lines(3000);
    run(&one, &input, PART_BYTES).await.unwrap();
    let stats = run(&parts, &input, 16 * 1024).await.unwrap();
    assert!(stats.calls > 6, "{stats:?}");
    assert_eq!(one.objects(), parts.objects());
    assert_eq!(parts.open_uploads(), 0);
}

#[tokio::test]
async fn a_failed_call_aborts_every_upload_and_the_retry_leaves_a_clean_runs_objects() {
    let (big, small) = (lines(3000), lines(100));
    for (fault, n, input, part) in [
        (Fault::Create, 1, &big, 16 * 1024),
        (Fault::Part, 3, &big, 16 * 1024),
        (Fault::CompleteLost, 1, &big, 16 * 1024),
        (Fault::Put, 0, &small, PART_BYTES),
    ] {
        let clean = Arc::new(MemoryLake::default());
        run(&clean, input, part).await.unwrap();
        let store = Arc::new(MemoryLake::default());
        store.fail(fault, n);
        let e = run(&store, input, part).await.unwrap_err();
        assert!(e.is_retryable(), "{fault:?}: {e}");
        assert_eq!(store.open_uploads(), 0, "{fault:?}: no parts left behind");
        run(&store, input, part).await.unwrap();
        assert_eq!(store.objects(), clean.objects(), "{fault:?}");
    }
}

#[tokio::test]
async fn a_stop_keeps_nothing_and_says_nothing_was_accepted() {
    let store = Arc::new(MemoryLake::default());
    let mut sink = LakeSink::new(store.clone(), locations())
        .with_part_bytes(16 * 1024)
        .with_limits(small_groups());
    sink.begin(&["b", "k", "e"]);
    for l in lines(2000) {
        sink.send(l).await.unwrap();
    }
    let (_, accepted) = sink.stop().await.unwrap();
    assert_eq!(accepted, Accepted::default());
    assert!(store.objects().is_empty());
    assert_eq!(store.open_uploads(), 0);
    assert!(store.aborted.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn a_class_without_a_location_fails_the_input_for_good() {
    let store = Arc::new(MemoryLake::default());
    let only_base = Arc::new(vec![Location {
        class: Class::BaseEvent,
        bucket: "lake".into(),
        prefix: String::new(),
    }]);
    let mut sink = LakeSink::new(store.clone(), only_base);
    sink.begin(&["b", "k", "e"]);
    let e = sink.send(line(1, 5)).await.unwrap_err();
    assert!(!e.is_retryable());
    assert!(
        e.to_string().contains("authentication has no source"),
        "{e}"
    );
}

/// A Firehose stand-in whose last flush fails.
struct FailingFinish;

impl Sink for FailingFinish {
    async fn send<T>(&mut self, _line: T) -> Result<(), SinkError>
    where
        T: AsRef<[u8]> + Send,
    {
        Ok(())
    }

    async fn finish(self) -> Result<SinkStats, SinkError> {
        Err(SinkError::Internal("the last PutRecordBatch failed".into()))
    }

    fn accepted(&self) -> Accepted {
        Accepted::default()
    }
}

#[tokio::test]
async fn with_both_destinations_a_failed_firehose_leaves_no_object_in_the_lake() {
    let store = Arc::new(MemoryLake::default());
    let lake = LakeSink::new(store.clone(), locations())
        .with_part_bytes(16 * 1024)
        .with_limits(small_groups());
    let mut both = crate::sink::destinations::Destinations::Both(FailingFinish, lake);
    both.begin(&["b", "k", "e"]);
    for l in lines(2000) {
        both.send(l).await.unwrap();
    }
    assert!(both.finish().await.is_err());
    assert!(store.objects().is_empty(), "{:?}", store.objects().keys());
    assert_eq!(store.open_uploads(), 0);
}

/// With both destinations the lines are rendered to Firehose's limit: a record over it arrives
/// as parts, which the lake joins back into one row holding the whole statement.
#[tokio::test]
async fn parts_of_a_record_split_for_firehose_are_one_row_in_the_lake() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let store = Arc::new(MemoryLake::default());
    let mut sink = LakeSink::new(store.clone(), locations()).with_parts_joined();
    sink.begin(&["audit", "AWSLogs/x/useractivitylog.gz", "\"etag\""]);
    let piece = |c: char| c.to_string().repeat(600 * 1024);
    let part = |i: u64, c: char| {
        format!(
            r#"{{"metadata":{{"uid":"big"}},"cloud":{{"provider":"AWS","account":{{"uid":"123456789012"}},"region":"us-east-1"}},"class_uid":6005,"time":5,"query_info":{{"query_string":"{}"}},"unmapped":{{"pid":1,"part":{i},"parts":3}}}}"#,
            piece(c)
        )
    };
    for line in [
        part(1, 'a'),
        part(2, 'b'),
        part(3, 'c'),
        r#"{"metadata":{"uid":"small"},"cloud":{"provider":"AWS","account":{"uid":"123456789012"},"region":"us-east-1"},"class_uid":6005,"time":6}"#.to_string(),
    ] {
        sink.send(line).await.unwrap();
    }
    let stats = sink.finish().await.unwrap();
    assert_eq!(stats.lines, 4);
    assert_eq!(stats.lake.unwrap().lake_rows, 2);
    let objects = store.objects();
    assert_eq!(objects.len(), 1);
    let bytes = objects.values().next().unwrap().clone();
    let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
    let rows: Vec<serde_json::Value> = reader
        .get_row_iter(None)
        .unwrap()
        .map(|r| r.unwrap().to_json_value())
        .collect();
    assert_eq!(rows.len(), 2);
    let text = rows[0]["query_info"]["query_string"].as_str().unwrap();
    assert_eq!(text, format!("{}{}{}", piece('a'), piece('b'), piece('c')));
    assert_eq!(rows[0]["unmapped"], serde_json::json!({"pid": "1"}));
    assert_eq!(rows[1]["metadata"]["uid"], "small");
}
