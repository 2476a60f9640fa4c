//! What the pipeline asks of the session index for one record, and the indexes of the clusters
//! of one `parse` run.

use std::collections::HashMap;

use super::index::{Builder, Index};
use crate::key::LogFileName;
use crate::logs::time::epoch_ms;
use crate::logs::{Body, LogType, Record, Value};
use crate::output::{Join, SessionFields};

// Column positions in the activity log's column table (checked by a test).
const RECORDTIME: usize = 0;
const PID: usize = 3;

/// The session of a user activity record in `index`: [`Join::Unknown`] when none is known,
/// [`Join::Off`] for any other record (other logs, parse errors), which the join leaves as it is.
pub fn join<'i>(index: &'i Index, record: &Record<'_>) -> Join<'i> {
    let Body::Columns(columns) = &record.body else {
        return Join::Off;
    };
    if record.log_type != LogType::UserActivityLog {
        return Join::Off;
    }
    let (Value::Time(time), Some(pid)) = (columns.values[RECORDTIME], columns.values[PID].as_int())
    else {
        return Join::Unknown;
    };
    let Some(entry) = index.find(pid, epoch_ms(&time)) else {
        return Join::Unknown;
    };
    let Some(start) = entry.start() else {
        return Join::Unknown;
    };
    let s = &entry.session;
    Join::Found(SessionFields {
        remotehost: s.remotehost.as_deref(),
        remoteport: s.remoteport,
        start,
        sessionid: s.sessionid.as_deref(),
        pid: s.pid,
    })
}

/// Which cluster (or Serverless namespace) a file is of: account, region and cluster from its
/// name; files without a Redshift name share one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ClusterId(String);

impl ClusterId {
    pub fn of(name: Option<&LogFileName>) -> ClusterId {
        ClusterId(name.map_or_else(String::new, |n| {
            format!("{}/{}/{}", n.account_id, n.region, n.cluster)
        }))
    }
}

/// The sessions of every cluster of a `parse` run, built from its connection logs (in the
/// order of their names' times) before any activity log is written, so the files' order on the
/// command line does not matter.
#[derive(Debug, Default)]
pub struct Clusters {
    builders: HashMap<ClusterId, Builder>,
    indexes: HashMap<ClusterId, Index>,
}

impl Clusters {
    /// Takes a connection-log record of `cluster`.
    pub fn add(&mut self, cluster: &ClusterId, record: &Record<'_>) {
        if let Some(builder) = self.builders.get_mut(cluster) {
            builder.add(record);
        } else {
            let mut builder = Builder::default();
            builder.add(record);
            self.builders.insert(cluster.clone(), builder);
        }
    }

    /// Builds the indexes from the records taken.
    pub fn build(&mut self) {
        for (cluster, builder) in self.builders.drain() {
            self.indexes.insert(cluster, Index::new(builder.build()));
        }
    }

    /// The index of `cluster`; an empty one when no connection log of it was given.
    pub fn sessions_of(&self, cluster: &ClusterId) -> &Index {
        static EMPTY: std::sync::OnceLock<Index> = std::sync::OnceLock::new();
        self.indexes
            .get(cluster)
            .unwrap_or_else(|| EMPTY.get_or_init(Index::default))
    }

    /// Sessions across every cluster.
    pub fn sessions(&self) -> usize {
        self.indexes.values().map(Index::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::{Parser, ACTIVITY_COLUMNS};
    use crate::output::{Format, Provenance};
    use crate::sessions::Session;

    const STATEMENTS: &str = "\
'2024-03-01T10:00:05Z UTC [ db=dev user=alice pid=42 userid=100 xid=1 ]' LOG: select 1
'2024-03-01T10:00:06Z UTC [ db=dev user=bob pid=43 userid=101 xid=2 ]' LOG: select 2
'2024-03-01T10:00:07Z UTC [ db=dev user=rdsdb pid=44 userid=1 xid=3 ]' LOG: select 3
";

    fn index() -> Index {
        let at = |s: &str| crate::time::parse_rfc3339_ms(s).unwrap();
        Index::new([
            Session {
                pid: 42,
                start_ms: at("2024-03-01T10:00:00Z") + 123,
                remotehost: Some("::ffff:10.0.0.1".into()),
                remoteport: Some(5439),
                sessionid: Some("da9edc00".into()),
                ..Session::default()
            },
            Session {
                pid: 44,
                start_ms: at("2024-03-01T09:00:00Z"),
                remotehost: Some("[local]".into()),
                ..Session::default()
            },
        ])
    }

    fn render(format: Format, index: &Index) -> Vec<serde_json::Value> {
        let provenance = Provenance::new(LogType::UserActivityLog, None, None, "k");
        let mut parser = Parser::new(LogType::UserActivityLog, STATEMENTS.as_bytes());
        let mut lines = Vec::new();
        while let Some(record) = parser.next_record().unwrap() {
            let mut out = Vec::new();
            format.write_record(&mut out, &record, &provenance, join(index, &record));
            lines.push(serde_json::from_slice(&out).unwrap());
        }
        lines
    }

    #[test]
    fn raw_records_gain_the_session_fields_and_keep_the_others() {
        let index = index();
        let joined = render(Format::Raw, &index);
        let plain = render(Format::Raw, &Index::default());
        assert_eq!(joined[0]["remotehost"], "::ffff:10.0.0.1");
        assert_eq!(joined[0]["remoteport"], 5439);
        assert_eq!(joined[0]["session_start"], "2024-03-01T10:00:00.123Z");
        assert!(joined[1]["remotehost"].is_null() && joined[1]["session_start"].is_null());
        assert!(joined[1].as_object().unwrap().contains_key("remoteport"));
        assert_eq!(joined[2]["remotehost"], "[local]");
        assert!(joined[2]["remoteport"].is_null());
        for (j, p) in joined.iter().zip(&plain) {
            for (key, value) in p.as_object().unwrap() {
                if !["remotehost", "remoteport", "session_start"].contains(&key.as_str()) {
                    assert_eq!(&j[key], value, "{key}");
                }
            }
        }
    }

    #[test]
    fn ocsf_events_fill_the_source_endpoint_and_the_actors_session() {
        let index = index();
        let events = render(Format::Ocsf, &index);
        assert_eq!(
            events[0]["src_endpoint"],
            serde_json::json!({"ip": "::ffff:10.0.0.1", "port": 5439})
        );
        assert_eq!(events[0]["actor"]["session"]["uid"], "da9edc00");
        assert_eq!(
            events[0]["actor"]["session"]["created_time"],
            1_709_287_200_123_i64
        );
        assert_eq!(events[0]["actor"]["user"]["name"], "alice");
        assert_eq!(events[1]["src_endpoint"], serde_json::json!({}));
        assert!(events[1]["actor"].get("session").is_none());
        assert_eq!(
            events[2]["src_endpoint"],
            serde_json::json!({"hostname": "[local]"})
        );
        assert_eq!(events[2]["actor"]["session"]["uid"], "44");
    }

    #[test]
    fn other_records_are_left_as_they_are() {
        let provenance = Provenance::new(LogType::ConnectionLog, None, None, "k");
        let line = "authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |42|dev |rdsdb |Ident |0| | |0| | |";
        let mut parser = Parser::new(LogType::ConnectionLog, line.as_bytes());
        let record = parser.next_record().unwrap().unwrap();
        assert_eq!(join(&index(), &record), Join::Off);
        let mut out = Vec::new();
        Format::Raw.write_record(&mut out, &record, &provenance, Join::Off);
        assert!(!String::from_utf8(out).unwrap().contains("session_start"));
    }

    #[test]
    fn column_positions_match_the_activity_log_table() {
        assert_eq!(ACTIVITY_COLUMNS[RECORDTIME].0, "recordtime");
        assert_eq!(ACTIVITY_COLUMNS[PID].0, "pid");
    }
}
