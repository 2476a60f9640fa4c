//! Generated audit files for the fan-out and Batch Operations tests: a few unique lines each,
//! partition days relative to today (the walk lists up to today), and what `parse` gives for them.

use redshift_audit_forwarder::backfill::{day_label, MS_PER_DAY};
use redshift_audit_forwarder::key::parse_file_name;
use redshift_audit_forwarder::output::Provenance;
use serde_json::Value;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
pub const TREE: &str = "AWSLogs/123456789012/redshift/us-east-1/";
pub const CLUSTER: &str = "analytics-prod";
pub use crate::common::log_time::{HOUR, MINUTE};
pub const LOG_TYPES: [&str; 3] = ["connectionlog", "userlog", "useractivitylog"];

/// One generated audit log file.
#[derive(Debug, Clone)]
pub struct LogFile {
    pub key: String,
    pub gz: Vec<u8>,
}

use crate::common::log_time::{iso_time, log_time};
pub use crate::common::log_time::{now_ms, today};

/// `lines` records from the 20 minutes before the file's time, each line unique to the file.
pub fn log_text(log_type: &str, file_ms: i64, seq: u64, lines: u64) -> String {
    let mut text = String::new();
    for i in 0..lines {
        let t = file_ms - 20 * MINUTE + (i as i64 % 20) * MINUTE + 1234;
        let pid = 10_000 + seq * 1000 + i;
        let line = match log_type {
            "connectionlog" => format!(
                "authenticated |{}|::ffff:10.0.{}.{} |{} |{pid}|dev |alice |password |0|TLSv1.2 |ECDHE-RSA-AES256-GCM-SHA384 |0| | | | |Linux |JDBC 2.1 |none |0|{seq:08x}-0000-4000-8000-{i:012x}",
                log_time(t), seq % 250, i % 250, 40_000 + i % 20_000
            ),
            "userlog" => format!(
                "{}|user{seq} | |alter |1|0|0|9223372036854775807|{pid}|{}|{}",
                100 + i,
                5_000 + seq,
                log_time(t)
            ),
            _ => format!(
                "'{} UTC [ db=dev user=alice pid={pid} userid=100 xid={} ]' LOG: SELECT {seq} AS file,\n  {i} AS line;",
                iso_time(t),
                900_000 + seq * 1000 + i
            ),
        };
        text.push_str(&line);
        text.push('\n');
    }
    text
}

/// The key of a Redshift audit file of `file_ms` under [`TREE`].
pub fn log_key(log_type: &str, file_ms: i64) -> String {
    let day = file_ms.div_euclid(MS_PER_DAY);
    let (y, m, d) = redshift_audit_forwarder::time::date_of_day(day).unwrap();
    let rem = file_ms.rem_euclid(MS_PER_DAY);
    format!(
        "{TREE}{y:04}/{m:02}/{d:02}/{ACCOUNT}_redshift_{REGION}_{CLUSTER}_{log_type}_{}T{:02}:{:02}.gz",
        day_label(day),
        rem / HOUR,
        rem / MINUTE % 60
    )
}

/// One file of `lines` records.
pub fn log_file(log_type: &str, file_ms: i64, lines: u64) -> LogFile {
    let key = log_key(log_type, file_ms);
    // The key's hash keeps every file's lines unique.
    let seq = key
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        % 1_000_000;
    LogFile {
        gz: crate::common::gzip(&log_text(log_type, file_ms, seq, lines)),
        key,
    }
}

/// Files for each day x hour x log type, in time order, `lines` records each.
pub fn corpus(days: impl IntoIterator<Item = i64>, hours: &[i64], lines: u64) -> Vec<LogFile> {
    let mut files = Vec::new();
    for day in days {
        for hour in hours {
            for log_type in LOG_TYPES {
                files.push(log_file(log_type, day * MS_PER_DAY + hour * HOUR, lines));
            }
        }
    }
    files
}

/// What `parse` gives for the files, without `source.bucket` and `id`, sorted.
pub fn expected(files: &[&LogFile]) -> Vec<Value> {
    let mut records = Vec::new();
    for file in files {
        let name = parse_file_name(&file.key).expect("generated names parse");
        let provenance = Provenance::new(name.log_type, Some(&name), None, &file.key);
        let mut out = Vec::new();
        redshift_audit_forwarder::cli::parse_stream(
            Box::new(std::io::Cursor::new(file.gz.clone())),
            name.log_type,
            redshift_audit_forwarder::pipeline::Output::default(),
            &provenance,
            &mut out,
        )
        .expect("generated files parse");
        for line in out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let record: Value = serde_json::from_slice(line).expect("parse writes JSON");
            assert!(record.get("parse_error").is_none(), "{record}");
            records.push(comparable(record));
        }
    }
    sort(records)
}

/// A record without the two fields that depend on the bucket (`source.bucket`, `id`).
pub fn comparable(mut record: Value) -> Value {
    if let Some(map) = record.as_object_mut() {
        map.remove("id");
        if let Some(source) = map.get_mut("source").and_then(Value::as_object_mut) {
            source.remove("bucket");
        }
    }
    record
}

pub fn sort(mut records: Vec<Value>) -> Vec<Value> {
    records.sort_by_cached_key(|r| r.to_string());
    records
}
