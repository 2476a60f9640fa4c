//! Finding the newest audit files under the prefix, for the doctor: the partition trees
//! (`.../YYYY/MM/DD/` roots) below the prefix, then each tree's days from the newest back, until
//! a file of every wanted type was seen or [`MAX_DAYS`] days were listed. Bounded: at most
//! [`MAX_LIST_CALLS`] listing calls in all.

use std::collections::BTreeMap;

use crate::logs::LogType;
use crate::ports::{ListError, ListObjects, Listed};
use crate::time::parse_rfc3339_ms;

/// Day partitions listed per tree at most, newest first.
pub const MAX_DAYS: usize = 14;
/// Listing calls at most, discovery included.
pub const MAX_LIST_CALLS: usize = 200;
/// Folders below the prefix searched for partition trees (`AWSLogs/<account>/redshift/<region>`
/// plus one custom folder).
const MAX_DEPTH: usize = 5;

/// The newest file of one log type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Newest {
    pub object: Listed,
    /// The file name's time, ms since the epoch.
    pub file_ms: i64,
}

/// What the search found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// Partition trees found.
    pub trees: usize,
    pub days_listed: usize,
    /// The newest file of each log type seen, selected or not.
    pub newest: BTreeMap<LogType, Newest>,
}

struct Lister<'a> {
    list: &'a dyn ListObjects,
    bucket: &'a str,
    calls: usize,
}

impl Lister<'_> {
    /// Every page under `prefix`: objects and (with the delimiter) folders.
    async fn all(
        &mut self,
        prefix: &str,
        delimiter: Option<&str>,
    ) -> Result<(Vec<Listed>, Vec<String>), ListError> {
        let (mut objects, mut folders) = (Vec::new(), Vec::new());
        let mut token = None;
        loop {
            if self.calls >= MAX_LIST_CALLS {
                break;
            }
            self.calls += 1;
            let page = self
                .list
                .list_page(self.bucket, prefix, delimiter, token)
                .await?;
            objects.extend(page.objects);
            folders.extend(page.prefixes);
            token = page.next;
            if token.is_none() {
                break;
            }
        }
        Ok((objects, folders))
    }
}

/// The last segment of a folder (`a/b/2024/` gives `2024`), when it is `digits` digits.
fn numbered(folder: &str, digits: usize) -> bool {
    let name = folder
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("");
    name.len() == digits && name.bytes().all(|b| b.is_ascii_digit())
}

/// Searches below `prefix` (no trailing `/`; empty for the whole bucket) for the newest file of
/// each log type, until every type of `wanted` was seen in each tree or [`MAX_DAYS`] days were
/// listed.
pub async fn newest_files(
    list: &dyn ListObjects,
    bucket: &str,
    prefix: &str,
    wanted: &[LogType],
) -> Result<Found, ListError> {
    let mut lister = Lister {
        list,
        bucket,
        calls: 0,
    };
    let root = match prefix.trim_end_matches('/') {
        "" => String::new(),
        p => format!("{p}/"),
    };
    // Partition trees: folders whose children are years.
    let mut trees = Vec::new();
    let mut level = vec![root];
    for _ in 0..=MAX_DEPTH {
        let mut next = Vec::new();
        for folder in level {
            let (_, children) = lister.all(&folder, Some("/")).await?;
            let mut years: Vec<String> = children
                .iter()
                .filter(|c| numbered(c, 4))
                .cloned()
                .collect();
            if years.is_empty() {
                next.extend(children);
            } else {
                years.sort();
                trees.push(years);
            }
        }
        if next.is_empty() || lister.calls >= MAX_LIST_CALLS {
            break;
        }
        level = next;
    }
    let mut found = Found {
        trees: trees.len(),
        ..Found::default()
    };
    for years in trees {
        let mut days_here = 0;
        let mut seen_here: Vec<LogType> = Vec::new();
        'tree: for year in years.iter().rev() {
            let (_, mut months) = lister.all(year, Some("/")).await?;
            months.retain(|m| numbered(m, 2));
            months.sort();
            for month in months.iter().rev() {
                let (_, mut days) = lister.all(month, Some("/")).await?;
                days.retain(|d| numbered(d, 2));
                days.sort();
                for day in days.iter().rev() {
                    let (objects, _) = lister.all(day, None).await?;
                    days_here += 1;
                    found.days_listed += 1;
                    for object in objects {
                        let Ok(name) = crate::key::parse_file_name(&object.key) else {
                            continue;
                        };
                        let Ok(file_ms) = parse_rfc3339_ms(&name.file_time) else {
                            continue;
                        };
                        if !seen_here.contains(&name.log_type) {
                            seen_here.push(name.log_type);
                        }
                        let newer = found
                            .newest
                            .get(&name.log_type)
                            .is_none_or(|n| file_ms > n.file_ms);
                        if newer {
                            found
                                .newest
                                .insert(name.log_type, Newest { object, file_ms });
                        }
                    }
                    let all_seen = wanted.iter().all(|t| seen_here.contains(t));
                    if all_seen || days_here >= MAX_DAYS || lister.calls >= MAX_LIST_CALLS {
                        break 'tree;
                    }
                }
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::memory::{ManualClock, MemoryBucket};
    use std::sync::Arc;

    fn key(day: &str, log_type: &str, time: &str) -> String {
        let (y, m, d) = (&day[0..4], &day[5..7], &day[8..10]);
        format!(
            "AWSLogs/1/redshift/us-east-1/{y}/{m}/{d}/123456789012_redshift_us-east-1_prod_{log_type}_{day}T{time}.gz"
        )
    }

    #[tokio::test]
    async fn the_newest_file_of_each_type_is_found_walking_back_from_the_newest_day() {
        let bucket = MemoryBucket::new(Arc::new(ManualClock::new(0)));
        bucket.put(&key("2024-02-28", "userlog", "10:00"), "x", 1);
        bucket.put(&key("2024-03-01", "connectionlog", "09:00"), "x", 2);
        bucket.put(&key("2024-03-01", "connectionlog", "10:00"), "x", 3);
        bucket.put("AWSLogs/1/redshift/us-east-1/2024/03/01/notes.txt", "x", 4);
        let found = newest_files(
            &bucket,
            "audit",
            "AWSLogs/1/redshift/us-east-1",
            &[LogType::ConnectionLog, LogType::UserLog],
        )
        .await
        .unwrap();
        assert_eq!(found.trees, 1);
        assert_eq!(found.days_listed, 2);
        let conn = &found.newest[&LogType::ConnectionLog];
        assert!(conn.object.key.ends_with("2024-03-01T10:00.gz"), "{conn:?}");
        assert!(found.newest.contains_key(&LogType::UserLog));
    }

    #[tokio::test]
    async fn a_prefix_above_the_accounts_finds_every_tree_and_an_empty_one_finds_none() {
        let bucket = MemoryBucket::new(Arc::new(ManualClock::new(0)));
        bucket.put(&key("2024-03-01", "connectionlog", "10:00"), "x", 1);
        bucket.put(
            "AWSLogs/2/redshift/eu-west-1/2024/03/02/210987654321_redshift_eu-west-1_b_connectionlog_2024-03-02T00:00.gz",
            "x",
            2,
        );
        let found = newest_files(&bucket, "audit", "AWSLogs", &[LogType::ConnectionLog])
            .await
            .unwrap();
        assert_eq!(found.trees, 2);
        assert_eq!(
            found.newest[&LogType::ConnectionLog].object.key,
            "AWSLogs/2/redshift/eu-west-1/2024/03/02/210987654321_redshift_eu-west-1_b_connectionlog_2024-03-02T00:00.gz"
        );
        let none = newest_files(&bucket, "audit", "elsewhere", &[LogType::ConnectionLog])
            .await
            .unwrap();
        assert_eq!(none, Found::default());
    }
}
