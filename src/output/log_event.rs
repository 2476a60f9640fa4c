//! The provenance of records that come from CloudWatch Logs log events instead of a file: the
//! same writers (`raw` and OCSF), with `source` `{"log_group", "log_stream", "event_id"}`.
//!
//! A [`Provenance`] is built once per batch ([`Provenance::for_log_events`]) and told which log
//! event the next records start in ([`Provenance::set_log_event`]); the caller sets each
//! record's `ordinal` to its position among the records starting in that log event. The bytes
//! are those `crate::cloudwatch::CloudWatchProvenance::write_fields` writes: `raw` records end
//! with `,"log_type":…,"account_id":<owner>,"region":…,"cluster":…[,"namespace":…],
//! "file_time":null[,"batch_end":true],"source":{"log_group":…,"log_stream":…,"event_id":…},
//! "id":…}`, and `id` is XXH3-128 of `log_group \0 log_stream \0 event_id \0 ordinal` (the
//! file hash with the group as bucket and `stream \0 event_id` as key). OCSF events carry the
//! owner and region under `cloud`, the source, cluster or namespace and `batch_end` under
//! `unmapped`, and a record without a time of its own takes its log event's timestamp.

use super::json::{write_opt_str, write_str as write_json_str};
use super::Provenance;
use crate::logs::LogType;
use crate::mask::{clean, FIELD_BYTES};

/// Writes a name from the batch (group, stream, owner, event id) as a JSON string: masked and
/// bounded like any input text that leaves (`crate::mask::clean`); ids hash the name as sent.
fn write_str(out: &mut Vec<u8>, text: &str) {
    let clean = clean(text, FIELD_BYTES);
    match clean.whole_bytes {
        // Nothing cut: the (possibly masked) text as it is, no copy.
        None => write_json_str(out, &clean.text),
        Some(_) => write_json_str(out, &clean.to_string()),
    }
}

fn opt_str(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => write_str(out, text),
        None => write_opt_str(out, None),
    }
}

/// Where a CloudWatch Logs batch came from.
#[derive(Debug, Clone, Copy)]
pub struct LogEventOrigin<'a> {
    pub log_type: LogType,
    pub log_group: &'a str,
    pub log_stream: &'a str,
    /// The batch's `owner`.
    pub account_id: &'a str,
    /// The function's region.
    pub region: Option<&'a str>,
    /// The cluster of a provisioned cluster's group.
    pub cluster: Option<&'a str>,
    /// The namespace of a Redshift Serverless group.
    pub namespace: Option<&'a str>,
}

/// The fixed pieces, rendered once per batch.
#[derive(Debug, Clone)]
pub(super) struct Parts {
    /// `,"log_type":…,"file_time":null`
    head: Vec<u8>,
    /// `,"source":{"log_group":…,"log_stream":…,"event_id":`
    source: Vec<u8>,
    /// `log_group \0 log_stream \0`
    id_prefix: Vec<u8>,
    /// `,"cluster":…` or `,"namespace":…` (OCSF `unmapped`)
    origin: Vec<u8>,
}

impl Provenance {
    /// The provenance of a CloudWatch Logs batch's records; call [`Provenance::set_log_event`]
    /// before the first record.
    pub fn for_log_events(origin: &LogEventOrigin<'_>) -> Self {
        let mut provenance = Provenance::new(origin.log_type, None, None, "");
        let mut head = Vec::with_capacity(256);
        head.extend_from_slice(b",\"log_type\":");
        write_str(&mut head, origin.log_type.as_str());
        head.extend_from_slice(b",\"account_id\":");
        write_str(&mut head, origin.account_id);
        head.extend_from_slice(b",\"region\":");
        opt_str(&mut head, origin.region);
        head.extend_from_slice(b",\"cluster\":");
        opt_str(&mut head, origin.cluster);
        let mut unmapped_origin = Vec::new();
        if let Some(cluster) = origin.cluster {
            unmapped_origin.extend_from_slice(b",\"cluster\":");
            write_str(&mut unmapped_origin, cluster);
        }
        if let Some(namespace) = origin.namespace {
            head.extend_from_slice(b",\"namespace\":");
            write_str(&mut head, namespace);
            unmapped_origin.extend_from_slice(b",\"namespace\":");
            write_str(&mut unmapped_origin, namespace);
        }
        head.extend_from_slice(b",\"file_time\":null");
        let mut source = Vec::with_capacity(128);
        source.extend_from_slice(b",\"source\":{\"log_group\":");
        write_str(&mut source, origin.log_group);
        source.extend_from_slice(b",\"log_stream\":");
        write_str(&mut source, origin.log_stream);
        source.extend_from_slice(b",\"event_id\":");
        let mut id_prefix = Vec::with_capacity(origin.log_group.len() + origin.log_stream.len());
        id_prefix.extend_from_slice(origin.log_group.as_bytes());
        id_prefix.push(0);
        id_prefix.extend_from_slice(origin.log_stream.as_bytes());
        id_prefix.push(0);

        let mut cloud = b"\"},\"cloud\":{\"provider\":\"AWS\",\"account\":{\"uid\":".to_vec();
        write_str(&mut cloud, origin.account_id);
        cloud.push(b'}');
        if let Some(region) = origin.region {
            cloud.extend_from_slice(b",\"region\":");
            write_str(&mut cloud, region);
        }
        cloud.push(b'}');
        provenance.ocsf.cloud = cloud;
        provenance.ocsf.cluster = origin
            .cluster
            .or(origin.namespace)
            .map(|c| clean(c, FIELD_BYTES).to_string());
        provenance.line_in_source = false;
        provenance.log_events = Some(Box::new(Parts {
            head,
            source,
            id_prefix,
            origin: unmapped_origin,
        }));
        provenance.set_log_event("", 0, false);
        provenance
    }

    /// The records that follow start in the log event `event_id`, stamped `timestamp_ms`;
    /// `batch_end` flags the batch's last, possibly unfinished, statement. Does nothing to a
    /// file's provenance.
    pub fn set_log_event(&mut self, event_id: &str, timestamp_ms: i64, batch_end: bool) {
        let Some(parts) = &self.log_events else {
            return;
        };
        self.head.clear();
        self.head.extend_from_slice(&parts.head);
        if batch_end {
            self.head.extend_from_slice(b",\"batch_end\":true");
        }
        self.head.extend_from_slice(&parts.source);
        write_str(&mut self.head, event_id);

        self.ids
            .reset(&[&parts.id_prefix, event_id.as_bytes(), b"\0"]);

        let ocsf = &mut self.ocsf;
        ocsf.source.clear();
        ocsf.source
            .extend_from_slice(b",\"unmapped\":{\"source\":{\"log_group\":");
        // `parts.source` is `,"source":{"log_group":…`: reuse its members after the key.
        let members = &parts.source[b",\"source\":{\"log_group\":".len()..];
        ocsf.source.extend_from_slice(members);
        write_str(&mut ocsf.source, event_id);
        ocsf.file.clear();
        ocsf.file.push(b'}');
        ocsf.file.extend_from_slice(&parts.origin);
        if batch_end {
            ocsf.file.extend_from_slice(b",\"batch_end\":true");
        }
        ocsf.file_time_ms = Some(timestamp_ms);
    }
}
