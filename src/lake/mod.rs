//! Amazon Security Lake objects: the `ocsf` lines of one input as Parquet (zstd), one fixed
//! schema per OCSF class, partitioned as the lake expects. No AWS and no I/O here: the writer
//! hands out the bytes of each object as they are ready, and the caller puts them in a directory
//! (`parse --format parquet`, [`local`]) or in S3 (the lake sink, `sink/lake.rs`).
//!
//! - [`Class`]: the five classes the forwarder writes, by the names `SECURITY_LAKE_SOURCES` uses.
//! - `schema.rs`: the fixed schema of each class; `scan.rs`: JSON scanning and [`peek`];
//!   `shred.rs`: a line written straight into its class's column buffers in one pass.
//! - `writer.rs`: lines routed by (class, region, account, day) to a Parquet writer each;
//!   `encode.rs`: the buffered rows encoded as a row group once they fill one.
//! - `parts.rs`: records split into parts for Firehose joined back into one row (both
//!   destinations).
//! - [`object_name`] and [`Partition::path`]: where an object goes, named from its input so that
//!   a retry writes the same keys again.

mod encode;
pub mod local;
pub mod parts;
mod scan;
pub mod schema;
mod shred;
mod writer;

pub use scan::{peek, Malformed};
pub use writer::{Chunk, LakeError, LakeStats, LakeWriter, Limits, ObjectId};

/// The OCSF classes of the `ocsf` format, one Security Lake custom source each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    BaseEvent = 0,
    Authentication = 1,
    AccountChange = 2,
    DatastoreActivity = 3,
    ApiActivity = 4,
}

impl Class {
    pub const ALL: [Class; 5] = [
        Class::BaseEvent,
        Class::Authentication,
        Class::AccountChange,
        Class::DatastoreActivity,
        Class::ApiActivity,
    ];

    /// The name in `SECURITY_LAKE_SOURCES`, in local paths and in Security Lake's
    /// `--event-classes`-style names (upper-cased there).
    pub fn name(self) -> &'static str {
        match self {
            Class::BaseEvent => "base_event",
            Class::Authentication => "authentication",
            Class::AccountChange => "account_change",
            Class::DatastoreActivity => "datastore_activity",
            Class::ApiActivity => "api_activity",
        }
    }

    pub fn uid(self) -> i64 {
        match self {
            Class::BaseEvent => 0,
            Class::Authentication => 3002,
            Class::AccountChange => 3001,
            Class::DatastoreActivity => 6005,
            Class::ApiActivity => 6003,
        }
    }

    pub fn from_uid(uid: i64) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.uid() == uid)
    }

    pub fn from_name(name: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// Where an object goes below its source's location: the lake's partitions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    pub class: Class,
    pub region: String,
    pub account: String,
    /// `YYYYMMDD`, the UTC day of the records' `time`.
    pub day: String,
}

/// Partition value for a record that does not say its region or account (a file parsed with
/// `--log-type` under another name).
pub const UNKNOWN: &str = "unknown";

impl Partition {
    /// `region=<region>/accountId=<account>/eventDay=<YYYYMMDD>/`
    pub fn path(&self) -> String {
        format!(
            "region={}/accountId={}/eventDay={}/",
            self.region, self.account, self.day
        )
    }
}

/// `YYYYMMDD` of an epoch-milliseconds time (UTC).
pub fn event_day(ms: i64) -> String {
    match crate::time::date_of_day(crate::time::day_of(ms)) {
        Some((y, m, d)) if y >= 0 => format!("{y:04}{m:02}{d:02}"),
        _ => "00000000".to_string(),
    }
}

/// A partition value as it can stand in a key: what is not a letter, digit, `-`, `_` or `.`
/// becomes `_` (region and account ids never have such characters; a hostile file could).
fn partition_value(text: Option<&str>) -> String {
    match text {
        Some(t) if !t.is_empty() => t
            .chars()
            .take(64)
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect(),
        _ => UNKNOWN.to_string(),
    }
}

/// The file name of the objects of one input: its last key segment (letters, digits, `-`, `_`,
/// `.` kept, at most 100 characters) and a hash of everything that identifies the input (for an
/// S3 object: bucket, key, ETag; for a CloudWatch Logs batch: group, stream, first event id).
/// The same input gives the same name, so a retry overwrites what an earlier attempt wrote.
pub fn object_name(identity: &[&str]) -> String {
    let last = identity
        .get(1)
        .or(identity.first())
        .map_or("", |k| k.rsplit('/').next().unwrap_or(k));
    let stem: String = last
        .trim_end_matches(".gz")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for part in identity {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    format!("{stem}-{:016x}.parquet", h.digest())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_trip_by_name_and_uid() {
        for c in Class::ALL {
            assert_eq!(Class::from_name(c.name()), Some(c));
            assert_eq!(Class::from_uid(c.uid()), Some(c));
        }
        assert_eq!(Class::from_name("network_activity"), None);
        assert_eq!(Class::from_uid(4001), None);
    }

    #[test]
    fn names_are_deterministic_and_differ_by_etag() {
        let a = object_name(&["b", "AWSLogs/1/x_connectionlog_2024.gz", "e1"]);
        assert_eq!(
            a,
            object_name(&["b", "AWSLogs/1/x_connectionlog_2024.gz", "e1"])
        );
        assert!(a.starts_with("x_connectionlog_2024-"), "{a}");
        assert!(a.ends_with(".parquet"));
        assert_ne!(
            a,
            object_name(&["b", "AWSLogs/1/x_connectionlog_2024.gz", "e2"])
        );
        // Parts are length-prefixed: moving a character between them changes the name.
        assert_ne!(object_name(&["ab", "c"]), object_name(&["a", "bc"]));
    }

    #[test]
    fn event_days_are_utc_and_partition_values_are_safe() {
        assert_eq!(event_day(1_607_371_315_177), "20201207");
        assert_eq!(event_day(0), "19700101");
        assert_eq!(event_day(-1), "19691231");
        assert_eq!(partition_value(Some("us-east-1")), "us-east-1");
        assert_eq!(partition_value(Some("../x=y")), ".._x_y");
        assert_eq!(partition_value(None), UNKNOWN);
    }
}
