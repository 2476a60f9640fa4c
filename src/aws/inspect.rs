//! The doctor's AWS adapter ([`Inspect`]): `sts:GetCallerIdentity` with the function's own
//! credentials; `GetBucketLocation`, `GetBucketPolicy` and `GetBucketNotificationConfiguration`
//! on the audit bucket with the audit credentials; `firehose:DescribeDeliveryStream`. Also
//! [`doctor_clients`]: the clients of [`super::clients_from_config`], built even when a bucket a
//! setting names does not exist, so the doctor can say so instead of failing to start.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use super::clients::{clients_from_config, ClientError, Clients};
use super::retry;
use super::s3::BucketClient;
use crate::ports::{
    BoxFuture, BucketFacts, Identity, Inspect, InspectError, NotificationTarget, Notifications,
    StreamFacts,
};
use crate::settings::{var, Settings};

/// The questions the doctor asks, answered by STS, S3 and Firehose.
#[derive(Debug, Clone)]
pub struct AwsInspect {
    sts: aws_sdk_sts::Client,
    audit: BucketClient,
    firehose: aws_sdk_firehose::Client,
}

impl AwsInspect {
    /// STS from `base` (the function's own credentials); S3 and Firehose as `clients` has them.
    pub fn new(base: &SdkConfig, clients: &Clients) -> AwsInspect {
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(base)
                .timeout_config(super::clients::control_timeouts())
                .build(),
        );
        AwsInspect {
            sts,
            audit: clients.audit.clone(),
            firehose: clients.firehose.clone(),
        }
    }
}

/// Bounds an S3 answer's wait (the S3 clients' own timeouts apply too).
const DOCTOR_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// An SDK error as the doctor reports it: missing, denied, or anything else.
fn inspect_error<E>(what: &str, err: &SdkError<E, HttpResponse>) -> InspectError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let c = retry::classify(err);
    let text = format!("{what}: {}: {}", c.code, c.message);
    let code = c.code.as_str();
    if c.status == Some(404)
        || matches!(
            code,
            "NoSuchBucket" | "ResourceNotFoundException" | "NoSuchBucketPolicy"
        )
    {
        InspectError::NotFound(text)
    } else if c.status == Some(403) || code.starts_with("AccessDenied") {
        InspectError::Denied(text)
    } else {
        InspectError::Failed(text)
    }
}

/// `GetBucketLocation`'s answer to a region: empty means us-east-1, `EU` is the old eu-west-1.
fn location_region(constraint: Option<&str>) -> String {
    match constraint {
        None | Some("") => "us-east-1".into(),
        Some("EU") => "eu-west-1".into(),
        Some(other) => other.into(),
    }
}

async fn timed<T>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, InspectError>>,
) -> Result<T, InspectError> {
    tokio::time::timeout(DOCTOR_CALL_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| Err(InspectError::Failed(format!("{what}: timed out"))))
}

impl Inspect for AwsInspect {
    fn caller_identity(&self) -> BoxFuture<'_, Result<Identity, InspectError>> {
        Box::pin(timed("sts:GetCallerIdentity", async move {
            let out = self
                .sts
                .get_caller_identity()
                .send()
                .await
                .map_err(|e| inspect_error("sts:GetCallerIdentity", &e))?;
            Ok(Identity {
                account: out.account().unwrap_or_default().to_string(),
                arn: out.arn().unwrap_or_default().to_string(),
            })
        }))
    }

    fn bucket<'a>(
        &'a self,
        bucket: &'a str,
        expected_owner: Option<&'a str>,
    ) -> BoxFuture<'a, Result<BucketFacts, InspectError>> {
        Box::pin(timed("s3:GetBucketLocation", async move {
            let client = self.audit.client();
            let out = client
                .get_bucket_location()
                .bucket(bucket)
                .send()
                .await
                .map_err(|e| inspect_error("s3:GetBucketLocation", &e))?;
            let region = location_region(out.location_constraint().map(|c| c.as_str()));
            let owner_matches = match expected_owner {
                None => None,
                // The same call with the owner header: S3 answers 403 when another account
                // owns the bucket.
                Some(owner) => match client
                    .get_bucket_location()
                    .bucket(bucket)
                    .expected_bucket_owner(owner)
                    .send()
                    .await
                {
                    Ok(_) => Some(true),
                    Err(e) => match inspect_error("s3:GetBucketLocation", &e) {
                        InspectError::Denied(_) => Some(false),
                        other => return Err(other),
                    },
                },
            };
            Ok(BucketFacts {
                region,
                owner_matches,
            })
        }))
    }

    fn bucket_policy<'a>(
        &'a self,
        bucket: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, InspectError>> {
        Box::pin(timed("s3:GetBucketPolicy", async move {
            match self
                .audit
                .client()
                .get_bucket_policy()
                .bucket(bucket)
                .set_expected_bucket_owner(self.audit.expected_owner().map(str::to_owned))
                .send()
                .await
            {
                Ok(out) => Ok(out.policy().map(str::to_owned)),
                Err(e) if e.code() == Some("NoSuchBucketPolicy") => Ok(None),
                Err(e) => Err(inspect_error("s3:GetBucketPolicy", &e)),
            }
        }))
    }

    fn bucket_notifications<'a>(
        &'a self,
        bucket: &'a str,
    ) -> BoxFuture<'a, Result<Notifications, InspectError>> {
        Box::pin(timed("s3:GetBucketNotificationConfiguration", async move {
            let out = self
                .audit
                .client()
                .get_bucket_notification_configuration()
                .bucket(bucket)
                .set_expected_bucket_owner(self.audit.expected_owner().map(str::to_owned))
                .send()
                .await
                .map_err(|e| inspect_error("s3:GetBucketNotificationConfiguration", &e))?;
            let mut targets = Vec::new();
            for c in out.lambda_function_configurations() {
                targets.push(target(
                    "lambda",
                    c.lambda_function_arn(),
                    c.events(),
                    c.filter(),
                ));
            }
            for c in out.queue_configurations() {
                targets.push(target("sqs", c.queue_arn(), c.events(), c.filter()));
            }
            for c in out.topic_configurations() {
                targets.push(target("sns", c.topic_arn(), c.events(), c.filter()));
            }
            Ok(Notifications {
                eventbridge: out.event_bridge_configuration().is_some(),
                targets,
            })
        }))
    }

    fn stream<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<StreamFacts, InspectError>> {
        Box::pin(timed("firehose:DescribeDeliveryStream", async move {
            let out = self
                .firehose
                .describe_delivery_stream()
                .delivery_stream_name(name)
                .send()
                .await
                .map_err(|e| inspect_error("firehose:DescribeDeliveryStream", &e))?;
            let Some(d) = out.delivery_stream_description() else {
                return Err(InspectError::Failed(
                    "firehose:DescribeDeliveryStream: no description in the answer".into(),
                ));
            };
            let destination = d
                .destinations()
                .first()
                .map(destination_name)
                .unwrap_or_else(|| "no destination".into());
            Ok(StreamFacts {
                status: d.delivery_stream_status().as_str().to_string(),
                stream_type: d.delivery_stream_type().as_str().to_string(),
                destination,
            })
        }))
    }
}

fn target(
    kind: &str,
    arn: &str,
    events: &[aws_sdk_s3::types::Event],
    filter: Option<&aws_sdk_s3::types::NotificationConfigurationFilter>,
) -> NotificationTarget {
    let rules = filter
        .and_then(|f| f.key())
        .map(|k| k.filter_rules())
        .unwrap_or_default();
    let rule = |wanted: &str| {
        rules
            .iter()
            .find(|r| {
                r.name()
                    .is_some_and(|n| n.as_str().eq_ignore_ascii_case(wanted))
            })
            .and_then(|r| r.value())
            .map(str::to_owned)
    };
    NotificationTarget {
        kind: kind.into(),
        arn: arn.into(),
        events: events.iter().map(|e| e.as_str().to_string()).collect(),
        prefix: rule("prefix"),
        suffix: rule("suffix"),
    }
}

/// `S3 arn:aws:s3:::bucket`, `Redshift`, `OpenSearch`, ...
fn destination_name(d: &aws_sdk_firehose::types::DestinationDescription) -> String {
    if let Some(s3) = d.extended_s3_destination_description() {
        return format!("S3 {}", s3.bucket_arn());
    }
    if let Some(s3) = d.s3_destination_description() {
        return format!("S3 {}", s3.bucket_arn());
    }
    let named = [
        (d.redshift_destination_description().is_some(), "Redshift"),
        (
            d.amazonopensearchservice_destination_description()
                .is_some(),
            "OpenSearch",
        ),
        (
            d.elasticsearch_destination_description().is_some(),
            "Elasticsearch",
        ),
        (
            d.amazon_open_search_serverless_destination_description()
                .is_some(),
            "OpenSearch Serverless",
        ),
        (d.splunk_destination_description().is_some(), "Splunk"),
        (
            d.http_endpoint_destination_description().is_some(),
            "an HTTP endpoint",
        ),
        (d.snowflake_destination_description().is_some(), "Snowflake"),
        (
            d.iceberg_destination_description().is_some(),
            "Iceberg tables",
        ),
    ];
    named
        .iter()
        .find(|(present, _)| *present)
        .map(|(_, name)| (*name).to_string())
        .unwrap_or_else(|| format!("destination {}", d.destination_id()))
}

/// The clients, as [`clients_from_config`] builds them, also when a bucket a setting names does
/// not exist or its region cannot be found: the audit bucket is then addressed in `base`'s
/// region, a state bucket left out. Returns the problems met, by variable, for the doctor to
/// report under the check they belong to.
pub async fn doctor_clients(
    base: &SdkConfig,
    settings: &Settings,
) -> Result<(Clients, Vec<(&'static str, String)>), ClientError> {
    let mut settings = settings.clone();
    let mut problems = Vec::new();
    // One retry per bucket setting at most.
    for _ in 0..3 {
        let err = match clients_from_config(base, &settings).await {
            Ok(clients) => return Ok((clients, problems)),
            Err(err) => err,
        };
        let variable = match &err {
            ClientError::NoSuchBucket { variable, .. }
            | ClientError::RegionLookup { variable, .. } => *variable,
            ClientError::NoRegion => return Err(err),
        };
        problems.push((variable, err.to_string()));
        if variable == var::AUDIT_BUCKET && settings.audit_bucket_region.is_none() {
            settings.audit_bucket_region = base.region().map(|r| r.to_string());
        } else if variable == var::STATE_BUCKET && settings.state_bucket.is_some() {
            settings.state_bucket = None;
        } else {
            return Err(err);
        }
    }
    clients_from_config(base, &settings)
        .await
        .map(|clients| (clients, problems))
}
