//! How fresh the audit files are, as one walk saw them: the newest file of every (account,
//! region, cluster, log type) it listed, so an operator learns when Redshift stopped writing
//! (a changed bucket policy or owner, logging turned off), and what a walk cut short left
//! behind. Both go into the run's summary line and its metrics.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;

use super::pending::Pending;
use super::Summary;
use crate::key::LogFileName;
use crate::metrics::{Document, Metric};
use crate::time::{parse_rfc3339_ms, rfc3339_ms};

/// Metric names of a backfill run, as the README lists them.
pub mod name {
    pub const NEWEST_FILE_AGE: &str = "NewestFileAgeSeconds";
    pub const SENT: &str = "BackfillObjectsSent";
    pub const FAILED: &str = "BackfillObjectsFailed";
    pub const SKIPPED_DONE: &str = "BackfillObjectsSkippedDone";
    pub const LEFT: &str = "BackfillObjectsLeft";
    pub const OLDEST_LEFT_AGE: &str = "BackfillOldestObjectLeftAgeSeconds";
    pub const RECORDS: &str = "BackfillRecords";
    pub const DURATION: &str = "BackfillDuration";
    pub const STATE_REFUSED: &str = "BackfillStateRefused";
    pub const SET_ASIDE: &str = "BackfillObjectsSetAside";
    pub const SKIPPED_SET_ASIDE: &str = "BackfillObjectsSkippedSetAside";
}

/// The newest file of one source, as the summary line shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewestFile {
    pub account_id: String,
    pub region: String,
    pub cluster: String,
    pub log_type: String,
    /// The file name's time (minute resolution), RFC 3339.
    pub newest_file_time: String,
    /// Seconds from that time to the end of the walk.
    pub age_seconds: i64,
}

/// What a walk saw of the files' freshness; flattened into [`Summary`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct Freshness {
    /// One entry per (account, region, cluster, log type) listed, in that order.
    pub newest_files: Vec<NewestFile>,
    /// Objects listed but not handled when the walk stopped early (deadline or object budget).
    pub objects_left: u64,
    /// Seconds since the oldest of those was last modified; `null` when none was left.
    pub oldest_left_age_seconds: Option<i64>,
    #[serde(skip)]
    seen: BTreeMap<(String, String, String, String), i64>,
    #[serde(skip)]
    oldest_left_ms: Option<i64>,
}

impl Freshness {
    /// A listed file of a selected type.
    pub(super) fn see(&mut self, name: &LogFileName) {
        let Ok(file_ms) = parse_rfc3339_ms(&name.file_time) else {
            return;
        };
        let source = (
            name.account_id.clone(),
            name.region.clone(),
            name.cluster.clone(),
            name.log_type.as_str().to_string(),
        );
        let newest = self.seen.entry(source).or_insert(file_ms);
        *newest = (*newest).max(file_ms);
    }

    /// The walk stopped with these objects listed but not handled.
    pub(super) fn left_behind(&mut self, pending: &Pending) {
        self.objects_left = pending.len() as u64;
        self.oldest_left_ms = pending.oldest_last_modified_ms();
    }

    /// Ages as of the end of the walk.
    pub(super) fn finish(&mut self, now_ms: i64) {
        self.newest_files = self
            .seen
            .iter()
            .map(
                |((account_id, region, cluster, log_type), &file_ms)| NewestFile {
                    account_id: account_id.clone(),
                    region: region.clone(),
                    cluster: cluster.clone(),
                    log_type: log_type.clone(),
                    newest_file_time: rfc3339_ms(file_ms),
                    // A file named for a time ahead of this clock (a skewed writer or a forged
                    // name) is as fresh as can be, not negative: 0.
                    age_seconds: (now_ms - file_ms).div_euclid(1000).max(0),
                },
            )
            .collect();
        self.oldest_left_age_seconds = self
            .oldest_left_ms
            .map(|ms| (now_ms - ms).div_euclid(1000).max(0));
    }
}

/// The documents of a finished run: the run's counts (no dimension), and `NewestFileAgeSeconds`
/// per log type and cluster.
pub fn run_documents(summary: &Summary) -> Vec<Document> {
    let fresh = &summary.freshness;
    let mut documents = vec![Document {
        log_type: None,
        cluster: None,
        properties: vec![("stopped", json!(summary.stopped))],
        metrics: vec![
            Metric::count(name::SENT, summary.sent),
            Metric::count(name::FAILED, summary.failed),
            Metric::count(name::SKIPPED_DONE, summary.skipped_done),
            Metric::count(name::LEFT, fresh.objects_left),
            Metric::seconds(
                name::OLDEST_LEFT_AGE,
                fresh.oldest_left_age_seconds.unwrap_or(0),
            ),
            Metric::count(name::RECORDS, summary.records),
            Metric::count(name::STATE_REFUSED, summary.state_refused),
            Metric::count(name::SET_ASIDE, summary.set_aside),
            Metric::count(name::SKIPPED_SET_ASIDE, summary.skipped_set_aside),
            Metric::milliseconds(
                name::DURATION,
                u64::try_from(summary.duration_ms).unwrap_or(0),
            ),
        ],
    }];
    for file in &fresh.newest_files {
        documents.push(Document {
            log_type: Some(file.log_type.clone()),
            cluster: Some(file.cluster.clone()),
            properties: vec![
                ("account_id", json!(file.account_id)),
                ("region", json!(file.region)),
                ("newest_file_time", json!(file.newest_file_time)),
            ],
            metrics: vec![Metric::seconds(name::NEWEST_FILE_AGE, file.age_seconds)],
        });
    }
    documents
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::Value;

    use super::super::{day_folder, day_label, day_of, new_owner, Backfill, RunOptions, Stopped};
    use crate::events::Filter;
    use crate::forward::Forwarder;
    use crate::ledger::Ledger;
    use crate::metrics::Metrics;
    use crate::ports::memory::{ManualClock, MemoryBucket, MemoryStore};
    use crate::ports::{Fetch, FetchError, Fetched, ObjectRef};
    use crate::sink::WriteSink;

    const TREE: &str = "AWSLogs/123456789012/redshift/us-east-1/";
    const LINE: &str = "authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | |";
    /// 2024-03-01T00:00:00Z.
    const MAR_1: i64 = 1_709_251_200_000;
    const HOUR: i64 = 3_600_000;

    struct Shared(Arc<MemoryBucket>);
    impl Fetch for Shared {
        async fn fetch(&self, object: &ObjectRef) -> Result<Fetched, FetchError> {
            self.0.fetch(object).await
        }
    }

    fn key(file_ms: i64, cluster: &str, log_type: &str) -> String {
        let day = day_of(file_ms);
        let minutes = file_ms.rem_euclid(super::super::MS_PER_DAY) / 60_000;
        format!(
            "{}123456789012_redshift_us-east-1_{cluster}_{log_type}_{}T{:02}:{:02}.gz",
            day_folder(TREE, day),
            day_label(day),
            minutes / 60,
            minutes % 60
        )
    }

    /// A walk at `now` over the files, metrics in memory.
    async fn walk(
        now: i64,
        files: &[(i64, &str, &str)],
        max_objects: Option<u64>,
    ) -> (super::Summary, Vec<Value>) {
        let clock = Arc::new(ManualClock::new(now));
        let bucket = Arc::new(MemoryBucket::new(clock.clone()));
        for (i, (file_ms, cluster, log_type)) in files.iter().enumerate() {
            bucket.put(
                &key(*file_ms, cluster, log_type),
                &format!("{LINE}\n"),
                file_ms + i as i64,
            );
        }
        let backfill = Backfill {
            bucket: "audit".into(),
            prefix: TREE.trim_end_matches('/').into(),
            start_time_ms: None,
            lookback_days: 1,
            ledger: Ledger::new(Arc::new(MemoryStore::default()), "state/"),
            list: bucket.clone(),
            clock: clock.clone(),
            queue: None,
        };
        let mut forwarder = Forwarder::new(Filter::default(), Shared(bucket), || {
            WriteSink::new(std::io::sink())
        });
        let (metrics, lines) = Metrics::in_memory("Ns", true);
        forwarder.metrics = metrics;
        let options = RunOptions {
            owner: new_owner(),
            max_objects,
            ..RunOptions::default()
        };
        let summary = backfill
            .run(&forwarder, &options, &mut |_| {})
            .await
            .unwrap();
        let docs = lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (summary, docs)
    }

    #[tokio::test]
    async fn a_walk_whose_newest_file_is_five_hours_old_reports_that_age_and_the_metric() {
        let now = MAR_1 + 12 * HOUR;
        let (summary, docs) = walk(
            now,
            &[
                (MAR_1 + 5 * HOUR, "prod", "connectionlog"),
                (MAR_1 + 7 * HOUR, "prod", "connectionlog"),
                (MAR_1 + 2 * HOUR, "prod", "userlog"),
                (MAR_1 + 11 * HOUR, "dev", "connectionlog"),
            ],
            None,
        )
        .await;
        assert_eq!(summary.stopped, Stopped::Complete);
        let line = serde_json::to_value(&summary).unwrap();
        let newest = line["newest_files"].as_array().unwrap();
        let prod_conn = newest
            .iter()
            .find(|f| f["cluster"] == "prod" && f["log_type"] == "connectionlog")
            .unwrap();
        assert_eq!(prod_conn["age_seconds"], 5 * 3600);
        assert_eq!(prod_conn["newest_file_time"], "2024-03-01T07:00:00.000Z");
        assert_eq!(prod_conn["account_id"], "123456789012");
        assert_eq!(prod_conn["region"], "us-east-1");
        assert_eq!(newest.len(), 3, "{line}");
        // The alarm's metric, per log type and cluster.
        let metric = docs
            .iter()
            .find(|d| {
                d["Cluster"] == "prod"
                    && d["LogType"] == "connectionlog"
                    && d.get("NewestFileAgeSeconds").is_some()
            })
            .unwrap();
        assert_eq!(metric["NewestFileAgeSeconds"], 18_000);
        let directive = &metric["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Ns");
        assert_eq!(directive["Metrics"][0]["Name"], "NewestFileAgeSeconds");
        assert_eq!(directive["Metrics"][0]["Unit"], "Seconds");
        assert_eq!(
            directive["Dimensions"],
            serde_json::json!([["LogType"], ["LogType", "Cluster"]])
        );
        let userlog = docs
            .iter()
            .find(|d| d["LogType"] == "userlog" && d.get("NewestFileAgeSeconds").is_some())
            .unwrap();
        assert_eq!(userlog["NewestFileAgeSeconds"], 10 * 3600);
        // The run's own document: four sent, nothing left.
        let run = docs
            .iter()
            .find(|d| d.get("BackfillObjectsSent").is_some())
            .unwrap();
        assert_eq!(run["BackfillObjectsSent"], 4);
        assert_eq!(run["BackfillObjectsLeft"], 0);
        assert_eq!(run["BackfillObjectsSetAside"], 0);
        assert_eq!(run["BackfillObjectsSkippedSetAside"], 0);
        assert_eq!(
            run["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([[]])
        );
        // Every object forwarded has its own document too.
        assert_eq!(
            docs.iter()
                .filter(|d| d.get("ObjectsSent").is_some())
                .count(),
            4
        );
    }

    #[tokio::test]
    async fn a_file_named_for_a_time_ahead_of_the_clock_is_age_zero_not_negative() {
        let now = MAR_1 + 12 * HOUR;
        let (summary, docs) = walk(now, &[(now + HOUR / 2, "prod", "connectionlog")], None).await;
        assert_eq!(summary.freshness.newest_files.len(), 1);
        assert_eq!(summary.freshness.newest_files[0].age_seconds, 0);
        let metric = docs
            .iter()
            .find(|d| d.get("NewestFileAgeSeconds").is_some())
            .unwrap();
        assert_eq!(metric["NewestFileAgeSeconds"], 0);
    }

    #[tokio::test]
    async fn a_walk_cut_short_reports_the_objects_left_and_the_oldest_ones_age() {
        let now = MAR_1 + 12 * HOUR;
        let (summary, docs) = walk(
            now,
            &[
                (MAR_1 + HOUR, "prod", "connectionlog"),
                (MAR_1 + 2 * HOUR, "prod", "connectionlog"),
                (MAR_1 + 3 * HOUR, "prod", "connectionlog"),
            ],
            Some(1),
        )
        .await;
        assert_eq!(summary.stopped, Stopped::ObjectBudget);
        assert_eq!(summary.sent, 1);
        assert_eq!(summary.freshness.objects_left, 2);
        // The second file, last modified at its own time (plus 1 ms), is the oldest left.
        assert_eq!(
            summary.freshness.oldest_left_age_seconds,
            Some(10 * 3600 - 1)
        );
        let run = docs
            .iter()
            .find(|d| d.get("BackfillObjectsLeft").is_some())
            .unwrap();
        assert_eq!(run["BackfillObjectsLeft"], 2);
        assert_eq!(run["BackfillOldestObjectLeftAgeSeconds"], 10 * 3600 - 1);
        assert_eq!(run["stopped"], "object_budget");
    }
}
