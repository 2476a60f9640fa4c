//! The doctor's checks of the state store: 7 `state` (conditional writes are honoured) and
//! 9 `set_aside` (objects that failed for good).

use super::{skipped, Check, Doctor, Status, ASIDE_NAMED, NAMES, STATE_PROBE};
use crate::ledger::Ledger;
use crate::ports::{Precondition, StateError, StateStore};

impl Doctor {
    /// 7: the conditional-write round trip in the state store, then the walk's cursors and
    /// lease as the backfill would check them. Also says whether the store can be used (the
    /// set-aside check needs it; a refused cursor does not stop it).
    pub(super) async fn state(&self) -> (Check, bool) {
        let probed = self.state_probe().await;
        let Some(store) = &self.state else {
            return (probed, false);
        };
        if probed.status == Status::Failed {
            return (probed, false);
        }
        let ledger =
            Ledger::new(store.clone(), &self.settings.state_prefix).with_clock(self.clock.clone());
        let check = match ledger.refused_walk_state().await {
            Ok(refused) if refused.is_empty() => probed,
            Ok(refused) => refused_state(probed, &refused),
            Err(e) => Check::not_ok(probed.number, probed.name, Status::Warning,
                format!("{}; but the cursors could not be listed to check them: {e}", probed.detail),
                "Grant the function s3:ListBucket on STATE_BUCKET under STATE_PREFIX (the template does), then run the doctor again."),
        };
        (check, true)
    }

    /// 7, first part: the conditional-write round trip.
    async fn state_probe(&self) -> Check {
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

    /// 9: objects set aside, from the ledger (those done since, by a retry, are passed over).
    pub(super) async fn set_aside(&self) -> Check {
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

/// State objects named in the `state` check's detail line at most.
const REFUSED_NAMED: usize = 5;

/// The `state` check when the walk would stop on a refused cursor or lease: failed, naming each
/// object and the fix.
fn refused_state(probed: Check, refused: &[StateError]) -> Check {
    let mut detail = format!(
        "{} state object(s) the backfill refuses, so every walk stops (NotRetryable.BackfillStateRefused) until they are repaired",
        refused.len()
    );
    for e in refused.iter().take(REFUSED_NAMED) {
        detail.push_str("; ");
        detail.push_str(&e.to_string());
    }
    if refused.len() > REFUSED_NAMED {
        detail.push_str(&format!("; and {} more", refused.len() - REFUSED_NAMED));
    }
    detail.push_str(&format!(
        " (the round trip itself works: {})",
        probed.detail
    ));
    let first = match &refused[0] {
        StateError::Corrupt { location, .. } => location.clone(),
        other => other.to_string(),
    };
    Check::not_ok(probed.number, probed.name, Status::Failed, detail, format!(
        "Delete each object named (aws s3 rm {first}), or roll it back to its previous version in the versioned state bucket (aws s3api list-object-versions, then copy that version over it), once no backfill is running; a deleted cursor makes the next walk start from BACKFILL_START_TIME and skip every object already done."))
}

/// Why the state probe failed.
pub(super) enum ProbeError {
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
pub(super) async fn probe_state(
    store: &dyn StateStore,
    key: &str,
    now_ms: i64,
) -> Result<(), ProbeError> {
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
