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
//!    on every run rather than deleted: the function has no `s3:DeleteObject` on its state.
//!    Then every cursor and the lease are checked as the backfill checks them: one it would
//!    refuse fails the check, naming the object and the fix (delete it or roll it back);
//! 8. `stream`: the Firehose stream exists, is `ACTIVE` and takes direct puts; its destination;
//! 9. `set_aside`: no object is set aside (failed `MAX_ATTEMPTS` times, or once for good); each
//!    one that is gets listed with its attempts and last error (a warning: the rest of the
//!    deployment works, but those objects' records are not forwarded until someone looks).

pub mod files;
pub mod lake;
pub mod policy;
mod queue;

mod audit;
mod bucket;
mod state;
mod stream;

use std::sync::Arc;

use serde::Serialize;

use crate::ledger::SetAside;
use crate::ports::{Clock, Fetch, Inspect, ListObjects, StateStore};
use crate::settings::{Settings, SettingsError};

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
    /// `BACKFILL_QUEUE_URL`'s queue: one more check, `backfill_queue` (`queue.rs`).
    pub queue: Option<Arc<dyn crate::ports::Queue>>,
    /// Reads the queue's oldest message age (CloudWatch); `None`: the age is not read.
    pub queue_age: Option<Arc<dyn crate::ports::ReadMetrics>>,
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
        let (state, state_usable) = self.state().await;
        checks.push(state);
        checks.push(self.stream().await);
        checks.push(if !state_usable {
            skipped(9, "the state store cannot be used")
        } else {
            self.set_aside().await
        });
        checks.extend(self.backfill_queue().await);
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

#[cfg(test)]
mod tests;
