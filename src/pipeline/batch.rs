//! The loop for CloudWatch Logs subscription batches: the log events' messages go through the
//! audit log parsers as one text (`crate::cloudwatch::BatchParser`), each record is redacted
//! and rendered like a file's (split into parts when over the line limit), with the provenance
//! of the log event it starts in (`crate::output::LogEventOrigin`).

use std::cell::RefCell;

use super::{render, Counts, Input, Output, Spec, Stopped};
use crate::cloudwatch::{BatchParser, LogGroup, LogsData, Origin};
use crate::output::{LogEventOrigin, Provenance};
use crate::redact::redact_record;
use crate::sessions::{Builder, Index};

/// One run of the batch loop.
pub struct BatchSpec<'a> {
    /// The batch's log group, parsed (it gives the log type and the cluster or namespace).
    pub group: &'a LogGroup,
    pub output: Output,
    /// The function's region.
    pub region: Option<&'a str>,
    /// Longest line to emit: a longer record is split into parts; `None` writes records whole.
    pub max_line: Option<usize>,
    /// The sessions of the batch's cluster or namespace: user activity records are joined to
    /// theirs (`crate::sessions`); `None` leaves every record as it is.
    pub sessions: Option<&'a Index>,
    /// Takes the batch's connection-log records (before redaction, as a file's are read for
    /// its sessions), so the sessions come from the one pass that sends them.
    pub collect: Option<&'a RefCell<Builder>>,
}

/// Runs the parsers over a batch's messages and emits every record; `lines` counts the lines
/// of text and `text_bytes` the bytes of the messages. Returns the counts in every case.
pub fn run_batch(
    data: &LogsData,
    spec: &BatchSpec<'_>,
    emit: &mut dyn FnMut(&[u8]) -> bool,
) -> (Counts, Result<(), Stopped>) {
    let group = spec.group;
    let (cluster, namespace) = match &group.origin {
        Origin::Cluster(c) => (Some(c.as_str()), None),
        Origin::Namespace(n) => (None, Some(n.as_str())),
    };
    let mut provenance = Provenance::for_log_events(&LogEventOrigin {
        log_type: group.log_type,
        log_group: &group.name,
        log_stream: &data.log_stream,
        account_id: &data.owner,
        region: spec.region,
        cluster,
        namespace,
    });
    let mut counts = Counts {
        text_bytes: data.log_events.iter().map(|e| e.message.len() as u64).sum(),
        ..Counts::default()
    };
    let mut parser = BatchParser::new(group.log_type, &data.log_events);
    let mut buf = Vec::new();
    let mut scratch = String::new();
    // (log event index, batch_end) the provenance was last set for.
    let mut at: Option<(usize, bool)> = None;
    let result = loop {
        let (record, position) = match parser.next_record() {
            Ok(Some(next)) => next,
            Ok(None) => break Ok(()),
            Err(e) => break Err(Stopped::Read(e)),
        };
        if at != Some((position.index, position.batch_end)) {
            let timestamp = data
                .log_events
                .get(position.index)
                .map_or(0, |e| e.timestamp);
            provenance.set_log_event(position.event_id, timestamp, position.batch_end);
            at = Some((position.index, position.batch_end));
        }
        counts.lines = counts.lines.max(record.line);
        let mut record = record;
        record.ordinal = position.ordinal;
        if let Some(builder) = spec.collect {
            builder.borrow_mut().add(&record);
        }
        let record = if spec.output.redact {
            redact_record(record, &mut scratch)
        } else {
            record
        };
        counts.count(&record);
        let file_spec = Spec {
            input: Input::AuditLog(group.log_type),
            output: spec.output,
            provenance: &provenance,
            max_line: spec.max_line,
            sessions: spec.sessions,
            collect: None,
        };
        let join = file_spec.join(&record);
        counts.count_join(join);
        if !render(&record, &file_spec, &mut buf, &mut counts, join, emit) {
            break Err(Stopped::Emit);
        }
    };
    (counts, result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudwatch::{parse_log_group, CloudWatchProvenance, LogEvent};
    use crate::output::Format;

    const CONN: &str = "authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | |";

    fn data(group: &str, messages: &[&str]) -> LogsData {
        LogsData {
            message_type: "DATA_MESSAGE".into(),
            owner: "123456789012".into(),
            log_group: group.into(),
            log_stream: "stream-1".into(),
            subscription_filters: vec!["f".into()],
            log_events: messages
                .iter()
                .enumerate()
                .map(|(i, m)| LogEvent {
                    id: format!("3700000000000000000000000000000000000000000000000{i}"),
                    timestamp: 1_607_371_315_177 + i as i64,
                    message: m.to_string(),
                })
                .collect(),
        }
    }

    fn run_on(data: &LogsData, format: Format) -> (Counts, Vec<serde_json::Value>) {
        let group = parse_log_group(&data.log_group).unwrap();
        let spec = BatchSpec {
            group: &group,
            output: Output {
                format,
                redact: true,
                ..Output::default()
            },
            region: Some("us-east-1"),
            max_line: Some(1_000_000),
            sessions: None,
            collect: None,
        };
        let mut lines = Vec::new();
        let (counts, result) = run_batch(data, &spec, &mut |l| {
            lines.push(serde_json::from_slice(l).unwrap());
            true
        });
        assert!(result.is_ok());
        (counts, lines)
    }

    #[test]
    fn records_carry_the_log_event_they_start_in_and_the_cloudwatch_id() {
        let batch = data(
            "/aws/redshift/cluster/prod/connectionlog",
            &[&format!("{CONN}\n{CONN}"), CONN],
        );
        let (counts, lines) = run_on(&batch, Format::Raw);
        assert_eq!((counts.records, lines.len()), (3, 3));
        let group = parse_log_group(&batch.log_group).unwrap();
        let expected =
            CloudWatchProvenance::new(&group, "123456789012", Some("us-east-1"), "stream-1");
        for (line, (event, ordinal)) in lines.iter().zip([(0, 0), (0, 1), (1, 0)]) {
            let id = &batch.log_events[event].id;
            assert_eq!(line["source"]["event_id"], id.as_str());
            assert_eq!(line["source"]["log_group"], batch.log_group.as_str());
            assert_eq!(line["cluster"], "prod");
            assert_eq!(line["account_id"], "123456789012");
            let want = expected.record_id(id, ordinal);
            assert_eq!(line["id"].as_str().unwrap().as_bytes(), &want[..]);
        }
    }

    #[test]
    fn raw_records_end_with_the_cloudwatch_provenance_members() {
        let batch = data(
            "/aws/redshift/work/userlog",
            &["2020-12-07 20:01:55 | u | 1 | create | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0"],
        );
        let group = parse_log_group(&batch.log_group).unwrap();
        let spec = BatchSpec {
            group: &group,
            output: Output::default(),
            region: Some("eu-west-1"),
            max_line: None,
            sessions: None,
            collect: None,
        };
        let mut out = Vec::new();
        let (_, result) = run_batch(&batch, &spec, &mut |l| {
            out = l.to_vec();
            true
        });
        assert!(result.is_ok());
        let mut tail = Vec::new();
        let position = crate::cloudwatch::EventPosition {
            index: 0,
            event_id: &batch.log_events[0].id,
            ordinal: 0,
            batch_end: false,
        };
        CloudWatchProvenance::new(&group, "123456789012", Some("eu-west-1"), "stream-1")
            .write_fields(&mut tail, &position);
        tail.push(b'}');
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with(std::str::from_utf8(&tail).unwrap()),
            "{text}"
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["namespace"], "work");
        assert_eq!(v["cluster"], serde_json::Value::Null);
    }

    #[test]
    fn ocsf_events_take_the_owner_region_and_log_event_source() {
        let batch = data("/aws/redshift/cluster/prod/connectionlog", &[CONN]);
        let (_, lines) = run_on(&batch, Format::Ocsf);
        let e = &lines[0];
        assert_eq!(e["class_uid"], 3002);
        assert_eq!(e["cloud"]["account"]["uid"], "123456789012");
        assert_eq!(e["cloud"]["region"], "us-east-1");
        assert_eq!(e["unmapped"]["source"]["log_stream"], "stream-1");
        assert_eq!(e["unmapped"]["cluster"], "prod");
        assert_eq!(e["dst_endpoint"]["name"], "prod");
    }

    #[test]
    fn a_statement_across_log_events_is_one_record_and_the_last_is_flagged() {
        let batch = data(
            "/aws/redshift/cluster/prod/useractivitylog",
            &[
                "'2020-12-07T20:01:55Z UTC [ db=dev user=rdsdb pid=1 userid=1 xid=2 ]' LOG: select 1",
                "from t where password = 'x';",
                "'2020-12-07T20:01:56Z UTC [ db=dev user=rdsdb pid=1 userid=1 xid=3 ]' LOG: select",
            ],
        );
        let (counts, lines) = run_on(&batch, Format::Raw);
        assert_eq!(counts.records, 2);
        assert!(
            lines[0]["query"].as_str().unwrap().contains("from t"),
            "{}",
            lines[0]
        );
        assert_eq!(lines[0].get("batch_end"), None);
        assert_eq!(lines[1]["batch_end"], true);
        assert_eq!(
            lines[1]["source"]["event_id"],
            batch.log_events[2].id.as_str()
        );
    }
}
