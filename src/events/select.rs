//! Which keys are forwarded ([`Filter::select`]): Redshift audit log files of a selected type
//! and, with `cloudtrail` in `LOG_TYPES`, CloudTrail event files, both under the audit prefix.
//! The live path and the backfill walk use the same test, so both select the same objects.

use super::{Filter, Skip};
use crate::cloudtrail::{has_trail_name, parse_trail_key, TrailFileName};
use crate::key::{self, LogFileName};

/// A key that is forwarded, and what its name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selected {
    /// A Redshift audit log file.
    AuditLog(LogFileName),
    /// A CloudTrail event file.
    Trail(TrailFileName),
}

impl Selected {
    /// The file name's time, RFC 3339 UTC (the backfill's start-time test).
    pub fn file_time(&self) -> &str {
        match self {
            Selected::AuditLog(name) => &name.file_time,
            Selected::Trail(name) => &name.file_time,
        }
    }
}

impl Filter {
    /// Decides whether a decoded key is forwarded; on success, what its file name says. A key
    /// in a trail's folders that holds no events (`CloudTrail-Digest/`, `CloudTrail-Insight/`)
    /// is left out saying so.
    pub fn select(&self, key: &str) -> Result<Selected, Skip> {
        if !key::is_under_prefix(key, &self.prefix) {
            return Err(Skip::OutsidePrefix {
                prefix: self.prefix.clone(),
            });
        }
        let audit_error = match key::parse_file_name(key) {
            Ok(name) if self.log_types.contains(&name.log_type) => {
                return Ok(Selected::AuditLog(name))
            }
            Ok(name) => return Err(Skip::LogTypeNotSelected(name.log_type)),
            Err(e) => e,
        };
        if self.cloudtrail.is_none() {
            return Err(Skip::NotAuditLog(audit_error));
        }
        match parse_trail_key(key) {
            Ok(name) => Ok(Selected::Trail(name)),
            Err(e) if e.is_not_events() || has_trail_name(key) => Err(Skip::NotTrailEvents(e)),
            Err(_) => Err(Skip::NotAuditLog(audit_error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudtrail::EventSources;

    const TRAIL: &str = "logs/AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/01/123456789012_CloudTrail_us-east-1_20240301T0055Z_AbCdEf0123456789.json.gz";
    const ORG_TRAIL: &str = "logs/AWSLogs/o-abcdef1234/123456789012/CloudTrail/us-east-1/2024/03/01/123456789012_CloudTrail_us-east-1_20240301T0055Z_AbCdEf0123456789.json.gz";
    const DIGEST: &str = "logs/AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2024/03/01/123456789012_CloudTrail-Digest_us-east-1_trail_us-east-1_20240301T005500Z.json.gz";
    const AUDIT: &str = "logs/AWSLogs/123456789012/redshift/us-east-1/2024/03/01/123456789012_redshift_us-east-1_prod_userlog_2024-03-01T00:53.gz";

    fn filter(cloudtrail: bool) -> Filter {
        Filter {
            prefix: "logs".into(),
            cloudtrail: cloudtrail.then(EventSources::default),
            ..Filter::default()
        }
    }

    #[test]
    fn trail_files_are_selected_only_with_cloudtrail() {
        for key in [TRAIL, ORG_TRAIL] {
            let Ok(Selected::Trail(name)) = filter(true).select(key) else {
                panic!("{key} not selected");
            };
            assert_eq!(name.account_id, "123456789012");
            assert_eq!(
                filter(true).select(key).unwrap().file_time(),
                "2024-03-01T00:55:00Z"
            );
            assert!(matches!(
                filter(false).select(key),
                Err(Skip::NotAuditLog(_))
            ));
        }
        let Ok(Selected::Trail(org)) = filter(true).select(ORG_TRAIL) else {
            panic!("not selected");
        };
        assert_eq!(org.organization_id.as_deref(), Some("o-abcdef1234"));
    }

    #[test]
    fn digest_files_are_left_out_saying_so() {
        let skip = filter(true).select(DIGEST).unwrap_err();
        assert!(skip.to_string().contains("digest"), "{skip}");
    }

    #[test]
    fn audit_logs_are_still_selected_beside_trails() {
        assert!(matches!(
            filter(true).select(AUDIT),
            Ok(Selected::AuditLog(_))
        ));
        assert!(matches!(
            filter(true).select("logs/notes.txt"),
            Err(Skip::NotAuditLog(_))
        ));
        assert!(matches!(
            filter(true).select(&TRAIL.replace("logs/", "other/")),
            Err(Skip::OutsidePrefix { .. })
        ));
    }
}
