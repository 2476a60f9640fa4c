//! Redshift audit object keys and prefixes: parse, validate, decode.
//!
//! Everything here works on the key text alone: the file name says which account, region, cluster
//! and log type a file holds, whatever folders it sits in (FORMAT.md, "Object keys").

use crate::aws_names::{is_account_id, is_region};
use crate::logs::LogType;
use crate::time::days_in_month;

/// Longest key prefix Redshift accepts for audit logging (seed 001).
pub const MAX_PREFIX_CHARS: usize = 512;

/// The service name in every Redshift audit log file name (`<account>_redshift_...`).
const SERVICE: &str = "redshift";

/// What a Redshift audit log file name says about the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFileName {
    /// 12-digit AWS account ID.
    pub account_id: String,
    /// AWS region, e.g. `us-east-1`, `us-gov-east-1`, `cn-northwest-1`.
    pub region: String,
    /// Cluster identifier.
    pub cluster: String,
    pub log_type: LogType,
    /// The name's timestamp as RFC 3339 UTC, e.g. `2024-03-01T00:53:00Z`.
    pub file_time: String,
}

/// Why a key, file name or prefix was refused. Retrying never helps: the text itself is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key {key:?} has no file name (it is empty or ends with '/')")]
    NoFileName { key: String },
    #[error(
        "{name:?} is not a Redshift audit log file name: expected 6 '_'-separated fields \
         (<account>_redshift_<region>_<cluster>_<logtype>_<YYYY-MM-DDTHH:MM>[.gz]), found {found}"
    )]
    FieldCount { name: String, found: usize },
    #[error(
        "{name:?} is not a Redshift audit log file name: service is {service:?}, not \"redshift\""
    )]
    NotRedshift { name: String, service: String },
    #[error("{name:?}: account {account:?} is not 12 digits")]
    BadAccount { name: String, account: String },
    #[error("{name:?}: region {region:?} does not look like an AWS region (e.g. us-east-1)")]
    BadRegion { name: String, region: String },
    #[error("{name:?}: cluster {cluster:?} does not match [a-z][a-z0-9-]*")]
    BadCluster { name: String, cluster: String },
    #[error(
        "{name:?}: unknown log type {log_type:?} (expected connectionlog, userlog or useractivitylog)"
    )]
    UnknownLogType { name: String, log_type: String },
    #[error("{name:?}: file time {time:?} is not a valid YYYY-MM-DDTHH:MM: {reason}")]
    BadTime {
        name: String,
        time: String,
        reason: &'static str,
    },
    #[error("key prefix is {chars} characters long; Redshift allows at most {MAX_PREFIX_CHARS}")]
    PrefixTooLong { chars: usize },
    #[error(
        "key prefix {prefix:?} contains {found:?} at index {position}; Redshift key prefixes \
         allow no space, quote, backslash, control or non-ASCII character"
    )]
    PrefixChar {
        prefix: String,
        found: char,
        position: usize,
    },
    #[error("event key {key:?} has an invalid percent escape at byte {position}")]
    BadEscape { key: String, position: usize },
    #[error("event key {key:?} does not decode to UTF-8")]
    NotUtf8 { key: String },
}

/// Parses a Redshift audit log key or bare file name, from its last path segment alone.
///
/// Accepts `<account>_redshift_<region>_<cluster>_<logtype>_<YYYY-MM-DDTHH:MM>` with or without
/// `.gz` (local plain copies drop it). Anything else is an error naming what is wrong.
pub fn parse_file_name(key: &str) -> Result<LogFileName, KeyError> {
    let name = key.rsplit('/').next().unwrap_or(key);
    if name.is_empty() {
        return Err(KeyError::NoFileName {
            key: key.to_string(),
        });
    }
    let stem = name.strip_suffix(".gz").unwrap_or(name);
    // Cluster names and regions never contain '_', so the fields split cleanly.
    let fields: Vec<&str> = stem.split('_').collect();
    let owned = || name.to_string();
    // Other services' logs (CloudTrail, ...) share the bucket: say so before counting fields.
    if let Some(&service) = fields.get(1) {
        if service != SERVICE {
            return Err(KeyError::NotRedshift {
                name: owned(),
                service: service.to_string(),
            });
        }
    }
    let [account, _, region, cluster, log_type, time] = fields[..] else {
        return Err(KeyError::FieldCount {
            name: owned(),
            found: fields.len(),
        });
    };
    if !is_account_id(account) {
        return Err(KeyError::BadAccount {
            name: owned(),
            account: account.to_string(),
        });
    }
    if !is_region(region) {
        return Err(KeyError::BadRegion {
            name: owned(),
            region: region.to_string(),
        });
    }
    if !is_cluster(cluster) {
        return Err(KeyError::BadCluster {
            name: owned(),
            cluster: cluster.to_string(),
        });
    }
    let log_type: LogType = log_type.parse().map_err(|_| KeyError::UnknownLogType {
        name: owned(),
        log_type: log_type.to_string(),
    })?;
    let file_time = file_time_rfc3339(time).map_err(|reason| KeyError::BadTime {
        name: owned(),
        time: time.to_string(),
        reason,
    })?;
    Ok(LogFileName {
        account_id: account.to_string(),
        region: region.to_string(),
        cluster: cluster.to_string(),
        log_type,
        file_time,
    })
}

/// Checks a key prefix against Redshift's rules (seed 001). The empty prefix is valid.
pub fn validate_prefix(prefix: &str) -> Result<(), KeyError> {
    if let Some((position, found)) = prefix
        .chars()
        .enumerate()
        .find(|&(_, c)| !is_prefix_char(c))
    {
        return Err(KeyError::PrefixChar {
            prefix: prefix.to_string(),
            found,
            position,
        });
    }
    // Every allowed character is ASCII, so bytes and characters agree here.
    if prefix.len() > MAX_PREFIX_CHARS {
        return Err(KeyError::PrefixTooLong {
            chars: prefix.len(),
        });
    }
    Ok(())
}

/// Why objects can never lie under `prefix` (an `AUDIT_PREFIX`, trailing `/` already dropped),
/// or `None`. The walk lists `<prefix>/YYYY/MM/DD/` and live events must start with
/// `<prefix>/`, so a prefix S3 keys never start with, or one that already holds the date the walk
/// adds, selects nothing: every object would be "ignored" and nothing ever forwarded.
///
/// A partial date (`YYYY`, `YYYY/MM`) is refused only right after a region segment, where
/// Redshift and CloudTrail put the date; elsewhere a year-like folder may be a custom prefix
/// Redshift writes `AWSLogs/...` below.
pub fn unmatchable_prefix(prefix: &str) -> Option<String> {
    if prefix.is_empty() {
        return None;
    }
    if prefix.starts_with('/') {
        return Some(
            "starts with '/', which no key Redshift or CloudTrail writes does; drop it (e.g. \
             AWSLogs/123456789012/redshift/us-east-1)"
                .into(),
        );
    }
    let segments: Vec<&str> = prefix.split('/').collect();
    if segments.contains(&"") {
        return Some(
            "has an empty segment ('//'); S3 keys are not paths and Redshift writes none".into(),
        );
    }
    if let Some(dots) = segments.iter().find(|s| **s == "." || **s == "..") {
        return Some(format!(
            "has a {dots:?} segment; S3 keys are not paths, so nothing resolves it and no key \
             Redshift writes holds one"
        ));
    }
    let date_at = date_tail(&segments)?;
    let above = segments[..date_at].join("/");
    let date = segments[date_at..].join("/");
    Some(format!(
        "ends in the date partition {date:?}, which the walk adds itself; set it to {above:?} and \
         BACKFILL_START_TIME to start from a date"
    ))
}

/// Where a trailing date partition starts in `segments`: a whole `YYYY/MM/DD` anywhere, a
/// `YYYY/MM` or `YYYY` right after a region.
fn date_tail(segments: &[&str]) -> Option<usize> {
    let n = segments.len();
    let digits = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit());
    let year = |s: &str| digits(s, 4);
    let month = |s: &str| digits(s, 2) && (1..=12).contains(&s.parse::<u32>().unwrap_or(0));
    let after_region = |at: usize| at > 0 && is_region(segments[at - 1]);
    if n >= 3 {
        let [y, m, d] = [segments[n - 3], segments[n - 2], segments[n - 1]];
        let day = digits(d, 2)
            && year(y)
            && month(m)
            && (1..=days_in_month(y.parse().unwrap_or(0), m.parse().unwrap_or(0)))
                .contains(&d.parse().unwrap_or(0));
        if day {
            return Some(n - 3);
        }
    }
    if n >= 2 && year(segments[n - 2]) && month(segments[n - 1]) && after_region(n - 2) {
        return Some(n - 2);
    }
    if year(segments[n - 1]) && after_region(n - 1) {
        return Some(n - 1);
    }
    None
}

fn is_prefix_char(c: char) -> bool {
    !matches!(c, '"' | '\'' | '\\') && ('\u{21}'..'\u{7f}').contains(&c)
}

/// A key URL-encoded as S3 notifications and Batch Operations manifests carry it: every byte
/// but `A-Z a-z 0-9 - _ . ~ /` as `%XX` (a space too, so it reads the same whether the reader
/// takes `+` for a space or not). [`decode_event_key`] gives the key back.
pub fn encode_event_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 8);
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
    out
}

/// Decodes a key as S3 event notifications carry it: `+` is a space, then `%XX` escapes.
///
/// The two steps happen in one pass, which is the same thing: `%2B` still yields a literal `+`.
pub fn decode_event_key(encoded: &str) -> Result<String, KeyError> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(KeyError::BadEscape {
                        key: encoded.to_string(),
                        position: i,
                    });
                };
                out.push(hi << 4 | lo);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| KeyError::NotUtf8 {
        key: encoded.to_string(),
    })
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The day partition under a prefix: `<prefix>/YYYY/MM/DD/`, or `YYYY/MM/DD/` for the empty prefix.
///
/// A trailing `/` on the prefix is optional. The date is not checked: callers walk real dates.
pub fn day_prefix(prefix: &str, year: i32, month: u32, day: u32) -> String {
    let base = prefix.trim_end_matches('/');
    if base.is_empty() {
        format!("{year:04}/{month:02}/{day:02}/")
    } else {
        format!("{base}/{year:04}/{month:02}/{day:02}/")
    }
}

/// Whether a (decoded) key lies under a prefix, taken as a folder: `a/b` holds `a/b/x` but not
/// `a/bc/x`, so live events select exactly what the backfill's `day_prefix` walk lists.
/// The empty prefix holds every key.
pub fn is_under_prefix(key: &str, prefix: &str) -> bool {
    let base = prefix.trim_end_matches('/');
    base.is_empty()
        || key
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn is_cluster(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `YYYY-MM-DDTHH:MM` (fixed width, zero-padded) to `YYYY-MM-DDTHH:MM:00Z`.
fn file_time_rfc3339(time: &str) -> Result<String, &'static str> {
    let b = time.as_bytes();
    if b.len() != 16 {
        return Err("expected exactly 16 characters");
    }
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return Err("separators are not '-', '-', 'T', ':'");
    }
    let digits = |range: std::ops::Range<usize>| -> Result<u32, &'static str> {
        b[range].iter().try_fold(0u32, |acc, &d| {
            if d.is_ascii_digit() {
                Ok(acc * 10 + u32::from(d - b'0'))
            } else {
                Err("a date or time field is not all digits")
            }
        })
    };
    let year = digits(0..4)?;
    let month = digits(5..7)?;
    let day = digits(8..10)?;
    let hour = digits(11..13)?;
    let minute = digits(14..16)?;
    if !(1..=12).contains(&month) {
        return Err("month out of range");
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err("day out of range for the month");
    }
    if hour > 23 {
        return Err("hour out of range");
    }
    if minute > 59 {
        return Err("minute out of range");
    }
    Ok(format!("{time}:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CONN: &str =
        "123456789012_redshift_us-east-1_analytics-prod_connectionlog_2024-03-01T00:53.gz";

    fn ok(name: &str) -> LogFileName {
        match parse_file_name(name) {
            Ok(parsed) => parsed,
            Err(e) => panic!("{name}: {e}"),
        }
    }

    #[test]
    fn file_name_gives_every_field() {
        assert_eq!(
            ok(CONN),
            LogFileName {
                account_id: "123456789012".into(),
                region: "us-east-1".into(),
                cluster: "analytics-prod".into(),
                log_type: LogType::ConnectionLog,
                file_time: "2024-03-01T00:53:00Z".into(),
            }
        );
    }

    #[test]
    fn only_the_last_path_segment_counts() {
        let layouts = [
            format!("AWSLogs/123456789012/redshift/us-east-1/2024/03/01/{CONN}"),
            format!("myprefix/AWSLogs/123456789012/redshift/us-east-1/2024/03/01/{CONN}"),
            // Folders that disagree with the name do not matter.
            format!("AWSLogs/999999999999/redshift/eu-west-1/1999/12/31/{CONN}"),
            CONN.to_string(),
        ];
        for key in &layouts {
            assert_eq!(ok(key), ok(CONN), "{key}");
        }
    }

    #[test]
    fn layout_without_awslogs_parses() {
        let key = "123456789012/x/raw/audit_logs/2021/07/18/\
                   123456789012_redshift_us-east-1_longzone_connectionlog_2021-07-18T00:53.gz";
        let parsed = ok(key);
        assert_eq!(parsed.cluster, "longzone");
        assert_eq!(parsed.log_type, LogType::ConnectionLog);
        assert_eq!(parsed.file_time, "2021-07-18T00:53:00Z");
    }

    #[test]
    fn every_log_type_parses() {
        for lt in LogType::ALL {
            let name = format!(
                "123456789012_redshift_us-east-1_c1_{}_2024-03-01T00:53.gz",
                lt.as_str()
            );
            assert_eq!(ok(&name).log_type, lt);
        }
    }

    #[test]
    fn every_region_family_parses() {
        for region in [
            "us-east-1",
            "us-west-2",
            "eu-central-1",
            "ap-southeast-2",
            "ap-northeast-3",
            "sa-east-1",
            "me-south-1",
            "il-central-1",
            "ca-west-1",
            "us-gov-east-1",
            "us-gov-west-1",
            "cn-north-1",
            "cn-northwest-1",
            "us-iso-east-1",
            "us-isob-east-1",
        ] {
            let name = format!("123456789012_redshift_{region}_c1_userlog_2024-03-01T00:53.gz");
            assert_eq!(ok(&name).region, region);
        }
    }

    #[test]
    fn name_without_gz_parses() {
        let plain = CONN.trim_end_matches(".gz");
        assert_eq!(ok(plain), ok(CONN));
    }

    #[test]
    fn malformed_names_are_refused_with_the_reason() {
        type Check = fn(&KeyError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, KeyError::NoFileName { .. })),
            ("AWSLogs/123456789012/", |e| {
                matches!(e, KeyError::NoFileName { .. })
            }),
            ("readme.txt", |e| {
                matches!(e, KeyError::FieldCount { found: 1, .. })
            }),
            // A '_' in the cluster would make seven fields: such a name is never a guess.
            (
                "123456789012_redshift_us-east-1_my_cluster_userlog_2024-03-01T00:53.gz",
                |e| matches!(e, KeyError::FieldCount { found: 7, .. }),
            ),
            (
                "123456789012_CloudTrail_us-east-1_20240301T0000Z_abc.json.gz",
                |e| matches!(e, KeyError::NotRedshift { .. }),
            ),
            (
                "12345678901_redshift_us-east-1_c1_userlog_2024-03-01T00:53.gz",
                |e| matches!(e, KeyError::BadAccount { .. }),
            ),
            (
                "1234567890123_redshift_us-east-1_c1_userlog_2024-03-01T00:53.gz",
                |e| matches!(e, KeyError::BadAccount { .. }),
            ),
            (
                "12345678901a_redshift_us-east-1_c1_userlog_2024-03-01T00:53.gz",
                |e| matches!(e, KeyError::BadAccount { .. }),
            ),
            (
                "123456789012_redshift_useast1_c1_userlog_2024-03-01T00:53.gz",
                |e| matches!(e, KeyError::BadRegion { .. }),
            ),
            (
                "123456789012_redshift_US-EAST-1_c1_userlog_2024-03-01T00:53.gz",
                |e| matches!(e, KeyError::BadRegion { .. }),
            ),
            (
                "123456789012_redshift_us-east-x_c1_userlog_2024-03-01T00:53.gz",
                |e| matches!(e, KeyError::BadRegion { .. }),
            ),
            (
                "123456789012_redshift_us-east-1_Analytics_userlog_2024-03-01T00:53.gz",
                |e| matches!(e, KeyError::BadCluster { .. }),
            ),
            (
                "123456789012_redshift_us-east-1_1cluster_userlog_2024-03-01T00:53.gz",
                |e| matches!(e, KeyError::BadCluster { .. }),
            ),
            (
                "123456789012_redshift_us-east-1__userlog_2024-03-01T00:53.gz",
                |e| matches!(e, KeyError::BadCluster { .. }),
            ),
            (
                "123456789012_redshift_us-east-1_c1_querylog_2024-03-01T00:53.gz",
                |e| matches!(e, KeyError::UnknownLogType { .. }),
            ),
            (
                "123456789012_redshift_us-east-1_c1_UserLog_2024-03-01T00:53.gz",
                |e| matches!(e, KeyError::UnknownLogType { .. }),
            ),
            (
                "123456789012_redshift_us-east-1_c1_userlog_2024-3-1T0:53.gz",
                |e| matches!(e, KeyError::BadTime { .. }),
            ),
            (
                "123456789012_redshift_us-east-1_c1_userlog_2024-13-01T00:53.gz",
                |e| {
                    matches!(
                        e,
                        KeyError::BadTime {
                            reason: "month out of range",
                            ..
                        }
                    )
                },
            ),
            (
                "123456789012_redshift_us-east-1_c1_userlog_2024-00-01T00:53.gz",
                |e| {
                    matches!(
                        e,
                        KeyError::BadTime {
                            reason: "month out of range",
                            ..
                        }
                    )
                },
            ),
            (
                "123456789012_redshift_us-east-1_c1_userlog_2024-04-31T00:53.gz",
                |e| {
                    matches!(
                        e,
                        KeyError::BadTime {
                            reason: "day out of range for the month",
                            ..
                        }
                    )
                },
            ),
            (
                "123456789012_redshift_us-east-1_c1_userlog_2023-02-29T00:53.gz",
                |e| {
                    matches!(
                        e,
                        KeyError::BadTime {
                            reason: "day out of range for the month",
                            ..
                        }
                    )
                },
            ),
            (
                "123456789012_redshift_us-east-1_c1_userlog_2024-03-00T00:53.gz",
                |e| {
                    matches!(
                        e,
                        KeyError::BadTime {
                            reason: "day out of range for the month",
                            ..
                        }
                    )
                },
            ),
            (
                "123456789012_redshift_us-east-1_c1_userlog_2024-03-01T24:00.gz",
                |e| {
                    matches!(
                        e,
                        KeyError::BadTime {
                            reason: "hour out of range",
                            ..
                        }
                    )
                },
            ),
            (
                "123456789012_redshift_us-east-1_c1_userlog_2024-03-01T00:60.gz",
                |e| {
                    matches!(
                        e,
                        KeyError::BadTime {
                            reason: "minute out of range",
                            ..
                        }
                    )
                },
            ),
            (
                "123456789012_redshift_us-east-1_c1_userlog_2024-03-01 00:53.gz",
                |e| matches!(e, KeyError::BadTime { .. }),
            ),
            (
                "123456789012_redshift_us-east-1_c1_userlog_2024-03-01T00:53:07.gz",
                |e| matches!(e, KeyError::BadTime { .. }),
            ),
            (
                "123456789012_redshift_us-east-1_c1_userlog_2024-03-01T00:53.txt",
                |e| matches!(e, KeyError::BadTime { .. }),
            ),
            (
                "123456789012_redshift_us-east-1_c1_userlog_2024-03-01T00:53.gz.gz",
                |e| matches!(e, KeyError::BadTime { .. }),
            ),
        ];
        for (name, check) in cases {
            match parse_file_name(name) {
                Ok(parsed) => panic!("{name:?} parsed as {parsed:?}"),
                Err(e) => assert!(check(&e), "{name:?} gave {e:?}"),
            }
        }
    }

    #[test]
    fn leap_day_parses_in_leap_years_only() {
        let name =
            |year: u32| format!("123456789012_redshift_us-east-1_c1_userlog_{year}-02-29T00:53.gz");
        assert_eq!(ok(&name(2024)).file_time, "2024-02-29T00:53:00Z");
        assert_eq!(ok(&name(2000)).file_time, "2000-02-29T00:53:00Z");
        assert!(parse_file_name(&name(1900)).is_err());
        assert!(parse_file_name(&name(2023)).is_err());
    }

    #[test]
    fn error_message_names_the_file() {
        let err =
            parse_file_name("a/b/123456789012_redshift_us-east-1_c1_querylog_2024-03-01T00:53.gz")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
        assert!(
            err.contains("123456789012_redshift_us-east-1_c1_querylog_2024-03-01T00:53.gz"),
            "{err}"
        );
        assert!(err.contains("querylog"), "{err}");
    }

    #[test]
    fn decoding_follows_form_encoding() {
        let cases = [
            ("plain/key.gz", "plain/key.gz"),
            ("a+b", "a b"),
            ("a%2Bb", "a+b"),
            ("a%2bb", "a+b"),
            ("x%3Dy", "x=y"),
            ("T00%3A53.gz", "T00:53.gz"),
            ("caf%C3%A9", "café"),
            ("100%25", "100%"),
            ("%2B+%20", "+  "),
            ("", ""),
        ];
        for (encoded, decoded) in cases {
            assert_eq!(
                decode_event_key(encoded).as_deref(),
                Ok(decoded),
                "{encoded}"
            );
        }
    }

    #[test]
    fn bad_escapes_are_refused_naming_the_key() {
        for (encoded, position) in [
            ("a%G1", 1),
            ("a%4", 1),
            ("%", 0),
            ("ok%2Bthen%zz", 9),
            ("%1G", 0),
        ] {
            assert_eq!(
                decode_event_key(encoded),
                Err(KeyError::BadEscape {
                    key: encoded.to_string(),
                    position
                }),
                "{encoded}"
            );
        }
        let err = decode_event_key("bad%G1key")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("bad%G1key"), "{err}");
    }

    #[test]
    fn escapes_that_are_not_utf8_are_refused() {
        for encoded in ["%C3", "%FF", "a%C3%28"] {
            assert_eq!(
                decode_event_key(encoded),
                Err(KeyError::NotUtf8 {
                    key: encoded.to_string()
                })
            );
        }
    }

    #[test]
    fn valid_prefixes_pass() {
        for prefix in [
            "",
            "myprefix",
            "AWSLogs/123456789012/redshift/us-east-1",
            "a/b=c/d+e/100%/~!",
            "a".repeat(MAX_PREFIX_CHARS).as_str(),
        ] {
            assert_eq!(validate_prefix(prefix), Ok(()), "{prefix}");
        }
    }

    #[test]
    fn prefix_longer_than_512_is_refused() {
        assert_eq!(
            validate_prefix(&"a".repeat(MAX_PREFIX_CHARS + 1)),
            Err(KeyError::PrefixTooLong { chars: 513 })
        );
    }

    #[test]
    fn each_forbidden_prefix_character_is_refused() {
        for (prefix, found, position) in [
            ("a b", ' ', 1),
            ("a\"b", '"', 1),
            ("a'b", '\'', 1),
            ("a\\b", '\\', 1),
            ("\0", '\0', 0),
            ("a\tb", '\t', 1),
            ("a\nb", '\n', 1),
            ("ab\u{1f}", '\u{1f}', 2),
            ("a\u{7f}", '\u{7f}', 1),
            ("café", 'é', 3),
            ("日本", '日', 0),
        ] {
            assert_eq!(
                validate_prefix(prefix),
                Err(KeyError::PrefixChar {
                    prefix: prefix.to_string(),
                    found,
                    position
                }),
                "{prefix:?}"
            );
        }
    }

    #[test]
    fn prefixes_that_select_nothing_are_named_with_the_reason() {
        for (prefix, words) in [
            ("/AWSLogs", "starts with '/'"),
            ("/", "starts with '/'"),
            ("AWSLogs//123456789012", "empty segment"),
            ("AWSLogs/../x", "\"..\" segment"),
            ("./AWSLogs", "\".\" segment"),
            (
                "AWSLogs/123456789012/redshift/us-east-1/2024/03/01",
                "\"2024/03/01\", which the walk adds itself; set it to \"AWSLogs/123456789012/redshift/us-east-1\"",
            ),
            ("AWSLogs/123456789012/redshift/us-east-1/2024/03", "\"2024/03\""),
            ("AWSLogs/123456789012/redshift/us-east-1/2024", "\"2024\""),
            ("AWSLogs/123456789012/CloudTrail/eu-west-1/2024", "\"2024\""),
            ("custom/2024/02/29", "\"2024/02/29\""),
        ] {
            let reason = unmatchable_prefix(prefix).unwrap_or_default();
            assert!(reason.contains(words), "{prefix:?}: {reason:?}");
        }
    }

    #[test]
    fn prefixes_that_can_match_pass() {
        for prefix in [
            "",
            "AWSLogs",
            "AWSLogs/123456789012/redshift/us-east-1",
            "myprefix/AWSLogs/123456789012/redshift/us-east-1",
            "audit/2024",
            "audit/2024/03",
            "custom/2023/02/29",
            "AWSLogs/123456789012/redshift/us-east-1/24",
            "a.b/c..d",
        ] {
            assert_eq!(unmatchable_prefix(prefix), None, "{prefix:?}");
        }
    }

    #[test]
    fn day_prefix_handles_every_prefix_form() {
        assert_eq!(
            day_prefix("AWSLogs/1/redshift/us-east-1", 2024, 3, 1),
            "AWSLogs/1/redshift/us-east-1/2024/03/01/"
        );
        assert_eq!(
            day_prefix("AWSLogs/1/redshift/us-east-1/", 2024, 3, 1),
            "AWSLogs/1/redshift/us-east-1/2024/03/01/"
        );
        assert_eq!(day_prefix("", 2024, 12, 31), "2024/12/31/");
        assert_eq!(day_prefix("/", 2021, 7, 18), "2021/07/18/");
    }

    #[test]
    fn prefix_is_a_folder() {
        let key = format!("logs/a/2024/03/01/{CONN}");
        assert!(is_under_prefix(&key, ""));
        assert!(is_under_prefix(&key, "logs"));
        assert!(is_under_prefix(&key, "logs/a"));
        assert!(is_under_prefix(&key, "logs/a/"));
        assert!(!is_under_prefix(&key, "log"));
        assert!(!is_under_prefix(&key, "logs/a/2024/03/01/1234"));
        assert!(!is_under_prefix(&key, "other"));
        assert!(!is_under_prefix("logs/a", "logs/a"));
    }

    proptest! {
        #[test]
        fn nothing_panics_on_any_text(s in any::<String>()) {
            let _ = parse_file_name(&s);
            let _ = decode_event_key(&s);
            let _ = validate_prefix(&s);
            let _ = is_under_prefix(&s, &s);
        }

        #[test]
        fn nothing_panics_on_name_shaped_text(s in "[0-9a-z_:./%+-]{0,80}") {
            let _ = parse_file_name(&s);
            let _ = decode_event_key(&s);
        }

        #[test]
        fn valid_names_round_trip(
            account in "[0-9]{12}",
            region in "(us|eu|ap|cn)(-gov)?-(east|west|north|northwest)-[1-9]",
            cluster in "[a-z][a-z0-9-]{0,20}",
            lt in 0usize..3,
            (y, mo, d, h, mi) in (1990u32..2100, 1u32..=12, 1u32..=28, 0u32..24, 0u32..60),
            gz in any::<bool>(),
        ) {
            let log_type = LogType::ALL[lt];
            let time = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}");
            let name = format!(
                "{account}_redshift_{region}_{cluster}_{}_{time}{}",
                log_type.as_str(),
                if gz { ".gz" } else { "" }
            );
            let parsed = parse_file_name(&name);
            prop_assert_eq!(parsed, Ok(LogFileName {
                account_id: account,
                region,
                cluster,
                log_type,
                file_time: format!("{time}:00Z"),
            }));
        }
    }
}
