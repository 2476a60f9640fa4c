//! The doctor's checks of the audit files: 3 `audit_files` (files of every selected type under
//! the prefix, and their age) and 4 `sample` (the newest one read and parsed).

use std::time::Duration;

use super::files::{self, Found};
use super::{age_text, folder, skipped, Check, Doctor, Status, NAMES, SAMPLE_RECORDS};
use crate::output::Provenance;
use crate::pipeline::{self, Input, Spec, Stopped};
use crate::ports::{Fetch, ObjectRef};

impl Doctor {
    /// 3: files of each selected type and their age.
    pub(super) async fn audit_files(&self) -> (Check, Option<Found>) {
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
    pub(super) async fn sample<F: Fetch>(&self, fetch: &F, found: &Found) -> Check {
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
                sessions: None,
                collect: None,
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
}

fn missing_fix(missing: &[&str]) -> String {
    if missing.contains(&"useractivitylog") {
        "Set the enable_user_activity_logging parameter to true in the cluster's parameter group for user activity logs (connection and user logs need only audit logging on; a user log is written only when users change), or drop the missing types from LOG_TYPES.".into()
    } else {
        "Check that audit logging is on for the clusters (aws redshift describe-logging-status) and that AUDIT_PREFIX is where they log; a user log is written only when users change, so drop it from LOG_TYPES if that is expected.".into()
    }
}
