//! The doctor's checks of the audit bucket itself: 2 `audit_bucket` (exists, reachable, region,
//! owner), 5 `bucket_policy` (Redshift may write) and 6 `trigger` (new objects reach the function).

use super::{folder, policy, skipped, Check, Doctor, Status, NAMES};
use crate::ports::{InspectError, Notifications};

impl Doctor {
    /// 2: the audit bucket; also returns its region.
    pub(super) async fn audit_bucket(&self) -> (Check, Option<String>) {
        let (n, name) = (2, NAMES[1]);
        let Some(bucket) = self.settings.audit_bucket.as_deref() else {
            return (
                Check::not_ok(n, name, Status::Failed, "AUDIT_BUCKET is not set",
                    "Set AUDIT_BUCKET to the bucket the clusters log to (aws redshift describe-logging-status shows it)."),
                None,
            );
        };
        let owner = self.settings.expected_bucket_owner.as_deref();
        let facts = match self.inspect.bucket(bucket, owner).await {
            Ok(facts) => facts,
            Err(InspectError::NotFound(e)) => {
                let detail = self.setup_problem("AUDIT_BUCKET").map_or(e, str::to_string);
                return (Check::not_ok(n, name, Status::Failed,
                    format!("bucket {bucket:?} does not exist: {detail}"),
                    "Set AUDIT_BUCKET to the bucket named in the cluster's logging configuration (aws redshift describe-logging-status)."), None);
            }
            Err(InspectError::Denied(e)) => {
                return (Check::not_ok(n, name, Status::Failed,
                    format!("access to bucket {bucket:?} denied: {e}"),
                    "Grant the function s3:GetBucketLocation on the bucket (the template does), and if the bucket is in another account, set SOURCE_ROLE_ARN to a role there that may read it."), None);
            }
            Err(InspectError::Failed(e)) => {
                return (Check::not_ok(n, name, Status::Failed,
                    format!("cannot reach bucket {bucket:?}: {e}"),
                    "Check the network path to S3 and the region (AUDIT_BUCKET_REGION), then run the doctor again."), None);
            }
        };
        if facts.owner_matches == Some(false) {
            return (Check::not_ok(n, name, Status::Failed,
                format!("bucket {bucket:?} ({}) is not owned by EXPECTED_BUCKET_OWNER {}", facts.region, owner.unwrap_or_default()),
                "The bucket changed hands or the setting is wrong: Redshift stops uploading when the owner changes, so point logging and AUDIT_BUCKET at a bucket of the expected account, or correct EXPECTED_BUCKET_OWNER."), Some(facts.region));
        }
        if let Some(configured) = self.settings.audit_bucket_region.as_deref() {
            if configured != facts.region {
                return (
                    Check::not_ok(
                        n,
                        name,
                        Status::Failed,
                        format!(
                            "bucket {bucket:?} is in {}, but AUDIT_BUCKET_REGION says {configured}",
                            facts.region
                        ),
                        format!(
                            "Set AUDIT_BUCKET_REGION to {} or leave it empty to detect it.",
                            facts.region
                        ),
                    ),
                    Some(facts.region),
                );
            }
        }
        let owner_text = match owner {
            Some(o) => format!(", owned by {o} as expected"),
            None => String::new(),
        };
        (
            Check::ok(
                n,
                name,
                format!(
                    "s3://{bucket} is reachable, in {}{owner_text}",
                    facts.region
                ),
            ),
            Some(facts.region),
        )
    }

    /// 5: Redshift may write to the bucket.
    pub(super) async fn bucket_policy(&self, region: Option<&str>) -> Check {
        let (n, name) = (5, NAMES[4]);
        let Some(bucket) = self.settings.audit_bucket.as_deref() else {
            return skipped(n, "AUDIT_BUCKET is not set");
        };
        let fix = format!(
            "Add the bucket policy of the Redshift guide (\"Bucket permissions for Amazon Redshift audit logging\"): allow the redshift.amazonaws.com service principal (or {}) s3:PutObject on arn:aws:s3:::{bucket}/{}* and s3:GetBucketAcl on arn:aws:s3:::{bucket}.",
            region
                .and_then(policy::redshift_account)
                .map(|a| format!("arn:aws:iam::{a}:user/logs"))
                .unwrap_or_else(|| "the region's Redshift account".into()),
            folder(&self.settings.audit_prefix)
        );
        let text = match self.inspect.bucket_policy(bucket).await {
            Ok(Some(text)) => text,
            Ok(None) => {
                return Check::not_ok(
                    n,
                    name,
                    Status::Warning,
                    format!("bucket {bucket:?} has no bucket policy, so Redshift cannot write to it unless it created the bucket itself"),
                    fix,
                )
            }
            Err(e) => {
                return Check::not_ok(n, name, Status::Warning,
                    format!("cannot read the policy of bucket {bucket:?}: {e}"),
                    "Grant the function s3:GetBucketPolicy on the audit bucket (the template does) to let the doctor check it, or check the policy by hand.")
            }
        };
        let region = region.unwrap_or("");
        match policy::redshift_grants(&text, bucket, &self.settings.audit_prefix, region) {
            Err(e) => Check::not_ok(n, name, Status::Warning, format!("bucket {bucket:?}: {e}"), fix),
            Ok(g) if g.put_object && g.get_bucket_acl => Check::ok(n, name,
                format!("the policy of {bucket:?} lets {} put objects under the prefix and read the bucket ACL", g.principals.join(" and "))),
            Ok(g) => {
                let mut lacking = Vec::new();
                if !g.put_object {
                    lacking.push("s3:PutObject on the audit prefix");
                }
                if !g.get_bucket_acl {
                    lacking.push("s3:GetBucketAcl on the bucket");
                }
                Check::not_ok(n, name, Status::Warning,
                    format!("the policy of {bucket:?} does not grant Redshift ({}) {}", policy::REDSHIFT_SERVICE, lacking.join(" or ")),
                    fix)
            }
        }
    }

    /// 6: new objects reach the function.
    pub(super) async fn trigger(&self) -> Check {
        let (n, name) = (6, NAMES[5]);
        let Some(bucket) = self.settings.audit_bucket.as_deref() else {
            return skipped(n, "AUDIT_BUCKET is not set");
        };
        let fix = format!(
            "Turn on EventBridge notifications on the bucket (aws s3api put-bucket-notification-configuration --bucket {bucket} --notification-configuration '{{\"EventBridgeConfiguration\": {{}}}}') for the template's Trigger=EventBridge, or for Trigger=S3Notification add an event notification for prefix {} and suffix .gz to the stack's FunctionArn or QueueArn output."
            , folder(&self.settings.audit_prefix)
        );
        let notifications = match self.inspect.bucket_notifications(bucket).await {
            Ok(notifications) => notifications,
            Err(e) => {
                return Check::not_ok(n, name, Status::Warning,
                    format!("cannot read the notification configuration of {bucket:?}: {e}"),
                    "Grant the function s3:GetBucketNotification on the audit bucket (the template does) to let the doctor check it.")
            }
        };
        if notifications.eventbridge {
            return Check::ok(
                n,
                name,
                format!("bucket {bucket:?} sends its events to EventBridge"),
            );
        }
        match matching_target(&notifications, &self.settings.audit_prefix) {
            Some(target) => Check::ok(
                n,
                name,
                format!(
                    "bucket {bucket:?} notifies {} {} of new objects under the prefix",
                    target.kind, target.arn
                ),
            ),
            None => Check::not_ok(
                n,
                name,
                Status::Warning,
                format!(
                    "bucket {bucket:?} has neither EventBridge notifications nor an event notification for new .gz objects under {}: new files arrive only with the backfill schedule",
                    folder(&self.settings.audit_prefix)
                ),
                fix,
            ),
        }
    }
}

/// A notification that sends new `.gz` objects under the prefix somewhere.
fn matching_target<'a>(
    notifications: &'a Notifications,
    prefix: &str,
) -> Option<&'a crate::ports::NotificationTarget> {
    let folder = folder(prefix);
    notifications.targets.iter().find(|t| {
        let created = t.events.iter().any(|e| e.starts_with("s3:ObjectCreated:"));
        let prefix_ok = t
            .prefix
            .as_deref()
            .is_none_or(|p| folder.starts_with(p) || p.starts_with(&folder));
        let suffix_ok = t
            .suffix
            .as_deref()
            .is_none_or(|s| s.is_empty() || ".gz".ends_with(s));
        created && prefix_ok && suffix_ok
    })
}
