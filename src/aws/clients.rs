//! Building the SDK clients the settings call for, once at start-up: Firehose with the
//! function's own credentials; the audit bucket's S3 client with the source credentials (the
//! default chain, an assumed role or static keys) in the bucket's own region, found by
//! [`detect_region`]; the state bucket's client with the function's own credentials.

use std::time::Duration;

use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_s3::config::{
    Credentials, Region, SharedCredentialsProvider, StalledStreamProtectionConfig,
};

use super::s3::{AuditBucket, BucketClient, StateBucket};
use crate::settings::{var, Settings, SourceCredentials};

/// Session name of the assumed source role, shown in the bucket owner's CloudTrail.
pub const SOURCE_SESSION_NAME: &str = "redshift-audit-forwarder";

/// Connection set-up. AWS endpoints answer in milliseconds; a connect that hangs for seconds is
/// better abandoned and retried on a fresh connection than waited for.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// One S3 attempt, up to the response headers. For a streamed `GetObject` this is the time to the
/// first byte only: the SDK's timeouts end when the body starts, and a body that stalls is caught
/// by [`S3_STALL_GRACE`]. Listing 1,000 keys or writing a state object takes well under a second.
pub const S3_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// One S3 call including the SDK's own retries (3 attempts with backoff).
pub const S3_OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
/// A streamed S3 body that delivers nothing for this long fails (stalled-stream protection), so
/// a dead connection becomes a read error long before the Lambda deadline, never a hang.
pub const S3_STALL_GRACE: Duration = Duration::from_secs(20);
/// One `PutRecordBatch` call: up to 4 MiB of records, about 5.6 MiB of base64 JSON on the wire.
/// The sink turns the SDK's retries off and makes at most 10 calls per batch, so the worst case,
/// 10 x 15 s plus about 21 s of backoff, stays inside the template's default 300 s timeout.
pub const FIREHOSE_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
/// One Firehose call including any SDK retries (the sink disables them; this bounds the rest).
pub const FIREHOSE_OPERATION_TIMEOUT: Duration = Duration::from_secs(20);
/// One STS `AssumeRole` attempt; the call is small and answered from the function's region.
pub const STS_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// `AssumeRole` including the SDK's retries.
pub const STS_OPERATION_TIMEOUT: Duration = Duration::from_secs(15);

/// Why the clients could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Neither the environment nor a profile names a region for the SDK clients.
    #[error("no AWS region is configured: set AWS_REGION (Lambda sets it) or a profile's region")]
    NoRegion,
    /// The bucket a setting names does not exist (HeadBucket answered 404).
    #[error("{variable}: bucket {bucket:?} does not exist")]
    NoSuchBucket {
        variable: &'static str,
        bucket: String,
    },
    /// Finding the bucket's region failed on the network or at S3; a later start may succeed.
    #[error("{variable}: cannot find the region of bucket {bucket:?}: {reason}")]
    RegionLookup {
        variable: &'static str,
        bucket: String,
        reason: String,
    },
}

impl ClientError {
    /// Whether starting again can succeed without changing the settings.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ClientError::RegionLookup { .. })
    }
}

/// The SDK clients the settings call for.
#[derive(Debug, Clone)]
pub struct Clients {
    pub firehose: aws_sdk_firehose::Client,
    /// Reads audit objects, with the source credentials, in the audit bucket's region.
    pub audit: AuditBucket,
    /// `None` when neither `STATE_BUCKET` nor `AUDIT_BUCKET` is set.
    pub state: Option<StateBucket>,
    /// The Security Lake sources' clients and locations, when `DESTINATIONS` names the lake.
    pub lake: Option<(
        super::lake::LakeBuckets,
        std::sync::Arc<Vec<crate::sink::lake::Location>>,
    )>,
}

/// Builds the clients from the standard AWS configuration (environment, profile, Lambda role).
pub async fn clients(settings: &Settings) -> Result<Clients, ClientError> {
    let base = aws_config::defaults(BehaviorVersion::latest()).load().await;
    clients_from_config(&base, settings).await
}

/// Builds the clients from an already loaded configuration (tests pass one for moto).
///
/// - Firehose: `base` as it is, with [`FIREHOSE_ATTEMPT_TIMEOUT`].
/// - Audit bucket: the source credentials. An assumed role is assumed with `base`'s own
///   credentials, through STS in `base`'s region. The region is `AUDIT_BUCKET_REGION`, else the
///   one `HeadBucket` reports for `AUDIT_BUCKET` (its `x-amz-bucket-region` header, present on
///   success and on the 301/403 answers of a wrong region or missing permission), else
///   `GetBucketLocation`, else `base`'s region. Without `AUDIT_BUCKET`, `base`'s region: S3 only
///   notifies a function (directly or through SNS, SQS or EventBridge) in the bucket's region.
/// - State bucket: the function's own credentials, never the source ones, so the ledger is
///   written by the role the template grants the state prefix to. When it is the audit bucket it
///   shares that bucket's region and expected owner; otherwise its region is detected the same way.
///
/// S3 clients use path-style addressing when an endpoint URL is configured (`AWS_ENDPOINT_URL` or
/// `AWS_ENDPOINT_URL_S3`): local servers such as moto on 127.0.0.1 cannot take a bucket in the
/// host name.
pub async fn clients_from_config(
    base: &SdkConfig,
    settings: &Settings,
) -> Result<Clients, ClientError> {
    let home_region = base.region().cloned().ok_or(ClientError::NoRegion)?;
    let path_style = path_style(base);

    let firehose = aws_sdk_firehose::Client::from_conf(
        aws_sdk_firehose::config::Builder::from(base)
            .timeout_config(timeouts(
                FIREHOSE_ATTEMPT_TIMEOUT,
                FIREHOSE_OPERATION_TIMEOUT,
            ))
            .build(),
    );

    // One S3 client per set of credentials, in the function's region; a client for another
    // region is derived from it (`in_region`), which keeps its identity resolver and with it the
    // cached credentials: the source role is assumed once, not once per client.
    let source_provider = source_provider(base, &settings.source_credentials).await;
    let source_home = s3_client(base, home_region.clone(), source_provider, path_style);
    let own_home = s3_client(base, home_region.clone(), None, path_style);

    let owner = settings.expected_bucket_owner.clone();
    let audit_region = match (&settings.audit_bucket_region, &settings.audit_bucket) {
        (Some(region), _) => region.clone(),
        // S3 answers HeadBucket from any region, naming the bucket's own.
        (None, Some(bucket)) => {
            detect_region(&source_home, bucket, owner.as_deref(), var::AUDIT_BUCKET)
                .await?
                .unwrap_or_else(|| home_region.to_string())
        }
        (None, None) => home_region.to_string(),
    };
    let audit = BucketClient::new(
        in_region(&source_home, &audit_region),
        audit_region.clone(),
        owner.clone(),
    );

    let state = match &settings.state_bucket {
        None => None,
        Some(bucket) if Some(bucket) == settings.audit_bucket.as_ref() => {
            if settings.source_credentials != SourceCredentials::Default {
                tracing::warn!(
                    bucket = %bucket,
                    "the state (ledger, cursor) goes to the audit bucket with the function's own \
                     credentials, not the source ones; set STATE_BUCKET to a bucket of this \
                     account if the audit bucket belongs to another"
                );
            }
            Some(StateBucket {
                s3: BucketClient::new(
                    in_region(&own_home, &audit_region),
                    audit_region.clone(),
                    owner.clone(),
                ),
                bucket: bucket.clone(),
                prefix: settings.state_prefix.clone(),
            })
        }
        Some(bucket) => {
            let region = detect_region(&own_home, bucket, None, var::STATE_BUCKET)
                .await?
                .unwrap_or_else(|| home_region.to_string());
            Some(StateBucket {
                s3: BucketClient::new(in_region(&own_home, &region), region, None),
                bucket: bucket.clone(),
                prefix: settings.state_prefix.clone(),
            })
        }
    };

    let lake = match &settings.destinations.security_lake {
        Some(lake) => {
            let (buckets, locations) = super::lake::lake_buckets(base, lake, path_style).await;
            Some((buckets, std::sync::Arc::new(locations)))
        }
        None => None,
    };
    Ok(Clients {
        firehose,
        audit,
        state,
        lake,
    })
}

/// Path-style addressing: with an endpoint override (a local S3 such as moto), whose host does
/// not resolve bucket subdomains.
pub(super) fn path_style(base: &SdkConfig) -> bool {
    base.endpoint_url().is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some_and(|v| !v.is_empty())
}

/// The timeouts of the small control calls (STS, SQS, CloudWatch): a hung call fails and is
/// retried instead of holding the invocation or the doctor until its own deadline.
pub(super) fn control_timeouts() -> TimeoutConfig {
    timeouts(STS_ATTEMPT_TIMEOUT, STS_OPERATION_TIMEOUT)
}

pub(super) fn timeouts(attempt: Duration, operation: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(attempt)
        .operation_timeout(operation)
        .build()
}

/// An S3 client with the S3 timeouts, stall protection and addressing; `provider` replaces
/// `base`'s credentials when given.
pub(super) fn s3_client(
    base: &SdkConfig,
    region: Region,
    provider: Option<SharedCredentialsProvider>,
    path_style: bool,
) -> aws_sdk_s3::Client {
    let mut builder = aws_sdk_s3::config::Builder::from(base)
        .region(region)
        .timeout_config(timeouts(S3_ATTEMPT_TIMEOUT, S3_OPERATION_TIMEOUT))
        .stalled_stream_protection(
            StalledStreamProtectionConfig::enabled()
                .grace_period(S3_STALL_GRACE)
                .build(),
        )
        .force_path_style(path_style);
    if let Some(provider) = provider {
        builder = builder.credentials_provider(provider);
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// `client` for another region, sharing its credentials and their cache.
pub(super) fn in_region(client: &aws_sdk_s3::Client, region: &str) -> aws_sdk_s3::Client {
    if client.config().region().map(|r| r.as_ref()) == Some(region) {
        return client.clone();
    }
    aws_sdk_s3::Client::from_conf(
        client
            .config()
            .to_builder()
            .region(Region::new(region.to_string()))
            .build(),
    )
}

/// The credentials provider for the audit bucket; `None` keeps `base`'s own.
async fn source_provider(
    base: &SdkConfig,
    credentials: &SourceCredentials,
) -> Option<SharedCredentialsProvider> {
    match credentials {
        SourceCredentials::Default => None,
        SourceCredentials::AssumeRole {
            role_arn,
            external_id,
        } => {
            let sts_config = base
                .to_builder()
                .timeout_config(timeouts(STS_ATTEMPT_TIMEOUT, STS_OPERATION_TIMEOUT))
                .build();
            let mut builder = AssumeRoleProvider::builder(role_arn.as_str())
                .session_name(SOURCE_SESSION_NAME)
                .configure(&sts_config);
            if let Some(id) = external_id {
                builder = builder.external_id(id.as_str());
            }
            // The client's identity cache (from `base`) caches the role's credentials and
            // renews them before they expire; the provider itself calls STS each time.
            Some(SharedCredentialsProvider::new(builder.build().await))
        }
        SourceCredentials::Static {
            access_key_id,
            secret_access_key,
        } => Some(SharedCredentialsProvider::new(Credentials::new(
            access_key_id.as_str(),
            secret_access_key.expose(),
            None,
            None,
            "SOURCE_ACCESS_KEY_ID",
        ))),
    }
}

/// Header S3 puts on `HeadBucket` answers, successful or not, naming the bucket's region.
const BUCKET_REGION_HEADER: &str = "x-amz-bucket-region";

/// The bucket's region, `None` when S3 would not say (then the caller's region is used).
pub(super) async fn detect_region(
    probe: &aws_sdk_s3::Client,
    bucket: &str,
    expected_owner: Option<&str>,
    variable: &'static str,
) -> Result<Option<String>, ClientError> {
    use aws_sdk_s3::error::DisplayErrorContext;

    // Only the audit bucket's region can be configured instead of looked up.
    let hint = if variable == var::AUDIT_BUCKET {
        " (set AUDIT_BUCKET_REGION to skip the lookup)"
    } else {
        ""
    };
    let lookup_failed = |err: &dyn std::error::Error| ClientError::RegionLookup {
        variable,
        bucket: bucket.to_string(),
        reason: format!("{}{hint}", DisplayErrorContext(err)),
    };
    let owner = expected_owner.map(str::to_owned);
    match probe
        .head_bucket()
        .bucket(bucket)
        .set_expected_bucket_owner(owner.clone())
        .send()
        .await
    {
        Ok(out) => {
            if let Some(region) = out.bucket_region().filter(|r| !r.is_empty()) {
                return Ok(Some(region.to_string()));
            }
        }
        Err(err) => {
            let Some(raw) = err.raw_response() else {
                // No answer at all (timeout, connection refused, credentials): nothing learned.
                return Err(lookup_failed(&err));
            };
            if let Some(region) = raw
                .headers()
                .get(BUCKET_REGION_HEADER)
                .filter(|r| !r.is_empty())
            {
                return Ok(Some(region.to_string()));
            }
            if raw.status().as_u16() == 404 {
                return Err(ClientError::NoSuchBucket {
                    variable,
                    bucket: bucket.to_string(),
                });
            }
            if raw.status().is_server_error() {
                return Err(lookup_failed(&err));
            }
        }
    }

    // HeadBucket needs s3:ListBucket; GetBucketLocation is the other permission that tells.
    match probe
        .get_bucket_location()
        .bucket(bucket)
        .set_expected_bucket_owner(owner)
        .send()
        .await
    {
        Ok(out) => Ok(Some(
            location_region(out.location_constraint().map(|c| c.as_str())).to_string(),
        )),
        Err(err) => {
            tracing::warn!(
                bucket,
                variable,
                error = %DisplayErrorContext(&err),
                hint,
                "cannot find the bucket's region; using the function's region"
            );
            Ok(None)
        }
    }
}

/// `GetBucketLocation`'s answer to a region: empty means us-east-1, `EU` is the old eu-west-1.
fn location_region(constraint: Option<&str>) -> &str {
    match constraint {
        None | Some("") => "us-east-1",
        Some("EU") => "eu-west-1",
        Some(other) => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_constraints_map_to_regions() {
        assert_eq!(location_region(None), "us-east-1");
        assert_eq!(location_region(Some("")), "us-east-1");
        assert_eq!(location_region(Some("EU")), "eu-west-1");
        assert_eq!(location_region(Some("eu-west-1")), "eu-west-1");
        assert_eq!(location_region(Some("ap-south-2")), "ap-south-2");
    }
}
