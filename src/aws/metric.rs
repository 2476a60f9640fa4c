//! The CloudWatch adapter of the metric port: one `GetMetricData` call for the newest
//! `Maximum` datapoint of one metric (the doctor's look at the backfill queue's oldest message).

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};

use super::retry;
use crate::ports::{BoxFuture, Datapoint, MetricError, MetricQuery, ReadMetrics};

/// Reads metrics from CloudWatch.
#[derive(Debug, Clone)]
pub struct CloudWatchMetrics {
    client: aws_sdk_cloudwatch::Client,
}

impl CloudWatchMetrics {
    /// A client in `region` (else `base`'s): a queue's metrics live in the queue's region.
    pub fn new(base: &SdkConfig, region: Option<&str>) -> CloudWatchMetrics {
        let mut config = aws_sdk_cloudwatch::config::Builder::from(base)
            .timeout_config(super::clients::control_timeouts());
        if let Some(region) = region {
            config = config.region(aws_sdk_cloudwatch::config::Region::new(region.to_string()));
        }
        CloudWatchMetrics {
            client: aws_sdk_cloudwatch::Client::from_conf(config.build()),
        }
    }

    async fn newest(&self, query: &MetricQuery) -> Result<Option<Datapoint>, MetricError> {
        let now_s = crate::time::now_ms().div_euclid(1000);
        let (dimension, value) = &query.dimension;
        let metric = Metric::builder()
            .namespace(&query.namespace)
            .metric_name(&query.name)
            .dimensions(Dimension::builder().name(dimension).value(value).build())
            .build();
        let stat = MetricStat::builder()
            .metric(metric)
            .period(query.period_s)
            .stat("Maximum")
            .build();
        let out = self
            .client
            .get_metric_data()
            .metric_data_queries(
                MetricDataQuery::builder()
                    .id("m")
                    .metric_stat(stat)
                    .return_data(true)
                    .build(),
            )
            .start_time(DateTime::from_secs(now_s - query.window_s))
            // One period on: the end is exclusive, and the current minute's datapoint counts.
            .end_time(DateTime::from_secs(now_s + i64::from(query.period_s)))
            .scan_by(ScanBy::TimestampDescending)
            .send()
            .await
            .map_err(|e| {
                let c = retry::classify(&e);
                MetricError {
                    message: format!("GetMetricData {}: {}: {}", query.name, c.code, c.message),
                    denied: c.status == Some(403) || c.code.starts_with("AccessDenied"),
                }
            })?;
        // The newest whatever the order the answer comes in (one page: a 15-minute window of
        // one-minute periods is far under a page's 100,800 datapoints).
        let newest = out
            .metric_data_results()
            .iter()
            .flat_map(|r| r.timestamps().iter().zip(r.values()))
            .map(|(at, value)| Datapoint {
                at_ms: at.to_millis().unwrap_or(0),
                maximum: *value,
            })
            .max_by_key(|d| d.at_ms);
        Ok(newest)
    }
}

impl ReadMetrics for CloudWatchMetrics {
    fn newest_maximum<'a>(
        &'a self,
        query: &'a MetricQuery,
    ) -> BoxFuture<'a, Result<Option<Datapoint>, MetricError>> {
        Box::pin(self.newest(query))
    }
}
