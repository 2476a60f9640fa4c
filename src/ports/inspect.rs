//! The doctor's port: read-only questions about a deployment (who am I, where is the bucket and
//! who owns it, what do its policy and notifications say, is the stream there), answered by STS,
//! S3 and Firehose in `aws/inspect.rs` and by [`super::memory`]-style fakes in tests. Objects,
//! listings and state come through the other ports.

use super::BoxFuture;

/// The caller, as `sts:GetCallerIdentity` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub account: String,
    pub arn: String,
}

/// What S3 says about a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketFacts {
    pub region: String,
    /// Whether the expected owner owns it; `None` when no owner was given.
    pub owner_matches: Option<bool>,
}

/// One event notification of a bucket (Lambda, SQS or SNS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationTarget {
    /// `lambda`, `sqs` or `sns`.
    pub kind: String,
    pub arn: String,
    /// Event names, e.g. `s3:ObjectCreated:*`.
    pub events: Vec<String>,
    /// Key filter rules; `None` when the notification has none.
    pub prefix: Option<String>,
    pub suffix: Option<String>,
}

/// A bucket's notification configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notifications {
    /// Events go to EventBridge (`EventBridgeConfiguration` present).
    pub eventbridge: bool,
    pub targets: Vec<NotificationTarget>,
}

/// What Firehose says about a delivery stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamFacts {
    /// `ACTIVE`, `CREATING`, ...
    pub status: String,
    /// `DirectPut`, `KinesisStreamAsSource`, ...
    pub stream_type: String,
    /// The destination, named: `S3 arn:aws:s3:::bucket`, `Redshift`, `OpenSearch`, ...
    pub destination: String,
}

/// Why a question could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    /// The bucket, policy or stream does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Access denied: the credentials lack a permission (or the owner differs).
    #[error("{0}")]
    Denied(String),
    /// Anything else (network, throttling, a malformed answer).
    #[error("{0}")]
    Failed(String),
}

/// Read-only questions about the deployment.
pub trait Inspect: Send + Sync {
    /// `sts:GetCallerIdentity`.
    fn caller_identity(&self) -> BoxFuture<'_, Result<Identity, InspectError>>;
    /// The audit bucket's region, and whether `expected_owner` owns it.
    fn bucket<'a>(
        &'a self,
        bucket: &'a str,
        expected_owner: Option<&'a str>,
    ) -> BoxFuture<'a, Result<BucketFacts, InspectError>>;
    /// The audit bucket's policy as JSON text; `None` when it has none.
    fn bucket_policy<'a>(
        &'a self,
        bucket: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, InspectError>>;
    /// The audit bucket's notification configuration.
    fn bucket_notifications<'a>(
        &'a self,
        bucket: &'a str,
    ) -> BoxFuture<'a, Result<Notifications, InspectError>>;
    /// The delivery stream; [`InspectError::NotFound`] when there is none.
    fn stream<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<StreamFacts, InspectError>>;
}
