//! The parsers of setting values, one a kind of value: the trimmed, non-blank text in, the value
//! or the reason it is refused (naming the value, except for secrets) out. The reader in
//! `settings.rs` decides which variable each one reads and what an unset variable means.

use std::ops::RangeInclusive;
use std::time::Duration;

use super::{
    var, OutputFormat, Secret, CLOUDTRAIL, MAX_ATTEMPTS_RANGE, MAX_EXPANSION_RANGE,
    MAX_LOOKBACK_DAYS, MAX_STALE_AFTER,
};
use crate::aws_names;
use crate::key::{self, KeyError};
use crate::ledger::check::{CLOCK_SKEW_MS, EARLIEST_DAY};
use crate::logs::LogType;
use crate::time::StartTime;

/// CloudWatch namespaces: 1 to 255 of letters, digits, `.-_/#:` and space, never starting with
/// `AWS/` (reserved; CloudWatch `PutMetricData`, `Namespace`).
const MAX_METRICS_NAMESPACE: usize = 255;
const NAMESPACE_PUNCTUATION: &str = ".-_/#: ";
const RESERVED_NAMESPACE: &str = "AWS/";
/// STS `ExternalId`: 2 to 1,224 of `[\w+=,.@:/-]` (STS API reference).
const EXTERNAL_ID_LEN: RangeInclusive<usize> = 2..=1224;

/// Bytes of a bad value a reason quotes at most (cut on a character boundary).
pub(super) const SHOWN_CHARS: usize = 40;

/// A bad value as a reason quotes it: whole when short, else its first [`SHOWN_CHARS`] bytes
/// and its length, so a pasted 100 KB value never comes back whole. Escaped as Rust
/// debug text, so at most ~10 bytes a character: the excerpt stays under 500 bytes.
///
/// Through the one rule for text that leaves ([`crate::mask::clean`]).
pub(super) fn shown(text: &str) -> String {
    crate::mask::quote_within(text, SHOWN_CHARS)
}

pub(super) fn stream_name(name: &str) -> Result<String, String> {
    if name.starts_with("arn:") {
        Err(format!(
            "{} is an ARN; give the stream's name (the part after \"deliverystream/\")",
            shown(name)
        ))
    } else if aws_names::is_stream_name(name) {
        Ok(name.to_string())
    } else {
        Err(format!(
            "{} is not a Firehose stream name (1 to 64 of letters, digits, '_', '.', '-')",
            shown(name)
        ))
    }
}

/// A bucket's name, with a hint for the usual mistakes (a URL, an ARN, a folder) that points to
/// the variable folders go in.
pub(super) fn bucket_name(
    prefix_variable: &'static str,
) -> impl Fn(&str) -> Result<String, String> {
    move |name| {
        let alone = format!("give the bucket's name alone (folders go in {prefix_variable})");
        if name.starts_with("s3://") || name.starts_with("arn:") {
            Err(format!("{} is a URL or an ARN; {alone}", shown(name)))
        } else if name.contains('/') {
            Err(format!("{} contains '/'; {alone}", shown(name)))
        } else {
            match aws_names::bucket_name_refusal(name) {
                None => Ok(name.to_string()),
                Some(why) => Err(format!(
                    "{} is not an S3 bucket name: it {why}",
                    shown(name)
                )),
            }
        }
    }
}

pub(super) fn bucket_list(list: &str) -> Result<Vec<String>, String> {
    let mut buckets = Vec::new();
    for name in items(list) {
        let name = bucket_name(var::AUDIT_PREFIX)(name)?;
        if !buckets.contains(&name) {
            buckets.push(name);
        }
    }
    if buckets.is_empty() {
        return Err("names no bucket; leave it empty for AUDIT_BUCKET alone".into());
    }
    Ok(buckets)
}

/// Trailing `/` dropped; refused when Redshift would refuse it or when nothing can lie under it
/// ([`key::unmatchable_prefix`]).
pub(super) fn audit_prefix(prefix: &str) -> Result<String, String> {
    let prefix = prefix.trim_end_matches('/');
    key::validate_prefix(prefix).map_err(|e| prefix_refusal(prefix, e))?;
    if let Some(why) = key::unmatchable_prefix(prefix) {
        return Err(format!("{} {why}", shown(prefix)));
    }
    Ok(prefix.to_string())
}

/// A refused prefix's reason, quoting the prefix in excerpt only.
fn prefix_refusal(prefix: &str, error: KeyError) -> String {
    match error {
        KeyError::PrefixChar {
            found, position, ..
        } => format!(
            "key prefix {} contains {found:?} at index {position}; Redshift key prefixes allow no \
             space, quote, backslash, control or non-ASCII character",
            shown(prefix)
        ),
        other => other.to_string(),
    }
}

/// State objects live in a folder of their own.
pub(super) fn state_prefix(prefix: &str) -> Result<String, String> {
    key::validate_prefix(prefix).map_err(|e| prefix_refusal(prefix, e))?;
    Ok(if prefix.ends_with('/') {
        prefix.to_string()
    } else {
        format!("{prefix}/")
    })
}

/// In the audit bucket the state must stay out of the audit folder, where the trigger and the
/// walk look. An empty `AUDIT_PREFIX` is the whole bucket, but Redshift only writes under
/// `AWSLogs/` there, so the default state folder beside it is fine.
pub(super) fn state_outside_audit(state_prefix: &str, audit_prefix: &str) -> Result<(), String> {
    let inside = !audit_prefix.is_empty()
        && state_prefix
            .strip_prefix(audit_prefix)
            .is_some_and(|rest| rest.starts_with('/'));
    if inside {
        Err(format!(
            "{} is inside AUDIT_PREFIX {} while the state bucket is \
             the audit bucket; keep the state out of the audit logs (another STATE_PREFIX or \
             STATE_BUCKET)",
            shown(state_prefix),
            shown(audit_prefix)
        ))
    } else {
        Ok(())
    }
}

pub(super) fn region(region: &str) -> Result<String, String> {
    if aws_names::is_region(region) {
        Ok(region.to_string())
    } else {
        Err(format!(
            "{} is not an AWS region name (e.g. us-east-1)",
            shown(region)
        ))
    }
}

pub(super) fn account_id(owner: &str) -> Result<String, String> {
    if aws_names::is_account_id(owner) {
        Ok(owner.to_string())
    } else {
        Err(format!("{} is not a 12-digit AWS account ID", shown(owner)))
    }
}

pub(super) fn role_arn(arn: &str) -> Result<String, String> {
    if aws_names::is_role_arn(arn) {
        Ok(arn.to_string())
    } else {
        Err(format!(
            "{} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)",
            shown(arn)
        ))
    }
}

/// Not echoed: an external ID is a shared secret of sorts.
pub(super) fn external_id(id: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c);
    if EXTERNAL_ID_LEN.contains(&id.len()) && id.chars().all(allowed) {
        Ok(id.to_string())
    } else {
        Err("must be 2 to 1224 characters of letters, digits and _+=,.@:/-".into())
    }
}

// Keys are never echoed, the ID included: it identifies the secret's owner.

pub(super) fn access_key_id(id: &str) -> Result<String, String> {
    if id.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(id.to_string())
    } else {
        Err("is not an access key ID (letters and digits, no spaces)".into())
    }
}

pub(super) fn secret_access_key(secret: &str) -> Result<Secret, String> {
    if secret.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(Secret::new(secret))
    } else {
        Err("is not a secret access key (printable ASCII, no spaces)".into())
    }
}

/// An RFC 3339 time from 2012-01-01 (no Redshift audit log is older: the state checks'
/// [`EARLIEST_DAY`]) to `now_ms` plus the state checks' clock skew: a start in the future would
/// select nothing until then.
pub(super) fn start_time(now_ms: i64) -> impl Fn(&str) -> Result<StartTime, String> {
    move |text| {
        let time = StartTime::parse(text).map_err(|reason| {
            format!(
                "{} is not an RFC 3339 time (e.g. 2024-03-01T00:00:00Z): {reason}",
                shown(text)
            )
        })?;
        let earliest_s = EARLIEST_DAY * 86_400;
        if time.unix_seconds < earliest_s {
            return Err(format!(
                "{} is before 2012-01-01T00:00:00Z, when Redshift audit logging began; leave it \
                 empty for the full history",
                shown(text)
            ));
        }
        if time.unix_ms() > now_ms.saturating_add(CLOCK_SKEW_MS) {
            return Err(format!(
                "{} is in the future (now is {}), so the backfill would select nothing; give a \
                 past time",
                shown(text),
                crate::time::rfc3339_ms(now_ms)
            ));
        }
        Ok(time)
    }
}

/// `LOG_TYPES`: the Redshift log types and whether `cloudtrail` is named.
pub(super) fn log_types(list: &str) -> Result<(Vec<LogType>, bool), String> {
    let (mut types, mut cloudtrail, mut unknown) = (Vec::new(), false, Vec::new());
    for name in items(list) {
        let name = name.to_ascii_lowercase();
        match name.parse::<LogType>() {
            Ok(t) if !types.contains(&t) => types.push(t),
            Ok(_) => {}
            Err(_) if name == CLOUDTRAIL => cloudtrail = true,
            Err(_) => unknown.push(name),
        }
    }
    if !unknown.is_empty() {
        return Err(format!(
            "unknown log type {} (expected a comma-separated list of connectionlog, userlog, \
             useractivitylog, cloudtrail)",
            quoted(&unknown)
        ));
    }
    if types.is_empty() && !cloudtrail {
        return Err("selects no log type; leave it empty for all three".into());
    }
    Ok((types, cloudtrail))
}

pub(super) fn event_sources(list: &str) -> Result<Vec<String>, String> {
    let (mut sources, mut unknown) = (Vec::new(), Vec::new());
    for name in items(list) {
        let name = name.to_ascii_lowercase();
        if !aws_names::is_event_source(&name) {
            unknown.push(name);
        } else if !sources.contains(&name) {
            sources.push(name);
        }
    }
    if !unknown.is_empty() {
        return Err(format!(
            "{} not a CloudTrail event source (a service's name ending in .amazonaws.com, e.g. \
             redshift.amazonaws.com)",
            match unknown.len() {
                1 => format!("{} is", quoted(&unknown)),
                _ => format!("{} are", quoted(&unknown)),
            }
        ));
    }
    if sources.is_empty() {
        return Err("selects no event source; leave it empty for the four Redshift ones".into());
    }
    Ok(sources)
}

/// Digits only: "+1", "1.0" and "-1" are refused rather than guessed at.
fn whole_number(text: &str, range: RangeInclusive<u32>) -> Option<u32> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|n| range.contains(n))
}

pub(super) fn lookback(text: &str) -> Result<u32, String> {
    whole_number(text, 0..=MAX_LOOKBACK_DAYS).ok_or_else(|| {
        format!(
            "{} is not a whole number of days from 0 to {MAX_LOOKBACK_DAYS}",
            shown(text)
        )
    })
}

pub(super) fn max_attempts(text: &str) -> Result<u32, String> {
    let (min, max) = (MAX_ATTEMPTS_RANGE.start(), MAX_ATTEMPTS_RANGE.end());
    whole_number(text, MAX_ATTEMPTS_RANGE).ok_or_else(|| {
        format!(
            "{} is not a whole number of attempts from {min} to {max}",
            shown(text)
        )
    })
}

pub(super) fn max_expansion(text: &str) -> Result<u32, String> {
    let (min, max) = (MAX_EXPANSION_RANGE.start(), MAX_EXPANSION_RANGE.end());
    whole_number(text, MAX_EXPANSION_RANGE).ok_or_else(|| {
        format!("{} is not a whole number of times from {min} to {max} (the most text an object may expand to, per compressed byte)", shown(text))
    })
}

pub fn output_format(text: &str) -> Result<OutputFormat, String> {
    match text.to_ascii_lowercase().as_str() {
        "raw" => Ok(OutputFormat::Raw),
        "ocsf" => Ok(OutputFormat::Ocsf),
        format => Err(format!(
            "unknown format {} (expected raw or ocsf)",
            shown(format)
        )),
    }
}

pub fn boolean(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!(
            "{} is not a boolean (true/false, 1/0, yes/no)",
            shown(text)
        )),
    }
}

pub(super) fn metrics_namespace(name: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || NAMESPACE_PUNCTUATION.contains(c);
    if name.len() > MAX_METRICS_NAMESPACE || !name.chars().all(allowed) {
        Err(format!(
            "{} is not a CloudWatch namespace (1 to {MAX_METRICS_NAMESPACE} of letters, digits, \
             '.', '-', '_', '/', '#', ':' and space)",
            shown(name)
        ))
    } else if name.starts_with(RESERVED_NAMESPACE) {
        Err(format!(
            "{} starts with {RESERVED_NAMESPACE:?}, which CloudWatch keeps for AWS services",
            shown(name)
        ))
    } else {
        Ok(name.to_string())
    }
}

/// A whole number and a unit: `3600s`, `90m`, `3h`, `1d`; more than zero, at most
/// [`MAX_STALE_AFTER`].
pub(super) fn stale_after(text: &str) -> Result<Duration, String> {
    let malformed = || {
        format!(
            "{} is not a duration (a whole number and a unit: s, m, h or d, e.g. 3h)",
            shown(text)
        )
    };
    let unit_seconds: u64 = match text.as_bytes().last().map(u8::to_ascii_lowercase) {
        Some(b's') => 1,
        Some(b'm') => 60,
        Some(b'h') => 3600,
        Some(b'd') => 86_400,
        _ => return Err(malformed()),
    };
    let number = text
        .get(..text.len() - 1)
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(malformed)?;
    match number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_seconds))
    {
        Some(0) => Err(format!("{} must be more than zero", shown(text))),
        Some(seconds) if seconds <= MAX_STALE_AFTER.as_secs() => Ok(Duration::from_secs(seconds)),
        _ => Err(format!(
            "{} is more than {} days",
            shown(text),
            MAX_STALE_AFTER.as_secs() / 86_400
        )),
    }
}

/// The items of a comma-separated list, trimmed; a stray comma (trailing, doubled) is ignored.
fn items(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|n| !n.is_empty())
}

/// The names, each in excerpt, at most [`QUOTED_NAMES`] of them.
fn quoted(names: &[String]) -> String {
    let mut quoted: Vec<String> = names.iter().take(QUOTED_NAMES).map(|n| shown(n)).collect();
    if names.len() > QUOTED_NAMES {
        quoted.push(format!("and {} more", names.len() - QUOTED_NAMES));
    }
    quoted.join(", ")
}

/// Names a list's refusal quotes at most.
const QUOTED_NAMES: usize = 5;
