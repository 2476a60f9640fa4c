//! `parse`'s session join: the connection logs among the files are read first, into the
//! sessions of their clusters, so each activity log's records are joined whatever the files'
//! order on the command line. Without a connection log of their cluster, activity records carry
//! the join's fields as null (no session known); standard input is not read twice, so it gives
//! no sessions.

use std::fs::File;
use std::path::PathBuf;

use crate::decode;
use crate::key::parse_file_name;
use crate::logs::{LogType, Parser};
use crate::sessions::{ClusterId, Clusters};

/// The sessions of the connection logs among `files`. A file that cannot be read gives the
/// sessions of the records before the failure (its own pass reports the error).
pub(super) fn collect(
    files: &[PathBuf],
    log_type: Option<LogType>,
    max_expansion: u32,
) -> Clusters {
    let mut clusters = Clusters::default();
    // Sessions are built in time order: the files in the order of their names' times.
    let mut files: Vec<(Option<String>, &PathBuf)> = files
        .iter()
        .map(|path| {
            let name = parse_file_name(&path.to_string_lossy()).ok();
            (name.map(|n| n.file_time), path)
        })
        .collect();
    files.sort();
    for (_, path) in files {
        let shown = path.to_string_lossy();
        if shown == "-" {
            continue;
        }
        let name = parse_file_name(&shown).ok();
        let is_connection_log = match (log_type, &name) {
            (Some(t), _) => t == LogType::ConnectionLog,
            (None, Some(n)) => n.log_type == LogType::ConnectionLog,
            (None, None) => false,
        };
        if !is_connection_log {
            continue;
        }
        let cluster = ClusterId::of(name.as_ref());
        let Ok(file) = File::open(path) else {
            continue;
        };
        let Ok(reader) = decode::open_bounded(file, max_expansion) else {
            continue;
        };
        let mut parser = Parser::new(LogType::ConnectionLog, reader);
        while let Ok(Some(record)) = parser.next_record() {
            clusters.add(&cluster, &record);
        }
    }
    clusters.build();
    clusters
}
