//! The doctor: checks a deployment end to end with the function's own settings and credentials
//! and says, for each check, ok, warning or failed, and for each that is not ok the fix in one
//! sentence. `doctor [--json]` on the command line and the `{"doctor": {}}` event in Lambda run
//! the same [`Doctor::run`].
//!
//! The nine checks, in order:
//!
//! 1. `settings`: the settings are valid (all problems at once) and who the caller is
//!    (`sts:GetCallerIdentity`);
//! 2. `audit_bucket`: the audit bucket exists and is reachable, its region, and that the
//!    expected owner owns it;
//! 3. `audit_files`: the prefix holds files of every selected type, the newest file's age per
//!    type (a warning past `STALE_AFTER`);
//! 4. `sample`: the newest file read and parsed (its first records), with the record count;
//! 5. `bucket_policy`: the bucket policy lets Redshift write (seed 001);
//! 6. `trigger`: new objects reach the function: EventBridge notifications on the bucket, or an
//!    event notification for the prefix and `.gz`;
//! 7. `state`: the state store honours conditional writes: a probe object is created with
//!    `If-None-Match`, read back, overwritten with `If-Match`, read again, and a second create
//!    must be refused. The probe (`<STATE_PREFIX>doctor/probe.json`, a few bytes) is overwritten
//!    on every run rather than deleted: the function has no `s3:DeleteObject` on its state;
//! 8. `stream`: the Firehose stream exists, is `ACTIVE` and takes direct puts; its destination;
//! 9. `set_aside`: no object is set aside (failed `MAX_ATTEMPTS` times, or once for good); each
//!    one that is gets listed with its attempts and last error (a warning: the rest of the
//!    deployment works, but those objects' records are not forwarded until someone looks).

pub mod files;
pub mod lake;
pub mod policy;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::ledger::{Ledger, SetAside};
use crate::output::Provenance;
use crate::pipeline::{self, Input, Spec, Stopped};
use crate::ports::{
    Clock, Fetch, Inspect, InspectError, ListObjects, Notifications, ObjectRef, Precondition,
    StateError, StateStore,
};
use crate::settings::{Settings, SettingsError};
use files::Found;

/// Records parsed from the sample file at most.
pub const SAMPLE_RECORDS: u64 = 1000;
/// Where the state probe lives, under `STATE_PREFIX`.
pub const STATE_PROBE: &str = "doctor/probe.json";

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warning,
    Failed,
    /// Not run: an earlier check failed in a way that leaves nothing to check.
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// 1 to 8, in the order above.
    pub number: u8,
    pub name: &'static str,
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do, in one sentence; present when the status is not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// The objects the check is about, where it lists some (`set_aside`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<SetAside>,
}

impl Check {
    fn ok(number: u8, name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            number,
            name,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
            objects: Vec::new(),
        }
    }

    fn not_ok(
        number: u8,
        name: &'static str,
        status: Status,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            number,
            name,
            status,
            detail: detail.into(),
            fix: Some(fix.into()),
            objects: Vec::new(),
        }
    }
}

/// Every check's outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// False when any check failed.
    pub ok: bool,
    pub checks: Vec<Check>,
}

impl Report {
    fn new(checks: Vec<Check>) -> Report {
        Report {
            ok: checks.iter().all(|c| c.status != Status::Failed),
            checks,
        }
    }

    /// The check named `name`.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// One line per check, `N. name: status: detail (fix: ...)`.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            out.push_str(&format!(
                "{}. {:<13} {:<8} {}",
                c.number,
                c.name,
                c.status.as_str(),
                c.detail
            ));
            if let Some(fix) = &c.fix {
                out.push_str(" Fix: ");
                out.push_str(fix);
            }
            out.push('\n');
        }
        out
    }
}

const NAMES: [&str; 9] = [
    "settings",
    "audit_bucket",
    "audit_files",
    "sample",
    "bucket_policy",
    "trigger",
    "state",
    "stream",
    "set_aside",
];

/// Set-aside objects named in the `set_aside` check's detail line; `objects` (and `--json`)
/// hold them all, up to the ledger's listing bound.
const ASIDE_NAMED: usize = 5;

/// The report when the settings themselves are invalid: check 1 lists every problem, the others
/// are skipped.
pub fn report_for_invalid_settings(error: &SettingsError) -> Report {
    let problems: Vec<String> = error.problems().iter().map(|p| p.to_string()).collect();
    let mut checks = vec![Check::not_ok(
        1,
        NAMES[0],
        Status::Failed,
        format!("invalid settings: {}", problems.join("; ")),
        "Fix the variables named (DESIGN.md's settings table says what each takes) and run the doctor again.",
    )];
    for (i, name) in NAMES.iter().enumerate().skip(1) {
        checks.push(Check::not_ok(
            i as u8 + 1,
            name,
            Status::Skipped,
            "not checked: the settings are invalid",
            "Fix the settings first.",
        ));
    }
    Report::new(checks)
}

/// What the doctor checks with, built once (`runtime` or `diagnose` wires the AWS adapters).
#[derive(Clone)]
pub struct Doctor {
    pub settings: Settings,
    pub inspect: Arc<dyn Inspect>,
    /// Lists the audit bucket (the audit credentials).
    pub list: Arc<dyn ListObjects>,
    /// The state store; `None` when there is no state bucket or it could not be reached.
    pub state: Option<Arc<dyn StateStore>>,
    pub clock: Arc<dyn Clock>,
    /// Problems met while connecting, by variable (a bucket that does not exist), shown by the
    /// check they belong to.
    pub setup_problems: Vec<(&'static str, String)>,
    /// The Security Lake sources' probe (`lake.rs`), when the lake is a destination.
    pub lake: Option<Arc<dyn lake::LakeProbe>>,
}

/// A human age: `42 s`, `17 min`, `5 h 3 min`, `3 d 4 h`.
pub fn age_text(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=119 => format!("{s} s"),
        120..=3599 => format!("{} min", s / 60),
        3600..=86_399 => format!("{} h {} min", s / 3600, s / 60 % 60),
        _ => format!("{} d {} h", s / 86_400, s / 3600 % 24),
    }
}

impl Doctor {
    /// Runs the nine checks; `fetch` reads audit objects (the handler's own fetch).
    pub async fn run<F: Fetch>(&self, fetch: &F) -> Report {
        let mut checks = vec![self.identity().await];
        let (bucket_check, region) = self.audit_bucket().await;
        let bucket_failed = bucket_check.status == Status::Failed;
        checks.push(bucket_check);
        let found = if bucket_failed {
            checks.push(skipped(3, "the audit bucket cannot be reached"));
            None
        } else {
            let (check, found) = self.audit_files().await;
            checks.push(check);
            found
        };
        checks.push(match &found {
            Some(found) => self.sample(fetch, found).await,
            None => skipped(4, "no audit file to read"),
        });
        checks.push(if bucket_failed {
            skipped(5, "the audit bucket cannot be reached")
        } else {
            self.bucket_policy(region.as_deref()).await
        });
        checks.push(if bucket_failed {
            skipped(6, "the audit bucket cannot be reached")
        } else {
            self.trigger().await
        });
        let state = self.state().await;
        let state_failed = state.status == Status::Failed;
        checks.push(state);
        checks.push(self.stream().await);
        checks.push(if state_failed {
            skipped(9, "the state store cannot be used")
        } else {
            self.set_aside().await
        });
        checks.extend(self.lake().await);
        Report::new(checks)
    }

    fn setup_problem(&self, variable: &str) -> Option<&str> {
        self.setup_problems
            .iter()
            .find(|(v, _)| *v == variable)
            .map(|(_, p)| p.as_str())
    }

    /// 1: settings (valid, or this would not run) and identity.
    async fn identity(&self) -> Check {
        match self.inspect.caller_identity().await {
            Ok(id) => Check::ok(
                1,
                NAMES[0],
                format!("settings valid; running as {} (account {})", id.arn, id.account),
            ),
            Err(e) => Check::not_ok(
                1,
                NAMES[0],
                Status::Failed,
                format!("settings valid, but sts:GetCallerIdentity failed: {e}"),
                "Check the credentials the function runs with (its role in Lambda; AWS_PROFILE or the AWS_* variables on the command line) and AWS_REGION.",
            ),
        }
    }

    /// 2: the audit bucket; also returns its region.
    async fn audit_bucket(&self) -> (Check, Option<String>) {
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

    /// 3: files of each selected type and their age.
    async fn audit_files(&self) -> (Check, Option<Found>) {
        let (n, name) = (3, NAMES[2]);
        let Some(bucket) = self.settings.audit_bucket.as_deref() else {
            return (skipped(n, "AUDIT_BUCKET is not set"), None);
        };
        let prefix = self.settings.audit_prefix.as_str();
        let shown = format!("s3://{bucket}/{}", folder(prefix));
        let wanted = &self.settings.log_types;
        let found = match files::newest_files(self.list.as_ref(), bucket, prefix, wanted).await {
            Ok(found) => found,
            Err(e) => {
                let fix = if e.retryable {
                    "Run the doctor again; if it keeps failing, check the network path to S3."
                } else {
                    "Grant the function s3:ListBucket on the audit prefix (the template does) and check AUDIT_PREFIX."
                };
                return (
                    Check::not_ok(
                        n,
                        name,
                        Status::Failed,
                        format!("cannot list {shown}: {e}"),
                        fix,
                    ),
                    None,
                );
            }
        };
        if found.trees == 0 {
            return (Check::not_ok(n, name, Status::Failed,
                format!("no day partitions (YYYY/MM/DD/) under {shown}"),
                "Set AUDIT_PREFIX to the prefix Redshift logs to (AWSLogs/<account>/redshift/<region>, after any custom prefix) and check that audit logging is on (aws redshift describe-logging-status)."), None);
        }
        let now = self.clock.now_ms();
        let stale_after = self.settings.stale_after;
        let mut parts = Vec::new();
        let mut missing = Vec::new();
        let mut stale = Vec::new();
        for log_type in wanted {
            match found.newest.get(log_type) {
                None => missing.push(log_type.as_str()),
                Some(newest) => {
                    let age = (now - newest.file_ms).div_euclid(1000);
                    parts.push(format!(
                        "{log_type}: newest {} ({} old)",
                        crate::time::rfc3339_ms(newest.file_ms),
                        age_text(age)
                    ));
                    if Duration::from_secs(u64::try_from(age).unwrap_or(0)) > stale_after {
                        stale.push(format!("{log_type} ({} old)", age_text(age)));
                    }
                }
            }
        }
        let others: Vec<&str> = found
            .newest
            .keys()
            .filter(|t| !wanted.contains(t))
            .map(|t| t.as_str())
            .collect();
        let searched = format!(
            "{} partition tree(s), newest {} day(s) listed",
            found.trees, found.days_listed
        );
        let check = if parts.is_empty() {
            let detail = if others.is_empty() {
                format!("no audit log files under {shown} ({searched})")
            } else {
                format!(
                    "only {} files under {shown}, none of LOG_TYPES ({}) ({searched})",
                    others.join(", "),
                    missing.join(", ")
                )
            };
            Check::not_ok(n, name, Status::Failed, detail, missing_fix(&missing))
        } else if !missing.is_empty() {
            Check::not_ok(
                n,
                name,
                Status::Warning,
                format!(
                    "{}; no {} files in the newest days listed ({searched})",
                    parts.join("; "),
                    missing.join(", ")
                ),
                missing_fix(&missing),
            )
        } else if !stale.is_empty() {
            Check::not_ok(n, name, Status::Warning,
                format!("{}; older than STALE_AFTER ({}): {}", parts.join("; "), age_text(stale_after.as_secs() as i64), stale.join(", ")),
                "Check that audit logging is still on for the cluster and that the bucket policy and owner did not change (Redshift keeps logging enabled but uploads nothing when the owner changes).")
        } else {
            Check::ok(n, name, format!("{} ({searched})", parts.join("; ")))
        };
        (check, Some(found))
    }

    /// 4: the newest file of a selected type, read and parsed.
    async fn sample<F: Fetch>(&self, fetch: &F, found: &Found) -> Check {
        let (n, name) = (4, NAMES[3]);
        let Some(bucket) = self.settings.audit_bucket.clone() else {
            return skipped(n, "AUDIT_BUCKET is not set");
        };
        let newest = self
            .settings
            .log_types
            .iter()
            .filter_map(|t| found.newest.get(t))
            .max_by_key(|n| n.file_ms);
        let Some(newest) = newest else {
            return skipped(n, "no audit file of a selected type to read");
        };
        let object = ObjectRef {
            bucket: bucket.clone(),
            key: newest.object.key.clone(),
            size: Some(newest.object.size),
            etag: Some(newest.object.etag.clone()),
            version_id: None,
            alternate_key: None,
        };
        let shown = format!("s3://{bucket}/{}", object.key);
        let Ok(file_name) = object.file_name() else {
            return skipped(n, "the newest file's name is not an audit log name");
        };
        let fetched = match fetch.fetch(&object).await {
            Ok(fetched) => fetched,
            Err(e) => {
                return Check::not_ok(n, name, Status::Failed, format!("cannot read {shown}: {e}"),
                    "Grant the function (or SOURCE_ROLE_ARN's role) s3:GetObject on the audit prefix, and kms:Decrypt if the bucket uses a KMS key.")
            }
        };
        let log_type = file_name.log_type;
        let provenance = Provenance::new(log_type, Some(&file_name), Some(&bucket), &object.key);
        let parsed = tokio::task::spawn_blocking(move || {
            let spec = Spec {
                input: Input::AuditLog(log_type),
                output: crate::pipeline::Output::default(),
                provenance: &provenance,
                max_line: None,
            };
            let mut records = 0u64;
            pipeline::run(fetched.body, &spec, &mut |_| {
                records += 1;
                records < SAMPLE_RECORDS
            })
        })
        .await;
        let (counts, result) = match parsed {
            Ok(parsed) => parsed,
            Err(e) => {
                return Check::not_ok(
                    n,
                    name,
                    Status::Failed,
                    format!("parsing {shown} failed: {e}"),
                    "Report this as a bug, with the file if you can share it.",
                )
            }
        };
        let limited = if counts.records >= SAMPLE_RECORDS {
            format!(" (the first {SAMPLE_RECORDS})")
        } else {
            String::new()
        };
        match result {
            Err(Stopped::Read(e)) => Check::not_ok(n, name, Status::Failed,
                format!("reading {shown} failed after {} records: {e}", counts.records),
                "Check that the object is a Redshift audit log (gzip or plain text) and not cut short; the forwarder would retry it."),
            Ok(()) | Err(Stopped::Emit) if counts.parse_errors > 0 => Check::not_ok(n, name, Status::Warning,
                format!("read {shown}: {} records{limited}, {} of them parse errors (first: {})", counts.records, counts.parse_errors,
                    counts.first_error.as_ref().map(|(line, why)| format!("line {line}: {why}")).unwrap_or_default()),
                "Parse errors are still forwarded with their raw text; report the line if it is a real Redshift format the parser does not know."),
            Ok(()) | Err(Stopped::Emit) => Check::ok(n, name,
                format!("read {shown}: {} records{limited}, no parse errors", counts.records)),
        }
    }

    /// 5: Redshift may write to the bucket.
    async fn bucket_policy(&self, region: Option<&str>) -> Check {
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
    async fn trigger(&self) -> Check {
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

    /// 7: the conditional-write round trip in the state store.
    async fn state(&self) -> Check {
        let (n, name) = (7, NAMES[6]);
        let Some(store) = &self.state else {
            let detail = match (
                self.setup_problem("STATE_BUCKET"),
                &self.settings.state_bucket,
            ) {
                (Some(problem), _) => problem.to_string(),
                (None, Some(bucket)) => format!("state bucket {bucket:?} cannot be used"),
                (None, None) => "no state bucket: STATE_BUCKET and AUDIT_BUCKET are unset".into(),
            };
            return Check::not_ok(n, name, Status::Failed, detail,
                "Set STATE_BUCKET to an existing bucket of this account (the template creates one) where the function may read and write under STATE_PREFIX.");
        };
        let key = format!("{}{STATE_PROBE}", self.settings.state_prefix);
        let location = store.location(&key);
        match probe_state(store.as_ref(), &key, self.clock.now_ms()).await {
            Ok(()) if self.settings.state_bucket.is_some()
                && self.settings.state_bucket == self.settings.audit_bucket =>
            {
                Check::not_ok(n, name, Status::Warning,
                    format!("{location}: the round trip works, but the state lives in the audit bucket, where whoever can write audit logs can also forge done markers, cursors and leases"),
                    "Keep the state in a bucket of its own (the template creates one when StateBucket is empty) and set STATE_BUCKET to it.")
            }
            Ok(()) => Check::ok(n, name, format!("{location}: created if absent (If-None-Match), read, overwritten with If-Match, read back; a second create was refused")),
            Err(ProbeError::Ignored(what)) => Check::not_ok(n, name, Status::Failed,
                format!("{location}: the store ignored {what}, so two walkers could both take the lease"),
                "Use an Amazon S3 bucket for STATE_BUCKET: the lease and the cursor rely on S3's conditional writes."),
            Err(ProbeError::Store(e)) => Check::not_ok(n, name, Status::Failed, e.to_string(),
                if e.to_string().contains("NoSuchBucket") {
                    "Create the state bucket or set STATE_BUCKET to an existing one (the template creates one when StateBucket is empty)."
                } else {
                    "Grant the function s3:GetObject, s3:PutObject and s3:ListBucket under STATE_PREFIX in STATE_BUCKET (the template does)."
                }),
        }
    }

    /// 8: the delivery stream.
    async fn stream(&self) -> Check {
        let (n, name) = (8, NAMES[7]);
        let stream = self.settings.delivery_stream.as_str();
        if !self.settings.destinations.firehose {
            return Check::ok(n, name, "Firehose is not a destination (DESTINATIONS)");
        }
        match self.inspect.stream(stream).await {
            Err(InspectError::NotFound(e)) => Check::not_ok(n, name, Status::Failed,
                format!("Firehose stream {stream:?} does not exist: {e}"),
                "Create the stream (Direct PUT) in the function's region, or set DELIVERY_STREAM to an existing stream's name."),
            Err(InspectError::Denied(e)) => Check::not_ok(n, name, Status::Failed,
                format!("cannot describe Firehose stream {stream:?}: {e}"),
                "Grant the function firehose:DescribeDeliveryStream and firehose:PutRecordBatch on the stream (the template does)."),
            Err(InspectError::Failed(e)) => Check::not_ok(n, name, Status::Failed,
                format!("cannot describe Firehose stream {stream:?}: {e}"),
                "Check the network path to Firehose and AWS_REGION, then run the doctor again."),
            Ok(s) if s.status != "ACTIVE" => Check::not_ok(n, name, Status::Failed,
                format!("Firehose stream {stream:?} is {}, not ACTIVE", s.status),
                "Wait until the stream is ACTIVE, or recreate it if it failed."),
            Ok(s) if s.stream_type != "DirectPut" => Check::not_ok(n, name, Status::Failed,
                format!("Firehose stream {stream:?} reads from {} and refuses direct puts", s.stream_type),
                "Point DELIVERY_STREAM at a Direct PUT stream: PutRecordBatch is refused by streams with a Kinesis or MSK source."),
            Ok(s) => Check::ok(n, name, format!("Firehose stream {stream:?} is ACTIVE, takes direct puts, and delivers to {}", s.destination)),
        }
    }
}

impl Doctor {
    /// 9: objects set aside, from the ledger (those done since, by a retry, are passed over).
    async fn set_aside(&self) -> Check {
        let (n, name) = (9, NAMES[8]);
        let Some(store) = &self.state else {
            return skipped(n, "no state store");
        };
        let ledger =
            Ledger::new(store.clone(), &self.settings.state_prefix).with_clock(self.clock.clone());
        let records = match ledger.list_set_aside().await {
            Ok(records) => records,
            Err(e) => return Check::not_ok(n, name, Status::Warning,
                format!("cannot list the set-aside records: {e}"),
                "Grant the function s3:ListBucket on STATE_BUCKET under STATE_PREFIX (the template does), then run the doctor again."),
        };
        let mut waiting = Vec::new();
        let mut refused = Vec::new();
        for record in records {
            match record {
                Ok(aside) => {
                    let done = ledger.done(&aside.bucket, &aside.key, &aside.etag).await;
                    if !matches!(done, Ok(Some(_))) {
                        waiting.push(aside);
                    }
                }
                Err(e) => refused.push(e.to_string()),
            }
        }
        if waiting.is_empty() && refused.is_empty() {
            return Check::ok(n, name, "no object is set aside");
        }
        let mut detail = format!(
            "{} object(s) set aside, their records not forwarded",
            waiting.len()
        );
        for aside in waiting.iter().take(ASIDE_NAMED) {
            detail.push_str(&format!(
                "; s3://{}/{} ({} failed attempt(s), set aside {} by the {} path): {}",
                aside.bucket,
                aside.key,
                aside.attempts,
                aside.set_aside_at,
                aside.via,
                aside.last_error
            ));
        }
        if waiting.len() > ASIDE_NAMED {
            detail.push_str(&format!(
                "; and {} more (`backfill --dry-run` lists them all)",
                waiting.len() - ASIDE_NAMED
            ));
        }
        if !refused.is_empty() {
            detail.push_str(&format!(
                "; {} record(s) refused: {}",
                refused.len(),
                refused.join("; ")
            ));
        }
        let mut check = Check::not_ok(n, name, Status::Warning, detail,
            "Read each last error and fix its cause (a permission, a file that is not an audit log under the prefix, a text past MAX_EXPANSION), then run `redshift-audit-forwarder backfill --retry-set-aside`; an object that is not an audit log can stay set aside.");
        check.objects = waiting;
        check
    }
}

fn skipped(number: u8, why: &str) -> Check {
    Check::not_ok(
        number,
        NAMES[usize::from(number) - 1],
        Status::Skipped,
        format!("not checked: {why}"),
        "Fix the failed checks above first.",
    )
}

/// The prefix as a folder (`p/`), or empty.
fn folder(prefix: &str) -> String {
    match prefix.trim_end_matches('/') {
        "" => String::new(),
        p => format!("{p}/"),
    }
}

fn missing_fix(missing: &[&str]) -> String {
    if missing.contains(&"useractivitylog") {
        "Set the enable_user_activity_logging parameter to true in the cluster's parameter group for user activity logs (connection and user logs need only audit logging on; a user log is written only when users change), or drop the missing types from LOG_TYPES.".into()
    } else {
        "Check that audit logging is on for the clusters (aws redshift describe-logging-status) and that AUDIT_PREFIX is where they log; a user log is written only when users change, so drop it from LOG_TYPES if that is expected.".into()
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

/// Why the state probe failed.
enum ProbeError {
    /// A conditional write was not honoured.
    Ignored(&'static str),
    Store(StateError),
}

impl From<StateError> for ProbeError {
    fn from(e: StateError) -> ProbeError {
        ProbeError::Store(e)
    }
}

/// Create-if-absent, read, overwrite-if-match, read back, and a create that must be refused.
async fn probe_state(store: &dyn StateStore, key: &str, now_ms: i64) -> Result<(), ProbeError> {
    let body = |step: &str| format!("{{\"doctor\":\"{step}\",\"at_ms\":{now_ms}}}").into_bytes();
    match store
        .put(key, body("created"), Precondition::IfAbsent)
        .await
    {
        // Left by an earlier run: the refusal shows the condition is honoured.
        Ok(_) | Err(StateError::Conflict { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let Some(stored) = store.get(key).await? else {
        return Err(ProbeError::Ignored("a write (the object is not there)"));
    };
    let wanted = body("overwritten");
    store
        .put(key, wanted.clone(), Precondition::IfMatch(stored.etag))
        .await?;
    match store.get(key).await? {
        Some(read) if read.body == wanted => {}
        _ => return Err(ProbeError::Ignored("an overwrite (read back differs)")),
    }
    match store.put(key, body("again"), Precondition::IfAbsent).await {
        Err(StateError::Conflict { .. }) => Ok(()),
        Ok(_) => Err(ProbeError::Ignored("If-None-Match")),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests;
