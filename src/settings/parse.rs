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
use crate::key;
use crate::logs::LogType;
use crate::time::StartTime;

/// CloudWatch namespaces: at most 255 characters, never starting with `AWS/` (reserved).
const MAX_METRICS_NAMESPACE: usize = 255;
const RESERVED_NAMESPACE: &str = "AWS/";
/// STS `ExternalId`: 2 to 1,224 of `[\w+=,.@:/-]` (STS API reference).
const EXTERNAL_ID_LEN: RangeInclusive<usize> = 2..=1224;

pub(super) fn stream_name(name: &str) -> Result<String, String> {
    if name.starts_with("arn:") {
        Err(format!(
            "{name:?} is an ARN; give the stream's name (the part after \"deliverystream/\")"
        ))
    } else if aws_names::is_stream_name(name) {
        Ok(name.to_string())
    } else {
        Err(format!(
            "{name:?} is not a Firehose stream name (1 to 64 of letters, digits, '_', '.', '-')"
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
            Err(format!("{name:?} is a URL or an ARN; {alone}"))
        } else if name.contains('/') {
            Err(format!("{name:?} contains '/'; {alone}"))
        } else if aws_names::is_bucket_name(name) {
            Ok(name.to_string())
        } else {
            Err(format!(
                "{name:?} is not an S3 bucket name (3 to 63 lowercase letters, digits, '.', '-', \
                 starting and ending with a letter or digit)"
            ))
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

pub(super) fn audit_prefix(prefix: &str) -> Result<String, String> {
    let prefix = prefix.trim_end_matches('/');
    key::validate_prefix(prefix).map_err(|e| e.to_string())?;
    Ok(prefix.to_string())
}

/// State objects live in a folder of their own.
pub(super) fn state_prefix(prefix: &str) -> Result<String, String> {
    key::validate_prefix(prefix).map_err(|e| e.to_string())?;
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
            "{state_prefix:?} is inside AUDIT_PREFIX {audit_prefix:?} while the state bucket is \
             the audit bucket; keep the state out of the audit logs (another STATE_PREFIX or \
             STATE_BUCKET)"
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
            "{region:?} is not an AWS region name (e.g. us-east-1)"
        ))
    }
}

pub(super) fn account_id(owner: &str) -> Result<String, String> {
    if aws_names::is_account_id(owner) {
        Ok(owner.to_string())
    } else {
        Err(format!("{owner:?} is not a 12-digit AWS account ID"))
    }
}

pub(super) fn role_arn(arn: &str) -> Result<String, String> {
    if aws_names::is_role_arn(arn) {
        Ok(arn.to_string())
    } else {
        Err(format!(
            "{arn:?} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)"
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

pub(super) fn start_time(text: &str) -> Result<StartTime, String> {
    StartTime::parse(text).map_err(|reason| {
        format!("{text:?} is not an RFC 3339 time (e.g. 2024-03-01T00:00:00Z): {reason}")
    })
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
        format!("{text:?} is not a whole number of days from 0 to {MAX_LOOKBACK_DAYS}")
    })
}

pub(super) fn max_attempts(text: &str) -> Result<u32, String> {
    let (min, max) = (MAX_ATTEMPTS_RANGE.start(), MAX_ATTEMPTS_RANGE.end());
    whole_number(text, MAX_ATTEMPTS_RANGE)
        .ok_or_else(|| format!("{text:?} is not a whole number of attempts from {min} to {max}"))
}

pub(super) fn max_expansion(text: &str) -> Result<u32, String> {
    let (min, max) = (MAX_EXPANSION_RANGE.start(), MAX_EXPANSION_RANGE.end());
    whole_number(text, MAX_EXPANSION_RANGE).ok_or_else(|| {
        format!("{text:?} is not a whole number of times from {min} to {max} (the most text an object may expand to, per compressed byte)")
    })
}

pub fn output_format(text: &str) -> Result<OutputFormat, String> {
    match text.to_ascii_lowercase().as_str() {
        "raw" => Ok(OutputFormat::Raw),
        "ocsf" => Ok(OutputFormat::Ocsf),
        format => Err(format!("unknown format {format:?} (expected raw or ocsf)")),
    }
}

pub fn boolean(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!(
            "{text:?} is not a boolean (true/false, 1/0, yes/no)"
        )),
    }
}

pub(super) fn metrics_namespace(name: &str) -> Result<String, String> {
    if name.len() > MAX_METRICS_NAMESPACE || !name.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        Err(format!(
            "{name:?} is not a CloudWatch namespace (1 to {MAX_METRICS_NAMESPACE} printable ASCII \
             characters)"
        ))
    } else if name.starts_with(RESERVED_NAMESPACE) {
        Err(format!(
            "{name:?} starts with {RESERVED_NAMESPACE:?}, which CloudWatch keeps for AWS services"
        ))
    } else {
        Ok(name.to_string())
    }
}

/// A whole number and a unit: `3600s`, `90m`, `3h`, `1d`; more than zero, at most
/// [`MAX_STALE_AFTER`].
pub(super) fn stale_after(text: &str) -> Result<Duration, String> {
    let malformed =
        || format!("{text:?} is not a duration (a whole number and a unit: s, m, h or d, e.g. 3h)");
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
        Some(0) => Err(format!("{text:?} must be more than zero")),
        Some(seconds) if seconds <= MAX_STALE_AFTER.as_secs() => Ok(Duration::from_secs(seconds)),
        _ => Err(format!(
            "{text:?} is more than {} days",
            MAX_STALE_AFTER.as_secs() / 86_400
        )),
    }
}

/// The items of a comma-separated list, trimmed; a stray comma (trailing, doubled) is ignored.
fn items(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|n| !n.is_empty())
}

fn quoted(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    quoted.join(", ")
}
