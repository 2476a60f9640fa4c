//! Settings from the environment (DESIGN.md, "Settings"), validated once at start-up.
//!
//! [`Settings::from_vars`] reads every variable, collects every problem and fails with one
//! message listing them all, one line each, so a deployment is fixed in one round. An empty (or
//! blank) value counts as unset everywhere, because SAM passes empty parameters through.
//! A secret's value never appears in an error or in `Debug` output.

use std::fmt;

use crate::events::Filter;
use crate::key;
use crate::logs::LogType;

// TEMPORARY: the AWS clients moved out of this module; re-exported until the lead's `aws/`
// module takes them (see `aws_clients_tmp.rs`).
pub use crate::aws_clients_tmp::*;

/// The environment variables, as DESIGN.md's table names them.
pub mod var {
    pub const DELIVERY_STREAM: &str = "DELIVERY_STREAM";
    pub const LOG_TYPES: &str = "LOG_TYPES";
    pub const AUDIT_BUCKET: &str = "AUDIT_BUCKET";
    pub const AUDIT_PREFIX: &str = "AUDIT_PREFIX";
    pub const AUDIT_BUCKET_REGION: &str = "AUDIT_BUCKET_REGION";
    pub const SOURCE_ROLE_ARN: &str = "SOURCE_ROLE_ARN";
    pub const SOURCE_EXTERNAL_ID: &str = "SOURCE_EXTERNAL_ID";
    pub const SOURCE_ACCESS_KEY_ID: &str = "SOURCE_ACCESS_KEY_ID";
    pub const SOURCE_SECRET_ACCESS_KEY: &str = "SOURCE_SECRET_ACCESS_KEY";
    pub const EXPECTED_BUCKET_OWNER: &str = "EXPECTED_BUCKET_OWNER";
    pub const BACKFILL_START_TIME: &str = "BACKFILL_START_TIME";
    pub const BACKFILL_LOOKBACK_DAYS: &str = "BACKFILL_LOOKBACK_DAYS";
    pub const STATE_BUCKET: &str = "STATE_BUCKET";
    pub const STATE_PREFIX: &str = "STATE_PREFIX";
    pub const OUTPUT_FORMAT: &str = "OUTPUT_FORMAT";
    pub const PACK_RECORDS: &str = "PACK_RECORDS";

    /// Every variable, in the table's order.
    pub const ALL: [&str; 16] = [
        DELIVERY_STREAM,
        LOG_TYPES,
        AUDIT_BUCKET,
        AUDIT_PREFIX,
        AUDIT_BUCKET_REGION,
        SOURCE_ROLE_ARN,
        SOURCE_EXTERNAL_ID,
        SOURCE_ACCESS_KEY_ID,
        SOURCE_SECRET_ACCESS_KEY,
        EXPECTED_BUCKET_OWNER,
        BACKFILL_START_TIME,
        BACKFILL_LOOKBACK_DAYS,
        STATE_BUCKET,
        STATE_PREFIX,
        OUTPUT_FORMAT,
        PACK_RECORDS,
    ];
}

/// `STATE_PREFIX` when unset (DESIGN.md).
pub const DEFAULT_STATE_PREFIX: &str = "redshift-audit-forwarder/";
/// `BACKFILL_LOOKBACK_DAYS` when unset (DESIGN.md).
pub const DEFAULT_LOOKBACK_DAYS: u32 = 1;
/// Largest `BACKFILL_LOOKBACK_DAYS`: a year (a leap one) of re-listing is already far more than
/// any late file needs; more is a typo.
pub const MAX_LOOKBACK_DAYS: u32 = 366;
/// Firehose stream names: 1 to 64 of `[a-zA-Z0-9_.-]` (Firehose API, `DeliveryStreamName`).
const MAX_STREAM_NAME: usize = 64;
/// Longest bucket name S3 ever allowed (legacy us-east-1 names; new names stop at 63).
const MAX_BUCKET_NAME: usize = 255;
/// STS `ExternalId`: 2 to 1,224 of `[\w+=,.@:/-]` (STS API reference).
const EXTERNAL_ID_LEN: std::ops::RangeInclusive<usize> = 2..=1224;

/// The validated settings. Build with [`Settings::from_env`] or [`Settings::from_vars`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `DELIVERY_STREAM`: the Firehose stream's name.
    pub delivery_stream: String,
    /// `LOG_TYPES`: selected log types, in the order given, without duplicates; never empty.
    pub log_types: Vec<LogType>,
    /// `AUDIT_BUCKET`; live events name their own bucket, the backfill needs this one.
    pub audit_bucket: Option<String>,
    /// `AUDIT_PREFIX` without a trailing `/`; empty for the whole bucket.
    pub audit_prefix: String,
    /// `AUDIT_BUCKET_REGION`; unset means the AWS code detects it.
    pub audit_bucket_region: Option<String>,
    /// `SOURCE_*`: how to read the audit bucket.
    pub source_credentials: SourceCredentials,
    /// `EXPECTED_BUCKET_OWNER`: 12-digit account ID.
    pub expected_bucket_owner: Option<String>,
    /// `BACKFILL_START_TIME`; unset means the full history.
    pub backfill_start_time: Option<StartTime>,
    /// `BACKFILL_LOOKBACK_DAYS`, 0 to [`MAX_LOOKBACK_DAYS`].
    pub backfill_lookback_days: u32,
    /// `STATE_BUCKET`, or the audit bucket when unset; `None` when neither is set.
    pub state_bucket: Option<String>,
    /// `STATE_PREFIX`, always ending with `/`.
    pub state_prefix: String,
    /// `OUTPUT_FORMAT`.
    pub output_format: OutputFormat,
    /// `PACK_RECORDS`.
    pub pack_records: bool,
}

/// Credentials for reading the audit bucket (`SOURCE_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceCredentials {
    /// The function's own credentials (the default chain).
    Default,
    /// Assume this role (through the default chain's credentials) for every audit-bucket call.
    AssumeRole {
        role_arn: String,
        external_id: Option<String>,
    },
    /// Fixed keys, e.g. for a bucket of an account that cannot grant a role.
    Static {
        access_key_id: String,
        secret_access_key: Secret,
    },
}

/// A value that must never be logged: `Debug` prints `<redacted>` and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that needs it (the credentials provider).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `OUTPUT_FORMAT`. OCSF arrives with a later issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Raw,
}

pub use crate::time::StartTime;

/// One thing wrong with one variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub variable: &'static str,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.reason)
    }
}

/// Why the settings or the clients built from them are unusable.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// Fix the environment: retrying never helps.
    #[error("{}", render_problems(.0))]
    Invalid(Vec<Problem>),
}

impl SettingsError {
    /// Whether starting again can succeed without changing the settings.
    pub fn is_retryable(&self) -> bool {
        false
    }

    /// The problems of an [`SettingsError::Invalid`], empty for the other variants.
    pub fn problems(&self) -> &[Problem] {
        match self {
            SettingsError::Invalid(problems) => problems,
        }
    }
}

fn render_problems(problems: &[Problem]) -> String {
    let mut out = match problems.len() {
        1 => "invalid setting:".to_string(),
        n => format!("{n} invalid settings:"),
    };
    for problem in problems {
        out.push_str("\n  ");
        out.push_str(&problem.to_string());
    }
    out
}

impl Settings {
    /// Reads the process environment. A value that is not UTF-8 is refused like any other bad
    /// value (it is read lossily, and the replacement character fails validation).
    pub fn from_env() -> Result<Settings, SettingsError> {
        Settings::from_vars(|name| {
            std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
        })
    }

    /// Reads the variables through `get`; every problem is reported, not only the first.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingsError> {
        let mut problems = Vec::new();
        let mut report = |variable: &'static str, reason: String| {
            problems.push(Problem { variable, reason });
        };
        // Surrounding blanks are never meant (a pasted parameter); a blank value is unset.
        let value = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };

        let delivery_stream = match value(var::DELIVERY_STREAM) {
            None => {
                report(
                    var::DELIVERY_STREAM,
                    "is required: the name of the Firehose stream to send records to".into(),
                );
                String::new()
            }
            Some(name) => {
                if let Err(reason) = check_stream_name(&name) {
                    report(var::DELIVERY_STREAM, reason);
                }
                name
            }
        };

        let log_types = match value(var::LOG_TYPES) {
            None => LogType::ALL.to_vec(),
            Some(list) => parse_log_types(&list).unwrap_or_else(|reason| {
                report(var::LOG_TYPES, reason);
                Vec::new()
            }),
        };

        let audit_bucket = value(var::AUDIT_BUCKET);
        if let Some(bucket) = &audit_bucket {
            if let Err(reason) = check_bucket_name(bucket, "AUDIT_PREFIX") {
                report(var::AUDIT_BUCKET, reason);
            }
        }

        let audit_prefix = value(var::AUDIT_PREFIX)
            .map(|p| p.trim_end_matches('/').to_string())
            .unwrap_or_default();
        if let Err(e) = key::validate_prefix(&audit_prefix) {
            report(var::AUDIT_PREFIX, e.to_string());
        }

        let audit_bucket_region = value(var::AUDIT_BUCKET_REGION);
        if let Some(region) = &audit_bucket_region {
            if !is_region(region) {
                report(
                    var::AUDIT_BUCKET_REGION,
                    format!("{region:?} is not an AWS region name (e.g. us-east-1)"),
                );
            }
        }

        let source_credentials = source_credentials(&value, &mut report);

        let expected_bucket_owner = value(var::EXPECTED_BUCKET_OWNER);
        if let Some(owner) = &expected_bucket_owner {
            if !(owner.len() == 12 && owner.bytes().all(|b| b.is_ascii_digit())) {
                report(
                    var::EXPECTED_BUCKET_OWNER,
                    format!("{owner:?} is not a 12-digit AWS account ID"),
                );
            }
        }

        let backfill_start_time =
            value(var::BACKFILL_START_TIME).and_then(|text| match StartTime::parse(&text) {
                Ok(time) => Some(time),
                Err(reason) => {
                    report(
                        var::BACKFILL_START_TIME,
                        format!(
                            "{text:?} is not an RFC 3339 time (e.g. 2024-03-01T00:00:00Z): {reason}"
                        ),
                    );
                    None
                }
            });

        let backfill_lookback_days = match value(var::BACKFILL_LOOKBACK_DAYS) {
            None => DEFAULT_LOOKBACK_DAYS,
            Some(text) => parse_lookback(&text).unwrap_or_else(|reason| {
                report(var::BACKFILL_LOOKBACK_DAYS, reason);
                DEFAULT_LOOKBACK_DAYS
            }),
        };

        let state_bucket = match value(var::STATE_BUCKET) {
            Some(bucket) => {
                if let Err(reason) = check_bucket_name(&bucket, "STATE_PREFIX") {
                    report(var::STATE_BUCKET, reason);
                }
                Some(bucket)
            }
            None => audit_bucket.clone(),
        };

        let state_prefix = match value(var::STATE_PREFIX) {
            None => DEFAULT_STATE_PREFIX.to_string(),
            Some(prefix) => {
                if let Err(e) = key::validate_prefix(&prefix) {
                    report(var::STATE_PREFIX, e.to_string());
                }
                // State objects live in a folder of their own.
                if prefix.ends_with('/') {
                    prefix
                } else {
                    format!("{prefix}/")
                }
            }
        };

        let output_format = match value(var::OUTPUT_FORMAT).map(|f| f.to_ascii_lowercase()) {
            None => OutputFormat::Raw,
            Some(format) => match format.as_str() {
                "raw" => OutputFormat::Raw,
                "ocsf" => {
                    report(
                        var::OUTPUT_FORMAT,
                        "\"ocsf\" is not available yet (it arrives with a later release); \
                         use raw"
                            .into(),
                    );
                    OutputFormat::Raw
                }
                _ => {
                    report(
                        var::OUTPUT_FORMAT,
                        format!("unknown format {format:?} (expected raw)"),
                    );
                    OutputFormat::Raw
                }
            },
        };

        let pack_records = match value(var::PACK_RECORDS) {
            None => true,
            Some(text) => parse_bool(&text).unwrap_or_else(|| {
                report(
                    var::PACK_RECORDS,
                    format!("{text:?} is not a boolean (true/false, 1/0, yes/no)"),
                );
                true
            }),
        };

        if !problems.is_empty() {
            return Err(SettingsError::Invalid(problems));
        }
        Ok(Settings {
            delivery_stream,
            log_types,
            audit_bucket,
            audit_prefix,
            audit_bucket_region,
            source_credentials,
            expected_bucket_owner,
            backfill_start_time,
            backfill_lookback_days,
            state_bucket,
            state_prefix,
            output_format,
            pack_records,
        })
    }

    /// The audit bucket, which the backfill cannot do without.
    pub fn require_audit_bucket(&self) -> Result<&str, SettingsError> {
        self.audit_bucket.as_deref().ok_or_else(|| {
            SettingsError::Invalid(vec![Problem {
                variable: var::AUDIT_BUCKET,
                reason: "is required for the backfill: the bucket Redshift writes its audit \
                         logs to"
                    .into(),
            }])
        })
    }

    /// The state bucket (ledger, cursor, lease): `STATE_BUCKET`, else the audit bucket.
    pub fn require_state_bucket(&self) -> Result<&str, SettingsError> {
        self.state_bucket.as_deref().ok_or_else(|| {
            SettingsError::Invalid(vec![Problem {
                variable: var::STATE_BUCKET,
                reason: "is required for the ledger and the backfill cursor; set it or \
                         AUDIT_BUCKET"
                    .into(),
            }])
        })
    }

    /// Which objects to forward: `AUDIT_PREFIX` and `LOG_TYPES`.
    pub fn filter(&self) -> Filter {
        Filter {
            prefix: self.audit_prefix.clone(),
            log_types: self.log_types.clone(),
        }
    }
}

/// Reads the four `SOURCE_*` variables into one choice, reporting every inconsistency.
fn source_credentials(
    value: &impl Fn(&str) -> Option<String>,
    report: &mut impl FnMut(&'static str, String),
) -> SourceCredentials {
    let role_arn = value(var::SOURCE_ROLE_ARN);
    let external_id = value(var::SOURCE_EXTERNAL_ID);
    let key_id = value(var::SOURCE_ACCESS_KEY_ID);
    let secret = value(var::SOURCE_SECRET_ACCESS_KEY);

    if let Some(arn) = &role_arn {
        if let Err(reason) = check_role_arn(arn) {
            report(var::SOURCE_ROLE_ARN, reason);
        }
    }
    if let Some(id) = &external_id {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c);
        if !EXTERNAL_ID_LEN.contains(&id.len()) || !id.chars().all(allowed) {
            // Not echoed: an external ID is a shared secret of sorts.
            report(
                var::SOURCE_EXTERNAL_ID,
                "must be 2 to 1224 characters of letters, digits and _+=,.@:/-".into(),
            );
        }
        if role_arn.is_none() {
            report(
                var::SOURCE_EXTERNAL_ID,
                "is set without SOURCE_ROLE_ARN; an external ID only applies to a role".into(),
            );
        }
    }
    // Keys are never echoed, the ID included: it identifies the secret's owner.
    let printable = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
    if let Some(id) = &key_id {
        if !printable(id) {
            report(
                var::SOURCE_ACCESS_KEY_ID,
                "is not an access key ID (letters and digits, no spaces)".into(),
            );
        }
    }
    if let Some(secret) = &secret {
        if !printable(secret) {
            report(
                var::SOURCE_SECRET_ACCESS_KEY,
                "is not a secret access key (printable ASCII, no spaces)".into(),
            );
        }
    }
    match (&key_id, &secret) {
        (Some(_), None) => report(
            var::SOURCE_SECRET_ACCESS_KEY,
            "is required when SOURCE_ACCESS_KEY_ID is set".into(),
        ),
        (None, Some(_)) => report(
            var::SOURCE_ACCESS_KEY_ID,
            "is required when SOURCE_SECRET_ACCESS_KEY is set".into(),
        ),
        _ => {}
    }
    if role_arn.is_some() && (key_id.is_some() || secret.is_some()) {
        report(
            var::SOURCE_ROLE_ARN,
            "is set together with static keys (SOURCE_ACCESS_KEY_ID/SOURCE_SECRET_ACCESS_KEY); \
             use a role or keys, never both"
                .into(),
        );
    }

    match (role_arn, key_id, secret) {
        (Some(role_arn), None, None) => SourceCredentials::AssumeRole {
            role_arn,
            external_id,
        },
        (None, Some(access_key_id), Some(secret)) => SourceCredentials::Static {
            access_key_id,
            secret_access_key: Secret(secret),
        },
        // Either nothing is set, or a problem was reported above.
        _ => SourceCredentials::Default,
    }
}

fn check_stream_name(name: &str) -> Result<(), String> {
    if name.starts_with("arn:") {
        return Err(format!(
            "{name:?} is an ARN; give the stream's name (the part after \"deliverystream/\")"
        ));
    }
    let valid = name.len() <= MAX_STREAM_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a Firehose stream name (1 to 64 of letters, digits, '_', '.', '-')"
        ))
    }
}

/// Deliberately lenient: legacy us-east-1 buckets may have capitals and `_` and up to 255
/// characters, so only what can never be a bucket name is refused, with a hint for the usual
/// mistakes (a URL, an ARN, a folder).
fn check_bucket_name(name: &str, prefix_variable: &str) -> Result<(), String> {
    if name.starts_with("s3://") || name.starts_with("arn:") {
        return Err(format!(
            "{name:?} is a URL or an ARN; give the bucket's name alone (folders go in \
             {prefix_variable})"
        ));
    }
    if name.contains('/') {
        return Err(format!(
            "{name:?} contains '/'; give the bucket's name alone (folders go in \
             {prefix_variable})"
        ));
    }
    let valid = (3..=MAX_BUCKET_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not an S3 bucket name (3 to 63 lowercase letters, digits, '.', '-', \
             starting and ending with a letter or digit)"
        ))
    }
}

/// `us-east-1`, `us-gov-west-1`, `eu-isoe-west-1`: letters, then words, then a number.
fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let letters = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase());
    parts.len() >= 3
        && parts[..parts.len() - 1].iter().all(|p| letters(p))
        && parts
            .last()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `arn:<partition>:iam::<account>:role/<path/name>`.
fn check_role_arn(arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let valid = parts.len() == 6
        && parts[0] == "arn"
        && !parts[1].is_empty()
        && parts[1]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'-')
        && parts[2] == "iam"
        && parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5].strip_prefix("role/").is_some_and(|name| {
            !name.is_empty() && !name.ends_with('/') && name.bytes().all(|b| b.is_ascii_graphic())
        });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{arn:?} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)"
        ))
    }
}

fn parse_log_types(list: &str) -> Result<Vec<LogType>, String> {
    let mut types = Vec::new();
    let mut unknown = Vec::new();
    // A stray comma (trailing, doubled) is harmless and ignored.
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let name = name.to_ascii_lowercase();
        if name == "cloudtrail" {
            return Err(
                "\"cloudtrail\" is not available yet (it arrives with a later release)".into(),
            );
        }
        match name.parse::<LogType>() {
            Ok(t) if !types.contains(&t) => types.push(t),
            Ok(_) => {}
            Err(_) => unknown.push(name),
        }
    }
    if !unknown.is_empty() {
        return Err(format!(
            "unknown log type {} (expected a comma-separated list of connectionlog, userlog, \
             useractivitylog)",
            unknown
                .iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if types.is_empty() {
        return Err("selects no log type; leave it empty for all three".into());
    }
    Ok(types)
}

fn parse_lookback(text: &str) -> Result<u32, String> {
    let out_of_range =
        || format!("{text:?} is not a whole number of days from 0 to {MAX_LOOKBACK_DAYS}");
    // Digits only: "+1", "1.0" and "-1" are refused rather than guessed at.
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(out_of_range());
    }
    match text.parse::<u32>() {
        Ok(days) if days <= MAX_LOOKBACK_DAYS => Ok(days),
        _ => Err(out_of_range()),
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const STREAM: &str = "audit-stream";

    /// Settings from `pairs` plus a valid `DELIVERY_STREAM` unless `pairs` sets it.
    fn from(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let mut vars: HashMap<String, String> = HashMap::new();
        vars.insert(var::DELIVERY_STREAM.into(), STREAM.into());
        for (k, v) in pairs {
            vars.insert((*k).into(), (*v).into());
        }
        Settings::from_vars(|name| vars.get(name).cloned())
    }

    fn ok(pairs: &[(&str, &str)]) -> Settings {
        match from(pairs) {
            Ok(s) => s,
            Err(e) => panic!("{pairs:?} refused: {e}"),
        }
    }

    fn problems(pairs: &[(&str, &str)]) -> Vec<Problem> {
        match from(pairs) {
            Ok(s) => panic!("{pairs:?} accepted: {s:?}"),
            Err(e) => e.problems().to_vec(),
        }
    }

    /// The one problem `pairs` gives must name `variable` and contain `words`.
    fn refused(pairs: &[(&str, &str)], variable: &str, words: &str) {
        let found = problems(pairs);
        assert_eq!(found.len(), 1, "{pairs:?}: {found:?}");
        assert_eq!(found[0].variable, variable, "{pairs:?}: {found:?}");
        assert!(
            found[0].reason.contains(words),
            "{pairs:?}: {:?} lacks {words:?}",
            found[0].reason
        );
    }

    #[test]
    fn defaults_follow_the_design_table() {
        let s = ok(&[]);
        assert_eq!(
            s,
            Settings {
                delivery_stream: STREAM.into(),
                log_types: LogType::ALL.to_vec(),
                audit_bucket: None,
                audit_prefix: String::new(),
                audit_bucket_region: None,
                source_credentials: SourceCredentials::Default,
                expected_bucket_owner: None,
                backfill_start_time: None,
                backfill_lookback_days: 1,
                state_bucket: None,
                state_prefix: "redshift-audit-forwarder/".into(),
                output_format: OutputFormat::Raw,
                pack_records: true,
            }
        );
    }

    #[test]
    fn empty_and_blank_values_are_unset_for_every_variable() {
        for value in ["", "   ", "\t"] {
            let pairs: Vec<(&str, &str)> = var::ALL
                .iter()
                .filter(|v| **v != var::DELIVERY_STREAM)
                .map(|v| (*v, value))
                .collect();
            assert_eq!(ok(&pairs), ok(&[]), "{value:?}");
        }
        refused(
            &[(var::DELIVERY_STREAM, "")],
            var::DELIVERY_STREAM,
            "required",
        );
    }

    #[test]
    fn delivery_stream_names() {
        for name in ["s", "audit-stream", "a.b_c-D9", "x".repeat(64).as_str()] {
            assert_eq!(ok(&[(var::DELIVERY_STREAM, name)]).delivery_stream, name);
        }
        assert_eq!(
            ok(&[(var::DELIVERY_STREAM, "  padded  ")]).delivery_stream,
            "padded"
        );
        for (name, words) in [
            ("has space", "not a Firehose stream name"),
            ("slash/name", "not a Firehose stream name"),
            ("x".repeat(65).as_str(), "not a Firehose stream name"),
            (
                "arn:aws:firehose:us-east-1:123456789012:deliverystream/s",
                "ARN",
            ),
        ] {
            refused(&[(var::DELIVERY_STREAM, name)], var::DELIVERY_STREAM, words);
        }
    }

    #[test]
    fn log_types_are_a_trimmed_comma_list() {
        use LogType::*;
        let cases: &[(&str, &[LogType])] = &[
            ("userlog", &[UserLog]),
            (
                " connectionlog , useractivitylog ",
                &[ConnectionLog, UserActivityLog],
            ),
            ("UserLog,CONNECTIONLOG", &[UserLog, ConnectionLog]),
            ("userlog,userlog", &[UserLog]),
            ("userlog,", &[UserLog]),
            (
                "useractivitylog,userlog,connectionlog",
                &[UserActivityLog, UserLog, ConnectionLog],
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(ok(&[(var::LOG_TYPES, text)]).log_types, *expected, "{text}");
        }
        for (text, words) in [
            ("querylog", "unknown log type \"querylog\""),
            ("userlog,foo,bar", "\"foo\", \"bar\""),
            ("cloudtrail", "not available yet"),
            ("userlog,cloudtrail", "not available yet"),
            (",", "selects no log type"),
        ] {
            refused(&[(var::LOG_TYPES, text)], var::LOG_TYPES, words);
        }
    }

    #[test]
    fn audit_bucket_names() {
        for name in ["my-audit-logs", "a.b.c", "abc", "Legacy_Bucket"] {
            assert_eq!(
                ok(&[(var::AUDIT_BUCKET, name)]).audit_bucket.as_deref(),
                Some(name)
            );
        }
        for (name, words) in [
            ("s3://bucket", "URL or an ARN"),
            ("arn:aws:s3:::bucket", "URL or an ARN"),
            ("bucket/AWSLogs", "contains '/'"),
            ("ab", "not an S3 bucket name"),
            ("-bucket", "not an S3 bucket name"),
            ("bucket-", "not an S3 bucket name"),
            ("my bucket", "not an S3 bucket name"),
        ] {
            refused(&[(var::AUDIT_BUCKET, name)], var::AUDIT_BUCKET, words);
        }
    }

    #[test]
    fn backfill_requires_the_audit_bucket() {
        let s = ok(&[]);
        let err = s.require_audit_bucket().err().map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains("AUDIT_BUCKET")),
            "{err:?}"
        );
        let s = ok(&[(var::AUDIT_BUCKET, "logs")]);
        assert_eq!(s.require_audit_bucket().ok(), Some("logs"));
    }

    #[test]
    fn audit_prefix_loses_its_trailing_slash_and_is_validated() {
        for (text, expected) in [
            (
                "AWSLogs/123456789012/redshift/us-east-1",
                "AWSLogs/123456789012/redshift/us-east-1",
            ),
            (
                "AWSLogs/123456789012/redshift/us-east-1/",
                "AWSLogs/123456789012/redshift/us-east-1",
            ),
            ("myprefix//", "myprefix"),
            ("/", ""),
        ] {
            assert_eq!(ok(&[(var::AUDIT_PREFIX, text)]).audit_prefix, expected);
        }
        refused(&[(var::AUDIT_PREFIX, "a b")], var::AUDIT_PREFIX, "' '");
        refused(
            &[(var::AUDIT_PREFIX, "a".repeat(513).as_str())],
            var::AUDIT_PREFIX,
            "513 characters",
        );
    }

    #[test]
    fn filter_carries_prefix_and_log_types() {
        let s = ok(&[(var::AUDIT_PREFIX, "logs/"), (var::LOG_TYPES, "userlog")]);
        assert_eq!(
            s.filter(),
            Filter {
                prefix: "logs".into(),
                log_types: vec![LogType::UserLog],
            }
        );
        assert_eq!(ok(&[]).filter(), Filter::default());
    }

    #[test]
    fn audit_bucket_region_names() {
        for region in [
            "us-east-1",
            "eu-central-1",
            "us-gov-west-1",
            "cn-northwest-1",
            "eu-isoe-west-1",
        ] {
            assert_eq!(
                ok(&[(var::AUDIT_BUCKET_REGION, region)])
                    .audit_bucket_region
                    .as_deref(),
                Some(region)
            );
        }
        for region in ["useast1", "US-EAST-1", "us-east", "us-east-1a", "eu-1"] {
            refused(
                &[(var::AUDIT_BUCKET_REGION, region)],
                var::AUDIT_BUCKET_REGION,
                "not an AWS region",
            );
        }
    }

    const ROLE: &str = "arn:aws:iam::210987654321:role/audit-reader";

    #[test]
    fn a_role_with_or_without_external_id_is_assumed() {
        assert_eq!(
            ok(&[(var::SOURCE_ROLE_ARN, ROLE)]).source_credentials,
            SourceCredentials::AssumeRole {
                role_arn: ROLE.into(),
                external_id: None
            }
        );
        assert_eq!(
            ok(&[
                (var::SOURCE_ROLE_ARN, ROLE),
                (var::SOURCE_EXTERNAL_ID, "x-Id_1+=,.@:/")
            ])
            .source_credentials,
            SourceCredentials::AssumeRole {
                role_arn: ROLE.into(),
                external_id: Some("x-Id_1+=,.@:/".into())
            }
        );
        for arn in [
            "arn:aws-us-gov:iam::210987654321:role/path/to/reader",
            "arn:aws-cn:iam::210987654321:role/r",
        ] {
            assert!(matches!(
                ok(&[(var::SOURCE_ROLE_ARN, arn)]).source_credentials,
                SourceCredentials::AssumeRole { .. }
            ));
        }
    }

    #[test]
    fn malformed_role_arns_are_refused() {
        for arn in [
            "audit-reader",
            "arn:aws:iam::21098765432:role/r",
            "arn:aws:iam::210987654321:user/r",
            "arn:aws:iam::210987654321:role/",
            "arn:aws:sts::210987654321:role/r",
            "arn:aws:iam:us-east-1:210987654321:role/r",
        ] {
            refused(
                &[(var::SOURCE_ROLE_ARN, arn)],
                var::SOURCE_ROLE_ARN,
                "not an IAM role ARN",
            );
        }
    }

    #[test]
    fn external_id_needs_a_role_and_a_valid_value() {
        refused(
            &[(var::SOURCE_EXTERNAL_ID, "abc")],
            var::SOURCE_EXTERNAL_ID,
            "without SOURCE_ROLE_ARN",
        );
        for id in ["x", "has space", "x".repeat(1225).as_str()] {
            refused(
                &[(var::SOURCE_ROLE_ARN, ROLE), (var::SOURCE_EXTERNAL_ID, id)],
                var::SOURCE_EXTERNAL_ID,
                "2 to 1224",
            );
        }
    }

    const KEY_ID: &str = "AKIAEXAMPLEKEYID0001";
    const SECRET: &str = "s3cr3t/Value+ThatMustNeverLeak0000000000";

    #[test]
    fn static_keys_need_both_halves() {
        assert_eq!(
            ok(&[
                (var::SOURCE_ACCESS_KEY_ID, KEY_ID),
                (var::SOURCE_SECRET_ACCESS_KEY, SECRET)
            ])
            .source_credentials,
            SourceCredentials::Static {
                access_key_id: KEY_ID.into(),
                secret_access_key: Secret::new(SECRET)
            }
        );
        refused(
            &[(var::SOURCE_ACCESS_KEY_ID, KEY_ID)],
            var::SOURCE_SECRET_ACCESS_KEY,
            "required when SOURCE_ACCESS_KEY_ID",
        );
        refused(
            &[(var::SOURCE_SECRET_ACCESS_KEY, SECRET)],
            var::SOURCE_ACCESS_KEY_ID,
            "required when SOURCE_SECRET_ACCESS_KEY",
        );
    }

    #[test]
    fn a_role_and_static_keys_together_are_refused() {
        refused(
            &[
                (var::SOURCE_ROLE_ARN, ROLE),
                (var::SOURCE_ACCESS_KEY_ID, KEY_ID),
                (var::SOURCE_SECRET_ACCESS_KEY, SECRET),
            ],
            var::SOURCE_ROLE_ARN,
            "never both",
        );
        // Half a key pair next to a role: both mistakes are named.
        let found = problems(&[
            (var::SOURCE_ROLE_ARN, ROLE),
            (var::SOURCE_ACCESS_KEY_ID, KEY_ID),
        ]);
        let vars: Vec<_> = found.iter().map(|p| p.variable).collect();
        assert_eq!(vars, [var::SOURCE_SECRET_ACCESS_KEY, var::SOURCE_ROLE_ARN]);
    }

    #[test]
    fn secrets_never_appear_in_errors_or_debug() {
        let bad_secret = "bad secret with spaces";
        let err = from(&[
            (var::SOURCE_ACCESS_KEY_ID, KEY_ID),
            (var::SOURCE_SECRET_ACCESS_KEY, bad_secret),
        ])
        .err()
        .map(|e| format!("{e} {e:?}"))
        .unwrap_or_default();
        assert!(err.contains(var::SOURCE_SECRET_ACCESS_KEY), "{err}");
        assert!(!err.contains(bad_secret), "{err}");

        let err = from(&[
            (var::SOURCE_ROLE_ARN, ROLE),
            (var::SOURCE_ACCESS_KEY_ID, KEY_ID),
            (var::SOURCE_SECRET_ACCESS_KEY, SECRET),
        ])
        .err()
        .map(|e| format!("{e} {e:?}"))
        .unwrap_or_default();
        assert!(!err.contains(SECRET) && !err.contains(KEY_ID), "{err}");

        let s = ok(&[
            (var::SOURCE_ACCESS_KEY_ID, KEY_ID),
            (var::SOURCE_SECRET_ACCESS_KEY, SECRET),
        ]);
        let shown = format!("{s:?} {s:#?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(!shown.contains("ThatMustNeverLeak"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn expected_bucket_owner_is_twelve_digits() {
        assert_eq!(
            ok(&[(var::EXPECTED_BUCKET_OWNER, "123456789012")])
                .expected_bucket_owner
                .as_deref(),
            Some("123456789012")
        );
        for owner in ["12345678901", "1234567890123", "12345678901a", "my-account"] {
            refused(
                &[(var::EXPECTED_BUCKET_OWNER, owner)],
                var::EXPECTED_BUCKET_OWNER,
                "12-digit",
            );
        }
    }

    #[test]
    fn backfill_start_times_in_every_rfc3339_form() {
        let cases = [
            ("1970-01-01T00:00:00Z", 0, "1970-01-01T00:00:00Z"),
            (
                "2024-03-01T00:00:00Z",
                1_709_251_200,
                "2024-03-01T00:00:00Z",
            ),
            (
                "2024-03-01t00:00:00z",
                1_709_251_200,
                "2024-03-01T00:00:00Z",
            ),
            (
                "2024-03-01 00:00:00Z",
                1_709_251_200,
                "2024-03-01T00:00:00Z",
            ),
            (
                "2024-03-01T00:00:00.999Z",
                1_709_251_200,
                "2024-03-01T00:00:00Z",
            ),
            (
                "2024-03-01T08:00:00+08:00",
                1_709_251_200,
                "2024-03-01T00:00:00Z",
            ),
            (
                "2024-02-29T19:00:00-05:00",
                1_709_251_200,
                "2024-03-01T00:00:00Z",
            ),
            (
                "2024-02-29T23:59:60Z",
                1_709_251_200,
                "2024-03-01T00:00:00Z",
            ),
            ("1969-12-31T23:59:59Z", -1, "1969-12-31T23:59:59Z"),
            (
                "2000-02-29T12:34:56.1234567890Z",
                951_827_696,
                "2000-02-29T12:34:56Z",
            ),
        ];
        for (text, unix, utc) in cases {
            let t = ok(&[(var::BACKFILL_START_TIME, text)]).backfill_start_time;
            assert_eq!(
                t,
                Some(StartTime {
                    unix_seconds: unix,
                    utc: utc.into(),
                    text: text.into()
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn start_time_day_is_the_utc_day() {
        let day = |text: &str| StartTime::parse(text).map(|t| t.utc_date());
        assert_eq!(day("2024-03-01T00:30:00+01:00"), Ok((2024, 2, 29)));
        assert_eq!(day("2023-12-31T23:30:00-01:00"), Ok((2024, 1, 1)));
        assert_eq!(day("1969-12-31T23:59:59Z"), Ok((1969, 12, 31)));
    }

    #[test]
    fn malformed_start_times_are_refused_with_the_reason() {
        for (text, reason) in [
            ("2024-03-01", "too short"),
            ("2024-03-01T00:00:00", "zone is missing"),
            ("2024-03-01T00:00Z", "too short"),
            ("2024-0a-01T00:00:00Z", "month is not all digits"),
            ("2024/03/01T00:00:00Z", "not YYYY-MM-DD"),
            ("2024-03-01_00:00:00Z", "not separated"),
            ("2024-03-01T00-00-00Z", "not HH:MM:SS"),
            ("2024-13-01T00:00:00Z", "month out of range"),
            ("2024-00-01T00:00:00Z", "month out of range"),
            ("2023-02-29T00:00:00Z", "day out of range"),
            ("2024-04-31T00:00:00Z", "day out of range"),
            ("2024-03-00T00:00:00Z", "day out of range"),
            ("2024-03-01T24:00:00Z", "hour out of range"),
            ("2024-03-01T00:60:00Z", "minute out of range"),
            ("2024-03-01T00:00:61Z", "second out of range"),
            ("2024-03-01T00:00:00.Z", "no digits"),
            ("2024-03-01T00:00:00+0100", "zone is not"),
            ("2024-03-01T00:00:00+24:00", "zone offset out of range"),
            ("2024-03-01T00:00:00+01:60", "zone offset out of range"),
            ("2024-03-01T00:00:00UTC", "zone is not"),
            ("2024-03-01T00:00:00Zjunk", "zone is not"),
            ("2024-03-01T00:00:00\u{ff3a}", "non-ASCII"),
            ("1709251200", "too short"),
        ] {
            refused(
                &[(var::BACKFILL_START_TIME, text)],
                var::BACKFILL_START_TIME,
                reason,
            );
        }
    }

    #[test]
    fn lookback_days_range_from_0_to_366() {
        for (text, days) in [("0", 0), ("1", 1), ("7", 7), ("366", 366), ("007", 7)] {
            assert_eq!(
                ok(&[(var::BACKFILL_LOOKBACK_DAYS, text)]).backfill_lookback_days,
                days
            );
        }
        for text in ["367", "-1", "+1", "1.5", "one", "99999999999"] {
            refused(
                &[(var::BACKFILL_LOOKBACK_DAYS, text)],
                var::BACKFILL_LOOKBACK_DAYS,
                "0 to 366",
            );
        }
    }

    #[test]
    fn state_bucket_defaults_to_the_audit_bucket() {
        assert_eq!(
            ok(&[(var::AUDIT_BUCKET, "audit")]).state_bucket.as_deref(),
            Some("audit")
        );
        let s = ok(&[(var::AUDIT_BUCKET, "audit"), (var::STATE_BUCKET, "state")]);
        assert_eq!(s.state_bucket.as_deref(), Some("state"));
        assert_eq!(s.require_state_bucket().ok(), Some("state"));
        assert_eq!(
            ok(&[(var::STATE_BUCKET, "state")]).audit_bucket,
            None,
            "the state bucket never stands in for the audit bucket"
        );
        let err = ok(&[]).require_state_bucket().err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("STATE_BUCKET") && e.contains("AUDIT_BUCKET")));
        refused(
            &[(var::STATE_BUCKET, "s3://state")],
            var::STATE_BUCKET,
            "STATE_PREFIX",
        );
    }

    #[test]
    fn state_prefix_always_ends_with_a_slash() {
        for (text, expected) in [
            ("state", "state/"),
            ("state/", "state/"),
            ("a/b/c", "a/b/c/"),
        ] {
            assert_eq!(ok(&[(var::STATE_PREFIX, text)]).state_prefix, expected);
        }
        refused(&[(var::STATE_PREFIX, "st ate")], var::STATE_PREFIX, "' '");
    }

    #[test]
    fn output_format_is_raw_only_for_now() {
        for text in ["raw", "RAW", " Raw "] {
            assert_eq!(
                ok(&[(var::OUTPUT_FORMAT, text)]).output_format,
                OutputFormat::Raw
            );
        }
        refused(
            &[(var::OUTPUT_FORMAT, "ocsf")],
            var::OUTPUT_FORMAT,
            "not available yet",
        );
        refused(
            &[(var::OUTPUT_FORMAT, "json")],
            var::OUTPUT_FORMAT,
            "expected raw",
        );
    }

    #[test]
    fn pack_records_reads_common_booleans() {
        for (text, value) in [
            ("true", true),
            ("TRUE", true),
            ("1", true),
            ("yes", true),
            ("Yes", true),
            ("false", false),
            ("False", false),
            ("0", false),
            ("no", false),
            ("NO", false),
        ] {
            assert_eq!(
                ok(&[(var::PACK_RECORDS, text)]).pack_records,
                value,
                "{text}"
            );
        }
        for text in ["on", "2", "truee", "y"] {
            refused(
                &[(var::PACK_RECORDS, text)],
                var::PACK_RECORDS,
                "not a boolean",
            );
        }
    }

    #[test]
    fn every_problem_is_reported_at_once_one_line_each() {
        let mut vars = HashMap::new();
        for (k, v) in [
            (var::LOG_TYPES, "querylog"),
            (var::AUDIT_PREFIX, "bad prefix"),
            (var::AUDIT_BUCKET_REGION, "mars"),
            (var::SOURCE_EXTERNAL_ID, "orphan-id"),
            (var::EXPECTED_BUCKET_OWNER, "nobody"),
            (var::BACKFILL_START_TIME, "yesterday"),
            (var::BACKFILL_LOOKBACK_DAYS, "400"),
            (var::STATE_BUCKET, "a/b"),
            (var::OUTPUT_FORMAT, "ocsf"),
            (var::PACK_RECORDS, "maybe"),
        ] {
            vars.insert(k, v.to_string());
        }
        let err = match Settings::from_vars(|name| vars.get(name).cloned()) {
            Ok(s) => panic!("accepted: {s:?}"),
            Err(e) => e,
        };
        assert!(!err.is_retryable());
        let named: Vec<_> = err.problems().iter().map(|p| p.variable).collect();
        assert_eq!(
            named,
            [
                var::DELIVERY_STREAM,
                var::LOG_TYPES,
                var::AUDIT_PREFIX,
                var::AUDIT_BUCKET_REGION,
                var::SOURCE_EXTERNAL_ID,
                var::EXPECTED_BUCKET_OWNER,
                var::BACKFILL_START_TIME,
                var::BACKFILL_LOOKBACK_DAYS,
                var::STATE_BUCKET,
                var::OUTPUT_FORMAT,
                var::PACK_RECORDS,
            ]
        );
        let message = err.to_string();
        let lines: Vec<_> = message.lines().collect();
        assert_eq!(lines[0], "11 invalid settings:");
        assert_eq!(lines.len(), 12, "{message}");
        for (line, variable) in lines[1..].iter().zip(named) {
            assert!(
                line.trim_start().starts_with(&format!("{variable}: ")),
                "{line}"
            );
        }
    }
}
