//! The metrics of one object: what its receipt says, as one embedded-metric document per object
//! forwarded, and one per object that failed or was skipped as done.

use serde_json::json;

use super::{ForwardError, Receipt};
use crate::metrics::{Document, Metric, Metrics};
use crate::ports::ObjectRef;
use crate::time::parse_rfc3339_ms;

/// Metric names of an object forwarded, as the README lists them.
pub mod name {
    pub const OBJECTS_SENT: &str = "ObjectsSent";
    pub const RECORDS: &str = "Records";
    pub const PARSE_ERRORS: &str = "ParseErrors";
    pub const REDACTED_RECORDS: &str = "RedactedRecords";
    pub const INPUT_BYTES: &str = "InputBytes";
    pub const TEXT_BYTES: &str = "TextBytes";
    pub const FIREHOSE_RECORDS: &str = "FirehoseRecords";
    pub const PAYLOAD_BYTES: &str = "PayloadBytes";
    pub const BILLED_BYTES: &str = "BilledBytes";
    pub const CALLS: &str = "FirehoseCalls";
    pub const RETRIES: &str = "FirehoseRetries";
    pub const LAG_SECONDS: &str = "LagSeconds";
    pub const BACKFILL_LAG_SECONDS: &str = "BackfillLagSeconds";
    pub const DURATION: &str = "ObjectDuration";
    pub const FAILED_OBJECTS: &str = "FailedObjects";
    pub const SKIPPED_DONE_OBJECTS: &str = "SkippedDoneObjects";
    pub const SET_ASIDE_OBJECTS: &str = "SetAsideObjects";
    pub const UNJOINED_RECORDS: &str = "UnjoinedRecords";
    pub const WAITING_OBJECTS: &str = "WaitingObjects";
}

/// Which path forwarded an object. Lag means different things: on the live path it is how far
/// delivery trails Redshift (the lag alarm watches it), on the backfill it is mostly the age of
/// history, so the two are separate metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Live,
    Backfill,
}

/// The document of an object forwarded at `now_ms`. Lag is from the file name's time (when
/// Redshift wrote the file, to the minute) to now, the moment every record was accepted.
pub fn receipt_document(receipt: &Receipt, now_ms: i64, via: Via) -> Document {
    let name = crate::key::parse_file_name(&receipt.key).ok();
    let mut metrics = vec![
        Metric::count(name::OBJECTS_SENT, 1),
        Metric::count(name::RECORDS, receipt.records),
        Metric::count(name::PARSE_ERRORS, receipt.parse_errors),
        Metric::count(name::REDACTED_RECORDS, receipt.redacted_records),
        Metric::bytes(name::INPUT_BYTES, receipt.object_bytes.unwrap_or(0)),
        Metric::bytes(name::TEXT_BYTES, receipt.text_bytes),
        Metric::count(name::FIREHOSE_RECORDS, receipt.sink.firehose_records),
        Metric::bytes(name::PAYLOAD_BYTES, receipt.sink.payload_bytes),
        Metric::bytes(name::BILLED_BYTES, receipt.sink.billed_bytes),
        Metric::count(name::CALLS, receipt.sink.calls),
        Metric::count(name::RETRIES, receipt.sink.retries),
        Metric::milliseconds(name::DURATION, receipt.duration_ms),
    ];
    if let Some(unjoined) = receipt.unjoined_records {
        // User activity records left without a session (the session join).
        metrics.push(Metric::count(name::UNJOINED_RECORDS, unjoined));
    }
    if let Some(file_ms) = name
        .as_ref()
        .and_then(|n| parse_rfc3339_ms(&n.file_time).ok())
    {
        let lag = match via {
            Via::Live => name::LAG_SECONDS,
            Via::Backfill => name::BACKFILL_LAG_SECONDS,
        };
        metrics.push(Metric::seconds(lag, (now_ms - file_ms).div_euclid(1000)));
    }
    let mut document = object_document(&receipt.bucket, &receipt.key, metrics);
    if document.log_type.is_none() {
        document.log_type = receipt.log_type.map(str::to_string);
    }
    document
}

/// The document of an object that could not be forwarded (or waits for its hour's sessions:
/// counted apart, so the failure alarm does not fire on an hour's logs arriving out of order).
pub fn failure_document(object: &ObjectRef, error: &ForwardError) -> Document {
    let counted = match error.is_waiting() {
        true => name::WAITING_OBJECTS,
        false => name::FAILED_OBJECTS,
    };
    let mut document =
        object_document(&object.bucket, &object.key, vec![Metric::count(counted, 1)]);
    document
        .properties
        .push(("retryable", json!(error.is_retryable())));
    document
}

/// The document of an object this attempt set aside (its failure is counted in
/// `FailedObjects` as well, by [`failure_document`]); the set-aside alarm watches it.
pub fn set_aside_document(object: &ObjectRef, aside: &crate::ledger::SetAside) -> Document {
    let mut document = object_document(
        &object.bucket,
        &object.key,
        vec![Metric::count(name::SET_ASIDE_OBJECTS, 1)],
    );
    document
        .properties
        .push(("attempts", json!(aside.attempts)));
    document
        .properties
        .push(("retryable", json!(aside.retryable)));
    document.properties.push(("via", json!(aside.via)));
    document
}

/// The document of an object the ledger holds as done (the live path skips it).
pub fn skipped_document(object: &ObjectRef) -> Document {
    object_document(
        &object.bucket,
        &object.key,
        vec![Metric::count(name::SKIPPED_DONE_OBJECTS, 1)],
    )
}

/// The document of a CloudWatch Logs batch the session join looked up (activity batches): its
/// `UnjoinedRecords`, the one metric a batch emits (a batch is not an object: none of the
/// object metrics apply).
pub fn batch_document(receipt: &super::batch::BatchReceipt) -> Option<Document> {
    let unjoined = receipt.unjoined_records?;
    let group = crate::cloudwatch::parse_log_group(&receipt.log_group).ok();
    Some(Document {
        log_type: Some(receipt.log_type.to_string()),
        cluster: group.map(|g| g.source_name().to_string()),
        properties: vec![
            ("log_group", json!(receipt.log_group)),
            ("log_stream", json!(receipt.log_stream)),
            ("account_id", json!(receipt.account_id)),
        ],
        metrics: vec![Metric::count(name::UNJOINED_RECORDS, unjoined)],
    })
}

/// Dimensions and fields from the key's file name, when it is one.
fn object_document(bucket: &str, key: &str, metrics: Vec<Metric>) -> Document {
    let name = crate::key::parse_file_name(key).ok();
    let mut properties = vec![("bucket", json!(bucket)), ("key", json!(key))];
    if let Some(n) = &name {
        properties.push(("account_id", json!(n.account_id)));
        properties.push(("region", json!(n.region)));
    }
    Document {
        log_type: name.as_ref().map(|n| n.log_type.as_str().to_string()),
        cluster: name.map(|n| n.cluster),
        properties,
        metrics,
    }
}

/// Emits the document of a forwarding's outcome.
pub fn emit_outcome(
    metrics: &Metrics,
    object: &ObjectRef,
    result: &Result<Receipt, ForwardError>,
    via: Via,
) {
    if !metrics.is_on() {
        return;
    }
    match result {
        Ok(receipt) => metrics.emit(&receipt_document(receipt, crate::time::now_ms(), via)),
        Err(e) => metrics.emit(&failure_document(object, e)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::Value;

    use super::*;
    use crate::events::Filter;
    use crate::forward::Forwarder;
    use crate::ports::memory::{ManualClock, MemoryBucket};
    use crate::sink::WriteSink;

    const KEY: &str = "AWSLogs/123456789012/redshift/us-east-1/2024/03/01/123456789012_redshift_us-east-1_prod_connectionlog_2024-03-01T00:53.gz";
    const LINE: &str = "authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | |";

    fn object(key: &str) -> ObjectRef {
        ObjectRef {
            bucket: "audit".into(),
            key: key.into(),
            size: None,
            etag: None,
            version_id: None,
            alternate_key: None,
        }
    }

    fn documents(lines: &std::sync::Mutex<Vec<String>>) -> Vec<Value> {
        lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| {
                assert!(!l.contains('\n'));
                serde_json::from_str(l).unwrap()
            })
            .collect()
    }

    #[tokio::test]
    async fn each_object_forwarded_has_one_document_matching_its_receipt() {
        let bucket = MemoryBucket::new(Arc::new(ManualClock::new(0)));
        bucket.put(KEY, &format!("{LINE}\n{LINE}\nnot a line\n"), 0);
        let mut forwarder =
            Forwarder::new(
                Filter::default(),
                bucket,
                || WriteSink::new(std::io::sink()),
            );
        let (metrics, lines) = Metrics::in_memory("RedshiftAuditForwarder", true);
        forwarder.metrics = metrics;
        let receipt = forwarder.forward(&object(KEY)).await.unwrap();
        let docs = documents(&lines);
        assert_eq!(docs.len(), 1);
        let doc = &docs[0];
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "RedshiftAuditForwarder");
        assert_eq!(
            directive["Dimensions"],
            json!([["LogType"], ["LogType", "Cluster"]])
        );
        assert!(doc["_aws"]["Timestamp"].as_i64().unwrap() > 1_700_000_000_000);
        let units: Vec<(String, String)> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["Name"].as_str().unwrap().to_string(),
                    m["Unit"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let unit = |n: &str| {
            units
                .iter()
                .find(|(name, _)| name == n)
                .map(|(_, u)| u.as_str())
        };
        for (metric, want_unit, want) in [
            (name::OBJECTS_SENT, "Count", 1),
            (name::RECORDS, "Count", receipt.records),
            (name::PARSE_ERRORS, "Count", receipt.parse_errors),
            (name::REDACTED_RECORDS, "Count", receipt.redacted_records),
            (name::INPUT_BYTES, "Bytes", receipt.object_bytes.unwrap()),
            (name::TEXT_BYTES, "Bytes", receipt.text_bytes),
            (
                name::FIREHOSE_RECORDS,
                "Count",
                receipt.sink.firehose_records,
            ),
            (name::PAYLOAD_BYTES, "Bytes", receipt.sink.payload_bytes),
            (name::BILLED_BYTES, "Bytes", receipt.sink.billed_bytes),
            (name::CALLS, "Count", receipt.sink.calls),
            (name::RETRIES, "Count", receipt.sink.retries),
            (name::DURATION, "Milliseconds", receipt.duration_ms),
        ] {
            assert_eq!(unit(metric), Some(want_unit), "{metric}");
            assert_eq!(doc[metric], want, "{metric}");
        }
        assert_eq!(receipt.records, 3);
        assert_eq!(receipt.parse_errors, 1);
        assert_eq!(doc["LogType"], "connectionlog");
        assert_eq!(doc["Cluster"], "prod");
        assert_eq!(doc["key"], KEY);
        assert_eq!(doc["account_id"], "123456789012");
        // Lag: from the file's time (2024-03-01T00:53Z) to now, in seconds.
        let lag = doc[name::LAG_SECONDS].as_i64().unwrap();
        let expected = (crate::time::now_ms() - 1_709_254_380_000) / 1000;
        assert!(
            (expected - 5..=expected).contains(&lag),
            "{lag} vs {expected}"
        );
        assert_eq!(unit(name::LAG_SECONDS), Some("Seconds"));
        assert!(units.len() <= crate::metrics::MAX_METRICS_PER_DOCUMENT);
        // The backfill's objects report their lag apart, so history never trips the lag alarm.
        forwarder.forward_quietly(&object(KEY)).await.unwrap();
        let docs = documents(&lines);
        assert!(docs[1].get(name::LAG_SECONDS).is_none());
        assert!(docs[1][name::BACKFILL_LAG_SECONDS].as_i64().unwrap() >= lag);
    }

    #[tokio::test]
    async fn a_failed_object_counts_as_failed_and_metrics_off_write_nothing() {
        let bucket = MemoryBucket::new(Arc::new(ManualClock::new(0)));
        let mut forwarder =
            Forwarder::new(
                Filter::default(),
                bucket,
                || WriteSink::new(std::io::sink()),
            );
        let (metrics, lines) = Metrics::in_memory("Ns", false);
        forwarder.metrics = metrics;
        assert!(forwarder.forward_quietly(&object(KEY)).await.is_err());
        let docs = documents(&lines);
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0][name::FAILED_OBJECTS], 1);
        assert_eq!(docs[0]["retryable"], false);
        assert_eq!(
            docs[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["LogType"]])
        );
        forwarder.metrics = Metrics::off();
        assert!(forwarder.forward_once(&object(KEY), None).await.is_err());
        assert_eq!(lines.lock().unwrap().len(), 1);
    }
}
